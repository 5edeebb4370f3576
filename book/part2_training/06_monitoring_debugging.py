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
# # 6. Monitoring and debugging
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part2_training/06_monitoring_debugging.ipynb)
#
# A neural network that is wrong rarely crashes. It trains a little worse, or not at all, and the
# loss curve alone seldom says why. "Neural net training fails silently" is the first lesson of
# Karpathy's recipe for training neural networks {cite}`karpathy2019`, and the remedy is to look
# inside: at the size of the gradients and of the updates, at what the units output, and, before
# any of that, at whether the gradients are right at all.
#
# This chapter builds the instruments. We record loss and accuracy curves, per-layer gradient
# norms and update ratios; we provoke the classic failures (dead ReLUs, saturated tanh units, a
# learning rate far too large) and watch the instruments catch them; we catch a planted bug in a
# hand-written backward pass with a finite-difference gradient check; and we log everything to
# TensorBoard from PyTorch and from Keras. The tools live in `companion.monitoring`.

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
import torch
import torch.nn as nn

from companion.data import load_mnist
from companion.monitoring import ActivationMonitor, gradient_check, register_health_hooks
from companion.history import History
from companion.plotting import plot_histories, use_course_style
from companion.reproducibility import pick_device, seed_everything
from companion.training import mlp, mnist_tensors

use_course_style()
seed_everything(0)
device = pick_device()
# Small MLPs on 5,000 images: one CPU thread is about as fast as several, and keeps the timings
# steady when other programs share the machine. (On a GPU this changes nothing.)
torch.set_num_threads(1)
print("device:", device)

x_train, y_train, x_val, y_val, _, _ = mnist_tensors(5000, val=1000, test=0, shape="flat", device=device)
print("training images:", tuple(x_train.shape), " validation images:", tuple(x_val.shape))

# %% [markdown]
# ## 6.1 What to record
#
# Four kinds of numbers say most of what can go wrong in a run:
#
# - the **loss** on each mini-batch, and the **accuracy** on held-out data every so often;
# - the **gradient norm** $\|g_\ell\|$ of each parameter tensor $\ell$: exploding or vanishing
#   gradients show here first (chapter 5);
# - the **update ratio** of each parameter tensor, the length of the step relative to the weights,
#
# $$
# r_\ell = \frac{\|\theta_\ell^{(t+1)} - \theta_\ell^{(t)}\|}{\|\theta_\ell^{(t)}\|}
#        \;\overset{\text{SGD}}{=}\; \frac{\eta\,\|g_\ell\|}{\|\theta_\ell^{(t)}\|};
# $$
#
#   a common rule of thumb puts healthy values around $10^{-3}$: much smaller and the layer barely
#   moves, near $10^{-1}$ or more and each step rewrites a good part of the weights;
# - **activation statistics** per layer: the mean and spread of each layer's outputs, the fraction
#   of **dead** ReLU units (zero for every example of the batch, so they get no gradient and never
#   recover) and the fraction of **saturated** tanh or sigmoid outputs (near $\pm 1$, or 0 and 1,
#   where the derivative $1 - \tanh^2$ is almost zero).
#
# `register_health_hooks(model)` attaches forward hooks that measure the activations at every
# training forward pass; `with monitor.watch_step(): optimizer.step()` records the gradient norms
# before the step and the update ratios after it; `monitor.measurements()` returns all of them as a
# flat dict, ready for `History.log`. Here is the loop of this chapter.

# %%
def train_monitored(lr, activation="relu", hidden_bias=0.0, init_std=None, steps=300, seed=0, name=None):
    """Train a 784-128-64-10 MLP with SGD; log loss, validation accuracy and the health measurements."""
    torch.manual_seed(seed)
    model = mlp((784, 128, 64, 10), activation).to(device)
    with torch.no_grad():  # the initializations that the experiments below get wrong on purpose
        for layer in [m for m in model if isinstance(m, nn.Linear)][:-1]:
            layer.bias.fill_(hidden_bias)
            if init_std is not None:
                layer.weight.normal_(0.0, init_std)
    monitor = register_health_hooks(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    history = History(name or f"lr = {lr}")
    batches = torch.Generator().manual_seed(seed)
    for step in range(1, steps + 1):
        batch = torch.randint(0, len(x_train), (64,), generator=batches).to(device)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
        loss.backward()
        with monitor.watch_step():
            optimizer.step()
        history.log(step, loss=loss.item(), **monitor.measurements())
        if step % 25 == 0:
            model.eval()  # evaluation passes are not recorded by the monitor
            with torch.no_grad():
                history.log(step, val_accuracy=(model(x_val).argmax(1) == y_val).float().mean().item())
            model.train()
    monitor.remove()
    return history


runs = {f"lr = {lr}": train_monitored(lr) for lr in [0.01, 0.1, 2.0]}
healthy = runs["lr = 0.1"]
print("recorded series:", len(healthy.keys()), "e.g.", [k for k in healthy.keys() if k.startswith(("update", "2/"))][:5])
for label, h in runs.items():
    print(f"{label:10s} final validation accuracy {h.last('val_accuracy'):.3f}")

# %%
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.2))
plot_histories(runs, "loss", ax=ax_loss, smooth=10, ylabel="cross-entropy (10-step mean)",
               title="Too small and too large learning rates stall")
