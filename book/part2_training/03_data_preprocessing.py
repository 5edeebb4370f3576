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
# # 3. Data preprocessing and augmentation
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part2_training/03_data_preprocessing.ipynb)
#
# An optimizer only ever sees the numbers we feed it. If one input feature is measured in thousands
# and another in thousandths, the loss surface is a long, narrow valley and gradient descent crawls
# along it; if some values are missing, a careless fill-in invents data; and if the training set is
# small, the model memorises it. This chapter covers what happens to the data *before* and *while* it
# reaches the optimizer:
#
# - **scaling** (standardization, min-max) and what it does to the conditioning of the problem, measured
#   in gradient-descent steps;
# - the **leakage pitfall**: statistics are fitted on the training split only;
# - **missing values**: mean and median imputation, and a missing-value indicator;
# - **image augmentation** (rotations, shifts, noise; why not horizontal flips for digits) and its
#   measured effect on a network trained on 1,000 MNIST images;
# - the same operations as Keras preprocessing layers.
#
# The reference code lives in `companion.preprocessing` (fit/transform objects, tested against
# scikit-learn) and `companion.augment` (batch augmentations, tested against `scipy.ndimage`).

# %% tags=["hide-input"]
# Setup: on Colab (or anywhere companion is missing) install the course package.
try:
    import companion
except ImportError:
    %pip install -q "dl-optimization-companion[torch,keras,sklearn] @ git+https://github.com/YOUR-ORG/dl-optimization-hands-on@main"
    import companion

# %% tags=["keep-when-grading"]
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from companion import augment
from companion.data import load_mnist
from companion.glue import glue
from companion.plotting import plot_histories, use_course_style
from companion.preprocessing import Imputer, MinMaxScaler, Standardizer
from companion.reproducibility import pick_device, seed_everything
from companion.training import accuracy, as_tensors, train_classifier

use_course_style()
seed_everything(0)
# The networks of this chapter are small: on a CPU one thread is fastest (more threads only add
# synchronisation, and a lot of waiting on a busy machine). On a GPU this setting does not matter.
torch.set_num_threads(1)
device = pick_device()
print(f"device: {device}")

# %% [markdown]
# ## Why scale: the conditioning of a linear model
#
# Take least-squares linear regression on a real data set, scikit-learn's *diabetes* data in its raw
# units (age in years, body-mass index, blood pressure in mm Hg, six blood serum measurements), with
# an intercept column of ones. The loss and its Hessian are
#
# $$
# J(w) = \frac{1}{2n}\lVert Xw - y\rVert^2, \qquad H = \nabla^2 J = \frac{1}{n}X^\top X .
# $$
#
# Gradient descent with the safe step $\eta = 1/\lambda_{\max}(H)$ (the stability limit is
# $2/\lambda_{\max}$) shrinks the error along
# the eigenvector of eigenvalue $\lambda_i$ by a factor $(1 - \lambda_i/\lambda_{\max})$ per step, so the
# slowest direction needs about $\kappa = \lambda_{\max}/\lambda_{\min}$ steps (Part I, chapter 1). A feature
# measured in large units makes $\lambda_{\max}$ huge; a feature with a small spread makes $\lambda_{\min}$
# tiny. **Standardization** rescales every feature $j$ to zero mean and unit variance,
#
# $$
# z_{ij} = \frac{x_{ij} - \mu_j}{\sigma_j}, \qquad \mu_j, \sigma_j \text{ computed on the training split},
# $$
#
# which removes both effects (correlations between features remain).

# %%
X_diab, y_diab = load_diabetes(return_X_y=True, scaled=False)
ones = np.ones((len(X_diab), 1))
designs = {
    "raw features": np.hstack([ones, X_diab]),
    "standardized features": np.hstack([ones, Standardizer().fit_transform(X_diab)]),
}


def gradient_descent_gaps(X, y, steps):
    """Relative optimality gap (J(w_t) - J*) / (J(w_0) - J*) of gradient descent with step 1/lambda_max."""
    n = len(X)
    lam = np.linalg.eigvalsh(X.T @ X / n)
    w_star = np.linalg.lstsq(X, y, rcond=None)[0]
    j_star = np.mean((X @ w_star - y) ** 2) / 2
    w = np.zeros(X.shape[1])
    j0 = np.mean(y**2) / 2
    gaps = np.empty(steps)
    for t in range(steps):
        residual = X @ w - y
        gaps[t] = (np.mean(residual**2) / 2 - j_star) / (j0 - j_star)
        w -= (1 / lam[-1]) * X.T @ residual / n
    return gaps, lam[-1] / lam[0]


steps = 5_000
gaps, kappas = {}, {}
for name, X in designs.items():
    gaps[name], kappas[name] = gradient_descent_gaps(X, y_diab, steps)
target = 1e-3  # 0.1% of the initial gap
steps_to_converge = {name: int(np.argmax(g < target)) if (g < target).any() else None for name, g in gaps.items()}

fig, ax = plt.subplots()
for name, g in gaps.items():
    ax.semilogy(np.arange(steps), np.maximum(g, 1e-16), label=f"{name} ($\\kappa$ = {kappas[name]:.1e})")
ax.axhline(target, color="grey", ls=":", label="target: 0.1% of the initial gap")
ax.set_xlabel("gradient-descent step")
ax.set_ylabel("relative optimality gap (dimensionless)")
ax.set_title("Standardized: 0.1% gap in tens of steps; raw: not in 5,000 steps")
ax.legend()
plt.show()
for name in designs:
    print(f"{name:22s} condition number {kappas[name]:9.2e}; steps to a 0.1% gap: {steps_to_converge[name]}; "
          f"gap after {steps} steps: {gaps[name][-1]:.1e}")

