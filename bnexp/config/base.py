"""What every config section shares: the Section base class and the limits the schema
puts on counts, widths and seeds. No TensorFlow here."""

from __future__ import annotations

from bnexp.config.layers import Strict

DEFAULT_HIDDEN = {"lenet": [120, 84], "mlp": [300, 100]}
NUM_CLASSES = 10  # MNIST, Fashion-MNIST and the synthetic set (bnexp.data reads it here)
MAX_EXAMPLES = 10_000_000  # every count of examples: far above any dataset bnexp reads
MAX_SEED = 2**32 - 1  # NumPy's and TensorFlow's seeds are 32-bit
MAX_WIDTH = 65_536  # units of a dense layer, channels of a convolution
MAX_LAYERS = 1_000  # layers of a model (checking a list of 10,000 takes seconds)


class Section(Strict):
    """The base of every section, and of Config (layers.Strict: no extra keys, no coercion,
    no inf or NaN)."""
