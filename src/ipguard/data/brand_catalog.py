"""A brand reference catalog as a plain value: what a brand hands the platform to be protected.

Per brand: official product photos and logo images, reference prices per currency, the seller
ids the brand has authorised, and the other names (misspellings) it goes by. With these a brand
is protected from what it supplies, not only from labelled history: a brand added to the
catalog needs no retraining.

This module holds the value types only, with no pandera and no reading of CSV files, because
the screening service rebuilds a catalog from an exported model (:meth:`BrandCatalog.from_dict`)
and must not import the validation machinery; reading and validating a catalog from disk is
:func:`ipguard.data.reference_catalog.read_brand_catalog`.

Brands are matched by :func:`ipguard.data.tabular.brand_key` ("Louis Vuitton" is
"louisvuitton") everywhere, so a seller list that spells a brand in lower case still belongs to
it; each table carries the spelling the catalog first used.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from ipguard.data.errors import Problem
from ipguard.data.tabular import CatalogEntry, brand_key, catalog_entry

__all__ = [
    "REFERENCE_KINDS",
    "BrandCatalog",
    "ReferenceImage",
    "copy_catalog",
]

REFERENCE_KINDS: tuple[str, ...] = ("photo", "logo")
"""What a reference image shows: an official product photo, or the brand's logo."""

_DICT_FORMAT = "ipguard.brand_catalog"
_DICT_VERSION = 1
_FINGERPRINT_VERSION = b"ipguard-brand-catalog-fingerprint/v1\n"
_READ_BYTES = 1 << 20
# File names of a catalog folder (form 2 of read_brand_catalog); copy_catalog writes them.
PRICES_FILE = "brands.csv"
REFERENCES_FILE = "references.csv"
SELLERS_FILE = "sellers.csv"
ALIASES_FILE = "aliases.csv"


@dataclass(frozen=True)
class ReferenceImage:
    """One reference image of a brand, by its path relative to the catalog root."""

    reference_id: str
    """Unique in the catalog: given, or derived as ``f"{brand}/{kind}/{stem}"``."""
    brand: str
    """The brand's name as the catalog spells it."""
    kind: str
    """One of :data:`REFERENCE_KINDS`."""
    path: str
    """POSIX path relative to the catalog root."""


