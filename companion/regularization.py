r"""Regularization: penalties on the weights, inverted dropout, early stopping (PyTorch).

- :func:`l2_penalty` :math:`\frac{\lambda}{2}\sum_W \lVert W\rVert_2^2`, gradient :math:`\lambda W`: with plain
  SGD this *is* weight decay (Krogh and Hertz, 1992); with Adam it is not (see AdamW, Loshchilov and
  Hutter, 2019). Keras' ``regularizers.L2(l)`` adds :math:`l\sum W^2` (no one half): ``l = lambda / 2``.
- :func:`l1_penalty` :math:`\lambda\sum_W \lVert W\rVert_1`, (sub)gradient :math:`\lambda\,\mathrm{sign}(W)`.
- :func:`inverted_dropout` (Srivastava et al., 2014): at training time keep each unit with probability
  :math:`1-p` and scale the kept ones by :math:`1/(1-p)`, so that :math:`\mathbb E[\tilde x] = x`; at
  evaluation time the identity.
- :class:`EarlyStopping` (Prechelt, 1998): stop when the monitored validation loss has not improved by
  more than ``min_delta`` for ``patience`` epochs, and restore the weights of the best epoch. Same rule as
  ``keras.callbacks.EarlyStopping``.
- :func:`fit_with_validation`: a training loop that records training and validation loss and accuracy
  every epoch (the curves that show over-fitting), with optional penalty and early stopping.

The penalties skip 1-D parameters (biases, batch-norm scales and shifts) unless ``include_biases=True``:
shrinking a bias towards 0 does not make the function smoother.

Tested in ``tests/test_regularization.py`` against autograd (penalty gradients), ``torch.optim.SGD``'s
``weight_decay``, ``torch.nn.functional.dropout`` (statistics) and ``keras.callbacks.EarlyStopping``.
"""

from __future__ import annotations

import copy
import math
import torch
import torch.nn as nn
import torch.nn.functional as F

from ._checks import check_in_range, check_non_negative, check_non_negative_int

__all__ = [
    "EarlyStopping",
    "InvertedDropout",
    "fit_with_validation",
    "inverted_dropout",
    "l1_penalty",
    "l2_penalty",
    "penalized_parameters",
]


def penalized_parameters(model, include_biases: bool = False) -> list:
    """The parameters a penalty applies to: every trainable one with ``ndim >= 2`` (weights of linear
    and convolution layers), plus the 1-D ones (biases, normalization scales) if ``include_biases``."""

    if isinstance(model, torch.nn.Module):
        params = list(model.parameters())
    else:
        params = list(model)
        if not all(isinstance(p, torch.Tensor) for p in params):
            raise TypeError("model must be a torch.nn.Module or an iterable of tensors")
    return [p for p in params if p.requires_grad and (include_biases or p.ndim >= 2)]


def l2_penalty(model, strength: float, include_biases: bool = False):
    r""":math:`\frac{\lambda}{2}\sum_W \lVert W\rVert_2^2` over the weights of ``model`` (a differentiable scalar)."""
    strength = check_non_negative("strength", strength)
    params = penalized_parameters(model, include_biases)
    if not params:
        raise ValueError("model has no parameter to penalize")
    return 0.5 * strength * sum((p * p).sum() for p in params)


def l1_penalty(model, strength: float, include_biases: bool = False):
    r""":math:`\lambda\sum_W \lVert W\rVert_1` over the weights of ``model`` (a differentiable scalar)."""
    strength = check_non_negative("strength", strength)
    params = penalized_parameters(model, include_biases)
    if not params:
        raise ValueError("model has no parameter to penalize")
    return strength * sum(p.abs().sum() for p in params)


def inverted_dropout(x, p: float, training: bool = True, generator=None):
    r"""Zero each entry of ``x`` with probability ``p`` and scale the others by :math:`1/(1-p)` when
    ``training``; return ``x`` itself otherwise.

    .. math:: \tilde x_i = \frac{m_i}{1-p}\,x_i,\qquad m_i \sim \mathrm{Bernoulli}(1-p).

    ``generator`` is an optional ``torch.Generator`` (for reproducible masks); it may live on the CPU
    while ``x`` is on a GPU.
    """

    p = check_in_range("p", p, 0.0, 1.0)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch tensor, got {type(x).__name__}")
    if not training or p == 0.0:
        return x
    device = generator.device if generator is not None else x.device
    keep = torch.rand(x.shape, generator=generator, device=device).to(x.device) >= p
    return x * keep / (1.0 - p)


class InvertedDropout(nn.Module):
    """:func:`inverted_dropout` as a layer: ``InvertedDropout(0.5)`` behaves like ``nn.Dropout(0.5)``."""

    def __init__(self, p: float = 0.5, generator=None):
        super().__init__()
        self.p = check_in_range("p", p, 0.0, 1.0)
        self.generator = generator

    def forward(self, x):
        return inverted_dropout(x, self.p, self.training, self.generator)

    def extra_repr(self):
        return f"p={self.p}"


