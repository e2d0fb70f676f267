"""The AC-GAN paper's evaluation suite as one function, shared by `condgan eval` and training.

`evaluate(gen_x, gen_y, real, judge=..., metrics=[...])` runs the named metrics of
`EVAL_METRICS` over one set of samples and returns

    {"metrics": {flat stable key: float}, "extractors": {metric name: extractor id},
     "figures": {name: file}, "inputs": {...}, "seconds": {metric name: s}}

Features are extracted once per input set and shared by every metric that needs them (STYLE #3):
the generated set passes once through the judge (and once through Inception when
`features=inception_extractor(...)` is given); the real test (and, for memorisation, training)
features come from the on-disk cache of `condgan.metrics.features`. Which numbers used which
network is listed in `extractors` and docs/evaluation.md:

    is, fid, kid, prdc, intra_fid    the feature extractor (judge by default; Inception if given)
    accuracy, resolution_sweep       the judge (dataset classes are needed)
    diversity                        pixels: MS-SSIM at `msssim.default_settings` for the size
    correlation                      judge accuracy vs pixel MS-SSIM, per class
    memorization                     pixels (L2 share, L1 grid) and judge features (L2)
    interpolation                    pixels of the run's generator (needs `run`)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from condgan.data import LabelledData
from condgan.data.base import images_to_unit_range, to_uint8_nhwc
from condgan.errors import ConfigError, SamplesError
from condgan.io import load_npz
from condgan.metrics import correlation, discriminability, diversity, fid, inception_score, interpolation, kid
from condgan.metrics import memorization, prdc
from condgan.metrics.features import Extractor, judge_extractor, real_features
from condgan.metrics.msssim import default_settings
from condgan.registry import Registry

# Memorisation: samples and test images whose nearest training neighbours are searched for the
# share metric (exhaustive search over the whole training set), and samples shown in the grid.
MEMORIZATION_QUERIES = 500
MEMORIZATION_GRID = 10
NEIGHBOURS_SHOWN = 3
# Interpolation: frames per path, and the jump ratio above which a path is flagged in the figure.
INTERP_FRAMES = 9
JUMP_FLAG = 3.0


def sweep_resolutions(size: int) -> list[int]:
    """Resolutions of the discriminability sweep (paper fig. 2 uses 16 … 256 for 128 px ImageNet).

    Powers of two (32, 64, 128 px): halvings down to 8 px, e.g. 64 → 8, 16, 32, 64. Other sizes
    (28 px MNIST/Fashion-MNIST): quarters, 28 → 7, 14, 21, 28.
    """
    if size & (size - 1) == 0 and size >= 8:
        out, r = [], size
        while r >= 8:
            out.append(r)
            r //= 2
        return sorted(out)
    return sorted({max(1, size * i // 4) for i in range(1, 5)})


@dataclass
class EvalContext:
    """Inputs of one evaluation and the features already extracted from them (computed once)."""

    gen_x: torch.Tensor
    gen_y: np.ndarray
    real: LabelledData
    judge: Extractor | None
    features: Extractor | None
    train_data: Callable[[], LabelledData] | None = None
    run: object | None = None  # condgan.sample.LoadedRun, for interpolation
    pairs: int = 100
    seed: int = 0
    out_dir: Path | None = None
    progress: bool = True
    cache_dir: Path | None = None
    use_cache: bool = True
    cache_hits: dict[str, bool] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)
    _memo: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return self.real.num_classes

    def memo(self, key: str, make: Callable[[], object]):
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def gen(self, ex: Extractor) -> tuple[np.ndarray, np.ndarray]:
        """(features, logits) of the generated set through `ex`."""
        return self.memo(f"gen:{ex.id}", lambda: ex.extract(self.gen_x, desc="samples", progress=self.progress))

    def cached_real(self, data: LabelledData, split: str, ex: Extractor) -> tuple[np.ndarray, np.ndarray]:
        """(features, logits) of a real set through `ex`, from the on-disk cache when present."""
        def make():
            feats, logits, hit = real_features(data, split, ex, cache_dir=self.cache_dir, use_cache=self.use_cache,
                                               progress=self.progress)
            self.cache_hits[f"{data.name}/{split}/{ex.id}"] = hit
            return feats, logits
        return self.memo(f"{split}:{ex.id}", make)

    def real_test(self, ex: Extractor) -> tuple[np.ndarray, np.ndarray]:
        return self.cached_real(self.real, "test", ex)

    def train(self) -> LabelledData:
        if self.train_data is None:
            raise ConfigError("metric memorization needs the real training set; none was given")
        return self.memo("train_data", self.train_data)

    def real_train(self, ex: Extractor) -> tuple[np.ndarray, np.ndarray]:
        return self.cached_real(self.train(), "train", ex)

    def result(self, name: str) -> dict[str, float]:
        """A metric's result, computed once (correlation reuses accuracy and diversity)."""
        return self.memo(f"metric:{name}", lambda: EVAL_METRICS.get(name).fn(self))

    def figure(self, name: str) -> Path | None:
        """Path for figure `name` (PNG) when figures are written, else None."""
        if self.out_dir is None:
            return None
        path = self.out_dir / f"{name}.png"
        self.figures[name] = path.name
        return path


