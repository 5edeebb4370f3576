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
# # 2. Weight initialization
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part2_training/02_weight_initialization.ipynb)
#
# Before the first optimizer step, a deep network is a product of random matrices. A signal that goes
# through $L$ layers is multiplied $L$ times by a factor that depends on the scale of the weights; if
# that factor is 0.7 the signal is $0.7^{20} \approx 10^{-3}$ of itself after 20 layers, if it is 1.4 it
# is $10^3$ times larger. The same happens to the gradients on their way back. No optimizer of Part I can
# repair a network whose first layers receive gradients of $10^{-12}$: it does not train. Choosing the
# scale of the random weights so that the factor is 1 is the whole idea of this chapter.
#
# This chapter covers
#
# * the variance argument behind LeCun {cite}`lecun1998efficient`, Glorot/Xavier {cite}`glorot2010` and He/Kaiming
#   {cite}`he2015` initialization, uniform and normal;
# * what a bad scale does to a 20-layer MLP: activation and gradient statistics layer by layer, with tanh
#   and with ReLU;
# * the defaults of `torch.nn.Linear` and `keras.layers.Dense`, and why they differ;
# * a deep MLP on MNIST that trains or does not, depending only on its initialization.
#
# The initializers live in `companion.initialization`; its tests compare them with `torch.nn.init` and
# `keras.initializers` (bounds exactly, variances within sampling error).

# %% tags=["hide-input"]
# Setup: on Colab (or anywhere companion is missing) install the course package.
try:
    import companion
except ImportError:
    %pip install -q "dl-optimization-companion[torch,keras] @ git+https://github.com/YOUR-ORG/dl-optimization-hands-on@main"
    import companion

# %% tags=["keep-when-grading"]
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from companion import initialization, optim
from companion.glue import glue
from companion.plotting import plot_histories, use_course_style
from companion.reproducibility import pick_device, seed_everything
from companion.training import accuracy, mlp, mnist_tensors, train_classifier

use_course_style()
seed_everything(0)
# The networks are small: one thread avoids thread start-up costs and makes CPU runs reproducible.
torch.set_num_threads(1)
device = pick_device()

# 10,000 training images and the full 10,000-image test set, as tensors on the device.
x_train, y_train, _, _, x_test, y_test = mnist_tensors(10_000, device=device)

# %% [markdown]
# ## The variance argument
#
# Take one layer $z = W h + b$ with $n_{in}$ inputs, weights drawn independently with mean 0 and variance
# $\sigma^2$, zero bias, and inputs $h$ independent of the weights. Each output is a sum of $n_{in}$
# independent terms, so
#
# $$
# \operatorname{Var}(z_i) = n_{in}\,\sigma^2\,\mathbb E[h_j^2].
# $$
#
# * If the nonlinearity is close to the identity around 0 (tanh, for small inputs), $\mathbb E[h^2] \approx
#   \operatorname{Var}(z_{\text{previous}})$, and the forward signal keeps its variance when
#   $\sigma^2 = 1/n_{in}$: **LeCun** initialization {cite}`lecun1998efficient`.
# * The gradient flows back through $W^\top$, which has $n_{out}$ terms per sum: it keeps its variance
#   when $\sigma^2 = 1/n_{out}$. {cite:t}`glorot2010` compromise between the two:
#   $\sigma^2 = 2/(n_{in} + n_{out})$, **Glorot** (or Xavier) initialization.
# * ReLU zeroes half of its inputs, so $\mathbb E[h^2] = \tfrac12\operatorname{Var}(z_{\text{previous}})$:
#   the variance halves at every layer unless $\sigma^2 = 2/n_{in}$, **He** (or Kaiming) initialization
#   {cite}`he2015`.
#
# In general $\sigma^2 = g^2/\text{fan}$ with a *gain* $g$ for the nonlinearity (1 for linear, $\sqrt2$
# for ReLU, 5/3 for tanh in PyTorch's `calculate_gain`). A uniform $U(-b, b)$ has variance $b^2/3$, so
# the uniform variants draw from $b = \sqrt3\,\sigma$:
#
# $$
# \text{Glorot uniform: } b = g\sqrt{\frac{6}{n_{in} + n_{out}}}, \qquad
# \text{He uniform: } b = \sqrt{\frac{6}{n_{in}}}, \qquad
# \text{LeCun uniform: } b = \sqrt{\frac{3}{n_{in}}}.
# $$
#
# For a convolution, each output sees $c_{in} k_h k_w$ inputs: `initialization.fan_in_and_fan_out` multiplies the
# channel counts by the kernel size. Careful with the layouts: a PyTorch weight is `(out, in, kh, kw)`, a
# Keras kernel `(kh, kw, in, out)`.

# %%
print("torch Linear(784, 128) weight (128, 784):      fans", initialization.fan_in_and_fan_out((128, 784)))
print("torch Conv2d(3, 64, 5) weight (64, 3, 5, 5):   fans", initialization.fan_in_and_fan_out((64, 3, 5, 5)))
print("keras Conv2D kernel (5, 5, 3, 64):            fans", initialization.fan_in_and_fan_out((5, 5, 3, 64), layout="keras"))
print("gains: relu %.4f, tanh %.4f, linear %.1f" % tuple(initialization.calculate_gain(n) for n in ("relu", "tanh", "linear")))

