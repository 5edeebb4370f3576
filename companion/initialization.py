r"""Weight initialization: the variance-preserving scales of Glorot, He and LeCun.

A layer :math:`z = W h` with ``fan_in`` inputs keeps the variance of its signal when
:math:`\operatorname{Var}(w) = g^2 / \text{fan}`, for a gain :math:`g` that undoes the nonlinearity's
shrinking (1 for linear/sigmoid-free analysis, :math:`\sqrt2` for ReLU, 5/3 for tanh):

* LeCun (LeCun, Bottou, Orr & Müller, "Efficient BackProp", 1998): :math:`\operatorname{Var}(w) = 1/\text{fan\_in}`;
* Glorot/Xavier (Glorot & Bengio, 2010): :math:`\operatorname{Var}(w) = g^2 \cdot 2/(\text{fan\_in} + \text{fan\_out})`,
  a compromise between the forward and the backward pass;
* He/Kaiming (He et al., 2015): :math:`\operatorname{Var}(w) = g^2/\text{fan}` with :math:`g = \sqrt2` for ReLU.

A uniform :math:`U(-b, b)` has variance :math:`b^2/3`, so the uniform versions use
:math:`b = \sqrt3\,\sigma`. The normal versions come in two kinds: PyTorch's ``xavier_normal_`` and
``kaiming_normal_`` draw from a plain normal (``truncated=False``, the default here), Keras'
``GlorotNormal``, ``HeNormal`` and ``LecunNormal`` from a normal truncated at two standard deviations
and rescaled by :math:`1/0.87962566103423978` so that the variance is still :math:`\sigma^2`
(``truncated=True``): no weight exceeds :math:`2\sigma/0.8796`.

Every initializer takes a shape (and returns a new float32 NumPy array), a NumPy array or a torch
tensor (filled in place and returned). Shapes are read as PyTorch lays weights out,
``(out, in, *kernel)``, unless ``layout="keras"``: ``(*kernel, in, out)``. The tests compare bounds
exactly and variances within sampling error with ``torch.nn.init`` and ``keras.initializers``.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from ._checks import check_choice, check_non_negative

__all__ = [
    "LayerStatistics",
    "TRUNCATED_NORMAL_STD",
    "apply_initializer",
    "calculate_gain",
    "fan_in_and_fan_out",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "layer_statistics",
    "lecun_normal",
    "lecun_uniform",
]

#: Standard deviation of a standard normal truncated to [-2, 2] (Keras divides by it).
TRUNCATED_NORMAL_STD = 0.87962566103423978

LAYOUTS = ("torch", "keras")
MODES = ("fan_in", "fan_out", "fan_avg")


def _shape_of(target):
    if isinstance(target, (tuple, list)):
        if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0 for s in target):
            raise ValueError(f"Invalid shape: {tuple(target)} (need non-negative integers)")
        return tuple(int(s) for s in target)
    if hasattr(target, "shape"):
        return tuple(int(s) for s in target.shape)
    raise TypeError(f"target must be a shape, a NumPy array or a torch tensor, got {type(target).__name__}")


def fan_in_and_fan_out(shape, layout: str = "torch") -> tuple[int, int]:
    r"""The number of inputs and outputs of one unit of a dense or convolutional weight.

    ``layout="torch"``: ``(out, in, *kernel)``, :math:`\text{fan\_in} = \text{in}\cdot\prod\text{kernel}`;
    ``layout="keras"``: ``(*kernel, in, out)``. As ``torch.nn.init._calculate_fan_in_and_fan_out`` and
    Keras' ``compute_fans`` (checked in the tests). Shapes with fewer than 2 dimensions have no fans.
    """
    check_choice("layout", layout, LAYOUTS)
    shape = _shape_of(shape)
    if len(shape) < 2:
        raise ValueError(f"Invalid shape: {shape} (fan_in and fan_out need at least 2 dimensions)")
    if layout == "torch":
        receptive = math.prod(shape[2:])
        return shape[1] * receptive, shape[0] * receptive
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def calculate_gain(nonlinearity: str = "linear", param: float | None = None) -> float:
    r"""The gain :math:`g` that keeps the variance through ``nonlinearity`` (as ``torch.nn.init.calculate_gain``).

    linear, conv and sigmoid: 1; tanh: 5/3; relu: :math:`\sqrt2`; leaky_relu with slope :math:`a`:
    :math:`\sqrt{2/(1+a^2)}` (:math:`a` = ``param``, default 0.01); selu: 3/4.
    """
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
    if nonlinearity in linear or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, numbers.Real):
            raise ValueError(f"Invalid param: {param!r} (the negative slope must be a number)")
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity == "selu":
        return 0.75
    raise ValueError(
        f"Unknown nonlinearity: {nonlinearity!r} (expected one of {', '.join(linear)}, sigmoid, tanh, relu, leaky_relu, selu)"
    )


def _rng(rng):
    if rng is None or isinstance(rng, (numbers.Integral, np.random.SeedSequence)):
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(f"rng must be None, a seed or a numpy.random.Generator, got {type(rng).__name__}")


def _fill(target, sample):
    """Draw ``sample(rng_shape)`` into a new array (a shape) or into ``target`` in place."""
    shape = _shape_of(target)
    values = sample(shape)
    if isinstance(target, (tuple, list)):
        return values.astype(np.float32)
    if isinstance(target, np.ndarray):
        target[...] = values
        return target
    import torch

    if isinstance(target, torch.Tensor):
        with torch.no_grad():
            target.copy_(torch.as_tensor(values, dtype=target.dtype))
        return target
    raise TypeError(f"target must be a shape, a NumPy array or a torch tensor, got {type(target).__name__}")


def _uniform(target, bound, rng):
    generator = _rng(rng)
    return _fill(target, lambda shape: generator.uniform(-bound, bound, size=shape))


def _normal(target, std, truncated, rng):
    generator = _rng(rng)

    def sample(shape):
        if not truncated:
            return generator.normal(0.0, std, size=shape)
        # Keras: a normal of std sigma/0.8796 cut at 2 of its std, so the result has variance sigma^2.
        scale = std / TRUNCATED_NORMAL_STD
        values = generator.normal(0.0, scale, size=shape)
        outside = np.abs(values) > 2.0 * scale
        while outside.any():  # redraw the few values beyond the cut
            values[outside] = generator.normal(0.0, scale, size=int(outside.sum()))
            outside = np.abs(values) > 2.0 * scale
        return values

    return _fill(target, sample)


def _check_gain(gain) -> float:
    return check_non_negative("gain", gain)


def _fan(target, mode, layout):
    check_choice("mode", mode, MODES)
    fan_in, fan_out = fan_in_and_fan_out(_shape_of(target), layout)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    if fan <= 0:
        raise ValueError(f"Invalid shape: {_shape_of(target)} (a zero-size weight has no {mode})")
    return fan


def glorot_uniform(target, gain: float = 1.0, *, layout: str = "torch", rng=None):
    r"""Glorot/Xavier uniform: :math:`U(-b, b)`, :math:`b = g\sqrt{6/(\text{fan\_in} + \text{fan\_out})}`.

    Glorot & Bengio (2010). ``torch.nn.init.xavier_uniform_`` / ``keras.initializers.GlorotUniform``
    (the default of ``keras.layers.Dense``).
    """
    gain = _check_gain(gain)
    return _uniform(target, gain * math.sqrt(3.0 / _fan(target, "fan_avg", layout)), rng)


def glorot_normal(target, gain: float = 1.0, *, truncated: bool = False, layout: str = "torch", rng=None):
    r"""Glorot/Xavier normal: :math:`\sigma = g\sqrt{2/(\text{fan\_in} + \text{fan\_out})}`.

    ``truncated=False``: ``torch.nn.init.xavier_normal_``; ``truncated=True``: ``keras.initializers.GlorotNormal``.
    """
    gain = _check_gain(gain)
    return _normal(target, gain / math.sqrt(_fan(target, "fan_avg", layout)), truncated, rng)


def he_uniform(
    target, nonlinearity: str = "relu", a: float = 0.0, *, mode: str = "fan_in", layout: str = "torch", rng=None
):
    r"""He/Kaiming uniform: :math:`U(-b, b)`, :math:`b = g\sqrt{3/\text{fan}}`, :math:`g` from ``nonlinearity``.

    He et al. (2015). ``torch.nn.init.kaiming_uniform_(a, mode, nonlinearity)`` (``nn.Linear`` uses
    ``a=sqrt(5)``, ``nonlinearity="leaky_relu"``); ``keras.initializers.HeUniform`` is the ReLU case.
    """
    gain = calculate_gain(nonlinearity, a)
    return _uniform(target, gain * math.sqrt(3.0 / _fan(target, mode, layout)), rng)


def he_normal(
    target,
    nonlinearity: str = "relu",
    a: float = 0.0,
    *,
    mode: str = "fan_in",
    truncated: bool = False,
    layout: str = "torch",
    rng=None,
):
    r"""He/Kaiming normal: :math:`\sigma = g/\sqrt{\text{fan}}` (:math:`\sqrt{2/\text{fan\_in}}` for ReLU).

    ``truncated=False``: ``torch.nn.init.kaiming_normal_``; ``truncated=True``: ``keras.initializers.HeNormal``.
    """
    gain = calculate_gain(nonlinearity, a)
    return _normal(target, gain / math.sqrt(_fan(target, mode, layout)), truncated, rng)


def lecun_uniform(target, *, layout: str = "torch", rng=None):
    r"""LeCun uniform: :math:`U(-b, b)`, :math:`b = \sqrt{3/\text{fan\_in}}` (LeCun et al., 1998; ``keras.initializers.LecunUniform``)."""
    return _uniform(target, math.sqrt(3.0 / _fan(target, "fan_in", layout)), rng)


def lecun_normal(target, *, truncated: bool = False, layout: str = "torch", rng=None):
    r"""LeCun normal: :math:`\sigma = 1/\sqrt{\text{fan\_in}}`; ``truncated=True`` is ``keras.initializers.LecunNormal``."""
    return _normal(target, 1.0 / math.sqrt(_fan(target, "fan_in", layout)), truncated, rng)


def apply_initializer(model, initializer, *, bias: float = 0.0, rng=None, **kwargs):
    """Fill the weight of every ``nn.Linear``/``nn.Conv*`` of ``model`` with ``initializer(weight, **kwargs)``.

    Biases are set to ``bias`` (zero, as Keras does; PyTorch draws them from :math:`U(\\pm 1/\\sqrt{\\text{fan\\_in}})`).
    ``initializer`` is one of this module's functions, or any callable filling a tensor in place. Returns ``model``.
    """
    import torch.nn as nn

    if not callable(initializer):
        raise TypeError(f"initializer must be callable, got {type(initializer).__name__}")
    generator = _rng(rng)
    ours = {glorot_uniform, glorot_normal, he_uniform, he_normal, lecun_uniform, lecun_normal}
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            if initializer in ours:
                initializer(module.weight, rng=generator, **kwargs)
            else:
                initializer(module.weight, **kwargs)
            if module.bias is not None:
                nn.init.constant_(module.bias, bias)
    return model


class LayerStatistics(NamedTuple):
    """Per-layer statistics of one forward/backward pass (index ``l`` = the l-th Linear/Conv layer)."""

    activation_std: np.ndarray  # std of each layer's output after its nonlinearity (the last: the logits)
    gradient_std: np.ndarray  # std of dLoss/dz_l, the gradient back-propagated to each pre-activation
    weight_gradient_std: np.ndarray  # std of dLoss/dW_l


def layer_statistics(model, x, y, loss_fn=None) -> LayerStatistics:
    r"""Activation and gradient standard deviations, layer by layer, for one batch.

    Glorot & Bengio (2010) plot these: with a good initialization the activations' std
    (:math:`h_l = \phi(z_l)`) and the back-propagated gradients' std (:math:`\partial J/\partial z_l`)
    stay of the same order through the depth; a too small scale makes both vanish, a too large one
    saturates tanh or explodes ReLU. The model's parameters keep no gradient afterwards.
    """
    import torch.nn as nn

    loss_fn = loss_fn or nn.functional.cross_entropy
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))]
    if not layers:
        raise ValueError("model has no Linear or Conv layer to measure")
    inputs, outputs = [], []

    def hook(module, args, output):
        inputs.append(args[0])
        output.retain_grad()
        outputs.append(output)

    handles = [layer.register_forward_hook(hook) for layer in layers]
    was_training = model.training
    model.eval()
    try:
        model.zero_grad(set_to_none=True)
        logits = model(x)
        loss_fn(logits, y).backward()
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    # The input of layer l+1 is the activation of layer l; the last layer's activation is its output.
    activations = [h.detach() for h in inputs[1:]] + [logits.detach()]
    stats = LayerStatistics(
        activation_std=np.array([a.float().std().item() for a in activations]),
        gradient_std=np.array([z.grad.float().std().item() for z in outputs]),
        weight_gradient_std=np.array([layer.weight.grad.float().std().item() for layer in layers]),
    )
    model.zero_grad(set_to_none=True)
    return stats
