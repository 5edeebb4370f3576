"""companion.compression.quantization against torch.ao.quantization and torch's quantize functions."""

import warnings

import pytest

torch = pytest.importorskip("torch")

from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver  # noqa: E402

from companion.compression.quantization import (  # noqa: E402
    NF4Linear,
    QuantizableMLP,
    affine_qparams,
    dequantize_affine,
    dynamic_int8,
    fake_quantize,
    minmax_qparams,
    nf4_weight_only,
    quant_range,
    quantize_affine,
    static_int8,
)
from companion.compression.nf4 import dequantize_nf4, quantize_nf4  # noqa: E402

# (torch dtype, per-tensor qscheme, per-channel qscheme, symmetric): the two pairs torch uses by default,
# qint8 symmetric for weights and quint8 affine for activations.
SCHEMES = [
    (torch.qint8, torch.per_tensor_symmetric, torch.per_channel_symmetric, True),
    (torch.quint8, torch.per_tensor_affine, torch.per_channel_affine, False),
]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():  # torch's deprecation notices for torch.ao.quantization / quantize_per_tensor
        warnings.simplefilter("ignore")
        yield


def samples():
    gen = torch.Generator().manual_seed(0)
    yield torch.randn(8, 37, generator=gen)  # straddles 0
    yield torch.rand(8, 37, generator=gen) * 3 + 0.5  # all positive (ReLU outputs)
    yield -torch.rand(8, 37, generator=gen) * 0.01  # all negative, tiny
    yield torch.randn(8, 37, generator=gen) * torch.logspace(-3, 2, 8).unsqueeze(1)  # rows of very different size
    yield torch.zeros(8, 37)  # constant: scale falls back to eps


def test_quant_range():
    assert quant_range(8, True) == (-128, 127)
    assert quant_range(8, False) == (0, 255)
    assert quant_range(4, True) == (-8, 7)


@pytest.mark.parametrize("dtype, qscheme, _, symmetric", SCHEMES)
def test_per_tensor_qparams_and_integers_match_torch(dtype, qscheme, _, symmetric):
    qmin, qmax = quant_range(8, symmetric)
    for x in samples():
        observer = MinMaxObserver(dtype=dtype, qscheme=qscheme)
        observer(x)
        scale, zero_point = observer.calculate_qparams()
        mine_scale, mine_zero_point = minmax_qparams(x, symmetric=symmetric)
        assert torch.equal(mine_scale, scale.reshape(()))
        assert torch.equal(mine_zero_point, zero_point.reshape(()))
        expected = torch.quantize_per_tensor(x, float(scale), int(zero_point), dtype)
        q = quantize_affine(x, mine_scale, mine_zero_point, qmin, qmax)
        assert torch.equal(q, expected.int_repr().long())
        assert torch.equal(dequantize_affine(q, mine_scale, mine_zero_point), expected.dequantize())


def test_affine_qparams_from_numbers():
    scale, zero_point = affine_qparams(-1.0, 3.0, num_bits=8, symmetric=False)
    assert torch.isclose(scale, torch.tensor(4.0 / 255)) and int(zero_point) == 64
    scale, zero_point = affine_qparams(-1.0, 3.0, num_bits=8, symmetric=True)
    assert torch.isclose(scale, torch.tensor(3.0 / 127.5)) and int(zero_point) == 0
    scale, zero_point = affine_qparams(0.5, 2.0, symmetric=True, signed=False)  # range widened to contain 0
    assert int(zero_point) == 128 and torch.isclose(scale, torch.tensor(2.0 / 127.5))


@pytest.mark.parametrize("dtype, _, qscheme, symmetric", SCHEMES)
@pytest.mark.parametrize("axis", [0, 1])
def test_per_channel_qparams_and_integers_match_torch(dtype, _, qscheme, symmetric, axis):
    qmin, qmax = quant_range(8, symmetric)
    for x in samples():
        observer = PerChannelMinMaxObserver(ch_axis=axis, dtype=dtype, qscheme=qscheme)
        observer(x)
        scale, zero_point = observer.calculate_qparams()
        mine_scale, mine_zero_point = minmax_qparams(x, axis=axis, symmetric=symmetric)
        assert torch.equal(mine_scale, scale.to(torch.float32))
        assert torch.equal(mine_zero_point, zero_point.long())
        expected = torch.quantize_per_channel(x, scale, zero_point, axis, dtype)
        q = quantize_affine(x, mine_scale, mine_zero_point, qmin, qmax, axis=axis)
        assert torch.equal(q, expected.int_repr().long())
        assert torch.allclose(dequantize_affine(q, mine_scale, mine_zero_point, axis=axis), expected.dequantize())


def test_per_channel_is_never_worse_than_per_tensor():
    x = next(s for i, s in enumerate(samples()) if i == 3)
    qmin, qmax = quant_range(8, True)
    errors = {}
    for axis in (None, 0):
        scale, zero_point = minmax_qparams(x, axis=axis, symmetric=True)
        q = quantize_affine(x, scale, zero_point, qmin, qmax, axis=axis)
        errors[axis] = (dequantize_affine(q, scale, zero_point, axis=axis) - x).abs().amax(dim=1)
    assert torch.all(errors[0] <= errors[None] + 1e-9)


