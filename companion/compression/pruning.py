r"""Magnitude pruning: masks, the polynomial sparsity schedule, and structured pruning to a smaller dense model.

Pruning sets a fraction :math:`s` (the *sparsity*) of a layer's weights to zero and keeps them there. The
mask :math:`M \in \{0, 1\}^{\text{shape}(W)}` of *magnitude pruning* (Han et al., 2015) keeps the
largest weights in absolute value,

.. math::  M_{ij} = [\,|W_{ij}| > \tau\,], \qquad
           \tau = \text{the } \operatorname{round}(s\,n)\text{-th smallest } |W_{ij}|,

per layer, or over all layers at once (*global* pruning: one threshold for the concatenated weights).
*Structured* pruning removes whole rows (output neurons of a ``Linear``, output channels of a conv),
ranked by their :math:`L_n` norm :math:`\lVert W_{j,:}\rVert_n`; the surviving rows form a smaller dense
layer (:func:`remove_neurons`, :func:`shrink_linear_stack`).

*Gradual* pruning (Zhu & Gupta, 2017, "To prune, or not to prune") raises the sparsity while the network
fine-tunes, every ``frequency`` steps, along

.. math::  s_t = s_f + (s_i - s_f)\left(1 - \frac{t - t_0}{t_1 - t_0}\right)^{3}, \qquad t_0 \le t \le t_1,

(:func:`polynomial_decay_sparsity`, :class:`PolynomialDecay`), and re-applies the masks after every
optimizer step (:class:`MagnitudePruner`), since the optimizer (momentum, Adam's moments) would otherwise
move pruned weights away from zero.

Checked in ``tests/test_compression_pruning.py``: masks equal to ``torch.nn.utils.prune``
(``l1_unstructured``, ``global_unstructured``, ``ln_structured``), the schedule equal to TensorFlow Model
Optimization's ``PolynomialDecay``, and the shrunk model equal to the masked one.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

from .. import optim
from .._checks import check_choice, check_in_range, check_non_negative_int, check_positive, check_positive_int
from ..history import History

__all__ = [
    "MagnitudePruner",
    "PolynomialDecay",
    "PruningConfig",
    "build_mlp",
    "channel_norms",
    "compare_latency",
    "global_magnitude_masks",
    "magnitude_mask",
    "polynomial_decay_sparsity",
    "prunable_layers",
    "prune_gradually",
    "remove_neurons",
    "should_prune",
    "shrink_linear_stack",
    "sparsity_of",
    "structured_mask",
    "fine_tune_structured",
    "train_dense",
]


# --------------------------------------------------------------------------- argument checks


def _check_sparsity(name: str, value) -> float:
    return check_in_range(name, value, 0.0, 1.0)


def _check_tensor(name: str, value):
    import torch

    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.numel() == 0:
        raise ValueError(f"{name} is empty")
    return value


def _check_norm(n) -> float:
    if n in (math.inf, "inf"):
        return math.inf
    return check_positive("n", n)


# --------------------------------------------------------------------------- masks


def magnitude_mask(weight, sparsity: float):
    """0/1 mask (same shape and dtype as ``weight``) that zeroes the ``round(sparsity * n)`` smallest ``|w|``.

    The same rule and rounding as ``torch.nn.utils.prune.l1_unstructured(module, name, amount=sparsity)``.
    """
    import torch

    weight = _check_tensor("weight", weight)
    sparsity = _check_sparsity("sparsity", sparsity)
    mask = torch.ones_like(weight)
    n_prune = round(sparsity * weight.numel())
    if n_prune:
        smallest = torch.topk(weight.detach().abs().reshape(-1), k=n_prune, largest=False).indices
        mask.view(-1)[smallest] = 0
    return mask


def global_magnitude_masks(weights, sparsity: float) -> list:
    """Masks for several tensors with *one* threshold: the ``round(sparsity * total)`` smallest ``|w|`` overall.

    Layers with many small weights end up sparser than others. The same rule as
    ``torch.nn.utils.prune.global_unstructured(..., pruning_method=prune.L1Unstructured, amount=sparsity)``.
    """
    import torch

    weights = list(weights) if isinstance(weights, (list, tuple)) else weights
    if not isinstance(weights, list) or not weights:
        raise TypeError("weights must be a non-empty list or tuple of tensors")
    for i, w in enumerate(weights):
        _check_tensor(f"weights[{i}]", w)
    flat = torch.cat([w.detach().abs().reshape(-1) for w in weights])
    sizes = [w.numel() for w in weights]
    mask = magnitude_mask(flat, sparsity)
    return [m.reshape(w.shape).to(w.dtype) for m, w in zip(torch.split(mask, sizes), weights)]


def channel_norms(weight, n: float = 2, dim: int = 0):
    r"""The :math:`L_n` norm of every slice ``weight.select(dim, j)``: one number per output neuron or channel."""
    weight = _check_tensor("weight", weight)
    n = _check_norm(n)
    if isinstance(dim, bool) or not isinstance(dim, int) or not -weight.dim() <= dim < weight.dim():
        raise ValueError(f"Invalid dim: {dim!r} for a tensor with {weight.dim()} dimensions")
    dim = dim % weight.dim()
    others = [d for d in range(weight.dim()) if d != dim]
    w = weight.detach()
    if not others:
        return w.abs()
    if n == math.inf:
        return w.abs().amax(dim=others)
    return w.abs().pow(n).sum(dim=others).pow(1.0 / n)


def structured_mask(weight, amount: float, dim: int = 0, n: float = 2):
    """Mask that zeroes the ``round(amount * size)`` slices along ``dim`` with the smallest :math:`L_n` norm.

    ``dim=0`` removes output neurons of a ``Linear`` (rows) or output channels of a ``Conv2d``. The same
    rule as ``torch.nn.utils.prune.ln_structured(module, name, amount, n=n, dim=dim)``.
    """
    import torch

    amount = _check_sparsity("amount", amount)
    norms = channel_norms(weight, n, dim)
    keep = torch.ones_like(norms)
    n_prune = round(amount * norms.numel())
    if n_prune:
        keep[torch.topk(norms, k=n_prune, largest=False).indices] = 0
    shape = [1] * weight.dim()
    shape[dim % weight.dim()] = -1
    return (torch.ones_like(weight) * keep.reshape(shape)).to(weight.dtype)


# --------------------------------------------------------------------------- schedule


def polynomial_decay_sparsity(
    step: int,
    initial_sparsity: float,
    final_sparsity: float,
    begin_step: int,
    end_step: int,
    power: float = 3,
) -> float:
    r"""Target sparsity at ``step`` (Zhu & Gupta, 2017): fast at first, then flattening out at the final value.

    .. math:: s_t = s_f + (s_i - s_f)\,(1 - p)^{\text{power}},
              \qquad p = \operatorname{clip}\!\left(\frac{t - t_0}{t_1 - t_0}, 0, 1\right).

    Equal to ``tfmot.sparsity.keras.PolynomialDecay`` (its second output).
    """
    step = check_non_negative_int("step", step)
    initial_sparsity = _check_sparsity("initial_sparsity", initial_sparsity)
    final_sparsity = _check_sparsity("final_sparsity", final_sparsity)
    begin_step = check_non_negative_int("begin_step", begin_step)
    end_step = check_non_negative_int("end_step", end_step)
    if end_step <= begin_step:
        raise ValueError(f"Invalid end_step: {end_step} (must be > begin_step = {begin_step})")
    power = check_positive("power", power)
    p = min(1.0, max(0.0, (step - begin_step) / (end_step - begin_step)))
    return final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - p) ** power


def should_prune(step: int, begin_step: int, end_step: int, frequency: int) -> bool:
    """Whether the masks are recomputed at ``step``: inside ``[begin_step, end_step]``, every ``frequency`` steps."""
    step = check_non_negative_int("step", step)
    begin_step = check_non_negative_int("begin_step", begin_step)
    end_step = check_non_negative_int("end_step", end_step)
    frequency = check_positive_int("frequency", frequency)
    return begin_step <= step <= end_step and (step - begin_step) % frequency == 0


@dataclass(frozen=True)
class PolynomialDecay:
    """The schedule as an object, called like tfmot's: ``should_update, sparsity = schedule(step)``."""

    initial_sparsity: float
    final_sparsity: float
    begin_step: int
    end_step: int
    power: float = 3
    frequency: int = 100

    def __post_init__(self):
        polynomial_decay_sparsity(
            0, self.initial_sparsity, self.final_sparsity, self.begin_step, self.end_step, self.power
        )
        check_positive_int("frequency", self.frequency)

    def __call__(self, step: int) -> tuple[bool, float]:
        return (
            should_prune(step, self.begin_step, self.end_step, self.frequency),
            polynomial_decay_sparsity(
                step, self.initial_sparsity, self.final_sparsity, self.begin_step, self.end_step, self.power
            ),
        )


