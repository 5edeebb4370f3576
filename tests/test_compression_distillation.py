"""companion.compression.distillation: the loss of Hinton et al. (2015) against direct computations."""

import math
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from companion.compression import distillation as kd  # noqa: E402
from companion.compression.measure import count_parameters  # noqa: E402
from companion.history import History  # noqa: E402


def batch(n=16, classes=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(n, classes, generator=g, dtype=torch.float64) * 3
    teacher = torch.randn(n, classes, generator=g, dtype=torch.float64) * 5
    labels = torch.randint(0, classes, (n,), generator=g)
    return student, teacher, labels


def test_soft_targets_is_softmax_of_scaled_logits():
    z = torch.tensor([[2.0, 1.0, -1.0], [0.0, 0.0, 0.0]])
    for t in (0.5, 1.0, 4.0):
        expected = np.exp(z.numpy() / t) / np.exp(z.numpy() / t).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(kd.soft_targets(z, t).numpy(), expected, rtol=1e-6)
    flat, sharp = kd.soft_targets(z[:1], 100.0), kd.soft_targets(z[:1], 0.01)
    assert torch.allclose(flat, torch.full((1, 3), 1 / 3), atol=0.01)  # T -> inf: uniform
    assert torch.allclose(sharp, torch.tensor([[1.0, 0.0, 0.0]]), atol=1e-6)  # T -> 0: one-hot


@pytest.mark.parametrize("temperature,alpha", [(1.0, 0.5), (4.0, 0.1), (10.0, 0.0), (2.5, 0.9)])
def test_loss_matches_kl_div_and_cross_entropy(temperature, alpha):
    s, t, y = batch()
    expected = alpha * F.cross_entropy(s, y) + (1 - alpha) * temperature**2 * F.kl_div(
        F.log_softmax(s / temperature, dim=1), F.softmax(t / temperature, dim=1), reduction="batchmean"
    )
    got = kd.distillation_loss(s, t, y, temperature=temperature, alpha=alpha)
    assert torch.allclose(got, expected, rtol=1e-10, atol=1e-12)
    # Written out with NumPy: sum_i p_t,i log(p_t,i / p_s,i), averaged over the batch.
    p_t = kd.soft_targets(t, temperature).numpy()
    p_s = kd.soft_targets(s, temperature).numpy()
    kl = np.mean(np.sum(p_t * np.log(p_t / p_s), axis=1))
    ce = -np.mean(np.log(kd.soft_targets(s, 1.0).numpy()[np.arange(len(y)), y.numpy()]))
    assert math.isclose(got.item(), alpha * ce + (1 - alpha) * temperature**2 * kl, rel_tol=1e-9)


def test_loss_matches_keras_kl_divergence():
    keras = pytest.importorskip("keras")
    s, t, y = batch(n=8)
    temperature, alpha = 3.0, 0.25
    kl = keras.losses.KLDivergence()(
        kd.soft_targets(t, temperature).numpy().astype("float32"),
        kd.soft_targets(s, temperature).numpy().astype("float32"),
    )
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y.numpy(), s.numpy().astype("float32"))
    expected = alpha * float(ce) + (1 - alpha) * temperature**2 * float(kl)
    got = kd.distillation_loss(s, t, y, temperature=temperature, alpha=alpha).item()
    assert math.isclose(got, expected, rel_tol=1e-4)


def test_alpha_one_is_cross_entropy_and_alpha_zero_ignores_labels():
    s, t, y = batch()
    assert torch.equal(kd.distillation_loss(s, t, y, temperature=3.0, alpha=1.0), F.cross_entropy(s, y))
    other_labels = (y + 1) % 10
    a = kd.distillation_loss(s, t, y, temperature=3.0, alpha=0.0)
    b = kd.distillation_loss(s, t, other_labels, temperature=3.0, alpha=0.0)
    assert torch.equal(a, b)
    assert kd.distillation_loss(t, t, y, temperature=3.0, alpha=0.0).abs().item() < 1e-12  # KL(p || p) = 0


def test_gradient_is_scaled_back_by_t_squared():
    s, t, y = batch(n=64)
    t = t / 5  # moderate teacher logits: the large-T regime is reached sooner
    s = s / 3

    def kl_grad_norm(temperature, scaled):
        z = s.clone().requires_grad_(True)
        kl = F.kl_div(F.log_softmax(z / temperature, 1), F.softmax(t / temperature, 1), reduction="batchmean")
        (kl * (temperature**2 if scaled else 1.0)).backward()
        return z.grad.norm().item()

    def loss_grad_norm(temperature):
        z = s.clone().requires_grad_(True)
        kd.distillation_loss(z, t, y, temperature=temperature, alpha=0.0).backward()
        return z.grad.norm().item()

    # Without the factor the gradient falls as 1/T^2 (for large T, doubling T divides it by 4).
    for temperature in (8.0, 16.0, 32.0):
        ratio = kl_grad_norm(temperature, False) / kl_grad_norm(2 * temperature, False)
        assert ratio == pytest.approx(4.0, rel=0.05)
    # With it the gradient settles to a constant, (z_s - z_t) centred / N, as T grows.
    norms = [loss_grad_norm(temperature) for temperature in (8.0, 16.0, 32.0, 64.0)]
    assert max(norms) / min(norms) < 1.05
    centred = (s - s.mean(1, keepdim=True)) - (t - t.mean(1, keepdim=True))
    limit = (centred / (10 * len(s))).norm().item()
    assert norms[-1] == pytest.approx(limit, rel=0.01)
    for temperature in (1.0, 4.0):
        assert loss_grad_norm(temperature) == pytest.approx(kl_grad_norm(temperature, True), rel=1e-10)