@dataclass(frozen=True)
class EvalMetric:
    """A suite entry: `fn(ctx) -> flat dict`, which network its numbers come from, and which
    networks it needs ("judge", "features"; MS-SSIM and interpolation need none)."""

    fn: Callable[[EvalContext], dict[str, float]]
    extractor: Callable[[EvalContext], str]
    needs: tuple[str, ...]


EVAL_METRICS: Registry[EvalMetric] = Registry("metric")


def _msssim_id(ctx: EvalContext) -> str:
    s = default_settings(*ctx.gen_x.shape[2:])
    return f"pixels:ms-ssim(win={s.win_size},sigma=1.5,scales={len(s.weights)},convention=pytorch_msssim)"


def _register(name: str, extractor: Callable[[EvalContext], str], needs: tuple[str, ...] = ("judge",)):
    return lambda fn: EVAL_METRICS.add(name, EvalMetric(fn, extractor, needs))


_FEATURES = lambda ctx: ctx.features.id  # noqa: E731
_JUDGE = lambda ctx: ctx.judge.id  # noqa: E731


@_register("is", _FEATURES, ("features",))
def _is(ctx: EvalContext) -> dict[str, float]:
    # Salimans et al. 2016: 10 splits; over the judge, IS is bounded by num_classes.
    return inception_score.inception_score(ctx.gen(ctx.features)[1], splits=10)


@_register("fid", _FEATURES, ("features",))
def _fid(ctx: EvalContext) -> dict[str, float]:
    return fid.fid(ctx.real_test(ctx.features)[0], ctx.gen(ctx.features)[0])


@_register("kid", _FEATURES, ("features",))
def _kid(ctx: EvalContext) -> dict[str, float]:
    return kid.kid(ctx.real_test(ctx.features)[0], ctx.gen(ctx.features)[0], num_subsets=100, subset_size=1000)


@_register("prdc", _FEATURES, ("features",))
def _prdc(ctx: EvalContext) -> dict[str, float]:
    return prdc.prdc(ctx.real_test(ctx.features)[0], ctx.gen(ctx.features)[0], k=5)


@_register("intra_fid", _FEATURES, ("features",))
def _intra_fid(ctx: EvalContext) -> dict[str, float]:
    return fid.intra_class_fid(ctx.real_test(ctx.features)[0], ctx.real.y.numpy(), ctx.gen(ctx.features)[0],
                               ctx.gen_y)


@_register("accuracy", _JUDGE)
def _accuracy(ctx: EvalContext) -> dict[str, float]:
    gen = discriminability.accuracy(ctx.gen(ctx.judge)[1], ctx.gen_y, ctx.num_classes)
    real = discriminability.accuracy(ctx.real_test(ctx.judge)[1], ctx.real.y.numpy(), ctx.num_classes)
    return {**gen, **{f"real_{k}": v for k, v in real.items()}}


