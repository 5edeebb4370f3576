r"""Affine integer quantization, and the int8 / NF4 recipes of the quantization chapter.

A real value :math:`x` is stored as an integer :math:`q` in :math:`[q_{\min}, q_{\max}]` with a
*scale* :math:`s > 0` and an integer *zero point* :math:`z` (Jacob et al., 2018):

.. math::
    q = \operatorname{clamp}\bigl(\operatorname{round}(x / s) + z,\; q_{\min},\; q_{\max}\bigr),
    \qquad \hat x = s\,(q - z).

From an observed range :math:`[x_{\min}, x_{\max}]`, first widened to contain 0 (so that 0 is stored
exactly: zero padding and ReLU outputs stay exact),

- *asymmetric* (affine): :math:`s = (x_{\max} - x_{\min}) / (q_{\max} - q_{\min})`,
  :math:`z = q_{\min} - \operatorname{round}(x_{\min} / s)`;
- *symmetric*: :math:`s = \max(|x_{\min}|, |x_{\max}|) / \bigl((q_{\max} - q_{\min}) / 2\bigr)`,
  :math:`z = 0` for signed integers (:math:`2^{b-1}` for unsigned ones).

*Per-channel* quantization computes one :math:`(s, z)` per slice along ``axis`` (per output row of a
weight matrix) instead of one per tensor. *Fake quantization* computes :math:`\hat x` in floating
point during training, with the straight-through estimator as its gradient (1 inside the range, 0
where the value was clamped).

Checked in ``tests/test_compression_quantization.py``: the parameters against
``torch.ao.quantization.MinMaxObserver`` and ``PerChannelMinMaxObserver`` (qint8 symmetric, quint8
affine), the integers against ``torch.quantize_per_tensor`` / ``torch.quantize_per_channel``
(``int_repr``), fake quantization and its gradient against ``torch.fake_quantize_per_tensor_affine``
and ``torch.fake_quantize_per_channel_affine``.

The second half holds the chapter's recipe, shared by the notebook and ``python -m companion.bench quantization``:
a Linear-heavy MNIST MLP ready for eager-mode quantization, its training, and the four ways of
compressing it (dynamic int8, static int8, quantization-aware training, NF4 weight-only).
"""

from __future__ import annotations

import copy
import numbers
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.ao.quantization import DeQuantStub, QuantStub

from .._checks import check_positive, check_positive_int
from .nf4 import NF4Tensor, quantize_nf4

__all__ = [
    "BACKEND",
    "NF4Linear",
    "QuantizableMLP",
    "TrainConfig",
    "affine_qparams",
    "dequantize_affine",
    "dynamic_int8",
    "fake_quantize",
    "minmax_qparams",
    "nf4_weight_only",
    "qat_int8",
    "quant_range",
    "quantize_affine",
    "static_int8",
    "train_float",
]

#: The quantized engine used on x86 CPUs (torch's default there: FBGEMM kernels, oneDNN for some shapes).
BACKEND = "x86"

# Smallest scale, as torch's observers use (a constant tensor would give a zero scale otherwise).
_EPS = 1.1920928955078125e-07  # torch.finfo(torch.float32).eps


# --------------------------------------------------------------------------- arithmetic


def quant_range(num_bits: int = 8, signed: bool = True) -> tuple[int, int]:
    """Integer range ``(qmin, qmax)`` of ``num_bits`` bits: ``(-2**(b-1), 2**(b-1)-1)`` or ``(0, 2**b-1)``."""
    if isinstance(num_bits, bool) or not isinstance(num_bits, numbers.Integral):
        raise TypeError(f"num_bits must be an integer, got {type(num_bits).__name__}: {num_bits!r}")
    if not 2 <= num_bits <= 16:
        raise ValueError(f"Invalid num_bits: {num_bits} (must be between 2 and 16)")
    if not isinstance(signed, bool):
        raise TypeError(f"signed must be a bool, got {type(signed).__name__}: {signed!r}")
    if signed:
        return -(2 ** (num_bits - 1)), 2 ** (num_bits - 1) - 1
    return 0, 2**num_bits - 1


