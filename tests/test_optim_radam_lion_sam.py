"""RAdam against torch.optim.RAdam, Lion against keras.optimizers.Lion (200 float64 steps, tight tolerance),
and SAM against its closed form on a quadratic and a direct two-pass implementation."""

from __future__ import annotations

import numpy as np
import pytest

from companion import optim
from optim_problem import ATOL, RTOL, float64_scalars, run_keras, run_reference, run_torch  # noqa: F401 (a fixture)

torch = pytest.importorskip("torch")

RADAM_CASES = [
    ("defaults", lambda: optim.radam(), lambda p: torch.optim.RAdam(p)),
    ("custom", lambda: optim.radam(0.03, b1=0.8, b2=0.99, eps=1e-5),
     lambda p: torch.optim.RAdam(p, lr=0.03, betas=(0.8, 0.99), eps=1e-5)),
    ("l2", lambda: optim.radam(0.01, weight_decay=0.1), lambda p: torch.optim.RAdam(p, lr=0.01, weight_decay=0.1)),
    ("decoupled", lambda: optim.radam(0.01, weight_decay=0.1, decoupled_weight_decay=True),
     lambda p: torch.optim.RAdam(p, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
]


@pytest.mark.parametrize("reference, framework", [c[1:] for c in RADAM_CASES], ids=[c[0] for c in RADAM_CASES])
def test_radam_matches_torch(reference, framework, float64_scalars):
    ours, theirs = run_reference(reference()), run_torch(framework)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def test_radam_is_not_adam_and_the_threshold_matters(float64_scalars):
    """The tolerance means something: Adam, and RAdam switching at the paper's rho_t > 4, both end elsewhere."""
    theirs = run_torch(lambda p: torch.optim.RAdam(p, lr=0.03, betas=(0.9, 0.9)))
    for variant in (optim.adam(0.03, b2=0.9), optim.chain(optim.scale_by_radam(0.9, 0.9, threshold=4.0),
                                                           optim.scale_by_learning_rate(0.03))):
        ours = run_reference(variant, steps=200)
        assert max(np.abs(a - b).max() for a, b in zip(ours, theirs)) > 1e-6


def test_radam_rectification_rises_towards_one():
    """rho_t passes 5 at step 6 for beta_2 = 0.999; r_t then grows monotonically towards 1."""
    assert np.isnan(optim.radam_rectification(4)[1])
    assert optim.radam_rectification(5)[0] <= 5.0 < optim.radam_rectification(6)[0]
    r = [optim.radam_rectification(t)[1] for t in range(6, 20_000, 500)]
    assert all(0 < a < b < 1 for a, b in zip(r, r[1:]))
    assert r[-1] > 0.99


# Keras keeps the learning rate in a float32 variable: the defaults case gives ours that rounded 1e-3; the
# others use dyadic values, exact in float32.
KERAS_DEFAULT_LR = float(np.float32(1e-3))
LION_CASES = [
    ("defaults", lambda: optim.lion(KERAS_DEFAULT_LR), lambda: __import__("keras").optimizers.Lion()),
    ("custom", lambda: optim.lion(2.0**-8, b1=0.75, b2=0.9375),
     lambda: __import__("keras").optimizers.Lion(learning_rate=2.0**-8, beta_1=0.75, beta_2=0.9375)),
    ("weight-decay", lambda: optim.lion(2.0**-8, weight_decay=0.125),
     lambda: __import__("keras").optimizers.Lion(learning_rate=2.0**-8, weight_decay=0.125)),
]


@pytest.mark.parametrize("reference, framework", [c[1:] for c in LION_CASES], ids=[c[0] for c in LION_CASES])
def test_lion_matches_keras(reference, framework):
    pytest.importorskip("keras")
    ours, theirs = run_reference(reference()), run_keras(framework)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def test_lion_moves_every_coordinate_by_the_learning_rate():
    grads = [np.array([3.0, -1e-6, 0.2])]
    update = optim.lion(0.01).update
    state = optim.lion(0.01).init([np.zeros(3)])
    updates, _ = update(grads, state, [np.zeros(3)])
    np.testing.assert_array_equal(updates[0], [-0.01, 0.01, -0.01])


def test_lion_with_swapped_betas_differs():
    pytest.importorskip("keras")
    theirs = run_keras(lambda: __import__("keras").optimizers.Lion(learning_rate=2.0**-8))
    ours = run_reference(optim.lion(2.0**-8, b1=0.99, b2=0.9))
    assert max(np.abs(a - b).max() for a, b in zip(ours, theirs)) > 1e-3


# --- SAM ---------------------------------------------------------------------------------------------

def test_sam_gradient_on_a_quadratic_is_the_closed_form():
    """L = theta^T A theta / 2: g_SAM = A theta + rho A^2 theta / ||A theta||, and one SGD step uses it."""
    rng = np.random.default_rng(0)
    m = rng.normal(size=(4, 4))
    a = m @ m.T + np.eye(4)
    theta = rng.normal(size=4)
    rho, lr = 0.1, 0.05
    sgd = optim.sgd(lr)
    new, _ = optim.sam_step(sgd, lambda p: [a @ p[0]], [theta], sgd.init([theta]), rho=rho)
    g = a @ theta
    expected = theta - lr * (g + rho * a @ a @ theta / np.linalg.norm(g))
    np.testing.assert_allclose(new[0], expected, rtol=1e-12)


def test_sam_perturbation_has_length_rho_over_all_parameters():
    grads = [np.array([3.0, 0.0]), np.array([[4.0]])]
    eps = optim.sam_perturbation(grads, rho=0.5)
    assert np.sqrt(sum((e**2).sum() for e in eps)) == pytest.approx(0.5)
    np.testing.assert_allclose(eps[0], [0.3, 0.0])


def _batch():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(32, 5, generator=gen), torch.randn(32, 2, generator=gen)


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def test_torch_sam_matches_a_direct_two_pass_implementation_and_sam_step():
    from companion.optim.torch_adapter import SAM

    x, y = _batch()
    loss_fn = torch.nn.MSELoss()
    rho, steps = 0.05, 20

    model = _model()
    opt = SAM(model.parameters(), optim.sgd(0.1, momentum=0.9), rho=rho)

    def closure():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss

    for _ in range(steps):
        closure()
        opt.step(closure)

    direct = _model()  # the paper's two passes, written out with torch.optim.SGD as the base
    base = torch.optim.SGD(direct.parameters(), lr=0.1, momentum=0.9)
    for _ in range(steps):
        base.zero_grad()
        loss_fn(direct(x), y).backward()
        grads = [p.grad.clone() for p in direct.parameters()]
        norm = torch.sqrt(sum((g**2).sum() for g in grads))
        with torch.no_grad():
            eps = [rho * g / norm for g in grads]
            for p, e in zip(direct.parameters(), eps):
                p += e
        base.zero_grad()
        loss_fn(direct(x), y).backward()
        with torch.no_grad():
            for p, e in zip(direct.parameters(), eps):
                p -= e
        base.step()
    for a, b in zip(model.parameters(), direct.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)

    functional = [p.detach().double().numpy() for p in _model().parameters()]  # and the functional form
    net = _model().double()
    transformation = optim.sgd(0.1, momentum=0.9)
    state = transformation.init(functional)

    def grad_fn(params):
        with torch.no_grad():
            for p, v in zip(net.parameters(), params):
                p.copy_(torch.as_tensor(v))
        net.zero_grad()
        loss_fn(net(x.double()), y.double()).backward()
        return [p.grad.numpy().copy() for p in net.parameters()]

    for _ in range(steps):
        functional, state = optim.sam_step(transformation, grad_fn, functional, state, rho=rho)
    for a, b in zip(model.parameters(), functional):
        np.testing.assert_allclose(a.detach().numpy(), b, rtol=1e-4, atol=1e-5)


def test_train_classifier_passes_sam_its_closure_and_sam_differs_from_the_base():
    from companion import training
    from companion.optim.torch_adapter import SAM

    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 5, generator=gen), torch.randint(0, 3, (64,), generator=gen)

    def run(make):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
        history = training.train_classifier(model, make(model), x, y, epochs=2, batch_size=16, progress=False)
        return history, [p.detach().clone() for p in model.parameters()]

    sam_history, sam_params = run(lambda m: SAM(m.parameters(), optim.sgd(0.1), rho=0.05))
    _, sgd_params = run(lambda m: optim.sgd(0.1))
    assert len(sam_history.series("loss")[1]) == 8
    assert max(float((a - b).abs().max()) for a, b in zip(sam_params, sgd_params)) > 1e-4
    with pytest.raises(ValueError, match="accumulation_steps"):
        run_model = torch.nn.Linear(5, 3)
        training.train_classifier(run_model, SAM(run_model.parameters(), optim.sgd(0.1)), x, y,
                                  accumulation_steps=2, progress=False)


@pytest.mark.parametrize("call, error, name", [
    (lambda: optim.radam(-1.0), ValueError, "learning_rate"),
    (lambda: optim.radam(b2=1.0), ValueError, "beta_2"),
    (lambda: optim.radam(weight_decay=float("nan")), ValueError, "weight_decay"),
    (lambda: optim.radam(decoupled_weight_decay="yes"), TypeError, "decoupled_weight_decay"),
    (lambda: optim.scale_by_radam(threshold=3.0), ValueError, "threshold"),
    (lambda: optim.radam_rectification(0), ValueError, "step"),
    (lambda: optim.lion(float("nan")), ValueError, "learning_rate"),
    (lambda: optim.lion(b1=1.5), ValueError, "beta_1"),
    (lambda: optim.lion(weight_decay=-0.1), ValueError, "weight_decay"),
    (lambda: optim.sam_perturbation([np.ones(2)], rho=0.0), ValueError, "rho"),
    (lambda: optim.sam_step(optim.sgd(0.1), "grad", [np.ones(2)], (), rho=0.1), TypeError, "grad_fn"),
    (lambda: optim.sam_step("sgd", lambda p: p, [np.ones(2)], (), rho=0.1), TypeError, "transformation"),
])
def test_bad_input(call, error, name):
    with pytest.raises(error, match=name):
        call()


def test_torch_sam_bad_input():
    from companion.optim.torch_adapter import SAM

    model = torch.nn.Linear(2, 1)
    with pytest.raises(ValueError, match="rho"):
        SAM(model.parameters(), optim.sgd(0.1), rho=-0.1)
    with pytest.raises(TypeError, match="base"):
        SAM(model.parameters(), "sgd")
    opt = SAM(model.parameters(), optim.sgd(0.1))
    with pytest.raises(ValueError, match="closure"):
        opt.step()


def test_state_size_counts_the_numbers_kept_between_steps():
    params = [np.zeros((30, 20)), np.zeros(20)]
    n = 30 * 20 + 20
    assert optim.state_size(optim.sgd(0.1), params) == 0
    assert optim.state_size(optim.sgd(0.1, momentum=0.9), params) == n
    assert optim.state_size(optim.adam(1e-3), params) == 2 * n
    assert optim.state_size(optim.adam(1e-3, amsgrad=True), params) == 3 * n
    assert optim.state_size(optim.lion(1e-4), params) == n
    assert optim.state_size(optim.adam(1e-3), [torch.zeros(30, 20), torch.zeros(20)]) == 2 * n
    with pytest.raises(TypeError, match="transformation"):
        optim.state_size("adam", params)
