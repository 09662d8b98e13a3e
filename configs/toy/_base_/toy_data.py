# Fashion-MNIST / MNIST reconstruction data (protocol: ours). `files` (the four IDX paths) and the per-split
# `count`s are filled in by pipeline.toy.runner from params.yaml; images are 1×32×32 in [0, 1].
_dataset = dict(type='ToyReconstructionDataset', files=None, count=None)
_loader = dict(batch_size=100, num_workers=0, persistent_workers=False,
               collate_fn=dict(type='default_collate'))

train_dataloader = dict(**_loader, sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(**_dataset, split='train'))
val_dataloader = dict(**_loader, sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(**_dataset, split='val'))
test_dataloader = dict(**_loader, sampler=dict(type='DefaultSampler', shuffle=False),
                       dataset=dict(**_dataset, split='test'))

val_evaluator = dict(type='ReconstructionMetric')
test_evaluator = val_evaluator
