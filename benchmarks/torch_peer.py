"""The same model, data, batch, optimizer and threads in PyTorch: the d2l reader's other
choice, as a peer in benchmarks/throughput.py (`--loops ... torch torch_compile`).

PyTorch is a benchmark-only dependency, never bnexp's: install its CPU build (2.13.0
installs from the machine's local wheel) into a folder of its own, which throughput.py
appends to sys.path (after the project's packages, so nothing of bnexp's changes):

    .venv/bin/pip install --target .bench/torch "torch==2.13.0+cpu"

The model is built from bnexp's own expansion of the config (config.model_layers), layer
by layer: conv (same padding, stride, bias), BN (momentum 1 - Keras' momentum, same
epsilon), activation, max / average pooling, flatten, dense. The loop is d2l's: a fresh
permutation per epoch, uint8 batches scaled to [0, 1] per step, cross-entropy on logits,
SGD (or Adam) as configured; samples/s of the epochs after the first.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

ACTIVATIONS = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "elu": "ELU",
               "gelu": "GELU", "softplus": "Softplus"}


def available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def build(cfg, input_shape):
    """The torch.nn.Sequential of bnexp's layer list for cfg.model (channels first), each
    layer's input width read from bnexp's own shape inference (config.layers.shapes)."""
    import torch
    from torch import nn

    from bnexp import config
    from bnexp.config.layers import shapes

    spec = config.model_layers(cfg.model)
    inputs = [tuple(input_shape), *shapes(spec, input_shape)[:-1]]  # each layer's input
    layers = []
    for layer, shape in zip(spec, inputs, strict=True):
        width = shape[-1]  # channels of an image (H, W, C), or features
        if layer.type == "conv":
            pad = (layer.kernel_size - 1) // 2 if layer.padding == "same" else 0
            layers.append(nn.Conv2d(width, layer.filters, layer.kernel_size, layer.strides,
                                    pad, bias=layer.use_bias))
            _activation(layers, layer.activation)
        elif layer.type == "dense":
            layers.append(nn.Linear(width, layer.units, bias=layer.use_bias))
            _activation(layers, layer.activation)
        elif layer.type == "bn":
            norm = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
            layers.append(norm(width, eps=layer.epsilon, momentum=1 - layer.momentum))
        elif layer.type == "activation":
            _activation(layers, layer.activation)
        elif layer.type in ("max_pool", "avg_pool") and layer.padding == "valid":
            pool = nn.MaxPool2d if layer.type == "max_pool" else nn.AvgPool2d
            layers.append(pool(layer.pool_size, layer.strides or layer.pool_size))
        elif layer.type == "flatten":
            layers.append(nn.Flatten())
        else:
            raise ValueError(f"no PyTorch peer for {layer.type} ({layer})")
    torch.manual_seed(cfg.seed)
    return nn.Sequential(*layers)


def _activation(layers: list, name) -> None:
    from torch import nn

    if name and name != "linear":
        layers.append(getattr(nn, ACTIVATIONS[name])())


def device_name(device: str) -> str:
    """What PyTorch trains on for `device` (cpu | gpu), in words."""
    import torch

    if device == "gpu":
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return f"cpu, {torch.get_num_threads()} threads"


def train(cfg, splits, compile_model: bool = False, threads: int | None = None,
          device: str = "cpu") -> float:
    """Median samples/s of epochs 2.. of d2l's eager loop (torch.compile'd if asked), on
    the CPU or the first GPU (device "gpu"); the data is on that device before timing."""
    import torch
    from torch import nn

    if threads:
        torch.set_num_threads(threads)
    where = torch.device("cuda" if device == "gpu" else "cpu")
    model = build(cfg, splits.input_shape).to(where)
    opt, params = cfg.optimizer, model.parameters()
    optimizer = {"sgd": lambda: torch.optim.SGD(params, lr=opt.learning_rate,
                                                 momentum=opt.momentum),
                 "adam": lambda: torch.optim.Adam(params, lr=opt.learning_rate),
                 "rmsprop": lambda: torch.optim.RMSprop(params, lr=opt.learning_rate,
                                                        momentum=opt.momentum)}[opt.name]()
    step_model = torch.compile(model) if compile_model else model
    loss_fn = nn.CrossEntropyLoss()
    x_all = torch.from_numpy(_channels_first(splits.x_train)).to(where)
    y_all = torch.from_numpy(splits.y_train.astype(np.int64)).to(where)
    n, batch = len(x_all), cfg.data.batch_size
    seconds = []
    model.train()
    for _ in range(cfg.train.epochs):
        perm = torch.randperm(n, device=where)
        start = time.perf_counter()
        for i in range(0, n, batch):
            idx = perm[i : i + batch]
            x = x_all[idx].float() / 255.0
            loss = loss_fn(step_model(x), y_all[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        loss.item()  # wait for the last step
        seconds.append(time.perf_counter() - start)
    return n / statistics.median(seconds[1:] or seconds)


def _channels_first(x: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, C) -> (N, C, H, W); (N, F) stays."""
    return np.ascontiguousarray(np.moveaxis(x, -1, 1)) if x.ndim == 4 else x