plot_histories(runs, "val_accuracy", ax=ax_acc, ylabel="validation accuracy",
               title="lr = 0.1 reaches the best accuracy")
plt.show()

# %% tags=["remove-input"]
acc = {label: h.last("val_accuracy") for label, h in runs.items()}
assert acc["lr = 0.1"] > 0.8 and acc["lr = 0.1"] > acc["lr = 0.01"] + 0.2 and acc["lr = 0.1"] > acc["lr = 2.0"] + 0.2

# %% [markdown]
# The loss curves tell us that two of the runs go badly, not why. The update ratios and the
# activation statistics do.

# %%
fig, (ax_ratio, ax_dead) = plt.subplots(1, 2, figsize=(12, 4.2))
for color, (label, h) in zip(["C0", "C1", "C2"], runs.items()):
    steps, ratio = h.series("update_ratio/1.weight")
    ax_ratio.semilogy(steps, ratio, color=color, label=label)
    ax_dead.plot(*h.series("2/dead_fraction"), color=color, label=label)
ax_ratio.axhline(1e-3, color="gray", ls="--", label="rule of thumb $10^{-3}$")
ax_ratio.set(xlabel="optimizer step", ylabel=r"update ratio $\|\Delta W_1\| / \|W_1\|$",
             title="Update ratios separate the three runs")
ax_dead.set(xlabel="optimizer step", ylabel="fraction of dead units in layer 1",
            title="lr = 2 kills almost every ReLU")
ax_ratio.legend()
ax_dead.legend()
plt.show()

# %%
def early_late(history, key):
    values = history.series(key)[1]
    return values[:10].mean(), values[-50:].mean()


for label, h in runs.items():
    (r0, r1), (d0, d1) = early_late(h, "update_ratio/1.weight"), early_late(h, "2/dead_fraction")
    print(f"{label:10s} update ratio of W1: first 10 steps {r0:.1e}, last 50 {r1:.1e};  "
          f"dead units in layer 1: {d0:.0%} -> {d1:.0%}")

# %% tags=["remove-input"]
ratio = {label: early_late(h, "update_ratio/1.weight") for label, h in runs.items()}
dead = {label: early_late(h, "2/dead_fraction") for label, h in runs.items()}
assert ratio["lr = 0.01"][1] < 1e-3 and 1e-3 < ratio["lr = 0.1"][1] < 5e-2  # too small / healthy
assert ratio["lr = 2.0"][0] > 0.1  # the first steps rewrite a good part of the weights
assert dead["lr = 2.0"][1] > 0.8 and dead["lr = 0.1"][1] < 0.1

# %% [markdown]
# **What to notice.**
# - At $\eta = 0.01$ the first layer's update ratio stays below $10^{-3}$: every step changes the
#   weights by less than a thousandth, and 300 steps are not enough to learn much.
# - At $\eta = 0.1$ it rises from about $3 \times 10^{-3}$ to about $10^{-2}$. The rule of thumb is a
#   guide, not a law: for plain SGD with small batches, values up to about $10^{-2}$ are common in
#   healthy runs.
# - At $\eta = 2$ the first steps change the weights by tens of percent of their norm. They push many
#   pre-activations below zero for *every* input: within a few dozen steps almost all ReLUs of the
#   first layer are dead. A dead unit gets zero gradient, so nothing brings it back, and the update
#   ratio then falls because the dead layers stop moving: a small ratio late in a run can mean a
#   broken network, not a calm one. The loss curve showed only a plateau.

# %% [markdown]
# ## 6.2 Dead ReLUs and saturated units at initialization
#
# The same failures come from a bad initialization. A ReLU layer whose biases start at $-1$,
# with MNIST pixels in $[0, 1]$ and PyTorch's default weights (uniform in $\pm 1/\sqrt{784}$),
# has all pre-activations negative: every unit is dead from the first step. A tanh network whose
# weights are drawn with standard deviation 1 (instead of about $1/\sqrt{\text{fan-in}}$) sums
# hundreds of inputs into pre-activations of size 10 or more: most units are saturated at
# $\pm 1$. Chapter 2 of this part is about choosing the initialization; here we only detect it.

