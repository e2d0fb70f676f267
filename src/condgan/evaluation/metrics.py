"""The evaluation suite's metric registry: which features, splits and subset sizes each metric uses.

Each entry adapts a pure metric function (condgan.metrics) to an `EvalContext`: it takes the
features the context extracted once, and returns a flat dict of floats with stable keys. Which
numbers used which network (docs/evaluation.md):

    is, fid, kid, prdc, intra_fid    the feature extractor (judge by default; Inception if given);
                                     fid also gives the real-vs-real floor (two halves of the test set)
    accuracy, resolution_sweep       the judge (dataset classes are needed); accuracy is GAN-test
    cas                              a JudgeCNN trained on the samples, tested on real images (GAN-train),
                                     beside the judge's real test accuracy
    diversity                        pixels: MS-SSIM at `msssim.default_settings` for the size
    correlation                      judge accuracy vs pixel MS-SSIM, per class
    memorization                     pixels (L2 share, L1 grid, per-class L2) and judge features (L2)
    interpolation                    pixels of the run's generator (needs `run`)
    cluster_agreement                the judge's classes vs the samples' cluster ids (Self-Cond GAN)

Metrics that need dataset classes apply only to class-labelled samples; `EvalMetric.skip_reason`
says why one is skipped. With several judges (`evaluate(..., extra_judges=...)`) every metric whose
numbers come from the judge is computed once per judge (`EvalMetric.per_judge`), CAS excepted: its
classifier is trained on the samples, not taken from a judge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from condgan.data import LabelledData
from condgan.data.base import to_uint8_nhwc
from condgan.errors import ConfigError
from condgan.evaluation.context import EvalContext
from condgan.metrics import cas, clusters, correlation, discriminability, diversity, fid, inception_score
from condgan.metrics import interpolation, kid, memorization, prdc, stats
from condgan.metrics.msssim import default_settings
from condgan.registry import Registry

# Memorisation: samples and test images whose nearest training neighbours are searched for the
# share metric (exhaustive search over the whole training set), and samples shown in the grid.
MEMORIZATION_QUERIES = 500
MEMORIZATION_GRID = 10
NEIGHBOURS_SHOWN = 3
# Per-class nearest-neighbour distance (pixel L2): samples and real test images drawn per class.
NN_PER_CLASS = 50
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


@dataclass(frozen=True)
class EvalMetric:
    """A suite entry: `fn(ctx) -> flat dict`, which network its numbers come from, which networks
    it needs ("judge", "features"; MS-SSIM and interpolation need none), which kinds of sample
    labels it applies to (condgan.samples: "class", "cluster", "none"), whether it is computed
    again for each further judge (`per_judge`; only when it needs the judge's features or logits),
    which of its keys do not depend on the judge (`judge_free`, e.g. memorisation's pixel part:
    no spread across judges is reported for them), and whether it runs without real images
    (`without_real`: it needs none, or takes the real set's feature statistics, `EvalContext.real_stats`)."""

    fn: Callable[[EvalContext], dict[str, float]]
    extractor: Callable[[EvalContext], str]
    needs: tuple[str, ...]
    labels: tuple[str, ...]
    per_judge: bool = True
    judge_free: Callable[[str], bool] = lambda key: False
    without_real: bool = False

    def uses_judge(self, features_are_judge: bool) -> bool:
        """Whether this metric's numbers depend on the judge's weights (and so differ between judges)."""
        return self.per_judge and ("judge" in self.needs or ("features" in self.needs and features_are_judge))

    def skip_reason(self, label_kind: str) -> str | None:
        """Why this metric does not apply to samples whose labels are `label_kind` (None: it applies)."""
        if label_kind in self.labels:
            return None
        if self.labels == ("cluster",):
            return "needs cluster-labelled samples (Self-Cond GAN); these samples' labels are " + label_kind
        return {"cluster": "needs dataset classes; these samples are labelled by cluster ids (Self-Cond GAN), "
                           "see cluster_agreement",
                "none": "needs dataset classes; these samples are unconditional (no labels)"}[label_kind]


EVAL_METRICS: Registry[EvalMetric] = Registry("metric")


def _msssim_id(ctx: EvalContext) -> str:
    s = default_settings(*ctx.gen_x.shape[2:])
    return f"pixels:ms-ssim(win={s.win_size},sigma=1.5,scales={len(s.weights)},convention=pytorch_msssim)"


ANY_LABELS = ("class", "cluster", "none")


def _register(name: str, extractor: Callable[[EvalContext], str], needs: tuple[str, ...] = ("judge",),
              labels: tuple[str, ...] = ("class",), per_judge: bool = True,
              judge_free: Callable[[str], bool] = lambda key: False, without_real: bool = False):
    return lambda fn: EVAL_METRICS.add(name, EvalMetric(fn, extractor, needs, labels, per_judge, judge_free,
                                                        without_real))


_FEATURES = lambda ctx: ctx.features.id  # noqa: E731


def _features_vs_stats(ctx: EvalContext) -> str:
    """The extractor id, and where the real side's statistics came from when not from real images."""
    if ctx.real_stats is None:
        return ctx.features.id
    return f"{ctx.features.id}; real: statistics file ({ctx.real_stats.source}, {ctx.real_stats.extractor_id})"
_JUDGE = lambda ctx: ctx.judge.id  # noqa: E731


@_register("is", _FEATURES, ("features",), ANY_LABELS, without_real=True)
def _is(ctx: EvalContext) -> dict[str, float]:
    # Salimans et al. 2016: 10 splits; over the judge, IS is bounded by num_classes.
    return inception_score.inception_score(ctx.gen(ctx.features)[1], splits=10)


@_register("fid", _features_vs_stats, ("features",), ANY_LABELS, without_real=True)
def _fid(ctx: EvalContext) -> dict[str, float]:
    gen = ctx.gen(ctx.features)[0]
    if ctx.real_stats is not None:
        out = stats.fid_from_stats(ctx.real_stats, gen, ctx.features.id)
    else:
        out = fid.fid(ctx.real_test(ctx.features)[0], gen)
    if ctx.real is None:
        return out
    # The floor: FID between two disjoint random halves of the real test set, same features. What a
    # generator as good as the data would score at this sample size (half the real set per side, so
    # it sits a little above the FID of a perfect generator against the whole set).
    real = ctx.real_test(ctx.features)[0]
    half = np.random.default_rng(ctx.options.seed).permutation(len(real))
    floor = fid.fid(real[half[:len(real) // 2]], real[half[len(real) // 2:]])["fid"]
    return {**out, "fid_real_floor": floor}


@_register("kid", _FEATURES, ("features",), ANY_LABELS)
def _kid(ctx: EvalContext) -> dict[str, float]:
    return kid.kid(ctx.real_test(ctx.features)[0], ctx.gen(ctx.features)[0], num_subsets=100, subset_size=1000)


@_register("prdc", _FEATURES, ("features",), ANY_LABELS)
def _prdc(ctx: EvalContext) -> dict[str, float]:
    return prdc.prdc(ctx.real_test(ctx.features)[0], ctx.gen(ctx.features)[0], k=5)


@_register("intra_fid", _features_vs_stats, ("features",), without_real=True)
def _intra_fid(ctx: EvalContext) -> dict[str, float]:
    if ctx.real_stats is not None:
        return stats.intra_fid_from_stats(ctx.real_stats, ctx.gen(ctx.features)[0], ctx.gen_y, ctx.features.id)
    return fid.intra_class_fid(ctx.real_test(ctx.features)[0], ctx.real.y.numpy(), ctx.gen(ctx.features)[0],
                               ctx.gen_y)


@_register("accuracy", _JUDGE)
def _accuracy(ctx: EvalContext) -> dict[str, float]:
    gen = discriminability.accuracy(ctx.gen(ctx.judge)[1], ctx.gen_y, ctx.num_classes)
    real = discriminability.accuracy(ctx.real_test(ctx.judge)[1], ctx.real.y.numpy(), ctx.num_classes)
    return {**gen, **{f"real_{k}": v for k, v in real.items()}}


@_register("cas", lambda ctx: f"judge-cnn trained on the samples ({ctx.options.cas_epochs} epochs, seed {ctx.options.seed}), "
                              f"tested on {ctx.real.name} test; cas_real: {ctx.judge.id}", per_judge=False)
def _cas(ctx: EvalContext) -> dict[str, float]:
    # GAN-train (Ravuri & Vinyals 2019; Shmelkov et al. 2018) beside the same test for the judge, the
    # same architecture and recipe trained on the real training set.
    out = cas.classification_accuracy_score(ctx.gen_x, ctx.gen_y, ctx.real, epochs=ctx.options.cas_epochs, seed=ctx.options.seed,
                                            progress=ctx.options.progress)
    real = discriminability.accuracy(ctx.real_test(ctx.judge)[1], ctx.real.y.numpy(), ctx.num_classes)
    return {**out, **{k.replace("accuracy", "cas_real", 1): v for k, v in real.items()},
            "cas_epochs": float(ctx.options.cas_epochs)}


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
                    discriminability.resize_down_up(ctx.gen_x, r), desc=f"samples {r}px", progress=ctx.options.progress)[1]
            else:
                y = data.y.numpy()
                if r == full:
                    logits = ctx.real_test(ctx.judge)[1]
                else:
                    small = LabelledData(discriminability.resize_down_up(data.x(), r), data.y, data.class_names,
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
    out = diversity.diversity_report(ctx.gen_x, ctx.gen_y, ctx.real.x(), ctx.real.y.numpy(), ctx.num_classes,
                                     pairs_per_class=ctx.options.pairs, seed=ctx.options.seed)
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


@_register("memorization", lambda ctx: f"pixels:l2 (share), pixels:l1 (grid) + {ctx.judge.id} (l2)",
           labels=ANY_LABELS, judge_free=lambda key: "pixel" in key)
def _memorization(ctx: EvalContext) -> dict[str, float]:
    train = ctx.train()
    train_x = train.x()  # float, once: the pixel distances below read it several times
    train_f = torch.from_numpy(ctx.real_train(ctx.judge)[0])
    gen_f = torch.from_numpy(ctx.gen(ctx.judge)[0])
    test_f = torch.from_numpy(ctx.real_test(ctx.judge)[0])
    rng = np.random.default_rng(ctx.options.seed)
    q_gen = np.sort(rng.choice(len(gen_f), min(MEMORIZATION_QUERIES, len(gen_f)), replace=False))
    q_test = np.sort(rng.choice(len(test_f), min(MEMORIZATION_QUERIES, len(test_f)), replace=False))
    out: dict[str, float] = {}
    share = memorization.memorization_share(memorization.nearest_l2(gen_f[q_gen], train_f),
                                            memorization.nearest_l2(test_f[q_test], train_f))
    out.update({f"{k}_judge": v for k, v in share.items()})
    # The pixel parts do not depend on the judge: computed once, shared with further judges' contexts.
    out.update(ctx.memo("pixel:memorization", lambda: _memorization_pixels(ctx, train_x, q_gen, q_test, rng)))
    path = ctx.figure("memorization")
    if path is not None:
        from condgan.report.figures import neighbour_grid

        # One sample per class (its first; without dataset classes the first samples), with its
        # nearest training images: pixel L1 (the paper's display), then judge-feature L2.
        if ctx.label_kind == "class":
            shown = [int(np.flatnonzero(ctx.gen_y == k)[0]) for k in range(ctx.num_classes) if (ctx.gen_y == k).any()]
        else:
            shown = list(range(len(ctx.gen_x)))
        shown = shown[:MEMORIZATION_GRID]
        i_pix, _ = memorization.nearest_neighbours(ctx.gen_x[shown], train_x, NEIGHBOURS_SHOWN, "l1")
        i_feat, _ = memorization.nearest_neighbours(gen_f[shown], train_f, NEIGHBOURS_SHOWN, "l2")
        rows = [torch.cat([ctx.gen_x[s:s + 1], train_x[i_pix[j]], train_x[i_feat[j]]]) for j, s in enumerate(shown)]
        neighbour_grid(to_uint8_nhwc(torch.cat(rows)), len(shown), 1 + 2 * NEIGHBOURS_SHOWN, path)
    return out


def _memorization_pixels(ctx: EvalContext, train_x: torch.Tensor, q_gen: np.ndarray, q_test: np.ndarray,
                         rng: np.random.Generator) -> dict[str, float]:
    """Pixel-L2 nearest training neighbours of the share's queries and, for class labels, of the
    per-class draws (`_nn_per_class`), in one exhaustive search (one pass over the training set)."""
    per_class = _per_class_queries(ctx, rng) if ctx.label_kind == "class" else []
    queries = [ctx.gen_x[q_gen], ctx.real.x(q_test)] + [x for _, _, x in per_class]
    dist = memorization.nearest_l2(torch.cat(queries), train_x)
    parts = np.split(dist, np.cumsum([len(q) for q in queries])[:-1])
    share = memorization.memorization_share(parts[0], parts[1])
    out = {f"{k}_pixel": v for k, v in share.items()}
    if per_class:
        out.update(_nn_per_class([(key, k, d) for (key, k, _), d in zip(per_class, parts[2:])]))
    return out


def _per_class_queries(ctx: EvalContext, rng: np.random.Generator) -> list[tuple[str, int, torch.Tensor]]:
    """(key, class, images): up to NN_PER_CLASS samples and as many real test images of each class."""
    out = []
    real_y = ctx.real.y.numpy()
    real_x = ctx.real.x()
    for k in range(ctx.num_classes):
        for key, x, y in (("nn_l2_pixel", ctx.gen_x, ctx.gen_y), ("real_nn_l2_pixel", real_x, real_y)):
            idx = np.flatnonzero(y == k)
            out.append((key, k, x[np.sort(rng.choice(idx, min(NN_PER_CLASS, len(idx)), replace=False))]))
    return out


def _nn_per_class(distances: list[tuple[str, int, np.ndarray]]) -> dict[str, float]:
    """Per class: the median pixel-L2 distance of the class's samples, and of as many real test
    images, to their nearest training image (the second is what a novel image of the class scores;
    samples much closer than it hug the training set)."""
    out: dict[str, float] = {}
    medians: dict[str, list[float]] = {"nn_l2_pixel": [], "real_nn_l2_pixel": []}
    for key, k, d in distances:
        value = float(np.median(d)) if len(d) else float("nan")
        out[f"{key}/class_{k}"] = value
        medians[key].append(value)
    for key, values in medians.items():
        out[f"{key}_mean"] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
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
    gen = torch.Generator().manual_seed(ctx.options.seed)
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




@_register("cluster_agreement", _JUDGE, labels=("cluster",))
def _cluster_agreement(ctx: EvalContext) -> dict[str, float]:
    # Self-Cond GAN samples carry cluster ids: how well do clusters map onto the judge's classes?
    predicted = ctx.gen(ctx.judge)[1].argmax(1)
    return clusters.cluster_agreement(ctx.gen_y, predicted, ctx.num_classes)
