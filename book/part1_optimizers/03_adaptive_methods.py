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
# # 3. Adaptive methods
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part1_optimizers/03_adaptive_methods.ipynb)
#
# Gradient descent and momentum move every parameter with the *same* learning rate $\eta$. In a
# neural network the gradients of different parameters can differ by orders of magnitude: the
# first-layer weight of a pixel that is bright in most images gets a gradient every step, the weight of
# a pixel that is rarely lit gets one now and then, and the weight of a pixel that is black in every
# image gets none at all. One $\eta$ is then too large for some coordinates and too small for others.
#
# *Adaptive* methods give every coordinate its own step size by dividing the gradient by a running
# measure of that coordinate's past gradient magnitudes. This chapter builds them one idea at a time:
# AdaGrad (sum of squares), RMSProp and AdaDelta (a moving average instead of a sum), Adam (momentum on
# top, with bias correction), AdamW (weight decay done right), Adamax and Nadam (two variations on Adam)
# and FTRL (the sparse-model specialist). Each comes with its update rule, its paper and the
# `companion.optim` function that implements it; then all of them train the same MNIST network, and we
# compare how PyTorch and Keras implement the "same" optimizer.

# %% tags=["hide-input"]
# Setup: on Colab (or anywhere companion is missing) install the course package.
try:
    import companion
except ImportError:
    %pip install -q "dl-optimization-companion[torch,keras] @ git+https://github.com/YOUR-ORG/dl-optimization-hands-on@main"
    import companion

# %% tags=["keep-when-grading"]
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from companion import optim
from companion.data import load_mnist
from companion.glue import glue
from companion.plotting import plot_histories, use_course_style
from companion.reproducibility import pick_device, seed_everything
from companion.training import accuracy, as_tensors, mlp, train_classifier

use_course_style()
seed_everything(0)
# A network this small runs fastest on one CPU thread: more threads only add synchronisation
# (and, on a busy shared machine, a lot of waiting). On a GPU this setting does not matter.
torch.set_num_threads(1)
device = pick_device()

# 10,000 training images, 5,000 more to choose learning rates on, and the full 10,000-image test set.
images, labels = load_mnist("train", limit=15_000)
test_images, test_labels = load_mnist("test")
x_train, y_train = as_tensors(images[:10_000], labels[:10_000], device)
x_val, y_val = as_tensors(images[10_000:], labels[10_000:], device)
x_test, y_test = as_tensors(test_images, test_labels, device)

# Pixels that are 0 in every training image: their first-layer weights never receive a gradient.
live_pixels = torch.as_tensor(images[:10_000].reshape(10_000, -1).max(axis=0) > 0, device=device)
print(f"device: {device}; {int(live_pixels.sum())} of 784 pixels are lit in some training image")

# %% [markdown]
# ## One learning rate, gradients of very different sizes
#
# How different are the gradients of the first layer of the 784–128–10 network we train all chapter?
# Below, the root mean square of each first-layer weight's gradient over 20 mini-batches at
# initialisation, as a histogram of its logarithm (weights of never-lit pixels, whose gradient is
# exactly zero, left out).

