# Composed matting data (data/composed/, written by the compose stage): online composition for training
# (GCA-style augmentation, spec 5.1) and, when `val_source` names one, a validation set at full size (never the
# test split). `pipeline.matting.train.training_config` resolves these settings into the config that runs (and
# is saved as results/train/<variant>/config.py): `crop_size` sets CropAroundUnknown (and RandomResizeForeground
# to 5/4 of it), `total_batch_size` is split over the processes, `val_source` picks the validation data:
#   None: no validation (the last checkpoint is evaluated); 'composed': the composed set's held-out val/ split;
#   a folder with image/, alpha/, trimap/ (and optional list.txt): validation on it.
data_root = 'data/composed'
crop_size = 512
total_batch_size = 16
val_source = None

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
    batch_size=8,  # per process: total_batch_size / processes (2 GPUs × 8 = 16, spec 5.3)
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
