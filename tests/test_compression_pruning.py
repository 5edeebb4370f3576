"""companion.compression.pruning against torch.nn.utils.prune and TensorFlow Model Optimization."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
from torch.nn.utils import prune  # noqa: E402

from companion.compression.pruning import (  # noqa: E402
    MagnitudePruner,
    PolynomialDecay,
    PruningConfig,
    build_mlp,
    channel_norms,
    compare_latency,
    global_magnitude_masks,
    magnitude_mask,
    polynomial_decay_sparsity,
    prunable_layers,
    prune_gradually,
    remove_neurons,
    should_prune,
    shrink_linear_stack,
    sparsity_of,
    structured_mask,
)


def small_mlp(seed=0, sizes=(20, 16, 12, 5), activation=nn.ReLU):
    torch.manual_seed(seed)
    layers = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------- masks against torch.nn.utils.prune


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.77, 0.9, 0.99])
@pytest.mark.parametrize("shape", [(30, 40), (8, 3, 5, 5), (17,)])
def test_magnitude_mask_equals_l1_unstructured(sparsity, shape):
    torch.manual_seed(1)
    weight = torch.randn(shape)  # continuous values: no ties
    layer = nn.Linear(1, 1)
    layer.weight = nn.Parameter(weight.clone())
    prune.l1_unstructured(layer, "weight", amount=sparsity)
    mask = magnitude_mask(weight, sparsity)
    assert mask.dtype == weight.dtype and mask.shape == weight.shape
    assert torch.equal(mask, layer.weight_mask)
    assert int((mask == 0).sum()) == round(sparsity * weight.numel())


@pytest.mark.parametrize("sparsity", [0.3, 0.8, 0.95])
def test_global_masks_equal_global_unstructured(sparsity):
    model = small_mlp(2)
    weights = [m.weight.detach().clone() for m in model if isinstance(m, nn.Linear)]
    prune.global_unstructured([(m, "weight") for m in model if isinstance(m, nn.Linear)],
                              pruning_method=prune.L1Unstructured, amount=sparsity)
    ours = global_magnitude_masks(weights, sparsity)
    theirs = [m.weight_mask for m in model if isinstance(m, nn.Linear)]
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)
    zeros = sum(int((m == 0).sum()) for m in ours)
    assert zeros == round(sparsity * sum(w.numel() for w in weights))


@pytest.mark.parametrize("n", [1, 2, float("inf")])
@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("amount", [0.25, 0.5, 0.8])
def test_structured_mask_equals_ln_structured(n, dim, amount):
    torch.manual_seed(3)
    conv = nn.Conv2d(6, 10, 3)
    weight = conv.weight.detach().clone()
    prune.ln_structured(conv, "weight", amount=amount, n=n, dim=dim)
    assert torch.equal(structured_mask(weight, amount, dim=dim, n=n), conv.weight_mask)


def test_channel_norms():
    w = torch.tensor([[3.0, -4.0], [1.0, 0.0]])
    assert torch.allclose(channel_norms(w, 2, 0), torch.tensor([5.0, 1.0]))
    assert torch.allclose(channel_norms(w, 1, 1), torch.tensor([4.0, 4.0]))
    assert torch.allclose(channel_norms(w, float("inf"), 0), torch.tensor([4.0, 1.0]))


# --------------------------------------------------------------------------- the schedule


def test_polynomial_decay_by_hand():
    s = [polynomial_decay_sparsity(t, 0.5, 0.8, 100, 200) for t in (0, 100, 150, 200, 300)]
    assert s == pytest.approx([0.5, 0.5, 0.8 - 0.3 * 0.5**3, 0.8, 0.8])
    assert [should_prune(t, 100, 200, 25) for t in (99, 100, 110, 125, 200, 225)] == [
        False, True, False, True, True, False]
    schedule = PolynomialDecay(0.0, 0.9, 0, 60, frequency=20)
    assert schedule(20) == (True, pytest.approx(0.9 - 0.9 * (2 / 3) ** 3))


def test_recipe_schedule_ends_on_an_update_step():
    recipe = PruningConfig(frequency=20, ramp_fraction=0.6)
    schedule = recipe.schedule(705)
    assert schedule.end_step % 20 == 0 and schedule.end_step < 705
    assert schedule(schedule.end_step) == (True, pytest.approx(recipe.final_sparsity))
    one_shot = recipe.schedule(705, initial_sparsity=0.9)
    assert one_shot(0) == (True, pytest.approx(0.9))


TFMOT_SCRIPT = r"""
import json, os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"   # before TensorFlow is imported: tfmot wraps tf.keras 2 layers
import tensorflow as tf
import tensorflow_model_optimization as tfmot
cases = json.loads(sys.argv[1])
out = []
for (initial, final, begin, end, power, frequency, steps) in cases:
    schedule = tfmot.sparsity.keras.PolynomialDecay(initial, final, begin, end, power=power, frequency=frequency)
    values = []
    for step in steps:
        update, sparsity = schedule(tf.constant(step, dtype=tf.int64))
        values.append([bool(update.numpy()), float(sparsity.numpy())])
    out.append(values)
