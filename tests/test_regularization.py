"""companion.regularization: penalties against autograd and SGD weight decay, inverted dropout against
torch.nn.functional.dropout, early stopping on hand-built loss sequences and against Keras."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from companion.regularization import (  # noqa: E402
    EarlyStopping,
    InvertedDropout,
    fit_with_validation,
    inverted_dropout,
    l1_penalty,
    l2_penalty,
    penalized_parameters,
)


def small_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.ReLU(), nn.Linear(7, 3))


# --------------------------------------------------------------------------- penalties


def test_penalties_skip_biases_and_norm_parameters_by_default():
    model = small_model()
    weights = [model[0].weight, model[3].weight]
    assert [id(p) for p in penalized_parameters(model)] == [id(p) for p in weights]
    assert len(penalized_parameters(model, include_biases=True)) == len(list(model.parameters()))
    expected_l2 = 0.5 * 0.1 * sum(float((w.detach() ** 2).sum()) for w in weights)
    expected_l1 = 0.1 * sum(float(w.detach().abs().sum()) for w in weights)
    assert l2_penalty(model, 0.1).item() == pytest.approx(expected_l2, rel=1e-6)
    assert l1_penalty(model, 0.1).item() == pytest.approx(expected_l1, rel=1e-6)
    everything = sum(float((p.detach() ** 2).sum()) for p in model.parameters())
    assert l2_penalty(model, 0.1, include_biases=True).item() == pytest.approx(0.05 * everything, rel=1e-6)


def test_penalty_gradients_match_autograd_and_the_closed_form():
    model = small_model().double()
    strength = 0.3
    for penalty, closed_form in [
        (l2_penalty, lambda w: strength * w),
        (l1_penalty, lambda w: strength * torch.sign(w)),
    ]:
        model.zero_grad()
        penalty(model, strength).backward()
        for p in model.parameters():
            if p.ndim >= 2:
                torch.testing.assert_close(p.grad, closed_form(p.detach()))
            else:
                assert p.grad is None or torch.all(p.grad == 0)
        # and the same as autograd of the penalty written out by hand
        params = [p.detach().clone().requires_grad_() for p in penalized_parameters(model)]
        by_hand = sum(strength * (0.5 * (w**2).sum() if penalty is l2_penalty else w.abs().sum()) for w in params)
        grads = torch.autograd.grad(by_hand, params)
        for p, g in zip(penalized_parameters(model), grads):
            torch.testing.assert_close(p.grad, g)


def test_l2_penalty_under_sgd_is_torch_weight_decay():
    torch.manual_seed(0)
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    a = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    b = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    b.load_state_dict(a.state_dict())
    opt_a = torch.optim.SGD(a.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(
        [{"params": [p for p in b.parameters() if p.ndim >= 2], "weight_decay": 0.05},
         {"params": [p for p in b.parameters() if p.ndim < 2], "weight_decay": 0.0}],
        lr=0.1,
    )
    for _ in range(5):
        opt_a.zero_grad()
        (nn.functional.cross_entropy(a(x), y) + l2_penalty(a, 0.05)).backward()
        opt_a.step()
        opt_b.zero_grad()
        nn.functional.cross_entropy(b(x), y).backward()
        opt_b.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)


def test_penalty_accepts_an_iterable_of_tensors():
    w = torch.tensor([[1.0, -2.0]], requires_grad=True)
    assert l2_penalty([w], 2.0).item() == pytest.approx(5.0)
    assert l1_penalty([w], 2.0).item() == pytest.approx(6.0)


# --------------------------------------------------------------------------- dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_inverted_dropout_statistics_match_torch_dropout(p):
    x = torch.ones(400_000)
    generator = torch.Generator().manual_seed(0)
    mine = inverted_dropout(x, p, training=True, generator=generator)
    torch.manual_seed(0)
    theirs = nn.functional.dropout(x, p, training=True)
    n = x.numel()
    sigma = math.sqrt(p * (1 - p) / n)  # standard error of a zero fraction
    for out in (mine, theirs):
        zeros = float((out == 0).float().mean())
        assert abs(zeros - p) < 5 * sigma
        kept = out[out != 0]
        torch.testing.assert_close(kept, torch.full_like(kept, 1 / (1 - p)))  # the survivors are scaled
        assert abs(float(out.mean()) - 1.0) < 5 * sigma / (1 - p)  # the mean is preserved


def test_inverted_dropout_is_identity_in_eval_and_at_p_zero():
    x = torch.randn(10, 20)
    assert inverted_dropout(x, 0.5, training=False) is x
    torch.testing.assert_close(inverted_dropout(x, 0.5, training=False), nn.functional.dropout(x, 0.5, training=False))
    assert inverted_dropout(x, 0.0, training=True) is x


def test_inverted_dropout_is_reproducible_with_a_generator_and_backpropagates():
    x = torch.randn(50, 30, requires_grad=True)
    a = inverted_dropout(x, 0.3, generator=torch.Generator().manual_seed(5))
    b = inverted_dropout(x, 0.3, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)
    a.sum().backward()
    mask = (a != 0).float()
    torch.testing.assert_close(x.grad, mask / 0.7)


def test_inverted_dropout_layer_follows_train_and_eval_modes():
    layer = InvertedDropout(0.5, generator=torch.Generator().manual_seed(0))
    assert isinstance(layer, nn.Module) and "p=0.5" in repr(layer)
    x = torch.ones(1000)
    assert float((layer(x) == 0).float().mean()) > 0.4
    layer.eval()
    torch.testing.assert_close(layer(x), x)


# --------------------------------------------------------------------------- early stopping


def run(stopper, losses):
    for epoch, loss in enumerate(losses):
        if stopper.step(loss):
            return epoch
    return None


def test_early_stopping_on_a_hand_built_sequence():
    losses = [1.0, 0.8, 0.7, 0.72, 0.69, 0.71, 0.73, 0.75, 0.9]
    stopper = EarlyStopping(patience=2)
    assert run(stopper, losses) == 6  # best 0.69 at epoch 4, then two epochs without improvement
    assert stopper.best == 0.69 and stopper.best_epoch == 4
    stopper = EarlyStopping(patience=0)
    assert run(stopper, losses) == 3
    stopper = EarlyStopping(patience=3, min_delta=0.05)  # 0.7 -> 0.69 is not an improvement of 0.05
    assert run(stopper, losses) == 5 and stopper.best == 0.7 and stopper.best_epoch == 2
    assert run(EarlyStopping(patience=100), losses) is None
    stopper = EarlyStopping(patience=1, mode="max")
    assert run(stopper, [0.5, 0.6, 0.55, 0.7]) == 2 and stopper.best == 0.6


def test_early_stopping_agrees_with_keras():
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    sequences = [list(0.5 + np.cumsum(rng.normal(0, 0.1, size=30))) for _ in range(4)]
    sequences.append([1.0, 0.8, 0.7, 0.72, 0.69, 0.71, 0.73, 0.75, 0.9])
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    for losses in sequences:
        for patience, min_delta in [(0, 0.0), (2, 0.0), (3, 0.05)]:
            callback = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, min_delta=min_delta)
            callback.set_model(model)
            model.stop_training = False
            callback.on_train_begin()
            keras_stop = None
            for epoch, loss in enumerate(losses):
                callback.on_epoch_end(epoch, {"val_loss": loss})
                if model.stop_training:
                    keras_stop = epoch
                    break
            assert run(EarlyStopping(patience, min_delta), losses) == keras_stop, (patience, min_delta, losses)


def test_early_stopping_restores_the_best_weights():
    model = nn.Linear(2, 1)
    stopper = EarlyStopping(patience=1)
    best = None
    for epoch, loss in enumerate([3.0, 1.0, 2.0, 2.5]):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        if loss == 1.0:
            best = model.weight.detach().clone()
        if stopper.step(loss, model):
            break
    assert stopper.stopped_epoch == 2
    stopper.restore(model)
    torch.testing.assert_close(model.weight.detach(), best)
    with pytest.raises(RuntimeError, match="best weights"):
        EarlyStopping().restore(model)


# --------------------------------------------------------------------------- the training loop


def test_fit_with_validation_records_curves_and_stops_early():
    torch.manual_seed(0)
    x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    history = fit_with_validation(
        model, torch.optim.Adam(model.parameters(), 1e-2), x[:48], y[:48], x[48:], y[48:], epochs=30,
        batch_size=16, penalty=lambda m: l2_penalty(m, 1e-3), early_stopping=EarlyStopping(patience=2),
        progress=False,
    )
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        assert key in history
    epochs, val_loss = history.series("val_loss")
    assert history.meta["epochs_run"] == len(epochs) <= 30
    best = history.meta["best_epoch"]
    assert val_loss[best - 1] == val_loss.min()
    model.eval()
    with torch.no_grad():
        restored = nn.functional.cross_entropy(model(x[48:]), y[48:]).item()
    assert restored == pytest.approx(val_loss.min(), rel=1e-5)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, error, name",
    [
        (lambda: inverted_dropout(torch.ones(3), 1.0), ValueError, "p"),
        (lambda: inverted_dropout(torch.ones(3), -0.1), ValueError, "p"),
        (lambda: inverted_dropout(np.ones(3), 0.5), TypeError, "x"),
        (lambda: InvertedDropout(1.2), ValueError, "p"),
        (lambda: l2_penalty(small_model(), -1.0), ValueError, "strength"),
        (lambda: l1_penalty(small_model(), -1e-3), ValueError, "strength"),
        (lambda: l2_penalty(small_model(), float("nan")), ValueError, "strength"),
        (lambda: l2_penalty([torch.ones(3)], 1.0), ValueError, "no parameter"),
        (lambda: l2_penalty([1.0, 2.0], 1.0), TypeError, "model"),
        (lambda: EarlyStopping(patience=-1), ValueError, "patience"),
        (lambda: EarlyStopping(patience=1.5), TypeError, "patience"),
        (lambda: EarlyStopping(min_delta=-0.1), ValueError, "min_delta"),
        (lambda: EarlyStopping(mode="up"), ValueError, "mode"),
        (lambda: EarlyStopping().step(float("nan")), ValueError, "value"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, error, name):
    with pytest.raises(error, match=name):
        call()