# %% tags=["remove-input"]
assert initialization.fan_in_and_fan_out((128, 784)) == (784, 128)
assert initialization.fan_in_and_fan_out((64, 3, 5, 5)) == initialization.fan_in_and_fan_out((5, 5, 3, 64), layout="keras") == (75, 1600)

# %% [markdown]
# ## Normal, uniform, truncated
#
# Uniform and normal versions with the same $\sigma$ have the same variance, which is all the argument
# above uses. The two frameworks disagree on what "normal" means, though. PyTorch's `xavier_normal_` and
# `kaiming_normal_` draw from a plain normal. Keras' `GlorotNormal`, `HeNormal` and `LecunNormal` draw from
# a normal *truncated* at two standard deviations, and divide by $0.8796$, the standard deviation of a
# standard normal cut at $\pm2$, so that the variance is still $\sigma^2$. No Keras weight is larger than
# $2\sigma/0.8796 \approx 2.27\sigma$, while about {fixed}`2.3%` of PyTorch's are. `companion.initialization` offers both
# (`truncated=False`, the default, or `True`).

# %%
shape = (256, 256)
std = math.sqrt(2 / 256)
samples = {
    "he_uniform (b = √3 σ)": initialization.he_uniform(shape, rng=0),
    "he_normal, plain (PyTorch)": initialization.he_normal(shape, rng=0),
    "he_normal, truncated (Keras)": initialization.he_normal(shape, truncated=True, rng=0),
}
fig, ax = plt.subplots()
bins = np.linspace(-4.5 * std, 4.5 * std, 121)
for name, w in samples.items():
    ax.hist(w.ravel() / std, bins=bins / std, histtype="step", density=True, lw=1.6, label=f"{name}: std {w.std() / std:.3f} σ")
ax.axvline(2 / initialization.TRUNCATED_NORMAL_STD, color="gray", ls=":", lw=1, label="Keras cut, ±2σ/0.8796")
ax.axvline(-2 / initialization.TRUNCATED_NORMAL_STD, color="gray", ls=":", lw=1)
ax.set_xlabel("weight / σ, with σ = √(2/fan_in)")
ax.set_ylabel("probability density")
ax.set_title("Same variance, three shapes: the Keras normal has no tails")
ax.legend(fontsize=8)
plt.show()

# %% tags=["remove-input"]
cut = 2 * std / initialization.TRUNCATED_NORMAL_STD
assert np.abs(samples["he_normal, truncated (Keras)"]).max() <= cut
assert (np.abs(samples["he_normal, plain (PyTorch)"]) > cut).mean() > 0.015
for w in samples.values():
    assert abs(w.std() / std - 1) < 0.02

# %% [markdown]
# ## What a bad scale does, layer by layer
#
# The experiment of {cite:t}`glorot2010`: a deep MLP, here 20 hidden layers of 256 units, one batch of
# 512 MNIST images, and for every layer $l$ the standard deviation of its activations $h_l = \phi(z_l)$ and
# of the gradient back-propagated to it, $\partial J/\partial z_l$. `initialization.layer_statistics` records both with
# hooks. Four initializations (biases zero): a too small $N(0, 0.01^2)$ (a popular snippet's choice), Glorot,
# He, and a too large $N(0, 1)$.

# %%
DEPTH, WIDTH = 20, 256
deep_sizes = (784,) + (WIDTH,) * DEPTH + (10,)
scales = {
    "N(0, 0.01²): too small": (torch.nn.init.normal_, dict(std=0.01)),
    "Glorot normal": (initialization.glorot_normal, {}),
    "He normal": (initialization.he_normal, {}),
    "N(0, 1): too large": (torch.nn.init.normal_, dict(std=1.0)),
}
x_batch, y_batch = x_train[:512], y_train[:512]


def statistics(activation, initializer, **kwargs):
    torch.manual_seed(0)
    # rng seeds companion's initializers; torch.nn.init functions use torch's generator, seeded above.
    model = initialization.apply_initializer(mlp(deep_sizes, activation).to(device), initializer, rng=0, **kwargs)
    return initialization.layer_statistics(model, x_batch, y_batch)


stats = {(act, name): statistics(act, fn, **kw) for act in ("tanh", "relu") for name, (fn, kw) in scales.items()}

fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True)
layers = np.arange(1, DEPTH + 2)
for col, act in enumerate(("tanh", "relu")):
    for name in scales:
        s = stats[(act, name)]
        axes[0, col].semilogy(layers, s.activation_std, marker=".", label=name)
        axes[1, col].semilogy(layers, s.gradient_std, marker=".", label=name)
    axes[0, col].set_title(f"{act}: activations vanish or blow up unless the scale is right", fontsize=10)
    axes[1, col].set_title(f"{act}: so do the gradients, on the way back", fontsize=10)
    axes[1, col].set_xlabel("layer (1 = first hidden, 21 = logits)")
