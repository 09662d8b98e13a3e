# Baseline of the A2U paper: the same network with 2×2 max-pool downsampling and bilinear ×2 upsampling.
_base_ = ['./a2u_r34_2xb8-180k_comp1k_paper.py']
model = dict(network=dict(upsampler='bilinear'))
