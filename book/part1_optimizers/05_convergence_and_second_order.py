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
# # 5. Convergence and second-order methods
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part1_optimizers/05_convergence_and_second_order.ipynb)
#
# The first four chapters measured optimizers. This one asks what can be *promised*: on a convex problem,
# how fast must gradient descent converge, why SGD with a constant step stops improving, and what a decaying
# step buys. Then it looks past the gradient to the curvature: Newton's method, which uses the Hessian;
# the diagonal preconditioning that Adam resembles; and L-BFGS, which builds a curvature model from the
# last few gradients and is what practitioners reach for on small, deterministic problems.
#
# Everything runs on the convex model of MNIST from chapter 1, in float64, where the minimum can be computed
# to rounding precision and every "gap" $J(\theta_t) - J^\star$ is exact.

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
import scipy.optimize
import torch
from scipy.special import expit
from threadpoolctl import threadpool_limits

from companion import gradient_descent, optim
from companion.data import load_mnist
from companion.glue import glue
from companion.optim import lbfgs, lbfgs_direction
from companion.plotting import use_course_style
from companion.reproducibility import seed_everything

use_course_style()
seed_everything(0)
# Every problem here is small and in float64: one CPU thread runs it about as fast as several (a GPU would
# not help), and keeps the timings steady when other programs share the machine.
torch.set_num_threads(1)
threadpool_limits(1)

# The convex problem: softmax regression on 2,000 MNIST training images (raw pixels in [0, 1]),
# with an L2 term that makes it strongly convex.
images, labels = load_mnist("train", limit=2_000)
X = images.reshape(len(images), -1).astype(np.float64)
y = labels.astype(np.int64)
n, d = X.shape
K = 10  # classes
L2 = 1e-2  # lambda


def unpack(theta):
    """The flat parameter vector as softmax regression's (W, b)."""
    return theta[:-K].reshape(d, K), theta[-K:]


def loss(theta, rows=slice(None)):
    """J(theta) = mean cross-entropy over `rows` + (lambda/2) ||theta||^2."""
    return gradient_descent.softmax_regression_loss(unpack(theta), X[rows], y[rows]) + 0.5 * L2 * theta @ theta


def gradient(theta, rows=slice(None)):
    dW, db = gradient_descent.softmax_regression_gradient(unpack(theta), X[rows], y[rows])
    return np.concatenate([dW.ravel(), db]) + L2 * theta


theta0 = np.zeros(d * K + K)
print(f"{n} images, {theta0.size} parameters, J(0) = {loss(theta0):.4f} (log 10 = {np.log(10):.4f})")

# %% [markdown]
# ## 5.1 What smoothness and strong convexity buy
#
# Two constants describe a twice-differentiable loss $J$ for the analysis. $J$ is **$L$-smooth** if its
# gradient changes at most $L$ times as fast as $\theta$, $\lVert\nabla J(\theta) - \nabla J(\theta')\rVert \le
# L\lVert\theta - \theta'\rVert$, that is $\nabla^2 J \preceq L I$: no direction curves more than $L$. It is
# **$\mu$-strongly convex** if $\nabla^2 J \succeq \mu I$: every direction curves at least $\mu > 0$, so there is
# exactly one minimum $\theta^\star$. Their ratio $\kappa = L/\mu$ is the *condition number*. Gradient descent
# with $\eta = 1/L$ then satisfies {cite}`nesterov2018` {cite}`bottou2018`
#
# $$
# \underbrace{J(\theta_t) - J^\star \le \frac{L\,\lVert\theta_0 - \theta^\star\rVert^2}{2t}}_{\text{convex, } L\text{-smooth: } O(1/t)}
# \qquad\text{and}\qquad
# \underbrace{J(\theta_t) - J^\star \le \Bigl(1 - \frac{\mu}{L}\Bigr)^{t}\bigl(J(\theta_0) - J^\star\bigr)}_{\text{also } \mu\text{-strongly convex: linear}} .
# $$
#
# The second one is called *linear* convergence because $\log(J(\theta_t) - J^\star)$ falls along a line; it needs
# about $\kappa \ln(\Delta_0/\varepsilon)$ steps to reach a gap $\varepsilon$ from a gap $\Delta_0$. Both are guarantees, worst cases over all
# functions with these constants.
#
# Our problem fits. The cross-entropy of softmax regression is convex, so the L2 term alone makes the
# Hessian $\succeq \lambda I$; and along a whole subspace the cross-entropy does not curve at all: adding the
# same vector to all ten columns of $W$ and the same number to all ten biases changes every score equally, so no
# probability. So $\mu = \lambda$ exactly. For $L$ we run a power iteration with Hessian-vector products,
# $\nabla^2 J\, v = \frac1n \tilde X^\top \bigl(P \odot (Z' - (P \odot Z')\mathbf 1 \mathbf 1^\top)\bigr) + \lambda v$ with $Z' = \tilde X V$
# ($\tilde X = [X, \mathbf 1]$, $V$ the $785 \times 10$ form of $v$; the softmax's Jacobian applied to the change
# of the scores), at the start $\theta_0 = 0$, where every probability is $1/10$ (at the minimum the largest
# eigenvalue is smaller, see below). And $J^\star$ comes from a precise solver, SciPy's L-BFGS-B, run here to a
# gradient norm of {glue:text}`conv_fstar_grad`; strong convexity then certifies it:
# $J(\theta) - J^\star \le \lVert\nabla J(\theta)\rVert^2 / (2\mu)$.

# %%
def hessian_vector(theta, v):
    """Hessian of J at theta times v, without forming the Hessian."""
    W, b = unpack(theta)
    V, c = unpack(v)
    logits = X @ W + b
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    Zv = X @ V + c  # how the scores change along v
    R = P * (Zv - (P * Zv).sum(axis=1, keepdims=True)) / n
    return np.concatenate([(X.T @ R).ravel(), R.sum(axis=0)]) + L2 * v


def largest_eigenvalue(theta, iterations=60):
    v = np.random.default_rng(0).normal(size=theta.size)
    for _ in range(iterations):
        v = hessian_vector(theta, v / np.linalg.norm(v))
    return np.linalg.norm(v)


L = largest_eigenvalue(theta0)
mu = L2
shift = np.concatenate([np.zeros(d * K), np.ones(K)]) / np.sqrt(K)  # the same change of every bias
shift_error = np.linalg.norm(hessian_vector(theta0, shift) - mu * shift)
column_shift = np.concatenate([np.outer(np.random.default_rng(1).normal(size=d), np.ones(K)).ravel(), np.ones(K)])
column_shift /= np.linalg.norm(column_shift)  # the same vector added to every column of W (and every bias)
column_shift_error = np.linalg.norm(hessian_vector(theta0, column_shift) - mu * column_shift)
solution = scipy.optimize.minimize(lambda t: (loss(t), gradient(t)), theta0, jac=True, method="L-BFGS-B",
                                   options=dict(maxiter=2000, maxcor=20, gtol=1e-12, ftol=1e-16))
