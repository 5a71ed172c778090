"""Is a listing photo a copy of a brand's official photo? Retrieve by embedding, verify by pixels.

An embedding says what a photo *shows*; a copy is about *which photo* it is. A genuine seller's
own shot of the same handbag lands as close to the official photo in embedding space as a
scraped, re-encoded copy of it (measured in docs/brand_protection.md: cosine 0.85 for a copy
with a banner and 0.86 for a reshoot of the same product), so similarity alone cannot call a
theft. What a copier cannot change without effort is the photo's pixels: the props, the
shading, the texture of the backdrop survive re-encoding, resizing, a crop of a few percent and
a banner over one edge, and a reshoot never reproduces them.

So a copy is verified after retrieval: the candidate official photos the embedding index
finds are compared with the listing photo as small images, under a grid of
symmetric crops and small shifts (what a copier's crop does), by normalised cross-correlation
of grey levels per 8x8-pixel tile and by the tiles' mean colours. The copy score is the best
crop's *median* tile correlation, over tiles with texture in both images, times its colour
agreement over the same tiles: a banner or a sticker spoils a few tiles, not the medians;
flat backdrop tiles, which any two studio photos share, count in neither (on a studio
catalogue the backdrop is most of every photo, and a colour agreement over all tiles called
any two products of a category alike); and the colour tells a copy of a product's black photo
from its red one, which correlate alike.

The stored signature of a reference is its 96x96 colour image (27 KB), kept in the model
folder, so serving verifies without the catalog's image files.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["SIGNATURE_SIDE", "CopyVerifier", "copy_score", "copy_signature"]

SIGNATURE_SIDE = 96
_SIDE = 64
_TILE = 8
#: grey-level standard deviation below which a tile is flat and carries no evidence
_MIN_STD = 4.0
_MIN_TILES = 6
_CROPS = (0.0, 0.03, 0.06, 0.09, 0.12)
#: mean tile-colour difference (0-255 levels) at which colours count as wholly different
COLOUR_SCALE = 64.0
#: shifts of the crop window: a copier's crop of up to 10% split unevenly between two edges moves
#: the picture by up to 5%; +-2% alone missed such copies on the studio catalogue
_SHIFTS = (-0.04, -0.02, 0.0, 0.02, 0.04)


def _rgb(image: Image.Image, side: int) -> np.ndarray:
    return np.asarray(image.convert("RGB").resize((side, side), Image.BILINEAR), dtype=np.float32)


def _grey_of(rgb: np.ndarray) -> np.ndarray:
    # ITU-R 601 luma, as Pillow's "L" conversion
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def copy_signature(image: Image.Image) -> np.ndarray:
    """The reference photo as a ``SIGNATURE_SIDE`` square in colour (uint8, 27 KB)."""
    return _rgb(image, SIGNATURE_SIDE).round().astype(np.uint8)


def _tiles(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centred 8x8 tiles of a grey square ``(..., 64, 64)`` -> ``(..., tiles, 64)`` and the
    tiles' standard deviations."""
    n = _SIDE // _TILE
    lead = grey.shape[:-2]
    tiles = grey.reshape(*lead, n, _TILE, n, _TILE)
    tiles = np.moveaxis(tiles, -3, -2).reshape(*lead, n * n, _TILE * _TILE)
    centred = tiles - tiles.mean(axis=-1, keepdims=True)
    return centred, np.linalg.norm(centred, axis=-1) / _TILE


def _tile_colours(rgb: np.ndarray) -> np.ndarray:
    """Mean colour of each 8x8 tile of ``(..., 64, 64, 3)`` -> ``(..., tiles, 3)``."""
    n = _SIDE // _TILE
    lead = rgb.shape[:-3]
    tiles = rgb.reshape(*lead, n, _TILE, n, _TILE, 3).mean(axis=(-4, -2))
    return tiles.reshape(*lead, n * n, 3)


def _crops(signature: np.ndarray) -> np.ndarray:
    """The reference under every crop and shift of the search grid, at the comparison size:
    float32 ``(grid, 64, 64, 3)``."""
    side = signature.shape[0]
    reference = Image.fromarray(signature)
    out = []
    for crop in _CROPS:
        for dx in _SHIFTS:
            for dy in _SHIFTS:
                box = (
                    side * (crop + dx),
                    side * (crop + dy),
                    side * (1 - crop + dx),
                    side * (1 - crop + dy),
                )
                if box[0] < 0 or box[1] < 0 or box[2] > side or box[3] > side:
                    continue
                resized = reference.resize((_SIDE, _SIDE), Image.BILINEAR, box=box)
                out.append(np.asarray(resized, dtype=np.float32))
    return np.stack(out)


class CopyVerifier:
    """Copy scores against stored reference signatures; each reference's crop grid is
    computed on first use and kept, so verifying many listings against the few candidate
    references the index returns costs a few array products each."""

    def __init__(self, signatures: dict[str, np.ndarray], *, cache_size: int = 4096) -> None:
        self.signatures = signatures
        self._grids: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._cache_size = cache_size

    def _grid(self, reference_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        grid = self._grids.get(reference_id)
        if grid is None:
            crops = _crops(self.signatures[reference_id])
            centred, stds = _tiles(_grey_of(crops))
            grid = (centred, stds, _tile_colours(crops))
            if len(self._grids) >= self._cache_size:
                self._grids.pop(next(iter(self._grids)))
            self._grids[reference_id] = grid
        return grid

    def score(self, listing: Image.Image, reference_id: str) -> float:
        """The copy score: at the best crop, the median tile correlation times the colour
        agreement; 0 when too few tiles have texture to tell (a flat photo is nobody's copy).

        Correlation is blind to a tile's mean, so a red and a black photo of one product
        correlate as well as a photo and its copy; the colour agreement
        ``1 - median |tile colour difference| / COLOUR_SCALE`` (at least 0, over the textured
        tiles) tells them apart, and a re-encoded copy moves tile colours by a few levels only.
        """
        rgb = _rgb(listing, _SIDE)
        query, query_std = _tiles(_grey_of(rgb))
        colours = _tile_colours(rgb)
        centred, stds, ref_colours = self._grid(reference_id)
        textured = (query_std[None, :] > _MIN_STD) & (stds > _MIN_STD)
        products = np.einsum("gtp,tp->gt", centred, query)
        norms = np.linalg.norm(centred, axis=2) * np.linalg.norm(query, axis=1)[None, :]
        ncc = products / np.maximum(norms, 1e-6)
        differences = np.abs(ref_colours - colours[None]).mean(axis=2)
        best = 0.0
        for g in range(len(centred)):
            rows = textured[g]
            if rows.sum() >= _MIN_TILES:
                # colour where both photos show something: over all tiles, the shared backdrop
                # (most of a studio photo) made any two products' colours agree
                distance = float(np.median(differences[g, rows]))
                agreement = max(0.0, 1.0 - distance / COLOUR_SCALE)
                best = max(best, float(np.median(ncc[g, rows])) * agreement)
        return best


def copy_score(listing: Image.Image, signature: np.ndarray) -> float:
    """:meth:`CopyVerifier.score` for one listing and one reference signature."""
    return CopyVerifier({"reference": signature}).score(listing, "reference")
