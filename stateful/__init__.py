"""pgfrag's simulated kernel and the Hypothesis state machines that drive a design."""