theta_star, f_star = solution.x, solution.fun
f_star_certificate = np.sum(gradient(theta_star) ** 2) / (2 * mu)
L_at_minimum = largest_eigenvalue(theta_star)
theta_two = theta0 - gradient(theta0) / L
theta_two = theta_two - gradient(theta_two) / L  # two steps of GD with eta = 1/L
L_step2 = largest_eigenvalue(theta_two)
# diag(p) - p p^T <= (I - 11^T/K)/2 (Bohning 1992) bounds every Hessian of the cross-entropy:
X_aug = np.hstack([X, np.ones((n, 1))])
L_global = np.linalg.eigvalsh(X_aug.T @ X_aug / n)[-1] / 2 + L2
print(f"L = {L:.3f}, mu = {mu}, kappa = {L / mu:.0f}")
print(f"J* = {f_star:.12f} after {solution.nit} L-BFGS-B iterations; J(theta) - J* <= {f_star_certificate:.1e}")
glue("conv_L", f"{L:.2f}")
glue("conv_kappa", f"{L / mu:.0f}")
glue("conv_L_min", f"{L_at_minimum:.2f}")
glue("conv_fstar_certificate", f"{f_star_certificate:.0e}")
glue("conv_fstar_grad", f"{np.linalg.norm(gradient(theta_star)):.0e}")
glue("conv_L_step2", f"{L_step2:.2f}")
glue("conv_L_global", f"{L_global:.1f}")
glue("conv_L_global_ratio", f"{L_global / L:.0f}")

# %% tags=["remove-input"]
assert shift_error < 1e-12 * mu, shift_error  # "mu = lambda exactly": H e = lambda e along the bias shift
assert column_shift_error < 1e-12 * mu, column_shift_error  # ... and along a shift of every column of W
assert np.linalg.norm(gradient(theta_star)) < 1e-7, np.linalg.norm(gradient(theta_star))
assert L_step2 > L, (L_step2, L)  # "L_0 is not a global bound"
assert L_global > max(L, L_step2, L_at_minimum), L_global
assert 4.5 < L_global / L < 5.5, L_global / L  # "about 5 times shorter"
assert L_at_minimum < L, (L_at_minimum, L)
assert f_star_certificate < 1e-13, f_star_certificate  # below every gap plotted (from 1e-12 up)

# %% [markdown]
# The curvature at the start is $L$ = {glue:text}`conv_L` (at the minimum the largest eigenvalue has fallen to
# {glue:text}`conv_L_min`, as the probabilities sharpen), so $\kappa$ = {glue:text}`conv_kappa`. The solver's
# $J^\star$ is within {glue:text}`conv_fstar_certificate` of the true minimum: far below any gap we plot.
#
# Strictly, this $L$ is not a smoothness constant: it is the curvature at $\theta_0$ only, and two steps of gradient
# descent later the largest eigenvalue is already {glue:text}`conv_L_step2`, so the theorems do not strictly apply
# with it. A global constant exists: every softmax Jacobian satisfies
# $\mathrm{diag}(p) - pp^\top \preceq \tfrac12(I - \mathbf 1\mathbf 1^\top/K)$ {cite}`bohning1992`, so
# $\nabla^2 J \preceq \bigl(\lambda_{\max}(\tilde X^\top\tilde X/n)/2 + \lambda\bigr) I$ everywhere, which gives
# $L_{\text{glob}}$ = {glue:text}`conv_L_global`. A step $\eta = 1/L_{\text{glob}}$ is safe but conservative, about
# {glue:text}`conv_L_global_ratio` times shorter. We keep the practical step $\eta = 1/L$ from the local curvature
# and draw the bounds with this $L$: a comparison outside the theorem's hypotheses, which the measured curve
# nonetheless satisfies.
#
# Full-batch gradient descent with $\eta = 1/L$ for 200 steps, against both bounds:

# %%
GD_STEPS = 200
theta, gd_gap = theta0.copy(), []
for t in range(GD_STEPS + 1):
    gd_gap.append(loss(theta) - f_star)
    theta = theta - gradient(theta) / L
gd_gap = np.array(gd_gap)
steps = np.arange(GD_STEPS + 1)
linear_bound = gd_gap[0] * (1 - mu / L) ** steps
sublinear_bound = L * np.sum((theta0 - theta_star) ** 2) / (2 * np.maximum(steps, 1))

fig, ax = plt.subplots()
ax.plot(steps, gd_gap, label="gradient descent, measured")
ax.plot(steps, linear_bound, "--", label=r"linear bound $(1-\mu/L)^t\,(J_0 - J^\star)$")
ax.plot(steps[1:], sublinear_bound[1:], ":", label=r"$O(1/t)$ bound $L\Vert\theta_0-\theta^\star\Vert^2/2t$")
ax.set_yscale("log")
ax.set_ylim(1e-3, 10)
ax.set_xlabel("step t (full batch)")
ax.set_ylabel(r"loss gap $J(\theta_t) - J^\star$")
ax.set_title("GD stays under both bounds, and falls much faster than they promise")
ax.legend()
plt.show()

late_rate = (gd_gap[-1] / gd_gap[-101]) ** (1 / 100)  # per-step contraction over the last 100 steps
dead = X.max(axis=0) == 0  # pixels never lit in these images
glue("conv_dead_pixels", f"{dead.sum()}")
glue("conv_gd_gap", f"{gd_gap[-1]:.4f}")
glue("conv_gd_bound", f"{linear_bound[-1]:.2f}")
glue("conv_gd_below", f"{linear_bound[-1] / gd_gap[-1]:.0f}")
glue("conv_gd_rate", f"{late_rate:.4f}")
glue("conv_bound_rate", f"{1 - mu / L:.4f}")
glue("conv_gd_effective_kappa", f"{1 / (1 - np.sqrt(late_rate)):.0f}")

# %% tags=["remove-input"]
assert np.all(gd_gap <= linear_bound * (1 + 1e-12)), "GD above the linear bound"
assert np.all(gd_gap[1:] <= sublinear_bound[1:]), "GD above the O(1/t) bound"
assert linear_bound[-1] / gd_gap[-1] > 10, linear_bound[-1] / gd_gap[-1]
assert late_rate < 1 - mu / L, (late_rate, 1 - mu / L)
assert 1 / (1 - np.sqrt(late_rate)) < L / mu, late_rate  # "as if the condition number were ... rather than ..."
assert np.abs(unpack(theta_star)[0][dead]).max() < 1e-12 and np.abs(theta[:-K].reshape(d, K)[dead]).max() == 0.0
assert abs(theta_star[-K:].sum()) < 1e-9 and abs(theta[-K:].sum()) < 1e-12  # no component along the bias shift
assert np.abs(unpack(theta_star)[0].sum(axis=1)).max() < 1e-9  # ... nor along a shift of every column of W
assert np.abs(unpack(theta)[0].sum(axis=1)).max() < 1e-12