print("RESULT" + json.dumps(out))
"""


def test_schedule_equals_tfmot_polynomial_decay():
    pytest.importorskip("tensorflow_model_optimization", exc_type=ImportError)
    pytest.importorskip("tf_keras")
    cases = [
        (0.5, 0.8, 0, 1000, 3, 100, [0, 1, 50, 99, 100, 250, 500, 999, 1000, 1100, 5000]),
        (0.0, 0.9, 10, 430, 3, 20, list(range(0, 500, 7)) + [10, 30, 430]),
        (0.2, 0.95, 5, 65, 2, 1, list(range(0, 80, 3))),
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    # A subprocess: the variable must be set before TensorFlow is imported, and other tests import Keras 3.
    result = subprocess.run([sys.executable, "-c", TFMOT_SCRIPT, json.dumps(cases)], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT"))
    theirs = json.loads(line[len("RESULT"):])
    for (initial, final, begin, end, power, frequency, steps), values in zip(cases, theirs):
        ours = PolynomialDecay(initial, final, begin, end, power, frequency)
        for step, (update, sparsity) in zip(steps, values):
            mine = ours(step)
            assert mine[0] == update, (step, mine, update)
            assert mine[1] == pytest.approx(sparsity, abs=1e-6), (step, mine, sparsity)


# --------------------------------------------------------------------------- pruner and structured shrink


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_pruner_keeps_pruned_weights_at_zero_under_adam(scope):
    model = small_mlp(4)
    pruner = MagnitudePruner(model, scope=scope)
    pruner.update_masks(0.7)
    assert pruner.sparsity == pytest.approx(0.7, abs=0.01)
    assert sparsity_of(model) == pytest.approx(pruner.sparsity)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    x, y = torch.randn(32, 20), torch.randint(0, 5, (32,))
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        pruner.apply()
    assert sparsity_of(model) == pytest.approx(pruner.sparsity)
    if scope == "layer":
        assert all(v == pytest.approx(0.7, abs=0.01) for v in sparsity_of(model, per_layer=True).values())
    pruner.update_masks(0.9)
    assert sparsity_of(model) == pytest.approx(0.9, abs=0.01)


def test_pruner_matches_torch_prune_layerwise():
    model, reference = small_mlp(5), small_mlp(5)
    MagnitudePruner(model).update_masks(0.6)
    for layer in reference:
        if isinstance(layer, nn.Linear):
            prune.l1_unstructured(layer, "weight", amount=0.6)
            prune.remove(layer, "weight")
    x = torch.randn(8, 20)
    assert torch.equal(model(x), reference(x))


@pytest.mark.parametrize("activation", [nn.ReLU, nn.Tanh])
def test_shrunk_model_equals_row_masked_model(activation):
    model = small_mlp(6, sizes=(20, 16, 12, 8, 5), activation=activation)
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                layer.bias.add_(0.3)  # biases that survive the activation: the removed neurons' constants matter
    shrunk = remove_neurons(model, 0.5, n=2)
    masked = small_mlp(6, sizes=(20, 16, 12, 8, 5), activation=activation)
    masked.load_state_dict(model.state_dict())
    linears = [m for m in masked if isinstance(m, nn.Linear)]
    for layer in linears[:-1]:
        prune.ln_structured(layer, "weight", amount=0.5, n=2, dim=0)
    widths = [m.out_features for m in shrunk if isinstance(m, nn.Linear)]
    assert widths == [8, 6, 4, 5]
    x = torch.randn(64, 20)
    assert torch.allclose(shrunk(x), masked(x), atol=1e-5)


def test_shrink_with_explicit_indices_and_dropout():
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4, 3))
    shrunk = shrink_linear_stack(model.eval(), [[3, 0]])
    assert shrunk[0].out_features == 2 and shrunk[3].in_features == 2
    reference = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4, 3)).eval()
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():
        reference[0].weight[[1, 2]] = 0.0
    x = torch.randn(5, 6)
    assert torch.allclose(shrunk(x), reference(x), atol=1e-6)


def test_prune_gradually_reaches_the_final_sparsity():
    recipe = replace(PruningConfig(), sizes=(784, 32, 10), batch_size=32, prune_epochs=2, frequency=5)
    model = build_mlp(recipe)
    torch.manual_seed(0)
    x, y = torch.rand(320, 28, 28), torch.randint(0, 10, (320,))
    pruner, history = prune_gradually(model, x, y, replace(recipe, final_sparsity=0.8), x_val=x, y_val=y,
                                      progress=False)
    steps, sparsity = history.series("sparsity")
    assert len(steps) == 20 and sparsity[-1] == pytest.approx(0.8, abs=1e-3)
    assert all(b >= a - 1e-9 for a, b in zip(sparsity[:-1], sparsity[1:]))  # never decreases
    assert sparsity_of(model) == pytest.approx(0.8, abs=1e-3)
    assert "val_accuracy" in history


def test_compare_latency_returns_one_figure_per_model():
    models = {"a": small_mlp(0), "b": remove_neurons(small_mlp(0), 0.5)}
    result = compare_latency(models, torch.randn(4, 20), rounds=2, repeats=3, warmup=1)
    assert set(result) == {"a", "b"} and all(r.median_ms > 0 and r.repeats == 6 for r in result.values())


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: magnitude_mask(torch.ones(3), 1.0), ValueError, "sparsity"),
        (lambda: magnitude_mask(torch.ones(3), -0.1), ValueError, "sparsity"),
        (lambda: magnitude_mask([1.0, 2.0], 0.5), TypeError, "weight"),
        (lambda: global_magnitude_masks([], 0.5), TypeError, "weights"),
        (lambda: structured_mask(torch.ones(3, 3), 1.5), ValueError, "amount"),
        (lambda: channel_norms(torch.ones(3, 3), n=0), ValueError, "n"),
        (lambda: channel_norms(torch.ones(3, 3), dim=2), ValueError, "dim"),
        (lambda: polynomial_decay_sparsity(-1, 0.0, 0.9, 0, 10), ValueError, "step"),
        (lambda: polynomial_decay_sparsity(0, 0.0, 0.9, -5, 10), ValueError, "begin_step"),
        (lambda: polynomial_decay_sparsity(0, 0.0, 0.9, 10, 10), ValueError, "end_step"),
        (lambda: polynomial_decay_sparsity(0, 0.0, 1.0, 0, 10), ValueError, "final_sparsity"),
        (lambda: polynomial_decay_sparsity(0.5, 0.0, 0.9, 0, 10), TypeError, "step"),
        (lambda: PolynomialDecay(0.0, 0.9, 0, 10, frequency=0), ValueError, "frequency"),
        (lambda: MagnitudePruner(nn.Sequential(nn.ReLU())), ValueError, "module"),
        (lambda: MagnitudePruner(small_mlp(), scope="row"), ValueError, "scope"),
        (lambda: prunable_layers(small_mlp(), layer_types=(nn.LSTM,)), TypeError, "layer"),
        (lambda: prunable_layers("model"), TypeError, "module"),
        (lambda: remove_neurons(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)), 0.5),
         TypeError, "Unsupported layer"),
        (lambda: remove_neurons(nn.Linear(4, 4), 0.5), TypeError, "model"),
        (lambda: remove_neurons(small_mlp(), 1.0), ValueError, "amount"),
        (lambda: remove_neurons(nn.Sequential(nn.Linear(4, 2), nn.ReLU(), nn.Linear(2, 2)), 0.8), ValueError, "amount"),
        (lambda: shrink_linear_stack(small_mlp(), [[0]]), ValueError, "keep"),
        (lambda: shrink_linear_stack(small_mlp(), [[0, 99], [1]]), ValueError, "keep"),
        (lambda: compare_latency({}, torch.ones(1, 20)), TypeError, "models"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_pruner_refuses_a_torch_pruned_layer():
    model = small_mlp()
    prune.l1_unstructured(model[1], "weight", amount=0.5)
    with pytest.raises(TypeError, match="prune.remove"):
        MagnitudePruner(model)


def test_dense_training_and_structured_fine_tuning_run_their_phase_of_the_config():
    from companion.compression.pruning import fine_tune_structured, train_dense

    config = replace(PruningConfig(), sizes=(784, 16, 10), batch_size=64, dense_epochs=2, structured_epochs=1)
    torch.manual_seed(0)
    x, y = torch.rand(128, 28, 28), torch.randint(0, 10, (128,))
    dense = build_mlp(config)
    assert len(train_dense(dense, x, y, config, progress=False).series("loss")[1]) == 2 * 2
    shrunk = remove_neurons(dense, 0.5)
    history = fine_tune_structured(shrunk, x, y, config, progress=False)
    assert len(history.series("loss")[1]) == 1 * 2 and history.name == "structured fine-tune"