# %% tags=["remove-input"]
assert kappas["raw features"] > 1e7 and kappas["standardized features"] < 1e3, kappas
assert steps_to_converge["standardized features"] is not None and steps_to_converge["standardized features"] < 50
assert gaps["standardized features"][-1] < 1e-10
assert steps_to_converge["raw features"] is None and gaps["raw features"][-1] > 1e-2
glue("raw_gap_after", f"{gaps['raw features'][-1]:.1%}")

# %% [markdown]
# **What to notice.** Same data, same model, same algorithm: the raw features give a condition number
# above $10^7$ and gradient descent is still {glue:text}`raw_gap_after` away from the optimum (more than
# 1%) after 5,000 steps (it makes quick progress along the few directions with large eigenvalues, then
# crawls). After standardization the condition number drops below $10^3$: the gap falls below
# {fixed}`0.1%` in fewer than 50 steps and below $10^{-10}$ within the 5,000.
# A neural network's first layer sees its inputs exactly as this linear model does, which is why
# inputs are scaled before training (and why, inside the network, batch normalization, in the next
# chapter, does the same for hidden layers).
#
# ## Standardization and min-max scaling, fitted on the training split
#
# Two common scalings:
#
# $$
# \text{standardization: } z = \frac{x - \mu_{\text{train}}}{\sigma_{\text{train}}}, \qquad
# \text{min-max: } z = \frac{x - x_{\min,\text{train}}}{x_{\max,\text{train}} - x_{\min,\text{train}}} \in [0, 1] .
# $$
#
# Min-max suits bounded data (pixels: dividing by 255 *is* min-max scaling with the known range) but
# one outlier squeezes all other values together; standardization is the default for unbounded
# features. `companion.preprocessing` implements both as `fit`/`transform` objects, the interface of
# scikit-learn's `StandardScaler` and `MinMaxScaler` (which they are tested against). The essential rule
# is in the interface: **`fit` on the training split, then `transform` every split with those
# statistics.** We use the *breast cancer* data set: 30 features of cell nuclei (radius, area,
# smoothness, ...), benign or malignant.

# %% tags=["keep-when-grading"]
cancer = load_breast_cancer()
X_tr, X_te, y_tr, y_te = train_test_split(
    cancer.data, cancer.target, test_size=0.3, random_state=0, stratify=cancer.target)
scaler = Standardizer().fit(X_tr)                   # statistics of the training split only
Z_tr, Z_te = scaler.transform(X_tr), scaler.transform(X_te)
minmax = MinMaxScaler().fit(X_tr)
print(f"raw feature ranges: {X_tr.min():.3g} to {X_tr.max():.4g}; "
      f"'mean area' spans {np.ptp(X_tr[:, 3]):.0f}, 'mean smoothness' {np.ptp(X_tr[:, 4]):.3f}")
print(f"standardized train: means within {np.abs(Z_tr.mean(0)).max():.1e} of 0, stds {Z_tr.std(0).min():.3f}-{Z_tr.std(0).max():.3f}")
print(f"standardized test:  means up to {np.abs(Z_te.mean(0)).max():.2f} away from 0 (as they should be)")
print(f"min-max test values span [{minmax.transform(X_te).min():.2f}, {minmax.transform(X_te).max():.2f}] "
      "(test values may fall outside the training range)")

# %% tags=["remove-input"]
assert np.abs(Z_tr.mean(0)).max() < 1e-9 and np.allclose(Z_tr.std(0), 1.0)
assert np.abs(Z_te.mean(0)).max() > 0.05

# %% [markdown]
# **The leakage pitfall.** Fitting the scaler on train *and* test data lets test-set information shape
# the training inputs: the evaluation is then no longer of a model that has never seen the test data.
# For a plain scaler the effect on the score is often small (exercise 4 measures it); for anything
# fitted to the data (imputers, feature selection, PCA, target encodings) it can be large, and the only
# safe habit is the same for all: fit on the training split.
#
# A sibling bug does visible damage: **standardizing each test batch with its own statistics**. A
# classifier sees inputs relative to the training population; a batch that happens to hold only sick
# patients, re-centred on its own mean, looks like an average (healthy-looking) batch. Below, a logistic
# regression evaluated on the 64 malignant cases of the test split, scaled both ways.

# %%
classifier = LogisticRegression(max_iter=1000).fit(Z_tr, y_tr)
malignant = X_te[y_te == 0]  # label 0 = malignant in this data set
accuracy_test = classifier.score(Z_te, y_te)
accuracy_train_stats = classifier.score(scaler.transform(malignant), np.zeros(len(malignant)))
accuracy_own_stats = classifier.score(Standardizer().fit_transform(malignant), np.zeros(len(malignant)))

fig, ax = plt.subplots(figsize=(6.5, 3.6))
bars = ["whole test split,\ntraining statistics", "malignant batch,\ntraining statistics", "malignant batch,\nits own statistics"]
values = [accuracy_test, accuracy_train_stats, accuracy_own_stats]
ax.bar(bars, values, color=["C0", "C0", "C3"], label="accuracy")
for i, v in enumerate(values):
    ax.text(i, v + 0.02, f"{v:.0%}", ha="center")
ax.set_ylim(0, 1.1)
ax.set_ylabel("accuracy (fraction)")
ax.set_title("Scaling a batch by its own statistics erases what makes it different")
ax.legend()
plt.show()

