"""L2-SP: keep the fine-tuned weights near the starting point (Li et al., 2018, "Explicit inductive bias
for transfer learning with convolutional networks").

A fine-tune on one synthetic voice drifts the base away from what it knew about real voices. Plain
weight decay pulls weights toward zero, which is no prior for a pretrained model; L2-SP pulls them
toward the *starting* weights θ0 instead. The pull is decoupled from Adam, as AdamW decouples weight
decay: after each optimizer step

    θ ← θ - min(1, lr · strength) · (θ - θ0)

so the pull follows the learning-rate schedule and is not rescaled by Adam's per-weight statistics
(added to the loss, Adam would divide it away for rarely-updated weights). Roughly, Adam moves a
weight by about lr per step and the pull takes lr · strength · distance back, so a weight settles
about 1/strength from where it started: strength 1000 keeps every weight within ~1e-3 of the base.
"""

from __future__ import annotations

from transformers import TrainerCallback


class L2SPCallback(TrainerCallback):
    """Pulls every trainable weight toward its value when the callback was made (the base's: the
    trainer is built before a checkpoint is loaded, so a resumed run still pulls toward the base)."""

    def __init__(self, model, strength: float):
        if strength <= 0:
            raise ValueError("L2-SP strength must be positive")
        self.strength = strength
        self.start = {name: p.detach().to("cpu", copy=True) for name, p in model.named_parameters() if p.requires_grad}
        if not self.start:
            raise ValueError("L2-SP: the model has no trainable weights")

    def pull(self, model, lr: float) -> float:
        """One decoupled pull at learning rate `lr`; returns the share of the distance taken back."""
        import torch

        share = min(1.0, lr * self.strength)
        if share <= 0:
            return 0.0
        with torch.no_grad():
            for name, p in model.named_parameters():
                start = self.start.get(name)
                if start is None:
                    continue
                if start.device != p.device or start.dtype != p.dtype:
                    start = self.start[name] = start.to(p.device, p.dtype)
                p.lerp_(start, share)  # p += share * (start - p)
        return share

    def on_optimizer_step(self, args, state, control, model=None, optimizer=None, **kwargs):
        # Called after optimizer.step() and before the scheduler's step: the rate just used.
        self.pull(model, optimizer.param_groups[0]["lr"])
