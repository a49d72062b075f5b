"""The fused refinement equals the reference form, in values and gradients, and keeps less."""

import pytest
import torch

from bam_lightning.models import activation_bytes
from bam_lightning.nn import BAM, OfficialBAM
from bam_lightning.nn.fused import refine

TOLERANCE = {torch.float32: {"rtol": 1e-5, "atol": 1e-5}, torch.bfloat16: {"rtol": 2e-2, "atol": 2e-2}}


def reference(x, c, s, prod):
    return x * (1 + torch.sigmoid(c * s if prod else c + s))


def inputs(shape, dtype, channels_last=False):
    n, ch, h, w = shape
    x = torch.randn(shape, dtype=dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    c, s = torch.randn(n, ch, 1, 1, dtype=dtype), torch.randn(n, 1, h, w, dtype=dtype)
    return [t.requires_grad_() for t in (x, c, s)]


def values_and_grads(fn, tensors, g):
    tensors = [t.detach().clone().requires_grad_() for t in tensors]
    out = fn(*tensors)
    out.backward(g)
    return [out.detach()] + [t.grad for t in tensors]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("prod", [False, True])
@pytest.mark.parametrize("shape,channels_last", [((4, 16, 8, 8), False), ((3, 24, 5, 11), False), ((2, 16, 6, 6), True)])
def test_values_and_gradients_equal_the_reference(dtype, prod, shape, channels_last):
    tensors = inputs(shape, dtype, channels_last)
    g = torch.randn(shape, dtype=dtype)
    got = values_and_grads(lambda x, c, s: refine(x, c, s, prod=prod), tensors, g)
    expected = values_and_grads(lambda x, c, s: reference(x, c, s, prod), tensors, g)
    for name, a, b in zip(("out", "grad x", "grad c", "grad s"), got, expected, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype, name
        # bfloat16 reductions over C or H*W round differently: compare them relative to their size.
        scale = b.abs().max().clamp(min=1) if dtype == torch.bfloat16 else 1
        torch.testing.assert_close(a / scale, b / scale, **TOLERANCE[dtype], msg=name)


@pytest.mark.parametrize("prod", [False, True])
def test_gradcheck_in_float64(prod):
    x, c, s = (t.detach().double().requires_grad_() for t in inputs((2, 3, 4, 5), torch.float32))
    assert torch.autograd.gradcheck(lambda x, c, s: refine(x, c, s, prod=prod), (x, c, s))


def test_one_branch_gates_by_that_branch_alone():
    x, c, s = inputs((2, 8, 4, 4), torch.float32)
    torch.testing.assert_close(refine(x, c, None), x * (1 + torch.sigmoid(c)))
    torch.testing.assert_close(refine(x, None, s, prod=True), x * (1 + torch.sigmoid(s)))


def test_only_the_inputs_are_saved():
    x, c, s = inputs((4, 32, 16, 16), torch.float32)
    small = c.nbytes + s.nbytes
    assert activation_bytes(lambda: refine(x, c, s), exclude=[x]) == small
    # The reference form keeps two full-size maps besides x.
    assert activation_bytes(lambda: reference(x, c, s, False), exclude=[x]) >= 2 * x.nbytes


@pytest.mark.parametrize("cls,kwargs", [(BAM, {}), (BAM, {"combine": "prod"}), (BAM, {"use_spatial": False}), (OfficialBAM, {})])
def test_fused_module_equals_reference_module(cls, kwargs):
    fused, plain = cls(32, **kwargs), cls(32, fused=False, **kwargs)
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(4, 32, 7, 9)
    g = torch.randn(4, 32, 7, 9)
    outs, grads = [], []
    for module in (fused, plain):
        xi = x.clone().requires_grad_()
        out = module(xi)
        out.backward(g)
        outs.append(out)
        grads.append([xi.grad] + [p.grad for p in module.parameters()])
    torch.testing.assert_close(outs[0], outs[1])
    for a, b in zip(*grads, strict=True):
        # Compiled reductions sum in another order: equal to float32 rounding of the largest entry.
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * max(b.abs().max().item(), 1.0))


def test_max_combination_uses_the_reference_form():
    assert not BAM(16, combine="max").fused and BAM(16).fused


@pytest.fixture
def test_inside_a_compiled_model():
    bam = BAM(16)
    compiled = torch.compile(bam)
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    out = compiled(x)
    out.sum().backward()
    torch.testing.assert_close(out, BAM.forward(bam, x))
    assert x.grad is not None and torch.isfinite(x.grad).all()
