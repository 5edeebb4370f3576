"""companion.training: the one loop, checked step by step against the same loop written out by hand.

The chapters' asserted numbers depend on the loop doing exactly what a reader would write: the same
shuffled mini-batches, one forward pass, one backward pass, one optimizer step. The reference below
is that loop in a dozen lines; every feature of ``train_classifier`` is compared with it bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from companion import optim  # noqa: E402
from companion.training import (  # noqa: E402
    Callback,
    LambdaCallback,
    batches,
    evaluate,
    mlp,
    train_classifier,
)


def written_out_loop(model, optimizer, x, targets, *, epochs, batch_size, seed=0, loss_fn=F.cross_entropy,
                     transform=None, after_step=None):
    """What every chapter's loop did before there was one: returns the per-step losses."""
    generator = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), batch_size):
            batch = order[i : i + batch_size]
            inputs = x[batch] if transform is None else transform(x[batch])
            target = targets[batch] if torch.is_tensor(targets) else tuple(t[batch] for t in targets)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(inputs), target)
            loss.backward()
            optimizer.step()
            if after_step is not None:
                after_step()
            losses.append(loss.item())
    return losses


def data(n=150, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 12, generator=g), torch.randint(0, 3, (n,), generator=g)


def model(seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(), torch.nn.Dropout(dropout), torch.nn.Linear(16, 3))


def weights(m):
    return [p.detach().clone() for p in m.parameters()]


@pytest.mark.parametrize("make_optimizer", [
    lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9),
    lambda m: torch.optim.Adam(m.parameters(), lr=1e-2),
])
def test_train_classifier_is_the_written_out_loop_bit_for_bit(make_optimizer):
    x, y = data()
    a, b = model(dropout=0.2), model(dropout=0.2)
    torch.manual_seed(9)  # dropout draws from the global generator: the same draws in both runs
    expected = written_out_loop(a, make_optimizer(a), x, y, epochs=3, batch_size=32, seed=4)
    torch.manual_seed(9)
    history = train_classifier(b, make_optimizer(b), x, y, epochs=3, batch_size=32, seed=4, progress=False)
    np.testing.assert_array_equal(history.series("loss")[1], expected)
    assert all(torch.equal(p, q) for p, q in zip(weights(a), weights(b)))
    # Per epoch: the mean of its mini-batch losses, weighted by batch size (5 batches of 32, 22, ...).
    sizes = np.array([32, 32, 32, 32, 22] * 3)
    per_epoch = [(np.array(expected[i : i + 5]) * sizes[:5]).sum() / 150 for i in (0, 5, 10)]
    np.testing.assert_allclose(history.series("train_loss")[1], per_epoch, rtol=1e-12)
    np.testing.assert_array_equal(history.series("epoch")[1], [1, 2, 3])
    np.testing.assert_array_equal(history.series("train_loss")[0], [5, 10, 15])


def test_loss_fn_with_tuple_targets_transform_and_a_scheduler_callback_match_the_written_out_loop():
    x, y = data()
    soft = torch.softmax(torch.randn(150, 3, generator=torch.Generator().manual_seed(1)), dim=1)

    def loss_fn(logits, targets):  # labels and soft targets travel together, as in distillation
        labels, probabilities = targets
        return 0.5 * F.cross_entropy(logits, labels) + 0.5 * F.cross_entropy(logits, probabilities)

    def noisy(inputs):
        return inputs + 0.05 * torch.randn_like(inputs)

    runs = []
    for by_hand in (True, False):
        m = model()
        opt = torch.optim.SGD(m.parameters(), lr=0.5)
        schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / 10)))
        torch.manual_seed(3)
        if by_hand:
            losses = written_out_loop(m, opt, x, (y, soft), epochs=2, batch_size=30, loss_fn=loss_fn, transform=noisy,
                                      after_step=schedule.step)
        else:
            losses = train_classifier(m, opt, x, (y, soft), epochs=2, batch_size=30, loss_fn=loss_fn, transform=noisy,
                                      callbacks=[LambdaCallback(on_step=lambda state: schedule.step())],
                                      progress=False).series("loss")[1]
        runs.append((np.asarray(losses), weights(m), opt.param_groups[0]["lr"]))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert all(torch.equal(p, q) for p, q in zip(runs[0][1], runs[1][1]))
    assert runs[0][2] == runs[1][2] == pytest.approx(0.0, abs=1e-12)  # the cosine reached zero after 10 steps


