r"""The course's one supervised training loop, and the evaluation pass that goes with it.

One epoch is one pass over a shuffled training set in mini-batches (:func:`batches`); each step
computes the loss :math:`J(\theta; B_t)` on batch :math:`B_t`, back-propagates, and lets the optimizer
step,

.. math:: \theta_{t+1} = \theta_t + \mathrm{update}(\nabla_\theta J(\theta_t; B_t)),

where the update is whatever the optimizer does: a ``torch.optim`` optimizer, or a ``companion.optim``
chain, in which schedules and clipping are links (optax's way), e.g.
``optim.chain(clipping.clip_by_global_norm(1.0), optim.adam(schedules.cosine_decay(1e-3, 500)))``.

What the chapters vary is passed in, never copied into a new loop:

- ``loss_fn(outputs, targets)``: penalties (``cross_entropy + l2_penalty(model)``), distillation
  (``targets`` is then a tuple such as ``(labels, teacher_logits)``, indexed together with the images);
- ``transform(inputs)``: data augmentation of each mini-batch;
- ``callbacks``: objects with ``on_step_begin``/``on_step``/``on_epoch`` methods (:class:`Callback`),
  for pruning masks, early stopping, a torch ``lr_scheduler``, the LR-range test's stop.

**Divergence.** A non-finite loss, or a non-finite gradient refused by a ``companion.optim`` optimizer,
ends training: the step is logged with its loss, ``history.meta["diverged_at_step"]`` records it, the
callbacks' ``on_step`` still sees it (``state.diverged`` is true), and no further step is taken. Nothing
is raised: a diverging learning rate is a result the chapters plot.

**Progress** is counted in optimizer steps.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ._checks import check_choice, check_non_negative_int, check_positive_int
from .history import History
from .progress import progress_bar

__all__ = [
    "Callback",
    "LambdaCallback",
    "TrainingState",
    "accuracy",
    "as_tensors",
    "batches",
    "evaluate",
    "mlp",
    "mnist_tensors",
    "train_classifier",
]


def mlp(sizes=(784, 128, 10), activation: str = "relu"):
    """A multilayer perceptron ``Flatten -> Linear -> act -> ... -> Linear`` (logits out, no softmax)."""

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

    x = torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device)
    y = torch.as_tensor(np.asarray(y), dtype=torch.int64, device=device)
    if len(x) != len(y):
        raise ValueError(f"x and y have different lengths: {len(x)} vs {len(y)}")
    return x, y


class MnistTensors(NamedTuple):
    """MNIST splits as tensors; unpack as ``x_train, y_train, x_val, y_val, x_test, y_test``."""

    x_train: object
    y_train: object
    x_val: object
    y_val: object
    x_test: object
    y_test: object


_MNIST_SHAPES = {"image": (28, 28), "channel": (1, 28, 28), "flat": (784,)}


def mnist_tensors(train: int, *, val: int = 0, test: int = 10_000, shape: str = "image",
                  device="cpu") -> MnistTensors:
    """The course's MNIST subsets as float32 images in [0, 1] and int64 labels on ``device``.

    ``x_train`` holds the first ``train`` training images; ``x_val`` the next ``val`` ones (a validation
    split carved from the training file, never from the test set; ``None`` when ``val=0``); ``x_test``
    the first ``test`` test images (all 10,000 by default; ``None`` when ``test=0``). ``shape`` is
    ``"image"`` (n, 28, 28), ``"channel"`` (n, 1, 28, 28, for convolutions) or ``"flat"`` (n, 784).
    """
    from .data import load_mnist

    train = check_positive_int("train", train)
    val = check_non_negative_int("val", val)
    test = check_non_negative_int("test", test)
    if train + val > 60_000:
        raise ValueError(f"Invalid train + val: {train} + {val} (MNIST has 60,000 training images)")
    if test > 10_000:
        raise ValueError(f"Invalid test: {test} (MNIST has 10,000 test images)")
    if shape not in _MNIST_SHAPES:
        raise ValueError(f"Unknown shape: {shape!r} (expected one of {', '.join(map(repr, _MNIST_SHAPES))})")

    def tensors(images, labels):
        return as_tensors(images.reshape((len(images),) + _MNIST_SHAPES[shape]), labels, device)

    images, labels = load_mnist("train", limit=train + val)
    x_train, y_train = tensors(images[:train], labels[:train])
    x_val, y_val = tensors(images[train:], labels[train:]) if val else (None, None)
    x_test, y_test = tensors(*load_mnist("test", limit=test)) if test else (None, None)
    return MnistTensors(x_train, y_train, x_val, y_val, x_test, y_test)


def batches(n: int, batch_size: int, *, seed: int = 0, epochs: int | None = None, drop_last: bool = False):
    """Yield ``(epoch, index)`` for shuffled mini-batches of ``range(n)``, epoch after epoch.

    Every epoch draws a new permutation from one ``torch.Generator`` seeded with ``seed``, so the order
    depends on ``seed`` alone (two runs that differ only in their optimizer see the same batches).
    ``index`` is a CPU ``int64`` tensor; the last batch of an epoch is smaller unless ``drop_last``.
    ``epochs=None`` goes on for ever. Epochs count from 0.
    """

    n = check_positive_int("n", n)
    batch_size = check_positive_int("batch_size", batch_size)
    if epochs is not None:
        epochs = check_positive_int("epochs", epochs)
    if drop_last and batch_size > n:
        raise ValueError(f"Invalid batch_size: {batch_size} (larger than the {n} examples, with drop_last)")
    stop = n - batch_size + 1 if drop_last else n
    generator = torch.Generator().manual_seed(seed)
    epoch = 0
    while epochs is None or epoch < epochs:
        order = torch.randperm(n, generator=generator)
        for i in range(0, stop, batch_size):
            yield epoch, order[i : i + batch_size]
        epoch += 1


def evaluate(model, x, y, metrics=("loss", "accuracy"), *, loss_fn=None, batch_size: int = 2048) -> dict:
    """``{metric: value}`` of ``model`` on ``x, y``: one pass in eval mode, without gradients.

    ``"loss"`` is the mean of ``loss_fn`` (default: cross-entropy; it must accept ``reduction="sum"``)
    over the examples, summed batch by batch; ``"accuracy"`` the share of correct arg-max predictions. The model's
    train/eval mode is restored afterwards.
    """

    _check_metrics(metrics)
    batch_size = check_positive_int("batch_size", batch_size)
    if len(x) != len(y):
        raise ValueError(f"x and y have different lengths: {len(x)} vs {len(y)}")
    if len(x) == 0:
        raise ValueError("x is empty: nothing to evaluate")
    loss_fn = loss_fn or F.cross_entropy
    was_training = model.training
    model.eval()
    loss, correct = 0.0, 0
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                logits = model(x[i : i + batch_size])
                if "loss" in metrics:
                    loss += loss_fn(logits, y[i : i + batch_size], reduction="sum").item()
                if "accuracy" in metrics:
                    correct += (logits.argmax(dim=1) == y[i : i + batch_size]).sum().item()
    finally:
        model.train(was_training)
    values = {"loss": loss / len(x), "accuracy": correct / len(x)}
    return {m: values[m] for m in metrics}


def _check_metrics(metrics) -> None:
    if isinstance(metrics, str) or not metrics or any(m not in ("loss", "accuracy") for m in metrics):
        raise ValueError(f"Unknown metrics: {metrics!r} (expected a non-empty tuple of 'loss' and/or 'accuracy')")


def accuracy(model, x, y, batch_size: int = 2048) -> float:
    """Fraction of correct arg-max predictions of ``model`` on tensors ``x, y`` (:func:`evaluate`)."""
    return evaluate(model, x, y, ("accuracy",), batch_size=batch_size)["accuracy"]


@dataclass
class TrainingState:
    """What the loop shows its callbacks: read everything, change the model or optimizer if you must."""

    model: object
    optimizer: object
    history: History
    step: int = 0  #: steps taken, a diverged one included (during ``on_step_begin``: the steps before this one)
    epoch: int = 0  #: epochs completed (during an epoch: the one under way, counting from 0)
    batch: object = None  #: the index tensor of the current mini-batch
    loss: float = float("nan")  #: the current mini-batch's loss
    diverged: bool = False  #: the current loss or gradient was not finite
    meta: dict = field(default_factory=dict)  #: free space for callbacks


class Callback:
    """Hooks of :func:`train_classifier`; override the ones you need. Returning ``True`` stops training.

    - ``on_step_begin(state)``: before the mini-batch's forward pass (e.g. update pruning masks);
    - ``on_step(state)``: after the optimizer step and its logging (e.g. re-apply masks, step a
      ``torch.optim.lr_scheduler``, stop on a rule of your own);
    - ``on_epoch(state)``: after an epoch and its validation (e.g. early stopping).
    """

    def on_step_begin(self, state: TrainingState):
        return None

    def on_step(self, state: TrainingState):
        return None

    def on_epoch(self, state: TrainingState):
        return None


class LambdaCallback(Callback):
    """A :class:`Callback` from plain functions of the state, as ``keras.callbacks.LambdaCallback``."""

    def __init__(self, on_step_begin=None, on_step=None, on_epoch=None):
        for hook_name, hook in (("on_step_begin", on_step_begin), ("on_step", on_step), ("on_epoch", on_epoch)):
            if hook is not None and not callable(hook):
                raise TypeError(f"{hook_name} must be callable, got {type(hook).__name__}")
        self._hooks = {"on_step_begin": on_step_begin, "on_step": on_step, "on_epoch": on_epoch}

    def on_step_begin(self, state):
        return self._hooks["on_step_begin"](state) if self._hooks["on_step_begin"] else None

    def on_step(self, state):
        return self._hooks["on_step"](state) if self._hooks["on_step"] else None

    def on_epoch(self, state):
        return self._hooks["on_epoch"](state) if self._hooks["on_epoch"] else None


def _call(callbacks, hook: str, state: TrainingState) -> bool:
    stop = False
    for callback in callbacks:  # every callback runs, even when an earlier one asks to stop
        stop = bool(getattr(callback, hook)(state)) or stop
    return stop


def _as_optimizer(optimizer, model):
    from .optim.base import GradientTransformation

    if isinstance(optimizer, GradientTransformation):
        from .optim.torch_adapter import ReferenceOptimizer

        return ReferenceOptimizer([p for p in model.parameters() if p.requires_grad], optimizer)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim optimizer or a companion.optim transformation, got {type(optimizer).__name__}"
        )
    return optimizer


#: What ``train_classifier(precision=...)`` accepts.
PRECISIONS = ("float32", "bfloat16", "float16")


def _autocast(precision: str, device):
    """``torch.autocast`` to ``precision`` on ``device``'s type, or nothing for float32."""
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=getattr(torch, precision))


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
    transform=None,
    sampler=None,
    collate=None,
    metrics=("accuracy",),
    callbacks=(),
    seed: int = 0,
    max_steps: int | None = None,
    drop_last: bool = False,
    precision: str = "float32",
    accumulation_steps: int = 1,
    progress: bool = True,
    name: str | None = None,
) -> History:
    """Train ``model`` with mini-batches and return its :class:`~companion.history.History`.

    ``optimizer``: a ``torch.optim.Optimizer``, or a ``companion.optim`` transformation (wrapped in
    :class:`~companion.optim.torch_adapter.ReferenceOptimizer` over the parameters that require a
    gradient). ``x_train`` is a tensor on the model's device; ``y_train`` a tensor or a tuple of tensors
    of the same length, indexed together with ``x_train`` and handed to ``loss_fn(outputs, targets)``
    (default: cross-entropy). ``transform`` maps each mini-batch of inputs before the forward pass.

    For data that is not one tensor (reviews of different lengths, say): ``sampler(epoch)`` returns the
    epoch's mini-batches as integer index arrays (instead of :func:`batches`), and
    ``collate(x_train, index)`` builds the model's input, a tensor or a tuple of tensors passed as
    ``model(*inputs)``; validate such data in a callback (``x_val`` must be a tensor).

    Logged every step: ``loss`` and ``seconds`` (since the start); every epoch, at its last step:
    ``epoch`` (counting from 1), ``train_loss`` (mean of the epoch's finite mini-batch losses) and, when
    validation data is given, ``val_<metric>`` for each of ``metrics`` (:func:`evaluate`; ``val_loss`` is
    the cross-entropy). Training stops after ``epochs``, after ``max_steps`` steps, when a callback
    returns ``True``, or at the first non-finite loss (or gradient, with a ``companion.optim`` optimizer;
    ``history.meta["diverged_at_step"]``). An epoch cut short by a stop is logged like the others (its
    validation and ``on_epoch`` included) if at least one step of it ran.

    ``precision``: ``"float32"``; ``"bfloat16"`` or ``"float16"`` run the forward pass and the loss
    under ``torch.autocast`` on the data's device (weights, gradients and the optimizer stay float32);
    ``"float16"`` also scales the loss with a ``torch.amp.GradScaler`` (steps whose gradients overflow
    are skipped; ``history.meta["skipped_steps"]`` counts them). ``accumulation_steps=k`` splits each
    mini-batch into ``k`` micro-batches and sums their gradients, each loss weighted by its share of the
    batch, before one optimizer step: the same step as the whole batch at once, with a ``k`` times
    smaller peak of activation memory (under ``DistributedDataParallel`` the gradients are
    all-reduced once, at the last micro-batch).
    """

    from .optim.base import NonFiniteGradientError

    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    seed = check_non_negative_int("seed", seed)
    if max_steps is not None:
        max_steps = check_positive_int("max_steps", max_steps)
    accumulation_steps = check_positive_int("accumulation_steps", accumulation_steps)
    precision = check_choice("precision", precision, PRECISIONS)
    optimizer = _as_optimizer(optimizer, model)
    # SAM and L-BFGS evaluate the loss again inside step(): they get a closure over the same batch
    needs_closure = getattr(optimizer, "requires_closure", False) or isinstance(optimizer, torch.optim.LBFGS)
    if needs_closure and (accumulation_steps != 1 or precision != "float32"):
        raise ValueError(f"Invalid accumulation_steps/precision: {type(optimizer).__name__} re-evaluates the loss "
                         "inside step(); use accumulation_steps=1 and precision='float32' with it")
    targets = y_train if isinstance(y_train, tuple) else (y_train,)
    for i, target in enumerate(targets):
        where = "y_train" if len(targets) == 1 else f"y_train[{i}]"
        if not torch.is_tensor(target):
            raise TypeError(f"{where} must be a torch tensor (see companion.training.as_tensors), got {type(target).__name__}")
        if len(target) != len(x_train):
            raise ValueError(f"x_train and {where} have different lengths: {len(x_train)} vs {len(target)}")
    if collate is None and not torch.is_tensor(x_train):
        raise TypeError(f"x_train must be a torch tensor (see companion.training.as_tensors), or pass a collate "
                        f"function, got {type(x_train).__name__}")
    if torch.is_tensor(x_train) and any(t.device != x_train.device for t in targets):
        raise ValueError(f"x_train is on {x_train.device} but y_train on {targets[0].device}: put them on one device")
    if len(x_train) == 0:
        raise ValueError("x_train is empty: nothing to train on")
    if (x_val is None) != (y_val is None):
        raise ValueError("give both x_val and y_val, or neither")
    if x_val is not None:
        if not (torch.is_tensor(x_val) and torch.is_tensor(y_val)):
            raise TypeError(f"x_val and y_val must be torch tensors, got {type(x_val).__name__} and {type(y_val).__name__}")
        if len(x_val) != len(y_val) or len(x_val) == 0:
            raise ValueError(f"x_val and y_val must be non-empty and of one length: {len(x_val)} vs {len(y_val)}")
        _check_metrics(metrics)
    for argument, value in (("loss_fn", loss_fn), ("transform", transform), ("collate", collate)):
        if value is not None and not callable(value):
            raise TypeError(f"{argument} must be callable, got {type(value).__name__}")
    if callbacks is None:
        callbacks = ()
    if isinstance(callbacks, Callback) or not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of callbacks, got {type(callbacks).__name__}")
    callbacks = list(callbacks)
    for callback in callbacks:
        if not all(callable(getattr(callback, hook, None)) for hook in ("on_step_begin", "on_step", "on_epoch")):
            raise TypeError("callbacks must have on_step_begin, on_step and on_epoch methods (subclass "
                            f"companion.training.Callback), got {type(callback).__name__}")
    loss_fn = loss_fn or F.cross_entropy

    n = len(x_train)
    if sampler is None:
        steps = epochs * (n // batch_size if drop_last else -(-n // batch_size))
        plan = batches(n, batch_size, seed=seed, epochs=epochs, drop_last=drop_last)
    elif callable(sampler):
        def epoch_plan(e):
            indices = sampler(e)
            if not isinstance(indices, (list, tuple)):
                raise TypeError(f"sampler({e}) must return a list of index arrays, got {type(indices).__name__}")
            out = []
            for index in indices:
                index = np.asarray(index)
                if index.ndim != 1 or len(index) == 0 or not np.issubdtype(index.dtype, np.integer):
                    raise ValueError(f"sampler({e}) returned a batch that is not a non-empty 1-D integer array: {index!r}")
                out.append(torch.as_tensor(index, dtype=torch.int64))
            return out

        if max_steps is None:  # every epoch's plan, to know the number of steps
            epoch_plans = [epoch_plan(e) for e in range(epochs)]
            steps = sum(len(p) for p in epoch_plans)
            plan = ((e, index) for e, p in enumerate(epoch_plans) for index in p)
        else:  # only as many epochs as the steps need
            steps = max_steps
            plan = ((e, index) for e in range(epochs) for index in epoch_plan(e))
    else:
        raise TypeError(f"sampler must be a callable epoch -> list of index arrays, got {type(sampler).__name__}")
    total = steps if max_steps is None else min(max_steps, steps)
    device = x_train.device if torch.is_tensor(x_train) else targets[0].device
    scaler = torch.amp.GradScaler(device.type) if precision == "float16" else None
    history = History(name)
    state = TrainingState(model, optimizer, history)
    bar = progress_bar(total, name or "training", enabled=progress)
    start = time.perf_counter()
    epoch_loss, seen, epoch_steps, last_epoch, closed = 0.0, 0, 0, 0, False
    model.train()
    for epoch, index in plan:
        if epoch != last_epoch:  # the previous epoch has ended
            if _end_epoch(state, epoch_loss, seen, x_val, y_val, metrics, callbacks):
                closed = True
                break
            epoch_loss, seen, epoch_steps, last_epoch = 0.0, 0, 0, epoch
        state.epoch, state.batch, state.diverged = epoch, index.to(device), False
        if _call(callbacks, "on_step_begin", state):
            break
        batch = state.batch
        optimizer.zero_grad(set_to_none=True)
        parts = [part for part in batch.tensor_split(accumulation_steps) if len(part)]
        value = 0.0
        for k, part in enumerate(parts):
            inputs = x_train[part] if collate is None else collate(x_train, part)
            if transform is not None:
                inputs = transform(inputs)
            part_targets = targets[0][part] if len(targets) == 1 else tuple(t[part] for t in targets)
            # DDP all-reduces the gradients once, after the last micro-batch
            last = k == len(parts) - 1
            sync = model.no_sync() if not last and hasattr(model, "no_sync") else contextlib.nullcontext()
            with sync:
                with _autocast(precision, device):
                    outputs = model(*inputs) if isinstance(inputs, tuple) else model(inputs)
                    loss = loss_fn(outputs, part_targets)
                if len(parts) > 1:  # the mean over the batch is the share-weighted sum of the parts' means
                    loss = loss * (len(part) / len(batch))
                (scaler.scale(loss) if scaler is not None else loss).backward()
            value += loss.item()
        state.diverged = not np.isfinite(value)
        if not state.diverged:
            try:
                if scaler is not None:
                    scale_before = scaler.get_scale()
                    scaler.step(optimizer)
                    scaler.update()
                    if scaler.get_scale() < scale_before:  # an overflow: the step was skipped
                        history.meta["skipped_steps"] = history.meta.get("skipped_steps", 0) + 1
                elif needs_closure:
                    optimizer.step(lambda: _recompute_loss(model, optimizer, inputs, part_targets, loss_fn))
                else:
                    optimizer.step()
            except NonFiniteGradientError:  # the reference optimizers refuse NaN/inf gradients
                state.diverged = True
        state.step += 1
        epoch_steps += 1
        state.loss = value
        history.log(state.step, loss=value, seconds=time.perf_counter() - start)
        bar.update(1)
        if not state.diverged:
            epoch_loss += value * len(batch)
            seen += len(batch)
        stop = _call(callbacks, "on_step", state)
        if state.diverged:  # typically a too-large learning rate: record where, and stop
            history.meta["diverged_at_step"] = state.step
            break
        if stop or state.step >= total:
            break
    if not closed and epoch_steps:  # the last epoch, complete or cut short, is logged like the others
        _end_epoch(state, epoch_loss, seen, x_val, y_val, metrics, callbacks)
    bar.close()
    return history


def _recompute_loss(model, optimizer, inputs, targets, loss_fn):
    """The closure of an optimizer that re-evaluates the loss (SAM, L-BFGS): the same batch, fresh gradients."""
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(*inputs) if isinstance(inputs, tuple) else model(inputs), targets)
    loss.backward()
    return loss


def _end_epoch(state, epoch_loss, seen, x_val, y_val, metrics, callbacks) -> bool:
    """Log the epoch's figures, then ask the callbacks whether to stop."""
    state.history.log(state.step, epoch=state.epoch + 1)
    if seen:
        state.history.log(state.step, train_loss=epoch_loss / seen)
    if x_val is not None:
        values = evaluate(state.model, x_val, y_val, metrics)
        state.history.log(state.step, **{f"val_{k}": v for k, v in values.items()})
    state.epoch += 1
    return _call(callbacks, "on_epoch", state)
