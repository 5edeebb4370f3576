r"""Low-rank adaptation (LoRA) and its 4-bit variant (QLoRA), and the transfer recipe of the chapter.

LoRA (Hu et al., 2021) freezes a pretrained weight :math:`W_0 \in \mathbb R^{d_\text{out}\times d_\text{in}}`
and learns a low-rank update beside it:

.. math::
    h = W_0 x + b + \frac{\alpha}{r}\, B A x, \qquad
    A \in \mathbb R^{r\times d_\text{in}},\ B \in \mathbb R^{d_\text{out}\times r},\ r \ll \min(d_\text{in}, d_\text{out}).

:math:`A` starts Kaiming-uniform (as in ``loralib`` and ``peft``) and :math:`B` starts at zero, so
:math:`BA = 0` and the adapted model is *exactly* the pretrained one at step 0. Only :math:`A` and
:math:`B` are trained: :math:`r(d_\text{in} + d_\text{out})` numbers instead of
:math:`d_\text{in} d_\text{out}`. The scale :math:`\alpha/r` keeps the size of the update roughly
independent of the rank, so a learning rate tuned at one rank still works at another.

After training the update can be *merged*: :math:`W = W_0 + \frac{\alpha}{r} BA` is one ordinary
``nn.Linear`` again, with no extra latency at inference; *unmerging* subtracts it back.

QLoRA (Dettmers et al., 2023) stores the frozen :math:`W_0` in 4-bit NormalFloat
(:mod:`companion.compression.nf4`), dequantizes it on the fly in every forward pass, and keeps the
adapters in full precision: :math:`h = \operatorname{dq}(\operatorname{NF4}(W_0))\, x + b + \frac{\alpha}{r} BAx`.
Gradients flow through the dequantized weight to the input, never into it.

Checked in ``tests/test_compression_lora.py``: the output at initialization equals the base layer's,
the merged forward equals the unmerged one, unmerge restores :math:`W_0`, only adapters (and the new
head) receive gradients, a short training run lowers the loss, the QLoRA base equals
``dequantize_nf4(quantize_nf4(W0))``, and bad arguments raise.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .._checks import check_in_range, check_positive, check_positive_int
from .nf4 import NF4Tensor, dequantize_nf4, quantize_nf4

__all__ = [
    "LoRALinear",
    "QLoRALinear",
    "TransferConfig",
    "TransferResult",
    "apply_lora",
    "count_all_parameters",
    "build_mlp",
    "digit_subset",
    "finetune",
    "lora_parameter_count",
    "merge_lora",
    "pretrain",
    "train",
    "trainable_parameters",
]


def _check_rank(rank, base: nn.Linear) -> int:
    rank = check_positive_int("rank", rank)
    limit = min(base.in_features, base.out_features)
    if rank > limit:
        raise ValueError(
            f"Invalid rank: {rank} (must be <= min(in_features, out_features) = {limit} for "
            f"Linear({base.in_features}, {base.out_features}))"
        )
    return rank


class LoRALinear(nn.Module):
    r"""``nn.Linear`` plus a trainable low-rank update: :math:`h = W_0 x + b + \frac{\alpha}{r} B A\, \mathrm{drop}(x)`.

    ``base`` is wrapped, not copied: its weight and bias are frozen (``requires_grad=False``).
    ``alpha`` defaults to ``rank`` (scale 1). ``dropout`` is applied to the adapter's input only, as in
    ``peft``. :meth:`merge` folds :math:`\frac{\alpha}{r}BA` into ``base.weight`` (``merged`` is then
    True and the forward pass is the plain ``base``); :meth:`unmerge` subtracts it again.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be a torch.nn.Linear, got {type(base).__name__}")
        self.rank = _check_rank(rank, base)
        self.alpha = float(self.rank) if alpha is None else check_positive("alpha", alpha)
        self.scaling = self.alpha / self.rank
        check_in_range("dropout", dropout, 0.0, 1.0)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.base = self._frozen_base(base)
        weight = base.weight
        self.lora_A = nn.Parameter(torch.empty(self.rank, self.in_features, device=weight.device, dtype=weight.dtype))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, self.rank, device=weight.device, dtype=weight.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # the init of loralib and peft
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    def _frozen_base(self, base: nn.Linear):
        for p in base.parameters():
            p.requires_grad_(False)
        return base

    def delta_weight(self) -> torch.Tensor:
        r"""The update :math:`\frac{\alpha}{r} B A`, shaped like the base weight."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def base_weight(self) -> torch.Tensor:
        """The frozen weight :math:`W_0` (including the update while merged)."""
        return self.base.weight

    def _adapter(self, x):
        return F.linear(F.linear(self.dropout(x), self.lora_A), self.lora_B) * self.scaling

    def forward(self, x):
        if self.merged:
            return self.base(x)
        return self.base(x) + self._adapter(x)

    @torch.no_grad()
    def merge(self) -> "LoRALinear":
        """Fold the update into the base weight, in place: :math:`W \\leftarrow W_0 + \\frac{\\alpha}{r}BA`."""
        if self.merged:
            raise RuntimeError("LoRALinear is already merged")
        self.base.weight += self.delta_weight()
        self.merged = True
        return self

    @torch.no_grad()
    def unmerge(self) -> "LoRALinear":
        """Subtract the update again (exact up to floating-point rounding of one add and one subtract)."""
        if not self.merged:
            raise RuntimeError("LoRALinear is not merged")
        self.base.weight -= self.delta_weight()
        self.merged = False
        return self

    @torch.no_grad()
    def to_linear(self) -> nn.Linear:
        """A new plain ``nn.Linear`` with weight :math:`W_0 + \\frac{\\alpha}{r}BA` (this module is left as it is)."""
        weight = self.base_weight()
        linear = nn.Linear(self.in_features, self.out_features, bias=self.base.bias is not None,
                           device=weight.device, dtype=self.lora_A.dtype)
        merged = weight.to(self.lora_A.dtype) + (0 if self.merged else self.delta_weight())
        linear.weight.copy_(merged)
        if self.base.bias is not None:
            linear.bias.copy_(self.base.bias)
        return linear

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}, "
                f"alpha={self.alpha:g}, merged={self.merged}")


class _NF4Base(nn.Module):
    """A frozen linear map whose weight is stored in NF4 (packed codes and absmax as buffers, so
    ``.to(device)`` moves them and the state dict holds the 4-bit weight, not a float copy)."""

    def __init__(self, base: nn.Linear, block_size: int):
        super().__init__()
        q = quantize_nf4(base.weight.detach(), block_size=block_size)
        self.register_buffer("packed", q.packed)
        self.register_buffer("absmax", q.absmax)
        self.shape, self.block_size, self.dtype = q.shape, q.block_size, q.dtype
        self.in_features, self.out_features = base.in_features, base.out_features
        bias = None if base.bias is None else base.bias.detach().clone()
        self.register_buffer("bias", bias)

    def quantized(self) -> NF4Tensor:
        return NF4Tensor(self.packed, self.absmax, self.shape, self.block_size, self.dtype)

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized weight, rebuilt from the 4-bit codes on every call."""
        return dequantize_nf4(self.quantized())

    @property
    def nbytes(self) -> int:
        """Bytes of the 4-bit weight: packed codes plus one float32 absmax per block."""
        return self.quantized().nbytes

    def forward(self, x):
        return F.linear(x, self.weight.to(x.dtype), self.bias)