# %% tags=["remove-input"]
assert accuracy_test > 0.93 and accuracy_train_stats > 0.9, (accuracy_test, accuracy_train_stats)
assert accuracy_own_stats < 0.6, accuracy_own_stats
glue("malignant_found_train_stats", f"{accuracy_train_stats:.0%}")
glue("malignant_found_own_stats", f"{accuracy_own_stats:.0%}")

# %% [markdown]
# **What to notice.** With the training statistics the model finds {glue:text}`malignant_found_train_stats`
# of the malignant cases, more than 90%; with the batch's own statistics
# {glue:text}`malignant_found_own_stats`, fewer than 60%. The same bug appears in neural networks as
# "batch normalization left in training mode at evaluation time" (next chapter).
#
# ## Missing values: imputation and a missing-value indicator
#
# Real tables have holes. Dropping every row with a hole (*complete-case analysis*) is rarely an option:
# below, {fixed}`20%` of the entries of the cancer data are removed at random, and with 30 features the chance
# that a row is complete is $0.8^{30} \approx 0.1\%$. Instead we **impute**: replace a missing $x_{ij}$ with
# the training mean (or median, robust to skewed features) of feature $j$. A *missing indicator* adds a
# 0/1 column per feature, so that the model can still use the fact that a value was missing; this matters
# when values are *not* missing at random (a test not ordered, a sensor that saturates). The pipeline is
# fitted on the training split only, as always: imputer, then scaler, then model.

# %%
def fit_and_score(x_train, x_test, strategy="mean", add_indicator=False):
    """Imputer -> Standardizer -> logistic regression, all fitted on the training split; test accuracy."""
    imputer = Imputer(strategy, add_indicator=add_indicator).fit(x_train)
    A, B = imputer.transform(x_train), imputer.transform(x_test)
    scale = Standardizer().fit(A)
    model = LogisticRegression(max_iter=2000).fit(scale.transform(A), y_tr)
    return model.score(scale.transform(B), y_te)


worst = [i for i, name in enumerate(cancer.feature_names) if name.startswith("worst")]
results = {key: [] for key in ("complete rows", "zero fill", "mean", "median", "mean + indicator",
                               "MNAR: mean", "MNAR: mean + indicator")}
for seed in range(3):
    rng = np.random.default_rng(seed)
    # Missing completely at random: every entry independently with probability 0.2.
    A, B = X_tr.copy(), X_te.copy()
    A[rng.random(A.shape) < 0.2] = np.nan
    B[rng.random(B.shape) < 0.2] = np.nan
    results["complete rows"].append(int((~np.isnan(A).any(axis=1)).sum()))
    results["zero fill"].append(fit_and_score(A, B, "constant"))  # "NaN -> 0": a tumour area of 0?
    results["mean"].append(fit_and_score(A, B, "mean"))
    results["median"].append(fit_and_score(A, B, "median"))
    results["mean + indicator"].append(fit_and_score(A, B, "mean", add_indicator=True))
    # Missing not at random: the ten "worst ..." measurements are missing (90% of the time) when they
    # are above the training median, as if large values were not recorded.
    A, B = X_tr.copy(), X_te.copy()
    median = np.median(X_tr[:, worst], axis=0)
    for M in (A, B):
        hide = (M[:, worst] > median) & (rng.random((len(M), len(worst))) < 0.9)
        M[:, worst] = np.where(hide, np.nan, M[:, worst])
    results["MNAR: mean"].append(fit_and_score(A, B, "mean"))
    results["MNAR: mean + indicator"].append(fit_and_score(A, B, "mean", add_indicator=True))

print(f"complete training rows (of {len(X_tr)}) with 20% missing entries: {results['complete rows']}")
labels_ = [k for k in results if k != "complete rows"]
means = [np.mean(results[k]) for k in labels_]
fig, ax = plt.subplots(figsize=(7.5, 3.8))
ax.barh(labels_, means, color=["C3", "C0", "C0", "C0", "C1", "C2"], label="mean over 3 random masks")
for i, k in enumerate(labels_):
    ax.plot(results[k], [i] * 3, "k.", label="one mask" if i == 0 else None)
ax.set_xlim(0.8, 1.0)
ax.set_xlabel("test accuracy (fraction)")
ax.set_title("Impute with training statistics; zero-filling raw features costs accuracy")
ax.invert_yaxis()
ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
plt.tight_layout()
plt.show()
for k in labels_:
    print(f"{k:24s} test accuracy {np.mean(results[k]):.3f}  (masks: {', '.join(f'{v:.3f}' for v in results[k])})")

# %% tags=["remove-input"]
assert max(results["complete rows"]) <= 2
assert np.mean(results["mean"]) > np.mean(results["zero fill"]) + 0.03
assert np.mean(results["median"]) > np.mean(results["zero fill"]) + 0.03
zero_fill_cost = min(np.mean(results["mean"]), np.mean(results["median"])) - np.mean(results["zero fill"])
glue("zero_fill_cost", f"{np.floor(1000 * zero_fill_cost) / 10:.1f} points")  # rounded down
gains = np.array(results["MNAR: mean + indicator"]) - np.array(results["MNAR: mean"])
assert np.all(gains > 0) and gains.mean() > 0.005, gains

