"""`condgan bench modes`: the mode-collapse table of the Self-Conditioned GAN paper (Liu et al. 2020, Table 1).

Every (method, dataset, trial) is one training run (`condgan.training.loop.train`, seed = trial) in
OUT/runs/DATASET/METHOD/trial-T, evaluated on `num_eval` samples (official metrics.py: 50,000)
whose conditioning classes come from the method's own `sample_classes` (uniform classes for the
supervised methods, cluster sizes for Self-Cond GAN, as the official 2D script conditions G on the
cluster labels of real test points). Samples are kept in the interchange format (samples.npz:
`points` N×2 for 2D data, `images` for stacked data, `labels` when conditional).

Resumable: a finished trial writes OUT/results/DATASET-METHOD-T.json atomically and is skipped on
a rerun (after checking its config is the one asked for); a trial cut short resumes from its run's
newest checkpoint (`train(resume=True)`).

Training setup per dataset follows the official code (stevliu/self-conditioned-gan), scaled to
the `steps` budget: 2D (2d_mix/train.py, config.py): z_dim 2, batch 100, Adam lr 1e-4, β = (0.8,
0.999), 100,000 training points, non-saturating G loss ("standard"), Self-Cond GAN k = 50 with
re-clustering 20 times per run (official: every 5000 of 100,000 iterations); stacked
(configs/stacked_mnist): z_dim 128, batch 64, k = 100. 2D nets: the official ones
(`model.arch=mlp_selfcond`: G 4 × 400 ReLU+BN with a unit-length 32-d class embedding, D 3 × 200
maxout with 5 pieces). One deviation: the learning rate decays linearly to 0 over the run
(`optim.lr_schedule=linear`), because the budgets affordable on a CPU are a fraction of the
official 100,000 constant-rate steps; at 10,000 steps on the ring it lifted Self-Cond GAN's % HQ
from 89% (constant rate) to 100% (docs/mode-collapse.md).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from condgan.config import Config, resolve_config
from condgan.data.toy2d import TOYS
from condgan.errors import ConfigError, RunDirError
from condgan.methods import METHODS
from condgan.metrics.modes import NUM_EVAL_SAMPLES, classify_stacked, mode_metrics, stacked_metrics
from condgan.report.grid import save_scatter
from condgan.samples import write_samples
from condgan.sampling import Classes, draw_samples, load_run
from condgan.io import atomic_write
from condgan.training.loop import train
from condgan.run.directory import CONFIG_FILE

DATASETS_2D = ("ring", "grid")
DATASETS_STACKED = ("stacked-fashion-mnist", "stacked-mnist")
DATASETS = DATASETS_2D + DATASETS_STACKED
ALIASES = {"stacked": "stacked-fashion-mnist"}  # Fashion-MNIST is the MNIST-like set on disk here
DEFAULT_STEPS = 10_000

# Table columns per dataset kind: (metric key, header, format).
COLUMNS_2D = (("modes", "modes", "{:.1f}"), ("hq_percent", "% HQ", "{:.1f}"), ("reverse_kl", "rev. KL", "{:.4f}"))
COLUMNS_STACKED = (("modes", "modes", "{:.1f}"), ("reverse_kl", "rev. KL", "{:.4f}"))


def parse_names(text: str, valid: Sequence[str], what: str, aliases: dict[str, str] | None = None) -> list[str]:
    """Comma-separated names, each in `valid` (or an alias of one); unknown names are refused with the list."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--{what}: expected a comma-separated list of {', '.join(valid)}, found {text!r}")
    out = []
    for name in names:
        name = (aliases or {}).get(name, name)
        if name not in valid:
            raise ConfigError(f"--{what}: unknown name {name!r}; expected one of: {', '.join(valid)}")
        if name not in out:
            out.append(name)
    return out