def _as_float_tensor(name, value):

    if torch.is_tensor(value):
        if not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
        tensor = value.detach().to(torch.float32)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        tensor = torch.tensor(float(value), dtype=torch.float32)
    else:
        raise TypeError(f"{name} must be a real number or a tensor, got {type(value).__name__}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"Invalid {name}: contains NaN or infinity")
    return tensor


def affine_qparams(x_min, x_max, *, num_bits: int = 8, symmetric: bool = False, signed: bool | None = None):
    r"""Scale and zero point for values observed in ``[x_min, x_max]``, computed as torch's observers do.

    ``x_min``/``x_max`` are numbers (per tensor) or 1-D tensors (one entry per channel). ``signed``
    defaults to ``symmetric``: torch's usual pairs are *qint8 symmetric* for weights and *quint8
    affine* for activations. Returns ``(scale, zero_point)`` as float32 and int64 tensors of the
    shape of ``x_min``. The range is first widened to contain 0; the scale is at least ``eps`` of
    float32. Matches ``MinMaxObserver(dtype, qscheme)._calculate_qparams`` (``reduce_range=True``,
    used by the x86/fbgemm activation observers, is ``num_bits=7, signed=False``).
    """

    if signed is None:
        signed = bool(symmetric)
    if not isinstance(symmetric, bool):
        raise TypeError(f"symmetric must be a bool, got {type(symmetric).__name__}: {symmetric!r}")
    qmin, qmax = quant_range(num_bits, signed)
    lo = _as_float_tensor("x_min", x_min)
    hi = _as_float_tensor("x_max", x_max)
    if lo.shape != hi.shape:
        raise ValueError(f"x_min and x_max have different shapes: {tuple(lo.shape)} vs {tuple(hi.shape)}")
    if (lo > hi).any():
        raise ValueError(f"Invalid x_min, x_max: x_min must be <= x_max, got {x_min} > {x_max}")
    lo = torch.clamp(lo, max=0.0)  # keep 0 exactly representable
    hi = torch.clamp(hi, min=0.0)
    eps = torch.tensor(_EPS, dtype=torch.float32)
    if symmetric:
        bound = torch.maximum(-lo, hi)
        scale = torch.maximum(bound / (float(qmax - qmin) / 2), eps)
        zero_point = torch.full(lo.shape, 0 if signed else (qmin + qmax + 1) // 2, dtype=torch.int64)
    else:
        scale = torch.maximum((hi - lo) / float(qmax - qmin), eps)
        zero_point = qmin - torch.round(lo / scale).to(torch.int64)
        zero_point = torch.clamp(zero_point, qmin, qmax)
    return scale, zero_point


def _check_axis(axis, ndim):
    if axis is None:
        return None
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an integer or None, got {type(axis).__name__}: {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"Invalid axis: {axis} (tensor has {ndim} dimensions)")
    return axis % ndim


def minmax_qparams(x, *, axis: int | None = None, num_bits: int = 8, symmetric: bool = False, signed: bool | None = None):
    """:func:`affine_qparams` from the minimum and maximum of ``x``, per tensor or per slice along ``axis``."""

    if not torch.is_tensor(x) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point torch.Tensor, got {type(x).__name__}")
    axis = _check_axis(axis, x.dim())
    if x.numel() == 0:
        raise ValueError(f"x is empty (shape {tuple(x.shape)}): there is no range to quantize")
    x = x.detach()
    if axis is None:
        lo, hi = x.min(), x.max()
    else:
        flat = x.movedim(axis, 0).reshape(x.shape[axis], -1)
        lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
    return affine_qparams(lo, hi, num_bits=num_bits, symmetric=symmetric, signed=signed)


def _broadcast(name, value, x, axis, dtype):
    """``value`` (a number or a tensor, one entry per channel along ``axis``) shaped to broadcast against ``x``."""

    tensor = torch.as_tensor(value, dtype=dtype, device=x.device)
    if axis is None:
        if tensor.numel() != 1:
            raise ValueError(f"Invalid {name}: per-tensor quantization needs one value, got {tensor.numel()} (pass axis=)")
        return tensor.reshape(())
    if tensor.dim() != 1 or tensor.numel() != x.shape[axis]:
        raise ValueError(f"Invalid {name}: expected {x.shape[axis]} values (size of axis {axis}), got shape {tuple(tensor.shape)}")
    shape = [1] * x.dim()
    shape[axis] = -1
    return tensor.reshape(shape)


def _checked_params(x, scale, zero_point, qmin, qmax, axis):

    if not torch.is_tensor(x) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point torch.Tensor, got {type(x).__name__}")
    axis = _check_axis(axis, x.dim())
    for name, value in (("qmin", qmin), ("qmax", qmax)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an integer, got {type(value).__name__}: {value!r}")
    if qmin >= qmax:
        raise ValueError(f"Invalid qmin, qmax: qmin must be < qmax, got {qmin} >= {qmax}")
    s = _broadcast("scale", scale, x, axis, torch.float32)
    if not torch.isfinite(s).all() or (s <= 0).any():
        raise ValueError(f"Invalid scale: must be finite and > 0, got {scale}")
    z = _broadcast("zero_point", zero_point, x, axis, torch.int64)
    if ((z < qmin) | (z > qmax)).any():
        raise ValueError(f"Invalid zero_point: must lie in [qmin, qmax] = [{qmin}, {qmax}], got {zero_point}")
    return s, z


def quantize_affine(x, scale, zero_point, qmin: int, qmax: int, *, axis: int | None = None):
    r"""Integers :math:`q = \operatorname{clamp}(\operatorname{round}(x / s) + z, q_{\min}, q_{\max})` (int64).

    ``round`` is round-half-to-even, as in torch. Per tensor (``axis=None``, scalar ``scale`` and
    ``zero_point``) or per channel (one scale and zero point per slice along ``axis``). NaN in ``x``
    is refused.
    """

    s, z = _checked_params(x, scale, zero_point, qmin, qmax, axis)
    if torch.isnan(x).any():
        raise ValueError("Invalid x: contains NaN")
    # Multiply by the float32 reciprocal, as torch's kernels do: the integers then agree to the last tie.
    inv_scale = 1.0 / s
    return torch.clamp(torch.round(x.to(torch.float32) * inv_scale) + z, qmin, qmax).to(torch.int64)


def dequantize_affine(q, scale, zero_point, *, axis: int | None = None):
    r"""Real values :math:`\hat x = s\,(q - z)` (float32) of integers ``q``, per tensor or per channel."""

    if not torch.is_tensor(q):
        raise TypeError(f"q must be a torch.Tensor, got {type(q).__name__}")
    axis = _check_axis(axis, q.dim())
    probe = q.to(torch.float32)
    s = _broadcast("scale", scale, probe, axis, torch.float32)
    if not torch.isfinite(s).all() or (s <= 0).any():
        raise ValueError(f"Invalid scale: must be finite and > 0, got {scale}")
    z = _broadcast("zero_point", zero_point, probe, axis, torch.int64)
    return (q.to(torch.int64) - z).to(torch.float32) * s


class _FakeQuantize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, s, z, qmin, qmax):
        unclamped = torch.round(x * (1.0 / s)) + z
        ctx.save_for_backward((unclamped >= qmin) & (unclamped <= qmax))
        return (torch.clamp(unclamped, qmin, qmax) - z) * s

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None, None, None  # straight-through where not clamped


def fake_quantize(x, scale, zero_point, qmin: int, qmax: int, *, axis: int | None = None):
    r"""Quantize then dequantize in floating point: :math:`\hat x = s\,(q(x) - z)`, differentiable.

    The gradient is the straight-through estimator of quantization-aware training (Jacob et al., 2018):
    :math:`\partial \hat x / \partial x = 1` where :math:`q_{\min} \le \operatorname{round}(x/s) + z \le q_{\max}`,
    0 where the value was clamped. ``scale`` and ``zero_point`` receive no gradient here.
    """
    s, z = _checked_params(x, scale, zero_point, qmin, qmax, axis)
    return _FakeQuantize.apply(x, s, z.to(s.dtype), qmin, qmax)


# --------------------------------------------------------------------------- the chapter's recipe


class QuantizableMLP(nn.Module):
    """An MLP ``Flatten -> (Linear -> ReLU)* -> Linear`` with the stubs eager-mode static quantization needs.

    ``QuantStub`` marks where float inputs become quint8 and ``DeQuantStub`` where the logits return to
    float; in the float model both are identities. Layers are named ``fc1, relu1, fc2, ...`` so that
    :meth:`fuse_pairs` lists the ``Linear + ReLU`` pairs to fuse. With 784-512-512-10 the weights are
    more than 99.8% of the parameters, so int8 storage shows close to its 4x.
    """

    def __init__(self, sizes=(784, 512, 512, 10)):
        super().__init__()
        if len(sizes) < 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(f"Invalid sizes: {sizes!r} (need at least two positive integers)")
        self.sizes = tuple(sizes)
        self.n_layers = len(sizes) - 1
        self.quant = QuantStub()
        self.flatten = nn.Flatten()
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            setattr(self, f"fc{i}", nn.Linear(n_in, n_out))
            if i < self.n_layers:
                setattr(self, f"relu{i}", nn.ReLU())
        self.dequant = DeQuantStub()

    def fuse_pairs(self) -> list[list[str]]:
        """Names of the ``Linear, ReLU`` pairs, for ``fuse_modules``."""
        return [[f"fc{i}", f"relu{i}"] for i in range(1, self.n_layers)]

    def forward(self, x):
        x = self.flatten(self.quant(x))
        for i in range(1, self.n_layers + 1):
            x = getattr(self, f"fc{i}")(x)
            if i < self.n_layers:
                x = getattr(self, f"relu{i}")(x)
        return self.dequant(x)


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of the float model and of quantization-aware fine-tuning (notebook and benchmark share them)."""

    sizes: tuple = (784, 512, 512, 10)
    epochs: int = 2
    batch_size: int = 128
    learning_rate: float = 1e-3
    qat_steps: int = 150
    qat_learning_rate: float = 1e-4
    calibration_size: int = 1000

    def __post_init__(self):
        for name in ("epochs", "batch_size", "qat_steps", "calibration_size"):
            check_positive_int(name, getattr(self, name))
        check_positive("learning_rate", self.learning_rate)
        check_positive("qat_learning_rate", self.qat_learning_rate)
        for size in self.sizes:
            check_positive_int("sizes", size)


def train_float(x_train, y_train, *, x_val=None, y_val=None, seed: int = 0, config: TrainConfig = TrainConfig(), progress: bool = True):
    """Train a :class:`QuantizableMLP` with the Adam of ``companion.optim`` on ``x_train, y_train`` (tensors
    on the training device).

    Returns ``(model, history)``; the model stays on the device of ``x_train``, in eval mode.
    """
    from .. import optim
    from ..training import train_classifier

    torch.manual_seed(seed)
    model = QuantizableMLP(config.sizes).to(x_train.device)
    history = train_classifier(
        model,
        optim.adam(config.learning_rate),
        x_train,
        y_train,
        x_val=x_val,
        y_val=y_val,
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=seed,
        progress=progress,
        name="float32",
    )
    return model.eval(), history


def _cpu_copy(model):
    if not isinstance(model, QuantizableMLP):
        raise TypeError(f"model must be a QuantizableMLP, got {type(model).__name__}")
    return copy.deepcopy(model).cpu().eval()


def dynamic_int8(model):
    """Post-training *dynamic* quantization: int8 weights of every ``nn.Linear``, activations quantized on the fly.

    A CPU copy goes through ``torch.ao.quantization.quantize_dynamic``; ``model`` is not changed.
    """
    from torch.ao.quantization import quantize_dynamic

    torch.backends.quantized.engine = BACKEND
    return quantize_dynamic(_cpu_copy(model), {nn.Linear}, dtype=torch.qint8)


def static_int8(model, calibration_x, *, batch_size: int = 250):
    """Post-training *static* quantization (eager mode): fuse Linear+ReLU, observe, calibrate, convert.

    Weights per channel (qint8 symmetric), activations per tensor (quint8 affine, histogram observer,
    7-bit range on x86, as ``get_default_qconfig("x86")`` sets). ``calibration_x`` is a few hundred
    training images: their activation ranges fix every scale and zero point once and for all.
    """
    from torch.ao.quantization import convert, fuse_modules, get_default_qconfig, prepare

    batch_size = check_positive_int("batch_size", batch_size)
    if not torch.is_tensor(calibration_x):
        raise TypeError(f"calibration_x must be a torch tensor of inputs, got {type(calibration_x).__name__}")
    if len(calibration_x) == 0:
        raise ValueError("calibration_x is empty: static quantization needs a few hundred inputs to measure "
                         "the activation ranges (without them every scale is undefined)")
    torch.backends.quantized.engine = BACKEND
    float_copy = _cpu_copy(model)
    fused = fuse_modules(float_copy, float_copy.fuse_pairs())
    fused.qconfig = get_default_qconfig(BACKEND)
    prepared = prepare(fused)
    calibration_x = calibration_x.cpu()
    with torch.no_grad():
        for i in range(0, len(calibration_x), batch_size):
            prepared(calibration_x[i : i + batch_size])
    return convert(prepared)


def qat_int8(model, x_train, y_train, *, seed: int = 0, config: TrainConfig = TrainConfig()):
    """Quantization-aware training: fine-tune with fake quantization for ``config.qat_steps`` steps, then convert.

    Starts from the trained float ``model`` (a copy), on the CPU: the converted model runs CPU kernels.
    Returns the int8 model.
    """
    from torch.ao.quantization import convert, fuse_modules_qat, get_default_qat_qconfig, prepare_qat

    from ..training import train_classifier

    torch.backends.quantized.engine = BACKEND
    float_copy = _cpu_copy(model).train()
    fused = fuse_modules_qat(float_copy, float_copy.fuse_pairs())
    fused.qconfig = get_default_qat_qconfig(BACKEND)
    prepared = prepare_qat(fused)
    torch.manual_seed(seed)
    train_classifier(
        prepared,
        torch.optim.Adam(prepared.parameters(), lr=config.qat_learning_rate),
        x_train.cpu(),
        y_train.cpu(),
        epochs=1,
        batch_size=config.batch_size,
        seed=seed,
        max_steps=config.qat_steps,
        progress=False,
        name="qat",
    )
    return convert(prepared.eval())


class NF4Linear(nn.Module):
    """A weight-only NF4 replacement of an ``nn.Linear``: 4-bit codes stored, dequantized at every call.

    The packed codes (uint8) and per-block ``absmax`` (float32) are buffers, so ``state_dict`` and
    ``torch.save`` store them; the bias stays float32. The product itself is a float32 ``F.linear``:
    on a CPU this saves memory and disk, never time (the dequantization is extra work).
    """

    def __init__(self, linear: nn.Linear, block_size: int = 64):
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
        q = quantize_nf4(linear.weight.detach(), block_size=block_size)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.block_size, self.shape, self.dtype = q.block_size, q.shape, q.dtype
        self.register_buffer("packed", q.packed)
        self.register_buffer("absmax", q.absmax)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().clone())

    def nf4(self) -> NF4Tensor:
        """The weight as an :class:`~companion.compression.nf4.NF4Tensor`."""
        return NF4Tensor(self.packed, self.absmax, self.shape, self.block_size, self.dtype)

    def forward(self, x):
        return F.linear(x, self.nf4().dequantize(), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, block_size={self.block_size}"


def nf4_weight_only(model, block_size: int = 64):
    """A copy of ``model`` with every ``nn.Linear`` replaced by :class:`NF4Linear` (QLoRA's storage, no adapters)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    block_size = check_positive_int("block_size", block_size)
    result = copy.deepcopy(model).eval()
    targets = [name for name, module in result.named_modules() if isinstance(module, nn.Linear)]
    if not targets:
        raise ValueError("Invalid model: it has no nn.Linear layer to quantize")
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = result.get_submodule(parent_name) if parent_name else result
        setattr(parent, child, NF4Linear(getattr(parent, child), block_size=block_size))
    return result
