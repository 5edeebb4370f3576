r"""A small, visible PyTorch training loop shared by the chapters.

One epoch is one pass over a shuffled training set in mini-batches; each step computes the loss
:math:`J(\theta; B_t)` on batch :math:`B_t`, back-propagates, and lets the optimizer step. The loop
records the training loss every step (with the wall-clock time) and the validation accuracy after
every epoch in a :class:`~companion.history.History`.
"""

from __future__ import annotations

import time

import numpy as np

from ._checks import check_positive_int
from .history import History

__all__ = ["accuracy", "as_tensors", "mlp", "train_classifier"]


def mlp(sizes=(784, 128, 10), activation: str = "relu"):
    """A multilayer perceptron ``Flatten -> Linear -> act -> ... -> Linear`` (logits out, no softmax)."""
    import torch.nn as nn

    activations = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
    if activation not in activations:
        raise ValueError(f"Unknown activation: {activation!r} (expected one of {', '.join(activations)})")
    if len(sizes) < 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"Invalid sizes: {sizes!r} (need at least two positive integers)")
    layers: list = [nn.Flatten()]
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(activations[activation]())
    return nn.Sequential(*layers)


def as_tensors(x, y, device="cpu"):
    """NumPy arrays to (float32, int64) torch tensors on ``device``."""
    import torch

    x = torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device)
    y = torch.as_tensor(np.asarray(y), dtype=torch.int64, device=device)
    if len(x) != len(y):
        raise ValueError(f"x and y have different lengths: {len(x)} vs {len(y)}")
    return x, y


def accuracy(model, x, y, batch_size: int = 2048) -> float:
    """Fraction of correct arg-max predictions of ``model`` on tensors ``x, y`` (eval mode, no grad)."""
    import torch

    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            correct += (model(x[i : i + batch_size]).argmax(dim=1) == y[i : i + batch_size]).sum().item()
    model.train(was_training)
    return correct / len(x)


def train_classifier(
    model,
    optimizer,
    x_train,
    y_train,
    *,
    x_val=None,
    y_val=None,
    epochs: int = 1,
    batch_size: int = 64,
    loss_fn=None,
    seed: int = 0,
    max_steps: int | None = None,
    progress: bool = True,
    name: str | None = None,
) -> History:
    """Train ``model`` with mini-batches and return its :class:`History`.

    ``optimizer`` is a ``torch.optim.Optimizer`` or a companion ``GradientTransformation`` (wrapped in
    :class:`~companion.optim.torch_adapter.ReferenceOptimizer`). ``x_train, y_train`` are tensors on the
    model's device. Records ``loss`` and ``seconds`` every step, ``train_loss`` (epoch mean) and, when
    validation data is given, ``val_accuracy`` every epoch. A non-finite loss (or gradient) stops training and is
    recorded in ``history.meta["diverged_at_step"]``.
    """
    import torch
    from tqdm import tqdm

    from .optim.base import GradientTransformation, NonFiniteGradientError

    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    if isinstance(optimizer, GradientTransformation):
        from .optim.torch_adapter import ReferenceOptimizer

        optimizer = ReferenceOptimizer([p for p in model.parameters() if p.requires_grad], optimizer)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch optimizer or a GradientTransformation, got {type(optimizer).__name__}")
    if len(x_train) != len(y_train):
        raise ValueError(f"x_train and y_train have different lengths: {len(x_train)} vs {len(y_train)}")
    loss_fn = loss_fn or torch.nn.functional.cross_entropy
    history = History(name)
    generator = torch.Generator().manual_seed(seed)
    n = len(x_train)
    steps_per_epoch = -(-n // batch_size)
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    bar = tqdm(total=total, desc=name or "training", disable=not progress, mininterval=2.0, leave=False)
    step, start = 0, time.perf_counter()
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator).to(x_train.device)
        epoch_loss, seen = 0.0, 0
        for i in range(0, n, batch_size):
            batch = order[i : i + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            loss.backward()
            step += 1
            value = loss.item()
            diverged = not np.isfinite(value)
            try:
                optimizer.step()
            except NonFiniteGradientError:  # the reference optimizers refuse NaN/inf gradients
                diverged = True
            history.log(step, loss=value, seconds=time.perf_counter() - start)
            bar.update(1)
            if diverged:  # record where, and stop (typically a too-large learning rate)
                history.meta["diverged_at_step"] = step
                total = step
                break
            epoch_loss += value * len(batch)
            seen += len(batch)
            if step >= total:
                break
        if seen:
            history.log(step, train_loss=epoch_loss / seen, epoch=epoch + 1)
        if x_val is not None:
            history.log(step, val_accuracy=accuracy(model, x_val, y_val))
        if step >= total:
            break
    bar.close()
    return history
