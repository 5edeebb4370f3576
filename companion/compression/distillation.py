r"""Knowledge distillation: a small *student* learns from a large *teacher*'s softened outputs.

Soft targets (Hinton, Vinyals and Dean, 2015, "Distilling the Knowledge in a Neural Network") are the
teacher's class probabilities at a temperature :math:`T`,

.. math::

    p_i^{(T)} = \operatorname{softmax}(z / T)_i = \frac{\exp(z_i / T)}{\sum_j \exp(z_j / T)},

which for :math:`T > 1` spreads probability over the wrong classes and exposes how the teacher ranks
them ("dark knowledge"). The student with logits :math:`z_s` is trained on

.. math::

    L = \alpha \, \mathrm{CE}\bigl(y, \operatorname{softmax}(z_s)\bigr)
        + (1 - \alpha) \, T^2 \, \mathrm{KL}\bigl(\operatorname{softmax}(z_t / T) \,\|\,
          \operatorname{softmax}(z_s / T)\bigr),

averaged over the batch. The gradient of the KL term with respect to :math:`z_s` is
:math:`(p_s^{(T)} - p_t^{(T)}) / T`, and for large :math:`T` its size shrinks as :math:`1/T^2`; the
factor :math:`T^2` restores it, so that :math:`\alpha` keeps the same meaning at every temperature.
Compressing a model into a smaller one by training it on the big model's outputs goes back to
Buciluǎ, Caruana and Niculescu-Mizil (2006), "Model Compression".

The chapter's recipe (a CNN teacher, a one-hidden-layer MLP student, a 10,000-image subset of MNIST)
lives in :class:`DistillationConfig`, so that the notebook and ``python -m companion.bench distillation`` run the
same thing. Checked in ``tests/test_compression_distillation.py``: the loss against a direct
computation with ``torch.nn.functional.kl_div``/``cross_entropy`` and against Keras 3's
``KLDivergence``, the :math:`T^2` gradient scaling, the limits :math:`\alpha \in \{0, 1\}`, and the
argument checks.
"""

from __future__ import annotations

from dataclasses import dataclass
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import optim
from .._checks import check_in_range, check_positive, check_positive_int
from ..history import History

__all__ = [
    "DistillationConfig",
    "distillation_loss",
    "predict_logits",
    "soft_targets",
    "student_mlp",
    "teacher_cnn",
    "train_student",
    "train_teacher",
]


@dataclass(frozen=True)
class DistillationConfig:
    """The hyperparameters of the chapter's experiment, shared by the notebook and the benchmark.

    The teacher is :func:`teacher_cnn`, trained with Adam on ``n_train`` MNIST images for
    ``teacher_epochs``; the student is :func:`student_mlp` with ``student_hidden`` units, trained
    twice with the same initialisation, data order, optimizer and epochs: once on the labels alone
    (from scratch) and once with :func:`distillation_loss` at ``temperature`` and ``alpha``.
    """

    n_train: int = 10_000
    teacher_epochs: int = 6
    student_hidden: int = 128
    student_epochs: int = 80
    batch_size: int = 64
    learning_rate: float = 1e-3
    temperature: float = 4.0
    alpha: float = 0.1

    def __post_init__(self):
        for name in ("n_train", "teacher_epochs", "student_hidden", "student_epochs", "batch_size"):
            check_positive_int(name, getattr(self, name))
        check_positive("learning_rate", self.learning_rate)
        _check_temperature(self.temperature)
        check_in_range("alpha", self.alpha, 0.0, 1.0, high_inclusive=True)


def _check_temperature(temperature) -> float:
    return check_positive("temperature", temperature)


def soft_targets(logits, temperature: float):
    r"""Class probabilities at temperature :math:`T`: :math:`\operatorname{softmax}(z / T)` over the last axis.

    :math:`T = 1` is the ordinary softmax; :math:`T > 1` flattens it (towards uniform as
    :math:`T \to \infty`), :math:`T < 1` sharpens it (towards one-hot).
    """

    temperature = _check_temperature(temperature)
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point tensor, got dtype {logits.dtype}")
    return torch.softmax(logits / temperature, dim=-1)