# %% [markdown]
# **What to notice.** The gap stays under both bounds at every step (which this $L$ does not guarantee, but which
# holds here). The linear bound is
# loose: after 200 steps it promises {glue:text}`conv_gd_bound`, and GD is at {glue:text}`conv_gd_gap`,
# {glue:text}`conv_gd_below` times lower. Over the last 100 steps the gap shrinks by a factor
# {glue:text}`conv_gd_rate` per step, where the bound allows {glue:text}`conv_bound_rate`. On a quadratic, the gap
# along a direction of curvature $h$ shrinks by $(1 - h/L)^2$ per step (exercise 3), so GD behaves as if the
# condition number were {glue:text}`conv_gd_effective_kappa` rather than {glue:text}`conv_kappa`. (Part of the
# bound's looseness is the proof's: the exact worst case over all $L$-smooth, $\mu$-strongly convex functions is
# $(1-\mu/L)^{2t}$ {cite}`taylor2018`.) The bound must hold in the worst case, a large error along a direction of
# curvature $\mu$. Here the directions whose curvature is exactly $\mu$, these class-independent shifts and the
# weights of the {glue:text}`conv_dead_pixels` pixels never lit in these images, carry no error at all: their
# gradient is zero at $\theta_0 = 0$ and stays zero, and so is their part of $\theta^\star$. What limits GD are
# directions of small but non-zero curvature among those that do carry error (combinations of correlated pixels).
#
# ## 5.2 SGD: a noise ball, and the step sizes that escape it
#
# With a mini-batch gradient $g_t$, unbiased with variance bounded by $M$, a constant step no longer converges.
# For a $\mu$-strongly convex, $L$-smooth $J$ and $\eta \le 1/L$, Bottou, Curtis and Nocedal {cite}`bottou2018`
# (Theorem 4.6) show
#
# $$
# \mathbb{E}\,[J(\theta_t)] - J^\star \;\le\; \frac{\eta L M}{2\mu} + (1 - \eta\mu)^{t}\Bigl(J(\theta_0) - J^\star - \frac{\eta L M}{2\mu}\Bigr):
# $$
#
# the gap falls linearly until it reaches a *noise ball* whose size grows with $\eta$, and stays there. To
# converge, the step must shrink, but not too fast: the Robbins–Monro conditions {cite}`robbins1951`
# $\sum_t \eta_t = \infty$ (the steps can travel any distance) and $\sum_t \eta_t^2 < \infty$ (the noise they add is
# finite). The schedule $\eta_t = \eta_0/(1 + t/\tau) = \beta/(\gamma + t)$ with $\beta = \eta_0\tau$ meets both, and
# when $\beta > 1/\mu$ and $\eta_0 \le 1/L$ it gives $\mathbb{E}\,[J(\theta_t)] - J^\star \le \nu/(\gamma + t) = O(1/t)$ (their Theorem 4.7).
# Mini-batches of 16, drawn independently at each step (so that every $g_t$ is an unbiased estimate of the full
# gradient, as the theorem assumes; reshuffling once per epoch would not be), 8,000 steps (64 epochs' worth) at
# three constant steps, and the decaying step from $\eta_0 = 0.2$ with $\tau = 1000$, so $\beta\mu = 2 > 1$ and
# $\gamma = \tau$:

# %%
BATCH, SGD_STEPS, EVERY = 16, 8_000, 100


def sgd_gaps(step_size, seed=0):
    """Mini-batch SGD from theta0 with the step size step_size(t); the gap every EVERY steps."""
    rng = np.random.default_rng(seed)
    theta, gaps = theta0.copy(), []
    for t in range(SGD_STEPS):
        batch = rng.choice(n, BATCH, replace=False)  # independent of the previous batches
        theta = theta - step_size(t) * gradient(theta, batch)
        if (t + 1) % EVERY == 0:
            gaps.append(loss(theta) - f_star)
    return np.array(gaps)


ETA0, TAU = 0.2, 1000
constant = {eta: sgd_gaps(lambda t, eta=eta: eta) for eta in (0.2, 0.1, 0.05)}
decaying = sgd_gaps(lambda t: ETA0 / (1 + t / TAU))
sgd_steps = EVERY * np.arange(1, len(decaying) + 1)

fig, ax = plt.subplots()
for i, (eta, gaps) in enumerate(constant.items()):
    ax.plot(sgd_steps, gaps, color=f"C{i}", label=f"constant η = {eta}")
ax.plot(sgd_steps, decaying, color="k", label=f"η = {ETA0}/(1 + t/{TAU})")
half = len(sgd_steps) // 2
ax.plot(sgd_steps[half:], 3 * decaying[half] * sgd_steps[half] / sgd_steps[half:], "k:", lw=2,
        label="a 1/t line, for the slope")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("SGD step t (batch of 16)")
ax.set_ylabel(r"loss gap $J(\theta_t) - J^\star$")
ax.set_title("A constant step settles in a noise ball; a decaying step keeps going")
ax.legend()
plt.show()

plateau = {eta: gaps[-20:].mean() for eta, gaps in constant.items()}  # steps 6,000 to 8,000
decay_end = decaying[-5:].mean()
slope = np.polyfit(np.log(sgd_steps[half:]), np.log(decaying[half:]), 1)[0]
for eta, key in [(0.2, "large"), (0.1, "medium"), (0.05, "small")]:
    glue(f"conv_plateau_{key}", f"{plateau[eta]:.4f}")
glue("conv_decay_end", f"{decay_end:.5f}")
glue("conv_decay_below", f"{plateau[ETA0] / decay_end:.0f}")
glue("conv_decay_slope", f"{slope:.1f}")
halving = [plateau[0.2] / plateau[0.1], plateau[0.1] / plateau[0.05]]
glue("conv_halving_large", f"{halving[0]:.2f}")
glue("conv_halving_small", f"{halving[1]:.2f}")
glue("conv_eta_L", f"{0.2 * L:.1f}")
# the slope of the theorem's nu/(gamma + t) over the same steps, with gamma = tau
theory_slope = np.polyfit(np.log(sgd_steps[half:]), -np.log(TAU + sgd_steps[half:]), 1)[0]
glue("conv_decay_theory_slope", f"{theory_slope:.2f}")
glue("conv_decay_start_ratio", f"{decaying[0] / constant[ETA0][0]:.2f}")

# %% tags=["remove-input"]
assert plateau[0.2] > plateau[0.1] > plateau[0.05], plateau
assert 2 < halving[1] < halving[0], halving  # "a little more than 2, closer to it at the smaller step"
assert halving[0] < 2.5, halving  # "a little more"
assert decay_end < plateau[0.05], (decay_end, plateau)
assert abs(decaying[0] / constant[ETA0][0] - 1) < 0.1, (decaying[0], constant[ETA0][0])  # "starts like"
assert slope <= theory_slope, (slope, theory_slope)  # "at least as steep as the theorem's curve"
assert np.all(np.diff(decaying.reshape(4, -1).mean(axis=1)) < 0), decaying  # "falls from block to block"

# %% [markdown]
# **What to notice.** Each constant step reaches its noise ball and then wanders in it: over the last 2,000 steps the gap averages {glue:text}`conv_plateau_large` at $\eta = 0.2$,
# {glue:text}`conv_plateau_medium` at $\eta = 0.1$ and {glue:text}`conv_plateau_small` at $\eta = 0.05$. Halving the
# step divides the plateau by {glue:text}`conv_halving_large`, then {glue:text}`conv_halving_small`: a little more
# than the factor 2 of the bound's $\eta L M / 2\mu$, closer to it at the smaller step, since the steepest
# directions amplify the noise while $\eta L$ is not small (it reaches {glue:text}`conv_eta_L` at $\eta = 0.2$). The
# decaying step starts like the largest constant one (after 100 steps the ratio of their gaps is
# {glue:text}`conv_decay_start_ratio`) and keeps improving (averaged over blocks of 2,000 steps,
# its gap falls from each block to the next): it ends at
# {glue:text}`conv_decay_end`, {glue:text}`conv_decay_below` times below the plateau of the constant $\eta_0$, and
# below that of the smallest constant step too. Over its second half the gap falls with a log-log slope of
# {glue:text}`conv_decay_slope`, at least as steep as the theorem's own curve $\nu/(\gamma + t)$ over the same steps
# (a slope of {glue:text}`conv_decay_theory_slope` with $\gamma = \tau = 1000$): the $O(1/t)$ rate, whose slope
# $-1$ that curve approaches only once $t \gg \gamma$.
#
# ## 5.3 Newton's method
#
# Gradient descent takes the same step size in every direction, so the flattest direction sets the pace
# ($\kappa$ above). Newton's method rescales each direction by its curvature, using the Hessian
# {cite}`nocedal2006`:
#
# $$
# \theta_{t+1} = \theta_t - \bigl(\nabla^2 J(\theta_t)\bigr)^{-1} \nabla J(\theta_t).
# $$
#
# It minimizes the quadratic model of $J$ at $\theta_t$, so on a quadratic $J(\theta) = \tfrac12\theta^\top A\theta -
# b^\top\theta$ it lands on the minimum $A^{-1}b$ in **one step**, whatever $\kappa$. Below, the curvatures are 1 and 10,
# so $\kappa = 10$: GD with $\eta = 1/L$ removes the steep component in its first step, then crawls along the flat
# one, shrinking the error by only $1 - 1/\kappa = 0.9$ per step; Newton jumps.

