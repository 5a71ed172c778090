"""Read and validate a brand reference catalog from disk, in any of the forms brands hand over.

:func:`read_brand_catalog` accepts

1. a prices-only brands CSV (``brand, reference_price, currency``: the catalog format ipguard
   has always read, still valid; no images, sellers or aliases);
2. a catalog folder: ``brands.csv`` (prices, optional per brand), ``references.csv``
   (``brand, kind, image_path[, reference_id]``), optional ``sellers.csv`` (``brand,
   seller_id``) and ``aliases.csv`` (``brand, alias``) -- what a team exports from its own
   brand-management system;
3. a folder per brand: ``ROOT/<Brand>/photos/*``, ``ROOT/<Brand>/logos/*``, optional
   ``prices.csv`` (``currency, reference_price``), ``sellers.txt`` and ``aliases.txt`` (one per
   line, ``#`` starts a comment) -- what a brand's own people can assemble by hand.

Like a manifest, a catalog is checked whole and every problem is named with its file, row and
column (:class:`ipguard.data.errors.ManifestError`): an unknown kind, an image path outside the
catalog, a repeated reference id or (brand, currency) price, a seller or alias for a brand the
catalog does not otherwise know, an empty catalog. A reference image that is missing or does
not decode is not an error -- a brand's hundred photos should not fail on one bad file -- but
it is never dropped silently either: it is set aside into :attr:`BrandCatalog.problems` with
its reason, and a warning gives the count.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import pandas as pd

from ipguard.data.brand_catalog import (
    ALIASES_FILE,
    PRICES_FILE,
    REFERENCE_KINDS,
    REFERENCES_FILE,
    SELLERS_FILE,
    BrandCatalog,
    ReferenceImage,
)
from ipguard.data.columns import BRAND_COLUMNS
from ipguard.data.errors import ManifestError, Problem, file_problem
from ipguard.data.images import scan_images
from ipguard.data.io import read_csv_table
from ipguard.data.schema import _path_escapes, validate_brands
from ipguard.data.tabular import CatalogEntry, brand_key, catalog_entry

__all__ = ["IMAGE_SUFFIXES", "read_brand_catalog"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp")
"""Files a brand folder's ``photos/`` and ``logos/`` may hold (any case)."""
_KIND_FOLDERS = {"photos": "photo", "logos": "logo"}
_BRAND_FOLDER_FILES = ("prices.csv", "sellers.txt", "aliases.txt")
_REFERENCE_COLUMNS = ("brand", "kind", "image_path", "reference_id")


@dataclass(frozen=True)
class _Ref:
    """A reference image as read, with where it was read from (for messages)."""

    brand: str
    kind: str
    path: str
    reference_id: str | None
    file: str
    row: int | None


@dataclass
class _Tables:
    """What a catalog's files said, before the cross-table checks."""

    prices: list[CatalogEntry] = field(default_factory=list)
    declared: list[str] = field(default_factory=list)  # brands named by a folder, in order
    refs: list[_Ref] = field(default_factory=list)
    # (brand, value, file, row, column) for sellers and aliases
    sellers: list[tuple[str, str, str, int | None, str | None]] = field(default_factory=list)
    aliases: list[tuple[str, str, str, int | None, str | None]] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    set_aside: list[Problem] = field(default_factory=list)


def read_brand_catalog(path: str | Path, *, check_images: bool = True) -> BrandCatalog:
    """The catalog at ``path`` (a brands CSV, a catalog folder or a folder per brand), checked.

    ``check_images`` decodes every reference image as training and serving decode listing
    photos (:func:`ipguard.data.images.scan_images`); without it only their existence is
    checked. Unusable images are set aside into ``problems``; any other problem raises
    :class:`~ipguard.data.errors.ManifestError` listing every one.
    """
    root = Path(path).expanduser()
    if root.is_file():
        return _prices_only(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"brand catalog {path}: no such file or folder; expected a brands CSV (brand, "
            "reference_price, currency), a catalog folder with brands.csv / references.csv, or "
            "a folder per brand with photos/ and logos/"
        )
    if (root / PRICES_FILE).is_file() or (root / REFERENCES_FILE).is_file():
        tables = _read_catalog_folder(root)
    else:
        tables = _read_brand_folders(root)
    return _assemble(root, tables, check_images=check_images)


# --- form 1: a prices-only CSV ---------------------------------------------------------------


