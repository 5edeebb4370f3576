"""LoRA and QLoRA (companion.compression.lora): exact start, merge = unmerged forward, gradients, errors."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from companion.compression.lora import (  # noqa: E402
    LoRALinear,
    QLoRALinear,
    TransferConfig,
    apply_lora,
    build_mlp,
    count_all_parameters,
    digit_subset,
    finetune,
    lora_parameter_count,
    merge_lora,
    train,
    trainable_parameters,
)
from companion.compression.nf4 import dequantize_nf4, quantize_nf4  # noqa: E402


def make_linear(n_in=12, n_out=8, seed=0, bias=True):
    torch.manual_seed(seed)
    return nn.Linear(n_in, n_out, bias=bias)


def randomize_b(layer, seed=1):
    """B = 0 at init; give it values so that the update is not trivially zero."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g))


def test_zero_b_gives_exactly_the_base_output():
    base = make_linear()
    x = torch.randn(5, 12)
    expected = base(x)
    layer = LoRALinear(base, rank=3, alpha=6)
    assert torch.count_nonzero(layer.lora_B) == 0
    assert torch.count_nonzero(layer.lora_A) == layer.lora_A.numel()  # A is random, not zero
    assert torch.equal(layer(x), expected)


def test_a_init_is_kaiming_uniform_as_in_peft():
    layer = LoRALinear(make_linear(n_in=400, n_out=300), rank=8)
    bound = 1 / np.sqrt(400)  # kaiming_uniform_(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert layer.lora_A.abs().max() <= bound
    assert layer.lora_A.abs().max() > 0.9 * bound


def test_forward_equals_the_formula():
    base = make_linear()
    layer = LoRALinear(base, rank=2, alpha=5)
    randomize_b(layer)
    x = torch.randn(4, 12)
    expected = x @ base.weight.T + base.bias + (5 / 2) * x @ layer.lora_A.T @ layer.lora_B.T
    torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("bias", [True, False])
def test_merge_equals_unmerged_forward_and_unmerge_restores_w0(bias):
    base = make_linear(bias=bias)
    w0 = base.weight.detach().clone()
    layer = LoRALinear(base, rank=4, alpha=8)
    randomize_b(layer)
    x = torch.randn(6, 12)
    unmerged = layer(x)
    layer.merge()
    assert layer.merged
    torch.testing.assert_close(layer(x), unmerged, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(layer.base.weight, w0 + layer.delta_weight())
    with pytest.raises(RuntimeError):
        layer.merge()
    layer.unmerge()
    assert not layer.merged
    torch.testing.assert_close(layer.base.weight, w0, rtol=0, atol=1e-6)
    torch.testing.assert_close(layer(x), unmerged)
    with pytest.raises(RuntimeError):
        layer.unmerge()


def test_merge_lora_returns_plain_linears_with_the_same_outputs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    apply_lora(model, rank=2, alpha=4, target=["0", "2"], trainable=["4"])
    for m in model.modules():
        if isinstance(m, LoRALinear):
            randomize_b(m)
    x = torch.randn(7, 10)
    merged = merge_lora(model)
    assert not any(isinstance(m, LoRALinear) for m in merged.modules())
    assert [type(m) for m in merged] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    torch.testing.assert_close(merged(x), model(x), rtol=1e-5, atol=1e-5)
    assert sum(p.numel() for p in merged.parameters()) == 10 * 16 + 16 + 16 * 16 + 16 + 16 * 3 + 3
    assert isinstance(model[0], LoRALinear)  # the adapted model is left as it was


def test_only_adapters_and_head_get_gradients():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3))
    apply_lora(model, rank=2, target=["0"], trainable=["2"])
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names == {"0.lora_A", "0.lora_B", "2.weight", "2.bias"}
    loss = model(torch.randn(8, 10)).square().sum()
    loss.backward()
    for name, p in model.named_parameters():
        if name in names:
            assert p.grad is not None, name
        else:
            assert p.grad is None, name
    assert sum(p.numel() for p in trainable_parameters(model)) == lora_parameter_count(10, 16, 2) + 16 * 3 + 3


def test_default_target_wraps_every_linear_but_the_trainable_ones():
    model = build_mlp(TransferConfig(hidden=(32, 16)), n_classes=5)
    apply_lora(model, rank=2, trainable=["head"])
    assert isinstance(model.fc1, LoRALinear) and isinstance(model.fc2, LoRALinear)
    assert type(model.head) is nn.Linear and model.head.weight.requires_grad


def test_tiny_training_run_reduces_the_loss():
    torch.manual_seed(0)
    x = torch.randn(256, 20)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 3))
    apply_lora(model, rank=4, alpha=8, trainable=["2"])
    w0 = model[0].base.weight.detach().clone()
    before = nn.functional.cross_entropy(model(x), y).item()
    history, optimizer = train(model, x, y, learning_rate=1e-2, epochs=20, batch_size=32)
    after = nn.functional.cross_entropy(model(x), y).item()
    assert after < 0.7 * before
    assert torch.equal(model[0].base.weight, w0)  # the frozen weight never moved
    assert len(history.series("loss")[1]) == 20 * 8
    # The cosine has decayed to zero after the run's 160 steps: one more step moves nothing.
    head = [p.detach().clone() for p in model[2].parameters()]
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    assert all(torch.equal(p, q) for p, q in zip(model[2].parameters(), head))


