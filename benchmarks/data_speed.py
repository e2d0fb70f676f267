"""Data at scale: memory of streamed training, loader speed against training speed, uint8 in memory.

Three measurements, in one run on one machine (docs/scale.md gives the figures and the command):

rss     Peak memory of `condgan train` streaming an ImageNet-layout folder (`data.storage=stream`) of
        N1 and N2 JPEG images (default 20,000 and 200,000, 100 classes, sources 1.2–1.6× the 64 px
        training resolution, not square), which this script writes once into `--cache`. /proc is
        sampled every 0.1 s: the training process's own peak (VmHWM) and the peak of the summed
        PSS of the process and its DataLoader workers (PSS splits shared pages, so forked workers
        do not count the parent's memory again). Target: the N2 run within 300 MB of the N1 run
        (memory independent of N). The line each run prints about its storage is shown, and what
        `data.storage=auto` would choose for each size.
loader  Images/s of the streaming loader (`FolderImages` through `--workers` DataLoader workers:
        decode, center crop, bicubic resize) and of a pack (`condgan data pack`, memory-mapped), at
        64 and 128 px, against the images/s the training loop consumes with its batch already in
        memory (`--threads` torch threads; default nets: DCGAN at 64 px, the AC-GAN paper's
        ImageNet nets at 128 px; batch 64). Each is measured alone, so on a machine with
        --threads + --workers cores they do not compete. Target: loader ≥ 2× consumption.
uint8   condgan's loop on Fashion-MNIST with the set in memory as uint8 (indexed, then converted to
        float per batch) against the same loop with the set stored as float32 (the path before
        uint8 storage; LabelledData still accepts float images), windows alternating, the median
        of `--repeats`; plus the cost of the per-batch conversion alone, and both sets' bytes.

    python benchmarks/data_speed.py [--sizes 20000,200000] [--cache DIR] [--threads 2] [--workers 2]

Smoke test (a few minutes on a CPU, most of it two 128 px steps): --sizes 300,3000 --rss-steps 5
--speed-images 256 --speed-batches 3 --speed-steps 1 --fm-steps 20 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from condgan.config import Config, resolve_config
from condgan.data import LabelledData
from condgan.data.base import uint8_to_unit
from condgan.data.folder import scan_folder
from condgan.data.packed import open_pack, pack_folder
from condgan.data.sampler import EpochSampler
from condgan.data.storage import TrainingData, choose_storage
from condgan.training import loop

CLASSES = 100
WARMUP = 1  # steps or batches before a timed window


class _Stop(Exception):
    """Raised by the timing monitor to end a training run when its window is over."""


# ---------------------------------------------------------------- the folders


def _write_images(job: tuple[str, int, int, int]) -> None:
    root, start, stop, resolution = job
    for i in range(start, stop):
        rng = np.random.default_rng(i)
        k = i % CLASSES
        w, h = (rng.uniform(1.2, 1.6, 2) * resolution).astype(int)
        coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        coarse[..., k % 3] = 40 + 2 * k  # a colour cast per class
        image = Image.fromarray(coarse).resize((w, h), Image.Resampling.BILINEAR)
        noise = rng.integers(-12, 13, (h, w, 3))
        pixels = np.clip(np.asarray(image, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(Path(root) / f"n{k:04d}" / f"{i:07d}.jpg", quality=90)


def make_folder(root: Path, n: int, resolution: int, workers: int) -> Path:
    """An ImageNet-layout folder of `n` JPEGs (reused when `root` already holds it)."""
    done = root / ".complete"
    if done.is_file() and done.read_text() == str(n):
        return root
    for k in range(CLASSES):
        (root / f"n{k:04d}").mkdir(parents=True, exist_ok=True)
    chunk = 2000
    jobs = [(str(root), s, min(s + chunk, n), resolution) for s in range(0, n, chunk)]
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(max(1, workers)) as pool:
        pool.map(_write_images, jobs)
    done.write_text(str(n))
    print(f"wrote {n} images to {root} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return root


# ---------------------------------------------------------------- rss


def _proc_tree(pid: int) -> list[int]:
    """`pid` and its descendants, from /proc/*/stat."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [p for p, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def _kib(path: str, key: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def train_rss(root: Path, args: argparse.Namespace, storage: str) -> dict:
    """Run `condgan train` on `root` as a child process; peak memory in MB and its data line."""
    with tempfile.TemporaryDirectory() as tmp:
        steps = args.rss_steps
        cmd = [sys.executable, "-m", "condgan.cli", "train", "--data", "folder", "--data-dir", str(root),
               "--out", str(Path(tmp) / "run"), "--steps", str(steps), "--batch-size", "64", "--no-progress",
               "--set", f"data.resolution={args.resolution}", "--set", f"data.storage={storage}",
               "--set", f"data.num_workers={args.workers}", "--set", f"train.threads={args.threads}",
               "--set", "model.g_channels=16", "--set", "model.d_channels=16", "--set", f"train.ckpt_every={steps}",
               "--set", f"train.grid_every={steps}", "--set", f"train.log_every={steps}"]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        hwm = pss = 0
        while proc.poll() is None:
            tree = _proc_tree(proc.pid)
            hwm = max(hwm, _kib(f"/proc/{proc.pid}/status", "VmHWM:"))
            pss = max(pss, sum(_kib(f"/proc/{p}/smaps_rollup", "Pss:") for p in tree))
            time.sleep(0.1)
        out, err = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"condgan train failed ({proc.returncode}): {err[-2000:]}")
    line = next((l for l in err.splitlines() if l.startswith("condgan: data:")), "")
    return {"main_peak_mb": hwm / 1024, "tree_peak_pss_mb": pss / 1024, "seconds": time.perf_counter() - t0,
            "data_line": line}


# ---------------------------------------------------------------- loader against training


def loader_rate(items, batches: int, batch: int, workers: int) -> float:
    """Images/s of `items` read through `workers` DataLoader workers in training order (after WARMUP batches)."""
    sampler = EpochSampler(len(items), batch, seed=0)
    order = [sampler.indices(t).tolist() for t in range(WARMUP + batches)]
    t0 = None
    for i, _ in enumerate(items.batches(order, workers)):
        if i == WARMUP - 1:
            t0 = time.perf_counter()
    return batches * batch / (time.perf_counter() - t0)


def loop_rate(cfg: Config, data: TrainingData, steps: int) -> float:
    """Images/s `condgan.training.loop.train` consumes on `data` over `steps` steps after WARMUP."""
    marks: dict[str, float] = {}

    def monitor(method: torch.nn.Module, step: int) -> dict[str, float]:
        if step == WARMUP:
            marks["t0"] = time.perf_counter()
        elif step == WARMUP + steps:
            marks["t1"] = time.perf_counter()
            raise _Stop
        return {}

    cfg = resolve_config(base=cfg.to_dict(), overrides=["train.steps=100000000", "train.grid_every=100000000",
                                                         "train.ckpt_every=100000000", "train.log_every=50"])
    original = loop.load_training_data
    loop.load_training_data = lambda _cfg: data
    try:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                loop.train(cfg, Path(tmp) / "run", progress=False, monitors=[(1, monitor)])
            except _Stop:
                pass
    finally:
        loop.load_training_data = original
    return steps * cfg.train.batch_size / (marks["t1"] - marks["t0"])


def loader_vs_training(cache: Path, args: argparse.Namespace) -> list[dict]:
    rows = []
    for r in args.speed_resolutions:
        print(f"loader: {r} px", file=sys.stderr, flush=True)
        root = make_folder(cache / f"speed-{r}px-{args.speed_images}", args.speed_images, r, args.workers)
        items = scan_folder(root, r, 3, num_workers=args.workers)
        folder = loader_rate(items, args.speed_batches, 64, args.workers)
        pack_dir = cache / f"speed-{r}px-{args.speed_images}.pack"
        packing = None  # images/s of `condgan data pack`, when the pack is written in this run
        if not (pack_dir / "index.json").is_file():
            t0 = time.perf_counter()
            pack_folder(root, pack_dir, r, 3, num_workers=args.workers, progress=False)
            packing = args.speed_images / (time.perf_counter() - t0)
        packed = loader_rate(open_pack(pack_dir), args.speed_batches, 64, args.workers)
        arch = "dcgan" if r <= 64 else "acgan_imagenet"
        cfg = resolve_config(overrides=[f"model.arch={arch}", "data.name=folder", f"data.resolution={r}",
                                        "data.channels=3", f"train.threads={args.threads}", "train.batch_size=64"])
        g = torch.Generator().manual_seed(0)
        fake = LabelledData(torch.randint(0, 256, (512, 3, r, r), dtype=torch.uint8, generator=g),
                            torch.randint(0, CLASSES, (512,), generator=g), tuple(f"n{k:04d}" for k in range(CLASSES)),
                            "random")
        consumed = loop_rate(cfg, TrainingData(fake, "memory", "random uint8 images"), args.speed_steps)
        rows.append({"resolution": r, "arch": arch, "folder_loader_img_s": folder, "pack_loader_img_s": packed,
                     "pack_write_img_s": packing, "training_img_s": consumed,
                     "folder_over_training": folder / consumed, "pack_over_training": packed / consumed})
    return rows


# ---------------------------------------------------------------- uint8 against float


def uint8_vs_float(args: argparse.Namespace) -> dict:
    cfg = resolve_config(overrides=["data.name=fashion-mnist", f"train.threads={args.threads}"])
    as_uint8 = loop.load_training_data(cfg)
    d = as_uint8.data
    as_float = TrainingData(LabelledData(d.x(), d.y, d.class_names, d.name), "memory", "float32 (the old path)")
    rates: dict[str, list[float]] = {"uint8": [], "float32": []}
    print("uint8: Fashion-MNIST windows", file=sys.stderr, flush=True)
    for _ in range(args.repeats):
        rates["uint8"].append(loop_rate(cfg, as_uint8, args.fm_steps))
        rates["float32"].append(loop_rate(cfg, as_float, args.fm_steps))
    torch.set_num_threads(args.threads)
    idx = torch.randint(0, len(d), (64,), generator=torch.Generator().manual_seed(0))
    stored_u8, stored_f = d.stored, as_float.data.stored
    per_batch = {}
    for name, fn in (("uint8_index_and_convert", lambda: uint8_to_unit(stored_u8[idx])),
                     ("float32_index", lambda: stored_f[idx])):
        fn()
        rounds = []  # the fastest of 5 rounds: other jobs on the machine only ever slow a round down
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(200):
                fn()
            rounds.append((time.perf_counter() - t0) / 200 * 1e6)
        per_batch[name] = min(rounds)
    u8, f32 = statistics.median(rates["uint8"]), statistics.median(rates["float32"])
    return {"uint8_img_s": u8, "float32_img_s": f32, "ratio_uint8_over_float32": u8 / f32,
            "windows": rates, "per_batch_us": per_batch, "step_us_uint8": 64 / u8 * 1e6,
            "uint8_mb": d.nbytes / 2**20, "float32_mb": as_float.data.nbytes / 2**20}


# ---------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="20000,200000", help="the two folder sizes of the rss measurement")
    p.add_argument("--resolution", type=int, default=64, help="training resolution of the rss runs")
    p.add_argument("--rss-steps", type=int, default=100, help="training steps of each rss run")
    p.add_argument("--speed-resolutions", default="64,128")
    p.add_argument("--speed-images", type=int, default=4000, help="images of each loader-speed folder")
    p.add_argument("--speed-batches", type=int, default=40, help="batches of 64 timed per loader")
    p.add_argument("--speed-steps", type=int, default=3, help="training steps timed per resolution (128 px on "
                   "a CPU: about a minute each)")
    p.add_argument("--fm-steps", type=int, default=300, help="Fashion-MNIST steps per timed window")
    p.add_argument("--repeats", type=int, default=3, help="alternating Fashion-MNIST windows per storage")
    p.add_argument("--threads", type=int, default=2, help="torch threads of the training process")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers (and image writers)")
    p.add_argument("--cache", help="where the generated folders are kept and reused (default: a temporary folder)")
    p.add_argument("--only", help="comma-separated subset of: rss, loader, uint8")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args()
    args.speed_resolutions = [int(r) for r in args.speed_resolutions.split(",")]
    parts = set((args.only or "rss,loader,uint8").split(","))
    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = None if args.cache else tempfile.TemporaryDirectory()
    cache = Path(args.cache or tmp.name)
    results: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
                                f"{torch.__version__}", "args": vars(args)}
    try:
        if "rss" in parts:
            results["rss"] = []
            for n in sizes:
                root = make_folder(cache / f"rss-{n}", n, args.resolution, args.workers)
                print(f"rss: training on {n} images, streamed", file=sys.stderr, flush=True)
                row = {"images": n, **train_rss(root, args, "stream")}
                storage, reason = choose_storage("auto", n * args.resolution ** 2 * 3)
                row["auto"] = f"{storage} ({reason})"
                results["rss"].append(row)
            a, b = results["rss"][0], results["rss"][-1]
            results["rss_difference_mb"] = {"main": b["main_peak_mb"] - a["main_peak_mb"],
                                            "tree_pss": b["tree_peak_pss_mb"] - a["tree_peak_pss_mb"]}
        if "loader" in parts:
            results["loader"] = loader_vs_training(cache, args)
        if "uint8" in parts:
            results["uint8"] = uint8_vs_float(args)
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def report(r: dict) -> str:
    lines = [f"machine: {r['machine']}; threads {r['args']['threads']}, workers {r['args']['workers']}"]
    if "rss" in r:
        lines += ["", "| images | main process peak (MB) | process + workers, peak PSS (MB) | wall (s) |",
                  "|---:|---:|---:|---:|"]
        lines += [f"| {x['images']} | {x['main_peak_mb']:.0f} | {x['tree_peak_pss_mb']:.0f} | {x['seconds']:.0f} |"
                  for x in r["rss"]]
        d = r["rss_difference_mb"]
        lines += [f"difference: {d['main']:+.0f} MB main, {d['tree_pss']:+.0f} MB with workers (target ≤ 300)"]
        lines += [f"  {x['images']}: {x['data_line']}" for x in r["rss"]]
        lines += [f"  {x['images']}: data.storage=auto would choose {x['auto']}" for x in r["rss"]]
    if "loader" in r:
        lines += ["", "| px | nets | folder loader img/s | pack loader img/s | training img/s | folder / training "
                  "| pack / training |", "|---:|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {x['resolution']} | {x['arch']} | {x['folder_loader_img_s']:.0f} | {x['pack_loader_img_s']:.0f} "
                  f"| {x['training_img_s']:.1f} | {x['folder_over_training']:.1f}× | {x['pack_over_training']:.1f}× |"
                  for x in r["loader"]]
    if "uint8" in r:
        u = r["uint8"]
        lines += ["", f"Fashion-MNIST loop: uint8 {u['uint8_img_s']:.0f} img/s, float32 {u['float32_img_s']:.0f} img/s, "
                  f"ratio {u['ratio_uint8_over_float32']:.3f} (median of {len(u['windows']['uint8'])} windows each); "
                  f"per batch of 64: index + convert {u['per_batch_us']['uint8_index_and_convert']:.0f} µs, float "
                  f"index {u['per_batch_us']['float32_index']:.0f} µs, of a {u['step_us_uint8']:.0f} µs step; "
                  f"set in memory {u['uint8_mb']:.0f} MB as uint8, {u['float32_mb']:.0f} MB as float32"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
