"""The names of the brand-reference features, in the order models read them.

They are computed by :class:`ipguard.brands.references.BrandReferences` (which needs an image
network, so it lives above :mod:`ipguard.nets`), but they are part of the data a fused model
or the late-fusion stacker reads, like :data:`ipguard.data.tabular.FEATURE_NAMES`; keeping the
names here lets the networks and the stacker size their inputs without importing the
networks that compute them.

* ``ref_photo_similarity``: cosine similarity of the listing photo to the nearest official photo
  of the claimed brand (0 where there is no photo or no such reference);
* ``ref_logo_similarity``: the best similarity of any view of the photo (whole or a tile) to
  the claimed brand's logo images, so a small logo on a product counts;
* ``ref_nearest_similarity`` / ``ref_nearest_other_brand``: how close the nearest reference of
  any brand is, and whether it belongs to another brand than the claimed one;
* ``ref_missing``: no usable photo, or the claimed brand has no reference images;
* ``stolen_photo`` / ``stolen_similarity``: a near-copy of an official photo from a seller the
  photo's brand has not authorised, and the whole photo's best similarity to any official photo;
* ``seller_authorised`` / ``seller_unauthorised``: the seller is on the brand's list, or the
  brand has a list and the seller is not on it (both 0: the brand lists no sellers);
* ``brand_alias_mention``: the text names the brand by a catalogued misspelling or alias;
* ``brand_other_mention``: the text names another catalog brand than the claimed one.
"""

from __future__ import annotations

__all__ = ["REFERENCE_FEATURE_DIM", "REFERENCE_FEATURE_NAMES"]

REFERENCE_FEATURE_NAMES: tuple[str, ...] = (
    "ref_photo_similarity",
    "ref_logo_similarity",
    "ref_nearest_similarity",
    "ref_nearest_other_brand",
    "ref_missing",
    "stolen_photo",
    "stolen_similarity",
    "seller_authorised",
    "seller_unauthorised",
    "brand_alias_mention",
    "brand_other_mention",
)
REFERENCE_FEATURE_DIM = len(REFERENCE_FEATURE_NAMES)