# %%
def batches(seed=0, batch_size=128):
    """An endless stream of random mini-batches of the training subset (reproducible)."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        index = torch.randint(len(x_train), (batch_size,), generator=generator).to(device)
        yield x_train[index], y_train[index]


seed_everything(0)
model = mlp().to(device)
squares = torch.zeros_like(model[1].weight)
stream = batches()
for _ in range(20):
    x, y = next(stream)
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    squares += model[1].weight.grad**2
rms = (squares / 20).sqrt()[:, live_pixels].flatten().cpu().numpy()
rms = rms[rms > 0]
p10, p90 = np.percentile(rms, [10, 90])

fig, ax = plt.subplots()
ax.hist(np.log10(rms), bins=60, color="C0", label="first-layer weights of lit pixels")
ax.axvline(np.log10(p10), color="C3", ls="--", label="10th and 90th percentiles")
ax.axvline(np.log10(p90), color="C3", ls="--")
ax.set_xlabel("log$_{10}$ RMS gradient of one weight (loss units per weight unit)")
ax.set_ylabel("number of weights")
ax.set_title(f"Gradient sizes of one layer span orders of magnitude ({p90 / p10:.0f}x from p10 to p90)")
ax.legend()
plt.show()

# %% tags=["remove-input"]
assert p90 / p10 > 20, p90 / p10

# %% [markdown]
# **What to notice.** Between the 10th and the 90th percentile the gradient sizes of a *single layer*
# differ by more than a factor 20, and the extremes by far more. With plain SGD, a learning rate safe
# for the largest gradients moves the small ones twenty times slower than it could.
#
# ## AdaGrad: divide by the root of the sum of all past squared gradients
#
# AdaGrad {cite}`duchi2011` keeps, per coordinate, the sum of the squared gradients seen so far and
# divides the step by its square root:
#
# $$
# s_t = s_{t-1} + g_t^2, \qquad
# \theta_{t+1} = \theta_t - \frac{\eta}{\sqrt{s_t} + \epsilon}\, g_t .
# $$
#
# All operations are elementwise. A coordinate with large gradients gets a small step, a rarely
# updated one a large step; this is why AdaGrad shines on sparse features (words, ad click features),
# the setting it was designed for. The price: $s_t$ only grows, so the *effective learning rate*
# $\eta/(\sqrt{s_t}+\epsilon)$ of every coordinate only shrinks, like $\eta / (G\sqrt{t})$ when the
# gradients keep a typical size $G$. In `companion` it is `optim.adagrad(learning_rate)`, the chain
# `scale_by_adagrad()` → `scale_by_learning_rate(η)`; we build that chain by hand below so we can read the
# sum of squares out of its state.
#
# ## RMSProp: forget the distant past
#
# RMSProp {cite}`tieleman2012` replaces the sum by an exponential moving average, so the denominator
# tracks the *recent* gradient magnitude and the effective learning rate stops shrinking:
#
# $$
# v_t = \rho\, v_{t-1} + (1-\rho)\, g_t^2, \qquad
# \theta_{t+1} = \theta_t - \frac{\eta}{\sqrt{v_t} + \epsilon}\, g_t
# $$
#
# (`optim.rmsprop(learning_rate, decay=ρ)`; PyTorch calls $\rho$ `alpha`, Keras `rho`). The loop below
# trains the network with both and records the median effective learning rate of the first-layer weights
# of lit pixels. It is the same loop as `companion.training.train_classifier`, written out because we want
# to look inside the optimizer's state after every step.

# %%
def train_and_watch(transformation, steps, watch, seed=0):
    """Train a fresh MLP with a companion transformation; call ``watch(step, state, updates)`` each step."""
    seed_everything(seed)
    model = mlp().to(device)
    params = list(model.parameters())
    state = transformation.init(params)
    losses = []
    for step, (x, y) in zip(range(1, steps + 1), batches(seed)):
        loss = F.cross_entropy(model(x), y)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():  # the optimizer's arithmetic is not part of the model: no autograd graph
            updates, state = transformation.update(list(grads), state, params)
            for p, u in zip(params, updates):
                p.add_(u)
        losses.append(loss.item())
        watch(step, state, updates)
    return np.array(losses)


def median_over_live_weights(first_layer_values):
    return first_layer_values[:, live_pixels].median().item()


STEPS = 400
adagrad_lr, rmsprop_lr = 0.03, 1e-3
effective_lr = {"AdaGrad": [], "RMSProp": []}
train_and_watch(
    optim.chain(optim.scale_by_adagrad(eps=1e-10), optim.scale_by_learning_rate(adagrad_lr)),
    STEPS,
    lambda step, state, updates: effective_lr["AdaGrad"].append(
        median_over_live_weights(adagrad_lr / (state[0].sum_of_squares[0].sqrt() + 1e-10))
    ),
)
train_and_watch(
    optim.chain(optim.scale_by_rms(decay=0.99, eps=1e-8), optim.scale_by_learning_rate(rmsprop_lr)),
    STEPS,
    lambda step, state, updates: effective_lr["RMSProp"].append(
        median_over_live_weights(rmsprop_lr / (state[0].mean_square[0].sqrt() + 1e-8))
    ),
)

steps = np.arange(1, STEPS + 1)
fig, ax = plt.subplots()
ax.loglog(steps, effective_lr["AdaGrad"], label=f"AdaGrad, $\\eta$={adagrad_lr}")
ax.loglog(steps, effective_lr["RMSProp"], label=f"RMSProp, $\\eta$={rmsprop_lr}, $\\rho$=0.99")
guide = effective_lr["AdaGrad"][9] * np.sqrt(10 / steps)
ax.loglog(steps, guide, "k:", label="$\\propto 1/\\sqrt{t}$")
ax.set_xlabel("optimizer step")
ax.set_ylabel("median effective learning rate (first layer)")
ax.set_title("AdaGrad's effective learning rate keeps shrinking; RMSProp's does not")
ax.legend()
plt.show()

# %% tags=["remove-input"]
adagrad_drop = effective_lr["AdaGrad"][9] / effective_lr["AdaGrad"][-1]
rmsprop_drop = effective_lr["RMSProp"][99] / effective_lr["RMSProp"][-1]
print(f"AdaGrad: effective lr at step 10 / at step {STEPS} = {adagrad_drop:.1f} (sqrt(40) = {np.sqrt(40):.1f})")
print(f"RMSProp: effective lr at step 100 / at step {STEPS} = {rmsprop_drop:.2f}")
assert np.all(np.diff(effective_lr["AdaGrad"]) <= 0)  # a sum of squares only grows
assert 2 < adagrad_drop < np.sqrt(40), adagrad_drop
assert rmsprop_drop < 1.5, rmsprop_drop

# %% [markdown]
# **What to notice.** AdaGrad's effective learning rate falls monotonically, by a factor of about 3
# between step 10 and step 400: less than the $\sqrt{40}\approx 6$ of the $1/\sqrt t$ guide, because the
# gradients themselves shrink as the network learns, but it never stops falling. On a long non-convex
# run AdaGrad ends up taking steps too small to make progress. RMSProp's levels off (after its
# first $\sim 1/(1-\rho) = 100$ steps of warm-up it even *rises*, as the gradients get smaller while the
# network learns). In Keras, AdaGrad's `initial_accumulator_value` starts $s_0$ at 0.1, which caps the
# very first effective learning rates; PyTorch's default is 0, so its first step has the full size
# $\eta\, g/(|g| + \epsilon)$.
#
# ## AdaDelta: a step with the right units
#
# Zeiler {cite}`zeiler2012` noticed that in SGD and AdaGrad the step has the units of the gradient
# (that is, 1/units of $\theta$) times $\eta$. AdaDelta multiplies the RMSProp direction by a running RMS
# of the *previous steps*, so the step has the units of $\theta$ and, in the paper, no learning rate is
# needed at all:
#
# $$
# v_t = \rho v_{t-1} + (1-\rho) g_t^2, \qquad
# \Delta_t = \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t, \qquad
# u_t = \rho u_{t-1} + (1-\rho) \Delta_t^2, \qquad
# \theta_{t+1} = \theta_t - \eta\, \Delta_t .
# $$
#
# The $\eta$ is the frameworks' addition: `torch.optim.Adadelta` defaults to $\eta=1$, as in the paper;
# Keras to $\eta=0.001$, which changes the method (see the conventions section below). In `companion`:
# `optim.adadelta(learning_rate, rho, eps)`. Since $u_0 = 0$, the first steps have size about
# $\sqrt{\epsilon}$, whatever the gradient: AdaDelta starts slowly and accelerates.
#
# ## Adam: momentum and RMSProp, with bias correction
#
# Adam {cite}`kingma2015` keeps two moving averages, of the gradient (momentum, chapter 2) and of its
# square (RMSProp):
#
# $$
# m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,
# $$
#
# $$
# \hat m_t = \frac{m_t}{1-\beta_1^t}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^t}, \qquad
# \theta_{t+1} = \theta_t - \eta\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon},
# $$
#
# with defaults $\beta_1 = 0.9$, $\beta_2 = 0.999$, $\epsilon = 10^{-8}$ (`optim.adam(learning_rate)`,
# the chain `scale_by_adam(b1, b2, eps)` → `scale_by_learning_rate(η)`). Both averages start at zero, so
# early on they are biased towards zero: if the gradient were a constant $g$,
# $m_t = (1-\beta_1^t)\, g$ and $v_t = (1-\beta_2^t)\, g^2$. Dividing by $1-\beta^t$ removes that bias.
# Without the correction the step is off by the factor
#
# $$
# \frac{m_t/\sqrt{v_t}}{\hat m_t/\sqrt{\hat v_t}} = \frac{1-\beta_1^t}{\sqrt{1-\beta_2^t}},
# $$
#
# which is $(1-\beta_1)/\sqrt{1-\beta_2} \approx 3.2$ at $t=1$, peaks at about 6.57 at $t = 12$,
# and is still above 1.2 after 1,000 steps: with the default betas the uncorrected steps are *too
# large*, because $\sqrt{v_t}$ is biased far more than $m_t$. (With $\beta_2 \le \beta_1$ they would be too
# small instead.) `optim.adam(bias_correction=False)` lets us watch it happen:

# %%
def step_size_watcher(record, learning_rate):
    """Record the median |step| / learning rate of the first-layer weights of lit pixels."""
    return lambda step, state, updates: record.append(median_over_live_weights(updates[0].abs()) / learning_rate)


BIAS_STEPS = 300
bias_runs = {}
for lr in (1e-3, 1e-2):
    for corrected in (True, False):
        record = []
        losses = train_and_watch(
            optim.adam(lr, bias_correction=corrected), BIAS_STEPS, step_size_watcher(record, lr)
        )
        bias_runs[lr, corrected] = (np.array(record), losses)

t = np.arange(1, BIAS_STEPS + 1)
theory = (1 - 0.9**t) / np.sqrt(1 - 0.999**t)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.4))
ax1.plot(t, bias_runs[1e-3, True][0], label="with bias correction")
ax1.plot(t, bias_runs[1e-3, False][0], label="without bias correction")
ax1.plot(t, theory, "k:", label="$(1-\\beta_1^t)/\\sqrt{1-\\beta_2^t}$ (constant gradient)")
ax1.set_xscale("log")
ax1.set_xlabel("optimizer step")
ax1.set_ylabel("median |step| / $\\eta$ (first layer)")
ax1.set_title("Without correction, the first steps are 2-3x too large", fontsize=11)
ax1.legend()
smooth = 10
kernel = np.ones(smooth) / smooth
for (lr, corrected), (_, losses) in bias_runs.items():
    style = "-" if corrected else "--"
    label = f"$\\eta$={lr:g}, {'with' if corrected else 'without'} correction"
    ax2.plot(t[smooth - 1 :], np.convolve(losses, kernel, mode="valid"), style, label=label)
ax2.set_xlabel("optimizer step")
ax2.set_ylabel(f"training loss (cross-entropy, mean of {smooth} batches)")
ax2.set_yscale("log")
ax2.set_title("The overshoot helps at a small $\\eta$, hurts at a large one", fontsize=11)
ax2.legend()
plt.show()

# %% tags=["remove-input"]
with_c, without_c = bias_runs[1e-3, True][0], bias_runs[1e-3, False][0]
first_ratio = without_c[0] / with_c[0]
early_ratio = np.median(without_c[:50] / with_c[:50])
print(f"step 1: uncorrected / corrected step = {first_ratio:.3f} (theory {0.1 / np.sqrt(0.001):.3f})")
print(f"steps 1-50: median ratio {early_ratio:.2f}")
assert abs(first_ratio - 0.1 / np.sqrt(0.001)) < 0.02 * 3.162, first_ratio
assert early_ratio > 1.8, early_ratio
loss_at = {key: runs[1][:100].mean() for key, runs in bias_runs.items()}
print({f"lr={k[0]:g} corrected={k[1]}": round(v, 3) for k, v in loss_at.items()})
assert loss_at[1e-2, False] > 1.15 * loss_at[1e-2, True]
glue("uncorrected_loss_excess", f"{100 * (loss_at[1e-2, False] / loss_at[1e-2, True] - 1):.0f} %")
assert loss_at[1e-3, False] < 0.8 * loss_at[1e-3, True]

# %% [markdown]
# **What to notice.** At step 1 the uncorrected step is $3.16\times$ the corrected one, exactly as
# predicted, and over the first 50 steps it stays about twice as large (less than the constant-gradient
# curve, since real gradients change sign and size). Without correction Adam effectively runs with a
# learning rate several times larger than the one you set, during exactly the steps where the
# network is least stable. With $\eta = 10^{-3}$, a small value for a 300-step run, that boost helps:
# the first hundred steps' mean loss is lower. With $\eta = 10^{-2}$ it hurts: that mean loss is
# {glue:text}`uncorrected_loss_excess` higher, more than 15 %. The bias correction is what makes Adam's
# first steps have the size $\eta$, which is why one learning rate tends to work from the first step on. Popular
# from-scratch snippets that drop it (or apply it to $m$ only) silently change the method.
#
# A caveat on convergence: Reddi et al. {cite}`reddi2018` built problems on which Adam provably does not
# converge, because $\hat v_t$ can shrink and let the step grow again; their AMSGrad fix divides by the
# running *maximum* of $\hat v_t$ (`torch.optim.Adam(amsgrad=True)`, `keras.optimizers.Adam(amsgrad=True)`).
#
# ## AdamW: decay the weights, not the gradient
#
# With SGD, adding the L2 penalty $\tfrac{\lambda}{2}\lVert\theta\rVert^2$ to the loss and "decaying the
# weights" $\theta \leftarrow (1-\eta\lambda)\theta$ are the same thing. With Adam they are not
# {cite}`loshchilov2019`. `torch.optim.Adam(weight_decay=λ)` adds $\lambda\theta$ to the *gradient*, so
# the penalty's pull goes through the division by $\sqrt{\hat v_t}$:
#
# $$
# \text{Adam + L2:}\quad g_t \leftarrow g_t + \lambda\theta_t, \quad
# \theta_{t+1} = \theta_t - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon};
# \qquad
# \text{AdamW:}\quad \theta_{t+1} = \theta_t - \eta\left(\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} + \lambda\theta_t\right).
# $$
#
# In `companion` both are the same two links in a different order: `optim.adam(weight_decay=λ)` is
# `add_decayed_weights(λ)` → `scale_by_adam()`, `optim.adamw(weight_decay=λ)` is `scale_by_adam()` →
# `add_decayed_weights(λ)`. The consequence is easiest to see on the weights of the never-lit pixels,
# whose data gradient is exactly zero. Under Adam + L2 their gradient is $\lambda\theta$ alone, so
# $\hat m_t/\sqrt{\hat v_t} \approx \operatorname{sign}(\theta)$: they are pushed to zero at a rate of
# $\eta$ per step *whatever* $\lambda$ is, while the weights with large data gradients barely feel the
# penalty. AdamW shrinks every weight by the same factor $(1-\eta\lambda)$ per step.

# %%
DECAY_STEPS, decay_lr, decay = 400, 1e-3, 0.05


def run_with_norms(transformation):
    norms = {"never-lit pixels": [], "lit pixels": []}
    seed_everything(0)
    model = mlp().to(device)
    params = list(model.parameters())
    state = transformation.init(params)
    for step, (x, y) in zip(range(1, DECAY_STEPS + 1), batches(0)):
        grads = torch.autograd.grad(F.cross_entropy(model(x), y), params)
        with torch.no_grad():
            updates, state = transformation.update(list(grads), state, params)
            for p, u in zip(params, updates):
                p.add_(u)
            w = params[0]
            norms["never-lit pixels"].append(w[:, ~live_pixels].norm().item())
            norms["lit pixels"].append(w[:, live_pixels].norm().item())
    return {k: np.array(v) for k, v in norms.items()}, model


decay_runs = {
    "Adam, no decay": run_with_norms(optim.adam(decay_lr)),
    f"Adam + L2, $\\lambda$={decay}": run_with_norms(optim.adam(decay_lr, weight_decay=decay)),
    f"AdamW, $\\lambda$={decay}": run_with_norms(optim.adamw(decay_lr, weight_decay=decay)),
}
seed_everything(0)
initial = mlp()[1].weight.detach()
initial_norms = {
    "never-lit pixels": initial[:, ~live_pixels.cpu()].norm().item(),
    "lit pixels": initial[:, live_pixels.cpu()].norm().item(),
}

fig, axes = plt.subplots(1, 2, figsize=(13, 4.4))
for ax, group in zip(axes, ("never-lit pixels", "lit pixels")):
    for label, (norms, _) in decay_runs.items():
        ax.plot(np.arange(1, DECAY_STEPS + 1), norms[group] / initial_norms[group], label=label)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("weight norm / initial norm")
    ax.legend()
axes[0].set_title("Never-lit pixels: L2-in-Adam zeroes their weights", fontsize=11)
axes[1].set_title("Lit pixels: same $\\lambda$, very different decay", fontsize=11)
plt.show()

# %% tags=["remove-input"]
final = {label: {g: norms[g][-1] / initial_norms[g] for g in norms} for label, (norms, _) in decay_runs.items()}
for label, values in final.items():
    print(f"{label:22s}", {g: round(v, 3) for g, v in values.items()})
plain, l2, decoupled = (final[k] for k in decay_runs)
assert abs(plain["never-lit pixels"] - 1) < 1e-6  # no gradient, no decay: they never move
assert plain["lit pixels"] > 1.5  # the unpenalised learning weights grow
glue("adam_lit_growth", f"{plain['lit pixels']:.1f} times")
assert l2["never-lit pixels"] < 0.05  # pushed to ~0 at rate lr per step
assert abs(decoupled["never-lit pixels"] - (1 - decay_lr * decay) ** DECAY_STEPS) < 1e-3  # exactly (1-lr*wd)^t
assert l2["lit pixels"] < 0.35 * plain["lit pixels"]  # at this lambda, L2 dominates the data gradient
assert abs(decoupled["lit pixels"] / plain["lit pixels"] - 1) < 0.05  # AdamW: about (1 - lr*wd)^t

# %% [markdown]
# **What to notice.** Without a penalty, the norm of the first layer's learning weights grows to
# {glue:text}`adam_lit_growth` its initial value in 400 steps, and the never-lit weights never move. Under Adam + L2 the
# never-lit weights collapse to zero within about a hundred steps: their only gradient is $\lambda\theta$,
# which the division by $\sqrt{\hat v_t}$ turns into a step of size $\eta$ whatever $\lambda$ is. The
# learning weights fare little better: wherever $\lambda\theta$ rivals the small data gradients of these
# weights (their RMS is below $10^{-3}$), the penalty dominates the normalised step, and their norm ends
# at less than a third of the unpenalised one. How strongly a weight is regularised thus depends on its
# gradient history, not only on $\lambda$. AdamW with the same $\lambda$ shrinks every weight by exactly
# $(1-\eta\lambda)$ per step on top of what the data does, here {fixed}`2 %` over 400 steps: a mild, uniform
# regulariser that does not interact with the adaptive scaling. The same number `weight_decay=0.05`
# means two very different things in `torch.optim.Adam` and `torch.optim.AdamW`; good values differ
# (AdamW's default is $\lambda = 0.01$ in PyTorch, $0.004$ in Keras), so retune when switching. Note that with
# AdamW the decay per step is $\eta\lambda$: under a learning-rate schedule, the decay follows it.
#
# ## Adamax and Nadam
#
# **Adamax** {cite}`kingma2015` (section 7 of the Adam paper) replaces the $L^2$ average of past gradients
# by an exponentially weighted $L^\infty$ norm, which needs no bias correction and is robust to a rare
# huge gradient:
#
# $$
# u_t = \max\bigl(\beta_2 u_{t-1},\ |g_t|\bigr), \qquad
# \theta_{t+1} = \theta_t - \frac{\eta}{1-\beta_1^t}\,\frac{m_t}{u_t} \quad (\text{`optim.adamax`}).
# $$
#
# **Nadam** {cite}`dozat2016` puts Nesterov's look-ahead (chapter 2) into Adam: the step uses the momentum
# *of the next step*, $\mu_{t+1} \hat m_t + (1-\mu_t)\hat g_t$, instead of $\hat m_t$, with a momentum
# coefficient that warms up, $\mu_t = \beta_1\bigl(1 - \tfrac12\, 0.96^{\,t\psi}\bigr)$:
#
# $$
# \theta_{t+1} = \theta_t - \eta\,\frac{1}{\sqrt{\hat v_t} + \epsilon}
# \left(\frac{\mu_{t+1}\, m_t}{1-\prod_{i\le t+1}\mu_i} + \frac{(1-\mu_t)\, g_t}{1-\prod_{i\le t}\mu_i}\right)
# \quad (\text{`optim.nadam`}).
# $$
#
# PyTorch and Keras disagree on $\psi$ and on where Adamax's $\epsilon$ goes; the conventions section
# shows both.
#
# What do the two variations change? Two small experiments with one weight, where every step can be read.
# For Adamax: 500 steps of a small gradient (0.01), then 50 steps of a gradient {fixed}`100 times` larger, then the
# small gradient again; we record each step's size divided by $\eta$. For Nadam: a quadratic
# $f(x) = \tfrac12(x_1^2 + 100\,x_2^2)$ (condition number 100, as in chapter 2), minimised from $(1, 1)$ by
# Adam and Nadam at three learning rates; we record the loss, and read Nadam's momentum coefficient $\mu_t$
# out of its state.

# %%
def step_sizes_for(transformation, gradients):
    """|u_t| / eta for a one-weight parameter fed the given gradients (eta = 1)."""
    params = [np.zeros(1)]
    state = transformation.init(params)
    sizes = []
    for g in gradients:
        updates, state = transformation.update([np.array([g])], state, params)
        sizes.append(abs(updates[0][0]))
    return np.array(sizes)


QUIET, LOUD = 500, 50
jump = np.r_[np.full(QUIET, 0.01), np.full(LOUD, 1.0), np.full(1500, 0.01)]
jump_steps = {"Adam": step_sizes_for(optim.adam(1.0), jump), "Adamax": step_sizes_for(optim.adamax(1.0), jump)}
after = QUIET + LOUD + 100  # 100 steps after the loud phase ends

CURVATURE = np.array([1.0, 100.0])


def quadratic_losses(transformation, steps=300):
    params = [np.ones(2)]
    state = transformation.init(params)
    losses = []
    for _ in range(steps):
        updates, state = transformation.update([CURVATURE * params[0]], state, params)
        params = optim.apply_updates(params, updates)
        losses.append(0.5 * np.sum(CURVATURE * params[0] ** 2))
    return np.array(losses), state


def nadam_momentum(transformation, steps=300):
    """Nadam's mu_t, read from its state: the ratio of successive products mu_1 ... mu_t."""
    from companion.optim.transforms import ScaleByNadamState

    params = [np.zeros(1)]
    state = transformation.init(params)
    products = []
    for _ in range(steps):
        _, state = transformation.update([np.ones(1)], state, params)
        products.append(next(s for s in state if isinstance(s, ScaleByNadamState)).mu_product)
    return np.array(products) / np.r_[1.0, products[:-1]]


