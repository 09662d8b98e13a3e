"""DVC stage `train@<variant>`: train the matting network on the composed data with MMEngine.

    python stages/train.py a2u --seed 0 --data data/composed --configs configs/matting \
        --out results/train/a2u/seed0 --work work_dirs/train/a2u/seed0      # one process
    torchrun --nproc_per_node 2 stages/train.py a2u ... --launcher pytorch  # DDP (gloo on CPU, nccl on GPU)

Reads params sections `base` and `train` (`pipeline.matting.params.TrainParams`); `--seed` (one of
`train.seeds`) seeds the run. The recipe is the profile's
config file in `--configs` (`*_<base.profile>.py`, or `train.config`); the variant (any registered operator pair)
becomes `model.network.upsampler` and the non-null train keys override the config. Writes `--out` (last.pth,
best.pth when the run validated, config.py = the configuration that ran, train_log.txt, dvclive/, summary.json,
run.json). Resumable checkpoints live in `--work`/<run fingerprint>/: rerunning after an interruption continues
from the last checkpoint and ends with the weights of an uninterrupted run; a run folder left before its first
checkpoint (a training that failed early) is removed when the stage starts. `--data` must be a composed set.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core.mathenv import pin_math_env  # noqa: E402  (before torch: MKL reads it once)

pin_math_env()

from pipeline.core.io import remove_stale_temps  # noqa: E402
from pipeline.core.logs import stage_logging  # noqa: E402
from pipeline.core.params import ParamsError, as_dict  # noqa: E402
from pipeline.core.runinfo import StageTimer  # noqa: E402
from pipeline.core.runs import remove_half_started_runs  # noqa: E402
from pipeline.matting.params import load_train_params  # noqa: E402
from pipeline.matting.train import (export_training, recipe, resolve_config_file, run_training,  # noqa: E402
                                    training_config)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variant", help="one of params.yaml train.variants (a registered operator pair), e.g. a2u")
    parser.add_argument("--seed", type=int, required=True, help="one of params.yaml train.seeds")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--data", default="data/composed", help="the composed set (compose stage output)")
    parser.add_argument("--configs", default="configs/matting", help="folder of the profiles' config files")
    parser.add_argument("--out", default=None, help="output folder (default: results/train/<variant>)")
    parser.add_argument("--work", default=None, help="resumable runs (default: work_dirs/train/<variant>)")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _complexity(model, size: int) -> dict:
    """GMACs of the trained network at size×size (MMEngine's FlopAnalyzer, see models/matting/flops.py)."""
    from mmengine.model import revert_sync_batchnorm

    from models.matting.flops import count_flops

    net = copy.deepcopy(getattr(model, "module", model).network)
    flops = count_flops(revert_sync_batchnorm(net), size=size)
    return {"input": size, "gmacs": round(flops["macs"] / 1e9, 3), "gflops": round(flops["flops"] / 1e9, 3)}


def check_data(data: str | Path) -> Path:
    """`--data` as a path, checked to be a composed set (the error names --data, not a params key)."""
    data = Path(data)
    if not data.is_dir():
        raise FileNotFoundError(f"--data {data}: folder not found (the composed set written by the compose stage: "
                                "build it with `dvc repro compose`, or point --data to one)")
    missing = [name for name in ("summary.json", "train") if not (data / name).exists()]
    if missing:
        raise FileNotFoundError(f"--data {data}: not a composed set (no {' and no '.join(missing)}; the compose "
                                "stage writes train/, val/, test/, manifest.jsonl and summary.json)")
    return data


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out_dir = Path(args.out or f"results/train/{args.variant}/seed{args.seed}")
    with stage_logging(f"train@{args.variant}-{args.seed}", out_dir) as log:
        base, train = load_train_params(args.params)
        if args.variant not in train.variants:
            raise ParamsError(f"variant {args.variant!r} is not in params.yaml train.variants {list(train.variants)}")
        if args.seed not in train.seeds:
            raise ParamsError(f"--seed {args.seed} is not in params.yaml train.seeds {list(train.seeds)}")
        check_data(args.data)
        work_root = Path(args.work or f"work_dirs/train/{args.variant}/seed{args.seed}")
        timer = StageTimer("train", {"variant": args.variant, "seed": args.seed, **as_dict(train)}, base)
        if int(os.environ.get("RANK", "0")) == 0:
            remove_stale_temps(out_dir)  # what an interrupted export left (checkpoint saves: cleaned per run)
        if int(os.environ.get("WORLD_SIZE", "1")) == 1:  # DDP ranks open the run folder at once: not there
            remove_half_started_runs(work_root)  # a run that failed before its first checkpoint
        config_file = resolve_config_file(train, base.profile, args.configs)
        cfg = training_config(config_file, train, seed=args.seed, data_root=args.data, work_root=work_root,
                              launcher=args.launcher, variant=args.variant)
        resolved = recipe(cfg)
        log.info("%s: seed %d, width %g, %d iterations, crop %d, batch %d, validation every %s; MMEngine log in %s",
                 config_file.name, args.seed, resolved["width"], resolved["iters"], resolved["crop"],
                 resolved["batch_size"], resolved["val_interval"], cfg.work_dir)
        result = run_training(cfg)
        summary = {"variant": args.variant, "seed": args.seed, "width": resolved["width"], "params": sum(p.numel() for p in result.runner.model.parameters()),
                   "profile": base.profile, "wall_time_s": round(timer.elapsed(), 2), "train_params": as_dict(train),
                   "config_file": str(config_file), "recipe": resolved,
                   **{key: resolved[key] for key in ("iters", "crop", "batch_size", "val_interval", "lr")}}
        if result.runner.rank == 0:
            summary["complexity"] = _complexity(result.runner.model, size=train.flops_size or resolved["crop"])
        export_training(result, out_dir, summary=summary, timer=timer)
        if result.runner.rank == 0:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in result.final_val.items())
            log.info("encoder %s; final validation: %s", result.encoder_init.get("checkpoint") or "random init",
                     shown or "none (the run did not validate)")


if __name__ == "__main__":
    main()
