"""The adapters: a reference optimizer trains real torch and Keras models exactly as the framework's own."""

from __future__ import annotations

import numpy as np
import pytest

from companion import optim
from optim_problem import fit_keras_model


def _torch_model(torch, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).double()


def _train_torch(torch, make_optimizer, steps=60):
    model = _torch_model(torch)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(64, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (64,), generator=gen)
    opt = make_optimizer(model.parameters())
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model, opt


@pytest.mark.parametrize(
    "reference, framework",
    [
        (lambda: optim.adam(0.01), lambda torch, p: torch.optim.Adam(p, lr=0.01)),
        (lambda: optim.sgd(0.1, momentum=0.9, nesterov=True),
         lambda torch, p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
        (lambda: optim.adamw(0.01, weight_decay=0.1), lambda torch, p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
    ],
    ids=["adam", "nesterov", "adamw"],
)
def test_torch_adapter_trains_like_torch_optim(reference, framework):
    torch = pytest.importorskip("torch")
    from companion.optim.torch_adapter import ReferenceOptimizer

    ours, _ = _train_torch(torch, lambda p: ReferenceOptimizer(p, reference()))
    theirs, _ = _train_torch(torch, lambda p: framework(torch, p))
    for a, b in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_torch_adapter_state_dict_round_trip():
    torch = pytest.importorskip("torch")
    from companion.optim.torch_adapter import ReferenceOptimizer

    model, opt = _train_torch(torch, lambda p: ReferenceOptimizer(p, optim.adam(0.01)), steps=5)
    saved = opt.state_dict()
    fresh = ReferenceOptimizer(model.parameters(), optim.adam(0.01))
    fresh.load_state_dict(saved)
    assert fresh.state_dict()["transformation_state"][1].count == 5
    with pytest.raises(ValueError, match="parameters"):
        ReferenceOptimizer([torch.zeros(2, requires_grad=True)], optim.adam(0.01)).load_state_dict(saved)


def test_torch_adapter_rejects_bad_input():
    torch = pytest.importorskip("torch")
    from companion.optim.torch_adapter import ReferenceOptimizer

    with pytest.raises(TypeError, match="GradientTransformation"):
        ReferenceOptimizer([torch.zeros(2, requires_grad=True)], torch.optim.SGD)
    w = torch.zeros(2, requires_grad=True)
    opt = ReferenceOptimizer([w], optim.sgd(0.1))
    with pytest.raises(ValueError, match="no gradient"):
        opt.step()
    w.grad = torch.tensor([1.0, float("nan")])
    with pytest.raises(ValueError, match="NaN"):
        opt.step()


def test_keras_adapter_fits_like_keras_adam():
    keras = pytest.importorskip("keras")
    from companion.optim.keras_adapter import KerasReferenceOptimizer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 6)).astype("float32")
    y = rng.integers(0, 3, size=128)

    def fit(optimizer):
        return fit_keras_model(optimizer, x, y, hidden=16, batch_size=32, epochs=3)

    # dyadic hyperparameters: exact in float32, so Keras' internal rounding does not matter
    ours = fit(KerasReferenceOptimizer(optim.adam(2.0**-6, b1=0.875, b2=1 - 2.0**-7, eps=2.0**-20, convention="keras")))
    theirs = fit(keras.optimizers.Adam(2.0**-6, beta_1=0.875, beta_2=1 - 2.0**-7, epsilon=2.0**-20))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    assert max(np.abs(a).max() for a in ours) > 0


def test_keras_adapter_rejects_non_transformations():
    keras = pytest.importorskip("keras")
    from companion.optim.keras_adapter import KerasReferenceOptimizer

    with pytest.raises(TypeError, match="GradientTransformation"):
        KerasReferenceOptimizer(keras.optimizers.Adam())
    for option in ("weight_decay", "learning_rate"):  # Keras would apply them at a learning rate of 0: refused
        with pytest.raises(ValueError, match=option):
            KerasReferenceOptimizer(optim.adam(convention="keras"), **{option: 0.1})


