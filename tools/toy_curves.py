"""Learning curves of the toy reconstruction study: test PSNR after every epoch, per operator and seed.

    python tools/toy_curves.py OUT_DIR --data /usr/share/datasets/fashion-mnist --operators bilinear a2u \
        --epochs 30 --subset 5000 --batch-size 20 --seeds 0 [--device cuda] [--time-budget-s 300]

The instrument behind the toy profile's budget (how many epochs until the ranking stops changing): a plain
PyTorch loop of the toy protocol (`ToyReconstructionNet`, L1 loss, SGD lr 0.01 momentum 0.9, the config's
milestones 50/70/85 of 100 epochs scaled to `--epochs`, seeded shuffling), evaluating the whole test split
(or `--test-subset`) after every epoch with the stage's PSNR definition (clip to [0, 1], per-image PSNR with
data range 1, averaged). It needs only torch, numpy and mmengine (no DVC), so it also runs on a GPU machine.
Writes OUT_DIR/curves.json (per epoch: test PSNR, train loss, seconds) and OUT_DIR/curves.md, after every run.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.toy import ToyReconstructionNet  # noqa: E402
from pipeline.toy.datasets import ToyReconstructionDataset, find_idx_files  # noqa: E402
from pipeline.toy.stats import plateau_epoch  # noqa: E402

FULL_EPOCHS, MILESTONES = 100, (50, 70, 85)


def scaled_milestones(epochs: int) -> list[int]:
    """The config's milestones scaled as `pipeline.core.runs.scale_schedule` does."""
    return [m for m in sorted({round(m * epochs / FULL_EPOCHS) for m in MILESTONES}) if 1 <= m < epochs]


@torch.no_grad()
def test_psnr(model: torch.nn.Module, images: torch.Tensor, batch: int = 500) -> float:
    """Mean per-image PSNR (data range 1) of the clipped reconstructions of `images` (N×1×32×32)."""
    model.eval()
    values = []
    for start in range(0, len(images), batch):
        x = images[start:start + batch]
        mse = (model.reconstruct(x).clamp(0, 1) - x).pow(2).flatten(1).mean(1).double()
        values.append(10 * torch.log10(1.0 / mse.clamp_min(1e-12)))
    model.train()
    return float(torch.cat(values).mean())


def run_curve(operator: str, seed: int, train: torch.Tensor, test: torch.Tensor, epochs: int, batch_size: int,
              device: str, deadline: float) -> dict:
    """Train one operator for `epochs` (or until `deadline`), recording the test PSNR after every epoch."""
    torch.manual_seed(seed)
    model = ToyReconstructionNet(operator=operator).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, scaled_milestones(epochs), gamma=0.1)
    generator = torch.Generator().manual_seed(seed)
    out = {"operator": operator, "seed": seed, "epochs": [], "psnr": [], "loss": [], "seconds": []}
    for epoch in range(1, epochs + 1):
        start, total, count = time.perf_counter(), 0.0, 0
        for index in torch.randperm(len(train), generator=generator).split(batch_size):
            x = train[index]
            loss = F.l1_loss(model.reconstruct(x), x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count = total + float(loss) * len(x), count + len(x)
        scheduler.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        out["epochs"].append(epoch)
        out["psnr"].append(round(test_psnr(model, test), 4))
        out["loss"].append(round(total / count, 6))
        out["seconds"].append(round(seconds, 3))
        print(f"{operator} seed {seed} epoch {epoch}: test PSNR {out['psnr'][-1]:.2f} dB, "
              f"train L1 {out['loss'][-1]:.4f}, {seconds:.1f} s", flush=True)
        if time.time() > deadline:
            out["stopped"] = f"time budget reached after epoch {epoch}"
            break
    return out


def render(doc: dict) -> str:
    lines = [f"# Toy learning curves ({doc['device']}, {doc['args']})", "",
             "| operator | seed | epochs | final test PSNR | best | plateau epoch (±0.1 dB) | s/epoch |",
             "|---|---|---|---|---|---|---|"]
    for run in doc["runs"]:
        if not run["psnr"]:
            continue
        per_epoch = sum(run["seconds"]) / max(1, len(run["seconds"]))
        lines.append(f"| {run['operator']} | {run['seed']} | {len(run['psnr'])} | {run['psnr'][-1]:.2f} | "
                     f"{max(run['psnr']):.2f} | {plateau_epoch(run['psnr'])} | {per_epoch:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", required=True, help="folder with the four IDX files (plain or .gz)")
    parser.add_argument("--operators", nargs="+", default=["bilinear", "maxunpool", "indexnet", "a2u"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--subset", type=int, default=None, help="training images (default: all 55,000)")
    parser.add_argument("--test-subset", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--time-budget-s", type=float, default=None, help="stop each run's epochs past this")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    files = find_idx_files(Path(args.data))
    if files is None:
        parser.error(f"--data {args.data}: the four IDX files were not found there")
    train = ToyReconstructionDataset(files, "train", args.subset).images.to(args.device)
    test = ToyReconstructionDataset(files, "test", args.test_subset).images.to(args.device)
    doc = {"device": str(torch.cuda.get_device_name(0)) if args.device.startswith("cuda") else "cpu",
           "torch": torch.__version__, "args": " ".join(sys.argv[1:]), "runs": []}
    args.out.mkdir(parents=True, exist_ok=True)
    budget = math.inf if args.time_budget_s is None else args.time_budget_s
    for seed in args.seeds:
        for operator in args.operators:
            try:
                doc["runs"].append(run_curve(operator, seed, train, test, args.epochs, args.batch_size,
                                             args.device, time.time() + budget))
            except Exception as err:  # noqa: BLE001 - one failing operator must not lose the others' curves
                print(f"{operator} seed {seed}: FAILED: {type(err).__name__}: {err}", flush=True)
                doc.setdefault("failed", {})[f"{operator}/{seed}"] = f"{type(err).__name__}: {err}"
            (args.out / "curves.json").write_text(json.dumps(doc, indent=1) + "\n")
            (args.out / "curves.md").write_text(render(doc))
    print(render(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
