"""The fault-injection harness (tests/faults/) with one trial per cheap fault: corrupt dataset files, corrupt
checkpoints, NaN in an update, disk full and permission denied. Kills are covered by tests/test_train.py
(test_resume_after_sigkill_is_exact); `python -m tests.faults` runs them too.

The gaps the script found on its first runs (no checkpoint checksum; tracebacks for a damaged config.json, a failed
mkdir of checkpoints/, a failed curves.png write) were fixed in a57e16c; these tests keep them fixed.
"""

import numpy as np
import pytest

from tests import faults


def _assert_no_failures(rows):
    assert rows
    for row in rows:
        assert row.outcomes and "FAILED" not in row.outcomes, f"{row.fault}: {row.notes}"


@pytest.fixture(scope="module")
def lab(tiny_data_dir, tmp_path_factory):
    return faults.Lab(tmp_path_factory.mktemp("faults"), tiny_data_dir, log=lambda line: None)


def test_corrupt_dataset_files_give_one_clear_line(lab):
    rows = faults.fault_data(lab, 1, np.random.default_rng(0), cli="inprocess")
    assert len(rows) == len(faults.DATA_KINDS)
    _assert_no_failures(rows)


# Random bit flips are left to the script (about 1 s each to save here): "one low bit flipped in a parameter" is the
# harder case, the smallest change inside the parameter bytes, which only the checksum catches.
RUN_FOLDER_KINDS = [*(k for k in faults.CKPT_KINDS if k != "1-8 random bit flips"), faults.CONFIG_KIND]


@pytest.mark.parametrize("kind", RUN_FOLDER_KINDS)
@pytest.mark.slow
def test_damaged_checkpoint_or_config_is_handled(lab, kind):
    rows = faults.fault_ckpt(lab, 1, np.random.default_rng(0), kinds=[kind])
    _assert_no_failures(rows)
    assert rows[0].outcomes == ["clear error" if kind == faults.CONFIG_KIND else "resumed exactly"]


@pytest.mark.slow
def test_nan_stops_with_the_step_or_is_skipped(lab):
    rows = faults.fault_nan(lab, 1, np.random.default_rng(0))
    _assert_no_failures(rows)
    assert [row.outcomes for row in rows] == [["clear error"], ["data intact"]]


@pytest.mark.parametrize("kind", list(faults.DISK_KINDS))
@pytest.mark.slow
def test_failed_writes_stop_cleanly_and_resume_exactly(lab, kind):
    rows = faults.fault_disk(lab, 1, np.random.default_rng(0), kinds=[kind])
    _assert_no_failures(rows)
    allowed = [["clear error"], ["data intact"]] if kind in faults.MAY_CONTINUE else [["clear error"]]
    assert rows[0].outcomes in allowed


# ---- the checks themselves ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_resume_that_is_not_exact_is_reported_as_failed(lab, monkeypatch):
    """With CSV truncation on resume broken, the checkpoint fault must see the duplicated rows and say FAILED."""
    from sscp.runlog import CSVLogger

    monkeypatch.setattr(CSVLogger, "truncate", lambda self, position: None)
    rows = faults.fault_ckpt(lab, 1, np.random.default_rng(0), kinds=["zero-length file"])
    assert rows[0].outcomes == ["FAILED"]
    assert any("duplicated steps" in note or "differs from the reference" in note for note in rows[0].notes)


def test_trials_that_raise_count_as_failed():
    row = faults.Row("fault", "checked")
    assert row.trial(lambda notes: "clear error", log=lambda line: None) == "clear error"
    assert row.trial(lambda notes: faults.check(False, "it broke"), log=lambda line: None) == "FAILED"
    assert row.trial(lambda notes: 1 / 0, log=lambda line: None) == "FAILED"
    assert row.trial(lambda notes: "fine, probably", log=lambda line: None) == "FAILED"
    assert row.outcomes == ["clear error", "FAILED", "FAILED", "FAILED"] and row.failed == 3
    assert row.notes[0] == "trial 2: it broke" and row.notes[1].startswith("trial 3: ZeroDivisionError")


def test_report_replaces_only_the_marked_block(tmp_path):
    row = faults.Row("dataset: zero-length file", "one line")
    row.outcomes = ["clear error", "FAILED"]
    row.notes = ["trial 2: a traceback"]
    block = faults.table([row], "python -m tests.faults --trials 2", 12.0)
    assert "| dataset: zero-length file | 2 |  | 1 |  | **1** |" in block
    assert "- dataset: zero-length file: trial 2: a traceback" in block

    out = tmp_path / "reliability.md"
    out.write_text(f"# Title\n\nprose\n\n{faults.BEGIN}\nold table\n{faults.END}\n\nmore prose\n")
    faults.write_report(out, block)
    text = out.read_text()
    assert text.startswith("# Title\n\nprose\n\n") and text.endswith(f"{faults.END}\n\nmore prose\n")
    assert "old table" not in text and block in text
    faults.write_report(out, "new\n")  # rerunning replaces the block again
    assert out.read_text() == f"# Title\n\nprose\n\n{faults.BEGIN}\nnew\n{faults.END}\n\nmore prose\n"

    fresh = tmp_path / "new.md"
    faults.write_report(fresh, block)
    assert fresh.read_text().count(faults.BEGIN) == 1 and block in fresh.read_text()


def test_eval_workers_exit_quietly_when_their_parent_is_gone():
    """A training process killed mid-evaluation leaves its env workers with a closed pipe: they stop with exit
    status 0 instead of printing a ConnectionResetError traceback each (seen on the GPU machine)."""
    from sscp.envs import EnvPool

    pool = EnvPool(2, workers=2)
    for conn in pool._conns:  # what the parent's death does to the workers' pipes
        conn.close()
    for proc in pool._procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