@dataclass(frozen=True)
class BrandCatalog:
    """Every brand's references, prices, authorised sellers and aliases; see the module doc.

    Built by :func:`ipguard.data.reference_catalog.read_brand_catalog` (validated) or
    :meth:`from_dict` (from an exported model). ``problems`` lists the reference images that
    were set aside (missing, unreadable), each with its reason: they are not in ``images``.
    """

    root: Path | None
    """The folder image paths resolve against; ``None`` when the images are not at hand."""
    prices: tuple[CatalogEntry, ...]
    """One per brand and currency, in the order read."""
    images: tuple[ReferenceImage, ...]
    authorised_sellers: tuple[tuple[str, tuple[str, ...]], ...]
    """``(brand, seller ids)``, sorted by brand, ids sorted."""
    aliases: tuple[tuple[str, tuple[str, ...]], ...]
    """``(brand, other names and misspellings)``, sorted by brand."""
    problems: tuple[Problem, ...] = ()
    recorded_fingerprint: str | None = field(default=None, compare=False, repr=False)
    """The fingerprint recorded with a serialised catalog, used while its images are not at
    hand (``root is None``); with a root the fingerprint is always computed from the files."""

    # --- what it knows --------------------------------------------------------------------
    @cached_property
    def brands(self) -> tuple[str, ...]:
        """Every brand named anywhere in the catalog (its first spelling), sorted."""
        names: dict[str, str] = {}
        for name in (
            *(e.brand for e in self.prices),
            *(r.brand for r in self.images),
            *(b for b, _ in self.authorised_sellers),
            *(b for b, _ in self.aliases),
        ):
            names.setdefault(brand_key(name), name)
        return tuple(sorted(names.values(), key=lambda n: (brand_key(n), n)))

    @cached_property
    def _sellers(self) -> dict[str, frozenset[str]]:
        out: dict[str, set[str]] = {}
        for brand, ids in self.authorised_sellers:
            out.setdefault(brand_key(brand), set()).update(ids)
        return {key: frozenset(ids) for key, ids in out.items()}

    @cached_property
    def _aliases(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {}
        for brand, names in self.aliases:
            out.setdefault(brand_key(brand), []).extend(names)
        return {key: tuple(dict.fromkeys(names)) for key, names in out.items()}

    def sellers_of(self, brand: str) -> frozenset[str]:
        """The seller ids ``brand`` has authorised (empty for a brand the catalog lacks)."""
        return self._sellers.get(brand_key(brand), frozenset())

    def aliases_of(self, brand: str) -> tuple[str, ...]:
        """The other names and misspellings of ``brand`` the catalog lists."""
        return self._aliases.get(brand_key(brand), ())

    def images_of(self, brand: str, kind: str | None = None) -> tuple[ReferenceImage, ...]:
        """The brand's reference images, of one ``kind`` or all."""
        key = brand_key(brand)
        return tuple(r for r in self.images if brand_key(r.brand) == key and kind in (None, r.kind))

    def image_file(self, ref: ReferenceImage) -> Path:
        """Where the image of ``ref`` is on disk."""
        if self.root is None:
            raise ValueError(
                f"reference {ref.reference_id!r}: this catalog has no root folder (it was "
                "rebuilt from a dict without one), so its image files cannot be found; pass "
                "root= to BrandCatalog.from_dict"
            )
        return self.root / ref.path

    def summary(self) -> dict[str, int]:
        """Counts as ``ipguard-validate --brands`` prints them."""
        return {
            "brands": len(self.brands),
            "photos": sum(r.kind == "photo" for r in self.images),
            "logos": sum(r.kind == "logo" for r in self.images),
            "sellers": sum(len(ids) for _, ids in self.authorised_sellers),
            "aliases": sum(len(names) for _, names in self.aliases),
            "images_unusable": len(self.problems),
        }

    # --- fingerprint ----------------------------------------------------------------------
    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 (hex) of the tables and of every usable image file's bytes.

        Two catalogs with the same fingerprint protect the same brands in the same way, so a
        model version tagged with it says exactly which catalog it was built with. Order of
        rows and the catalog's location do not count; any price, seller, alias, path or image
        byte does. Set-aside images do not count (they are not part of what is used).
        """
        if self.root is None and self.recorded_fingerprint is not None:
            return self.recorded_fingerprint
        if self.root is None and self.images:
            raise ValueError(
                f"brand catalog with {len(self.images)} reference images and no root folder: "
                "their bytes cannot be hashed; rebuild it with root= or keep the fingerprint "
                "recorded by to_dict"
            )
        digest = hashlib.sha256(_FINGERPRINT_VERSION)
        digest.update(json.dumps(self._canonical_tables(), sort_keys=True).encode("utf-8"))
        for ref in sorted(self.images, key=lambda r: r.reference_id):
            digest.update(f"\n{ref.reference_id}\0".encode())
            digest.update(_file_digest(self.image_file(ref), ref))
        return digest.hexdigest()

    def _canonical_tables(self) -> dict[str, Any]:
        return {
            "prices": sorted(
                [brand_key(e.brand), e.brand, e.currency or "", _price_text(e.reference_price)]
                for e in self.prices
            ),
            "images": sorted([r.reference_id, r.brand, r.kind, r.path] for r in self.images),
            "sellers": sorted([brand_key(b), b, sorted(ids)] for b, ids in self.authorised_sellers),
            "aliases": sorted([brand_key(b), b, sorted(names)] for b, names in self.aliases),
        }

    # --- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description (image paths relative to the root, the fingerprint
        when it can be computed); :meth:`from_dict` rebuilds an equal catalog."""
        out: dict[str, Any] = {
            "format": _DICT_FORMAT,
            "version": _DICT_VERSION,
            "prices": [
                {"brand": e.brand, "reference_price": e.reference_price, "currency": e.currency}
                for e in self.prices
            ],
            "images": [
                {"reference_id": r.reference_id, "brand": r.brand, "kind": r.kind, "path": r.path}
                for r in self.images
            ],
            "authorised_sellers": [[b, list(ids)] for b, ids in self.authorised_sellers],
            "aliases": [[b, list(names)] for b, names in self.aliases],
            "problems": [
                {
                    "file": p.file,
                    "row": p.row,
                    "column": p.column,
                    "value": p.value,
                    "reason": p.reason,
                }
                for p in self.problems
            ],
        }
        if self.root is not None or self.recorded_fingerprint is not None or not self.images:
            out["fingerprint"] = self.fingerprint
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], root: str | Path | None = None) -> BrandCatalog:
        """The catalog :meth:`to_dict` described, its images resolved against ``root``."""
        if not isinstance(d, Mapping):
            raise TypeError(f"brand catalog: expected a mapping, found {type(d).__name__}")
        if d.get("format") != _DICT_FORMAT or d.get("version") != _DICT_VERSION:
            raise ValueError(
                f"brand catalog: expected format {_DICT_FORMAT!r} version {_DICT_VERSION}, "
                f"found format {d.get('format')!r} version {d.get('version')!r}"
            )
        images = tuple(ReferenceImage(**dict(r)) for r in d.get("images", ()))
        for ref in images:
            _check_relative(ref)
            if ref.kind not in REFERENCE_KINDS:
                raise ValueError(
                    f"brand catalog: reference {ref.reference_id!r} has kind {ref.kind!r}; "
                    f"expected one of {REFERENCE_KINDS}"
                )
        return cls(
            root=None if root is None else Path(root),
            prices=tuple(
                catalog_entry(e["brand"], e.get("reference_price"), e.get("currency"))
                for e in d.get("prices", ())
            ),
            images=images,
            authorised_sellers=tuple(
                (str(b), tuple(ids)) for b, ids in d.get("authorised_sellers", ())
            ),
            aliases=tuple((str(b), tuple(names)) for b, names in d.get("aliases", ())),
            problems=tuple(Problem(**dict(p)) for p in d.get("problems", ())),
            recorded_fingerprint=d.get("fingerprint"),
        )


