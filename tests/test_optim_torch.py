"""Each reference optimizer, convention "torch", against torch.optim: 200 steps, float64, tight tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from companion import optim
from optim_problem import ATOL, RTOL, STEPS, float64_scalars, make_problem, run_reference, run_torch  # noqa: F401 (a fixture)

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _float64(float64_scalars):
    """Every test here runs with float64 as torch's default dtype (optim_problem.float64_scalars)."""


CASES = [
    # (id, reference, torch optimizer)
    ("sgd", lambda: optim.sgd(0.05), lambda p: torch.optim.SGD(p, lr=0.05)),
    ("sgd-wd", lambda: optim.sgd(0.05, weight_decay=0.1), lambda p: torch.optim.SGD(p, lr=0.05, weight_decay=0.1)),
    ("momentum", lambda: optim.sgd(0.02, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9)),
    (
        "nesterov",
        lambda: optim.sgd(0.02, momentum=0.8, nesterov=True),
        lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.8, nesterov=True),
    ),
    ("adagrad", lambda: optim.adagrad(), lambda p: torch.optim.Adagrad(p)),
    (
        "adagrad-custom",
        lambda: optim.adagrad(0.3, initial_accumulator_value=0.5, eps=1e-4, weight_decay=0.01),
        lambda p: torch.optim.Adagrad(p, lr=0.3, initial_accumulator_value=0.5, eps=1e-4, weight_decay=0.01),
    ),
    ("adadelta", lambda: optim.adadelta(), lambda p: torch.optim.Adadelta(p)),
    (
        "adadelta-custom",
        lambda: optim.adadelta(0.5, rho=0.95, eps=1e-4),
        lambda p: torch.optim.Adadelta(p, lr=0.5, rho=0.95, eps=1e-4),
    ),
    ("rmsprop", lambda: optim.rmsprop(), lambda p: torch.optim.RMSprop(p)),
    (
        "rmsprop-momentum-centered",
        lambda: optim.rmsprop(0.003, decay=0.9, eps=1e-6, momentum=0.5, centered=True, weight_decay=0.01),
        lambda p: torch.optim.RMSprop(p, lr=0.003, alpha=0.9, eps=1e-6, momentum=0.5, centered=True, weight_decay=0.01),
    ),
    ("adam", lambda: optim.adam(0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    (
        "adam-custom",
        lambda: optim.adam(0.05, b1=0.8, b2=0.99, eps=1e-6, weight_decay=0.05),
        lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
    ),
    ("adamw", lambda: optim.adamw(0.01), lambda p: torch.optim.AdamW(p, lr=0.01)),
    ("nadam-decoupled", lambda: optim.nadam(0.01, weight_decay=0.1, decoupled_weight_decay=True),
     lambda p: torch.optim.NAdam(p, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("adagrad-lr-decay", lambda: optim.adagrad(0.1, lr_decay=0.05, weight_decay=0.01),
     lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.05, weight_decay=0.01)),
    ("sgd-dampening", lambda: optim.sgd(0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("sgd-maximize", lambda: optim.sgd(0.05, momentum=0.9, weight_decay=0.01, maximize=True),
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01, maximize=True)),
    ("adam-amsgrad", lambda: optim.adam(0.05, b2=0.9, amsgrad=True), lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.9, 0.9), amsgrad=True)),
    ("adamw-amsgrad", lambda: optim.adamw(0.03, weight_decay=0.1, amsgrad=True),
     lambda p: torch.optim.AdamW(p, lr=0.03, weight_decay=0.1, amsgrad=True)),
    (
        "adamw-custom",
        lambda: optim.adamw(0.03, b1=0.85, b2=0.95, weight_decay=0.2),
        lambda p: torch.optim.AdamW(p, lr=0.03, betas=(0.85, 0.95), weight_decay=0.2),
    ),
    ("adamax", lambda: optim.adamax(), lambda p: torch.optim.Adamax(p)),
    (
        "adamax-custom",
        lambda: optim.adamax(0.02, b1=0.8, b2=0.99, eps=1e-5, weight_decay=0.01),
        lambda p: torch.optim.Adamax(p, lr=0.02, betas=(0.8, 0.99), eps=1e-5, weight_decay=0.01),
    ),
    ("nadam", lambda: optim.nadam(), lambda p: torch.optim.NAdam(p)),
    (
        "nadam-custom",
        lambda: optim.nadam(0.01, b1=0.85, momentum_decay=0.01, weight_decay=0.01),
        lambda p: torch.optim.NAdam(p, lr=0.01, betas=(0.85, 0.999), momentum_decay=0.01, weight_decay=0.01),
    ),
]


@pytest.mark.parametrize("reference, framework", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches_torch_optim(reference, framework):
    ours = run_reference(reference())
    theirs = run_torch(framework)
    start, _, _ = make_problem()
    moved = max(np.abs(a - b).max() for a, b in zip(theirs, start))
    assert moved > 1e-4, "the problem must move the parameters for the comparison to mean anything"
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def test_schedule_matches_torch_step_lr():
    """A learning-rate schedule (a callable of the step) matches torch's StepLR with SGD + momentum."""
    schedule = lambda step: 0.05 * 0.5 ** (step // 50)  # noqa: E731
    ours = run_reference(optim.sgd(schedule, momentum=0.9))
    theirs = run_torch(
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
        scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=50, gamma=0.5),
    )
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def test_reference_runs_on_torch_tensors_too():
    """The same transformation accepts torch tensors and gives the NumPy result."""
    params, curvature, wiggle = make_problem()
    tensors = [torch.tensor(p) for p in params]
    opt = optim.adam(0.01)
    state = opt.init(tensors)
    for _ in range(20):
        grads = [2 * torch.tensor(c) * p + torch.tensor(d) * torch.cos(p) for p, c, d in zip(tensors, curvature, wiggle)]
        updates, state = opt.update(grads, state, tensors)
        tensors = optim.apply_updates(tensors, updates)
    expected = run_reference(optim.adam(0.01), steps=20)
    for a, b in zip(tensors, expected):
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-12)


TORCH_CLASSES = {
    "sgd": "SGD", "adagrad": "Adagrad", "adadelta": "Adadelta", "rmsprop": "RMSprop", "adam": "Adam",
    "adamw": "AdamW", "adamax": "Adamax", "nadam": "NAdam",
}
TORCH_KEYS = {"learning_rate": "lr", "eps": "eps", "decay": "alpha", "rho": "rho", "momentum_decay": "momentum_decay",
              "initial_accumulator_value": "initial_accumulator_value", "weight_decay": "weight_decay"}


@pytest.mark.parametrize("name", sorted(TORCH_CLASSES))
def test_torch_defaults_table_matches_torch(name):
    opt = getattr(torch.optim, TORCH_CLASSES[name])([torch.zeros(1, requires_grad=True)])
    for key, value in optim.DEFAULTS[name]["torch"].items():
        assert opt.defaults[TORCH_KEYS[key]] == pytest.approx(value), (name, key)
