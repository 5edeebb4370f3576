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
# # 2. Momentum and Nesterov
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part1_optimizers/02_momentum.ipynb)
#
# Gradient descent looks only at the slope under its feet. In a long, narrow valley that is a bad
# guide: the slope points mostly *across* the valley, so the iterates bounce from wall to wall while
# creeping along the floor, and the number of steps grows with the valley's condition number
# $\kappa$. Momentum gives the iterate a memory of where it has been going. Gradients that keep
# pointing the same way (along the floor) add up; gradients that flip sign (across the valley)
# cancel. The fix costs one extra vector per parameter, and it brings the iteration count down from
# $\sim\kappa$ to $\sim\sqrt\kappa$: on a problem with $\kappa = 10^4$ that is a factor of
# $\sqrt\kappa = 100$ in order of magnitude (the constants differ; this chapter measures it).
#
# This chapter covers
#
# * the heavy-ball method {cite}`polyak1964` and the "velocity" picture behind it;
# * Nesterov's accelerated gradient {cite}`nesterov1983` in the look-ahead form of
#   {cite:t}`sutskever2013`, and why `torch.optim.SGD(nesterov=True)` computes the same thing without
#   looking ahead;
# * the optimal momentum for a quadratic, and the $\kappa$ versus $\sqrt\kappa$ scaling, measured;
# * the trajectories on an ill-conditioned quadratic, on Rosenbrock's valley and around a saddle point;
# * the two momentum conventions of PyTorch and Keras, which agree until you add a learning-rate schedule;
# * a short MNIST run with SGD, momentum and Nesterov.

# %% tags=["hide-input"]
# Setup: on Colab (or anywhere companion is missing) install the course package.
try:
    import companion
except ImportError:
    %pip install -q "dl-optimization-companion[torch] @ git+https://github.com/YOUR-ORG/dl-optimization-hands-on@main"
    import companion

# %% tags=["keep-when-grading"]
import matplotlib.pyplot as plt
import numpy as np

from companion import optim
from companion.momentum import (
    Quadratic,
    Rosenbrock,
    Saddle,
    diverged_at,
    iterations_to_tolerance,
    plot_trajectories,
    trajectory,
)
from companion.glue import glue
from companion.plotting import plot_histories, use_course_style
from companion.reproducibility import seed_everything

use_course_style()
seed_everything(0)

# %% [markdown]
# ## The heavy ball
#
# Polyak's *heavy-ball* method adds a fraction $\mu \in [0, 1)$ of the previous step to the gradient
# step:
#
# $$
# \theta_{t+1} = \theta_t - \eta\,\nabla J(\theta_t) + \mu\,(\theta_t - \theta_{t-1}).
# $$
#
# Written with a buffer $b_t$, which is how `torch.optim.SGD` and `companion.optim.sgd` store it:
#
# $$
# b_t = \mu\, b_{t-1} + g_t, \qquad \theta_{t+1} = \theta_t - \eta\, b_t, \qquad g_t = \nabla J(\theta_t),\ b_0 = 0.
# $$
#
# (Subtract the two updates to see that $\theta_{t+1} - \theta_t = \mu(\theta_t - \theta_{t-1}) - \eta g_t$.)
# Unrolled, the buffer is an exponentially weighted sum of all past gradients,
# $b_t = \sum_{k=0}^{t-1} \mu^k g_{t-k}$. The physical picture: a ball of mass rolling down $J$, with
# $-\eta b_t$ its velocity and $1-\mu$ the friction. On a constant slope $g$ the velocity reaches a
# terminal value,
#
# $$
# b_\infty = \sum_{k\ge 0} \mu^k g = \frac{g}{1-\mu},
# $$
#
# so where the gradient is steady, momentum moves $1/(1-\mu)$ times faster than gradient descent with
# the same $\eta$: ten times with the usual $\mu = 0.9$. Where the gradient flips sign every step, the
# terms of the sum alternate and largely cancel. The figure feeds a constant gradient to
# `optim.trace`, the momentum transformation inside `optim.sgd`.

# %%
def velocity_under_constant_gradient(mu, steps=80):
    """The buffer b_t of optim.trace(mu) when every gradient is 1."""
    transform = optim.trace(mu)
    state, g = transform.init(np.zeros(1)), np.ones(1)
    history = []
    for _ in range(steps):
        b, state = transform.update(g, state)
        history.append(b[0])
    return np.array(history)


fig, ax = plt.subplots()
for mu in (0.0, 0.5, 0.8, 0.9):
    b = velocity_under_constant_gradient(mu)
    (line,) = ax.plot(np.arange(1, len(b) + 1), b, label=rf"$\mu = {mu}$")
    ax.axhline(1 / (1 - mu), color=line.get_color(), ls=":", lw=1)
ax.set_xlabel("step $t$")
ax.set_ylabel(r"buffer $b_t$ (units of the gradient $g$)")
ax.set_title(r"On a steady slope the velocity grows to $g/(1-\mu)$")
ax.legend()
plt.show()

# %% tags=["remove-input"]
b = velocity_under_constant_gradient(0.9, steps=300)
assert abs(b[-1] - 10.0) < 1e-9  # terminal velocity 1 / (1 - 0.9)
assert abs(b[9] - (1 - 0.9**10) / (1 - 0.9)) < 1e-12  # the geometric sum after 10 steps

# %% [markdown]
# **What to notice.** The buffer needs about $1/(1-\mu)$ steps to build up: momentum has a memory of
# roughly that many gradients. A learning rate tuned for plain SGD is, in effect, multiplied by
# $1/(1-\mu)$ once momentum is switched on, which is why $\eta$ usually has to come down when $\mu$
# goes up.
#
# ## Nesterov's accelerated gradient: looking ahead
#
# The heavy ball evaluates the gradient where it *is*, then adds the momentum. Nesterov's method
# {cite}`nesterov1983`, in the form {cite:t}`sutskever2013` made popular in deep learning, first lets
# the momentum carry the iterate, then evaluates the gradient at that *look-ahead* point and corrects:
#
# $$
# v_{t+1} = \mu\, v_t - \eta\, \nabla J(\theta_t + \mu v_t), \qquad \theta_{t+1} = \theta_t + v_{t+1}.
# $$
#
# If the momentum is about to carry the iterate up the opposite wall of a valley, the gradient at the
# look-ahead point already points back, and the correction comes one step earlier than the heavy
# ball's. That is the whole difference, and it is what damps the oscillations.
#
# Evaluating the gradient somewhere other than at the parameters is awkward in a framework whose
# `loss.backward()` gives the gradient *at the parameters*. So PyTorch stores the look-ahead point
# itself. Let $\phi_t = \theta_t + \mu v_t$. Then
#
# $$
# \phi_{t+1} = \theta_{t+1} + \mu v_{t+1} = \phi_t - \mu v_t + (1+\mu)\, v_{t+1}
#            = \phi_t + \mu v_{t+1} - \eta \nabla J(\phi_t),
# $$
#
# using $v_{t+1} = \mu v_t - \eta\nabla J(\phi_t)$ in the last step. Write $v_t = -\eta\, b_t$ (constant
# $\eta$) and $g_t = \nabla J(\phi_t)$:
#
# $$
# b_{t+1} = \mu\, b_t + g_t, \qquad \phi_{t+1} = \phi_t - \eta\,(g_t + \mu\, b_{t+1}).
# $$
#
# This is exactly `torch.optim.SGD(nesterov=True)` and `optim.sgd(nesterov=True)`: the usual buffer,
# and an update that adds the gradient once more on top of the momentum, $g_t + \mu b_t$. The
# parameters the model holds are the look-ahead points $\phi_t$; since $v_0 = 0$, both forms start
# at the same point. The cell below runs the textbook look-ahead form by hand on the Rosenbrock
# function and compares its $\phi_t$ with what `optim.sgd(nesterov=True)` produces.

