"""Train a matting model from a config file, OpenMMLab style (the same Runner, hooks and data as the train stage).

    python tools/train.py configs/matting/a2u-matting_r34-mini_1xb4-500i_synthetic-128px_cpu.py \
        --cfg-options train_cfg.max_iters=200 train_cfg.val_interval=100 --work-dir work_dirs/a2u
    python tools/train.py CONFIG --work-dir work_dirs/a2u --resume        # continue an interrupted run
    torchrun --nproc_per_node 2 tools/train.py CONFIG --launcher pytorch  # DDP (gloo on CPU, nccl on GPU)

`--cfg-options` overrides any key first; then the config is resolved exactly as the train stage resolves it
(`pipeline.matting.train.resolve_recipe`): its `crop_size`, `total_batch_size` (over all processes) and
`val_source` set the training crop, the per-process batch and the validation loop (e.g. `--cfg-options
crop_size=128 total_batch_size=8`); iterations and schedule are the config's `train_cfg`/`param_scheduler`.
Checkpoints (`iter_<n>.pth`, the best by validation SAD), the MMEngine log and DVCLive curves go to the work dir
(default `work_dirs/<config name>`). Without `--resume`, a work dir that already holds checkpoints is an error
(nothing is overwritten); with it, training continues from the newest complete checkpoint, RNG state included.
The DVC pipeline's `train` stage runs the same code with the sizes of params.yaml.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core.mathenv import pin_math_env  # noqa: E402  (before torch: MKL reads it once)

pin_math_env()

from mmengine.config import Config, DictAction  # noqa: E402

from pipeline.core.logs import run_cli, stage_logging  # noqa: E402
from pipeline.core.runs import find_best_checkpoint, find_resume_checkpoint  # noqa: E402
from pipeline.matting.apis import check_data_roots, prepare_runner_config  # noqa: E402
from pipeline.matting.train import run_training  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="config file, e.g. configs/matting/a2u-matting_r34-mini_1xb4-500i_synthetic-128px_cpu.py")
    parser.add_argument("--work-dir", help="checkpoints and logs (default: work_dirs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in the work dir")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                        help="override config keys, e.g. train_cfg.max_iters=100 train_dataloader.batch_size=2")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train; return the last validation metrics (e.g. {'sad': ..., 'mse': ...})."""
    args = parse_args(argv)
    work_dir = Path(args.work_dir or Path("work_dirs") / Path(args.config).stem)
    with stage_logging("tools/train", work_dir) as log:
        cfg = prepare_runner_config(Config.fromfile(args.config), work_dir, args.launcher, args.cfg_options)
        check_data_roots(cfg, ("train_dataloader", "val_dataloader"))
        existing = find_resume_checkpoint(work_dir)
        if existing is not None and not args.resume:
            raise FileExistsError(f"{work_dir} already holds {existing.name}: pass --resume to continue that run, "
                                  "or choose another --work-dir")
        if existing is not None:
            log.info("resuming from %s", existing)
        validation = (f"validation every {cfg.train_cfg.val_interval}" if cfg.get("val_dataloader") is not None
                      else "no validation (the config has no val_dataloader)")
        log.info("%s: %d iterations, %s", args.config, cfg.train_cfg.max_iters, validation)
        result = run_training(cfg)
        best = find_best_checkpoint(work_dir)
        log.info("last validation: %s; best checkpoint %s",
                 ", ".join(f"{k} {v:.4g}" for k, v in result.final_val.items()) or "none",
                 best if best else "(none: no validation ran)")
    return result.final_val


if __name__ == "__main__":
    run_cli(main)