race_2d = {(name, lr): quadratic_losses(make(lr))[0]
           for lr in (0.01, 0.03, 0.1) for name, make in (("Adam", optim.adam), ("Nadam", optim.nadam))}
mu_torch = nadam_momentum(optim.nadam(0.01))

fig, axes = plt.subplots(1, 2, figsize=(13, 4.4))
for name, sizes in jump_steps.items():
    axes[0].plot(np.arange(1, len(sizes) + 1), sizes, label=name)
axes[0].axvspan(QUIET, QUIET + LOUD, color="grey", alpha=0.2, label="gradient 100x larger")
axes[0].set_yscale("log")
axes[0].set_xlabel("step")
axes[0].set_ylabel("|step| / $\\eta$")
axes[0].set_title("Adamax's steps never exceed $\\eta$; Adam's jump", fontsize=11)
axes[0].legend(fontsize=9)
for (name, lr), losses in race_2d.items():
    axes[1].plot(np.arange(1, len(losses) + 1), losses, ls="-" if name == "Adam" else "--",
                 color={0.01: "C0", 0.03: "C1", 0.1: "C2"}[lr], label=f"{name}, $\\eta$={lr}")
axes[1].set_yscale("log")
axes[1].set_xlabel("step")
axes[1].set_ylabel("$f(x)$ on the quadratic with condition number 100")
axes[1].set_title("Nadam's look-ahead pays off at the larger rates", fontsize=11)
axes[1].legend(fontsize=8, ncol=2)
plt.show()

