"""Fused C++ CPU embedding of the A2U kernel generator (`a2u::embed_product`, `fused_cpu.embed_product`).

z = Σ_c LeakyReLU₀.₀₁(GN_u(e_u)) · LeakyReLU₀.₀₁(GN_v(e_v)) / √C against the eager lines of
`A2UKernelGenerator._embed` (GroupNorm modules, autograd): float64 values and the six gradients to 1e-12 on odd,
non-square and one-pixel maps, G ∈ {1, 2, C}, B > 1; float32 to 1e-5 relative; gradcheck (all inputs and one-sided);
`torch.library.opcheck`; bitwise-identical reruns at 1 and 2 threads; the generator's routing (fused with and
without grad, rank 1 and 2; eager under `fused_cpu.fallback()`, `A2U_FUSED_CPU=0`, a missing library, autocast,
mixed dtypes and tracing) and the generator's outputs and gradients equal to its eager path.
Skipped, with the reason, where the library is not built.
"""
from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import gradcheck

from models.ops import A2UKernelGenerator
from models.ops.kernels import fused_cpu

pytestmark = pytest.mark.skipif(not fused_cpu.available(),
                                reason=f"fused CPU ops not built: {fused_cpu.unavailable_reason()}; "
                                       f"{fused_cpu.BUILD_HINT}")


def _norms(c: int, groups: int, dtype: torch.dtype, seed: int = 2) -> tuple[nn.GroupNorm, nn.GroupNorm]:
    """Two affine GroupNorms with random (non-default) γ, β."""
    gen = torch.Generator().manual_seed(seed)
    norms = (nn.GroupNorm(groups, c).to(dtype), nn.GroupNorm(groups, c).to(dtype))
    with torch.no_grad():
        for norm in norms:
            norm.weight.copy_(torch.randn(c, dtype=dtype, generator=gen))
            norm.bias.copy_(torch.randn(c, dtype=dtype, generator=gen) * 0.5)
    return norms


def _maps(b: int, c: int, h: int, w: int, dtype: torch.dtype = torch.float64, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(b, c, h, w, dtype=dtype, generator=gen) * 2 + 0.5,
            torch.randn(b, c, h, w, dtype=dtype, generator=gen))


def _eager(e_u, e_v, norm_u, norm_v):
    """The eager lines of `A2UKernelGenerator._embed` (steps 3-4)."""
    a = F.leaky_relu(norm_u(e_u), 0.01)
    b = F.leaky_relu(norm_v(e_v), 0.01)
    return (a * b).sum(dim=1) / math.sqrt(e_u.shape[1])


def _values_and_grads(fn, e_u, e_v, norm_u, norm_v, seed=1):
    """z and the gradients of e_u, e_v, γ_u, β_u, γ_v, β_v for a random output gradient."""
    e_u, e_v = e_u.detach().requires_grad_(), e_v.detach().requires_grad_()
    z = fn(e_u, e_v, norm_u, norm_v)
    grad = torch.randn(z.shape, dtype=z.dtype, generator=torch.Generator().manual_seed(seed))
    params = [norm_u.weight, norm_u.bias, norm_v.weight, norm_v.bias]
    return [z.detach(), *torch.autograd.grad(z, [e_u, e_v, *params], grad)]


# (b, c, h, w, groups): odd and non-square maps, one-pixel maps, G = 1, 2, C, B > 1
CASES = [(2, 8, 5, 7, 2), (1, 4, 9, 9, 1), (3, 6, 1, 1, 3), (2, 4, 1, 3, 4), (1, 32, 11, 13, 32), (2, 12, 3, 17, 4)]


@pytest.mark.parametrize("b,c,h,w,groups", CASES)
def test_matches_eager_in_float64(b, c, h, w, groups):
    norms = _norms(c, groups, torch.float64)
    e_u, e_v = _maps(b, c, h, w)
    fused = _values_and_grads(fused_cpu.embed_product, e_u, e_v, *norms)
    eager = _values_and_grads(_eager, e_u, e_v, *norms)
    assert fused[0].shape == (b, h, w)
    for got, expected in zip(fused, eager):
        torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("b,c,h,w,groups", [(1, 256, 32, 32, 32), (4, 64, 16, 16, 32), (2, 128, 13, 21, 32),
                                            (3, 32, 8, 8, 1)])
