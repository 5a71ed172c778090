"""A listing against the brand catalog: how close its photo is to the brand's own, and who sells it.

:class:`BrandReferences` holds a catalog's reference photos and logos as embeddings in a
:class:`~ipguard.brands.index.ReferenceIndex`, with the catalog's names, aliases and
authorised sellers, and turns each listing into the fixed-width vector
:data:`REFERENCE_FEATURE_NAMES` plus a JSON-ready evidence record for reviewers. Every feature
is a similarity or a flag, never a brand identity, so the models that read them learn "far from
the brand's own photos" rather than "brand X": a brand that joins the catalog tomorrow gets the
same protection once the model is re-exported with the new catalog, without retraining.

The claimed brand is the listing's ``brand`` column when the catalog knows it, else the brand
its text names (by name or catalogued alias), else the brand whose references the photo is
nearest to. A *stolen photo* is a near-copy (whole-photo cosine similarity at or above
``stolen_threshold``) of one of a brand's official photos, sold by a seller the brand has not
authorised; re-encoding, resizing, a crop of a few percent or a banner leave a photo's
embedding nearly where it was, while a reshoot of the same product does not come as close
(measured in docs/brand_protection.md).

Training computes the listing photos' view embeddings once (cached like a frozen backbone's
features) and serving computes them per request; both then go through
:meth:`BrandReferences.features_from_views`, so the two cannot drift.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from ipguard.brands.copies import SIGNATURE_SIDE, CopyVerifier, copy_signature
from ipguard.brands.embedding import ReferenceEmbedder
from ipguard.brands.stored import read_stored_json
from ipguard.data.brand_catalog import BrandCatalog, ReferenceImage
from ipguard.data.datasets import ListingDataset
from ipguard.data.embeddings import image_embeddings
from ipguard.data.images import decode_image, to_rgb_array
from ipguard.data.io import image_file
from ipguard.data.reference_features import REFERENCE_FEATURE_NAMES
from ipguard.data.tabular import brand_key
from ipguard.data.transforms import Preprocessing, build_eval_transform
from ipguard.text.features import BrandMatcher
from ipguard.text.normalization import is_missing, text_of

if TYPE_CHECKING:  # faiss loads only with a model's references, not with every fused model
    from ipguard.brands.index import ReferenceIndex

__all__ = ["REFERENCE_FEATURE_NAMES", "BrandReferences", "ReferenceFeatures", "references_extras"]

log = logging.getLogger(__name__)

FOLDER = "references"
_CONFIG = "references.json"
_FORMAT = "ipguard.brand_references"
_VERSION = 1
#: copy score (ipguard.brands.copies) from which a photo counts as a copy of an official one
DEFAULT_STOLEN_THRESHOLD = 0.75
#: whole-photo cosine similarity from which an official photo is checked as a copy's source
CANDIDATE_SIMILARITY = 0.5
#: official photos checked per listing photo
CANDIDATES = 3
_COPIES = "copies.npz"
_COL = {name: i for i, name in enumerate(REFERENCE_FEATURE_NAMES)}


def references_extras(references: BrandReferences) -> dict[str, Any]:
    """What the model spec says of its references (``extras["references"]``): where they are
    and which catalog they were built from, so a model version names its catalog."""
    return {
        "folder": FOLDER,
        "catalog_fingerprint": references.fingerprint,
        "brands": len(references.catalog.brands),
        "reference_images": len(references.references),
        "stolen_threshold": references.stolen_threshold,
    }


@dataclass(frozen=True)
class ReferenceFeatures:
    """Per listing: the feature matrix (float32, no NaN) and the evidence record."""

    matrix: np.ndarray
    evidence: list[dict[str, Any]]


def _column(frame: pd.DataFrame, name: str) -> list[str | None]:
    if name not in frame.columns:
        return [None] * len(frame)
    return [None if is_missing(v) or not str(v).strip() else str(v).strip() for v in frame[name]]


def _photo_reader(frame: pd.DataFrame, root: str | Path) -> Callable[[int], Image.Image | None]:
    """Row -> its decoded photo (None where it has none usable), for copy verification."""
    paths = _column(frame, "image_path")

    def photo(i: int) -> Image.Image | None:
        if paths[i] is None:
            return None
        decoded = decode_image(image_file(root, paths[i]))
        return decoded.image if decoded.ok else None

    return photo


class BrandReferences:
    """A catalog's references, embedded and indexed; see the module docstring."""

    def __init__(
        self,
        catalog: BrandCatalog,
        embedder: ReferenceEmbedder,
        index: ReferenceIndex,
        references: Sequence[ReferenceImage],
        signatures: dict[str, np.ndarray],
        *,
        stolen_threshold: float = DEFAULT_STOLEN_THRESHOLD,
    ) -> None:
        if len(references) != len(index):
            raise ValueError(
                f"brand references: {len(references)} reference images but {len(index)} "
                "index rows; rebuild the references"
            )
        self.catalog = catalog
        self.embedder = embedder
        self.index = index
        self.references = tuple(references)
        self.stolen_threshold = float(stolen_threshold)
        self.verifier = CopyVerifier(signatures)
        self._by_id = {ref.reference_id: ref for ref in self.references}
        self._canonical: dict[str, str] = {}  # brand key -> catalog spelling
        for name in catalog.brands:
            self._canonical.setdefault(brand_key(name), name)
        self._ids: dict[tuple[str, str], list[str]] = {}  # (brand key, kind) -> reference ids
        for ref in self.references:
            self._ids.setdefault((brand_key(ref.brand), ref.kind), []).append(ref.reference_id)
        self._photo_ids = [r.reference_id for r in self.references if r.kind == "photo"]
        # names and aliases, each mapped back to its brand, for the text's brand mention
        spellings: dict[str, str] = {}
        self._aliases: set[str] = set()
        for name in catalog.brands:
            spellings.setdefault(name, name)
            for alias in catalog.aliases_of(name):
                if brand_key(alias) not in self._canonical:
                    spellings.setdefault(alias, name)
                    self._aliases.add(alias)
        self._spellings = spellings
        self._matcher = BrandMatcher(list(spellings)) if spellings else None
        self._transform = build_eval_transform(Preprocessing.from_dict(embedder.preprocessing))

    # --- construction ---------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        catalog: BrandCatalog,
        embedder: ReferenceEmbedder,
        *,
        stolen_threshold: float = DEFAULT_STOLEN_THRESHOLD,
        batch_size: int = 32,
    ) -> BrandReferences:
        """Embed every usable reference image of ``catalog`` (whole photo) and index them."""
        transform = build_eval_transform(Preprocessing.from_dict(embedder.preprocessing))
        usable: list[ReferenceImage] = []
        tensors: list[torch.Tensor] = []
        signatures: dict[str, np.ndarray] = {}
        for ref in catalog.images:
            decoded = decode_image(catalog.image_file(ref))
            if not decoded.ok:
                # the catalog reader sets such images aside with a reason; one that broke
                # since is reported here and left out of the index, never silently
                log.warning("brand reference %s not indexed: %s", ref.reference_id, decoded.flag)
                continue
            usable.append(ref)
            tensors.append(transform(image=to_rgb_array(decoded.image))["image"])
            if ref.kind == "photo":
                signatures[ref.reference_id] = copy_signature(decoded.image)
        vectors = np.zeros((0, embedder.dim), dtype=np.float32)
        if tensors:
            vectors = np.concatenate(
                [
                    embedder.whole(torch.stack(tensors[i : i + batch_size]))
                    for i in range(0, len(tensors), batch_size)
                ]
            )
        from ipguard.brands.index import ReferenceIndex

        index = ReferenceIndex(vectors, [r.reference_id for r in usable])
        return cls(catalog, embedder, index, usable, signatures, stolen_threshold=stolen_threshold)

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/references/`` (embedder weights, index, catalog) and return it."""
        target = Path(folder) / FOLDER
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        self.embedder.save(target / "embedder")
        self.index.save(target / "index")
        ids = sorted(self.verifier.signatures)
        np.savez(
            target / _COPIES,
            ids=np.array(ids, dtype=str),
            signatures=np.stack([self.verifier.signatures[i] for i in ids])
            if ids
            else np.zeros((0, SIGNATURE_SIDE, SIGNATURE_SIDE), dtype=np.uint8),
        )
        config = {
            "format": _FORMAT,
            "version": _VERSION,
            "features": list(REFERENCE_FEATURE_NAMES),
            "stolen_threshold": self.stolen_threshold,
            "catalog": self.catalog.to_dict(),
            "catalog_fingerprint": self.catalog.fingerprint,
            "references": [
                {"reference_id": r.reference_id, "brand": r.brand, "kind": r.kind, "path": r.path}
                for r in self.references
            ],
        }
        (target / _CONFIG).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
        return target

    @classmethod
    def load(cls, folder: str | Path) -> BrandReferences:
        """Rebuild from a model folder (or its ``references/`` folder)."""
        folder = Path(folder)
        target = folder if (folder / _CONFIG).is_file() else folder / FOLDER
        path = target / _CONFIG
        config = read_stored_json(
            path, format=_FORMAT, version=_VERSION, what="the model's brand references"
        )
        if tuple(config.get("features", ())) != REFERENCE_FEATURE_NAMES:
            raise ValueError(
                f"{path}: the model was built with reference features {config.get('features')}, "
                f"this ipguard computes {list(REFERENCE_FEATURE_NAMES)}; use the ipguard that "
                "built it"
            )
        catalog = BrandCatalog.from_dict(config["catalog"], root=None)
        references = [ReferenceImage(**r) for r in config["references"]]
        with np.load(target / _COPIES, allow_pickle=False) as stored:
            signatures = dict(zip(stored["ids"].tolist(), stored["signatures"], strict=True))
        from ipguard.brands.index import ReferenceIndex

        return cls(
            catalog,
            ReferenceEmbedder.load(target / "embedder"),
            ReferenceIndex.load(target / "index"),
            references,
            signatures,
            stolen_threshold=float(config["stolen_threshold"]),
        )

    # --- what it knows --------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        return self.catalog.fingerprint

    def __repr__(self) -> str:
        return (
            f"BrandReferences({len(self.catalog.brands)} brands, {len(self.references)} "
            f"reference images, catalog {self.fingerprint[:12]})"
        )

    def reference(self, reference_id: str) -> ReferenceImage:
        return self._by_id[reference_id]

    # --- listing views --------------------------------------------------------------------
    def listing_views(self, images: Sequence[Image.Image | None]) -> tuple[np.ndarray, np.ndarray]:
        """``(n, views, dim)`` unit vectors of each listing photo, and which rows have one."""
        n = len(images)
        views = np.zeros((n, self.embedder.n_views, self.embedder.dim), dtype=np.float32)
        present = np.array([image is not None for image in images], dtype=bool)
        rows = np.flatnonzero(present)
        for start in range(0, len(rows), 32):
            chunk = rows[start : start + 32]
            batch = torch.stack(
                [self._transform(image=to_rgb_array(images[i]))["image"] for i in chunk]  # type: ignore[arg-type]
            )
            views[chunk] = self.embedder.views(batch)
        return views, present

    def features(
        self, frame: pd.DataFrame, images: Sequence[Image.Image | None]
    ) -> ReferenceFeatures:
        """Features and evidence of request rows and their decoded photos (``None``: none)."""
        views, present = self.listing_views(images)
        return self.features_from_views(frame, views, present, lambda i: images[i])

    def manifest_features(
        self,
        frame: pd.DataFrame,
        root: str | Path,
        *,
        cache_dir: str | Path | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        chunk_rows: int = 4096,
    ) -> np.ndarray:
        """Feature matrix of manifest rows, their photos read from ``root`` (training).

        The photos' view embeddings are cached under ``cache_dir`` like a frozen backbone's
        features (keyed by the embedder and each file's size and mtime), in chunks of
        ``chunk_rows`` so memory stays bounded on a large manifest; a new catalog reuses them.
        """
        frame = frame.reset_index(drop=True)
        pre = Preprocessing.from_dict(self.embedder.preprocessing)

        def decoding(rows: pd.DataFrame) -> ListingDataset:
            return ListingDataset(
                rows, root, transform=build_eval_transform(pre), image_size=pre.image_size,
                load_text=False,
            )  # fmt: skip

        parts = []
        for start in range(0, len(frame), chunk_rows):
            chunk = frame.iloc[start : start + chunk_rows].reset_index(drop=True)
            cached = image_embeddings(
                chunk, root, self.embedder, decoding, cache_dir=cache_dir,
                batch_size=batch_size, num_workers=num_workers, what="listings' reference views",
            )  # fmt: skip
            views = cached.features.reshape(len(chunk), self.embedder.n_views, self.embedder.dim)
            photo = _photo_reader(chunk, root)
            parts.append(self.features_from_views(chunk, views, cached.present, photo).matrix)
        if not parts:
            return np.zeros((0, len(REFERENCE_FEATURE_NAMES)), dtype=np.float32)
        return np.concatenate(parts)

    # --- features -------------------------------------------------------------------------
    def _claimed_from_text(self, texts: list[str]) -> list[tuple[str | None, bool]]:
        """The brand each text names, and whether it named it by a catalogued alias."""
        if self._matcher is None:
            return [(None, False)] * len(texts)
        out: list[tuple[str | None, bool]] = []
        for text in texts:
            mention = self._matcher.match(text).brand if text else None
            if mention is None:
                out.append((None, False))
            else:
                out.append((self._spellings[mention], mention in self._aliases))
        return out

    def _best(
        self, queries: np.ndarray, allowed: list[str] | None
    ) -> tuple[np.ndarray, list[str | None]]:
        """Per query row, the best similarity and reference id (``allowed``: among those)."""
        if len(queries) == 0 or len(self.index) == 0 or (allowed is not None and not allowed):
            return np.zeros(len(queries), dtype=np.float32), [None] * len(queries)
        sims, ids = self.index.search(queries, k=1, allowed=allowed)
        best = np.array([s[0] if len(s) else 0.0 for s in sims], dtype=np.float32)
        return best, [row[0] if row else None for row in ids]

    def _copies(
        self,
        views: np.ndarray,
        rows: np.ndarray,
        photo: Callable[[int], Image.Image | None],
        claimed: Sequence[str | None],
    ) -> dict[int, tuple[float, str]]:
        """Per row with a photo: the best copy score among its candidate official photos, and
        that photo's id. Candidates are the :data:`CANDIDATES` official photos nearest to it of
        any brand and as many of the claimed brand's own (each at least
        :data:`CANDIDATE_SIMILARITY`): a copy of a brand's watch is most often sold as that
        brand, and other brands' watches can be nearer in embedding space than its own photo."""
        found: dict[int, tuple[float, str]] = {}
        if not len(rows) or not self._photo_ids:
            return found
        candidates: dict[int, list[str]] = {int(r): [] for r in rows}

        def add(members: list[int], allowed: list[str]) -> None:
            sims, ids = self.index.search(views[members, 0], k=CANDIDATES, allowed=allowed)
            for k, row in enumerate(members):
                for sim, rid in zip(sims[k], ids[k], strict=False):
                    if sim >= CANDIDATE_SIMILARITY and rid not in candidates[row]:
                        candidates[row].append(rid)

        add([int(r) for r in rows], self._photo_ids)
        for brand in sorted({claimed[int(r)] for r in rows} - {None}):
            own = self._ids.get((brand_key(brand), "photo"), [])  # type: ignore[arg-type]
            if own:
                add([int(r) for r in rows if claimed[int(r)] == brand], own)
        for row, ids in candidates.items():
            image = photo(row) if ids else None
            if image is not None:
                found[row] = max((self.verifier.score(image, rid), rid) for rid in ids)
        return found

    def features_from_views(
        self,
        frame: pd.DataFrame,
        views: np.ndarray,
        present: np.ndarray,
        photo: Callable[[int], Image.Image | None] | None = None,
    ) -> ReferenceFeatures:
        """The one place features are computed, from precomputed listing views.

        ``photo(i)`` gives row ``i``'s decoded photo, for verifying a suspected copy pixel by
        pixel (:mod:`ipguard.brands.copies`); it is asked only for the few rows whose photo is
        near an official one. Without it no copy is verified (the stolen-photo features are 0).
        """
        frame = frame.reset_index(drop=True)
        n = len(frame)
        n_views = views.shape[1] if views.ndim == 3 else self.embedder.n_views
        out = np.zeros((n, len(REFERENCE_FEATURE_NAMES)), dtype=np.float32)
        titles, descriptions = _column(frame, "title"), _column(frame, "description")
        texts = [text_of(t, d) for t, d in zip(titles, descriptions, strict=True)]
        mentioned = self._claimed_from_text(texts)
        sellers = _column(frame, "seller_id")
        claimed_column = [
            None if b is None else self._canonical.get(brand_key(b))
            for b in _column(frame, "brand")
        ]

        rows = np.flatnonzero(present)
        flat = views[rows].reshape(-1, views.shape[-1]) if len(rows) else np.zeros((0, 1))
        # nearest reference of any brand over every view, and the whole photo's nearest photo
        nearest_sim = np.zeros(n, dtype=np.float32)
        nearest_id: list[str | None] = [None] * n
        if len(rows):
            sims, ids = self._best(flat, None)
            sims = sims.reshape(len(rows), n_views)
            for k, row in enumerate(rows):
                best = int(np.argmax(sims[k]))
                nearest_sim[row] = sims[k, best]
                nearest_id[row] = ids[k * n_views + best]

        claimed: list[str | None] = [None] * n
        source: list[str | None] = [None] * n
        for i in range(n):
            if claimed_column[i] is not None:
                claimed[i], source[i] = claimed_column[i], "brand"
            elif mentioned[i][0] is not None:
                claimed[i], source[i] = mentioned[i][0], "text"
            elif nearest_id[i] is not None:
                claimed[i], source[i] = self._by_id[nearest_id[i]].brand, "image"  # type: ignore[index]

        copies = self._copies(views, rows, photo, claimed) if photo is not None else {}
        brand_photo = np.zeros(n, dtype=np.float32)
        brand_logo = np.zeros(n, dtype=np.float32)
        logo_id: list[str | None] = [None] * n
        for brand in sorted({c for c in claimed if c is not None}):
            members = [int(i) for i in rows if claimed[i] == brand]
            if not members:
                continue
            key = brand_key(brand)
            photos, logos = self._ids.get((key, "photo"), []), self._ids.get((key, "logo"), [])
            if photos:
                sims, _ = self._best(views[members, 0], photos)
                brand_photo[members] = sims
            if logos:
                sims, ids = self._best(views[members].reshape(-1, views.shape[-1]), logos)
                sims = sims.reshape(len(members), n_views)
                for k, row in enumerate(members):
                    best = int(np.argmax(sims[k]))
                    brand_logo[row] = sims[k, best]
                    logo_id[row] = ids[k * n_views + best]

        evidence: list[dict[str, Any]] = []
        for i in range(n):
            brand = claimed[i]
            key = None if brand is None else brand_key(brand)
            has_refs = key is not None and any((key, k) in self._ids for k in ("photo", "logo"))
            seller = sellers[i]
            authorised_list = self.catalog.sellers_of(brand) if brand else frozenset()
            authorised = bool(seller and seller in authorised_list)
            unauthorised = bool(seller and authorised_list and seller not in authorised_list)
            near = nearest_id[i]
            other = (
                near is not None and key is not None and brand_key(self._by_id[near].brand) != key
            )
            copy_score, copy_ref = copies.get(i, (0.0, None))
            stolen_ref = copy_ref if copy_score >= self.stolen_threshold else None
            stolen = False
            if stolen_ref is not None:
                owner = self._by_id[stolen_ref].brand
                stolen = not (seller and seller in self.catalog.sellers_of(owner))
            text_brand, by_alias = mentioned[i]
            other_mention = (
                text_brand is not None and brand is not None and brand_key(text_brand) != key
            )
            values = {
                "ref_photo_similarity": brand_photo[i],
                "ref_logo_similarity": brand_logo[i],
                "ref_nearest_similarity": nearest_sim[i],
                "ref_nearest_other_brand": other,
                "ref_missing": not (present[i] and has_refs),
                "stolen_photo": stolen,
                "stolen_similarity": max(copy_score, 0.0),
                "seller_authorised": authorised,
                "seller_unauthorised": unauthorised,
                "brand_alias_mention": by_alias,
                "brand_other_mention": other_mention,
            }
            for name, value in values.items():
                out[i, _COL[name]] = float(value)
            evidence.append(
                {
                    "brand": brand,
                    "brand_source": source[i],
                    "photo_similarity": round(float(brand_photo[i]), 4) if present[i] else None,
                    "logo_similarity": round(float(brand_logo[i]), 4) if present[i] else None,
                    "logo_reference": logo_id[i],
                    "nearest_reference": None
                    if near is None
                    else {
                        "reference_id": near,
                        "brand": self._by_id[near].brand,
                        "kind": self._by_id[near].kind,
                        "similarity": round(float(nearest_sim[i]), 4),
                    },
                    "stolen_photo": None
                    if not stolen
                    else {
                        "reference_id": stolen_ref,
                        "brand": self._by_id[stolen_ref].brand,  # type: ignore[index]
                        "copy_score": round(float(copy_score), 4),
                    },
                    "seller_authorised": authorised if authorised_list else None,
                    "brand_alias": by_alias,
                }
            )
        return ReferenceFeatures(out, evidence)
