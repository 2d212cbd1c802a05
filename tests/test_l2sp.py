"""L2-SP (training.l2sp): the decoupled pull toward the starting weights."""

import pytest
import torch

from training.l2sp import L2SPCallback


def _model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    model[1].weight.requires_grad_(False)  # a frozen weight: not tracked, never moved
    return model


def test_pull_takes_back_lr_times_strength_of_the_distance_toward_the_start():
    model = _model()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    callback = L2SPCallback(model, strength=1000.0)
    assert set(callback.start) == {"0.weight", "0.bias", "1.bias"}
    with torch.no_grad():  # an optimizer step, and a checkpoint load, move the weights away from the start
        for p in model.parameters():
            p.add_(1.0)
    assert callback.pull(model, lr=2e-4) == pytest.approx(0.2)
    state = model.state_dict()
    for name in callback.start:
        assert torch.allclose(state[name] - start[name], torch.full_like(start[name], 0.8))
    assert torch.equal(state["1.weight"], start["1.weight"] + 1.0)
    # A rate times strength above 1 lands on the start, never beyond it; a zero rate (the end of a linear
    # schedule) leaves the weights alone.
    assert callback.pull(model, lr=0.0) == 0.0
    assert torch.allclose(model[0].weight, start["0.weight"] + 0.8)
    assert callback.pull(model, lr=1.0) == 1.0
    assert torch.equal(model[0].weight, start["0.weight"])


def test_refuses_what_it_cannot_pull():
    with pytest.raises(ValueError, match="positive"):
        L2SPCallback(_model(), strength=0.0)
    frozen = _model().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable"):
        L2SPCallback(frozen, strength=10.0)
