"""companion.monitoring: gradient checking (against torch.autograd.gradcheck) and health monitors on
modules whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from companion.monitoring import gradient_check, numerical_gradient
from companion.history import History


def f_quartic(x):
    return float(np.sum(x**4) + np.sin(x).prod())


def grad_quartic(x):
    prod = np.sin(x).prod()
    return 4 * x**3 + prod * np.cos(x) / np.sin(x)


X0 = np.array([0.3, -1.2, 0.7, 2.0])


def test_numerical_gradient_of_quadratic_is_exact():
    A = np.array([[2.0, 1.0], [1.0, 3.0]])
    x = np.array([0.5, -1.0])
    # Central differences are exact on quadratics, up to rounding.
    np.testing.assert_allclose(numerical_gradient(lambda v: 0.5 * v @ A @ v, x), A @ x, rtol=1e-9, atol=1e-9)


def test_correct_gradient_passes_and_bug_is_caught():
    assert gradient_check(f_quartic, grad_quartic, X0) < 1e-7
    assert gradient_check(f_quartic, lambda x: grad_quartic(x) * 1.01, X0) == pytest.approx(0.01 / 1.01, rel=1e-4)
    assert gradient_check(f_quartic, lambda x: 4 * x**3, X0) > 1e-2  # forgot the second term


def test_matrix_input_and_caller_array_untouched():
    x = np.arange(6.0).reshape(2, 3) / 7
    before = x.copy()
    assert gradient_check(lambda m: float(np.sum(np.tanh(m) ** 2)), lambda m: 2 * np.tanh(m) / np.cosh(m) ** 2, x) < 1e-7
    np.testing.assert_array_equal(x, before)


def test_bad_input():
    with pytest.raises(ValueError, match="eps"):
        gradient_check(f_quartic, grad_quartic, X0, eps=0.0)
    with pytest.raises(ValueError, match="eps"):
        numerical_gradient(f_quartic, X0, eps=-1e-6)
    with pytest.raises(ValueError, match="shape"):
        gradient_check(f_quartic, lambda x: grad_quartic(x)[:3], X0)
    with pytest.raises(ValueError, match="x"):
        gradient_check(f_quartic, grad_quartic, np.array([1.0, math.nan]))
    with pytest.raises(ValueError, match="floor"):
        gradient_check(f_quartic, grad_quartic, X0, floor=0.0)


torch = pytest.importorskip("torch")


def make_function(bug: bool):
    """y = sum(tanh(W x)) with a hand-written backward, as a torch autograd Function and as NumPy."""

    class TanhLayer(torch.autograd.Function):
        @staticmethod
        def forward(ctx, w, x):
            a = torch.tanh(w @ x)
            ctx.save_for_backward(w, x, a)
            return a

        @staticmethod
        def backward(ctx, grad_out):
            w, x, a = ctx.saved_tensors
            local = grad_out * (1 - a) if bug else grad_out * (1 - a * a)  # the bug: 1 - a instead of 1 - a^2
            return torch.outer(local, x), w.T @ local

    x = np.array([0.5, -0.3, 0.8])

    def f(w_flat):
        return float(np.sum(np.tanh(w_flat.reshape(2, 3) @ x)))

    def grad_f(w_flat):
        w = torch.tensor(w_flat.reshape(2, 3), requires_grad=True)
        TanhLayer.apply(w, torch.tensor(x)).sum().backward()
        return w.grad.numpy().reshape(-1)

    return TanhLayer, f, grad_f, x


@pytest.mark.parametrize("bug", [False, True])
def test_agrees_with_torch_gradcheck(bug):
    layer, f, grad_f, x = make_function(bug)
    w0 = np.random.default_rng(0).standard_normal(6)
    ours_passes = gradient_check(f, grad_f, w0) < 1e-5
    inputs = (torch.tensor(w0.reshape(2, 3), requires_grad=True), torch.tensor(x))
    torch_passes = torch.autograd.gradcheck(layer.apply, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=False)
    assert ours_passes == torch_passes == (not bug)


def test_numerical_gradient_matches_autograd():
    w0 = np.random.default_rng(1).standard_normal((3, 4))

    def f(w):
        return float(torch.logsumexp(torch.tensor(w) @ torch.linspace(-1, 1, 4, dtype=torch.float64), 0))

    w = torch.tensor(w0, requires_grad=True)
    torch.logsumexp(w @ torch.linspace(-1, 1, 4, dtype=torch.float64), 0).backward()
    np.testing.assert_allclose(numerical_gradient(f, w0), w.grad.numpy(), rtol=1e-7, atol=1e-10)


# --- monitors ------------------------------------------------------------------------------------

nn = torch.nn
from companion.monitoring import ActivationMonitor, register_health_hooks  # noqa: E402


def linear(n_in, n_out, weight, bias):
    layer = nn.Linear(n_in, n_out)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return layer


def test_dead_relu_and_saturated_tanh_known_answers():
    # 4 ReLU units: two behind a huge negative bias (dead), two alive. Then tanh of +-10 (saturated) and 0.
    model = nn.Sequential(
        linear(2, 4, np.eye(4, 2) * 0 + 1.0, [-1e3, -1e3, 0.0, 1e3]),
        nn.ReLU(),
        linear(4, 4, np.zeros((4, 4)), [10.0, -10.0, 0.0, 0.0]),
        nn.Tanh(),
    )
    x = torch.randn(32, 2)
    with ActivationMonitor(model) as monitor:
        model(x)
    assert monitor.stats["1"]["dead_fraction"] == 0.5
    assert monitor.stats["3"]["saturated_fraction"] == 0.5
    assert monitor.stats["3"]["mean"] == pytest.approx(0.0, abs=1e-6)
    values = monitor.measurements()
    assert values["1/dead_fraction"] == 0.5 and "3/saturated_fraction" in values


def test_all_dead_and_sigmoid_saturation():
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 5), nn.Sigmoid())
    with torch.no_grad():
        model[0].bias.fill_(-1e4)
        model[2].weight.zero_()
        model[2].bias.copy_(torch.tensor([20.0, -20.0, 0.0, 1.0, -20.0]))
    monitor = ActivationMonitor(model)
    out = model(torch.randn(16, 3))
    assert monitor.stats["1"] == {"mean": 0.0, "std": 0.0, "dead_fraction": 1.0}
    assert monitor.stats["3"]["saturated_fraction"] == pytest.approx(3 / 5)
    # A ReLU is dead only if it never fires on the batch: one active example keeps it alive.
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.copy_(torch.tensor([-1.0] * 7 + [0.5]))
    model(torch.randn(16, 3))
    assert monitor.stats["1"]["dead_fraction"] == 7 / 8
    # Evaluation passes are not recorded; removed hooks record nothing.
    model.eval()
    with torch.no_grad():
        model[0].bias.fill_(1.0)
    model(torch.randn(4, 3))
    assert monitor.stats["1"]["dead_fraction"] == 7 / 8
    model.train()
    monitor.remove()
    model(torch.randn(4, 3))
    assert monitor.stats["1"]["dead_fraction"] == 7 / 8
    assert out.shape == (16, 5)


def test_conv_channels_are_units():
    conv = nn.Conv2d(1, 3, 1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.copy_(torch.tensor([-100.0, 0.0, 100.0]))
    model = nn.Sequential(conv, nn.ReLU())
    monitor = ActivationMonitor(model)
    model(torch.rand(2, 1, 4, 4))
    assert monitor.stats["1"]["dead_fraction"] == pytest.approx(1 / 3)


def test_gradient_norms_and_update_ratios():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    monitor = register_health_hooks(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    history = History("health")
    for step in range(1, 4):
        opt.zero_grad()
        model(torch.randn(8, 4)).pow(2).sum().backward()
        grads = {name: p.grad.norm().item() for name, p in model.named_parameters()}
        weights = {name: p.detach().norm().item() for name, p in model.named_parameters()}
        with monitor.watch_step():
            opt.step()
        for name in grads:
            assert monitor.grad_norms[name] == pytest.approx(grads[name], rel=1e-6)
            # Plain SGD: the update is lr * g, so the ratio is lr |g| / |w|.
            assert monitor.update_ratios[name] == pytest.approx(0.01 * grads[name] / weights[name], rel=1e-4)
        history.log(step, **monitor.measurements())
    assert "update_ratio/0.weight" in history and "grad_norm/2.bias" in history and "1/dead_fraction" in history
    assert len(history.series("grad_norm/0.weight")[0]) == 3


def test_monitor_errors():
    with pytest.raises(TypeError, match="model"):
        ActivationMonitor("not a model")
    with pytest.raises(ValueError, match="nn.ReLU"):
        ActivationMonitor(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="saturation"):
        ActivationMonitor(nn.Sequential(nn.Tanh()), saturation=1.5)
    monitor = register_health_hooks(nn.Sequential(nn.Linear(2, 2), nn.Tanh()))
    with pytest.raises(ValueError, match="gradient"):
        monitor.record_gradients()
