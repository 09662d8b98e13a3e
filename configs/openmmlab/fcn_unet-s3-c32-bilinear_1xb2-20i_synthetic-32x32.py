"""mmseg 1.2.2: a tiny 3-stage UNet + FCNHead with mmseg's bilinear upsampler, the baseline of the A2U twin.

`InterpConv` is mmseg's default UNet upsampler: bilinear ×2 (align_corners=False) followed by a 1×1
ConvModule from `in_channels` to `out_channels`. `fcn_unet-s3-c32-a2u_...` changes only `upsample_cfg`.
Sizes are for CPU smoke training on synthetic 32×32 images (`tools/openmmlab/train_synthetic.py`).
"""
default_scope = 'mmseg'
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[127.5, 127.5, 127.5],
        std=[64.0, 64.0, 64.0],
        bgr_to_rgb=False,
        pad_val=0,
        seg_pad_val=255,
        size=(32, 32)),
    pretrained=None,
    backbone=dict(
        type='UNet',
        in_channels=3,
        base_channels=32,  # decoder upsamplers see 64→32 and 128→64 channels
        num_stages=3,
        strides=(1, 1, 1),
        enc_num_convs=(1, 1, 1),
        dec_num_convs=(1, 1),
        downsamples=(True, True),
        enc_dilations=(1, 1, 1),
        dec_dilations=(1, 1),
        with_cp=False,
        conv_cfg=None,
        norm_cfg=norm_cfg,
        act_cfg=dict(type='ReLU'),
        upsample_cfg=dict(type='InterpConv'),
        norm_eval=False),
    decode_head=dict(
        type='FCNHead',
        in_channels=32,
        in_index=2,  # the full-resolution decoder output of a 3-stage UNet
        channels=32,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.0,
        num_classes=2,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3))

# Read by tools/openmmlab/train_synthetic.py (not an mmseg key).
synthetic = dict(task='segmentation', image_size=32, batch_size=2, iterations=20, seed=0)
