"""The one training loop: phases from the method, seeds per step, logs, grids, checkpoints, resume.

Determinism and resume: every random draw of step `t` comes from seeds derived from
(config seed, t) — the data order of each epoch from its own generator (condgan.data.sampler), and
the global torch RNG (noise, classes, dropout) re-seeded at the start of each step. A resumed run
therefore needs only the weights, optimiser states and sampler position of its checkpoint to
continue exactly as an uninterrupted run.

Data (condgan.data.storage, docs/scale.md): the training set is in memory as uint8 on the device,
or streamed by DataLoader workers (image folders, packs); either way each step's real batch arrives
as float in [-1, 1] on the device, and whole-set hooks (`Method.prepare`/`on_step_end`, the collapse
monitor) read it through a `SampleView`.

Distributed runs (torchrun or `condgan train --nproc N`; condgan.training.distributed): the global
batch `train.batch_size` is split into equal per-rank slices of the same permutation and the same
noise draw, each phase's objective runs in DistributedDataParallel (gradients averaged over ranks
in its backward), buffers are broadcast from rank 0 after each step, and only rank 0 writes the
run directory. Speed flags (AMP, channels_last, compile, fused Adam):
condgan.training.speed. While phase i runs, parameters that no phase from i on updates are frozen, so
e.g. G's phase backpropagates through D without computing D's weight gradients (stylegan2-ada's
loop does the same with `requires_grad_`).

The recipe (docs/quality.md) enters as data: `recipe.n_dis` multiplies G's phase intervals
(`methods.every_n_dis`), each phase's Adam gets its role's betas (`OptimConfig.betas`), and with
`recipe.ema_decay` > 0 a `GeneratorEMA` (condgan.training.ema) is updated after each step; grids
and monitors draw from it (`Session.sampled`) and checkpoints carry it under "ema".

Faults (docs/reliability.md): rank 0 holds the run directory's lock (condgan.run.lock) from before
it reads anything until the process ends; nothing in the directory changes until the data, the
method and the checkpoint have loaded (condgan.run.directory.plan_run_dir / start_run_dir); the
loss and the gradient norm of every phase are checked before its optimiser step, and the
checkpoint writer refuses non-finite state; the running sums of the logged statistics travel in
every checkpoint, so a resume at any step logs the rows of an uninterrupted run; SIGTERM/SIGINT
save at the next step boundary (condgan.training.signals); a failed write (a full disk) stops the
run with one line naming the step and the newest good checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn
from tqdm import tqdm

from condgan.version import __version__
from condgan.config import Config
from condgan.data.sampler import EpochSampler
from condgan.data.storage import SampleView, StepBatches, TrainingData, open_training_data
from condgan.device import resolve_device
from condgan.errors import ConfigError, NonFiniteState, RunDirError, TrainingDiverged, TrainingStopped, WriteError
from condgan.methods import Method, Phase, StepInputs, build_method, every_n_dis
from condgan.nets import DataSpec
from condgan.report.grid import save_png, save_scatter
from condgan import dist
from condgan.training import distributed, stats
from condgan.run.checkpoint import (checkpoint_path, latest_checkpoint, load_checkpoint, load_model_state,
                                    load_optimizer_state, non_finite, save_checkpoint)
from condgan.run.directory import METRICS_FILE, RunPlan, plan_run_dir, start_run_dir, truncate_metrics
from condgan.run.lock import RunLock
from condgan.training.signals import StopSignals, signal_name
from condgan.sampling import Classes, class_grid, generate, generator_weights
from condgan.training.ema import GeneratorEMA
from condgan.training.monitor import CollapseMonitor
from condgan.training.speed import SpeedPlan, bf16_note, grad_scaler, resolve_speed, set_determinism
from condgan.seeds import STREAM_GRID, STREAM_INIT, STREAM_RANK_STEP, STREAM_STEP, derive_seed

# A periodic monitor: (every N steps, fn(method, step) -> stats to log). It gets the method samples
# are drawn from: the G-EMA copy when recipe.ema_decay > 0 (Session.sampled).
Monitor = tuple[int, Callable[[Method, int], dict[str, float]]]


def lr_factor(cfg: Config, step: int) -> float:
    """The learning-rate multiplier of `step` under `optim.lr_schedule` (a function of the step: exact resume)."""
    if cfg.optim.lr_schedule == "linear":
        return 1.0 - step / cfg.train.steps
    return 1.0



def load_training_data(cfg: Config) -> TrainingData:
    """The training set of `cfg`, stored as `data.storage` says (condgan.data.storage)."""
    return open_training_data(cfg.data, cfg.train.seed)


def data_spec(data: TrainingData) -> DataSpec:
    return DataSpec(data.sample_shape, data.num_classes, len(data))


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    steps: int  # the step the run ended at
    images_per_sec: float  # real images consumed per second of loop wall time (this session)
    last_stats: dict[str, float]
    checkpoint: Path


def checkpoint_meta(cfg: Config, data: TrainingData) -> dict:
    return {
        "sample_shape": list(data.sample_shape),
        "num_classes": data.num_classes,
        "num_samples": len(data),
        "class_names": list(data.class_names),
        "dataset": data.name,
        "data": data.record(),  # storage kind and why, bad files left out or replaced, a pack's hash
        "config": cfg.to_dict(),
        "condgan_version": __version__,
    }



@dataclass
class Session:
    """Everything one training process holds between steps (built once by `_setup`)."""

    cfg: Config
    run_dir: Path
    dist_info: dist.DistInfo
    device: torch.device
    data: TrainingData
    batches: StepBatches  # each step's real batch on the device
    real: SampleView  # the whole training set by index, float on the device (whole-set hooks, monitor)
    real_y: torch.Tensor  # every label, on the device
    plan: SpeedPlan
    method: Method
    phases: list[Phase]
    optimizers: dict[str, torch.optim.Optimizer]
    scalers: dict[str, torch.amp.GradScaler | None]
    trainable: set[int]  # ids of the parameters that are trainable outside phases
    owned: list[set[int]]  # per phase i: ids of parameters updated by phase i or a later one
    objectives: dict[str, nn.Module]  # distributed: phase name -> its DDP objective
    sampler: EpochSampler
    monitors: list[Monitor]
    ema: GeneratorEMA | None  # recipe.ema_decay > 0: the average of G's weights (condgan.training.ema)
    start: int  # the first step to run (the checkpoint's step when resuming)
    last_ckpt: Path | None  # the newest checkpoint known to be good (written or loaded by this process)
    run_plan: RunPlan | None  # rank 0: what starting the run does to its directory
    restored: dict  # loop state from the checkpoint resumed from: "stats", "monitors" (empty for a new run)

    @property
    def main(self) -> bool:
        return self.dist_info.is_main

    @property
    def sampled(self) -> Method:
        """What grids and monitors draw from: the G-EMA copy when it is on, else the trained method."""
        return self.ema.method if self.ema is not None else self.method


class RunLog:
    """metrics.jsonl rows and TensorBoard scalars of rank 0 (other ranks write nothing).

    A write that fails (a full disk) raises OSError in the loop. TensorBoard writes from its own
    thread and re-raises the error on the next call; while the log is open, that thread's dying
    traceback is kept off stderr (the loop reports the error in one line).
    """

    def __init__(self, run_dir: Path, start: int, enabled: bool) -> None:
        self.enabled = enabled
        if not enabled:
            return
        truncate_metrics(run_dir, start)
        from torch.utils.tensorboard import SummaryWriter  # slow import: only when training

        self._hook = threading.excepthook
        threading.excepthook = self._quiet_writer_thread
        self.writer = SummaryWriter(str(run_dir / "events"), purge_step=start if start else None)
        self.file = open(run_dir / METRICS_FILE, "a")

    def _quiet_writer_thread(self, args: threading.ExceptHookArgs) -> None:
        if not (issubclass(args.exc_type, OSError) and type(args.thread).__module__.startswith("tensorboard")):
            self._hook(args)

    def write(self, row: dict[str, float]) -> None:
        if not self.enabled:
            return
        with _naming(self.file.name):
            self.file.write(json.dumps(row) + "\n")
            self.file.flush()
        with _naming(self.writer.log_dir):
            for name, value in row.items():
                if name != "step":
                    self.writer.add_scalar(name, value, int(row["step"]))

    def sync(self) -> None:
        """Make the rows written so far durable (before a checkpoint that accounts for them)."""
        if self.enabled:
            with _naming(self.file.name):
                self.file.flush()
                os.fsync(self.file.fileno())

    def close(self, failed: bool = False) -> None:
        """Close the files; after a failure (`failed`), errors of the close itself are ignored."""
        if not self.enabled:
            return
        for close in (self.writer.close, self.file.close):
            try:
                close()
            except OSError:
                if not failed:
                    raise
        threading.excepthook = self._hook
        self.enabled = False


@contextlib.contextmanager
def _naming(path: str | Path):
    """Give an OSError raised inside (a flush, TensorBoard's writer thread) the file it was about."""
    try:
        yield
    except OSError as exc:
        if exc.filename:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None


# ---------------------------------------------------------------- setup


def _setup(cfg: Config | None, run_dir: Path, resume: bool, force: bool, monitors: Sequence[Monitor],
           dist_info: dist.DistInfo) -> Session:
    """Config, device, data, method, optimisers, resume state: all a run needs, read and checked
    without changing the run directory (rank 0 holds its lock)."""
    run_plan = plan_run_dir(run_dir, cfg, resume=resume, force=force) if dist_info.is_main else None
    cfg = run_plan.cfg if run_plan is not None else cfg
    if dist_info.enabled:
        cfg = dist.broadcast_object(cfg)  # a failure on rank 0 raises there and ends the job
    t = cfg.train
    if t.threads:
        torch.set_num_threads(t.threads)
    device = resolve_device(t.device)
    if device.type == "cuda" and dist_info.enabled:
        device = torch.device("cuda", dist_info.local_rank)
    if t.batch_size % dist_info.world_size:
        raise ConfigError(f"config field train.batch_size: the global batch must split evenly over "
                          f"{dist_info.world_size} ranks, found {t.batch_size}")
    set_determinism(t.deterministic, device)
    data = load_training_data(cfg)
    sampler = EpochSampler(len(data), t.batch_size, t.seed, dist_info.rank, dist_info.world_size)
    batches = StepBatches(data, sampler, device)
    real, real_y = batches.view(), batches.y
    plan = resolve_speed(t, device, data.is_image)
    torch.manual_seed(derive_seed(t.seed, STREAM_INIT, 0))  # network initialisation
    method = build_method(cfg, data_spec(data)).to(device)
    monitors = list(monitors)
    if t.monitor_every and data.is_image and method.conditional:
        collapse = CollapseMonitor(real, data.y, data.num_classes, t.monitor_patience, t.seed,
                                   weights=generator_weights(cfg.recipe, True) if cfg.recipe.ema else None)
        monitors.append((t.monitor_every, collapse))
    phases = every_n_dis(method.phases(), cfg.recipe.n_dis)  # G's phases every n_dis-th step
    if t.sync_bn and dist_info.enabled:
        for phase in phases:  # in place: SyncBatchNorm keeps BatchNorm's parameter and buffer names
            for name, child in list(phase.module.named_children()):
                setattr(phase.module, name, torch.nn.SyncBatchNorm.convert_sync_batchnorm(child))
    if plan.channels_last:
        method.to(memory_format=torch.channels_last)
    optimizers = {
        p.name: torch.optim.Adam(p.module.parameters(), lr=p.lr, betas=cfg.optim.betas(p.role), **plan.adam_kwargs())
        for p in phases
    }
    # Parameters still updated by phase i or a later phase of the step; the rest are frozen in phase i.
    # Parameters the method froze itself stay frozen.
    trainable = {id(q) for q in method.parameters() if q.requires_grad}
    owned = [{id(q) for p in phases[i:] for q in p.module.parameters()} & trainable for i in range(len(phases))]
    start, ckpt, restored = _restore(method, optimizers, run_dir, resume, dist_info)
    if restored.get("sampler") is not None:  # checkpoints before the saved position: the step alone places it
        sampler.load_state_dict(restored["sampler"], f"checkpoint {ckpt}")
    if dist_info.enabled:
        dist.broadcast_module(method)  # identical start on every rank, whatever the init
    ema = None
    if cfg.recipe.ema:  # a copy of the restored method, before compiling (the copy stays eager)
        ema = GeneratorEMA(method, phases, cfg.recipe.ema_decay, cfg.recipe.ema_start, cfg.recipe.ema_rampup)
        if restored.get("ema") is not None:
            ema.load_state_dict(restored["ema"], ckpt)
    if plan.compile:
        for phase in phases:  # nn.Module.compile keeps the module's names (checkpoint keys) unchanged
            phase.module.compile()
    # Distributed: each phase's loss runs as one DDP module (distributed.PhaseObjective).
    objectives = {
        p.name: distributed.wrap_phase(method, p, device, not method.uses_all_parameters_every_step)
        for p in phases
    } if dist_info.enabled else {}
    return Session(cfg, run_dir, dist_info, device, data, batches, real, real_y, plan, method, phases, optimizers,
                   {p.name: grad_scaler(plan, device) for p in phases}, trainable, owned, objectives, sampler,
                   monitors, ema, start, ckpt, run_plan, restored)


def _restore(method: Method, optimizers: dict[str, torch.optim.Optimizer], run_dir: Path, resume: bool,
             dist_info: dist.DistInfo) -> tuple[int, Path | None, dict]:
    """Load the newest checkpoint into `method` and `optimizers` when resuming.

    Returns its step, its path and the loop state it carries ("stats": this rank's running sums of
    the logged statistics; "monitors": the monitors' states; "ema": the averaged generator's entries;
    "sampler": the data position)."""
    ckpt = latest_checkpoint(run_dir) if resume and dist_info.is_main else None
    state = load_checkpoint(ckpt) if ckpt is not None else None
    if dist_info.enabled:
        ckpt, state = dist.broadcast_object((ckpt, state))
    if state is None:
        return 0, None, {}
    load_model_state(method, state["model"], ckpt)
    for name, opt in optimizers.items():
        load_optimizer_state(opt, state["optimizers"], name, ckpt)
    saved = state.get("stats") or []  # one entry per rank of the run that wrote it
    restored = {"stats": saved[dist_info.rank] if dist_info.rank < len(saved) else (saved[0] if saved else None),
                "monitors": state.get("monitors") or [], "ema": state.get("ema"), "sampler": state.get("sampler")}
    return int(state["step"]), ckpt, restored


# ---------------------------------------------------------------- step


def _step_inputs(s: Session, step: int) -> StepInputs:
    """Step `step`'s real batch and noise, from seeds derived from (train.seed, step)."""
    t = s.cfg.train
    torch.manual_seed(derive_seed(t.seed, STREAM_STEP, step))
    idx, real_x, real_c = s.batches.get(step)
    if s.plan.channels_last and real_x.dim() == 4:
        real_x = real_x.contiguous(memory_format=torch.channels_last)
    # Every rank draws the global batch's noise and keeps its slice: the same numbers as a
    # single-process run, whatever the number of ranks.
    local = slice(s.sampler.offset, s.sampler.offset + s.sampler.local)
    gen_z = s.method.latent(t.batch_size, device=s.device)[local]
    gen_c = s.method.sample_classes(t.batch_size, device=s.device)[local]
    if s.dist_info.enabled:  # per-rank stream for draws inside the step (dropout)
        torch.manual_seed(derive_seed(t.seed, STREAM_RANK_STEP, step * s.dist_info.world_size + s.dist_info.rank))
    return StepInputs(real_x=real_x, real_c=real_c, real_idx=idx, gen_z=gen_z, gen_c=gen_c, step=step)


def _step(s: Session, step: int) -> None:
    """One training step: every phase due at `step`, the method's end-of-step hook, then the G-EMA update."""
    inputs = _step_inputs(s, step)
    lr_scale = lr_factor(s.cfg, step)
    for i, phase in enumerate(s.phases):
        if step % phase.interval:
            continue
        opt, scaler = s.optimizers[phase.name], s.scalers[phase.name]
        for group in opt.param_groups:
            group["lr"] = phase.lr * lr_scale
        for p in s.method.parameters():
            p.requires_grad_(id(p) in s.owned[i])
        opt.zero_grad(set_to_none=True)
        with s.plan.autocast(s.device):
            if s.dist_info.enabled:
                loss, phase_stats = s.objectives[phase.name](inputs)
            else:
                loss, phase_stats = s.method.loss(phase, inputs)
        (scaler.scale(loss) if scaler else loss).backward()
        # One sync checks the loss and the gradients: their norm is non-finite when any gradient is
        # (or overflows float32: divergence too). Under AMP the grad scaler already skips the
        # optimiser step when a gradient is non-finite (and lowers its scale), so only the loss is checked.
        checked = loss.detach().float() + (_grad_norm(opt) if scaler is None else 0.0)
        if s.dist_info.enabled:  # a NaN on any rank stops every rank
            checked = dist.mean_scalar(checked)
        if not math.isfinite(checked.item()):
            raise _diverged(s, step, phase.name, loss, opt)
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        stats.report(f"{phase.name}/loss", loss)
        for name, value in phase_stats.items():
            stats.report(name, value)
    for p in s.method.parameters():
        p.requires_grad_(id(p) in s.trainable)
    if s.dist_info.enabled:  # BatchNorm running statistics follow rank 0 (DDP's broadcast_buffers)
        dist.broadcast_module(s.method, params=False)
    for name, value in s.method.on_step_end(step, s.real, s.real_y).items():
        stats.report(name, value)
    if s.ema is not None:
        s.ema.update(step, g_updated=any(step % p.interval == 0 for p in s.phases if p.role == "G"))


def _grad_norm(opt: torch.optim.Optimizer) -> torch.Tensor:
    """The 2-norm of all gradients `opt` would apply (0 when there are none)."""
    grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


def _diverged(s: Session, step: int, phase: str, loss: torch.Tensor, opt: torch.optim.Optimizer) -> TrainingDiverged:
    value = float(loss.detach().float())
    if math.isfinite(value):
        what = f"gradient norm is {float(_grad_norm(opt))} under a finite loss ({value:.6g})"
    else:
        what = f"loss is {value}"
    return TrainingDiverged(f"step {step}: {phase} {what}; training stopped before its optimiser step, "
                            f"last good checkpoint: {s.last_ckpt or 'none'}")


# ---------------------------------------------------------------- log, grids, checkpoints


def _log(s: Session, log: RunLog, finished: int, images_per_sec: float, bar: tqdm) -> dict[str, float]:
    """Collect the statistics since the last row (averaged over ranks) and write the row."""
    last_stats = stats.collect()
    if s.dist_info.enabled:
        last_stats = dist.mean_over_ranks(last_stats)
    row = {"step": finished, "kimg": finished * s.cfg.train.batch_size / 1000, "images_per_sec": images_per_sec,
           **last_stats}
    log.write(row)
    bar.set_postfix({"img/s": f"{images_per_sec:.0f}",
                     **{k: f"{v:.3f}" for k, v in last_stats.items() if k.endswith("/loss")}})
    return last_stats


def _save_grid(s: Session, finished: int) -> None:
    """Rank 0: the class grid (images) or a scatter plot (2D points) under grids/, of the G-EMA
    weights when they are on (then named in the PNG's Description, or the plot's title)."""
    method, seed = s.sampled, derive_seed(s.cfg.train.seed, STREAM_GRID, 0)
    path = s.run_dir / "grids" / f"step-{finished:08d}.png"
    caption = f"step {finished}, {generator_weights(s.cfg.recipe, True)}" if s.ema is not None else None
    was_training = method.training
    method.eval()
    if s.data.is_image:
        z = method.latent(s.cfg.train.grid_rows, generator=torch.Generator().manual_seed(seed))
        classes = list(range(max(method.num_classes, 1)))  # the model's classes (Self-Cond GAN: clusters)
        save_png(class_grid(method, z, classes, s.device), path, caption=caption)
    else:
        points, labels = generate(method, 2000, Classes.prior(), seed=seed, device=s.device, uint8=True,
                                  all_ranks=False)
        save_scatter(points, labels.numpy() if labels is not None else None, path, title=caption or path.stem)
    method.train(was_training)


def _checkpoint(s: Session, finished: int, log: RunLog) -> Path:
    """Rank 0 writes the checkpoint of step `finished`; every rank returns its path.

    Beside the weights and optimiser states it holds every rank's running sums of the statistics
    reported since the last row and the monitors' states, so that rows after a resume from here
    equal an uninterrupted run's whatever `log_every` and `ckpt_every` are. Non-finite state is
    refused (by the writer on rank 0, by the same check on the others: their weights are rank 0's).
    """
    extra = {"stats": dist.gather_objects(stats.state()),
             "monitors": [getattr(fn, "state_dict", lambda: None)() for _, fn in s.monitors],
             "sampler": s.sampler.state_dict(finished),
             **({"ema": s.ema.state_dict()} if s.ema is not None else {})}
    try:
        if not s.main:
            state = {"model": s.method.state_dict(), "optimizers": {n: o.state_dict() for n, o in s.optimizers.items()},
                     **extra}
            bad = non_finite(state)
            if bad is not None:
                raise NonFiniteState(f"step {finished}: non-finite values in {bad}; checkpoint not written")
            return checkpoint_path(s.run_dir, finished)  # what rank 0 writes
        log.sync()  # the rows this checkpoint accounts for reach the disk before it does
        return save_checkpoint(s.run_dir, finished, s.method, s.optimizers, checkpoint_meta(s.cfg, s.data),
                               s.cfg.train.keep_ckpts, extra=extra)
    except NonFiniteState as exc:
        raise TrainingDiverged(f"{exc}; training stopped, last good checkpoint: {s.last_ckpt or 'none'}") from None


def _stop(s: Session, log: RunLog, finished: int, signum: int) -> TrainingStopped:
    """The end of a run stopped by signal `signum` after step `finished`: its checkpoint, then the exception."""
    if s.last_ckpt != checkpoint_path(s.run_dir, finished):  # not written at this step already
        s.last_ckpt = _checkpoint(s, finished, log)
    return TrainingStopped(f"stopped by {signal_name(signum)} at step {finished}; checkpoint {s.last_ckpt}; "
                           "resume with --resume", signum, finished, s.last_ckpt)


_TEMP_NAME = re.compile(r"^\.(.+)\.[^.]+\.tmp$")  # condgan.io.atomic_write's `.<target>.<random>.tmp`


def _write_failed(s: Session, exc: OSError | WriteError, finished: int) -> RunDirError:
    """One line for a failed write (a full disk, a vanished mount) during training."""
    filename, reason = (exc.path, exc.reason) if isinstance(exc, WriteError) else (exc.filename, exc.strerror)
    shown = "a file"
    if filename:
        path = Path(filename)
        target = _TEMP_NAME.match(path.name)
        path = path.with_name(target.group(1)) if target else path  # the file the temporary one was for
        shown = str(path.relative_to(s.run_dir)) if path.is_relative_to(s.run_dir) else str(path)
    return RunDirError(f"run {s.run_dir}: writing {shown} failed at step {finished} ({reason or exc}); "
                       f"training stopped, last good checkpoint: {s.last_ckpt or 'none'}")


# ---------------------------------------------------------------- the loop


def train(
    cfg: Config | None,
    run_dir: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    monitors: Sequence[Monitor] = (),
) -> RunResult:
    """Train `cfg` into `run_dir` (or continue the run there with `resume`).

    Under torchrun / `--nproc` every rank calls this with the same arguments; rank 0 owns the run
    directory (config, checkpoints, logs, grids) and the others receive its config and checkpoint.
    Monitors run on every rank (so that they may split work and `dist.gather` it); their
    statistics, like the training statistics, are averaged over ranks.

    Raises `RunDirError` when another process writes `run_dir` (its lock) or a write fails (a full
    disk), `TrainingDiverged` when a loss, a gradient or the state to be saved is non-finite, and
    `TrainingStopped` after saving the checkpoint of the step at which SIGTERM or SIGINT arrived.
    A start that fails leaves `run_dir` as it was (docs/reliability.md).
    """
    run_dir = Path(run_dir)
    dist_info = dist.init_from_env(resolve_device(cfg.train.device if cfg is not None else "auto").type)
    lock = RunLock(run_dir).acquire() if dist_info.is_main else None  # one writer, before anything is read
    log: RunLog | None = None
    bar: tqdm | None = None
    s: Session | None = None
    try:
        if lock is not None and lock.stale is not None:
            print(f"condgan: note: {run_dir}: taking over the lock of {lock.stale.describe()}, which ended "
                  "without releasing it", file=sys.stderr)
        s = _setup(cfg, run_dir, resume, force, monitors, dist_info)
        t = s.cfg.train
        if s.ema is not None and s.main:
            print(f"condgan: note: {generator_weights(s.cfg.recipe, True)} is on: the grids, the collapse monitor, "
                  "`condgan sample` and `condgan eval --run` use the averaged generator", file=sys.stderr)
        last_stats: dict[str, float] = {}
        t0, done = time.perf_counter(), 0
        stats.collect()  # drop anything reported before this run
        _resume_loop_state(s)
        for name, value in s.method.prepare(s.real, s.real_y).items():
            stats.report(name, value)
        s.batches.begin(s.start, t.steps)  # streamed sets: the loader's workers start reading ahead
        finished = s.start
        try:
            # Everything above only read the run directory; from here on it changes.
            if s.run_plan is not None:
                start_run_dir(s.run_dir, s.run_plan)
            log = RunLog(s.run_dir, s.start, enabled=s.main)
            bar = tqdm(total=t.steps, initial=s.start, unit="step", disable=not (progress and s.main),
                       dynamic_ncols=True)
            if s.main and s.data.chosen:  # where a folder or pack lives, and why (after every check passed)
                tqdm.write(s.data.describe(), file=sys.stderr)
            with StopSignals() as signals:
                for step in range(s.start, t.steps):
                    _step(s, step)
                    done += 1
                    finished = step + 1
                    last = finished == t.steps
                    bar.update(1)
                    for every, monitor in s.monitors:
                        if finished % every == 0 or last:
                            for name, value in monitor(s.sampled, finished).items():
                                stats.report(name, value)
                    if finished % t.log_every == 0 or last:
                        last_stats = _log(s, log, finished, done * t.batch_size / (time.perf_counter() - t0), bar)
                    if s.main and (finished % t.grid_every == 0 or last):
                        _save_grid(s, finished)
                    if finished % t.ckpt_every == 0 or last:
                        s.last_ckpt = _checkpoint(s, finished, log)
                    signum = 0 if last else signals.requested(s.dist_info.enabled)
                    if signum:
                        raise _stop(s, log, finished, signum)
            log.close()
        except (OSError, WriteError) as exc:
            raise _write_failed(s, exc, finished) from None
    finally:
        if s is not None:
            s.batches.close()
        if bar is not None:
            bar.close()
        if log is not None:
            log.close(failed=True)  # a no-op after the close above
        if lock is not None:
            lock.release()
    # ---------------------------------------------------------------- finish
    elapsed = time.perf_counter() - t0
    assert s.last_ckpt is not None  # the last step always writes one
    note = bf16_note(t, s.device, s.data.is_image)
    if note and s.main:  # after a finished run, so that a failing one still ends in its one error line
        print(f"condgan: note: {note}", file=sys.stderr)
    return RunResult(s.run_dir, t.steps, done * t.batch_size / elapsed if done else 0.0, last_stats, s.last_ckpt)


def _resume_loop_state(s: Session) -> None:
    """Put back what the resumed checkpoint carries besides the weights: statistics since the last row, monitors."""
    if s.restored.get("stats"):
        stats.load_state(s.restored["stats"])
    for (_, monitor), state in zip(s.monitors, s.restored.get("monitors", [])):
        if state is not None and hasattr(monitor, "load_state_dict"):
            monitor.load_state_dict(state)


def _rank_main(cfg: Config | None, run_dir: Path, resume: bool, force: bool, progress: bool) -> None:
    """One rank of `train_spawned` (module level: the spawn start method pickles it by name)."""
    try:
        train(cfg, run_dir, resume=resume, force=force, progress=progress)
    finally:
        dist.shutdown()


def check_launch(nproc: int, cfg: Config | None, run_dir: str | Path, *, resume: bool, force: bool) -> None:
    """What `train_spawned` would refuse, checked in the launching process before any rank starts:
    the run directory (new, replace or resume, as rank 0 will decide) and the split of the batch."""
    if nproc < 1:
        raise ConfigError(f"--nproc: expected a positive number of processes, found {nproc}")
    run_dir = Path(run_dir)
    existed = run_dir.exists()
    try:
        plan = plan_run_dir(run_dir, cfg, resume=resume, force=force)
    finally:
        if not existed and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()  # the writability probe made it; rank 0 makes it again under its lock
    if plan.cfg.train.batch_size % nproc:
        raise ConfigError(f"config field train.batch_size: the global batch must split evenly over {nproc} ranks, "
                          f"found {plan.cfg.train.batch_size}")


def train_spawned(
    nproc: int, cfg: Config | None, run_dir: str | Path, *, resume: bool = False, force: bool = False,
    progress: bool = True,
) -> Path:
    """`train` in `nproc` local processes (gloo on CPU, NCCL on CUDA); returns the newest checkpoint.

    The same as `torchrun --standalone --nproc-per-node nproc` (`condgan.dist.spawn`); each process
    uses `train.threads` intra-op threads (set it so that nproc × threads ≤ cores). Raises the
    rank's `CondganError` (one line) or `TrainingStopped` naming the checkpoint it saved.
    """
    run_dir = Path(run_dir)
    check_launch(nproc, cfg, run_dir, resume=resume, force=force)
    try:
        dist.spawn(nproc, _rank_main, cfg, run_dir, resume, force, progress)
    except TrainingStopped as stop:  # the ranks saved the step they stopped at: name it
        ckpt = latest_checkpoint(run_dir)
        step = int(ckpt.stem.split("-")[1]) if ckpt is not None else stop.step
        where = f"at step {step}; checkpoint {ckpt}; resume with --resume" if ckpt is not None else \
            "before the first checkpoint"
        raise TrainingStopped(f"stopped by {signal_name(stop.signum)} {where}", stop.signum, step, ckpt) from None
    ckpt = latest_checkpoint(run_dir)
    assert ckpt is not None  # the last step of a finished run always writes one
    return ckpt