@pytest.mark.parametrize("symmetric", [True, False])
def test_fake_quantize_matches_torch_forward_and_gradient(symmetric):
    qmin, qmax = quant_range(8, symmetric)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(64, 9, generator=gen) * 2
    scale, zero_point = minmax_qparams(x[:, :4], symmetric=symmetric)  # a narrow range: some values are clamped
    mine_x = x.clone().requires_grad_(True)
    theirs_x = x.clone().requires_grad_(True)
    mine = fake_quantize(mine_x, scale, zero_point, qmin, qmax)
    theirs = torch.fake_quantize_per_tensor_affine(theirs_x, float(scale), int(zero_point), qmin, qmax)
    assert torch.equal(mine, theirs)
    weights = torch.randn(64, 9, generator=gen)
    (mine * weights).sum().backward()
    (theirs * weights).sum().backward()
    assert torch.equal(mine_x.grad, theirs_x.grad)
    assert (mine_x.grad == 0).any() and (mine_x.grad != 0).any()  # both regimes of the estimator occur


def test_fake_quantize_per_channel_matches_torch():
    qmin, qmax = quant_range(8, True)
    x = torch.randn(6, 20, generator=torch.Generator().manual_seed(2))
    scale, zero_point = minmax_qparams(x, axis=0, symmetric=True)
    expected = torch.fake_quantize_per_channel_affine(x, scale, zero_point.int(), 0, qmin, qmax)
    assert torch.equal(fake_quantize(x, scale, zero_point, qmin, qmax, axis=0), expected)


def test_bad_input():
    x = torch.randn(3, 4)
    with pytest.raises(ValueError, match="num_bits"):
        affine_qparams(-1.0, 1.0, num_bits=1)
    with pytest.raises(ValueError, match="num_bits"):
        quant_range(17)
    with pytest.raises(TypeError, match="num_bits"):
        quant_range(8.0)
    with pytest.raises(ValueError, match="x_min"):
        affine_qparams(2.0, 1.0)
    with pytest.raises(ValueError, match="x_min"):
        affine_qparams(float("nan"), 1.0)
    with pytest.raises(ValueError, match="x_max"):
        affine_qparams(0.0, float("inf"))
    with pytest.raises(ValueError, match="scale"):
        quantize_affine(x, -0.1, 0, -128, 127)
    with pytest.raises(ValueError, match="scale"):
        dequantize_affine(torch.zeros(3, dtype=torch.int64), 0.0, 0)
    with pytest.raises(ValueError, match="zero_point"):
        quantize_affine(x, 0.1, 300, -128, 127)
    with pytest.raises(ValueError, match="axis"):
        quantize_affine(x, torch.ones(3), torch.zeros(3), -128, 127, axis=2)
    with pytest.raises(ValueError, match="axis"):
        minmax_qparams(x, axis=-3)
    with pytest.raises(ValueError, match="scale"):
        quantize_affine(x, torch.ones(4), torch.zeros(4), -128, 127, axis=0)  # 3 channels on axis 0
    with pytest.raises(ValueError, match="x"):
        quantize_affine(torch.tensor([float("nan")]), 0.1, 0, -128, 127)
    with pytest.raises(ValueError, match="qmin"):
        quantize_affine(x, 0.1, 0, 127, -128)
    with pytest.raises(TypeError, match="x"):
        quantize_affine(torch.ones(3, dtype=torch.int64), 0.1, 0, -128, 127)
    with pytest.raises(TypeError, match="model"):
        dynamic_int8(torch.nn.Linear(3, 3))
    with pytest.raises(TypeError, match="linear"):
        NF4Linear(torch.nn.Conv1d(1, 1, 1))
    with pytest.raises(ValueError, match="model"):
        nf4_weight_only(torch.nn.ReLU())


def tiny_model():
    torch.manual_seed(0)
    return QuantizableMLP((12, 16, 16, 3)).eval()


def test_dynamic_and_static_int8_stay_close_to_float():
    model = tiny_model()
    x = torch.rand(64, 12)
    with torch.no_grad():
        reference = model(x)
        for quantized in (dynamic_int8(model), static_int8(model, x)):
            assert (quantized(x) - reference).abs().max() < 0.05 * reference.abs().max()
    assert isinstance(model.fc1, torch.nn.Linear)  # the float model is left untouched


def test_nf4_linear_computes_with_the_dequantized_weight():
    model = tiny_model()
    quantized = nf4_weight_only(model, block_size=16)
    assert not any(isinstance(m, torch.nn.Linear) for m in quantized.modules())
    x = torch.randn(5, 12)
    w = dequantize_nf4(quantize_nf4(model.fc1.weight.detach(), block_size=16))
    expected = torch.nn.functional.linear(x, w, model.fc1.bias.detach())
    assert torch.allclose(quantized.fc1(x), expected)
    assert set(quantized.state_dict()) >= {"fc1.packed", "fc1.absmax", "fc1.bias"}
    assert quantized.fc1.packed.dtype == torch.uint8 and quantized.fc1.packed.numel() == 16 * 12 // 2
