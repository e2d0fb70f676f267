"""Training faults against the real CLI (`python -m condgan.cli train` in subprocesses): SIGKILL at
random moments, SIGTERM/SIGINT, two writers, stale locks, torn rows, leftover temporary files, a NaN
gradient under a finite loss, a full disk and starts that fail; every recovered run must equal an
uninterrupted one bit for bit (rows without images_per_sec, weights, buffers, optimiser states).

The scenarios live in benchmarks/faults.py (one place; `python benchmarks/faults.py` prints them as a
table with more seeds and kills); here they run at CI size.
"""

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cli_data import write_fashion_like
from condgan.errors import RunDirError
from condgan.run.directory import remove_temp_files, truncate_metrics
from condgan.run.lock import RunLock

_spec = importlib.util.spec_from_file_location("benchmark_faults", Path(__file__).parents[1] / "benchmarks" / "faults.py")
faults = sys.modules.setdefault("benchmark_faults", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(faults)


RING_STEPS = 30  # one uninterrupted reference serves every 2D-ring case


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def refs(work):
    return faults.References(work)


def assert_all_survived(outcomes):
    assert outcomes
    bad = [str(o) for o in outcomes if not o.survived or o.rows_lost]
    assert not bad, "\n".join(bad)


def test_sigterm_and_sigkill_acgan_batchnorm_misaligned_intervals(work, refs):
    """DCGAN nets with BatchNorm, checkpoints every 7 steps and rows every 3: SIGTERM (a second
    --resume and a --force are refused meanwhile), then a SIGKILL followed by a torn row, a
    leftover temporary file and the dead process's lock; each then --resume."""
    argv = faults.fashion_acgan(write_fashion_like(work / "fm-data"))
    outcomes = faults.interrupted_chain(work, refs, "fm", argv, 60, ["term", "kill"], seed=0, max_delay=0.5)
    assert {"fm: SIGTERM saves and exits 143", "fm: stale lock taken over", "fm: leftover temp file cleaned",
            "fm: torn metrics.jsonl line", "second writer (--resume) refused",
            "second writer (--force) refused, nothing deleted"} <= {o.case for o in outcomes}, outcomes
    assert_all_survived(outcomes)


def test_sigkill_selfcond_gan_ring(work, refs):
    """Self-Cond GAN re-clustering every 9 steps, checkpoints every 10, rows every 4; killed at a random moment."""
    outcomes = faults.interrupted_chain(work, refs, "selfcond", faults.selfcond_ring(), 40, ["kill"], seed=1,
                                        max_delay=0.5)
    assert_all_survived(outcomes)


def test_sigint_saves_at_the_step_boundary_and_resumes_exactly(work, refs):
    assert_all_survived(faults.signal_in_process(work, refs, faults.acgan_ring(), RING_STEPS, signal.SIGINT, 13))


def test_nan_gradient_under_finite_loss_then_resume_in_a_subprocess(work, refs):
    assert_all_survived(faults.nan_gradient(work, refs, faults.acgan_ring(), RING_STEPS, at=17))


@pytest.mark.parametrize("target, at", [("checkpoint", 20), ("metrics", 12)])
def test_disk_full_during_a_training_write(work, refs, target, at):
    assert_all_survived(faults.disk_full_in_process(work, refs, faults.acgan_ring(), RING_STEPS, target, at))


def test_disk_full_on_a_real_tmpfs(work, refs):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    outcomes = faults.disk_full_tmpfs(work, refs, faults.acgan_ring())
    if outcomes[0].note.startswith("skipped"):
        pytest.skip(outcomes[0].note)
    assert_all_survived(outcomes)


def test_failed_starts_leave_the_directory_byte_identical(work, refs):
    assert_all_survived(faults.failed_starts(work, refs, faults.acgan_ring(), RING_STEPS))


# ---------------------------------------------------------------- the mechanisms alone (fast)


def test_stale_lock_of_a_killed_process_is_taken_over(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from condgan.run.lock import RunLock; "
         f"RunLock({str(run)!r}).acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, env=os.environ.copy())
    assert holder.stdout.readline().strip() == b"held"
    with pytest.raises(RunDirError, match=rf"being written by another condgan process \(pid {holder.pid} on host "):
        RunLock(run).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert json.loads((run / ".lock").read_text())["pid"] == holder.pid  # left behind by the kill
    lock = RunLock(run).acquire()
    assert lock.stale is not None and lock.stale.pid == holder.pid
    lock.release()
    assert not (run / ".lock").exists()


def test_lock_on_a_new_directory_leaves_nothing_when_released(tmp_path):
    lock = RunLock(tmp_path / "a" / "run").acquire()
    assert (tmp_path / "a" / "run" / ".lock").exists()
    lock.release()
    assert not (tmp_path / "a" / "run").exists()


def test_truncate_metrics_keeps_what_the_checkpoint_accounts_for(tmp_path):
    good = [json.dumps({"step": s, "D/loss": 1.0}) for s in (3, 6, 9)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(good) + "\n" + '{"step": 12, "D/loss": 1.0}\n["x"]\n{"step": 1')
    assert truncate_metrics(tmp_path, 10) == 3
    assert (tmp_path / "metrics.jsonl").read_text() == "\n".join(good) + "\n"
    before = (tmp_path / "metrics.jsonl").stat().st_mtime_ns
    assert truncate_metrics(tmp_path, 10) == 0
    assert (tmp_path / "metrics.jsonl").stat().st_mtime_ns == before  # nothing to drop: not rewritten


def test_only_the_runs_own_temporary_files_are_removed(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    ours = [tmp_path / "checkpoints" / ".ckpt-00000010.pt.ab12cd.tmp", tmp_path / ".config.yaml.xy.tmp"]
    others = [tmp_path / ".samples.npz.qq.tmp", tmp_path / "checkpoints" / "notes.tmp"]
    for p in ours + others:
        p.write_text("x")
    assert sorted(remove_temp_files(tmp_path)) == sorted(ours)
    assert all(p.exists() for p in others)
