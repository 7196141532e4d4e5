"""Peak memory of a real run against the dataset's float32 size.

    python benchmarks/memory.py [CONFIG] [--set KEY=VALUE ...]

Runs `bnexp train CONFIG` (default: d2l BN-LeNet on the full Fashion-MNIST, one epoch)
and reads the run's peak resident memory from summary.json. The reference, measured
in the same go: the same command on a 1,000-example subset (TensorFlow, the model and
the compiled steps, but next to no data). The difference is what the data costs;
the target is at most the dataset in float32 (N x 28 x 28 x 4 bytes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def peak(config: str, sets: list[str]) -> tuple[float, dict]:
    exe = str(Path(sys.executable).with_name("bnexp"))
    with tempfile.TemporaryDirectory() as runs_dir:
        cmd = [exe, "train", config, "--runs-dir", runs_dir]
        for item in sets:
            cmd += ["--set", item]
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
        summary = json.loads((Path(out.stdout.strip()) / "summary.json").read_text())
    return summary["peak_rss_mb"], summary["data"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="configs/d2l_lenet_bn.yaml")
    parser.add_argument("--set", dest="sets", action="append", default=["train.epochs=1"])
    args = parser.parse_args()
    full, sizes = peak(args.config, args.sets)
    small, _ = peak(args.config, args.sets + ["data.limit=1000", "data.test_limit=1000",
                                              "data.validation_size=0"])
    examples = sizes["train"] + sizes["validation"] + sizes["test"]
    float32_mb = examples * 28 * 28 * 4 / 2**20
    print(f"examples in memory: {examples:,} (train {sizes['train']:,}, validation "
          f"{sizes['validation']:,}, test {sizes['test']:,})")
    print(f"peak RSS, full run:          {full:8.1f} MiB")
    print(f"peak RSS, 1,000-example run: {small:8.1f} MiB  (TensorFlow, model, steps)")
    print(f"what the data costs:         {full - small:8.1f} MiB")
    print(f"dataset as float32:          {float32_mb:8.1f} MiB")
    print(f"ratio data cost / float32:   {(full - small) / float32_mb:8.2f}")
    print("\npeak_full_mb,peak_small_mb,data_cost_mb,float32_dataset_mb,ratio")
    print(f"{full:.1f},{small:.1f},{full - small:.1f},{float32_mb:.1f},"
          f"{(full - small) / float32_mb:.3f}")


if __name__ == "__main__":
    main()
