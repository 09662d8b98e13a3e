"""Check every section of params.yaml at once, before DVC expands the pipeline; remove what failed runs left.

    python -m pipeline.params_check params.yaml                      # check; exit status 2 on a problem
    python -m pipeline.params_check params.yaml --remove-leftovers   # also remove stale temporaries (make repro)
    python -m pipeline.params_check params.yaml --out results/params_check.json   # a stable record, for DVC

`make repro` runs it (with `--remove-leftovers`) before `dvc repro`; run it yourself after editing params.yaml
or before `dvc exp run -S ...`. DVC resolves `foreach`/`matrix` stages (train@<variant>-<seed>,
evaluate@<variant>) from params.yaml before any stage runs, so a wrong type there (e.g. `train.variants: a2u`, a
string) stops DVC with an error that names no key, and DVC tracks only the keys each stage lists, so a key that no
stage lists (a misspelling such as `train.iterz`) never reruns anything: `dvc repro` says "up to date". This
check reads every section with its stage's typed params (the same code the stages run), for the active profile
and for every profile that has a `budgets` entry, and also refuses:
- a key written twice in one mapping (YAML keeps only the last one, silently);
- unknown keys in every section and budget entry (with the key you probably meant);
- a list that repeats an entry (`train.variants: [bilinear, bilinear]`, `toy.operators`, `toy.seeds`,
  `toy.datasets`, `bench.operators`, `bench.network_variants`, ...: DVC would merge the duplicate stages);
- operator-pair names that are not registered (`toy.operators`, `bench.operators`, `bench.network_variants`),
  a `toy.baseline` that is not among `toy.operators` (no paired difference would be computed), and
  `evaluate.sets` entries named `test` or with an unknown `trimap_dir`.
The first problem is printed with the key that holds it (exit status 2).

`--remove-leftovers` deletes what interrupted or failed stages left and what `dvc repro` would not remove when it
restores a stage from its cache instead of running it: hidden temporaries (`.<name>.<random>.tmp`,
`.<name>.old`) under data/, results/ and evalsets/, and run folders of work_dirs/train that stopped before their
first checkpoint. It does nothing while a DVC command holds the repository's lock (a running `dvc repro`), and
keeps what a process holds open or what changed in the last 10 minutes (a run started outside DVC).

DVC itself cannot run a command before `dvc repro` without a stage in dvc.yaml (it has no hooks, and `dvc repro`
without targets reads only the root dvc.yaml). To have every `dvc repro` and `dvc exp run` run this check, add a
stage `params_check` to dvc.yaml with `params: [params.yaml: ]` (the whole file), this module and the params
modules as deps and `--out results/params_check.json` (`cache: false`) as its output, and list that file as a
dependency of every other stage: its content does not depend on the values, so a valid change reruns only the
stages that read the changed keys.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import yaml

from pipeline.core.params import BUDGETS, PROFILES, BaseParams, ParamsError, load_params, read_section

#: Where the stages write: searched for stale temporaries by `--remove-leftovers`.
OUTPUT_ROOTS = ("data", "results", "evalsets")
#: Matting training work roots (`work_dirs/train/<variant>/seed<s>`, and the older `work_dirs/train/<variant>`).
WORK_ROOT_GLOBS = ("work_dirs/train/*", "work_dirs/train/*/seed*")
#: A leftover changed more recently than this may belong to a run started outside DVC: it is kept.
LEFTOVER_MIN_AGE_S = 600.0


def _section_classes() -> dict[str, type]:
    from pipeline.bench.params import BenchParams
    from pipeline.compose.params import ComposeParams
    from pipeline.matting.params import EvaluateParams, TrainParams
    from pipeline.report.params import ReportParams
    from pipeline.toy.params import ToyParams

    return {"compose": ComposeParams, "toy": ToyParams, "train": TrainParams, "evaluate": EvaluateParams,
            "bench": BenchParams, "report": ReportParams}


# ------------------------------------------------------------------------------------------------ duplicate keys
def check_duplicate_keys(path: str | Path) -> None:
    """ParamsError naming the key and its lines when one mapping of the YAML file writes a key twice."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found")
    try:
        root = yaml.compose(path.read_text(), Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc})") from exc
    _walk_duplicates(root, "", path)