# %% [markdown]
# **What to notice.** With {fixed}`20%` of the entries missing there is at most a couple of complete training
# rows, so complete-case analysis is not an option. Filling the holes with 0 *before* scaling is worse
# than mean or median imputation by at least {glue:text}`zero_fill_cost` (more than 3 points): 0 is an
# absurd area or radius, far outside the data. When values are missing *because* they are large (the
# "MNAR" rows), the mean alone hides that information and the indicator columns recover some of it,
# better on every one of the three masks here. (With missing completely at random, the indicators carry no signal and only add inputs.)
#
# ## Image augmentation
#
# A small training set can be made effectively larger with **label-preserving transformations**: a digit
# rotated by a few degrees or shifted by a pixel or two is still the same digit
# {cite}`simard2003` (a broad survey: {cite}`shorten2019`). Each epoch the network then sees a
# different version of every image, and memorising the exact pixels stops paying off. `companion.augment`
# implements the classic ones for batches of images, NumPy or PyTorch, with a seeded generator:
# rotation by a random angle in $[-\alpha, \alpha]$, a shift in $[-s, s]^2$ pixels (both one bilinear
# resampling, checked against `scipy.ndimage`), Gaussian noise $x + \sigma\varepsilon$ and flips.
#
# Which transformations preserve the label depends on the data. **Horizontal flips are standard for
# photographs (a mirrored cat is a cat) and wrong for digits**: a mirrored 2 or 7 is not a digit anyone
# writes, and a mirrored 5 looks more like a 2.

# %%
train_images, train_labels = load_mnist("train", limit=1_000)   # floats in [0, 1]
test_images, test_labels = load_mnist("test")
examples = train_images[[np.flatnonzero(train_labels == d)[0] for d in (2, 5, 7)]]
rng = np.random.default_rng(0)
variants = {
    "original": examples,
    "rotated $\\pm$15°": augment.random_rotation(examples, 15, rng),
    "shifted $\\pm$3 px": augment.random_shift(examples, 3, rng),
    "noise $\\sigma$=0.2": augment.add_gaussian_noise(examples, 0.2, rng, clip=(0, 1)),
    "horizontal flip": augment.flip(examples),
}
fig, axes = plt.subplots(3, 5, figsize=(8, 5))
for col, (name, images) in enumerate(variants.items()):
    for row in range(3):
        axes[row, col].imshow(images[row], cmap="gray_r", vmin=0, vmax=1)
        axes[row, col].set_xticks([]), axes[row, col].set_yticks([])
    axes[0, col].set_title(name, fontsize=10, color="C3" if "flip" in name else "black")
fig.suptitle("Rotations, shifts and noise keep the digit; a horizontal flip does not", fontweight="bold")
plt.tight_layout()
plt.show()

# %% [markdown]
# Now the measurement. A small convolutional network trained on **1,000 MNIST images** for 15 epochs,
# with and without random rotations of up to $\pm 12°$ and shifts of up to 2 pixels, evaluated on the full
# 10,000-image test set; two seeds each. Both runs see the same mini-batches in the same order
# (the course's `train_classifier`, with the augmentation as its `transform`); the only difference is
# the augmentation.

# %%
x_train, y_train = as_tensors(train_images[:, None], train_labels, device)   # (N, 1, 28, 28)
x_test, y_test = as_tensors(test_images[:, None], test_labels, device)


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 7 * 7, 10),
    )


runs, test_accuracy = {}, {}
for seed in (0, 1):
    for augmented in (False, True):
        seed_everything(seed)
        model = small_cnn().to(device)
        name = f"{'augmented' if augmented else 'plain'}, seed {seed}"
        runs[name] = train_classifier(
            model, torch.optim.Adam(model.parameters(), lr=1e-3), x_train, y_train,
            transform=augment.Augmenter(max_degrees=12, max_shift=2, seed=seed) if augmented else None,
            epochs=15, batch_size=32, seed=seed, name=name)
        test_accuracy[name] = accuracy(model, x_test, y_test)
        if augmented and seed == 0:
            flipped_accuracy = accuracy(model, x_test.flip(-1), y_test)
        print(f"{name:20s} test accuracy {test_accuracy[name]:.4f}")

gain = {seed: test_accuracy[f"augmented, seed {seed}"] - test_accuracy[f"plain, seed {seed}"] for seed in (0, 1)}

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
plot_histories({k: runs[k] for k in runs if "seed 0" in k}, "train_loss", ax=axes[0], logy=True,
               ylabel="training loss, epoch mean (nats)",
               title="Augmented batches stay harder to fit")
names = list(test_accuracy)
axes[1].bar(range(4), [test_accuracy[k] for k in names], color=["C0", "C1", "C0", "C1"], label="test accuracy")
axes[1].set_xticks(range(4), [k.replace(", ", "\n") for k in names])
axes[1].set_ylim(0.85, 1.0)
axes[1].set_ylabel("test accuracy on 10,000 images (fraction)")
axes[1].set_title(f"Augmentation adds {100 * min(gain.values()):.1f}+ points of test accuracy")
axes[1].legend()
plt.tight_layout()
plt.show()
print(f"gain per seed (points): {', '.join(f'{100 * g:.2f}' for g in gain.values())}; "
      f"the augmented model on horizontally flipped test digits: {flipped_accuracy:.3f}")

# %% tags=["remove-input"]
assert all(g > 0.01 for g in gain.values()), gain
assert runs["augmented, seed 0"].last("train_loss") > runs["plain, seed 0"].last("train_loss")
assert flipped_accuracy < 0.6, flipped_accuracy
glue("flipped_accuracy", f"{flipped_accuracy:.0%}")