# %%
rotation = np.array([[np.cos(0.5), -np.sin(0.5)], [np.sin(0.5), np.cos(0.5)]])
A = rotation @ np.diag([1.0, 10.0]) @ rotation.T
b_vec = np.array([1.0, -2.0])
minimum = np.linalg.solve(A, b_vec)
start = np.array([-3.0, 2.0])
newton_point = start - np.linalg.solve(A, A @ start - b_vec)
gd_path = [start]
for _ in range(20):
    gd_path.append(gd_path[-1] - (A @ gd_path[-1] - b_vec) / 10.0)
gd_path = np.array(gd_path)

grid = np.meshgrid(np.linspace(-4, 3, 200), np.linspace(-4, 3, 200))
points = np.stack(grid, axis=-1)
values = 0.5 * np.einsum("...i,ij,...j->...", points, A, points) - points @ b_vec
fig, ax = plt.subplots()
ax.contour(grid[0], grid[1], values, levels=20, colors="0.8")
ax.plot(gd_path[:, 0], gd_path[:, 1], "o-", ms=3, label="gradient descent, η = 1/L, 20 steps")
ax.annotate("", newton_point, start, arrowprops=dict(arrowstyle="->", color="C1", lw=2))
ax.plot([], [], color="C1", lw=2, label="Newton, 1 step")
ax.plot(*minimum, "k*", ms=12, label="minimum")
ax.set_aspect("equal")
ax.set_xlabel(r"$\theta_1$")
ax.set_ylabel(r"$\theta_2$")
ax.set_title("On a quadratic, Newton's first step is the minimum")
ax.legend(loc="lower left")
plt.show()

newton_miss = np.linalg.norm(newton_point - minimum)
gd_miss = np.linalg.norm(gd_path[-1] - minimum)
glue("conv_newton_quadratic_miss", f"{newton_miss:.0e}")
glue("conv_gd_quadratic_miss", f"{gd_miss:.3f}")

# %% tags=["remove-input"]
assert newton_miss < 1e-13, newton_miss
assert gd_miss > 1e-3, gd_miss
steep_direction = rotation[:, 1]  # the eigenvector of curvature 10
assert abs((gd_path[1] - minimum) @ steep_direction) < 1e-12  # "removes the steep component in its first step"
gd_errors = np.linalg.norm(gd_path - minimum, axis=1)
assert np.allclose(gd_errors[2:] / gd_errors[1:-1], 0.9), gd_errors  # "... by only 0.9 per step"

# %% [markdown]
# Newton's point is {glue:text}`conv_newton_quadratic_miss` from the minimum (rounding); GD is still
# {glue:text}`conv_gd_quadratic_miss` away after 20 steps.
#
# On a loss that is not quadratic the model is only local, but near the minimum it becomes exact fast: if the
# Hessian is Lipschitz, Newton converges **quadratically**, $\lVert\nabla J(\theta_{t+1})\rVert \le C\,\lVert\nabla
# J(\theta_t)\rVert^2$, so the number of correct digits doubles at each step {cite}`nocedal2006`. We try it on
# binary logistic regression (is the digit odd?) on the same 2,000 images, with the same L2 term: the Hessian is
# $\frac1n\tilde X^\top \mathrm{diag}\bigl(p_i(1-p_i)\bigr)\tilde X + \lambda I$, a $785 \times 785$ matrix that costs
# $O(nd^2)$ to build and $O(d^3)$ to solve. (For softmax regression it would be ten times larger on each side.)

# %%
X_tilde = np.hstack([X, np.ones((n, 1))])
odd = (y % 2).astype(np.float64)


def logistic_loss(w):
    z = X_tilde @ w
    return np.mean(np.logaddexp(0.0, z) - odd * z) + 0.5 * L2 * w @ w


def logistic_gradient(w):
    return X_tilde.T @ (expit(X_tilde @ w) - odd) / n + L2 * w


def logistic_hessian(w):
    p = expit(X_tilde @ w)
    return (X_tilde * (p * (1 - p))[:, None]).T @ X_tilde / n + L2 * np.eye(d + 1)


w, newton_path = np.zeros(d + 1), []
for _ in range(8):
    newton_path.append(w)
    w = w - np.linalg.solve(logistic_hessian(w), logistic_gradient(w))
w_star = w
logistic_star = logistic_loss(w_star)
newton_gap = np.array([logistic_loss(v) - logistic_star for v in newton_path])
newton_grad = np.array([np.linalg.norm(logistic_gradient(v)) for v in newton_path])

L_logistic = np.linalg.eigvalsh(X_tilde.T @ X_tilde / n)[-1] / 4 + L2  # p(1 - p) <= 1/4
w, logistic_gd_gap = np.zeros(d + 1), []
for _ in range(50):
    logistic_gd_gap.append(logistic_loss(w) - logistic_star)
    w = w - logistic_gradient(w) / L_logistic

fig, ax = plt.subplots()
shown = newton_gap > 0
ax.plot(np.arange(len(newton_gap))[shown], newton_gap[shown], "o-", label="Newton")
ax.plot(np.arange(50), logistic_gd_gap, label="gradient descent, η = 1/L")
ax.axhline(1e-10, color="0.6", ls=":")
ax.set_yscale("log")
ax.set_xlabel("iteration")
ax.set_ylabel(r"loss gap $J(w_t) - J^\star$")
ax.set_title("Newton on logistic regression: the digits double at each step")
ax.legend()
plt.show()

newton_to_tol = int(np.argmax(newton_gap < 1e-10))
digits_ratio = newton_grad[1:] / newton_grad[:-1] ** 2  # C in ||g_{t+1}|| <= C ||g_t||^2
tail = digits_ratio[newton_to_tol - 3 : newton_to_tol]
glue("conv_newton_iterations", f"{newton_to_tol}")
glue("conv_newton_C_low", f"{tail.min():.0f}")
glue("conv_newton_C_high", f"{tail.max():.0f}")
glue("conv_newton_grads", ", ".join(f"{g:.0e}" for g in newton_grad[newton_to_tol - 3 : newton_to_tol + 1]))
glue("conv_logistic_gd_gap", f"{logistic_gd_gap[-1]:.3f}")
print("Newton gaps:", np.array2string(newton_gap, precision=2))

# %% tags=["remove-input"]
assert newton_to_tol <= 6, newton_gap
assert newton_gap[newton_to_tol - 1] > 1e-10 > newton_gap[newton_to_tol]
assert tail.max() < 2 * tail.min(), tail  # "about the same C"
assert logistic_gd_gap[-1] > 1e-3, logistic_gd_gap[-1]

# %% [markdown]
# **What to notice.** Newton reaches a gap below $10^{-10}$ in {glue:text}`conv_newton_iterations` iterations.
# In the last ones the gradient norm goes {glue:text}`conv_newton_grads`: each is the square of the previous
# one times a constant $C$ between {glue:text}`conv_newton_C_low` and {glue:text}`conv_newton_C_high`, the
# quadratic convergence of the theory. Gradient descent is at {glue:text}`conv_logistic_gd_gap` after 50
# iterations. The price is each iteration's Hessian: here {fixed}`785 × 785`, for a network with millions of weights
# a matrix that cannot even be stored.
#
# ## 5.4 Diagonal preconditioning, and what Adam's $\sqrt{v}$ is
#
# The cheapest curvature model keeps only the Hessian's diagonal, $D = \mathrm{diag}(\nabla^2 J)$, and steps by
# $\theta_{t+1} = \theta_t - \eta D^{-1}\nabla J$ (a *Jacobi* preconditioner): each weight gets a step size of its own,
# small where the loss curves fast, large where it is flat. Adam (chapter 3) also gives each weight its own step,
# $\eta/\sqrt{\hat v_t}$, and is often described as a diagonal second-order method. It is not quite one: $v$ is
# a moving average of *squared gradients*, the second moment of the gradient, not a curvature. There is one place
# where the two meet: at the minimum of a log-likelihood whose model fits, the average outer product of the
# per-example gradients (the Fisher information) equals, in expectation over labels drawn from the model, the
# Hessian of the data term; and a mini-batch
# gradient there is pure noise, with $\mathbb{E}[g_i^2] \approx \mathrm{diag}(\nabla^2 J)_i / B$.
# We run `optim.adam(1e-3)` with batches of 16 for 3,000 steps from the logistic regression's minimum
# $w^\star$, then compare its bias-corrected $\hat v$ with the Hessian's diagonal there (data term only; the weights
# with $H_{ii} > 10^{-6}$).

