"""Train a PyTorch ``nn.Module`` with any reference optimizer, through the ``torch.optim`` interface.

>>> opt = ReferenceOptimizer(model.parameters(), companion.optim.adam(1e-3))
>>> loss.backward(); opt.step(); opt.zero_grad()

The transformation's state lives in the adapter; ``state_dict()``/``load_state_dict()`` save and
restore it, so checkpoints work as with ``torch.optim``. The learning rate belongs to the
transformation (a number or a schedule of the step), not to ``param_groups``: use a companion
schedule rather than ``torch.optim.lr_scheduler``.
"""

from __future__ import annotations

import torch

from . import _ops
from .base import GradientTransformation

__all__ = ["ReferenceOptimizer"]


class ReferenceOptimizer(torch.optim.Optimizer):
    """A ``torch.optim.Optimizer`` whose update is a :class:`~companion.optim.GradientTransformation`.

    Checked in the tests to give the same parameters as ``torch.optim.Adam``/``SGD`` step for step.
    """

    def __init__(self, params, transformation: GradientTransformation):
        if not isinstance(transformation, GradientTransformation):
            raise TypeError(
                "transformation must be a companion.optim GradientTransformation such as "
                f"companion.optim.adam(1e-3), got {type(transformation).__name__}"
            )
        params = list(params)
        groups = params if params and isinstance(params[0], dict) else [{"params": params}]
        for i, group in enumerate(groups):
            if not isinstance(group, dict) or "params" not in group:
                raise TypeError(f"params must be tensors or parameter-group dicts, got {type(group).__name__} at [{i}]")
            extra = sorted(set(group) - {"params"})
            if extra:  # refused, not silently ignored: the transformation owns every hyperparameter
                raise ValueError(
                    f"parameter group {i} sets {', '.join(extra)}: a ReferenceOptimizer takes its learning rate and "
                    "weight decay from its transformation, for all parameters. For per-group settings, build one "
                    "ReferenceOptimizer per group (each with its own companion.optim chain) and step each of them."
                )
        super().__init__([_AdapterGroup(group) for group in groups], defaults={})
        self.transformation = transformation
        self._params = [p for group in self.param_groups for p in group["params"]]
        self._transformation_state = None  # created at the first step, from the parameters' shapes

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        missing = [i for i, p in enumerate(self._params) if p.grad is None]
        if missing:
            raise ValueError(
                f"parameters {missing} have no gradient: call loss.backward() first, and pass only the "
                "parameters that take part in the loss (e.g. filter on p.requires_grad)"
            )
        grads = [p.grad for p in self._params]
        if self._transformation_state is None:
            self._transformation_state = self.transformation.init(self._params)
        with _ops.reusing_state_buffers():  # the old state is dropped, so its buffers can be reused
            updates, self._transformation_state = self.transformation.update(
                grads, self._transformation_state, self._params
            )
        torch._foreach_add_(self._params, updates)
        return loss

    def state_dict(self):
        return {"transformation_state": self._transformation_state, "num_params": len(self._params)}

    def load_state_dict(self, state_dict):
        if not isinstance(state_dict, dict) or "transformation_state" not in state_dict:
            raise TypeError("state_dict must come from ReferenceOptimizer.state_dict() (a dict with 'transformation_state')")
        if state_dict.get("num_params") != len(self._params):
            raise ValueError(
                f"state_dict is for {state_dict.get('num_params')} parameters, this optimizer has {len(self._params)}"
            )
        loaded = state_dict["transformation_state"]
        if loaded is not None:
            expected = _structure(self.transformation.init(self._params))
            if _structure(loaded) != expected:
                raise ValueError(
                    f"state_dict holds the state of another optimizer ({_structure(loaded)}), "
                    f"not of this one ({expected}): load it into an adapter built with the same companion.optim chain"
                )
        self._transformation_state = loaded


class _AdapterGroup(dict):
    """A parameter group that says what to do when asked for a learning rate it does not hold."""

    def __missing__(self, key):
        if key == "lr":
            raise KeyError(
                "'lr': a ReferenceOptimizer has no param_groups learning rate for torch.optim.lr_scheduler to change; "
                "give the companion.optim transformation a schedule instead, e.g. "
                "optim.adam(companion.schedules.cosine_decay(1e-3, total_steps))"
            )
        raise KeyError(key)


def _structure(state) -> str:
    """The nesting of state types (``ScaleByAdamState(...)`` inside a chain's tuple), without the values."""
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return f"{type(state).__name__}"
    if isinstance(state, (list, tuple)):
        return "(" + ", ".join(_structure(s) for s in state) + ")"
    return type(state).__name__
