"""The evaluation suite's metric registry: which features, splits and subset sizes each metric uses.

Each entry adapts a pure metric function (condgan.metrics) to an `EvalContext`: it takes the
features the context extracted once, and returns a flat dict of floats with stable keys. Which
numbers used which network (docs/evaluation.md):

    is, fid, kid, prdc, intra_fid    the feature extractor (judge by default; Inception if given)
    accuracy, resolution_sweep       the judge (dataset classes are needed)
    diversity                        pixels: MS-SSIM at `msssim.default_settings` for the size
    correlation                      judge accuracy vs pixel MS-SSIM, per class
    memorization                     pixels (L2 share, L1 grid) and judge features (L2)
    interpolation                    pixels of the run's generator (needs `run`)
    cluster_agreement                the judge's classes vs the samples' cluster ids (Self-Cond GAN)

Metrics that need dataset classes apply only to class-labelled samples; `EvalMetric.skip_reason`
says why one is skipped.
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
from condgan.metrics import clusters, correlation, discriminability, diversity, fid, inception_score
from condgan.metrics import interpolation, kid, memorization, prdc
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


@dataclass(frozen=True)
class EvalMetric:
    """A suite entry: `fn(ctx) -> flat dict`, which network its numbers come from, which networks
    it needs ("judge", "features"; MS-SSIM and interpolation need none), and which kinds of sample
    labels it applies to (condgan.samples: "class", "cluster", "none")."""

    fn: Callable[[EvalContext], dict[str, float]]
    extractor: Callable[[EvalContext], str]
    needs: tuple[str, ...]
    labels: tuple[str, ...]

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
              labels: tuple[str, ...] = ("class",)):
    return lambda fn: EVAL_METRICS.add(name, EvalMetric(fn, extractor, needs, labels))


_FEATURES = lambda ctx: ctx.features.id  # noqa: E731
_JUDGE = lambda ctx: ctx.judge.id  # noqa: E731


@_register("is", _FEATURES, ("features",), ANY_LABELS)
def _is(ctx: EvalContext) -> dict[str, float]:
    # Salimans et al. 2016: 10 splits; over the judge, IS is bounded by num_classes.
    return inception_score.inception_score(ctx.gen(ctx.features)[1], splits=10)


@_register("fid", _FEATURES, ("features",), ANY_LABELS)
def _fid(ctx: EvalContext) -> dict[str, float]:
    return fid.fid(ctx.real_test(ctx.features)[0], ctx.gen(ctx.features)[0])


@_register("kid", _FEATURES, ("features",), ANY_LABELS)
def _kid(ctx: EvalContext) -> dict[str, float]:
    return kid.kid(ctx.real_test(ctx.features)[0], ctx.gen(ctx.features)[0], num_subsets=100, subset_size=1000)


@_register("prdc", _FEATURES, ("features",), ANY_LABELS)
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
                    discriminability.resize_down_up(ctx.gen_x, r), desc=f"samples {r}px", progress=ctx.options.progress)[1]
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
           labels=ANY_LABELS)
def _memorization(ctx: EvalContext) -> dict[str, float]:
    train = ctx.train()
    train_f = torch.from_numpy(ctx.real_train(ctx.judge)[0])
    gen_f = torch.from_numpy(ctx.gen(ctx.judge)[0])
    test_f = torch.from_numpy(ctx.real_test(ctx.judge)[0])
    rng = np.random.default_rng(ctx.options.seed)
    q_gen = np.sort(rng.choice(len(gen_f), min(MEMORIZATION_QUERIES, len(gen_f)), replace=False))
    q_test = np.sort(rng.choice(len(test_f), min(MEMORIZATION_QUERIES, len(test_f)), replace=False))
    out: dict[str, float] = {}
    for space, g, t, r in (("judge", gen_f[q_gen], test_f[q_test], train_f),
                           ("pixel", ctx.gen_x[q_gen], ctx.real.x[q_test], train.x)):
        share = memorization.memorization_share(memorization.nearest_l2(g, r), memorization.nearest_l2(t, r))
        out.update({f"{k}_{space}": v for k, v in share.items()})
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