class EarlyStopping:
    r"""Stop when the monitored value has not improved for ``patience`` epochs; remember the best weights.

    An epoch *improves* when ``value < best - min_delta`` (``mode="min"``; ``value > best + min_delta`` for
    ``"max"``). After every non-improving epoch a counter grows; training should stop when it reaches
    ``patience`` (``patience=0``: at the first non-improving epoch), as in ``keras.callbacks.EarlyStopping``.

    >>> stopper = EarlyStopping(patience=3)
    >>> for epoch in range(100):
    ...     ...  # train one epoch, compute val_loss
    ...     if stopper.step(val_loss, model):
    ...         break
    >>> stopper.restore(model)  # back to the best epoch's weights
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.0, mode: str = "min", restore_best: bool = True):
        patience = check_non_negative_int("patience", patience)
        if mode not in ("min", "max"):
            raise ValueError(f"Unknown mode: {mode!r} (expected 'min' or 'max')")
        self.patience = patience
        self.min_delta = check_non_negative("min_delta", min_delta)
        self.mode = mode
        self.restore_best = restore_best
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = None
        self.best_state = None
        self.wait = 0
        self.epoch = -1
        self.stopped_epoch = None

    def _improves(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value: float, model=None) -> bool:
        """Record this epoch's ``value`` (and, if it is the best so far, a copy of ``model``'s weights);
        return ``True`` when training should stop."""
        value = float(value)
        if math.isnan(value):
            raise ValueError("Invalid value: nan (the monitored quantity diverged)")
        self.epoch += 1
        if self._improves(value):
            self.best, self.best_epoch, self.wait = value, self.epoch, 0
            if self.restore_best and model is not None:
                self.best_state = copy.deepcopy(model.state_dict())
            return False
        self.wait += 1
        if self.wait >= self.patience and self.epoch > 0:
            self.stopped_epoch = self.epoch
            return True
        return False

    def restore(self, model) -> None:
        """Load the best epoch's weights into ``model``."""
        if self.best_state is None:
            raise RuntimeError("no best weights recorded: pass the model to step() (with restore_best=True)")
        model.load_state_dict(self.best_state)

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, mode={self.mode!r}; "
            f"best={self.best:.4g} at epoch {self.best_epoch}, wait={self.wait})"
        )


def fit_with_validation(
    model,
    optimizer,
    x_train,
    y_train,
    x_val,
    y_val,
    *,
    epochs: int,
    batch_size: int = 64,
    penalty=None,
    augment=None,
    early_stopping: EarlyStopping | None = None,
    seed: int = 0,
    progress: bool = True,
    name: str | None = None,
):
    """Train ``model`` with :func:`companion.training.train_classifier` and record, after every epoch,
    ``train_loss``, ``train_accuracy``, ``val_loss`` and ``val_accuracy`` (both splits evaluated in eval mode,
    so dropout is off and batch norm uses its running statistics) in a :class:`~companion.history.History`
    indexed by epoch (1, 2, ...).

    ``penalty`` is an optional callable ``model -> scalar`` added to the mini-batch loss (e.g.
    ``lambda m: l2_penalty(m, 1e-3)``); ``augment`` an optional callable ``images -> images`` applied to every
    mini-batch; ``early_stopping`` an :class:`EarlyStopping` fed the validation loss (the model is left with
    the best epoch's weights if it restores them).
    """

    from .history import History
    from .training import LambdaCallback, evaluate, train_classifier

    if penalty is not None and not callable(penalty):
        raise TypeError(f"penalty must be a callable model -> scalar, got {type(penalty).__name__}")
    if x_val is None or y_val is None:
        raise ValueError("fit_with_validation needs x_val and y_val (use train_classifier to train without them)")
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError(f"early_stopping must be an EarlyStopping, got {type(early_stopping).__name__}")
    history = History(name)

    def loss_fn(logits, labels):
        loss = F.cross_entropy(logits, labels)
        return loss if penalty is None else loss + penalty(model)

    def record_epoch(state):
        train = evaluate(model, x_train, y_train)
        val = evaluate(model, x_val, y_val)
        history.log(state.epoch, train_loss=train["loss"], train_accuracy=train["accuracy"],
                    val_loss=val["loss"], val_accuracy=val["accuracy"])
        if not math.isfinite(val["loss"]):  # diverged: nothing to compare, training stops anyway
            return True
        return early_stopping is not None and early_stopping.step(val["loss"], model)

    inner = train_classifier(model, optimizer, x_train, y_train, epochs=epochs, batch_size=batch_size, loss_fn=loss_fn,
                             transform=augment, callbacks=[LambdaCallback(on_epoch=record_epoch)], seed=seed,
                             progress=progress, name=name)
    if early_stopping is not None and early_stopping.restore_best and early_stopping.best_state is not None:
        early_stopping.restore(model)
        history.meta["best_epoch"] = early_stopping.best_epoch + 1
    history.meta["epochs_run"] = len(history.series("val_loss")[0]) if "val_loss" in history else 0
    if "diverged_at_step" in inner.meta:
        history.meta["diverged_at_step"] = inner.meta["diverged_at_step"]
    return history