# --------------------------------------------------------------------------- pruning a module


def _default_layer_types():
    import torch.nn as nn

    return (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def prunable_layers(module, layer_types=None) -> dict:
    """``{name: layer}`` for the layers of ``module`` whose ``weight`` is pruned (default: ``Linear`` and convs).

    Biases are not pruned: they are few, and each one shifts a whole output.
    """
    import torch.nn as nn

    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    layer_types = _default_layer_types() if layer_types is None else tuple(layer_types)
    supported = _default_layer_types()
    for t in layer_types:
        if not (isinstance(t, type) and issubclass(t, supported)):
            raise TypeError(f"Unsupported layer type in layer_types: {t!r} (expected Linear or Conv1d/2d/3d)")
    return {name: m for name, m in module.named_modules() if isinstance(m, layer_types)}


def sparsity_of(module, layer_types=None, per_layer: bool = False):
    """Fraction of exact zeros in the prunable weights of ``module`` (one number, or ``{name: fraction}``).

    Reads ``layer.weight``, so it also works while ``torch.nn.utils.prune`` reparametrizes a layer.
    """
    layers = prunable_layers(module, layer_types)
    if not layers:
        raise ValueError("module has no prunable layers (Linear or Conv)")
    zeros = {name: int((layer.weight == 0).sum()) for name, layer in layers.items()}
    sizes = {name: layer.weight.numel() for name, layer in layers.items()}
    if per_layer:
        return {name: zeros[name] / sizes[name] for name in layers}
    return sum(zeros.values()) / sum(sizes.values())


class MagnitudePruner:
    """Owns a 0/1 mask for the weight of every ``Linear``/conv layer of a module and keeps pruned weights at zero.

    ``update_masks(s)`` recomputes the masks by magnitude at sparsity ``s`` (per layer, or with one global
    threshold when ``scope="global"``) and applies them; ``apply()`` multiplies the weights by their masks
    again and must be called after *every* optimizer step, because the optimizer's update (with momentum
    or Adam's moments, even with a zero gradient) moves pruned weights away from zero.
    Weights already pruned are zero, hence the smallest, so the pruned set only grows as ``s`` rises.
    """

    def __init__(self, module, *, scope: str = "layer", layer_types=None):
        import torch

        self.scope = check_choice("scope", scope, ("layer", "global"))
        layers = prunable_layers(module, layer_types)
        if not layers:
            raise ValueError("module has no prunable layers (Linear or Conv)")
        self.weights = {}
        for name, layer in layers.items():
            if not isinstance(getattr(layer, "weight", None), torch.nn.Parameter):
                raise TypeError(
                    f"layer {name!r} has no weight Parameter (pruned with torch.nn.utils.prune? call prune.remove)"
                )
            self.weights[name] = layer.weight
        self.masks = {name: torch.ones_like(w) for name, w in self.weights.items()}

    def update_masks(self, sparsity: float) -> None:
        """Recompute every mask at ``sparsity`` from the current weights, then apply them."""
        sparsity = _check_sparsity("sparsity", sparsity)
        names = list(self.weights)
        if self.scope == "global":
            masks = global_magnitude_masks([self.weights[n] for n in names], sparsity)
        else:
            masks = [magnitude_mask(self.weights[n], sparsity) for n in names]
        self.masks = dict(zip(names, masks))
        self.apply()

    def apply(self) -> None:
        """Zero the pruned weights (``w <- w * m``)."""
        import torch

        with torch.no_grad():
            for name, w in self.weights.items():
                w.mul_(self.masks[name])

    @property
    def sparsity(self) -> float:
        """Fraction of zeros in the masks (over all pruned weights)."""
        zeros = sum(int((m == 0).sum()) for m in self.masks.values())
        return zeros / sum(m.numel() for m in self.masks.values())


# --------------------------------------------------------------------------- structured: a smaller dense model


def _elementwise_types():
    import torch.nn as nn

    return (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.ELU, nn.Identity, nn.Dropout)


def shrink_linear_stack(model, keep):
    r"""A smaller ``nn.Sequential`` that computes what ``model`` computes with the hidden rows outside ``keep`` zeroed.

    ``model`` is ``[Flatten] -> Linear -> activation -> ... -> Linear`` (elementwise activations or
    dropout between the ``Linear`` layers); ``keep[i]`` lists the output neurons of the ``i``-th hidden
    ``Linear`` to keep. A removed neuron :math:`j` whose weight row is zero still outputs the constant
    :math:`a_j = \sigma(b_j)` (its bias goes through the activation), so its contribution
    :math:`W^{\text{next}}_{:,j}\,a_j` is folded into the next layer's bias: the smaller model computes
    exactly what the row-masked model (``prune.ln_structured(..., dim=0)``) computes, with dense, smaller
    matrices.
    """
    import torch
    import torch.nn as nn

    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential of Linear layers and activations, got {type(model).__name__}")
    elementwise = _elementwise_types()
    linear_positions = []
    for i, layer in enumerate(model):
        if isinstance(layer, nn.Linear):
            linear_positions.append(i)
        elif isinstance(layer, nn.Flatten) and not linear_positions:
            continue
        elif not isinstance(layer, elementwise):
            raise TypeError(f"Unsupported layer at position {i}: {type(layer).__name__} (shrink_linear_stack handles "
                            "Flatten, Linear and elementwise activations)")
    if len(linear_positions) < 2:
        raise ValueError("model needs at least two Linear layers (a hidden layer to shrink and the layer after it)")
    keep = list(keep)
    if len(keep) != len(linear_positions) - 1:
        raise ValueError(f"keep must list the neurons to keep for each of the {len(linear_positions) - 1} hidden "
                         f"Linear layers, got {len(keep)} entries")

    layers = [copy.deepcopy(layer) for layer in model]
    prev_keep = None  # input columns kept in the current Linear
    carry = None  # bias correction folded from the previous layer's removed neurons
    for k, pos in enumerate(linear_positions):
        old = model[pos]
        weight, bias = old.weight.detach(), None if old.bias is None else old.bias.detach()
        own_bias = bias  # a removed neuron's whole row is zero: it sees its own bias only, no carried term
        if prev_keep is not None:
            weight = weight[:, prev_keep]
        if carry is not None:
            bias = carry if bias is None else bias + carry
        rows = None
        if k < len(keep):
            rows = torch.as_tensor(keep[k], dtype=torch.long, device=weight.device).reshape(-1)
            n_out = old.out_features
            if rows.numel() == 0 or rows.min() < 0 or rows.max() >= n_out or rows.unique().numel() != rows.numel():
                raise ValueError(f"keep[{k}] must hold distinct indices in [0, {n_out}), at least one")
            rows = rows.sort().values
            removed = torch.ones(n_out, dtype=torch.bool, device=weight.device)
            removed[rows] = False
            # what each removed neuron outputs once its row is zero: its bias through the activations
            constant = torch.zeros(int(removed.sum()), device=weight.device, dtype=weight.dtype)
            if own_bias is not None:
                constant = own_bias[removed]
            nxt = linear_positions[k + 1]
            with torch.no_grad():
                out = constant.reshape(1, -1)
                for layer in model[pos + 1 : nxt]:
                    out = layer.eval()(out) if isinstance(layer, nn.Dropout) else layer(out)
            carry = model[nxt].weight.detach()[:, removed] @ out.reshape(-1)
            weight = weight[rows]
            bias = None if bias is None else bias[rows]
        new = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None,
                        device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            new.weight.copy_(weight)
            if bias is not None:
                new.bias.copy_(bias)
        layers[pos] = new
        prev_keep = rows
    model_was_training = model.training
    shrunk = nn.Sequential(*layers)
    shrunk.train(model_was_training)
    return shrunk


def remove_neurons(model, amount: float, n: float = 2):
    """Structured pruning as a smaller dense model: drop ``round(amount * width)`` neurons of every hidden layer.

    Neurons are ranked by the :math:`L_n` norm of their weight row (as ``prune.ln_structured(dim=0)``
    ranks them); see :func:`shrink_linear_stack` for how the removal is made exact.
    """
    import torch.nn as nn

    amount = _check_sparsity("amount", amount)
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential of Linear layers and activations, got {type(model).__name__}")
    linears = [m for m in model if isinstance(m, nn.Linear)]
    keep = []
    for layer in linears[:-1]:
        rows = structured_mask(layer.weight, amount, dim=0, n=n)[:, 0]
        if not rows.any():
            raise ValueError(f"amount={amount} removes every neuron of a layer of width {layer.out_features}")
        keep.append(rows.nonzero().reshape(-1))
    return shrink_linear_stack(model, keep)


# --------------------------------------------------------------------------- the chapter's recipe


@dataclass(frozen=True)
class PruningConfig:
    """Hyperparameters of the chapter's MNIST experiment (the notebook and ``python -m companion.bench pruning`` share them).

    A Linear-heavy MLP is trained dense with Adam, then fine-tuned for ``prune_epochs`` while gradual
    magnitude pruning raises the sparsity from ``initial_sparsity`` to ``final_sparsity`` along the cubic
    schedule over the first ``ramp_fraction`` of the fine-tuning steps (masks updated every ``frequency``
    steps, re-applied after every step).
    """

    sizes: tuple = (784, 512, 256, 10)
    train_images: int = 30_000
    batch_size: int = 128
    learning_rate: float = 1e-3
    dense_epochs: int = 4
    prune_epochs: int = 3
    fine_tune_learning_rate: float = 5e-4
    initial_sparsity: float = 0.0
    final_sparsity: float = 0.9
    ramp_fraction: float = 0.6
    frequency: int = 20
    structured_amount: float = 0.5
    structured_epochs: int = 2
    seed: int = 0

    def __post_init__(self):
        for name in ("train_images", "batch_size", "dense_epochs", "prune_epochs", "frequency", "structured_epochs"):
            check_positive_int(name, getattr(self, name))
        check_non_negative_int("seed", self.seed)
        check_positive("learning_rate", self.learning_rate)
        check_positive("fine_tune_learning_rate", self.fine_tune_learning_rate)
        for name in ("initial_sparsity", "final_sparsity", "structured_amount"):
            _check_sparsity(name, getattr(self, name))
        check_in_range("ramp_fraction", self.ramp_fraction, 0.0, 1.0, high_inclusive=True)
        if self.ramp_fraction == 0.0:
            raise ValueError("Invalid ramp_fraction: 0.0 (the schedule needs at least one step to ramp)")
        if self.initial_sparsity > self.final_sparsity:
            raise ValueError(f"Invalid initial_sparsity: {self.initial_sparsity} (above final_sparsity={self.final_sparsity})")
        for size in self.sizes:
            check_positive_int("sizes", size)

    def schedule(self, steps: int, final_sparsity=None, initial_sparsity=None) -> PolynomialDecay:
        """The pruning schedule over ``steps`` fine-tuning steps; ``end_step`` is a multiple of ``frequency``
        (so that the last mask update happens exactly at the final sparsity). ``initial_sparsity`` equal to
        the final one gives one-shot pruning followed by fine-tuning with the masks fixed."""
        steps = check_positive_int("steps", steps)
        end = self.frequency * max(1, round(self.ramp_fraction * steps / self.frequency))
        final = self.final_sparsity if final_sparsity is None else final_sparsity
        initial = self.initial_sparsity if initial_sparsity is None else initial_sparsity
        return PolynomialDecay(initial, final, 0, end, power=3, frequency=self.frequency)


def build_mlp(recipe: PruningConfig = PruningConfig(), device="cpu"):
    """The recipe's MLP (``Flatten -> Linear -> ReLU -> ... -> Linear``), seeded with ``recipe.seed``."""
    import torch

    from ..training import mlp

    torch.manual_seed(recipe.seed)
    return mlp(tuple(recipe.sizes)).to(device)


def train_dense(model, x, y, recipe: PruningConfig = PruningConfig(), *, x_val=None, y_val=None, optimizer=None,
                progress=True, name="dense") -> History:
    """Train ``model`` for ``recipe.dense_epochs`` with ``optimizer`` (default: the reference Adam of
    ``companion.optim`` at ``recipe.learning_rate``)."""
    return _train(model, x, y, recipe, recipe.dense_epochs, x_val=x_val, y_val=y_val, optimizer=optimizer,
                  progress=progress, name=name)


def fine_tune_structured(model, x, y, recipe: PruningConfig = PruningConfig(), *, x_val=None, y_val=None,
                         optimizer=None, progress=True, name="structured fine-tune") -> History:
    """Fine-tune a model shrunk by :func:`remove_neurons` for ``recipe.structured_epochs``, as :func:`train_dense`."""
    return _train(model, x, y, recipe, recipe.structured_epochs, x_val=x_val, y_val=y_val, optimizer=optimizer,
                  progress=progress, name=name)


def _train(model, x, y, recipe, epochs, *, x_val, y_val, optimizer, progress, name) -> History:
    from ..training import train_classifier

    return train_classifier(model, optimizer or optim.adam(recipe.learning_rate), x, y, x_val=x_val, y_val=y_val,
                            epochs=epochs, batch_size=recipe.batch_size, seed=recipe.seed, progress=progress,
                            name=name)


class GradualPruning:
    """The :class:`~companion.training.Callback` that prunes during training, as tfmot's ``UpdatePruningStep``.

    Before a step: when ``schedule(step)`` says so, recompute the masks at its sparsity. After the
    optimizer step: re-apply the masks (the optimizer moved the pruned weights), and log ``sparsity``.
    """

    def __init__(self, pruner: MagnitudePruner, schedule):
        if not callable(schedule):
            raise TypeError(f"schedule must be a callable step -> (update, sparsity), got {type(schedule).__name__}")
        self.pruner, self.schedule = pruner, schedule
        self.updated, self.current = False, pruner.sparsity

    def on_step_begin(self, state):
        self.updated, sparsity = self.schedule(state.step)
        if self.updated:
            self.pruner.update_masks(sparsity)

    def on_step(self, state):
        self.pruner.apply()
        if self.updated:
            self.current = self.pruner.sparsity
        state.history.log(state.step, sparsity=self.current)

    def on_epoch(self, state):
        return None


def prune_gradually(
    model,
    x,
    y,
    recipe: PruningConfig = PruningConfig(),
    *,
    scope="layer",
    x_val=None,
    y_val=None,
    optimizer=None,
    progress=True,
    name="gradual pruning",
):
    """Fine-tune ``model`` while pruning it by magnitude along ``recipe.schedule``; return ``(pruner, history)``.

    The loop is :func:`companion.training.train_classifier` with a :class:`GradualPruning` callback and, by
    default, the reference Adam at ``recipe.fine_tune_learning_rate``, for ``recipe.prune_epochs``. The
    history records ``loss`` and ``sparsity`` per step and ``val_accuracy`` per epoch. With
    ``initial_sparsity == final_sparsity`` (``dataclasses.replace(recipe, initial_sparsity=0.9)``) the model
    is pruned at once (one-shot) and then fine-tuned for the same number of steps.
    """
    from ..training import train_classifier

    epochs = recipe.prune_epochs
    pruner = MagnitudePruner(model, scope=scope)
    schedule = recipe.schedule(epochs * -(-len(x) // recipe.batch_size))
    history = train_classifier(model, optimizer or optim.adam(recipe.fine_tune_learning_rate), x, y, x_val=x_val,
                               y_val=y_val, epochs=epochs, batch_size=recipe.batch_size, seed=recipe.seed + 1,
                               callbacks=[GradualPruning(pruner, schedule)], progress=progress, name=name)
    return pruner, history


def compare_latency(models: dict, inputs, *, rounds: int = 5, repeats: int = 20, warmup: int = 3) -> dict:
    """CPU latency of each model on ``inputs`` (eval mode, no grad): ``{name: Latency}``.

    The models are timed in alternating rounds (each round calls
    :func:`companion.compression.measure.measure_latency` once per model, in rotating order), and each
    model's figures are the medians over rounds: a slow spell of a shared machine then hits every model,
    not only the one being timed. Set the thread count (``torch.set_num_threads``) before calling.
    """
    import statistics

    import torch

    from .measure import Latency, measure_latency

    if not isinstance(models, dict) or not models:
        raise TypeError("models must be a non-empty dict {name: torch.nn.Module}")
    rounds = check_positive_int("rounds", rounds)
    names = list(models)
    results = {name: [] for name in names}
    inputs = inputs.detach().cpu()
    prepared = {}
    for name, m in models.items():
        if not isinstance(m, torch.nn.Module):
            raise TypeError(f"models[{name!r}] must be a torch.nn.Module, got {type(m).__name__}")
        prepared[name] = copy.deepcopy(m).cpu().eval()
    with torch.no_grad():
        for r in range(rounds):
            for name in names[r % len(names):] + names[: r % len(names)]:
                results[name].append(measure_latency(prepared[name], inputs, repeats=repeats, warmup=warmup))
    return {
        name: Latency(
            median_ms=statistics.median(lat.median_ms for lat in runs),
            p25_ms=statistics.median(lat.p25_ms for lat in runs),
            p75_ms=statistics.median(lat.p75_ms for lat in runs),
            repeats=rounds * repeats,
        )
        for name, runs in results.items()
    }
