"""One item of benchmarks/gpu_check.sh: images/s of one training or feature setup, as one JSON line.

    python benchmarks/gpu_check.py data DIR                       # a random cifar-10-batches-py under DIR
    python benchmarks/gpu_check.py plain --data-dir DIR [--device cuda] [--seconds 10]
    python benchmarks/gpu_check.py condgan --data-dir DIR [--device cuda] [--seconds 10] [--set K=V ...]
    python benchmarks/gpu_check.py ranks --data-dir DIR --nproc 1 [--device cuda] [--steps 200]
    python benchmarks/gpu_check.py inception [--device cuda] [--n 2000] [--weights FILE]

Every training item uses the AC-GAN paper's CIFAR-10 preset (`acgan-cifar10-paper`: its nets,
batch 100) on a cifar-10-batches-py of 10,000 random images (`data`), so that no download is
needed. `plain` is the single-file reference loop of benchmarks/train_speed.py on the same nets
(per-image DataLoader, two G forwards, default Adam); `condgan` is `condgan.training.loop.train`
timed over a window after a warm-up (benchmarks/train_speed.time_condgan); `ranks` is `condgan
train --nproc N` (torch's elastic launcher; NCCL on CUDA, gloo on CPU) between its first and last
log row; `inception` is the FID Inception-v3 feature pass on uint8 299×299 inputs, with random
weights when no weights file is given (timing only: the features mean nothing then).
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import train_speed  # noqa: E402  (benchmarks/ is not a package)

from condgan.config import PRESET_DIR, resolve_config  # noqa: E402
from condgan.training import loop  # noqa: E402

PRESET = PRESET_DIR / "acgan-cifar10-paper.yaml"
IMAGES = 10_000


def write_random_cifar(root: Path) -> Path:
    """5 training batches of 2,000 random 32×32×3 images (and a test batch) in cifar-10-batches-py layout."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    per = IMAGES // 5
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, per).tolist(), b"batch_label": name.encode()}
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {b"label_names": [f"class{k}".encode() for k in range(10)], b"num_cases_per_batch": per}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return folder


def _config(data_dir: str, device: str, extra: list[str]):
    return resolve_config([PRESET], [f"data.data_dir={data_dir}", f"train.device={device}", *extra])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("item", choices=["data", "plain", "condgan", "ranks", "inception"])
    parser.add_argument("dir", nargs="?", help="data: where to write cifar-10-batches-py")
    parser.add_argument("--data-dir")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=200, help="ranks: training steps")
    parser.add_argument("--nproc", type=int, default=1)
    parser.add_argument("--n", type=int, default=2000, help="inception: images")
    parser.add_argument("--weights", help="inception: FID Inception weights (default: random)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--label", help="the name of the row (default: the item and its --set)")
    args = parser.parse_args()
    label = args.label or " ".join([args.item, *args.set])
    row: dict[str, object] = {"item": label, "device": args.device}
    if args.item == "data":
        print(f"wrote {write_random_cifar(Path(args.dir))}")
        return
    if args.item == "inception":
        row.update(inception_rate(args.device, args.n, args.weights))
    elif args.item == "ranks":
        cfg = _config(args.data_dir, args.device, args.set)
        row["images_per_sec"] = train_speed.time_condgan_ranks(cfg, args.nproc, args.steps)
    else:
        cfg = _config(args.data_dir, args.device, args.set)
        data = loop.load_training_data(cfg).data
        if args.item == "plain":
            rate = train_speed.time_plain(cfg, data, args.seconds, device=args.device)[0]
        else:
            rate = train_speed.time_condgan(cfg, data, args.seconds)[0]
        row["images_per_sec"] = rate
    if torch.cuda.is_available() and torch.device(args.device).type == "cuda":
        row["gpu"] = torch.cuda.get_device_name()
        row["max_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    print(json.dumps(row), flush=True)


def inception_rate(device: str, n: int, weights: str | None) -> dict[str, object]:
    """Images/s of the Inception feature pass on `device` (random weights without `weights`)."""
    from condgan.metrics.features import inception_extractor
    from condgan.metrics.inception import FIDInceptionV3

    if weights:
        run = inception_extractor(weights, device).forward
    else:
        net = FIDInceptionV3().to(device).eval()
        run = net.forward
    x = torch.rand(n, 3, 32, 32, device=device) * 2 - 1  # CIFAR-size samples in [-1, 1]; resized to 299 inside
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    with torch.no_grad():
        run(x[:50])  # warm-up (cuDNN autotuning)
        sync()
        t0 = time.perf_counter()
        for i in range(0, n, 200):
            run(x[i:i + 200])
        sync()
    return {"images_per_sec": n / (time.perf_counter() - t0), "weights": weights or "random"}


if __name__ == "__main__":
    main()
