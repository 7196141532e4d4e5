"""bnexp's version: one place, read by the package, `bnexp --version` and each run's
summary.json (a leaf, so that nothing inside bnexp imports the package's face)."""

__version__ = "0.1.0"
