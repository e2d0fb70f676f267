"""The one training loop: phases from the method, seeds per step, logs, grids, checkpoints, resume.

Determinism and resume: every random draw of step `t` comes from seeds derived from
(config seed, t) — the data order of each epoch from its own generator, and the global torch RNG
(noise, classes, dropout) re-seeded at the start of each step. A resumed run therefore needs only
the weights and optimiser states of its checkpoint to continue exactly as an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from condgan import __version__
from condgan.config import Config
from condgan.data import LabelledData, load_dataset
from condgan.errors import TrainingDiverged
from condgan.methods import Method, StepInputs, build_method
from condgan.nets import DataSpec
from condgan.report.grid import class_grid, save_png, save_scatter
from condgan.train import stats
from condgan.train.checkpoint import latest_checkpoint, load_checkpoint, load_model_state, save_checkpoint
from condgan.train.rundir import METRICS_FILE, prepare_run_dir, truncate_metrics

# Independent random streams derived from the config seed.
STREAM_INIT, STREAM_STEP, STREAM_EPOCH, STREAM_GRID = 0, 1, 2, 3

# A periodic monitor: (every N steps, fn(method, step) -> stats to log).
Monitor = tuple[int, Callable[[Method, int], dict[str, float]]]


def derive_seed(seed: int, stream: int, index: int) -> int:
    """A 63-bit seed for item `index` of `stream`, independent across streams (numpy SeedSequence)."""
    return int(np.random.SeedSequence([seed, stream, index]).generate_state(1, np.uint64)[0] >> 1)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def load_training_data(cfg: Config) -> LabelledData:
    d = cfg.data
    return load_dataset(d.name, "train", data_dir=d.data_dir, resolution=d.resolution, channels=d.channels,
                        num_samples=d.num_samples, seed=cfg.train.seed)


def data_spec(data: LabelledData) -> DataSpec:
    return DataSpec(tuple(data.x.shape[1:]), data.num_classes, len(data.x))


class EpochSampler:
    """Batch indices of step t: epoch t // (N // B) in a permutation seeded by (seed, epoch); drop-last."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        if batch_size > n:
            raise ValueError(f"train.batch_size {batch_size} exceeds the dataset size {n}")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.per_epoch = n // batch_size
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def indices(self, step: int) -> torch.Tensor:
        epoch, i = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(derive_seed(self.seed, STREAM_EPOCH, epoch))
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=gen)
        return self._perm[i * self.batch_size:(i + 1) * self.batch_size]


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    steps: int  # the step the run ended at
    images_per_sec: float  # real images consumed per second of loop wall time (this session)
    last_stats: dict[str, float]
    checkpoint: Path


def checkpoint_meta(cfg: Config, data: LabelledData) -> dict:
    return {
        "sample_shape": list(data.x.shape[1:]),
        "num_classes": data.num_classes,
        "num_samples": len(data.x),
        "class_names": list(data.class_names),
        "dataset": data.name,
        "config": cfg.to_dict(),
        "condgan_version": __version__,
    }


def _save_grid(method: Method, cfg: Config, data: LabelledData, path: Path, device: torch.device) -> None:
    gen = torch.Generator().manual_seed(derive_seed(cfg.train.seed, STREAM_GRID, 0))
    was_training = method.training
    method.eval()
    with torch.no_grad():
        if data.x.dim() == 4:
            z = method.latent(cfg.train.grid_rows, generator=gen).to(device)
            classes = list(range(max(method.num_classes, 1)))  # the model's classes (Self-Cond GAN: clusters)
            save_png(class_grid(method.generate, z, classes), path)
        else:
            n = 2000
            z = method.latent(n, generator=gen).to(device)
            c = method.sample_classes(n, generator=gen).to(device)
            points = method.generate(z, c).cpu().numpy()
            save_scatter(points, c.cpu().numpy(), path, title=path.stem)
    method.train(was_training)