# %%
bad_init = {
    "ReLU, biases -1": train_monitored(0.1, hidden_bias=-1.0),
    "tanh, default init": train_monitored(0.1, activation="tanh"),
    "tanh, weights std 1": train_monitored(0.1, activation="tanh", init_std=1.0),
}
for label, h in bad_init.items():
    stats = {k.split("/")[1]: round(float(h.series(k)[1][:10].mean()), 3) for k in h.keys() if k.startswith("2/")}
    print(f"{label:20s} layer 1 (first 10 steps): {stats}   val accuracy {h.last('val_accuracy'):.3f}")

# %%
fig, ax = plt.subplots()
for label in ["tanh, default init", "tanh, weights std 1"]:
    for layer, style in [("2", "-"), ("4", ":")]:
        steps, saturated = bad_init[label].series(f"{layer}/saturated_fraction")
        ax.plot(steps, saturated, style, label=f"{label}, tanh layer {1 if layer == '2' else 2}")
ax.set(xlabel="optimizer step", ylabel=r"fraction of outputs with $|\tanh| > 0.99$", ylim=(-0.02, 1),
       title="With weights of std 1, most tanh units are saturated")
ax.legend()
plt.show()

# %% tags=["remove-input"]
relu_dead, tanh_ok, tanh_big = bad_init["ReLU, biases -1"], bad_init["tanh, default init"], bad_init["tanh, weights std 1"]
assert relu_dead.series("2/dead_fraction")[1].min() == 1.0 and relu_dead.series("4/dead_fraction")[1].min() == 1.0
assert relu_dead.series("update_ratio/1.weight")[1].max() == 0.0  # dead layers never move
assert relu_dead.last("val_accuracy") < 0.2
assert relu_dead.series("update_ratio/5.weight")[1].max() == 0.0 and relu_dead.series("update_ratio/5.bias")[1].min() > 0
relu_dead_losses = relu_dead.series("loss")[1]
assert relu_dead_losses[-50:].mean() < relu_dead_losses[:5].mean()  # the loss still falls a little
assert tanh_big.series("2/saturated_fraction")[1].min() > 0.6 and tanh_ok.series("2/saturated_fraction")[1].max() < 0.05
assert tanh_ok.last("val_accuracy") > tanh_big.last("val_accuracy") + 0.1

# %% [markdown]
# **What to notice.**
# - With biases at $-1$ every ReLU of both hidden layers is dead on every batch, the hidden weights'
#   update ratio is exactly 0, and only the output bias learns: the network predicts the most
#   frequent class. The loss falls a little (the bias learns the class frequencies), which is
#   easy to mistake for slow training.
# - With weights of standard deviation 1, well over half of the tanh outputs are beyond $\pm 0.99$
#   and stay there: their derivative is below $0.02$, and the network learns much more slowly than
#   with the default initialization, where almost no unit saturates.

# %% [markdown]
# ## 6.3 Gradient checking
#
# Before trusting any curve, check that the gradients are right. When you write a backward pass by
# hand (a custom layer, a `torch.autograd.Function`, a loss in NumPy), compare it with the
# **central difference** ({cite}`goodfellow2016`, section 11.5)
#
# $$
# \frac{\partial f}{\partial x_i} \approx \frac{f(x + \epsilon e_i) - f(x - \epsilon e_i)}{2\epsilon},
# $$
#
# whose error is $O(\epsilon^2)$, and report the **relative** error
# $\max_i |g_i - \hat g_i| / \max(|g_i|, |\hat g_i|)$, which does not depend on the scale of the
# loss. In float64 with $\epsilon = 10^{-6}$ a correct gradient gives about $10^{-7}$ or less; a
# bug gives something near 1. (Do it in float64: in float32 the rounding error of $f$, divided by
# $2\epsilon$, swamps the comparison.) `companion.monitoring.gradient_check(f, grad_f, x)` does this;
# the tests check it against `torch.autograd.gradcheck`.
#
# A 2-layer network in NumPy, with a hand-written backward pass and, optionally, a planted bug:
# the backward pass forgets the derivative of the ReLU.

# %%
def two_layer_loss_and_grads(params, X, y, planted_bug=False):
    """Softmax cross-entropy of relu(X W1 + b1) W2 + b2, and its gradient, written by hand."""
    W1, b1, W2, b2 = params
    z1 = X @ W1 + b1
    h = np.maximum(z1, 0.0)
    logits = h @ W2 + b2
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    n = len(X)
    loss = -np.log(p[np.arange(n), y]).mean()
    d_logits = p.copy()
    d_logits[np.arange(n), y] -= 1.0
    d_logits /= n
    dW2, db2 = h.T @ d_logits, d_logits.sum(axis=0)
    dh = d_logits @ W2.T
    dz1 = dh if planted_bug else dh * (z1 > 0)  # the bug: the ReLU's derivative is forgotten
    dW1, db1 = X.T @ dz1, dz1.sum(axis=0)
    return loss, [dW1, db1, dW2, db2]


