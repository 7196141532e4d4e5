"""Reading finished runs: compare's tables and statistics, the series plots draw,
and (with TensorFlow) a run's feature maps."""
