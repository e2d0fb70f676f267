"""Issue-5 benchmark: every method on Fashion-MNIST at one equal short CPU budget, judged by the suite.

Trains each method with its preset (gan: `acgan-fashion-mnist-paper` with `method.name=gan`, as there is
no gan Fashion-MNIST preset) for the same --steps at batch 64, draws --n samples, and runs
`condgan.evaluation.suite.evaluate` with metrics accuracy, fid and diversity against the test set. Prints
one Markdown table and writes a grid per method to <img>/compare-<method>.png.

Labels used per method (the suite needs one per sample):
  acgan, cgan, cclapgan, tacgan, adcgan, reacgan
                         the class each sample was conditioned on (judge accuracy is reported);
  selfcond               conditioned on k-means cluster ids, not classes: accuracy "—"; its
                         diversity groups samples by the judge's predicted class;
  gan, lapgan            unconditional: accuracy "—"; diversity groups by the judge's predicted class.

These are short equal-budget runs, not converged models.

    python benchmarks/compare_methods.py --steps 400 --n 2000 --pairs 50 --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from condgan.config import preset_or_path
from condgan.config import resolve_config
from condgan.data import load_dataset
from condgan.data.base import images_to_unit_range, to_uint8_nhwc
from condgan.evaluation.suite import EvalOptions, evaluate
from condgan.metrics.classifier import default_judge_path, load_judge
from condgan.metrics.features import judge_extractor
from condgan.report.grid import save_png, tile
from condgan.sampling import class_grid, generate, load_run
from condgan.training.loop import train

METHODS = {  # method → (preset, extra overrides)
    "gan": ("acgan-fashion-mnist-paper", ["method.name=gan"]),
    "cgan": ("cgan-fashion-mnist", []),
    "acgan": ("acgan-fashion-mnist-paper", []),
    "lapgan": ("lapgan-fashion-mnist", []),
    "cclapgan": ("cclapgan-fashion-mnist", []),
    "selfcond": ("selfcond-fashion-mnist", []),
    "tacgan": ("tacgan-fashion-mnist", []),
    "adcgan": ("adcgan-fashion-mnist", []),
    "reacgan": ("reacgan-fashion-mnist", []),
}
CLASS_LABELLED = {"cgan", "acgan", "cclapgan", "tacgan", "adcgan", "reacgan"}


def fmt(v, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def run_method(name: str, args, real, judge) -> dict:
    preset, extra = METHODS[name]
    overrides = extra + [f"train.steps={args.steps}", "train.batch_size=64", f"train.threads={args.threads}",
                         f"train.grid_every={args.steps}", f"train.ckpt_every={args.steps}"]
    cfg = resolve_config([preset_or_path(preset)], overrides)
    run_dir = Path(args.out) / name
    t0 = time.perf_counter()
    result = train(cfg, run_dir, force=True, progress=False)
    train_s = time.perf_counter() - t0

    loaded = load_run(run_dir)
    method = loaded.method
    with torch.no_grad():
        t0 = time.perf_counter()
        x, y = generate(method, args.n, seed=args.seed)
        gen_s = time.perf_counter() - t0
    # Round through uint8 as `condgan eval --run` does.
    gen_x = images_to_unit_range(to_uint8_nhwc(x))
    if name in CLASS_LABELLED:
        gen_y = y.numpy().astype(np.int64)
        metrics = ["accuracy", "fid", "diversity"]
        label_note = "conditioned class"
    else:
        logits = judge_extractor(judge).extract(gen_x, desc="labels", progress=False)[1]
        gen_y = np.asarray(logits).argmax(axis=1).astype(np.int64)
        metrics = ["fid", "diversity"]
        label_note = "judge-predicted class" + (" (conditioned on cluster ids)" if name == "selfcond" else "")
    counts = np.bincount(gen_y, minlength=real.num_classes)
    need = int(np.ceil((1 + np.sqrt(1 + 8 * args.pairs)) / 2))
    diversity_note = None
    if counts.min() < need:
        metrics.remove("diversity")
        diversity_note = f"class {int(counts.argmin())} has {int(counts.min())} samples (< {need})"
    ev = evaluate(gen_x, gen_y, real, judge=judge, metrics=metrics,
                  options=EvalOptions(pairs=args.pairs, seed=args.seed, progress=False))
    m = ev["metrics"]

    # Grid: fixed z per row; columns are the classes (cluster ids for selfcond), or plain samples.
    g = torch.Generator().manual_seed(args.seed)
    if method.conditional:
        canvas = class_grid(method, method.latent(8, generator=g), list(range(method.num_classes)))
    else:
        canvas = tile(generate(method, 80, seed=args.seed, uint8=True)[0], 8, 10)
    png = save_png(canvas, Path(args.img) / f"compare-{name}.png")
    return {
        "method": name, "steps": result.steps, "train_s": train_s, "train_images_per_sec": result.images_per_sec,
        "accuracy": m.get("accuracy"), "real_accuracy": m.get("real_accuracy"), "fid": m.get("fid"),
        "msssim_gen": m.get("msssim_gen_mean"), "msssim_real": m.get("msssim_real_mean"),
        "samples_per_sec": args.n / gen_s, "extractors": ev["extractors"], "labels": label_note,
        "diversity_note": diversity_note, "grid": str(png), "counts": counts.tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--n", type=int, default=2000, help="samples evaluated per method")
    parser.add_argument("--pairs", type=int, default=50, help="MS-SSIM pairs per class (diversity)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/compare-methods")
    parser.add_argument("--img", default="docs/img")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    real = load_dataset("fashion-mnist", "test")
    judge = load_judge(default_judge_path(real.name, real.sample_shape))
    rows = []
    t_all = time.perf_counter()
    for name in args.methods.split(","):
        row = run_method(name, args, real, judge)
        rows.append(row)
        print(json.dumps(row), flush=True)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        Path(args.out, "results.json").write_text(json.dumps(rows, indent=1))
    wall = time.perf_counter() - t_all

    ext = next((r["extractors"] for r in rows if "diversity" in r["extractors"]), {})
    print(f"\nShort equal-budget runs, not converged models: {args.steps} steps at batch 64, "
          f"{args.threads} CPU threads, {args.n} samples per method, {args.pairs} MS-SSIM pairs per class "
          f"(the default AC-GAN at full length, docs/acgan.md: 86.9% judge accuracy). Total wall {wall / 60:.1f} min. "
          f"Diversity extractor: {ext.get('diversity', 'pixels MS-SSIM')}.\n")
    print("| method | steps | train wall s | judge acc. on samples | FID (judge features) | "
          "MS-SSIM within class, samples / real | samples/s | labels for diversity | extractor (acc., FID) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        div = (f"{r['msssim_gen']:.3f} / {r['msssim_real']:.3f}" if r["msssim_gen"] is not None
               else f"— ({r['diversity_note']})")
        exts = r["extractors"]["fid"]
        print(f"| {r['method']} | {r['steps']} | {r['train_s']:.0f} | {fmt(r['accuracy'], '.3f')} | "
              f"{fmt(r['fid'], '.2f')} | {div} | {r['samples_per_sec']:.0f} | {r['labels']} | {exts} |")
    acc_real = next((r["real_accuracy"] for r in rows if r["real_accuracy"] is not None), None)
    if acc_real is not None:
        print(f"\nJudge accuracy on the real test set: {acc_real:.3f}.")
    print(f"\ncommand: python {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