# %%
adam = optim.adam(1e-3)
params = [w_star.copy()]
state = adam.init(params)
rng = np.random.default_rng(0)
for _ in range(3_000):  # ADAM_STEPS
    rows = rng.choice(n, 16, replace=False)
    g = X_tilde[rows].T @ (expit(X_tilde[rows] @ params[0]) - odd[rows]) / 16 + L2 * params[0]
    updates, state = adam.update([g], state, params)
    params = optim.apply_updates(params, updates)
ADAM_STEPS = 3_000
nu = next(s for s in state if hasattr(s, "nu")).nu[0]  # Adam's raw second moment, from the chain's state
v = nu / (1 - 0.999**ADAM_STEPS)  # bias-corrected: the v-hat that Adam divides by
p_star = expit(X_tilde @ w_star)
hessian_diagonal = (X_tilde**2).T @ (p_star * (1 - p_star)) / n
lit = hessian_diagonal > 1e-6
log_h, log_root_v = np.log(hessian_diagonal[lit]), np.log(np.sqrt(v[lit]))
adam_slope, adam_intercept = np.polyfit(log_h, log_root_v, 1)
adam_correlation = np.corrcoef(log_h, log_root_v)[0, 1]
v_over_h = np.median(16 * v[lit] / hessian_diagonal[lit])

fig, ax = plt.subplots()
ax.loglog(hessian_diagonal[lit], np.sqrt(v[lit]), ".", ms=3, alpha=0.5, label="one weight")
h_line = np.geomspace(hessian_diagonal[lit].min(), hessian_diagonal[lit].max(), 10)
ax.loglog(h_line, np.exp(adam_intercept) * h_line**adam_slope, "k-", label=f"fit: slope {adam_slope:.2f}")
ax.loglog(h_line, np.sqrt(h_line / 16), "k:", label=r"$\sqrt{\mathrm{diag}(H)/B}$ (slope 1/2)")
ax.set_xlabel(r"Hessian diagonal $\mathrm{diag}(\nabla^2 J)_i$ at $w^\star$")
ax.set_ylabel(r"Adam's $\sqrt{\hat v_i}$ after 3,000 steps")
ax.set_title(r"At the minimum, Adam's $\sqrt{\hat v}$ tracks the square root of the curvature")
ax.legend()
plt.show()

glue("conv_adam_slope", f"{adam_slope:.2f}")
glue("conv_adam_corr", f"{adam_correlation:.2f}")
glue("conv_adam_v_over_h", f"{v_over_h:.2f}")
glue("conv_adam_lit", f"{lit.sum()}")

# %% tags=["remove-input"]
assert adam_correlation > 0.9, adam_correlation
assert 0.5 < adam_slope < 0.75, adam_slope  # "between 1/2 and 1, nearer 1/2"
assert 0.6 < v_over_h < 1.0, v_over_h  # "somewhat below 1"

# %% [markdown]
# **What to notice.** Over the {glue:text}`conv_adam_lit` weights, $\log\sqrt{\hat v_i}$ follows $\log H_{ii}$ closely
# (correlation {glue:text}`conv_adam_corr`) along a line of slope {glue:text}`conv_adam_slope`: between $1/2$ and 1,
# nearer $1/2$, well below the slope 1 of a Jacobi preconditioner. The median of $B\,\hat v_i / H_{ii}$ is
# {glue:text}`conv_adam_v_over_h`, somewhat below the 1 of the Fisher argument (possibly because the model does not
# fit the data exactly, and the L2 term pulls the gradients). So, honestly:
#
# - near a minimum, Adam divides by about $\sqrt{\mathrm{diag}(H)/B}$: the *square root* of the curvature, a
#   milder preconditioner than Newton's diagonal, and one that depends on the batch size;
# - away from a minimum, $v$ also holds the squared *mean* gradient, which measures slope, not curvature;
# - it is diagonal: the correlations between weights, which Newton's full Hessian captures, are ignored;
# - the Fisher identity holds for log-likelihood losses (cross-entropy), not for an arbitrary loss.
#
# ## 5.5 L-BFGS: curvature from the last few steps
#
# Quasi-Newton methods never compute the Hessian. After each step $s_k = \theta_{k+1} - \theta_k$ they see the
# change of the gradient $y_k = \nabla J(\theta_{k+1}) - \nabla J(\theta_k) \approx \nabla^2 J\, s_k$, and BFGS updates an
# inverse-Hessian estimate $H_k$ to satisfy this *secant equation* $H_{k+1} y_k = s_k$ with the smallest change
# {cite}`nocedal2006`:
#
# $$
# H_{k+1} = \bigl(I - \rho_k s_k y_k^\top\bigr) H_k \bigl(I - \rho_k y_k s_k^\top\bigr) + \rho_k s_k s_k^\top,
# \qquad \rho_k = \frac{1}{y_k^\top s_k}.
# $$
#
# L-BFGS {cite}`liu1989lbfgs` keeps only the last $m$ pairs $(s_i, y_i)$ and computes $H_k\nabla J$ directly with
# the *two-loop recursion*, from $H^0 = \gamma I$, $\gamma = s^\top y / y^\top y$ (from the newest pair: an estimate
# of the inverse curvature, since $y \approx \nabla^2 J\, s$): $O(mp)$ memory and work for $p$ parameters instead of
# $O(p^2)$. It keeps a pair only if $y^\top s > 0$, which holds on a strongly convex loss ($y^\top s \ge \mu\lVert
# s\rVert^2$) and keeps $H_k$ positive definite. `companion.optim.lbfgs` holds the reference:
# `lbfgs_direction(grad, s_history, y_history)` is the two-loop recursion (checked in the course's tests against the
# explicit BFGS matrix above), and `lbfgs(learning_rate, history_size)` is a `GradientTransformation` that
# reproduces `torch.optim.LBFGS(params, lr, history_size, max_iter=1, line_search_fn=None)` step for step,
# including torch's details (the first step scaled by $\min(1, 1/\lVert g\rVert_1)$, pairs kept only if
# $y^\top s > 10^{-10}$). Here both take 30 steps on our softmax regression:

# %%
X_torch, y_torch = torch.from_numpy(X), torch.from_numpy(y)


def torch_objective(W, b):
    """J(W, b) in torch: the same loss as `loss` above."""
    penalty = 0.5 * L2 * ((W**2).sum() + (b**2).sum())
    return torch.nn.functional.cross_entropy(X_torch @ W + b, y_torch) + penalty


def fresh_parameters():
    return [torch.zeros(d, K, dtype=torch.float64, requires_grad=True),
            torch.zeros(K, dtype=torch.float64, requires_grad=True)]


torch_params = fresh_parameters()
torch_lbfgs = torch.optim.LBFGS(torch_params, lr=1.0, history_size=10, max_iter=1)


