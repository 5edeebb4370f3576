# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. Choosing hyperparameters
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part5_search/01_hyperparameter_tuning.ipynb)
#
# Every chapter so far chose a learning rate, a batch size, a weight decay. This one chooses them by
# search. The objective is the validation accuracy of a trained network, a function of a handful of
# numbers that costs a training run to evaluate and has no gradient we can use. The question is how
# to spend a budget of training runs: on a grid, at random, or guided by a model of the results so
# far; and whether to finish every run or stop the hopeless ones early.
#
# We use [Optuna](https://optuna.org) {cite}`akiba2019`, the library practitioners pick for this,
# with its samplers and pruners, and build the heart of Bayesian optimization from scratch to see
# what a sampler does between two trials.
#
# This chapter covers
#
# * the tuning problem: a training split to fit, a validation split to choose, a test set read once;
# * grid search against random search, and Bergstra and Bengio's argument {cite}`bergstra2012`;
# * Bayesian optimization: a Gaussian process and expected improvement {cite}`jones1998`, built
#   from scratch and checked against scikit-learn; what TPE {cite}`bergstra2011` models instead;
# * all of them, with the same budget, over three seeds, against trials and against seconds, with
#   differential evolution and a genetic algorithm from the previous chapter's toolbox alongside;
# * stopping bad trials early: successive halving {cite}`jamieson2016` and Hyperband {cite}`li2018hyperband`;
# * Optuna's plots, and one study shared by two worker processes, as on many machines.

# %% tags=["hide-input"]
# Setup: on Colab (or anywhere companion is missing) install the course package.
try:
    import companion
except ImportError:
    %pip install -q "dl-optimization-companion[torch,tuning,search] @ git+https://github.com/YOUR-ORG/dl-optimization-hands-on@main"
    import companion

# %% tags=["keep-when-grading"]
import os
import tempfile
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import optuna
import torch

from companion import search, tuning
from companion.glue import glue
from companion.plotting import use_course_style
from companion.reproducibility import pick_device, seed_everything
from companion.training import accuracy, mnist_tensors

use_course_style()
seed_everything(0)
optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
# A 784-128-10 MLP on 4,000 images trains faster on one CPU thread than a GPU launches its kernels, and
# on a CPU every run is reproducible to the last digit, which a comparison of samplers needs. So this
# chapter trains on the CPU even where a GPU is present (pick_device() would choose it), as do the
# worker processes of the last section.
torch.set_num_threads(1)
print("a GPU is present but not used here" if pick_device() != "cpu" else "device: cpu")
data = mnist_tensors(4_000, val=2_000, test=10_000, shape="flat", device="cpu")
print(f"train {len(data.x_train):,}, validation {len(data.x_val):,}, test {len(data.x_test):,}")

# %% [markdown]
# ## The problem
#
# The network is the course's MNIST MLP, 784-128-10 with dropout, trained for three epochs with the
# course's AdamW (`companion.optim.adamw`) by the one training loop, `companion.training.train_classifier`,
# on 4,000 training images. Four hyperparameters are searched:
#
# | hyperparameter | range | scale |
# |---|---|---|
# | learning rate | $10^{-4}$ to $10^{-1}$ | log |
# | batch size | 32, 64, 128, 256 | choice |
# | weight decay | $10^{-6}$ to $10^{-1}$ | log |
# | dropout | 0 to 0.5 | linear |
#
# A log scale where a parameter acts multiplicatively: $10^{-4}$ to $10^{-3}$ matters as much as
# $10^{-2}$ to $10^{-1}$, and a uniform draw would spend {fixed}`90%` of its samples above
# $10^{-2}$. The score of a trial is the accuracy on 2,000 *validation* images carved from MNIST's
# training file. The 10,000 test images are read once, at the end, for the configuration the search
# chose.
#
# In Optuna a trial asks for its hyperparameters and returns its score (`companion.tuning.suggest`
# does the asking, `mlp_objective` the training and the reporting):
#
# ```python
# def objective(trial):
#     params = {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True),
#               "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128, 256]),
#               "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True),
#               "dropout": trial.suggest_float("dropout", 0.0, 0.5)}
#     return train_mlp(params, data, epochs=3)[-1]      # validation accuracy after the last epoch
#
# study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
# study.optimize(objective, n_trials=16)
# ```
#
# ## Grid search and random search
#
# A grid of two values per float hyperparameter (the centres of the two halves of each range, on its
# scale) and two batch sizes is 16 trials; 16 random trials cost the same. Both are run with Optuna (`GridSampler`, `RandomSampler`), and every study of the
# chapter stores the seconds since its start after each trial, sampler time included:

# %%
objective = tuning.mlp_objective(data, epochs=3)
GRID = tuning.grid_space(2, batch_sizes=(64, 256))
print("grid:", {name: [v if isinstance(v, int) else float(f"{v:.3g}") for v in values] for name, values in GRID.items()})
N_TRIALS = 16


def run_study(name, sampler, n_trials=N_TRIALS, pruner=None, objective=objective):
    """An Optuna study of ``objective``; ``study.seconds`` holds the seconds since the start after each trial,
    ``study.training_seconds`` the seconds each trial spent training (the rest is the sampler's)."""
    # a fixed name: Hyperband assigns trials to its brackets by a hash of the study's name and the trial number
    study = optuna.create_study(study_name=name, direction="maximize", sampler=sampler,
                                pruner=pruner or optuna.pruners.NopPruner())
    start, seconds = time.perf_counter(), []
    study.optimize(objective, n_trials=n_trials, callbacks=[lambda s, t: seconds.append(time.perf_counter() - start)])
    study.seconds = np.array(seconds)
    study.training_seconds = np.array([t.user_attrs["training_seconds"] for t in study.trials])
    return study