# %% tags=["keep-when-grading"]
def nesterov_look_ahead(landscape, start, lr, mu, steps):
    """Sutskever et al.'s form; returns the points theta_t and the look-ahead points phi_t."""
    theta, v = np.array(start, dtype=float), np.zeros(2)
    thetas, phis = [theta.copy()], [theta + mu * v]
    for _ in range(steps):
        v = mu * v - lr * landscape.gradient(theta + mu * v)
        theta = theta + v
        thetas.append(theta.copy())
        phis.append(theta + mu * v)
    return np.array(thetas), np.array(phis)


rosenbrock = Rosenbrock()
lr, mu, start = 1e-3, 0.9, (-1.2, 1.0)
thetas, phis = nesterov_look_ahead(rosenbrock, start, lr, mu, steps=400)
torch_form = trajectory(optim.sgd(lr, momentum=mu, nesterov=True), rosenbrock, start, steps=400)
gap = np.abs(phis - torch_form).max()
print(f"largest |phi_t - torch-form iterate| over 400 steps: {gap:.1e}")
print(f"largest |theta_t - phi_t| (the look-ahead offset mu * v_t): {np.abs(thetas - phis).max():.3f}")

# %% tags=["remove-input"]
assert gap < 1e-12  # the look-ahead form, shifted by mu * v, is torch's form
assert np.abs(thetas - phis).max() > 1e-2  # ... and the shift is not negligible: they are different points

# %%
fig, ax = plt.subplots(figsize=(6.5, 4.5))
plot_trajectories(
    rosenbrock,
    {r"look-ahead form: $\theta_t$": thetas[:150], r"torch form: $\phi_t = \theta_t + \mu v_t$": torch_form[:150]},
    ax=ax,
    window=((-1.5, 1.5), (-0.5, 1.6)),
    title="torch's Nesterov iterates are the look-ahead points",
)
plt.show()

# %% [markdown]
# **What to notice.** The two forms agree to rounding error ($<10^{-12}$) after 400 steps on a
# non-quadratic function: nothing about the derivation used the shape of $J$. The torch path runs
# slightly *ahead* of the textbook one, by $\mu v_t$, which is the point where the gradient is taken.
# A pitfall when porting code: a hand-written Nesterov loop that takes
# `model.params + mu * v` *and* a torch-style update applies the look-ahead twice.
#
# ## Three methods on an ill-conditioned quadratic
#
# The model problem is $J(\theta) = \tfrac12 \theta^\top A \theta$ with eigenvalues $\mu_A = L/\kappa$
# and $L$ (`Quadratic(condition_number=kappa)` with $L = 1$; the valley's floor runs along
# $\theta_1$). Along each eigenvector the iteration is a scalar recursion, and its rate is known in
# closed form {cite}`polyak1964`. With each method tuned optimally for the quadratic:
#
# | method | step size $\eta$ | momentum | error shrinks per step by |
# |---|---|---|---|
# | gradient descent | $\dfrac{2}{L + \mu_A}$ | — | $\dfrac{\kappa - 1}{\kappa + 1} \approx 1 - \dfrac{2}{\kappa}$ |
# | heavy ball | $\dfrac{4}{(\sqrt{L} + \sqrt{\mu_A})^2}$ | $\left(\dfrac{\sqrt\kappa - 1}{\sqrt\kappa + 1}\right)^2$ | $\dfrac{\sqrt\kappa - 1}{\sqrt\kappa + 1} \approx 1 - \dfrac{2}{\sqrt\kappa}$ |
# | Nesterov | $\dfrac{1}{L}$ | $\dfrac{\sqrt\kappa - 1}{\sqrt\kappa + 1}$ | $\approx 1 - \dfrac{1}{\sqrt\kappa}$ |
#
# To shrink the error by a factor $\varepsilon$ takes about $\tfrac{\kappa}{2}\ln\tfrac1\varepsilon$ steps
# of gradient descent, but only $\tfrac{\sqrt\kappa}{2}\ln\tfrac1\varepsilon$ of the heavy ball. (The
# Nesterov row is the constant-momentum scheme for strongly convex functions; Nesterov's 1983 method
# varies the momentum as $\tfrac{t-1}{t+2}$ and needs no $\kappa$ {cite}`nesterov1983`.)

# %%
def tuned(kappa, L=1.0):
    """The three methods with their optimal constants for a quadratic with condition number kappa."""
    mu_A, root = L / kappa, np.sqrt(kappa)
    return {
        "gradient descent": optim.sgd(2 / (L + mu_A)),
        "heavy ball": optim.sgd(4 / (np.sqrt(L) + np.sqrt(mu_A)) ** 2, momentum=((root - 1) / (root + 1)) ** 2),
        "Nesterov": optim.sgd(1 / L, momentum=(root - 1) / (root + 1), nesterov=True),
    }


quadratic = Quadratic(condition_number=100)
start = (-9.0, 1.0)
paths = {name: trajectory(opt, quadratic, start, steps=300) for name, opt in tuned(100).items()}

fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.3))
plot_trajectories(
    quadratic, {name: path[:60] for name, path in paths.items()}, ax=left,
    title=r"First 60 steps, $\kappa = 100$: only momentum gets near $\theta^\star$",
)
for name, path in paths.items():
    right.semilogy(quadratic.value(path) - quadratic.minimum_value, label=name)
right.set_xlabel("step $t$")
right.set_ylabel(r"$J(\theta_t) - J^\star$ (loss units)")
right.set_title(r"... and converges $\sim\sqrt{\kappa}$ times faster")
right.legend()
plt.show()

# %% tags=["remove-input"]
final = {name: quadratic.value(path[-1]) for name, path in paths.items()}
assert final["gradient descent"] > 1e6 * final["heavy ball"]
assert final["gradient descent"] > 1e6 * final["Nesterov"]

