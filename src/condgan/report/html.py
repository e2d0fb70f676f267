"""The evaluation report: `metrics.json` (all numbers, extractor ids, inputs) and `report.html`,
written side by side.

The page reads from the top down, most useful first:

1. a summary: each headline number beside its real-data reference, and a plain-words reading;
2. the sample grid (`samples.png`);
3. one per-class table (judge accuracy, CAS, MS-SSIM, intra-FID, nearest-neighbour distance,
   each beside the real reference), the worst classes highlighted;
4. the figures, with captions;
5. every number of every metric with its extractor, the metrics skipped and why, and the raw inputs.

The page is self-contained: no scripts, no network, images by file name from the same folder.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from condgan.io import atomic_write
from condgan.metrics.diversity import less_diverse_classes

# Classes highlighted in the per-class table: the WORST_CLASSES largest shortfalls of judge accuracy
# on samples below the judge's accuracy on real images of the class (CAS, then MS-SSIM break ties).
WORST_CLASSES = 3
# Figures that are pixel grids: shown enlarged without smoothing.
PIXEL_GRIDS = {"samples", "memorization", "interpolation_z", "interpolation_class"}

CAPTIONS = {
    "samples": "Samples: each column holds the first samples of a class in the samples file.",
    "samples_run": "Samples drawn from the run: each row shares one noise vector z, each column is a class "
                   "(AC-GAN paper fig. 9 layout).",
    "resolution_sweep": "Judge accuracy after shrinking images to r×r and enlarging them back (bilinear), samples "
                        "and real test images (AC-GAN paper fig. 2). A curve still rising at full size means the "
                        "extra pixels carry class information.",
    "diversity": "Per-class MS-SSIM of random same-class pairs: real test images (x) against samples (y) (AC-GAN "
                 "paper fig. 3). Above the diagonal: the samples of that class are less diverse than real ones; "
                 "the dashed line is the least diverse real class.",
    "correlation": "Per class: judge accuracy on samples against their MS-SSIM (paper sec. 4.3, Pearson r in the "
                   "title). A positive trend means the recognisable classes are the collapsed ones.",
    "memorization": "Memorisation check: each row is a sample (the first of its class), then its 3 nearest "
                    "training images in pixel L1, then its 3 nearest in judge features. Near-copies show up as "
                    "identical neighbours.",
    "interpolation_z": "Interpolation along z at a fixed class (one row per class, 9 frames).",
    "interpolation_z_steps": "Step sizes along each z path over its median step; red paths jump (a sign of "
                             "memorised, disconnected outputs).",
    "interpolation_class": "Interpolation along the class input at a fixed z: the one-hot of class r blends into "
                           "that of class r+1.",
    "interpolation_class_steps": "Step sizes along each class path over its median step; red paths jump.",
}

CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:0 auto;padding:0 16px;color:#222;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.4em 0}td,th{padding:2px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.name{white-space:nowrap}
.num .x{font-weight:normal;color:#666}
.wide{overflow-x:auto;max-width:100%}
.x{color:#555;font-size:90%}code{word-break:break-all}
.worst td{background:#fde8e8!important}.bad{color:#b00020;font-weight:600}
.summary td{padding:4px 10px}.reading{font-size:105%}
.figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:16px;align-items:start}
figure{margin:8px 0;max-width:100%}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figure.grid img{image-rendering:pixelated;width:min(100%,440px)}
figure.samples img{image-rendering:pixelated;width:min(100%,760px)}
figcaption{font-size:88%;color:#444;max-width:760px}
pre{white-space:pre-wrap;word-break:break-all;background:#f7f7f7;padding:8px;font-size:85%}
"""


def fmt_number(value: float | None) -> str:
    """A number for reading: 3 significant digits (one decimal from 100 on); '–' for none/NaN."""
    if value is None or math.isnan(value):
        return "–"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3g}"


def fmt_percent(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.0f}%"


def judge_range(m: dict, key: str, fmt: Callable[[float], str]) -> str | None:
    """'lo–hi' over the judges when the spread across judges of `key` is present, else None."""
    head, sep, tail = key.partition("/")
    lo, hi = m.get(f"{head}_judges_min{sep}{tail}"), m.get(f"{head}_judges_max{sep}{tail}")
    return None if lo is None or hi is None else f"{fmt(lo)}–{fmt(hi)}"


