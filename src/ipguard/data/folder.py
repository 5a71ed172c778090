"""Turning a class-folder image collection (``genuine/``, ``infringing/``) into a manifest.

Many teams start with images sorted into one folder per label. Importing such a tree must not
guess: anything that is not an image inside a label folder is reported (in
``df.attrs["ignored"]`` and the log), so a mistyped ``Infringing/`` folder or a batch of
``.heic`` files cannot vanish from the training data unnoticed.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pandas as pd

from ipguard.data.columns import LABELS
from ipguard.data.errors import file_error
from ipguard.data.io import write_manifest

__all__ = ["IGNORED_ATTR", "IMAGE_SUFFIXES", "manifest_from_folder"]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
IGNORED_ATTR = "ignored"
_SEPARATORS = re.compile(r"[\s_\-.]+")


def manifest_from_folder(root: str | Path, out_path: str | Path | None = None) -> pd.DataFrame:
    """Build a manifest from ``root/genuine/**`` and ``root/infringing/**`` image files.

    ``listing_id`` is the image's path relative to ``root`` (unique by construction and stable
    across re-imports); ``title`` is the file stem with ``_``, ``-`` and ``.`` turned into
    spaces; ``label`` is the label folder. ``image_path`` is relative to the folder the
    manifest lives in: ``root`` itself, or the folder of ``out_path`` when given (which must
    then be ``root`` or a folder above it, since image paths may not escape the manifest's
    folder). Everything skipped is listed in ``df.attrs["ignored"]`` as ``"path: reason"``.
    Raises :class:`ManifestError` when ``root`` has no label folder or no image at all.
    """
    root = Path(os.path.abspath(root))
    if not root.is_dir():
        raise file_error(str(root), "not a folder; expected genuine/ and infringing/")
    out_file = Path(os.path.abspath(out_path)) if out_path is not None else None
    base = out_file.parent if out_file is not None else root
    if base != root and base not in root.parents:
        raise file_error(
            str(out_file),
            f"manifest would live outside {root}, so image paths would need '..'; "
            "expected it inside that folder or a folder above it",
        )
    records: list[dict[str, str]] = []
    ignored: list[str] = []
    label_dirs = 0
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name in LABELS and entry.is_dir():
            label_dirs += 1
            _collect(Path(entry.path), entry.name, root, base, records, ignored)
        elif out_file is None or Path(entry.path) != out_file:
            ignored.append(f"{entry.name}: {_stranger_reason(entry)}")
    if label_dirs == 0:
        raise file_error(str(root), f"no label folder; expected {'/ or '.join(LABELS)}/")
    if not records:
        raise file_error(str(root), "no image files in label folders")
    if ignored:
        logger.warning("%s: %d entries not imported: %s", root, len(ignored), "; ".join(ignored))
    frame = pd.DataFrame(records, columns=["listing_id", "title", "image_path", "label"])
    frame = frame.astype("str")
    frame.attrs[IGNORED_ATTR] = ignored
    if out_file is not None:
        write_manifest(frame, out_file)
    return frame


def _stranger_reason(entry: os.DirEntry) -> str:
    kind = "folder" if entry.is_dir() else "file"
    reason = f"top-level {kind} is not a label folder; expected only {', '.join(LABELS)}"
    if entry.name.strip().lower() in LABELS:
        reason += " (folder names are case-sensitive)"
    return reason


def _collect(
    folder: Path,
    label: str,
    root: Path,
    base: Path,
    records: list[dict[str, str]],
    ignored: list[str],
) -> None:
    for here, dirs, names in os.walk(folder):
        dirs.sort()
        for name in list(dirs):
            if os.path.islink(os.path.join(here, name)):
                ignored.append(f"{_rel(Path(here) / name, root)}: linked folder not followed")
        for name in sorted(names):
            file = Path(here) / name
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                ignored.append(
                    f"{_rel(file, root)}: not an image file; expected one of "
                    f"{sorted(IMAGE_SUFFIXES)}"
                )
                continue
            records.append(
                {
                    "listing_id": _rel(file, root),
                    "title": _title(file.stem),
                    "image_path": _rel(file, base),
                    "label": label,
                }
            )


def _title(stem: str) -> str:
    """File stem as words; a stem made only of separators is kept as is rather than blanked."""
    return _SEPARATORS.sub(" ", stem).strip() or stem


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()
