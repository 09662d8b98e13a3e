# The toy protocol's schedule: L1 loss (in the model), SGD lr 0.01 momentum 0.9, 100 epochs,
# lr x0.1 after epochs 50, 70 and 85 (stepped at the end of each epoch), validation every epoch.
# Short budgets scale `max_epochs` and these milestones alike (pipeline.core.runs.scale_schedule).
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[50, 70, 85], gamma=0.1)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