def _spread(m: dict, key: str, fmt: Callable[[float], str]) -> str:
    """' (judges: lo–hi)' for a sentence, or ''."""
    r = judge_range(m, key, fmt)
    return "" if r is None else f" (judges: {r})"


def _spread_html(m: dict, key: str, fmt: Callable[[float], str]) -> str:
    """The range across judges as a small second line of a table cell, or ''."""
    r = judge_range(m, key, fmt)
    return "" if r is None else f"<br><span class=x>judges {html.escape(r)}</span>"


def per_class(m: dict, prefix: str) -> list[float] | None:
    """[m[prefix/class_0], m[prefix/class_1], ...] or None when absent."""
    out, k = [], 0
    while f"{prefix}/class_{k}" in m:
        out.append(m[f"{prefix}/class_{k}"])
        k += 1
    return out or None


@dataclass(frozen=True)
class Headline:
    """One summary row: a number, its real-data reference, and how to say it in words."""

    label: str
    key: str
    reference: str  # how the reference is described
    value: Callable[[dict], float | None]
    ref: Callable[[dict], str | None]
    reading: Callable[[dict], str | None]


def _read_accuracy(m: dict) -> str | None:
    if "accuracy" not in m:
        return None
    a, r = m["accuracy"], m.get("real_accuracy")
    word = "recognisable" if r is None or a >= r - 0.05 else "partly recognisable" if a >= 0.5 * (r or 1) \
        else "hard to recognise"
    return (f"{word}: {fmt_percent(a)} of samples are classified as their class by the judge"
            f"{_spread(m, 'accuracy', fmt_percent)}; real test images: {fmt_percent(r)}")


def _read_cas(m: dict) -> str | None:
    if "cas" not in m:
        return None
    c, r = m["cas"], m.get("cas_real")
    return (f"a classifier trained only on the samples labels {fmt_percent(c)} of real test images correctly "
            f"(the judge, trained on real images: {fmt_percent(r)}); a large gap means classes are missing variety "
            f"or mixed up")


def _read_diversity(m: dict) -> str | None:
    gen, real = per_class(m, "msssim_gen"), per_class(m, "msssim_real")
    if gen is None or real is None:
        return None
    flags = _less_diverse(m)
    worse = sum(flags)
    beyond = " beyond sampling error" if per_class(m, "msssim_gen_se") is not None else ""
    if worse == 0:
        return (f"as diverse as real in all {len(gen)} classes{beyond} (no class's MS-SSIM of samples above real's "
                f"by more than twice its standard error)" if beyond else
                f"as diverse as real or more in all {len(gen)} classes (MS-SSIM of samples ≤ real in each class)")
    return (f"less diverse than real in {worse} of {len(gen)} classes{beyond} (higher MS-SSIM between same-class "
            f"samples than between real images of that class" + (", by more than twice its standard error)"
                                                                 if beyond else ")"))


def _less_diverse(m: dict) -> list[bool]:
    """Per class, the samples are less diverse than real (`diversity.less_diverse_classes`, with the
    standard errors where the result has them)."""
    return less_diverse_classes(per_class(m, "msssim_gen"), per_class(m, "msssim_real"),
                                per_class(m, "msssim_gen_se"), per_class(m, "msssim_real_se"))


def _read_fid(m: dict) -> str | None:
    if "fid" not in m:
        return None
    f, floor = m["fid"], m.get("fid_real_floor")
    if floor is None:
        return f"FID {fmt_number(f)}{_spread(m, 'fid', fmt_number)} (lower is better)"
    ratio = f / floor if floor > 0 else math.inf
    word = "close to real" if ratio < 2 else "noticeably apart from real" if ratio < 10 else "far from real"
    return (f"{word}: FID {fmt_number(f)}{_spread(m, 'fid', fmt_number)}, {ratio:.0f}× the FID between two halves of the "
            f"real test set ({fmt_number(floor)})") if ratio >= 2 else \
        f"{word}: FID {fmt_number(f)}{_spread(m, 'fid', fmt_number)} against {fmt_number(floor)} between two halves of the real test set"


