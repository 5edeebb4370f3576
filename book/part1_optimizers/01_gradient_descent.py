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
# # 1. Gradient descent
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part1_optimizers/01_gradient_descent.ipynb)
#
# Training a network means making a number small: the average loss $J(\theta)$ of the parameters
# $\theta$ over the training set. Every optimizer in this book, from plain SGD to Adam, follows the
# same recipe: compute (an estimate of) the gradient $\nabla J(\theta)$, and take a step against it.
# This chapter is about that recipe and its two knobs, the **learning rate** and the **batch size**.
# We study them first where everything can be computed exactly (a quadratic, then a convex model of
# MNIST), then on the multilayer perceptron that the rest of Part I trains.

# %% tags=["hide-input"]
# Setup: on Colab (or anywhere companion is missing) install the course package.
try:
    import companion
except ImportError:
    %pip install -q "dl-optimization-companion[torch,keras] @ git+https://github.com/YOUR-ORG/dl-optimization-hands-on@main"
    import companion

# %% tags=["keep-when-grading"]
import copy

import matplotlib.pyplot as plt
import numpy as np
import torch
from threadpoolctl import threadpool_limits

from companion import gradient_descent
from companion.data import load_mnist
from companion.optim import sgd
from companion.plotting import plot_histories, use_course_style
from companion.reproducibility import pick_device, seed_everything
from companion.training import accuracy, as_tensors, mlp, train_classifier

use_course_style()
seed_everything(0)
device = pick_device()
# The models of this chapter are small: one CPU thread runs them about as fast as several, and keeps
# the timings below steady when other programs share the machine. (On a GPU this changes nothing.)
torch.set_num_threads(1)
threadpool_limits(1)
print("device:", device)

# %% [markdown]
# ## 1.1 The update rule
#
# The training loss is an average over the $n$ training examples,
#
# $$
# J(\theta) = \frac{1}{n} \sum_{i=1}^{n} \ell(\theta; x_i, y_i).
# $$
#
# **Gradient descent** (GD) moves the parameters a small step against its gradient,
#
# $$
# \theta_{t+1} = \theta_t - \eta\, \nabla J(\theta_t),
# $$
#
# where $\eta > 0$ is the *learning rate*. One step of GD reads the whole training set. **Stochastic
# gradient descent** (SGD) {cite}`robbins1951` replaces the gradient by an estimate computed on a random
# *mini-batch* $B_t$ of $B$ examples:
#
# $$
# g_t = \frac{1}{B} \sum_{i \in B_t} \nabla \ell(\theta_t; x_i, y_i), \qquad
# \theta_{t+1} = \theta_t - \eta\, g_t .
# $$
#
# $B = 1$ is "pure" SGD, $B = n$ is GD again, and everything in between is *mini-batch SGD*, what deep
# learning calls SGD. The estimate is unbiased, $\mathbb{E}[g_t] = \nabla J(\theta_t)$, and its error
# shrinks as the batch grows: for a batch drawn without replacement,
#
# $$
# \mathbb{E}\,\lVert g_t - \nabla J(\theta_t) \rVert^2 = \frac{n - B}{n - 1}\, \frac{\sigma^2}{B},
# \qquad \sigma^2 = \frac{1}{n} \sum_{i=1}^{n} \lVert \nabla \ell_i - \nabla J \rVert^2 .
# $$
#
# A step costs about $B$ times the work of one example, so the batch size trades the *noise* of a step
# against its *cost*, and the learning rate decides how far each step goes {cite}`bottou2018`
# {cite}`goodfellow2016`. The rest of the chapter measures both trades.

# %% [markdown]
# ## 1.2 The learning rate, on a quadratic
#
# Near a minimum every smooth loss looks like a quadratic, $J(\theta) = \tfrac12 \theta^\top H \theta$
# with a symmetric positive definite Hessian $H$. Its gradient is $H\theta$, so one GD step is
#
# $$
# \theta_{t+1} = (I - \eta H)\, \theta_t .
# $$
#
# Along an eigenvector of $H$ with eigenvalue $\lambda$, the coordinate is multiplied by $1 - \eta\lambda$
# at every step. It shrinks if and only if $|1 - \eta\lambda| < 1$, that is $0 < \eta < 2/\lambda$. The
# largest eigenvalue $L = \lambda_{\max}(H)$ (the *curvature*, or smoothness constant) decides for all of
# them:
#
# $$
# \text{GD converges on a quadratic} \iff \eta < \frac{2}{L}.
# $$
#
# The best constant step, $\eta^\star = 2/(L + \mu)$ with $\mu = \lambda_{\min}(H)$, contracts the error by
# $(L - \mu)/(L + \mu)$ per step. Below we take $H = \mathrm{diag}(1, 10)$, so $L = 10$, $2/L = 0.2$,
# and try four learning rates: too small, the best one, just below $2/L$ and just above it.

# %%
H = np.diag([1.0, 10.0])
mu, L = np.linalg.eigvalsh(H)[[0, -1]]
theta0 = np.array([-4.0, 1.5])


def quadratic_loss(theta):
    return 0.5 * theta @ H @ theta


def gradient_descent_path(learning_rate, steps=40):
    path = [theta0]
    for _ in range(steps):
        path.append(path[-1] - learning_rate * H @ path[-1])
    return np.array(path)


learning_rates = {
    "too small": 0.02,
    "best, 2/(L+μ)": 2 / (L + mu),
    "just below 2/L": 0.195,
    "just above 2/L": 0.205,
}
paths = {name: gradient_descent_path(lr) for name, lr in learning_rates.items()}
losses = {name: np.array([quadratic_loss(t) for t in path]) for name, path in paths.items()}
for name, lr in learning_rates.items():
    print(f"{name:>15}: η = {lr:.3f}, η·L = {lr * L:.2f}, J after 40 steps = {losses[name][-1]:.3g}")

# %%
fig, (ax_path, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.4))
grid = np.linspace(-4.5, 4.5, 200)
T1, T2 = np.meshgrid(grid, np.linspace(-2.5, 2.5, 200))
ax_path.contour(T1, T2, 0.5 * (H[0, 0] * T1**2 + H[1, 1] * T2**2), levels=12, colors="0.8", linewidths=0.8)
for name, path in paths.items():
    shown = path[:16] if name != "just above 2/L" else path[:12]
    ax_path.plot(shown[:, 0], shown[:, 1], "o-", ms=3, label=name)
ax_path.set(xlim=(-4.5, 4.5), ylim=(-2.5, 2.5), xlabel=r"$\theta_1$ (flat direction, $\lambda = 1$)",
            ylabel=r"$\theta_2$ (steep direction, $\lambda = 10$)",
            title="Steps zig-zag in the steep direction near 2/L")
ax_path.legend(loc="lower right", fontsize=8)
for name, loss in losses.items():
    ax_loss.semilogy(loss, label=f"{name} (η = {learning_rates[name]:.3f})")