def closure():
    torch_lbfgs.zero_grad()
    value = torch_objective(*torch_params)
    value.backward()
    return value


reference_params = [p.detach().clone() for p in fresh_parameters()]
reference = lbfgs(1.0, history_size=10)
reference_state = reference.init(reference_params)
largest_difference = 0.0
for _ in range(30):
    torch_lbfgs.step(closure)
    tracked = [p.clone().requires_grad_(True) for p in reference_params]
    torch_objective(*tracked).backward()
    updates, reference_state = reference.update([p.grad for p in tracked], reference_state, reference_params)
    reference_params = optim.apply_updates(reference_params, updates)
    largest_difference = max(largest_difference, max((a - b.detach()).abs().max().item()
                                                     for a, b in zip(reference_params, torch_params)))
lbfgs_fixed_gap = torch_objective(*reference_params).item() - f_star
glue("conv_lbfgs_difference", f"{largest_difference:.0e}")
glue("conv_lbfgs_fixed_gap", f"{lbfgs_fixed_gap:.4f}")

# %% tags=["remove-input"]
assert largest_difference < 1e-10, largest_difference
assert lbfgs_fixed_gap < gd_gap[30], (lbfgs_fixed_gap, gd_gap[30])

# %% [markdown]
# The two never differ by more than {glue:text}`conv_lbfgs_difference` in any weight, and after 30 steps the gap
# is {glue:text}`conv_lbfgs_fixed_gap`, below GD's at the same step. Without a line search, though, the unit step
# $\eta = 1$ is a gamble on a loss that is not quadratic. The way people use `torch.optim.LBFGS` is with
# `line_search_fn="strong_wolfe"`: along each direction it searches for a step that decreases the loss enough
# and flattens the slope enough (the strong Wolfe conditions {cite}`nocedal2006`), at the cost of extra
# evaluations of the loss and gradient. We count them, and time both methods in one run, in the same
# framework and the same closure (`max_iter=1` per call, so that we see every iteration; `max_eval=25` to leave
# the line search its evaluations, since torch's default is $\lfloor 5\,\texttt{max\_iter}/4\rfloor$). Each
# `step()` starts by evaluating the closure at the point the previous line search ended on (this costs one extra
# evaluation per iteration, which the counts and times include, to L-BFGS's disadvantage).

# %%
def timed_run(make_optimizer, iterations):
    """Run `iterations` calls of optimizer.step; return the gap, the seconds and the evaluations after each."""
    params = fresh_parameters()
    optimizer = make_optimizer(params)
    evaluations = [0]

    def closure():
        optimizer.zero_grad()
        value = torch_objective(*params)
        value.backward()
        evaluations[0] += 1
        return value

    snapshots, seconds, counts = [], [], []
    start = time.perf_counter()
    for _ in range(iterations):
        optimizer.step(closure)
        seconds.append(time.perf_counter() - start)  # the gaps are computed afterwards, outside the timing
        counts.append(evaluations[0])
        snapshots.append([p.detach().clone() for p in params])
    with torch.no_grad():
        gaps = np.array([torch_objective(*s).item() - f_star for s in snapshots])
    return gaps, np.array(seconds), np.array(counts)


GD_ITERATIONS, LBFGS_ITERATIONS = 200, 60
gd_run = timed_run(lambda p: torch.optim.SGD(p, lr=1 / L), GD_ITERATIONS)
lbfgs_run = timed_run(lambda p: torch.optim.LBFGS(p, lr=1, max_iter=1, max_eval=25, history_size=10,
                                                  line_search_fn="strong_wolfe"), LBFGS_ITERATIONS)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for (gaps, seconds, _), name in [(gd_run, "gradient descent, η = 1/L"), (lbfgs_run, "L-BFGS, strong Wolfe")]:
    ax1.plot(np.arange(1, len(gaps) + 1), gaps, label=name)
    ax2.plot(seconds / gd_run[1][-1], gaps, label=name)
ax1.set_yscale("log")
ax1.set_ylim(1e-9, 10)
ax1.set_xlabel("iteration")
ax1.set_ylabel(r"loss gap $J(\theta_t) - J^\star$")
ax2.set_xlabel(f"time / time of {GD_ITERATIONS} GD iterations")
ax1.set_title("L-BFGS against GD, per iteration")
ax2.set_title("... and per unit of time")
ax1.legend()
plt.show()

target = gd_run[0][-1]
reach = int(np.argmax(lbfgs_run[0] <= target))
time_ratio = gd_run[1][-1] / lbfgs_run[1][reach]
glue("conv_lbfgs_reach", f"{reach + 1}")
glue("conv_lbfgs_reach_evals", f"{lbfgs_run[2][reach]}")
glue("conv_lbfgs_time_ratio", f"{time_ratio:.1f}")
glue("conv_lbfgs_gd_target", f"{target:.4f}")
glue("conv_lbfgs_final_gap", f"{lbfgs_run[0][-1]:.0e}")
glue("conv_lbfgs_final_evals", f"{lbfgs_run[2][-1]}")
glue("conv_lbfgs_evals_per_iteration", f"{lbfgs_run[2][-1] / LBFGS_ITERATIONS:.1f}")
# GD's iterations to L-BFGS's final gap, extrapolated at the rate GD had over its last 100 steps (section 5.1)
gd_extrapolated = GD_ITERATIONS + np.log(lbfgs_run[0][-1] / target) / np.log(late_rate)
glue("conv_gd_extrapolated", f"{gd_extrapolated:,.0f}")

# %% tags=["remove-input"]
assert lbfgs_run[0].min() <= target, "L-BFGS never reached GD's final gap"
assert reach + 1 < GD_ITERATIONS / 5, reach
assert time_ratio > 1.5, time_ratio
assert lbfgs_run[0][-1] < 1e-6, lbfgs_run[0][-1]
assert 2.0 <= lbfgs_run[2][-1] / LBFGS_ITERATIONS < 2.5, lbfgs_run[2][-1]
assert abs(gd_run[0][-1] / gd_gap[GD_ITERATIONS] - 1) < 1e-6  # torch's GD is section 5.1's GD
assert gd_extrapolated > 1000, gd_extrapolated