@_register("resolution_sweep", _JUDGE)
def _resolution_sweep(ctx: EvalContext) -> dict[str, float]:
    # discriminability.resolution_sweep's procedure (bilinear down to r, back up, classify), composed
    # from its pieces so that full-resolution logits are reused and the real set's are cached per r.
    sizes = sweep_resolutions(min(ctx.gen_x.shape[2:]))
    full = sizes[-1]
    out: dict[str, float] = {}
    curves = {}
    for prefix, data in (("", None), ("real_", ctx.real)):
        per_res = {}
        for r in sizes:
            if data is None:
                y = ctx.gen_y
                logits = ctx.gen(ctx.judge)[1] if r == full else ctx.judge.extract(
                    discriminability.resize_down_up(ctx.gen_x, r), desc=f"samples {r}px", progress=ctx.progress)[1]
            else:
                y = data.y.numpy()
                if r == full:
                    logits = ctx.real_test(ctx.judge)[1]
                else:
                    small = LabelledData(discriminability.resize_down_up(data.x, r), data.y, data.class_names,
                                         data.name)
                    logits = ctx.cached_real(small, f"test-down-up-{r}px", ctx.judge)[1]
            acc = discriminability.accuracy(logits, y, ctx.num_classes)
            per_res[r] = acc
            out.update({f"{prefix}{k.replace('accuracy', f'accuracy_{r}px', 1)}": v for k, v in acc.items()})
        share = discriminability.share_classes_full_beats_lowest(
            correlation.per_class_values(per_res[full], "accuracy"),
            correlation.per_class_values(per_res[sizes[0]], "accuracy"))
        out.update({f"{prefix}{k}": v for k, v in share.items()})
        curves["real" if prefix else "generated"] = [per_res[r]["accuracy"] for r in sizes]
    path = ctx.figure("resolution_sweep")
    if path is not None:
        from condgan.report.figures import resolution_plot

        resolution_plot(sizes, curves, path, ctx.judge.id)
    return out


@_register("diversity", _msssim_id, ())
def _diversity(ctx: EvalContext) -> dict[str, float]:
    out = diversity.diversity_report(ctx.gen_x, ctx.gen_y, ctx.real.x, ctx.real.y.numpy(), ctx.num_classes,
                                     pairs_per_class=ctx.pairs, seed=ctx.seed)
    path = ctx.figure("diversity")
    if path is not None:
        from condgan.report.figures import diversity_scatter

        diversity_scatter(correlation.per_class_values(out, "msssim_real"),
                          correlation.per_class_values(out, "msssim_gen"), path, _msssim_id(ctx))
    return out


@_register("correlation", lambda ctx: f"{ctx.judge.id} + {_msssim_id(ctx)}")
def _correlation(ctx: EvalContext) -> dict[str, float]:
    # Paper sec. 4.3: per-class accuracy vs per-class MS-SSIM of the samples (r = -0.16 on ImageNet).
    acc = correlation.per_class_values(ctx.result("accuracy"), "accuracy")
    ssim = correlation.per_class_values(ctx.result("diversity"), "msssim_gen")
    out = correlation.pearson(ssim, acc)
    path = ctx.figure("correlation")
    if path is not None:
        from condgan.report.figures import correlation_scatter

        correlation_scatter(ssim, acc, out["pearson_r"], path)
    return out


