"""Fault injection for sscp's reliability guarantees: kills, corrupt datasets and checkpoints, NaN, full disks.

Every trial injects one fault into a tiny training run (pointmaze, 16-wide networks, batch 32, a few hundred steps)
and checks what happened against an uninterrupted reference run; a trial whose outcome is not the promised one counts
as FAILED, and the script then exits with status 1. The result is a markdown table, written between the markers
`<!-- faults:begin -->` and `<!-- faults:end -->` of --out (docs/reliability.md explains each guarantee). From the
repository root:

    python -m tests.faults                      # 5 trials per random fault, about 5 minutes on 2 CPU cores
    python -m tests.faults --trials 1 --only data ckpt nan disk --out /tmp/faults.md

Outcomes: "resumed exactly" (the run finished bit-identical to the reference), "clear error" (a one-line `sscp: error:`
naming the file or step, no traceback, nothing else damaged), "data intact" (the fault was absorbed: nothing changed
that matters and the run completed), "FAILED" (anything else; the notes say what).

Modules: lab (settings, trials, the Lab), evidence (what a trial reads from a run), one module per fault (kill, data,
ckpt, nan, disk), report (the table); tests/test_faults.py runs one trial of each cheap fault.
"""

from .ckpt import CKPT_KINDS, CONFIG_KIND, fault_ckpt
from .data import DATA_KINDS, fault_data
from .disk import DISK_KINDS, MAY_CONTINUE, fault_disk
from .kill import fault_kill
from .lab import FAULTS, OUTCOMES, Lab, Row, TrialFailed, check
from .nan import fault_nan
from .report import BEGIN, END, run_faults, table, write_report

__all__ = [
    "BEGIN",
    "CKPT_KINDS",
    "CONFIG_KIND",
    "DATA_KINDS",
    "DISK_KINDS",
    "END",
    "FAULTS",
    "MAY_CONTINUE",
    "OUTCOMES",
    "Lab",
    "Row",
    "TrialFailed",
    "check",
    "fault_ckpt",
    "fault_data",
    "fault_disk",
    "fault_kill",
    "fault_nan",
    "run_faults",
    "table",
    "write_report",
]
