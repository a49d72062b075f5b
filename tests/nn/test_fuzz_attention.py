"""Property tests: every attention block takes any small feature map a backbone can hand it.

The example-based tests pin the paper's equations on a few shapes; these draw the corners
they miss (a batch of one in training, 1 x 1 and odd non-square maps, as few channels as
the reduction ratio allows, dilations wider than the map, bfloat16, perturbed weights and
running statistics) and check what must hold for every one of them.

A failure prints the drawn example and, with ``print_blob``, the ``@reproduce_failure(...)``
line that replays it; Hypothesis also keeps it in ``.hypothesis/`` (which git-ignores
itself) and tries it first on the next run.
"""

from typing import Any

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from bam_lightning.nn import ATTENTION_LAYERS, create_attn

REDUCTIONS = st.sampled_from([1, 2, 4, 8, 16, 32])
DILATED = {"dilation": st.integers(1, 6), "num_dilated": st.integers(0, 3)}
# At most one branch off: BAM refuses to lose both (tested in test_bam.py).
BRANCHES = st.sampled_from([{}, {"use_channel": False}, {"use_spatial": False}])

#: Constructor options per block; a block added to ATTENTION_LAYERS must be added here too.
BLOCK_OPTIONS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "bam": st.tuples(
        st.fixed_dictionaries({"reduction": REDUCTIONS, **DILATED, "combine": st.sampled_from(["sum", "prod", "max"])}),
        BRANCHES,
    ).map(lambda parts: {**parts[0], **parts[1]}),
    "bam_official": st.fixed_dictionaries({"reduction": REDUCTIONS, **DILATED}),
    "se": st.fixed_dictionaries({"reduction": REDUCTIONS}),
    "cbam": st.fixed_dictionaries({"reduction": REDUCTIONS, "kernel_size": st.sampled_from([1, 3, 5, 7])}),
}

DTYPES = st.sampled_from([torch.float32, torch.bfloat16])
FUZZ = settings(max_examples=300, deadline=None, print_blob=True)
BOUND = settings(max_examples=150, deadline=None, print_blob=True)


def blocks(names: list[str]) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """(name, constructor options) for one of ``names``."""
    return st.sampled_from(names).flatmap(lambda name: st.tuples(st.just(name), BLOCK_OPTIONS[name]))


@st.composite
def feature_maps(draw: st.DrawFn) -> Tensor:
    """A float32 (N, C, H, W) map: random, constant, all zeros or mostly zeros, at three scales.

    Constant and zero maps give batch norms a zero variance; the tensor comes from a drawn
    seed rather than element by element, which keeps each example cheap.
    """
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 40)), draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    x = torch.randn(shape, generator=generator) * scale
    pattern = draw(st.sampled_from(["normal", "constant", "zeros", "sparse"]))
    if pattern == "constant":
        return torch.full(shape, scale)
    if pattern == "zeros":
        return torch.zeros(shape)
    if pattern == "sparse":
        return x * (torch.rand(shape, generator=generator) < 0.1)
    return x


def build(name: str, options: dict[str, Any], channels: int, seed: int, perturb: bool, training: bool, dtype) -> nn.Module:
    """The block with seeded weights; ``perturb`` adds noise to every parameter and running statistic.

    Fresh batch norms hold mean 0 and variance 1, so eval mode would only ever see the
    identity; perturbed ones (negative scales included) reach the rest of the gate's range.
    """
    torch.manual_seed(seed)
    if "reduction" in options:  # more than the channels is refused (a hidden layer under one channel): the narrowest allowed
        options = {**options, "reduction": min(options["reduction"], channels)}
    block = create_attn(name, channels, **options)
    if perturb:
        with torch.no_grad():
            for p in block.parameters():
                p.add_(torch.randn_like(p))
            for m in block.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.running_mean.normal_()
                    m.running_var.uniform_(0.1, 4.0)
    return block.to(dtype).train(training)


def test_every_registered_block_is_fuzzed():
    assert set(BLOCK_OPTIONS) == set(ATTENTION_LAYERS)


@FUZZ
@given(
    block=blocks(sorted(BLOCK_OPTIONS)),
    x=feature_maps(),
    training=st.booleans(),
    dtype=DTYPES,
    seed=st.integers(0, 2**16),
    perturb=st.booleans(),
)
def test_any_block_keeps_shape_dtype_and_finiteness(block, x, training, dtype, seed, perturb):
    name, options = block
    module = build(name, options, x.shape[1], seed, perturb, training, dtype)
    x = x.to(dtype)
    with torch.no_grad():
        out = module(x)
    assert out.shape == x.shape
    assert out.dtype == dtype
    assert torch.isfinite(out).all()


@BOUND
@given(
    block=blocks(["bam", "bam_official"]),
    x=feature_maps(),
    training=st.booleans(),
    seed=st.integers(0, 2**16),
    perturb=st.booleans(),
)
def test_bam_scales_every_value_by_one_to_two(block, x, training, seed, perturb):
    """``out = x (1 + M)`` with ``M`` in (0, 1): ``x <= out <= 2x`` for x >= 0, reversed for x < 0.

    Checked on signed maps as ``min(x, 2x) <= out <= max(x, 2x)``, which holds the
    non-negative case; the tolerance is a few float32 roundings of ``x``.
    """
    name, options = block
    module = build(name, options, x.shape[1], seed, perturb, training, torch.float32)
    with torch.no_grad():
        out = module(x)
    tolerance = 1e-6 * x.abs()
    assert (out >= torch.minimum(x, 2 * x) - tolerance).all()
    assert (out <= torch.maximum(x, 2 * x) + tolerance).all()