ax_loss.set(xlabel="GD step", ylabel=r"loss $J(\theta_t)$ (log scale)", title="Above 2/L = 0.2 the loss explodes")
ax_loss.legend(fontsize=8)
fig.tight_layout()

# %% tags=["remove-input"]
# The claims above, checked: the stability limit is 2/L, the best step is 2/(L+mu), and the rate is |1 - eta*lambda|.
assert losses["just above 2/L"][-1] > 10 * losses["just above 2/L"][0]  # diverges
assert losses["just below 2/L"][-1] < 0.02 * losses["just below 2/L"][0]  # converges, slowly
assert losses["best, 2/(L+μ)"][-1] < 1e-6 * losses["best, 2/(L+μ)"][0]
assert min(losses, key=lambda k: losses[k][-1]) == "best, 2/(L+μ)"
for name, lr in learning_rates.items():
    rate = max(abs(1 - lr * mu), abs(1 - lr * L)) ** 2  # the loss is quadratic in theta: squared rate
    assert np.isclose(losses[name][-1] / losses[name][-2], rate, rtol=0.05), name

# %% [markdown]
# **What to notice.**
# - The learning rate is measured in units of $1/L$. With $\eta$ "too small" the flat direction
#   ($\lambda = 1$) barely moves: it shrinks by $1 - 0.02 = 0.98$ per step.
# - Just below $2/L$ the steep coordinate flips sign at every step (the factor $1 - \eta L = -0.95$):
#   the familiar zig-zag. Just above $2/L$ the flip *grows* by $|1 - 2.05| = 1.05$ per step and the loss
#   explodes, even though the step is only {fixed}`5%` larger.
# - The best learning rate balances the two directions. How much GD can do depends on the *condition
#   number* $L/\mu$: Chapter 2 shows how momentum improves on it.

# %% [markdown]
# ## 1.3 A convex problem: softmax regression on MNIST
#
# Our first real data set is MNIST {cite}`lecun1998`: {fixed}`28×28` grey-scale digits. The simplest model is
# softmax (multinomial logistic) regression on the raw pixels: 10 scores $z = W^\top x + b$, and the
# cross-entropy loss
#
# $$
# J(W, b) = \frac{1}{n}\sum_{i=1}^n -\log \frac{e^{z_{i, y_i}}}{\sum_k e^{z_{ik}}}, \qquad
# \nabla_W J = \frac{1}{n} X^\top (P - Y), \quad \nabla_b J = \frac{1}{n} \mathbf{1}^\top (P - Y),
# $$
#
# with $P$ the predicted probabilities and $Y$ the one-hot labels. The loss is convex, its gradient is
# exact and cheap, and `companion.gradient_descent` implements it in a few lines of NumPy (checked against
# finite differences and `torch.autograd` in the tests).
#
# The curvature is no longer constant, but at the start ($W = 0$, every probability $1/10$) it can be
# computed: the Hessian is $\frac{1}{10}(I - \frac{1}{10}\mathbf 1 \mathbf 1^\top) \otimes
# \frac{1}{n}\tilde X^\top \tilde X$ ($\tilde X$ the pixels with a column of ones), so
# $L_0 = \lambda_{\max}(\tilde X^\top \tilde X / n) / 10$.

# %% tags=["keep-when-grading"]
x_train, y_train = load_mnist("train", limit=20_000)
x_test, y_test = load_mnist("test")
print("train:", x_train.shape, "test:", x_test.shape, "pixel range:", x_train.min(), x_train.max())

# The convex experiments use the first 10,000 training images, as flat 784-pixel vectors.
X = x_train[:10_000].reshape(10_000, -1)
y = y_train[:10_000]
n = len(X)
X_tilde = np.hstack([X, np.ones((n, 1), np.float32)]).astype(np.float64)
L0 = np.linalg.eigvalsh(X_tilde.T @ X_tilde / n)[-1] / 10
params0 = gradient_descent.softmax_regression_init(784, 10, dtype=np.float32)
print(f"curvature at the start L0 = {L0:.2f}, so 2/L0 = {2 / L0:.3f}")
print(f"loss at the start = {gradient_descent.softmax_regression_loss(params0, X, y):.4f} (= log 10 = {np.log(10):.4f})")

# %% [markdown]
# Full-batch GD (`batch_size=n` in `gradient_descent.minibatch_sgd`, with the reference `companion.optim.sgd`
# computing $u_t = -\eta g_t$) for 25 steps, at a learning rate ten times smaller than $2/L_0$, at about
# $2/L_0$, and at four times $2/L_0$:

# %%
gd_rates = [0.05, 0.5, 2.0]
gd_runs = {}
for lr in gd_rates:
    _, gd_runs[lr] = gradient_descent.minibatch_sgd(params0, X, y, sgd(lr), batch_size=n, epochs=25, name=f"η = {lr}")

ax = plot_histories({f"η = {lr}  ({lr * L0 / 2:.1f} × 2/L0)": h for lr, h in gd_runs.items()}, "loss",
                    ylabel="training loss (cross-entropy, nats)",
                    title="Full-batch GD: η ≈ 2/L0 descends steadily, 4× that bounces")
ax.axhline(np.log(10), color="0.6", ls=":", lw=1)
ax.set_xlabel("GD step (= epoch)");

# %% tags=["remove-input"]
gd_loss = {lr: h.series("loss")[1] for lr, h in gd_runs.items()}
assert np.all(np.diff(gd_loss[0.5]) < 0)  # about 2/L0: monotone descent
assert gd_loss[2.0].max() > 2 * np.log(10)  # 4 x 2/L0: the loss climbs well above where it started
assert np.any(np.diff(gd_loss[2.0]) > 0)
assert gd_loss[0.05][-1] > 1.3 > 0.6 > gd_loss[0.5][-1]  # ten times too small: far behind after 25 steps
assert 0.45 < 2 / L0 < 0.56

# %% [markdown]
# **What to notice.** The stability limit of the quadratic predicts the real problem well: at
# $\eta \approx 2/L_0$ the loss falls at every step; at $4 \times 2/L_0$ the first steps overshoot and
# the loss climbs far above $\log 10$, where it started. Unlike the quadratic it does not explode for
# ever: as the predictions grow confident the softmax flattens, the curvature falls below $2/\eta$, and
# GD recovers. This is why a learning rate that is "too large" at the start of training can be fine
# later, the idea behind warm-up (Part II).

# %% [markdown]
# ## 1.4 Gradient noise against batch size
#
# How noisy is a mini-batch gradient? We take the parameters after the 25 steps of GD above, draw many
# mini-batches of each size, and measure $\lVert g_B - \nabla J \rVert^2$ around the full gradient.
# `gradient_descent.minibatch_gradient_variance` gives the exact expectation (the formula of §1.1, from the
# per-example gradients), so the measurement can be checked against it.