check_rng = np.random.default_rng(0)
X_small, y_small = check_rng.standard_normal((20, 5)), check_rng.integers(0, 3, 20)
params0 = [check_rng.standard_normal((5, 8)) * 0.5, check_rng.standard_normal(8) * 0.1,
           check_rng.standard_normal((8, 3)) * 0.5, check_rng.standard_normal(3) * 0.1]
param_names = ["W1", "b1", "W2", "b2"]


def check_each_parameter(planted_bug):
    """The relative error of each parameter's hand-written gradient."""
    errors = {}
    for i, name in enumerate(param_names):
        def f(value, i=i):
            return two_layer_loss_and_grads(params0[:i] + [value] + params0[i + 1:], X_small, y_small)[0]

        def grad_f(value, i=i):
            return two_layer_loss_and_grads(params0[:i] + [value] + params0[i + 1:], X_small, y_small, planted_bug)[1][i]

        errors[name] = gradient_check(f, grad_f, params0[i], eps=1e-6)
    return errors


correct_errors, buggy_errors = check_each_parameter(False), check_each_parameter(True)
print("relative error, correct backward:", {k: f"{v:.1e}" for k, v in correct_errors.items()})
print("relative error, planted bug:     ", {k: f"{v:.1e}" for k, v in buggy_errors.items()})

# %% tags=["remove-input"]
assert max(correct_errors.values()) < 1e-6
assert buggy_errors["W1"] > 1e-2 and buggy_errors["b1"] > 1e-2  # the bug is caught...
assert buggy_errors["W2"] < 1e-6 and buggy_errors["b2"] < 1e-6  # ...and located in the first layer

# %% [markdown]
# **What to notice.** The correct backward pass agrees with the finite differences to about seven
# digits for every parameter. With the bug, the errors of $W_1$ and $b_1$ jump to order 1 while
# those of $W_2$ and $b_2$ stay tiny: checking each parameter tensor separately does not only say
# *that* something is wrong but *where*, here in the backward pass of the first layer. Practical
# advice: check on a few examples and a small network (the check costs two forward passes per
# parameter), in float64, with no dropout or other randomness in $f$, and avoid points where a
# ReLU input is exactly 0 (a kink, where the finite difference straddles two slopes).

# %% [markdown]
# ## 6.4 TensorBoard from PyTorch and from Keras
#
# Printing and plotting in the notebook works for one run; for many runs, or runs on a remote
# machine, TensorBoard is the standard viewer. Both frameworks write the same *event files*. In
# PyTorch, `torch.utils.tensorboard.SummaryWriter` writes what you ask it to (it needs the
# `tensorboard` package); in Keras the `keras.callbacks.TensorBoard` callback writes the losses and
# metrics of `fit` (with the TensorFlow backend). We write both into a temporary folder and read the
# files back, to check what was logged.

# %%
import os  # noqa: E402  (imported here: only this section needs them)
import tempfile  # noqa: E402

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.util.tensor_util import make_ndarray  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402

log_dir = tempfile.mkdtemp(prefix="course-tensorboard-")
writer = SummaryWriter(os.path.join(log_dir, "torch_lr0.1"))
for step in range(25, 301, 25):  # the healthy run of section 6.1, replayed into TensorBoard
    writer.add_scalar("loss/train", healthy.series("loss")[1][step - 1], step)
    writer.add_scalar("accuracy/val", healthy.series("val_accuracy")[1][step // 25 - 1], step)
    writer.add_scalar("update_ratio/1.weight", healthy.series("update_ratio/1.weight")[1][step - 1], step)
writer.close()

torch_events = EventAccumulator(os.path.join(log_dir, "torch_lr0.1")).Reload()
print("PyTorch scalars:", torch_events.Tags()["scalars"])
logged_accuracy = [(e.step, round(e.value, 3)) for e in torch_events.Scalars("accuracy/val")]
print("accuracy/val:", logged_accuracy[:4], "...")

# %% tags=["remove-input"]
assert set(torch_events.Tags()["scalars"]) == {"loss/train", "accuracy/val", "update_ratio/1.weight"}
assert len(logged_accuracy) == 12 and logged_accuracy[-1][0] == 300
assert abs(logged_accuracy[-1][1] - healthy.last("val_accuracy")) < 1e-3

# %%
from companion.quiet import quiet_tensorflow  # noqa: E402

with quiet_tensorflow():  # TensorFlow's C++ start-up messages stay off the page
    import keras  # noqa: E402

keras.utils.set_random_seed(0)
keras_model = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)])
keras_model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
images, labels = load_mnist("train", limit=6000)  # the same split as NumPy arrays, for Keras
keras_model.fit(images[:5000].reshape(5000, -1), labels[:5000], validation_data=(images[5000:].reshape(1000, -1), labels[5000:]),
                batch_size=64, epochs=3, verbose=0, callbacks=[keras.callbacks.TensorBoard(os.path.join(log_dir, "keras"))])