def test_no_gradient_reaches_the_teacher():
    s, t, y = batch()
    t = t.clone().requires_grad_(True)
    kd.distillation_loss(s.requires_grad_(True), t, y, temperature=2.0, alpha=0.5).backward()
    assert t.grad is None


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan")])
def test_bad_temperature(temperature):
    s, t, y = batch()
    with pytest.raises(ValueError, match="temperature"):
        kd.distillation_loss(s, t, y, temperature=temperature, alpha=0.5)
    with pytest.raises(ValueError, match="temperature"):
        kd.soft_targets(s, temperature)


def test_bad_alpha_and_types():
    s, t, y = batch()
    for alpha in (-0.1, 1.5):
        with pytest.raises(ValueError, match="alpha"):
            kd.distillation_loss(s, t, y, temperature=2.0, alpha=alpha)
    with pytest.raises(TypeError, match="alpha"):
        kd.distillation_loss(s, t, y, temperature=2.0, alpha="0.5")
    with pytest.raises(TypeError, match="temperature"):
        kd.distillation_loss(s, t, y, temperature=None, alpha=0.5)
    with pytest.raises(TypeError, match="teacher_logits"):
        kd.distillation_loss(s, t.numpy(), y, temperature=2.0, alpha=0.5)
    with pytest.raises(TypeError, match="labels"):
        kd.distillation_loss(s, t, y.double(), temperature=2.0, alpha=0.5)
    with pytest.raises(TypeError, match="logits"):
        kd.soft_targets(torch.tensor([[1, 2]]), 2.0)


def test_shape_mismatch_and_labels_out_of_range():
    s, t, y = batch()
    with pytest.raises(ValueError, match="same shape"):
        kd.distillation_loss(s, t[:, :5], y, temperature=2.0, alpha=0.5)
    with pytest.raises(ValueError, match="same shape"):
        kd.distillation_loss(s, t[:8], y, temperature=2.0, alpha=0.5)
    with pytest.raises(ValueError, match="student_logits"):
        kd.distillation_loss(s[0], t[0], y, temperature=2.0, alpha=0.5)
    with pytest.raises(ValueError, match="labels"):
        kd.distillation_loss(s, t, y[:8], temperature=2.0, alpha=0.5)
    for bad in (10, -1):
        labels = y.clone()
        labels[3] = bad
        with pytest.raises(ValueError, match=r"labels must be in \[0, 10\)"):
            kd.distillation_loss(s, t, labels, temperature=2.0, alpha=0.5)


def test_models_and_parameter_ratio():
    teacher, student = kd.teacher_cnn(), kd.student_mlp()
    assert count_parameters(teacher) == 1_084_362
    assert count_parameters(student) == 101_770
    assert count_parameters(teacher) >= 10 * count_parameters(student)
    x = torch.zeros(3, 1, 28, 28)
    assert teacher(x).shape == student(x).shape == (3, 10)
    with pytest.raises(ValueError, match="hidden"):
        kd.student_mlp(0)


def test_train_student_with_and_without_teacher():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(96, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (96,), generator=g)
    recipe = kd.DistillationConfig(student_hidden=8, student_epochs=2, batch_size=32)
    torch.manual_seed(0)
    teacher = kd.student_mlp(16)
    logits = kd.predict_logits(teacher, x, batch_size=40)
    assert logits.shape == (96, 10) and not logits.requires_grad
    histories = {}
    for mode, tl in (("scratch", None), ("distilled", logits)):
        torch.manual_seed(1)
        model = kd.student_mlp(recipe.student_hidden)
        histories[mode] = kd.train_student(model, x, y, recipe, teacher_logits=tl, x_val=x, y_val=y,
                                           progress=False, name=mode)
        assert isinstance(histories[mode], History)
        assert len(histories[mode].series("loss")[1]) == 6  # 2 epochs of 3 batches
        assert len(histories[mode].series("val_accuracy")[1]) == 2
    # alpha=1 with a teacher is exactly training from scratch (same init, same batches).
    torch.manual_seed(1)
    same = kd.train_student(kd.student_mlp(8), x, y, replace(recipe, alpha=1.0), teacher_logits=logits, progress=False)
    np.testing.assert_allclose(same.series("loss")[1], histories["scratch"].series("loss")[1], rtol=1e-6)
    with pytest.raises(ValueError, match="teacher_logits"):
        kd.train_student(kd.student_mlp(8), x, y, recipe, teacher_logits=logits[:10], progress=False)
    with pytest.raises(ValueError, match="alpha"):
        kd.train_student(kd.student_mlp(8), x, y, replace(recipe, alpha=2.0), teacher_logits=logits, progress=False)
