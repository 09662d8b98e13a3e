"""SAPA, similarity-aware point affiliation: SAPA-B (bilinear-form similarity) and SAPA-G (gated query).

Paper: Lu, Liu, Ye, Fu, Liu, Cao, "SAPA: Similarity-Aware Point Affiliation for Feature Upsampling", NeurIPS 2022
(https://arxiv.org/abs/2209.12866); official code poppinace/sapa (`SAPA.py`, the release module = SAPA-B;
`SAPAExp.py` with `q_mode='gate'` = SAPA-G). Written from `shared/design/successors_spec.md` §3, not from the
official code; the official CUDA ops (`sim`, `atn`) become plain PyTorch here.

The decoder feature x (N×C×h×w) is upsampled ×s with the encoder feature `guide` (N×C_g×sh×sw), which enters
only the kernels (never the output):

1. LayerNorm over channels of both: ĝ = LN(guide), x̂ = LN(x) (affine, eps 1e-5);
2. query q = Linear(ĝ) (N×d×sh×sw) and key k = Linear(x̂) (N×d×h×w), both with bias; SAPA-G instead mixes
       q = γ ⊙ Linear(ĝ) + (1 − γ) ⊙ Linear'(NN↑s(x)),   γ = NN↑s(sigmoid(Linear''(x̂)))   (N×1×sh×sw)
   (the second term reads the *un-normalised* x, as the official code does);
3. similarity of each high-resolution query with the keys of the k_up×k_up low-resolution window around its
   parent pixel:  S[n, e, Y, X] = ⟨q[n, :, Y, X], k[n, :, ⌊Y/s⌋ + i − r, ⌊X/s⌋ + j − r]⟩,  e = i·k_up + j,
   r = (k_up − 1)/2; out-of-image keys are zero, so their similarity is 0 (not −∞: they keep exp(0) mass in
   the softmax, as in the official CUDA kernel);
4. A = softmax of S over the k_up² taps; out = CARAFE(x, A) (`reassemble_up`: the value is the raw x, zero
   padding, no renormalisation at the borders — the official `atn` op has the same indexing).

Parameters (C_g = C, d = 64, LN on both): SAPA-B 4C + 2Cd + 2d = 132C + 128; SAPA-G adds the gate Linear C -> 1
and the decoder query Linear C -> d, both with bias: 197C + 193. On the A2U matting decoder (C = 256, 128, 64,
64): +68,096 (SAPA-B) and +101,636 (SAPA-G); with d = 32, +35,072 and +52,100 (spec §3.5: the README's "+0.04M"
for SAPA-B fits d = 32; the matting configuration is not published).

With every parameter zero (LN weights included), q = k = 0, A = 1/k_up² and SAPA(x, guide) = NN↑s(box(x)), the
k_up×k_up box sum of x (zero padding) divided by k_up².

Hyper-parameters use mmcv `CARAFEPack` names where one exists, the official name beside each: `scale_factor`
(up_factor), `up_kernel` (up_kernel_size), `compressed_channels` (embedding_dim, d), `qkv_bias` (qkv_bias),
`q_mode` ('encoder_only' = SAPA-B, 'gate' = SAPA-G; as `SAPAExp`).

Initialisation (official): Linear weights truncated normal (std 0.02, cut at ±2), zero biases; LayerNorm 1, 0.
The layers are `nn.Linear`/`nn.LayerNorm` as in the official module (applied channels-last), so the matting
network's Conv2d re-initialisation leaves them alone.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.ops.kernels import reassemble_up
from models.ops.kernels.common import check_guide
from models.registry import MODELS


def window_similarity(q: torch.Tensor, k: torch.Tensor, kernel_size: int, scale_factor: int) -> torch.Tensor:
    """S[n, e, Y, X] = ⟨q[n, :, Y, X], k[n, :, ⌊Y/s⌋ + a_e, ⌊X/s⌋ + b_e]⟩, zero outside k.

    q (N, d, s·h, s·w), k (N, d, h, w) -> S (N, k_up², s·h, s·w), entry e = (a_e + r)·k_up + (b_e + r) row-major
    (the layout `reassemble_up` reads). q is split into its s² phases (pixel unshuffle: (N, d, s², h, w)), each
    window offset multiplies it by one shifted view of the zero-padded k; no (N, k_up², d, ·, ·) tensor is made.
    """
    n, d, h, w = k.shape
    s, radius = scale_factor, (kernel_size - 1) // 2
    phases = F.pixel_unshuffle(q, s).reshape(n, d, s * s, h, w)
    padded = F.pad(k, (radius, radius, radius, radius)).unsqueeze(2)             # N×d×1×(h+2r)×(w+2r)
    sims = [(phases * padded[..., dy:dy + h, dx:dx + w]).sum(dim=1)              # N×s²×h×w per offset
            for dy in range(kernel_size) for dx in range(kernel_size)]
    return F.pixel_shuffle(torch.stack(sims, dim=1).view(n, kernel_size ** 2 * s * s, h, w), s)


@MODELS.register_module(name="SAPA")
class SAPA(nn.Module):
    """Encoder-guided ×s upsampler: LayerNorm'd query/key similarity over a low-resolution window, reassembly.

    Args:
        in_channels (int): C, channels of the decoder feature x (official: dim_x).
        guide_channels (int, optional): channels of the encoder feature (official: dim_y). Default: None
            (= in_channels).
        scale_factor (int): s (official: up_factor). Default: 2.
        up_kernel (int): k_up, odd window (official: up_kernel_size). Default: 5.
        compressed_channels (int): d, query/key embedding channels (official: embedding_dim). Default: 64.
        qkv_bias (bool): biases of the query/key (and SAPA-G gate) Linears (official: qkv_bias). Default: True.
        q_mode (str): 'encoder_only' (SAPA-B, the release `SAPA`) or 'gate' (SAPA-G, `SAPAExp(q_mode='gate')`).
            Default: 'encoder_only'.
    """

    #: Accepted `q_mode` values (official names).
    Q_MODES = ("encoder_only", "gate")

    def __init__(self, in_channels: int, guide_channels: int | None = None, scale_factor: int = 2,
                 up_kernel: int = 5, compressed_channels: int = 64, qkv_bias: bool = True,
                 q_mode: str = "encoder_only") -> None:
        super().__init__()
        if not isinstance(up_kernel, int) or up_kernel < 1 or up_kernel % 2 == 0:
            raise ValueError(f"up_kernel must be a positive odd int, got {up_kernel!r}")
        if not isinstance(scale_factor, int) or isinstance(scale_factor, bool) or scale_factor < 1:
            raise ValueError(f"scale_factor must be a positive int, got {scale_factor!r}")
        if q_mode not in self.Q_MODES:
            raise ValueError(f"q_mode must be one of {self.Q_MODES}, got {q_mode!r}")
        self.in_channels = in_channels
        self.guide_channels = in_channels if guide_channels is None else guide_channels
        self.scale_factor, self.up_kernel, self.compressed_channels = scale_factor, up_kernel, compressed_channels
        self.qkv_bias, self.q_mode = bool(qkv_bias), q_mode
        self.up_group = 1
        d = compressed_channels
        self.norm_guide = nn.LayerNorm(self.guide_channels)                      # official: norm_y
        self.norm_x = nn.LayerNorm(in_channels)                                  # official: norm_x
        self.query = nn.Linear(self.guide_channels, d, bias=qkv_bias)            # official: q
        self.key = nn.Linear(in_channels, d, bias=qkv_bias)                      # official: k
        gated = q_mode == "gate"
        self.query_x = nn.Linear(in_channels, d, bias=qkv_bias) if gated else None   # SAPA-G's decoder query
        self.gate = nn.Linear(in_channels, 1, bias=qkv_bias) if gated else None      # SAPA-G's gate
        self.init_weights()

    def init_weights(self) -> None:
        """Official init: Linear weights trunc-normal (std 0.02, ±2), zero biases; LayerNorm weight 1, bias 0."""
        for linear in (self.query, self.key, self.query_x, self.gate):
            if linear is None:
                continue
            nn.init.trunc_normal_(linear.weight, std=0.02)
            if linear.bias is not None:
                nn.init.zeros_(linear.bias)
        for norm in (self.norm_guide, self.norm_x):
            norm.reset_parameters()

    def _nearest_up(self, t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, scale_factor=self.scale_factor, mode="nearest")

    def query_key(self, x: torch.Tensor, guide: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x N×C×h×w, guide N×C_g×sh×sw -> (q N×d×sh×sw, k N×d×h×w)."""
        x_last = x.permute(0, 2, 3, 1)                                            # channels-last, as official
        x_norm = self.norm_x(x_last)
        q = self.query(self.norm_guide(guide.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        k = self.key(x_norm).permute(0, 3, 1, 2)
        if self.q_mode == "gate":
            gamma = self._nearest_up(torch.sigmoid(self.gate(x_norm)).permute(0, 3, 1, 2))
            q_x = self._nearest_up(self.query_x(x_last).permute(0, 3, 1, 2))       # Linear commutes with NN↑s
            q = gamma * q + (1 - gamma) * q_x
        return q, k

    def kernels(self, x: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        """x N×C×h×w, guide N×C_g×sh×sw -> kernels N×k_up²×sh×sw summing to 1 (at least float32)."""
        q, k = self.query_key(x, guide)
        sims = window_similarity(q, k, self.up_kernel, self.scale_factor)
        return F.softmax(sims.to(torch.promote_types(sims.dtype, torch.float32)), dim=1)

    def forward(self, x: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        """x N×C×h×w (decoder), guide N×C_g×sh×sw (encoder) -> N×C×sh×sw."""
        s = self.scale_factor
        check_guide("SAPA", x, guide, s)
        return reassemble_up(x, self.kernels(x, guide), self.up_kernel, 1, s)