keras_logged = {}
for subset in ["train", "validation"]:  # the callback writes one run per subset
    events = EventAccumulator(os.path.join(log_dir, "keras", subset)).Reload()
    for tag in ["epoch_loss", "epoch_accuracy"]:  # Keras writes them as tensors, not legacy scalars
        keras_logged[f"{subset}/{tag}"] = [round(float(make_ndarray(e.tensor_proto)), 3) for e in events.Tensors(tag)]
for key, values in keras_logged.items():
    print(f"{key:28s} {values}")

# %% tags=["remove-input"]
assert all(len(v) == 3 for v in keras_logged.values())
assert keras_logged["train/epoch_loss"][2] < keras_logged["train/epoch_loss"][0]
assert keras_logged["validation/epoch_accuracy"][2] > 0.85

# %% [markdown]
# A notebook cannot show the TensorBoard interface here, but you can open it yourself. In Colab or
# Jupyter, run
#
# ```
# %load_ext tensorboard
# %tensorboard --logdir /path/to/logs
# ```
#
# (with the folder printed by `print(log_dir)`); on your own machine, `tensorboard --logdir
# /path/to/logs` in a terminal, then open http://localhost:6006. Each subfolder is one run, so
# runs can be compared side by side. Two details that trip people up: PyTorch's writer buffers
# events, so call `writer.flush()` or `writer.close()` before looking; and in Keras the scalars are
# called `epoch_loss`, `epoch_accuracy` (per epoch; pass `update_freq=N` for every $N$ batches).

# %% [markdown]
# ## Pitfalls
#
# - **Reading only the loss.** A plateau can be a too-small learning rate, dead units, or a bug;
#   the update ratios and activation statistics tell them apart (section 6.1).
# - **Activation statistics measured in evaluation mode** (or on the validation set) are not the
#   ones the training steps see when the network has dropout or batch normalization. The
#   `companion` monitor records only training passes.
# - **A falling update ratio late in training is not always good news**: dead layers stop moving too.
# - **Gradient checks in float32**, or with $\epsilon$ far too small ($10^{-10}$: rounding) or too
#   large ($10^{-2}$: truncation), or with randomness (dropout) inside $f$, report errors that are
#   not there. Use float64, $\epsilon \approx 10^{-6}$, and a fixed seed.
# - **Absolute errors in a gradient check** depend on the scale of the loss; use the relative error.

# %% [markdown]
# ## Summary
#
# - Record the loss, held-out accuracy, per-layer gradient norms and update ratios, and activation
#   statistics; `companion.monitoring.register_health_hooks` does it for any torch model, into a
#   `History` the plotting helpers draw.
# - An update ratio around $10^{-3}$–$10^{-2}$ was healthy here; $10^{-1}$ and above at the start
#   means too large a learning rate, which in a ReLU network kills most units.
# - Biases initialized at $-1$ killed every ReLU; tanh weights of standard deviation 1 saturated most
#   units. The monitors show both at the first step, long before the loss curve gives them away.
# - A finite-difference gradient check in float64 accepts a correct hand-written backward pass
#   (relative error below $10^{-6}$) and catches a planted bug (order 1), parameter by parameter.
# - PyTorch's `SummaryWriter` and Keras' `TensorBoard` callback write event files that TensorBoard
#   shows and that `EventAccumulator` can read back.

# %% [markdown]
# ## Exercises
#
# ### Exercise 1 (Implement it): the fraction of dead units
#
# Write `dead_unit_fraction(activations)`: `activations` is a NumPy array of shape
# `(batch, units)` holding the outputs of a ReLU layer on one batch. Return the fraction of units
# that are 0 for *every* example of the batch (a float in $[0, 1]$). The check compares it with
# `companion.monitoring.ActivationMonitor` on a small model.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "debug-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
def dead_unit_fraction(activations):
    ### BEGIN SOLUTION
    activations = np.asarray(activations)
    return float(np.mean(np.all(activations <= 0, axis=0)))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "debug-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert dead_unit_fraction(np.array([[0.0, 1.0], [0.0, 0.0]])) == 0.5, f"one of two units is zero for every example: expected 0.5, got {dead_unit_fraction(np.array([[0.0, 1.0], [0.0, 0.0]]))}"
torch.manual_seed(3)
probe = nn.Sequential(nn.Linear(6, 10), nn.ReLU())
with torch.no_grad():
    probe[0].bias.copy_(torch.linspace(-3.0, 1.0, 10))
probe_input = torch.randn(32, 6)
with ActivationMonitor(probe) as probe_monitor:
    probe_output = probe(probe_input)
