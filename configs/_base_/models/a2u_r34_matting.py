# The A2U matting model (spec 4.1): ResNet-34 [3, 4, 4] encoder + ASPP + additive-skip decoder, raw alpha out,
# trained with 0.5 × Charbonnier alpha + 0.5 × Charbonnier composition on the unknown region (spec 5.2).
model = dict(
    type='A2UMattor',
    network=dict(type='A2UMattingNet', upsampler='a2u', aspp=True),
    loss=dict(type='A2UMattingLoss', alpha_weight=0.5, comp_weight=0.5, eps=1e-6),
    pad_stride=16)