glue("adam_jump_peak", f"{jump_steps['Adam'].max():.1f}")
glue("adamax_jump_peak", f"{jump_steps['Adamax'].max():.2f}")
glue("adam_after_loud", f"{jump_steps['Adam'][after - 1]:.3f}")
glue("adamax_after_loud", f"{jump_steps['Adamax'][after - 1]:.3f}")
glue("nadam_mu_300", f"{mu_torch[-1]:.2f}")
for (name, lr), losses in race_2d.items():
    glue(f"quad_{name.lower()}_{str(lr).replace('.', '')}", f"{losses[-1]:.0e}")

# %% tags=["remove-input"]
assert jump_steps["Adamax"].max() <= 1.0 + 1e-12 and jump_steps["Adam"].max() > 3.0, jump_steps
assert jump_steps["Adamax"][after - 1] < 0.5 * jump_steps["Adam"][after - 1], jump_steps
assert all(race_2d["Nadam", lr][-1] < 1e-3 * race_2d["Adam", lr][-1] for lr in (0.03, 0.1)), race_2d
assert race_2d["Nadam", 0.01][-1] > race_2d["Adam", 0.01][-1], race_2d
assert 0.4 < mu_torch[-1] < 0.5, mu_torch[-1]

# %% [markdown]
# **What to notice.** When the gradient jumps a hundredfold after a quiet period, Adam's step jumps to
# {glue:text}`adam_jump_peak` $\eta$: its $\sqrt{\hat v_t}$, an average over about $1/(1-\beta_2) = 1000$ steps, lags
# behind the new $|g_t|$, while $\hat m_t$, an average over about 10 steps, follows it quickly. Adamax's
# $u_t = \max(\beta_2 u_{t-1}, |g_t|)$ catches the largest gradient at once,
# and its step never exceeds $\eta$ (largest: {glue:text}`adamax_jump_peak` $\eta$): a bounded step is what the
# infinity norm buys. The price comes after: $u_t$ forgets the loud phase only at the rate $\beta_2$, and
# 100 steps after it Adamax's steps are {glue:text}`adamax_after_loud` $\eta$ against Adam's
# {glue:text}`adam_after_loud` $\eta$.
#
# On the quadratic, Nadam ends 300 steps at a loss of {glue:text}`quad_nadam_01` at $\eta = 0.1$ (Adam:
# {glue:text}`quad_adam_01`) and {glue:text}`quad_nadam_003` at $\eta = 0.03$ (Adam: {glue:text}`quad_adam_003`),
# more than a thousand times lower: the look-ahead damps the oscillation along the steep direction. At
# $\eta = 0.01$ it is behind ({glue:text}`quad_nadam_001` against {glue:text}`quad_adam_001`): with PyTorch's
# $\psi = 0.004$, Nadam's momentum coefficient is still only {glue:text}`nadam_mu_300` at step 300 (read from
# its state), so for small steps it is a weakly damped Adam that has not yet built up speed.
#
# ## FTRL: exact zeros for sparse linear models
#
# FTRL-Proximal {cite}`mcmahan2013` was built for click-through-rate prediction: logistic regression on
# billions of sparse features, trained online, where a model with most weights *exactly* zero is cheaper
# to store and serve. Instead of stepping the weights, FTRL re-solves a small regularised problem every
# step in closed form. With $z_t$ the accumulated (adjusted) gradients and $n_t$ the sum of squares,
#
# $$
# \theta_{t+1} =
# \begin{cases}
# 0 & \text{if } |z_t| \le \lambda_1,\\[2pt]
# -\dfrac{z_t - \operatorname{sign}(z_t)\,\lambda_1}{\sqrt{n_t}/\eta + 2\lambda_2} & \text{otherwise,}
# \end{cases}
# $$
#
# so every weight whose accumulated evidence stays below $\lambda_1$ is set *exactly* to zero. A
# subgradient method on the same L1 penalty (say Adam on loss $+\ \lambda_1\lVert\theta\rVert_1$) only makes
# the weights jitter around zero. PyTorch has no FTRL; `optim.ftrl` follows `keras.optimizers.Ftrl`.
# FTRL is an optimizer for (generalised) linear models; in deep networks it is rarely used.
#
# We fit a logistic regression that tells threes from eights, in NumPy, with FTRL (with and without L1) and with
# Adam on the L1-penalised loss, and count the exact zeros among the weights of lit pixels.

# %%
def logistic_gradients(params, x, y, l1=0.0):
    """Gradients of the mean logistic loss (plus l1 * |w|_1, as a subgradient) for y in {0, 1}."""
    w, b = params
    p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
    residual = (p - y) / len(y)
    return [x.T @ residual + l1 * np.sign(w), np.array(residual.sum())]


def fit_logistic(transformation, x, y, epochs=3, batch_size=64, l1_subgradient=0.0, seed=0):
    params = [np.zeros(x.shape[1]), np.array(0.0)]
    state = transformation.init(params)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for i in range(0, len(y), batch_size):
            batch = order[i : i + batch_size]
            grads = logistic_gradients(params, x[batch], y[batch], l1_subgradient)
            updates, state = transformation.update(grads, state, params)
            params = optim.apply_updates(params, updates)
    return params


def three_vs_eight(x, y):
    keep = (y == 3) | (y == 8)
    return x[keep].reshape(keep.sum(), -1).astype(np.float64), (y[keep] == 8).astype(np.float64)


