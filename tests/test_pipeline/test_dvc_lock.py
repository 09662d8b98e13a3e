"""The committed dvc.lock describes the committed code, data and params: on a fresh clone of HEAD, `dvc status`
may report outputs that are missing (nothing is pulled yet), never a changed dependency, parameter or committed
output. A stale lock would make `dvc exp show` / `dvc metrics diff` compare against numbers of another code."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
#: What `dvc status` may say about a path on a fresh clone: its output is simply not there yet.
MISSING = {"deleted", "not in cache"}


def _run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _produced(path: str, outputs: set[str]) -> bool:
    """`path` is a stage output, or a folder holding some (e.g. the report's dep `results/eval`)."""
    return any(out == path or out.startswith(path.rstrip("/") + "/") for out in outputs)


def stale_entries(status: dict[str, Any], outputs: set[str] = frozenset()) -> list[str]:
    """Everything in `dvc status --json` output that is not merely a missing output, as readable lines.

    A dependency that is produced by a stage (`outputs`, from dvc.lock) is judged where it is produced: on a fresh
    clone a folder of outputs is partly there (the committed metrics) and reads as 'modified'.
    """
    problems = []
    for stage, changes in status.items():
        for change in changes:
            if not isinstance(change, dict):
                problems.append(f"{stage}: {change}")
                continue
            for kind, entries in change.items():
                if kind == "changed params":
                    problems += [f"{stage}: param {path}:{key} {state}" for path, keys in entries.items()
                                 for key, state in (keys.items() if isinstance(keys, dict) else [(keys, "changed")])]
                elif kind in ("changed deps", "changed outs"):
                    for path, state in entries.items():
                        if isinstance(state, dict):  # DVC 3 lists changed params as deps: {params.yaml: {key: ..}}
                            problems += [f"{stage}: param {path}:{key} {value}" for key, value in state.items()]
                        elif state not in MISSING and not (kind == "changed deps" and _produced(path, outputs)):
                            problems.append(f"{stage}: {kind[8:-1]} {path} {state}")
                else:
                    problems.append(f"{stage}: {kind} {entries}")
    return problems


def test_stale_entries_ignores_missing_outputs_only() -> None:
    status = {"train@a2u": [{"changed deps": {"data/composed": "deleted", "pipeline/core": "modified"}},
                            {"changed outs": {"results/train/a2u": "not in cache"}}],
              "bench": [{"changed deps": {"params.yaml": {"bench.threads": "modified"}}}],
              "toy": [{"changed deps": {"data/x": "not in cache"}}],
              "report": [{"changed deps": {"results/eval": "modified", "results/eval/a2u/metrics.json": "modified"}},
                         {"changed outs": {"results/eval/a2u/metrics.json": "modified"}}]}
    assert stale_entries(status, {"results/eval/a2u/metrics.json", "data/composed"}) == [
        "train@a2u: dep pipeline/core modified", "bench: param params.yaml:bench.threads modified",
        "report: out results/eval/a2u/metrics.json modified"]


def test_committed_lock_matches_a_fresh_clone(tmp_path: Path) -> None:
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", "dvc.lock"], cwd=REPO, capture_output=True)
    if tracked.returncode != 0:
        pytest.skip("no dvc.lock is committed yet: it is committed from a full `make repro` of the final commit")
    head = _run(["git", "rev-parse", "HEAD"], REPO).strip()
    clone = tmp_path / "clone"
    _run(["git", "clone", "--quiet", "--no-checkout", str(REPO), str(clone)], tmp_path)
    _run(["git", "checkout", "--quiet", head], clone)
    status = json.loads(_run(["dvc", "status", "--json"], clone) or "{}")
    lock = yaml.safe_load((clone / "dvc.lock").read_text()) or {}
    outputs = {out["path"] for stage in (lock.get("stages") or {}).values() for out in stage.get("outs", [])}
    problems = stale_entries(status, outputs)
    assert not problems, ("dvc.lock does not match the committed code/params (rerun `make repro` and commit "
                          "dvc.lock and the metrics files):\n" + "\n".join(problems))