def _prices(file: Path, source: str) -> list[CatalogEntry]:
    typed = validate_brands(read_csv_table(file, known_columns=BRAND_COLUMNS), source=source)
    entries = [
        catalog_entry(row.brand, row.reference_price, row.currency)
        for row in typed.itertuples(index=False)
    ]
    _raise_on_key_duplicates(entries, source)
    return entries


def _raise_on_key_duplicates(entries: list[CatalogEntry], source: str) -> None:
    """Exact repeats are validate_brands' to find; this finds "Zentaro" against "zentaro"."""
    first: dict[tuple[str, str | None], int] = {}
    problems = []
    for row, entry in enumerate(entries, start=1):
        pair = (brand_key(entry.brand), entry.currency)
        if pair in first:
            problems.append(
                Problem(
                    source,
                    row,
                    "brand",
                    entry.brand,
                    f"brand {entry.brand!r} is brand {entries[first[pair] - 1].brand!r} of row "
                    f"{first[pair]} spelt differently, with the same currency "
                    f"{entry.currency!r}; expected one reference price per brand and currency",
                )
            )
        else:
            first[pair] = row
    if problems:
        raise ManifestError(problems)


def _prices_only(file: Path) -> BrandCatalog:
    prices = _prices(file, str(file))
    if not prices:
        raise ManifestError(
            file_problem(str(file), "empty catalog: no brand rows; expected one row per brand")
        )
    return BrandCatalog(None, tuple(prices), (), (), ())


# --- form 2: a catalog folder ---------------------------------------------------------------


def _read_catalog_folder(root: Path) -> _Tables:
    tables = _Tables()
    prices_file = root / PRICES_FILE
    if prices_file.is_file():
        try:
            tables.prices = _prices(prices_file, str(prices_file))
        except ManifestError as err:
            tables.errors += err.problems
    references = root / REFERENCES_FILE
    if references.is_file():
        for row, cells in _rows(
            references, ("brand", "kind", "image_path"), _REFERENCE_COLUMNS, tables
        ):
            kind = (cells["kind"] or "").lower()
            tables.refs.append(
                _Ref(
                    cells["brand"],
                    kind,
                    cells["image_path"],
                    cells["reference_id"],
                    str(references),
                    row,
                )
            )
    for name, column, target in (
        (SELLERS_FILE, "seller_id", tables.sellers),
        (ALIASES_FILE, "alias", tables.aliases),
    ):
        file = root / name
        if file.is_file():
            for row, cells in _rows(file, ("brand", column), ("brand", column), tables):
                target.append((cells["brand"], cells[column], str(file), row, "brand"))
    return tables


def _rows(
    file: Path, required: tuple[str, ...], known: tuple[str, ...], tables: _Tables
) -> Iterable[tuple[int, dict[str, str | None]]]:
    """The rows of a catalog CSV with every required cell present, stripped; a missing column
    or a blank required cell is an error naming the file, row and column."""
    try:
        frame = read_csv_table(file, known_columns=known, source=str(file))
    except ManifestError as err:
        tables.errors += err.problems
        return
    missing = [c for c in required if c not in frame.columns]
    if missing:
        tables.errors += [
            file_problem(
                str(file),
                f"missing required column {c!r}; found {list(frame.columns)}, expected "
                f"{list(known)}",
                column=c,
            )
            for c in missing
        ]
        return
    for position, record in enumerate(frame.to_dict("records"), start=1):
        cells = {c: _cell(record.get(c)) for c in known}
        blank = [c for c in required if cells[c] is None]
        for column in blank:
            tables.errors.append(
                Problem(str(file), position, column, None, f"missing required value {column!r}")
            )
        if not blank:
            yield position, cells


def _cell(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


# --- form 3: a folder per brand ---------------------------------------------------------------


def _read_brand_folders(root: Path) -> _Tables:
    tables = _Tables()
    seen: dict[str, str] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not _hidden(p)):
        brand = folder.name
        key = brand_key(brand)
        if key in seen:
            tables.errors.append(
                file_problem(
                    str(folder),
                    f"brand folder {brand!r} names the same brand as folder {seen[key]!r}; "
                    "expected one folder per brand",
                )
            )
            continue
        seen[key] = brand
        tables.declared.append(brand)
        _read_brand_folder(root, folder, brand, tables)
    return tables