studies = {}  # (method, seed) -> study
studies[("grid", 0)] = run_study("grid-0", tuning.make_sampler("grid", 0, grid=GRID))
studies[("random", 0)] = run_study("random-0", tuning.make_sampler("random", 0))
for name in ("grid", "random"):
    trials = studies[(name, 0)].trials
    distinct = len({t.params["learning_rate"] for t in trials})
    print(f"{name:>6}: best validation accuracy {studies[(name, 0)].best_value:.4f}, "
          f"{distinct} distinct learning rates in {len(trials)} trials")

# %%
fig, ax = plt.subplots(figsize=(7.5, 4))
for name, marker in (("grid", "s"), ("random", "o")):
    trials = studies[(name, 0)].trials
    ax.scatter([t.params["learning_rate"] for t in trials], [t.value for t in trials], marker=marker, s=40,
               alpha=0.7, label=f"{name} search")
ax.set_xscale("log")
ax.set_xlabel("learning rate")
ax.set_ylabel("validation accuracy")
ax.set_title("16 trials: the grid tries two learning rates, random search sixteen")
ax.legend()
plt.show()
grid_lrs = len({t.params["learning_rate"] for t in studies[("grid", 0)].trials})
random_lrs = len({t.params["learning_rate"] for t in studies[("random", 0)].trials})
glue("grid_lrs", f"{grid_lrs}")
glue("random_lrs", f"{random_lrs}")

# %% tags=["remove-input"]
assert grid_lrs == 2 and random_lrs == N_TRIALS

# %% [markdown]
# Along the learning rate the accuracy changes most (the importance analysis below measures it). The grid
# spent its 16 trials on {glue:text}`grid_lrs` learning rates, eight trials each, varying parameters
# that matter little; random search tried {glue:text}`random_lrs`. This is Bergstra and Bengio's
# argument {cite}`bergstra2012`: when few of $d$ parameters matter, a grid of $N$ points explores each
# of them at only $N^{1/d}$ values, random search at $N$.
#
# ## Bayesian optimization, under the hood
#
# A *model-based* search fits a surrogate to the trials so far and chooses the next trial where the
# surrogate promises most. The classic surrogate is a **Gaussian process**: a prior over functions
# with covariance $k(x, x') = \sigma^2 \exp(-\lVert x - x'\rVert^2 / 2\ell^2)$ whose posterior after
# observations $(X, y)$ has mean and variance
#
# $$\mu(x) = m + k(x, X)(K + \sigma_n^2 I)^{-1}(y - m), \qquad
# s^2(x) = k(x, x) - k(x, X)(K + \sigma_n^2 I)^{-1} k(X, x).$$
#
# The next trial maximizes the **expected improvement** {cite}`jones1998` over the best value $f^\ast$
# so far (for a minimization, with $z = (f^\ast - \mu)/s$):
#
# $$\mathrm{EI}(x) = (f^\ast - \mu(x))\,\Phi(z) + s(x)\,\varphi(z),$$
#
# large where the mean is low (exploitation) or the uncertainty high (exploration).
# `companion.tuning.gp_posterior` and `expected_improvement` are these two formulas. On a 1-D
# slice of our problem, the validation *error* as a function of $\log_{10}$ of the learning rate
# (batch 128, weight decay $10^{-4}$, dropout 0.1), three random points and then four steps:

# %%
def validation_error(log_lr):
    params = {"learning_rate": 10.0 ** log_lr, "batch_size": 128, "weight_decay": 1e-4, "dropout": 0.1}
    return 1.0 - tuning.train_mlp(params, data, epochs=3)[-1]


candidates = np.linspace(-4.0, -1.0, 301)
rng = np.random.default_rng(0)
xs = list(rng.uniform(-4.0, -1.0, 3))
ys = [validation_error(x) for x in xs]
fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), sharey=True)
for step, ax in enumerate(axes):
    y = np.array(ys)
    center, scale = y.mean(), y.std()  # the GP works on standardized errors
    mean, std = tuning.gp_posterior(np.array(xs), (y - center) / scale, candidates, length_scale=0.5,
                                    variance=1.0, noise=1e-4)
    ei = tuning.expected_improvement(mean, std, ((y - center) / scale).min())
    ax.plot(candidates, center + scale * mean, label="posterior mean")
    ax.fill_between(candidates, center + scale * (mean - 2 * std), center + scale * (mean + 2 * std), alpha=0.2,
                    label="±2 s")
    ax.plot(xs, ys, "ko", label="trials")
    ax_ei = ax.twinx()
    ax_ei.plot(candidates, ei, color="tab:green", lw=1, label="expected improvement")
    ax_ei.set_yticks([])
    next_x = candidates[np.argmax(ei)]
    ax.axvline(next_x, color="tab:green", ls="--", lw=1)
    ax.set_title(f"step {step + 1}: {len(xs)} trials, next at {10 ** next_x:.1e}")
    ax.set_xlabel("log10 learning rate")
    xs.append(next_x)
    ys.append(validation_error(next_x))