def nearest_l2(queries: torch.Tensor, references: torch.Tensor, batch_size: int = 4096) -> np.ndarray:
    """Euclidean distance from each query row to its nearest reference row, exhaustively.

    Squared distances as ||q||^2 + ||r||^2 - 2 q·r through float32 matrix products (BLAS), clamped
    at 0: ~50x faster than `memorization.nearest_neighbours`' difference-based search, which the
    suite keeps for the displayed neighbours. The rounding error of the expansion, about
    1e-7 ||q||^2, is far below the distances that set the memorisation threshold (a test image's
    nearest training image is not a near-copy), so shares are unaffected.
    """
    q, r = queries.flatten(1).float(), references.flatten(1).float()
    r_sq = (r * r).sum(1)
    best = torch.full((q.shape[0],), float("inf"))
    for s in range(0, r.shape[0], batch_size):
        block = r_sq[None, s:s + batch_size] - 2.0 * q @ r[s:s + batch_size].T
        best = torch.minimum(best, block.min(1).values)
    return (best + (q * q).sum(1)).clamp_min(0.0).sqrt().double().numpy()


@_register("memorization", lambda ctx: f"pixels:l2 (share), pixels:l1 (grid) + {ctx.judge.id} (l2)")
def _memorization(ctx: EvalContext) -> dict[str, float]:
    train = ctx.train()
    train_f = torch.from_numpy(ctx.real_train(ctx.judge)[0])
    gen_f = torch.from_numpy(ctx.gen(ctx.judge)[0])
    test_f = torch.from_numpy(ctx.real_test(ctx.judge)[0])
    rng = np.random.default_rng(ctx.seed)
    q_gen = np.sort(rng.choice(len(gen_f), min(MEMORIZATION_QUERIES, len(gen_f)), replace=False))
    q_test = np.sort(rng.choice(len(test_f), min(MEMORIZATION_QUERIES, len(test_f)), replace=False))
    out: dict[str, float] = {}
    for space, g, t, r in (("judge", gen_f[q_gen], test_f[q_test], train_f),
                           ("pixel", ctx.gen_x[q_gen], ctx.real.x[q_test], train.x)):
        share = memorization.memorization_share(nearest_l2(g, r), nearest_l2(t, r))
        out.update({f"{k}_{space}": v for k, v in share.items()})
    path = ctx.figure("memorization")
    if path is not None:
        from condgan.report.figures import neighbour_grid

        # One sample per class (its first), with its nearest training images: pixel L1 (the paper's
        # display), then judge-feature L2.
        shown = [int(np.flatnonzero(ctx.gen_y == k)[0]) for k in range(ctx.num_classes) if (ctx.gen_y == k).any()]
        shown = shown[:MEMORIZATION_GRID]
        i_pix, _ = memorization.nearest_neighbours(ctx.gen_x[shown], train.x, NEIGHBOURS_SHOWN, "l1")
        i_feat, _ = memorization.nearest_neighbours(gen_f[shown], train_f, NEIGHBOURS_SHOWN, "l2")
        rows = [torch.cat([ctx.gen_x[s:s + 1], train.x[i_pix[j]], train.x[i_feat[j]]]) for j, s in enumerate(shown)]
        neighbour_grid(to_uint8_nhwc(torch.cat(rows)), len(shown), 1 + 2 * NEIGHBOURS_SHOWN, path)
    return out


