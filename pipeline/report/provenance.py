"""Provenance for the report: git revision, dvc.lock output hashes, package versions, machine, profile."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.core.params import BaseParams
from pipeline.core.runinfo import git_revision, machine_info, package_versions


def dvc_lock_hashes(lock_path: Path) -> list[dict[str, str]]:
    """Every stage output recorded in dvc.lock with its md5 (directories carry '.dir' hashes)."""
    if not lock_path.is_file():
        return []
    lock = yaml.safe_load(lock_path.read_text()) or {}
    rows = []
    for stage, info in sorted((lock.get("stages") or {}).items()):
        for out in info.get("outs", []) or []:
            rows.append({"stage": stage, "path": out.get("path", ""), "md5": out.get("md5", ""),
                         "size": str(out.get("size", "")), "nfiles": str(out.get("nfiles", ""))})
    return rows


def collect_provenance(repo: Path, base: BaseParams) -> dict[str, Any]:
    """Everything a reader needs to know where the numbers came from."""
    return {"git_revision": git_revision(repo), "packages": package_versions(), "machine": machine_info(),
            "profile": base.profile, "seed": base.seed,
            "dvc_lock": dvc_lock_hashes(repo / "dvc.lock")}
