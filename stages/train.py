"""DVC stage `train@<variant>`: train the matting network on the composed data with MMEngine.

    python stages/train.py a2u                                             # one process
    torchrun --nproc_per_node 2 stages/train.py a2u --launcher pytorch     # DDP (gloo on CPU, nccl on GPU)

Reads params sections `base` (seed, profile) and `train` (variants, lr, config_dir, num_workers and the budget
keys iters, crop, batch_size, val_interval), merges them into `configs/matting/<variant config>` and writes
`results/train/<variant>/` (best.pth, last.pth, config.py, train_log.txt, dvclive/, summary.json, run.json).
Checkpoints for resuming live in `work_dirs/train/<variant>/<config fingerprint>/`: rerunning after an
interruption continues from the last checkpoint and ends with the weights of an uninterrupted run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.engine.runner import config_for_variant, export_training, run_training, training_config  # noqa: E402
from pipeline.params import load_params, require, stage_params  # noqa: E402
from pipeline.runinfo import StageTimer  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variant", help="one of params.yaml train.variants, e.g. bilinear or a2u")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--data-root", default=None, help="composed data (default: train.data_root or data/composed)")
    parser.add_argument("--out-root", default="results/train", help="outputs go to <out-root>/<variant>")
    parser.add_argument("--work-root", default="work_dirs/train", help="resumable checkpoints and logs")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _complexity(model, size: int) -> dict:
    """GMACs of the trained network at size×size (MMEngine's FlopAnalyzer, see models/matting/flops.py)."""
    from mmengine.model import revert_sync_batchnorm

    from models.matting.flops import count_flops

    import copy

    net = copy.deepcopy(getattr(model, "module", model).network)
    flops = count_flops(revert_sync_batchnorm(net), size=size)
    return {"input": size, "gmacs": round(flops["macs"] / 1e9, 3), "gflops": round(flops["flops"] / 1e9, 3)}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params(args.params)
    train = stage_params(params, "train")
    variants = require(train, "variants", "train", list)
    if args.variant not in variants:
        raise ValueError(f"variant {args.variant!r} is not in params.yaml train.variants {variants}")
    budget = {key: require(train, key, "train") for key in ("iters", "crop", "batch_size", "val_interval", "lr")}
    data_root = args.data_root or train.get("data_root", "data/composed")
    timer = StageTimer("train", {"base": params.get("base"), "train": train, "variant": args.variant})
    cfg = training_config(config_for_variant(args.variant, train.get("config_dir", "configs/matting")),
                          seed=int(train["seed"]), data_root=data_root,
                          work_root=Path(args.work_root) / args.variant, launcher=args.launcher,
                          num_workers=train.get("num_workers"), **budget)
    result = run_training(cfg)
    out_dir = Path(args.out_root) / args.variant
    summary = {"variant": args.variant, "params": sum(p.numel() for p in result.runner.model.parameters()),
               "profile": train["profile"], "wall_time_s": round(timer.elapsed(), 2), "train_params": train,
               "config_file": str(cfg.filename), **budget}
    if result.runner.rank == 0:
        summary["complexity"] = _complexity(result.runner.model, size=int(train.get("flops_size", 512)))
    export_training(result, out_dir, summary=summary, timer=timer)
    if result.runner.rank == 0:
        print(f"train@{args.variant}: profile {train['profile']}, {budget['iters']} iterations, final val "
              f"{result.final_val}; outputs in {out_dir}/ ({timer.elapsed():.1f} s)")


if __name__ == "__main__":
    main()
