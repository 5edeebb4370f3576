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
# # 4. Regularization
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part2_training/04_regularization.ipynb)
#
# A network with far more parameters than training examples can fit its training set perfectly, labels
# and noise alike. The optimizer is then doing its job too well: the training loss keeps falling while
# the loss on new data rises. *Regularization* is everything that trades a little training fit for
# better generalization. This chapter starts from a model that clearly over-fits 1,000 MNIST images and
# tries the standard remedies one at a time, each with its train and validation curves:
#
# - **L2 and L1 penalties** and **weight decay** (and why L2 under Adam is not weight decay);
# - **dropout**, from scratch (inverted dropout) and in Keras;
# - **batch normalization**, from scratch (forward and backward pass), the bug of evaluating it in training
#   mode, and the larger learning rates it allows;
# - **early stopping** with patience, restoring the best weights;
# - **data augmentation** (chapter 3), and a final comparison table.
#
# The reference code is `companion.regularization` (`l1_penalty`, `l2_penalty`, `inverted_dropout`,
# `EarlyStopping`, and `fit_with_validation`, a training loop that records both curves every epoch) and
# `companion.normalization` (batch normalization from scratch).

# %% tags=["hide-input"]
# Setup: on Colab (or anywhere companion is missing) install the course package.
try:
    import companion
except ImportError:
    %pip install -q "dl-optimization-companion[torch,keras] @ git+https://github.com/YOUR-ORG/dl-optimization-hands-on@main"
    import companion

# %% tags=["keep-when-grading"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from companion.augment import Augmenter
from companion.data import load_mnist
from companion.glue import glue
from companion.plotting import use_course_style
from companion.regularization import (
    EarlyStopping,
    InvertedDropout,
    fit_with_validation,
    inverted_dropout,
    l2_penalty,
)
from companion.reproducibility import pick_device, seed_everything
from companion.training import accuracy, mnist_tensors

use_course_style()
seed_everything(0)
# The network is small: on a CPU one thread is fastest (more threads only add synchronisation, and a
# lot of waiting on a busy machine). On a GPU this setting does not matter.
torch.set_num_threads(1)
device = pick_device()

# 1,000 training images (a small data set: easy to over-fit), 2,000 validation images to watch
# over-fitting and choose remedies, and the full 10,000-image test set for the final table only.
x_train, y_train, x_val, y_val, x_test, y_test = mnist_tensors(1_000, val=2_000, shape="channel", device=device)
EPOCHS = 30
print(f"device: {device}; train {len(x_train)}, validation {len(x_val)}, test {len(x_test)} images")

# %% [markdown]
# ## A model that over-fits
#
# A wide multilayer perceptron, 784–512–512–10 (670,000 parameters for 1,000 images), trained with Adam
# ($\eta = 10^{-3}$, batch 64) for 30 epochs. `fit_with_validation` evaluates the training and validation
# loss and accuracy after every epoch, in evaluation mode.

# %%
def wide_mlp(dropout=0.0, batch_norm=False, width=512):
    """784 -> width -> width -> 10, ReLU; optional batch norm (before the ReLU) and dropout (after it)."""
    layers, n_in = [nn.Flatten()], 784
    for _ in range(2):
        layers.append(nn.Linear(n_in, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU())
        if dropout:
            layers.append(nn.Dropout(dropout))
        n_in = width
    layers.append(nn.Linear(n_in, 10))
    return nn.Sequential(*layers).to(device)


def train(name, model, optimizer=None, **kwargs):
    """Train with Adam(1e-3) unless told otherwise; return the History (the model is kept in `models`)."""
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=1e-3)
    history = fit_with_validation(model, optimizer, x_train, y_train, x_val, y_val, epochs=EPOCHS,
                                  batch_size=64, name=name, **kwargs)
    models[name] = model
    return history


