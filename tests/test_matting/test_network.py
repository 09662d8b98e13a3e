"""Tests of the A2U matting network (models/matting): sizes against the spec, shapes, pairs, pretrained loading."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.matting import A2UMattingNet
from models.matting.encoder import PAIR_CHANNELS, load_encoder_weights, map_torchvision_resnet34
from models.matting.pretrained import EncoderWeightsError, map_official_resnet34
from models.registry import MODELS, OPERATOR_PAIRS

#: Spec 4.2 (recomputed from the official architecture).
BASELINE_PARAMS = 8_049_003
EXTRA_PARAMS = {"a2u": 40_232, "a2u-unshared": 220_448}
#: Every variant the network must accept (`models.ops.PAIR_NAMES`).
VARIANTS = ("bilinear", "nearest", "a2u", "a2u-unshared", "carafe", "indexnet", "deconv", "maxunpool",
            "pixelshuffle")
from tests.test_matting.standins import STANDIN, MaxPoolBilinearStandIn  # noqa: E402,F401


def _num_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_baseline_parameter_count_matches_spec():
    assert _num_params(A2UMattingNet(upsampler=STANDIN)) == BASELINE_PARAMS


@pytest.mark.parametrize("variant", ["bilinear", "nearest"])
def test_parameter_free_pairs_match_baseline(variant):
    assert _num_params(A2UMattingNet(upsampler=variant)) == BASELINE_PARAMS


@pytest.mark.parametrize("variant", sorted(EXTRA_PARAMS))
def test_a2u_parameter_overhead_matches_spec(variant):
    net = A2UMattingNet(upsampler=variant)
    assert _num_params(net) == BASELINE_PARAMS + EXTRA_PARAMS[variant]
    assert sum(p.numel() for p in net.pairs.parameters()) == EXTRA_PARAMS[variant]


def test_pixelshuffle_is_adapted_with_1x1_convs():
    """Space-to-depth pairs get a 4C->C and a C->4C bias-free 1×1 conv per stage: 8·C² parameters."""
    net = A2UMattingNet(upsampler="pixelshuffle")
    assert _num_params(net) == BASELINE_PARAMS + sum(8 * c * c for c in PAIR_CHANNELS)


@pytest.mark.parametrize("variant", ["bilinear", "nearest", "carafe"])
def test_pooling_pairs_default_to_max_pool_and_pair_cfg_overrides(variant):
    x = torch.randn(1, 64, 8, 8)
    default = A2UMattingNet(upsampler=variant).pairs[0]
    torch.testing.assert_close(default.down(x)[0], F.max_pool2d(x, 2))
    averaged = A2UMattingNet(upsampler=variant, pair_cfg={"down": "avgpool"}).pairs[0]
    torch.testing.assert_close(averaged.down(x)[0], F.avg_pool2d(x, 2))


def test_bilinear_pair_equals_maxpool_bilinear_reference():
    """Same seed -> same weights, so the network output must match the stand-in reference pair exactly."""
    x = torch.randn(1, 4, 32, 32)
    torch.manual_seed(1)
    reference = A2UMattingNet(upsampler=STANDIN).eval()
    torch.manual_seed(1)
    net = A2UMattingNet(upsampler="bilinear").eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference(x))


@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_at_size_not_multiple_of_32(variant):
    net = A2UMattingNet(upsampler=variant).eval()
    x = torch.randn(1, 4, 16, 48)  # H/16 and W/16 odd
    with torch.no_grad():
        alpha = net(x)
    assert alpha.shape == (1, 1, 16, 48)
    assert torch.isfinite(alpha).all()


@pytest.mark.parametrize("variant", ["fade", "sapa", "dysample"])
def test_successor_variants_train_in_the_mini_network(variant):
    """One Adam step of the mini matting network with each successor pair: every parameter of its operators gets
    a finite, non-zero gradient and the step changes them (what `train.variants=[fade,sapa,dysample]` runs)."""
    torch.manual_seed(0)
    net = A2UMattingNet(upsampler=variant, width=0.25).train()
    own = {n: p for n, p in net.named_parameters() if ".op.upsampler." in n}   # the pairs' upsamplers
    assert own, f"no operator parameters found for {variant}"
    x, target = torch.randn(2, 4, 32, 32), torch.rand(2, 1, 32, 32)
    loss = F.l1_loss(net(x), target)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in own.values())
    assert any(p.grad.abs().sum() > 0 for p in own.values())
    before = {n: p.detach().clone() for n, p in own.items()}
    torch.optim.Adam(net.parameters(), lr=1e-3).step()
    assert any(not torch.equal(before[n], p) for n, p in own.items())


def test_registry_build_and_gradients_reach_every_stage():
    net = MODELS.build(dict(type="A2UMattingNet", upsampler=STANDIN, aspp=False))
    assert isinstance(net, A2UMattingNet) and net.aspp is None
    net.train()
    net(torch.randn(2, 4, 32, 32)).mean().backward()
    for name in ("encoder.layer0.conv.weight", "encoder.layer3_2.2.conv2.conv.weight",
                 "decoder.stage4.shortcut.conv.weight", "decoder.pred.1.weight"):
        grad = net.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_initialisation_follows_spec():
    net = A2UMattingNet(upsampler=STANDIN)
    weight = net.encoder.layer3_2[0].conv1.conv.weight  # 256×256×3×3, xavier std = gain·sqrt(2/(fan_in+fan_out))
    expected_std = (2.0 / (1 + 0.01 ** 2)) ** 0.5 * (2.0 / (2 * 256 * 9)) ** 0.5
    assert weight.std().item() == pytest.approx(expected_std, rel=0.02)
    bn = net.decoder.stage1.shortcut.bn
    assert torch.equal(bn.weight, torch.ones_like(bn.weight)) and torch.equal(bn.bias, torch.zeros_like(bn.bias))


def test_bad_inputs_raise():
    net = A2UMattingNet(upsampler=STANDIN).eval()
    with pytest.raises(ValueError, match="multiples of 16"):
        net(torch.randn(1, 4, 40, 48))
    with pytest.raises(ValueError, match="N×4×H×W"):
        net(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="unknown operator pair"):
        A2UMattingNet(upsampler="no-such-pair")
    with pytest.raises(TypeError, match="upsampler"):
        A2UMattingNet(upsampler=None)


def test_default_initialisation_is_unchanged_by_init_weights_path():
    """Bit-identical default: construction + init_weights() draw exactly what the plain nn.Module version drew."""
    torch.manual_seed(3)
    net = A2UMattingNet(upsampler="a2u")
    net.init_weights()
    torch.manual_seed(3)
    reference = A2UMattingNet(upsampler="a2u")
    reference.spec_init()  # the earlier nn.Module: __init__ ran init_weights() (= spec_init), the Runner once more
    for (key, value), expected in zip(net.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(value, expected), key
    assert net.encoder.pretrained_report is None


def _torchvision_resnet34_state_dict() -> dict[str, torch.Tensor]:
    """Random tensors under torchvision resnet34's key names and shapes (layers [3, 4, 6, 3], fc 512->1000)."""
    generator = torch.Generator().manual_seed(0)
    state: dict[str, torch.Tensor] = {}

    def add_bn(prefix: str, channels: int) -> None:
        state[prefix + "weight"] = torch.rand(channels, generator=generator) + 0.5
        state[prefix + "bias"] = torch.randn(channels, generator=generator)
        state[prefix + "running_mean"] = torch.randn(channels, generator=generator)
        state[prefix + "running_var"] = torch.rand(channels, generator=generator) + 0.5
        state[prefix + "num_batches_tracked"] = torch.tensor(7)

    state["conv1.weight"] = torch.randn(64, 3, 7, 7, generator=generator)
    add_bn("bn1.", 64)
    in_channels = 64
    for stage, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512)), start=1):
        for index in range(blocks):
            prefix = f"layer{stage}.{index}."
            block_in = in_channels if index == 0 else width
            state[prefix + "conv1.weight"] = torch.randn(width, block_in, 3, 3, generator=generator)
            add_bn(prefix + "bn1.", width)
            state[prefix + "conv2.weight"] = torch.randn(width, width, 3, 3, generator=generator)
            add_bn(prefix + "bn2.", width)
            if index == 0 and stage > 1:
                state[prefix + "downsample.0.weight"] = torch.randn(width, block_in, 1, 1, generator=generator)
                add_bn(prefix + "downsample.1.", width)
        in_channels = width
    state["fc.weight"] = torch.randn(1000, 512, generator=generator)
    state["fc.bias"] = torch.randn(1000, generator=generator)
    return state