def train(
    cfg: Config | None,
    run_dir: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    monitors: Sequence[Monitor] = (),
) -> RunResult:
    """Train `cfg` into `run_dir` (or continue the run there with `resume`)."""
    run_dir = Path(run_dir)
    cfg = prepare_run_dir(run_dir, cfg, resume=resume, force=force)
    t = cfg.train
    if t.threads:
        torch.set_num_threads(t.threads)
    device = resolve_device(t.device)
    data = load_training_data(cfg)
    real_x, real_y = data.x.to(device), data.y.to(device)
    torch.manual_seed(derive_seed(t.seed, STREAM_INIT, 0))  # network initialisation
    method = build_method(cfg, data_spec(data)).to(device)
    phases = method.phases()
    optimizers = {
        p.name: torch.optim.Adam(p.module.parameters(), lr=p.lr, betas=(cfg.optim.beta1, cfg.optim.beta2),
                                 foreach=device.type != "mps")
        for p in phases
    }
    start = 0
    ckpt = latest_checkpoint(run_dir) if resume else None
    if ckpt is not None:
        state = load_checkpoint(ckpt)
        load_model_state(method, state["model"], ckpt)
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        start = int(state["step"])
    truncate_metrics(run_dir, start)
    meta = checkpoint_meta(cfg, data)
    sampler = EpochSampler(len(data.x), t.batch_size, t.seed)

    from torch.utils.tensorboard import SummaryWriter  # slow import: only when training

    writer = SummaryWriter(str(run_dir / "events"), purge_step=start if start else None)
    last_stats: dict[str, float] = {}
    last_ckpt = ckpt
    bar = tqdm(total=t.steps, initial=start, unit="step", disable=not progress, dynamic_ncols=True)
    t0, done = time.perf_counter(), 0
    stats.collect()  # drop anything reported before this run
    for name, value in method.prepare(real_x, real_y).items():
        stats.report(name, value)
    try:
        with open(run_dir / METRICS_FILE, "a") as log:
            for step in range(start, t.steps):
                torch.manual_seed(derive_seed(t.seed, STREAM_STEP, step))
                idx = sampler.indices(step).to(device)
                inputs = StepInputs(
                    real_x=real_x[idx], real_c=real_y[idx], real_idx=idx,
                    gen_z=method.latent(t.batch_size, device=device),
                    gen_c=method.sample_classes(t.batch_size, device=device),
                    step=step,
                )
                for phase in phases:
                    if step % phase.interval:
                        continue
                    opt = optimizers[phase.name]
                    opt.zero_grad(set_to_none=True)
                    loss, phase_stats = method.loss(phase.name, inputs)
                    if not math.isfinite(loss.item()):
                        raise TrainingDiverged(
                            f"step {step}: {phase.name} loss is {loss.item()}; training stopped, "
                            f"last good checkpoint: {last_ckpt or 'none'}"
                        )
                    loss.backward()
                    opt.step()
                    stats.report(f"{phase.name}/loss", loss)
                    for name, value in phase_stats.items():
                        stats.report(name, value)
                for name, value in method.on_step_end(step, real_x, real_y).items():
                    stats.report(name, value)
                done += 1
                finished = step + 1
                bar.update(1)
                for every, monitor in monitors:
                    if finished % every == 0 or finished == t.steps:
                        for name, value in monitor(method, finished).items():
                            stats.report(name, value)
                if finished % t.log_every == 0 or finished == t.steps:
                    elapsed = time.perf_counter() - t0
                    last_stats = stats.collect()
                    row = {"step": finished, "kimg": finished * t.batch_size / 1000,
                           "images_per_sec": done * t.batch_size / elapsed, **last_stats}
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                    for name, value in row.items():
                        if name != "step":
                            writer.add_scalar(name, value, finished)
                    bar.set_postfix({"img/s": f"{row['images_per_sec']:.0f}",
                                     **{k: f"{v:.3f}" for k, v in last_stats.items() if k.endswith("/loss")}})
                if finished % t.grid_every == 0 or finished == t.steps:
                    _save_grid(method, cfg, data, run_dir / "grids" / f"step-{finished:08d}.png", device)
                if finished % t.ckpt_every == 0 or finished == t.steps:
                    last_ckpt = save_checkpoint(run_dir, finished, method, optimizers, meta, t.keep_ckpts)
    finally:
        bar.close()
        writer.close()
    elapsed = time.perf_counter() - t0
    assert last_ckpt is not None  # the last step always writes one
    return RunResult(run_dir, t.steps, done * t.batch_size / elapsed if done else 0.0, last_stats, last_ckpt)
