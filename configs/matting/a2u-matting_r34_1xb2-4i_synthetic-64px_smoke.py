# Profile `smoke` (the test suite): the paper's network, loss and optimiser for 4 iterations at crop 64, batch 2,
# one validation at the end on the composed held-out val split, random encoder initialisation (no download).
_base_ = [
    '../_base_/models/a2u_r34_matting.py', '../_base_/datasets/composed_matting.py',
    '../_base_/schedules/adam_multistep_180k.py', '../_base_/matting_runtime.py'
]
crop_size = 64
total_batch_size = 2
val_source = 'composed'
train_dataloader = dict(batch_size=2, num_workers=0)
train_cfg = dict(max_iters=4, val_interval=4)
param_scheduler = [dict(type='MultiStepLR', by_epoch=False, milestones=[3], gamma=0.1)]
