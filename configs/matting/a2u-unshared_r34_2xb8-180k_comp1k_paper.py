# A2U with channel-wise (unshared) u, v (`config/adobe_unshare.yaml` of the official code).
_base_ = ['./a2u_r34_2xb8-180k_comp1k_paper.py']
model = dict(network=dict(upsampler='a2u-unshared'))