def _as_official(state: dict[str, torch.Tensor]) -> dict:
    """The same tensors under the A2U repository's (mapillary) names: `{'state_dict': {'module.mod1...': ...}}`."""
    out = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue  # inplace-ABN has no counter
        if key.startswith("fc."):
            out["module.classifier." + key] = value
            continue
        if key.startswith(("conv1.", "bn1.")):
            out["module.mod1." + key] = value
            continue
        stage, index, rest = key.split(".", 2)
        rest = {"downsample.0.weight": "proj_conv.weight"}.get(rest, rest)
        for tv, official in (("downsample.1.", "proj_bn."), ("conv1.", "convs.conv1."), ("bn1.", "convs.bn1."),
                             ("conv2.", "convs.conv2."), ("bn2.", "convs.bn2.")):
            if rest.startswith(tv):
                rest = official + rest[len(tv):]
                break
        out[f"module.mod{int(stage[-1]) + 1}.block{int(index) + 1}.{rest}"] = value
    return {"state_dict": out}


#: (torchvision key, accessor of our tensor) pairs checked after a load.
CHECKED = {
    "layer1.2.conv2.weight": lambda e: e.layer1[2].conv2.conv.weight,
    "layer2.0.conv1.weight": lambda e: e.layer2_1.conv1.conv.weight,
    "layer2.0.downsample.0.weight": lambda e: e.layer2_1.shortcut.conv.weight,
    "layer2.0.downsample.1.running_var": lambda e: e.layer2_1.shortcut.bn.running_var,
    "layer2.3.bn1.bias": lambda e: e.layer2_2[2].conv1.bn.bias,
    "layer3.0.conv2.weight": lambda e: e.layer3_1.conv2.conv.weight,
    "layer3.3.bn2.running_mean": lambda e: e.layer3_2[2].conv2.bn.running_mean,
}


