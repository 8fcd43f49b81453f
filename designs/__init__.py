"""The designs pgfrag compares: one module each, found by `designs.registry`."""