# %%
params_mid, _ = gradient_descent.minibatch_sgd(params0, X, y, sgd(0.5), batch_size=n, epochs=25)
full_gradient = np.concatenate([g.ravel() for g in gradient_descent.softmax_regression_gradient(params_mid, X, y)])
batch_sizes = [1, 4, 16, 64, 256, 1024, 4096]
noise_rng = np.random.default_rng(0)
measured, exact = [], []
for B in batch_sizes:
    draws = []
    for _ in range(300 if B <= 64 else 40):
        batch = noise_rng.choice(n, size=B, replace=False)
        g = np.concatenate([g.ravel() for g in gradient_descent.softmax_regression_gradient(params_mid, X[batch], y[batch])])
        draws.append(np.sum((g - full_gradient) ** 2))
    measured.append(np.mean(draws))
    exact.append(gradient_descent.minibatch_gradient_variance(params_mid, X, y, B))
measured, exact = np.array(measured), np.array(exact)
sigma2 = exact[0]  # B = 1: the variance of one example's gradient, sigma^2
print(f"squared norm of the full gradient: {full_gradient @ full_gradient:.4f}")
for B, m, e in zip(batch_sizes, measured, exact):
    print(f"B = {B:5d}: measured {m:.4f}, exact {e:.4f}, sigma^2/B = {sigma2 / B:.4f}")

# %%
fig, ax = plt.subplots()
ax.loglog(batch_sizes, measured, "o", ms=7, label="measured (mean over sampled batches)")
ax.loglog(batch_sizes, exact, "-", label=r"exact: $\frac{n-B}{n-1}\,\sigma^2/B$")
ax.loglog(batch_sizes, sigma2 / np.array(batch_sizes), "--", label=r"$\sigma^2/B$ (the $1/B$ line)")
ax.axhline(full_gradient @ full_gradient, color="0.5", ls=":", label=r"$\|\nabla J\|^2$ (the signal)")
ax.set(xlabel="batch size B (examples)", ylabel=r"$E\,\|g_B - \nabla J\|^2$ (squared gradient units)",
       title="Gradient noise falls as 1/B (faster as B nears n)")
ax.legend(fontsize=9);

# %% tags=["remove-input"]
assert np.allclose(measured, exact, rtol=0.25)  # sampling agrees with the formula
slope = np.polyfit(np.log(batch_sizes[:-2]), np.log(measured[:-2]), 1)[0]
assert -1.1 < slope < -0.9, slope  # the 1/B law up to B = 256
assert measured[-1] < 0.75 * sigma2 / batch_sizes[-1]  # the finite-population correction at B = 4096 of 10,000
assert measured[0] > 100 * full_gradient @ full_gradient  # one example: noise far larger than the signal
assert measured[-1] < full_gradient @ full_gradient < exact[-2]  # only B = 4096 brings it below the signal

# %% [markdown]
# **What to notice.** After 25 steps of GD the full gradient is already small, and the noise of a single
# example is more than a thousand times its squared norm, which is why $B = 1$ needs a small learning
# rate; here only $B = 4096$ brings the noise below the signal. Each fourfold increase of $B$ divides the noise by four, and near
# $B = n$ it falls even faster: a batch of the whole set has no noise at all. Halving the noise costs
# twice the computation per step, a price worth paying only while noise, not curvature, limits the step.

# %% [markdown]
# ## 1.5 Batch size: progress per epoch against progress per second
#
# Same model, four batch sizes, each with a learning rate that works for it (found by a coarse search;
# small batches need smaller steps): pure SGD ($B=1$), two mini-batch sizes, and full-batch GD. We
# record the full training loss ten times per epoch, and the training time excluding those
# evaluations.

# %%
batch_runs = {}
for B, lr, epochs in [(1, 0.01, 1), (32, 0.3, 3), (512, 0.5, 10), (n, 0.5, 40)]:
    label = f"B = {B}" + (" (full batch)" if B == n else "") + f", η = {lr}"
    _, batch_runs[B] = gradient_descent.minibatch_sgd(params0, X, y, sgd(lr), batch_size=B, epochs=epochs,
                                            evals_per_epoch=1 if B == n else 10, name=label)
    h = batch_runs[B]
    print(f"{label:>30}: {h.last('seconds') / epochs:.3f} s per epoch, loss after {epochs} epochs {h.last('loss'):.3f}")

# %%
fig, (ax_ep, ax_s) = plt.subplots(1, 2, figsize=(12, 4.2))
for B, h in batch_runs.items():  # log axes: leave out the starting point at 0 epochs, 0 s
    ax_ep.plot(h.series("epoch")[1][1:], h.series("loss")[1][1:], ".-" if B == n else "-", label=h.name)
    ax_s.plot(h.series("seconds")[1][1:], h.series("loss")[1][1:], ".-" if B == n else "-", label=h.name)
for ax in (ax_ep, ax_s):
    ax.axhline(np.log(10), color="0.6", ls=":", lw=1, label="start: log 10")
ax_ep.set(xscale="log", xlim=(0.05, 40), ylim=(0.2, 2.4), xlabel="epochs (passes over the 10,000 images, log scale)",
          ylabel="training loss (nats)", title="Per epoch, small batches win")
ax_s.set(xscale="log", xlim=(0.005, 2), ylim=(0.2, 2.4), xlabel="training time (s, log scale)",
         ylabel="training loss (nats)", title="Per second, mid-sized batches win")
ax_ep.legend(fontsize=8)
ax_s.legend(fontsize=8)
fig.tight_layout()


# %% tags=["remove-input"]
def loss_at_epoch(h, epoch):
    e, loss = h.series("epoch")[1], h.series("loss")[1]
    return loss[np.argmin(abs(e - epoch))]


def seconds_to_reach(h, target):
    loss, s = h.series("loss")[1], h.series("seconds")[1]
    return s[np.argmax(loss < target)] if np.any(loss < target) else np.inf


after_one_epoch = {B: loss_at_epoch(h, 1.0) for B, h in batch_runs.items()}
assert after_one_epoch[1] < after_one_epoch[512] < after_one_epoch[n]  # per epoch: smaller is better
assert after_one_epoch[n] > 1.5 > 0.7 > after_one_epoch[512]
assert after_one_epoch[1] < 0.4
time_to_04 = {B: seconds_to_reach(h, 0.4) for B, h in batch_runs.items()}
assert time_to_04[n] == np.inf  # 40 epochs of GD never get there
assert 3 * max(time_to_04[32], time_to_04[512]) < time_to_04[1]  # per second: mid-sized batches win
per_epoch = {B: h.last("seconds") / h.series("epoch")[1][-1] for B, h in batch_runs.items()}
assert per_epoch[1] > 10 * per_epoch[512]  # one example per step: the per-step overhead dominates

# %% [markdown]
# **What to notice.**
# - *Per epoch* (left), small batches win: for $B=1$ one pass over the data is 10,000 steps, for
#   $B=32$ about 300, while GD has taken one: after that epoch GD is still above 1.5 nats, $B = 1$ below 0.4.
# - *Per second* (right), the order changes. A step has a fixed cost (Python, a function call, a small
#   matrix product that cannot use the processor well), so $B=1$ spends its time on overhead: an epoch
#   takes more than ten times longer than with $B=512$. Mid-sized batches get most of the per-step progress of
#   small batches at a fraction of the cost per example.
# - Full-batch GD is the slowest by both measures on this problem: each of its steps is exact, but an
#   exact step is not worth 10,000 noisy ones {cite}`bottou2018`.

