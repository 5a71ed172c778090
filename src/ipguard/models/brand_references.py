"""Training with a brand reference catalog: build its references, feed the data module.

The fused model and the late-fusion stacker read the brand-reference features
(:data:`ipguard.data.reference_features.REFERENCE_FEATURE_NAMES`) when trained with
``model.references=true``. Both do the same three things, here once: read the catalog that
``data.brands`` names, embed its reference images with the model's reference embedder, and
write the result into the exported model folder, so serving compares listings with exactly
the references training used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipguard.brands.embedding import ReferenceEmbedder
from ipguard.brands.references import (
    DEFAULT_STOLEN_THRESHOLD,
    BrandReferences,
    references_extras,
)
from ipguard.data.catalog import read_catalog
from ipguard.data.reference_catalog import read_brand_catalog
from ipguard.data.tabular import TabularFeaturizer

__all__ = ["ReferenceSettings", "build_references", "feed_datamodule", "replace_catalog"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReferenceSettings:
    """How references are compared: the embedding network, its input size, the copy threshold."""

    backbone: str = "efficientnet_lite0"
    image_size: int = 128
    stolen_threshold: float = DEFAULT_STOLEN_THRESHOLD


def build_references(
    catalog_path: str | Path | None, settings: ReferenceSettings
) -> BrandReferences:
    """The catalog's references, embedded; a clear error where the catalog has no images."""
    if catalog_path is None:
        raise ValueError(
            "model.references=true compares listings with a brand reference catalog, but "
            "data.brands is null; set data.brands=PATH to a catalog folder with reference "
            "photos and logos (docs/brand_protection.md)"
        )
    catalog = read_brand_catalog(catalog_path)
    if not catalog.images:
        raise ValueError(
            f"model.references=true: the brand catalog {catalog_path} has no usable reference "
            "photos or logos (a prices-only catalog); give a catalog folder "
            "(docs/brand_protection.md) or set model.references=false"
        )
    embedder = ReferenceEmbedder(settings.backbone, image_size=settings.image_size)
    references = BrandReferences.build(
        catalog, embedder, stolen_threshold=settings.stolen_threshold
    )
    log.info("brand references: %r", references)
    return references


def feed_datamodule(references: BrandReferences, dm: Any) -> None:
    """Make the data module append the reference features to every split's tabular ones."""

    def features(frame: Any) -> Any:
        return references.manifest_features(
            frame,
            dm.root or ".",
            cache_dir=getattr(dm, "embedding_cache", None),
            batch_size=getattr(dm, "eval_batch_size", 64),
            num_workers=getattr(dm, "num_workers", 0),
        )

    dm.extra_features = features


def replace_catalog(folder: str | Path, spec: Any, catalog_path: str | Path) -> list[str]:
    """Point an exported model folder at another brand catalog, without retraining it.

    The network, calibrator and policy stay; what the model compares listings with changes:
    the tabular featurizer's reference prices (same brand-matching threshold), and, for a model
    built with references, the embedded reference images (same embedder and copy threshold).
    That is how a brand added to the catalog is protected by the model already in production.
    Returns what was replaced, for the export's log line. ``spec`` is updated in place; the
    caller saves it.
    """
    folder = Path(folder)
    replaced: list[str] = []
    if "tabular" in spec.extras:
        old = TabularFeaturizer.from_dict(spec.extras["tabular"])
        spec.extras["tabular"] = TabularFeaturizer(
            read_catalog(catalog_path), threshold=old.threshold
        ).to_dict()
        replaced.append("reference prices")
    if "references" in spec.extras:
        previous = BrandReferences.load(folder / spec.extras["references"]["folder"])
        catalog = read_brand_catalog(catalog_path)
        if not catalog.images:
            raise ValueError(
                f"brands={catalog_path}: this model compares listings with reference photos "
                "and logos, and the catalog has none usable; give a catalog folder "
                "(docs/brand_protection.md)"
            )
        fresh = BrandReferences.build(
            catalog, previous.embedder, stolen_threshold=previous.stolen_threshold
        )
        fresh.save(folder)
        spec.extras["references"] = references_extras(fresh)
        replaced.append(f"{len(fresh.references)} reference images of {len(catalog.brands)} brands")
    if not replaced:
        raise ValueError(
            f"brands={catalog_path}: this {spec.kind!r} model reads no brand catalog (no "
            "tabular or reference features); nothing to replace"
        )
    log.info("brand catalog replaced by %s: %s", catalog_path, ", ".join(replaced))
    return replaced
