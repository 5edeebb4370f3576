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
# # 1. Learning-rate schedules
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part2_training/01_learning_rate_schedules.ipynb)
#
# Part I treated the learning rate $\eta$ as a constant. Stochastic gradient descent does not converge
# with one: the mini-batch noise keeps the iterate bouncing in a ball around the minimum whose
# squared radius (the expected squared distance, or the excess loss) is proportional to $\eta$, its
# radius to $\sqrt\eta$, so a rate large enough to make fast progress early is too large to settle at the end. The
# classical theory (Robbins and Monro's $\sum_t \eta_t = \infty$, $\sum_t \eta_t^2 < \infty$) asks for a
# rate that *decays*. Practice adds two twists: a short *warm-up* at the start, when the weights are
# random and large steps are dangerous, and, sometimes, *restarts* or a *cycle* that push the rate back up
# for a while.
#
# This chapter covers
#
# * step decay and exponential decay, and the Keras `LearningRateScheduler` recipe that mixes them;
# * cosine annealing and its warm restarts (SGDR, {cite}`loshchilov2017`);
# * linear warm-up {cite}`goyal2017` and the one-cycle policy {cite}`smith2019`;
# * the learning-rate range test {cite}`smith2017`, which picks a rate for the MNIST network in one short run;
# * all of them training the same network with the same budget.
#
# Every schedule is a pure function of the step count in `companion.schedules`; any `companion.optim`
# optimizer takes one as its `learning_rate`. The tests check each against `torch.optim.lr_scheduler` and
# `keras.optimizers.schedules`.

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

from companion import optim, schedules
from companion.data import load_mnist
from companion.glue import glue
from companion.plotting import plot_histories, use_course_style
from companion.reproducibility import pick_device, seed_everything
from companion.training import accuracy, mlp, mnist_tensors, train_classifier

use_course_style()
seed_everything(0)
# The network is small: one thread avoids thread start-up costs and makes CPU runs reproducible.
torch.set_num_threads(1)
device = pick_device()

# 20,000 training images and the full 10,000-image test set.
x_train, y_train, _, _, x_test, y_test = mnist_tensors(20_000, device=device)

# %% [markdown]
# ## A schedule is a function of the step
#
# A schedule maps the number of optimizer steps already taken, $t = 0, 1, 2, \dots$, to the rate used
# for the next one; SGD becomes
#
# $$
# \theta_{t+1} = \theta_t - \eta_t\, g_t, \qquad \eta_t = s(t).
# $$
#
# In `companion` a schedule is exactly that, a Python function. `optim.sgd(schedule)` calls it with its
# own step counter, so nothing needs to be "stepped" by hand. (With `torch.optim.lr_scheduler` you call
# `scheduler.step()` yourself, and whether you do it once per batch or once per epoch changes the
# schedule by a factor of several hundred; Keras' `schedules` count optimizer steps, its
# `LearningRateScheduler` callback counts epochs.) The shapes this chapter covers, over a run of 1,000
# steps with a peak rate of 0.1:

# %%
T = 1000
shapes = {
    "step decay (×0.1 every 300)": schedules.step_decay(0.1, 300, 0.1),
    "exponential (×0.01 over the run)": schedules.exponential_decay(0.1, 0.01 ** (1 / T)),
    "cosine": schedules.cosine_decay(0.1, T),
    "SGDR (periods 100, 200, 400)": schedules.cosine_annealing_warm_restarts(0.1, 100, 2),
    "warm-up 100 + cosine": schedules.linear_warmup(schedules.cosine_decay(0.1, T - 100), 100),
    "one-cycle": schedules.one_cycle(0.1, T),
}
steps = np.arange(T)
fig, axes = plt.subplots(2, 3, figsize=(11, 5.5), sharex=True, sharey=True)
for ax, (name, schedule) in zip(axes.flat, shapes.items()):
    ax.plot(steps, [schedule(t) for t in steps], label=name)
    ax.set_title(name, fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
for ax in axes[1]:
    ax.set_xlabel("optimizer step $t$")
for ax in axes[:, 0]:
    ax.set_ylabel(r"learning rate $\eta_t$")
fig.suptitle("Six schedules, one peak rate: they differ in where they spend the large steps", fontweight="bold")
fig.tight_layout()
plt.show()

# %% tags=["remove-input"]
one_cycle_curve = np.array([shapes["one-cycle"](t) for t in steps])
assert int(np.argmax(one_cycle_curve)) == 299 and one_cycle_curve.max() == 0.1
sgdr_curve = np.array([shapes["SGDR (periods 100, 200, 400)"](t) for t in steps])
assert sgdr_curve[100] == sgdr_curve[300] == sgdr_curve[700] == 0.1  # the restarts
assert abs(shapes["exponential (×0.01 over the run)"](T) - 1e-3) < 1e-12

# %% [markdown]
# ## Step decay and exponential decay
#
# The oldest recipe divides the rate by 10 every few epochs ("step decay"; `torch.optim.lr_scheduler.StepLR`),
# the smooth version multiplies it by a constant factor every step:
#
# $$
# \eta_t = \eta_0\, \gamma^{\lfloor t/s \rfloor} \quad\text{(step)}, \qquad
# \eta_t = \eta_0\, r^{\,t/T} \quad\text{(exponential; staircase: } r^{\lfloor t/T\rfloor}).
# $$
#
# Keras' documentation shows the callback version, which mixes the two: keep the rate for the first
# ten epochs, then multiply it by $e^{-0.1}$ at the start of every epoch. Its example, as printed there,
# computes the factor with TensorFlow, `lr * tf.math.exp(-0.1)`. Here it is, unchanged, on a small
# Keras model (importing Keras with its TensorFlow backend takes several seconds):

# %%
from companion.quiet import quiet_tensorflow  # noqa: E402

with quiet_tensorflow():  # TensorFlow's C++ start-up messages stay off the page
    import keras  # noqa: E402  (imported here: it is slow, and only this section needs it)
    import tensorflow as tf  # noqa: E402


def scheduler(epoch, lr):
    if epoch < 10:
        return lr
    else:
        return lr * tf.math.exp(-0.1)


def small_keras_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)]
    )
    # The last layer outputs logits, so the loss must be told: from_logits=True.
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


images, labels = load_mnist("train", limit=2000)  # Keras takes the NumPy arrays
snippet_model = small_keras_model()
try:
    snippet_model.fit(images, labels, batch_size=100, epochs=20, verbose=0,
                      callbacks=[keras.callbacks.LearningRateScheduler(scheduler)])
    snippet_error = None
except ValueError as error:
    snippet_error = error
epochs_done = len(snippet_model.history.history["loss"])
print(f"{type(snippet_error).__name__} after {epochs_done} epochs: {snippet_error}")

# %% tags=["remove-input"]
assert snippet_error is not None and "should be a float" in str(snippet_error)
assert epochs_done == 10  # "stops after ten epochs, when the schedule first multiplies"

# %% [markdown]
# Keras 3 refuses it: the schedule must return a Python float, and `tf.math.exp` returns a tensor, so
# training stops with a `ValueError` after ten epochs, when the schedule first multiplies. The fix is to compute the factor with `math.exp` (or `float(...)` the result). With it,
# we record the rate Keras used in each epoch and compare it with `schedules.exponential_decay`:

# %%
def scheduler(epoch, lr):
    """The documentation's example with a Python float: math.exp instead of tf.math.exp."""
    if epoch < 10:
        return lr
    return lr * math.exp(-0.1)


keras_model = small_keras_model()
keras_history = keras_model.fit(
    images, labels, batch_size=100, epochs=20, verbose=0,
    callbacks=[keras.callbacks.LearningRateScheduler(scheduler)],
)
keras_lr = np.array(keras_history.history["learning_rate"])
ours_lr = np.array([schedules.exponential_decay(0.1, math.exp(-0.1), transition_begin=9)(e) for e in range(20)])