# %% [markdown]
# **What to notice.** On both seeds, augmentation adds more than one point of test accuracy (the plot's
# title gives the smaller of the two gains; the printout both), for no extra data. Its training
# loss stays higher: the augmented batches are never exactly the same twice, so the network cannot
# memorise them, which is the point. The same model, shown horizontally *flipped* test digits, gets
# {glue:text}`flipped_accuracy` right, fewer than 60%: flipped digits are not digits it needs to
# recognise, so training on them would spend capacity on impossible inputs (and mirror-image confusions
# such as 2/5). Augmentation is a form of regularization; the next chapter compares it with the others.
#
# ## The Keras way
#
# Keras packages the same operations as layers that live inside the model: `Normalization` learns
# $\mu$ and $\sigma$ with `adapt` (on the training split!), and `RandomRotation` / `RandomTranslation`
# transform each batch when called with `training=True` and pass it through unchanged at inference.
# Note the units: `RandomRotation(factor)` takes a fraction of a full turn ($12° = 12/360$) and
# `RandomTranslation` a fraction of the image size. In PyTorch the usual equivalents are
# `torchvision.transforms.v2` (`RandomRotation(12)`, `RandomAffine(0, translate=(2/28, 2/28))`), applied in
# the `Dataset`, or batch functions such as `companion.augment`.

# %%
from companion.quiet import quiet_tensorflow  # noqa: E402

with quiet_tensorflow():  # TensorFlow's C++ start-up messages stay off the page
    import keras  # noqa: E402  (imported here: TensorFlow takes a few seconds to load)

keras.utils.set_random_seed(0)
normalization = keras.layers.Normalization(axis=-1)
normalization.adapt(X_tr.astype("float32"))   # the training split only
keras_z = keras.ops.convert_to_numpy(normalization(X_te.astype("float32")))
print(f"Keras Normalization vs companion Standardizer: max difference {np.abs(keras_z - Z_te).max():.1e}")

keras_augment = keras.Sequential([
    keras.layers.RandomRotation(12 / 360, fill_mode="constant"),
    keras.layers.RandomTranslation(2 / 28, 2 / 28, fill_mode="constant"),
])
batch = train_images[:8, :, :, None]   # Keras images are channels-last: (N, H, W, C)
moved = keras.ops.convert_to_numpy(keras_augment(batch, training=True))
unchanged = keras.ops.convert_to_numpy(keras_augment(batch, training=False))
print(f"training=True changes the batch (mean |change| {np.abs(moved - batch).mean():.3f}); "
      f"training=False returns it unchanged: {np.array_equal(unchanged, batch)}")

# %% tags=["remove-input"]
assert np.abs(keras_z - Z_te).max() < 1e-3
assert np.abs(moved - batch).mean() > 0.01 and np.allclose(unchanged, batch)

# %% [markdown]
# **What to notice.** Keras' `Normalization` computes the same statistics as our `Standardizer` (up to
# float32 rounding), and its augmentation layers switch themselves off at inference. Putting the
# preprocessing *inside* the model has one big advantage: the exported model carries its training
# statistics with it, so production inputs cannot be scaled differently by mistake.
#
# ## Pitfalls
#
# - **Fitting any preprocessing on all the data** (scaler, imputer, feature selection) before the split:
#   test information leaks into training. Fit on the training split; transform the others.
# - **Scaling test or production batches with their own statistics.** The model's inputs then depend on
#   which other examples share the batch (the malignant batch above).
# - **Filling missing values with 0 in raw units**, or silently dropping incomplete rows. Impute with
#   training statistics, and add indicators when missingness may carry information.
# - **Augmentations that change the label:** horizontal flips of digits or text, large rotations of 6 and 9,
#   crops that cut the object out. Check a grid of augmented examples by eye.
# - **Augmenting the test set** by accident (a shared transform pipeline): evaluation must use the
#   un-augmented data.
# - **Forgetting to scale at all**: unscaled inputs make the optimization ill-conditioned; a learning rate
#   small enough for the largest feature is far too small for the others.
#
# ## Summary
#
# | step | what it does | fitted on | `companion` |
# |---|---|---|---|
# | standardization | $z = (x-\mu)/\sigma$: conditioning from $>10^7$ to $<10^3$ on *diabetes* | training split | `preprocessing.Standardizer` |
# | min-max scaling | maps the training range to $[0, 1]$ | training split | `preprocessing.MinMaxScaler` |
# | imputation (+ indicator) | replaces NaN by the training mean/median; 0/1 columns for "was missing" | training split | `preprocessing.Imputer` |
# | augmentation | label-preserving random transforms of each batch {cite}`simard2003` | nothing (random) | `augment.Augmenter` |
#
# Scaling makes the optimization well-conditioned; fitting every statistic on the training split keeps the
# evaluation honest; augmentation makes a small training set behave like a larger one, as long as each
# transformation really preserves the label.
#
# ## Exercises
#
# ### Exercise 1 (Implement it): standardize a train/test pair
#
# Write `standardize_pair(train, test)` that returns `(train_z, test_z)`: both arrays standardized with the
# mean and (population) standard deviation of `train`'s columns. A constant column must not cause a
# division by zero: give it scale 1, as scikit-learn does. Do not modify the inputs. The check compares
# your function with `sklearn.preprocessing.StandardScaler`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "preprocessing-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
def standardize_pair(train, test):
    ### BEGIN SOLUTION
    train = np.asarray(train, dtype=float)
    test = np.asarray(test, dtype=float)
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std < 1e-12, 1.0, std)
    return (train - mean) / std, (test - mean) / std
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "preprocessing-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from sklearn.preprocessing import StandardScaler  # noqa: E402