def _assert_loaded(encoder, state: dict[str, torch.Tensor]) -> None:
    for key, get in CHECKED.items():
        assert torch.equal(get(encoder), state[key]), key
    # The stem: conv1 at stride 1 on RGB, trimap channel zero, then BN (eval) + LeakyReLU(0.01).
    encoder.eval()
    x = torch.randn(1, 4, 16, 16)
    expected = F.conv2d(x[:, :3], state["conv1.weight"], padding=3)
    expected = F.batch_norm(expected, state["bn1.running_mean"], state["bn1.running_var"], state["bn1.weight"],
                            state["bn1.bias"], training=False)
    with torch.no_grad():
        torch.testing.assert_close(encoder.layer0(x), F.leaky_relu(expected, 0.01))
    assert torch.count_nonzero(encoder.layer0.conv.weight[:, 3]) == 0


@pytest.mark.parametrize("fmt", ["torchvision", "official"])
def test_pretrained_init_cfg_loads_in_init_weights(tmp_path, fmt):
    state = _torchvision_resnet34_state_dict()
    path = tmp_path / f"resnet34-{fmt}.pth"
    torch.save(state if fmt == "torchvision" else _as_official(state), path)
    net = A2UMattingNet(upsampler=STANDIN, encoder_init_cfg=dict(type="Pretrained", checkpoint=str(path)))
    assert not torch.equal(net.encoder.layer1[2].conv2.conv.weight, state["layer1.2.conv2.weight"])
    net.init_weights()  # what MMEngine's Runner.train() calls
    _assert_loaded(net.encoder, state)
    report = net.encoder.pretrained_report
    assert report.format == fmt and report.matched == report.total == 125 and report.stem_widened
    assert report.dropped and ("fc" if fmt == "torchvision" else "classifier") in report.as_dict()["dropped_groups"]