class QLoRALinear(LoRALinear):
    r"""LoRA on a 4-bit base (QLoRA): :math:`h = \operatorname{dq}(\operatorname{NF4}(W_0))\,x + b + \frac{\alpha}{r}BAx`.

    The base weight is quantized once with :func:`~companion.compression.nf4.quantize_nf4`
    (``block_size`` values per absmax) and dequantized in every forward pass; the adapters stay in the
    dtype of the original layer (float32 here; bfloat16 in the paper). There is no in-place
    :meth:`merge`: adding :math:`\frac{\alpha}{r}BA` to a 4-bit weight would re-quantize it and lose the
    update. Use :meth:`to_linear` (or :func:`merge_lora`) to get a merged full-precision layer.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None, dropout: float = 0.0,
                 block_size: int = 64):
        self._block_size = check_positive_int("block_size", block_size)
        super().__init__(base, rank, alpha, dropout)

    def _frozen_base(self, base: nn.Linear):
        return _NF4Base(base, self._block_size)

    def merge(self):
        raise NotImplementedError("QLoRALinear cannot merge in place into a 4-bit weight; use to_linear() or merge_lora()")

    def unmerge(self):
        raise NotImplementedError("QLoRALinear is never merged; use to_linear() or merge_lora()")


def lora_parameter_count(in_features: int, out_features: int, rank: int) -> int:
    r"""Adapter size of one layer, :math:`r(d_\text{in} + d_\text{out})`, against :math:`d_\text{in} d_\text{out}` for the weight."""
    return check_positive_int("rank", rank) * (check_positive_int("in_features", in_features)
                                               + check_positive_int("out_features", out_features))


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def apply_lora(model: nn.Module, rank: int, alpha: float | None = None, *, target=None, trainable=(),
               dropout: float = 0.0, quantize_base: bool = False, block_size: int = 64) -> nn.Module:
    """Wrap chosen ``nn.Linear`` layers of ``model`` in LoRA (or QLoRA) adapters and freeze everything else.

    ``target``: the names (as in ``model.named_modules()``) of the layers to adapt; ``None`` adapts
    every ``nn.Linear`` not listed in ``trainable``. ``trainable``: names of modules left fully
    trainable (typically a new classification head). ``quantize_base=True`` stores the adapted base
    weights in NF4 (QLoRA). The model is changed in place and returned.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    modules = dict(model.named_modules())
    adapted = [n for n, m in modules.items() if isinstance(m, LoRALinear)]
    if adapted:  # a second call would wrap the adapters' own base layers
        raise ValueError(f"Invalid model: it already has LoRA adapters ({', '.join(adapted[:3])}): call apply_lora "
                         "once, or merge_lora(model) first to fold them into plain Linear layers")
    trainable = [trainable] if isinstance(trainable, str) else list(trainable)
    for name in trainable:
        if name not in modules:
            raise ValueError(f"Invalid trainable: no module named {name!r} in the model")
    if target is None:
        target = [n for n, m in modules.items() if isinstance(m, nn.Linear) and n not in trainable]
    else:
        target = [target] if isinstance(target, str) else list(target)
    if not target:
        raise ValueError("Invalid target: no layer to adapt")
    for name in target:
        if name not in modules:
            raise ValueError(f"Invalid target: no module named {name!r} in the model")
        if not isinstance(modules[name], nn.Linear) or isinstance(modules[name], LoRALinear):
            raise TypeError(f"target {name!r} must be a torch.nn.Linear, got {type(modules[name]).__name__}")
        if name in trainable:
            raise ValueError(f"Invalid target: {name!r} is also listed in trainable")
    for p in model.parameters():
        p.requires_grad_(False)
    wrapper = QLoRALinear if quantize_base else LoRALinear
    extra = {"block_size": block_size} if quantize_base else {}
    for name in target:
        _set_module(model, name, wrapper(modules[name], rank, alpha, dropout, **extra))
    for name in trainable:
        for p in modules[name].parameters():
            p.requires_grad_(True)
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every LoRA/QLoRA layer replaced by one plain ``nn.Linear`` holding
    :math:`W_0 + \\frac{\\alpha}{r}BA` (dequantized for QLoRA): the deployable model, as fast as the original."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    merged = copy.deepcopy(model)
    for name, module in list(merged.named_modules()):
        if isinstance(module, LoRALinear):
            _set_module(merged, name, module.to_linear())
    for p in merged.parameters():
        p.requires_grad_(True)
    return merged


