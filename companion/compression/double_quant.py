r"""QLoRA's *double quantization*: the NF4 block scales, quantized themselves (Dettmers et al., 2023).

Blockwise NF4 (:mod:`companion.compression.nf4`) stores a 4-bit code per weight and one float32 absmax
:math:`m_b` per block of :math:`B_1 = 64` weights: :math:`4 + 32/64 = 4.5` bits per weight, of which
the scales take 0.5. QLoRA quantizes those first-level constants a second time, as bitsandbytes does
with ``quantize_4bit(..., compress_statistics=True)``:

.. math::
    \mu = \operatorname{mean}_b m_b, \qquad
    s_j = \max_{b \in \text{block } j} |m_b - \mu|, \qquad
    k_b = \arg\min_k \Bigl| \frac{m_b - \mu}{s_j} - d_k \Bigr|, \qquad
    \hat m_b = s_j\, d_{k_b} + \mu ,

with the absmax values taken in blocks of :math:`B_2 = 256`, one float32 :math:`s_j` per block, one
float32 mean :math:`\mu` for the whole tensor, and an 8-bit code :math:`k_b` per absmax. The weights
are then dequantized with :math:`\hat m_b` instead of :math:`m_b`. Storage per weight:

.. math::
    4 + \frac{8}{B_1} + \frac{32}{B_1 B_2} = 4 + 0.125 + 0.00195 \approx 4.127 \text{ bits}

(plus 32 bits for :math:`\mu`, negligible for a large tensor).

The 8-bit levels :math:`d_k`: QLoRA's "8-bit floats" are, in bitsandbytes, the *dynamic* 8-bit map
of Dettmers et al. (2022, 8-bit optimizers), ``create_dynamic_map(signed=True)``: a sign bit, a run of
zeros giving a decimal exponent :math:`10^{-e}` (:math:`e = 0..6`), a stop bit, and the remaining bits
a linear fraction between 0.1 and 1: 64 levels per sign in [0.1, 1], half as many in each decade below,
down to one near 1e-6 (six decades, the precision concentrated near 1). We
use that map by default (``code="dynamic"``), because it is what QLoRA ran; ``code="linear"``
(:math:`d_k = k/127`, :math:`k = -127..127`, a plain symmetric int8) is there for comparison. Subtracting the mean matters:
the absmax values are all positive, so without it the signed map would waste its negative half and
spend its resolution on the range :math:`[0, \max m_b]` instead of the much narrower spread around
:math:`\mu`.

Checked in ``tests/test_compression_double_quant.py``: the dynamic map against its construction
(256 sorted values, 0 and 1 included, 127 positive and 127 negative values, decades of 1, 2, ..., 64
values), nearest-level codes against a brute-force search, the round trip's error bound, the bits per
weight counted from the stored arrays (4.127 for a large tensor, against 4.5), the variant without
mean subtraction measurably worse, and bad input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._checks import check_choice, check_positive_int
from .nf4 import NF4Tensor, dequantize_nf4, quantize_nf4

__all__ = [
    "DoubleQuantizedAbsmax",
    "NF4DoubleQuantTensor",
    "dequantize_absmax",
    "dequantize_nf4_double",
    "double_quantize_absmax",
    "dynamic_map",
    "quantize_nf4_double",
]

CODES = ("dynamic", "linear")


def dynamic_map(signed: bool = True, max_exponent_bits: int = 7, total_bits: int = 8):
    """The 256 levels of bitsandbytes' dynamic 8-bit type (``bitsandbytes.functional.create_dynamic_map``).

    For each decimal exponent :math:`10^{-(6-i)}`, :math:`i = 0..6`, the midpoints of
    ``linspace(0.1, 1, 2**i + 1)`` (and their negatives when ``signed``), then 0 and 1; sorted.
    """
    import torch

    non_sign_bits = total_bits - 1
    data = []
    for i in range(max_exponent_bits):
        items = 2 ** (i + non_sign_bits - max_exponent_bits) + 1 if signed else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1
        boundaries = torch.linspace(0.1, 1, items, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    data += [0.0, 1.0]
    data += [0.0] * (2**total_bits - len(data))
    return torch.tensor(sorted(data), dtype=torch.float32)


def _code(code: str, device):
    import torch

    if code == "dynamic":
        return dynamic_map(signed=True).to(device)
    # Symmetric int8: the 255 levels k/127, k = -127..127 (sorted, as the nearest-level search needs).
    return (torch.arange(-127, 128, dtype=torch.float32) / 127).to(device)


@dataclass
class DoubleQuantizedAbsmax:
    """First-level scales stored in 8 bits: codes (uint8, one per scale), float32 second-level
    scales (one per ``block_size`` scales), and the float32 mean subtracted before quantizing."""

    codes: "torch.Tensor"
    scales: "torch.Tensor"
    mean: "torch.Tensor"  # 0-d float32; exactly 0 when built with subtract_mean=False
    numel: int
    block_size: int
    code: str

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.codes, self.scales, self.mean))


def double_quantize_absmax(absmax, block_size: int = 256, *, code: str = "dynamic",
                           subtract_mean: bool = True) -> DoubleQuantizedAbsmax:
    r"""Quantize the float32 block scales ``absmax`` to 8 bits, in blocks of ``block_size``, after
    subtracting their mean (:math:`\hat m_b = s_j d_{k_b} + \mu`, see the module docstring).

    ``code``: ``"dynamic"`` (bitsandbytes' dynamic 8-bit map, what QLoRA uses) or ``"linear"`` (int8).
    ``subtract_mean=False`` is the naive variant, kept to show what centring buys.
    """
    import torch

    if not torch.is_tensor(absmax):
        raise TypeError(f"absmax must be a torch.Tensor, got {type(absmax).__name__}")
    if not absmax.is_floating_point():
        raise TypeError(f"absmax must be a floating-point tensor, got dtype {absmax.dtype}")
    if absmax.dim() != 1 or absmax.numel() == 0:
        raise ValueError(f"Invalid absmax: expected a non-empty 1-d tensor, got shape {tuple(absmax.shape)}")
    block_size = check_positive_int("block_size", block_size)
    code = check_choice("code", code, CODES)
    values = absmax.detach().to(torch.float32)
    if not torch.isfinite(values).all():
        raise ValueError("Invalid absmax: contains NaN or infinity")
    mean = values.mean() if subtract_mean else torch.zeros((), device=values.device)
    n_blocks = -(-values.numel() // block_size)
    padded = torch.zeros(n_blocks * block_size, device=values.device)
    padded[: values.numel()] = values - mean
    blocks = padded.view(n_blocks, block_size)
    scales = blocks.abs().amax(dim=1)
    normalized = blocks / torch.where(scales > 0, scales, torch.ones_like(scales)).unsqueeze(1)
    levels = _code(code, values.device)
    # Nearest level by binary search over the sorted map (a 256-wide argmin would cost 256x the memory).
    right = torch.searchsorted(levels, normalized.contiguous()).clamp(1, levels.numel() - 1)
    left = right - 1
    nearer_left = (normalized - levels[left]).abs() <= (levels[right] - normalized).abs()
    codes = torch.where(nearer_left, left, right).to(torch.uint8).view(-1)[: values.numel()]
    return DoubleQuantizedAbsmax(codes=codes, scales=scales, mean=mean, numel=values.numel(),
                                 block_size=block_size, code=code)


def dequantize_absmax(q: DoubleQuantizedAbsmax):
    r"""The scales that ``q`` stands for: :math:`\hat m_b = s_j\, d_{k_b} + \mu` (float32, 1-d)."""
    import torch

    if not isinstance(q, DoubleQuantizedAbsmax):
        raise TypeError(f"q must be a DoubleQuantizedAbsmax (from double_quantize_absmax), got {type(q).__name__}")
    levels = _code(q.code, q.codes.device)
    scale = q.scales.repeat_interleave(q.block_size)[: q.numel]
    return levels[q.codes.long()] * scale + q.mean


@dataclass
class NF4DoubleQuantTensor:
    """An NF4 tensor whose per-block absmax is itself stored in 8 bits (QLoRA's storage format)."""

    packed: "torch.Tensor"  # uint8, two 4-bit codes per byte
    absmax: DoubleQuantizedAbsmax
    shape: tuple
    block_size: int
    dtype: "torch.dtype"

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of every stored array: packed codes, 8-bit scale codes, second-level scales, mean."""
        return self.packed.numel() * self.packed.element_size() + self.absmax.nbytes

    @property
    def bits_per_weight(self) -> float:
        return 8.0 * self.nbytes / self.numel

    def dequantize(self):
        return dequantize_nf4_double(self)


def quantize_nf4_double(weight, block_size: int = 64, scale_block_size: int = 256, *, code: str = "dynamic",
                        subtract_mean: bool = True) -> NF4DoubleQuantTensor:
    """NF4 with double quantization: :func:`~companion.compression.nf4.quantize_nf4` (the 4-bit codes
    are chosen with the exact absmax, as in bitsandbytes), then :func:`double_quantize_absmax` on the
    block scales."""
    scale_block_size = check_positive_int("scale_block_size", scale_block_size)
    q = quantize_nf4(weight, block_size=block_size)
    dq = double_quantize_absmax(q.absmax, scale_block_size, code=code, subtract_mean=subtract_mean)
    return NF4DoubleQuantTensor(packed=q.packed, absmax=dq, shape=q.shape, block_size=q.block_size, dtype=q.dtype)


def dequantize_nf4_double(q: NF4DoubleQuantTensor):
    r"""The weight that ``q`` stands for: :math:`\hat w = \hat m_b\, q_c`, in the original shape and dtype."""
    if not isinstance(q, NF4DoubleQuantTensor):
        raise TypeError(f"q must be an NF4DoubleQuantTensor (from quantize_nf4_double), got {type(q).__name__}")
    single = NF4Tensor(packed=q.packed, absmax=dequantize_absmax(q.absmax), shape=q.shape,
                       block_size=q.block_size, dtype=q.dtype)
    return dequantize_nf4(single)