for row, what in enumerate(("std of activations $h_l$", r"std of gradients $\partial J/\partial z_l$")):
    axes[row, 0].set_ylabel(what)
axes[0, 1].legend(fontsize=8)
fig.suptitle("A 20-layer MLP at initialization: only a variance-preserving scale keeps the signal alive",
             fontweight="bold")
fig.tight_layout()
plt.show()

# %% tags=["remove-input"]
relu = {name: stats[("relu", name)] for name in scales}
tanh = {name: stats[("tanh", name)] for name in scales}
he_act = relu["He normal"].activation_std[:DEPTH]
assert 0.5 < he_act[-1] / he_act[0] < 2, he_act  # He keeps ReLU activations at the same scale
glorot_relu = relu["Glorot normal"].activation_std
assert glorot_relu[DEPTH - 1] / glorot_relu[0] < 1e-2  # ReLU + Glorot: halves the variance per layer
assert relu["N(0, 0.01²): too small"].activation_std[DEPTH - 1] < 1e-15
assert relu["N(0, 1): too large"].activation_std[DEPTH - 1] > 1e15
assert relu["N(0, 0.01²): too small"].gradient_std[0] < 1e-15  # the first layer gets no gradient at all
g = relu["He normal"].gradient_std
assert 0.1 < g[0] / g[DEPTH] < 10, g  # He: gradients of the same order in the first and the last layer
assert tanh["N(0, 1): too large"].activation_std[DEPTH - 1] > 0.9  # tanh saturated at ±1
t_glorot = tanh["Glorot normal"].activation_std
assert 0.2 < t_glorot[DEPTH - 1] / t_glorot[0] < 0.8  # tanh + Glorot: a slow decline

# %% [markdown]
# **What to notice.**
#
# * With $N(0, 0.01^2)$ each layer multiplies the signal by $\sqrt{256}\times 0.01 = 0.16$ (times the
#   nonlinearity's shrinking): after 20 layers the activations are below $10^{-15}$, and so are the
#   gradients of the first layer. Nothing will train there.
# * With $N(0, 1)$ the ReLU network multiplies the signal by $\sqrt{256/2} \approx 11$ per layer:
#   $10^{20}$ at the end. The tanh network cannot explode its activations, it *saturates* them at
#   $\pm1$, where $\tanh' \approx 0$; its gradients are then large in the first layers and tiny in the
#   last, far from uniform.
# * Glorot keeps a tanh network in a healthy range (activations decline slowly, because $\tanh$ shrinks a
#   little; PyTorch's gain of 5/3 compensates), but loses a factor $\sqrt2$ per layer with ReLU. He
#   initialization is the one that keeps the ReLU network's activations and gradients flat through all
#   20 layers.
#
# ## The defaults of `nn.Linear` and `keras.layers.Dense`, and why they differ
#
# Neither framework uses He initialization by default.
#
# * **PyTorch** `nn.Linear` calls `kaiming_uniform_(weight, a=math.sqrt(5))`. With a leaky-ReLU slope
#   $a = \sqrt5$ the gain is $\sqrt{2/(1+5)} = 1/\sqrt3$, so the bound is
#   $\frac{1}{\sqrt3}\sqrt{3/n_{in}} = 1/\sqrt{n_{in}}$: the weights are $U(-1/\sqrt{n_{in}}, 1/\sqrt{n_{in}})$,
#   and so is the bias. This is the initialization of the original Lua Torch, kept for backward
#   compatibility and written in Kaiming's vocabulary; its variance $1/(3 n_{in})$ is a third of LeCun's.
# * **Keras** `Dense` uses `glorot_uniform` for the kernel and zeros for the bias, following
#   {cite:t}`glorot2010`.
#
# Both are fine for the shallow networks most people train first, and for deep ones that have
# normalization layers or residual connections. Neither preserves the variance through a deep plain
# ReLU stack: PyTorch's default shrinks the second moment by a factor 6 per layer (variance $1/(3n)$
# times $n$, halved by ReLU) until the random biases dominate, Keras' by a factor 2.

# %%
from companion.quiet import quiet_tensorflow  # noqa: E402

with quiet_tensorflow():  # TensorFlow's C++ start-up messages stay off the page
    import keras  # noqa: E402  (imported here: it is slow, and only this cell needs it)

torch.manual_seed(0)
linear = torch.nn.Linear(256, 256)
keras.utils.set_random_seed(0)
dense = keras.layers.Dense(256)
dense.build((None, 256))
kernel, keras_bias = dense.get_weights()
torch_weight, torch_bias = linear.weight.detach().cpu().numpy(), linear.bias.detach().cpu().numpy()
print(f"nn.Linear(256, 256): max |w| = {np.abs(torch_weight).max():.4f} (1/sqrt(256) = {1 / 16:.4f}), "
      f"std = {torch_weight.std():.4f} (1/sqrt(3·256) = {1 / math.sqrt(768):.4f}), max |b| = {np.abs(torch_bias).max():.4f}")