axes[0].set_ylabel("validation error")
axes[0].set_ylim(0, 0.5)
axes[0].legend(loc="upper right", fontsize=7)
plt.show()
best_bo = int(np.argmin(ys))
print(f"best after {len(xs)} trials: learning rate {10 ** xs[best_bo]:.2e}, validation error {ys[best_bo]:.4f}")
glue("bo_best_lr", f"{10 ** xs[best_bo]:.1e}")
glue("bo_trials", f"{len(xs)}")

# %% [markdown]
# The same posterior from scikit-learn's `GaussianProcessRegressor` with the same fixed kernel (the
# test suite checks this on more cases):

# %%
from sklearn.gaussian_process import GaussianProcessRegressor  # noqa: E402
from sklearn.gaussian_process.kernels import RBF, ConstantKernel  # noqa: E402

y = (np.array(ys) - np.mean(ys)) / np.std(ys)
reference = GaussianProcessRegressor(ConstantKernel(1.0, "fixed") * RBF(0.5, "fixed"), alpha=1e-4, optimizer=None)
reference_mean, reference_std = reference.fit(np.array(xs)[:, None], y).predict(candidates[:, None], return_std=True)
mean, std = tuning.gp_posterior(np.array(xs), y, candidates, length_scale=0.5, variance=1.0, noise=1e-4)
gp_gap = max(np.abs(mean - reference_mean).max(), np.abs(std - reference_std).max())
print(f"largest difference from scikit-learn: {gp_gap:.1e}")

# %% tags=["remove-input"]
assert gp_gap < 1e-6

# %% [markdown]
# After {glue:text}`bo_trials` trials the best learning rate found on this slice is
# {glue:text}`bo_best_lr`. Two things the picture shows: the band collapses at the observed points
# and widens between them, and the acquisition is large where the mean is low or the band is wide.
# Optuna's `GPSampler` works on the same principle in four dimensions, with a Matérn-5/2 kernel whose
# length scales (one per parameter), scale and noise it fits to the trials, and the logarithm of the
# expected improvement as the acquisition.
#
# **TPE** {cite}`bergstra2011` (Optuna's default sampler) models the other conditional. It splits the
# trials at a quantile $\gamma$ of their scores into good and bad, fits a density to the
# hyperparameters of each, $l(x)$ for the good and $g(x)$ for the bad, and proposes the candidate with
# the largest ratio $l(x)/g(x)$, which is where the expected improvement is largest under its model.
# We draw it once the comparison below has run.
#
# ## The comparison
#
# Six methods, the same budget of 16 trials, three seeds each: Optuna's grid (over the grid above, in
# a seeded order), random, TPE and GP samplers (the model-based two start from 5 random trials), and
# the previous chapter's differential evolution and genetic algorithm from `companion.search`,
# minimizing the validation error over the unit box (`tuning.params_from_unit` maps it to the
# hyperparameters, on the same scales), with populations of 6.

# %%
def run_box_method(method, seed):
    f = tuning.unit_objective(data, epochs=3)
    start, seconds = time.perf_counter(), []

    def timed(u):
        value = f(u)
        seconds.append(time.perf_counter() - start)
        return value

    options = {"differential_evolution": {"population_size": 6},
               "genetic_algorithm": {"population_size": 6, "tournament_size": 2, "elite": 1}}[method]
    result = search.minimize(timed, [(0.0, 1.0)] * 4, method=method, budget=N_TRIALS, seed=seed, **options)
    return -result.best_so_far(), np.array(seconds)


SEEDS = (0, 1, 2)
curves, clocks = {}, {}
for method in ("grid", "random", "tpe", "gp", "differential_evolution", "genetic_algorithm"):
    for seed in SEEDS:
        if method in ("differential_evolution", "genetic_algorithm"):
            curves[(method, seed)], clocks[(method, seed)] = run_box_method(method, seed)
            continue
        if (method, seed) not in studies:
            sampler = tuning.make_sampler(method, seed, grid=GRID if method == "grid" else None)
            studies[(method, seed)] = run_study(f"{method}-{seed}", sampler)
        study = studies[(method, seed)]
        curves[(method, seed)] = np.maximum.accumulate([t.value for t in study.trials])
        clocks[(method, seed)] = study.seconds
    finals = [curves[(method, seed)][-1] for seed in SEEDS]
    seconds = [clocks[(method, seed)][-1] for seed in SEEDS]
    print(f"{method:>24}: best validation accuracy {np.median(finals):.4f} (median; {min(finals):.4f} to "
          f"{max(finals):.4f}), {np.median(seconds):.1f} s")

# %%
methods = ["grid", "random", "tpe", "gp", "differential_evolution", "genetic_algorithm"]
fig, (ax_trials, ax_seconds) = plt.subplots(1, 2, figsize=(13, 4.3), sharey=True)
for method, color in zip(methods, plt.rcParams["axes.prop_cycle"].by_key()["color"]):
    stacked = np.array([curves[(method, seed)] for seed in SEEDS])
    trials = np.arange(1, N_TRIALS + 1)
    ax_trials.plot(trials, np.median(stacked, axis=0), color=color, label=method.replace("_", " "))
    ax_trials.fill_between(trials, stacked.min(axis=0), stacked.max(axis=0), color=color, alpha=0.15)
    for seed in SEEDS:
        ax_seconds.step(clocks[(method, seed)], curves[(method, seed)], where="post", color=color, alpha=0.6, lw=1)