def copy_catalog(catalog: BrandCatalog, dest: str | Path) -> BrandCatalog:
    """A self-contained copy of ``catalog`` in the empty (or new) folder ``dest``.

    Writes the catalog-folder form (``brands.csv``, ``references.csv``, ``sellers.csv``,
    ``aliases.csv``) and copies each usable image to the same relative path, so a model folder
    or an MLflow artifact carries the catalog it was built with. Returns the catalog rooted at
    ``dest``, with the same fingerprint (computed again from the copied files, so a bad copy
    would show) and no set-aside images (the copy holds none).
    """
    target = Path(dest)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(
            f"copy_catalog: {target} exists and is not an empty folder; expected a new or "
            "empty folder, so no earlier catalog's files mix into this one"
        )
    target.mkdir(parents=True, exist_ok=True)
    for ref in catalog.images:
        _check_relative(ref)
        out = target / ref.path
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(catalog.image_file(ref), out)
    priced = [[e.brand, e.currency or "", _price_text(e.reference_price)] for e in catalog.prices]
    _write_csv(target / PRICES_FILE, ("brand", "currency", "reference_price"), priced)
    _write_csv(
        target / REFERENCES_FILE,
        ("brand", "kind", "image_path", "reference_id"),
        [[r.brand, r.kind, r.path, r.reference_id] for r in catalog.images],
    )
    _write_csv(
        target / SELLERS_FILE,
        ("brand", "seller_id"),
        [[b, s] for b, ids in catalog.authorised_sellers for s in ids],
    )
    _write_csv(
        target / ALIASES_FILE,
        ("brand", "alias"),
        [[b, a] for b, names in catalog.aliases for a in names],
    )
    copied = replace(catalog, root=target, problems=(), recorded_fingerprint=None)
    known = catalog.root is not None or catalog.recorded_fingerprint is not None
    if known and copied.fingerprint != catalog.fingerprint:
        raise OSError(
            f"copy_catalog: the copy in {target} does not hash like the catalog it copies "
            f"({copied.fingerprint[:12]} against {catalog.fingerprint[:12]}); a file "
            "changed while it was copied"
        )
    return copied


def _write_csv(path: Path, header: tuple[str, ...], rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def _price_text(price: float | None) -> str:
    return "" if price is None else repr(float(price))


def _check_relative(ref: ReferenceImage) -> None:
    path = PurePosixPath(ref.path)
    if not ref.path or path.is_absolute() or ".." in path.parts or ":" in ref.path.split("/")[0]:
        raise ValueError(
            f"reference {ref.reference_id!r}: path {ref.path!r} is not inside the catalog "
            "folder; expected a POSIX path relative to it"
        )


def _file_digest(path: Path, ref: ReferenceImage) -> bytes:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_READ_BYTES):
                digest.update(chunk)
    except OSError as err:
        raise FileNotFoundError(
            f"reference {ref.reference_id!r}: cannot read {os.fspath(path)} to fingerprint the "
            f"catalog ({err.strerror or err}); expected the catalog's image files in place"
        ) from None
    return digest.digest()
