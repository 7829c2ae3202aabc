"""What every part of the vtest study shares: the metric keys, the log line and the stage error."""
import os.path as osp
import time

#: the repository root (the study's configs are relative to it)
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
#: the teacher must beat the scratch students on validation MR-2 by this much (points) for the
#: run to test the paper's claim
PRECONDITION_POINTS = 5.0
MR2, MR4 = 'caltech/Reasonable_MR-2', 'caltech/Reasonable_MR-4'
AP50 = 'caltech/Reasonable_AP50'


def log(msg: str) -> None:
    """Print a time-stamped line of the study's log."""
    print(f'[vtest_mimic {time.strftime("%H:%M:%S")}] {msg}', flush=True)


class StageError(RuntimeError):
    """A finished stage that does not fit this run (another config) or a stage that failed."""