def _read_brand_folder(root: Path, folder: Path, brand: str, tables: _Tables) -> None:
    unknown = []
    for entry in sorted(folder.iterdir()):
        if _hidden(entry):
            continue
        if entry.is_dir() and entry.name in _KIND_FOLDERS:
            _read_kind_folder(root, entry, brand, _KIND_FOLDERS[entry.name], tables)
        elif entry.name not in _BRAND_FOLDER_FILES:
            unknown.append(entry.name)
    if unknown:
        log.warning(
            "brand catalog %s: ignored %s (a brand folder holds photos/, logos/, %s)",
            folder, ", ".join(unknown), ", ".join(_BRAND_FOLDER_FILES),
        )  # fmt: skip
    prices = folder / "prices.csv"
    if prices.is_file():
        try:
            raw = read_csv_table(prices, known_columns=("currency", "reference_price"))
            raw.insert(0, "brand", brand)
            tables.prices += _brand_prices(raw, str(prices))
        except ManifestError as err:
            # a repeated currency is reported by validate_brands on its brand column
            tables.errors += [
                replace(p, column="currency") if p.column == "brand" else p for p in err.problems
            ]
    for name, target in (("sellers.txt", tables.sellers), ("aliases.txt", tables.aliases)):
        file = folder / name
        if file.is_file():
            for line, text in _lines(file):
                target.append((brand, text, str(file), line, None))


def _brand_prices(raw: pd.DataFrame, source: str) -> list[CatalogEntry]:
    typed = validate_brands(raw, source=source)
    return [
        catalog_entry(row.brand, row.reference_price, row.currency)
        for row in typed.itertuples(index=False)
    ]


def _read_kind_folder(root: Path, folder: Path, brand: str, kind: str, tables: _Tables) -> None:
    for file in sorted(folder.rglob("*")):
        if not file.is_file() or _hidden(file):
            continue
        relative = file.relative_to(root).as_posix()
        if file.suffix.lower() not in IMAGE_SUFFIXES:
            tables.set_aside.append(
                Problem(
                    str(file),
                    None,
                    None,
                    relative,
                    f"reference image set aside: suffix {file.suffix!r} is not an image "
                    f"suffix; expected one of {', '.join(IMAGE_SUFFIXES)}",
                )
            )
            continue
        tables.refs.append(_Ref(brand, kind, relative, None, str(file), None))


def _lines(file: Path) -> Iterable[tuple[int, str]]:
    text = file.read_text(encoding="utf-8-sig")
    for number, line in enumerate(text.splitlines(), start=1):
        value = line.split("#", 1)[0].strip()
        if value:
            yield number, value


def _hidden(path: Path) -> bool:
    return path.name.startswith((".", "_"))


# --- the cross-table checks, and the catalog ------------------------------------------------


def _assemble(root: Path, tables: _Tables, *, check_images: bool) -> BrandCatalog:
    names: dict[str, str] = {}  # brand key -> the spelling the catalog used first
    for brand in (
        *(e.brand for e in tables.prices),
        *tables.declared,
        *(r.brand for r in tables.refs),
    ):
        names.setdefault(brand_key(brand), brand)
    errors = list(tables.errors)
    images = _references(tables.refs, names, errors)
    sellers = _grouped(tables.sellers, names, "seller_id", errors)
    aliases = _grouped(tables.aliases, names, "alias", errors)
    _alias_clashes(tables.aliases, names, errors)
    if errors:
        raise ManifestError(errors)
    if not names:
        raise ManifestError(
            file_problem(
                str(root),
                "empty catalog: no brand in brands.csv, references.csv or a brand folder; "
                "expected at least one brand",
            )
        )
    prices = [replace(e, brand=names[brand_key(e.brand)]) for e in tables.prices]
    # a brand named only by its references (or folder) still has its row, without a price, as
    # a price-less row of a brands CSV does: `brands` and the brand-mention features know it
    # even when every one of its images is set aside
    priced = {brand_key(e.brand) for e in prices}
    prices += [CatalogEntry(name, None, None) for key, name in names.items() if key not in priced]
    usable, set_aside = _usable(root, images, check_images=check_images)
    set_aside = [*tables.set_aside, *set_aside]
    if set_aside:
        log.warning(
            "brand catalog %s: %d reference image(s) set aside (see BrandCatalog.problems); "
            "first: %s", root, len(set_aside), set_aside[0],
        )  # fmt: skip
    return BrandCatalog(
        root=root,
        prices=tuple(prices),
        images=tuple(
            sorted(usable, key=lambda r: (brand_key(r.brand), r.kind, r.path, r.reference_id))
        ),
        authorised_sellers=sellers,
        aliases=aliases,
        problems=tuple(set_aside),
    )


