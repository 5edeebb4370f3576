"""companion.compression.nf4 against the NF4 construction of QLoRA (bitsandbytes' create_normal_map)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from scipy.stats import norm  # noqa: E402

from companion.compression.nf4 import NF4_LEVELS, NF4Tensor, dequantize_nf4, quantize_nf4  # noqa: E402


def test_levels_are_the_normal_quantiles_of_qlora():
    offset = 0.9677083  # bitsandbytes.functional.create_normal_map(offset=0.9677083, use_extra_value=True)
    positive = norm.ppf(np.linspace(offset, 0.5, 9)[:-1])
    negative = -norm.ppf(np.linspace(offset, 0.5, 8)[:-1])
    values = np.sort(np.concatenate([positive, [0.0], negative]))
    values /= values.max()
    np.testing.assert_allclose(np.array(NF4_LEVELS), values, atol=2e-7)
    assert len(NF4_LEVELS) == 16 and NF4_LEVELS[7] == 0.0


def test_codes_are_the_nearest_level_and_round_trip():
    torch.manual_seed(0)
    w = torch.randn(37, 29)  # 1073 values: the last block is padded
    q = quantize_nf4(w, block_size=64)
    w_hat = dequantize_nf4(q)
    assert w_hat.shape == w.shape and w_hat.dtype == w.dtype
    flat = torch.zeros(q.absmax.numel() * 64)
    flat[: w.numel()] = w.reshape(-1)
    blocks = flat.view(-1, 64)
    absmax = blocks.abs().amax(dim=1, keepdim=True)
    levels = np.array(NF4_LEVELS)
    brute = absmax.numpy() * levels[np.abs(blocks.numpy()[..., None] / absmax.numpy()[..., None] - levels).argmin(-1)]
    np.testing.assert_allclose(w_hat.reshape(-1).numpy(), brute.reshape(-1)[: w.numel()], rtol=1e-6, atol=1e-7)
    # Error bound: half the widest gap between neighbouring levels, times the block's absmax.
    half_gap = np.max(np.diff(levels)) / 2
    err = (w_hat - w).abs().reshape(-1)
    bound = absmax.expand(-1, 64).reshape(-1)[: w.numel()] * half_gap
    assert torch.all(err <= bound + 1e-6)


def test_zero_and_block_maxima_are_exact():
    w = torch.tensor([[0.0, 0.5, -2.0, 0.25], [3.0, 0.0, 0.0, -1.0]])
    w_hat = quantize_nf4(w, block_size=4).dequantize()
    assert w_hat[0, 0] == 0.0 and w_hat[1, 1] == 0.0
    assert w_hat[0, 2] == -2.0 and w_hat[1, 0] == 3.0
    assert torch.equal(quantize_nf4(torch.zeros(8), block_size=4).dequantize(), torch.zeros(8))


def test_storage_is_four_and_a_half_bits_per_weight():
    q = quantize_nf4(torch.randn(256, 128), block_size=64)
    assert isinstance(q, NF4Tensor)
    assert q.packed.dtype == torch.uint8 and q.packed.numel() == 256 * 128 // 2
    assert q.nbytes == 256 * 128 // 2 + 4 * 256 * 128 // 64
    assert q.bits_per_weight == pytest.approx(4.5)


def test_float16_and_bfloat16_keep_their_dtype():
    for dtype in (torch.float16, torch.bfloat16):
        w = torch.randn(8, 8).to(dtype)
        assert dequantize_nf4(quantize_nf4(w)).dtype == dtype


@pytest.mark.parametrize(
    "weight, block_size, error, match",
    [
        ([1.0, 2.0], 64, TypeError, "weight"),
        ("int", 64, TypeError, "floating-point"),
        ("nan", 64, ValueError, "NaN"),
        ("ok", 0, ValueError, "block_size"),
        ("ok", 3, ValueError, "block_size"),
        ("ok", 2.0, TypeError, "block_size"),
        ("empty", 64, ValueError, "empty"),
    ],
)
def test_bad_input(weight, block_size, error, match):
    weight = {
        "int": torch.ones(4, dtype=torch.int64),
        "nan": torch.tensor([1.0, float("nan")]),
        "ok": torch.ones(4),
        "empty": torch.ones(0),
    }.get(weight, weight) if isinstance(weight, str) else weight
    with pytest.raises(error, match=match):
        quantize_nf4(weight, block_size=block_size)
    with pytest.raises(TypeError, match="NF4Tensor"):
        dequantize_nf4(torch.ones(4))