def test_keras_adapter_with_keras_weight_decay_fits_like_keras_adamw():
    """The decay that the adapter refuses as a keyword works in the chain, as Keras' own."""
    keras = pytest.importorskip("keras")
    from companion.optim.keras_adapter import KerasReferenceOptimizer

    rng = np.random.default_rng(1)
    x = rng.normal(size=(96, 5)).astype("float32")
    y = rng.integers(0, 2, size=96)

    def fit(optimizer):
        return fit_keras_model(optimizer, x, y, hidden=8, batch_size=32, epochs=3)

    ours = fit(KerasReferenceOptimizer(optim.sgd(2.0**-4, momentum=0.5, weight_decay=0.25, convention="keras")))
    theirs = fit(keras.optimizers.SGD(2.0**-4, momentum=0.5, weight_decay=0.25))
    undecayed = fit(keras.optimizers.SGD(2.0**-4, momentum=0.5))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    assert max(np.abs(a - b).max() for a, b in zip(ours, undecayed)) > 1e-3


def test_torch_adapter_in_place_shortcuts_keep_results_exact():
    """The adapter reuses buffers for speed; any chain must still give the pure NumPy result."""
    torch = pytest.importorskip("torch")
    from companion.optim.torch_adapter import ReferenceOptimizer
    from optim_problem import make_problem, numpy_gradients, run_reference

    def build():  # adam's direction feeds a momentum trace: the trace's buffer must not be rescaled in place
        return optim.chain(optim.scale_by_adam(), optim.trace(0.5), optim.scale_by_learning_rate(0.01))

    params, curvature, wiggle = make_problem()
    tensors = [torch.tensor(p) for p in params]
    opt = ReferenceOptimizer(tensors, build())
    for _ in range(50):
        values = [t.numpy() for t in tensors]
        for t, g in zip(tensors, numpy_gradients(values, curvature, wiggle)):
            t.grad = torch.tensor(g)
        opt.step()
    for a, b in zip(tensors, run_reference(build(), steps=50)):
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-12, atol=1e-14)


def test_torch_adapter_per_group_chains_match_torch_param_groups():
    """Differential learning rates and weight decays: one chain per group, as torch's per-group lr/weight_decay."""
    torch = pytest.importorskip("torch")
    from companion.optim.torch_adapter import ReferenceOptimizer

    def model_and_data():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
        x = torch.randn(64, 6, dtype=torch.float64)
        y = torch.randint(0, 3, (64,))
        return model, x, y

    def train(model, optimizer, x, y, steps=40):
        for _ in range(steps):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        return [p.detach().clone() for p in model.parameters()]

    ours_model, x, y = model_and_data()
    backbone, head = list(ours_model[0].parameters()), list(ours_model[2].parameters())
    ours = ReferenceOptimizer([{"params": backbone, "transformation": optim.adamw(1e-3, weight_decay=0.0)},
                               {"params": head}], optim.adamw(1e-2, weight_decay=0.1))
    theirs_model, _, _ = model_and_data()
    theirs = torch.optim.AdamW([{"params": theirs_model[0].parameters(), "lr": 1e-3, "weight_decay": 0.0},
                                {"params": theirs_model[2].parameters(), "lr": 1e-2, "weight_decay": 0.1}])
    a, b = train(ours_model, ours, x, y), train(theirs_model, theirs, x, y)
    for p, q in zip(a, b):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)
    # one chain for all would have been a different run
    single_model, _, _ = model_and_data()
    c = train(single_model, ReferenceOptimizer(single_model.parameters(), optim.adamw(1e-2, weight_decay=0.1)), x, y)
    assert max((p - q).abs().max().item() for p, q in zip(a, c)) > 1e-3
    # the state of every group round-trips
    restored = ReferenceOptimizer([{"params": backbone, "transformation": optim.adamw(1e-3, weight_decay=0.0)},
                                   {"params": head}], optim.adamw(1e-2, weight_decay=0.1))
    restored.load_state_dict(ours.state_dict())
    assert len(ours.state_dict()["transformation_state"]) == 2
    with pytest.raises(ValueError, match="another optimizer"):  # a two-group state into a one-group adapter
        ReferenceOptimizer(ours_model.parameters(), optim.adamw(1e-2)).load_state_dict(
            dict(ours.state_dict(), num_params=len(a)))