print(f"Dense(256) on 256 inputs: max |w| = {np.abs(kernel).max():.4f} (sqrt(6/512) = {math.sqrt(6 / 512):.4f}), "
      f"std = {kernel.std():.4f} (1/sqrt(256) = {1 / 16:.4f}), bias all zero: {bool(np.all(keras_bias == 0))}")


def default_statistics(kind):
    torch.manual_seed(0)
    model = mlp(deep_sizes, "relu").to(device)  # torch's own default initialization
    if kind == "Keras default (glorot_uniform, zero bias)":
        initialization.apply_initializer(model, initialization.glorot_uniform, rng=0)
    elif kind == "He uniform, zero bias":
        initialization.apply_initializer(model, initialization.he_uniform, rng=0)
    return initialization.layer_statistics(model, x_batch, y_batch)


defaults = {kind: default_statistics(kind) for kind in (
    "PyTorch default (U(±1/√fan_in), bias too)", "Keras default (glorot_uniform, zero bias)", "He uniform, zero bias")}
fig, (ax_act, ax_grad) = plt.subplots(1, 2, figsize=(11, 4.2))
for kind, s in defaults.items():
    ax_act.semilogy(layers, s.activation_std, marker=".", label=kind)
    ax_grad.semilogy(layers, s.gradient_std, marker=".", label=kind)
ax_act.set_ylabel("std of activations $h_l$")
ax_grad.set_ylabel(r"std of gradients $\partial J/\partial z_l$")
for ax in (ax_act, ax_grad):
    ax.set_xlabel("layer of the 20-layer ReLU MLP")
ax_act.set_title("Both frameworks' defaults shrink a deep ReLU stack", fontsize=10)
ax_grad.set_title("...and starve its first layers of gradient", fontsize=10)
ax_act.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% tags=["remove-input"]
assert np.abs(torch_weight).max() <= 1 / 16 and np.abs(torch_weight).max() > 0.99 / 16
assert abs(torch_weight.std() * math.sqrt(768) - 1) < 0.03
assert np.abs(kernel).max() <= math.sqrt(6 / 512) and abs(kernel.std() * 16 - 1) < 0.03
assert np.all(keras_bias == 0)
torch_default = defaults["PyTorch default (U(±1/√fan_in), bias too)"]
he_uniform_stats = defaults["He uniform, zero bias"]
assert torch_default.gradient_std[0] < 1e-6 * torch_default.gradient_std[DEPTH]
assert defaults["Keras default (glorot_uniform, zero bias)"].activation_std[DEPTH - 1] < 1e-2 * he_uniform_stats.activation_std[DEPTH - 1]
assert 0.1 < he_uniform_stats.gradient_std[0] / he_uniform_stats.gradient_std[DEPTH] < 10

# %% [markdown]
# **What to notice.** The PyTorch default's activations stop shrinking after a few layers, at about a
# tenth of He's: the random biases, $U(\pm 1/16)$, are then the signal. Its gradients still lose about seven
# orders of magnitude between the last and the first layer. The Keras default halves the second moment per
# layer, a loss of $2^{10}$ in standard deviation over 20 layers, smaller but still crippling.
#
# ## Training a deep MLP: the initialization decides
#
# A 12-hidden-layer ReLU MLP (width 128) on 10,000 MNIST images, two epochs of SGD with momentum 0.9 and
# $\eta = 0.01$, from four initializations. Everything else is identical.

# %%
train_sizes = (784,) + (128,) * 12 + (10,)


def train_deep(kind):
    torch.manual_seed(0)
    model = mlp(train_sizes, "relu").to(device)
    if kind == "N(0, 0.01²)":
        initialization.apply_initializer(model, torch.nn.init.normal_, std=0.01)
    elif kind == "Glorot uniform (Keras default)":
        initialization.apply_initializer(model, initialization.glorot_uniform, rng=0)
    elif kind == "He normal":
        initialization.apply_initializer(model, initialization.he_normal, rng=0)
    history = train_classifier(model, optim.sgd(0.01, momentum=0.9), x_train, y_train, epochs=2, batch_size=128,
                               seed=0, progress=False, name=kind)
    history.meta["test_accuracy"] = accuracy(model, x_test, y_test)
    return history


runs = {kind: train_deep(kind) for kind in ("N(0, 0.01²)", "PyTorch default", "Glorot uniform (Keras default)", "He normal")}
for kind, h in runs.items():
    print(f"{kind:>32}: final training loss {h.last('train_loss'):.3f}, test accuracy {h.meta['test_accuracy']:.3f}")
ax = plot_histories(runs, "loss", smooth=10, ylabel="training loss (cross-entropy, running mean of 10 batches)",
                    title="Only He initialization trains the 12-layer ReLU MLP in two epochs")
plt.show()

# %% tags=["remove-input"]
acc = {kind: h.meta["test_accuracy"] for kind, h in runs.items()}
assert acc["He normal"] > 0.8, acc
glue("he_test_accuracy", f"{acc['He normal']:.1%}")
assert acc["N(0, 0.01²)"] < 0.2 and acc["PyTorch default"] < 0.2, acc  # chance level: ~11% (the majority class)
assert acc["PyTorch default"] + 0.05 < acc["Glorot uniform (Keras default)"] < acc["He normal"] - 0.3, acc
assert runs["PyTorch default"].last("train_loss") > 2.2  # still at log(10) = 2.30

