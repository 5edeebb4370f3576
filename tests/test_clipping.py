"""companion.clipping against torch.nn.utils.clip_grad_norm_/clip_grad_value_ and Keras' clipnorm,
global_clipnorm and clipvalue."""

from __future__ import annotations

import math

import numpy as np
import pytest

from companion import optim
from companion.clipping import clip_by_global_norm, clip_by_norm_per_leaf, clip_by_value, global_norm


def gradients(seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    return [scale * rng.standard_normal(shape) for shape in [(4, 3), (3,), (5, 2, 2)]]


def apply(transform, grads):
    updates, _ = transform.update(grads, transform.init(grads))
    return updates


def test_global_norm_numpy():
    grads = gradients()
    expected = np.sqrt(sum(np.sum(g**2) for g in grads))
    assert global_norm(grads) == pytest.approx(expected, rel=1e-14)
    assert global_norm({"a": np.array([3.0]), "b": (np.array([4.0]), None)}) == 5.0
    assert global_norm([]) == 0.0


@pytest.mark.parametrize("max_norm", [0.5, 2.0, 100.0])
def test_clip_by_global_norm_rule(max_norm):
    grads = gradients()
    norm = global_norm(grads)
    clipped = apply(clip_by_global_norm(max_norm, eps=0.0), grads)
    factor = min(1.0, max_norm / norm)
    for g, c in zip(grads, clipped):
        np.testing.assert_allclose(c, factor * g, rtol=1e-14)
    assert global_norm(clipped) == pytest.approx(min(norm, max_norm), rel=1e-12)


def test_zero_gradient_is_left_alone():
    zeros = [np.zeros(3), np.zeros((2, 2))]
    for transform in [clip_by_global_norm(1.0, eps=0.0), clip_by_global_norm(1.0), clip_by_norm_per_leaf(1.0)]:
        for c in apply(transform, zeros):
            assert np.all(c == 0) and np.all(np.isfinite(c))


def test_non_finite_gradient_is_not_hidden():
    grads = [np.array([1.0, np.nan]), np.array([2.0])]
    clipped = apply(clip_by_global_norm(1.0), grads)
    assert all(np.all(np.isnan(c)) for c in clipped)  # torch and Keras give NaN too: the run has diverged
    with pytest.raises(optim.NonFiniteGradientError):
        opt = optim.chain(clip_by_global_norm(1.0), optim.sgd(0.1))
        opt.update(grads, opt.init(grads), grads)


def test_per_leaf_differs_from_global():
    grads = [np.array([3.0, 4.0]), np.array([0.3, 0.4])]  # norms 5 and 0.5
    per_leaf = apply(clip_by_norm_per_leaf(1.0), grads)
    np.testing.assert_allclose(per_leaf[0], [0.6, 0.8])
    np.testing.assert_allclose(per_leaf[1], [0.3, 0.4])  # under the limit: untouched
    glob = apply(clip_by_global_norm(1.0, eps=0.0), grads)
    factor = 1.0 / math.sqrt(25.25)
    np.testing.assert_allclose(glob[1], factor * grads[1])


def test_tree_structures_are_kept():
    grads = {"w": np.ones((2, 2)) * 10, "b": (np.ones(2), None)}
    for transform in [clip_by_value(0.5), clip_by_global_norm(1.0), clip_by_norm_per_leaf(1.0)]:
        out = apply(transform, grads)
        assert set(out) == {"w", "b"} and out["b"][1] is None and out["w"].shape == (2, 2)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda v: clip_by_global_norm(v), "max_norm"),
        (lambda v: clip_by_norm_per_leaf(v), "max_norm"),
        (lambda v: clip_by_value(v), "limit"),
    ],
)
@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_bad_arguments(make, name, bad):
    with pytest.raises(ValueError, match=name):
        make(bad)


def test_bad_types_and_eps():
    with pytest.raises(TypeError, match="max_norm"):
        clip_by_global_norm("1.0")
    with pytest.raises(ValueError, match="eps"):
        clip_by_global_norm(1.0, eps=-1e-6)


# --- against torch ---------------------------------------------------------------------------------

torch = pytest.importorskip("torch")


def torch_grads(seed=0, scale=3.0):
    return [torch.tensor(g) for g in gradients(seed, scale)]


@pytest.mark.parametrize("max_norm", [0.5, 4.0, 1e3])
def test_global_norm_matches_torch_clip_grad_norm(max_norm):
    grads = torch_grads()
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    assert float(global_norm(grads)) == pytest.approx(float(total), rel=1e-15)
    # torch's eps: factor = min(1, c / (|g| + 1e-6)), applied even when it is 1.
    ours = apply(clip_by_global_norm(max_norm), grads)  # torch tensors in, torch tensors out
    ours_np = apply(clip_by_global_norm(max_norm), [g.numpy() for g in grads])
    for p, o, n in zip(params, ours, ours_np):
        torch.testing.assert_close(o, p.grad, rtol=0, atol=0)
        np.testing.assert_allclose(n, p.grad.numpy(), rtol=1e-15, atol=0)
    if max_norm < float(total):  # clipped: the norm ends a hair *below* max_norm because of the eps
        assert float(global_norm(ours)) < max_norm
        with_eps0 = apply(clip_by_global_norm(max_norm, eps=0.0), grads)
        assert float(global_norm(with_eps0)) == pytest.approx(max_norm, rel=1e-14)
        gap = max_norm - float(global_norm(ours))
        assert gap == pytest.approx(max_norm * 1e-6 / float(total), rel=1e-6)