train_z, test_z = standardize_pair(X_tr, X_te)
reference = StandardScaler().fit(X_tr)
assert np.allclose(train_z, reference.transform(X_tr)), "train split differs from StandardScaler"
assert np.allclose(test_z, reference.transform(X_te)), "the test split must use the *training* statistics"
### BEGIN HIDDEN TESTS
rng_check = np.random.default_rng(1)
a = np.hstack([rng_check.normal(5, 3, size=(40, 3)), np.full((40, 1), 2.0)])
b = np.hstack([rng_check.normal(5, 3, size=(10, 3)), np.full((10, 1), 4.0)])
a_copy, b_copy = a.copy(), b.copy()
za, zb = standardize_pair(a, b)
ref = StandardScaler().fit(a)
assert np.allclose(za, ref.transform(a)) and np.allclose(zb, ref.transform(b)), "constant column: use scale 1"
assert np.all(np.isfinite(zb)), "no division by zero"
assert np.array_equal(a, a_copy) and np.array_equal(b, b_copy), "the inputs must not be modified"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (Implement it): batch normalization in training mode
#
# Batch normalization {cite}`ioffe2015` standardizes every feature of a mini-batch with the batch's *own*
# statistics (the operation that was a bug on test batches above; inside a network, during training, it
# is the point) and keeps running averages of those statistics for evaluation. Write
# `batch_norm_train(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5)` for a NumPy
# batch `x` of shape $(N, C)$ and per-feature arrays of length $C$, returning
# `(y, new_running_mean, new_running_var)` with
#
# $$
# \mu_B = \frac1N\sum_{i=1}^N x_i, \qquad \sigma_B^2 = \frac1N\sum_{i=1}^N (x_i - \mu_B)^2, \qquad
# y_i = \gamma\,\frac{x_i - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}} + \beta,
# $$
#
# $$
# \hat\mu \leftarrow (1 - m)\,\hat\mu + m\,\mu_B, \qquad
# \hat\sigma^2 \leftarrow (1 - m)\,\hat\sigma^2 + m\,\frac{N}{N-1}\,\sigma_B^2 ,
# $$
#
# all per feature, with $m$ = `momentum`. The output uses the biased variance, the running variance the
# unbiased one. Do not modify the inputs. It must reproduce `torch.nn.BatchNorm1d(C, momentum=m, eps=eps)`
# in training mode: its output, and its `running_mean` and `running_var` after the call. An `x` that is
# not 2-D or has fewer than 2 rows (no variance to estimate) must raise a `ValueError` naming `x`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "preprocessing-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
def batch_norm_train(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    """Training-mode batch normalization (Ioffe & Szegedy, 2015): (y, new running mean, new running var)."""
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"Invalid x: shape {x.shape} (need a 2-D batch (N, C) with N >= 2)")
    n = x.shape[0]
    mean = x.mean(axis=0)
    var = x.var(axis=0)  # biased, for the output
    y = gamma * (x - mean) / np.sqrt(var + eps) + beta
    new_mean = (1 - momentum) * np.asarray(running_mean) + momentum * mean
    new_var = (1 - momentum) * np.asarray(running_var) + momentum * var * n / (n - 1)  # unbiased
    return y, new_mean, new_var
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "preprocessing-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error


