"""FADE, fusing the assets of decoder and encoder for task-agnostic upsampling, and FADE-Lite.

Paper: Lu, Liu, Fu, Cao, "FADE: Fusing the Assets of Decoder and Encoder for Task-Agnostic Upsampling", ECCV 2022
(https://arxiv.org/abs/2207.10392); official code poppinace/fade (`FADE_L2H.py`, the form its A2U-matting and
SegFormer experiments use). Written from `shared/design/successors_spec.md` §2, not from the official code.

The decoder feature x (N×C×h×w) is upsampled ×s (s = 2) with the encoder feature `guide` (N×C×sh×sw) in two ways:

1. kernels, by *semi-shift convolution*: both features are compressed by 1×1 convs to d channels
   (`compressor_guide`, with bias; `compressor_x`, without), then ONE k_enc×k_enc conv (`content_encoder`, to
   G·k_up² logits) is applied to each and the results are summed after nearest-upsampling the decoder's:
       L = content_encoder(compressor_guide(guide)) + NN↑s(content_encoder(compressor_x(x)))   (N, G·k_up², sh, sw)
   (the encoder's bias therefore enters twice). K = softmax of L over each group's k_up² taps;
2. reassembly: U = CARAFE(x, K) (`reassemble_up`, mmcv semantics: k_up×k_up window centred on the source pixel
   ⌊Y/s⌋, ⌊X/s⌋, zero padding, no renormalisation at the borders);
3. decoder-only gate: G = sigmoid(NN↑s(gate(x))) (N×1×sh×sw, a 1×1 conv C -> 1 at low resolution), and
       out = G ⊙ guide + (1 − G) ⊙ U.

FADE-Lite (`lite=True`): d = G·k_up² and the content encoder is depthwise (groups = d).
Parameters (k_up = 5, k_enc = 3, d = 64, G = 1, gate on): FADE 129C + 14,490; FADE-Lite 51C + 276 — on the A2U
matting decoder (C = 256, 128, 64, 64) +124,008 and +27,216 (spec §2.7).

With every parameter zero, K = 1/k_up² (a k_up×k_up box at low resolution, zero-padded, divided by k_up²) and
G = ½, so FADE(x, guide) = ½·guide + ½·NN↑s(box(x)).

Hyper-parameters use mmcv `CARAFEPack` names, the official name beside each: `scale_factor` (scale; the official
code hard-codes 2 in its interpolations, any integer works here), `up_kernel` (up_kernel_size, 5), `up_group`
(not in the official code, always 1 there), `encoder_kernel` (the content encoder's 3, hard-coded),
`compressed_channels` (the compressors' 64, hard-coded; k_up²·G for FADE-Lite), `gating` (the gate of FADE;
the group's later mmseg copy defaults it off).

Initialisation: the official modules' own, xavier-uniform (gain 1) weights and zero biases on every conv. The
matting network re-initialises every conv afterwards (spec §2.6.4: so did the authors' matting code).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.ops.kernels import reassemble_up
from models.ops.kernels.common import check_guide
from models.registry import MODELS


def _check_odd(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value % 2 == 0:
        raise ValueError(f"{name} must be a positive odd int, got {value!r}")


@MODELS.register_module(name="FADE")
class FADE(nn.Module):
    """Encoder-guided ×s upsampler: semi-shift kernels, CARAFE reassembly, decoder gate.

    Args:
        in_channels (int): C, channels of the decoder feature x (official: in_channels_de).
        guide_channels (int, optional): channels of the encoder feature (official: in_channels_en); with
            `gating` it must equal `in_channels` (the gate adds the guide to the output). Default: None
            (= in_channels).
        scale_factor (int): s (official: scale). Default: 2.
        up_kernel (int): k_up, odd reassembly window (official: up_kernel_size). Default: 5.
        up_group (int): G, kernel groups (channel groups sharing one kernel); C divisible by G. Default: 1.
        encoder_kernel (int): k_enc, odd, the content encoder's window. Default: 3.
        compressed_channels (int): d, channels after the compressors (ignored by FADE-Lite, whose d is
            G·k_up²). Default: 64.
        lite (bool): FADE-Lite (official class `FADELite`): d = G·k_up², depthwise content encoder. Default: False.
        gating (bool): the decoder gate (False: the official `SemiShiftUp`, plain reassembly). Default: True.
    """

    def __init__(self, in_channels: int, guide_channels: int | None = None, scale_factor: int = 2,
                 up_kernel: int = 5, up_group: int = 1, encoder_kernel: int = 3, compressed_channels: int = 64,
                 lite: bool = False, gating: bool = True) -> None:
        super().__init__()
        _check_odd("up_kernel", up_kernel)
        _check_odd("encoder_kernel", encoder_kernel)
        if not isinstance(scale_factor, int) or isinstance(scale_factor, bool) or scale_factor < 1:
            raise ValueError(f"scale_factor must be a positive int, got {scale_factor!r}")
        if not isinstance(up_group, int) or up_group < 1 or in_channels % up_group:
            raise ValueError(f"up_group must be a positive divisor of in_channels {in_channels}, got {up_group!r}")
        self.in_channels = in_channels
        self.guide_channels = in_channels if guide_channels is None else guide_channels
        if gating and self.guide_channels != in_channels:
            raise ValueError(f"FADE's gate adds the guide to the output: guide_channels {self.guide_channels} must "
                             f"equal in_channels {in_channels} (or gating=False)")
        self.scale_factor, self.up_kernel, self.up_group = scale_factor, up_kernel, up_group
        self.encoder_kernel, self.lite, self.gating = encoder_kernel, bool(lite), bool(gating)
        logits = up_group * up_kernel ** 2
        self.compressed_channels = logits if self.lite else compressed_channels
        d = self.compressed_channels
        self.compressor_guide = nn.Conv2d(self.guide_channels, d, 1)            # official: compressor_en
        self.compressor_x = nn.Conv2d(in_channels, d, 1, bias=False)             # official: compressor_de
        self.content_encoder = nn.Conv2d(d, logits, encoder_kernel, padding=(encoder_kernel - 1) // 2,
                                         groups=d if self.lite else 1)
        self.gate = nn.Conv2d(in_channels, 1, 1) if self.gating else None        # official: gate_generator.conv
        self.init_weights()

    def init_weights(self) -> None:
        """The official init (mmcv `xavier_init(distribution='uniform')`): xavier-uniform weights, zero biases."""
        for conv in (self.compressor_guide, self.compressor_x, self.content_encoder, self.gate):
            if conv is None:
                continue
            nn.init.xavier_uniform_(conv.weight)
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)

    def _nearest_up(self, t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, scale_factor=self.scale_factor, mode="nearest")

    def kernels(self, x: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        """x N×C×h×w, guide N×C_guide×sh×sw -> kernels N×(G·k_up²)×sh×sw, summing to 1 per group (≥ float32)."""
        logits = (self.content_encoder(self.compressor_guide(guide))
                  + self._nearest_up(self.content_encoder(self.compressor_x(x))))
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        n, _, h, w = logits.shape
        return F.softmax(logits.reshape(n, self.up_group, -1, h, w), dim=2).reshape(n, -1, h, w)

    def forward(self, x: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        """x N×C×h×w (decoder), guide N×C_guide×sh×sw (encoder) -> N×C×sh×sw."""
        s = self.scale_factor
        check_guide("FADE", x, guide, s)
        up = reassemble_up(x, self.kernels(x, guide), self.up_kernel, self.up_group, s)
        if self.gate is None:
            return up
        g = torch.sigmoid(self._nearest_up(self.gate(x))).to(up.dtype)
        return g * guide.to(up.dtype) + (1 - g) * up