# %% [markdown]
# ## 1.6 The MLP on MNIST: reference SGD and `torch.optim.SGD`
#
# Now the network that the rest of Part I trains: a multilayer perceptron 784-128-10 with a ReLU,
# trained on 20,000 images with `companion.training.train_classifier`. The optimizer is
# `companion.optim.sgd`, the course's reference implementation, plugged into PyTorch through the
# `ReferenceOptimizer` adapter (that is what `train_classifier` does with a companion optimizer).
# Same initial weights, same data order: its loss curve must be the one of `torch.optim.SGD`.

# %%
Xtr, ytr = as_tensors(x_train.reshape(len(x_train), -1), y_train, device)
Xte, yte = as_tensors(x_test.reshape(len(x_test), -1), y_test, device)

torch.manual_seed(0)
initial_model = mlp((784, 128, 10)).to(device)

model_ref, model_torch = copy.deepcopy(initial_model), copy.deepcopy(initial_model)
h_ref = train_classifier(model_ref, sgd(0.1), Xtr, ytr, x_val=Xte, y_val=yte,
                         batch_size=64, epochs=1, name="companion.optim.sgd(0.1)")
h_torch = train_classifier(model_torch, torch.optim.SGD(model_torch.parameters(), lr=0.1), Xtr, ytr,
                           x_val=Xte, y_val=yte, batch_size=64, epochs=1, name="torch.optim.SGD(lr=0.1)")
gap = np.max(np.abs(h_ref.series("loss")[1] - h_torch.series("loss")[1]))
print(f"largest difference between the two loss curves: {gap:.2e}")
print(f"test accuracy after one epoch: reference {h_ref.last('val_accuracy'):.4f}, torch {h_torch.last('val_accuracy'):.4f}")

# %%
ax = plot_histories({h_torch.name: h_torch}, "loss", smooth=20, ylabel="training loss (nats, mean of 20 steps)",
                    title="The reference SGD retraces torch.optim.SGD")
steps, values = h_ref.series("loss")
ax.plot(steps[19:], np.convolve(values, np.ones(20) / 20, mode="valid"), "--", color="k", lw=1.2, label=h_ref.name)
ax.legend();

# %% tags=["remove-input"]
assert len(h_ref.series("loss")[1]) == len(h_torch.series("loss")[1]) == 313  # 20,000 / 64, rounded up
assert gap < 1e-4  # float32 rounding only
assert abs(h_ref.last("val_accuracy") - h_torch.last("val_accuracy")) <= 0.002
assert h_ref.last("val_accuracy") > 0.85

# %% [markdown]
# ## 1.7 Batch size on the MLP: time per epoch, loss per epoch and per second
#
# First the cost. We time 150 steps at each batch size (the median step, so a hiccup of the machine
# does not count) and multiply by the number of steps in an epoch of 20,000 images.