def test_float32_matches_eager(b, c, h, w, groups):
    norms = _norms(c, groups, torch.float32)
    e_u, e_v = _maps(b, c, h, w, dtype=torch.float32)
    fused = _values_and_grads(fused_cpu.embed_product, e_u, e_v, *norms)
    eager = _values_and_grads(_eager, e_u, e_v, *norms)
    for got, expected in zip(fused, eager):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6 * expected.abs().max().item())


@pytest.mark.parametrize("b,c,h,w,groups", [(2, 4, 3, 5, 2), (1, 6, 5, 3, 1), (2, 2, 1, 3, 2)])
def test_gradcheck(b, c, h, w, groups):
    e_u, e_v = _maps(b, c, h, w)
    params = [p.detach().clone() for p in _norms(c, groups, torch.float64)[0].parameters()]
    params += [p.detach().clone() * 0.7 + 0.1 for p in params]

    def op(*args):
        return torch.ops.a2u.embed_product(*args, groups, 1e-5)[0]
    inputs = [e_u, e_v, *params]
    assert gradcheck(op, [t.clone().requires_grad_() for t in inputs])
    for which in ([0, 1], [2, 3, 4, 5], [1, 4]):      # one-sided: maps only, affine only, mixed
        args = [t.clone().requires_grad_(i in which) for i, t in enumerate(inputs)]
        assert gradcheck(op, args)


def test_opcheck():
    for dtype in (torch.float32, torch.float64):
        e_u, e_v = _maps(2, 4, 3, 5, dtype=dtype)
        params = [p.detach() for norm in _norms(4, 2, dtype) for p in norm.parameters()]
        args = (e_u.requires_grad_(), e_v.requires_grad_(), *(p.clone().requires_grad_() for p in params), 2, 1e-5)
        torch.library.opcheck(torch.ops.a2u.embed_product, args)
        z, stats = torch.ops.a2u.embed_product(e_u.detach(), e_v.detach(), *params, 2, 1e-5)
        for need_e, need_affine in ((True, True), (False, True), (True, False)):
            torch.library.opcheck(torch.ops.a2u.embed_product_backward,
                                  (torch.randn_like(z), e_u.detach(), e_v.detach(), *params, stats, 2, need_e,
                                   need_affine))


def test_non_contiguous_inputs():
    norms = _norms(8, 2, torch.float64)
    e_u, e_v = _maps(2, 8, 6, 5)
    expected = fused_cpu.embed_product(e_u, e_v, *norms)
    got = fused_cpu.embed_product(e_u.contiguous(memory_format=torch.channels_last),
                                  e_v.transpose(2, 3).contiguous().transpose(2, 3), *norms)
    assert torch.equal(got, expected)


def test_two_runs_bitwise_identical_at_any_thread_count():
    norms = _norms(64, 32, torch.float32)
    e_u, e_v = _maps(3, 64, 20, 37, dtype=torch.float32)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        first = _values_and_grads(fused_cpu.embed_product, e_u, e_v, *norms)
        second = _values_and_grads(fused_cpu.embed_product, e_u, e_v, *norms)
        torch.set_num_threads(1)
        single = _values_and_grads(fused_cpu.embed_product, e_u, e_v, *norms)
    finally:
        torch.set_num_threads(threads)
    for p, q, r in zip(first, second, single):
        assert torch.equal(p, q) and torch.equal(p, r)


def _generator(rank: int, dtype: torch.dtype, shared: bool = True) -> A2UKernelGenerator:
    torch.manual_seed(0)
    gen = A2UKernelGenerator(8, rank=rank, shared=shared, norm_groups=4).to(dtype)
    with torch.no_grad():
        for p in gen.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return gen


def _generator_values_and_grads(gen, x):
    x = x.detach().requires_grad_()
    down, up = gen(x)
    gen_w = torch.Generator().manual_seed(3)
    loss = ((down * torch.randn(down.shape, dtype=down.dtype, generator=gen_w)).sum()
            + (up * torch.randn(up.shape, dtype=up.dtype, generator=gen_w)).sum())
    return [down.detach(), up.detach(), *torch.autograd.grad(loss, [x, *gen.parameters()])]


