"""Read `params.yaml` into typed, frozen dataclasses: one per stage, defined next to that stage's library code.

    base, train = load_stage("params.yaml", "train", TrainParams)

Rules (also written in params.yaml's header):
- a section's value for a key is, in order of precedence: the key written in the section itself (what
  `dvc exp run -S train.iters=2000` writes), else the active profile's entry in the section's `budgets`
  (`base.profile`: smoke | cpu | extended | paper), else the dataclass default. A key set explicitly always wins;
- unknown keys (in a section, in a budget entry, or a top-level section nobody owns), values of the wrong type
  and out-of-range values raise `ParamsError` naming the key, what was expected and, for a misspelling, the
  closest valid key;
- the dataclass is the only place a default is written; stages pass typed values down.

Field types understood: bool, int, float, str, `Literal[...]`, `X | None`, `tuple[X, ...]`, `tuple[X, Y]`,
`dict[str, X]`, `Any` and nested dataclasses (a sub-mapping such as `compose.comp1k`).
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, TypeVar

import yaml

#: Top-level sections of params.yaml; each is owned by the stage of the same name (`base` by all).
SECTIONS = ("base", "compose", "toy", "train", "evaluate", "bench", "report")
PROFILES = ("smoke", "cpu", "extended", "paper")
BUDGETS = "budgets"

T = TypeVar("T")


class ParamsError(ValueError):
    """A missing, unknown or malformed key in params.yaml (the message names the key)."""


@dataclasses.dataclass(frozen=True)
class BaseParams:
    """`base`: shared by every stage.

    seed: every random draw of every stage is seeded from it (with the stage's own stream ids).
    profile: which `budgets` entry each section uses (smoke: tests; cpu: `make repro`; extended: the cpu
        budgets with the whole toy study (every pair and ablation); paper: GPUs).
    device: auto (CUDA when available) | cpu | cuda.
    """

    seed: int = 6
    profile: Literal["smoke", "cpu", "extended", "paper"] = "cpu"
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def __post_init__(self) -> None:
        check(self.seed >= 0, "base.seed", "must be >= 0", self.seed)

    def torch_device(self) -> str:
        """The device to run on: 'auto' resolves to 'cuda' when available; 'cuda' without a GPU is an error."""
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ParamsError("params.yaml: base.device is 'cuda' but torch.cuda.is_available() is False")
        return self.device


def check(condition: bool, key: str, requirement: str, value: Any) -> None:
    """Raise ParamsError('params.yaml: <key> <requirement>, got <value>') unless `condition` holds."""
    if not condition:
        raise ParamsError(f"params.yaml: {key} {requirement}, got {value!r}")


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """The whole params file as a mapping; a missing file, a non-mapping or an unknown section is an error."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found")
    with path.open() as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    for name in data:
        if name not in SECTIONS:
            raise ParamsError(f"{path}: unknown top-level section {name!r}{_hint(name, SECTIONS)}; "
                              f"valid sections: {', '.join(SECTIONS)}")
    return data


def load_stage(path: str | Path, section: str, cls: type[T]) -> tuple[BaseParams, T]:
    """(`base`, the stage's own section as `cls`) from the params file at `path`."""
    params = load_params(path)
    base = read_section(params, "base", BaseParams)
    return base, read_section(params, section, cls, profile=base.profile)


def read_section(params: Mapping[str, Any], section: str, cls: type[T], profile: str | None = None) -> T:
    """Section `section` of `params` as the frozen dataclass `cls` (precedence: see the module docstring)."""
    raw = params.get(section)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ParamsError(f"params.yaml: section {section!r} must be a mapping, got {raw!r}")
    raw = dict(raw)
    values: dict[str, Any] = {}
    budgets = raw.pop(BUDGETS, None)
    if budgets is not None:
        values.update(_budget_entry(section, budgets, profile, cls))
    values.update(raw)
    return build(cls, values, section)


def _budget_entry(section: str, budgets: Any, profile: str | None, cls: type) -> dict[str, Any]:
    key = f"{section}.{BUDGETS}"
    if not isinstance(budgets, Mapping):
        raise ParamsError(f"params.yaml: {key} must map profiles to settings, got {budgets!r}")
    for name in budgets:
        if name not in PROFILES:
            raise ParamsError(f"params.yaml: {key} has unknown profile {name!r}{_hint(str(name), PROFILES)}; "
                              f"profiles: {', '.join(PROFILES)}")
    if profile is None:
        raise ParamsError(f"params.yaml: section {section!r} has budgets but no profile was given")
    if profile not in budgets:
        raise ParamsError(f"params.yaml: {key} has no entry for profile {profile!r} (base.profile)")
    entry = budgets[profile] or {}
    if not isinstance(entry, Mapping):
        raise ParamsError(f"params.yaml: {key}.{profile} must be a mapping, got {entry!r}")
    _reject_unknown(cls, entry, f"{key}.{profile}")
    return dict(entry)


def _reject_unknown(cls: type, values: Mapping[str, Any], where: str) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in names:
            raise ParamsError(f"params.yaml: unknown key {where}.{key}{_hint(str(key), names)}; "
                              f"valid keys: {', '.join(names)}")


def _hint(word: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def build(cls: type[T], values: Mapping[str, Any], where: str) -> T:
    """`cls(**values)` with every value checked (and converted: lists become tuples) against its field type."""
    _reject_unknown(cls, values, where)
    hints = typing.get_type_hints(cls)
    kwargs = {name: coerce(value, hints[name], f"{where}.{name}") for name, value in values.items()}
    try:
        return cls(**kwargs)
    except TypeError as err:  # a required field (no default) that params.yaml does not set
        raise ParamsError(f"params.yaml: {where}: {err}") from err


def coerce(value: Any, kind: Any, key: str) -> Any:
    """Check `value` against the type annotation `kind`; return it (lists as tuples, mappings as dataclasses)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return coerce(value, option, key)
            except ParamsError as err:
                errors.append(str(err))
        raise ParamsError(errors[0] if len(errors) == 1 else f"params.yaml: {key} must be {_describe(kind)}, "
                          f"got {value!r}")
    if origin is Literal:
        if value not in args:
            raise ParamsError(f"params.yaml: {key} must be one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, Mapping):
            raise ParamsError(f"params.yaml: {key} must be a mapping, got {value!r}")
        return build(kind, value, key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"params.yaml: {key} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ParamsError(f"params.yaml: {key} must be a list of {len(args)} values, got {value!r}")
        return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ParamsError(f"params.yaml: {key} must be a mapping, got {value!r}")
        return {coerce(k, args[0], f"{key} key"): coerce(v, args[1], f"{key}.{k}") for k, v in value.items()}
    if kind is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"params.yaml: {key} must be true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"params.yaml: {key} must be an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"params.yaml: {key} must be a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ParamsError(f"params.yaml: {key} must be a string, got {value!r}")
        return value
    raise TypeError(f"{key}: unsupported params field type {kind!r}")


def _describe(kind: Any) -> str:
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    names = [getattr(a, "__name__", str(a)) for a in args]
    return " or ".join(names) + (" or null" if type(None) in typing.get_args(kind) else "")


def as_dict(params: Any) -> dict[str, Any]:
    """A params dataclass as plain JSON-able data (for run.json and summaries)."""
    return dataclasses.asdict(params)
