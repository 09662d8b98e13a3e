"""DVC stage `verify`: evidence of what this repository checks about itself, for the report's verification box.

    python stages/verify.py [--params params.yaml] [--out results/verify/verify.json]

Reads params section `base` (the seed). Writes `run.json` and one small JSON (`pipeline.verify.checks.run_all`): matting
metrics against the MATLAB reference on the embedded golden cases, the reassembly kernels against loop
references (float64), gradcheck of their backward passes, which reassembly backend runs on CPU (the fused C++
op `fused-cpp`, or `eager` pure PyTorch with the reason) and the fused op's parity with the pure-PyTorch kernels
(float32, matting-like shape, forward and gradients), parameter counts against the official code,
ONNX/onnxruntime parity of an A2D/A2U pair, and A2U's successors FADE, SAPA and DySample (zero-parameter
identities, gradcheck, matting-network parameter counts, ONNX parity). A failed check is recorded
(`passed: false`) and ends the stage with exit status 1 after the file is written.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core.mathenv import pin_math_env  # noqa: E402  (before torch: MKL reads it once)

pin_math_env()

from pipeline.core.io import write_json  # noqa: E402
from pipeline.core.logs import stage_logging  # noqa: E402
from pipeline.core.params import BaseParams, load_params, read_section  # noqa: E402
from pipeline.core.runinfo import StageTimer  # noqa: E402
from pipeline.verify.checks import run_all  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (section base)")
    parser.add_argument("--out", default="results/verify/verify.json", help="the verification record")
    args = parser.parse_args(argv)
    with stage_logging("verify", args.out) as log:
        base = read_section(load_params(args.params), "base", BaseParams)
        timer = StageTimer("verify", {}, base)
        checks = run_all(base.seed)
        write_json(args.out, {"checks": checks, "seed": base.seed})
        timer.write(Path(args.out).parent, outputs=[Path(args.out).name])
        for name, result in checks.items():
            log.info("%-17s %s", name, {True: "passed", False: "FAILED", None: "not run"}[result.get("passed")])
        backend = checks["fused_parity"]
        log.info("CPU reassembly backend: %s%s", backend["backend"],
                 f" ({backend['reason']})" if backend.get("reason") else "")
        failed = [name for name, result in checks.items() if result.get("passed") is False]
    if failed:
        print(f"verify: {', '.join(failed)} failed (see {args.out})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
