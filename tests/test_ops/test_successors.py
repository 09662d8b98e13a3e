"""A2U's successors FADE, SAPA and DySample (successors_spec.md): loop references, gradients, identities, pairs,
parameter counts in the matting network, ONNX export."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn import build_upsample_layer
from torch import nn

from models.ops import (ABLATION_PAIR_NAMES, PAIR_NAMES, SUCCESSOR_PAIR_NAMES, DySample, FADE, SAPA, build_pair,
                        count_parameters)
from models.registry import MODELS, OPERATOR_PAIRS
from pipeline.verify.successors import randomise_parameters as _randomise
from tests.test_ops.successor_references import dysample_loop, fade_loop, sapa_loop

#: Operator alone at C = 64 (FADE 129C + 14,490, FADE-Lite 51C + 276, SAPA-B 132C + 128, SAPA-G 197C + 193,
#: DySample 32C + 32, DySample+ 64C + 32).
OPERATOR_PARAMS_C64 = {("FADE", ()): 22746, ("FADE", (("lite", True),)): 3540, ("SAPA", ()): 8576,
                       ("SAPA", (("q_mode", "gate"),)): 12801, ("DySample", ()): 2080,
                       ("DySample", (("dyscope", True),)): 4128}
#: Over bilinear in the A2U matting network at width 1 (C = 256, 128, 64, 64). FADE, FADE-Lite and DySample are
#: the official code's (spec §2.7, §4.3); SAPA's matting settings are unpublished (release defaults, d = 64).
MATTING_EXTRA_PARAMS = {"fade": 124_008, "fade-lite": 27_216, "sapa": 68_096, "sapa-g": 101_636,
                        "dysample": 16_512, "dysample-plus": 32_896}
BASELINE_PARAMS = 8_049_003


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors only: one intra-op thread (two threads on a loaded machine make gradcheck 40× slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _inputs(n: int, c: int, h: int, w: int, s: int = 2, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n, c, h, w, generator=gen, dtype=torch.float64),
            torch.randn(n, c, s * h, s * w, generator=gen, dtype=torch.float64))


def _box(x: torch.Tensor, k: int = 5, s: int = 2) -> torch.Tensor:
    """Nearest-upsampled k×k box sum of x (zero padding) divided by k²."""
    return F.interpolate(F.avg_pool2d(x, k, 1, k // 2, count_include_pad=True), scale_factor=s, mode="nearest")


# --------------------------------------------------------------------------------------------- building


@pytest.mark.parametrize("cfg, expected", OPERATOR_PARAMS_C64.items(), ids=lambda v: str(v))
def test_build_via_mmcv_and_parameter_count(cfg, expected):
    name, extra = cfg
    layer = build_upsample_layer(dict(type=name, in_channels=64, **dict(extra)))
    assert isinstance(layer, MODELS.get(name)) and count_parameters(layer) == expected
    x, guide = torch.randn(2, 64, 3, 5), torch.randn(2, 64, 6, 10)
    out = layer(x) if name == "DySample" else layer(x, guide)
    assert out.shape == (2, 64, 6, 10)


def test_hyper_parameters_live_on_self_and_bad_values_raise():
    fade = FADE(16, scale_factor=3, up_kernel=3, up_group=2, encoder_kernel=5, compressed_channels=8)
    assert (fade.scale_factor, fade.up_kernel, fade.up_group, fade.encoder_kernel, fade.compressed_channels) == \
        (3, 3, 2, 5, 8)
    assert FADE(16, lite=True, up_group=2).compressed_channels == 50
    sapa = SAPA(16, scale_factor=3, up_kernel=3, compressed_channels=8, q_mode="gate")
    assert (sapa.scale_factor, sapa.up_kernel, sapa.compressed_channels, sapa.q_mode) == (3, 3, 8, "gate")
    dys = DySample(18, scale_factor=3, style="pl", up_group=2, dyscope=True)
    assert (dys.scale_factor, dys.style, dys.up_group, dys.dyscope) == (3, "pl", 2, True)
    with pytest.raises(ValueError, match="guide_channels"):
        FADE(16, guide_channels=8)
    assert FADE(16, guide_channels=8, gating=False)(torch.randn(1, 16, 2, 3), torch.randn(1, 8, 4, 6)).shape == \
        (1, 16, 4, 6)
    with pytest.raises(ValueError, match="up_kernel"):
        SAPA(16, up_kernel=4)
    with pytest.raises(ValueError, match="q_mode"):
        SAPA(16, q_mode="cat")
    with pytest.raises(ValueError, match="up_group"):
        DySample(18, up_group=4)
    with pytest.raises(ValueError, match="guide must be 2×"):
        FADE(8)(torch.randn(1, 8, 3, 3), torch.randn(1, 8, 5, 6))


# ------------------------------------------------------------------------------------ loop references

FADE_CASES = {"fade": {}, "fade-lite": {"lite": True}, "fade-no-gate": {"gating": False},
              "fade-k3-enc5-s3": {"up_kernel": 3, "encoder_kernel": 5, "scale_factor": 3}}
SAPA_CASES = {"sapa-b": {}, "sapa-g": {"q_mode": "gate"}, "sapa-k3-s3-nobias": {"up_kernel": 3, "scale_factor": 3,
                                                                               "qkv_bias": False}}
DYSAMPLE_CASES = {"lp": {}, "lp-dyscope": {"dyscope": True}, "pl": {"style": "pl"},
                  "pl-dyscope-g2": {"style": "pl", "dyscope": True, "up_group": 2}, "lp-s3": {"scale_factor": 3}}


@pytest.mark.parametrize("kwargs", FADE_CASES.values(), ids=FADE_CASES.keys())
def test_fade_matches_loop_reference(kwargs):
    m = _randomise(FADE(8, compressed_channels=6, **kwargs).double())
    x, guide = _inputs(2, 8, 3, 5, kwargs.get("scale_factor", 2))
    torch.testing.assert_close(m(x, guide), fade_loop(m, x, guide), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kwargs", SAPA_CASES.values(), ids=SAPA_CASES.keys())
def test_sapa_matches_loop_reference(kwargs):
    m = _randomise(SAPA(8, compressed_channels=6, **kwargs).double())
    x, guide = _inputs(2, 8, 3, 5, kwargs.get("scale_factor", 2))
    torch.testing.assert_close(m(x, guide), sapa_loop(m, x, guide), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kwargs", DYSAMPLE_CASES.values(), ids=DYSAMPLE_CASES.keys())
def test_dysample_matches_loop_reference(kwargs):
    m = _randomise(DySample(8 if kwargs.get("scale_factor", 2) == 2 else 9 * 4, **kwargs).double(), std=0.3)
    x, _ = _inputs(2, m.in_channels, 3, 5)
    torch.testing.assert_close(m(x), dysample_loop(m, x), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------ gradients


def _gradcheck_module(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
    """float64 gradcheck (full Jacobians) w.r.t. the inputs and every parameter."""
    names = [n for n, _ in module.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in module.parameters())
    inputs = tuple(t.detach().clone().requires_grad_() for t in inputs)

    def fn(*args):
        ins, ps = args[:len(inputs)], args[len(inputs):]
        return torch.func.functional_call(module, dict(zip(names, ps)), ins)

    assert torch.autograd.gradcheck(fn, inputs + params, eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("cls, kwargs", [(FADE, {"compressed_channels": 2}), (FADE, {"lite": True}),
                                         (SAPA, {"compressed_channels": 2}),
                                         (SAPA, {"compressed_channels": 2, "q_mode": "gate"})],
                         ids=["fade", "fade-lite", "sapa", "sapa-g"])
def test_guided_upsamplers_gradcheck(cls, kwargs):
    m = _randomise(cls(2, **kwargs).double(), std=0.4)
    _gradcheck_module(m, _inputs(1, 2, 3, 5, seed=2))


@pytest.mark.parametrize("kwargs", [{"up_group": 2}, {"up_group": 2, "dyscope": True}, {"style": "pl"}],
                         ids=["lp", "lp-dyscope", "pl"])
def test_dysample_gradcheck(kwargs):
    m = _randomise(DySample(4, **kwargs).double(), std=0.3, seed=3)
    _gradcheck_module(m, _inputs(1, 4, 3, 5, seed=4)[:1])


# ------------------------------------------------------------------------------- zero-parameter identities


@pytest.mark.parametrize("kwargs", [{}, {"lite": True}], ids=["fade", "fade-lite"])
def test_zeroed_fade_is_half_guide_plus_half_box(kwargs):
    m = FADE(8, **kwargs).double()
    for p in m.parameters():
        nn.init.zeros_(p)
    x, guide = _inputs(2, 8, 3, 5)
    torch.testing.assert_close(m(x, guide), 0.5 * guide + 0.5 * _box(x), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("q_mode", SAPA.Q_MODES)
def test_zeroed_sapa_is_the_box(q_mode):
    m = SAPA(8, q_mode=q_mode).double()
    for p in m.parameters():
        nn.init.zeros_(p)
    x, guide = _inputs(2, 8, 3, 5)
    torch.testing.assert_close(m(x, guide), _box(x), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("kwargs", [{}, {"dyscope": True}, {"style": "pl"}, {"style": "pl", "dyscope": True}],
                         ids=["lp", "lp-dyscope", "pl", "pl-dyscope"])
def test_dysample_with_zero_offsets_is_bilinear(kwargs):
    m = _randomise(DySample(8, **kwargs).double())          # random scope: its factor multiplies zero offsets
    for p in m.offset.parameters():
        nn.init.zeros_(p)
    x, _ = _inputs(2, 8, 3, 5)
    expected = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(m(x), expected, rtol=1e-12, atol=1e-13)
    fresh = DySample(8, **kwargs).double()                  # official init: offsets within ±0.25·(tiny weights)
    assert (fresh(x) - expected).abs().max() < 0.05


def test_zeroed_dysample_is_bilinear_at_scale_3():
    m = DySample(9 * 4, scale_factor=3).double()
    for p in m.parameters():
        nn.init.zeros_(p)
    x = torch.randn(1, 36, 4, 3, dtype=torch.float64)
    torch.testing.assert_close(m(x), F.interpolate(x, scale_factor=3, mode="bilinear", align_corners=False))


# ----------------------------------------------------------------------------------------------- pairs


def test_successor_pairs_are_registered_outside_the_default_lists():
    assert set(SUCCESSOR_PAIR_NAMES) <= set(OPERATOR_PAIRS.module_dict)
    assert not set(SUCCESSOR_PAIR_NAMES) & (set(PAIR_NAMES) | set(ABLATION_PAIR_NAMES))


@pytest.mark.parametrize("name", SUCCESSOR_PAIR_NAMES)
def test_pairs_max_pool_and_carry_the_encoder_feature(name):
    x = torch.randn(2, 16, 8, 6, requires_grad=True)
    pair = build_pair(name, 16)
    low, state = pair.down(x)
    torch.testing.assert_close(low, F.max_pool2d(x, 2))
    assert state is None if name.startswith("dysample") else state is x
    out = pair.up(torch.randn(2, 16, 4, 3), state)
    assert out.shape == x.shape
    (out.square().sum() + low.sum()).backward()
    assert x.grad is not None and all(p.grad is not None for p in pair.parameters())
    torch.testing.assert_close(build_pair(name, 16, down="avgpool").down(x)[0], F.avg_pool2d(x, 2))


def test_pair_variants_and_keywords():
    assert build_pair("fade-lite", 16).upsampler.lite and not build_pair("fade", 16).upsampler.lite
    assert build_pair("fade", 16, lite=True).upsampler.lite
    assert build_pair("sapa-g", 16).upsampler.q_mode == "gate"
    assert build_pair("sapa", 16, compressed_channels=32).upsampler.compressed_channels == 32
    assert build_pair("dysample-plus", 16).upsampler.dyscope and build_pair("dysample", 16).upsampler.up_group == 4
    with pytest.raises(ValueError, match="unknown keyword"):
        build_pair("fade", 16, rank=2)


def test_pair_up_equals_the_module_with_the_encoder_guide():
    torch.manual_seed(0)
    x, z = torch.randn(1, 16, 8, 8), torch.randn(1, 16, 4, 4)
    for name in ("fade", "sapa-g"):
        pair = build_pair(name, 16)
        torch.testing.assert_close(pair.up(z, pair.down(x)[1]), pair.upsampler(z, x))


@pytest.mark.parametrize("name", SUCCESSOR_PAIR_NAMES)
def test_pairs_train_in_the_toy_and_matting_networks(name):
    from models.matting.network import MINI_WIDTH, A2UMattingNet
    from models.toy import ToyReconstructionNet

    toy = ToyReconstructionNet(name)
    toy(torch.rand(2, 1, 16, 16), mode="loss")["loss"].backward()
    assert all(p.grad is not None for p in toy.pairs.parameters())
    net = A2UMattingNet(upsampler=name, width=MINI_WIDTH)
    alpha = net(torch.randn(2, 4, 32, 32))
    assert alpha.shape == (2, 1, 32, 32)
    alpha.mean().backward()
    assert all(p.grad is not None for p in net.pairs.parameters())


def test_matting_network_parameter_counts_at_paper_width():
    from models.matting.network import A2UMattingNet

    for name, extra in MATTING_EXTRA_PARAMS.items():
        net = A2UMattingNet(upsampler=name)
        assert sum(p.numel() for p in net.parameters()) == BASELINE_PARAMS + extra, name
        assert sum(p.numel() for p in net.pairs.parameters()) == extra, name
    half_d = sum(count_parameters(build_pair("sapa", c, compressed_channels=32)) for c in (256, 128, 64, 64))
    assert half_d == 35_072                                   # the d the SAPA README's "+0.04M" (SAPA-B) fits


def test_matting_init_keeps_dysample_own_and_overrides_fade_like_the_official_code():
    """The network's spec-5.3 conv init reaches FADE's convs (as the authors' matting code did) but not DySample's
    (`keeps_own_init`): its offsets start at N(0, 0.001²) weights, so the network starts with bilinear-like
    upsampling instead of sampling points scattered by tens of pixels."""
    from models.matting.network import INIT_GAIN, MINI_WIDTH, A2UMattingNet

    net = A2UMattingNet(upsampler="dysample-plus", width=MINI_WIDTH)
    net.init_weights()
    for pair in net.pairs:
        dys = pair.op.upsampler
        assert float(dys.offset.weight.detach().std()) < 0.002 and not dys.offset.bias.any() and not dys.scope.weight.any()
    weight = A2UMattingNet(upsampler="fade", width=MINI_WIDTH).pairs[3].op.upsampler.compressor_guide.weight
    fan_in, fan_out = weight.shape[1], weight.shape[0]          # 64 -> 64, 1×1
    xavier_normal_std = INIT_GAIN * (2 / (fan_in + fan_out)) ** 0.5     # 0.177 (FADE's own uniform: 0.125)
    assert float(weight.detach().std()) == pytest.approx(xavier_normal_std, rel=0.1)


# ------------------------------------------------------------------------------------------------ export

EXPORT_CASES = {"fade": (FADE, {}), "fade-lite": (FADE, {"lite": True}), "sapa": (SAPA, {}),
                "sapa-g": (SAPA, {"q_mode": "gate"}), "dysample": (DySample, {}),
                "dysample-plus": (DySample, {"dyscope": True})}


@pytest.mark.parametrize("cls, kwargs", EXPORT_CASES.values(), ids=EXPORT_CASES.keys())
def test_onnx_export_with_dynamic_size_matches_onnxruntime(cls, kwargs, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from pipeline.bench.export import export_onnx, onnx_parity

    torch.manual_seed(0)
    module = _randomise(cls(8, **kwargs), std=0.3).eval()
    guided = cls is not DySample
    names, scales = (["x", "guide"], {"x": 1, "guide": 2}) if guided else (["x"], {"x": 1})

    def make(h: int, w: int) -> tuple[torch.Tensor, ...]:
        x, guide = _inputs(1, 8, h, w, seed=h * w)
        return (x.float(), guide.float()) if guided else (x.float(),)

    path = export_onnx(module, make(4, 6), tmp_path / "op.onnx", names, ["y"], scales, opset=17)
    report = onnx_parity(module, path, names, [make(4, 6), make(7, 5)])
    assert [r["output_shape"] for r in report] == [[1, 8, 8, 12], [1, 8, 14, 10]]
    assert max(r["max_scaled_diff"] for r in report) < 1e-5, report


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
@pytest.mark.parametrize("cls, kwargs", EXPORT_CASES.values(), ids=EXPORT_CASES.keys())
def test_cuda_matches_cpu(cls, kwargs):
    torch.manual_seed(0)
    module = _randomise(cls(16, **kwargs), std=0.3)
    x, guide = (t.float() for t in _inputs(2, 16, 6, 10))
    x.requires_grad_()
    args = (x,) if cls is DySample else (x, guide)
    out = module(*args)
    out.square().sum().backward()
    grad = x.grad.clone()
    x_cuda = x.detach().cuda().requires_grad_()
    out_cuda = module.cuda()(*((x_cuda,) if cls is DySample else (x_cuda, guide.cuda())))
    out_cuda.square().sum().backward()
    torch.testing.assert_close(out_cuda.cpu(), out, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(x_cuda.grad.cpu(), grad, rtol=1e-4, atol=1e-4)
