"""Which exported checkpoint of a training run to evaluate, and how to say where a number comes from.

`evaluate.checkpoint`: `auto` takes `best` (lowest validation SAD) when the run validated and `last` otherwise;
`best` on a run without validation is an error (never a silent substitute); `last` is always there. The train
stage's `summary.json` records which checkpoints it exported (`checkpoints: {best: {iter, selected_by}, last:
{iter, selected_by}}`); the choice and its iteration go into the evaluation's metrics.json, so a report can say
"best at iteration N" or "last at iteration N" next to every number.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CheckpointChoice:
    """The exported checkpoint to evaluate: `which` ('best' | 'last'), its iteration and why it was chosen."""

    which: str
    iteration: int
    selected_by: str
    requested: str

    def describe(self) -> str:
        """E.g. 'last at iteration 900 (no validation)' or 'best at iteration 600 (lowest val/sad on ...)'."""
        why = self.selected_by if self.which == "best" else \
            ("the run did not validate" if self.requested == "auto" else "requested")
        return f"{self.which} at iteration {self.iteration} ({why})"

    def record(self) -> dict[str, Any]:
        """The evaluation summary's `checkpoint` entry: which, iter, selected_by (`describe()`), requested."""
        return {"which": self.which, "iter": self.iteration, "selected_by": self.describe(),
                "requested": self.requested}


def resolve_checkpoint(train_dir: str | Path, requested: str) -> CheckpointChoice:
    """Resolve `evaluate.checkpoint` ('auto' | 'best' | 'last') against the train output `train_dir`."""
    if requested not in ("auto", "best", "last"):
        raise ValueError(f"evaluate.checkpoint must be auto, best or last, got {requested!r}")
    path = Path(train_dir) / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: training summary not found (run the train stage first)")
    checkpoints = json.loads(path.read_text()).get("checkpoints")
    if not isinstance(checkpoints, dict) or "last" not in checkpoints:
        raise ValueError(f"{path}: no 'checkpoints' record (written by an older train stage: rerun it)")
    which = requested if requested != "auto" else ("best" if "best" in checkpoints else "last")
    if which not in checkpoints:
        raise ValueError(f"params.yaml: evaluate.checkpoint is 'best' but {train_dir} ran without validation "
                         f"(train.val_source none), so there is no best checkpoint; use auto or last")
    entry = checkpoints[which]
    return CheckpointChoice(which=which, iteration=int(entry["iter"]), selected_by=str(entry["selected_by"]),
                            requested=requested)


def validation_at(train_dir: str | Path, iteration: int) -> dict[str, float]:
    """Validation metrics the train stage logged at `iteration` ({} when the run did not validate then).

    Read from its DVCLive curves `dvclive/plots/metrics/val/<metric>.tsv`, so the report can show the
    validation SAD of the very checkpoint it reports test numbers for.
    """
    values: dict[str, float] = {}
    for tsv in sorted((Path(train_dir) / "dvclive" / "plots" / "metrics" / "val").glob("*.tsv")):
        with tsv.open(newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                if int(float(row["step"])) == iteration:
                    values[tsv.stem] = float(row[tsv.stem])
    return values
