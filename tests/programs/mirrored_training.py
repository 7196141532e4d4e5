"""An epoch on 2 logical CPU replicas ends with the weights of one device: run by
tests/test_replicas.py in its own process; argv[1] is the runs folder."""

import sys
from pathlib import Path

import numpy as np

from bnexp import config, data
from bnexp.reporter import NullReporter
from bnexp.training import distribute, lifecycle

distribute.prepare_devices(2)


def weights(bn, **train_keys):
    raw = {"name": "r", "data": {"dataset": "synthetic", "batch_size": 50,
                                 "validation_size": 200},
           "model": {"arch": "lenet", "bn": bn},
           "optimizer": {"learning_rate": 0.5, "momentum": 0.9},
           "train": {"epochs": 1, "jit_compile": False, **train_keys}}
    cfg = config.validate(raw, "t")
    outcome = lifecycle.run_one(config.RunSpec(cfg), data.load(cfg.data), Path(sys.argv[1]),
                                NullReporter())
    assert outcome.status == "completed", (outcome.path / "train.log").read_text()
    with np.load(outcome.path / "checkpoint.npz") as f:
        return [f[k] for k in sorted(f.files) if k.startswith("model/")]


mirrored = {"strategy": "mirrored", "replicas": 2}
cases = {
    "scratch synchronized": (weights({"impl": "scratch", "synchronized": True}, **mirrored),
                             weights({"impl": "scratch"})),
    "keras synchronized": (weights({"impl": "keras", "synchronized": True}, **mirrored),
                           weights({"impl": "keras"})),
    "scratch per replica = ghost": (weights({"impl": "scratch"}, **mirrored),
                                    weights({"impl": "scratch", "virtual_batch_size": 25})),
}
for name, (a, b) in cases.items():
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=2e-3, atol=2e-4, err_msg=name)
    print("ok", name)
ghost, plain = cases["scratch per replica = ghost"][0], cases["scratch synchronized"][1]
assert max(np.abs(x - y).max() for x, y in zip(ghost, plain, strict=True)) > 1e-2  # differs
print("ok differs")
