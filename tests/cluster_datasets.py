"""A dataset whose image reads wait at a gate (`tests.cluster_gates`)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from catalogue.data import ImageDataset
from tests.cluster_gates import wait_at_gate


class GatedDataset(ImageDataset):
    """Another dataset's images, with a gate before image ``gate_index`` is read."""

    def __init__(self, inner: ImageDataset, gate: Path, gate_index: int) -> None:
        super().__init__(inner.transform, inner.strict)
        self.inner, self.gate, self.gate_index = inner, Path(gate), gate_index
        self.name, self.source = inner.name, inner.source
        self.class_keys, self.class_names = inner.class_keys, inner.class_names

    def __len__(self) -> int:
        return len(self.inner)

    def key(self, index: int) -> str:
        return self.inner.key(index)

    def label(self, index: int) -> int:
        return self.inner.label(index)

    def load_image(self, index: int) -> Image.Image:
        if index == self.gate_index:
            wait_at_gate(self.gate)
        return self.inner.load_image(index)
