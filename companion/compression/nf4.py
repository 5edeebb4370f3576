r"""4-bit NormalFloat (NF4), the data type of QLoRA (Dettmers et al., 2023).

Pretrained weights are roughly normally distributed, so NF4 places its 16 levels at quantiles of
:math:`\mathcal N(0, 1)`, rescaled to :math:`[-1, 1]`: every level is used about equally often, which
makes NF4 *information-theoretically optimal* for normal data. To keep an exact zero, the 8 positive
and 7 negative levels are built from two separate halves (``bitsandbytes.functional.create_normal_map``
with ``offset = 0.9677``):

.. math::
    q^+_i = \Phi^{-1}\bigl(\delta_i\bigr),\ \delta_i \in \operatorname{linspace}(0.9677, 0.5, 9)_{0..7},
    \qquad
    q^-_j = -\Phi^{-1}\bigl(\delta_j\bigr),\ \delta_j \in \operatorname{linspace}(0.9677, 0.5, 8)_{0..6},

then all 16 values (with 0) are divided by the largest. A weight tensor is quantized *blockwise*:
each block of ``block_size`` consecutive values (64 in QLoRA) is scaled by its absolute maximum
:math:`m_b`, and every value is stored as the 4-bit index of the nearest level:

.. math::
    c = \arg\min_k \bigl| w / m_b - q_k \bigr|, \qquad \hat w = m_b\, q_c .

Storage: 4 bits per weight (two codes per byte) plus one float32 ``absmax`` per block, that is
:math:`4 + 32/64 = 4.5` bits per weight. QLoRA's *double quantization* (absmax values themselves
quantized to 8 bits) brings it to about 4.127 bits: :mod:`companion.compression.double_quant`.

Checked in ``tests/test_compression_nf4.py``: the levels against the construction above computed with
``scipy.stats.norm``, nearest-level codes against a brute-force search, exact zero and exact block
maxima, the error bound, packing round trips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._checks import check_positive_int

__all__ = ["NF4_LEVELS", "NF4Tensor", "dequantize_nf4", "quantize_nf4"]

# The 16 NF4 levels as QLoRA / bitsandbytes define them (sorted; index 7 is the exact zero).
NF4_LEVELS = (
    -1.0,
    -0.6961928009986877,
    -0.5250730514526367,
    -0.39491748809814453,
    -0.28444138169288635,
    -0.18477343022823334,
    -0.09105003625154495,
    0.0,
    0.07958029955625534,
    0.16093020141124725,
    0.24611230194568634,
    0.33791524171829224,
    0.44070982933044434,
    0.5626170039176941,
    0.7229568362236023,
    1.0,
)


@dataclass
class NF4Tensor:
    """A tensor stored in NF4: packed 4-bit codes, one float32 absmax per block, and how to unpack."""

    packed: "torch.Tensor"  # uint8, two codes per byte (low nibble first)
    absmax: "torch.Tensor"  # float32, one per block
    shape: tuple
    block_size: int
    dtype: "torch.dtype"  # dtype of the original (and of the dequantized) tensor

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes held: the packed codes plus the per-block scales."""
        return self.packed.numel() * self.packed.element_size() + self.absmax.numel() * self.absmax.element_size()

    @property
    def bits_per_weight(self) -> float:
        return 8.0 * self.nbytes / self.numel

    def dequantize(self) -> "torch.Tensor":
        return dequantize_nf4(self)


def _levels(device):
    import torch

    return torch.tensor(NF4_LEVELS, dtype=torch.float32, device=device)


def quantize_nf4(weight, block_size: int = 64) -> NF4Tensor:
    """Quantize a floating-point tensor to NF4, blockwise over its flattened values.

    The last block is zero-padded when ``weight.numel()`` is not a multiple of ``block_size``.
    """
    import torch

    if not torch.is_tensor(weight):
        raise TypeError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
    if not weight.is_floating_point():
        raise TypeError(f"weight must be a floating-point tensor, got dtype {weight.dtype}")
    if weight.numel() == 0:
        raise ValueError("Invalid weight: empty tensor")
    block_size = check_positive_int("block_size", block_size)
    if block_size % 2:
        raise ValueError(f"Invalid block_size: {block_size} (must be even: two 4-bit codes share a byte)")
    flat = weight.detach().reshape(-1).to(torch.float32)
    if not torch.isfinite(flat).all():
        raise ValueError("Invalid weight: contains NaN or infinity")
    n_blocks = -(-flat.numel() // block_size)
    padded = torch.zeros(n_blocks * block_size, dtype=torch.float32, device=flat.device)
    padded[: flat.numel()] = flat
    blocks = padded.view(n_blocks, block_size)
    absmax = blocks.abs().amax(dim=1)
    # An all-zero block keeps absmax 0 (it dequantizes to zeros); divide by 1 instead of 0.
    normalized = blocks / torch.where(absmax > 0, absmax, torch.ones_like(absmax)).unsqueeze(1)
    levels = _levels(flat.device)
    codes = (normalized.unsqueeze(-1) - levels).abs().argmin(dim=-1).to(torch.uint8).view(-1)
    packed = codes[0::2] | (codes[1::2] << 4)
    return NF4Tensor(packed=packed, absmax=absmax, shape=tuple(weight.shape), block_size=block_size, dtype=weight.dtype)


def dequantize_nf4(q: NF4Tensor):
    """The tensor that ``q`` stands for: :math:`\\hat w = m_b\\, q_c`, in the original shape and dtype."""
    import torch

    if not isinstance(q, NF4Tensor):
        raise TypeError(f"q must be an NF4Tensor (from quantize_nf4), got {type(q).__name__}")
    codes = torch.stack([q.packed & 0x0F, q.packed >> 4], dim=1).view(-1).long()
    values = _levels(q.packed.device)[codes].view(-1, q.block_size) * q.absmax.unsqueeze(1)
    return values.view(-1)[: q.numel].view(q.shape).to(q.dtype)