# %% [markdown]
# **What to notice.** With its best step size, gradient descent contracts by $0.98$ per step in
# *both* directions: it bounces across the valley (the step is nearly $2/L$) and crawls along the
# floor. After 300 steps it is still more than a million times further from the minimum (in loss)
# than either momentum method. The heavy ball overshoots and swings back, like a ball rolling into a
# bowl; Nesterov's look-ahead corrects earlier and spirals in more smoothly.
#
# ### The optimal momentum, and a common mix-up
#
# The formula $\frac{\sqrt\kappa-1}{\sqrt\kappa+1}$ is quoted often as "the optimal momentum". It is
# the optimal momentum for *Nesterov*, and the convergence *rate* of the heavy ball; the heavy ball's
# optimal momentum is its square. A sweep over $\mu$ at the heavy ball's optimal step size shows which
# is right.

# %%
kappa, tol = 100, 1e-8
f0 = quadratic.value(start)
L, mu_A, root = 1.0, 1.0 / kappa, np.sqrt(kappa)
hb_lr = 4 / (np.sqrt(L) + np.sqrt(mu_A)) ** 2
mu_star, rate = ((root - 1) / (root + 1)) ** 2, (root - 1) / (root + 1)


def count_at(momentum):
    """Heavy-ball steps to the tolerance at the optimal step size; NaN when the run diverges."""
    path = trajectory(optim.sgd(hb_lr, momentum=momentum), quadratic, start, 3000)
    n = iterations_to_tolerance(path, quadratic, tol * f0)
    return np.nan if n is None else n


momenta = np.round(np.arange(0.50, 0.96, 0.01), 2)
counts = np.array([count_at(m) for m in momenta])
best = momenta[np.nanargmin(counts)]
unstable = momenta[np.isnan(counts)]

fig, ax = plt.subplots()
ax.plot(momenta, counts, marker="o", ms=3, label="heavy ball, measured")
ax.axvline(mu_star, color="tab:green", ls="--", label=rf"$((\sqrt{{\kappa}}-1)/(\sqrt{{\kappa}}+1))^2 = {mu_star:.3f}$")
ax.axvline(rate, color="tab:red", ls=":", label=rf"$(\sqrt{{\kappa}}-1)/(\sqrt{{\kappa}}+1) = {rate:.3f}$")
ax.set_xlabel(r"momentum $\mu$")
ax.set_ylabel(r"steps until $J - J^\star \leq 10^{-8}\,(J_0 - J^\star)$")
ax.set_title(r"Heavy ball, $\kappa = 100$: the best momentum is the squared ratio")
ax.legend()
plt.show()
print(f"best momentum on the grid: {best}, theory: {mu_star:.3f}; diverged for mu <= {unstable.max()}")
print(f"steps at the best mu = {best}: {np.nanmin(counts):.0f}, at mu = {rate:.3f}: {count_at(rate)}")

# %% tags=["remove-input"]
assert abs(best - mu_star) <= 0.05
assert count_at(rate) > 1.5 * np.nanmin(counts)  # the mix-up costs more than 50% extra steps
# below mu = hb_lr * L / 2 - 1 the step size is outside the stable range eta < 2 (1 + mu) / L
assert np.all(unstable < hb_lr / 2 - 1 + 0.01) and np.all(momenta[~np.isnan(counts)] > hb_lr / 2 - 1)

# %% [markdown]
# **What to notice.** Above the optimum the iterate rings: every direction shrinks only by $\sqrt\mu$
# per step. Below it the fast direction is the problem: this step size is stable only for
# $\eta < 2(1+\mu)/L$, so for $\mu$ below about $0.65$ the run diverges (the gap at the left of the
# curve), and just above that edge the fast direction barely contracts. The measured best lies a hair
# above $\mu^\star$: exactly at $\mu^\star$ the two roots of each direction coincide and the error
# picks up a factor $t$, which costs steps at this modest accuracy. Using the rate formula as the
# momentum needs about twice as many steps as the best momentum.
#
# ### $\kappa$ versus $\sqrt\kappa$
#
# Now the same three tuned methods on quadratics with $\kappa$ from 10 to $10^4$, counting the steps
# until the loss gap stays below $10^{-8}$ of its starting value.

# %%
kappas = np.array([10, 30, 100, 300, 1000, 3000, 10000])
steps_needed = {name: [] for name in tuned(10)}
for kappa in kappas:
    q = Quadratic(condition_number=kappa)
    f0 = q.value(start)
    for name, opt in tuned(kappa).items():
        budget = int(6 * kappa + 200) if name == "gradient descent" else int(30 * np.sqrt(kappa) + 200)
        steps_needed[name].append(iterations_to_tolerance(trajectory(opt, q, start, budget), q, 1e-8 * f0))
slopes = {name: np.polyfit(np.log(kappas), np.log(n), 1)[0] for name, n in steps_needed.items()}

fig, ax = plt.subplots()
for name, n in steps_needed.items():
    ax.loglog(kappas, n, marker="o", label=f"{name} (slope {slopes[name]:.2f})")
ax.loglog(kappas, 4.6 * kappas, "k:", lw=1, label=r"$\propto\kappa$")
ax.loglog(kappas, 8 * np.sqrt(kappas), "k--", lw=1, label=r"$\propto\sqrt{\kappa}$")
ax.set_xlabel(r"condition number $\kappa$")
ax.set_ylabel(r"steps to $10^{-8}$ relative loss gap")
ax.set_title(r"Gradient descent needs $\sim\kappa$ steps, momentum $\sim\sqrt{\kappa}$")
ax.legend()
plt.show()
for name, n in steps_needed.items():
    print(f"{name:>17}: " + ", ".join(f"κ={k}: {s}" for k, s in zip(kappas, n)))
for kappa, label in ((100, "100"), (kappas[-1], "10k")):
    i = list(kappas).index(kappa)
    for name, key in (("heavy ball", "hb"), ("Nesterov", "nesterov")):
        glue(f"{key}_fewer_{label}", f"{steps_needed['gradient descent'][i] / steps_needed[name][i]:.0f}")

# %% tags=["remove-input"]
assert 0.9 < slopes["gradient descent"] < 1.1
assert 0.35 < slopes["heavy ball"] < 0.65 and 0.35 < slopes["Nesterov"] < 0.65
at_100 = {name: n[list(kappas).index(100)] for name, n in steps_needed.items()}
assert at_100["heavy ball"] * 3.5 < at_100["gradient descent"]  # "more than 3.5 times fewer" at kappa = 100
assert at_100["Nesterov"] * 3.5 < at_100["gradient descent"]
at_10k = {name: n[-1] for name, n in steps_needed.items()}
assert at_10k["heavy ball"] * 40 < at_10k["gradient descent"]  # "more than 40 times fewer" at kappa = 10^4
assert at_10k["Nesterov"] * 40 < at_10k["gradient descent"]