def _read_memorization(m: dict) -> str | None:
    if "memorization_share_pixel" not in m:
        return None
    s, q = m["memorization_share_pixel"], m.get("memorization_quantile_pixel", 0.05)
    word = "no sign of copying" if s <= 2 * q else "copying suspected"
    return (f"{word}: {fmt_percent(s)} of samples lie closer to a training image than the closest {fmt_percent(q)} of real "
            f"test images do (pixel L2; ≈ {fmt_percent(q)} without copying)")


def _real_range(m: dict) -> str | None:
    real = per_class(m, "msssim_real")
    return None if real is None else f"{min(real):.3f}–{max(real):.3f} across classes (mean {m['msssim_real_mean']:.3f})"


HEADLINES = [
    Headline("judge accuracy (GAN-test)", "accuracy", "judge on real test images", lambda m: m.get("accuracy"),
             lambda m: fmt_percent(m["real_accuracy"]) if "real_accuracy" in m else None, _read_accuracy),
    Headline("CAS (GAN-train)", "cas", "judge (trained on real) on real test", lambda m: m.get("cas"),
             lambda m: fmt_percent(m["cas_real"]) if "cas_real" in m else None, _read_cas),
    Headline("MS-SSIM of samples (diversity)", "msssim_gen_mean", "real test images, per class",
             lambda m: m.get("msssim_gen_mean"), _real_range, _read_diversity),
    Headline("FID", "fid", "two halves of the real test set", lambda m: m.get("fid"),
             lambda m: fmt_number(m["fid_real_floor"]) if "fid_real_floor" in m else None, _read_fid),
    Headline("memorisation share (pixels)", "memorization_share_pixel", "expected without copying",
             lambda m: m.get("memorization_share_pixel"),
             lambda m: fmt_percent(m["memorization_quantile_pixel"]) if "memorization_quantile_pixel" in m else None,
             _read_memorization),
]


def _summary(result: dict) -> str:
    m = result["metrics"]
    rows, readings = [], []
    for h in HEADLINES:
        value = h.value(m)
        if value is None:
            continue
        shown = fmt_percent(value) if h.key in ("accuracy", "cas", "memorization_share_pixel") else fmt_number(value)
        spread = _spread_html(m, h.key, fmt_percent if h.key in ("accuracy", "cas") else fmt_number)
        extractor = extractor_of(result, h.key)
        rows.append(f"<tr><td>{html.escape(h.label)}</td><td class=num><b>{shown}</b>{spread}</td>"
                    f"<td>{html.escape(h.ref(m) or '–')}</td><td class=x>{html.escape(h.reference)}</td>"
                    f"<td class=x><code>{html.escape(extractor)}</code></td></tr>")
        reading = h.reading(m)
        if reading:
            readings.append(f"<li>{html.escape(reading)}</li>")
    if not rows:
        return "<p>No headline metric was computed; see all numbers below.</p>"
    table = ("<div class=wide><table class=summary><tr><th>headline</th><th>samples</th><th>real reference</th>"
             f"<th>reference is</th><th>extractor</th></tr>{''.join(rows)}</table></div>")
    return f"<ul class=reading>{''.join(readings)}</ul>{table}"


def extractor_of(result: dict, key: str) -> str:
    for name, keys in result.get("keys", {}).items():
        if key in keys:
            return result["extractors"].get(name, "")
    return ""


PER_CLASS_COLUMNS = [
    # (header, samples prefix, real prefix, format, higher is better)
    ("judge accuracy", "accuracy", "real_accuracy", fmt_percent, True),
    ("CAS", "cas", "cas_real", fmt_percent, True),
    ("MS-SSIM", "msssim_gen", "msssim_real", lambda v: f"{v:.3f}", False),
    ("intra-FID", "intra_fid", None, fmt_number, False),
    ("NN distance (px L2)", "nn_l2_pixel", "real_nn_l2_pixel", lambda v: f"{v:.2f}", None),
]


