"""The simulated kernel.

Every primitive is a generator: `yield from k.<primitive>(...)` performs one
atomic step and then yields, which is where another CPU or a softirq may run.
Design code imports the primitives as `from stateful.kernel import api as k`.
"""