# %% [markdown]
# **What to notice.** The measured slopes on the log-log plot are close to 1 for gradient descent and
# to $\tfrac12$ for both momentum methods. At $\kappa = 100$ the heavy ball needs
# {glue:text}`hb_fewer_100` and Nesterov's method {glue:text}`nesterov_fewer_100` times fewer steps than
# gradient descent, more than 3.5 times; at $\kappa = 10^4$, {glue:text}`hb_fewer_10k` and
# {glue:text}`nesterov_fewer_10k` times fewer, more than 40 times. No first-order method can do better than $\sim\sqrt\kappa$
# on this problem class, so momentum is not a trick but the optimal order.
#
# The catch is in the table: the optimal constants depend on $L$ and $\kappa$, which nobody knows for
# a neural network, and the heavy ball's guarantee is for quadratics only. On general smooth, strongly
# convex functions the heavy ball can fail where Nesterov's method provably keeps its $\sqrt\kappa$.
# In practice one picks $\mu = 0.9$ and tunes $\eta$ (exercise 4 looks at what that costs).
#
# ## Beyond quadratics: a curved valley and a saddle
#
# Rosenbrock's function {cite}`rosenbrock1960`, $J(x, y) = (1-x)^2 + 100\,(y - x^2)^2$, has a
# curved, flat-bottomed valley: the direction of the floor changes as you go, so no fixed
# preconditioner straightens it. The saddle $J(x, y) = x^2 + \tfrac14 y^4 - \tfrac12 y^2$ has a saddle
# point at the origin, curving up along $x$ and down along $y$, between two minima at $(0, \pm1)$.
# Near a saddle the gradient is tiny, and escaping takes many small steps.

# %%
rb_paths = {
    "gradient descent": trajectory(optim.sgd(1e-3), rosenbrock, (-1.2, 1.0), 1000),
    "momentum 0.9": trajectory(optim.sgd(1e-3, momentum=0.9), rosenbrock, (-1.2, 1.0), 1000),
    "Nesterov 0.9": trajectory(optim.sgd(1e-3, momentum=0.9, nesterov=True), rosenbrock, (-1.2, 1.0), 1000),
}
saddle = Saddle()
saddle_start = (1.5, 1e-3)  # a hair off the ridge: exactly on it, y stays 0 and every method is stuck
sd_paths = {
    "gradient descent": trajectory(optim.sgd(0.1), saddle, saddle_start, 100),
    "momentum 0.9": trajectory(optim.sgd(0.1, momentum=0.9), saddle, saddle_start, 100),
    "Nesterov 0.9": trajectory(optim.sgd(0.1, momentum=0.9, nesterov=True), saddle, saddle_start, 100),
}
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
plot_trajectories(rosenbrock, rb_paths, ax=left, markers=False,
                  title="Rosenbrock: momentum reaches (1, 1)")
plot_trajectories(saddle, {k: p[:60] for k, p in sd_paths.items()}, ax=right, markers=True,
                  title="Saddle: momentum escapes first")
plt.show()


def escape_step(path, threshold=0.5):
    """First step at which |y| exceeds the threshold: the iterate has left the saddle."""
    return int(np.flatnonzero(np.abs(path[:, 1]) > threshold)[0])


for name in rb_paths:
    print(f"{name:>17}: Rosenbrock loss after 1000 steps {rosenbrock.value(rb_paths[name][-1]):.2e}; "
          f"saddle escaped (|y| > 0.5) at step {escape_step(sd_paths[name])}")

# %% tags=["remove-input"]
assert rosenbrock.value(rb_paths["gradient descent"][-1]) > 0.1
assert rosenbrock.value(rb_paths["momentum 0.9"][-1]) < 1e-3
assert rosenbrock.value(rb_paths["Nesterov 0.9"][-1]) < 1e-3
assert 2 * escape_step(sd_paths["momentum 0.9"]) < escape_step(sd_paths["gradient descent"])
assert 2 * escape_step(sd_paths["Nesterov 0.9"]) < escape_step(sd_paths["gradient descent"])

# %% [markdown]
# **What to notice.** (Left: 1000 steps with $\eta = 10^{-3}$; right: 60 steps with $\eta = 0.1$; squares
# mark where each run ends.) On Rosenbrock, gradient descent spends its 1000 steps crawling along the
# curved floor and is still far from $(1, 1)$; both momentum methods pick up speed along the floor and
# arrive (loss below $10^{-3}$). At the saddle, the unstable direction grows geometrically. Near the
# origin $y_{t+1} \approx (1 + \eta)\,y_t$ for gradient descent, a factor 1.1 per step; for the heavy ball
# the growth factor is the larger root of $z^2 - (1 + \mu + \eta) z + \mu = 0$, about $1.32$ for
# $\mu = 0.9$, so momentum leaves the saddle in fewer than half the steps. Escaping fast has a price:
# the heavy ball overshoots the minimum at $(0, 1)$ and circles it before settling.
#
# ## torch and Keras: two momentum conventions
#
# The two frameworks store different things in the momentum slot:
#
# $$
# \text{torch:}\quad b_t = \mu b_{t-1} + g_t,\ \ \theta_{t+1} = \theta_t - \eta_t\, b_t
# \qquad\qquad
# \text{Keras:}\quad m_t = \mu m_{t-1} - \eta_t g_t,\ \ \theta_{t+1} = \theta_t + m_t .
# $$
#
# torch accumulates *gradients* and multiplies by today's learning rate; Keras accumulates *steps*,
# each taken with the learning rate of its day. With a constant $\eta$, $m_t = -\eta b_t$ and the
# iterates are identical. Under a schedule they are not: when $\eta$ drops by {fixed}`10×`, torch's whole
# velocity shrinks {fixed}`10×` at once, while Keras' velocity still carries the old, large steps and fades
# over about $1/(1-\mu)$ steps. `optim.sgd(convention=...)` implements both (chained in two different
# orders, see its docstring); the schedule below divides $\eta$ by 10 at step 30.

# %%
def step_decay(step):
    """0.1 for the first 30 steps, then 0.01 (a step-decay schedule of the step count 0, 1, 2, ...)."""
    return 0.1 if step < 30 else 0.01


conv_quadratic, conv_start = Quadratic(condition_number=100), start
conventions = {}
for convention in ("torch", "keras"):
    constant = trajectory(optim.sgd(0.1, momentum=0.9, convention=convention), conv_quadratic, conv_start, 80)
    scheduled = trajectory(optim.sgd(step_decay, momentum=0.9, convention=convention), conv_quadratic, conv_start, 80)
    conventions[convention] = (constant, scheduled)

gap_constant = np.abs(conventions["torch"][0] - conventions["keras"][0]).max()
gap_scheduled = np.abs(conventions["torch"][1] - conventions["keras"][1]).max()
print(f"constant lr: largest difference {gap_constant:.1e};  step decay: largest difference {gap_scheduled:.2f}")

fig, ax = plt.subplots()
for convention, (_, scheduled) in conventions.items():
    ax.semilogy(np.arange(1, 81), np.linalg.norm(np.diff(scheduled, axis=0), axis=1), marker=".", label=convention)
ax.axvline(30.5, color="k", ls=":", lw=1, label=r"$\eta$: 0.1 → 0.01")
ax.set_xlabel("step $t$")
ax.set_ylabel(r"step length $\|\theta_{t} - \theta_{t-1}\|$ (parameter units)")
ax.set_title("At a learning-rate drop torch's step shrinks at once, Keras' fades")
ax.legend()
plt.show()

