"""The same model, data, batch, optimizer and threads in PyTorch: the d2l reader's other
choice, as a peer in benchmarks/throughput.py (`--loops ... torch torch_compile`).

PyTorch is a benchmark-only dependency, never bnexp's: install its CPU build (2.13.0
installs from the machine's local wheel) into a folder of its own, which throughput.py
appends to sys.path (after the project's packages, so nothing of bnexp's changes):

    .venv/bin/pip install --target .bench/torch "torch==2.13.0+cpu"

The model is built from bnexp's own expansion of the config (config.model_layers), layer
by layer: conv (same padding, stride, bias), BN (momentum 1 - Keras' momentum, same
epsilon), activation, max / average / global average pooling, flatten, dense, and
residual blocks (branch + the shortcut bnexp derives: identity, 1x1 projection + BN, or
option A's zero-padded channels; then the activation) with Fixup's and SkipInit's
scalars; weight_count is what Keras' count_params counts, which throughput.py checks
against bnexp's model before timing. The loop is d2l's: a fresh permutation per epoch,
uint8 batches scaled to [0, 1] per step, cross-entropy on logits, SGD (or Adam) as
configured; samples/s of the epochs after the first.
"""

from __future__ import annotations

import functools
import statistics
import time
import types

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
    layer's input width read from bnexp's own shape inference (config.network.shapes), a
    residual block's shortcut from bnexp's own (config.network.shortcut_layers)."""
    import torch
    from torch import nn

    from bnexp import config

    torch.manual_seed(cfg.seed)
    return nn.Sequential(*_modules(config.model_layers(cfg.model), tuple(input_shape)))


def _modules(spec: list, shape: tuple[int, ...]) -> list:
    """The torch modules of a layer list on inputs of `shape` (H, W, C), blocks with theirs."""
    from torch import nn

    from bnexp.config.network import shapes, shortcut_layers

    layers = []
    for layer, after in zip(spec, shapes(spec, shape), strict=True):
        if layer.type == "residual":
            branch = _modules(layer.layers, shape)
            if layer.scale_init is not None:  # SkipInit: the branch's last layer
                branch.append(_custom().Scalar(layer.scale_init, multiply=True))
            shortcut = _modules(shortcut_layers(layer, shape, after), shape)
            act = []
            _activation(act, layer.activation)
            layers.append(_custom().Block(nn.Sequential(*branch), nn.Sequential(*shortcut),
                                          act[0] if act else nn.Identity()))
        else:
            _leaf(layers, layer, shape)
        shape = after
    return layers


def _leaf(layers: list, layer, shape: tuple[int, ...]) -> None:
    """Append the modules of one layer that is no residual block, on inputs of `shape`."""
    from torch import nn

    width = shape[-1]  # channels of an image (H, W, C), or features
    if layer.type == "conv":
        # "same": PyTorch pads (k - 1) / 2 each side, TensorFlow the extra pixel of a
        # stride-2 layer at the bottom and right: the same output shape and work
        pad = (layer.kernel_size - 1) // 2 if layer.padding == "same" else 0
        layers.append(nn.Conv2d(width, layer.filters, layer.kernel_size, layer.strides,
                                pad, bias=layer.use_bias))
        _activation(layers, layer.activation)
    elif layer.type == "dense":
        layers.append(nn.Linear(width, layer.units, bias=layer.use_bias))
        _activation(layers, layer.activation)
    elif (layer.type == "bn" and not layer.renorm and layer.behaviour == "standard"
          and layer.fault is None and layer.center and layer.scale):
        norm = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
        layers.append(norm(width, eps=layer.epsilon, momentum=1 - layer.momentum))
    elif layer.type == "activation":
        _activation(layers, layer.activation)
    elif layer.type in ("max_pool", "avg_pool") and layer.padding == "valid":
        pool = nn.MaxPool2d if layer.type == "max_pool" else nn.AvgPool2d
        layers.append(pool(layer.pool_size, layer.strides or layer.pool_size))
    elif layer.type == "global_avg_pool":
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    elif layer.type == "flatten":
        layers.append(nn.Flatten())
    elif layer.type in ("scalar_bias", "scalar_scale"):
        multiply = layer.type == "scalar_scale"
        layers.append(_custom().Scalar(layer.init if multiply else 0.0, multiply))
    elif layer.type == "channel_pad":
        layers.append(_custom().ChannelPad(layer.stride, layer.extra))
    else:
        raise ValueError(f"no PyTorch peer for {layer.type} ({layer})")


@functools.cache
def _custom():
    """The modules torch.nn lacks: a residual block, a trainable scalar (Fixup's biases and
    multipliers, SkipInit's alpha), option A's shortcut. Defined on first use, as PyTorch
    is imported only then."""
    import torch
    from torch import nn

    class Block(nn.Module):
        """activation(branch(x) + shortcut(x)), as bnexp.model.residual.Residual."""

        def __init__(self, branch, shortcut, activation):
            super().__init__()
            self.branch, self.shortcut, self.activation = branch, shortcut, activation

        def forward(self, x):
            return self.activation(self.branch(x) + self.shortcut(x))

    class Scalar(nn.Module):
        """x * a (multiply) or x + b, one trainable scalar starting at `init`."""

        def __init__(self, init: float, multiply: bool):
            super().__init__()
            self.value, self.multiply = nn.Parameter(torch.tensor(float(init))), multiply

        def forward(self, x):
            return x * self.value if self.multiply else x + self.value

    class ChannelPad(nn.Module):
        """x[:, :, ::stride, ::stride] with `extra` zero channels after its own."""

        def __init__(self, stride: int, extra: int):
            super().__init__()
            self.stride, self.extra = stride, extra

        def forward(self, x):
            if x.dim() == 4 and self.stride > 1:
                x = x[:, :, ::self.stride, ::self.stride]
            pads = (0, 0, 0, 0, 0, self.extra) if x.dim() == 4 else (0, self.extra)
            return nn.functional.pad(x, pads) if self.extra else x

    return types.SimpleNamespace(Block=Block, Scalar=Scalar, ChannelPad=ChannelPad)


def weight_count(model) -> int:
    """The numbers Keras' count_params counts: the parameters and BN's moving mean and
    variance (PyTorch's running_mean / running_var buffers; num_batches_tracked is not)."""
    stats = sum(b.numel() for name, b in model.named_buffers()
                if name.rsplit(".", 1)[-1] in ("running_mean", "running_var"))
    return sum(p.numel() for p in model.parameters()) + stats


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
          device: str = "cpu", weights: int | None = None) -> float:
    """Median samples/s of epochs 2.. of d2l's eager loop (torch.compile'd if asked), on
    the CPU or the first GPU (device "gpu"); the data is on that device before timing.
    weights: bnexp's model's count_params; a peer of another size is an error."""
    import torch
    from torch import nn

    if threads:
        torch.set_num_threads(threads)
    where = torch.device("cuda" if device == "gpu" else "cpu")
    model = build(cfg, splits.input_shape)
    if weights is not None and weight_count(model) != weights:
        raise ValueError(f"the PyTorch peer of {cfg.name} has {weight_count(model):,} "
                         f"weights, bnexp's model {weights:,}: not the same network")
    model = model.to(where)
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
    """uint8 (N, H, W, C) -> (N, C, H, W); (N, F) stays. A writable copy either way:
    PyTorch warns about tensors on read-only arrays (one channel moves as a view)."""
    return (np.moveaxis(x, -1, 1) if x.ndim == 4 else x).copy(order="C")