# %%
timing_sizes = [1, 4, 16, 64, 256, 1024, 4096]
seconds_per_step = {}
for B in timing_sizes:
    model = copy.deepcopy(initial_model)
    steps = 150 if B <= 256 else 25
    h = train_classifier(model, torch.optim.SGD(model.parameters(), lr=0.01), Xtr, ytr, batch_size=B,
                         epochs=-(-steps * B // len(Xtr)), max_steps=steps, progress=False)
    seconds_per_step[B] = np.median(np.diff(h.series("seconds")[1])[5:])  # skip warm-up steps
seconds_per_epoch = {B: s * -(-len(Xtr) // B) for B, s in seconds_per_step.items()}
for B in timing_sizes:
    print(f"B = {B:5d}: {1e3 * seconds_per_step[B]:7.2f} ms per step, {seconds_per_epoch[B]:6.2f} s per epoch")

# %%
fig, ax = plt.subplots()
ax.loglog(timing_sizes, [seconds_per_epoch[B] for B in timing_sizes], "o-", label="time per epoch (20,000 images)")
ax.loglog(timing_sizes, [seconds_per_step[B] for B in timing_sizes], "s--", label="time per step")
ax.set(xlabel="batch size B (examples)", ylabel="seconds",
       title="Small batches pay a fixed cost per step")
ax.legend();

# %% tags=["remove-input"]
assert seconds_per_epoch[1] > 5 * seconds_per_epoch[1024]
assert seconds_per_step[16] < 2 * seconds_per_step[1]  # 16 examples cost about what one costs
assert seconds_per_step[1024] < 200 * seconds_per_step[1]  # 1024 x the examples for far less than 1024 x the time
assert seconds_per_epoch[64] < seconds_per_epoch[1]
assert all(np.isfinite(seconds_per_step[B]) for B in timing_sizes)

# %% [markdown]
# **What to notice.** Up to a dozen or so examples a step costs about the same whatever its size: the
# time goes to launching operations, not to arithmetic. The time per epoch therefore falls almost as
# $1/B$ at first, then flattens once the arithmetic dominates. On a GPU the flat part stretches to much
# larger batches, which is why GPU training uses them.
#
# Now the progress. Three batch sizes with the same learning rate $\eta = 0.1$, three epochs each:

# %%
mlp_runs = {}
for B in [16, 128, 1024]:
    model = copy.deepcopy(initial_model)
    mlp_runs[B] = train_classifier(model, sgd(0.1), Xtr, ytr, x_val=Xte, y_val=yte, batch_size=B, epochs=3,
                                   name=f"B = {B}")
    print(f"B = {B:4d}: {mlp_runs[B].last('seconds'):.1f} s, test accuracy after 3 epochs {mlp_runs[B].last('val_accuracy'):.4f}")

# %%
fig, (ax_ep, ax_s) = plt.subplots(1, 2, figsize=(12, 4.2))
for B, h in mlp_runs.items():
    steps, values = h.series("loss")
    k = max(1, min(50, len(values) // 30))  # smooth over ~1/30 of the run
    smoothed = np.convolve(values, np.ones(k) / k, mode="valid")
    epochs_axis = steps[k - 1:] * B / len(Xtr)
    seconds = h.series("seconds")[1][k - 1:]
    ax_ep.plot(epochs_axis, smoothed, label=h.name)
    ax_s.plot(seconds, smoothed, label=h.name)
ax_ep.set(xlabel="epochs", ylabel="training loss (nats, running mean)", ylim=(0, 2.4),
          title="Same η: per epoch, small batches win")
ax_s.set(xlabel="training time (s)", ylabel="training loss (nats, running mean)", ylim=(0, 2.4),
         title="B = 1024 at η = 0.1 is behind per second too")
ax_ep.legend()
ax_s.legend()
fig.tight_layout()

# %% tags=["remove-input"]
acc = {B: h.last("val_accuracy") for B, h in mlp_runs.items()}
assert acc[16] > acc[128] > acc[1024]
assert acc[16] - acc[1024] > 0.03
assert mlp_runs[1024].last("train_loss") > 2 * mlp_runs[16].last("train_loss")
assert len(mlp_runs[1024].series("loss")[1]) == 60 and len(mlp_runs[16].series("loss")[1]) == 3750
assert mlp_runs[1024].last("seconds") < mlp_runs[16].last("seconds")  # cheaper per example
t_end = mlp_runs[1024].last("seconds")  # ... but behind at the same wall-clock time:
s16, l16 = mlp_runs[16].series("seconds")[1], mlp_runs[16].series("loss")[1]
assert np.mean(l16[(s16 > 0.5 * t_end) & (s16 <= t_end)]) < 0.5 * np.mean(mlp_runs[1024].series("loss")[1][-5:])

# %% [markdown]
# **What to notice.** At a fixed learning rate a larger batch makes fewer steps of the same length, so
# after the same number of epochs it is behind: $B=1024$ took 60 steps in three epochs, $B = 16$ took
# 3,750. The per-second view shows its steps are cheaper per example, but not enough to catch up.
# Larger batches *allow* larger learning rates, because their gradients are less noisy (§1.4), up to the
# curvature limit of §1.2: the exercises explore how far.

# %% [markdown]
# ## 1.8 Pitfall: `nn.Softmax` before `nn.CrossEntropyLoss`
#
# A popular snippet ends the model with a softmax, "so that it outputs probabilities":
#
# ```python
# model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10), nn.Softmax(dim=1))
# loss = nn.CrossEntropyLoss()(model(x), y)   # wrong: CrossEntropyLoss applies log-softmax itself
# ```
#
# `nn.CrossEntropyLoss` expects *logits* and applies `log_softmax` itself, so this model computes
# $-\log \operatorname{softmax}(\operatorname{softmax}(z))_y$. The outputs of the first softmax lie in
# $[0, 1]$, so the second one can never be confident: even a perfect prediction $(1, 0, \dots, 0)$ gets
# the probability $e/(e + 9)$, and the loss can never go below
#
# $$
# -\log\frac{e}{e + 9} = \log\left(1 + \frac{9}{e}\right) \approx 1.461 .
# $$
#
# Worse, the gradient passes through the Jacobian of the first softmax, which vanishes as soon as a
# prediction saturates, right or wrong. We train both models from the same weights and compare.

# %%
def last_layer_gradient_norm(model, x, y):
    """Norm of the loss gradient for the last Linear layer's weights, on a fixed batch."""
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    return last.weight.grad.norm().item()


probe_x, probe_y = Xtr[:2000], ytr[:2000]
pitfall = {}
for name, add_softmax in [("logits into CrossEntropyLoss (right)", False), ("Softmax, then CrossEntropyLoss (wrong)", True)]:
    model = copy.deepcopy(initial_model)
    if add_softmax:
        model = torch.nn.Sequential(model, torch.nn.Softmax(dim=1))
    grad_at_init = last_layer_gradient_norm(model, probe_x, probe_y)
    history = train_classifier(model, sgd(0.1), Xtr, ytr, x_val=Xte, y_val=yte, batch_size=64, epochs=2, name=name)
    pitfall[name] = dict(history=history, model=model, grad_init=grad_at_init,
                         grad_end=last_layer_gradient_norm(model, probe_x, probe_y))
    print(f"{name}: last-layer gradient norm {grad_at_init:.4f} at init, {pitfall[name]['grad_end']:.4f} after 2 epochs; "
          f"test accuracy {history.last('val_accuracy'):.4f}; final train loss {history.last('train_loss'):.3f}")

right, wrong = pitfall.values()

# %%
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.2))
plot_histories({k: v["history"] for k, v in pitfall.items()}, "loss", smooth=25, ax=ax_loss,
               ylabel="training loss (nats, mean of 25 steps)", title="Softmax before CE: loss stuck above 1.46")
ax_loss.axhline(np.log(1 + 9 / np.e), color="0.4", ls=":", label="floor log(1 + 9/e)")
ax_loss.legend(fontsize=8)


def logit_gradient_norms_of_mistakes(model, x, y):
    """Per-example norm of d(loss)/d(logits), for the examples the model gets wrong."""
    logits = (model[0] if isinstance(model[-1], torch.nn.Softmax) else model)(x).detach().requires_grad_()
    outputs = torch.softmax(logits, dim=1) if isinstance(model[-1], torch.nn.Softmax) else logits
    torch.nn.functional.cross_entropy(outputs, y, reduction="sum").backward()
    wrong_ones = outputs.argmax(dim=1) != y
    return logits.grad[wrong_ones].norm(dim=1).cpu().numpy()


mistakes = {k: logit_gradient_norms_of_mistakes(v["model"], probe_x, probe_y) for k, v in pitfall.items()}
ax_acc.hist(list(mistakes.values()), bins=np.logspace(-4, 0.2, 30), label=list(mistakes))
ax_acc.set(xscale="log", xlabel="norm of the loss gradient w.r.t. the logits (per misclassified example)",
           ylabel="misclassified training images", title="Softmax before CE hides the gradient of mistakes")
ax_acc.legend(fontsize=8)
fig.tight_layout()

# %% tags=["remove-input"]
floor = np.log(1 + 9 / np.e)
wrong_losses = wrong["history"].series("loss")[1]
assert wrong_losses.min() > floor  # the loss can never reach the floor, let alone 0
assert right["history"].last("train_loss") < 0.5 < floor
assert wrong["grad_init"] < 0.5 * right["grad_init"]  # the softmax Jacobian shrinks the gradient from step one
assert wrong["grad_end"] < 0.5 * right["grad_end"]
acc_right, acc_wrong = right["history"].last("val_accuracy"), wrong["history"].last("val_accuracy")
assert acc_right > acc_wrong + 0.08  # same data, same steps, same initial weights
median_right, median_wrong = (np.median(m) for m in mistakes.values())
assert median_wrong < 0.2 * median_right  # saturation: confident mistakes send almost no gradient back
assert mistakes[right["history"].name].min() >= 2**-0.5 - 1e-6  # a mistake under softmax + CE: |p - y| >= 1/sqrt(2)
assert np.mean(mistakes[wrong["history"].name] < 0.1) > 0.5  # most mistakes of the wrong model: below 0.1
print(f"median gradient norm of a mistake: {median_right:.3f} (right) vs {median_wrong:.4f} (wrong)")
print(f"accuracy: {acc_right:.3f} (right) vs {acc_wrong:.3f} (wrong)")

# %% [markdown]
# **What to notice.**
# - From the first step the wrong model's last layer gets about a tenth of the gradient (the Jacobian
#   of the extra softmax multiplies it by probabilities around $1/10$), and its loss stays above the
#   1.461-nat floor.
# - The right panel shows the saturation. With logits into the loss, the gradient of a misclassified
#   example with respect to the logits is $p - y$, whose norm is at least $1/\sqrt{2}$: a mistake always
#   pushes back. Behind the extra softmax, a confident mistake has a softmax output near one-hot, where
#   the softmax Jacobian vanishes, so most mistakes send back less than a tenth of that, many less than a
#   hundredth: the model cannot learn from the examples it most needs to fix.
# - After the same two epochs the wrong model is far less accurate on the test set. Nothing crashes,
#   nothing warns: the model just trains worse. The fix is to feed logits to `CrossEntropyLoss` and to apply
# `torch.softmax` only when you need probabilities, at prediction time.

# %% [markdown]
# ## 1.9 The Keras way
#
# The same MLP and plain SGD in Keras. `model.compile` takes the optimizer and the loss, `model.fit`
# runs the mini-batch loop. The Keras loss takes a `from_logits` flag: with a final `Dense(10)` and no
# activation it must be `True`. (Keras' default, `from_logits=False`, expects a final `softmax`
# activation; combining a softmax activation with `from_logits=True` is the pitfall above again.)
# Here on 5,000 images for two epochs, to keep it quick.

# %%
from companion.quiet import quiet_tensorflow  # noqa: E402

with quiet_tensorflow():  # TensorFlow's C++ start-up messages stay off the page
    import keras  # noqa: E402  (imported here: only this section needs it)

keras.utils.set_random_seed(0)
keras_model = keras.Sequential([
    keras.Input(shape=(784,)),
    keras.layers.Dense(128, activation="relu"),
    keras.layers.Dense(10),  # logits
])
keras_model.compile(
    optimizer=keras.optimizers.SGD(learning_rate=0.1),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
keras_history = keras_model.fit(x_train[:5000].reshape(5000, -1), y_train[:5000], batch_size=64, epochs=2, verbose=0)
keras_loss, keras_accuracy = keras_model.evaluate(x_test.reshape(len(x_test), -1), y_test, batch_size=1000, verbose=0)
print("training loss per epoch:", np.round(keras_history.history["loss"], 3))
print(f"test accuracy after 2 epochs on 5,000 images: {keras_accuracy:.4f}")

# %% tags=["remove-input"]
assert keras_history.history["loss"][1] < keras_history.history["loss"][0]
assert keras_accuracy > 0.8

# %% [markdown]
# ## Summary
#
# - GD steps against the full gradient, SGD against an unbiased estimate from a mini-batch; its noise
#   falls as $1/B$ (with a correction near $B = n$), and a single example's gradient is noisier than the
#   gradient itself.
# - On a quadratic GD converges exactly when $\eta < 2/L$. On softmax regression the curvature at the
#   start gives the same limit, $2/L_0 \approx 0.5$; far above it the loss climbs before it falls.
# - Small batches make the most progress per epoch, mid-sized batches the most per second: a step has
#   a fixed cost that a batch of one cannot amortize, and full-batch steps are exact but rare.
# - The reference `companion.optim.sgd` trains a PyTorch model through the adapter exactly as
#   `torch.optim.SGD` does; in Keras the same thing is `compile(optimizer=keras.optimizers.SGD(...))`.
# - Never put `nn.Softmax` before `nn.CrossEntropyLoss`: the loss floors at 1.46, the gradients shrink,
#   and the model trains worse without any error.

# %% [markdown]
# ## Exercises
#
# ### Exercise 1 (Implement it): one epoch of mini-batch SGD
#
# Write `sgd_epoch(params, X, y, learning_rate, batch_size, order)`: one epoch of plain mini-batch SGD
# on softmax regression. `params` is the pair `(W, b)`, `order` a permutation of the example indices;
# the $k$-th step uses the examples `order[k*batch_size:(k+1)*batch_size]` (the last batch may be
# smaller) and moves the parameters by $-\eta$ times `gradient_descent.softmax_regression_gradient` on that batch.
# Return the new pair; do not modify the arrays you were given. The check compares your epoch with the
# course's loop, `gradient_descent.minibatch_sgd` driven by `companion.optim.sgd`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "gd-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
def sgd_epoch(params, X, y, learning_rate, batch_size, order):
    ### BEGIN SOLUTION
    W, b = params
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        dW, db = gradient_descent.softmax_regression_gradient((W, b), X[batch], y[batch])
        W, b = W - learning_rate * dW, b - learning_rate * db
    return W, b
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "gd-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
check_X, check_y = X[:1000], y[:1000]
order = np.random.default_rng(7).permutation(len(check_X))  # the order gradient_descent.minibatch_sgd(seed=7) uses
mine = sgd_epoch(params0, check_X, check_y, 0.3, 64, order)
reference, _ = gradient_descent.minibatch_sgd(params0, check_X, check_y, sgd(0.3), batch_size=64, epochs=1, seed=7)
assert len(mine) == 2 and mine[0].shape == (784, 10) and mine[1].shape == (10,), "return the pair (W, b) with W of shape (784, 10) and b of shape (10,)"
assert np.allclose(mine[0], reference[0], atol=1e-5) and np.allclose(mine[1], reference[1], atol=1e-5), f"after one epoch your parameters differ from minibatch_sgd's by up to {max(np.abs(mine[0] - reference[0]).max(), np.abs(mine[1] - reference[1]).max()):.2e} (visit the batches in the given order, each step on the batch mean gradient)"
assert np.all(params0[0] == 0), "sgd_epoch must not modify the parameters it was given"
### BEGIN HIDDEN TESTS
# A batch as large as the data set is one step of gradient descent.
dW, db = gradient_descent.softmax_regression_gradient(params0, check_X, check_y)
one_step = sgd_epoch(params0, check_X, check_y, 0.5, len(check_X), np.arange(len(check_X)))
assert np.allclose(one_step[0], -0.5 * dW, atol=1e-6) and np.allclose(one_step[1], -0.5 * db, atol=1e-6), "with one batch of the whole data set, an epoch is one gradient step: -lr * gradient"
# A batch size that does not divide n: the last, smaller batch must be used too.
order = np.random.default_rng(3).permutation(300)
mine = sgd_epoch(params0, X[:300], y[:300], 0.1, 7, order)
reference, _ = gradient_descent.minibatch_sgd(params0, X[:300], y[:300], sgd(0.1), batch_size=7, epochs=1, seed=3)
assert np.allclose(mine[0], reference[0], atol=1e-5) and np.allclose(mine[1], reference[1], atol=1e-5), "a batch size that does not divide n: the last, smaller batch must be used too"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (Implement it): a backtracking (Armijo) line search
#
# The stable learning rate depends on the curvature, which we rarely know in advance. A *backtracking
# line search* chooses the step at every iteration instead: try a rate $\eta_0$, and multiply it by
# $\beta \in (0, 1)$ until the step decreases the loss by at least a fraction $c$ of what the gradient
# promises, the *Armijo condition*
#
# $$
# J(\theta - \eta\, g) \le J(\theta) - c\, \eta\, \lVert g \rVert^2, \qquad g = \nabla J(\theta).
# $$
#
# Write `armijo_step_size(loss, theta, gradient, eta0=1.0, beta=0.5, c=1e-4)` that returns, as a
# float, the first of $\eta_0, \beta\eta_0, \beta^2\eta_0, \dots$ that satisfies the condition.
# `loss` is a function of a 1-D NumPy array that returns a float, `theta` the current point (a 1-D
# array, which you must not modify) and `gradient` the gradient $\nabla J(\theta)$, of the same shape.
# Raise a `ValueError` whose message names the argument if `eta0` is not positive, or if `beta` or
# `c` is not strictly between 0 and 1. On the quadratic of §1.2, $J(\theta) = \frac12 \theta^\top
# \mathrm{diag}(1, 10)\, \theta$ from $\theta_0 = (-4, 1.5)$, it must return $0.125$, below $2/L = 0.2$.
# The check also runs it on `scipy.optimize.rosen` and on the softmax regression loss of §1.3.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "gd-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
def armijo_step_size(loss, theta, gradient, eta0=1.0, beta=0.5, c=1e-4):
    """Backtracking line search: the first eta0 * beta**k with J(theta - eta g) <= J(theta) - c eta |g|^2."""
    ### BEGIN SOLUTION
    if not eta0 > 0:
        raise ValueError(f"eta0 must be positive, got {eta0}")
    if not 0 < beta < 1:
        raise ValueError(f"beta must lie strictly between 0 and 1, got {beta}")
    if not 0 < c < 1:
        raise ValueError(f"c must lie strictly between 0 and 1, got {c}")
    start = loss(theta)
    squared_norm = float(np.sum(gradient * gradient))
    eta = float(eta0)
    while loss(theta - eta * gradient) > start - c * eta * squared_norm:
        eta *= beta
    return eta
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "gd-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error
import scipy.optimize

ex2_H = np.diag([1.0, 10.0])
ex2_theta = np.array([-4.0, 1.5])
ex2_eta = armijo_step_size(lambda t: 0.5 * t @ ex2_H @ t, ex2_theta, ex2_H @ ex2_theta)
assert isinstance(ex2_eta, float) and ex2_eta == 0.125, f"on the quadratic from (-4, 1.5) the rates 1, 0.5 and 0.25 fail the Armijo condition and 0.125 passes: expected 0.125, got {ex2_eta!r}"
assert np.array_equal(ex2_theta, [-4.0, 1.5]), "armijo_step_size must not modify theta"
for ex2_name, ex2_args in [("eta0", dict(eta0=0.0)), ("beta", dict(beta=1.0)), ("c", dict(c=0.0))]:
    expect_error(lambda: armijo_step_size(lambda t: 0.5 * t @ ex2_H @ t, ex2_theta, ex2_H @ ex2_theta, **ex2_args),
                 ValueError, ex2_name, when=f"armijo_step_size(loss, theta, gradient, {ex2_name}={ex2_args[ex2_name]})")
### BEGIN HIDDEN TESTS
def ex2_is_armijo_step(loss, theta, gradient, eta, eta0, beta, c):
    """True when eta = eta0 * beta**k satisfies the condition and eta / beta (if k > 0) does not."""
    k = int(round(np.log(eta / eta0) / np.log(beta))) if eta > 0 else -1
    if k < 0 or not np.isclose(eta, eta0 * beta**k, rtol=1e-12, atol=0):
        return False

    def passes(e):
        return loss(theta - e * gradient) <= loss(theta) - c * e * float(np.sum(gradient * gradient))

    return passes(eta) and (k == 0 or not passes(eta0 * beta ** (k - 1)))


ex2_rng = np.random.default_rng(0)
for ex2_point in [np.array([-1.2, 1.0]), np.array([0.5, 0.5]), ex2_rng.normal(size=5)]:
    ex2_gradient = scipy.optimize.rosen_der(ex2_point)
    for ex2_eta0, ex2_beta, ex2_c in [(1.0, 0.5, 1e-4), (0.3, 0.8, 0.3), (2.0, 0.1, 0.5)]:
        ex2_eta = armijo_step_size(scipy.optimize.rosen, ex2_point, ex2_gradient, ex2_eta0, ex2_beta, ex2_c)
        assert ex2_is_armijo_step(scipy.optimize.rosen, ex2_point, ex2_gradient, ex2_eta, ex2_eta0, ex2_beta, ex2_c), f"Rosenbrock at {ex2_point}, eta0={ex2_eta0}, beta={ex2_beta}, c={ex2_c}: {ex2_eta!r} is not the first eta0 * beta**k that satisfies the Armijo condition"
# Zero gradient: the first trial already satisfies the condition.
assert armijo_step_size(scipy.optimize.rosen, np.ones(3), np.zeros(3), eta0=0.7) == 0.7, "with a zero gradient, eta0 itself satisfies the condition"
# A trial rate that is already small enough is returned unchanged.
assert armijo_step_size(lambda t: 0.5 * t @ ex2_H @ t, ex2_theta, ex2_H @ ex2_theta, eta0=0.1) == 0.1, "eta0 = 0.1 passes on the quadratic: return it"


def ex2_softmax_loss(v):
    return gradient_descent.softmax_regression_loss((v[:-10].reshape(784, 10), v[-10:]), X[:500], y[:500])


ex2_v0 = np.zeros(785 * 10)
ex2_dW, ex2_db = gradient_descent.softmax_regression_gradient((ex2_v0[:-10].reshape(784, 10), ex2_v0[-10:]), X[:500], y[:500])
ex2_gradient = np.concatenate([ex2_dW.ravel(), ex2_db])
ex2_eta = armijo_step_size(ex2_softmax_loss, ex2_v0, ex2_gradient, eta0=16.0)
assert ex2_is_armijo_step(ex2_softmax_loss, ex2_v0, ex2_gradient, ex2_eta, 16.0, 0.5, 1e-4), f"softmax regression from W = 0: {ex2_eta!r} is not the first 16 * 0.5**k that satisfies the Armijo condition"
for ex2_name, ex2_args in [("eta0", dict(eta0=-1.0)), ("beta", dict(beta=0.0)), ("beta", dict(beta=1.5)), ("c", dict(c=1.0))]:
    expect_error(lambda: armijo_step_size(scipy.optimize.rosen, np.ones(2), np.ones(2), **ex2_args),
                 ValueError, ex2_name, when=f"armijo_step_size(loss, theta, gradient, {ex2_name}={ex2_args[ex2_name]})")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 (Derive it): the best constant step and the number of steps
#
# Take the quadratic $J(\theta) = \frac12 \theta^\top H \theta$ of §1.2, with the eigenvalues of $H$ in
# $[\mu, L]$, $0 < \mu < L$, and write $\kappa = L/\mu$ for its condition number.
#
# (a) Show that GD with step $\eta$ satisfies $\lVert \theta_t \rVert \le \rho(\eta)^t \lVert \theta_0
# \rVert$ with the *contraction factor* $\rho(\eta) = \max(|1 - \eta\mu|, |1 - \eta L|)$.
#
# (b) Show that $\rho(\eta)$ is smallest at $\eta^\star = 2/(L + \mu)$, where $\rho^\star =
# (\kappa - 1)/(\kappa + 1)$.
#
# (c) At $\eta^\star$, how many steps guarantee $\lVert \theta_t \rVert \le \varepsilon \lVert \theta_0
# \rVert$? Write `gd_steps_to_tolerance(mu, L, tol)`, the smallest integer $t$ with
# $(\rho^\star)^t \le \varepsilon$ (for $0 < \varepsilon < 1$). Evaluate it for the quadratic of §1.2
# ($\mu = 1$, $L = 10$) and $\varepsilon = 10^{-6}$, compare with the step $\eta = 1/L$, and show that
# for a large $\kappa$ the count grows like $\frac{\kappa}{2} \ln(1/\varepsilon)$.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "gd-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
def gd_steps_to_tolerance(mu, L, tol):
    ### BEGIN SOLUTION
    rate = (L - mu) / (L + mu)
    if rate == 0.0:  # mu = L: one step lands on the minimum
        return 1
    return int(np.ceil(np.log(tol) / np.log(rate)))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "gd-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert gd_steps_to_tolerance(1.0, 10.0, 1e-6) == 69, f"mu = 1, L = 10: (9/11)^t <= 1e-6 first holds at t = 69, got {gd_steps_to_tolerance(1.0, 10.0, 1e-6)}"
### BEGIN HIDDEN TESTS
for ex3_mu, ex3_L, ex3_tol, ex3_expected in [(1.0, 100.0, 1e-3, 346), (0.5, 2.0, 1e-8, 37), (2.0, 3.0, 1e-4, 6),
                                             (1.0, 1000.0, 1e-6, 6908), (0.01, 1.0, 1e-2, 231), (3.0, 7.0, 0.3, 2)]:
    ex3_found = gd_steps_to_tolerance(ex3_mu, ex3_L, ex3_tol)
    assert ex3_found == ex3_expected, f"mu = {ex3_mu}, L = {ex3_L}, tol = {ex3_tol}: expected {ex3_expected} steps, got {ex3_found}"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "gd-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) One step is $\theta_{t+1} = (I - \eta H)\theta_t$, so $\theta_t = (I - \eta H)^t \theta_0$. In the
# orthonormal eigenbasis of $H$ the coordinate along an eigenvalue $\lambda$ is multiplied by
# $(1 - \eta\lambda)^t$, hence $\lVert \theta_t \rVert \le \max_\lambda |1 - \eta\lambda|^t \, \lVert
# \theta_0 \rVert$. The function $\lambda \mapsto |1 - \eta\lambda|$ is convex, so on $[\mu, L]$ its
# maximum sits at an end: $\rho(\eta) = \max(|1 - \eta\mu|, |1 - \eta L|)$ (with equality for
# $\theta_0$ along the worst eigenvector).
#
# (b) As $\eta$ grows, $|1 - \eta\mu|$ first falls and $|1 - \eta L|$ eventually rises; the maximum of the
# two is smallest where they balance with opposite signs, $1 - \eta\mu = \eta L - 1$, that is
# $\eta^\star = 2/(L + \mu)$. There $\rho^\star = 1 - 2\mu/(L + \mu) = (L - \mu)/(L + \mu) =
# (\kappa - 1)/(\kappa + 1)$. Any other $\eta$ makes one of the two factors larger.
#
# (c) $(\rho^\star)^t \le \varepsilon$ holds from $t = \lceil \ln(1/\varepsilon) / \ln(1/\rho^\star) \rceil$
# on. For $\mu = 1$, $L = 10$, $\varepsilon = 10^{-6}$: $\rho^\star = 9/11$ and $13.82 / 0.2007 = 68.8$,
# so **69 steps**. With $\eta = 1/L$ the factor is $1 - \mu/L = 0.9$ and it takes $\lceil 13.82/0.1054
# \rceil = 132$ steps, almost twice as many. For a large $\kappa$, $\ln(1/\rho^\star) = \ln\frac{1 +
# 1/\kappa}{1 - 1/\kappa} \approx 2/\kappa$, so $t \approx \frac{\kappa}{2} \ln(1/\varepsilon)$: the
# number of steps grows linearly with the condition number, the cost that momentum (Chapter 2) cuts to
# $\sqrt{\kappa}$.
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 (Investigate): the largest stable learning rate and the curvature
#
# On 2,000 training images, run full-batch GD on softmax regression for 30 steps at learning rates from
# 0.3 to 1.0 (step 0.05). Call a learning rate *stable* when the loss decreases at every step. Find the
# largest $\eta$ such that it and every smaller one on the grid are stable, and compare it with
# $2/L_0$, computed on the same 2,000 images. Is $2/L_0$ a sharp limit here, as on the quadratic? Why
# or why not? What happens at $2 \times 2/L_0$?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "gd-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
Xs, ys = X[:2000], y[:2000]
Xs_tilde = np.hstack([Xs, np.ones((len(Xs), 1), np.float32)]).astype(np.float64)
L0_small = np.linalg.eigvalsh(Xs_tilde.T @ Xs_tilde / len(Xs))[-1] / 10
grid_rates = np.round(np.arange(0.3, 1.0001, 0.05), 2)
monotone = {}
for lr in grid_rates:
    _, h = gradient_descent.minibatch_sgd(params0, Xs, ys, sgd(float(lr)), batch_size=len(Xs), epochs=30)
    monotone[lr] = bool(np.all(np.diff(h.series("loss")[1]) < 0))
largest_stable = max(lr for lr in grid_rates if all(monotone[r] for r in grid_rates if r <= lr))
print(f"2/L0 = {2 / L0_small:.3f}; largest stable learning rate on the grid: {largest_stable}")
print("learning rates whose loss rises at some step:", [float(lr) for lr in grid_rates if not monotone[lr]])
assert 1.1 <= largest_stable / (2 / L0_small) <= 1.6
assert all(monotone[lr] for lr in grid_rates if lr <= 2 / L0_small)
assert not monotone[1.0]  # about 2 x 2/L0
### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "gd-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# Every learning rate up to $2/L_0 \approx 0.5$ is stable, as the quadratic theory promises, but the
# limit is not sharp: the loss still falls monotonically up to $\eta = 0.65$, about $1.3 \times 2/L_0$;
# the first rises appear just above, and at $\eta = 1.0$, about twice $2/L_0$, the loss rises within a
# few steps. Two reasons. First, $2/L$ is a worst case: a step just above it makes only the top-curvature
# direction grow, by a factor just above 1, and that direction starts with a small component, so it
# takes many steps to show. Second, the curvature of softmax regression is largest at the start
# ($W = 0$, all probabilities $1/10$) and falls as the predictions become confident, so the effective
# $L$ soon drops below $L_0$. The lesson carries over to networks: the curvature sets the scale of the
# usable learning rate, and it changes during training.
# :::
# <!-- ### END SOLUTION -->
