"""ListingDataset: one listing in, one dict of tensors out, whatever state its image is in.

Images are decoded lazily in ``__getitem__`` (so a 200k-row manifest costs no memory until a
batch needs it). A listing whose image is missing or unusable is kept: its image tensor is
zeros, ``image_present`` is false and ``image_unusable`` counts it, so the text still teaches
and every epoch reports how many images could not be used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ipguard.data.columns import label_array
from ipguard.data.embeddings import CachedEmbeddings
from ipguard.data.images import decode_image, to_rgb_array
from ipguard.data.io import image_file
from ipguard.text.normalization import model_text

Transform = Callable[..., dict[str, Any]]


def _text_or_empty(value: object) -> str | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


class ListingDataset(Dataset[dict[str, Any]]):
    """Rows of a validated manifest frame as model inputs.

    ``load_images=False`` skips decoding for text-only models; ``tabular`` is an (n, F) array
    computed once for the frame, because per-row feature code in a worker is slow.
    ``embeddings`` (a frozen backbone's features per row, see :mod:`ipguard.data.embeddings`)
    replaces decoding: items then carry ``image_embedding`` and an empty ``image``.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        root: str | Path,
        *,
        transform: Transform | None = None,
        image_size: int = 128,
        load_images: bool = True,
        load_text: bool = True,
        tabular: np.ndarray | None = None,
        embeddings: CachedEmbeddings | None = None,
    ) -> None:
        self.frame = frame.reset_index(drop=True)
        if embeddings is not None and len(embeddings.present) != len(self.frame):
            raise ValueError(
                f"embeddings cover {len(embeddings.present)} rows, the frame has {len(self.frame)}"
            )
        self.embeddings = embeddings
        self.root = Path(root)
        self.transform = transform
        self.image_size = image_size
        self.load_images = load_images and transform is not None
        self.labels = (
            label_array(self.frame["label"])
            if "label" in self.frame
            else np.zeros(len(self.frame), dtype=np.int64)
        )
        self.texts: list[str] = []
        if load_text:
            titles = self.frame.get("title", pd.Series([None] * len(self.frame)))
            descriptions = self.frame.get("description", pd.Series([None] * len(self.frame)))
            self.texts = [
                model_text(_text_or_empty(t), _text_or_empty(d))
                for t, d in zip(titles.tolist(), descriptions.tolist(), strict=True)
            ]
        self.tabular = (
            np.zeros((len(self.frame), 0), dtype=np.float32)
            if tabular is None
            else tabular.astype(np.float32)
        )
        self.image_paths: list[str | None] = (
            [_text_or_empty(p) for p in self.frame["image_path"].tolist()]
            if "image_path" in self.frame
            else [None] * len(self.frame)
        )

    def __len__(self) -> int:
        return len(self.frame)

    def _image(self, idx: int) -> tuple[torch.Tensor, bool, bool]:
        blank = torch.zeros(3, self.image_size, self.image_size)
        rel = self.image_paths[idx]
        if not self.load_images or not rel:
            return blank, False, False
        decoded = decode_image(image_file(self.root, rel))
        if not decoded.ok or decoded.image is None:
            return blank, False, True
        assert self.transform is not None
        return self.transform(image=to_rgb_array(decoded.image))["image"], True, False

    def __getitem__(self, idx: int) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.embeddings is not None:
            image = torch.zeros(0)
            present = bool(self.embeddings.present[idx])
            unusable = bool(self.embeddings.unusable[idx])
            extra["image_embedding"] = torch.from_numpy(self.embeddings.features[idx])
        else:
            image, present, unusable = self._image(idx)
        return {
            **extra,
            "index": idx,
            "image": image,
            "image_present": present,
            "image_unusable": unusable,
            "text": self.texts[idx] if self.texts else "",
            "tabular": torch.from_numpy(self.tabular[idx]),
            "label": int(self.labels[idx]),
        }