ax_trials.set_xlabel("trials")
ax_trials.set_ylabel("best validation accuracy so far")
ax_trials.set_title("Median and range over 3 seeds")
ax_trials.legend(fontsize=8)
ax_seconds.set_xlabel("seconds (sampler time included)")
ax_seconds.set_title("Each seed against wall-clock time")
ax_trials.set_ylim(0.85, None)
plt.show()

median_final = {m: float(np.median([curves[(m, s)][-1] for s in SEEDS])) for m in methods}
ranking = sorted(methods, key=median_final.get, reverse=True)
spread = {m: float(np.ptp([curves[(m, s)][-1] for s in SEEDS])) for m in methods}
gap_to_random = median_final[ranking[0]] - median_final["random"]
print("ranking by median:", ", ".join(f"{m} {median_final[m]:.4f}" for m in ranking))


def sampler_seconds(method):
    """Median over seeds of the seconds a study spent outside training: choosing its trials."""
    return float(np.median([studies[(method, s)].seconds[-1] - studies[(method, s)].training_seconds.sum()
                            for s in SEEDS]))


gp_over_random_seconds = sampler_seconds("gp") / sampler_seconds("random")
print(f"sampler seconds per study (median): GP {sampler_seconds('gp'):.2f}, TPE {sampler_seconds('tpe'):.2f}, "
      f"random {sampler_seconds('random'):.2f}")
glue("cmp_gp_acc", f"{median_final['gp']:.2%}")
glue("cmp_gap_random", f"{100 * gap_to_random:.1f}")
glue("cmp_gap_second", f"{100 * (median_final[ranking[0]] - median_final[ranking[1]]):.2f}")
glue("cmp_grid_acc", f"{median_final['grid']:.2%}")
glue("cmp_gp_seconds", f"{sampler_seconds('gp'):.1f}")
glue("cmp_gp_over_random", f"{gp_over_random_seconds:.0f}")

# %% tags=["remove-input"]
assert ranking[0] == "gp" and ranking[1] == "grid" and ranking[-1] == "random"
assert gap_to_random > 0.01  # "more than a point above random search"
assert median_final[ranking[0]] - median_final[ranking[1]] < 0.005  # "less than half a point"
assert median_final[ranking[0]] - median_final[ranking[-1]] <= 0.015  # "the gaps are at most a point and a half"
# "differential evolution and the GA end below both model-based samplers"
assert max(median_final["differential_evolution"], median_final["genetic_algorithm"]) < min(median_final["tpe"],
                                                                                           median_final["gp"])
assert gp_over_random_seconds > 10  # "more than ten times what the random sampler needed"

# %% [markdown]
# **What to notice.** With 16 trials the GP sampler has the best median ({glue:text}`cmp_gp_acc`),
# more than a point above random search ({glue:text}`cmp_gap_random` points), which comes last. The
# runner-up is the grid ({glue:text}`cmp_grid_acc`), less than half a point behind
# ({glue:text}`cmp_gap_second` points): in four dimensions, a grid whose points sit at the centres of
# well-chosen ranges is not a bad plan, and it is the same {fixed}`16 points` whatever the seed. Its
# weakness shows as the dimension grows, not here. Differential evolution and the GA end below both
# model-based samplers: with a population of 6 they get two generations after their random start, and
# they are built
# for thousands of evaluations, not 16. Two cautions before crowning a winner: the gaps are at most a
# point and a half on 2,000 validation images (a few dozen images), the order of the seed-to-seed noise
# of a single training run (Exercise 4 measures it); and choosing trials is not free: the GP sampler
# spent {glue:text}`cmp_gp_seconds` s of each study outside training, fitting its model and
# optimizing the acquisition,
# {glue:text}`cmp_gp_over_random` times what the random sampler needed, which matters when a trial
# takes a fraction of a second and not at all when it takes an hour. At this budget the search space
# (log scales, sensible ranges) matters as much as the sampler.
#
# ## What TPE models
#
# An illustration, not Optuna's own estimator: on the 48 trials of the three TPE studies pooled, split
# at the best quarter ($\gamma = 0.25$;
# [Optuna itself](https://optuna.readthedocs.io/en/stable/reference/samplers/generated/optuna.samplers.TPESampler.html)
# uses the best 10%, at most 25 trials, and its own Parzen estimator), scipy's Gaussian kernel
# density of $\log_{10}$ of the learning rate for the good trials, $l(x)$, and for the rest, $g(x)$:

# %%
from scipy.stats import gaussian_kde  # noqa: E402

