"""Resolve the folder layouts of real data sources into ordered lists of foregrounds and backgrounds.

comp1k  — Adobe's release: <root>/Training_set/{Adobe-licensed images,Other}/{fg,alpha}/, training_fg_names.txt,
          training_bg_names.txt; <root>/Test_set/Adobe-licensed images/{fg,alpha,trimaps}/, test_fg_names.txt,
          test_bg_names.txt. Backgrounds: COCO train2014 (coco_dir) and VOC2012 JPEGImages (voc_dir); a
          COCO 2017 folder is accepted by dropping the 'COCO_train2014_' prefix, as mmagic does.
d646    — Distinctions-646: <root>/{Train,Test}/{FG,GT}/ (alpha matched by file stem); backgrounds from folders.
folder  — generic: <root>/fg/, <root>/alpha/, optional <root>/trimap/ (one trimap per foreground).
Every missing file raises FileNotFoundError naming the list file and line (or the folder) where it was wanted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.io import IMAGE_SUFFIXES, describe_expected, find_image, image_files, read_name_list

__all__ = ["IMAGE_SUFFIXES", "ForegroundItem", "RealLayout", "comp1k_layout", "d646_layout", "folder_layout",
           "image_files", "read_name_list"]


@dataclass(frozen=True)
class ForegroundItem:
    """One foreground: output name (file stem), fg and alpha paths, optional per-foreground trimap."""
    name: str
    fg: Path
    alpha: Path
    trimap: Path | None = None


@dataclass
class RealLayout:
    """Ordered foregrounds and backgrounds of a real source. Foreground i of a split owns backgrounds
    [i·n_bg, (i+1)·n_bg) of that split's list (Adobe's "consumed in order")."""
    source: str
    root: Path
    train: list[ForegroundItem]
    test: list[ForegroundItem]
    train_bgs: list[Path]
    test_bgs: list[Path]
    labels: dict[str, Path] = field(default_factory=dict)     # label -> folder, for machine-free source names
    test_trimap_dir: Path | None = None                       # comp1k: trimaps named like the composites

    def label(self, path: Path) -> str:
        """'label:relative/path' for the first labelled folder containing `path`, else the absolute path."""
        for name, folder in self.labels.items():
            try:
                return f"{name}:{path.relative_to(folder).as_posix()}"
            except ValueError:
                continue
        return str(path)


def _spaces_hint(name: str) -> str:
    return " (the name has leading/trailing spaces; names are used as written)" if name != name.strip() else ""


def _find_in(folders: list[Path], name: str, wanted_by: str) -> Path:
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{wanted_by}: '{name}' is not in any of {[str(f) for f in folders]}{_spaces_hint(name)}")


def _by_stem(folder: Path, stem: str, wanted_by: str) -> Path:
    found = find_image(folder, stem)
    if found is None:
        raise FileNotFoundError(f"{wanted_by}: {describe_expected(folder, stem)} not found")
    return found


def _comp1k_split(split_dir: Path, prefix: str) -> list[ForegroundItem]:
    fg_dirs = sorted(p for p in split_dir.glob("*/fg") if p.is_dir())
    alpha_dirs = [p.parent / "alpha" for p in fg_dirs]
    if not fg_dirs:
        raise FileNotFoundError(f"{split_dir}: no '<subset>/fg' folders (expected e.g. 'Adobe-licensed images/fg')")
    names_file = split_dir / f"{prefix}_fg_names.txt"
    items = []
    for line, name in enumerate(read_name_list(names_file), start=1):
        where = f"{names_file}:{line}"
        fg = _find_in(fg_dirs, name, where)
        alpha = _find_in([fg.parent.parent / "alpha"] + alpha_dirs, name, where)
        items.append(ForegroundItem(Path(name).stem, fg, alpha))
    return items


def _resolve_backgrounds(names_file: Path, folder: Path, strip_prefix: str = "") -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: background folder not found (wanted by {names_file})")
    paths = []
    for line, name in enumerate(read_name_list(names_file), start=1):
        path = folder / name
        if not path.is_file() and strip_prefix and name.startswith(strip_prefix):
            path = folder / name[len(strip_prefix):]
        if not path.is_file():
            raise FileNotFoundError(f"{names_file}:{line}: background '{name}' not found in {folder}"
                                    + _spaces_hint(name))
        paths.append(path)
    return paths


def comp1k_layout(root: str | Path, coco_dir: str | Path, voc_dir: str | Path,
                  train_dir: str = "Training_set", test_dir: str = "Test_set") -> RealLayout:
    """Resolve Adobe's Composition-1k release (all names checked to exist)."""
    root, coco, voc = Path(root), Path(coco_dir), Path(voc_dir)
    if (voc / "VOC2012" / "JPEGImages").is_dir():
        voc = voc / "VOC2012" / "JPEGImages"
    train_root, test_root = root / train_dir, root / test_dir
    trimap_dirs = sorted(p for p in test_root.glob("*/trimaps") if p.is_dir()) + \
        sorted(p for p in test_root.glob("*/trimap") if p.is_dir())
    if not trimap_dirs:
        raise FileNotFoundError(f"{test_root}: no official test trimaps folder ('<subset>/trimaps')")
    return RealLayout(
        source="comp1k", root=root,
        train=_comp1k_split(train_root, "training"), test=_comp1k_split(test_root, "test"),
        train_bgs=_resolve_backgrounds(train_root / "training_bg_names.txt", coco, "COCO_train2014_"),
        test_bgs=_resolve_backgrounds(test_root / "test_bg_names.txt", voc),
        labels={"comp1k": root, "coco": coco, "voc": voc}, test_trimap_dir=trimap_dirs[0])