def distillation_loss(student_logits, teacher_logits, labels, *, temperature: float, alpha: float):
    r"""The loss of Hinton et al. (2015), averaged over the batch.

    .. math::

        L = \alpha\,\mathrm{CE}(y, \operatorname{softmax}(z_s))
            + (1-\alpha)\,T^2\,\mathrm{KL}(\operatorname{softmax}(z_t/T)\,\|\,\operatorname{softmax}(z_s/T))

    ``student_logits`` and ``teacher_logits`` have shape ``(batch, classes)`` (logits, no softmax);
    ``labels`` are integer class indices of shape ``(batch,)``. No gradient flows into the teacher's
    logits (they are detached). ``alpha=1`` is plain cross-entropy on the labels; ``alpha=0`` is pure
    distillation. Note the direction of the KL divergence: the teacher's distribution comes first, as
    in ``keras.losses.KLDivergence()(teacher_probs, student_probs)`` and
    ``F.kl_div(student_log_probs, teacher_probs)``.
    """

    temperature = _check_temperature(temperature)
    alpha = check_in_range("alpha", alpha, 0.0, 1.0, high_inclusive=True)
    for name, value in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch.Tensor, got {type(value).__name__}")
        if value.ndim != 2:
            raise ValueError(f"{name} must have shape (batch, classes), got {tuple(value.shape)}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student_logits and teacher_logits must have the same shape, got {tuple(student_logits.shape)} "
            f"and {tuple(teacher_logits.shape)}"
        )
    if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be an integer torch.Tensor of class indices, got {getattr(labels, 'dtype', type(labels).__name__)}")
    n, classes = student_logits.shape
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match the logits, got {tuple(labels.shape)}")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        raise ValueError(f"labels must be in [0, {classes}), got values in [{int(labels.min())}, {int(labels.max())}]")

    hard = F.cross_entropy(student_logits, labels)
    if alpha == 1.0:
        return hard
    log_p_student = F.log_softmax(student_logits / temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)
    # KL(p_t || p_s) = sum_i p_t,i (log p_t,i - log p_s,i); log-probabilities avoid 0 * log 0.
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1).mean()
    return alpha * hard + (1.0 - alpha) * temperature**2 * kl


def teacher_cnn():
    """The teacher: a LeNet-style CNN, 1,084,362 parameters (two 5x5 convolutions, 16 and 32 channels,
    each followed by ReLU and 2x2 max-pooling; a 2,048-unit hidden layer with dropout 0.5; 10 logits).

    Input: images of shape ``(batch, 1, 28, 28)``.
    """

    return nn.Sequential(
        nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 2048), nn.ReLU(), nn.Dropout(0.5), nn.Linear(2048, 10),
    )  # fmt: skip


def student_mlp(hidden: int = 128):
    """The student: ``Flatten -> Linear(784, hidden) -> ReLU -> Linear(hidden, 10)``
    (``hidden=128``: 101,770 parameters, 10.7x fewer than :func:`teacher_cnn`)."""
    from ..training import mlp

    return mlp((784, check_positive_int("hidden", hidden), 10))


def predict_logits(model, x, batch_size: int = 2048):
    """The model's logits on ``x`` in evaluation mode, without gradients (computed once, then reused)."""

    batch_size = check_positive_int("batch_size", batch_size)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out



def train_teacher(model, x_train, y_train, recipe: DistillationConfig = DistillationConfig(), *, seed: int = 0,
                  x_val=None, y_val=None, optimizer=None, progress: bool = True, name: str = "teacher") -> History:
    """Train the teacher on the labels for ``recipe.teacher_epochs`` with ``optimizer`` (default: the
    reference Adam of ``companion.optim`` at ``recipe.learning_rate``)."""
    from ..training import train_classifier

    return train_classifier(model, optimizer or optim.adam(recipe.learning_rate), x_train, y_train, x_val=x_val, y_val=y_val,
                            epochs=recipe.teacher_epochs, batch_size=recipe.batch_size, seed=seed,
                            progress=progress, name=name)


def train_student(model, x_train, y_train, recipe: DistillationConfig = DistillationConfig(), *,
                  teacher_logits=None, seed: int = 0, x_val=None, y_val=None, optimizer=None,
                  progress: bool = True, name: str | None = None) -> History:
    """Train a student for ``recipe.student_epochs``, with or without a teacher.

    Without ``teacher_logits`` the loss is cross-entropy on the labels (the student "from scratch");
    with them (precomputed on ``x_train``, one row per image) it is :func:`distillation_loss` at the
    recipe's ``temperature`` and ``alpha`` (change them with ``dataclasses.replace(recipe, ...)``): the
    teacher's logits travel with the labels as the targets of :func:`companion.training.train_classifier`.
    ``optimizer`` defaults to the reference Adam at ``recipe.learning_rate``. The mini-batch order depends
    only on ``seed``, so both runs see the same batches. Records what ``train_classifier`` records.
    """

    from ..training import train_classifier

    if teacher_logits is None:
        targets, loss_fn = y_train, F.cross_entropy
    else:
        if not torch.is_tensor(teacher_logits):
            raise TypeError(f"teacher_logits must be a torch tensor (see predict_logits), got {type(teacher_logits).__name__}")
        if len(teacher_logits) != len(x_train):
            raise ValueError(f"teacher_logits must have one row per training image: {len(teacher_logits)} vs {len(x_train)}")
        targets = (y_train, teacher_logits.detach())

        def loss_fn(student_logits, labels_and_teacher_logits):
            labels, batch_teacher_logits = labels_and_teacher_logits
            return distillation_loss(student_logits, batch_teacher_logits, labels,
                                     temperature=recipe.temperature, alpha=recipe.alpha)

    return train_classifier(model, optimizer or optim.adam(recipe.learning_rate), x_train, targets, x_val=x_val, y_val=y_val,
                            epochs=recipe.student_epochs, batch_size=recipe.batch_size, loss_fn=loss_fn, seed=seed,
                            progress=progress, name=name)
