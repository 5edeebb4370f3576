"""companion.tuning: the Gaussian process against scikit-learn, expected improvement against its
definition, the Optuna objective (reports, pruning) and a study shared by two worker processes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from companion import tuning

sklearn_gp = pytest.importorskip("sklearn.gaussian_process")
kernels = pytest.importorskip("sklearn.gaussian_process.kernels")
scipy_stats = pytest.importorskip("scipy.stats")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("length_scale, variance, noise", [(0.5, 1.0, 1e-6), (2.0, 3.0, 1e-2), (0.1, 0.5, 0.1)])
def test_gp_posterior_matches_scikit_learn(length_scale, variance, noise):
    gen = np.random.default_rng(0)
    x = gen.uniform(-3, 3, 8)
    y = np.sin(2 * x) + 0.1 * gen.normal(size=8)
    query = np.linspace(-4, 4, 50)
    reference = sklearn_gp.GaussianProcessRegressor(
        kernel=kernels.ConstantKernel(variance, "fixed") * kernels.RBF(length_scale, "fixed"), alpha=noise,
        optimizer=None, normalize_y=False).fit(x[:, None], y)
    expected_mean, expected_std = reference.predict(query[:, None], return_std=True)
    mean, std = tuning.gp_posterior(x, y, query, length_scale=length_scale, variance=variance, noise=noise)
    np.testing.assert_allclose(mean, expected_mean, atol=1e-8)
    np.testing.assert_allclose(std, expected_std, atol=1e-6)


def test_gp_posterior_interpolates_and_reverts_to_the_prior():
    x, y = np.array([0.0, 1.0]), np.array([2.0, -1.0])
    mean, std = tuning.gp_posterior(x, y, np.array([0.0, 1.0, 50.0]), length_scale=0.5, variance=2.0, noise=1e-10,
                                    mean=0.5)
    np.testing.assert_allclose(mean[:2], y, atol=1e-6)
    assert np.all(std[:2] < 1e-4)
    assert mean[2] == pytest.approx(0.5) and std[2] == pytest.approx(np.sqrt(2.0))


def test_expected_improvement_matches_its_definition_by_monte_carlo():
    gen = np.random.default_rng(1)
    for mu, s, best in [(0.0, 1.0, 0.5), (2.0, 0.5, 1.0), (-1.0, 2.0, -1.5)]:
        samples = gen.normal(mu, s, 2_000_000)
        monte_carlo = np.mean(np.maximum(best - samples, 0.0))
        assert tuning.expected_improvement(mu, s, best) == pytest.approx(monte_carlo, rel=5e-3, abs=1e-4)
    assert tuning.expected_improvement(np.array([0.0]), np.array([0.0]), 1.0)[0] == 1.0
    assert tuning.expected_improvement(np.array([2.0]), np.array([0.0]), 1.0)[0] == 0.0


def test_bad_input():
    with pytest.raises(ValueError, match="length_scale"):
        tuning.rbf_kernel([0.0], [1.0], length_scale=0.0)
    with pytest.raises(ValueError, match="finite"):
        tuning.gp_posterior([0.0, np.nan], [1.0, 2.0], [0.5])
    with pytest.raises(ValueError, match="Unknown sampler: 'bayes'"):
        tuning.make_sampler("bayes")
    with pytest.raises(ValueError, match="missing dropout"):
        tuning.train_mlp({"learning_rate": 0.1, "batch_size": 64, "weight_decay": 0.0}, None)
    with pytest.raises(ValueError, match="dropout"):
        tuning.train_mlp({"learning_rate": 0.1, "batch_size": 64, "weight_decay": 0.0, "dropout": 1.0}, None)
    with pytest.raises(ValueError, match="learning_rate"):
        tuning.train_mlp({"learning_rate": -0.1, "batch_size": 64, "weight_decay": 0.0, "dropout": 0.1}, None)


def test_grid_space_takes_the_centres_of_equal_cells():
    grid = tuning.grid_space(3)
    np.testing.assert_allclose(grid["learning_rate"], [10 ** -3.5, 10 ** -2.5, 10 ** -1.5])
    np.testing.assert_allclose(grid["dropout"], [0.5 / 6, 0.25, 2.5 / 6])
    assert grid["batch_size"] == [32, 64, 128, 256]
    assert tuning.grid_space(2, batch_sizes=(64, 256))["batch_size"] == [64, 256]
    with pytest.raises(ValueError, match="batch_sizes"):
        tuning.grid_space(2, batch_sizes=(100,))


@pytest.fixture(scope="module")
def small_mnist():
    pytest.importorskip("torch")
    from companion.training import mnist_tensors

    return mnist_tensors(500, val=300, test=0, shape="flat")


def test_objective_reports_every_epoch_and_prunes(small_mnist):
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(tuning.mlp_objective(small_mnist, epochs=3), n_trials=3)
    for trial in study.trials:
        assert sorted(trial.intermediate_values) == [1, 2, 3]
        assert trial.value == trial.intermediate_values[3]
        assert 0.1 < trial.value <= 1.0
    # a pruner that prunes everything after the first report: trials stop after epoch 1
    class PruneAll(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return True

    pruned = optuna.create_study(direction="maximize", pruner=PruneAll())
    pruned.optimize(tuning.mlp_objective(small_mnist, epochs=3), n_trials=2)
    assert all(t.state == optuna.trial.TrialState.PRUNED and list(t.intermediate_values) == [1] for t in pruned.trials)


def test_same_params_same_accuracy(small_mnist):
    params = {"learning_rate": 3e-3, "batch_size": 64, "weight_decay": 1e-4, "dropout": 0.1}
    assert tuning.train_mlp(params, small_mnist, epochs=2) == tuning.train_mlp(params, small_mnist, epochs=2)


def test_two_worker_processes_share_one_study(tmp_path):
    optuna = pytest.importorskip("optuna")
    pytest.importorskip("torch")
    storage = tmp_path / "study.journal"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # two separate processes (sampler seeds 0 and 1); a worker that fails raises with its output
    tuning.run_workers(2, 4, storage, "shared", worker_args=["--train", 300, "--val", 200, "--epochs", 2],
                       env=env, timeout=300)
    study = tuning.open_study(storage, "shared")
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 8  # 4 + 4: none lost
    assert sorted(t.number for t in trials) == list(range(8))  # none duplicated
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)  # no pruner: every trial finishes
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 8  # each worker sampled its own points


def test_params_from_unit_covers_the_search_space():
    low = tuning.params_from_unit([0.0, 0.0, 0.0, 0.0])
    high = tuning.params_from_unit([1.0, 1.0, 1.0, 1.0])
    assert low == pytest.approx({"learning_rate": 1e-4, "batch_size": 32, "weight_decay": 1e-6, "dropout": 0.0})
    assert high == pytest.approx({"learning_rate": 1e-1, "batch_size": 256, "weight_decay": 1e-1, "dropout": 0.5})
    middle = tuning.params_from_unit([0.5, 0.3, 0.5, 0.5])
    assert middle["learning_rate"] == pytest.approx(10 ** -2.5) and middle["batch_size"] == 64
    with pytest.raises(ValueError, match="u"):
        tuning.params_from_unit([0.5, 0.5, 1.5, 0.5])
    with pytest.raises(ValueError, match="u"):
        tuning.params_from_unit([0.5, 0.5])


def test_unit_objective_is_minus_the_accuracy(small_mnist):
    f = tuning.unit_objective(small_mnist, epochs=1)
    u = np.array([0.6, 0.5, 0.2, 0.1])
    assert f(u) == -tuning.train_mlp(tuning.params_from_unit(u), small_mnist, epochs=1)[-1]
    assert len(f.seconds) == 1 and f.seconds[0] > 0


def test_rbf_kernel_reads_a_1d_array_as_points():
    k = tuning.rbf_kernel(np.array([0.0, 1.0]), np.array([0.0, 1.0]), length_scale=1.0)
    np.testing.assert_allclose(k, [[1.0, np.exp(-0.5)], [np.exp(-0.5), 1.0]])
    assert tuning.rbf_kernel(np.zeros(3), np.zeros(5)).shape == (3, 5)
    with pytest.raises(ValueError, match="points"):
        tuning.rbf_kernel(np.zeros((2, 2)), np.zeros((2, 3)))


def test_open_study_takes_a_database_url(tmp_path):
    pytest.importorskip("optuna")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = tuning.open_study(url, "s")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    assert len(tuning.open_study(url, "s").trials) == 2
    assert (tmp_path / "study.db").exists() and not (tmp_path / "sqlite:").exists()  # a database, not a file path


def test_objective_records_its_training_seconds(small_mnist):
    optuna = pytest.importorskip("optuna")
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(tuning.mlp_objective(small_mnist, epochs=1), n_trials=2)
    assert all(0 < t.user_attrs["training_seconds"] < t.duration.total_seconds() for t in study.trials)


def test_run_workers_reports_a_failing_worker(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with pytest.raises(RuntimeError, match="a worker failed"):  # a journal in a folder that does not exist
        tuning.run_workers(1, 1, tmp_path / "missing-dir" / "x.journal", env=env)
    with pytest.raises(ValueError, match="n_workers"):
        tuning.run_workers(0, 1, tmp_path / "x.journal")