# %% [markdown]
# **What to notice.** He initialization reaches {glue:text}`he_test_accuracy` test accuracy in two
# epochs, more than 80%. The tiny
# $N(0, 0.01^2)$ and the PyTorch default never leave the loss $\log 10 \approx 2.30$ of a uniform guess:
# their first layers receive almost no gradient, and the network predicts the majority class. The Keras
# default starts to learn, slowly. A smaller or larger learning rate does not rescue the first two: a
# gradient of $10^{-12}$ needs a rate of $10^{10}$ to move a weight, which the last layers would not survive.
#
# ## Pitfalls that popular snippets get wrong
#
# * **`torch.randn(n_in, n_out) * 0.01`.** A fine scale for a two-layer network, a dead network at depth 10.
#   Use a fan-dependent scale.
# * **Mixing layouts.** A PyTorch weight is `(out, in)`, so `fan_in = weight.shape[1]`, not `shape[0]`; a
#   Keras kernel is `(in, out)`. `fan_in_and_fan_out(..., layout=...)` makes the choice explicit.
# * **Forgetting the kernel in a convolution's fan.** `fan_in` of a {fixed}`3×3` convolution over 64 channels is 576, not 64.
# * **He for tanh, Glorot for ReLU.** The gain belongs to the nonlinearity that *follows* the layer.
# * **Assuming "normal" means the same thing.** Keras' normals are truncated at 2σ and rescaled; PyTorch's
#   are not. Porting a checkpoint-free model between frameworks changes the initial weights' tails.
# * **Re-initializing the weights but not the biases.** `nn.Linear`'s biases are $U(\pm 1/\sqrt{n_{in}})$;
#   `apply_initializer` sets them to zero (the Keras convention) unless told otherwise.
#
# ## Summary
#
# Each layer multiplies the variance of the signal by $n\sigma^2$ times what the nonlinearity keeps; over
# many layers that factor must be 1. LeCun ($1/n_{in}$), Glorot ($2/(n_{in}+n_{out})$) and He ($2/n_{in}$)
# initializations choose $\sigma^2$ to make it so, for linear-like, tanh and ReLU units. Uniform and
# normal variants share the variance; Keras' normals are truncated. On a 20-layer MLP a bad scale makes the
# activations and the gradients vanish (or explode) by fifteen orders of magnitude, and on MNIST a
# 12-layer ReLU MLP trains to {glue:text}`he_test_accuracy` (more than 80%) with He initialization and
# not at all with $N(0, 0.01^2)$ or with PyTorch's default. {cite:t}`saxe2014` go one step further: random *orthogonal* matrices preserve
# the norm of every vector, not only the variance on average (Exercise 1).
#
# ## Exercises
#
# ### Exercise 1 — Implement it: orthogonal initialization
#
# Write `orthogonal(shape, gain=1.0, rng=None)` returning a NumPy array of `shape` (at least 2 dimensions;
# treat it as a matrix of `shape[0]` rows and `prod(shape[1:])` columns) whose rows are orthonormal times
# `gain` when there are no more rows than columns, and whose columns are, otherwise. Recipe
# {cite}`saxe2014`: draw a Gaussian matrix, take its QR decomposition (of the transpose if it is wide),
# and multiply $Q$ by the signs of $R$'s diagonal so that the result is uniformly distributed
# {cite}`mezzadri2007`. Reject
# shapes with fewer than 2 dimensions with a `ValueError` naming `shape`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "init-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
def orthogonal(shape, gain=1.0, rng=None):
    """A random matrix with orthonormal rows (or columns), times gain, reshaped to `shape`."""
    ### BEGIN SOLUTION
    if len(shape) < 2:
        raise ValueError(f"Invalid shape: {shape} (need at least 2 dimensions)")
    rng = np.random.default_rng(rng)
    rows, cols = shape[0], math.prod(shape[1:])
    a = rng.normal(size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))  # make the distribution uniform (Haar)
    if rows < cols:
        q = q.T
    return gain * q.reshape(shape)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "init-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error
w = orthogonal((64, 128), rng=0)
assert w.shape == (64, 128), f"expected shape (64, 128), got {w.shape}"
assert np.allclose(w @ w.T, np.eye(64), atol=1e-10), "the rows of a wide matrix must be orthonormal"
tall = orthogonal((128, 64), gain=2.0, rng=0)
assert np.allclose(tall.T @ tall, 4.0 * np.eye(64), atol=1e-10), "the columns of a tall matrix, times gain"
### BEGIN HIDDEN TESTS
conv = orthogonal((16, 4, 3, 3), rng=1)
flat = conv.reshape(16, -1)
assert conv.shape == (16, 4, 3, 3) and np.allclose(flat @ flat.T, np.eye(16), atol=1e-10), "a 4-D (convolution) shape: the rows of its (16, 36) reshape must be orthonormal"
assert np.allclose(orthogonal((10, 10), rng=3), orthogonal((10, 10), rng=3)), "the same rng seed must give the same matrix"
assert not np.allclose(orthogonal((10, 10), rng=3), orthogonal((10, 10), rng=4)), "different seeds must give different matrices"
# as torch.nn.init.orthogonal_: a square orthogonal matrix has mean squared entry exactly 1/n
assert abs(np.mean(orthogonal((300, 300), rng=0) ** 2) * 300 - 1) < 1e-9, "a square orthogonal matrix has mean squared entry exactly 1/n"
torch_q = torch.nn.init.orthogonal_(torch.empty(300, 300, dtype=torch.float64)).numpy()
assert abs(np.mean(torch_q**2) * 300 - 1) < 1e-9, "torch's orthogonal_ has the same property (a check of the check)"
# the norm of every vector is preserved: a deep linear stack neither vanishes nor explodes
v = np.ones(50)
for seed in range(30):
    v = orthogonal((50, 50), rng=seed) @ v
