"""companion's LoRALinear against Hugging Face peft's LoRA layer: same weights, same forward, same merge.

The from-scratch layer of Part III (``companion.compression.lora``) and ``peft.tuners.lora.Linear`` must
compute :math:`h = W_0 x + b + \\frac{\\alpha}{r} B A x` identically once they hold the same
:math:`W_0, b, A, B`; a plausible wrong scaling (:math:`\\alpha` alone, or rsLoRA's
:math:`\\alpha/\\sqrt r`) must be caught by the same comparison.
"""

import copy

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")
nn = torch.nn

from companion.compression.lora import LoRALinear, apply_lora, merge_lora  # noqa: E402
from companion.compression.measure import count_parameters  # noqa: E402


class TwoLayers(nn.Module):
    def __init__(self, n_in=24, hidden=16, n_out=3):
        super().__init__()
        self.fc = nn.Linear(n_in, hidden)
        self.head = nn.Linear(hidden, n_out)

    def forward(self, x):
        return self.head(torch.relu(self.fc(x)))


def peft_layer(rank, alpha, *, seed=0, use_rslora=False):
    """A peft-wrapped ``TwoLayers`` with LoRA on ``fc``, B randomized so that the update is not zero."""
    torch.manual_seed(seed)
    model = peft.get_peft_model(TwoLayers(), peft.LoraConfig(r=rank, lora_alpha=alpha, target_modules=["fc"],
                                                             lora_dropout=0.0, use_rslora=use_rslora))
    layer = model.base_model.model.fc
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        layer.lora_B["default"].weight.copy_(torch.randn(layer.lora_B["default"].weight.shape, generator=g))
    return model, layer


def companion_copy(layer, rank, alpha):
    """companion's LoRALinear holding the same W0, b, A and B as the peft layer."""
    ours = LoRALinear(copy.deepcopy(layer.base_layer), rank=rank, alpha=alpha)
    with torch.no_grad():
        ours.lora_A.copy_(layer.lora_A["default"].weight)  # peft: Linear(d_in, r), weight (r, d_in)
        ours.lora_B.copy_(layer.lora_B["default"].weight)  # peft: Linear(r, d_out), weight (d_out, r)
    return ours


@pytest.mark.parametrize("rank, alpha", [(1, 1.0), (4, 8.0), (8, 16.0), (5, 3.0)])
def test_forward_matches_peft_lora_layer(rank, alpha):
    _, layer = peft_layer(rank, alpha)
    ours = companion_copy(layer, rank, alpha)
    x = torch.randn(32, 24, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        theirs, mine = layer(x), ours(x)
    assert layer.scaling["default"] == pytest.approx(ours.scaling, rel=1e-12)
    assert torch.allclose(mine, theirs, rtol=1e-6, atol=1e-6)
    # the update really is non-zero, so the comparison tests the adapter and not only the base layer
    assert (theirs - layer.base_layer(x)).abs().max() > 1e-2


@pytest.mark.parametrize("rank, alpha", [(4, 8.0), (3, 5.0)])
def test_delta_and_merge_match_peft(rank, alpha):
    model, layer = peft_layer(rank, alpha)
    ours = companion_copy(layer, rank, alpha)
    assert torch.allclose(ours.delta_weight(), layer.get_delta_weight("default"), rtol=1e-6, atol=1e-7)
    merged_ours = ours.to_linear()
    merged_peft = copy.deepcopy(model).merge_and_unload().fc
    assert type(merged_peft) is nn.Linear
    assert torch.allclose(merged_ours.weight, merged_peft.weight, rtol=1e-6, atol=1e-7)
    assert torch.equal(merged_ours.bias, merged_peft.bias)


def test_gradients_match_peft():
    rank, alpha = 4, 8.0
    _, layer = peft_layer(rank, alpha)
    ours = companion_copy(layer, rank, alpha)
    x = torch.randn(16, 24, generator=torch.Generator().manual_seed(3))
    (layer(x) ** 2).sum().backward()
    (ours(x) ** 2).sum().backward()
    assert torch.allclose(ours.lora_A.grad, layer.lora_A["default"].weight.grad, rtol=1e-5, atol=1e-5)
    assert torch.allclose(ours.lora_B.grad, layer.lora_B["default"].weight.grad, rtol=1e-5, atol=1e-5)
    assert layer.base_layer.weight.grad is None and ours.base.weight.grad is None


def test_zero_b_start_matches_peft_default_init():
    torch.manual_seed(0)
    model = peft.get_peft_model(TwoLayers(), peft.LoraConfig(r=4, lora_alpha=8, target_modules=["fc"]))
    layer = model.base_model.model.fc
    ours = LoRALinear(nn.Linear(24, 16), rank=4, alpha=8)
    assert torch.count_nonzero(layer.lora_B["default"].weight) == 0 and torch.count_nonzero(ours.lora_B) == 0
    # the same Kaiming-uniform bound for A: sqrt(6 / ((1 + a^2) d_in)) with a = sqrt(5), i.e. 1 / sqrt(d_in)
    bound = 1 / 24**0.5
    for a in (layer.lora_A["default"].weight, ours.lora_A):
        assert a.abs().max() <= bound and a.abs().max() > 0.5 * bound


def test_trainable_count_matches_peft():
    torch.manual_seed(0)
    theirs = peft.get_peft_model(TwoLayers(), peft.LoraConfig(r=4, lora_alpha=8, target_modules=["fc"],
                                                               modules_to_save=["head"]))
    trainable, _ = theirs.get_nb_trainable_parameters()
    ours = apply_lora(TwoLayers(), 4, 8, target=["fc"], trainable=["head"])
    assert count_parameters(ours, trainable_only=True) == trainable == 4 * (24 + 16) + 16 * 3 + 3


def test_merged_models_agree():
    rank, alpha = 4, 8.0
    model, layer = peft_layer(rank, alpha)
    net = TwoLayers()
    net.load_state_dict({k.replace("base_layer.", ""): v for k, v in model.base_model.model.state_dict().items()
                         if "lora_" not in k})
    apply_lora(net, rank, alpha, target=["fc"])
    with torch.no_grad():
        net.fc.lora_A.copy_(layer.lora_A["default"].weight)
        net.fc.lora_B.copy_(layer.lora_B["default"].weight)
    x = torch.randn(8, 24, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.allclose(merge_lora(net)(x), copy.deepcopy(model).merge_and_unload()(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("wrong", ["alpha", "rslora"])
def test_a_wrong_scaling_is_caught(wrong):
    """Scaling by alpha alone (forgetting / r), or peft's rsLoRA alpha / sqrt(r), against companion's alpha / r."""
    rank, alpha = 4, 8.0
    if wrong == "rslora":
        _, layer = peft_layer(rank, alpha, use_rslora=True)  # peft scales by alpha / sqrt(r) = 4
        ours = companion_copy(layer, rank, alpha)  # companion: alpha / r = 2
    else:
        _, layer = peft_layer(rank, alpha)
        ours = companion_copy(layer, rank, alpha * rank)  # scale alpha * r / r = alpha instead of alpha / r
    x = torch.randn(32, 24, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert not torch.allclose(ours(x), layer(x), rtol=1e-3, atol=1e-3)