def test_a_companion_chain_trains_like_the_torch_optimizer_it_mirrors():
    x, y = data()
    a, b = model(), model()
    h_torch = train_classifier(a, torch.optim.Adam(a.parameters(), lr=1e-2), x, y, epochs=2, progress=False)
    h_ref = train_classifier(b, optim.adam(1e-2), x, y, epochs=2, progress=False)
    np.testing.assert_allclose(h_ref.series("loss")[1], h_torch.series("loss")[1], rtol=1e-4)


def test_batches_cover_every_example_once_per_epoch_and_depend_on_the_seed_alone():
    plan = list(batches(10, 4, seed=1, epochs=2))
    assert [e for e, _ in plan] == [0, 0, 0, 1, 1, 1] and [len(i) for _, i in plan] == [4, 4, 2] * 2
    for epoch in (0, 1):
        assert sorted(torch.cat([i for e, i in plan if e == epoch]).tolist()) == list(range(10))
    again = list(batches(10, 4, seed=1, epochs=2))
    assert all(torch.equal(i, j) for (_, i), (_, j) in zip(plan, again))
    assert not torch.equal(plan[0][1], next(batches(10, 4, seed=2))[1])
    assert [len(i) for _, i in batches(10, 4, seed=1, epochs=2, drop_last=True)] == [4, 4, 4, 4]
    with pytest.raises(ValueError, match="batch_size"):
        next(batches(3, 4, drop_last=True))
    with pytest.raises(ValueError, match="n"):
        next(batches(0, 4))


