"""How far one matting run's digits move on another code path: a stand-in for another host.

    python tools/matting_drift.py --seed 0 --threads 1          # after `make repro` (which trains with 2 threads)

Trains and evaluates each default variant for one seed again, exactly as the train and evaluate stages do, but
with another thread count (`OMP_NUM_THREADS`/`MKL_NUM_THREADS`, which changes the summation order of every
parallel reduction, as another CPU does) and optionally forced onto AVX2 code paths (`--avx2`: oneDNN, MKL and
ATen dispatch as on a CPU without AVX-512). Writes `docs/measurements/matting_drift.json`: the test SAD of each
run next to the pipeline's own run of the same variant and seed (`results/eval/<v>/seeds/seed<s>/summary.json`);
the report compares the drift with the spread over seeds. Work files go to work_dirs/drift/ (about 4 min per
variant on 2 cores at 1 thread: bilinear measured).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.core.io import write_json  # noqa: E402
from pipeline.core.runinfo import git_revision, host_label, machine_info  # noqa: E402

AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}


def _test_sad(summary: Path) -> float:
    return float(json.loads(summary.read_text())["sets"]["test"]["sad"]["mean"])


def run_path(variant: str, seed: int, threads: int, avx2: bool, work: Path, params: Path, data: Path) -> float:
    """Train + evaluate one (variant, seed) with `threads` threads (and AVX2 paths); its test SAD."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           **(AVX2 if avx2 else {})}
    train = work / "train" / variant
    for cmd in (
            [sys.executable, "stages/train.py", variant, "--seed", str(seed), "--params", str(params), "--data",
             str(data), "--configs", "configs/matting", "--out", str(train / f"seed{seed}"), "--work",
             str(work / "runs" / variant)],
            [sys.executable, "stages/evaluate.py", variant, "--params", str(params), "--model", str(train),
             "--data", str(data), "--out", str(work / "eval" / variant), "--no-progress"]):
        subprocess.run(cmd, cwd=REPO, env=env, check=True)
    return _test_sad(work / "eval" / variant / "seeds" / f"seed{seed}" / "summary.json")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=None, help="default: params.yaml train.variants")
    parser.add_argument("--seed", type=int, default=0, help="one of params.yaml train.seeds (default 0)")
    parser.add_argument("--threads", type=int, default=1, help="thread count of the rerun (the pipeline: all cores)")
    parser.add_argument("--avx2", action="store_true", help="also force AVX2 code paths (oneDNN, MKL, ATen)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data/composed")
    parser.add_argument("--results", default="results", help="the pipeline's results (the reference runs)")
    parser.add_argument("--out", default="docs/measurements/matting_drift.json")
    args = parser.parse_args(argv)

    params = yaml.safe_load(Path(args.params).read_text())
    variants = args.variants or params["train"]["variants"]
    if args.seed not in params["train"]["seeds"]:
        parser.error(f"--seed {args.seed} is not in params.yaml train.seeds {params['train']['seeds']}")
    tag = f"t{args.threads}{'-avx2' if args.avx2 else ''}"
    work = REPO / "work_dirs" / "drift" / tag
    work.mkdir(parents=True, exist_ok=True)
    one_seed = work / "params.yaml"
    one_seed.write_text(yaml.safe_dump({**params, "train": {**params["train"], "seeds": [args.seed]}},
                                       sort_keys=False))
    runs = []
    for variant in variants:
        reference = Path(args.results) / "eval" / variant / "seeds" / f"seed{args.seed}"
        ref_run = json.loads((reference.parents[1] / "run.json").read_text())  # the evaluate stage's run.json
        runs.append({"variant": variant, "seed": args.seed, "threads": ref_run["machine"]["torch_threads"],
                     "code_path": "default", "test_sad": _test_sad(reference / "summary.json"),
                     "source": str(reference / "summary.json")})
        sad = run_path(variant, args.seed, args.threads, args.avx2, work, one_seed, Path(args.data))
        runs.append({"variant": variant, "seed": args.seed, "threads": args.threads,
                     "code_path": "avx2" if args.avx2 else "default", "test_sad": sad})
        print(f"{variant} seed {args.seed}: test SAD {runs[-2]['test_sad']:.4f} ({runs[-2]['threads']} threads) vs "
              f"{sad:.4f} ({tag})", flush=True)
    out = Path(args.out)
    existing = json.loads(out.read_text()) if out.is_file() else {}
    kept = [r for r in existing.get("runs", []) if (r["variant"], r["threads"], r.get("code_path")) not in
            {(r2["variant"], r2["threads"], r2["code_path"]) for r2 in runs}]
    write_json(out, {"what": "test SAD of one seed retrained on another code path (thread count, ISA): the drift "
                             "a change of host can cause", "commit": git_revision(),
                     "host": host_label(machine_info()), "runs": kept + runs})
    print(f"-> {out}")


if __name__ == "__main__":
    main()
