"""benchmarks/quality_per_budget.py keeps one machine and one budget per result directory: CPU-minutes
of different machines buy different numbers of steps, so their results must not share a table."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import quality_per_budget as qpb  # noqa: E402


def _write(out: Path, entry: str, seed: int, machine: dict | None, budget: float = 10.0) -> Path:
    row = {"entry": entry, "seed": seed, "budget_cpu_min": budget, "steps": 1, "curve": [], "metrics": {"fid": 1.0}}
    if machine is not None:
        row["machine"] = machine
    path = out / f"{entry}-seed{seed}.json"
    path.write_text(json.dumps(row))
    return path


def test_this_machine_names_the_cpu_threads_and_torch():
    m = qpb.this_machine(2)
    assert m["threads"] == 2 and m["torch"] and m["cpu"]
    if Path("/proc/cpuinfo").is_file() and "model name" in Path("/proc/cpuinfo").read_text():
        assert m["cpu"].split(" (family")[0] in Path("/proc/cpuinfo").read_text()


def test_summarise_reads_results_of_one_machine(tmp_path):
    m = qpb.this_machine(2)
    _write(tmp_path, "default", 0, m)
    _write(tmp_path, "default", 1, m)
    _write(tmp_path, "tacgan-ms", 0, m)
    results = qpb.saved_results(tmp_path)
    assert [r["seed"] for r in results["default"]] == [0, 1] and len(results["tacgan-ms"]) == 1
    assert "tacgan" not in results  # "tacgan-ms-seed0.json" is not an entry "tacgan" result


@pytest.mark.parametrize("other", [{"cpu": "another CPU", "threads": 2, "torch": "2.13.0"}, None])
def test_summarise_refuses_results_of_two_machines(tmp_path, other):
    _write(tmp_path, "default", 0, qpb.this_machine(2))
    odd = _write(tmp_path, "default", 1, other)
    with pytest.raises(qpb.Refused, match=r"default-seed1\.json is (another CPU|not recorded).* but .*default-seed0\.json is .*use another --out"):
        qpb.saved_results(tmp_path)


def test_a_run_refuses_to_add_to_results_of_another_budget_before_training(tmp_path, monkeypatch):
    kept = _write(tmp_path, "default", 0, qpb.this_machine(2), budget=10.0)
    before = kept.read_text()
    monkeypatch.setattr(qpb, "load_dataset", lambda *a, **k: pytest.fail("loaded data before the check"))
    args = argparse.Namespace(out=str(tmp_path), threads=2, budget=3.0, entries=["default"], seeds=[1])
    with pytest.raises(qpb.Refused, match=r"default-seed0\.json is .*budget 10\.0 CPU-min, but this run is .*budget 3\.0 CPU-min"):
        qpb.run_all(args, qpb.this_machine(2))
    assert kept.read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["default-seed0.json"]


@pytest.mark.parametrize("text", ['{"entry": "default", "seed": 0, "budg', "[]", '{"entry": "default"}'])
def test_a_torn_or_foreign_result_file_is_refused_in_one_line(tmp_path, text):
    _write(tmp_path, "default", 0, qpb.this_machine(2))
    bad = tmp_path / "default-seed1.json"
    bad.write_text(text)
    with pytest.raises(qpb.Refused, match=r"default-seed1\.json is not a result file of this benchmark"):
        qpb.saved_results(tmp_path)
    assert bad.read_text() == text


def test_the_command_refuses_in_one_line_with_exit_code_2(tmp_path):
    _write(tmp_path, "default", 0, qpb.this_machine(2))
    _write(tmp_path, "default", 1, {"cpu": "another CPU", "threads": 2, "torch": "2.13.0"})
    kept = {p.name: p.read_text() for p in tmp_path.iterdir()}
    out = subprocess.run([sys.executable, str(Path(qpb.__file__)), "--summarise", "--out", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("quality_per_budget: error: ") and "default-seed1.json" in lines[0]
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == kept


def test_figure_draws_each_band_in_its_lines_colour(tmp_path):
    """An entry with one seed has no band, so the bands after it must not take the next fill colour."""
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt

    def rows(n, base):
        return [{"curve": [{"cpu_min": t, "fid": base + s + 10 / t} for t in (1.0, 2.0)]} for s in range(n)]

    qpb.figure({"a": rows(2, 10), "b": rows(1, 20), "c": rows(2, 30)}, tmp_path / "fig.png")
    ax = plt.gcf().axes[0]
    lines = {line.get_label(): line.get_color() for line in ax.get_lines()}
    bands = [mcolors.to_hex(c.get_facecolor()[0], keep_alpha=False) for c in ax.collections]
    assert bands == [mcolors.to_hex(lines["a"]), mcolors.to_hex(lines["c"])]
    assert ax.get_xlabel() == "training CPU-minutes (process time)"  # rows that do not record their machine
    plt.close("all")


def test_figure_names_the_threads_the_results_ran_with(tmp_path):
    import matplotlib.pyplot as plt

    machine = {"cpu": "some CPU", "threads": 3, "torch": "2.13.0"}
    rows = [{"machine": machine, "curve": [{"cpu_min": t, "fid": 10 / t} for t in (1.0, 2.0)]}]
    qpb.figure({"a": rows}, tmp_path / "fig.png")
    assert plt.gcf().axes[0].get_xlabel() == "training CPU-minutes (process time, 3 threads)"
    plt.close("all")


def test_table_reports_each_entrys_largest_class_msssim_gap(capsys):
    """The table's gap column is the largest |generated − real| MS-SSIM over the classes, whichever
    side it falls on (CC-LAPGAN's target), as a mean over seeds."""
    def row(gen, real):
        metrics = {f"msssim_gen/class_{c}": g for c, g in enumerate(gen)}
        metrics.update({f"msssim_real/class_{c}": r for c, r in enumerate(real)})
        return {"steps": 10, "metrics": metrics}

    qpb.table({"cclapgan": [row([0.50, 0.60], [0.50, 0.45]), row([0.30, 0.40], [0.35, 0.40])]})
    header, _, line = capsys.readouterr().out.strip().splitlines()
    cells = dict(zip(header.split(" | "), line.split(" | ")))
    assert cells["largest class MS-SSIM gap"] == "0.100 ± 0.071"


@pytest.mark.parametrize("entry", list(qpb.ENTRIES))
def test_every_entry_resolves_to_a_valid_config(entry):
    # A misspelt override would otherwise surface only after the entries before it have trained.
    preset, overrides = qpb.ENTRIES[entry]
    cfg = qpb._config(entry, 3, [])
    assert cfg.train.seed == 3
    for override in overrides:
        field, value = override.split("=", 1)
        section, key = field.split(".")
        found = str(getattr(getattr(cfg, section), key)).lower()
        assert found in {value.lower(), str(float(value)) if value[0].isdigit() else value}, override