def count_all_parameters(model: nn.Module) -> int:
    """Every weight of the model, trainable or frozen, counting an NF4 base weight (a buffer, not a
    parameter) by its number of entries: the denominator of "fraction of parameters trained"."""
    total = sum(p.numel() for p in model.parameters())
    for module in model.modules():
        if isinstance(module, _NF4Base):
            total += math.prod(module.shape) + (0 if module.bias is None else module.bias.numel())
    return total


def trainable_parameters(model: nn.Module) -> list:
    """The parameters that receive gradients (``requires_grad``): what to hand to the optimizer."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return [p for p in model.parameters() if p.requires_grad]


# --------------------------------------------------------------------------- the chapter's recipe


@dataclass(frozen=True)
class TransferConfig:
    """Hyperparameters of the chapter's transfer task, shared by the notebook and the benchmark.

    Pretrain an MLP on MNIST digits 0-4, then adapt it to digits 5-9 with a new 5-way head.
    """

    hidden: tuple = (1024, 1024)
    source_digits: tuple = (0, 1, 2, 3, 4)
    target_digits: tuple = (5, 6, 7, 8, 9)
    pretrain_examples: int = 12_000  # of the 0-4 training images
    pretrain_epochs: int = 2
    pretrain_learning_rate: float = 1e-3
    finetune_examples: int = 3_000  # of the 5-9 training images
    finetune_epochs: int = 6
    batch_size: int = 64
    rank: int = 4
    alpha: float = 8.0
    # Peak Adam learning rates, each the best of a small sweep (adapters and a fresh head want more).
    learning_rates: dict = field(default_factory=lambda: {"full": 1e-3, "lora": 5e-3, "qlora": 5e-3, "head": 1e-2})

    def __post_init__(self):
        for name in ("pretrain_examples", "pretrain_epochs", "finetune_examples", "finetune_epochs", "batch_size", "rank"):
            check_positive_int(name, getattr(self, name))
        for size in self.hidden:
            check_positive_int("hidden", size)
        check_positive("pretrain_learning_rate", self.pretrain_learning_rate)
        check_positive("alpha", self.alpha)
        methods = {"full", "lora", "qlora", "head"}
        if not isinstance(self.learning_rates, dict) or set(self.learning_rates) != methods:
            raise ValueError(f"Invalid learning_rates: {self.learning_rates!r} (one per method: {sorted(methods)})")
        for method, rate in self.learning_rates.items():
            check_positive(f"learning_rates[{method!r}]", rate)
        digits = set(self.source_digits) | set(self.target_digits)
        if not digits <= set(range(10)) or set(self.source_digits) & set(self.target_digits):
            raise ValueError(f"Invalid digits: source {self.source_digits}, target {self.target_digits} "
                             "(two disjoint sets of digits 0-9)")


@dataclass
class TransferResult:
    """One fine-tuning run: the model, its curve, and what it cost."""

    method: str
    model: nn.Module
    history: object
    test_accuracy: float
    trainable: int
    total: int
    optimizer_state_bytes: int
    base_weight_bytes: int  # bytes of the frozen (or fully trained) hidden-layer weights

    @property
    def trainable_fraction(self) -> float:
        return self.trainable / self.total


def digit_subset(x: np.ndarray, y: np.ndarray, digits, limit: int | None = None):
    """The images of the given digits, labels renumbered 0..len(digits)-1, the first ``limit`` kept."""
    digits = list(digits)
    keep = np.isin(y, digits)
    x, y = x[keep], y[keep]
    y = np.searchsorted(np.array(sorted(digits)), y)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return x.reshape(len(x), -1), y


def build_mlp(config: TransferConfig, n_classes: int = 5) -> nn.Sequential:
    """784 -> hidden -> ... -> n_classes, ReLU; the last layer (the head) is named ``"head"``."""
    sizes = (784, *config.hidden)
    layers: list = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [(f"fc{i + 1}", nn.Linear(n_in, n_out)), (f"act{i + 1}", nn.ReLU())]
    layers.append(("head", nn.Linear(sizes[-1], n_classes)))
    from collections import OrderedDict

    return nn.Sequential(OrderedDict(layers))


def train(model: nn.Module, x, y, *, learning_rate: float | None = None, epochs: int, batch_size: int, seed: int = 0,
          x_val=None, y_val=None, optimizer=None, progress: bool = False, name: str | None = None):
    r"""Train the trainable parameters with the reference Adam of ``companion.optim`` and a cosine-decayed
    learning rate (``companion.schedules.cosine_decay``); returns ``(history, optimizer)``.

    :math:`\eta_t = \eta \cdot \tfrac12\bigl(1 + \cos(\pi t / T)\bigr)` over the :math:`T` steps of the
    run: the same schedule for every variant, so that no method wins by ending at a better-suited step size.
    ``optimizer`` replaces that default (a ``torch.optim`` optimizer or a ``companion.optim`` chain).
    Logs what :func:`companion.training.train_classifier` logs.
    """
    from .. import optim, schedules
    from ..optim.torch_adapter import ReferenceOptimizer
    from ..training import train_classifier

    epochs, batch_size = check_positive_int("epochs", epochs), check_positive_int("batch_size", batch_size)
    params = trainable_parameters(model)
    if not params:
        raise ValueError("Invalid model: it has no trainable parameter")
    if optimizer is None:
        if learning_rate is None:
            raise ValueError("give learning_rate (the peak of the cosine schedule) or an optimizer")
        steps = epochs * -(-len(x) // batch_size)
        optimizer = optim.adam(schedules.cosine_decay(check_positive("learning_rate", learning_rate), steps))
    if isinstance(optimizer, optim.GradientTransformation):  # wrapped here, so that its state can be measured
        optimizer = ReferenceOptimizer(params, optimizer)
    history = train_classifier(model, optimizer, x, y, x_val=x_val, y_val=y_val, epochs=epochs,
                               batch_size=batch_size, seed=seed, progress=progress, name=name)
    return history, optimizer


def pretrain(config: TransferConfig, x, y, *, seed: int = 0, device="cpu", progress: bool = False):
    """Train :func:`build_mlp` from scratch on the source digits; returns (model, history)."""
    torch.manual_seed(seed)
    model = build_mlp(config, len(config.source_digits)).to(device)
    history, _ = train(model, x, y, learning_rate=config.pretrain_learning_rate, epochs=config.pretrain_epochs,
                       batch_size=config.batch_size, seed=seed, progress=progress, name="pretrain")
    return model, history


def finetune(pretrained: nn.Module, method: str, config: TransferConfig, x, y, x_test, y_test, *,
             x_val=None, y_val=None, seed: int = 0, progress: bool = False) -> TransferResult:
    """Adapt a copy of ``pretrained`` to the target digits with a new head, by ``method``:

    ``"full"`` (every weight trained), ``"lora"`` (adapters on every hidden Linear), ``"qlora"``
    (the same on an NF4 base) or ``"head"`` (only the new head). Same data, epochs, batch order,
    schedule and head initialization for all; Adam with peak learning rate ``config.learning_rates[method]``.
    ``x_val, y_val`` (held out from the training images) are evaluated after every epoch, for the
    learning curves; ``x_test, y_test`` once, after training (``test_accuracy``).
    """
    from ..training import accuracy
    from .measure import optimizer_state_bytes

    if method not in ("full", "lora", "qlora", "head"):
        raise ValueError(f"Unknown method: {method!r} (expected 'full', 'lora', 'qlora' or 'head')")
    model = copy.deepcopy(pretrained)
    device = next(model.parameters()).device
    torch.manual_seed(seed)  # the same new head in every variant
    model.head = nn.Linear(model.head.in_features, len(config.target_digits)).to(device)
    hidden = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n != "head"]
    torch.manual_seed(seed + 1)  # the adapters' A: the same draw for LoRA and QLoRA
    if method in ("lora", "qlora"):
        apply_lora(model, config.rank, config.alpha, target=hidden, trainable=["head"],
                   quantize_base=method == "qlora")
    elif method == "head":
        for name in hidden:
            model.get_submodule(name).requires_grad_(False)
    history, optimizer = train(model, x, y, learning_rate=config.learning_rates[method], epochs=config.finetune_epochs,
                               batch_size=config.batch_size, seed=seed, x_val=x_val, y_val=y_val,
                               progress=progress, name=method)
    base_bytes = 0
    for name in hidden:
        module = model.get_submodule(name)
        if isinstance(module, LoRALinear):
            base = module.base
            base_bytes += base.nbytes if isinstance(base, _NF4Base) else base.weight.numel() * base.weight.element_size()
        else:
            base_bytes += module.weight.numel() * module.weight.element_size()
    return TransferResult(
        method=method,
        model=model,
        history=history,
        test_accuracy=accuracy(model, x_test, y_test),
        trainable=sum(p.numel() for p in trainable_parameters(model)),
        total=count_all_parameters(model),
        optimizer_state_bytes=optimizer_state_bytes(optimizer),
        base_weight_bytes=base_bytes,
    )