assert abs(dead_unit_fraction(probe_output.detach().numpy()) - probe_monitor.stats["1"]["dead_fraction"]) < 1e-9, "your fraction differs from ActivationMonitor's dead_fraction on the same activations"
### BEGIN HIDDEN TESTS
assert dead_unit_fraction(np.zeros((4, 3))) == 1.0, "all zeros: every unit is dead (1.0)"
assert dead_unit_fraction(np.ones((4, 3))) == 0.0, "all positive: no unit is dead (0.0)"
# One active example is enough to keep a unit alive.
almost = np.zeros((5, 4))
almost[2, 1] = 0.1
assert dead_unit_fraction(almost) == 0.75, "a unit is dead only when it is zero for every example: 3 of 4 here"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (Implement it): the central-difference gradient
#
# Write `central_difference_gradient(f, x, eps=1e-6)`, the finite-difference half of a gradient check
# (section 6.3): `f` takes a float64 NumPy array of the shape of `x` and returns a scalar; `x` is an
# array of any shape (or a list, possibly of integers). Work on a float64 copy of `x`, never modify the
# caller's array, and return a float64 array of the shape of `x` whose entry $i$ is
#
# $$
# \hat g_i = \frac{f(x + \epsilon e_i) - f(x - \epsilon e_i)}{2\epsilon},
# $$
#
# one coordinate at a time ($2n$ calls of `f`). Raise a `ValueError` that names `eps` if it is not a
# positive number. In float64 it must agree with the gradient that `torch.autograd` computes for a small
# network to a relative error below $10^{-8}$, and with `companion.monitoring.numerical_gradient`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "debug-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
def central_difference_gradient(f, x, eps=1e-6):
    """Central-difference estimate of the gradient of the scalar function f at x (float64)."""
    ### BEGIN SOLUTION
    if not eps > 0:
        raise ValueError(f"Invalid eps: {eps} (must be positive)")
    point = np.array(x, dtype=np.float64)
    grad = np.empty_like(point)
    flat, out = point.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        f_plus = float(f(point.copy()))
        flat[i] = saved - eps
        f_minus = float(f(point.copy()))
        flat[i] = saved
        out[i] = (f_plus - f_minus) / (2.0 * eps)
    return grad
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "debug-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error
torch.manual_seed(0)
ex2_net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
ex2_X = torch.randn(5, 3, dtype=torch.float64)
ex2_y = torch.tensor([0, 1, 1, 0, 1])


def ex2_loss(W):
    """The network's cross-entropy as a function of its first weight matrix W (a float64 tensor)."""
    return nn.functional.cross_entropy(ex2_net[2](torch.tanh(ex2_X @ W.T + ex2_net[0].bias)), ex2_y)


ex2_W = ex2_net[0].weight.detach().clone().requires_grad_(True)
(ex2_autograd,) = torch.autograd.grad(ex2_loss(ex2_W), ex2_W)
ex2_point = ex2_W.detach().numpy().copy()
ex2_numeric = central_difference_gradient(lambda w: ex2_loss(torch.as_tensor(w)).item(), ex2_point)
assert isinstance(ex2_numeric, np.ndarray) and ex2_numeric.shape == (4, 3), f"return an array of the shape of x, (4, 3); got {type(ex2_numeric).__name__} of shape {np.shape(ex2_numeric)}"
assert np.array_equal(ex2_point, ex2_W.detach().numpy()), "the caller's x must not be modified (work on a copy)"
ex2_err = float(np.max(np.abs(ex2_numeric - ex2_autograd.numpy())) / np.max(np.abs(ex2_autograd.numpy())))
assert ex2_err < 1e-8, f"relative error {ex2_err:.1e} against torch.autograd's gradient, expected below 1e-8 (central differences, float64)"
### BEGIN HIDDEN TESTS
from companion.monitoring import numerical_gradient  # noqa: E402

ex2_rng = np.random.default_rng(0)
ex2_A = ex2_rng.standard_normal((6, 6))
ex2_x = ex2_rng.standard_normal((2, 3))
ex2_x_before = ex2_x.copy()


def ex2_quadratic(v):
    flat = v.reshape(-1)
    return 0.5 * flat @ ex2_A @ flat + np.sin(flat).sum()


for ex2_eps in (1e-6, 1e-4):
    ex2_mine = central_difference_gradient(ex2_quadratic, ex2_x, eps=ex2_eps)
    ex2_ref = numerical_gradient(ex2_quadratic, ex2_x, eps=ex2_eps)
    assert ex2_mine.shape == ex2_x.shape and ex2_mine.dtype == np.float64, f"expected a float64 array of shape {ex2_x.shape}, got {ex2_mine.dtype} of shape {ex2_mine.shape}"
    assert np.allclose(ex2_mine, ex2_ref, rtol=1e-9, atol=1e-12), f"eps={ex2_eps}: your estimate differs from companion's numerical_gradient by up to {np.max(np.abs(ex2_mine - ex2_ref)):.1e}"