def _references(
    refs: list[_Ref], names: dict[str, str], errors: list[Problem]
) -> list[tuple[ReferenceImage, _Ref]]:
    out = []
    first: dict[str, _Ref] = {}
    for ref in refs:
        brand = names[brand_key(ref.brand)]
        problems = len(errors)
        if ref.kind not in REFERENCE_KINDS:
            errors.append(
                Problem(
                    ref.file,
                    ref.row,
                    "kind",
                    ref.kind,
                    f"unknown kind {ref.kind!r}; expected one of {', '.join(REFERENCE_KINDS)}",
                )
            )
        reason = _path_escapes(ref.path)
        if reason is not None:
            errors.append(
                Problem(
                    ref.file, ref.row, "image_path", ref.path, reason.replace("manifest", "catalog")
                )
            )
            path = ref.path
        else:
            path = PurePosixPath(ref.path.replace("\\", "/")).as_posix()
        reference_id = ref.reference_id or f"{brand}/{ref.kind}/{PurePosixPath(path).stem}"
        if reference_id in first:
            earlier = first[reference_id]
            where = f"row {earlier.row}" if earlier.file == ref.file else earlier.file
            if earlier.row is not None and earlier.file != ref.file:
                where += f" row {earlier.row}"
            given = (
                ""
                if ref.reference_id
                else " (derived as brand/kind/file stem; a reference_id column tells them apart)"
            )
            errors.append(
                Problem(
                    ref.file,
                    ref.row,
                    "reference_id" if ref.reference_id else "image_path",
                    reference_id,
                    f"duplicate reference_id {reference_id!r}{given}; first seen at {where}",
                )
            )
        else:
            first[reference_id] = ref
        if len(errors) == problems:
            out.append((ReferenceImage(reference_id, brand, ref.kind, path), ref))
    return out


def _grouped(
    rows: list[tuple[str, str, str, int | None, str | None]],
    names: dict[str, str],
    what: str,
    errors: list[Problem],
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    groups: dict[str, set[str]] = {}
    known = ", ".join(sorted(names.values())) or "no brand yet"
    for brand, value, file, row, column in rows:
        key = brand_key(brand)
        if key not in names:
            errors.append(
                Problem(
                    file,
                    row,
                    column,
                    brand,
                    f"{what} {value!r} is for brand {brand!r}, which the catalog does not "
                    f"otherwise know; expected one of {known} (add the brand's prices or "
                    "references first)",
                )
            )
            continue
        groups.setdefault(names[key], set()).add(value)
    return tuple(
        (b, tuple(sorted(v))) for b, v in sorted(groups.items(), key=lambda i: brand_key(i[0]))
    )


def _alias_clashes(
    rows: list[tuple[str, str, str, int | None, str | None]],
    names: dict[str, str],
    errors: list[Problem],
) -> None:
    """An alias that is another brand's name would hand that brand's listings to this one."""
    for brand, alias, file, row, _ in rows:
        owner = names.get(brand_key(alias))
        if owner is not None and brand_key(owner) != brand_key(brand):
            errors.append(
                Problem(
                    file,
                    row,
                    "alias" if row is not None and file.endswith(".csv") else None,
                    alias,
                    f"alias {alias!r} of brand {brand!r} is the name of brand {owner!r}; "
                    "expected a name or misspelling of this brand only",
                )
            )


def _usable(
    root: Path, images: list[tuple[ReferenceImage, _Ref]], *, check_images: bool
) -> tuple[list[ReferenceImage], list[Problem]]:
    """The images that exist (and decode, with ``check_images``), and the others' reasons."""
    files = [os.path.join(root, ref.path) for ref, _ in images]
    if check_images:
        checks = [(c.ok, c.flag, c.detail) for c in scan_images(files, decode=True)]
    else:
        checks = [
            (True, None, "")
            if os.path.isfile(f)
            else (False, "image_missing", f"image file '{f}' not found")
            for f in files
        ]
    usable, set_aside = [], []
    for (ref, source), (ok, flag, detail) in zip(images, checks, strict=True):
        if ok:
            usable.append(ref)
        else:
            set_aside.append(
                Problem(
                    source.file,
                    source.row,
                    "image_path" if source.row is not None else None,
                    ref.path,
                    f"reference image {ref.reference_id!r} set aside ({flag}): {detail}",
                )
            )
    return usable, set_aside