def _walk_duplicates(node: Any, where: str, path: Path) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            dotted = f"{where}.{key}" if where else key
            if key in seen:
                raise ParamsError(f"{path}: key {dotted} is written twice (lines {seen[key]} and {line}); YAML "
                                  "would keep only the last one without a word: keep one")
            seen[key] = line
            _walk_duplicates(value_node, dotted, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk_duplicates(item, f"{where}[{index}]", path)


# ------------------------------------------------------------------------------------------------ sections
def _written_at(raw: dict[str, Any], section: str, field: str, profile: str) -> str:
    """Where the value of `section.field` comes from under `profile`: the key as the user wrote it."""
    if field in raw:
        return f"{section}.{field}"
    entry = (raw.get(BUDGETS) or {}).get(profile) or {}
    return f"{section}.{BUDGETS}.{profile}.{field}" if field in entry else f"{section}.{field} (default)"


def _check_lists(params: Any, raw: dict[str, Any], section: str, profile: str) -> None:
    """No list of a section repeats an entry (names, seeds, sizes: each is one run, stage or case)."""
    for field in dataclasses.fields(params):
        value = getattr(params, field.name)
        if not isinstance(value, tuple):
            continue
        try:
            counts = Counter(value)
        except TypeError:  # unhashable entries: not a list of names
            continue
        repeated = [entry for entry, count in counts.items() if count > 1]
        if repeated:
            where = _written_at(raw, section, field.name, profile)
            raise ParamsError(f"params.yaml: {where} repeats {', '.join(map(repr, repeated))} in "
                              f"{_plain(value)}: each entry must appear once (a repeat would run twice, or be merged "
                              "silently)")


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, tuple) else value


def _check_names(params: Any, raw: dict[str, Any], section: str, profile: str) -> None:
    """Operator-pair names are registered; the toy baseline is one of the toy operators; eval sets are named."""
    from pipeline.matting.eval_sets import DEFAULT_SET, TRIMAP_DIRS
    from pipeline.matting.params import registered_pairs

    known = registered_pairs()
    lists = {"toy": ("operators",), "bench": ("operators", "network_variants")}.get(section, ())
    for field in lists:
        names = getattr(params, field) or ()
        unknown = [name for name in names if name not in known]
        if unknown:
            where = _written_at(raw, section, field, profile)
            raise ParamsError(f"params.yaml: {where} names {unknown}, not registered operator pairs; registered: "
                              f"{', '.join(known)}")
    if section == "toy" and params.baseline not in params.operators:
        raise ParamsError(f"params.yaml: toy.baseline {params.baseline!r} is not among "
                          f"{_written_at(raw, section, 'operators', profile)} {list(params.operators)}: no paired "
                          "difference could be computed; add it to the operators or choose one of them")
    if section == "evaluate":
        for name, entry in params.sets.items():
            if name == DEFAULT_SET:
                raise ParamsError(f"params.yaml: evaluate.sets.{name}: the name '{DEFAULT_SET}' is reserved for the "
                                  "composed test split; choose another name")
            trimap_dir = entry.get("trimap_dir")
            if trimap_dir is not None and trimap_dir not in TRIMAP_DIRS:
                raise ParamsError(f"params.yaml: evaluate.sets.{name}.trimap_dir must be one of {list(TRIMAP_DIRS)}, "
                                  f"got {trimap_dir!r}")