x38, y38 = three_vs_eight(images[:10_000], labels[:10_000])
x38_test, y38_test = three_vs_eight(test_images, test_labels)
lit = x38.max(axis=0) > 0  # pixels lit in some 3 or 8 of the training subset
l1 = 0.5
# FTRL's l1 weighs the *accumulated* gradients; spread over the run's steps it is a per-step penalty:
l1_per_step = l1 / (3 * -(-len(y38) // 64))
sparse_models = {
    "FTRL, no L1": fit_logistic(optim.ftrl(learning_rate=0.1), x38, y38),
    f"FTRL, $\\lambda_1$={l1}": fit_logistic(optim.ftrl(learning_rate=0.1, l1=l1), x38, y38),
    f"Adam on loss + {l1_per_step:.1g}$\\Vert w\\Vert_1$": fit_logistic(
        optim.adam(1e-2), x38, y38, l1_subgradient=l1_per_step
    ),
}
rows = []
for name, (w, b) in sparse_models.items():
    test_accuracy = np.mean(((x38_test @ w + b) > 0) == (y38_test == 1))
    rows.append(dict(model=name, exact_zeros_lit=int(np.sum(w[lit] == 0)), lit_weights=int(lit.sum()),
                     test_accuracy=test_accuracy))
sparse_table = pd.DataFrame(rows).set_index("model")

fig, axes = plt.subplots(1, 3, figsize=(12, 4))
for ax, (name, (w, _)) in zip(axes, sparse_models.items()):
    limit = np.abs(w).max()
    image = ax.imshow(np.ma.masked_equal(w, 0).reshape(28, 28), cmap="coolwarm", vmin=-limit, vmax=limit)
    ax.set_title(f"{name}\n{np.sum(w[lit] == 0)} of {lit.sum()} lit-pixel weights exactly 0", fontsize=10)
    ax.set_xlabel("pixel column")
    ax.set_ylabel("pixel row")
    ax.set_facecolor("black")
    ax.grid(False)
fig.colorbar(image, ax=axes, label="weight (black: exactly 0; red: votes 8, blue: votes 3)", shrink=0.8)
fig.suptitle("FTRL with L1 sets most weights exactly to zero; Adam on an L1 loss sets none", fontweight="bold")
plt.show()
sparse_table

# %% tags=["remove-input"]
zeros = sparse_table["exact_zeros_lit"]
acc = sparse_table["test_accuracy"]
names = list(sparse_models)
assert zeros[names[0]] == 0 and zeros[names[2]] == 0, zeros
assert zeros[names[1]] > 0.5 * lit.sum(), zeros
assert acc.min() > 0.93 and acc[names[1]] > acc[names[0]] - 0.02, acc

# %% [markdown]
# **What to notice.** With $\lambda_1 = 0.5$ FTRL sets more than half of the lit-pixel weights exactly to
# zero and keeps those where threes and eights differ, losing less than two points of test accuracy. Adam on the same L1 penalty reaches a similar accuracy but leaves *no* weight at exactly zero:
# the subgradient $\lambda_1\operatorname{sign}(w)$ makes a small weight hop across zero forever. (The
# never-lit pixels' weights are zero in every model: they start at zero and never get a gradient.)
#
# ## All of them on the same network
#
# Now the race. Every method trains the same 784–128–10 MLP, from the same initial weights, on the same
# 10,000 images in the same order: 2 epochs of mini-batches of 128 (158 steps), through
# `train_classifier`, which wraps each `companion` transformation in the `torch.optim` adapter.
#
# **How the learning rates were chosen.** Each method gets the same tuning budget: five learning rates,
# half a decade apart, centred on its PyTorch default ($\eta_0 \times \{0.1, 0.3, 1, 3, 10\}$; PyTorch's
# SGD's default, $10^{-3}$ in the pinned PyTorch, is not a tuned value, and FTRL is not in PyTorch,
# so both are centred on $0.1$). For each method we keep
# the learning rate with the best accuracy on 5,000 held-out training images; only then is the winner
# evaluated on the full 10,000-image test set. Two epochs on 10,000 images is a short budget, which
# favours large learning rates; with longer training the best values move down.

# %%
BASE_LR = {
    "SGD": (optim.sgd, 0.1),
    "AdaGrad": (optim.adagrad, 1e-2),
    "AdaDelta": (optim.adadelta, 1.0),
    "RMSProp": (optim.rmsprop, 1e-2),
    "Adam": (optim.adam, 1e-3),
    "AdamW": (optim.adamw, 1e-3),
    "Adamax": (optim.adamax, 2e-3),
    "Nadam": (optim.nadam, 2e-3),
    "FTRL": (optim.ftrl, 0.1),
}
GRID = (0.1, 0.3, 1.0, 3.0, 10.0)

sweep = {}
start = time.perf_counter()
for method, (make, base) in BASE_LR.items():
    for factor in GRID:
        lr = base * factor
        seed_everything(0)
        model = mlp().to(device)
        history = train_classifier(
            model, make(learning_rate=lr), x_train, y_train, x_val=x_val, y_val=y_val,
            epochs=2, batch_size=128, progress=False, name=method,
        )
        sweep[method, lr] = (history, model)
    best = max((lr for m, lr in sweep if m == method), key=lambda lr: sweep[method, lr][0].last("val_accuracy"))
    print(f"{method:9s} best lr {best:<8.3g} validation accuracy {sweep[method, best][0].last('val_accuracy'):.4f}"
          f"   ({time.perf_counter() - start:5.1f} s so far)")

# %%
chosen = {}
for method in BASE_LR:
    lr = max((lr for m, lr in sweep if m == method), key=lambda lr: sweep[method, lr][0].last("val_accuracy"))
    chosen[method] = (lr, *sweep[method, lr])

curves = {f"{m} ($\\eta$={lr:.3g})": h for m, (lr, h, _) in chosen.items()}
fig, ax = plt.subplots(figsize=(9, 5))
plot_histories(curves, "loss", ax=ax, smooth=10, logy=True, ylabel="training loss (cross-entropy, 10-batch mean)",
               title="At an equal tuning budget, adaptive methods learn faster than plain SGD")
plt.show()

fig, ax = plt.subplots(figsize=(9, 5))
plot_histories(curves, "loss", x="seconds", ax=ax, smooth=10, logy=True,
               ylabel="training loss (cross-entropy, 10-batch mean)",
               title="Against wall-clock time the picture is similar: steps cost about the same")
plt.show()

results = pd.DataFrame(
    [
        dict(method=m, learning_rate=lr, val_accuracy=h.last("val_accuracy"),
             test_accuracy=accuracy(model, x_test, y_test), seconds=h.last("seconds"),
             ms_per_step=1000 * np.median(np.diff(h.series("seconds")[1])))
        for m, (lr, h, model) in chosen.items()
    ]
).set_index("method")
results.round({"val_accuracy": 4, "test_accuracy": 4, "seconds": 2, "ms_per_step": 2})

# %% tags=["remove-input"]
FLOOR = 0.85
adam_family = ["Adam", "AdamW", "Adamax", "Nadam"]
assert (results["test_accuracy"] > FLOOR).all(), results["test_accuracy"]
assert results.loc[adam_family, "test_accuracy"].min() > results.loc["SGD", "test_accuracy"] + 0.01, results
not_ftrl = [m for m in BASE_LR if m not in ("SGD", "FTRL")]
assert results.loc[not_ftrl, "test_accuracy"].min() > results.loc["SGD", "test_accuracy"] + 0.01, results
assert results.loc["AdaGrad", "learning_rate"] >= 10 * results.loc["Adam", "learning_rate"] - 1e-12
assert results.loc["AdaDelta", "learning_rate"] >= 1.0
top_of_grid = [m for m in BASE_LR if np.isclose(results.loc[m, "learning_rate"], BASE_LR[m][1] * GRID[-1])]
print("winners at the top of their grid:", top_of_grid)
glue("lowest_test_accuracy", f"{100 * results['test_accuracy'].min():.1f} %")
assert len(top_of_grid) >= 3, top_of_grid
assert all(np.isfinite(h.last("loss")) for _, h, _ in chosen.values())

# %% [markdown]
# **What to notice.**
# - Every method passes 85 % test accuracy after 158 steps (the lowest is
#   {glue:text}`lowest_test_accuracy`), and every adaptive method except FTRL beats
#   plain SGD by at least a point when all get the same five-value tuning budget. The ranking *within*
#   the adaptive methods is not robust: it changes with the seed, the budget and the grid, so do not read
#   much into the order of the top rows.
# - Several winners (at least three, printed above) sit at the top of their grids: a two-epoch budget
#   rewards aggressive steps, and a wider grid might do better still; equal budgets are the point here.
#   AdaGrad's tuned $\eta$ is ten times Adam's, because its denominator keeps growing; AdaDelta needs
#   $\eta \approx 1$, the paper's value.
# - Per step, the adaptive methods cost a few extra elementwise passes over the parameters, small next to
#   the forward and backward pass even for this tiny network; the milliseconds per step column is a
#   median, and differences of a millisecond or two between methods are within the timing noise of a
#   shared CPU. FTRL, designed for linear models, trains this network too but is not a natural choice.
#
# ## PyTorch and Keras implement the "same" optimizer differently
#
# `companion.optim` implements each method in both conventions (`convention="torch"` or `"keras"`), and its
# tests check each against `torch.optim` and `keras.optimizers`. The defaults it records, `optim.DEFAULTS`,
# make the differences a table:

# %%
EPSILON_FORM = {
    "sgd": ("—", "—", "momentum buffer holds gradients (torch) or steps (Keras)"),
    "adagrad": ("outside the root", "inside the root", "initial accumulator 0 vs 0.1"),
    "adadelta": ("inside the root", "inside the root", "Keras' lr 0.001 scales the paper's step down 1000x"),
    "rmsprop": ("outside the root", "inside the root", "torch `alpha` = Keras `rho`; momentum on direction vs step"),
    "adam": ("outside $\\sqrt{\\hat v_t}$", "outside $\\sqrt{v_t}$ ('epsilon hat')", "same formula, different $\\epsilon$ scale early on"),
    "adamw": ("outside $\\sqrt{\\hat v_t}$", "outside $\\sqrt{v_t}$ ('epsilon hat')", "default decay 0.01 vs 0.004"),
    "adamax": ("inside the max: $\\max(\\beta_2 u, |g|+\\epsilon)$", "added to $u_t$", ""),
    "nadam": ("outside $\\sqrt{\\hat v_t}$", "outside $\\sqrt{\\hat v_t}$", "momentum schedule $0.96^{0.004t}$ vs $0.96^{t}$"),
}


def fmt(settings):
    return ", ".join(f"{k.replace('learning_rate', 'lr')}={v:g}" for k, v in settings.items())


conventions = pd.DataFrame(
    [
        dict(method=name, torch_defaults=fmt(d["torch"]), keras_defaults=fmt(d["keras"]),
             torch_epsilon=EPSILON_FORM[name][0], keras_epsilon=EPSILON_FORM[name][1], note=EPSILON_FORM[name][2])
        for name, d in optim.DEFAULTS.items()
    ]
    + [dict(method="ftrl", torch_defaults="(no FTRL in torch)", keras_defaults="lr=0.001, initial_accumulator=0.1",
            torch_epsilon="—", keras_epsilon="—", note="for sparse linear models")]
).set_index("method")
conventions

# %% tags=["remove-input"]
assert set(EPSILON_FORM) == set(optim.DEFAULTS)  # the table covers every method companion knows
assert optim.DEFAULTS["adam"]["torch"]["eps"] == 1e-8 and optim.DEFAULTS["adam"]["keras"]["eps"] == 1e-7
assert optim.DEFAULTS["adadelta"]["keras"]["learning_rate"] == 1e-3

# %% [markdown]
# Three of these differences, measured:
#
# 1. **Where Adam's $\epsilon$ sits.** PyTorch divides by $\sqrt{\hat v_t} + \epsilon$. Keras uses the
#    paper's "epsilon hat" form $\eta\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\, \frac{m_t}{\sqrt{v_t} + \hat\epsilon}$,
#    which equals PyTorch's with $\epsilon = \hat\epsilon/\sqrt{1-\beta_2^t}$: at step 1 Keras' $\epsilon$ is
#    effectively $\sqrt{1000}\approx 32$ times larger. That only matters when gradients are as small as
#    $\epsilon$, so we feed both a constant gradient of $10^{-8}$.
# 2. **Nadam's momentum schedule** $\mu_t = \beta_1(1-\tfrac12 0.96^{t\psi})$: PyTorch's $\psi = 0.004$
#    warms $\mu_t$ up over thousands of steps, Keras' $\psi = 1$ over tens.
# 3. **AdaDelta's learning rate**: Keras' default $\eta = 0.001$ versus the paper's (and PyTorch's) 1.

# %%
def step_sizes(transformation, gradient=1e-8, steps=3000):
    params = [np.zeros(1)]
    state = transformation.init(params)
    sizes = []
    for _ in range(steps):
        updates, state = transformation.update([np.full(1, gradient)], state, params)
        params = optim.apply_updates(params, updates)
        sizes.append(abs(updates[0][0]))
    return np.array(sizes)


tiny = {
    "torch form, $\\epsilon$=1e-8": step_sizes(optim.adam(1.0, eps=1e-8, convention="torch")),
    "Keras form, $\\hat\\epsilon$=1e-8": step_sizes(optim.adam(1.0, eps=1e-8, convention="keras")),
    "Keras defaults, $\\hat\\epsilon$=1e-7": step_sizes(optim.adam(1.0, convention="keras")),
}
adadelta_runs = {}
for convention in ("torch", "keras"):
    seed_everything(0)
    adadelta_runs[f"AdaDelta, {convention} defaults ({fmt(optim.DEFAULTS['adadelta'][convention])})"] = train_classifier(
        mlp().to(device), optim.adadelta(convention=convention), x_train, y_train,
        epochs=2, batch_size=128, progress=False,
    )

fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
for label, sizes in tiny.items():
    axes[0].plot(np.arange(1, len(sizes) + 1), sizes, label=label)
axes[0].set_xscale("log")
axes[0].set_xlabel("optimizer step")
axes[0].set_ylabel("|step| / $\\eta$ (gradient $10^{-8}$)")
axes[0].set_title("Adam, tiny gradients: same $\\epsilon$, different steps", fontsize=11)
axes[0].legend(fontsize=9)
t = np.arange(1, 3001)
for label, convention in (("torch, $\\psi$=0.004", "torch"), ("Keras, $\\psi$=1", "keras")):
    axes[1].plot(t, nadam_momentum(optim.nadam(convention=convention), steps=len(t)), label=label)
axes[1].set_xscale("log")
axes[1].set_xlabel("optimizer step")
axes[1].set_ylabel("Nadam momentum coefficient $\\mu_t$")
axes[1].set_title("Nadam: Keras warms momentum up 250x faster", fontsize=11)
axes[1].legend(fontsize=9)
plot_histories(adadelta_runs, "loss", ax=axes[2], smooth=10, ylabel="training loss (10-batch mean)")
axes[2].set_title("AdaDelta with Keras' lr=0.001 barely learns", fontsize=11)
axes[2].legend(fontsize=8)
plt.show()

# %% tags=["remove-input"]
sizes_torch, sizes_keras = tiny["torch form, $\\epsilon$=1e-8"], tiny["Keras form, $\\hat\\epsilon$=1e-8"]
print(f"step 1: torch {sizes_torch[0]:.3f}, keras {sizes_keras[0]:.4f}; step 3000: {sizes_torch[-1]:.3f} vs {sizes_keras[-1]:.3f}")
assert sizes_torch[0] / sizes_keras[0] > 10
assert sizes_torch[-1] / sizes_keras[-1] < 1.2
losses = {k: np.mean(h.series("loss")[1][-20:]) for k, h in adadelta_runs.items()}
print(losses)
torch_loss, keras_loss = losses.values()
assert keras_loss > 2.0 and torch_loss < 0.6, losses

# %% [markdown]
# **What to notice.** With the same $\epsilon = 10^{-8}$ and a gradient of $10^{-8}$, PyTorch's first Adam
# step is about $\eta/2$ and Keras' about $\eta/30$; the two forms only meet after a few thousand steps,
# when $\sqrt{1-\beta_2^t}\to 1$. On ordinary gradients (much larger than $\epsilon$) the difference
# vanishes, which is why porting a model between frameworks usually "just works" — until it meets a
# layer with tiny gradients, or someone tunes $\epsilon$ (large values such as $10^{-3}$ or $1$ are common in
# some fields) and expects the number to mean the same thing in both. AdaDelta with Keras' default
# learning rate takes steps a thousand times smaller than the paper's method and leaves the loss near
# $\ln 10 \approx 2.3$ after two epochs; the Keras documentation itself suggests $\eta = 1.0$.
#
# ### The Keras way beside the PyTorch way
#
# In PyTorch the optimizer wraps the parameters (`torch.optim.Adam(model.parameters(), lr=1e-3)`) and the
# loop is yours; in Keras the optimizer is passed to `model.compile` and `model.fit` runs the loop. Any
# `companion` transformation becomes a Keras optimizer through
# `companion.optim.keras_adapter.KerasReferenceOptimizer`. We train the same MLP for one epoch with
# `keras.optimizers.Adam()` and with `KerasReferenceOptimizer(optim.adam(convention="keras"))`, from the
# same initial weights and on the same batches. (Importing Keras with its TensorFlow backend takes several
# seconds, so this part is kept short.)

# %%
from companion.quiet import quiet_tensorflow  # noqa: E402

with quiet_tensorflow():  # TensorFlow's C++ start-up messages stay off the page
    import keras  # noqa: E402  (imported here: it is slow, and only this section needs it)

from companion.optim.keras_adapter import KerasReferenceOptimizer  # noqa: E402


def keras_mlp():
    return keras.Sequential(
        [keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)]
    )


class BatchLoss(keras.callbacks.Callback):
    """Keras reports the running mean of the epoch's loss after every batch; keep it."""

    def on_train_begin(self, logs=None):
        self.values = []

    def on_train_batch_end(self, batch, logs=None):
        self.values.append(logs["loss"])


seed_everything(0)
initial_weights = keras_mlp().get_weights()
keras_curves = {}
for label, optimizer in (
    ("keras.optimizers.Adam()", keras.optimizers.Adam()),
    ('KerasReferenceOptimizer(optim.adam(convention="keras"))', KerasReferenceOptimizer(optim.adam(convention="keras"))),
):
    model = keras_mlp()
    model.set_weights(initial_weights)
    # The last layer outputs logits, so the loss must be told: from_logits=True.
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    recorder = BatchLoss()
    model.fit(images[:10_000], labels[:10_000], batch_size=128, epochs=1, shuffle=False, verbose=0,
              callbacks=[recorder])
    keras_curves[label] = np.array(recorder.values)

fig, ax = plt.subplots()
for (label, values), style in zip(keras_curves.items(), ("-", "--")):
    ax.plot(np.arange(1, len(values) + 1), values, style, label=label)
ax.set_xlabel("optimizer step")
ax.set_ylabel("training loss (running mean over the epoch)")
ax.set_title("Keras' Adam and companion's Keras-convention Adam: one curve")
ax.legend()
plt.show()

# %% tags=["remove-input"]
keras_gap = np.max(np.abs(np.subtract(*keras_curves.values())))
print(f"largest difference between the two loss curves: {keras_gap:.2e}")
assert keras_gap < 1e-3, keras_gap

# %% [markdown]
# **What to notice.** The two curves coincide (they differ by float32 rounding only). The PyTorch
# equivalent of that Keras cell is `train_classifier(model, torch.optim.Adam(model.parameters()), ...)`;
# the optimizer's *name* is the same, but the $\epsilon$ (and, for other methods, much more) is not, as the
# table shows. A pitfall common to both: the network outputs logits, so the loss must apply the softmax
# itself (`from_logits=True` in Keras, `CrossEntropyLoss` in PyTorch). A `softmax` layer before either
# trains, but worse.
#
# ## Pitfalls
#
# - **L2 is not weight decay for Adam.** `torch.optim.Adam(weight_decay=...)` is an L2 term that the
#   adaptive scaling distorts; use `AdamW` for decoupled decay, and retune $\lambda$ when switching.
# - **Dropping or half-applying the bias correction** makes the first steps several times too large
#   with the default betas.
# - **Same name, different optimizer.** Moving between PyTorch and Keras changes $\epsilon$'s meaning,
#   RMSprop's decay (0.99 vs 0.9), AdaGrad's initial accumulator and AdaDelta's learning rate. Spell out
#   every hyperparameter when you port a result.
# - **AdaGrad on long non-convex runs** stalls because its effective learning rate only shrinks.
# - **Expecting sparsity from an L1 penalty with a (sub)gradient method.** Exact zeros need a proximal
#   step such as FTRL's.
#
# ## Summary
#
# | method | divides the step by | extra idea | `companion.optim` |
# |---|---|---|---|
# | AdaGrad {cite}`duchi2011` | root of the *sum* of squared gradients | effective lr $\propto 1/\sqrt t$ | `adagrad` |
# | RMSProp {cite}`tieleman2012` | root of a *moving average* of squares | forgets the past | `rmsprop` |
# | AdaDelta {cite}`zeiler2012` | RMS of gradients, times RMS of past steps | units of $\theta$, no $\eta$ | `adadelta` |
# | Adam {cite}`kingma2015` | bias-corrected moving RMS | momentum, bias correction | `adam` |
# | AdamW {cite}`loshchilov2019` | as Adam | weight decay outside the scaling | `adamw` |
# | Adamax {cite}`kingma2015` | decaying max of $\lvert g\rvert$ | $L^\infty$ norm | `adamax` |
# | Nadam {cite}`dozat2016` | as Adam | Nesterov look-ahead | `nadam` |
# | FTRL {cite}`mcmahan2013` | root of the sum of squares | proximal L1 step: exact zeros | `ftrl` |
#
# Adaptive methods make one learning rate work across coordinates whose gradients differ by orders of
# magnitude; on our MNIST network all of them but FTRL (a linear-model method) beat plain SGD at an equal
# tuning budget. Adam with
# bias correction is the usual default, AdamW when you regularise, FTRL for sparse linear models. And the
# framework matters: the same name can hide a different $\epsilon$, decay or learning rate.
#
# ## Exercises
#
# ### Exercise 1 (Implement it): Adam from scratch
#
# Write `my_adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8)` returning an `optim.GradientTransformation`
# (an `init`/`update` pair) that implements Adam *with* bias correction, in PyTorch's convention
# ($\epsilon$ added to $\sqrt{\hat v_t}$). Parameters and gradients are lists of NumPy arrays; `update`
# returns the *step* $u_t$ (so that `optim.apply_updates(params, u)` gives $\theta_{t+1}$) and a new state;
# it must not modify its inputs. The check compares it with `optim.adam` and `torch.optim.Adam` over several
# steps.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "adaptive-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
def my_adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8):
    ### BEGIN SOLUTION
    def init(params):
        return (0, [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params])

    def update(grads, state, params=None):
        count, ms, vs = state
        t = count + 1
        ms = [b1 * m + (1 - b1) * g for m, g in zip(ms, grads)]
        vs = [b2 * v + (1 - b2) * g * g for v, g in zip(vs, grads)]
        steps = [
            -learning_rate * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps) for m, v in zip(ms, vs)
        ]
        return steps, (t, ms, vs)

    return optim.GradientTransformation(init, update)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "adaptive-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def run_numpy(transformation, steps=25, seed=0):
    """Minimise f(w) = sum(a w^2 + sin(3 w)) over two arrays; return the final parameters."""
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=(4, 3)), rng.normal(size=5)]
    scales = [rng.uniform(0.1, 10.0, size=p.shape) for p in params]
    state = transformation.init(params)
    for _ in range(steps):
        grads = [2 * a * p + 3 * np.cos(3 * p) for a, p in zip(scales, params)]
        frozen = [g.copy() for g in grads]
        updates, state = transformation.update(grads, state, params)
        assert all(np.array_equal(g, f) for g, f in zip(grads, frozen)), "update must not modify the gradients"
        params = optim.apply_updates(params, updates)
    return params


