# Profile `cpu` (`make repro` on 2 CPU cores): the paper's network, loss and optimiser at a CPU budget on the
# procedural synthetic set: crop 64, batch 4, 900 iterations (steps at 600 and 780 = 2/3 and 13/15), validation
# every 300 iterations on the composed held-out val split, random encoder initialisation (no download).
_base_ = [
    '../_base_/models/a2u_r34_matting.py', '../_base_/datasets/composed_matting.py',
    '../_base_/schedules/adam_multistep_180k.py', '../_base_/matting_runtime.py'
]
crop_size = 64
total_batch_size = 4
val_source = 'composed'
train_dataloader = dict(batch_size=4, num_workers=0)
train_cfg = dict(max_iters=900, val_interval=300)
param_scheduler = [dict(type='MultiStepLR', by_epoch=False, milestones=[600, 780], gamma=0.1)]
