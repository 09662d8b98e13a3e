"""Test a matting checkpoint with MMEngine's `Runner.test()`, OpenMMLab style.

    python tools/test.py results/train/a2u/seed0/config.py results/train/a2u/seed0/best.pth
    python tools/test.py configs/matting/a2u-matting_r34-mini_1xb4-500i_synthetic-128px_cpu.py work_dirs/a2u/iter_200.pth \
        --cfg-options test_dataloader.dataset.data_root=data/composed/test --out work_dirs/a2u/test.json

The config's `test_dataloader` (the composed test split at full size) and `test_evaluator` (SAD, MSE, Grad and
Conn with the MATLAB semantics, the evaluate stage's functions) define what is measured. Prints the metrics and,
with `--out`, writes them as JSON. The evaluate stage of the DVC pipeline scores the same images with the same
metrics (and also saves the predictions and per-image numbers).

The checkpoint is loaded as the evaluate stage loads it (`pipeline.matting.checkpoint.load_trained_weights`'s
checks):
the file must be complete (and match the size and sha256 recorded in the `summary.json` beside an exported
best.pth/last.pth), and its weights must fit the model of CONFIG exactly: another variant's checkpoint (a2u
weights with a bilinear config, or the reverse) stops with an error naming both files and the first keys that
differ. `--non-strict` loads only the weights that fit and warns about the rest (the others keep their initial
values: the numbers are then not those of the trained model). When the test data root lies in a composed set
with a `manifest.jsonl`, the files read are checked against its sha256 first.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core.mathenv import pin_math_env  # noqa: E402  (before torch: MKL reads it once)

pin_math_env()

from mmengine.config import Config, DictAction  # noqa: E402

from mmengine.model import is_model_wrapper  # noqa: E402

from pipeline.core.compat import allow_mmengine_checkpoint_globals  # noqa: E402
from pipeline.core.io import write_json  # noqa: E402
from pipeline.core.logs import run_cli, stage_logging  # noqa: E402
from pipeline.core.manifest import MANIFEST_NAME  # noqa: E402
from pipeline.core.runs import AtomicCheckpointRunner, load_state_checked, strip_prefixes  # noqa: E402
from pipeline.matting.apis import check_config_and_checkpoint, check_data_roots, prepare_runner_config  # noqa: E402
from pipeline.matting.checkpoint import read_trained_checkpoint  # noqa: E402
from pipeline.matting.eval_sets import EvalSet, check_composed_manifest  # noqa: E402

USAGE = "python tools/test.py CONFIG CHECKPOINT"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="config file (e.g. results/train/a2u/seed0/config.py)")
    parser.add_argument("checkpoint", help="checkpoint file (e.g. results/train/a2u/seed0/best.pth)")
    parser.add_argument("--work-dir", help="MMEngine log of the test (default: work_dirs/test/<config name>)")
    parser.add_argument("--out", help="write the metrics to this JSON file")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                        help="override config keys, e.g. test_dataloader.dataset.data_root=data/composed/test")
    parser.add_argument("--non-strict", action="store_true",
                        help="load only the checkpoint's weights that fit the config's model (warns about the rest; "
                        "by default any missing, unexpected or reshaped weight is an error)")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Test; return {'sad': ..., 'mse': ..., 'grad': ..., 'conn': ...} (means over the test images)."""
    args = parse_args(argv)
    work_dir = Path(args.work_dir or Path("work_dirs") / "test" / Path(args.config).stem)
    with stage_logging("tools/test", args.out or work_dir) as log:
        config, checkpoint = check_config_and_checkpoint(args.config, args.checkpoint, USAGE)
        weights = read_trained_checkpoint(checkpoint)["state_dict"]  # complete, and the recorded file if recorded
        cfg = prepare_runner_config(Config.fromfile(str(config)), work_dir, args.launcher, args.cfg_options)
        for key in ("test_dataloader", "test_evaluator", "test_cfg"):
            if not cfg.get(key):
                raise KeyError(f"{args.config} has no {key} (see configs/_base_/datasets/composed_matting.py)")
        check_data_roots(cfg, ("test_dataloader",))
        data_root = Path(cfg.test_dataloader.dataset.data_root)
        if (data_root.parent / MANIFEST_NAME).is_file():  # a composed set: its files must be those composed
            check_composed_manifest(EvalSet("test", data_root), data_root.parent)
        cfg.load_from, cfg.resume = None, False  # loaded below, strictly (MMEngine's load_from is not)
        allow_mmengine_checkpoint_globals()
        runner = AtomicCheckpointRunner.from_cfg(cfg)
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        load_state_checked(model, weights, checkpoint, config, strict=not args.non_strict,
                           hint="To test it anyway, pass --non-strict (only the weights that fit are loaded)")
        metrics = strip_prefixes(runner.test())
        log.info("%s on %d test images: %s", Path(args.checkpoint).name, len(runner.test_dataloader.dataset),
                 "  ".join(f"{k.upper() if k in ('sad', 'mse') else k.capitalize()} {v:.4g}"
                           for k, v in metrics.items()))
        if args.out:
            write_json(args.out, {"config": args.config, "checkpoint": args.checkpoint,
                                  "n_images": len(runner.test_dataloader.dataset), "metrics": metrics})
    return metrics


if __name__ == "__main__":
    run_cli(main)