for mine, reference in zip(run_numpy(my_adam(1e-2)), run_numpy(optim.adam(1e-2))):
    assert np.allclose(mine, reference, rtol=1e-9, atol=1e-12), "differs from companion.optim.adam"
first = my_adam(0.1).update([np.ones(3)], my_adam(0.1).init([np.zeros(3)]), [np.zeros(3)])[0][0]
assert np.allclose(first, -0.1), "the first step of bias-corrected Adam is -lr * sign(g) (for |g| >> eps)"
### BEGIN HIDDEN TESTS
for kwargs in (dict(b1=0.5, b2=0.9, eps=1e-3), dict(b1=0.0, b2=0.99, eps=1e-8), dict(b1=0.95, b2=0.9999, eps=0.1)):
    for mine, reference in zip(run_numpy(my_adam(3e-2, **kwargs), seed=1), run_numpy(optim.adam(3e-2, **kwargs), seed=1)):
        assert np.allclose(mine, reference, rtol=1e-9, atol=1e-12), kwargs
rng = np.random.default_rng(2)
start_w = rng.normal(size=(3, 2))
torch_w = torch.tensor(start_w, requires_grad=True)
torch_opt = torch.optim.Adam([torch_w], lr=0.05, betas=(0.8, 0.99), eps=1e-6)
np_params = [start_w.copy()]
transformation = my_adam(0.05, b1=0.8, b2=0.99, eps=1e-6)
np_state = transformation.init(np_params)
for _ in range(15):
    torch_opt.zero_grad()
    (torch.sin(torch_w) * torch_w).sum().backward()
    torch_opt.step()
    grads = [np.sin(np_params[0]) + np_params[0] * np.cos(np_params[0])]
    updates, np_state = transformation.update(grads, np_state, np_params)
    np_params = optim.apply_updates(np_params, updates)