assert abs(np.linalg.norm(v) - math.sqrt(50)) < 1e-9, "multiplying by orthogonal matrices must keep the norm of a vector"
expect_error(lambda: orthogonal((5,)), ValueError, "shape", when="orthogonal((5,))")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 — Implement it: He (Kaiming) uniform initialization
#
# Write `kaiming_uniform(shape, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None)` returning a
# NumPy array of `shape`, a PyTorch weight shape `(out, in, *kernel)` with at least 2 dimensions, drawn
# from $U(-b, b)$ with
#
# $$
# b = g\,\sqrt{\frac{3}{\text{fan}}},
# $$
#
# where $\text{fan} = \text{in}\cdot\prod\text{kernel}$ for `mode="fan_in"` (keeps the variance of the
# activations) and $\text{out}\cdot\prod\text{kernel}$ for `mode="fan_out"` (keeps the variance of the
# gradients), and the gain $g$ depends on `nonlinearity`: 1 for `"linear"` and `"sigmoid"`, 5/3 for
# `"tanh"`, $\sqrt2$ for `"relu"` and $\sqrt{2/(1+a^2)}$ for `"leaky_relu"` with negative slope $a$. Draw
# with `np.random.default_rng(rng).uniform(-b, b, size=shape)`. The bound must be that of
# `torch.nn.init.kaiming_uniform_(w, a, mode, nonlinearity)` (`nn.Linear` calls it with $a = \sqrt5$).
# Compute the fan and the gain yourself, without `torch.nn.init` or `initialization`, and reject any
# other `mode` or `nonlinearity` with a `ValueError` naming the argument.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "init-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
def kaiming_uniform(shape, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None):
    """U(-b, b) with b = gain * sqrt(3 / fan), as torch.nn.init.kaiming_uniform_ (He et al., 2015)."""
    ### BEGIN SOLUTION
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Invalid mode: {mode!r} (expected 'fan_in' or 'fan_out')")
    gains = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0),
             "leaky_relu": math.sqrt(2.0 / (1.0 + a**2))}
    if nonlinearity not in gains:
        raise ValueError(f"Invalid nonlinearity: {nonlinearity!r} (expected one of {sorted(gains)})")
    receptive = math.prod(shape[2:])
    fan = shape[1] * receptive if mode == "fan_in" else shape[0] * receptive
    bound = gains[nonlinearity] * math.sqrt(3.0 / fan)
    return np.random.default_rng(rng).uniform(-bound, bound, size=shape)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "init-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error


