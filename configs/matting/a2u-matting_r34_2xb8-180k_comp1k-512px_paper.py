# The published recipe (profile `paper`; spec 4-5, the official adobe.yaml): the A2U matting network with an
# ImageNet ResNet-34 encoder (torchvision's weights, stem RGB filters copied, trimap channel zero), crop 512,
# batch 16 in total (2 GPUs × 8 as published; one GPU takes all 16), 180k iterations, Adam 0.01 / 1e-4 (encoder),
# ×0.1 at 120k and 156k, on all 431 Composition-1k training foregrounds. No validation: the published protocol
# selected on the test set, which we never do, so the last checkpoint is evaluated (train.val_source opts in to a
# validation set that is neither training nor test). `train@<variant>` sets model.network.upsampler.
_base_ = [
    '../_base_/models/a2u_r34_matting.py', '../_base_/datasets/composed_matting.py',
    '../_base_/schedules/adam_multistep_180k.py', '../_base_/matting_runtime.py'
]
model = dict(network=dict(encoder_init_cfg=dict(_delete_=True,
    type='Pretrained', checkpoint='https://download.pytorch.org/models/resnet34-b627a593.pth')))
crop_size = 512
total_batch_size = 16
val_source = None
train_dataloader = dict(batch_size=8, num_workers=4)
train_cfg = dict(max_iters=180000, val_interval=6000)
param_scheduler = [dict(type='MultiStepLR', by_epoch=False, milestones=[120000, 156000], gamma=0.1)]
