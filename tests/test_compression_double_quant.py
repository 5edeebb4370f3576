"""companion.compression.double_quant: QLoRA's double quantization of the NF4 block scales.

bitsandbytes is not a dependency; the dynamic map is checked against its construction (the
decades of ``create_dynamic_map``) and the storage against the paper's 4 + 8/64 + 32/(64 * 256) bits.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from companion.compression.double_quant import (  # noqa: E402
    DoubleQuantizedAbsmax,
    NF4DoubleQuantTensor,
    dequantize_absmax,
    dequantize_nf4_double,
    double_quantize_absmax,
    dynamic_map,
    quantize_nf4_double,
)
from companion.compression.nf4 import dequantize_nf4, quantize_nf4  # noqa: E402


def test_dynamic_map_is_bitsandbytes_construction():
    m = dynamic_map().numpy().astype(np.float64)
    assert m.shape == (256,) and np.all(np.diff(m) >= 0)
    assert m[-1] == 1.0 and (m == 0).sum() == 1
    assert (m > 0).sum() == 128 and (m < 0).sum() == 127
    # Decade 10^-(6-i) holds the 2^i midpoints of linspace(0.1, 1, 2^i + 1), scaled, on each side.
    expected = []
    for i in range(7):
        b = np.linspace(0.1, 1, 2**i + 1)
        expected += list(10.0 ** (i - 6) * (b[:-1] + b[1:]) / 2)
    np.testing.assert_allclose(np.sort(m[m > 0])[:-1], np.sort(expected), rtol=1e-6)
    np.testing.assert_allclose(np.sort(-m[m < 0]), np.sort(expected), rtol=1e-6)
    assert m[m > 0].min() == pytest.approx(5.5e-7) and m.min() == pytest.approx(-(1 - 0.9 / 128), rel=1e-6)


@pytest.mark.parametrize("code", ["dynamic", "linear"])
def test_codes_are_the_nearest_level_and_error_is_bounded(code):
    gen = torch.Generator().manual_seed(0)
    absmax = 0.05 + 0.02 * torch.rand(1000, generator=gen)  # 1000 scales: the last of 4 blocks is partial
    q = double_quantize_absmax(absmax, block_size=256, code=code)
    assert q.codes.dtype == torch.uint8 and q.codes.numel() == 1000 and q.scales.numel() == 4
    assert q.mean.item() == pytest.approx(absmax.mean().item(), rel=1e-6)
    levels = dynamic_map() if code == "dynamic" else torch.arange(-127, 128, dtype=torch.float32) / 127
    centred = torch.zeros(1024)
    centred[:1000] = absmax - q.mean
    s = centred.view(4, 256).abs().amax(1)
    torch.testing.assert_close(q.scales, s)
    normalized = (centred.view(4, 256) / s[:, None]).reshape(-1)[:1000]
    brute = (normalized[:, None] - levels).abs().min(1).values
    chosen = (normalized - levels[q.codes.long()]).abs()
    torch.testing.assert_close(chosen, brute, rtol=0, atol=1e-7)
    m_hat = dequantize_absmax(q)
    half_gap = torch.diff(levels).max() / 2
    bound = s.repeat_interleave(256)[:1000] * half_gap
    assert torch.all((m_hat - absmax).abs() <= bound + 1e-7)
    # A block's extreme centred value is exact when it maps to a level +-1: +1 in both maps, -1 in the
    # linear map only (the dynamic map's most negative level is -(1 - 0.9/128)).
    top = centred.view(4, 256).abs().argmax(1) + torch.arange(4) * 256
    top = top[top < 1000]
    exact = top[centred[top] > 0] if code == "dynamic" else top
    assert exact.numel() >= 1
    torch.testing.assert_close(m_hat[exact], absmax[exact], rtol=1e-6, atol=0)


def test_equal_scales_are_exact():
    q = double_quantize_absmax(torch.full((300,), 0.125))
    assert torch.equal(q.scales, torch.zeros(2))
    assert torch.equal(dequantize_absmax(q), torch.full((300,), 0.125))


def test_bits_per_weight_counted_from_the_stored_arrays():
    torch.manual_seed(0)
    w = 0.02 * torch.randn(2048, 512)  # 1,048,576 weights: 16,384 blocks of 64, 64 blocks of 256 scales
    n = w.numel()
    single = quantize_nf4(w, block_size=64)
    double = quantize_nf4_double(w, block_size=64, scale_block_size=256)
    assert isinstance(double, NF4DoubleQuantTensor) and isinstance(double.absmax, DoubleQuantizedAbsmax)
    stored = [double.packed, double.absmax.codes, double.absmax.scales, double.absmax.mean]
    assert [t.dtype for t in stored] == [torch.uint8, torch.uint8, torch.float32, torch.float32]
    nbytes = sum(t.numel() * t.element_size() for t in stored)
    assert nbytes == n // 2 + n // 64 + 4 * n // (64 * 256) + 4 == double.nbytes
    assert 8 * nbytes / n == double.bits_per_weight
    assert double.bits_per_weight == pytest.approx(4 + 8 / 64 + 32 / (64 * 256), abs=1e-4)
    assert round(double.bits_per_weight, 3) == 4.127 and single.bits_per_weight == 4.5
    # The same 4-bit codes; only the scales are approximate, which costs almost nothing in error.
    assert torch.equal(double.packed, single.packed)
    err_single = (dequantize_nf4(single) - w).pow(2).mean().sqrt()
    err_double = (dequantize_nf4_double(double) - w).pow(2).mean().sqrt()
    assert err_single < err_double < 1.002 * err_single


def test_without_mean_subtraction_the_scales_are_worse():
    torch.manual_seed(0)
    w = 0.02 * torch.randn(1024, 256)
    absmax = quantize_nf4(w).absmax
    for code, factor in (("dynamic", 2.0), ("linear", 1.5)):
        errors = {}
        for subtract_mean in (True, False):
            q = double_quantize_absmax(absmax, code=code, subtract_mean=subtract_mean)
            errors[subtract_mean] = (dequantize_absmax(q) - absmax).pow(2).mean().sqrt().item()
        assert errors[False] > factor * errors[True], (code, errors)
    naive = quantize_nf4_double(w, subtract_mean=False)
    assert naive.absmax.mean.item() == 0.0
    err = {v: (dequantize_nf4_double(quantize_nf4_double(w, subtract_mean=v)) - w).pow(2).mean().item() for v in (True, False)}
    assert err[False] > err[True]


def test_shape_dtype_and_zeros_are_kept():
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        w = torch.randn(7, 33).to(dtype)
        w_hat = quantize_nf4_double(w, block_size=16, scale_block_size=4).dequantize()
        assert w_hat.shape == w.shape and w_hat.dtype == dtype
    w = torch.zeros(4, 64)
    w[1] = torch.randn(64)
    w_hat = dequantize_nf4_double(quantize_nf4_double(w, block_size=64))
    assert torch.equal(w_hat[0], torch.zeros(64)) and torch.equal(w_hat[2:], torch.zeros(2, 64))


@pytest.mark.parametrize(
    "absmax, kwargs, error, match",
    [
        ([1.0, 2.0], {}, TypeError, "absmax"),
        (torch.ones(4, dtype=torch.int32), {}, TypeError, "absmax"),
        (torch.ones(2, 3), {}, ValueError, "absmax"),
        (torch.ones(0), {}, ValueError, "absmax"),
        (torch.tensor([1.0, float("inf")]), {}, ValueError, "absmax"),
        (torch.ones(4), {"block_size": 0}, ValueError, "block_size"),
        (torch.ones(4), {"block_size": 2.5}, TypeError, "block_size"),
        (torch.ones(4), {"code": "fp8"}, ValueError, "code"),
    ],
)
def test_bad_input(absmax, kwargs, error, match):
    with pytest.raises(error, match=match):
        double_quantize_absmax(absmax, **kwargs)


def test_bad_input_of_the_nf4_path():
    with pytest.raises(ValueError, match="scale_block_size"):
        quantize_nf4_double(torch.ones(64), scale_block_size=0)
    with pytest.raises(ValueError, match="block_size"):
        quantize_nf4_double(torch.ones(64), block_size=3)
    with pytest.raises(TypeError, match="NF4DoubleQuantTensor"):
        dequantize_nf4_double(quantize_nf4(torch.ones(64)))
    with pytest.raises(TypeError, match="DoubleQuantizedAbsmax"):
        dequantize_absmax(torch.ones(4))