# %% tags=["remove-input"]
assert gap_constant < 1e-12  # equal at a constant learning rate
assert gap_scheduled > 0.1  # different under a schedule
lengths = {c: np.linalg.norm(np.diff(s, axis=0), axis=1) for c, (_, s) in conventions.items()}
# row t of np.diff is the step that used eta(t); eta(30) is the first small one
assert lengths["torch"][30] < 0.15 * lengths["torch"][29]
assert lengths["keras"][30] > 0.85 * lengths["keras"][29]
glue("keras_step_kept", f"{lengths['keras'][30] / lengths['keras'][29]:.0%}")
glue("torch_step_kept", f"{lengths['torch'][30] / lengths['torch'][29]:.0%}")

# %% [markdown]
# And `torch.optim.SGD` with the same schedule (as a `LambdaLR`) follows the torch convention to
# rounding error:

# %%
import torch

theta = torch.tensor(conv_start, dtype=torch.float64, requires_grad=True)
sgd = torch.optim.SGD([theta], lr=1.0, momentum=0.9)
scheduler = torch.optim.lr_scheduler.LambdaLR(sgd, lr_lambda=step_decay)  # lr = 1.0 * step_decay(step)
torch_path = [theta.detach().numpy().copy()]
for _ in range(80):
    sgd.zero_grad()
    loss = 0.5 * theta @ torch.as_tensor(conv_quadratic.matrix) @ theta
    loss.backward()
    sgd.step()
    scheduler.step()
    torch_path.append(theta.detach().numpy().copy())
torch_gap = np.abs(np.array(torch_path) - conventions["torch"][1]).max()
print(f"torch.optim.SGD vs optim.sgd(convention='torch'): {torch_gap:.1e}")

# %% tags=["remove-input"]
assert torch_gap < 1e-12

# %% [markdown]
# **What to notice.** The curves coincide for 30 steps. At the drop, torch's step falls at once to
# {glue:text}`torch_step_kept` of its length (under 15%); Keras' step is still {glue:text}`keras_step_kept` as long and fades gradually, as
# the old velocity decays by $\mu$ per step. Neither
# is wrong, but a schedule tuned in one framework is not the same schedule in the other, and a warm-up
# (a schedule that *raises* $\eta$) differs the same way. When you port a recipe across frameworks,
# the momentum convention matters as soon as the learning rate changes.
#
# ## A real network: MNIST
#
# The quadratic theory assumes exact gradients and known curvature; a network offers neither. Here is
# a multilayer perceptron (784-128-10) trained for one epoch on 10,000 MNIST digits with batches of
# 64: SGD, heavy ball and Nesterov with the same $\eta = 0.05$ and $\mu = 0.9$, and SGD with
# $\eta = 0.5 = 0.05/(1-\mu)$, the "effective" learning rate of momentum.

# %%
from companion.reproducibility import pick_device
from companion.training import mlp, mnist_tensors, train_classifier

device = pick_device()
# 10,000 training images, and the next 5,000 as a validation split (the test set stays untouched).
x_train, y_train, x_val, y_val, _, _ = mnist_tensors(10_000, val=5_000, test=0, device=device)

settings = {
    "SGD, lr 0.05": dict(lr=0.05),
    "momentum 0.9, lr 0.05": dict(lr=0.05, momentum=0.9),
    "Nesterov 0.9, lr 0.05": dict(lr=0.05, momentum=0.9, nesterov=True),
    "SGD, lr 0.5": dict(lr=0.5),
}
histories = {}
for name, kwargs in settings.items():
    seed_everything(0)
    model = mlp((784, 128, 10)).to(device)
    histories[name] = train_classifier(
        model, torch.optim.SGD(model.parameters(), **kwargs), x_train, y_train,
        x_val=x_val, y_val=y_val, epochs=1, batch_size=64, seed=0, progress=False, name=name,
    )
    print(f"{name:>22}: mean training loss {histories[name].last('train_loss'):.3f}, "
          f"validation accuracy {histories[name].last('val_accuracy'):.3f}")

ax = plot_histories(histories, "loss", smooth=10, ylabel="training loss (cross-entropy, nats)")
ax.set_title("Momentum trains faster than SGD at the same lr, about as fast as SGD at lr/(1-μ)")
plt.show()

# %% tags=["remove-input"]
epoch_loss = {name: h.last("train_loss") for name, h in histories.items()}
accuracy = {name: h.last("val_accuracy") for name, h in histories.items()}
assert epoch_loss["momentum 0.9, lr 0.05"] < 0.6 * epoch_loss["SGD, lr 0.05"]
assert epoch_loss["Nesterov 0.9, lr 0.05"] < 0.6 * epoch_loss["SGD, lr 0.05"]
assert accuracy["momentum 0.9, lr 0.05"] > accuracy["SGD, lr 0.05"] + 0.03
assert abs(epoch_loss["SGD, lr 0.5"] - epoch_loss["momentum 0.9, lr 0.05"]) < 0.15 * epoch_loss["momentum 0.9, lr 0.05"]
glue("momentum_loss_share", f"{epoch_loss['momentum 0.9, lr 0.05'] / epoch_loss['SGD, lr 0.05']:.0%}")
glue("nesterov_loss_share", f"{epoch_loss['Nesterov 0.9, lr 0.05'] / epoch_loss['SGD, lr 0.05']:.0%}")
glue("large_step_gap", f"{abs(epoch_loss['SGD, lr 0.5'] / epoch_loss['momentum 0.9, lr 0.05'] - 1):.0%}")