assert np.allclose(np_params[0], torch_w.detach().numpy(), rtol=1e-7, atol=1e-10), "differs from torch.optim.Adam"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (Implement it): RMSProp, plain and centered
#
# Write `my_rmsprop(learning_rate, decay=0.99, eps=1e-8, centered=False)` returning an
# `optim.GradientTransformation` that implements RMSProp in PyTorch's convention:
#
# $$
# v_t = \rho\, v_{t-1} + (1-\rho)\, g_t^2, \qquad
# u_t = -\eta\, \frac{g_t}{\sqrt{v_t} + \epsilon},
# $$
#
# with $v_0 = 0$ and no bias correction. With `centered=True` it also keeps the moving average of the
# gradients, $\bar g_t = \rho\, \bar g_{t-1} + (1-\rho)\, g_t$ ($\bar g_0 = 0$), and divides by
# $\sqrt{v_t - \bar g_t^2} + \epsilon$ instead: an estimate of the gradient's standard deviation rather
# than of its root mean square. As in Exercise 1, parameters and gradients are lists of NumPy arrays,
# `update` returns the steps $u_t$ and a new state, and it must not modify its inputs. Reject a `decay`
# outside $[0, 1)$ or a negative `eps` with a `ValueError` that names the argument. It must reproduce
# `torch.optim.RMSprop(params, lr=learning_rate, alpha=decay, eps=eps, centered=centered)` and
# `optim.rmsprop(learning_rate, decay=decay, eps=eps, centered=centered)`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "adaptive-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
def my_rmsprop(learning_rate, decay=0.99, eps=1e-8, centered=False):
    """RMSProp (Tieleman & Hinton, 2012) in torch's form: u = -lr * g / (sqrt(v) + eps)."""
    ### BEGIN SOLUTION
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"Invalid decay: {decay} (must be in [0, 1))")
    if not eps >= 0.0:
        raise ValueError(f"Invalid eps: {eps} (must be >= 0)")

    def init(params):
        return ([np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params])

    def update(grads, state, params=None):
        mean_squares, means = state
        mean_squares = [decay * v + (1 - decay) * g * g for v, g in zip(mean_squares, grads)]
        means = [decay * m + (1 - decay) * g for m, g in zip(means, grads)]
        scales = [v - m * m for v, m in zip(mean_squares, means)] if centered else mean_squares
        steps = [-learning_rate * g / (np.sqrt(s) + eps) for g, s in zip(grads, scales)]
        return steps, (mean_squares, means)

    return optim.GradientTransformation(init, update)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "adaptive-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error


def ex2_torch_gap(learning_rate, decay, eps, centered, steps=15, seed=0):
    """Largest difference from torch.optim.RMSprop after `steps` steps on sum(sin(w) * w)."""
    start = np.random.default_rng(seed).normal(size=(3, 2))
    torch_w = torch.tensor(start, requires_grad=True)
    torch_opt = torch.optim.RMSprop([torch_w], lr=learning_rate, alpha=decay, eps=eps, centered=centered)
    transformation = my_rmsprop(learning_rate, decay=decay, eps=eps, centered=centered)
    params = [start.copy()]
    state = transformation.init(params)
    for _ in range(steps):
        torch_opt.zero_grad()
        (torch.sin(torch_w) * torch_w).sum().backward()
        torch_opt.step()
        grads = [np.sin(params[0]) + params[0] * np.cos(params[0])]
        updates, state = transformation.update(grads, state, params)
        params = optim.apply_updates(params, updates)
    return np.abs(params[0] - torch_w.detach().numpy()).max()


ex2_first = my_rmsprop(0.01).update([np.full(3, 2.0)], my_rmsprop(0.01).init([np.zeros(3)]), [np.zeros(3)])[0][0]
assert np.allclose(ex2_first, -0.01 / np.sqrt(0.01), rtol=1e-6), f"no bias correction: v_1 = 0.01 * g^2, so the first step is -lr * g / sqrt(0.01 g^2) = -0.1; got {ex2_first}"
for ex2_centered in (False, True):
    ex2_gap = ex2_torch_gap(0.01, 0.99, 1e-8, ex2_centered)
    assert ex2_gap < 1e-10, f"centered={ex2_centered}: after 15 steps your parameters differ from torch.optim.RMSprop by {ex2_gap:.1e}"
### BEGIN HIDDEN TESTS
for ex2_kwargs in (dict(decay=0.9, eps=1e-3, centered=False), dict(decay=0.5, eps=1e-8, centered=True),
                   dict(decay=0.0, eps=1e-6, centered=False), dict(decay=0.999, eps=0.1, centered=True)):
    for ex2_mine, ex2_ref in zip(run_numpy(my_rmsprop(3e-2, **ex2_kwargs), seed=1), run_numpy(optim.rmsprop(3e-2, **ex2_kwargs), seed=1)):
        assert np.allclose(ex2_mine, ex2_ref, rtol=1e-9, atol=1e-12), f"{ex2_kwargs}: differs from optim.rmsprop by up to {np.abs(ex2_mine - ex2_ref).max():.1e}"
    ex2_gap = ex2_torch_gap(0.05, seed=2, **ex2_kwargs)
    assert ex2_gap < 1e-10, f"{ex2_kwargs}: differs from torch.optim.RMSprop by {ex2_gap:.1e}"