def ex2_torch_bound(shape, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """The bound b of torch.nn.init.kaiming_uniform_: its draw divided by U(-1, 1) drawn from the same seed."""
    drawn = torch.nn.init.kaiming_uniform_(torch.empty(shape, dtype=torch.float64), a=a, mode=mode,
                                           nonlinearity=nonlinearity, generator=torch.Generator().manual_seed(0))
    unit = torch.empty(shape, dtype=torch.float64).uniform_(-1.0, 1.0, generator=torch.Generator().manual_seed(0))
    return float(drawn.abs().max() / unit.abs().max())


def ex2_implied_bound(w, seed):
    """The bound your array was drawn with, if it was drawn as rng.uniform(-b, b, size=shape)."""
    return float(np.abs(w).max() / np.abs(np.random.default_rng(seed).uniform(-1.0, 1.0, size=np.shape(w))).max())


ex2_w = kaiming_uniform((128, 784), rng=0)
assert np.shape(ex2_w) == (128, 784), f"expected shape (128, 784), got {np.shape(ex2_w)}"
ex2_b = ex2_torch_bound((128, 784))
assert np.abs(ex2_w).max() <= ex2_b * (1 + 1e-12), f"a weight of {np.abs(ex2_w).max():.5f} lies beyond torch's bound {ex2_b:.5f} = sqrt(2) * sqrt(3 / 784)"
assert math.isclose(ex2_implied_bound(ex2_w, 0), ex2_b, rel_tol=1e-12), f"defaults (a=0, fan_in, leaky_relu): your bound is {ex2_implied_bound(ex2_w, 0):.8f}, torch's {ex2_b:.8f} (and draw with rng.uniform(-b, b, size=shape))"
### BEGIN HIDDEN TESTS
for ex2_shape, ex2_kwargs in [
    ((256, 256), dict(a=math.sqrt(5))),  # nn.Linear's default: b = 1/sqrt(fan_in)
    ((10, 300), dict(nonlinearity="relu")),
    ((300, 10), dict(mode="fan_out", nonlinearity="relu")),
    ((64, 3, 5, 5), dict()),  # a convolution: the kernel counts in the fan
    ((16, 32, 3, 3), dict(mode="fan_out", nonlinearity="tanh")),
    ((50, 40), dict(a=0.2)),
    ((50, 40), dict(nonlinearity="linear")),
    ((50, 40), dict(a=0.3, nonlinearity="sigmoid")),
]:
    ex2_w = kaiming_uniform(ex2_shape, rng=7, **ex2_kwargs)
    ex2_b = ex2_torch_bound(ex2_shape, **ex2_kwargs)
    assert np.shape(ex2_w) == ex2_shape, f"expected shape {ex2_shape}, got {np.shape(ex2_w)}"
    assert math.isclose(ex2_implied_bound(ex2_w, 7), ex2_b, rel_tol=1e-12), f"shape {ex2_shape}, {ex2_kwargs}: your bound is {ex2_implied_bound(ex2_w, 7):.8f}, torch's {ex2_b:.8f}"
assert math.isclose(ex2_torch_bound((256, 256), a=math.sqrt(5)), 1 / 16, rel_tol=1e-12), "a check of the check: nn.Linear(256, 256)'s bound is 1/sqrt(256)"
ex2_big = kaiming_uniform((512, 512), nonlinearity="relu", rng=1)
assert abs(ex2_big.std() / math.sqrt(2 / 512) - 1) < 0.01, f"He uniform must have std sqrt(2 / fan_in) = {math.sqrt(2 / 512):.5f}, got {ex2_big.std():.5f}"
assert np.array_equal(kaiming_uniform((20, 30), rng=3), kaiming_uniform((20, 30), rng=3)), "the same rng seed must give the same array"
for ex2_bad, ex2_name in ((dict(mode="fan_avg"), "mode"), (dict(nonlinearity="gelu"), "nonlinearity")):
    expect_error(lambda: kaiming_uniform((4, 5), **ex2_bad), ValueError, ex2_name,
                 when=f"kaiming_uniform((4, 5), {ex2_name}={ex2_bad[ex2_name]!r})")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 — Derive it: the 0.8796 of a truncated normal
#
# Keras' normal initializers cut the normal at two standard deviations and divide by 0.8796 (see
# "Normal, uniform, truncated" above). Where do the uniform bounds and that number come from?
#
# (a) What is the variance of $U(-b, b)$? Which bound $b$ gives He's variance $2/n_{in}$, and which
# gives Glorot's $2/(n_{in}+n_{out})$?
#
# (b) Let $Z \sim N(0, 1)$ conditioned on $|Z| \le c$, and write $\varphi$ and $\Phi$ for the standard
# normal density and distribution function. Integrating by parts with $\varphi'(z) = -z\varphi(z)$, show
# that
# $$\operatorname{Var}(Z \mid |Z| \le c) = 1 - \frac{2c\,\varphi(c)}{2\Phi(c) - 1}.$$
# Write `truncated_normal_std(c)` returning its standard deviation ($\Phi(c) = \tfrac12(1 +
# \operatorname{erf}(c/\sqrt2))$, `math.erf`), and check that $c = 2$ gives 0.8796.
#
# (c) For a `Dense` layer with 256 inputs, `keras.initializers.HeNormal` draws from a normal of which
# standard deviation before the cut, and what is the largest weight it can produce? Compare with the
# bound of He uniform for the same layer. What does `truncated_normal_std(c)` tend to as $c \to 0$, and why?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "init-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
def truncated_normal_std(c):
    ### BEGIN SOLUTION
    density = math.exp(-c * c / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(c / math.sqrt(2))  # 2 Phi(c) - 1
    return math.sqrt(1 - 2 * c * density / mass)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "init-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert math.isclose(truncated_normal_std(2.0), initialization.TRUNCATED_NORMAL_STD, rel_tol=1e-12), f"cut at ±2 the standard deviation is {initialization.TRUNCATED_NORMAL_STD:.10f}, got {truncated_normal_std(2.0)}"
### BEGIN HIDDEN TESTS
from scipy.stats import truncnorm  # noqa: E402

for ex3_c in (0.5, 1.0, 1.5, 3.0, 5.0):
    ex3_ref = truncnorm(-ex3_c, ex3_c).std()
    assert math.isclose(truncated_normal_std(ex3_c), ex3_ref, rel_tol=1e-9), f"cut at ±{ex3_c}: got {truncated_normal_std(ex3_c)}, scipy.stats.truncnorm gives {ex3_ref}"
assert math.isclose(truncated_normal_std(0.01), 0.01 / math.sqrt(3), rel_tol=1e-4), f"a narrow cut at ±0.01 is almost uniform, std about 0.01 / sqrt(3) = {0.01 / math.sqrt(3):.7f}, got {truncated_normal_std(0.01)}"
assert math.isclose(truncated_normal_std(8.0), 1.0, rel_tol=1e-12), f"a cut at ±8 changes nothing: std 1, got {truncated_normal_std(8.0)}"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "init-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) $\operatorname{Var} = \frac{1}{2b}\int_{-b}^{b} x^2\,dx = b^2/3$. Setting $b^2/3 = 2/n_{in}$ gives
# He's $b = \sqrt{6/n_{in}}$; setting it to $2/(n_{in}+n_{out})$ gives Glorot's $b = \sqrt{6/(n_{in}+n_{out})}$.
#
# (b) The mean is 0 by symmetry, and the conditional density is $\varphi(z)/(2\Phi(c) - 1)$ on $[-c, c]$.
# With $z^2\varphi(z) = z \cdot z\varphi(z) = -z\,\varphi'(z)$,
# $$\int_{-c}^{c} z^2\varphi(z)\,dz = \big[-z\varphi(z)\big]_{-c}^{c} + \int_{-c}^{c}\varphi(z)\,dz
# = -2c\,\varphi(c) + 2\Phi(c) - 1,$$
# and dividing by $2\Phi(c) - 1$ gives the formula. At $c = 2$: $\varphi(2) = 0.05399$,
# $2\Phi(2) - 1 = 0.95450$, so the variance is $1 - 0.21596/0.95450 = 0.77374$ and the standard deviation
# $0.87963$. Cutting the tails removes 13% of the standard deviation; dividing by 0.8796 gives it back.
#
# (c) He's $\sigma = \sqrt{2/256} = 0.0884$; Keras draws from $N(0, (\sigma/0.8796)^2)$, a standard
# deviation of $0.1005$, cut at twice that: no weight exceeds $0.2010 = 2.27\sigma$. He uniform's bound
# is $\sqrt3\,\sigma = 0.1531 = 1.73\sigma$: same variance, with the truncated normal's weights spread a
# little wider. As $c \to 0$, $\varphi(c) \approx \varphi(0)(1 - c^2/2)$ and
# $2\Phi(c) - 1 \approx 2\varphi(0)(c - c^3/6)$, so the variance is $1 - (1 - c^2/2)/(1 - c^2/6) \approx c^2/3$
# and the standard deviation $\approx c/\sqrt3$: on a tiny interval the normal density is flat, so the
# truncated normal becomes the uniform $U(-c, c)$ of part (a).
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 — Investigate: is Glorot enough for tanh?
#
# Train the 12-layer MLP of the last section with `activation="tanh"` instead of ReLU, from three
# initializations: Glorot normal with gain 1, Glorot normal with PyTorch's tanh gain 5/3, and $N(0, 1)$.
# One epoch each, same optimizer. Which ones train? Relate what you see to the activation statistics of
# the tanh panel above.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "init-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
tanh_runs = {}
for label, (fn, kwargs) in {
    "Glorot, gain 1": (initialization.glorot_normal, {}),
    "Glorot, gain 5/3": (initialization.glorot_normal, dict(gain=5 / 3)),
    "N(0, 1)": (torch.nn.init.normal_, dict(std=1.0)),
}.items():
    torch.manual_seed(0)
    model = initialization.apply_initializer(mlp(train_sizes, "tanh").to(device), fn, rng=0, **kwargs)
    tanh_runs[label] = train_classifier(model, optim.sgd(0.01, momentum=0.9), x_train, y_train, epochs=1,
                                        batch_size=128, seed=0, progress=False, name=label)
    tanh_runs[label].meta["test_accuracy"] = accuracy(model, x_test, y_test)
    print(f"{label:>18}: test accuracy {tanh_runs[label].meta['test_accuracy']:.3f}")
plot_histories(tanh_runs, "loss", smooth=10, ylabel="training loss (running mean of 10 batches)",
               title="tanh: Glorot trains, a saturating N(0, 1) does not")
plt.show()
tanh_acc = {k: h.meta["test_accuracy"] for k, h in tanh_runs.items()}
assert min(tanh_acc["Glorot, gain 1"], tanh_acc["Glorot, gain 5/3"]) > 0.7 > 0.3 > tanh_acc["N(0, 1)"], tanh_acc
### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "init-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# Both Glorot variants train the tanh network (well above 70% after one epoch, about 88% in our run), and
# $N(0, 1)$ does not (11%, the majority class). Glorot
# was derived for units that are linear around 0, which tanh is: the activations decline only slowly through
# the depth (the tanh panel above), so the gradients reach every layer. The gain of 5/3 compensates for
# tanh's shrinking and keeps the activations even flatter; in this short run it makes little difference.
# With $N(0, 1)$ every pre-activation has a standard deviation of about $\sqrt{128} \approx 11$: the units
# sit at $\pm 1$ where $\tanh'(z) \approx 0$, the network's output hardly depends on its input, and the
# gradients are badly scaled from layer to layer, so SGD makes no progress. Unlike ReLU, tanh never
# *explodes* its activations, it saturates them, which is just as fatal.
# :::
# <!-- ### END SOLUTION -->
