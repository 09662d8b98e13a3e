"""FLOPs and parameters of the matting network with MMEngine's complexity analysis (`mmengine.analysis`).

Counting protocol (fvcore / MMEngine convention: one multiply-add = one "flop", i.e. these are MACs):
    - the network is traced once at (batch, 4, size, size) in eval mode by `mmengine.analysis.FlopAnalyzer`,
      the engine behind `get_model_complexity_info`, used directly for its per-operator breakdown;
    - MMEngine's default handles count convolutions, einsum/matmul, BatchNorm/GroupNorm, bilinear/nearest
      interpolation and adaptive pooling; activations, max-pooling, additions and softmax count zero;
    - MMEngine has no handle for `aten::mul`, which is how every reassembly op is traced here (A2U / A2D /
      CARAFE / IndexNet: a sum of elementwise `kernel × shifted feature` products; under tracing the ops use
      their out-of-place formulation). We add one: **one MAC per output element of `aten::mul`**, which
      equals the s²·C·H·W (A2U) and k²·C·h·w (A2D) of spec 2.5 exactly, plus the C·h·w second-order product.
      Without it A2U's reassembly would count as zero.

`macs` sums only multiply-accumulate operators (conv, einsum, matmul, linear, mul) and is comparable to
the spec's conv-only numbers (52.56 GMAC for the baseline at 512²); `flops` is MMEngine's total (plus mul).
`a2u_extra_macs_spec` is the analytic A2U/A2D overhead of spec 2.5 (0.881 GMAC at 512²) for cross-checks.
"""
from __future__ import annotations

import argparse
import json
from typing import Any, Sequence

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.analysis.jit_handles import elementwise_flop_counter
from torch import nn

from models.matting.encoder import PAIR_CHANNELS

#: Operators (as named in `FlopAnalyzer.by_operator`) that are multiply-accumulates.
MAC_OPERATORS = ("conv", "einsum", "matmul", "bmm", "mm", "addmm", "linear", "mul")


def count_flops(net: nn.Module, size: int | Sequence[int] = 512, batch: int = 1) -> dict[str, Any]:
    """Count the FLOPs (MACs) and parameters of `net` on a (batch, in_channels, H, W) input.

    Args:
        net (nn.Module): the matting network (any module taking one N×C×H×W tensor).
        size (int | Sequence[int]): H = W = size, or (H, W). Default: 512.
        batch (int): batch size of the traced input. Default: 1.

    Returns:
        dict: `flops` (MMEngine total incl. mul), `macs` (MAC operators only), `conv_macs`, `params`,
        `by_operator` (dict), `unsupported_ops` (dict: operator -> count, counted as zero), `input_shape`.
    """
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    in_channels = getattr(net, "in_channels", 4)
    parameter = next(net.parameters())
    x = torch.randn(batch, in_channels, height, width, dtype=parameter.dtype, device=parameter.device)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            analyzer = FlopAnalyzer(net, (x,))
            analyzer.set_op_handle("aten::mul", elementwise_flop_counter(0, 1))
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            analyzer.tracer_warnings("none")
            by_operator = {name: int(count) for name, count in analyzer.by_operator().items()}
            total = int(analyzer.total())
            unsupported = dict(analyzer.unsupported_ops())
    finally:
        net.train(was_training)
    return {
        "flops": total,
        "macs": sum(by_operator.get(name, 0) for name in MAC_OPERATORS),
        "conv_macs": by_operator.get("conv", 0),
        "params": int(parameter_count(net)[""]),
        "by_operator": by_operator,
        "unsupported_ops": unsupported,
        "input_shape": [batch, in_channels, height, width],
    }


def a2u_pair_macs_spec(channels: int, height: int, width: int, up_kernel: int = 3, encoder_kernel: int = 6,
                       decoder_channels: int | None = None) -> int:
    """Spec 2.5: MACs of one shared A2U/A2D pair on a (channels, height, width) encoder feature.

    u, v depthwise stride-2 convs 2·C·hw·k², second-order product C·hw, projections 2·hw·(2s)²,
    A2D C·hw·(2s)² and A2U C_dec·HW·s², with hw = (H/2)(W/2). The pooled generator convs (144·C) are left
    out, as in the spec.
    """
    low = (height // 2) * (width // 2)
    down_entries = (2 * up_kernel) ** 2
    decoder_channels = channels if decoder_channels is None else decoder_channels
    return (2 * channels * low * encoder_kernel ** 2 + channels * low + 2 * low * down_entries
            + channels * low * down_entries + decoder_channels * height * width * up_kernel ** 2)


def a2u_extra_macs_spec(height: int, width: int | None = None) -> int:
    """Spec 2.5 overhead of the four A2U pairs of the matting network (0.881 GMAC at 512×512)."""
    width = height if width is None else width
    return sum(a2u_pair_macs_spec(c, height >> i, width >> i) for i, c in enumerate(PAIR_CHANNELS))


def main(argv: Sequence[str] | None = None) -> None:
    """Print one JSON line per variant: `python -m models.matting.flops --size 512 bilinear a2u`."""
    from models.matting.network import A2UMattingNet  # local: keep this module importable on its own

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("variants", nargs="+", help="operator-pair names")
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args(argv)
    for variant in args.variants:
        result = count_flops(A2UMattingNet(upsampler=variant), args.size)
        print(json.dumps({"variant": variant, **{k: result[k] for k in ("params", "macs", "conv_macs", "flops")},
                          "unsupported_ops": result["unsupported_ops"]}))


if __name__ == "__main__":
    main()