fig, (ax_lr, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
epochs = np.arange(20)
ax_lr.plot(epochs, keras_lr, "o", label="Keras LearningRateScheduler")
ax_lr.plot(epochs, ours_lr, "-", label="exponential_decay(transition_begin=9)")
ax_lr.axvline(9.5, color="gray", ls=":", lw=1)
ax_lr.set_xlabel("epoch (0-based, as Keras passes it)")
ax_lr.set_ylabel("learning rate")
ax_lr.set_title("Ten epochs at 0.1, then ×exp(−0.1) per epoch")
ax_lr.legend()
ax_loss.plot(epochs, keras_history.history["loss"], "o-", label="Keras, SGD(0.1) + the callback")
ax_loss.set_xlabel("epoch")
ax_loss.set_ylabel("training loss (epoch mean)")
ax_loss.set_title("The small Keras model trains under the schedule")
ax_loss.legend()
fig.tight_layout()
plt.show()

# %% tags=["remove-input"]
assert np.allclose(keras_lr, ours_lr, rtol=1e-6), (keras_lr, ours_lr)  # Keras stores the rate in float32
assert np.all(keras_lr[:10] == keras_lr[0]) and keras_lr[10] < keras_lr[9]
assert keras_history.history["loss"][-1] < 0.5 * keras_history.history["loss"][0]

# %% [markdown]
# **What to notice.** Keras' `epoch` is 0-based, so "`epoch < 10`" keeps the rate for epochs 0–9 and the
# first decay already applies at epoch 10: the pure-function equivalent starts the exponential after
# *nine* steps of the epoch counter (`transition_begin=9`), a classic off-by-one when porting a schedule.
# The callback also multiplies *whatever rate the optimizer has*: resume training from a checkpoint with
# `initial_epoch=30` and a freshly built optimizer, and the rate jumps back to 0.1. A pure function of the
# step has no such memory.
#
# ## Cosine annealing and warm restarts
#
# Cosine annealing spends more steps near both ends than a linear decay: it leaves the peak slowly,
# crosses the middle fast and lands softly on the floor $\alpha\eta_0$:
#
# $$
# \eta_t = \eta_0\Big(\alpha + (1-\alpha)\,\tfrac12\big(1 + \cos(\pi t/T)\big)\Big), \qquad 0 \le t \le T.
# $$
#
# {cite:t}`loshchilov2017` restart it: after a period $T_i$ the rate jumps back to $\eta_0$ and the next
# period is $T_{i+1} = m\,T_i$ (SGDR, "SGD with warm restarts"). Each restart gives the iterate a kick out
# of the current basin, and each low point is a good snapshot to keep. PyTorch's `CosineAnnealingLR`
# climbs back up after $T_{max}$ instead of stopping, a second, implicit kind of restart; Keras'
# `CosineDecay` stays at the floor, and so does `schedules.cosine_decay`.
#
# ## Warm-up
#
# At step 0 the weights are random and the gradient statistics of adaptive methods are not yet estimated;
# a large rate there can send the network to a bad region it never leaves. {cite:t}`goyal2017` trained
# ResNet-50 with mini-batches of 8,192 images by scaling the rate linearly with the batch size *and*
# ramping it up linearly over the first five epochs:
#
# $$
# \eta_t = \eta^\star\big(f + (1-f)\,t/W\big) \quad (t < W), \qquad \text{then the main schedule, shifted by } W.
# $$
#
# `schedules.linear_warmup(after, W, start_factor=f)` puts a ramp in front of any schedule. The frameworks
# disagree on where the ramp starts: `torch.optim.lr_scheduler.LinearLR` defaults to $f = 1/3$, Keras'
# `CosineDecay(warmup_target=..., warmup_steps=...)` starts from its `initial_learning_rate` (often 0).
#
# ## One-cycle
#
# {cite:t}`smith2019` found that one long cycle, up to a rate larger than any constant rate that trains
# and then far below the start, can train several times faster ("super-convergence"). PyTorch's
# `OneCycleLR`, which `schedules.one_cycle` reproduces with the same defaults, goes from
# $\eta_{max}/25$ up to $\eta_{max}$ over the first {fixed}`30%` of the steps and anneals to $\eta_{max}/(25\cdot10^4)$,
# both halves along cosines (the paper used a symmetric, linear triangle, `three_phase=True,
# anneal_strategy="linear"`). PyTorch also cycles the momentum, down to 0.85 while the rate is high and
# back to 0.95; `companion.optim.sgd` keeps its momentum fixed.
#
# ## Finding the rate: the range test
#
# Every schedule above needs a peak rate. {cite:t}`smith2017` proposed to find it in one short run: start
# tiny, multiply the rate by a constant factor after every mini-batch,
#
# $$
# \eta_t = \eta_{min}\,(\eta_{max}/\eta_{min})^{t/(N-1)},
# $$
#
# and watch the (smoothed) loss. It stays flat while the rate is too small to matter, falls once it
# starts to work, and explodes when it is too large. `schedules.lr_range_test` runs it on a fresh model,
# here the MNIST network `mlp()` (784-128-10) trained by `optim.sgd(lr, momentum=0.9)` through the torch
# adapter, and suggests one tenth of the rate at the loss minimum (the minimum itself is already on the
# edge of divergence).

# %%
def mnist_mlp():
    torch.manual_seed(0)
    return mlp().to(device)


def sgd_momentum(learning_rate):
    return optim.sgd(learning_rate, momentum=0.9)


finder_lrs, finder_losses, suggested_lr = schedules.lr_range_test(
    mnist_mlp, sgd_momentum, x_train, y_train, min_lr=1e-4, max_lr=10.0, num_steps=200, batch_size=128
)
lr_at_minimum = finder_lrs[np.argmin(finder_losses)]

fig, ax = plt.subplots()
ax.semilogx(finder_lrs, finder_losses, label="smoothed training loss")
ax.axvline(lr_at_minimum, color="C3", ls=":", label=f"minimum of the loss, η = {lr_at_minimum:.2f}")
ax.axvline(suggested_lr, color="C2", ls="--", label=f"suggestion (a tenth), η = {suggested_lr:.3f}")
ax.set_xlabel("learning rate η (log scale)")
ax.set_ylabel("training loss (cross-entropy, smoothed)")
ax.set_title(f"The range test: the loss falls fastest a decade below the blow-up ({len(finder_lrs)} steps)")
ax.legend()
plt.show()
print(f"suggested learning rate: {suggested_lr:.3f}; the test stopped after {len(finder_lrs)} of 200 steps")

# %% tags=["remove-input"]
assert 0.03 < suggested_lr < 0.3, suggested_lr
assert len(finder_lrs) < 200  # the loss blew up before max_lr: the test stopped early
assert finder_losses[-1] > 2 * finder_losses.min()

# %% [markdown]
# The range test took well under two epochs' worth of mini-batches. Does the rate it suggests train?
# Three epochs at the suggested constant rate:

# %%
BATCH, EPOCHS = 128, 3
total_steps = EPOCHS * math.ceil(len(x_train) / BATCH)


def run(learning_rate, name):
    model = mnist_mlp()
    history = train_classifier(
        model, sgd_momentum(learning_rate), x_train, y_train, epochs=EPOCHS, batch_size=BATCH, seed=0,
        progress=False, name=name,
    )
    history.meta["test_accuracy"] = accuracy(model, x_test, y_test)
    return history


assert total_steps == 471
constant_run = run(suggested_lr, f"constant {suggested_lr:.3f}")
print(f"test accuracy after {EPOCHS} epochs at the suggested rate: {constant_run.meta['test_accuracy']:.4f}")

# %% tags=["remove-input"]
assert constant_run.meta["test_accuracy"] > 0.94, constant_run.meta
glue("constant_test_accuracy", f"{constant_run.meta['test_accuracy']:.1%}")

# %% [markdown]
# {glue:text}`constant_test_accuracy` test accuracy after three epochs, above 94%, with no tuning beyond
# one 200-step sweep.
#
# ## The schedules at an equal budget
#
# Now every schedule trains the same network from the same initial weights on the same batches, for the
# same 3 epochs (471 steps). The constant run uses the suggested
# rate; the schedules use a peak three times higher, which they can afford because they spend only part of
# the run there (the constant rate at that peak does worse than the suggestion, as the first run shows).

# %%
peak = 3 * suggested_lr
schedule_runs = {"constant (suggested)": suggested_lr, "constant (3× suggested)": peak}
schedule_runs.update({
    "step decay": schedules.step_decay(peak, total_steps // 3, 0.1),
    "exponential": schedules.exponential_decay(peak, 0.01 ** (1 / total_steps)),
    "cosine": schedules.cosine_decay(peak, total_steps),
    "SGDR (3 periods)": schedules.cosine_annealing_warm_restarts(peak, total_steps // 3),
    "warm-up + cosine": schedules.linear_warmup(schedules.cosine_decay(peak, total_steps * 9 // 10), total_steps // 10),
    "one-cycle": schedules.one_cycle(peak, total_steps),
})
histories = {}
for name, learning_rate in schedule_runs.items():
    histories[name] = run(learning_rate, name)
    print(f"{name:>24}: last-epoch training loss {histories[name].last('train_loss'):.4f}, "
          f"test accuracy {histories[name].meta['test_accuracy']:.4f}")

# %%
fig, (ax_lr, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.5))
for name, learning_rate in schedule_runs.items():
    rate = learning_rate if callable(learning_rate) else schedules.constant(learning_rate)
    ax_lr.plot(np.arange(total_steps), [rate(t) for t in range(total_steps)], label=name)
ax_lr.set_xlabel("optimizer step")
ax_lr.set_ylabel("learning rate η")
ax_lr.set_title("The rate each run used")
ax_lr.legend(fontsize=8)
plot_histories(histories, "loss", ax=ax_loss, smooth=50, logy=True, ylabel="training loss (running mean of 50 batches)",
               title="Decaying to a small rate is what lowers the final loss")
ax_loss.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% tags=["remove-input"]
final = {name: h.last("train_loss") for name, h in histories.items()}
acc = {name: h.meta["test_accuracy"] for name, h in histories.items()}
for name in ("cosine", "warm-up + cosine", "one-cycle"):
    assert final[name] < 0.8 * final["constant (suggested)"], (name, final)
    assert acc[name] > acc["constant (suggested)"], (name, acc)
assert final["constant (3× suggested)"] > final["cosine"]
assert all(a > 0.94 for a in acc.values()), acc
smallest_cut = 1 - max(final[n] for n in ("cosine", "warm-up + cosine", "one-cycle")) / final["constant (suggested)"]
glue("smallest_loss_cut", f"{math.floor(100 * smallest_cut)}%")  # rounded down: "at least" stays true

# %% [markdown]
# **What to notice.**
#
# * The schedules that end at a small rate (cosine, warm-up + cosine, one-cycle) finish the third epoch
#   with a training loss at least {glue:text}`smallest_loss_cut` below the constant rate's (more than 20%),
#   and a slightly higher test accuracy (too little to rank them among themselves).
#   The gain comes from the *end* of the schedule: the loss curves separate once the rate falls.
# * Raising a constant rate to the schedules' peak does not help: it is the combination of large early
#   steps and small late ones that works.
# * SGDR ends its last period at a low rate too, but its restarts cost progress in a run this short;
#   restarts pay off in longer runs and when you keep the snapshots.
# * On a 3-epoch MNIST run the differences are a point or two; on long ImageNet-scale runs they are the
#   difference between a tuned and an untuned baseline, which is why every modern recipe has a schedule.
#
# ## Pitfalls that popular snippets get wrong
#
# * **Stepping the PyTorch scheduler at the wrong frequency.** `OneCycleLR(total_steps=epochs *
#   len(loader))` must be stepped every *batch*; stepping it per epoch leaves the rate at its starting
#   $\eta_{max}/25$ forever, and stepping it more than `total_steps` times raises an error. `StepLR(step_size=30)`
#   from ImageNet recipes means 30 *epochs*.
# * **Calling `scheduler.step()` before `optimizer.step()`.** PyTorch warns, because the first value of
#   the schedule is skipped.
# * **Off-by-one between epoch counters.** See the Keras callback above: "the first ten epochs" are
#   epochs 0–9.
# * **Warm-up that starts at zero, with a multiplicative rule.** With a pure function, a first step at
#   $\eta = 0$ is merely wasted; a rule that multiplies the *current* rate (like the Keras callback) stays at
#   zero forever.
# * **Trusting the range test's minimum.** The rate at the loss minimum is on the edge of divergence;
#   the suggestion takes a tenth of it, and the best constant rate depends on the batch size and the
#   momentum the test was run with.
#
# ## Summary
#
# A schedule is a function $t \mapsto \eta_t$. Step and exponential decay divide the rate by fixed
# factors; cosine annealing decays it smoothly to a floor, and SGDR restarts it; linear warm-up protects
# the first steps; one-cycle goes up, then far down. The range test picks the peak rate in one short run.
# On MNIST, at an equal budget, ending at a small rate lowered the training loss by at least
# {glue:text}`smallest_loss_cut` (more than 20%) and raised the test accuracy over the best constant rate. `companion.schedules` implements each schedule as
# a pure function that matches `torch.optim.lr_scheduler` and `keras.optimizers.schedules` to float precision.
#
# ## Exercises
#
# ### Exercise 1 — Implement it: the inverse square-root schedule
#
# The original Transformer used a linear warm-up followed by a decay proportional to $1/\sqrt{t}$. Write
# `inverse_sqrt_schedule(peak, warmup_steps)` returning a schedule (a function of the step count
# $t = 0, 1, \dots$) with, for $s = t + 1$,
#
# $$
# \eta_t = \eta_{peak}\,\min\!\big(s/W,\ \sqrt{W/s}\big).
# $$
#
# It rises linearly to $\eta_{peak}$ at $s = W$ and decays as $1/\sqrt s$ afterwards. Reject a negative
# `peak` or a `warmup_steps` below 1 with a `ValueError` naming the argument.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "schedules-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
def inverse_sqrt_schedule(peak, warmup_steps):
    """Linear warm-up to `peak` over `warmup_steps` steps, then peak * sqrt(warmup_steps / s)."""
    ### BEGIN SOLUTION
    if peak < 0:
        raise ValueError(f"Invalid peak: {peak} (must be >= 0)")
    if warmup_steps < 1:
        raise ValueError(f"Invalid warmup_steps: {warmup_steps} (must be >= 1)")

    def schedule(step):
        s = step + 1
        return peak * min(s / warmup_steps, math.sqrt(warmup_steps / s))

    return schedule
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "schedules-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error
s = inverse_sqrt_schedule(1.0, 100)
assert abs(s(99) - 1.0) < 1e-12, "the peak is reached at s = W, i.e. step W - 1"
assert abs(s(0) - 0.01) < 1e-12, "the ramp starts at peak / W"
assert abs(s(399) - 0.5) < 1e-12, "four times later the rate has halved"
### BEGIN HIDDEN TESTS
values = np.array([inverse_sqrt_schedule(0.5, 40)(t) for t in range(400)])
assert np.all(np.diff(values[:40]) > 0) and np.all(np.diff(values[39:]) < 0), "the rate must rise during the warm-up and fall after it"
assert np.allclose(values[39:], 0.5 * np.sqrt(40 / np.arange(40, 401))), "after the warm-up the rate must be peak * sqrt(W / s)"
# it drives a companion optimizer: SGD on f(x) = x^2/2 multiplies x by (1 - lr_t) per step
opt = optim.sgd(inverse_sqrt_schedule(0.5, 4))
x, state = np.array([1.0]), opt.init(np.array([1.0]))
for _ in range(10):
    updates, state = opt.update(x, state, x)
    x = optim.apply_updates(x, updates)
assert abs(x[0] - np.prod([1 - inverse_sqrt_schedule(0.5, 4)(t) for t in range(10)])) < 1e-12, "driven by optim.sgd, the schedule is called with the step count t = 0, 1, 2, ...: after 10 steps on x^2/2, x must equal the product of (1 - schedule(t))"
for bad_args, name in (((-1.0, 10), "peak"), ((0.1, 0), "warmup_steps")):
    expect_error(lambda: inverse_sqrt_schedule(*bad_args), ValueError, name, when=f"inverse_sqrt_schedule{bad_args}")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 — Implement it: cosine annealing with warm restarts
#
# Write `sgdr_schedule(eta_max, T_0, T_mult=1, eta_min=0.0)` returning a schedule (a function of the
# step count $t = 0, 1, \dots$) that reproduces `torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
# optimizer, T_0, T_mult, eta_min)` for an optimizer whose rate is `eta_max`, stepped once per optimizer
# step. The periods are $T_i = T_0\, T_{mult}^{\,i}$, $i = 0, 1, \dots$, one after the other; if step $t$
# lies $t_{cur}$ steps into period $i$ (so $0 \le t_{cur} < T_i$),
#
# $$
# \eta_t = \eta_{min} + (\eta_{max} - \eta_{min})\,\tfrac12\big(1 + \cos(\pi\, t_{cur}/T_i)\big).
# $$
#
# The rate starts at $\eta_{max}$ and jumps back to it at $t = T_0$, $T_0 + T_0 T_{mult}$, and so on.
# As torch does, reject a `T_0` or a `T_mult` that is not an integer $\ge 1$ with a `ValueError` naming
# the argument. Write it from the formula, without `schedules.cosine_annealing_warm_restarts`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "schedules-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
def sgdr_schedule(eta_max, T_0, T_mult=1, eta_min=0.0):
    """SGDR (Loshchilov & Hutter, 2017): cosine from eta_max to eta_min over periods T_0 * T_mult**i."""
    ### BEGIN SOLUTION
    if not isinstance(T_0, int) or T_0 < 1:
        raise ValueError(f"Invalid T_0: {T_0} (must be an integer >= 1)")
    if not isinstance(T_mult, int) or T_mult < 1:
        raise ValueError(f"Invalid T_mult: {T_mult} (must be an integer >= 1)")

    def schedule(step):
        t_cur, period = step, T_0
        while t_cur >= period:  # walk the periods: exact in integers, unlike a logarithm
            t_cur -= period
            period *= T_mult
        return eta_min + (eta_max - eta_min) * 0.5 * (1.0 + math.cos(math.pi * t_cur / period))

    return schedule
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "schedules-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error


def ex2_torch_rates(eta_max, T_0, T_mult, eta_min, num_steps):
    """The rates torch's CosineAnnealingWarmRestarts gives at steps 0, ..., num_steps - 1."""
    param = torch.nn.Parameter(torch.zeros(1))
    torch_opt = torch.optim.SGD([param], lr=eta_max)
    torch_sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(torch_opt, T_0=T_0, T_mult=T_mult, eta_min=eta_min)
    rates = []
    for _ in range(num_steps):
        rates.append(torch_sched.get_last_lr()[0])
        torch_opt.step()
        torch_sched.step()
    return np.array(rates)


ex2_s = sgdr_schedule(1.0, 10)
assert abs(ex2_s(0) - 1.0) < 1e-12, f"step 0 must be at eta_max = 1.0, got {ex2_s(0)}"
assert abs(ex2_s(5) - 0.5) < 1e-12, f"half-way through the first period the rate is (eta_max + eta_min) / 2 = 0.5, got {ex2_s(5)}"
assert abs(ex2_s(10) - 1.0) < 1e-12, f"at t = T_0 = 10 the rate restarts at eta_max = 1.0, got {ex2_s(10)}"
ex2_mine = np.array([sgdr_schedule(0.1, 5, 2, 0.01)(t) for t in range(40)])
ex2_ref = ex2_torch_rates(0.1, 5, 2, 0.01, 40)
ex2_worst = int(np.argmax(np.abs(ex2_mine - ex2_ref)))
assert np.allclose(ex2_mine, ex2_ref, rtol=0, atol=1e-12), f"T_0=5, T_mult=2, eta_min=0.01: at step {ex2_worst} yours gives {ex2_mine[ex2_worst]:.6f}, torch {ex2_ref[ex2_worst]:.6f} (restarts at 5, 15, 35)"
### BEGIN HIDDEN TESTS
for ex2_args in ((0.5, 7, 1, 0.0), (1.0, 1, 3, 0.1), (0.3, 3, 2, 0.0), (2.0, 100, 1, 0.5)):
    ex2_mine = np.array([sgdr_schedule(*ex2_args)(t) for t in range(250)])
    ex2_ref = ex2_torch_rates(*ex2_args, 250)
    ex2_worst = int(np.argmax(np.abs(ex2_mine - ex2_ref)))
    assert np.allclose(ex2_mine, ex2_ref, rtol=0, atol=1e-12), f"sgdr_schedule{ex2_args}: at step {ex2_worst} yours gives {ex2_mine[ex2_worst]:.6f}, torch {ex2_ref[ex2_worst]:.6f}"
ex2_flat = [sgdr_schedule(0.2, 4, 2, 0.2)(t) for t in range(30)]
assert np.allclose(ex2_flat, 0.2, rtol=0, atol=1e-12), f"with eta_min = eta_max the rate must stay at 0.2, got values from {min(ex2_flat)} to {max(ex2_flat)}"
ex2_companion = schedules.cosine_annealing_warm_restarts(0.1, 6, 3, alpha=0.25)
ex2_far = [0, 5, 6, 23, 24, 77, 78, 500, 1000]
assert all(abs(sgdr_schedule(0.1, 6, 3, 0.025)(t) - ex2_companion(t)) < 1e-12 for t in ex2_far), "T_0=6, T_mult=3: far from the start (restarts at 6, 24, 78, 240, 726) yours differs from companion.schedules.cosine_annealing_warm_restarts"
for ex2_bad, ex2_name in (((0.1, 0), "T_0"), ((0.1, 10, 0), "T_mult"), ((0.1, 10, 1.5), "T_mult"), ((0.1, 2.5), "T_0")):
    expect_error(lambda: sgdr_schedule(*ex2_bad), ValueError, ex2_name, when=f"sgdr_schedule{ex2_bad}")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 — Derive it: how much learning rate does a cosine schedule spend?
#
# The sum $\sum_t \eta_t$ measures how far a schedule lets SGD travel (Robbins and Monro ask it to
# diverge). Take the cosine decay of this chapter over the steps $t = 0, \dots, T-1$,
# $\eta_t = \eta_0\big(\alpha + (1-\alpha)\,\tfrac12(1 + \cos(\pi t/T))\big)$.
#
# (a) Treating $t$ as continuous, what is the mean rate over the period $[0, T]$?
#
# (b) Show that $\sum_{t=0}^{T-1} \cos(\pi t/T) = 1$ for every $T \ge 1$ (hint: pair $t$ with $T - t$),
# and deduce the exact sum $\sum_{t=0}^{T-1} \eta_t$. Write it as `cosine_rate_sum(peak, T, alpha=0.0)`,
# with `peak` $= \eta_0$.
#
# (c) In the equal-budget comparison above, the cosine run peaked at {fixed}`3 times` the suggested rate over
# $T = 471$ steps, with $\alpha = 0$. Which constant rate, as a multiple of the suggested rate, has the
# same sum? Given how the two constant runs did, is the larger sum what made the cosine run better?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "schedules-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
def cosine_rate_sum(peak, T, alpha=0.0):
    ### BEGIN SOLUTION
    return peak * (alpha * T + (1.0 - alpha) * (T + 1) / 2)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "schedules-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert math.isclose(cosine_rate_sum(0.1, 1000), 50.05, rel_tol=1e-12), f"peak 0.1, T = 1000, alpha = 0: the sum is 0.1 * (1000 + 1) / 2 = 50.05, got {cosine_rate_sum(0.1, 1000)}"
### BEGIN HIDDEN TESTS
for ex3_peak, ex3_T, ex3_alpha in ((0.1, 471, 0.0), (1.0, 1, 0.0), (0.5, 2, 0.3), (0.03, 97, 0.1), (2.0, 10_000, 1.0)):
    ex3_ref = sum(schedules.cosine_decay(ex3_peak, ex3_T, ex3_alpha)(t) for t in range(ex3_T))
    ex3_mine = cosine_rate_sum(ex3_peak, ex3_T, ex3_alpha)
    assert math.isclose(ex3_mine, ex3_ref, rel_tol=1e-9), f"peak={ex3_peak}, T={ex3_T}, alpha={ex3_alpha}: got {ex3_mine}, the sum of schedules.cosine_decay over t = 0..T-1 is {ex3_ref}"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "schedules-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) $\frac1T\int_0^T \cos(\pi t/T)\,dt = \frac{1}{\pi}\big[\sin u\big]_0^\pi = 0$, so the mean rate is
# $\eta_0\big(\alpha + \tfrac12(1-\alpha)\big) = \eta_0(1+\alpha)/2$: half-way between the peak and the floor.
#
# (b) For $1 \le t \le T-1$, $\cos(\pi(T-t)/T) = \cos(\pi - \pi t/T) = -\cos(\pi t/T)$: the terms $t$ and
# $T - t$ cancel (for even $T$ the middle term $t = T/2$ is $\cos(\pi/2) = 0$ on its own). Only
# $t = 0$ is left, $\cos 0 = 1$. Hence
# $$\sum_{t=0}^{T-1}\eta_t = \eta_0\Big(\alpha T + \tfrac{1-\alpha}{2}\big(T + 1\big)\Big),$$
# the continuous answer $T\eta_0(1+\alpha)/2$ plus half a step of $(1-\alpha)\eta_0$, because the sum
# includes the peak at $t = 0$ but stops before the floor at $t = T$.
#
# (c) $3\,\eta_s \cdot 472/2 = 708\,\eta_s$ over 471 steps, the sum of a constant rate of
# $708/471 \approx 1.50$ times the suggested rate $\eta_s$. The cosine run travelled 1.5 times as far as
# the constant run at $\eta_s$, but the constant run at $3\eta_s$ travelled twice as far as the cosine
# run and still ended at a higher loss. The sum is not what decides: the cosine run takes its large steps
# early, when they make progress, and its small ones at the end, when the noise ball, whose size grows
# with $\eta$, shrinks around the minimum.
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 — Investigate: does the range test's answer depend on the batch size?
#
# Run `schedules.lr_range_test` on the MNIST network with `sgd_momentum` and mini-batches of 16 and of
# 1,024 images (150 steps, rates from $10^{-4}$ to 10). How do the suggested rates compare? The batch is
# {fixed}`64 times` larger: is the suggested rate 64 times larger, as the "linear scaling rule" of
# {cite:t}`goyal2017` would have it? Why might it not be?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "schedules-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
by_batch = {}
fig, ax = plt.subplots()
for batch_size in (16, 1024):
    lrs, losses, suggestion = schedules.lr_range_test(
        mnist_mlp, sgd_momentum, x_train, y_train, min_lr=1e-4, max_lr=10.0, num_steps=150, batch_size=batch_size
    )
    by_batch[batch_size] = suggestion
    ax.semilogx(lrs, losses, label=f"batch {batch_size}: suggestion {suggestion:.3f}")
ax.set_xlabel("learning rate η (log scale)")
ax.set_ylabel("training loss (smoothed)")
ax.set_title("A larger batch tolerates a larger rate, but not 64 times larger")
ax.legend()
plt.show()
ratio = by_batch[1024] / by_batch[16]
print(f"suggested rate, batch 1024 / batch 16: {ratio:.1f}")
assert 2 < ratio < 64, by_batch
### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "schedules-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# The batch of 1,024 gets a suggested rate several times larger than the batch of 16 (about 7 times in our
# run), far from 64 times. The linear scaling rule assumes that $k$ small steps with rate $\eta$ are about
# one large step with rate $k\eta$ on the averaged gradient, which holds only while the gradient changes
# little over those $k$ steps, i.e. while $\eta$ is small compared with the curvature's limit $2/L$. The
# range test finds the point where the loss blows up, and that limit is set by the curvature, not by the
# noise: a larger batch removes noise (so the loss is smoother and the test reaches a bit further) but cannot
# move the stability limit. {cite:t}`goyal2017` observed the same: the rule breaks down beyond a certain
# batch size and needs warm-up even below it. Note also that the range test runs a fixed number of steps, so
# the large batch sees 64 times more data during the sweep.
# :::
# <!-- ### END SOLUTION -->