@pytest.mark.parametrize("rank,shared", [(1, True), (2, True), (1, False)])
def test_generator_takes_the_fused_op_and_equals_its_eager_path(monkeypatch, rank, shared):
    calls = []
    real = fused_cpu.embed_product
    monkeypatch.setattr(fused_cpu, "embed_product", lambda *a: calls.append(1) or real(*a))
    gen = _generator(rank, torch.float64, shared)
    x = torch.randn(2, 8, 10, 6, dtype=torch.float64)
    fused = _generator_values_and_grads(gen, x)
    assert calls == [1]
    with torch.no_grad():
        gen(x)
    assert calls == [1, 1]
    monkeypatch.setattr(fused_cpu, "use_fused_embedding", lambda *a: False)   # today's eager lines only
    eager = _generator_values_and_grads(gen, x)
    assert calls == [1, 1]
    for got, expected in zip(fused, eager):
        torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


def test_generator_float32_equals_its_eager_path(monkeypatch):
    gen = _generator(1, torch.float32)
    x = torch.randn(2, 8, 16, 12)
    fused = _generator_values_and_grads(gen, x)
    monkeypatch.setattr(fused_cpu, "use_fused_embedding", lambda *a: False)
    eager = _generator_values_and_grads(gen, x)
    for got, expected in zip(fused, eager):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6 * expected.abs().max().item())


def test_eager_path_under_fallback_env_missing_library_autocast_and_mixed_dtypes(monkeypatch):
    calls = []
    monkeypatch.setattr(fused_cpu, "embed_product", lambda *a: calls.append(a))
    gen = _generator(1, torch.float32)
    x = torch.randn(1, 8, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with fused_cpu.fallback():
            gen(x.clone().requires_grad_())[0].sum().backward()
        monkeypatch.setenv(fused_cpu.ENV_VAR, "0")
        gen(x)
        monkeypatch.delenv(fused_cpu.ENV_VAR)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            gen(x)
        gen.bfloat16()(x.bfloat16())                                           # not a dtype of the op
    assert not calls
    norm_u, norm_v = _norms(8, 4, torch.float32)
    e = torch.randn(1, 8, 4, 4)
    assert fused_cpu.use_fused_embedding(e, e, norm_u, norm_v)
    assert not fused_cpu.use_fused_embedding(e.double(), e.double(), norm_u, norm_v)        # mixed dtypes
    assert not fused_cpu.use_fused_embedding(e, e, norm_u, nn.GroupNorm(2, 8))              # other groups
    assert not fused_cpu.use_fused_embedding(e, e, norm_u, nn.GroupNorm(4, 8, affine=False))
    monkeypatch.setitem(fused_cpu._state, "loaded", False)
    monkeypatch.setitem(fused_cpu._state, "reason", "not built (test)")
    fused_cpu.reset_warnings()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            gen.float()(x)
    assert not calls
    messages = [str(w.message) for w in caught if "not built (test)" in str(w.message)]
    assert len(messages) == 1 and "build_ext" in messages[0]


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_tracing_keeps_standard_ops():
    gen = _generator(1, torch.float32)
    graph = torch.jit.trace(gen, (torch.randn(1, 8, 8, 8),)).graph
    assert "a2u::" not in str(graph)


def test_rejects_bad_arguments():
    norm_u, norm_v = _norms(8, 4, torch.float32)
    e_u, e_v = _maps(1, 8, 4, 4, dtype=torch.float32)
    params = (norm_u.weight, norm_u.bias, norm_v.weight, norm_v.bias)
    with pytest.raises(RuntimeError, match="same dtype"):
        torch.ops.a2u.embed_product(e_u, e_v.double(), *params, 4, 1e-5)
    with pytest.raises(RuntimeError, match="groups must divide"):
        torch.ops.a2u.embed_product(e_u, e_v, *params, 3, 1e-5)
    with pytest.raises(RuntimeError, match="one shape"):
        torch.ops.a2u.embed_product(e_u, e_v[..., :3], *params, 4, 1e-5)
    with pytest.raises(RuntimeError, match="weight and bias"):
        torch.ops.a2u.embed_product(e_u, e_v, norm_u.weight[:4], *params[1:], 4, 1e-5)
