r"""Tools to see inside a training run (Part II): gradient checking and training-health monitors.

* :func:`gradient_check` compares a hand-written gradient with central finite differences,
  the first test of any backward pass (checked against ``torch.autograd.gradcheck``).
* :class:`ActivationMonitor` records, from forward hooks, what each activation layer of a torch model
  outputs: mean, standard deviation, the fraction of *dead* ReLU units (never active on the batch) and
  the fraction of *saturated* tanh/sigmoid outputs (near their asymptotes, where the gradient vanishes).
* :func:`register_health_hooks` adds per-parameter gradient norms and update ratios
  :math:`\|\Delta\theta\| / \|\theta\|` (about :math:`10^{-3}` is healthy, a rule of thumb from
  Karpathy's CS231n notes) to that.

Every monitor returns flat ``{"name": number}`` dicts that :meth:`companion.history.History.log`
accepts, so the course's plotting helpers draw them. Tested in ``tests/test_monitoring.py`` on modules
whose answer is known (a ReLU layer behind a huge negative bias is 100% dead).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch.nn as nn

from ._checks import check_in_range, check_positive

__all__ = [
    "ActivationMonitor",
    "TrainingHealthMonitor",
    "gradient_check",
    "numerical_gradient",
    "register_health_hooks",
]


# --- gradient checking ---------------------------------------------------------------------------


def _as_float64_point(x) -> np.ndarray:
    x = np.array(x, dtype=np.float64)  # a copy: f may not modify the caller's array
    if x.size == 0:
        raise ValueError("x must have at least one element")
    if not np.all(np.isfinite(x)):
        raise ValueError("x must be finite (it holds NaN or inf)")
    return x


def numerical_gradient(f, x, eps: float = 1e-6) -> np.ndarray:
    r"""The central-difference estimate of :math:`\nabla f(x)`, one coordinate at a time:

    .. math:: \hat g_i = \frac{f(x + \epsilon e_i) - f(x - \epsilon e_i)}{2\epsilon},

    whose error is :math:`O(\epsilon^2)` (plus the rounding error of :math:`f`, about
    :math:`10^{-16}|f|/\epsilon` in float64). ``x`` is copied to float64; ``f`` returns a scalar.
    Costs :math:`2n` evaluations of ``f``: use it on small models only.
    """
    if not callable(f):
        raise TypeError(f"f must be a callable that returns a scalar, got {type(f).__name__}")
    eps = check_positive("eps", eps)
    x = _as_float64_point(x)
    grad = np.empty_like(x)
    flat, out = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        f_plus = float(f(x.copy()))
        flat[i] = saved - eps
        f_minus = float(f(x.copy()))
        flat[i] = saved
        out[i] = (f_plus - f_minus) / (2.0 * eps)
    return grad


def gradient_check(f, grad_f, x, eps: float = 1e-6, floor: float = 1e-8) -> float:
    r"""The largest relative error between ``grad_f(x)`` and the finite-difference gradient of ``f`` at ``x``:

    .. math:: \max_i \frac{|g_i - \hat g_i|}{\max(|g_i|, |\hat g_i|, \delta)},

    with :math:`\hat g` from :func:`numerical_gradient` and :math:`\delta` = ``floor`` keeping entries
    where both gradients vanish from dividing zero by zero. In float64 a correct gradient typically
    gives below :math:`10^{-6}`; above :math:`10^{-2}` there is almost surely a bug (kinks such as
    ReLU at exactly 0 aside). Checked against ``torch.autograd.gradcheck`` on the same functions.
    """
    for name, function in (("f", f), ("grad_f", grad_f)):
        if not callable(function):
            raise TypeError(f"{name} must be callable, got {type(function).__name__}")
    eps = check_positive("eps", eps)
    floor = check_positive("floor", floor)
    x = _as_float64_point(x)
    analytic = np.asarray(grad_f(x.copy()), dtype=np.float64)
    if analytic.shape != x.shape:
        raise ValueError(f"grad_f(x) has shape {analytic.shape}, but x has shape {x.shape}: they must match")
    numeric = numerical_gradient(f, x, eps)
    denominator = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)
    return float(np.max(np.abs(analytic - numeric) / denominator))


# --- activation statistics -----------------------------------------------------------------------


def _activation_kinds():
    # The outputs that can be dead (exactly 0 for negative inputs) or saturated (near an asymptote).
    return {nn.ReLU: "relu", nn.ReLU6: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.Hardtanh: "tanh"}


class ActivationMonitor:
    r"""Forward hooks on a torch model's activation layers that record statistics of their outputs.

    For each ``nn.ReLU``, ``nn.Tanh`` or ``nn.Sigmoid`` (named as in ``model.named_modules()``), after each
    forward pass in training mode, ``monitor.stats[name]`` holds

    * ``mean``, ``std``: of all the layer's outputs on the batch;
    * ``dead_fraction`` (ReLU): the fraction of units (output features, all positions of a feature map
      counted as one unit) that output 0 for *every* example of the batch, so receive no gradient;
    * ``saturated_fraction`` (tanh, sigmoid): the fraction of outputs with :math:`|a| >` ``saturation``
      (tanh) or :math:`|2a - 1| >` ``saturation`` (sigmoid), where the derivative is below
      :math:`1 - 0.99^2 \approx 0.02` (tanh) at the default 0.99.

    Evaluation passes (``model.eval()``) are not recorded, so measuring accuracy does not overwrite
    the training statistics. Use as a context manager, or call :meth:`remove` when done.
    """

    def __init__(self, model, saturation: float = 0.99):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.saturation = check_in_range("saturation", saturation, 0.0, 1.0)
        self.stats: dict[str, dict[str, float]] = {}
        self._handles = []
        kinds = _activation_kinds()
        for name, module in model.named_modules():
            kind = next((k for cls, k in kinds.items() if type(module) is cls), None)
            if kind is not None:
                self._handles.append(module.register_forward_hook(self._hook(name or type(module).__name__, kind)))
        if not self._handles:
            raise ValueError("model has no nn.ReLU, nn.Tanh or nn.Sigmoid module to monitor")

    def _hook(self, name: str, kind: str):
        def hook(module, inputs, output):
            if module.training:
                self.stats[name] = self._measure(output.detach(), kind)

        return hook

    def _measure(self, a, kind: str) -> dict[str, float]:
        a = a.float()
        stats = {"mean": a.mean().item(), "std": a.std().item() if a.numel() > 1 else 0.0}
        if kind == "relu":
            units = a.reshape(a.shape[0], a.shape[1], -1) if a.dim() > 2 else a.reshape(a.shape[0], -1, 1)
            # A unit is dead on this batch when it is 0 for every example and every position.
            dead = (units > 0).any(dim=2).any(dim=0).logical_not()
            stats["dead_fraction"] = dead.sum().item() / dead.numel()  # exact counts, not a float32 mean
        else:
            centred = a if kind == "tanh" else 2.0 * a - 1.0
            saturated = centred.abs() > self.saturation
            stats["saturated_fraction"] = saturated.sum().item() / saturated.numel()
        return stats

    def measurements(self) -> dict[str, float]:
        """The latest statistics as one flat dict, ``{"<layer>/<statistic>": value}``, for ``History.log``."""
        return {f"{layer}/{key}": value for layer, stats in self.stats.items() for key, value in stats.items()}

    def remove(self) -> None:
        """Detach the hooks (the model runs as before)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class TrainingHealthMonitor(ActivationMonitor):
    r"""An :class:`ActivationMonitor` that also measures each parameter's gradient norm and update ratio.

    .. code-block:: python

        monitor = register_health_hooks(model)
        loss.backward()
        with monitor.watch_step():      # reads the gradients, then the change the step makes
            optimizer.step()
        history.log(step, **monitor.measurements())

    ``grad_norm/<param>`` is :math:`\|g\|`, ``update_ratio/<param>`` is
    :math:`\|\theta_{t+1} - \theta_t\| / \|\theta_t\|` (for plain SGD :math:`\eta\|g\|/\|\theta\|`);
    about :math:`10^{-3}` is the usual healthy range, :math:`10^{-1}` and above a learning rate too large.
    """

    def __init__(self, model, saturation: float = 0.99):
        super().__init__(model, saturation)
        self.parameters = {name: p for name, p in model.named_parameters() if p.requires_grad}
        self.grad_norms: dict[str, float] = {}
        self.update_ratios: dict[str, float] = {}

    def record_gradients(self) -> dict[str, float]:
        """Read ``p.grad`` of every parameter (call after ``backward()``) and return the norms."""
        missing = [name for name, p in self.parameters.items() if p.grad is None]
        if missing:
            raise ValueError(f"parameters {missing} have no gradient: call loss.backward() first")
        self.grad_norms = {name: p.grad.detach().norm().item() for name, p in self.parameters.items()}
        return self.grad_norms

    @contextlib.contextmanager
    def watch_step(self):
        """Around ``optimizer.step()``: record the gradient norms before it and the update ratios after it."""
        self.record_gradients()
        before = {name: p.detach().clone() for name, p in self.parameters.items()}
        yield self
        self.update_ratios = {}
        for name, p in self.parameters.items():
            norm = before[name].norm().item()
            change = (p.detach() - before[name]).norm().item()
            self.update_ratios[name] = change / norm if norm > 0 else (math.inf if change > 0 else 0.0)

    def measurements(self) -> dict[str, float]:
        values = super().measurements()
        values.update({f"grad_norm/{name}": v for name, v in self.grad_norms.items()})
        values.update({f"update_ratio/{name}": v for name, v in self.update_ratios.items()})
        return values


def register_health_hooks(model, saturation: float = 0.99) -> TrainingHealthMonitor:
    """Attach a :class:`TrainingHealthMonitor` to ``model`` (activations now, parameters at each ``watch_step``)."""
    return TrainingHealthMonitor(model, saturation)