assert np.array_equal(ex2_x, ex2_x_before), "the caller's x must not be modified"
ex2_exact = (0.5 * (ex2_A + ex2_A.T) @ ex2_x.reshape(-1) + np.cos(ex2_x.reshape(-1))).reshape(2, 3)
ex2_found = central_difference_gradient(ex2_quadratic, ex2_x)
assert np.max(np.abs(ex2_found - ex2_exact)) < 1e-8, f"on a quadratic plus sines the estimate must be within 1e-8 of the exact gradient, off by {np.max(np.abs(ex2_found - ex2_exact)):.1e}"
ex2_int = central_difference_gradient(lambda v: float(np.sum(v**2)), [1, 2, 3])
assert np.allclose(ex2_int, [2.0, 4.0, 6.0], atol=1e-8), f"x = [1, 2, 3] (integers) and f = sum of squares: expected [2, 4, 6], got {ex2_int} (convert x to float64)"
ex2_scalar_like = central_difference_gradient(lambda v: float(np.exp(v[0])), np.array([0.0]))
assert abs(ex2_scalar_like[0] - 1.0) < 1e-8, f"d/dx exp(x) at 0 is 1, got {ex2_scalar_like[0]}"
ex2_p = torch.randn(3, dtype=torch.float64, requires_grad=True)
(ex2_auto,) = torch.autograd.grad(torch.tanh(ex2_X @ ex2_p).pow(2).sum(), ex2_p)
ex2_num = central_difference_gradient(lambda v: torch.tanh(ex2_X @ torch.as_tensor(v)).pow(2).sum().item(), ex2_p.detach().numpy())
assert np.allclose(ex2_num, ex2_auto.numpy(), rtol=1e-7, atol=1e-9), "a second function: your estimate disagrees with torch.autograd"
for ex2_bad in (0.0, -1e-6):
    expect_error(lambda: central_difference_gradient(ex2_quadratic, ex2_x, eps=ex2_bad), ValueError, "eps",
                 when=f"central_difference_gradient(f, x, eps={ex2_bad})")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 (Derive it): the loss at initialization
#
# "Verify the loss at initialization" is one of the first checks of Karpathy's recipe: before any training,
# a classifier's cross-entropy $\ell = -z_y + \log\sum_k e^{z_k}$ is predictable.
#
# (a) A classifier over $C$ classes starts with all logits equal (for example a zero output layer). What is
# its loss on any example? Evaluate it for the 10 digits of MNIST.
#
# (b) With a small random initialization the logits are not equal but small: take $z_1, \dots, z_C$
# independent and symmetric about 0 (Gaussian, say), with standard deviation $\sigma \ll 1$. Expand
# $\log\sum_k e^{z_k}$ to second order around $z = 0$ and show that the expected loss is about $\ln C + \frac{C-1}{2C}\sigma^2$. Write it in
# `expected_initial_loss(n_classes, logit_std)`.
#
# (c) One network's first mini-batch loss on MNIST is 9.7; another's is 0.4, before any step. What does each
# number tell you, and what would you look at first?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "debug-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
def expected_initial_loss(n_classes, logit_std):
    """Expected cross-entropy of C classes with small i.i.d. logits of standard deviation logit_std (2nd order)."""
    ### BEGIN SOLUTION
    return np.log(n_classes) + (n_classes - 1) / (2 * n_classes) * logit_std**2
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "debug-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
ex3_loss = expected_initial_loss(10, 0.1)
assert abs(ex3_loss - 2.3070851) < 1e-6, f"10 classes, logits of standard deviation 0.1: expected 2.307085, got {ex3_loss}"
### BEGIN HIDDEN TESTS
for ex3_c, ex3_std, ex3_expected in ((10, 0.0, 2.3025851), (2, 0.2, 0.7031472), (100, 0.5, 4.7289202), (1000, 0.0, 6.9077553)):
    ex3_found = expected_initial_loss(ex3_c, ex3_std)
    assert abs(ex3_found - ex3_expected) < 1e-6, f"C={ex3_c}, sigma={ex3_std}: expected {ex3_expected:.6f}, got {ex3_found}"
# the real thing: torch's cross-entropy on random small logits
ex3_gen = torch.Generator().manual_seed(0)
for ex3_c, ex3_std in ((2, 0.2), (10, 0.3)):
    ex3_z = ex3_std * torch.randn(200_000, ex3_c, dtype=torch.float64, generator=ex3_gen)
    ex3_measured = nn.functional.cross_entropy(ex3_z, torch.zeros(200_000, dtype=torch.long)).item()
    ex3_found = expected_initial_loss(ex3_c, ex3_std)
    assert abs(ex3_found - ex3_measured) < 2e-3, f"C={ex3_c}, sigma={ex3_std}: torch measures an average initial loss of {ex3_measured:.4f}, your formula gives {ex3_found}"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "debug-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) Equal logits give the uniform distribution, $p_y = 1/C$, so $\ell = -\ln(1/C) = \ln C$ whatever the
