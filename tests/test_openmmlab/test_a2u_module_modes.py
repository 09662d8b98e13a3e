"""The registered A2U module under the execution modes OpenMMLab training uses; mmcv-lite is enough.

Each mode is compared with the plain fp32 eager module holding the same weights: gradient checkpointing
(`with_cp=True`, as mmseg's UNet passes it), channels_last tensors, bf16 autocast and torch.compile.
"""
from __future__ import annotations

import copy
import os

import pytest
import torch
from mmcv.cnn import build_upsample_layer

import models  # noqa: F401  (registers A2U)

RUN_INDUCTOR = os.environ.get('A2U_RUN_INDUCTOR') == '1'


def _a2u(**kwargs) -> torch.nn.Module:
    """A2U with mmseg-UNet-style keywords (64 -> 32 channels, BN + ReLU projection), in training mode."""
    torch.manual_seed(0)
    cfg = dict(type='A2U', scale_factor=2)
    layer = build_upsample_layer(cfg, in_channels=64, out_channels=32, norm_cfg=dict(type='BN'),
                                 act_cfg=dict(type='ReLU'), **kwargs)
    return layer.train()


def _forward_backward(layer: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Output, input gradient and parameter gradients of a fixed scalar loss."""
    x = x.detach().clone().requires_grad_(True)
    out = layer(x)
    weights = torch.linspace(-1, 1, out.numel()).reshape(out.shape)
    (out.float() * weights).sum().backward()
    grads = {name: p.grad.detach().clone() for name, p in layer.named_parameters()}
    return out.detach(), x.grad.detach(), grads


def test_with_cp_recomputes_the_generator_and_matches_plain_gradients() -> None:
    plain = _a2u(with_cp=False)
    checkpointed = _a2u(with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    calls = {'plain': 0, 'cp': 0}

    def count_embeddings(generator: torch.nn.Module, key: str) -> None:
        """Count the generator's embedding passes (its GroupNorms may run inside one fused op, unseen by hooks)."""
        embed = generator._embed

        def counted(*args, **kwargs):
            calls[key] += 1
            return embed(*args, **kwargs)
        generator._embed = counted

    count_embeddings(plain.generator, 'plain')
    count_embeddings(checkpointed.generator, 'cp')
    x = torch.randn(2, 64, 6, 8)
    out_plain, gx_plain, g_plain = _forward_backward(plain, x)
    out_cp, gx_cp, g_cp = _forward_backward(checkpointed, x)
    assert calls == {'plain': 1, 'cp': 2}, 'with_cp=True must recompute the kernels during backward'
    torch.testing.assert_close(out_cp, out_plain)
    torch.testing.assert_close(gx_cp, gx_plain)
    assert g_cp.keys() == g_plain.keys()
    for name in g_plain:
        torch.testing.assert_close(g_cp[name], g_plain[name], msg=name)


def test_channels_last_matches_contiguous() -> None:
    layer = _a2u()
    last = copy.deepcopy(layer).to(memory_format=torch.channels_last)
    x = torch.randn(2, 64, 6, 8)
    out, gx, grads = _forward_backward(layer, x)
    out_cl, gx_cl, grads_cl = _forward_backward(last, x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out_cl, out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gx_cl, gx, rtol=1e-5, atol=1e-5)
    for name in grads:
        torch.testing.assert_close(grads_cl[name], grads[name], rtol=1e-4, atol=1e-5, msg=name)


def test_bf16_autocast_is_close_to_fp32() -> None:
    """Output within 5 % of its range; input gradient within 10 % in norm. Element-wise the gradient can be
    ~20 % off: the softmax/GroupNorm backward of the kernel path cancels, and the unfold reference
    reassembly (`a2u_upsample_unfold`) under the same autocast shows the same error, so it is bf16's."""
    layer = _a2u()
    x = torch.randn(2, 64, 6, 8)
    out, gx, _ = _forward_backward(layer, x)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out_bf16, gx_bf16, grads_bf16 = _forward_backward(layer, x)
    assert out_bf16.dtype == torch.bfloat16
    scale = out.abs().max()
    assert (out_bf16.float() - out).abs().max() < 0.05 * scale
    assert (gx_bf16.float() - gx).norm() < 0.1 * gx.norm()
    assert all(torch.isfinite(g).all() for g in grads_bf16.values())


def _check_compiled(backend: str) -> None:
    layer = _a2u()
    x = torch.randn(2, 64, 6, 8)
    out, gx, grads = _forward_backward(layer, x)
    layer.zero_grad()
    torch._dynamo.reset()
    compiled = torch.compile(layer, backend=backend, fullgraph=True)
    out_c, gx_c, grads_c = _forward_backward(compiled, x)
    torch.testing.assert_close(out_c, out, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gx_c, gx, rtol=1e-4, atol=1e-5)
    grads_c = {name.removeprefix('_orig_mod.'): grad for name, grad in grads_c.items()}
    assert grads_c.keys() == grads.keys()
    for name in grads:
        torch.testing.assert_close(grads_c[name], grads[name], rtol=1e-4, atol=1e-5, msg=name)


def test_torch_compile_captures_a_full_graph_aot_eager() -> None:
    """Dynamo capture with no graph break, plus AOTAutograd's traced backward (no C++ code generation)."""
    _check_compiled('aot_eager')


@pytest.mark.skipif(not RUN_INDUCTOR, reason='inductor compiles C++ for 40–60 s on 2 CPU cores; '
                    'set A2U_RUN_INDUCTOR=1 to run it')
def test_torch_compile_inductor() -> None:
    _check_compiled('inductor')