# %% [markdown]
# **What to notice.** At the same $\eta$, momentum and Nesterov reach {glue:text}`momentum_loss_share`
# and {glue:text}`nesterov_loss_share` of SGD's mean training loss in one epoch, less than 60%. Plain
# SGD with the ten-times larger step lands {glue:text}`large_step_gap` from momentum, within 15%: in
# this short, noisy run much of momentum's gain is the $1/(1-\mu)$ factor of the first section, not
# acceleration. (Large-step SGD's end point is also noisier; averaging gradients in the
# buffer smooths the steps.) This is the regime of small learning rates and noisy gradients, where
# heavy ball SGD behaves much like SGD with $\eta/(1-\mu)$; the $\sqrt\kappa$ advantage needs
# gradients accurate enough to see the curvature. Nesterov's edge over the heavy ball is small here,
# as it usually is with mini-batches {cite}`sutskever2013`.
#
# ## Pitfalls
#
# * **Turning on momentum without lowering $\eta$.** The effective step becomes $\eta/(1-\mu)$;
#   $\mu = 0.9$ with a learning rate tuned for plain SGD is a ten times larger step, and on a quadratic
#   the stable range grows only to $\eta < 2(1+\mu)/L$.
# * **The optimal momentum for the heavy ball** is $\bigl(\frac{\sqrt\kappa-1}{\sqrt\kappa+1}\bigr)^2$,
#   not $\frac{\sqrt\kappa-1}{\sqrt\kappa+1}$ (that is its rate, and Nesterov's momentum).
# * **torch's Nesterov parameters are the look-ahead points.** Do not add $\mu v$ to them again.
# * **torch and Keras momentum differ under a schedule.** Porting a step decay or warm-up between the
#   two changes the effective steps around every change of $\eta$.
# * **Resetting the buffer.** Re-creating the optimizer (for example, once per epoch) throws the
#   velocity away and starts from $b = 0$; keep the optimizer, and save its `state_dict()` with the model.
#
# ## Summary
#
# * Momentum keeps an exponentially weighted sum of past gradients, $b_t = \mu b_{t-1} + g_t$, and steps
#   along it. Consistent gradients add up (to $g/(1-\mu)$), oscillating ones cancel.
# * Nesterov's method takes the gradient at the look-ahead point $\theta + \mu v$; the form torch uses,
#   $\theta \leftarrow \theta - \eta(g_t + \mu b_t)$, is the same method with the look-ahead point stored as the
#   parameters (checked above to $10^{-12}$).
# * With the right constants both need $\sim\sqrt\kappa$ steps where gradient descent needs $\sim\kappa$;
#   we measured slopes near $\tfrac12$ and $1$ on a log-log plot.
# * Momentum also moves faster along curved valleys (Rosenbrock) and away from saddle points.
# * torch accumulates gradients, Keras accumulates steps: the same method at a constant learning
#   rate, two methods under a schedule.
#
# For an interactive tour of the same ideas, with sliders for $\eta$ and $\mu$, see {cite:t}`goh2017`.
# Next chapter: instead of one learning rate for all parameters, adaptive methods give each parameter
# its own.
#
# ## Exercises
#
# ### Exercise 1 — Implement it: heavy-ball momentum as a gradient transformation
#
# Write `heavy_ball(decay)`, a `GradientTransformation` in companion's style: `init(params)` returns a
# state holding a zero buffer shaped like the parameters (a NumPy array), and
# `update(grads, state, params=None)` returns `(updates, new_state)` with
# $b_t = \mu b_{t-1} + g_t$ and `updates` $= b_t$. Do not modify the state you are given (the update must
# be a pure function). Reject a `decay` outside $[0, 1)$ with a `ValueError` that names `decay`.
# Chained with `optim.scale_by_learning_rate(lr)` it must reproduce `optim.sgd(lr, momentum=decay)`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "momentum-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
from typing import NamedTuple

from companion.optim import GradientTransformation


class HeavyBallState(NamedTuple):
    buffer: np.ndarray


def heavy_ball(decay: float) -> GradientTransformation:
    """Heavy-ball momentum (Polyak, 1964): b_t = decay * b_{t-1} + g_t; the update is b_t."""
    ### BEGIN SOLUTION
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"Invalid decay: {decay} (must be in [0, 1))")

    def init(params):
        return HeavyBallState(np.zeros_like(np.asarray(params, dtype=float)))

    def update(grads, state, params=None):
        buffer = decay * state.buffer + grads  # a new array: the old state is left untouched
        return buffer, HeavyBallState(buffer)

    return GradientTransformation(init, update)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "momentum-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error
mine = optim.chain(heavy_ball(0.9), optim.scale_by_learning_rate(1e-3))
reference = optim.sgd(1e-3, momentum=0.9)
mine_path = trajectory(mine, rosenbrock, (-1.2, 1.0), 300)
reference_path = trajectory(reference, rosenbrock, (-1.2, 1.0), 300)
assert np.allclose(mine_path, reference_path, rtol=0, atol=1e-12), "your iterates differ from optim.sgd(momentum=0.9)"
state = heavy_ball(0.9).init(np.ones(2))
assert np.all(np.asarray(state.buffer if hasattr(state, "buffer") else state[0]) == 0), "the buffer must start at zero"
### BEGIN HIDDEN TESTS
# the same as companion's own transformation, for another decay and other shapes
for decay in (0.0, 0.5, 0.99):
    rng = np.random.default_rng(1)
    params = rng.normal(size=(3, 4))
    ours, theirs = heavy_ball(decay), optim.trace(decay)
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    for _ in range(20):
        g = rng.normal(size=(3, 4))
        u_ours, s_ours = ours.update(g, s_ours, params)
        u_theirs, s_theirs = theirs.update(g, s_theirs, params)
        assert np.allclose(u_ours, u_theirs, rtol=0, atol=1e-12), f"decay={decay}: your update differs from optim.trace(decay)"
# pure: updating does not change the state passed in
t = heavy_ball(0.9)
s0 = t.init(np.zeros(2))
_, s1 = t.update(np.ones(2), s0)
_, s2 = t.update(np.ones(2), s1)
assert np.all(np.asarray(s0[0]) == 0) and np.allclose(np.asarray(s1[0]), 1.0), "update must return a new state and leave the state it was given unchanged"
# bad decay
for bad in (-0.1, 1.0, 1.5):
    expect_error(lambda: heavy_ball(bad), ValueError, "decay", when=f"heavy_ball({bad})")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 — Implement it: Nesterov momentum as a gradient transformation
#
# Write `nesterov_momentum(decay)`, the transformation behind `torch.optim.SGD(nesterov=True)`:
# `init(params)` returns a state holding a zero buffer shaped like the parameters (a NumPy array of any
# shape), and `update(grads, state, params=None)` returns `(updates, new_state)` with
#
# $$
# b_t = \mu\, b_{t-1} + g_t, \qquad \text{updates} = g_t + \mu\, b_t ,
# $$
#
# the torch form derived in the section on Nesterov's method. Do not modify the state you are given.
# Reject a `decay` outside the open interval $(0, 1)$ with a `ValueError` that names `decay` (torch
# refuses Nesterov momentum without momentum). Chained with `optim.scale_by_learning_rate(lr)` it must
# reproduce `optim.sgd(lr, momentum=decay, nesterov=True)` and `torch.optim.SGD(params, lr=lr,
# momentum=decay, nesterov=True)`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "momentum-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
from typing import NamedTuple

from companion.optim import GradientTransformation


class NesterovState(NamedTuple):
    buffer: np.ndarray


def nesterov_momentum(decay: float) -> GradientTransformation:
    """Nesterov momentum in torch's form (Sutskever et al., 2013): b_t = decay * b_{t-1} + g_t; the update is g_t + decay * b_t."""
    ### BEGIN SOLUTION
    if not 0.0 < decay < 1.0:
        raise ValueError(f"Invalid decay: {decay} (Nesterov momentum needs 0 < decay < 1)")

    def init(params):
        return NesterovState(np.zeros_like(np.asarray(params, dtype=float)))

    def update(grads, state, params=None):
        buffer = decay * state.buffer + grads
        return grads + decay * buffer, NesterovState(buffer)

    return GradientTransformation(init, update)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "momentum-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error
import torch

