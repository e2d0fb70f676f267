"""`condgan report A B ... --out DIR`: several evaluations side by side in one page.

Each evaluation is a `condgan eval` report directory (or its `metrics.json`). The page holds one
table of the headline numbers (rows) per evaluation (columns), each row with its real-data
reference, and the extractor that produced it: a row whose evaluations used different extractors is
marked "not comparable" (numbers from different networks are never compared). Below it, each
evaluation's sample grid, embedded in the page. When two or more evaluations come from the same
run at different training steps (`inputs.run`, `inputs.run_step`), `steps.png` plots each headline
metric over the steps, the real references dashed.

The output folder holds `report.html` and `steps.png` only; the grids are embedded (base64), so
the page can be moved or mailed as is.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

from condgan.errors import ReportError
from condgan.io import atomic_write
from condgan.report.html import CSS, extractor_of, fmt_number, fmt_percent, judge_range
from condgan.report.plotting import pyplot, save_figure

# (label, key, real reference key, percent?) of the comparison table and the steps plot.
ROWS = [
    ("judge accuracy (GAN-test)", "accuracy", "real_accuracy", True),
    ("CAS (GAN-train)", "cas", "cas_real", True),
    ("FID", "fid", "fid_real_floor", False),
    ("KID", "kid_mean", None, False),
    ("IS", "is_mean", None, False),
    ("intra-FID (mean)", "intra_fid_mean", None, False),
    ("MS-SSIM of samples (mean)", "msssim_gen_mean", "msssim_real_mean", False),
    ("precision", "precision", None, False),
    ("recall", "recall", None, False),
    ("memorisation share (pixels)", "memorization_share_pixel", "memorization_quantile_pixel", True),
    ("cluster agreement", "cluster_agreement", None, True),
]


def load_evaluation(path: Path) -> dict:
    """The result stored in an eval directory's metrics.json (or that file itself)."""
    file = path / "metrics.json" if path.is_dir() else path
    try:
        result = json.loads(file.read_text())
    except FileNotFoundError:
        raise ReportError(f"{path}: expected a `condgan eval` report directory or its metrics.json, "
                          f"found no {file}") from None
    except (OSError, ValueError) as exc:
        raise ReportError(f"{file}: expected the JSON written by `condgan eval`, could not read it ({exc})") from None
    if not isinstance(result, dict) or not isinstance(result.get("metrics"), dict):
        raise ReportError(f"{file}: expected a `metrics` object (written by `condgan eval`), found none")
    result["_dir"] = file.parent
    return result


def _name(result: dict) -> str:
    i = result.get("inputs", {})
    if i.get("run"):
        return f"{Path(i['run']).name} @ {i.get('run_step')}"
    if i.get("samples"):
        return Path(i["samples"]).name
    return result["_dir"].name


def _steps_series(results: list[dict]) -> list[dict] | None:
    """The evaluations sorted by step when all come from one run at two or more distinct steps."""
    runs = {r.get("inputs", {}).get("run") for r in results}
    steps = [r.get("inputs", {}).get("run_step") for r in results]
    if len(runs) != 1 or None in runs or None in steps or len(set(steps)) < 2:
        return None
    return sorted(results, key=lambda r: r["inputs"]["run_step"])


def steps_plot(series: list[dict], path: Path) -> Path | None:
    """One panel per headline metric present at two or more steps: its value over training steps,
    the reference dashed."""
    rows = [row for row in ROWS if sum(row[1] in r["metrics"] for r in series) >= 2]
    if not rows:
        return None
    plt = pyplot()
    cols = min(3, len(rows))
    n_rows = math.ceil(len(rows) / cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(3.6 * cols, 2.6 * n_rows), dpi=100, squeeze=False)
    steps = [r["inputs"]["run_step"] for r in series]
    for ax, (label, key, ref, _) in zip(axes.flat, rows):
        ys = [r["metrics"].get(key, math.nan) for r in series]
        ax.plot(steps, ys, marker="o", label="samples")
        if ref:
            refs = [r["metrics"].get(ref, math.nan) for r in series]
            if any(not math.isnan(v) for v in refs):
                ax.plot(steps, refs, ls="--", color="gray", label="real reference")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("training step", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(rows):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def _embedded_grid(result: dict) -> str | None:
    file = result.get("figures", {}).get("samples")
    if not file or not (result["_dir"] / file).is_file():
        return None
    data = base64.b64encode((result["_dir"] / file).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def render_comparison(results: list[dict], steps_file: str | None) -> str:
    names = [_name(r) for r in results]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = []
    for label, key, ref, pct in ROWS:
        if not any(key in r["metrics"] for r in results):
            continue
        fmt = fmt_percent if pct else fmt_number
        extractors = {extractor_of(r, key) for r in results if key in r["metrics"]}
        note = "" if len(extractors) <= 1 else " <span class=bad>not comparable: extractors differ</span>"
        cells = []
        for r in results:
            m = r["metrics"]
            text = fmt(m[key]) if key in m else "–"
            if ref and ref in m:
                text += f" ({fmt(m[ref])})"
            spread = judge_range(m, key, fmt)
            extra = f"<br><span class=x>judges {html.escape(spread)}</span>" if spread else ""
            cells.append(f"<td class=num>{html.escape(text)}{extra}</td>")
        body.append(f"<tr><td>{html.escape(label)}{note}</td>{''.join(cells)}</tr>")
    ext_rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td><code>{html.escape(', '.join(sorted(set(r['extractors'].values()))))}"
        f"</code></td></tr>" for n, r in zip(names, results))
    grids = []
    for n, r in zip(names, results):
        src = _embedded_grid(r)
        if src:
            grids.append(f"<figure class=grid><img src='{src}' alt='samples of {html.escape(n)}'>"
                         f"<figcaption>{html.escape(n)}</figcaption></figure>")
    parts = ["<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
             f"<title>condgan evaluations</title><style>{CSS}figure.grid img{{width:min(100%,340px)}}.row{{display:flex;flex-wrap:wrap;gap:16px}}</style><body>",
             f"<h1>condgan evaluations</h1><p class=x>{len(results)} evaluations. In brackets: the real-data "
             "reference of the same evaluation (judge accuracy and CAS on real test images, FID between two halves "
             "of the real test set, MS-SSIM of real images, the memorisation share expected without copying); in "
             "grey, the range across judges where an evaluation used several.</p>",
             f"<div class=wide><table><tr><th>metric</th>{head}</tr>{''.join(body)}</table></div>"]
    if steps_file:
        parts.append(f"<h2>over training steps</h2><figure><img src='{html.escape(steps_file)}' alt='metrics over "
                     "steps'><figcaption>Each headline metric over the run's training steps; dashed: the real "
                     "reference.</figcaption></figure>")
    if grids:
        parts.append(f"<h2>samples</h2><div class=row>{''.join(grids)}</div>")
    parts.append(f"<h2>extractors</h2><div class=wide><table>{ext_rows}</table></div></body></html>")
    return "".join(parts)


def write_comparison(paths: list[Path], out_dir: Path) -> Path:
    """Write `report.html` (and `steps.png` for one run's steps) comparing the evaluations in `paths`."""
    if not paths:
        raise ReportError("condgan report: expected at least one evaluation directory")
    results = [load_evaluation(Path(p)) for p in paths]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    series = _steps_series(results)
    steps_file = None
    if series is not None and steps_plot(series, out_dir / "steps.png") is not None:
        steps_file = "steps.png"
        results = series
    page = render_comparison(results, steps_file)
    path = out_dir / "report.html"
    atomic_write(path, lambda tmp: tmp.write_text(page))
    return path
