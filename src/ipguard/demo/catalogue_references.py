"""A brand reference catalog for a generated studio catalogue, as brands hand one over.

What a brand gives a marketplace is a few of its own product photos, its logo, its prices and
the list of shops allowed to sell it. :func:`write_studio_catalog` writes exactly that, in the
folder-per-brand form (``<Brand>/photos``, ``<Brand>/logos``, ``prices.csv``, ``sellers.txt``),
from a catalogue made by :func:`ipguard.demo.catalogue.make_catalogue`: the photos are the
brand's own shop's first genuine shots (they also appear in the shop's listings, as real
official photos do), the logo is the brand's genuine mark, and the authorised sellers are the
brand's shops and authorised dealers that list it. It reads the catalogue's ``truth.csv`` for
who is who, which a marketplace knows from its seller programme, not from labels.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pandas as pd

from ipguard.demo.catalogue import BRANDS
from ipguard.demo.studio import render_mark

__all__ = ["AUTHORISED_KINDS", "write_studio_catalog"]

#: the catalogue's seller kinds a brand lists as authorised
AUTHORISED_KINDS = ("brand_store", "authorised")


def _frame(root: Path) -> pd.DataFrame:
    listings = pd.read_csv(
        root / "listings.csv", dtype=str, keep_default_na=False, sep=None, engine="python"
    )
    truth = pd.read_csv(root / "truth.csv", dtype=str, keep_default_na=False)
    return listings.merge(truth, on="listing_id", validate="one_to_one")


def write_studio_catalog(
    catalogue_root: str | Path, out_dir: str | Path, *, photos_per_brand: int = 3
) -> Path:
    """Write the catalog of every brand in the catalogue at ``catalogue_root`` to ``out_dir``.

    A brand without a genuine brand-shop photo gets its logo, prices and sellers only.
    """
    if not isinstance(photos_per_brand, int) or photos_per_brand < 0:
        raise ValueError(f"photos_per_brand: expected an integer >= 0, found {photos_per_brand!r}")
    root, out = Path(catalogue_root), Path(out_dir)
    frame = _frame(root)
    prices = pd.read_csv(root / "brands.csv", dtype=str, keep_default_na=False)
    own = frame[
        (frame["seller_kind"] == "brand_store")
        & (frame["label"] == "genuine")
        & (frame["reupload"] == "")
        & (frame["image_path"] != "")
    ].drop_duplicates("photo_id")
    for brand in BRANDS:
        folder = out / brand.name
        (folder / "photos").mkdir(parents=True, exist_ok=True)
        (folder / "logos").mkdir(exist_ok=True)
        for path in own.loc[own["brand"] == brand.name, "image_path"].head(photos_per_brand):
            shutil.copyfile(root / path, folder / "photos" / Path(path).name)
        render_mark(brand.mark).save(folder / "logos" / "mark.png")
        rows = prices.loc[prices["brand"] == brand.name, ["currency", "reference_price"]]
        rows.to_csv(folder / "prices.csv", index=False, quoting=csv.QUOTE_MINIMAL)
        sellers = frame.loc[
            (frame["brand"] == brand.name) & frame["seller_kind"].isin(AUTHORISED_KINDS),
            "seller_id",
        ]
        (folder / "sellers.txt").write_text("".join(f"{s}\n" for s in sorted(set(sellers))))
    return out
