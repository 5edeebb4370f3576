"""companion.rl.ablations: the windowed learning curve, the shared ablation table, short runs over seeds."""

from __future__ import annotations

import numpy as np
import pytest

from companion.history import History

pytest.importorskip("torch")
pytest.importorskip("gymnasium")

from companion.rl import DQNConfig  # noqa: E402
from companion.rl.ablations import (  # noqa: E402
    ABLATION_SETTING,
    ABLATIONS,
    AblationCurves,
    learning_curve,
    plot_ablation,
    run_ablation,
)
from companion.benchmarks.dqn import ABLATIONS as BENCH_ABLATIONS  # noqa: E402

TINY = dict(total_steps=1_000, learning_starts=200, train_every=50, gradient_steps=5, hidden=(16,),
            buffer_size=500, eval_every=0, stop_when_solved=False)


def episodes(ends, returns):
    h = History("hand-made")
    for t, r in zip(ends, returns):
        h.log(t, episode_return=r)
    return h


def test_learning_curve_is_the_mean_over_a_window_of_steps():
    h = episodes([100, 300, 600, 1000, 1900], [10.0, 20.0, 30.0, 40.0, 50.0])
    steps, curve = learning_curve(h, 2_000, every=500, window=1_000)
    np.testing.assert_array_equal(steps, [500, 1000, 1500, 2000])
    # windows (-500, 500], (0, 1000], (500, 1500], (1000, 2000]
    np.testing.assert_allclose(curve, [15.0, 25.0, 35.0, 50.0])


def test_learning_curve_is_nan_where_no_episode_ended():
    h = episodes([100, 1900], [10.0, 50.0])
    _, curve = learning_curve(h, 2_000, every=500, window=500)
    assert np.isnan(curve[1]) and np.isnan(curve[2]) and curve[0] == 10.0 and curve[3] == 50.0


@pytest.mark.parametrize("kwargs, name", [({"every": 0}, "every"), ({"window": -1}, "window"),
                                          ({"every": 5_000}, "every"), ({"total_steps": 0}, "total_steps")])
def test_learning_curve_rejects_bad_input(kwargs, name):
    args = {"total_steps": 2_000, **kwargs}
    with pytest.raises(ValueError, match=name):
        learning_curve(episodes([1], [1.0]), args.pop("total_steps"), **args)
    with pytest.raises(TypeError, match="every"):
        learning_curve(episodes([1], [1.0]), 2_000, every=2.5)


def test_one_table_of_ablations_valid_configs():
    assert BENCH_ABLATIONS is ABLATIONS  # the benchmark and the chapter share one definition
    assert {"no target network", "no replay (buffer = one batch)", "Double DQN"} <= set(ABLATIONS)
    for change in ABLATIONS.values():
        DQNConfig(**ABLATION_SETTING, **change)  # every variant is a valid configuration
    assert ABLATIONS["no target network"] == {"target_network": False}
    assert ABLATIONS["no replay (buffer = one batch)"]["buffer_size"] == DQNConfig().batch_size
    assert ABLATIONS["no exploration (ε = 0)"] == {"epsilon_start": 0.0, "epsilon_end": 0.0}
    assert ABLATION_SETTING["eval_every"] == 0 and not ABLATION_SETTING["stop_when_solved"]


def test_run_ablation_shapes_and_repeatability():
    lines = []
    a = run_ablation("tiny", {"target_network": False}, seeds=(0, 1), base=TINY, every=250, report=lines.append)
    b = run_ablation("tiny", {"target_network": False}, seeds=(0, 1), base=TINY, every=250)
    assert isinstance(a, AblationCurves) and a.seeds == (0, 1) and len(lines) == 2 and "seed 1" in lines[1]
    np.testing.assert_array_equal(a.steps, [250, 500, 750, 1000])
    assert a.returns.shape == (2, 4) and np.all(np.isfinite(a.returns)) and a.cpu_seconds > 0
    np.testing.assert_array_equal(a.returns, b.returns)  # fixed seeds: the same curves
    assert a.mean().shape == (4,) and a.final().shape == (2,)
    assert not np.array_equal(a.returns[0], a.returns[1])  # different seeds, different runs
    assert len(a.histories) == 2 and a.histories[0].meta["config"]["target_network"] is False


def test_runs_follow_the_epsilon_schedule_and_no_exploration_is_greedy_throughout():
    from companion.rl import epsilon_schedule

    config = DQNConfig(**TINY)
    full = run_ablation("full", {}, seeds=(0,), base=TINY, every=250)
    greedy = run_ablation("greedy", ABLATIONS["no exploration (ε = 0)"], seeds=(0,), base=TINY, every=250)
    # the schedule the chapter draws: linear over exploration_fraction * total_steps steps
    schedule = epsilon_schedule(config.epsilon_start, config.epsilon_end,
                                int(config.exploration_fraction * config.total_steps))
    steps, logged = full.histories[0].series("epsilon")
    assert len(steps) > 10 and logged[0] > 0.5 and logged[-1] == config.epsilon_end
    np.testing.assert_allclose(logged, [schedule(t) for t in steps], rtol=0, atol=1e-12)
    # a plausible wrong reading: decaying over the whole run instead of the first fraction
    wrong = epsilon_schedule(config.epsilon_start, config.epsilon_end, config.total_steps)
    assert not np.allclose(logged, [wrong(t) for t in steps], rtol=0, atol=1e-3)
    _, greedy_eps = greedy.histories[0].series("epsilon")
    assert len(greedy_eps) > 0 and np.all(greedy_eps == 0.0)


@pytest.mark.parametrize("kwargs, error, name", [
    ({"seeds": ()}, ValueError, "seeds"), ({"seeds": (0, -1)}, ValueError, "seeds"),
    ({"seeds": 3}, ValueError, "seeds"), ({"change": {"seed": 1}}, ValueError, "seed"),
    ({"change": {"buffer_size": 0}}, ValueError, "buffer_size"),
])
def test_run_ablation_rejects_bad_input(kwargs, error, name):
    args = {"change": {}, "seeds": (0,), **kwargs}
    with pytest.raises(error, match=name):
        run_ablation("bad", args["change"], args["seeds"], base=TINY)


def test_plot_ablation_draws_seeds_and_mean_and_checks_input():
    import matplotlib

    matplotlib.use("Agg")
    curves = AblationCurves("x", np.array([1, 2]), np.array([[1.0, 2.0], [3.0, 4.0]]), (0, 1), 0.0)
    ax = plot_ablation(curves)
    assert len(ax.lines) == 4  # two seeds, the mean, the 475 line
    np.testing.assert_allclose(ax.lines[2].get_ydata(), [2.0, 3.0])
    with pytest.raises(TypeError, match="curves_list"):
        plot_ablation([curves, "not curves"])
