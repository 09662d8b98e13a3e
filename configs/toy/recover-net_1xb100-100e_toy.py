# RecoverNet-like autoencoder on Fashion-MNIST / MNIST (protocol: ours, modelled on the authors' group
# harness). The operator pair is the one knob per run: `model.operator` (see models.ops.pairs.PAIR_NAMES).
_base_ = ['./_base_/toy_data.py', './_base_/toy_schedule.py', './_base_/toy_runtime.py']

model = dict(type='ToyReconstructionNet', operator='bilinear', channels=(32, 64, 128), mid_channels=256)