# %% [markdown]
# **What to notice.** GD's 200 iterations end at a gap of {glue:text}`conv_lbfgs_gd_target`; L-BFGS passes it at iteration {glue:text}`conv_lbfgs_reach`, after
# {glue:text}`conv_lbfgs_reach_evals` evaluations, in {glue:text}`conv_lbfgs_time_ratio` times less time. After
# 60 iterations ({glue:text}`conv_lbfgs_final_evals` evaluations, {glue:text}`conv_lbfgs_evals_per_iteration` per
# iteration on average) its gap is {glue:text}`conv_lbfgs_final_gap`; at the rate it had over its last 100 steps,
# GD would need about {glue:text}`conv_gd_extrapolated` iterations to get there (an extrapolation). This is the regime L-BFGS is made for: a deterministic loss of moderate size (classical
# machine learning, fitting a few parameters, style transfer's image optimization). On mini-batches it
# struggles: the pairs $(s, y)$ then mix curvature with the noise of two different batches, and the line search
# trusts loss values that change from batch to batch {cite}`bottou2018`; that is why deep learning stays with the first-order
# methods of chapters 1 to 4.
#
# ## Summary
#
# - Smoothness $L$ and strong convexity $\mu$ give GD a linear rate $(1-\mu/L)^t$; the bound is a worst case,
#   and on MNIST GD does far better than it.
# - SGD with a constant step stops in a noise ball that grows with the step; a step $\eta_0/(1+t/\tau)$ meeting the
#   Robbins–Monro conditions keeps converging, at the $O(1/t)$ rate or faster.
# - Newton's method solves a quadratic in one step and converges quadratically near a minimum, at the price of the
#   Hessian; Adam's $\sqrt{v}$ is a diagonal, square-root, batch-dependent cousin of it.
# - L-BFGS builds curvature from the last steps' gradients; with a line search it beats GD by a wide margin on
#   this deterministic problem, and `companion.optim.lbfgs` shows its two-loop recursion step for step against torch.
#
# ## Exercises
#
# ### Exercise 1 (Implement it): the two-loop recursion
#
# Write `my_two_loop(grad, s_history, y_history)` returning the L-BFGS direction $-H_k g$ for 1-D NumPy arrays
# (histories oldest first), with $H^0 = \gamma I$, $\gamma = s^\top y/y^\top y$ of the newest pair, and $H^0 = I$
# when the histories are empty. It must agree with `lbfgs_direction` and with $-H_k g$ for the explicit BFGS
# matrix of section 5.5.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "convergence-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
def my_two_loop(grad, s_history, y_history):
    """The L-BFGS descent direction -H g (two-loop recursion, Nocedal & Wright Algorithm 7.4)."""
    ### BEGIN SOLUTION
    q = np.array(grad, dtype=float)
    rho = [1.0 / (y @ s) for s, y in zip(s_history, y_history)]
    alpha = [0.0] * len(s_history)
    for i in reversed(range(len(s_history))):  # newest to oldest
        alpha[i] = rho[i] * (s_history[i] @ q)
        q = q - alpha[i] * y_history[i]
    gamma = (s_history[-1] @ y_history[-1]) / (y_history[-1] @ y_history[-1]) if s_history else 1.0
    r = gamma * q
    for i in range(len(s_history)):  # oldest to newest
        beta = rho[i] * (y_history[i] @ r)
        r = r + (alpha[i] - beta) * s_history[i]
    return -r
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "convergence-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def bfgs_inverse_hessian(s_history, y_history):
    """The explicit BFGS inverse-Hessian estimate from H0 = gamma I, updated pair by pair (oldest first)."""
    size = len(s_history[-1])
    H = (s_history[-1] @ y_history[-1]) / (y_history[-1] @ y_history[-1]) * np.eye(size)
    for s, y_pair in zip(s_history, y_history):
        rho = 1.0 / (y_pair @ s)
        V = np.eye(size) - rho * np.outer(y_pair, s)
        H = V.T @ H @ V + rho * np.outer(s, s)
    return H


ex1_rng = np.random.default_rng(0)
ex1_A = ex1_rng.normal(size=(8, 8))
ex1_hessian = ex1_A @ ex1_A.T + 8 * np.eye(8)
ex1_s = [ex1_rng.normal(size=8) for _ in range(3)]
ex1_y = [ex1_hessian @ s for s in ex1_s]  # on a quadratic, y = H s
ex1_g = ex1_rng.normal(size=8)
ex1_mine = np.asarray(my_two_loop(ex1_g, ex1_s, ex1_y))
assert ex1_mine.shape == (8,), f"the direction must be a vector like grad, shape (8,), got {ex1_mine.shape}"
assert np.allclose(ex1_mine, -bfgs_inverse_hessian(ex1_s, ex1_y) @ ex1_g, atol=1e-10), "differs from -H g with the explicit BFGS matrix: check the loop orders (newest to oldest, then oldest to newest), gamma from the newest pair, and the sign"
assert np.allclose(ex1_mine, lbfgs_direction(ex1_g, ex1_s, ex1_y), atol=1e-10), "differs from companion's lbfgs_direction"
### BEGIN HIDDEN TESTS
assert np.allclose(my_two_loop(ex1_g, [], []), -ex1_g), "with empty histories the direction is -g"
for ex1_m in (1, 5, 12):
    ex1_s2 = [ex1_rng.normal(size=8) for _ in range(ex1_m)]
    ex1_y2 = [ex1_hessian @ s + 0.1 * ex1_rng.normal(size=8) for s in ex1_s2]
    ex1_keep = [i for i in range(ex1_m) if ex1_y2[i] @ ex1_s2[i] > 0]
    ex1_s2, ex1_y2 = [ex1_s2[i] for i in ex1_keep], [ex1_y2[i] for i in ex1_keep]
    assert np.allclose(my_two_loop(ex1_g, ex1_s2, ex1_y2), -bfgs_inverse_hessian(ex1_s2, ex1_y2) @ ex1_g, atol=1e-9), f"{ex1_m} pairs: differs from the explicit BFGS matrix"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (Implement it): a Newton step for logistic regression
#
# Write `my_newton_step(w, features, targets, l2)` for the loss
# $J(w) = \frac1n\sum_i \bigl(\log(1 + e^{z_i}) - t_i z_i\bigr) + \frac{\lambda}{2}\lVert w\rVert^2$, $z = Xw$ (the features
# already hold a column of ones if a bias is wanted; targets $t_i \in \{0, 1\}$): return
# $w - (\nabla^2 J)^{-1}\nabla J$, with the gradient and Hessian written out by hand (solve the linear system; do
# not invert). It is checked against a step built with `torch.autograd.functional.hessian`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "convergence-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
def my_newton_step(w, features, targets, l2):
    """One Newton step for L2-regularized binary logistic regression."""
    ### BEGIN SOLUTION
    count = len(targets)
    p = expit(features @ w)
    grad = features.T @ (p - targets) / count + l2 * w
    hessian = (features * (p * (1 - p))[:, None]).T @ features / count + l2 * np.eye(len(w))
    return w - np.linalg.solve(hessian, grad)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "convergence-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def ex2_torch_step(w, features, targets, l2):
    """The Newton step from torch.autograd (gradient and Hessian of the same loss)."""
    F, t = torch.from_numpy(features), torch.from_numpy(targets)

    def objective(v):
        z = F @ v
        return (torch.nn.functional.softplus(z) - t * z).mean() + 0.5 * l2 * (v @ v)

    v = torch.from_numpy(w).clone().requires_grad_(True)
    grad = torch.autograd.grad(objective(v), v)[0]
    hessian = torch.autograd.functional.hessian(objective, v.detach())
    return w - torch.linalg.solve(hessian, grad).numpy()


ex2_rng = np.random.default_rng(1)
ex2_X = np.hstack([ex2_rng.normal(size=(50, 4)), np.ones((50, 1))])
ex2_t = (ex2_rng.random(50) < expit(ex2_X @ np.array([1.0, -2.0, 0.5, 0.0, 0.3]))).astype(float)
ex2_w = 0.1 * ex2_rng.normal(size=5)
ex2_mine = np.asarray(my_newton_step(ex2_w, ex2_X, ex2_t, 0.1))
assert ex2_mine.shape == (5,), f"the new w must have w's shape (5,), got {ex2_mine.shape}"
ex2_diff = np.abs(ex2_mine - ex2_torch_step(ex2_w, ex2_X, ex2_t, 0.1)).max()
assert ex2_diff < 1e-10, f"differs from the torch.autograd Newton step by {ex2_diff:.1e}: check the mean over examples, p(1 - p) in the Hessian and the l2 terms"
### BEGIN HIDDEN TESTS
for ex2_l2 in (1e-3, 1.0):
    ex2_w2 = ex2_rng.normal(size=5)
    assert np.allclose(my_newton_step(ex2_w2, ex2_X, ex2_t, ex2_l2), ex2_torch_step(ex2_w2, ex2_X, ex2_t, ex2_l2), atol=1e-9), f"l2 = {ex2_l2}: differs from torch"
ex2_v = np.zeros(5)
for _ in range(8):
    ex2_v = my_newton_step(ex2_v, ex2_X, ex2_t, 0.1)
