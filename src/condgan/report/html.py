"""The evaluation report: `metrics.json` (all numbers, extractor ids, inputs) and `report.html`
(a table per metric with the extractor beside it, and the figures), written side by side."""

from __future__ import annotations

import html
import json
from pathlib import Path

from condgan.io import atomic_write


def write_report(result: dict, out_dir: str | Path, title: str = "condgan evaluation") -> tuple[Path, Path]:
    """Write `metrics.json` and `report.html` for a result of `condgan.evaluation.suite.evaluate`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "metrics.json"
    text = json.dumps(result, indent=1, sort_keys=True)
    atomic_write(json_path, lambda tmp: tmp.write_text(text))

    values = result["metrics"]
    rows = []
    for name, extractor in result["extractors"].items():
        keys = result["keys"][name]
        # Per-class entries go in a folded list so the summary stays short.
        summary = [k for k in keys if "/class_" not in k]
        detail = [k for k in keys if "/class_" in k]
        cells = "".join(f"<tr><td>{html.escape(k)}</td><td>{values[k]:.6g}</td></tr>" for k in summary)
        more = ""
        if detail:
            inner = "".join(f"<tr><td>{html.escape(k)}</td><td>{values[k]:.6g}</td></tr>" for k in detail)
            more = f"<details><summary>{len(detail)} per-class values</summary><table>{inner}</table></details>"
        secs = result["seconds"].get(name, 0.0)
        rows.append(f"<h3>{html.escape(name)}</h3><p class=x>extractor: <code>{html.escape(extractor)}</code>"
                    f" &middot; {secs:.1f} s</p><table>{cells}</table>{more}")
    skipped = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(why)}</li>" for n, why in result["skipped"].items())
    if skipped:
        rows.append(f"<h3>skipped</h3><ul>{skipped}</ul>")
    figures = "".join(f"<figure><img src='{html.escape(f)}'><figcaption>{html.escape(n)}</figcaption></figure>"
                      for n, f in result["figures"].items())
    inputs = html.escape(json.dumps(result["inputs"], indent=1))
    page = (f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}td{padding:1px 8px}"
            "figure{display:inline-block;margin:6px;vertical-align:top}.x{color:#555;font-size:90%}</style>"
            f"<h1>{html.escape(title)}</h1><h2>inputs</h2><pre>{inputs}</pre><h2>metrics</h2>{''.join(rows)}"
            f"<h2>figures</h2>{figures}")
    html_path = out / "report.html"
    atomic_write(html_path, lambda tmp: tmp.write_text(page))
    return json_path, html_path
