r"""Choosing hyperparameters: the course's MNIST MLP as an Optuna objective, and the parts of Bayesian
optimization built from scratch to show what Optuna's samplers do.

The tuning problem is a function of four hyperparameters, evaluated by a training run:

.. math:: \lambda^\star = \arg\max_{\lambda} \ \mathrm{acc}_{\text{val}}\bigl(\theta^\star(\lambda)\bigr), \qquad
          \theta^\star(\lambda) = \text{train}(\lambda;\ \text{training split}),

with :math:`\lambda` = (learning rate, batch size, weight decay, dropout). The validation split is carved
from MNIST's training file; the test set is read once, after the search, by the chapter.

* :func:`mlp_objective` makes the Optuna objective: it samples :data:`SEARCH_SPACE` with the ``trial``,
  trains with :func:`companion.training.train_classifier` and the course's AdamW, reports the validation
  accuracy after every epoch (``trial.report``) and stops a trial the pruner gives up on.
* :func:`make_sampler` names Optuna's samplers (grid, random, TPE, GP) with a seed.
* :func:`gp_posterior` and :func:`expected_improvement` are a Gaussian process with an RBF kernel and
  the expected-improvement acquisition, for a 1-D illustration; checked against scikit-learn's
  ``GaussianProcessRegressor`` in ``tests/test_tuning.py``.
* ``python -m companion.tuning worker --storage FILE_OR_URL --study NAME --trials N`` runs one worker of
  a study shared through a storage (a journal file, or a database URL such as
  ``postgresql://user:password@host/db``): start it on several processes or machines and they share the
  study, each running its own trials.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from ._checks import check_choice, check_non_negative, check_positive, check_positive_int

__all__ = [
    "SEARCH_SPACE", "expected_improvement", "gp_posterior", "grid_space", "make_sampler", "mlp_objective",
    "open_study", "params_from_unit", "rbf_kernel", "run_workers", "suggest", "train_mlp", "unit_objective",
]

#: name -> (kind, low, high, log) for the floats; batch size is a choice among powers of two.
SEARCH_SPACE = {
    "learning_rate": ("float", 1e-4, 1e-1, True),
    "batch_size": ("categorical", (32, 64, 128, 256)),
    "weight_decay": ("float", 1e-6, 1e-1, True),
    "dropout": ("float", 0.0, 0.5, False),
}

SAMPLERS = ("grid", "random", "tpe", "gp")


def suggest(trial) -> dict:
    """Sample :data:`SEARCH_SPACE` with an Optuna ``trial`` (log scale for the rates)."""
    params = {}
    for name, spec in SEARCH_SPACE.items():
        if spec[0] == "float":
            params[name] = trial.suggest_float(name, spec[1], spec[2], log=spec[3])
        else:
            params[name] = trial.suggest_categorical(name, list(spec[1]))
    return params


def _check_params(params: dict) -> dict:
    missing = [name for name in SEARCH_SPACE if name not in params]
    if missing:
        raise ValueError(f"Invalid params: missing {', '.join(missing)} (expected {', '.join(SEARCH_SPACE)})")
    check_positive("learning_rate", params["learning_rate"])
    check_positive_int("batch_size", params["batch_size"])
    check_non_negative("weight_decay", params["weight_decay"])
    dropout = check_non_negative("dropout", params["dropout"])
    if dropout >= 1.0:
        raise ValueError(f"Invalid dropout: {dropout} (must be in [0, 1))")
    return params


def train_mlp(params: dict, data, *, epochs: int = 3, hidden: int = 128, seed: int = 0, on_epoch=None,
              return_model: bool = False):
    """Train a 784-``hidden``-10 MLP with dropout and AdamW at ``params``; return the validation accuracies
    after each epoch (and the trained model, with ``return_model=True``).

    ``data`` holds ``x_train, y_train, x_val, y_val`` (flat images, as from
    ``companion.training.mnist_tensors(..., shape="flat")``). ``on_epoch(epoch, val_accuracy)`` is called
    after every epoch (epochs count from 1) and may raise to stop the run (a pruned trial does).
    """
    import torch
    from torch import nn

    from .optim import adamw
    from .training import LambdaCallback, train_classifier

    params = _check_params(params)
    epochs = check_positive_int("epochs", epochs)
    hidden = check_positive_int("hidden", hidden)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Dropout(params["dropout"]), nn.Linear(hidden, 10))
    model = model.to(data.x_train.device)
    accuracies: list[float] = []

    def after_epoch(state):
        accuracies.append(state.history.last("val_accuracy"))
        if on_epoch is not None:
            on_epoch(len(accuracies), accuracies[-1])

    train_classifier(model, adamw(learning_rate=params["learning_rate"], weight_decay=params["weight_decay"]),
                     data.x_train, data.y_train, x_val=data.x_val, y_val=data.y_val, epochs=epochs,
                     batch_size=params["batch_size"], seed=seed, progress=False,
                     callbacks=[LambdaCallback(on_epoch=after_epoch)])
    return (accuracies, model) if return_model else accuracies


def mlp_objective(data, *, epochs: int = 3, hidden: int = 128, seed: int = 0):
    """The Optuna objective ``trial -> validation accuracy`` (maximize) of :func:`train_mlp`.

    It reports the validation accuracy after each epoch and raises ``optuna.TrialPruned`` when the study's
    pruner says so; the trial's training seed is ``seed``, the same for every trial, so two trials differ
    only by their hyperparameters. The seconds spent training are kept in the trial's user attribute
    ``"training_seconds"`` (a study's other seconds are its sampler's and pruner's).
    """
    import time

    import optuna

    epochs = check_positive_int("epochs", epochs)

    def objective(trial) -> float:
        def report(epoch, accuracy):
            trial.report(accuracy, epoch)
            if epoch < epochs and trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch} at validation accuracy {accuracy:.4f}")

        params = suggest(trial)  # a model-based sampler fits its model here, at the first suggestion
        start = time.perf_counter()
        try:
            return train_mlp(params, data, epochs=epochs, hidden=hidden, seed=seed, on_epoch=report)[-1]
        finally:
            trial.set_user_attr("training_seconds", time.perf_counter() - start)

    return objective


def grid_space(points_per_float: int = 2, *, batch_sizes=None) -> dict:
    """A grid over :data:`SEARCH_SPACE` for ``optuna.samplers.GridSampler``.

    Each float range is cut into ``points_per_float`` equal cells (on the log scale where the search is)
    and the grid takes their centres, so the grid covers the same ranges as the samplers without putting
    points on the edges; ``batch_sizes`` (default: all four) are the batch sizes it tries.
    """
    points_per_float = check_positive_int("points_per_float", points_per_float)
    choices = SEARCH_SPACE["batch_size"][1]
    batch_sizes = list(choices) if batch_sizes is None else list(batch_sizes)
    unknown = [b for b in batch_sizes if b not in choices]
    if unknown or not batch_sizes:
        raise ValueError(f"Invalid batch_sizes: {batch_sizes} (choose among {list(choices)})")
    centres = (np.arange(points_per_float) + 0.5) / points_per_float
    grid = {}
    for name, spec in SEARCH_SPACE.items():
        if spec[0] == "float":
            low, high, log = spec[1], spec[2], spec[3]
            values = np.exp(np.log(low) + centres * np.log(high / low)) if log else low + centres * (high - low)
            grid[name] = [float(v) for v in values]
        else:
            grid[name] = batch_sizes
    return grid


def make_sampler(name: str, seed: int = 0, *, grid: dict | None = None, n_startup_trials: int = 5):
    """Optuna's sampler called ``name``: ``"grid"`` (over ``grid``, default :func:`grid_space`), ``"random"``,
    ``"tpe"`` (Bergstra et al., 2011) or ``"gp"`` (a Gaussian process with a Matérn-5/2 kernel whose
    hyperparameters are fitted to the trials, maximizing the logarithm of the expected improvement); the
    model samplers start from ``n_startup_trials`` random trials."""
    import optuna

    check_choice("sampler", name, SAMPLERS)
    n_startup_trials = check_positive_int("n_startup_trials", n_startup_trials)
    if name == "grid":
        return optuna.samplers.GridSampler(grid or grid_space(), seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials)
    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup_trials)


def open_study(storage: str, study_name: str, *, sampler=None, pruner=None):
    """Create or load the study ``study_name`` kept in ``storage``: a database URL (``sqlite:///...``,
    ``postgresql://...``, ``mysql://...``: Optuna's ``RDBStorage``) or the path of a journal file (Optuna's
    ``JournalFileBackend``, which many processes of one machine, or of machines sharing a file system, may
    use at once). No pruning unless a ``pruner`` is given (Optuna's own default would be its median pruner)."""
    import optuna
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    storage = str(storage)
    storage = RDBStorage(storage) if "://" in storage else JournalStorage(JournalFileBackend(storage))
    return optuna.create_study(study_name=study_name, storage=storage, direction="maximize", sampler=sampler,
                               pruner=pruner or optuna.pruners.NopPruner(), load_if_exists=True)


def run_workers(n_workers: int, trials_each: int, storage: str, study_name: str = "mnist", *, worker_args=(),
                env=None, timeout: float | None = None) -> float:
    """Start ``n_workers`` processes ``python -m companion.tuning worker`` (sampler seeds 0, 1, ...), each
    running ``trials_each`` trials of the study ``study_name`` in ``storage`` (``worker_args``: more of the
    worker's options, e.g. ``["--epochs", "2"]``); wait for all of them, at most ``timeout`` seconds each,
    and return the wall-clock seconds. Raises ``RuntimeError`` with their output if one fails."""
    import subprocess
    import time

    n_workers = check_positive_int("n_workers", n_workers)
    trials_each = check_positive_int("trials_each", trials_each)
    command = [sys.executable, "-m", "companion.tuning", "worker", "--storage", str(storage), "--study", study_name,
               "--trials", str(trials_each), *map(str, worker_args)]
    start = time.perf_counter()
    workers = [subprocess.Popen(command + ["--seed", str(seed)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=env) for seed in range(n_workers)]
    outputs = [worker.communicate(timeout=timeout)[0] for worker in workers]
    if any(worker.returncode != 0 for worker in workers):
        raise RuntimeError("a worker failed:\n" + "\n".join(outputs))
    return time.perf_counter() - start


# --- the same problem for companion.search (a box instead of Optuna's trial) -----------------------------

def params_from_unit(u) -> dict:
    """Map a point of the unit box ``[0, 1]^4`` to :data:`SEARCH_SPACE` (log scale for the rates, batch size
    by quarter), so that :mod:`companion.search`'s methods can tune the same MLP."""
    u = np.asarray(u, dtype=float)
    if u.shape != (len(SEARCH_SPACE),) or np.any(u < 0.0) or np.any(u > 1.0):
        raise ValueError(f"Invalid u: expected {len(SEARCH_SPACE)} numbers in [0, 1], got {u.tolist()}")
    params = {}
    for value, (name, spec) in zip(u, SEARCH_SPACE.items()):
        if spec[0] == "float":
            low, high, log = spec[1], spec[2], spec[3]
            params[name] = float(math.exp(math.log(low) + value * (math.log(high) - math.log(low))) if log
                                 else low + value * (high - low))
        else:
            choices = spec[1]
            params[name] = choices[min(int(value * len(choices)), len(choices) - 1)]
    return params


def unit_objective(data, *, epochs: int = 3, hidden: int = 128, seed: int = 0):
    """``f(u) = -validation accuracy`` of :func:`train_mlp` at ``params_from_unit(u)`` (a minimization, as
    :mod:`companion.search` does); ``f.seconds`` lists the seconds of each call."""
    import time

    def objective(u) -> float:
        start = time.perf_counter()
        accuracy = train_mlp(params_from_unit(u), data, epochs=epochs, hidden=hidden, seed=seed)[-1]
        objective.seconds.append(time.perf_counter() - start)
        return -accuracy

    objective.seconds = []
    return objective


# --- Bayesian optimization, from scratch (1-D illustration) ---------------------------------------------

def rbf_kernel(a, b, *, length_scale: float = 1.0, variance: float = 1.0) -> np.ndarray:
    r""":math:`k(a, b) = \sigma^2 \exp\bigl(-\lVert a - b\rVert^2 / (2\ell^2)\bigr)` between the rows of ``a`` and ``b``
    (a 1-D array is a list of 1-D points)."""
    length_scale = check_positive("length_scale", length_scale)
    variance = check_positive("variance", variance)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    a = a.reshape(-1, 1) if a.ndim == 1 else a  # a 1-D array is a list of 1-D points
    b = b.reshape(-1, 1) if b.ndim == 1 else b
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"Invalid points: shapes {a.shape} and {b.shape} (rows of the same dimension)")
    squared = np.sum(a * a, 1)[:, None] + np.sum(b * b, 1)[None, :] - 2.0 * a @ b.T
    return variance * np.exp(-0.5 * np.maximum(squared, 0.0) / length_scale**2)


def gp_posterior(x_train, y_train, x_query, *, length_scale: float = 1.0, variance: float = 1.0,
                 noise: float = 1e-6, mean: float = 0.0):
    r"""Posterior mean and standard deviation of a Gaussian process at ``x_query`` (Rasmussen & Williams, 2006, alg. 2.1).

    .. math:: \mu(x) = m + k(x, X)\,(K + \sigma_n^2 I)^{-1}(y - m), \qquad
              s^2(x) = k(x, x) - k(x, X)\,(K + \sigma_n^2 I)^{-1} k(X, x),

    with a constant prior mean :math:`m` and the RBF kernel; computed with a Cholesky factor.
    """
    noise = check_non_negative("noise", noise)
    x_train = np.asarray(x_train, dtype=float).reshape(len(y_train), -1)
    y = np.asarray(y_train, dtype=float) - mean
    x_query = np.asarray(x_query, dtype=float).reshape(-1, x_train.shape[1])
    if not (np.all(np.isfinite(x_train)) and np.all(np.isfinite(y)) and np.all(np.isfinite(x_query))):
        raise ValueError("Invalid x_train, y_train or x_query: every value must be finite")
    k = rbf_kernel(x_train, x_train, length_scale=length_scale, variance=variance) + noise * np.eye(len(y))
    factor = np.linalg.cholesky(k)
    alpha = np.linalg.solve(factor.T, np.linalg.solve(factor, y))
    k_star = rbf_kernel(x_query, x_train, length_scale=length_scale, variance=variance)
    v = np.linalg.solve(factor, k_star.T)
    posterior_mean = mean + k_star @ alpha
    posterior_var = np.maximum(variance - np.sum(v * v, axis=0), 0.0)
    return posterior_mean, np.sqrt(posterior_var)


def expected_improvement(mean, std, best: float, *, xi: float = 0.0) -> np.ndarray:
    r"""Expected improvement over ``best`` for a *minimization* (Jones et al., 1998):

    .. math:: \mathrm{EI}(x) = (f^\ast - \mu - \xi)\,\Phi(z) + s\,\varphi(z), \quad z = (f^\ast - \mu - \xi)/s,

    and :math:`\max(f^\ast - \mu - \xi, 0)` where :math:`s = 0`.
    """
    from scipy.stats import norm

    xi = check_non_negative("xi", xi)
    mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    if mean.shape != std.shape:
        raise ValueError(f"mean and std have different shapes: {mean.shape} vs {std.shape}")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))) or np.any(std < 0):
        raise ValueError("Invalid std or mean: a posterior's mean must be finite and its std finite and >= 0")
    if not np.isfinite(best):
        raise ValueError(f"Invalid best: {best} (must be finite)")
    gain = best - mean - xi
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(std > 0, gain / std, 0.0)
        ei = gain * norm.cdf(z) + std * norm.pdf(z)
    return np.where(std > 0, ei, np.maximum(gain, 0.0))


