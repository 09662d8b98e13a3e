# Hooks, environment and logging shared by every toy run. The checkpoint hook keeps the best epoch by
# validation PSNR and the last one (enough to resume an interrupted run); ExactResumeHook makes a resumed run
# end with the weights of an uninterrupted one; ValidationCurveHook keeps each epoch's validation PSNR
# (curve.json); SafeDVCLiveVisBackend logs curves without touching dvc.yaml.
custom_imports = dict(imports=['models', 'models.toy', 'pipeline.toy.datasets', 'pipeline.toy.metrics',
                               'pipeline.core.hooks', 'pipeline.toy.curve'], allow_failed_imports=False)
default_scope = None
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=True, save_best='recon/psnr', rule='greater',
                    max_keep_ckpts=1, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'))
custom_hooks = [dict(type='ExactResumeHook'), dict(type='ValidationCurveHook')]
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork'), dist_cfg=dict(backend='gloo'))
log_processor = dict(by_epoch=True, window_size=10)
log_level = 'INFO'
visualizer = dict(type='Visualizer', vis_backends=[
    dict(type='LocalVisBackend'), dict(type='SafeDVCLiveVisBackend', save_dir='dvclive')])
randomness = dict(seed=0, deterministic=False)
load_from = None
resume = False
