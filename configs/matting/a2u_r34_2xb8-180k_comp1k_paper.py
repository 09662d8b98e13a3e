# A2U (channel-shared u, v; s=3, k=6, d=1) in the ResNet-34 matting network, the paper recipe: crop 512,
# 2 GPUs × 8 = batch 16, 180k iterations, Adam 0.01 / 1e-4, steps at 120k and 156k (spec 4-5).
# `stages/train.py a2u` reads this file; params.yaml budgets (base.profile) override iters/crop/batch/val_interval.
_base_ = [
    '../_base_/models/a2u_r34_matting.py', '../_base_/datasets/composed_matting.py',
    '../_base_/schedules/adam_multistep_180k.py', '../_base_/matting_runtime.py'
]
model = dict(network=dict(upsampler='a2u'))