# --- a worker of a shared study -------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion.tuning",
                                     description="Run trials of a study shared through an Optuna storage.")
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="run N trials of the study (create it if it does not exist)")
    worker.add_argument("--storage", required=True,
                        help="journal file shared by the workers, or a database URL (postgresql://user:pw@host/db)")
    worker.add_argument("--study", required=True, help="study name")
    worker.add_argument("--trials", type=int, required=True, help="trials this worker runs")
    worker.add_argument("--sampler", default="tpe", choices=SAMPLERS)
    worker.add_argument("--seed", type=int, default=0, help="sampler seed (give each worker its own)")
    worker.add_argument("--train", type=int, default=4_000, help="training examples")
    worker.add_argument("--val", type=int, default=2_000, help="validation examples")
    worker.add_argument("--epochs", type=int, default=3)
    worker.add_argument("--threads", type=int, default=1, help="torch threads of this worker")
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error(f"--trials must be >= 1, got {args.trials}")

    import optuna
    import torch

    from .training import mnist_tensors

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(args.threads)
    data = mnist_tensors(args.train, val=args.val, test=0, shape="flat")
    study = open_study(args.storage, args.study, sampler=make_sampler(args.sampler, args.seed))
    study.optimize(mlp_objective(data, epochs=args.epochs), n_trials=args.trials)
    return 0


if __name__ == "__main__":
    sys.exit(main())