def check_params(path: str | Path) -> list[str]:
    """The sections of `path` that were checked; ParamsError (naming the key) on the first problem."""
    from pipeline.matting.params import load_train_params

    check_duplicate_keys(path)
    data = load_params(path)
    base = read_section(data, "base", BaseParams)
    load_train_params(path)  # its own rules (no budgets)
    for name, cls in _section_classes().items():
        raw = data.get(name) if isinstance(data.get(name), dict) else {}
        budgets = raw.get(BUDGETS) if isinstance(raw.get(BUDGETS), dict) else {}
        profiles = [base.profile] + [p for p in PROFILES if p in budgets and p != base.profile]
        for profile in profiles:
            try:
                params = read_section(data, name, cls, profile=profile)
                _check_lists(params, raw, name, profile)
                _check_names(params, raw, name, profile)
            except ParamsError as err:
                if profile == base.profile:
                    raise
                raise ParamsError(f"{err} (in profile {profile}, from {name}.{BUDGETS}.{profile}; the active "
                                  f"profile is {base.profile})") from err
    return ["base", *_section_classes()]


# ------------------------------------------------------------------------------------------------ leftovers
@contextlib.contextmanager
def _dvc_idle(root: Path) -> Iterator[bool]:
    """Yield whether no DVC command is running in the repository at `root`: DVC holds `.dvc/tmp/lock` (an flock)
    while it runs; it is held here too for the duration, so none starts meanwhile."""
    lock = root / ".dvc" / "tmp" / "lock"
    if not lock.parent.is_dir():
        yield True
        return
    with lock.open("a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _newest_mtime(path: Path) -> float:
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirnames, filenames in os.walk(path):
            for name in (*dirnames, *filenames):
                with contextlib.suppress(OSError):
                    newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
    return newest


def _open_paths() -> list[str]:
    """Files and working directories that processes of this user hold open (Linux /proc; [] elsewhere)."""
    held: list[str] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return held
    for pid in proc.iterdir():
        if not pid.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            held.append(os.readlink(pid / "cwd"))
        with contextlib.suppress(OSError):
            for fd in (pid / "fd").iterdir():
                with contextlib.suppress(OSError):
                    held.append(os.readlink(fd))
    return held


def remove_leftovers(root: str | Path, min_age_s: float = LEFTOVER_MIN_AGE_S) -> list[Path] | None:
    """Delete the stale temporaries under the output folders of the repository at `root` (`.*.tmp`, `.*.old`)
    and the half-started matting runs of its work_dirs/train (no checkpoint, no result); return them, or None
    when a DVC command is running (nothing is touched then).

    A run started outside DVC (`python stages/train.py ...`) is not protected by DVC's lock, so an entry is
    also kept while a process holds a file in it open or it changed within the last `min_age_s` seconds.
    """
    from pipeline.core.io import stale_temps_under
    from pipeline.core.runs import half_started_runs

    root = Path(root).resolve()
    with _dvc_idle(root) as idle:
        if not idle:
            return None
        candidates = stale_temps_under(*(root / name for name in OUTPUT_ROOTS))
        work_roots = sorted({p for pattern in WORK_ROOT_GLOBS for p in root.glob(pattern) if p.is_dir()})
        candidates += [run for work_root in work_roots for run in half_started_runs(work_root)]
        held = [os.path.realpath(p) for p in _open_paths()]
        now = time.time()
        removed = []
        for path in candidates:
            real = os.path.realpath(path)
            if any(h == real or h.startswith(real + os.sep) for h in held) or now - _newest_mtime(path) < min_age_s:
                continue  # possibly in use by a run started outside DVC
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


# ------------------------------------------------------------------------------------------------ command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("params", nargs="?", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--out", help="write a record of the check (the same bytes for every valid params file)")
    parser.add_argument("--remove-leftovers", action="store_true",
                        help="also delete stale temporaries and half-started training runs of the repository that "
                        "holds the params file (unless a DVC command is running)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        sections = check_params(args.params)
    except (ParamsError, FileNotFoundError) as err:
        print(f"params check failed: {err}", file=sys.stderr)
        return 2
    if args.out:
        from pipeline.core.io import write_text

        write_text(args.out, json.dumps({"checked": sections, "ok": True}, indent=2) + "\n")
    if args.remove_leftovers:
        removed = remove_leftovers(Path(args.params).resolve().parent)
        if removed is None:
            print("params check: a DVC command is running in this repository; leftovers not removed",
                  file=sys.stderr)
        for path in removed or []:
            print(f"removed {path}, left by an interrupted or failed run", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