tpe_trials = [t for seed in SEEDS for t in studies[("tpe", seed)].trials]
scores = np.array([t.value for t in tpe_trials])
log_lrs = np.log10([t.params["learning_rate"] for t in tpe_trials])
good = scores >= np.quantile(scores, 0.75)
l_density, g_density = gaussian_kde(log_lrs[good]), gaussian_kde(log_lrs[~good])
grid_x = np.linspace(-4, -1, 301)
fig, (ax_density, ax_ratio) = plt.subplots(1, 2, figsize=(12, 3.8))
ax_density.plot(grid_x, l_density(grid_x), label=f"l(x): best quarter ({good.sum()} trials)")
ax_density.plot(grid_x, g_density(grid_x), label=f"g(x): the rest ({(~good).sum()} trials)")
ax_density.plot(log_lrs[good], np.zeros(good.sum()), "|", color="tab:blue", ms=15)
ax_density.plot(log_lrs[~good], np.zeros((~good).sum()), "|", color="tab:orange", ms=15)
ax_density.set_xlabel("log10 learning rate")
ax_density.set_ylabel("density")
ax_density.legend(fontsize=8)
ax_density.set_title("Where the good and the bad trials lie")
ratio = l_density(grid_x) / g_density(grid_x)
ax_ratio.plot(grid_x, ratio, color="tab:green")
ax_ratio.axvline(grid_x[np.argmax(ratio)], color="tab:green", ls="--")
ax_ratio.set_xlabel("log10 learning rate")
ax_ratio.set_ylabel("l(x) / g(x)")
ax_ratio.set_title(f"An illustration of TPE's choice: the ratio peaks near {10 ** grid_x[np.argmax(ratio)]:.1e}")
plt.show()
tpe_peak = 10 ** grid_x[np.argmax(ratio)]
glue("tpe_peak", f"{tpe_peak:.1e}")
good_lr_range = (10 ** log_lrs[good].min(), 10 ** log_lrs[good].max())
# one significant digit, rounded outwards so that "between" stays true of the printed bounds
exponents = np.floor(np.log10(good_lr_range))
low_bound = np.floor(good_lr_range[0] / 10 ** exponents[0]) * 10 ** exponents[0]
high_bound = np.ceil(good_lr_range[1] / 10 ** exponents[1]) * 10 ** exponents[1]
glue("tpe_good_low", f"{low_bound:.0e}")
glue("tpe_good_high", f"{high_bound:.0e}")

# %% tags=["remove-input"]
assert float(f"{low_bound:.0e}") <= good_lr_range[0] <= tpe_peak <= good_lr_range[1] <= float(f"{high_bound:.0e}")

# %% [markdown]
# The good trials' learning rates all lie between {glue:text}`tpe_good_low` and
# {glue:text}`tpe_good_high`, and the ratio peaks inside that range, at {glue:text}`tpe_peak`. TPE
# never models how accuracy *varies* with the learning rate, as the GP does; it only asks where good
# trials are denser than bad ones, one parameter at a time by default, which is cheap and copes with
# categorical and conditional parameters.
#
# ## Stopping bad trials early
#
# Most trials of a search are bad, and most bad trials look bad after an epoch. *Successive halving*
# {cite}`jamieson2016` gives every trial a small budget (one epoch), keeps the best $1/\eta$ at each
# rung and lets only those continue; *Hyperband* {cite}`li2018hyperband` runs several such brackets
# with different starting budgets, hedging against a first epoch that misleads. In Optuna they are
# pruners: the objective reports the validation accuracy after every epoch (`trial.report`) and stops
# when `trial.should_prune()` says so. Here with TPE, 24 trials of up to 6 epochs, $\eta = 3$:

# %%
objective_6 = tuning.mlp_objective(data, epochs=6)
pruners = {"no pruning": optuna.pruners.NopPruner(),
           "successive halving": optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
           "Hyperband": optuna.pruners.HyperbandPruner(min_resource=1, max_resource=6, reduction_factor=3)}
pruning = {}
for label, pruner in pruners.items():
    study = run_study(f"pruning-{label}", tuning.make_sampler("tpe", 0), n_trials=24, pruner=pruner, objective=objective_6)
    epochs = sum(len(t.intermediate_values) for t in study.trials)
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    pruning[label] = (study, epochs, study.seconds[-1])
    print(f"{label:>18}: best {study.best_value:.4f}, {epochs:3d} epochs trained, {pruned:2d} trials pruned, "
          f"{study.seconds[-1]:.1f} s")
full_epochs = pruning["no pruning"][1]
configs_per_epoch = {k: full_epochs / pruning[k][1] for k in ("successive halving", "Hyperband")}
glue("sha_more", f"{configs_per_epoch['successive halving']:.1f}")
glue("hb_more", f"{configs_per_epoch['Hyperband']:.1f}")
glue("sha_epoch_share", f"{pruning['successive halving'][1] / full_epochs:.0%}")
glue("hb_epoch_share", f"{pruning['Hyperband'][1] / full_epochs:.0%}")
glue("sha_best", f"{pruning['successive halving'][0].best_value:.2%}")
glue("hb_best", f"{pruning['Hyperband'][0].best_value:.2%}")
glue("nop_best", f"{pruning['no pruning'][0].best_value:.2%}")

# %% tags=["remove-input"]
assert pruning["successive halving"][1] < full_epochs / 2  # "less than half the epochs"
assert pruning["Hyperband"][1] < full_epochs  # "fewer epochs"
assert all(1.5 < more < 3.0 for more in configs_per_epoch.values())  # "between one and a half and three times"
# "both end within one point of the unpruned search"
assert all(abs(pruning[k][0].best_value - pruning["no pruning"][0].best_value) < 0.01
           for k in ("successive halving", "Hyperband"))