def _per_class_table(result: dict) -> str:
    m = result["metrics"]
    columns = [c for c in PER_CLASS_COLUMNS if per_class(m, c[1]) is not None]
    if not columns:
        return ""
    k = len(per_class(m, columns[0][1]))
    names = result.get("inputs", {}).get("class_names") or [str(i) for i in range(k)]
    worst = _worst_classes(m, k)
    less_diverse = _less_diverse(m) if per_class(m, "msssim_gen") and per_class(m, "msssim_real") else [False] * k
    head = "".join(f"<th>{html.escape(c[0])}<br><span class=x>samples{' (real)' if c[2] else ''}</span></th>"
                   for c in columns)
    body = []
    for i in range(k):
        cells = []
        for _, gen_p, real_p, fmt, higher in columns:
            g = per_class(m, gen_p)[i]
            r = per_class(m, real_p)[i] if real_p and per_class(m, real_p) else None
            if gen_p == "msssim_gen":
                worse = less_diverse[i]
            else:
                worse = r is not None and higher is not None and ((g < r - 0.05) if higher else (g > r))
            text = fmt(g) + (f" ({fmt(r)})" if r is not None else "")
            spread = _spread_html(m, f"{gen_p}/class_{i}", fmt)
            cells.append(f"<td class='num{' bad' if worse else ''}'>{html.escape(text)}{spread}</td>")
        label = html.escape(f"{i} {names[i]}" if i < len(names) else str(i))
        body.append(f"<tr{' class=worst' if i in worst else ''}><td class=name>{label}</td>{''.join(cells)}</tr>")
    many = " With several judges the grey line is the range across them." if len(result.get("judges") or []) > 1 else ""
    legend = (f"Highlighted rows: the {len(worst)} classes furthest below their real reference (judge accuracy "
              "on samples against on real images of the class; ties broken by CAS, then MS-SSIM). Red numbers "
              "are worse than the real reference (accuracy more than 5 points lower; MS-SSIM higher by more than "
              "twice its standard error over the pairs, i.e. less diverse). NN distance: median pixel-L2 distance to the nearest training image (samples much closer "
              "than real images hug the training set). intra-FID: FID within the class." + many) if worst else ""
    return (f"<div class=wide><table><tr><th>class</th>{head}</tr>{''.join(body)}</table></div>"
            f"<p class=x>{legend}</p>")


def _worst_classes(m: dict, k: int) -> set[int]:
    """The WORST_CLASSES classes with the largest shortfall below the real reference (module constant)."""
    if k <= WORST_CLASSES:
        return set()
    keys = []
    for gen_p, real_p, sign in (("accuracy", "real_accuracy", 1), ("cas", "cas_real", 1),
                                ("msssim_gen", "msssim_real", -1)):
        gen, real = per_class(m, gen_p), per_class(m, real_p)
        if gen is not None and real is not None:
            keys.append([sign * (g - r) for g, r in zip(gen, real)])
    if not keys:
        return set()
    return set(sorted(range(k), key=lambda i: tuple(col[i] for col in keys))[:WORST_CLASSES])


def _all_numbers(result: dict) -> str:
    values = result["metrics"]
    rows = []
    for name, extractor in result["extractors"].items():
        keys = result["keys"][name]
        # Per-class entries and spreads across judges go in folded lists so the tables stay short.
        summary = [k for k in keys if "/class_" not in k and "/cluster_" not in k]
        detail = [k for k in keys if k not in summary]
        cells = "".join(f"<tr><td>{html.escape(k)}</td><td class=num>{values[k]:.6g}</td></tr>" for k in summary)
        more = ""
        if detail:
            inner = "".join(f"<tr><td>{html.escape(k)}</td><td class=num>{values[k]:.6g}</td></tr>" for k in detail)
            more = f"<details><summary>{len(detail)} per-class values</summary><table>{inner}</table></details>"
        secs = result["seconds"].get(name, 0.0)
        rows.append(f"<h3>{html.escape(name)}</h3><p class=x>extractor: <code>{html.escape(extractor)}</code>"
                    f" &middot; {secs:.1f} s</p><table>{cells}</table>{more}")
    return "".join(rows)


def _judges(result: dict) -> str:
    judges = result.get("judges") or []
    if len(judges) < 2:
        return ""
    rows = "".join(f"<tr><td><code>{html.escape(j['id'])}</code></td><td class=num>{j.get('seed')}</td>"
                   f"<td class=num>{fmt_percent(j['test_accuracy'])}</td>"
                   f"<td class=num>{fmt_percent(j.get('metrics', {}).get('accuracy'))}</td></tr>" for j in judges)
    return ("<h2>judges</h2><p>Every judge-based number above is the first judge's; the others give the spread "
            "(keys <code>…_judges_{mean,std,min,max}</code>; per-judge values in metrics.json → judges).</p>"
            "<div class=wide><table><tr><th>judge</th><th>seed</th><th>real test accuracy</th>"
            f"<th>accuracy on samples</th></tr>{rows}</table></div>")