# label: $\ln 10 \approx 2.303$ nats for MNIST. The MLPs of this chapter, with PyTorch's default
# initialization, indeed start within a few thousandths of 2.30.
#
# (b) Write $\bar z = \frac1C\sum_k z_k$. To second order, $e^{z_k} \approx 1 + z_k + z_k^2/2$, so
# $\sum_k e^{z_k} \approx C\,(1 + \bar z + \frac{1}{2C}\sum_k z_k^2)$ and, with $\log(1+u) \approx u - u^2/2$,
#
# $$
# \log\sum_k e^{z_k} \approx \ln C + \bar z + \frac{1}{2C}\sum_k z_k^2 - \frac{\bar z^2}{2}
# = \ln C + \bar z + \frac{1}{2C}\sum_k (z_k - \bar z)^2 .
# $$
#
# Taking expectations, $\mathbb E[z_y] = \mathbb E[\bar z] = 0$ and
# $\mathbb E\bigl[\sum_k (z_k - \bar z)^2\bigr] = (C-1)\sigma^2$, so
# $\mathbb E[\ell] \approx \ln C + \frac{C-1}{2C}\sigma^2$ (the odd terms vanish by symmetry, so the error is
# of order $\sigma^4$). Small random logits cost very little above $\ln C$: $\sigma = 0.1$ adds 0.0045 for
# 10 classes.
#
# (c) A loss of 9.7 is far above $\ln 10$: the logits start large (several units), so the network is
# confidently wrong on most examples. Look at the scale of the output layer's weights (an initialization
# with too large a gain, or no $1/\sqrt{\text{fan-in}}$), and at the inputs (pixels in $[0, 255]$ instead of
# $[0, 1]$, chapter 3). Training will first spend steps shrinking the logits (a "hockey-stick" loss curve),
# and large pre-activations also saturate or kill hidden units (section 6.2). A loss of 0.4 before any
# training is *better than chance*, which an untrained network cannot be: the labels leak into the inputs,
# the weights were loaded from a trained model, or the loss is computed wrongly (for instance averaged
# over the wrong axis, or fed probabilities where logits are expected). In both cases, stop and find the
# cause before tuning anything. (With unbalanced classes, initializing the output biases to the log class
# frequencies gives a starting loss equal to the entropy of the labels, below $\ln C$, and is a good idea.)
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 (Investigate): how negative can the biases start?
#
# Using `train_monitored`, train the ReLU network of section 6.1 ($\eta = 0.1$, 300 steps) with
# the hidden biases initialized at $0$, $-0.1$, $-0.2$ and $-0.5$. For each, report the fraction of
# dead units in each hidden layer over the first 10 steps, and the final validation accuracy. At
# which bias does the network stop learning, and which layer dies first? Explain with the
# pre-activation $w^\top x + b$ of a unit at initialization and the size of each layer's inputs.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "debug-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
bias_sweep = {b: train_monitored(0.1, hidden_bias=b, name=f"bias {b}") for b in [0.0, -0.1, -0.2, -0.5]}
dead_at_start = {}
for b, h in bias_sweep.items():
    dead_at_start[b] = (early_late(h, "2/dead_fraction")[0], early_late(h, "4/dead_fraction")[0])
    print(f"bias {b:5}: dead units at the start: layer 1 {dead_at_start[b][0]:4.0%}, layer 2 {dead_at_start[b][1]:4.0%};"
          f"  val accuracy {h.last('val_accuracy'):.3f}")
assert bias_sweep[-0.1].last("val_accuracy") > 0.8 and bias_sweep[-0.2].last("val_accuracy") < 0.2
assert dead_at_start[-0.2][1] > 0.99 and dead_at_start[-0.2][0] < 0.5  # the second layer dies first
### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "debug-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# The network still learns with biases at $-0.1$ and stops learning at $-0.2$ (accuracy of the
# most frequent class), although most units of the *first* layer are still alive there: it is the
# second layer that dies first, entirely. At initialization a unit's pre-activation is
# $w^\top x + b$ with $w$ uniform in $\pm 1/\sqrt{\text{fan-in}}$. In the first layer $x$ holds the
# pixels (about 100 bright ones per image), so $w^\top x$ spreads by about $0.2$ around zero and a
# bias of $-0.2$ kills only the units that rarely reach it. The second layer's inputs are the first
# layer's ReLU outputs, much smaller and fewer, so its $w^\top x$ spreads by only a few hundredths:
# a bias of $-0.2$ is beyond the reach of every unit. One fully dead layer blocks all gradient to the
# layers below, so nothing recovers. The safe choice for ReLU networks is a zero (or slightly
# positive) bias; a look at the dead fraction of every layer at the first step costs nothing.
# :::
# <!-- ### END SOLUTION -->