@_register("interpolation", lambda ctx: "pixels:l2 (generator)", ())
def _interpolation(ctx: EvalContext) -> dict[str, float]:
    if ctx.run is None:
        raise ConfigError("metric interpolation needs a model: use --run RUN instead of --samples")
    from condgan.report.figures import interpolation_figures

    method = ctx.run.method
    device = next(method.parameters()).device
    k = ctx.num_classes
    rows = min(k, 10)
    gen = torch.Generator().manual_seed(ctx.seed)
    t = torch.linspace(0, 1, INTERP_FRAMES)
    with torch.no_grad():
        # Along z at a fixed class (paper fig. 8 top): z_t = (1 - t) z_0 + t z_1, class r per row.
        z0, z1 = method.latent(rows, generator=gen), method.latent(rows, generator=gen)
        z = ((1 - t)[None, :, None] * z0[:, None] + t[None, :, None] * z1[:, None]).reshape(rows * INTERP_FRAMES, -1)
        c = torch.arange(rows).repeat_interleave(INTERP_FRAMES)
        along_z = method.generate(z.to(device), c.to(device)).cpu()
        # Along the class input at a fixed z: the one-hot of class r blends into that of class r+1.
        eye = torch.eye(k)
        start, stop = eye[:rows], eye[(torch.arange(rows) + 1) % k]
        onehot = (1 - t)[None, :, None] * start[:, None] + t[None, :, None] * stop[:, None]
        zc = method.latent(rows, generator=gen).repeat_interleave(INTERP_FRAMES, 0)
        try:
            along_c = method.generate(zc.to(device), onehot.reshape(rows * INTERP_FRAMES, k).to(device)).cpu()
        except (RuntimeError, TypeError) as exc:
            raise ConfigError(f"metric interpolation: expected a generator that takes class vectors, "
                              f"found one that does not ({exc})") from None
    out: dict[str, float] = {}
    ratios = {}
    for name, frames in (("z", along_z), ("class", along_c)):
        frames = frames.reshape(rows, INTERP_FRAMES, *frames.shape[1:])
        scores = [interpolation.jump_score(f) for f in frames]
        ratios[name] = [s["jump_ratio"] for s in scores]
        out[f"interp_{name}_jump_ratio_max"] = float(max(ratios[name]))
        out[f"interp_{name}_jump_ratio_median"] = float(np.median(ratios[name]))
        out[f"interp_{name}_share_flagged"] = float(np.mean(np.array(ratios[name]) > JUMP_FLAG))
        path = ctx.figure(f"interpolation_{name}")
        if path is not None:
            interpolation_figures(to_uint8_nhwc(frames.reshape(-1, *frames.shape[2:])), rows, INTERP_FRAMES,
                                  frames, JUMP_FLAG, path, ctx.figure(f"interpolation_{name}_steps"))
    return out


DEFAULT_METRICS = ("is", "fid", "kid", "prdc", "intra_fid", "accuracy", "resolution_sweep", "diversity",
                   "correlation", "memorization")