def test_evaluate_matches_a_direct_computation_and_restores_the_mode():
    x, y = data()
    m = model(dropout=0.5)
    m.train()
    result = evaluate(m, x, y, batch_size=40)
    m.eval()
    with torch.no_grad():
        logits = m(x)
    assert result["loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    assert result["accuracy"] == (logits.argmax(1) == y).sum().item() / len(y)
    m.train()
    evaluate(m, x, y)
    assert m.training
    with pytest.raises(ValueError, match="metrics"):
        evaluate(m, x, y, ("f1",))
    with pytest.raises(ValueError, match="lengths"):
        evaluate(m, x, y[:5])
    with pytest.raises(ValueError, match="empty"):
        evaluate(m, x[:0], y[:0])


def test_validation_metrics_are_logged_at_the_end_of_each_epoch():
    x, y = data()
    history = train_classifier(model(), optim.sgd(0.1), x, y, x_val=x[:50], y_val=y[:50], metrics=("loss", "accuracy"),
                               epochs=2, batch_size=50, progress=False)
    steps, val_loss = history.series("val_loss")
    np.testing.assert_array_equal(steps, [3, 6])
    m = model()
    train_classifier(m, optim.sgd(0.1), x, y, epochs=2, batch_size=50, progress=False)
    assert val_loss[-1] == pytest.approx(evaluate(m, x[:50], y[:50])["loss"], rel=1e-12)


def test_callbacks_are_called_in_order_and_can_stop_training():
    x, y = data()
    calls = []

    class Recorder(Callback):
        def on_step_begin(self, state):
            calls.append(("begin", state.step, state.epoch))

        def on_step(self, state):
            calls.append(("step", state.step, state.epoch))
            return state.step == 7

        def on_epoch(self, state):
            calls.append(("epoch", state.step, state.epoch))

    history = train_classifier(model(), optim.sgd(0.1), x, y, epochs=5, batch_size=50, callbacks=[Recorder()], progress=False)
    assert calls[:7] == [("begin", 0, 0), ("step", 1, 0), ("begin", 1, 0), ("step", 2, 0), ("begin", 2, 0),
                         ("step", 3, 0), ("epoch", 3, 1)]
    assert calls[-2:] == [("step", 7, 2), ("epoch", 7, 3)]  # stopped mid-epoch: the partial epoch is closed
    assert len(history.series("loss")[1]) == 7
    stop_at_epoch = LambdaCallback(on_epoch=lambda state: state.epoch == 2)
    history = train_classifier(model(), optim.sgd(0.1), x, y, epochs=5, batch_size=50, callbacks=[stop_at_epoch], progress=False)
    assert len(history.series("loss")[1]) == 6 and history.last("epoch") == 2
    with pytest.raises(TypeError, match="callbacks"):
        train_classifier(model(), optim.sgd(0.1), x, y, callbacks=[lambda state: None], progress=False)
    with pytest.raises(TypeError, match="on_step"):
        LambdaCallback(on_step="stop")


def test_divergence_is_logged_shown_to_callbacks_and_ends_training_without_another_step():
    x, y = data()
    seen = []
    for make in (lambda m: optim.sgd(1e30), lambda m: torch.optim.SGD(m.parameters(), lr=1e30)):
        torch.manual_seed(0)
        m = torch.nn.Linear(12, 3)  # no ReLU that could die instead of diverging
        history = train_classifier(m, make(m), x * 1e6, y, epochs=5, batch_size=30, progress=False,
                                   callbacks=[LambdaCallback(on_step=lambda s: seen.append(s.diverged))])
        step = history.meta["diverged_at_step"]
        assert len(history.series("loss")[1]) == step and seen[-1] is True and not any(seen[:-1])
        assert not np.isfinite(history.last("loss")) or step > 1
        seen.clear()


def test_max_steps_cuts_an_epoch_short_and_logs_it():
    x, y = data()
    history = train_classifier(model(), optim.sgd(0.1), x, y, x_val=x, y_val=y, epochs=3, batch_size=50, max_steps=4,
                               progress=False)
    assert len(history.series("loss")[1]) == 4
    np.testing.assert_array_equal(history.series("val_accuracy")[0], [3, 4])
    np.testing.assert_array_equal(history.series("epoch")[1], [1, 2])


def test_sampler_and_collate_feed_data_that_is_not_one_tensor():
    x, y = data(40)
    rows = [r for r in x]  # a list: indexed through collate
    plan = {0: [np.arange(0, 20), np.arange(20, 40)], 1: [np.arange(39, -1, -1)]}
    seen = []

    def collate(data, index):
        seen.append(index.tolist())
        return (torch.stack([data[i] for i in index.tolist()]),)

    history = train_classifier(model(), optim.sgd(0.1), rows, y, epochs=2, sampler=lambda e: plan[e], collate=collate,
                               progress=False)
    assert seen == [list(range(20)), list(range(20, 40)), list(range(39, -1, -1))]
    assert len(history.series("loss")[1]) == 3


def test_train_classifier_rejects_bad_input():
    x, y = data()
    with pytest.raises(ValueError, match="y_train"):
        train_classifier(model(), optim.sgd(0.1), x, y[:10], progress=False)
    with pytest.raises(ValueError, match=r"y_train\[1\]"):
        train_classifier(model(), optim.sgd(0.1), x, (y, y[:3]), progress=False)
    with pytest.raises(ValueError, match="empty"):
        train_classifier(model(), optim.sgd(0.1), x[:0], y[:0], progress=False)
    with pytest.raises(ValueError, match="x_val"):
        train_classifier(model(), optim.sgd(0.1), x, y, x_val=x, progress=False)
    with pytest.raises(ValueError, match="max_steps"):
        train_classifier(model(), optim.sgd(0.1), x, y, max_steps=0, progress=False)
    with pytest.raises(TypeError, match="transform"):
        train_classifier(model(), optim.sgd(0.1), x, y, transform="flip", progress=False)
    with pytest.raises(TypeError, match="sampler"):
        train_classifier(model(), optim.sgd(0.1), x, y, sampler=[[0, 1]], progress=False)


def test_a_stop_before_any_step_of_an_epoch_does_not_log_a_phantom_epoch():
    x, y = data()
    epochs_seen = []
    stop_at_step_3 = LambdaCallback(on_step_begin=lambda state: state.step == 3,
                                    on_epoch=lambda state: epochs_seen.append(state.epoch))
    history = train_classifier(model(), optim.sgd(0.1), x, y, x_val=x, y_val=y, epochs=3, batch_size=50,
                               callbacks=[stop_at_step_3], progress=False)
    assert epochs_seen == [1]  # epoch 2 never ran a step: no second on_epoch, no second validation
    np.testing.assert_array_equal(history.series("val_accuracy")[0], [3])
    history = train_classifier(model(), optim.sgd(0.1), x, y, x_val=x, y_val=y, epochs=3, batch_size=50,
                               callbacks=[LambdaCallback(on_step_begin=lambda state: True)], progress=False)
    assert "val_accuracy" not in history and "loss" not in history


def test_divergence_at_the_first_step_of_an_epoch_keeps_epoch_and_validation_aligned():
    x, y = data()
    torch.manual_seed(0)
    m = torch.nn.Linear(12, 3)
    def break_the_weights(state):  # the first step of epoch 2 (3 steps per epoch) sees an inf weight
        if state.step == 3:
            with torch.no_grad():
                m.weight.fill_(math.inf)

    blow_up = LambdaCallback(on_step_begin=break_the_weights)
    history = train_classifier(m, optim.sgd(0.1), x, y, x_val=x, y_val=y, epochs=3, batch_size=50,
                               callbacks=[blow_up], progress=False)
    assert history.meta["diverged_at_step"] == 4
    assert len(history.series("epoch")[1]) == len(history.series("val_accuracy")[1]) == 2
    assert len(history.series("train_loss")[1]) == 1  # the second epoch had no finite step


def test_fit_with_validation_reports_divergence_instead_of_failing_in_early_stopping():
    from companion.regularization import EarlyStopping, fit_with_validation

    x, y = data()
    x = x[:, None]  # any shape the model takes
    m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    history = fit_with_validation(m, torch.optim.SGD(m.parameters(), lr=1e30), x * 1e6, y, x, y, epochs=3,
                                  early_stopping=EarlyStopping(patience=1), progress=False)
    assert "diverged_at_step" in history.meta and history.meta["epochs_run"] == 1


def test_validation_settings_and_sampler_batches_are_checked_before_training():
    x, y = data()
    calls = []

    def sampler(epoch):
        calls.append(epoch)
        return [np.arange(10)]

    train_classifier(model(), optim.sgd(0.1), x, y, epochs=50, sampler=sampler, max_steps=2, progress=False)
    assert calls == [0, 1]  # only the epochs the two steps need
    with pytest.raises(ValueError, match="metrics"):
        train_classifier(model(), optim.sgd(0.1), x, y, x_val=x, y_val=y, metrics=(), progress=False)
    with pytest.raises(ValueError, match="metrics"):
        train_classifier(model(), optim.sgd(0.1), x, y, x_val=x, y_val=y, metrics=("acc",), progress=False)
    with pytest.raises(ValueError, match="x_val and y_val"):
        train_classifier(model(), optim.sgd(0.1), x, y, x_val=x, y_val=y[:5], progress=False)
    with pytest.raises(ValueError, match="sampler"):
        train_classifier(model(), optim.sgd(0.1), x, y, sampler=lambda e: [np.array([], dtype=int)], progress=False)
    with pytest.raises(ValueError, match="sampler"):
        train_classifier(model(), optim.sgd(0.1), x, y, sampler=lambda e: [np.array([0.5, 1.5])], progress=False)
    with pytest.raises(TypeError, match="sampler"):
        train_classifier(model(), optim.sgd(0.1), x, y, sampler=lambda e: 3, progress=False)
    with pytest.raises(TypeError, match="x_train"):
        train_classifier(model(), optim.sgd(0.1), x.numpy(), y, progress=False)
    with pytest.raises(TypeError, match="y_train"):
        train_classifier(model(), optim.sgd(0.1), x, y.tolist(), progress=False)
    with pytest.raises(TypeError, match="callbacks"):
        train_classifier(model(), optim.sgd(0.1), x, y, callbacks=Callback(), progress=False)
    with pytest.raises(TypeError, match="loss_fn"):
        train_classifier(model(), optim.sgd(0.1), x, y, loss_fn="cross_entropy", progress=False)
    with pytest.raises(TypeError, match="seed"):
        train_classifier(model(), optim.sgd(0.1), x, y, seed=1.5, progress=False)
