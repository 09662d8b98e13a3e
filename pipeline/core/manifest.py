"""Manifest of a composed set: one JSON line per output file, and a set hash over them.

A record is {"path", "split", "kind", "sources", "sha256"}; `path` is relative to the set's root (POSIX
separators), `sources` names what the file was made from (labels such as "comp1k:Test_set/.../fg/x.png",
never machine-specific absolute paths where a label is known). `set_hash` is the sha256 over the sorted,
canonically serialised lines, so two runs with the same params give the same hash iff every byte matches.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

from pipeline.core.io import write_text

MANIFEST_NAME = "manifest.jsonl"
SUMMARY_NAME = "summary.json"


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_record(root: Path, path: Path, split: str, kind: str, sources: Iterable[str]) -> dict[str, Any]:
    """The manifest record of an already written file `path` under `root`."""
    return {"path": path.relative_to(root).as_posix(), "split": split, "kind": kind,
            "sources": list(sources), "sha256": sha256_file(path)}


def manifest_line(record: dict[str, Any]) -> str:
    """Canonical one-line JSON (sorted keys, no spaces) of a record."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def set_hash(records: Iterable[dict[str, Any]]) -> str:
    """sha256 over the sorted canonical manifest lines (each followed by a newline)."""
    digest = hashlib.sha256()
    for line in sorted(manifest_line(r) for r in records):
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()


def write_manifest(root: str | Path, records: list[dict[str, Any]]) -> tuple[Path, str]:
    """Write `root/manifest.jsonl` sorted by path; return its path and the set hash.

    Raises ValueError when two records claim the same path (a naming collision between sources).
    """
    paths = [r["path"] for r in records]
    if len(set(paths)) != len(paths):
        dupes = sorted({p for p in paths if paths.count(p) > 1})
        raise ValueError(f"manifest: several outputs share the path(s) {dupes[:5]}")
    lines = sorted(manifest_line(r) for r in records)
    path = write_text(Path(root) / MANIFEST_NAME, "".join(line + "\n" for line in lines))
    return path, set_hash(records)


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """Read a manifest.jsonl back into records (ValueError names the file and line when malformed)."""
    records = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not a JSON line ({exc})") from exc
    return records


def count_by(records: Iterable[dict[str, Any]], *keys: str) -> dict[str, Any]:
    """Nested counts of records by the given keys, e.g. count_by(recs, "split", "kind")."""
    out: dict[str, Any] = {}
    for record in records:
        node = out
        for key in keys[:-1]:
            node = node.setdefault(str(record[key]), {})
        last = str(record[keys[-1]])
        node[last] = node.get(last, 0) + 1
    return out