def _figures(result: dict) -> tuple[str, str]:
    """(the sample grid, the other figures), each as <figure> elements with captions."""
    names = result.get("inputs", {}).get("class_names")

    def fig(name: str, file: str) -> str:
        caption = CAPTIONS.get("samples_run" if name == "samples" and result.get("inputs", {}).get("run") else name,
                               name)
        if name == "samples" and names and result.get("inputs", {}).get("label_kind") == "class":
            caption += " Columns, left to right: " + ", ".join(f"{i} {n}" for i, n in enumerate(names[:20])) + "."
        if name == "samples" and result.get("inputs", {}).get("generator_weights"):
            caption += f" Generator: {result['inputs']['generator_weights']}."
        cls = " class=samples" if name == "samples" else " class=grid" if name in PIXEL_GRIDS else ""
        return (f"<figure{cls}><img src='{html.escape(file)}' alt='{html.escape(name)}'>"
                f"<figcaption><b>{html.escape(name)}</b>: {html.escape(caption)}</figcaption></figure>")

    figures = result.get("figures", {})
    grid = fig("samples", figures["samples"]) if "samples" in figures else ""
    rest = "".join(fig(n, f) for n, f in figures.items() if n != "samples")
    return grid, f"<div class=figs>{rest}</div>" if rest else ""


def _subtitle(result: dict) -> str:
    i = result.get("inputs", {})
    weights = f" ({i['generator_weights']})" if i.get("generator_weights") else ""
    source = (f"run {i['run']} at step {i.get('run_step')}{weights}" if i.get("run") else
              f"samples file {i['samples']}" if i.get("samples") else "samples")
    stats = i.get("real_stats")
    against = (f"the {i.get('real')} {i.get('real_split') or 'test'} split ({i.get('num_real') or '?'} images)"
               + (f"; fid/intra_fid against a statistics file ({stats['source']}, {stats['extractor_id']})"
                  if stats else ""))
    if stats and "num_classes" not in i:  # statistics alone, no real images
        against = f"statistics of {i.get('real')} ({stats['source']}, {stats['extractor_id']}); no real images"
    return f"{source}: {i.get('num_samples')} samples ({i.get('label_kind')} labels) against {against}"


def render_page(result: dict, title: str) -> str:
    """The report page (module docstring) of one result of `condgan.evaluation.suite.evaluate`."""
    grid, figures = _figures(result)
    skipped = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(why)}</li>" for n, why in result["skipped"].items())
    table = _per_class_table(result)
    inputs = html.escape(json.dumps(result["inputs"], indent=1))
    parts = [f"<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
             f"<title>{html.escape(title)}</title><style>{CSS}</style><body>",
             f"<h1>{html.escape(title)}</h1><p class=x>{html.escape(_subtitle(result))}</p>",
             f"<h2>summary</h2>{_summary(result)}"]
    if grid:
        parts.append(f"<h2>samples</h2>{grid}")
    if table:
        parts.append(f"<h2>per class</h2>{table}")
    if figures:
        parts.append(f"<h2>figures</h2>{figures}")
    parts.append(_judges(result))
    parts.append(f"<h2>all numbers</h2>{_all_numbers(result)}")
    if skipped:
        parts.append(f"<h2>skipped metrics</h2><ul>{skipped}</ul>")
    parts.append(f"<h2>inputs</h2><pre>{inputs}</pre></body></html>")
    return "".join(parts)


def write_report(result: dict, out_dir: str | Path, title: str = "condgan evaluation") -> tuple[Path, Path]:
    """Write `metrics.json` and `report.html` for a result of `condgan.evaluation.suite.evaluate`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "metrics.json"
    text = json.dumps(result, indent=1, sort_keys=True)
    atomic_write(json_path, lambda tmp: tmp.write_text(text))
    page = render_page(result, title)
    html_path = out / "report.html"
    atomic_write(html_path, lambda tmp: tmp.write_text(page))
    return json_path, html_path