def check_samples(images: np.ndarray, labels: np.ndarray, real: LabelledData, source: str,
                  pairs: int | None) -> None:
    """Refuse samples unlike the real data: dtype, shape, label range, too few per class.

    Raises:
        SamplesError naming `source` (the file) and the array, expected vs found.
    """
    if images.dtype != np.uint8:
        raise SamplesError(f"{source}: images: expected uint8 values in [0, 255], found dtype {images.dtype}")
    c, h, w = real.x.shape[1:]
    if images.ndim != 4 or images.shape[1:] != (h, w, c):
        raise SamplesError(f"{source}: images: expected N×{h}×{w}×{c} like {real.name}, found shape {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise SamplesError(f"{source}: labels: expected {images.shape[0]} labels (one per image), "
                           f"found shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise SamplesError(f"{source}: labels: expected int64, found dtype {labels.dtype}")
    k = real.num_classes
    if len(labels) and (labels.min() < 0 or labels.max() >= k):
        raise SamplesError(f"{source}: labels: expected values in [0, {k}) ({real.name} classes), "
                           f"found [{labels.min()}, {labels.max()}]")
    counts = np.bincount(labels.astype(np.int64), minlength=k)
    need = 2
    if pairs is not None:
        # n (n - 1) / 2 >= pairs distinct same-class pairs for the MS-SSIM diversity.
        need = max(need, int(np.ceil((1 + np.sqrt(1 + 8 * pairs)) / 2)))
    if counts.min() < need:
        why = f"{pairs} MS-SSIM pairs (--pairs)" if pairs is not None and need > 2 else "per-class statistics"
        raise SamplesError(f"{source}: labels: expected at least {need} samples per class for {why}, "
                           f"found {counts.min()} for class {int(counts.argmin())}")


def load_samples(path: str | Path, real: LabelledData, pairs: int | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """Read a samples .npz (`images` uint8 N×H×W×C, `labels` int N) checked against `real`.

    Returns:
        (images float N×C×H×W in [-1, 1], labels int64 N).
    """
    path = Path(path)
    arrays = load_npz(path, f"samples file {path}", SamplesError)  # bounded, no pickles
    for key in ("images", "labels"):
        if key not in arrays:
            raise SamplesError(f"samples file {path}: expected arrays 'images' and 'labels', "
                               f"found {sorted(arrays) or 'none'}")
    check_samples(arrays["images"], arrays["labels"], real, f"samples file {path}", pairs)
    return images_to_unit_range(arrays["images"]), arrays["labels"].astype(np.int64)


def evaluate(
    gen_x: torch.Tensor,
    gen_y: np.ndarray,
    real: LabelledData,
    *,
    judge=None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    features: Extractor | None = None,
    train_data: Callable[[], LabelledData] | None = None,
    run: object | None = None,
    pairs: int = 100,
    seed: int = 0,
    out_dir: str | Path | None = None,
    progress: bool = True,
    cache_dir: Path | None = None,
    use_cache: bool = True,
) -> dict:
    """Run `metrics` (names of `EVAL_METRICS`) on samples against a real (test) set.

    Args:
        gen_x: (N, C, H, W) samples in [-1, 1]; gen_y: (N,) the classes they were conditioned on.
        real: the real reference set (the test split), same image shape and classes.
        judge: the domain judge (`condgan.metrics.classifier.Judge`); None is allowed when only
            metrics that need no network are asked for (diversity, interpolation).
        features: extractor for is/fid/kid/prdc/intra_fid; None uses the judge.
        train_data: loads the real training set (memorisation only).
        run: a `condgan.sample.LoadedRun` (interpolation only).
        pairs: MS-SSIM pairs per class (diversity).
        out_dir: where figure PNGs go; None writes none.

    Returns:
        {"metrics": flat floats, "extractors": metric → extractor id, "keys": metric → its keys,
         "figures": name → file,
         "inputs": what was evaluated, "seconds": metric → wall time, "cache_hits": real-feature cache}.
    """
    names = list(dict.fromkeys(metrics))
    for name in names:
        EVAL_METRICS.get(name)  # unknown names fail before any work
    judge_ex = judge_extractor(judge) if judge is not None else None
    available = {"judge": judge_ex, "features": features or judge_ex}
    for name in names:
        for need in EVAL_METRICS.get(name).needs:
            if available[need] is None:
                raise ConfigError(f"metric {name}: expected a judge (judge=...), found none")
    if judge is not None and (tuple(judge.sample_shape) != tuple(real.x.shape[1:])
                              or len(judge.class_names) != real.num_classes):
        raise ConfigError(f"judge {judge.id}: expected {real.num_classes} classes of shape "
                          f"{tuple(real.x.shape[1:])} like {real.name}, found {len(judge.class_names)} classes "
                          f"of shape {tuple(judge.sample_shape)}")
    ctx = EvalContext(gen_x, np.asarray(gen_y, dtype=np.int64), real, judge_ex, features or judge_ex,
                      train_data, run, pairs, seed, Path(out_dir) if out_dir is not None else None, progress,
                      cache_dir, use_cache)
    if ctx.out_dir is not None:
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
    values: dict[str, float] = {}
    extractors: dict[str, str] = {}
    seconds: dict[str, float] = {}
    keys: dict[str, list[str]] = {}
    for name in names:
        t0 = time.perf_counter()
        part = ctx.result(name)
        values.update(part)
        keys[name] = list(part)
        seconds[name] = time.perf_counter() - t0
        extractors[name] = EVAL_METRICS.get(name).extractor(ctx)
    inputs = {"num_samples": int(len(gen_x)), "sample_shape": list(gen_x.shape[1:]), "real": real.name,
              "real_split": "test", "num_real": int(len(real.x)), "num_classes": real.num_classes,
              "pairs": pairs, "seed": seed}
    return {"metrics": values, "extractors": extractors, "keys": keys, "figures": dict(ctx.figures),
            "inputs": inputs, "seconds": seconds, "cache_hits": dict(ctx.cache_hits)}


def parse_metrics(text: str | None, with_run: bool = False) -> list[str]:
    """`--metrics a,b,c` → names checked against `EVAL_METRICS`; None/empty → `DEFAULT_METRICS`
    (plus interpolation when a run is evaluated)."""
    if not text:
        return list(DEFAULT_METRICS) + (["interpolation"] if with_run else [])
    names = [part.strip() for part in text.split(",") if part.strip()]
    for name in names:
        if name not in EVAL_METRICS:
            raise ConfigError(f"--metrics: unknown metric {name!r}; expected some of: "
                              f"{', '.join(EVAL_METRICS.names())}")
    return names


def run_eval(
    *,
    out_dir: str | Path,
    samples: str | Path | None = None,
    real: str | None = None,
    data_dir: str | None = None,
    run: str | Path | None = None,
    n: int = 10_000,
    metrics: Sequence[str] = DEFAULT_METRICS,
    pairs: int = 100,
    judge_path: str | Path | None = None,
    inception_weights: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    cache_dir: Path | None = None,
) -> dict:
    """What `condgan eval` does: load samples (a file, or drawn from a run), the real test set and
    the judge, evaluate, and write `metrics.json` + `report.html` (+ figures) into `out_dir`."""
    from condgan.data import load_dataset
    from condgan.metrics.classifier import default_judge_path, load_judge
    from condgan.metrics.features import inception_extractor
    from condgan.report.html import write_report

    if (samples is None) == (run is None):
        raise ConfigError("condgan eval: expected exactly one of --samples FILE or --run RUN")
    if isinstance(pairs, bool) or pairs < 1:
        raise ConfigError(f"--pairs: expected a positive number of pairs per class, found {pairs}")
    loaded = None
    if run is not None:
        from condgan.sample import generate, load_run

        if n < 1:
            raise ConfigError(f"--n: expected a positive number of samples, found {n}")
        loaded = load_run(run)
        d = loaded.config.data
        real_set = load_dataset(real or d.name, "test", data_dir=data_dir or d.data_dir, resolution=d.resolution,
                                channels=d.channels)
        x, y = generate(loaded.method, n, seed=seed)
        # Round through uint8 so that the numbers equal those of the same samples saved by `condgan sample`.
        images, labels = to_uint8_nhwc(x), y.numpy()
        check_samples(images, labels, real_set, f"run {run} (--n {n})", pairs if "diversity" in metrics else None)
        gen_x, gen_y = images_to_unit_range(images), labels.astype(np.int64)
        train_kwargs = dict(data_dir=data_dir or d.data_dir, resolution=d.resolution, channels=d.channels)
    else:
        if real is None:
            raise ConfigError("condgan eval: --samples needs --real NAME (the dataset the samples imitate)")
        real_set = load_dataset(real, "test", data_dir=data_dir)
        gen_x, gen_y = load_samples(samples, real_set, pairs if "diversity" in metrics else None)
        train_kwargs = dict(data_dir=data_dir)
    if not real_set.is_image:
        raise ConfigError(f"condgan eval: {real_set.name} holds 2D points; the suite is for images")
    dataset_name = real or loaded.config.data.name
    judge = load_judge(judge_path or default_judge_path(real_set.name, tuple(real_set.x.shape[1:])))
    features = inception_extractor(inception_weights) if inception_weights else None
    result = evaluate(gen_x, gen_y, real_set, judge=judge, metrics=metrics, features=features,
                      train_data=lambda: load_dataset(dataset_name, "train", **train_kwargs), run=loaded,
                      pairs=pairs, seed=seed, out_dir=out_dir, progress=progress, cache_dir=cache_dir)
    result["inputs"].update({"samples": str(samples) if samples else None, "run": str(run) if run else None,
                             "run_step": loaded.step if loaded else None, "judge_test_accuracy": judge.test_accuracy})
    write_report(result, out_dir)
    return result
