"""insilico: a differentiable in-silico electrophysiology lab on JAX/Flax."""
__version__ = "0.1.0"