def test_qlora_base_is_the_dequantized_nf4_weight():
    base = make_linear(n_in=64, n_out=32)
    x = torch.randn(5, 64)
    layer = QLoRALinear(base, rank=4, alpha=8, block_size=64)
    w_hat = dequantize_nf4(quantize_nf4(base.weight.detach(), block_size=64))
    assert torch.equal(layer.base.weight, w_hat)
    torch.testing.assert_close(layer(x), x @ w_hat.T + base.bias)  # B = 0: exactly the 4-bit base
    assert layer.base.nbytes == 64 * 32 // 2 + (64 * 32 // 64) * 4
    assert not any(p is layer.base.packed for p in layer.parameters())  # codes are buffers, not parameters
    assert {n for n, p in layer.named_parameters() if p.requires_grad} == {"lora_A", "lora_B"}
    randomize_b(layer)
    merged = layer.to_linear()
    torch.testing.assert_close(merged(x), layer(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(merged.weight, w_hat + layer.delta_weight())
    with pytest.raises(NotImplementedError):
        layer.merge()


def test_qlora_gradients_reach_adapters_and_input_only():
    layer = QLoRALinear(make_linear(n_in=64, n_out=32), rank=2)
    randomize_b(layer)
    x = torch.randn(3, 64, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None and layer.lora_A.grad is not None and layer.lora_B.grad is not None


def test_apply_lora_quantize_base_and_parameter_counts():
    model = build_mlp(TransferConfig(hidden=(64, 64)), n_classes=5)
    full = count_all_parameters(model)
    apply_lora(model, rank=2, trainable=["head"], quantize_base=True)
    assert isinstance(model.fc1, QLoRALinear) and isinstance(model.fc2, QLoRALinear)
    adapters = lora_parameter_count(784, 64, 2) + lora_parameter_count(64, 64, 2)
    assert count_all_parameters(model) == full + adapters
    assert sum(p.numel() for p in trainable_parameters(model)) == adapters + 64 * 5 + 5


def test_finetune_recipe_runs_on_a_tiny_problem():
    rng = np.random.default_rng(0)
    images = rng.random((200, 28, 28), dtype=np.float32)
    labels = np.arange(200) % 10
    x, y = digit_subset(images, labels, (5, 6, 7, 8, 9))
    assert x.shape == (100, 784) and set(y.tolist()) == {0, 1, 2, 3, 4}
    config = TransferConfig(hidden=(32, 32), finetune_epochs=1, rank=2)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    pretrained = build_mlp(config)
    results = {m: finetune(pretrained, m, config, xt, yt, xt, yt) for m in ("full", "lora", "qlora", "head")}
    assert results["full"].trainable == results["full"].total
    assert results["lora"].trainable == lora_parameter_count(784, 32, 2) + lora_parameter_count(32, 32, 2) + 32 * 5 + 5
    assert results["lora"].trainable == results["qlora"].trainable
    assert results["qlora"].base_weight_bytes < results["lora"].base_weight_bytes / 6
    # The reference Adam: two float32 moments per trainable number (its step count is a Python int).
    assert results["lora"].optimizer_state_bytes == 2 * 4 * results["lora"].trainable
    with pytest.raises(ValueError, match="method"):
        finetune(pretrained, "bitfit", config, xt, yt, xt, yt)


@pytest.mark.parametrize("rank", [0, -1])
def test_rank_must_be_positive(rank):
    with pytest.raises(ValueError, match="rank"):
        LoRALinear(make_linear(), rank=rank)


def test_rank_must_fit_the_layer():
    LoRALinear(make_linear(12, 8), rank=8)  # min(in, out) is allowed
    with pytest.raises(ValueError, match="rank"):
        LoRALinear(make_linear(12, 8), rank=9)
    with pytest.raises(TypeError, match="rank"):
        LoRALinear(make_linear(), rank=2.0)


@pytest.mark.parametrize("alpha", [0, -1.0])
def test_alpha_must_be_positive(alpha):
    with pytest.raises(ValueError, match="alpha"):
        LoRALinear(make_linear(), rank=2, alpha=alpha)


@pytest.mark.parametrize("dropout", [-0.1, 1.0, 1.5])
def test_dropout_must_be_in_unit_interval(dropout):
    with pytest.raises(ValueError, match="dropout"):
        LoRALinear(make_linear(), rank=2, dropout=dropout)


def test_dropout_applies_to_the_adapter_only():
    layer = LoRALinear(make_linear(), rank=2, dropout=0.5)
    x = torch.randn(4, 12)
    base_out = layer.base(x)
    torch.testing.assert_close(layer.train()(x), base_out)  # B = 0: dropout cannot change anything yet


def test_non_linear_modules_are_refused():
    with pytest.raises(TypeError, match="base"):
        LoRALinear(nn.Conv2d(3, 4, 3), rank=2)
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    with pytest.raises(TypeError, match="target"):
        apply_lora(model, rank=2, target=["1"])
    with pytest.raises(ValueError, match="target"):
        apply_lora(model, rank=2, target=["nope"])
    with pytest.raises(TypeError, match="model"):
        apply_lora("not a model", rank=2)
    with pytest.raises(ValueError, match="trainable"):
        apply_lora(model, rank=2, trainable=["nope"])
