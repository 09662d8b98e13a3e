# Spec 5.3: Adam (0.9, 0.999), no weight decay; lr 0.01 for new layers (pairs/kernel generators, ASPP, decoder,
# shortcuts, head) and 0.01/100 for the pretrained encoder (layer0 included); MultiStepLR ×0.1 at 2/3 and 13/15
# of the iterations (120k and 156k of 180k); iteration-based loop with validation every `val_interval`.
max_iters = 180000
val_interval = 6000

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=0.01, betas=(0.9, 0.999), weight_decay=0),
    paramwise_cfg=dict(custom_keys={'network.encoder': dict(lr_mult=0.01)}))
param_scheduler = [dict(type='MultiStepLR', by_epoch=False, milestones=[120000, 156000], gamma=0.1)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
