"""Read `params.yaml` and resolve a stage's section for the active profile.

Each stage section may hold a `budgets` mapping keyed by profile (`smoke`, `cpu`, `paper`). The active profile
is `base.profile`; its budget entries are merged over the section's own keys, so a user switches budgets with
`dvc exp run -S base.profile=paper` and still overrides a single key with `-S train.lr=...`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PROFILES = ("smoke", "cpu", "paper")


class ParamsError(ValueError):
    """A missing or malformed key in params.yaml (the message names the key)."""


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Load the whole params file, failing with the file name when it is missing or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found")
    with path.open() as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def stage_params(params: dict[str, Any], section: str) -> dict[str, Any]:
    """Return `params[section]` with the active profile's budget merged in, plus `seed`, `profile`, `device`.

    Raises ParamsError naming the key when the section, `base.profile` or the budget is missing.
    """
    if section not in params:
        raise ParamsError(f"params.yaml: missing section '{section}'")
    base = params.get("base") or {}
    profile = base.get("profile", "cpu")
    if profile not in PROFILES:
        raise ParamsError(f"params.yaml: base.profile must be one of {PROFILES}, got {profile!r}")
    resolved = {k: v for k, v in dict(params[section] or {}).items() if k != "budgets"}
    budgets = (params[section] or {}).get("budgets")
    if budgets is not None:
        if profile not in budgets:
            raise ParamsError(f"params.yaml: {section}.budgets has no entry for profile '{profile}'")
        resolved.update(budgets[profile] or {})
    resolved.setdefault("seed", base.get("seed", 0))
    resolved["profile"] = profile
    resolved.setdefault("device", base.get("device", "auto"))
    return resolved


def require(cfg: dict[str, Any], key: str, section: str, kind: type | tuple[type, ...] | None = None) -> Any:
    """Fetch `cfg[key]`, raising ParamsError naming `section.key` when absent or of the wrong type."""
    if key not in cfg:
        raise ParamsError(f"params.yaml: missing key '{section}.{key}'")
    value = cfg[key]
    if kind is not None and not isinstance(value, kind):
        raise ParamsError(f"params.yaml: '{section}.{key}' must be {kind}, got {value!r}")
    return value