for ex2_name, ex2_args in [("decay", dict(decay=1.0)), ("decay", dict(decay=-0.1)), ("eps", dict(eps=-1e-8))]:
    expect_error(lambda: my_rmsprop(0.01, **ex2_args), ValueError, ex2_name,
                 when=f"my_rmsprop(0.01, {ex2_name}={ex2_args[ex2_name]})")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 (Derive it): AdaGrad on a constant slope
#
# Feed AdaGrad (with $\epsilon = 0$ and an initial accumulator $s_0 \ge 0$) the same gradient $g \ne 0$
# at every step.
#
# (a) Show that after $t$ steps its effective learning rate is $\eta / \sqrt{s_0 + t g^2}$. Write it in
# `adagrad_effective_lr(learning_rate, gradient, t, initial_accumulator=0.0)`.
#
# (b) With $s_0 = 0$ (PyTorch's default), what is the length of step $t$, and how far has the parameter
# moved after $T$ steps? Bound the sum between two expressions in $\sqrt{T}$.
#
# (c) With $\eta = 0.01$, about how many steps does AdaGrad need to move a parameter by 1, and how many
# does RMSProp need with the same $\eta$? With Keras' $s_0 = 0.1$ and a small gradient $g = 0.01$, what
# is the effective learning rate of the first steps, and for how long does $s_0$ dominate?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "adaptive-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
def adagrad_effective_lr(learning_rate, gradient, t, initial_accumulator=0.0):
    ### BEGIN SOLUTION
    return learning_rate / np.sqrt(initial_accumulator + t * gradient**2)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "adaptive-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert np.isclose(adagrad_effective_lr(0.01, 2.0, 4), 0.0025, rtol=1e-12), f"eta = 0.01, g = 2, t = 4: s_4 = 4 * 2^2 = 16, so the effective rate is 0.01 / 4 = 0.0025; got {adagrad_effective_lr(0.01, 2.0, 4)}"
### BEGIN HIDDEN TESTS
for ex3_lr, ex3_g, ex3_t, ex3_s0 in [(0.01, 1.0, 2574, 0.0), (0.01, 0.01, 5, 0.1), (0.5, -3.0, 17, 0.0), (0.1, 1e-3, 1000, 0.1)]:
    ex3_w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    ex3_opt = torch.optim.Adagrad([ex3_w], lr=ex3_lr, eps=0.0, initial_accumulator_value=ex3_s0)
    for _ in range(ex3_t):
        ex3_w.grad = torch.full((2,), ex3_g, dtype=torch.float64)
        ex3_opt.step()
    ex3_expected = ex3_lr / ex3_opt.state[ex3_w]["sum"][0].sqrt().item()  # torch.optim.Adagrad's rate after t steps
    ex3_found = adagrad_effective_lr(ex3_lr, ex3_g, ex3_t, ex3_s0)
    assert np.isclose(ex3_found, ex3_expected, rtol=1e-9), f"lr = {ex3_lr}, g = {ex3_g}, t = {ex3_t}, s0 = {ex3_s0}: torch.optim.Adagrad's effective rate is {ex3_expected:.6g}, got {ex3_found}"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "adaptive-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) Every step adds $g^2$ to the accumulator, so $s_t = s_0 + t g^2$ and the step is
# $-\eta\, g/\sqrt{s_t}$: the effective learning rate is $\eta/\sqrt{s_0 + t g^2}$.
#
# (b) With $s_0 = 0$ the step has length $\eta |g| / (\sqrt t\, |g|) = \eta/\sqrt t$, whatever the size
# of $g$: AdaGrad normalises the gradient away, then shrinks the step like $1/\sqrt t$. All steps point
# the same way, so the distance after $T$ steps is $D_T = \eta \sum_{t=1}^T t^{-1/2}$. Comparing the sum
# with integrals of the decreasing function $t^{-1/2}$,
# $2\eta(\sqrt{T+1} - 1) \le D_T \le \eta(2\sqrt T - 1)$: the parameter moves like $2\eta\sqrt T$, not
# like $\eta T$.
#
# (c) To move by 1 with $\eta = 0.01$ we need $\sum_{t \le T} t^{-1/2} \ge 100$, so $2\sqrt T \approx 100$
# and $T \approx 2\,500$ (exactly 2,574). RMSProp on a constant gradient has
# $v_t = (1 - \rho^t) g^2$ and steps $\eta/\sqrt{1 - \rho^t} \ge \eta$, so it needs at most 100 steps.
# This is the stalling of AdaGrad seen in the figure of this chapter. With Keras' $s_0 = 0.1$ and
# $g = 0.01$, the first effective rates are $\eta/\sqrt{0.1 + t\cdot 10^{-4}} \approx 3.2\,\eta$, so the
# steps are about $0.03\,\eta$ long instead of PyTorch's $\eta$: the initial accumulator dominates until
# $t g^2 \approx s_0$, about 1,000 steps. It caps the first steps of coordinates with small gradients, a
# safety net that makes the same $\eta$ mean much smaller steps in Keras than in PyTorch.
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 (Investigate): when does Adam become SGD with momentum?
#
# Train the MLP (one epoch, batch 128) with `optim.adam(learning_rate, eps=eps)` for
# $\epsilon \in \{10^{-8}, 10^{-4}, 10^{-2}, 1\}$, keeping $\eta/\epsilon$ fixed for the large values so that
# the steps stay comparable, and compare the final training losses with SGD with momentum 0.9. Also
# measure the typical size of $\sqrt{\hat v_t}$ of the first layer. For which $\epsilon$ does Adam behave like
# SGD with momentum, and with which SGD learning rate? Explain with the update rule.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "adaptive-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
# For eps >> sqrt(v_hat), the Adam direction m_hat / (sqrt(v_hat) + eps) ~= m_hat / eps, and
# m_hat (an EMA of gradients) = (1 - b1) * (PyTorch's momentum buffer): Adam(lr, eps) ~= SGD(lr * (1 - b1) / eps, momentum=b1).
root_v = []
train_and_watch(optim.adam(1e-3), 79, lambda step, state, updates: root_v.append(
    median_over_live_weights((state[1].nu[0] / (1 - 0.999 ** state[1].count)).sqrt())))
print(f"median sqrt(v_hat) of the first layer after one epoch: {root_v[-1]:.1e}")

ratio = 1.0  # learning rate / eps for the large eps values
eps_runs = {}
for eps in (1e-8, 1e-4, 1e-2, 1.0):
    lr = 1e-3 if eps < 1e-3 else ratio * eps
    seed_everything(0)
    eps_runs[f"Adam, eps={eps:g}, lr={lr:g}"] = train_classifier(
        mlp().to(device), optim.adam(lr, eps=eps), x_train, y_train, epochs=1, batch_size=128, progress=False)
seed_everything(0)
eps_runs[f"SGD, momentum 0.9, lr={ratio * (1 - 0.9):g}"] = train_classifier(
    mlp().to(device), optim.sgd(ratio * (1 - 0.9), momentum=0.9), x_train, y_train, epochs=1, batch_size=128,
    progress=False)
for name, h in eps_runs.items():
    print(f"{name:32s} final loss (mean of last 10 batches) {np.mean(h.series('loss')[1][-10:]):.3f}")
ax = plot_histories(eps_runs, "loss", smooth=10, ylabel="training loss (10-batch mean)",
                    title="With a large epsilon, Adam turns into SGD with momentum")
plt.show()
### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "adaptive-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# The typical $\sqrt{\hat v_t}$ of the first layer is about $6\times 10^{-4}$ (the printout). With
# $\epsilon = 10^{-8}$ or $10^{-4}$, $\epsilon \lesssim \sqrt{\hat v_t}$ and Adam is (almost) fully adaptive:
# the two loss curves nearly coincide. With $\epsilon = 1$, $\sqrt{\hat v_t} + \epsilon \approx \epsilon$ for every weight and
# the direction is $\hat m_t/\epsilon$; since $\hat m_t$ is an exponential moving average of the gradients,
# $(1-\beta_1)$ times PyTorch's momentum buffer (after the first few steps, when the bias correction is
# $\approx 1$), Adam($\eta$, $\epsilon$) is SGD with momentum $\beta_1$ and learning rate
# $\eta(1-\beta_1)/\epsilon$, here $1 \times 0.1 = 0.1$: its loss curve follows the SGD one closely (Adam's
# first steps are a little larger, by the bias correction $1/(1-\beta_1^t)$ of $\hat m_t$, which SGD's buffer
# lacks). $\epsilon = 10^{-2}$ is in between: weights with $\sqrt{\hat v_t} \gg 10^{-2}$ are still scaled,
# the others (most of the first layer) are not. So $\epsilon$ is not only a guard against division by zero: it sets a gradient scale below which
# Adam stops adapting, and large values (used in some reinforcement-learning and large-model recipes)
# deliberately move Adam towards SGD with momentum.
# :::
# <!-- ### END SOLUTION -->