def test_official_key_map_drops_what_the_official_code_drops():
    official = _as_official(_torchvision_resnet34_state_dict())["state_dict"]
    mapped = map_official_resnet34({k[len("module."):]: v for k, v in official.items()})
    assert mapped.keys() == map_torchvision_resnet34(_torchvision_resnet34_state_dict()).keys() - {
        k for k in map_torchvision_resnet34(_torchvision_resnet34_state_dict()) if k.endswith("num_batches_tracked")}


def test_own_state_dict_round_trip_and_errors(tmp_path):
    source = A2UMattingNet(upsampler=STANDIN)
    path = tmp_path / "encoder.pth"
    torch.save({"state_dict": {"encoder." + k: v for k, v in source.encoder.state_dict().items()}}, path)
    torch.manual_seed(5)
    target = A2UMattingNet(upsampler=STANDIN, encoder_init_cfg=dict(type="Pretrained", checkpoint=str(path)))
    target.init_weights()
    for key, value in source.encoder.state_dict().items():
        assert torch.equal(target.encoder.state_dict()[key], value), key
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        A2UMattingNet(upsampler=STANDIN, encoder_init_cfg=dict(type="Pretrained",
                                                              checkpoint=str(tmp_path / "missing.pth"))).init_weights()
    bad = tmp_path / "bad.pth"
    torch.save({"layer0.conv.weight": torch.zeros(64, 4, 7, 7)}, bad)
    with pytest.raises(EncoderWeightsError, match=r"bad.pth.*missing"):
        load_encoder_weights(target.encoder, bad)
    with pytest.raises(KeyError, match="layer9"):
        map_torchvision_resnet34({"conv1.weight": torch.zeros(64, 3, 7, 7), "layer9.0.conv1.weight": torch.zeros(1)})


@pytest.mark.parametrize("damage", ["partial", "shape"])
def test_partial_or_mis_shaped_pretrained_load_is_an_error(tmp_path, damage):
    state = _torchvision_resnet34_state_dict()
    if damage == "partial":
        del state["layer2.1.conv1.weight"]
    else:
        state["layer1.0.conv2.weight"] = torch.zeros(64, 64, 5, 5)
    path = tmp_path / "damaged.pth"
    torch.save(state, path)
    net = A2UMattingNet(upsampler=STANDIN, encoder_init_cfg=dict(type="Pretrained", checkpoint=str(path)))
    with pytest.raises(EncoderWeightsError, match="missing" if damage == "partial" else "shape-mismatched"):
        net.init_weights()


def test_portable_dropout_draws_its_mask_with_torchs_own_generator() -> None:
    """The ASPP dropout keeps `rand_like(x) >= p` (torch's generator on every CPU vendor; `nn.Dropout`'s
    `bernoulli_` uses MKL's VSL on Intel only), scaled by 1/(1-p); identity in eval mode."""
    from models.matting.aspp import ASPP, PortableDropout

    x = torch.randn(2, 8, 5, 5)
    drop = PortableDropout(0.5)
    torch.manual_seed(3)
    got = drop(x)
    torch.manual_seed(3)
    expected = x * (torch.rand_like(x) >= 0.5) / 0.5
    assert torch.equal(got, expected)
    assert torch.equal(drop.eval()(x), x) and torch.equal(PortableDropout(0.0)(x), x)
    assert isinstance(ASPP(16, 16, branch_channels=16).dropout, PortableDropout)


def test_mini_width_keeps_the_architecture_at_a_quarter_of_the_channels() -> None:
    from models.matting.network import MINI_WIDTH

    full, mini = A2UMattingNet("a2u"), A2UMattingNet("a2u", width=MINI_WIDTH)
    assert [type(m).__name__ for m in full.modules()] == [type(m).__name__ for m in mini.modules()]
    assert mini.pairs[0].op.downsampler.generator.norm_groups == 8  # 2 channels per GroupNorm group, as at width 1
    assert sum(p.numel() for p in mini.parameters()) < sum(p.numel() for p in full.parameters()) / 10
    assert mini.eval()(torch.zeros(1, 4, 32, 48)).shape == (1, 1, 32, 48)
    with pytest.raises(ValueError, match="width"):
        A2UMattingNet("bilinear", width=1.5)
    with pytest.raises(ValueError, match="width 1"):
        A2UMattingNet("bilinear", width=0.5, encoder_init_cfg=dict(type="Pretrained", checkpoint="x.pth"))
