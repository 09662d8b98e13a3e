# The A2U matting model (spec 4.1): ResNet-34 [3, 4, 4] encoder + ASPP + additive-skip decoder, raw alpha out,
# trained with 0.5 × Charbonnier alpha + 0.5 × Charbonnier composition on the unknown region (spec 5.2).
# `upsampler` is any registered operator pair (models/ops/pairs.py); the train stage sets it from the variant
# name (`train@<variant>`). `encoder_init_cfg`: None = random spec-5.3 init; dict(type='Pretrained', checkpoint=...)
# loads ImageNet ResNet-34 weights in init_weights() (torchvision / official / own keys; file or https URL).
model = dict(
    type='A2UMattor',
    network=dict(type='A2UMattingNet', upsampler='a2u', aspp=True, encoder_init_cfg=None),
    loss=dict(type='A2UMattingLoss', alpha_weight=0.5, comp_weight=0.5, eps=1e-6),
    pad_stride=16)
