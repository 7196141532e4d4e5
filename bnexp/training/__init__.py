"""Training one run: compiled steps, the epoch loop, the run lifecycle, checkpoints, the
recorders that watch BN while it trains, XLA and data-parallel helpers (TensorFlow).

Modules import TensorFlow themselves; this package's __init__ does not, so
`bnexp.training.stop` stays cheap for the CLI."""
