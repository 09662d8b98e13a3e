# Runtime for matting training: hooks, checkpoints (best by val SAD + last), RNG-exact resume, DVCLive logging,
# distributed settings (SyncBN and a CPU-capable DDP wrapper, used only under a launcher).
default_scope = None
custom_imports = dict(
    imports=['models', 'models.matting.network', 'models.matting.losses', 'models.matting.mattor',
             'pipeline.matting.dataset', 'pipeline.matting.transforms', 'pipeline.core.hooks',
             'pipeline.matting.val_metric', 'pipeline.core.distributed'],
    allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),  # validation metrics at their iteration
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=6000, save_best='val/sad', rule='less',
                    save_last=True, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'))
custom_hooks = [dict(type='ExactResumeHook'), dict(type='LastValMetricsHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))  # the train stage switches to gloo without CUDA
sync_bn = 'torch'  # only applied when distributed
model_wrapper_cfg = dict(type='DeviceAwareDistributedDataParallel', broadcast_buffers=False,
                         find_unused_parameters=False)

vis_backends = [dict(type='LocalVisBackend'), dict(type='SafeDVCLiveVisBackend', save_dir='dvclive')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_processor = dict(type='LogProcessor', by_epoch=False, window_size=50)
log_level = 'INFO'
randomness = dict(seed=6, deterministic=False)
load_from = None
resume = False