def ex2_torch_batch_norm(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    """nn.BatchNorm1d in training mode, in float64: (y, running_mean, running_var) after one call."""
    layer = nn.BatchNorm1d(x.shape[1], momentum=momentum, eps=eps).double().train()
    with torch.no_grad():
        for tensor, value in ((layer.weight, gamma), (layer.bias, beta), (layer.running_mean, running_mean),
                              (layer.running_var, running_var)):
            tensor.copy_(torch.as_tensor(value, dtype=torch.float64))
        y = layer(torch.as_tensor(x, dtype=torch.float64))
    return y.numpy(), layer.running_mean.numpy(), layer.running_var.numpy()


def ex2_largest_gap(mine, ref):
    return float(np.max(np.abs(np.asarray(mine, dtype=float) - ref)))


ex2_rng = np.random.default_rng(0)
ex2_x = ex2_rng.normal(3.0, 2.0, size=(8, 3))
ex2_args = (ex2_x, np.array([1.0, 2.0, 0.5]), np.array([0.0, -1.0, 3.0]), np.zeros(3), np.ones(3))
ex2_mine, ex2_ref = batch_norm_train(*ex2_args), ex2_torch_batch_norm(*ex2_args)
for ex2_what, ex2_m, ex2_r in zip(("the output y", "running_mean", "running_var"), ex2_mine, ex2_ref):
    assert np.shape(ex2_m) == ex2_r.shape, f"{ex2_what}: expected shape {ex2_r.shape}, got {np.shape(ex2_m)}"
    assert ex2_largest_gap(ex2_m, ex2_r) < 1e-12, f"{ex2_what} differs from nn.BatchNorm1d's by {ex2_largest_gap(ex2_m, ex2_r):.2e} (biased variance in y, unbiased N/(N-1) in running_var)"
### BEGIN HIDDEN TESTS
# several steps in a row, other momentum and eps, a batch of two
ex2_mean, ex2_var = np.zeros(5), np.ones(5)
ex2_layer = nn.BatchNorm1d(5, momentum=0.3, eps=1e-3).double().train()
for ex2_step, ex2_n in enumerate((16, 2, 7, 30)):
    ex2_x = ex2_rng.normal(-1.0, 4.0, size=(ex2_n, 5))
    ex2_g, ex2_b = ex2_rng.normal(size=5), ex2_rng.normal(size=5)
    with torch.no_grad():
        ex2_layer.weight.copy_(torch.as_tensor(ex2_g)), ex2_layer.bias.copy_(torch.as_tensor(ex2_b))
        ex2_y_ref = ex2_layer(torch.as_tensor(ex2_x)).numpy()
    ex2_y, ex2_mean, ex2_var = batch_norm_train(ex2_x, ex2_g, ex2_b, ex2_mean, ex2_var, momentum=0.3, eps=1e-3)
    assert ex2_largest_gap(ex2_y, ex2_y_ref) < 1e-12, f"step {ex2_step} (N = {ex2_n}, momentum 0.3, eps 1e-3): y differs from nn.BatchNorm1d's by {ex2_largest_gap(ex2_y, ex2_y_ref):.2e}"
    assert ex2_largest_gap(ex2_mean, ex2_layer.running_mean.numpy()) < 1e-12, f"step {ex2_step}: running_mean differs from nn.BatchNorm1d's by {ex2_largest_gap(ex2_mean, ex2_layer.running_mean.numpy()):.2e}"
    assert ex2_largest_gap(ex2_var, ex2_layer.running_var.numpy()) < 1e-12, f"step {ex2_step}: running_var differs from nn.BatchNorm1d's by {ex2_largest_gap(ex2_var, ex2_layer.running_var.numpy()):.2e}"
# a constant feature: the output is beta, no division by zero
ex2_x = np.hstack([ex2_rng.normal(size=(6, 1)), np.full((6, 1), 7.0)])
ex2_y = batch_norm_train(ex2_x, np.ones(2), np.array([0.0, 0.25]), np.zeros(2), np.ones(2))[0]
assert np.allclose(np.asarray(ex2_y)[:, 1], 0.25, atol=1e-12), "a constant feature must come out as beta (eps keeps the division finite)"
# the inputs are not modified
ex2_x = ex2_rng.normal(size=(4, 3))
ex2_inputs = (ex2_x, np.ones(3), np.zeros(3), np.full(3, 0.5), np.full(3, 2.0))
ex2_copies = [a.copy() for a in ex2_inputs]
batch_norm_train(*ex2_inputs)
assert all(np.array_equal(a, c) for a, c in zip(ex2_inputs, ex2_copies)), "batch_norm_train must not modify its inputs (return new running statistics)"
for ex2_bad in (np.ones((1, 3)), np.ones(5)):
    expect_error(lambda: batch_norm_train(ex2_bad, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3)), ValueError, "x",
                 when=f"batch_norm_train(x, ...) with x of shape {ex2_bad.shape} (need (N, C) with N >= 2)")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 (Derive it): how standardization changes the condition number
#
# Take least squares without intercept, $J(w) = \frac{1}{2n}\lVert Xw - y\rVert^2$, on $d$ independent
# features of mean 0 and standard deviations $s_1, \dots, s_d$, with $n$ so large that
# $\frac1n X^\top X$ equals its expectation.
#
# (a) What are the Hessian, its eigenvalues and its condition number $\kappa$? What are they after
# standardization?
#
# (b) Gradient descent with $\eta = 1/\lambda_{\max}$ multiplies the error along the eigenvector of
# $\lambda_i$ by $1 - \lambda_i/\lambda_{\max}$ per step. After how many steps has the error along the
# slowest direction shrunk to at most `factor` ($0 <$ `factor` $< 1$) of its initial value? Write
# `steps_to_shrink(scales, factor)` returning that smallest number of steps $t \ge 1$ (when all scales are
# equal, one step suffices), and give it for scales $(1, 10)$ and `factor` $= 10^{-3}$.
#
# (c) Centering matters as much as scaling. With an intercept column, a single feature of mean $m$ and
# standard deviation $s$ gives $H = \begin{pmatrix} 1 & m \\ m & m^2 + s^2 \end{pmatrix}$. What is
# $\kappa$ for the ages of the diabetes data ($m = 48.5$ years, $s = 13.1$ years), and after
# standardizing them?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "preprocessing-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
import math  # noqa: E402


def steps_to_shrink(scales, factor):
    ### BEGIN SOLUTION
    variances = np.asarray(scales, dtype=float) ** 2  # the eigenvalues of H
    rate = 1.0 - variances.min() / variances.max()
    if rate == 0.0:
        return 1
    return math.ceil(math.log(factor) / math.log(rate))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "preprocessing-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert steps_to_shrink([1.0, 10.0], 1e-3) == 688, f"scales (1, 10): kappa = 100, the error shrinks by 0.99 per step, so 688 steps; got {steps_to_shrink([1.0, 10.0], 1e-3)}"
### BEGIN HIDDEN TESTS
def ex3_simulated_steps(scales, factor):
    """Run gradient descent on J(w) = sum(s_i^2 w_i^2) / 2 from w = 1 until the slowest coordinate is <= factor."""
    hessian = np.diag(np.asarray(scales, dtype=float) ** 2)
    w, steps_taken = np.ones(len(scales)), 0
    while True:
        w = w - (hessian @ w) / hessian.max()
        steps_taken += 1
        if np.abs(w).max() <= factor:
            return steps_taken


for ex3_scales, ex3_factor in (([0.5, 2.0, 3.0], 1e-2), ([13.0, 4.0, 0.5], 0.1), ([1.0, 1.5], 1e-6), ([3.0, 3.0, 3.0], 1e-6), ([2.0, 1.0, 2.0], 0.3)):
    ex3_ref = ex3_simulated_steps(ex3_scales, ex3_factor)
    assert steps_to_shrink(ex3_scales, ex3_factor) == ex3_ref, f"scales {ex3_scales}, factor {ex3_factor}: gradient descent needs {ex3_ref} steps, got {steps_to_shrink(ex3_scales, ex3_factor)}"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "preprocessing-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) $H = \frac1n X^\top X$ has entries $\frac1n\sum_k x_{ki}x_{kj} = \mathbb E[x_i x_j]$, which is