def plot_curves(histories, title):
    """Training (dashed) and validation (solid) loss and accuracy against the epoch."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, (name, h) in enumerate(histories.items()):
        for ax, key, unit in ((axes[0], "loss", "cross-entropy (nats)"), (axes[1], "accuracy", "accuracy (fraction)")):
            epochs, train_values = h.series(f"train_{key}")
            ax.plot(epochs, train_values, ls="--", color=f"C{i}", label=f"{name}, train")
            ax.plot(epochs, h.series(f"val_{key}")[1], color=f"C{i}", label=f"{name}, validation")
            ax.set_xlabel("epoch")
            ax.set_ylabel(unit)
    axes[0].set_yscale("log")
    axes[1].set_ylim(0.8, 1.005)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontweight="bold")
    plt.tight_layout()
    plt.show()


models, histories = {}, {}
seed_everything(0)
histories["baseline"] = train("baseline", wide_mlp())
base_epochs, base_val_loss = histories["baseline"].series("val_loss")
best_epoch = int(base_epochs[np.argmin(base_val_loss)])
plot_curves({"baseline": histories["baseline"]},
            f"The baseline memorises its training set; validation loss is lowest at epoch {best_epoch}")
print(f"final train accuracy {histories['baseline'].last('train_accuracy'):.3f}, "
      f"validation loss: minimum {base_val_loss.min():.3f} at epoch {best_epoch}, final {base_val_loss[-1]:.3f}")

# %% tags=["remove-input"]
assert histories["baseline"].last("train_accuracy") == 1.0
assert best_epoch <= 12 and base_val_loss[-1] > 1.2 * base_val_loss.min(), (best_epoch, base_val_loss)
_, base_val_accuracy = histories["baseline"].series("val_accuracy")
assert base_val_accuracy.max() - base_val_accuracy[-1] < 0.02
_, base_train_loss = histories["baseline"].series("train_loss")
assert base_train_loss[-1] < base_train_loss[0] / 100  # "by orders of magnitude"
glue("baseline_train_accuracy", f"{histories['baseline'].last('train_accuracy'):.0%}")
glue("baseline_val_loss_rise", f"{base_val_loss[-1] / base_val_loss.min() - 1:.0%}")

# %% [markdown]
# **What to notice.** Training accuracy reaches {glue:text}`baseline_train_accuracy` and the training loss
# keeps falling by orders of magnitude, while the validation loss bottoms out within the first dozen
# epochs and then *rises* by {glue:text}`baseline_val_loss_rise`, more than 20%: the network becomes ever
# more confident on the training images, including where it is wrong on new ones. The validation accuracy,
# meanwhile, barely moves: loss detects over-fitting earlier than accuracy.
#
# ## L2 and L1 penalties, and weight decay
#
# A penalty on the size of the weights adds a term to the loss:
#
# $$
# J_{L2}(\theta) = J(\theta) + \frac{\lambda}{2}\sum_{W}\lVert W\rVert_2^2, \qquad
# J_{L1}(\theta) = J(\theta) + \lambda\sum_{W}\lVert W\rVert_1 ,
# $$
#
# summed over the weight matrices (biases are usually left out: shifting a unit does not make the
# function less smooth). L2 prefers many small weights; L1 pushes weights to exactly zero (sparsity; with
# a plain subgradient method only approximately, see FTRL in Part I, chapter 3). The L2 gradient is
# $\nabla J + \lambda\theta$, so a gradient-descent step is
#
# $$
# \theta_{t+1} = \theta_t - \eta\nabla J(\theta_t) - \eta\lambda\theta_t = (1 - \eta\lambda)\,\theta_t - \eta\nabla J(\theta_t),
# $$
#
# a multiplicative **weight decay** {cite}`krogh1992`. That equivalence holds for SGD only. Adam divides
# the whole gradient, penalty included, by $\sqrt{\hat v_t}$, so weights with large gradients are decayed
# less; AdamW applies the decay outside the adaptive scaling (Part I, chapter 3, {cite}`loshchilov2019`).
# In PyTorch, `Adam(weight_decay=λ)` is the L2 penalty and `AdamW(weight_decay=λ)` is decay; in Keras
# `kernel_regularizer=keras.regularizers.L2(l)` adds $l\sum W^2$ (no ½, so $l = \lambda/2$).
#
# `companion.regularization.l2_penalty(model, λ)` computes the penalty over the weight matrices only; we
# add it to the loss of the over-fitting model, with Adam.

# %%
seed_everything(0)
histories["L2 penalty"] = train("L2 penalty", wide_mlp(), penalty=lambda m: l2_penalty(m, 1e-3))
plot_curves({k: histories[k] for k in ("baseline", "L2 penalty")},
            "An L2 penalty stops the validation loss from climbing")
print(f"final validation loss: baseline {histories['baseline'].last('val_loss'):.3f}, "
      f"L2 {histories['L2 penalty'].last('val_loss'):.3f}")

# %% tags=["remove-input"]
assert histories["L2 penalty"].last("val_loss") < 0.85 * histories["baseline"].last("val_loss")
glue("l2_val_loss_cut", f"{1 - histories['L2 penalty'].last('val_loss') / histories['baseline'].last('val_loss'):.0%}")

# %% [markdown]
# **What to notice.** With the penalty the validation loss no longer climbs: after 30 epochs it is
# {glue:text}`l2_val_loss_cut` below the baseline's, more than 15%. The penalty stops the weights, and
# with them the logits, from growing without bound on already-correct training examples. The validation
# *accuracy* changes much less; on this problem the penalties mainly fix over-confidence.
#
# ## Dropout
#
# Dropout {cite}`srivastava2014` sets each hidden unit to zero with probability $p$ at every training
# step, so that no unit can rely on the presence of particular others; the network behaves like an
# ensemble of thinned networks that share weights. To keep the expected input of the next layer the same
# at training and test time, *inverted* dropout scales the surviving units at training time:
#
# $$
# \tilde h_i = \frac{m_i}{1-p}\,h_i, \quad m_i \sim \text{Bernoulli}(1-p), \qquad
# \mathbb E[\tilde h_i] = h_i; \qquad \text{at evaluation: } \tilde h_i = h_i .
# $$
#
# (The original paper scaled the weights by $1-p$ at test time instead; frameworks all use the inverted
# form, which leaves the evaluation network untouched.) `inverted_dropout` is those few lines; below it is
# compared with `torch.nn.functional.dropout` and, in Keras, with the `Dropout(0.5)` layer.

# %%
x = torch.ones(100_000)
generator = torch.Generator().manual_seed(0)
ours = inverted_dropout(x, p=0.5, training=True, generator=generator)
torchs = F.dropout(x, p=0.5, training=True)
print(f"ours:    zero fraction {(ours == 0).float().mean():.4f}, mean {ours.mean():.4f}, kept values {ours.max():.1f}")
print(f"PyTorch: zero fraction {(torchs == 0).float().mean():.4f}, mean {torchs.mean():.4f}, kept values {torchs.max():.1f}")
print(f"evaluation mode is the identity: {torch.equal(inverted_dropout(x, 0.5, training=False), x)}")

# %%
from companion.quiet import quiet_tensorflow  # noqa: E402

with quiet_tensorflow():  # TensorFlow's C++ start-up messages stay off the page
    import keras  # noqa: E402  (imported here: TensorFlow takes a few seconds to load)

keras.utils.set_random_seed(0)
keras_dropout = keras.layers.Dropout(0.5)
ones = np.ones((1, 100_000), dtype="float32")
keras_train = keras.ops.convert_to_numpy(keras_dropout(ones, training=True))
keras_eval = keras.ops.convert_to_numpy(keras_dropout(ones, training=False))
print(f"Keras:   zero fraction {(keras_train == 0).mean():.4f}, mean {keras_train.mean():.4f}, "
      f"kept values {keras_train.max():.1f}; training=False is the identity: {np.array_equal(keras_eval, ones)}")

# The usual Keras model with dropout (fit() turns it on, predict()/evaluate() turn it off):
keras_model = keras.Sequential([
    keras.Input((28, 28)),
    keras.layers.Flatten(),
    keras.layers.Dense(512, activation="relu"),
    keras.layers.Dropout(0.5),
    keras.layers.Dense(512, activation="relu"),
    keras.layers.Dropout(0.5),
    keras.layers.Dense(10),
])
keras_model.compile(optimizer=keras.optimizers.Adam(1e-3),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
images, labels = load_mnist("train", limit=3_000)  # the same split as NumPy arrays, for Keras
keras_history = keras_model.fit(images[:1_000], labels[:1_000], validation_data=(images[1_000:], labels[1_000:]),
                                epochs=10, batch_size=64, verbose=0)
print(f"Keras MLP with Dropout(0.5), 10 epochs: validation accuracy {keras_history.history['val_accuracy'][-1]:.3f}")

# %% tags=["remove-input"]
for out in (ours, torchs, torch.as_tensor(keras_train)):
    assert abs(float((out == 0).float().mean()) - 0.5) < 0.01 and abs(float(out.mean()) - 1.0) < 0.02
    assert float(out.max()) == 2.0
assert np.array_equal(keras_eval, ones)
assert keras_history.history["val_accuracy"][-1] > 0.85

# %% [markdown]
# **What to notice.** All three implementations zero half of the entries, double the others and keep the
# mean at 1 (within sampling error); at evaluation time all three are the identity. Now the over-fitting
# MLP with `nn.Dropout(0.5)` after each hidden layer (companion's `InvertedDropout(0.5)` is a drop-in
# replacement).

# %%
seed_everything(0)
histories["dropout 0.5"] = train("dropout 0.5", wide_mlp(dropout=0.5))
plot_curves({k: histories[k] for k in ("baseline", "dropout 0.5")},
            "Dropout slows memorisation and lowers the validation loss")

# %% tags=["remove-input"]
assert histories["dropout 0.5"].series("val_loss")[1].min() < histories["baseline"].series("val_loss")[1].min()
assert histories["dropout 0.5"].last("val_loss") < histories["baseline"].last("val_loss")
assert histories["dropout 0.5"].series("train_loss")[1][9] > 2 * base_train_loss[9]  # slower memorisation

# %% [markdown]
# **What to notice.** With dropout the training loss falls more slowly (each step trains a different
# thinned network) and both the best and the final validation loss are lower than the baseline's.
#
# ## Batch normalization: training mode and evaluation mode
#
# Batch normalization {cite}`ioffe2015` standardizes each unit over the mini-batch, then rescales it with
# learned $\gamma, \beta$:
#
# $$
# \hat h_i = \frac{h_i - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}, \qquad y_i = \gamma\hat h_i + \beta,
# $$
#
# with $\mu_B, \sigma_B^2$ the mean and variance of the *current batch* during training. It was introduced to
# ease optimization (chapter 3's conditioning argument, applied to hidden layers) and regularizes as a side
# effect: each example's output depends on the random batch it lands in. At evaluation, the batch
# statistics are replaced by **running averages** collected during training
# ($\mu \leftarrow (1-m)\mu + m\mu_B$, PyTorch's momentum $m = 0.1$), so that a prediction depends on its
# input only. `model.train()` and `model.eval()` switch between the two.

# %%
seed_everything(0)
histories["batch norm"] = train("batch norm", wide_mlp(batch_norm=True))
plot_curves({k: histories[k] for k in ("baseline", "batch norm")},
            "Batch norm: validation loss rises less than the baseline's")

# The classic bug: evaluating in training mode. Small batches that each hold one class (as when a test
# set is sorted by label) are normalised with their own statistics.
bn_model = models["batch norm"]
saved_state = {k: v.clone() for k, v in bn_model.state_dict().items()}  # to undo the damage afterwards
order = torch.argsort(y_val)
eval_mode_accuracy = accuracy(bn_model, x_val, y_val)
running_mean_before = bn_model[2].running_mean.clone()
bn_model.train()  # the bug
correct = 0
with torch.no_grad():
    for i in range(0, len(order), 16):
        batch = order[i : i + 16]
        correct += (bn_model(x_val[batch]).argmax(1) == y_val[batch]).sum().item()
train_mode_accuracy = correct / len(order)
drift = (bn_model[2].running_mean - running_mean_before).abs().max().item()
bn_model.eval()
damaged_accuracy = accuracy(bn_model, x_val, y_val)
print(f"batch-norm model, sorted validation set in batches of 16: eval mode {eval_mode_accuracy:.3f}, "
      f"train mode {train_mode_accuracy:.3f}")
print(f"...and the train-mode passes also overwrote the running mean (largest change {drift:.2f}): "
      f"eval-mode accuracy is now {damaged_accuracy:.3f}")
bn_model.load_state_dict(saved_state)  # back to the trained running statistics

# %% tags=["remove-input"]
assert eval_mode_accuracy > 0.88 and train_mode_accuracy < eval_mode_accuracy - 0.3, (eval_mode_accuracy, train_mode_accuracy)
assert drift > 0.05 and damaged_accuracy < eval_mode_accuracy - 0.03
glue("bn_eval_accuracy", f"{eval_mode_accuracy:.0%}")
glue("bn_train_mode_drop", f"{100 * (eval_mode_accuracy - train_mode_accuracy):.0f} points")
glue("bn_damage", f"{100 * (eval_mode_accuracy - damaged_accuracy):.1f} points")

# %% [markdown]
# **What to notice.** Evaluated correctly (eval mode) the batch-norm network is about as accurate as the
# others ({glue:text}`bn_eval_accuracy`). Evaluated in training mode on batches that each hold one digit,
# it loses {glue:text}`bn_train_mode_drop` of accuracy, more than 30: every batch is re-centred on its own
# mean, which erases exactly what distinguishes its digit (chapter 3's "scale a batch by its own
# statistics" bug, inside the network). Worse, the forward passes in training mode silently *updated the
# running statistics* with those skewed batches, damaging later eval-mode predictions too (by
# {glue:text}`bn_damage` here, more than 3). Always call `model.eval()` before evaluating (and
# `torch.no_grad()` does *not* do it for you); Keras handles it through the `training` argument, set by
# `fit` / `predict`.
#
# ## Batch normalization from scratch, and the learning rates it allows
#
# The forward pass is the formula above, one line per symbol. The backward pass needs more care: $\mu_B$
# and $\sigma_B^2$ depend on every example of the batch, so the gradient with respect to one input
# collects a contribution from every output. For one unit, with $\mathrm dy_i = \partial L/\partial y_i$
# for the $N$ examples of the batch and $\sigma = \sqrt{\sigma_B^2 + \epsilon}$,
#
# $$
# \frac{\partial L}{\partial \beta} = \sum_j \mathrm dy_j, \qquad
# \frac{\partial L}{\partial \gamma} = \sum_j \mathrm dy_j\,\hat h_j, \qquad
# \frac{\partial L}{\partial h_i} = \frac{1}{N}\,\frac{\gamma}{\sigma}\Big(N\,\mathrm dy_i - \sum_j \mathrm dy_j
#   - \hat h_i \sum_j \mathrm dy_j\,\hat h_j\Big).
# $$
#
# The last one is the chain rule through $\hat h_j = (h_j - \mu_B)/\sigma$: since
# $\partial\mu_B/\partial h_i = 1/N$ and $\partial\sigma/\partial h_i = \hat h_i/N$,
# $\partial\hat h_j/\partial h_i = \frac{1}{\sigma}\big(\delta_{ij} - \frac1N - \frac1N\hat h_i\hat h_j\big)$;
# multiply by $\gamma\,\mathrm dy_j$ and sum over $j$. The two subtracted terms remove what the layer cannot
# see: adding a constant to all $h_i$ changes nothing after normalization, and neither (for $\epsilon = 0$)
# does scaling them, so the gradient has no component along those directions ($\sum_i \partial L/\partial h_i = 0$).
# Dropping the last term, as if $\sigma$ were a constant, is the classic slip of a hand-written backward
# pass; a gradient check catches it. In evaluation mode the statistics *are* constants and
# $\partial L/\partial h_i = \gamma\,\mathrm dy_i/\sigma$.
#
# `companion.normalization` holds the two passes as functions (`batch_norm_forward` returns the new
# running statistics rather than changing its arguments; `batch_norm_backward` is the formula above), a
# `torch.autograd.Function` that makes autograd call our backward pass, and `BatchNorm1dFromScratch`, a
# module to use in place of `nn.BatchNorm1d`. Below, five training batches and then one evaluation batch go
# through ours and through PyTorch's layer, in float64 so that any difference beyond rounding would show.

# %%
from companion.normalization import BatchNorm1dFromScratch, batch_norm_backward, batch_norm_forward  # noqa: E402
from companion.training import train_classifier  # noqa: E402

generator = torch.Generator().manual_seed(0)
units = 5
reference = nn.BatchNorm1d(units).double()
gamma = torch.linspace(0.5, 2.0, units, dtype=torch.float64)
beta = torch.linspace(-1.0, 1.0, units, dtype=torch.float64)
with torch.no_grad():
    reference.weight.copy_(gamma)
    reference.bias.copy_(beta)
running_mean, running_var = torch.zeros(units, dtype=torch.float64), torch.ones(units, dtype=torch.float64)
differences = {}


def record(name, ours, theirs):
    differences[name] = max(differences.get(name, 0.0), (ours - theirs).abs().max().item())


for training in (True,) * 5 + (False,):
    reference.train(training)
    h = 3.0 + 2.0 * torch.randn(32, units, dtype=torch.float64, generator=generator)  # far from mean 0, std 1
    grad_out = torch.randn(32, units, dtype=torch.float64, generator=generator)  # some upstream gradient
    h_reference = h.clone().requires_grad_()
    reference.zero_grad()
    reference_out = reference(h_reference)
    reference_out.backward(grad_out)
    out, running_mean, running_var, cache = batch_norm_forward(h, gamma, beta, running_mean, running_var,
                                                               training=training)
    dh, dgamma, dbeta = batch_norm_backward(grad_out, cache)
    mode = "training" if training else "evaluation"
    record(f"{mode}: output", out, reference_out.detach())
    record(f"{mode}: dL/dh", dh, h_reference.grad)
    record(f"{mode}: dL/dgamma, dL/dbeta", torch.cat([dgamma, dbeta]),
           torch.cat([reference.weight.grad, reference.bias.grad]))
    record("running mean and variance", torch.cat([running_mean, running_var]),
           torch.cat([reference.running_mean, reference.running_var]))
print(pd.Series(differences, name="largest |ours - nn.BatchNorm1d|").to_string(float_format="%.1e"))

# %% tags=["remove-input"]
assert all(d < 1e-12 for d in differences.values()), differences
glue("bn_check_max_diff", f"{max(differences.values()):.0e}")

# %% [markdown]
# **What to notice.** Outputs, running statistics and all three gradients agree with `nn.BatchNorm1d`, in
# training and in evaluation mode, to within {glue:text}`bn_check_max_diff`: float64 rounding. The detail
# easiest to get wrong is the running variance: the batch is normalized with its *biased* variance
# ($\frac1N\sum$), but PyTorch feeds the *unbiased* one ($\frac{1}{N-1}\sum$) into the running average.
# Keras uses the biased one there; its `momentum` is the weight of the *old* value (PyTorch's, of the new:
# Keras' 0.99 is PyTorch's 0.01), and its default $\epsilon$ is `1e-3` instead of `1e-5`. Porting a trained
# model needs $\epsilon$ converted; continuing to train it, the momentum too; the variance conventions differ
# only in how the running estimate was built (`tests/test_normalization.py` checks ours against both).
#
# **What batch normalization does to optimization.** It was introduced to speed up training, and the
# property that matters in practice is that it lets SGD use larger learning rates
# {cite}`ioffe2015,bjorck2018`: the loss surface seen by the optimizer is smoother {cite}`santurkar2018`,
# and the output of a normalized layer does not change when its incoming weights are scaled up. We measure
# it on a deeper MLP (784–256–256–256–10, ReLU, PyTorch's default initialization) trained with plain SGD,
# batch 128, for 300 steps on 10,000 training images, with and without `BatchNorm1dFromScratch` before each
# ReLU, over a grid of learning rates and two seeds. A run is called **stable** if its loss stays finite
# for all 300 steps and its mean over the last 50 steps is below half of $\ln 10$ (the loss of a uniform
# guess): it neither blew up nor stalled. A learning rate is stable if the runs of both seeds are.

# %%
x_sweep, y_sweep, *_ = mnist_tensors(10_000, test=0, shape="flat", device=device)
SWEEP_LRS = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
SWEEP_SEEDS = (0, 1)
SWEEP_STEPS, TAIL = 300, 50


def deep_mlp(batch_norm):
    """784 -> 256 -> 256 -> 256 -> 10, ReLU; BatchNorm1dFromScratch before each ReLU if batch_norm."""
    layers, n_in = [], 784
    for _ in range(3):
        layers.append(nn.Linear(n_in, 256))
        if batch_norm:
            layers.append(BatchNorm1dFromScratch(256))
        layers.append(nn.ReLU())
        n_in = 256
    layers.append(nn.Linear(n_in, 10))
    return nn.Sequential(*layers).to(device)


def is_stable(losses):
    """All SWEEP_STEPS losses finite (training stops at the first non-finite one) and a low final loss."""
    return len(losses) == SWEEP_STEPS and losses[-TAIL:].mean() < np.log(10) / 2


sweep = {}  # (label, lr, seed) -> the loss of every step
for label in ("without batch norm", "with batch norm"):
    for lr in SWEEP_LRS:
        for seed in SWEEP_SEEDS:
            seed_everything(seed)
            model = deep_mlp(batch_norm=label == "with batch norm")
            history = train_classifier(model, torch.optim.SGD(model.parameters(), lr=lr), x_sweep, y_sweep,
                                       epochs=4, max_steps=SWEEP_STEPS, batch_size=128, seed=seed, progress=False)
            sweep[label, lr, seed] = history.series("loss")[1]

sweep_table = pd.DataFrame([
    {"model": label, "learning rate": lr,
     "stable (both seeds)": all(is_stable(sweep[label, lr, s]) for s in SWEEP_SEEDS),
     "diverged (seeds)": sum(len(sweep[label, lr, s]) < SWEEP_STEPS or not np.isfinite(sweep[label, lr, s]).all()
                             for s in SWEEP_SEEDS),
     "final loss (mean of seeds)": np.mean([sweep[label, lr, s][-TAIL:].mean() if len(sweep[label, lr, s]) == SWEEP_STEPS
                                            else np.nan for s in SWEEP_SEEDS])}
    for label in ("without batch norm", "with batch norm") for lr in SWEEP_LRS])
largest_stable = sweep_table[sweep_table["stable (both seeds)"]].groupby("model")["learning rate"].max()
plain_table = sweep_table[sweep_table.model == "without batch norm"].set_index("learning rate")
common_lr = plain_table["final loss (mean of seeds)"].idxmin()  # the plain network's best learning rate

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for i, (label, rows) in enumerate(sweep_table.groupby("model", sort=False)):
    shown = rows["final loss (mean of seeds)"].fillna(np.log(10) * 1.5).clip(upper=np.log(10) * 1.5)
    axes[0].plot(rows["learning rate"], shown, "o-", color=f"C{i}", label=label)
    failed = ~rows["stable (both seeds)"]
    axes[0].scatter(rows["learning rate"][failed], shown[failed], marker="x", s=120, color="C3", zorder=3)
    curves = np.array([sweep[label, common_lr, s] for s in SWEEP_SEEDS])
    axes[1].plot(np.arange(1, SWEEP_STEPS + 1), curves.mean(0), color=f"C{i}", label=label)
axes[0].axhline(np.log(10) / 2, color="gray", ls=":", label="stability threshold ($\\ln 10 / 2$)")
axes[0].scatter([], [], marker="x", color="C3", label="not stable (diverged runs drawn at the top)")
axes[0].set_xscale("log")
axes[0].set_yscale("log")
axes[0].set_xlabel("SGD learning rate $\\eta$")
axes[0].set_ylabel(f"training loss, mean of last {TAIL} steps (nats)")
axes[0].set_xticks(SWEEP_LRS, labels=[f"{lr:g}" for lr in SWEEP_LRS])
axes[0].minorticks_off()
axes[0].legend(fontsize=8, loc="upper left")
axes[1].set_yscale("log")
axes[1].set_xlabel("step")
axes[1].set_ylabel("training loss, mean of 2 seeds (nats)")
axes[1].set_title(f"at $\\eta$ = {common_lr:g}, the plain network's best")
axes[1].legend(fontsize=8)
fig.suptitle(f"Batch norm raises the largest stable learning rate from {largest_stable['without batch norm']:g} "
             f"to {largest_stable['with batch norm']:g}", fontweight="bold")
plt.tight_layout()
plt.show()
print(sweep_table.round(3).to_string(index=False))

# %% tags=["remove-input"]
lr_plain, lr_bn = largest_stable["without batch norm"], largest_stable["with batch norm"]
for label, lr_max in largest_stable.items():  # "largest stable": every smaller rate of the grid is stable too
    rows = sweep_table[(sweep_table.model == label) & (sweep_table["learning rate"] <= lr_max)]
    assert rows["stable (both seeds)"].all(), rows
assert lr_bn >= 3 * lr_plain, largest_stable
next_lr = SWEEP_LRS[SWEEP_LRS.index(lr_plain) + 1]
assert plain_table.loc[next_lr, "diverged (seeds)"] >= 1  # one grid step up, the plain network blows up
assert plain_table.loc[SWEEP_LRS[-1], "diverged (seeds)"] == len(SWEEP_SEEDS)
bn_table = sweep_table[sweep_table.model == "with batch norm"].set_index("learning rate")
assert bn_table["diverged (seeds)"].sum() == 0  # with batch norm no run ever produced a non-finite loss
final_plain = plain_table.loc[common_lr, "final loss (mean of seeds)"]
final_bn = bn_table.loc[common_lr, "final loss (mean of seeds)"]
assert final_plain > 3 * final_bn, (final_plain, final_bn)
first_plain = np.mean([sweep["without batch norm", common_lr, s][:TAIL].mean() for s in SWEEP_SEEDS])
first_bn = np.mean([sweep["with batch norm", common_lr, s][:TAIL].mean() for s in SWEEP_SEEDS])
assert first_plain > 2 * first_bn and first_plain > 0.75 * np.log(10), (first_plain, first_bn)
for lr in plain_table.index[plain_table["stable (both seeds)"]]:  # lower wherever the plain network is stable
    assert bn_table.loc[lr, "final loss (mean of seeds)"] < plain_table.loc[lr, "final loss (mean of seeds)"], lr
assert lr_bn < SWEEP_LRS[-1] and not bn_table.loc[SWEEP_LRS[-1], "stable (both seeds)"]  # a limit exists
glue("bn_lr_plain", f"{lr_plain:g}")
glue("bn_lr_bn", f"{lr_bn:g}")
glue("bn_lr_ratio", f"{lr_bn / lr_plain:g}")
glue("bn_lr_next", f"{next_lr:g}")
glue("bn_common_lr", f"{common_lr:g}")
glue("bn_final_plain", f"{final_plain:.3f}")
glue("bn_final_bn", f"{final_bn:.3f}")
glue("bn_final_ratio", f"{final_plain / final_bn:.1f}")
glue("bn_first_plain", f"{first_plain:.2f}")
glue("bn_first_bn", f"{first_bn:.2f}")

# %% [markdown]
# **What to notice.** Without batch normalization SGD is stable up to $\eta$ = {glue:text}`bn_lr_plain`;
# one step up the grid ($\eta$ = {glue:text}`bn_lr_next`) a run blows up (its loss becomes non-finite).
# With it, every rate up to {glue:text}`bn_lr_bn` is stable, {glue:text}`bn_lr_ratio` times larger (the grid
# is coarse: each boundary lies somewhere between two of its points), and no run of the normalized network
# ever produced a non-finite loss; at the top of the grid its loss stays finite but no longer falls far
# enough. At the rate that suits the plain network best ($\eta$ = {glue:text}`bn_common_lr`), the normalized
# one ends with a loss {glue:text}`bn_final_ratio` times smaller ({glue:text}`bn_final_bn` against {glue:text}`bn_final_plain`
# over the last 50 steps), and it is lower at every rate where the plain network is stable. Much of the
# gap opens in the first 50 steps (mean loss {glue:text}`bn_first_bn` against {glue:text}`bn_first_plain`,
# above three quarters of the $\ln 10$ of a guess): with PyTorch's default initialization the signal shrinks from layer to
# layer (chapter 2), and the plain network needs many steps to undo that, while batch normalization
# restores a unit variance at every layer from the first step. The price is a dependence on the batch:
# the network cannot predict one example in training mode, and evaluation needs the running statistics,
# with the bug shown in the previous section.
#
# ## Early stopping
#
# The baseline's best validation loss came early. **Early stopping** {cite}`prechelt1998` monitors it
# after each epoch and stops when it has not improved by more than `min_delta` for `patience` epochs,
# then **restores the weights of the best epoch**, not the last one (forgetting the restore is a common
# slip: Keras' `EarlyStopping` has `restore_best_weights=False` by default). The patience absorbs the
# epoch-to-epoch noise of the validation loss. It costs nothing and it also saves compute.

# %%
seed_everything(0)
stopper = EarlyStopping(patience=5)
histories["early stopping"] = train("early stopping", wide_mlp(), early_stopping=stopper)
es_epochs, es_val_loss = histories["early stopping"].series("val_loss")
restored_val_loss = F.cross_entropy(models["early stopping"].eval()(x_val), y_val).item()

fig, ax = plt.subplots()
ax.plot(base_epochs, base_val_loss, color="C0", label="baseline (30 epochs)")
ax.plot(es_epochs, es_val_loss, color="C1", lw=3, alpha=0.6, label="early stopping, patience 5")
ax.axvline(stopper.best_epoch + 1, color="C2", ls="--", label=f"best epoch ({stopper.best_epoch + 1}): weights restored")
ax.axvline(es_epochs[-1], color="C3", ls=":", label=f"stopped after epoch {int(es_epochs[-1])}")
ax.set_xlabel("epoch")
ax.set_ylabel("validation cross-entropy (nats)")
ax.set_title(f"Early stopping halts at epoch {int(es_epochs[-1])} of {EPOCHS} and keeps the best weights")
ax.legend()
plt.show()
print(f"stopped after {int(es_epochs[-1])} epochs; restored model's validation loss {restored_val_loss:.4f} "
      f"= best recorded {es_val_loss.min():.4f}")

# %% tags=["remove-input"]
assert es_epochs[-1] < EPOCHS and es_epochs[-1] == stopper.best_epoch + 1 + 5
assert abs(restored_val_loss - es_val_loss.min()) < 1e-4
assert np.allclose(es_val_loss, base_val_loss[: len(es_val_loss)], rtol=1e-4)  # same run, just cut short

# %% [markdown]
# **What to notice.** The early-stopping run is the baseline run cut short (the curves coincide, same seed):
# it stops 5 epochs after the best one, well before epoch 30, and the model it returns has exactly the
# best validation loss.
#
# ## Data augmentation, and everything together
#
# Chapter 3's augmentation (random rotations of up to $\pm 12°$, shifts of up to 2 pixels) is a regularizer
# too, and the only one here that adds information (how digits vary). Last, the combination of dropout and
# augmentation. Then every model goes through the test set once.

# %%
seed_everything(0)
histories["augmentation"] = train("augmentation", wide_mlp(), augment=Augmenter(max_degrees=12, max_shift=2, seed=0))
seed_everything(0)
histories["dropout + augmentation"] = train("dropout + augmentation", wide_mlp(dropout=0.5),
                                            augment=Augmenter(max_degrees=12, max_shift=2, seed=0))
plot_curves({k: histories[k] for k in ("baseline", "augmentation", "dropout + augmentation")},
            "Augmentation keeps training and validation curves close together")

# %%
# Each model as training returned it (for early stopping: the restored best epoch).
rows = []
for name, h in histories.items():
    model = models[name].eval()
    with torch.no_grad():
        val_loss = F.cross_entropy(model(x_val), y_val).item()
    rows.append({
        "method": name,
        "epochs": len(h.series("val_accuracy")[1]),
        "train accuracy": accuracy(model, x_train, y_train),
        "best val. accuracy (any epoch)": h.series("val_accuracy")[1].max(),
        "final val. accuracy": accuracy(model, x_val, y_val),
        "final val. loss": val_loss,
        "test accuracy": accuracy(model, x_test, y_test),
    })
table = pd.DataFrame(rows).set_index("method")
print(table.round(3).to_string())
regularized = table.drop(index="baseline")
best = regularized["final val. accuracy"].idxmax()
margin = regularized.loc[best, "final val. accuracy"] - table.loc["baseline", "final val. accuracy"]

fig, ax = plt.subplots(figsize=(7.5, 3.8))
ax.barh(table.index, table["test accuracy"], color=["C3"] + ["C0"] * (len(table) - 1), label="test accuracy")
ax.set_xlim(0.85, 1.0)
ax.set_xlabel("accuracy on the 10,000 test images (fraction)")
ax.set_title(f"Best remedy, {best}: +{100 * margin:.1f} points of validation accuracy")
ax.invert_yaxis()
ax.legend(loc="lower right")
plt.show()

# %% tags=["remove-input"]
assert best == "augmentation" and margin > 0.02, (best, margin)
gaps = table["train accuracy"] - table["final val. accuracy"]
assert gaps["augmentation"] < gaps["baseline"] / 2  # curves closer together
assert table.loc[best, "test accuracy"] > table.loc["baseline", "test accuracy"] + 0.02
glue("best_val_margin", f"{100 * margin:.1f} points")
glue("best_test_margin", f"{100 * (table.loc[best, 'test accuracy'] - table.loc['baseline', 'test accuracy']):.1f} points")
assert all(table.loc[k, "final val. loss"] < table.loc["baseline", "final val. loss"] for k in regularized.index)

# %% [markdown]
# **What to notice.** Every remedy ends with a lower validation loss than the baseline (the "final"
# columns describe each model as training returned it; for early stopping, the restored epoch). In
# accuracy the differences are smaller, and a lower loss does not always mean a higher accuracy (early
# stopping picks the epoch of lowest validation *loss*, not of highest accuracy): the best remedy (named
# in the figure's title) beats the over-fitting baseline by more than 2 points of validation accuracy
# ({glue:text}`best_val_margin`), and by more than 2 points on the test set too
# ({glue:text}`best_test_margin`), which was used for nothing else. Penalties, dropout, batch norm and
# early stopping limit how hard the model fits 1,000 images; augmentation changes what it fits, which is
# why it wins here. In practice they are combined, and their strengths ($\lambda$, $p$, patience,
# augmentation ranges) are tuned on the validation set, never on the test set.
#
# ## Pitfalls
#
# - **L2 in Adam is not weight decay.** `Adam(weight_decay=λ)` adds $\lambda\theta$ to the gradient, which
#   the adaptive scaling then distorts; use `AdamW` for decoupled decay.
# - **Penalizing biases and normalization parameters**: most recipes exclude them (`l2_penalty` does by
#   default; in PyTorch use parameter groups).
# - **Dropout or batch norm left in training mode at evaluation** (forgetting `model.eval()`): noisy
#   predictions, batch-dependent outputs, and corrupted running statistics.
# - **Porting batch norm between PyTorch and Keras** without converting: Keras' `momentum` is one minus
#   PyTorch's, its default $\epsilon$ is `1e-3` (not `1e-5`), and its running variance is the biased one.
# - **Early stopping without restoring the best weights**, or monitoring the training loss. Monitor a
#   validation metric; keep the test set for the very end.
# - **Choosing the regularization strength on the test set**: the reported test score is then optimistic.
#
# ## Summary
#
# | remedy | what it does | knob | `companion.regularization` |
# |---|---|---|---|
# | L2 penalty / weight decay {cite}`krogh1992` | shrinks weights, bounds the logits | $\lambda$ | `l2_penalty` |
# | L1 penalty | pushes weights to zero (sparsity) | $\lambda$ | `l1_penalty` |
# | dropout {cite}`srivastava2014` | trains an ensemble of thinned networks | $p$ | `inverted_dropout`, `InvertedDropout` |
# | batch norm {cite}`ioffe2015` | batch statistics in training, running ones in evaluation; allows larger learning rates | momentum | `companion.normalization.BatchNorm1dFromScratch` |
# | early stopping {cite}`prechelt1998` | stops at the validation minimum, restores it | patience, `min_delta` | `EarlyStopping` |
# | augmentation {cite}`simard2003` | label-preserving random transforms | ranges | `companion.augment.Augmenter` |
#
# Over-fitting shows first in the validation *loss*; every remedy here brought it down, and on this small
# data set the biggest accuracy gain came from augmentation, the one remedy that adds knowledge about the
# data.
#
# ## Exercises
#
# ### Exercise 1 (Implement it): inverted dropout
#
# Write `my_dropout(x, p, training, generator)`: when `training`, zero each entry of the tensor `x`
# independently with probability `p` (draw the mask with `torch.rand(x.shape, generator=generator)`) and
# scale the surviving entries by $1/(1-p)$; when not `training`, return `x` unchanged. Raise a
# `ValueError` if `p` is not in $[0, 1)$. The check compares it with `torch.nn.functional.dropout`'s
# statistics and with `companion.regularization.inverted_dropout`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "regularization-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
def my_dropout(x, p, training=True, generator=None):
    ### BEGIN SOLUTION
    if not 0.0 <= p < 1.0:
        raise ValueError(f"Invalid p: {p} (must be in [0, 1))")
    if not training or p == 0.0:
        return x
    keep = torch.rand(x.shape, generator=generator) >= p
    return x * keep.to(x.device) / (1.0 - p)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "regularization-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
x_check = torch.ones(200_000)
out = my_dropout(x_check, 0.3, training=True, generator=torch.Generator().manual_seed(0))
assert out.shape == x_check.shape, f"dropout keeps the shape: expected {tuple(x_check.shape)}, got {tuple(out.shape)}"
assert abs(float((out == 0).float().mean()) - 0.3) < 0.005, "about a fraction p of the entries must be zero"
assert torch.allclose(out[out != 0], torch.tensor(1 / 0.7)), "survivors are scaled by 1/(1-p)"
assert torch.equal(my_dropout(x_check, 0.3, training=False), x_check), "evaluation mode is the identity"
### BEGIN HIDDEN TESTS
for p in (0.1, 0.5, 0.9):
    mine = my_dropout(x_check, p, True, torch.Generator().manual_seed(1))
    theirs = F.dropout(x_check, p, training=True)
    for o in (mine, theirs):
        assert abs(float((o == 0).float().mean()) - p) < 0.01 and abs(float(o.mean()) - 1.0) < 0.05, f"p={p}: a fraction p of zeros and a mean of about 1 are expected"
    reference = inverted_dropout(x_check, p, True, torch.Generator().manual_seed(1))
    assert torch.allclose(mine, reference), "same generator, same mask as companion's inverted_dropout"
assert torch.equal(my_dropout(x_check, 0.0, True), x_check), "p = 0 must return the input unchanged"
for bad in (1.0, -0.1, 1.5):
    try:
        my_dropout(x_check, bad)
    except ValueError:
        pass
    else:
        raise AssertionError(f"p={bad} must raise ValueError")
x_grad = torch.randn(100, requires_grad=True)
my_dropout(x_grad, 0.5, True, torch.Generator().manual_seed(2)).sum().backward()
assert set(torch.unique(x_grad.grad).tolist()) <= {0.0, 2.0}, "gradients flow through the kept units only"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (Implement it): label smoothing
#
# One more regularizer, for the output layer: **label smoothing** {cite}`szegedy2016` trains against a
# softened target instead of the one-hot label, so that the network is never pushed towards infinitely
# confident logits (the over-confidence that made the baseline's validation loss climb). With $C$ classes
# and smoothing $\varepsilon$, the target of an example with label $y$ is
#
# $$
# q_k = (1-\varepsilon)\,[k = y] + \frac{\varepsilon}{C}, \qquad
# \ell(z, y) = -\sum_{k=1}^{C} q_k \log \operatorname{softmax}(z)_k .
# $$
#
# Write `smoothed_cross_entropy(logits, targets, smoothing)`: `logits` is a float tensor of shape
# $(N, C)$, `targets` an integer tensor of shape $(N,)$ of class indices; return the mean of
# $\ell$ over the $N$ examples as a 0-d tensor that autograd can differentiate. Compute the log-probabilities with
# `torch.log_softmax` (taking the log of `softmax` underflows for large logits). Raise a `ValueError` that
# names `smoothing` if it is not in $[0, 1]$. It must reproduce
# `torch.nn.functional.cross_entropy(logits, targets, label_smoothing=smoothing)`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "regularization-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
def smoothed_cross_entropy(logits, targets, smoothing):
    """Mean cross-entropy against the label-smoothed targets (1 - smoothing) one-hot + smoothing / C."""
    ### BEGIN SOLUTION
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"Invalid smoothing: {smoothing} (must be in [0, 1])")
    log_probs = torch.log_softmax(logits, dim=1)
    n_classes = logits.shape[1]
    nll = -log_probs.gather(1, targets.view(-1, 1)).squeeze(1)
    uniform = -log_probs.sum(dim=1) / n_classes
    return ((1.0 - smoothing) * nll + smoothing * uniform).mean()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "regularization-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error
torch.manual_seed(0)
ex2_logits = torch.randn(8, 10, dtype=torch.float64)
ex2_targets = torch.randint(0, 10, (8,))
ex2_mine = smoothed_cross_entropy(ex2_logits, ex2_targets, 0.1)
ex2_ref = F.cross_entropy(ex2_logits, ex2_targets, label_smoothing=0.1)
assert torch.is_tensor(ex2_mine) and ex2_mine.dim() == 0, f"return a 0-d tensor (the batch mean), got {type(ex2_mine).__name__} of shape {tuple(getattr(ex2_mine, 'shape', ()))}"
assert abs(float(ex2_mine) - float(ex2_ref)) < 1e-12, f"smoothing 0.1: your loss {float(ex2_mine):.6f}, torch's cross_entropy(label_smoothing=0.1) {float(ex2_ref):.6f}"
ex2_plain = smoothed_cross_entropy(ex2_logits, ex2_targets, 0.0)
assert abs(float(ex2_plain) - float(F.cross_entropy(ex2_logits, ex2_targets))) < 1e-12, f"smoothing 0 is the ordinary cross-entropy {float(F.cross_entropy(ex2_logits, ex2_targets)):.6f}, got {float(ex2_plain):.6f}"
### BEGIN HIDDEN TESTS
torch.manual_seed(1)
for ex2_n, ex2_c in ((1, 2), (5, 3), (64, 10), (7, 100)):
    ex2_z = 3 * torch.randn(ex2_n, ex2_c, dtype=torch.float64)
    ex2_y = torch.randint(0, ex2_c, (ex2_n,))
    for ex2_eps in (0.0, 0.05, 0.3, 0.9, 1.0):
        ex2_mine = smoothed_cross_entropy(ex2_z, ex2_y, ex2_eps)
        ex2_ref = F.cross_entropy(ex2_z, ex2_y, label_smoothing=ex2_eps)
        assert abs(float(ex2_mine) - float(ex2_ref)) < 1e-10, f"N={ex2_n}, C={ex2_c}, smoothing {ex2_eps}: your loss {float(ex2_mine):.8f}, torch's {float(ex2_ref):.8f}"
ex2_big = torch.tensor([[1000.0, -1000.0, 0.0], [0.0, 800.0, -800.0]], dtype=torch.float64)
ex2_big_y = torch.tensor([0, 2])
ex2_mine = smoothed_cross_entropy(ex2_big, ex2_big_y, 0.2)
ex2_ref = F.cross_entropy(ex2_big, ex2_big_y, label_smoothing=0.2)
assert torch.isfinite(ex2_mine) and abs(float(ex2_mine) - float(ex2_ref)) < 1e-8, f"logits of +-1000: expected the finite {float(ex2_ref):.4f}, got {float(ex2_mine)} (use log_softmax, not log(softmax))"
ex2_z32 = torch.randn(16, 10)
ex2_y32 = torch.randint(0, 10, (16,))
assert abs(float(smoothed_cross_entropy(ex2_z32, ex2_y32, 0.1)) - float(F.cross_entropy(ex2_z32, ex2_y32, label_smoothing=0.1))) < 1e-5, "float32 logits must work too"
ex2_a = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
ex2_b = ex2_a.detach().clone().requires_grad_(True)
ex2_y = torch.tensor([0, 1, 2, 3, 4, 0])
smoothed_cross_entropy(ex2_a, ex2_y, 0.25).backward()
F.cross_entropy(ex2_b, ex2_y, label_smoothing=0.25).backward()
assert ex2_a.grad is not None and torch.allclose(ex2_a.grad, ex2_b.grad, atol=1e-12), "the gradient with respect to the logits must match torch's (keep the computation in autograd)"
for ex2_bad in (-0.1, 1.5):
    expect_error(lambda: smoothed_cross_entropy(ex2_logits, ex2_targets, ex2_bad), ValueError, "smoothing",
                 when=f"smoothed_cross_entropy(logits, targets, {ex2_bad})")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 (Derive it): the half-life of a decayed weight
#
# SGD with the L2 penalty $\frac{\lambda}{2}\lVert w\rVert^2$ (PyTorch's `SGD(weight_decay=λ)`) multiplies
# the weights by $1 - \eta\lambda$ at every step before the gradient step. Take a weight whose loss
# gradient is zero at every step (a weight the data never uses: a dead unit's, or one attached to an
# always-zero input pixel).
#
# (a) What is the weight after $t$ steps, starting from $w_0$? After how many steps $t_{1/2}$ (a real
# number) has it halved? Write the **half-life** in `decay_half_life(lr, weight_decay)`, and compare it with
# the approximation $\ln 2 / (\eta\lambda)$ for small $\eta\lambda$.
#
# (b) Evaluate it for the ResNet recipe on ImageNet, $\eta = 0.1$, $\lambda = 10^{-4}$, in steps and in
# epochs of 5,005 steps (1.28 million images, batch 256). Does `AdamW(lr=1e-3, weight_decay=1e-2)` decay
# such a weight with the same formula?
#
# (c) With `Adam(lr=η, weight_decay=λ)` (the L2 penalty inside Adam) the same weight's whole gradient is
# $\lambda w$. How does it shrink then, and what does that say about the pitfall "L2 in Adam is not weight
# decay"?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "regularization-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
def decay_half_life(lr, weight_decay):
    """Steps after which (1 - lr * weight_decay)^t = 1/2."""
    ### BEGIN SOLUTION
    return np.log(2.0) / -np.log1p(-lr * weight_decay)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "regularization-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
ex3_half_life = decay_half_life(0.1, 1e-4)
assert abs(ex3_half_life - 69314.37) < 0.1, f"eta = 0.1, lambda = 1e-4: (1 - 1e-5)^t = 1/2 at t = 69314.37 steps, got {ex3_half_life}"
### BEGIN HIDDEN TESTS
for ex3_lr, ex3_wd, ex3_expected in ((0.5, 1.0, 1.0), (0.1, 0.05, 138.28), (0.1, 5e-4, 13862.60)):
    ex3_found = decay_half_life(ex3_lr, ex3_wd)
    assert abs(ex3_found - ex3_expected) < 0.01, f"lr={ex3_lr}, weight_decay={ex3_wd}: expected {ex3_expected} steps, got {ex3_found}"
# the real thing: a weight with zero gradient under torch's SGD(weight_decay) and AdamW
for ex3_make in (lambda p: torch.optim.SGD([p], lr=0.1, weight_decay=0.05),
                 lambda p: torch.optim.AdamW([p], lr=0.1, weight_decay=0.05)):
    ex3_w = torch.ones(1, dtype=torch.float64, requires_grad=True)
    ex3_opt = ex3_make(ex3_w)
    ex3_steps = int(np.floor(decay_half_life(0.1, 0.05)))
    for _ in range(ex3_steps):
        ex3_w.grad = torch.zeros_like(ex3_w)
        ex3_opt.step()
    ex3_above = ex3_w.detach().item()
    ex3_w.grad = torch.zeros_like(ex3_w)
    ex3_opt.step()
    ex3_below = ex3_w.detach().item()
    assert ex3_above > 0.5 > ex3_below, f"{type(ex3_opt).__name__}: the weight should cross 1/2 between steps {ex3_steps} and {ex3_steps + 1}, found {ex3_above:.4f} then {ex3_below:.4f}"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "regularization-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) With $\nabla J = 0$ each step is $w_{t+1} = (1-\eta\lambda)\,w_t$, so $w_t = (1-\eta\lambda)^t\,w_0$:
# geometric decay towards 0. Setting $(1-\eta\lambda)^{t} = \tfrac12$ gives
# $t_{1/2} = \dfrac{\ln 2}{-\ln(1-\eta\lambda)}$. Since $-\ln(1-x) = x + x^2/2 + \dots$, for small
# $\eta\lambda$ this is $\ln 2/(\eta\lambda)$, slightly too large by a relative $\eta\lambda/2$: the
# half-life depends on the product $\eta\lambda$ only.
#
# (b) $\eta\lambda = 10^{-5}$: $t_{1/2} = 69\,314.4$ steps (the approximation gives 69,314.7), about
# 13.8 epochs. Over the usual 90 epochs an unused weight goes through 6.5 half-lives and keeps about 1%
# of its size. (With $\lambda = 5\cdot 10^{-4}$, the value AlexNet and VGG used, at the same $\eta$ the
# half-life would be 13,862.6 steps, under three epochs.) AdamW multiplies the weights by
# $1-\eta\lambda$ before its Adam step, which is zero for a zero gradient, so the same formula holds:
# `AdamW(lr=1e-3, weight_decay=1e-2)` has the same $\eta\lambda = 10^{-5}$, hence the same half-life of
# 69,314 steps. (A schedule that lowers $\eta$ also slows the decay, since it is
# $\eta\lambda$ that counts.)
#
# (c) Adam divides the gradient $\lambda w$ by the square root of its running second moment, about
# $\lambda\lvert w\rvert$: $\lambda$ cancels, and the first steps are close to $\eta\,\operatorname{sign}(w)$
# whatever $\lambda$ is. The weight shrinks *linearly* at first, by about $\eta$ per step, then more slowly as
# $\hat v$ (which remembers the larger past gradients) stays ahead of $(\lambda w)^2$. With $\eta = 10^{-3}$
# and $w_0 = 1$, $\lambda = 10^{-2}$ and $\lambda = 10^{-4}$ give the same trajectory (0.90 after 100 steps,
# 0.26 after 1,000): the strength has disappeared from the behaviour. And for a weight that *does* receive
# data gradients, $\hat v$ is dominated by them, so $\lambda w$ is divided by a large number and the weight is
# barely decayed. The penalty inside Adam is not a decay at rate $\eta\lambda$; AdamW restores it by applying
# the decay outside the adaptive scaling.
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 (Investigate): how patient should early stopping be?
#
# Early stopping needs no retraining to study: replay the recorded validation losses of the baseline and of
# the dropout run through `EarlyStopping(patience=k)` for $k = 0, 1, 2, 3, 5, 10$, and report, for each, the
# epoch at which training would stop, the epoch whose weights would be restored and that epoch's validation
# accuracy. Which patience would you choose for each model, and why does the dropout run need a larger one?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "regularization-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
replay = []
for name in ("baseline", "dropout 0.5"):
    _, losses = histories[name].series("val_loss")
    _, accuracies = histories[name].series("val_accuracy")
    for patience in (0, 1, 2, 3, 5, 10):
        s = EarlyStopping(patience=patience)
        stop = next((epoch for epoch, loss in enumerate(losses) if s.step(loss)), len(losses) - 1)
        replay.append({"model": name, "patience": patience, "stops after epoch": stop + 1,
                       "restored epoch": s.best_epoch + 1, "restored val. accuracy": accuracies[s.best_epoch]})
replay = pd.DataFrame(replay)
print(replay.round(4).to_string(index=False))
baseline_rows, dropout_rows = replay[replay.model == "baseline"], replay[replay.model == "dropout 0.5"]
assert baseline_rows["restored epoch"].nunique() == 1  # one clear minimum: any patience finds it
impatient = dropout_rows[dropout_rows.patience <= 1]["restored val. accuracy"].max()
assert dropout_rows[dropout_rows.patience >= 2]["restored val. accuracy"].min() > impatient + 0.01
### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "regularization-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# For the baseline the validation loss has a clear early minimum (epoch 5 in the recorded run), so every
# patience from 0 to 10 restores that same epoch; a larger patience only costs a few more epochs of compute. The dropout run's validation loss is noisier (each epoch
# trains a different thinned network) and keeps improving slowly for longer, so small patiences stop it on
# a noise bump, before its real minimum, and restore a worse epoch: in the recorded run, patience 0 or 1
# stops after epoch 6 and restores epoch 5, while patience 2 or more finds the better epoch 11 (more than
# one point more validation accuracy). A rule of thumb: the patience should
# cover the typical length of a noisy plateau of the monitored curve (larger for dropout, augmentation or
# small validation sets, or use `min_delta`), and since the best weights are restored, erring on the
# patient side only costs compute, never accuracy.
# :::
# <!-- ### END SOLUTION -->
