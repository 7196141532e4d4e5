"""bnexp: a command-line lab for batch-normalization experiments in TensorFlow."""

__version__ = "0.1.0"