@pytest.mark.parametrize("limit", [0.25, 1.0, 100.0])
def test_clip_by_value_matches_torch(limit):
    grads = torch_grads()
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    torch.nn.utils.clip_grad_value_(params, limit)
    for p, o in zip(params, apply(clip_by_value(limit), grads)):
        torch.testing.assert_close(o, p.grad, rtol=0, atol=0)
    for p, o in zip(params, apply(clip_by_value(limit), [g.numpy() for g in grads])):
        np.testing.assert_array_equal(o, p.grad.numpy())


def test_clipped_chain_through_torch_adapter_equals_torch():
    """ReferenceOptimizer(chain(clip, sgd)) on a real nn.Module == torch.optim.SGD + clip_grad_norm_."""
    from companion.optim.torch_adapter import ReferenceOptimizer

    def make_model():
        torch.manual_seed(0)
        return torch.nn.Sequential(
            torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)
        ).double()

    x = torch.randn(64, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 5
    y = torch.randint(0, 3, (64,), generator=torch.Generator().manual_seed(2))
    ours_model, torch_model = make_model(), make_model()
    clipped_sgd = optim.chain(clip_by_global_norm(0.0625), optim.sgd(0.5, momentum=0.875))
    ours = ReferenceOptimizer(ours_model.parameters(), clipped_sgd)
    reference = torch.optim.SGD(torch_model.parameters(), lr=0.5, momentum=0.875)
    clipped_steps = 0
    for _ in range(30):
        for model, opt in [(ours_model, ours), (torch_model, reference)]:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            if opt is reference:
                clipped_steps += float(torch.nn.utils.clip_grad_norm_(model.parameters(), 0.0625)) > 0.0625
            opt.step()
    assert clipped_steps >= 10  # the test exercises clipping, not just the pass-through
    for p, q in zip(ours_model.parameters(), torch_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-13)


# --- against Keras ---------------------------------------------------------------------------------

LR = 0.25
CLIP = 0.5


def run_keras(clip_kwargs, steps=20):
    keras = pytest.importorskip("keras")
    variables = [keras.Variable(np.zeros_like(g), dtype="float64") for g in gradients(seed=0)]
    opt = keras.optimizers.SGD(LR, **clip_kwargs)
    for step in range(steps):
        grads = gradients(seed=step, scale=1.0 + step)  # norms from about 1 to 40: some steps clip, some not
        opt.apply_gradients(zip([keras.ops.convert_to_tensor(g, dtype="float64") for g in grads], variables))
    return [np.asarray(v.numpy()) for v in variables]


def run_reference(clip, steps=20):
    opt = optim.chain(clip, optim.sgd(LR, convention="keras"))
    params = [np.zeros_like(g) for g in gradients(seed=0)]
    state = opt.init(params)
    for step in range(steps):
        updates, state = opt.update(gradients(seed=step, scale=1.0 + step), state, params)
        params = optim.apply_updates(params, updates)
    return params


@pytest.mark.parametrize(
    "keras_kwargs, clip",
    [
        ({"global_clipnorm": CLIP}, lambda: clip_by_global_norm(CLIP, eps=0.0)),
        ({"clipnorm": CLIP}, lambda: clip_by_norm_per_leaf(CLIP)),
        ({"clipvalue": CLIP}, lambda: clip_by_value(CLIP)),
    ],
    ids=["global_clipnorm", "clipnorm", "clipvalue"],
)
def test_matches_keras_options(keras_kwargs, clip):
    for ours, theirs in zip(run_reference(clip()), run_keras(keras_kwargs)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


def test_keras_clipnorm_is_not_global_clipnorm():
    per_leaf, glob = run_keras({"clipnorm": CLIP}), run_keras({"global_clipnorm": CLIP})
    assert max(np.max(np.abs(a - b)) for a, b in zip(per_leaf, glob)) > 0.1


def test_keras_tensors_go_through():
    keras = pytest.importorskip("keras")
    grads = gradients()
    tensors = [keras.ops.convert_to_tensor(g, dtype="float64") for g in grads]
    for transform in [clip_by_global_norm(CLIP, eps=0.0), clip_by_norm_per_leaf(CLIP), clip_by_value(CLIP)]:
        for a, b in zip(apply(transform, tensors), apply(transform, grads)):
            np.testing.assert_allclose(np.asarray(a), b, rtol=1e-13)
