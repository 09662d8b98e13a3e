"""Build an OpenMMLab model from a config file and train it for a few iterations on synthetic data (CPU).

The configs in `configs/openmmlab/` carry a `synthetic` dict (task, image_size, batch_size, iterations, seed).
The model is built from the config through the OpenMMLab registry (`default_scope` set, `custom_imports`
honoured by `Config.fromfile`), weights are initialised with `init_weights()`, and `model.train_step` runs
with the optimiser wrapper built from `optim_wrapper`, as MMEngine's IterBasedTrainLoop would.

Run from the project root (the mmdet configs import `tools.openmmlab.mmdet_mask_head`):

    python -m tools.openmmlab.train_synthetic configs/openmmlab/<config>.py [--iterations 20] [--out x.json]
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import set_random_seed
from torch import nn

from tools.openmmlab.synthetic_data import BATCH_MAKERS

SYNTHETIC_KEYS = ('task', 'image_size', 'batch_size', 'iterations', 'seed')


@dataclass
class SyntheticRun:
    """What a few-iteration run produced: the trained model and one dict of log values per iteration."""

    model: nn.Module
    losses: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def load_config(path: str | Path) -> Config:
    """Read an OpenMMLab config (importing its `custom_imports`) and check its `synthetic` section."""
    cfg = Config.fromfile(str(path))
    synthetic = cfg.get('synthetic')
    if synthetic is None:
        raise KeyError(f"{path}: config has no 'synthetic' dict with keys {SYNTHETIC_KEYS}")
    missing = [key for key in SYNTHETIC_KEYS if key not in synthetic]
    if missing:
        raise KeyError(f"{path}: 'synthetic' lacks {missing}")
    if synthetic['task'] not in BATCH_MAKERS:
        raise ValueError(f"{path}: synthetic.task must be one of {sorted(BATCH_MAKERS)}, got {synthetic['task']!r}")
    return cfg


def build_model(cfg: Config, seed: int | None = None) -> nn.Module:
    """Seed, set the config's default scope and build + initialise `cfg.model` from the registry."""
    set_random_seed(cfg.synthetic.seed if seed is None else seed)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def train_steps(model: nn.Module, cfg: Config, iterations: int | None = None, seed: int | None = None
                ) -> SyntheticRun:
    """Run `iterations` (default `cfg.synthetic.iterations`) optimiser steps on fresh synthetic batches."""
    synthetic = cfg.synthetic
    iterations = synthetic.iterations if iterations is None else iterations
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    generator = torch.Generator().manual_seed(synthetic.seed if seed is None else seed)
    make_batch = BATCH_MAKERS[synthetic.task]
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    run = SyntheticRun(model=model)
    model.train()
    start = time.perf_counter()
    for _ in range(iterations):
        batch = make_batch(synthetic.batch_size, synthetic.image_size, generator)
        log_vars = model.train_step(batch, optim_wrapper)
        run.losses.append({name: float(torch.as_tensor(value).detach()) for name, value in log_vars.items()})
    run.seconds = time.perf_counter() - start
    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', type=Path)
    parser.add_argument('--iterations', type=int, default=None, help='default: synthetic.iterations')
    parser.add_argument('--out', type=Path, default=None, help='write per-iteration losses as JSON here')
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    run = train_steps(build_model(cfg), cfg, args.iterations)
    first, last = run.losses[0]['loss'], run.losses[-1]['loss']
    print(f"{args.config.name}: {len(run.losses)} iterations in {run.seconds:.1f} s, "
          f"loss {first:.4f} -> {last:.4f}")
    if args.out is not None:
        from pipeline.core.io import write_json

        write_json(args.out, dict(config=str(args.config), seconds=run.seconds, losses=run.losses))
        print(f"losses written to {args.out}")


if __name__ == '__main__':
    main()