ex2_transform = nesterov_momentum(0.5)
ex2_state = ex2_transform.init(np.zeros(1))
ex2_first, ex2_state = ex2_transform.update(np.ones(1), ex2_state)
ex2_second, ex2_state = ex2_transform.update(np.ones(1), ex2_state)
assert np.allclose(ex2_first, 1.5) and np.allclose(ex2_second, 1.75), f"decay 0.5, gradients 1 then 1: b = 1 then 1.5, so the updates are 1 + 0.5 * 1 = 1.5 and 1 + 0.5 * 1.5 = 1.75; got {np.ravel(ex2_first)} and {np.ravel(ex2_second)}"
ex2_mine = trajectory(optim.chain(nesterov_momentum(0.9), optim.scale_by_learning_rate(1e-3)), rosenbrock, (-1.2, 1.0), 300)
ex2_reference = trajectory(optim.sgd(1e-3, momentum=0.9, nesterov=True), rosenbrock, (-1.2, 1.0), 300)
assert np.allclose(ex2_mine, ex2_reference, rtol=0, atol=1e-12), f"on Rosenbrock your iterates differ from optim.sgd(momentum=0.9, nesterov=True) by up to {np.nanmax(np.abs(ex2_mine - ex2_reference)):.2e}"
### BEGIN HIDDEN TESTS
# torch.optim.SGD(nesterov=True) on a weight matrix, fed the same random gradients
for ex2_decay, ex2_lr in [(0.9, 0.1), (0.5, 0.03), (0.99, 0.01)]:
    ex2_rng = np.random.default_rng(0)
    ex2_params = ex2_rng.normal(size=(3, 4))
    ex2_tensor = torch.tensor(ex2_params, dtype=torch.float64, requires_grad=True)
    ex2_torch_sgd = torch.optim.SGD([ex2_tensor], lr=ex2_lr, momentum=ex2_decay, nesterov=True)
    ex2_transform = optim.chain(nesterov_momentum(ex2_decay), optim.scale_by_learning_rate(ex2_lr))
    ex2_state = ex2_transform.init(ex2_params)
    for _ in range(25):
        ex2_g = ex2_rng.normal(size=(3, 4))
        ex2_tensor.grad = torch.tensor(ex2_g)
        ex2_torch_sgd.step()
        ex2_updates, ex2_state = ex2_transform.update(ex2_g, ex2_state, ex2_params)
        ex2_params = ex2_params + ex2_updates
    ex2_gap = np.abs(ex2_params - ex2_tensor.detach().numpy()).max()
    assert ex2_gap < 1e-12, f"decay={ex2_decay}, lr={ex2_lr}: after 25 steps your parameters differ from torch.optim.SGD(nesterov=True) by {ex2_gap:.1e}"
# the same as companion's own transformation
ex2_rng = np.random.default_rng(1)
ex2_ours, ex2_theirs = nesterov_momentum(0.7), optim.trace(0.7, nesterov=True)
ex2_s_ours, ex2_s_theirs = ex2_ours.init(np.zeros(5)), ex2_theirs.init(np.zeros(5))
for _ in range(20):
    ex2_g = ex2_rng.normal(size=5)
    ex2_u_ours, ex2_s_ours = ex2_ours.update(ex2_g, ex2_s_ours)
    ex2_u_theirs, ex2_s_theirs = ex2_theirs.update(ex2_g, ex2_s_theirs)
    assert np.allclose(ex2_u_ours, ex2_u_theirs, rtol=0, atol=1e-12), "decay=0.7: your updates differ from optim.trace(0.7, nesterov=True)"
# pure: updating does not change the state passed in
ex2_transform = nesterov_momentum(0.9)
ex2_s0 = ex2_transform.init(np.zeros(2))
ex2_u_first, ex2_s1 = ex2_transform.update(np.ones(2), ex2_s0)
ex2_transform.update(np.ones(2), ex2_s1)
ex2_u_again, _ = ex2_transform.update(np.ones(2), ex2_s0)  # the state passed in must not have changed
assert np.allclose(ex2_u_first, ex2_u_again), "update must return a new state and leave the state it was given unchanged"
for ex2_bad in (0.0, -0.1, 1.0, 1.5):
    expect_error(lambda: nesterov_momentum(ex2_bad), ValueError, "decay", when=f"nesterov_momentum({ex2_bad})")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 — Derive it: the heavy ball's optimal constants
#
# On $J(\theta) = \tfrac12 \theta^\top A \theta$ with the eigenvalues of $A$ in $[\mu_A, L]$, the heavy
# ball's error along an eigenvector with eigenvalue $\lambda$ follows
# $e_{t+1} = (1 + \mu - \eta\lambda)\, e_t - \mu\, e_{t-1}$, whose behaviour is set by the roots of
# $z^2 - (1 + \mu - \eta\lambda)\, z + \mu = 0$.
#
# (a) Show that the roots are complex, both of modulus $\sqrt\mu$, exactly when
# $(1 - \sqrt\mu)^2 < \eta\lambda < (1 + \sqrt\mu)^2$, and that otherwise one root has modulus larger than
# $\sqrt\mu$.
#
# (b) Deduce that the best worst-case rate over $\lambda \in [\mu_A, L]$ is reached when both ends sit
# on the edges of that interval, and show that this gives $\eta^\star = 4/(\sqrt{L} + \sqrt{\mu_A})^2$,
# $\mu^\star = \bigl(\frac{\sqrt\kappa - 1}{\sqrt\kappa + 1}\bigr)^2$ and the rate
# $\sqrt{\mu^\star} = \frac{\sqrt\kappa - 1}{\sqrt\kappa + 1}$, with $\kappa = L/\mu_A$.
#
# (c) Write `heavy_ball_constants(mu_A, L)` returning the pair `(learning_rate, momentum)` as two floats.
# Evaluate it for $\mu_A = 0.01$, $L = 1$, and compare the number of steps to shrink the error by
# $10^{-6}$ with that of gradient descent at its best step (rate $\frac{\kappa - 1}{\kappa + 1}$).

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "momentum-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
def heavy_ball_constants(mu_A, L):
    ### BEGIN SOLUTION
    learning_rate = 4 / (np.sqrt(L) + np.sqrt(mu_A)) ** 2
    momentum = ((np.sqrt(L) - np.sqrt(mu_A)) / (np.sqrt(L) + np.sqrt(mu_A))) ** 2
    return float(learning_rate), float(momentum)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "momentum-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
ex3_found = heavy_ball_constants(0.01, 1.0)
assert np.allclose(ex3_found, (4 / 1.1**2, (0.9 / 1.1) ** 2), rtol=1e-12), f"mu_A = 0.01, L = 1: expected (eta*, mu*) = ({4 / 1.1**2:.6f}, {(0.9 / 1.1) ** 2:.6f}), got {ex3_found}"
### BEGIN HIDDEN TESTS
for ex3_mu_A, ex3_L in [(1.0, 10.0), (0.5, 2.0), (1e-4, 1.0), (3.0, 300.0), (2.0, 2.0)]:
    ex3_kappa = ex3_L / ex3_mu_A
    ex3_expected = (4 / (np.sqrt(ex3_L) + np.sqrt(ex3_mu_A)) ** 2, ((np.sqrt(ex3_kappa) - 1) / (np.sqrt(ex3_kappa) + 1)) ** 2)
    ex3_found = heavy_ball_constants(ex3_mu_A, ex3_L)
    assert len(ex3_found) == 2 and np.allclose(ex3_found, ex3_expected, rtol=1e-10, atol=1e-15), f"mu_A = {ex3_mu_A}, L = {ex3_L}: expected (eta*, mu*) = {ex3_expected}, got {ex3_found}"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "momentum-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) The roots $z_1, z_2$ have product $\mu$ and sum $s = 1 + \mu - \eta\lambda$. They are complex when