# %% [markdown]
# Successive halving trained {glue:text}`sha_epoch_share` of the epochs of the unpruned search, less
# than half, and Hyperband {glue:text}`hb_epoch_share`; their best trials
# ({glue:text}`sha_best`, {glue:text}`hb_best`) end within one point of the unpruned one
# ({glue:text}`nop_best`). Pruning changes what a budget buys: the same number of epochs would run
# {glue:text}`sha_more` (successive halving) or {glue:text}`hb_more` (Hyperband) times as many
# configurations. Optuna's `SuccessiveHalvingPruner` is the *asynchronous* variant {cite}`li2020asha`:
# a trial reaching a rung is compared with the trials that reached it so far, so no trial waits for a
# full rung to finish, which is what parallel workers need. Its risk is a configuration that starts slowly and finishes first (a small
# learning rate often does), which is what Hyperband's brackets with larger starting budgets hedge.
#
# ## Optuna's plots
#
# The plots practitioners look at after a study, on the unpruned 24-trial study: the best value
# against trials, the importance of each hyperparameter (fANOVA {cite}`hutter2014`: the share of the
# variance of the accuracy that each one explains alone in a random-forest fit of the trials,
# normalized so that the importances sum to 1), and slices.

# %%
from optuna.visualization import matplotlib as optuna_plots  # noqa: E402

