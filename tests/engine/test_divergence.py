"""The torch internals ``DivergenceGuard`` relies on: a fused optimizer's step skips itself where ``found_inf`` is set."""

import pytest
import torch


@pytest.mark.parametrize("cls", [torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW])
def test_fused_optimizers_still_skip_their_step_through_found_inf(cls):
    """``skips_on_device`` reads ``_step_supports_amp_scaling``; ``on_before_backward`` sets ``found_inf``."""
    weight = torch.nn.Parameter(torch.ones(4))
    kwargs = {"momentum": 0.9} if cls is torch.optim.SGD else {}
    optimizer = cls([weight], lr=0.1, fused=True, **kwargs)
    assert optimizer._step_supports_amp_scaling is True, f"torch {torch.__version__}: divergence.skips_on_device must follow"

    def step(found_inf: float) -> None:
        weight.grad = torch.ones(4)
        optimizer.found_inf = torch.tensor(found_inf)
        optimizer.step()

    step(0.0)  # the first step sets up the state
    before = weight.detach().clone(), {k: v.clone() for k, v in optimizer.state[weight].items()}
    step(1.0)
    torch.testing.assert_close(weight.detach(), before[0], msg=f"torch {torch.__version__} no longer reads found_inf")
    for key, value in optimizer.state[weight].items():
        torch.testing.assert_close(value, before[1][key])
    step(0.0)
    assert not torch.equal(weight.detach(), before[0])