def trial_config(method: str, dataset: str, trial: int, steps: int, overrides: Sequence[str] = ()) -> Config:
    """The config of one trial: the dataset's official-code setup, `steps`, seed = `trial`, then `overrides`."""
    base: dict[str, Any] = {
        "data": {"name": dataset},
        "method": {"name": method, "g_source_loss": "non_saturating"},
        "train": {"steps": steps, "seed": trial, "log_every": min(100, steps), "grid_every": steps,
                  "ckpt_every": max(1, steps // 5), "keep_ckpts": 1},
    }
    if dataset in DATASETS_2D:
        base["model"] = {"z_dim": 2, "arch": "mlp_selfcond"}
        # Linear decay to 0 stands in for the official 100,000 steps at a constant rate (see the docstring).
        base["optim"] = {"g_lr": 1e-4, "d_lr": 1e-4, "beta1": 0.8, "beta2": 0.999, "lr_schedule": "linear"}
        base["train"]["batch_size"] = 100
        clusters = dict(num_clusters=50, recluster_every=max(1, steps // 20), cluster_fit_size=10_000)
    else:
        base["model"] = {"z_dim": 128}
        base["train"]["batch_size"] = 64
        clusters = dict(num_clusters=100, recluster_every=max(1, steps // 10), cluster_fit_size=10_000)
    if method == "selfcond":  # other methods do not read these keys
        base["method"].update(clusters)
    return resolve_config(base=base, overrides=list(overrides))


def evaluate_2d(points: np.ndarray, dataset: str) -> dict[str, float]:
    """Table metrics with the Euclidean 3σ rule, plus the official square rule's under `*_linf`."""
    means, std = TOYS[dataset]()
    l2 = mode_metrics(points, means.numpy(), std, rule="l2")
    linf = mode_metrics(points, means.numpy(), std, rule="linf")
    return {**l2, "modes_linf": linf["modes"], "hq_percent_linf": linf["hq_percent"]}


@dataclass(frozen=True)
class Trial:
    method: str
    dataset: str
    index: int

    @property
    def key(self) -> str:
        return f"{self.dataset}-{self.method}-{self.index}"


def run_trial(trial: Trial, cfg: Config, out: Path, num_eval: int, classify: Callable[[torch.Tensor], torch.Tensor] | None,
              extractor: str, progress: bool) -> dict[str, Any]:
    """Train (or resume) one trial, sample, score; returns the result row (also written atomically)."""
    run_dir = out / "runs" / trial.dataset / trial.method / f"trial-{trial.index}"
    t0 = time.perf_counter()
    train(cfg, run_dir, resume=(run_dir / CONFIG_FILE).exists(), progress=progress)
    run = load_run(run_dir)
    samples = draw_samples(run.method, num_eval, Classes.prior(), seed=trial.index)
    write_samples(run_dir / "samples.npz", samples)
    x, labels = samples.data, samples.labels
    if trial.dataset in DATASETS_2D:
        metrics = evaluate_2d(x, trial.dataset)
        means = TOYS[trial.dataset]()[0].numpy()
        shown = slice(0, min(len(x), 5000))
        save_scatter(x[shown], labels[shown] if labels is not None else None,
                     out / "plots" / f"{trial.key}.png", modes=means,
                     title=f"{trial.method} on {trial.dataset}, trial {trial.index}: {metrics['modes']:.0f} modes, "
                           f"{metrics['hq_percent']:.1f}% HQ")
    else:
        assert classify is not None  # run_bench loads the judge for stacked datasets
        metrics = stacked_metrics(classify_stacked(samples.float_images(), classify))
    row = {"method": trial.method, "dataset": trial.dataset, "trial": trial.index, "steps": cfg.train.steps,
           "num_eval": num_eval, "extractor": extractor, "seconds": time.perf_counter() - t0,
           "metrics": metrics, "config": cfg.to_dict()}
    path = out / "results" / f"{trial.key}.json"
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(row, indent=1)))
    return row


def load_finished(path: Path, cfg: Config, num_eval: int) -> dict[str, Any] | None:
    """The saved result of a finished trial, or None; a result made with another setup is refused."""
    if not path.exists():
        return None
    try:
        row = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunDirError(f"result {path}: unreadable ({exc}); delete it to rerun the trial") from None
    if row.get("config") != cfg.to_dict() or row.get("num_eval") != num_eval:
        raise RunDirError(f"result {path}: made with another config or sample count than this command's; "
                          "use another --out or delete the trial's result and run directory")
    return row


def _stacked_classifier(dataset: str, judge_path: str | Path | None) -> tuple[Callable[[torch.Tensor], torch.Tensor], str]:
    from condgan.metrics.classifier import default_judge_path, load_judge

    base = dataset.removeprefix("stacked-")
    path = Path(judge_path) if judge_path else default_judge_path(base, (1, 28, 28))
    judge = load_judge(path)
    if judge.dataset != base or tuple(judge.sample_shape) != (1, 28, 28):
        raise ConfigError(f"judge {path}: expected one trained on {base} 1×28×28, found {judge.dataset} "
                          f"{'×'.join(map(str, judge.sample_shape))}")
    return (lambda x: judge.run(x)[1]), judge.id


def summarize(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, tuple[float, float]]]:
    """(method, dataset) → metric → (mean, std over trials; sample std, 0 for one trial)."""
    groups: dict[tuple[str, str], list[dict[str, float]]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["dataset"]), []).append(row["metrics"])
    out = {}
    for key, metrics in groups.items():
        values = {name: np.array([m[name] for m in metrics], dtype=np.float64) for name in metrics[0]}
        out[key] = {name: (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0) for name, v in values.items()}
    return out


def format_table(summary: dict, methods: list[str], datasets: list[str], markdown: bool) -> str:
    """Rows: methods; per dataset its columns (modes, % HQ, reverse KL), cells "mean ± std"."""
    header, cells = ["method"], {m: [m] for m in methods}
    for dataset in datasets:
        columns = COLUMNS_2D if dataset in DATASETS_2D else COLUMNS_STACKED
        for key, title, fmt in columns:
            header.append(f"{dataset} {title}")
            for m in methods:
                stat = summary.get((m, dataset), {}).get(key)
                cells[m].append("–" if stat is None or math.isnan(stat[0]) else
                                f"{fmt.format(stat[0])} ± {fmt.format(stat[1])}")
    rows = [header] + [cells[m] for m in methods]
    if markdown:
        lines = ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join([lines[0], "|" + "---|" * len(header)] + lines[1:])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


def _write_outputs(out: Path, rows: list[dict[str, Any]], methods: list[str], datasets: list[str]) -> str:
    summary = summarize(rows)
    buf = io.StringIO()
    keys = sorted({k for r in rows for k in r["metrics"]})
    writer = csv.writer(buf)
    writer.writerow(["method", "dataset", "trial", "steps", "num_eval", "extractor", *keys])
    for r in rows:
        writer.writerow([r["method"], r["dataset"], r["trial"], r["steps"], r["num_eval"], r["extractor"],
                         *[r["metrics"].get(k, "") for k in keys]])
    atomic_write(out / "results.csv", lambda tmp: tmp.write_text(buf.getvalue()))
    table = format_table(summary, methods, datasets, markdown=True)
    atomic_write(out / "table.md", lambda tmp: tmp.write_text(table + "\n"))
    return format_table(summary, methods, datasets, markdown=False)


def run_bench(methods: Sequence[str], datasets: Sequence[str], trials: int, out: str | Path, *,
              steps: int | None = None, num_eval: int = NUM_EVAL_SAMPLES, overrides: Sequence[str] = (),
              judge: str | Path | None = None, progress: bool = True) -> tuple[list[dict[str, Any]], str]:
    """Train and score every (method, dataset, trial); returns (result rows, the printed table).

    Writes OUT/results.csv (one row per trial), OUT/table.md (mean ± std) and OUT/plots/*.png.
    """
    valid_methods = METHODS.names()
    for m in methods:
        if m not in valid_methods:
            raise ConfigError(f"--methods: unknown method {m!r}; expected one of: {', '.join(valid_methods)}")
    for d in datasets:
        if d not in DATASETS:
            raise ConfigError(f"--datasets: unknown dataset {d!r}; expected one of: {', '.join(DATASETS)}")
    steps = DEFAULT_STEPS if steps is None else steps
    for name, value in (("--trials", trials), ("--steps", steps), ("--eval-samples", num_eval)):
        if value < 1:
            raise ConfigError(f"{name}: expected a positive integer, found {value}")
    out = Path(out)
    classifiers = {d: _stacked_classifier(d, judge) for d in datasets if d in DATASETS_STACKED}
    todo = [Trial(m, d, t) for d in datasets for m in methods for t in range(trials)]
    # Every trial's config is resolved before the first one runs: a bad --set fails at once.
    configs = {trial.key: trial_config(trial.method, trial.dataset, trial.index, steps, overrides) for trial in todo}
    rows = []
    bar = tqdm(todo, desc="bench modes", unit="trial", disable=not progress, position=0)
    for trial in bar:
        bar.set_postfix_str(trial.key)
        cfg = configs[trial.key]
        row = load_finished(out / "results" / f"{trial.key}.json", cfg, num_eval)
        if row is None:
            classify, extractor = classifiers.get(trial.dataset, (None, "true-modes"))
            row = run_trial(trial, cfg, out, num_eval, classify, extractor, progress)
        rows.append(row)
        _write_outputs(out, rows, list(methods), list(datasets))
    bar.close()
    return rows, _write_outputs(out, rows, list(methods), list(datasets))
