"""companion.compression.measure: sizes, counts, latency and optimizer state against hand computations."""

from __future__ import annotations

import gzip
import io

import pytest

torch = pytest.importorskip("torch")

from companion.compression.measure import (  # noqa: E402
    count_parameters,
    gzipped_size,
    measure_latency,
    model_size,
    optimizer_state_bytes,
)


def test_count_parameters_torch():
    model = torch.nn.Sequential(torch.nn.Linear(10, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    assert count_parameters(model) == 10 * 5 + 5 + 5 * 2 + 2
    model[0].weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 5 + 5 * 2 + 2


def test_count_parameters_keras():
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(5), keras.layers.Dense(2)])
    model.layers[0].trainable = False
    assert count_parameters(model) == 10 * 5 + 5 + 5 * 2 + 2
    assert count_parameters(model, trainable_only=True) == 5 * 2 + 2


def test_model_size_is_torch_save_and_zeros_compress():
    torch.manual_seed(0)
    dense = torch.nn.Linear(200, 100)
    size = model_size(dense)
    buffer = io.BytesIO()
    torch.save(dense.state_dict(), buffer)
    assert size.bytes == len(buffer.getvalue())
    assert size.gzipped_bytes == len(gzip.compress(buffer.getvalue(), compresslevel=9, mtime=0))
    assert size.bytes > 4 * (200 * 100 + 100)  # float32 payload plus the pickle's framing
    with torch.no_grad():
        dense.weight[:, 20:] = 0.0  # 90% zeros
    assert model_size(dense).bytes == size.bytes  # dense storage: zeros cost as much as any float
    assert model_size(dense).gzipped_bytes < size.gzipped_bytes / 3


def test_gzipped_size_of_bytes_and_files(tmp_path):
    data = b"abc" * 1000
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert gzipped_size(data) == gzipped_size(path) == gzipped_size(str(path)) < len(data)
    with pytest.raises(TypeError, match="data"):
        gzipped_size(123)


def test_measure_latency_counts_calls():
    calls = []
    latency = measure_latency(lambda x: calls.append(x), 1, repeats=7, warmup=3)
    assert len(calls) == 10 and latency.repeats == 7
    assert 0 <= latency.p25_ms <= latency.median_ms <= latency.p75_ms


def test_optimizer_state_bytes_adam_holds_two_moments():
    model = torch.nn.Linear(30, 20)
    opt = torch.optim.Adam(model.parameters())
    assert optimizer_state_bytes(opt) == 0  # lazily created
    model(torch.randn(4, 30)).sum().backward()
    opt.step()
    n = 30 * 20 + 20
    # exp_avg and exp_avg_sq in float32, plus a scalar float32 step per parameter tensor
    assert optimizer_state_bytes(opt) == 2 * 4 * n + 2 * 4
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    sgd.step()
    assert optimizer_state_bytes(sgd) == 0


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: count_parameters(object()), TypeError, "model"),
        (lambda: model_size("model.pt"), TypeError, "module"),
        (lambda: measure_latency(None), TypeError, "fn"),
        (lambda: measure_latency(print, repeats=0), ValueError, "repeats"),
        (lambda: measure_latency(print, warmup=-1), ValueError, "warmup"),
        (lambda: optimizer_state_bytes([]), TypeError, "optimizer"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
