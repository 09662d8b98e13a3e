# Composed matting data (data/composed/, written by the compose stage): online composition for training
# (GCA-style augmentation, spec 5.1) and the held-out val split at full size for validation (never the test split).
# `stages/train.py` overrides the data roots, crop, batch size and workers from params.yaml.
data_root = 'data/composed'
crop_size = 512

train_pipeline = [
    dict(type='LoadCompositionSample'),
    dict(type='MixSecondForeground', prob=0.5),
    dict(type='RandomResizeForeground', prob=0.25, size=640),
    dict(type='RandomAffineForeground', degrees=30, rotate_min_size=1024, scale=(0.8, 1.25), shear=10,
         flip_prob=0.5),
    dict(type='RandomFlipForeground', prob=0.5),
    dict(type='GenerateRandomTrimap', kernel_range=(1, 29)),
    dict(type='CropAroundUnknown', crop=crop_size),
    dict(type='HSVJitterForeground'),
    dict(type='CompositeImage'),
    dict(type='PackMattingInputs', with_targets=True),
]
val_pipeline = [
    dict(type='LoadMattingValSample'),
    dict(type='PackMattingInputs', with_targets=False),
]

train_dataloader = dict(
    batch_size=8,  # per GPU: 2 GPUs × 8 = 16 (spec 5.3)
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='OnlineCompositionDataset', data_root=data_root + '/train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,  # full-size images of different sizes; the model pads each to a multiple of 16
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='MattingValDataset', data_root=data_root + '/val', pipeline=val_pipeline))
val_evaluator = dict(type='MattingValMetric', prefix='val')
# `tools/test.py CONFIG CHECKPOINT` (MMEngine `Runner.test()`): the composed test split at full size, scored with
# SAD/MSE/Grad/Conn by the same MATLAB-exact functions as the evaluate stage (`pipeline.matting.metrics`).
test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='MattingValDataset', data_root=data_root + '/test', pipeline=val_pipeline))
test_evaluator = dict(type='MattingValMetric', prefix='test', metric_names=('sad', 'mse', 'grad', 'conn'))
test_cfg = dict(type='TestLoop')
