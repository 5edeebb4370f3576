r"""Batch normalization from scratch: the forward pass, the backward pass by hand, and a module (PyTorch).

Batch normalization (Ioffe and Szegedy, 2015) standardizes each feature :math:`j` of a mini-batch of
:math:`N` examples, then rescales it with learned :math:`\gamma_j, \beta_j`:

.. math::

    \mu_j = \frac1N\sum_i x_{ij},\quad \sigma_j^2 = \frac1N\sum_i (x_{ij}-\mu_j)^2,\quad
    \hat x_{ij} = \frac{x_{ij}-\mu_j}{\sqrt{\sigma_j^2+\epsilon}},\quad y_{ij} = \gamma_j\hat x_{ij} + \beta_j .

In training mode the batch statistics are used, and running estimates are updated with PyTorch's
momentum convention :math:`m` (default 0.1), the variance *unbiased* (:math:`\frac{N}{N-1}\sigma_j^2`):

.. math:: \bar\mu \leftarrow (1-m)\,\bar\mu + m\,\mu, \qquad \bar\sigma^2 \leftarrow (1-m)\,\bar\sigma^2 + m\,\tfrac{N}{N-1}\sigma^2 .

In evaluation mode :math:`\bar\mu, \bar\sigma^2` replace :math:`\mu, \sigma^2`, and nothing is updated.
Keras' ``BatchNormalization(momentum=k)`` is the same update with :math:`m = 1-k` (default
:math:`k = 0.99`, i.e. :math:`m = 0.01`), :math:`\epsilon = 10^{-3}` by default, and a *biased*
variance in its running estimate.

- :func:`batch_norm_forward` and :func:`batch_norm_backward`: the two passes as plain functions (inputs
  are never modified; the new running statistics are returned);
- :class:`BatchNormFunction`: the pair as a ``torch.autograd.Function``, so that autograd calls our
  backward; :func:`batch_norm` applies it;
- :class:`BatchNorm1dFromScratch`: an ``nn.Module`` with the interface of ``torch.nn.BatchNorm1d``
  (inputs of shape ``(N, C)``).

Tested in ``tests/test_normalization.py`` against ``torch.nn.BatchNorm1d`` (both modes, running
statistics over several batches, momentum), ``keras.layers.BatchNormalization`` (``training=True/False``,
momentum and epsilon conventions), and autograd (``torch.autograd.gradcheck`` in float64); a variant
with a biased running variance fails the comparison with PyTorch.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn

from ._checks import check_in_range, check_non_negative

__all__ = [
    "BatchNorm1dFromScratch",
    "BatchNormCache",
    "BatchNormFunction",
    "BatchNormOutput",
    "batch_norm",
    "batch_norm_backward",
    "batch_norm_forward",
]


class BatchNormCache(NamedTuple):
    """What the backward pass needs from the forward pass."""

    x_hat: torch.Tensor  #: the standardized input, shape (N, C)
    inv_std: torch.Tensor  #: 1 / sqrt(variance + eps) per feature, shape (C,): batch or running variance
    gamma: torch.Tensor  #: the scale, shape (C,)
    training: bool  #: batch statistics (they depend on x, hence the extra terms of dx) or running ones


class BatchNormOutput(NamedTuple):
    """``batch_norm_forward``'s result; unpack as ``out, running_mean, running_var, cache``."""

    out: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor
    cache: BatchNormCache


def _check_tensor(name: str, value, shape=None) -> torch.Tensor:
    if not torch.is_tensor(value):
        raise TypeError(f"{name} must be a torch tensor, got {type(value).__name__}")
    if shape is not None and tuple(value.shape) != shape:
        raise ValueError(f"Invalid {name} shape: {tuple(value.shape)} (expected {shape})")
    return value


def batch_norm_forward(x, gamma, beta, running_mean, running_var, *, training: bool,
                       momentum: float = 0.1, eps: float = 1e-5) -> BatchNormOutput:
    r"""Batch normalization of ``x`` (shape ``(N, C)``); returns ``out, running_mean, running_var, cache``.

    Training mode: :math:`y = \gamma\,(x-\mu)/\sqrt{\sigma^2+\epsilon} + \beta` with the batch mean and
    biased variance, and new running statistics
    :math:`(1-m)\bar\mu + m\mu` and :math:`(1-m)\bar\sigma^2 + m\frac{N}{N-1}\sigma^2` (PyTorch's momentum
    convention and unbiased variance; needs :math:`N \ge 2`). Evaluation mode: the running statistics
    replace the batch ones and are returned unchanged. ``gamma``, ``beta``, ``running_mean`` and
    ``running_var`` have shape ``(C,)``; none of the inputs is modified.
    """
    x = _check_tensor("x", x)
    if x.ndim != 2:
        raise ValueError(f"Invalid x shape: {tuple(x.shape)} (expected (N, C), a batch of feature vectors)")
    n, c = x.shape
    for name, value in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean), ("running_var", running_var)):
        _check_tensor(name, value, (c,))
    momentum = check_in_range("momentum", momentum, 0.0, 1.0, high_inclusive=True)
    eps = check_non_negative("eps", eps)
    if not isinstance(training, bool):
        raise TypeError(f"training must be a bool, got {type(training).__name__}")

    if training:
        if n < 2:
            raise ValueError(f"Invalid x shape: {tuple(x.shape)} (training needs more than 1 example per feature)")
        mean = x.mean(dim=0)
        var = x.var(dim=0, unbiased=False)  # the normalization uses the biased variance...
        with torch.no_grad():  # ...the running estimate the unbiased one, as torch.nn.BatchNorm1d
            new_mean = (1.0 - momentum) * running_mean + momentum * mean
            new_var = (1.0 - momentum) * running_var + momentum * var * (n / (n - 1))
    else:
        mean, var = running_mean, running_var
        new_mean, new_var = running_mean.clone(), running_var.clone()
    inv_std = torch.rsqrt(var + eps)
    x_hat = (x - mean) * inv_std
    out = gamma * x_hat + beta
    return BatchNormOutput(out, new_mean, new_var, BatchNormCache(x_hat, inv_std, gamma, training))