study_6 = pruning["no pruning"][0]
optuna_plots.plot_optimization_history(study_6)
plt.show()
importances = optuna.importance.get_param_importances(study_6, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
optuna_plots.plot_param_importances(study_6, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
plt.show()
optuna_plots.plot_slice(study_6, params=["learning_rate", "batch_size", "weight_decay", "dropout"])
plt.show()
optuna_plots.plot_contour(study_6, params=["learning_rate", "weight_decay"])
plt.show()
print({name: round(value, 3) for name, value in importances.items()})
top_parameter = max(importances, key=importances.get)
glue("top_parameter", top_parameter.replace("_", " "))
glue("top_importance", f"{importances[top_parameter]:.0%}")

# %% tags=["remove-input"]
assert top_parameter == "learning_rate"

# %% [markdown]
# The {glue:text}`top_parameter` carries {glue:text}`top_importance` of the total importance, as the grid
# picture suggested. Importances are a property of the trials as much as of the problem: a search
# that already concentrates on good learning rates sees less variation along them.
#
# ## Two workers, one study
#
# Trials are independent, so a study parallelizes across processes and machines: every worker runs
# the same loop against a shared *storage* that holds the study, and asks it for the next trial. On
# one machine, Optuna's journal file storage is enough; `python -m companion.tuning worker` is such a
# worker (it trains on the CPU, one thread each), and `tuning.run_workers(n, trials_each, storage)`
# starts $n$ of them as separate processes (`subprocess.Popen`, sampler seeds $0, 1, \dots$) and waits
# for them. We run a study of 48 trials once with one worker, and once with two workers of 24 trials
# each (the two studies' configurations differ, since each worker samples with its own seed):

# %%
storage_dir = tempfile.mkdtemp()
one_worker_s = tuning.run_workers(1, 48, os.path.join(storage_dir, "one.journal"), "mnist")
two_workers_s = tuning.run_workers(2, 24, os.path.join(storage_dir, "two.journal"), "mnist")
shared = tuning.open_study(os.path.join(storage_dir, "two.journal"), "mnist")
numbers = sorted(t.number for t in shared.trials)
complete = sum(t.state == optuna.trial.TrialState.COMPLETE for t in shared.trials)
print(f"one worker: {one_worker_s:.1f} s; two workers: {two_workers_s:.1f} s "
      f"(speed-up {one_worker_s / two_workers_s:.2f}x); {complete} complete trials, numbers {numbers[0]}..{numbers[-1]}")
glue("workers_speedup", f"{one_worker_s / two_workers_s:.1f}")
glue("cores", f"{os.cpu_count()}")

# %% tags=["remove-input"]
assert numbers == list(range(48)) and complete == 48  # "all 48 trials, none lost or run twice"
assert one_worker_s / two_workers_s < 2.0  # "not twice"
if os.environ.get("CI") and os.cpu_count() >= 2:  # a machine with two free cores: the workers run in parallel
    assert one_worker_s / two_workers_s > 1.1

# %% [markdown]
# The two workers completed all 48 trials, numbered 0 to 47 with none lost or run twice. On this
# machine ({glue:text}`cores` cores) their study took {glue:text}`workers_speedup` times less time than
# one worker's, not half: each process pays its own
# start-up (importing PyTorch, loading MNIST), the trials are short, and two processes on two cores
# share the memory bandwidth and the machine's other work. The speed-up grows with the length of a
# trial; with one trial per GPU and trials of minutes, it approaches the number of workers. On many machines nothing
# changes but the storage: point every worker at a database server that all of them reach,
#
# ```bash
# # on each machine
# python -m companion.tuning worker --storage postgresql://user:password@db-host/optuna --study mnist --trials 100
# ```
#
# (`open_study` hands a URL to `optuna.storages.RDBStorage`; PostgreSQL and MySQL servers suit many
# machines, an SQLite file one machine). The journal file works across machines too, on a shared file
# system such as NFS. Give each worker its own sampler seed, or they may propose the same points.
#
# ## The test set, once
#
# The search chose on validation accuracy. The configuration with the best validation accuracy among
# the trials of the comparison's Optuna studies (all trained for three epochs with the same seed) is
# trained again, identically, and evaluated on the 10,000 test images, once:

# %%
candidates_3 = [t for (method, seed), study in studies.items() for t in study.trials]
best_trial = max(candidates_3, key=lambda t: t.value)
best_params = best_trial.params
accuracies, final_model = tuning.train_mlp(best_params, data, epochs=3, return_model=True)
final_val = accuracies[-1]
test_accuracy = accuracy(final_model, data.x_test, data.y_test)  # the only time the test set is read
val_check = accuracy(final_model, data.x_val, data.y_val)
print("chosen:", {k: (round(v, 6) if isinstance(v, float) else v) for k, v in best_params.items()})
print(f"validation accuracy {final_val:.4f} (search: {best_trial.value:.4f}); test accuracy {test_accuracy:.4f}")
glue("final_val", f"{final_val:.1%}")
glue("final_test", f"{test_accuracy:.1%}")
glue("final_gap", f"{100 * (final_val - test_accuracy):.1f}")
glue("n_candidates", f"{len(candidates_3)}")
edges = [name for name, (kind, *spec) in tuning.SEARCH_SPACE.items() if kind == "float"
         and (np.isclose(best_params[name], spec[0], rtol=0.05, atol=1e-3) or np.isclose(best_params[name], spec[1], rtol=0.05))]
print("at the edge of its range:", edges or "none")

# %% tags=["remove-input"]
assert final_val == best_trial.value == val_check  # the same run: the search's number is reproducible
assert 0 <= final_val - test_accuracy < 0.02  # "the test accuracy is lower, by less than two points"

# %% [markdown]
# The chosen configuration reaches {glue:text}`final_val` on validation and {glue:text}`final_test`
# on test: lower, by {glue:text}`final_gap` points, less than two. Some of that gap is the optimism
# of selection: the best of {glue:text}`n_candidates` validation scores is the maximum of noisy
# numbers, and the test set, untouched by the search, is the honest estimate. Reading the test set
# during the search, to prune or to pick, would spend that honesty. Note also where the chosen values
# lie: a hyperparameter at the very edge of its range (the run prints which, if any) says the range
# was too narrow, and the next search should widen it.
#
# ## Pitfalls
#
# * Tuning on the test set, or early-stopping on it: the number reported is then a selected maximum.
# * Uniform sampling of learning rates and weight decays: almost every sample lands in the top decade.
# * A grid over many parameters: it explores each one at very few values.
# * Comparing samplers on one seed, or by trials when their own computation is not negligible.
# * Pruning with a first epoch that misleads (a small learning rate starts slowly): Hyperband's
#   brackets or a larger `min_resource` hedge it.
# * Parallel workers with the same sampler seed: they propose the same trials.
# * A best value at the edge of a range: the optimum may lie outside it; widen the range and search again.
#
# ## Summary
#
# * Hyperparameter search is optimization of a black box whose every evaluation is a training run:
#   a training split to fit, a validation split to choose, a test set read once.
# * Random search beats a grid when few parameters matter; model-based samplers (GP, TPE) fit a
#   surrogate and choose where it promises most, which pays with larger budgets.
# * Pruners stop hopeless trials after an epoch or two: here the same epochs would have bought one and
#   a half to three times as many configurations.
# * Optuna runs all of it, and a shared storage turns one study into many workers.
#
# ## Exercises
#
# ### Exercise 1 — Implement it: expected improvement
#
# Write `my_expected_improvement(mean, std, best)` for a minimization: the expected improvement of a
# Gaussian prediction with the given mean and standard deviation (NumPy arrays) over the best value so
# far, with $\max(f^\ast - \mu, 0)$ where the standard deviation is 0. Use `scipy.stats.norm`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "tuning-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
from scipy.stats import norm  # noqa: E402


def my_expected_improvement(mean, std, best):
    """EI(x) = (f* - mu) Phi(z) + s phi(z), z = (f* - mu) / s (Jones et al., 1998)."""
    ### BEGIN SOLUTION
    mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    gain = best - mean
    safe = np.where(std > 0, std, 1.0)
    z = gain / safe
    return np.where(std > 0, gain * norm.cdf(z) + std * norm.pdf(z), np.maximum(gain, 0.0))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "tuning-ex1-check", "locked": true, "points": 2, "schema_version": 3, "solution": false}
assert abs(float(my_expected_improvement(np.array([0.0]), np.array([1.0]), 0.0)[0]) - norm.pdf(0.0)) < 1e-12, "at mu = best, sigma = 1, EI is the standard normal density at 0 (about 0.399)"
assert float(my_expected_improvement(np.array([3.0]), np.array([0.0]), 1.0)[0]) == 0.0, "with sigma = 0 and a mean worse than the best, EI is exactly 0"
### BEGIN HIDDEN TESTS
gen = np.random.default_rng(0)
mu, s = gen.normal(size=100), np.abs(gen.normal(size=100))
s[:5] = 0.0
assert np.allclose(my_expected_improvement(mu, s, 0.3), tuning.expected_improvement(mu, s, 0.3)), "your EI differs from companion.tuning.expected_improvement (including where sigma = 0)"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 — Implement it: the rungs of successive halving
#
# Synchronous successive halving (the textbook version; Optuna's pruner is its asynchronous variant)
# starts $n$ trials with `min_resource` epochs each; at every rung it keeps the
# best $\lfloor n_i / \eta \rfloor$ trials and multiplies their budget by $\eta$, while at least one
# trial is left and the budget stays within `max_resource`. Write `halving_rungs(n, min_resource, eta,
# max_resource)` returning the list of `(trials, epochs)` of each rung.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "tuning-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
def halving_rungs(n, min_resource, eta, max_resource):
    ### BEGIN SOLUTION
    if eta < 2:
        raise ValueError(f"Invalid eta: {eta} (must be >= 2)")
    rungs, trials, epochs = [], n, min_resource
    while trials >= 1 and epochs <= max_resource:
        rungs.append((trials, epochs))
        trials, epochs = trials // eta, epochs * eta
    return rungs
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "tuning-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert halving_rungs(27, 1, 3, 27) == [(27, 1), (9, 3), (3, 9), (1, 27)], f"got {halving_rungs(27, 1, 3, 27)}"
### BEGIN HIDDEN TESTS
assert halving_rungs(24, 1, 3, 6) == [(24, 1), (8, 3)], f"the budget stops at max_resource = 6: got {halving_rungs(24, 1, 3, 6)}"
assert halving_rungs(81, 2, 3, 1000) == [(81, 2), (27, 6), (9, 18), (3, 54), (1, 162)], f"got {halving_rungs(81, 2, 3, 1000)}"
assert halving_rungs(1, 1, 2, 1) == [(1, 1)], f"one trial: got {halving_rungs(1, 1, 2, 1)}"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 — Derive it: how many random trials?
#
# Suppose the configurations whose validation accuracy is within the top {fixed}`5%` of the search
# space are "good". (a) What is the probability that $N$ independent random trials contain at least
# one good configuration? (b) How many trials are needed for that probability to reach {fixed}`95%`?
# Write `trials_needed(good_share, confidence)` and give the number for {fixed}`5%` and
# {fixed}`95%`. (c) Why does this count not depend on the number of hyperparameters, while a grid's
# does?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "tuning-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
import math  # noqa: E402


def trials_needed(good_share, confidence):
    ### BEGIN SOLUTION
    # P(at least one good in N) = 1 - (1 - q)^N >= p  <=>  N >= log(1 - p) / log(1 - q)
    return math.ceil(math.log(1.0 - confidence) / math.log(1.0 - good_share))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "tuning-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert trials_needed(0.05, 0.95) == 59, f"got {trials_needed(0.05, 0.95)}: the smallest N with 1 - (1 - 0.05)^N >= 0.95"
### BEGIN HIDDEN TESTS
assert trials_needed(0.01, 0.99) == 459, f"got {trials_needed(0.01, 0.99)}"
assert trials_needed(0.5, 0.5) == 1, f"got {trials_needed(0.5, 0.5)}"
gen = np.random.default_rng(0)
hits = (gen.random((20_000, trials_needed(0.05, 0.95))) < 0.05).any(axis=1).mean()
assert hits >= 0.95 - 0.005, f"simulated: only {hits:.3f} of runs hit the top 5%"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "tuning-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) Each trial is good with probability $q = 0.05$, independently, so none of $N$ is good with
# probability $(1 - q)^N$ and at least one is with $1 - (1 - q)^N$.
#
# (b) $1 - 0.95^N \ge 0.95 \iff N \ge \log 0.05 / \log 0.95 = 58.4$, so 59 trials.
#
# (c) The argument only uses the *volume* of the good region, whatever its shape and however many
# dimensions the space has. A grid needs its points to land in the good region along every dimension
# that matters: with $k$ values per parameter, $N = k^d$ trials, so the same resolution costs
# exponentially more trials as parameters are added, most of them spent on parameters that do not
# matter (Bergstra and Bengio, 2012). The catch: "top 5% of the space" can be a poor region if the
# space is badly chosen, which is why the ranges and scales matter as much as the sampler.
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 — Investigate: how much is the seed worth?
#
# The comparison above reports differences between methods of a point and a half at most. Train the
# chosen configuration `best_params` with three other training seeds (`tuning.train_mlp(...,
# seed=s)`, seeds 1, 2, 3), keep the final validation accuracies in a list `seed_accuracies`, and
# report their spread. Compare it with the gaps between the
# methods' medians. What does that say about how a tuning result should be reported?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "tuning-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
seed_accuracies = [tuning.train_mlp(best_params, data, epochs=3, seed=s)[-1] for s in (1, 2, 3)]
seed_spread = max(seed_accuracies) - min(seed_accuracies)
method_gaps = max(median_final.values()) - min(median_final.values())
print(f"validation accuracy over training seeds: {np.round(seed_accuracies, 4)}, spread {100 * seed_spread:.2f} points")
print(f"spread of the methods' medians: {100 * method_gaps:.2f} points")
### END SOLUTION

# %% tags=["remove-input"]
assert max(seed_accuracies) < best_trial.value  # "its accuracy with other seeds is lower"

# %% [markdown] nbgrader={"grade": true, "grade_id": "tuning-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# The training seed alone moves the validation accuracy of one fixed configuration by a fraction of
# a point (the run prints the spread), the same order as the gaps between the methods' medians. A
# tuning result is therefore a noisy maximum: the best trial partly won the seed lottery, and a
# method that "wins" by less than the seed-to-seed spread has not been shown to be better. Report
# medians and spreads over several search seeds, re-train the chosen configuration with several
# training seeds before comparing it with anything, and read the test set once at the end. The run
# also shows selection at work: the chosen configuration was picked with training seed 0, and its
# accuracy with other seeds is lower, the best trial having been partly lucky.
# :::
# <!-- ### END SOLUTION -->