def _paired(fg_dir: Path, alpha_dir: Path, trimap_dir: Path | None = None) -> list[ForegroundItem]:
    items = []
    for fg in image_files(fg_dir):
        alpha = _by_stem(alpha_dir, fg.stem, f"foreground {fg}")
        trimap = _by_stem(trimap_dir, fg.stem, f"foreground {fg}") if trimap_dir else None
        items.append(ForegroundItem(fg.stem, fg, alpha, trimap))
    return items


def d646_layout(root: str | Path, bg_train_dir: str | Path, bg_test_dir: str | Path) -> RealLayout:
    """Resolve Distinctions-646 (Train/Test with FG/ and GT/); backgrounds are the sorted folder contents."""
    root, bg_train, bg_test = Path(root), Path(bg_train_dir), Path(bg_test_dir)
    return RealLayout(source="d646", root=root,
                      train=_paired(root / "Train" / "FG", root / "Train" / "GT"),
                      test=_paired(root / "Test" / "FG", root / "Test" / "GT"),
                      train_bgs=image_files(bg_train), test_bgs=image_files(bg_test),
                      labels={"d646": root, "bg_train": bg_train, "bg_test": bg_test})


def folder_layout(root: str | Path, bg_dir: str | Path, bg_test_dir: str | Path | None,
                  test_names: list[str]) -> RealLayout:
    """Resolve a generic fg/alpha[/trimap] folder; `test_names` (stems) go to test, the rest to train."""
    root, bg = Path(root), Path(bg_dir)
    trimap_dir = root / "trimap" if (root / "trimap").is_dir() else None
    items = _paired(root / "fg", root / "alpha", trimap_dir)
    known = {item.name for item in items}
    unknown = sorted(set(test_names) - known)
    if unknown:
        raise FileNotFoundError(f"{root / 'fg'}: test foregrounds {unknown[:5]} not found")
    bg_test = Path(bg_test_dir) if bg_test_dir else bg
    return RealLayout(source="folder", root=root,
                      train=[i for i in items if i.name not in test_names],
                      test=[i for i in items if i.name in test_names],
                      train_bgs=image_files(bg), test_bgs=image_files(bg_test),
                      labels={"folder": root, "bg": bg, "bg_test": bg_test})