# $s_i^2$ on the diagonal and $0$ off it (independent, centred features). $H = \operatorname{diag}(s_1^2,
# \dots, s_d^2)$, its eigenvalues are the $s_i^2$ and $\kappa = \max_i s_i^2 / \min_i s_i^2$: the square of
# the ratio of the largest to the smallest scale. Standardized, every $s_i = 1$: $H = I$ and $\kappa = 1$.
#
# (b) The slowest direction has $\lambda_{\min}$, so its error is multiplied by
# $\rho = 1 - \lambda_{\min}/\lambda_{\max} = 1 - 1/\kappa$ per step, and $\rho^t \le$ `factor` for
# $t \ge \log(\text{factor})/\log\rho$: the smallest such integer, $\lceil \log(\text{factor}) / \log(1 - 1/\kappa)\rceil$
# (for large $\kappa$ about $\kappa \ln(1/\text{factor})$ steps). When all scales are equal, $\rho = 0$ and one
# step lands on the minimum. For scales $(1, 10)$, $\kappa = 100$, $\rho = 0.99$ and
# $t = \lceil 6.908/0.01005 \rceil = 688$ steps; after standardization, 1.
#
# (c) The eigenvalues of $H$ have sum $T = 1 + m^2 + s^2$ and product $\det H = s^2$, so
# $\lambda_{\pm} = \big(T \pm \sqrt{T^2 - 4s^2}\big)/2$ and $\kappa = \lambda_+/\lambda_- \approx T^2/s^2$
# when $s^2 \ll T^2$. For the ages, $T = 1 + 48.5^2 + 13.1^2 = 2524.86$ and $\kappa \approx 2524.86^2/13.1^2
# \approx 3.7 \times 10^4$, from one uncentred feature (the direction "raise the weight, lower the
# intercept" is almost flat). Standardized, $m = 0$, $s = 1$: $H = I$, $\kappa = 1$. Scaling alone
# ($s = 1$, $m = 48.5/13.1 = 3.70$, $T = 15.7$) would still leave $\kappa \approx 245$.
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 (Investigate): how much does leakage change the score?
#
# Compare two pipelines on the breast cancer data over 20 random train/test splits: (a) the honest one,
# `Standardizer` fitted on the training split; (b) the leaky one, fitted on all 569 rows before splitting.
# Then repeat with a leakier step: keep only the 5 features most correlated with the label, selected on
# (a) the training split or (b) all rows, on a version of the data with 200 extra pure-noise features and
# only 60 training rows. Report the mean test accuracy of each pipeline. When does leakage matter, and why
# should the habit be the same in both cases?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "preprocessing-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
def top_correlated(X, y, k=5):
    Xc, yc = X - X.mean(0), y - y.mean()
    corr = np.abs(Xc.T @ yc) / (np.linalg.norm(Xc, axis=0) * np.linalg.norm(yc) + 1e-12)
    return np.argsort(corr)[-k:]


scores = {"scaler, honest": [], "scaler, leaky": [], "selection, honest": [], "selection, leaky": []}
noise_rng = np.random.default_rng(0)
noisy_data = np.hstack([cancer.data, noise_rng.normal(size=(len(cancer.data), 200))])
for split in range(20):
    A, B, ya, yb = train_test_split(cancer.data, cancer.target, test_size=0.3, random_state=split)
    for name, fitted_on in (("honest", A), ("leaky", cancer.data)):
        s = Standardizer().fit(fitted_on)
        scores[f"scaler, {name}"].append(LogisticRegression(max_iter=1000).fit(s.transform(A), ya).score(s.transform(B), yb))
    # Pure-noise features: a noise column may correlate with the label by chance, on the test rows too.
    A, B, ya, yb = train_test_split(noisy_data[:, 30:], cancer.target, train_size=60, random_state=split)
    for name, (Xs, ys) in (("honest", (A, ya)), ("leaky", (noisy_data[:, 30:], cancer.target))):
        keep = top_correlated(Xs, ys)
        s = Standardizer().fit(A[:, keep])
        model = LogisticRegression(max_iter=1000).fit(s.transform(A[:, keep]), ya)
        scores[f"selection, {name}"].append(model.score(s.transform(B[:, keep]), yb))
for name, values in scores.items():
    print(f"{name:18s} mean test accuracy {np.mean(values):.3f} (std {np.std(values):.3f})")
### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "preprocessing-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# For the scaler, the honest and the leaky pipelines score the same to three decimals (about 97.5%):
# 30% more rows barely move a mean and a standard deviation. With feature selection on *pure noise* the
# honest pipeline scores about 54%, no better than always answering "benign" (63% of the rows), as it
# must: there is nothing to learn. The leaky one reports about 59%, five points more: it picked the noise
# columns that happen to correlate with the label *on the test rows too*, and that gain is an illusion
# that no new patient would confirm. Leakage matters in proportion to how much the fitted step can adapt
# to the data (a mean and a scale: little; a choice among 200 features: a lot). The habit must be the same
# in both cases because one cannot know in advance which step is harmless, and because a pipeline grows:
# fitting everything on the training split (scikit-learn's `Pipeline`, Keras' `adapt` on the training
# data) is correct for every step.
# :::
# <!-- ### END SOLUTION -->