def batch_norm_backward(grad_out, cache: BatchNormCache):
    r"""The gradients ``(dx, dgamma, dbeta)`` of the loss, given ``grad_out`` :math:`= \partial L/\partial y`.

    With :math:`\mathrm{d}y = \partial L/\partial y` (shape ``(N, C)``), sums over the batch,
    :math:`\sigma = \sqrt{\sigma^2+\epsilon}`, and per feature:

    .. math::

        \frac{\partial L}{\partial\beta} = \sum_i \mathrm{d}y_i, \qquad
        \frac{\partial L}{\partial\gamma} = \sum_i \mathrm{d}y_i\,\hat x_i,

    and, in training mode (the batch mean and variance depend on every :math:`x_i`),

    .. math::

        \frac{\partial L}{\partial x} = \frac{1}{N}\,\frac{\gamma}{\sigma}
        \Big(N\,\mathrm{d}y - \sum_i \mathrm{d}y_i - \hat x\sum_i \mathrm{d}y_i\,\hat x_i\Big).

    It follows from :math:`\mathrm{d}\hat x = \gamma\,\mathrm{d}y` and
    :math:`\partial\hat x_k/\partial x_i = \frac1\sigma(\delta_{ik} - \frac1N - \frac1N\hat x_i\hat x_k)`:
    the gradient is projected away from the two directions (a constant shift, a rescaling) that the
    normalization cannot see. In evaluation mode the statistics are constants and
    :math:`\partial L/\partial x = \gamma\,\mathrm{d}y/\sigma`.
    """
    grad_out = _check_tensor("grad_out", grad_out, tuple(cache.x_hat.shape))
    x_hat, inv_std, gamma, training = cache
    dbeta = grad_out.sum(dim=0)
    dgamma = (grad_out * x_hat).sum(dim=0)
    if training:
        n = grad_out.shape[0]
        dx = (gamma * inv_std / n) * (n * grad_out - dbeta - x_hat * dgamma)
    else:
        dx = grad_out * gamma * inv_std
    return dx, dgamma, dbeta


class BatchNormFunction(torch.autograd.Function):
    """:func:`batch_norm_forward` with :func:`batch_norm_backward` as its gradient.

    ``apply(x, gamma, beta, running_mean, running_var, training, momentum, eps)`` returns
    ``(out, running_mean, running_var)``; the running statistics are not differentiable.
    """

    @staticmethod
    def forward(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps):
        out, new_mean, new_var, cache = batch_norm_forward(
            x, gamma, beta, running_mean, running_var, training=training, momentum=momentum, eps=eps)
        ctx.save_for_backward(cache.x_hat, cache.inv_std, cache.gamma)
        ctx.training = cache.training
        ctx.mark_non_differentiable(new_mean, new_var)
        return out, new_mean, new_var

    @staticmethod
    def backward(ctx, grad_out, _grad_mean, _grad_var):
        x_hat, inv_std, gamma = ctx.saved_tensors
        dx, dgamma, dbeta = batch_norm_backward(grad_out, BatchNormCache(x_hat, inv_std, gamma, ctx.training))
        return dx, dgamma, dbeta, None, None, None, None, None


def batch_norm(x, gamma, beta, running_mean, running_var, *, training: bool, momentum: float = 0.1,
               eps: float = 1e-5):
    """``(out, running_mean, running_var)`` of :func:`batch_norm_forward`, differentiated by our backward pass."""
    return BatchNormFunction.apply(x, gamma, beta, running_mean, running_var, training, momentum, eps)


class BatchNorm1dFromScratch(nn.Module):
    """A drop-in for ``torch.nn.BatchNorm1d(num_features)`` on ``(N, C)`` inputs, built on :func:`batch_norm`.

    Parameters ``weight`` (:math:`\\gamma`, ones) and ``bias`` (:math:`\\beta`, zeros); buffers
    ``running_mean`` (zeros) and ``running_var`` (ones), replaced after every training-mode forward pass.
    ``model.train()`` / ``model.eval()`` choose batch or running statistics, as for the real layer.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"Invalid num_features: {num_features!r} (must be an integer >= 1)")
        self.num_features = num_features
        self.eps = check_non_negative("eps", eps)
        self.momentum = check_in_range("momentum", momentum, 0.0, 1.0, high_inclusive=True)
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        if torch.is_tensor(x) and (x.ndim != 2 or x.shape[1] != self.num_features):
            raise ValueError(f"Invalid x shape: {tuple(x.shape)} (expected (N, {self.num_features}))")
        out, running_mean, running_var = batch_norm(
            x, self.weight, self.bias, self.running_mean, self.running_var,
            training=self.training, momentum=self.momentum, eps=self.eps)
        if self.training:
            self.running_mean, self.running_var = running_mean, running_var  # registered buffers: replaced
        return out

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
