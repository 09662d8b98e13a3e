"""Parameters and MACs of the paper-width matting network for every registered upsampler the report names.

    python -m models.matting.complexity --out pipeline/report/network_complexity.json   # ~1 min on one CPU core

Each network is `A2UMattingNet(upsampler=<pair>)` at width 1.0 (the paper's channels), counted by
`models.matting.flops.count_flops` on one 1×4×512×512 input in eval mode (MMEngine's `FlopAnalyzer`; one
multiply-add = one MAC, `aten::mul` counted one MAC per output element: see that module). The report stage
must not build networks (it does not depend on `models/`, and the eight traces take about a minute), so it
reads the committed JSON this writes; `tests/test_report/test_successor_rows.py` checks the file against
freshly built networks. The JSON holds integers and exact quotients only, so it is byte-stable for unchanged code.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

#: The measured variants: the paper's two and A2U's successors (`models.ops.pairs.SUCCESSOR_PAIR_NAMES`).
BASE_VARIANTS = ("bilinear", "a2u")
#: Input side of the count (the paper's training crop).
SIZE = 512
#: Channel multiplier of the counted network (1.0: the paper's network).
WIDTH = 1.0


def default_variants() -> tuple[str, ...]:
    from models.ops.pairs import SUCCESSOR_PAIR_NAMES

    return BASE_VARIANTS + tuple(SUCCESSOR_PAIR_NAMES)


def measure(variants: Sequence[str] | None = None, size: int = SIZE, width: float = WIDTH) -> dict[str, Any]:
    """{'size', 'width', 'protocol', 'networks': {variant: {params, macs, gmacs, conv_macs, flops}}} with the
    baseline `bilinear` first; every count from `count_flops` on the network built at `width`."""
    import mmengine
    import torch

    from models.matting.flops import count_flops
    from models.matting.network import A2UMattingNet

    variants = tuple(variants or default_variants())
    networks: dict[str, dict[str, Any]] = {}
    for variant in variants:
        torch.manual_seed(0)
        counted = count_flops(A2UMattingNet(upsampler=variant, width=width), size)
        networks[variant] = {"params": counted["params"], "macs": counted["macs"], "gmacs": counted["macs"] / 1e9,
                             "conv_macs": counted["conv_macs"], "flops": counted["flops"]}
    return {"size": size, "width": width, "input_shape": [1, 4, size, size],
            "counter": "models.matting.flops.count_flops (mmengine.analysis.FlopAnalyzer, eval mode; macs = "
                       "conv + einsum + matmul + linear + elementwise mul, one per multiply-add)",
            "command": "python -m models.matting.complexity --out pipeline/report/network_complexity.json",
            "versions": {"torch": torch.__version__.split("+")[0], "mmengine": mmengine.__version__},
            "networks": networks}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", help="pair names (default: bilinear, a2u and the successors)")
    parser.add_argument("--size", type=int, default=SIZE)
    parser.add_argument("--width", type=float, default=WIDTH)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here (default: print it)")
    args = parser.parse_args(argv)
    text = json.dumps(measure(args.variants or None, args.size, args.width), indent=1) + "\n"
    if args.out is None:
        print(text, end="")
    else:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
