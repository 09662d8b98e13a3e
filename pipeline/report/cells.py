"""Table cells that remember where their number came from.

Every number the report prints is read through `SourceReader.get`, which records (file, key path, value); the
rendered text and its source are written to `results/report/cells.json`, so a test (or a reader) can check that
each cell really comes from a file in `results/`. A number computed from several stored ones (a paired
difference over seeds, a ratio) is a *derived* cell (`SourceReader.derived`): its entry names the node holding
its first input (`source`, `key`, `value`, never a bare number) and, under `derived`, the computed value, how it
was computed and every input with its file, key and value.
"""
from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence


@dataclass
class Cell:
    """One table cell: the text shown, and (for numbers) the file and key path it was read from."""

    text: str
    source: str | None = None
    key: tuple[str | int, ...] = ()
    value: Any = None
    #: for a computed number: {"value", "how", "inputs": [{"source", "key", "value"}, ...]} (see `SourceReader.derived`)
    derived: dict[str, Any] | None = None

    def __str__(self) -> str:
        return self.text


def fmt_number(value: Any, digits: int = 4) -> str:
    """Format a number compactly: integers with separators, floats to `digits` significant digits."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:.{max(digits - len(str(int(abs(value)))), 1)}f}"
    return str(value)


NUMBER = r"[-+]?[\d,]*\.?\d+(?:e[-+]?\d+)?"


def _shows(shown: str, value: float) -> bool:
    shown = shown.replace(",", "")
    mantissa = shown.split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    scale = 10 ** int(shown.split("e")[1]) if "e" in shown else 1
    return abs(float(shown) - float(value)) <= 0.5 * 10 ** -decimals * scale * (1 + 1e-9)


def text_shows_value(text: str, value: Any) -> bool:
    """The number at the start of a cell's text is `value` rounded to the digits the text shows; for a list of
    numbers (e.g. one per seed), the text's numbers, in order, show each of them ('7.72 / 7.80 / 7.65')."""
    if isinstance(value, (list, tuple)):
        numbers = [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)]
        shown = re.findall(NUMBER, text.replace("−", "-"))
        return bool(numbers) and len(shown) >= len(numbers) and all(_shows(s, v) for s, v in zip(shown, numbers))
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    match = re.match(NUMBER, text.replace("−", "-"))
    return match is not None and _shows(match.group(0), value)


class SourceReader:
    """Read JSON/CSV files under a root folder once each, and hand out traced cells."""

    def __init__(self, root: Path, aliases: dict[Path, Path] | None = None) -> None:
        self.root = Path(root)
        self.aliases = {Path(k).resolve(): Path(v).resolve() for k, v in (aliases or {}).items()}
        self._cache: dict[Path, Any] = {}

    def rel(self, path: Path) -> str:
        """`path` relative to the root, with temporary build folders mapped to their final names."""
        path = Path(path).resolve()
        for tmp, final in self.aliases.items():
            if path.is_relative_to(tmp):
                path = final / path.relative_to(tmp)
        try:
            return str(path.relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    def load(self, path: Path) -> Any:
        path = Path(path)
        if path not in self._cache:
            if path.suffix == ".json":
                self._cache[path] = json.loads(path.read_text())
            elif path.suffix == ".csv":
                with path.open(newline="") as fh:
                    self._cache[path] = list(csv.DictReader(fh))
            else:
                raise ValueError(f"{path}: unsupported source type")
        return self._cache[path]

    def exists(self, path: Path) -> bool:
        return Path(path).is_file()

    def get(self, path: Path, *key: str | int, fmt: Callable[[Any], str] = fmt_number) -> Cell:
        """A cell holding `file[key...]`, formatted; a missing key gives a visible '(missing: key)' cell."""
        data = self.load(path)
        node = data
        for part in key:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return Cell(f"(missing: {'.'.join(map(str, key))})")
        return Cell(fmt(node), self.rel(path), tuple(key), node)

    def node(self, path: Path, *key: str | int) -> Any:
        """`file[key...]`, or None when a key is missing."""
        node = self.load(path)
        for part in key:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return None
        return node

    def derived(self, text: str, value: Any, how: str, *inputs: tuple[Path, tuple[str | int, ...]]) -> Cell:
        """A cell showing a number computed from stored ones: `inputs` are (file, key path) pairs, all recorded.

        The cell's `source`/`key`/`value` name the innermost container (dict or list) holding the first input,
        so a check that looks the key up in the file finds exactly the recorded node; the computed value is in
        `derived`. Without inputs (or with a missing one) the cell is plain text.
        """
        records = []
        for path, key in inputs:
            node = self.node(path, *key)
            if node is None:
                return Cell(text)
            records.append({"source": self.rel(path), "key": list(key), "value": node})
        if not records:
            return Cell(text)
        path, key = inputs[0]
        container = tuple(key)
        while container and not isinstance(self.node(path, *container), (dict, list)):
            container = container[:-1]
        return Cell(text, self.rel(path), container, self.node(path, *container),
                    derived={"value": value, "how": how, "inputs": records})

    def mean_std(self, path: Path, *key: str | int, digits: int = 4, decimals: int | None = None) -> Cell:
        """A 'mean ± std' cell from a {mean, std} node; the recorded value is the mean.

        `digits` significant digits by default, or a fixed number of `decimals` (for columns that line up)."""
        fixed = (lambda v: f"{v:.{decimals}f}") if decimals is not None else None
        mean = self.get(path, *key, "mean", fmt=fixed or (lambda v: fmt_number(v, digits)))
        std = self.get(path, *key, "std", fmt=fixed or (lambda v: fmt_number(v, 2)))
        if mean.source is None:
            return mean
        # a zero std (one seed) is left out rather than printed as "± 0"
        text = mean.text if std.source is None or not std.value else f"{mean.text} ± {std.text}"
        return Cell(text, mean.source, mean.key, mean.value)


@dataclass
class Table:
    """A titled table of cells with an optional caption."""

    name: str
    header: Sequence[str]
    rows: list[list[Cell]] = field(default_factory=list)
    caption: str = ""

    def add(self, *cells: Cell | str) -> None:
        self.rows.append([c if isinstance(c, Cell) else Cell(str(c)) for c in cells])

    def to_markdown(self) -> str:
        esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
        lines = ["| " + " | ".join(map(esc, self.header)) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(esc(c.text) for c in row) + " |" for row in self.rows]
        return "\n".join(lines)

    def to_html(self) -> str:
        from html import escape

        head = "".join(f"<th>{escape(h)}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(
            f'<td title="{escape(c.source + ":" + ".".join(map(str, c.key))) if c.source else ""}">{escape(c.text)}</td>'
            for c in row) + "</tr>" for row in self.rows)
        return f'<table class="t"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

    def traced_cells(self) -> list[dict[str, Any]]:
        out = []
        for r, row in enumerate(self.rows):
            for c, cell in enumerate(row):
                if cell.source is not None:
                    out.append({"table": self.name, "row": r, "col": self.header[c], "text": cell.text,
                                "source": cell.source, "key": list(cell.key), "value": cell.value})
                    if cell.derived is not None:
                        out[-1]["derived"] = cell.derived
        return out
