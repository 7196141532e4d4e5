"""Models: the LeNet and MLP builders and bnexp's from-scratch BN layer (TensorFlow)."""
