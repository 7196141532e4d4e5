"""One of several processes that train the same sweep into the same runs folder at the
same moment, round after round: run by tests/test_claims.py. argv: the folder of the
rounds, this process's name, the other processes' names, the number of rounds.

Before each round every process says it is ready and waits for the others, so their
plans are made within milliseconds of each other: without claims, both planned every
run as missing and both trained it."""

import sys
import time
from pathlib import Path

import bnexp

CONFIG = {"name": "claim", "data": {"dataset": "synthetic", "batch_size": 100,
                                    "validation_size": 200, "limit": 200, "test_limit": 100},
          "model": {"arch": "mlp", "hidden": [16]},
          "train": {"epochs": 1, "jit_compile": False},
          "sweep": {"seeds": [0, 1]}}



def main(folder: Path, me: str, others: list[str], rounds: int) -> None:
    for k in range(rounds):
        (folder / f"ready-{k}-{me}").touch()
        deadline = time.monotonic() + 120
        while not all((folder / f"ready-{k}-{other}").exists() for other in others):
            assert time.monotonic() < deadline, f"round {k}: the other processes never came"
            time.sleep(0.001)
        bnexp.train(CONFIG, runs_dir=folder / f"round{k}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3].split(","), int(sys.argv[4]))
