"""A stand-in matting network for stage-level tests: the tiny network of the training tests, accepting (and
ignoring) what the train stage sets on `model.network` (the variant's `upsampler`, `encoder_init_cfg`), so
`stages/train.py` runs it in seconds."""
from __future__ import annotations

from models.registry import MODELS
from tests.test_matting.test_data_matting import TinyStandInMattingNet


@MODELS.register_module()
class TinyVariantStandIn(TinyStandInMattingNet):
    """`TinyStandInMattingNet` that takes the variant's `upsampler` and the encoder's init config (unused)."""

    def __init__(self, upsampler: str = "bilinear", width: int = 8, encoder_init_cfg: dict | None = None) -> None:
        super().__init__(width=width)
        self.upsampler = upsampler