# $s^2 < 4\mu$, i.e. $-2\sqrt\mu < 1 + \mu - \eta\lambda < 2\sqrt\mu$, i.e.
# $(1 - \sqrt\mu)^2 < \eta\lambda < (1 + \sqrt\mu)^2$; complex conjugates have equal moduli, and their
# product is $\mu$, so both have modulus $\sqrt\mu$. Otherwise the roots are real with product $\mu$:
# unless they coincide ($s^2 = 4\mu$, modulus $\sqrt\mu$ again), one of them is larger than $\sqrt\mu$ in
# modulus, and the error along that eigenvector shrinks more slowly than $\sqrt\mu^{\,t}$.
#
# (b) The worst-case rate is therefore at least $\sqrt\mu$, with equality exactly when every
# $\eta\lambda$, $\lambda \in [\mu_A, L]$, lies in $[(1 - \sqrt\mu)^2, (1 + \sqrt\mu)^2]$. To make
# $\sqrt\mu$ as small as possible, shrink that interval until its ends touch the ends of
# $[\eta\mu_A, \eta L]$: $\eta\mu_A = (1 - \sqrt\mu)^2$ and $\eta L = (1 + \sqrt\mu)^2$. Taking square
# roots and subtracting, $\sqrt{\eta}(\sqrt L - \sqrt{\mu_A}) = 2\sqrt\mu$; adding,
# $\sqrt{\eta}(\sqrt L + \sqrt{\mu_A}) = 2$. So $\eta^\star = 4/(\sqrt L + \sqrt{\mu_A})^2$ and
# $\sqrt{\mu^\star} = \frac{\sqrt L - \sqrt{\mu_A}}{\sqrt L + \sqrt{\mu_A}} = \frac{\sqrt\kappa - 1}{\sqrt\kappa + 1}$,
# the rate; the momentum is its square. (At the two ends the roots coincide and the error picks up a
# factor $t$, which is why the measured best momentum in the sweep above sits a hair above $\mu^\star$.)
#
# (c) For $\mu_A = 0.01$, $L = 1$ ($\kappa = 100$): $\eta^\star = 4/1.1^2 \approx 3.306$ (well above
# gradient descent's limit $2/L$: momentum widens the stable range to $\eta < 2(1+\mu)/L$) and
# $\mu^\star = (9/11)^2 \approx 0.669$, a rate of $9/11 \approx 0.818$ per step. Shrinking the error by
# $10^{-6}$ takes $\ln 10^6 / \ln(11/9) \approx 69$ steps, against $\ln 10^6 / \ln(101/99) \approx 691$
# for gradient descent at its best step: ten times, $\sqrt\kappa$, fewer.
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 — Investigate: the optimal momentum versus the default $\mu = 0.9$
#
# In practice nobody knows $\kappa$, and $\mu = 0.9$ is the default. On `Quadratic(kappa)` for
# $\kappa \in \{10, 100, 1000, 10^4\}$, count the steps (`iterations_to_tolerance`, relative gap $10^{-8}$,
# start $(-9, 1)$) of the heavy ball with its optimal constants and of the heavy ball with $\mu = 0.9$
# and $\eta = 1/L$. How does each count scale with $\kappa$? For which $\kappa$ is $\mu = 0.9$ close to
# optimal, and why does it lose on both sides? Hint: use the roots of the scalar recursion of
# Exercise 3(a), $e_{t+1} = (1 + \mu - \eta\lambda)\, e_t - \mu\, e_{t-1}$: along which eigenvalues are
# they complex, along which real?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "momentum-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
ex4_kappas = [10, 100, 1000, 10000]
ex4 = {"optimal (η*, μ*)": [], "μ = 0.9, η = 1/L": []}
for kappa in ex4_kappas:
    q = Quadratic(condition_number=kappa)
    f0, root = q.value(start), np.sqrt(kappa)
    runs = {
        "optimal (η*, μ*)": (tuned(kappa)["heavy ball"], int(30 * root + 200)),
        "μ = 0.9, η = 1/L": (optim.sgd(1.0, momentum=0.9), int(2 * kappa + 500)),
    }
    for name, (opt, budget) in runs.items():
        ex4[name].append(iterations_to_tolerance(trajectory(opt, q, start, budget), q, 1e-8 * f0))

fig, ax = plt.subplots()
for name, n in ex4.items():
    ax.loglog(ex4_kappas, n, marker="o", label=name)
ax.set_xlabel(r"condition number $\kappa$")
ax.set_ylabel(r"steps to $10^{-8}$ relative loss gap")
ax.set_title(r"Fixed $\mu = 0.9$ scales like $\kappa$, the tuned heavy ball like $\sqrt{\kappa}$")
ax.legend()
plt.show()
for name, n in ex4.items():
    print(f"{name:>18}: {n}")
fixed = ex4["μ = 0.9, η = 1/L"]
assert fixed[-1] / fixed[-2] > 7  # ~ kappa for large kappa
assert all(a < b for a, b in zip(ex4["optimal (η*, μ*)"], fixed))
### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "momentum-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# The tuned heavy ball needs about $\sqrt\kappa$ steps (slope $\tfrac12$); with $\mu = 0.9$ and $\eta = 1/L$
# the count grows like $\kappa$ for large $\kappa$ (about ten times from $\kappa = 1000$ to $10^4$), though
# it needs several times fewer steps than gradient descent: the $1/(1-\mu)$ factor. Along an eigenvalue $\lambda$ the
# error follows $e_{t+1} = (1+\mu-\eta\lambda)e_t - \mu e_{t-1}$. When the roots are complex the error
# rings and shrinks by $\sqrt\mu$ per step, whatever $\lambda$: for small $\kappa$, $\mu = 0.9$ is too
# much momentum (underdamped, $\sqrt{0.9} \approx 0.95$ per step, while the optimum for $\kappa = 10$ is
# $\mu^* \approx 0.27$). For large $\kappa$ the smallest eigenvalue $\lambda = L/\kappa$ gives real roots
# and the slow one is $\approx 1 - \eta\lambda/(1-\mu) = 1 - 10/\kappa$: too little momentum
# (overdamped), a rate that still scales like $\kappa$. $\mu = 0.9$ is optimal where
# $\bigl(\frac{\sqrt\kappa-1}{\sqrt\kappa+1}\bigr)^2 = 0.9$, i.e. $\kappa \approx 1400$, and the measured gap
# between the two curves is smallest for $\kappa$ between 100 and 1000, largest at the two ends. The default is a compromise: good for
# moderately ill-conditioned problems, and in deep learning the learning rate is tuned against it.
# :::
# <!-- ### END SOLUTION -->