ex2_grad = ex2_X.T @ (expit(ex2_X @ ex2_v) - ex2_t) / 50 + 0.1 * ex2_v
assert np.abs(ex2_grad).max() < 1e-12, "eight Newton steps from 0 should reach the minimum to rounding"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 (Derive it): how many steps does the linear rate promise?
#
# (a) GD with $\eta = 1/L$ on a $\mu$-strongly convex, $L$-smooth function starts at a gap $\Delta_0$. Using the bound
# of section 5.1, find the smallest number of steps $t$ after which the bound guarantees a gap of at most
# $\varepsilon$ (0 if $\Delta_0 \le \varepsilon$), and write it in `gd_steps_bound(mu, L, gap0, eps)`.
#
# (b) Show that it is about $\kappa\ln(\Delta_0/\varepsilon)$ when $\kappa = L/\mu$ is large.
#
# (c) On the quadratic $J(\theta) = \frac12\sum_i h_i\theta_i^2$ with $\mu \le h_i \le L$, by which factor does the gap
# contributed by coordinate $i$ shrink per step? Why does a simulation need fewer steps than your bound?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "convergence-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
def gd_steps_bound(mu, L, gap0, eps):
    ### BEGIN SOLUTION
    if gap0 <= eps:
        return 0
    return int(np.ceil(np.log(gap0 / eps) / -np.log1p(-mu / L)))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "convergence-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert gd_steps_bound(0.1, 10.0, 1.0, 1e-6) == 1375, f"mu = 0.1, L = 10, gap 1 -> 1e-6: (1 - 0.01)^t <= 1e-6 first holds at t = 1375; got {gd_steps_bound(0.1, 10.0, 1.0, 1e-6)}"
assert gd_steps_bound(1.0, 2.0, 0.5, 1.0) == 0, "a start already within eps needs 0 steps"
### BEGIN HIDDEN TESTS
for ex3_mu, ex3_L, ex3_gap0, ex3_eps in [(1.0, 4.0, 3.0, 1e-3), (0.01, 3.87, 1.8, 1e-2), (2.0, 2.5, 10.0, 1e-9)]:
    ex3_t, ex3_bound = 0, ex3_gap0
    while ex3_bound > ex3_eps:
        ex3_t, ex3_bound = ex3_t + 1, ex3_bound * (1 - ex3_mu / ex3_L)
    assert gd_steps_bound(ex3_mu, ex3_L, ex3_gap0, ex3_eps) == ex3_t, f"mu={ex3_mu}, L={ex3_L}: expected {ex3_t}"
ex3_rng = np.random.default_rng(3)
for _ in range(5):  # the bound holds on quadratics with curvatures in [mu, L]
    ex3_h = np.concatenate([[0.1, 5.0], ex3_rng.uniform(0.1, 5.0, size=8)])
    ex3_theta = ex3_rng.normal(size=10)
    ex3_gap0 = 0.5 * ex3_h @ ex3_theta**2
    for _ in range(gd_steps_bound(0.1, 5.0, ex3_gap0, 1e-6)):
        ex3_theta = ex3_theta - ex3_h * ex3_theta / 5.0
    assert 0.5 * ex3_h @ ex3_theta**2 <= 1e-6, "after your number of steps GD on a quadratic is still above eps"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "convergence-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) $(1-\mu/L)^t\Delta_0 \le \varepsilon \iff t \ge \ln(\Delta_0/\varepsilon) / \bigl(-\ln(1-\mu/L)\bigr)$, so
# $t = \lceil \ln(\Delta_0/\varepsilon) / (-\ln(1-1/\kappa)) \rceil$ (0 when $\Delta_0 \le \varepsilon$).
#
# (b) $-\ln(1-1/\kappa) = 1/\kappa + 1/(2\kappa^2) + \dots \approx 1/\kappa$, so $t \approx \kappa\ln(\Delta_0/\varepsilon)$:
# doubling the condition number doubles the steps; each extra digit of precision costs $\kappa\ln 10$ steps.
#
# (c) $\theta_i \leftarrow (1 - h_i/L)\theta_i$, so its share $\frac12 h_i\theta_i^2$ of the gap shrinks by $(1-h_i/L)^2$
# per step: at most $(1-\mu/L)^2$, the square of the bound's factor. The $(1-\mu/L)^t$ bound comes from a one-line
# proof and is loose by that square even in the worst case: over all $L$-smooth, $\mu$-strongly convex functions
# the exact worst case of GD with $\eta = 1/L$ is $(1-\mu/L)^{2t}$ {cite}`taylor2018`. Coordinates with $h_i > \mu$
# shrink faster still. The simulation therefore finishes in about half the steps or fewer.
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 (Investigate): how much history does L-BFGS need?
#
# Run `torch.optim.LBFGS` with `line_search_fn="strong_wolfe"` on the softmax regression of this chapter (the
# setup's `X`, `y`, `L2`, in float64) with `history_size` 1, 3, 10 and 30, and count the iterations and the
# evaluations of the loss until the largest gradient entry falls below $10^{-6}$ (at most 150 iterations). Plot
# the largest gradient entry against evaluations. Where do the returns diminish, and why can a longer history stop
# helping on a non-quadratic loss? What does each pair cost in memory for a model of $10^6$ weights?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "convergence-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
ex4_X, ex4_y = torch.from_numpy(X), torch.from_numpy(y)
fig, ax = plt.subplots()
for ex4_m in (1, 3, 10, 30):
    ex4_W = torch.zeros(d, K, dtype=torch.float64, requires_grad=True)
    ex4_b = torch.zeros(K, dtype=torch.float64, requires_grad=True)
    ex4_opt = torch.optim.LBFGS([ex4_W, ex4_b], lr=1, max_iter=1, max_eval=25, history_size=ex4_m,
                                line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0)
    ex4_count = [0]

    def ex4_closure():
        ex4_opt.zero_grad()
        value = (torch.nn.functional.cross_entropy(ex4_X @ ex4_W + ex4_b, ex4_y)
                 + 0.5 * L2 * ((ex4_W**2).sum() + (ex4_b**2).sum()))
        value.backward()
        ex4_count[0] += 1
        return value

    ex4_curve = []
    for ex4_iteration in range(1, 151):
        ex4_opt.step(ex4_closure)
        ex4_closure()  # the gradient at the new point (one extra evaluation, not counted below)
        ex4_count[0] -= 1
        ex4_grad = max(ex4_W.grad.abs().max().item(), ex4_b.grad.abs().max().item())
        ex4_curve.append((ex4_count[0], ex4_grad))
        if ex4_grad < 1e-6:
            break
    print(f"history {ex4_m:2d}: {ex4_iteration} iterations, {ex4_count[0]} evaluations")
    ax.plot(*np.array(ex4_curve).T, label=f"history_size = {ex4_m}")
ax.set_yscale("log")
ax.set_xlabel("evaluations of loss and gradient")
ax.set_ylabel("largest gradient entry")
ax.set_title("L-BFGS: longer histories help, with diminishing returns")
ax.legend()
plt.show()
### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "convergence-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# Even a history of 1 (one pair: a scaled, memoryless quasi-Newton step) converges. Each
# longer history saves iterations and evaluations (compare the printed counts), but the saving per extra pair
# shrinks: the newest pairs describe the curvature along the directions the iterates currently move in; older
# ones add less. The pairs
# describe the curvature where they were measured: on a non-quadratic loss old pairs describe a Hessian the
# optimizer has left behind, so a long history mixes outdated information in, and costs more. Each pair is two
# vectors of the model's
# size: for $10^6$ weights in float32, 8 MB per pair, 80 MB for a history of 10 (a float64 run doubles it), on
# top of the $O(mp)$ work per step for the two loops ($p$ the number of parameters).
# :::
# <!-- ### END SOLUTION -->
