"""Is a listing photo a copy of a brand's official photo? Retrieve by embedding, verify by pixels.

An embedding says what a photo *shows*; a copy is about *which photo* it is. A genuine seller's
own shot of the same handbag lands as close to the official photo in embedding space as a
scraped, re-encoded copy of it (measured in docs/brand_protection.md: cosine 0.85 for a copy
with a banner and 0.86 for a reshoot of the same product), so similarity alone cannot call a
theft. What a copier cannot change without effort is the photo's pixels: the props, the
shading, the texture of the backdrop survive re-encoding, resizing, a crop of a few percent and
a banner over one edge, and a reshoot never reproduces them.

So a copy is verified after retrieval: the candidate official photos the embedding index
finds are compared with the listing photo as small grey-level images, under a grid of
symmetric crops and small shifts (what a copier's crop does), by normalised cross-correlation
per 8x8-pixel tile. The copy score is the best crop's *median* tile correlation, over tiles
with texture in both images: a banner or a sticker spoils a few tiles, not the median, and flat
backdrop tiles, which any two studio photos share, do not count.

The stored signature of a reference is its 96x96 grey-level image (9 KB), kept in the model
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
_SHIFTS = (-0.02, 0.0, 0.02)


def _grey(image: Image.Image, side: int) -> np.ndarray:
    return np.asarray(image.convert("L").resize((side, side), Image.BILINEAR), dtype=np.float32)


def copy_signature(image: Image.Image) -> np.ndarray:
    """The reference photo as a ``SIGNATURE_SIDE`` square of grey levels (uint8)."""
    return _grey(image, SIGNATURE_SIDE).round().astype(np.uint8)


def _tiles(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = _SIDE // _TILE
    tiles = grey.reshape(n, _TILE, n, _TILE).transpose(0, 2, 1, 3).reshape(n * n, -1)
    centred = tiles - tiles.mean(axis=1, keepdims=True)
    return centred, np.linalg.norm(centred, axis=1) / np.sqrt(tiles.shape[1])


def _crops(signature: np.ndarray) -> np.ndarray:
    """The reference under every crop and shift of the search grid, at the comparison size:
    float32 ``(grid, 64, 64)``."""
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
        self._grids: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._cache_size = cache_size

    def _grid(self, reference_id: str) -> tuple[np.ndarray, np.ndarray]:
        grid = self._grids.get(reference_id)
        if grid is None:
            crops = _crops(self.signatures[reference_id])
            n = _SIDE // _TILE
            tiles = crops.reshape(len(crops), n, _TILE, n, _TILE).transpose(0, 1, 3, 2, 4)
            tiles = tiles.reshape(len(crops), n * n, -1)
            centred = tiles - tiles.mean(axis=2, keepdims=True)
            grid = (centred, np.linalg.norm(centred, axis=2))
            if len(self._grids) >= self._cache_size:
                self._grids.pop(next(iter(self._grids)))
            self._grids[reference_id] = grid
        return grid

    def score(self, listing: Image.Image, reference_id: str) -> float:
        """Best median tile correlation over the crop grid, in [-1, 1]; 0 when too few tiles
        have texture to tell (a blank or flat photo is nobody's copy)."""
        query, query_std = _tiles(_grey(listing, _SIDE))
        centred, norms = self._grid(reference_id)
        size = query.shape[1]
        textured = (query_std[None, :] > _MIN_STD) & (norms / np.sqrt(size) > _MIN_STD)
        products = np.einsum("gtp,tp->gt", centred, query)
        ncc = products / np.maximum(norms * np.linalg.norm(query, axis=1)[None, :], 1e-6)
        best = 0.0
        for g in range(len(centred)):
            rows = textured[g]
            if rows.sum() >= _MIN_TILES:
                best = max(best, float(np.median(ncc[g, rows])))
        return best


def copy_score(listing: Image.Image, signature: np.ndarray) -> float:
    """:meth:`CopyVerifier.score` for one listing and one reference signature."""
    return CopyVerifier({"reference": signature}).score(listing, "reference")
