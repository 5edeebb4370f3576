"""companion.normalization: batch normalization from scratch against torch.nn.BatchNorm1d (both modes,
running statistics, momentum), keras.layers.BatchNormalization (its momentum and epsilon conventions),
and autograd (gradcheck in float64, and a direct comparison of the hand-written backward pass)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from companion.normalization import (  # noqa: E402
    BatchNorm1dFromScratch,
    batch_norm,
    batch_norm_backward,
    batch_norm_forward,
)


def batches(n_batches=5, n=16, c=6, seed=0, dtype=torch.float32):
    """Mini-batches whose features have different means and scales (so the statistics matter)."""
    generator = torch.Generator().manual_seed(seed)
    scale = torch.linspace(0.5, 4.0, c, dtype=dtype)
    shift = torch.linspace(-3.0, 2.0, c, dtype=dtype)
    return [shift + scale * torch.randn(n, c, generator=generator, dtype=dtype) for _ in range(n_batches)]


def fresh_stats(c, dtype=torch.float32):
    return torch.zeros(c, dtype=dtype), torch.ones(c, dtype=dtype)


# --------------------------------------------------------------------------- against torch.nn.BatchNorm1d


@pytest.mark.parametrize("momentum", [0.1, 0.3, 1.0, 0.0])
def test_forward_and_running_statistics_match_torch_over_several_batches(momentum):
    c = 6
    reference = nn.BatchNorm1d(c, momentum=momentum, eps=1e-5).double()
    torch.manual_seed(0)
    with torch.no_grad():  # a non-trivial affine part
        reference.weight.uniform_(0.5, 2.0)
        reference.bias.uniform_(-1.0, 1.0)
    gamma, beta = reference.weight.detach().clone(), reference.bias.detach().clone()
    running_mean, running_var = fresh_stats(c, torch.float64)
    reference.train()
    for x in batches(dtype=torch.float64):
        out, running_mean, running_var, _ = batch_norm_forward(
            x, gamma, beta, running_mean, running_var, training=True, momentum=momentum)
        torch.testing.assert_close(out, reference(x).detach(), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(running_mean, reference.running_mean, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(running_var, reference.running_var, rtol=1e-12, atol=1e-12)
    reference.eval()
    x = batches(1, seed=1, dtype=torch.float64)[0]
    out, eval_mean, eval_var, _ = batch_norm_forward(x, gamma, beta, running_mean, running_var, training=False)
    torch.testing.assert_close(out, reference(x).detach(), rtol=1e-12, atol=1e-12)
    assert torch.equal(eval_mean, running_mean) and torch.equal(eval_var, running_var)  # eval updates nothing


def test_inputs_are_not_modified():
    x = batches(1)[0]
    gamma, beta = torch.full((6,), 2.0), torch.full((6,), 0.5)
    running_mean, running_var = fresh_stats(6)
    copies = [t.clone() for t in (x, gamma, beta, running_mean, running_var)]
    result = batch_norm_forward(x, gamma, beta, running_mean, running_var, training=True)
    for before, after in zip(copies, (x, gamma, beta, running_mean, running_var)):
        assert torch.equal(before, after)
    assert result.running_mean is not running_mean and not torch.equal(result.running_mean, running_mean)
    evaluated = batch_norm_forward(x, gamma, beta, running_mean, running_var, training=False)
    assert evaluated.running_mean is not running_mean  # a copy, so the caller may change it safely


def test_module_trains_like_torch_batchnorm1d():
    """Same initial weights, same data, same SGD steps: the same weights, buffers and eval outputs."""

    def model(norm):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(6, 8), norm(8), nn.ReLU(), nn.Linear(8, 3)).double()
        return net

    ours, theirs = model(BatchNorm1dFromScratch), model(nn.BatchNorm1d)
    assert "BatchNorm1dFromScratch(8, eps=1e-05, momentum=0.1)" in repr(ours)
    opt_ours = torch.optim.SGD(ours.parameters(), lr=0.1)
    opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.1)
    labels = torch.arange(16) % 3
    for x in batches(8, dtype=torch.float64):
        for net, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), labels).backward()
            opt.step()
    reference = theirs.state_dict()
    for name, value in ours.state_dict().items():
        torch.testing.assert_close(value, reference[name], rtol=1e-10, atol=1e-12)
    ours.eval(), theirs.eval()
    x = batches(1, seed=3, dtype=torch.float64)[0]
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-10, atol=1e-12)
    assert set(ours.state_dict()) == {k for k in theirs.state_dict() if not k.endswith("num_batches_tracked")}


def test_module_buffers_follow_the_model_to_float64_and_stay_buffers():
    layer = BatchNorm1dFromScratch(4).double()
    layer(torch.randn(5, 4, dtype=torch.float64))
    assert layer.running_mean.dtype == torch.float64
    assert [name for name, _ in layer.named_buffers()] == ["running_mean", "running_var"]
    assert not layer.running_mean.requires_grad


# --------------------------------------------------------------------------- against Keras


def test_matches_keras_batch_normalization():
    """Keras' momentum is torch's 1 - momentum, its epsilon 1e-3 by default, and its running variance biased."""
    keras = pytest.importorskip("keras")
    c, torch_momentum = 6, 0.1
    layer = keras.layers.BatchNormalization(momentum=1.0 - torch_momentum)  # epsilon: the default 1e-3
    assert layer.epsilon == pytest.approx(1e-3)
    layer.build((None, c))
    gamma, beta = torch.linspace(0.5, 2.0, c), torch.linspace(-1.0, 1.0, c)
    layer.gamma.assign(gamma.numpy())
    layer.beta.assign(beta.numpy())
    running_mean, running_var = fresh_stats(c)
    biased_var = running_var.clone()
    for x in batches():
        keras_out = keras.ops.convert_to_numpy(layer(x.numpy(), training=True))
        out, running_mean, running_var, _ = batch_norm_forward(
            x, gamma, beta, running_mean, running_var, training=True, momentum=torch_momentum, eps=1e-3)
        biased_var = (1 - torch_momentum) * biased_var + torch_momentum * x.var(dim=0, unbiased=False)
        np.testing.assert_allclose(out.numpy(), keras_out, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(running_mean.numpy(), keras.ops.convert_to_numpy(layer.moving_mean), rtol=1e-5, atol=1e-6)
    keras_var = keras.ops.convert_to_numpy(layer.moving_variance)
    np.testing.assert_allclose(keras_var, biased_var.numpy(), rtol=1e-5)  # Keras: biased variance
    assert np.all(running_var.numpy() > keras_var)  # ours (and torch's): the batch terms N/(N-1) larger
    assert not np.allclose(running_var.numpy(), keras_var, rtol=1e-3)
    # evaluation mode, each layer with its own running statistics: the same formula
    x = batches(1, seed=1)[0]
    keras_eval = keras.ops.convert_to_numpy(layer(x.numpy(), training=False))
    ours_eval = batch_norm_forward(x, gamma, beta, torch.as_tensor(keras.ops.convert_to_numpy(layer.moving_mean)),
                                   torch.as_tensor(keras_var), training=False, eps=1e-3).out
    np.testing.assert_allclose(ours_eval.numpy(), keras_eval, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- the backward pass


@pytest.mark.parametrize("training", [True, False])
def test_backward_passes_gradcheck(training):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(7, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    gamma = (0.5 + torch.rand(4, dtype=torch.float64, generator=generator)).requires_grad_()
    beta = torch.randn(4, dtype=torch.float64, generator=generator, requires_grad=True)
    running_mean = torch.randn(4, dtype=torch.float64, generator=generator)
    running_var = 0.5 + torch.rand(4, dtype=torch.float64, generator=generator)

    def f(x, gamma, beta):
        return batch_norm(x, gamma, beta, running_mean, running_var, training=training)[0]

    assert torch.autograd.gradcheck(f, (x, gamma, beta), eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("training", [True, False])
def test_hand_written_backward_equals_autograd_of_the_forward(training):
    x = (batches(1, n=32, dtype=torch.float64)[0]).requires_grad_()
    gamma = torch.linspace(0.5, 2.0, 6, dtype=torch.float64, requires_grad=True)
    beta = torch.linspace(-1.0, 1.0, 6, dtype=torch.float64, requires_grad=True)
    running_mean, running_var = torch.full((6,), 0.3, dtype=torch.float64), torch.full((6,), 2.0, dtype=torch.float64)
    grad_out = torch.randn(32, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out, _, _, cache = batch_norm_forward(x, gamma, beta, running_mean, running_var, training=training)
    expected = torch.autograd.grad(out, (x, gamma, beta), grad_out)
    found = batch_norm_backward(grad_out, cache)
    for name, a, b in zip(("dx", "dgamma", "dbeta"), found, expected):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=name)
    if training:  # the two projections (exact for eps = 0): dx sums to 0 and is orthogonal to x_hat
        _, _, _, cache = batch_norm_forward(x, gamma, beta, running_mean, running_var, training=True, eps=0.0)
        dx = batch_norm_backward(grad_out, cache)[0]
        zeros = torch.zeros(6, dtype=torch.float64)
        torch.testing.assert_close(dx.sum(0), zeros, rtol=0, atol=1e-12)
        torch.testing.assert_close((dx * cache.x_hat).sum(0), zeros, rtol=0, atol=1e-12)


def test_module_gradients_equal_torch_batchnorm1d():
    x = batches(1, n=10, dtype=torch.float64)[0]
    ours, theirs = BatchNorm1dFromScratch(6).double(), nn.BatchNorm1d(6).double()
    inputs = [x.clone().requires_grad_() for _ in range(2)]
    weights = torch.linspace(-1.0, 1.0, 60, dtype=torch.float64).reshape(10, 6)
    for layer, inp in zip((ours, theirs), inputs):
        (layer(inp) ** 3 * weights).sum().backward()
    torch.testing.assert_close(inputs[0].grad, inputs[1].grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours.bias.grad, theirs.bias.grad, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- wrong variants fail


def test_a_biased_running_variance_is_caught():
    """The plausible slip (Keras' convention, or var(unbiased=False) everywhere) differs from torch."""
    reference = nn.BatchNorm1d(6).double()
    running_mean, running_var = fresh_stats(6, torch.float64)
    for x in batches(dtype=torch.float64):
        reference(x)
        running_var = 0.9 * running_var + 0.1 * x.var(dim=0, unbiased=False)  # the wrong variant
    assert not torch.allclose(running_var, reference.running_var, rtol=1e-3)
    assert torch.allclose(running_var, reference.running_var, rtol=0.1)  # close, so easy to miss


def test_a_backward_pass_without_the_variance_term_fails_gradcheck():
    """Forgetting that sigma depends on x drops the x_hat term: gradcheck notices."""
    x = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    gamma, beta = torch.ones(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    stats = fresh_stats(3, torch.float64)

    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            result = batch_norm_forward(x, gamma, beta, *stats, training=True)
            ctx.save_for_backward(result.cache.x_hat, result.cache.inv_std)
            return result.out

        @staticmethod
        def backward(ctx, dy):
            _, inv_std = ctx.saved_tensors
            return inv_std * (dy - dy.mean(0))  # the x_hat * sum(dy * x_hat) term is missing

    assert not torch.autograd.gradcheck(Wrong.apply, (x,), eps=1e-6, atol=1e-6, raise_exception=False)


# --------------------------------------------------------------------------- bad input


def _args(**changes):
    args = dict(x=torch.randn(8, 3), gamma=torch.ones(3), beta=torch.zeros(3), running_mean=torch.zeros(3),
                running_var=torch.ones(3), training=True)
    args.update(changes)
    return args


@pytest.mark.parametrize("changes, error, name", [
    (dict(x=torch.randn(8)), ValueError, "x"),
    (dict(x=torch.randn(8, 3, 2)), ValueError, "x"),
    (dict(x=torch.randn(1, 3)), ValueError, "x"),
    (dict(x=np.ones((8, 3))), TypeError, "x"),
    (dict(gamma=torch.ones(4)), ValueError, "gamma"),
    (dict(beta=torch.zeros(3, 1)), ValueError, "beta"),
    (dict(running_mean=torch.zeros(2)), ValueError, "running_mean"),
    (dict(running_var=None), TypeError, "running_var"),
    (dict(eps=-1e-5), ValueError, "eps"),
    (dict(eps=float("nan")), ValueError, "eps"),
    (dict(momentum=1.5), ValueError, "momentum"),
    (dict(momentum=-0.1), ValueError, "momentum"),
    (dict(momentum="0.1"), TypeError, "momentum"),
    (dict(training="yes"), TypeError, "training"),
])
def test_bad_input_raises_naming_the_argument(changes, error, name):
    with pytest.raises(error, match=rf"\b{name}\b"):
        batch_norm_forward(**_args(**changes))


def test_bad_backward_and_module_input():
    cache = batch_norm_forward(**_args()).cache
    with pytest.raises(ValueError, match="grad_out"):
        batch_norm_backward(torch.ones(8, 4), cache)
    with pytest.raises(ValueError, match="num_features"):
        BatchNorm1dFromScratch(0)
    with pytest.raises(ValueError, match="eps"):
        BatchNorm1dFromScratch(3, eps=-1.0)
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm1dFromScratch(3, momentum=2.0)
    with pytest.raises(ValueError, match=r"\bx\b"):
        BatchNorm1dFromScratch(3)(torch.randn(4, 5))
