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
# # 5. Gradient clipping
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part2_training/05_gradient_clipping.ipynb)
#
# Most of the time a training loss falls smoothly. Then, in a recurrent network or a very deep one,
# a single step sends it to `nan`. What happened is almost always the same: the gradient was, for
# one mini-batch, thousands of times larger than usual, and the optimizer took a step of the same
# size. The loss surface of such networks has *cliffs* {cite}`pascanu2013`: narrow regions where the
# loss changes very fast, next to wide flat ones. Near a cliff the gradient is huge, and a step
# proportional to it throws the parameters far away.
#
# **Gradient clipping** caps the size of the step without changing what the optimizer does
# otherwise. This chapter shows where exploding gradients come from, provokes them in a small
# recurrent network, and compares the three clipping rules in use: by value, by global norm, and by
# norm per tensor, which is what Keras' `clipnorm` does (and not what PyTorch's `clip_grad_norm_`
# does).

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
from tqdm.auto import tqdm

from companion import optim
from companion.clipping import clip_by_global_norm, clip_by_norm_per_leaf, clip_by_value, global_norm
from companion.glue import glue
from companion.history import History
from companion.optim.torch_adapter import ReferenceOptimizer
from companion.plotting import plot_histories, use_course_style
from companion.reproducibility import pick_device, seed_everything

use_course_style()
seed_everything(0)
device = pick_device()
# A recurrent network of 32 units runs its 20 time steps one after the other: one CPU thread is as
# fast as several here, and keeps the timings steady when other programs share the machine.
torch.set_num_threads(1)
print("device:", device)

# %% [markdown]
# ## 5.1 Why gradients explode
#
# A vanilla recurrent network reads a sequence $x_1, \dots, x_T$ and updates a hidden state,
#
# $$
# h_t = \tanh(W h_{t-1} + U x_t + b), \qquad \hat y = v^\top h_T + c .
# $$
#
# Back-propagation through time carries the gradient from the last state to an early one through
# a product of Jacobians {cite}`bengio1994`:
#
# $$
# \frac{\partial L}{\partial h_t} = \frac{\partial L}{\partial h_T}\,\prod_{k=t+1}^{T} \frac{\partial h_k}{\partial h_{k-1}},
# \qquad \frac{\partial h_k}{\partial h_{k-1}} = \operatorname{diag}\bigl(1 - h_k^2\bigr)\, W .
# $$
#
# A product of $T - t$ matrices behaves like a power: when the Jacobians stretch vectors (the
# largest singular value of $W$ above about 1, and the units not saturated), the gradient grows
# geometrically with the distance $T - t$; when they shrink vectors, it vanishes geometrically. The
# same holds for a deep feed-forward network, with the depth in place of time. Let us measure it on
# a tanh RNN of 32 units at initialization, with the recurrent matrix $W$ orthogonal times a *gain*
# (so all its singular values equal the gain).

# %%
def gradient_through_time(gain, steps=50, hidden=32, seed=0):
    """||dL/dh_t|| / ||dL/dh_T|| for t = 1..T in a tanh RNN whose recurrent matrix is gain * orthogonal."""
    generator = torch.Generator().manual_seed(seed)
    W = nn.init.orthogonal_(torch.empty(hidden, hidden), gain=gain, generator=generator)
    U = 0.5 * torch.randn(hidden, 2, generator=generator) / np.sqrt(2)
    x = torch.rand(64, steps, 2, generator=generator)
    h = torch.zeros(64, hidden, requires_grad=True)
    states = []
    for t in range(steps):
        h = torch.tanh(h @ W.T + x[:, t] @ U.T)
        h.retain_grad()  # keep dL/dh_t, which autograd would otherwise free
        states.append(h)
    h.sum().backward()
    last = states[-1].grad.norm()
    return np.array([(s.grad.norm() / last).item() for s in states])


gains = [0.8, 1.0, 1.5, 2.0]
through_time = {g: gradient_through_time(g) for g in gains}
fig, ax = plt.subplots()
for g in gains:
    ax.semilogy(np.arange(50, 0, -1) - 1, through_time[g], label=f"gain {g}")
ax.set_xlabel("time steps back from the end, $T - t$")
ax.set_ylabel(r"$\|\partial L/\partial h_t\| \;/\; \|\partial L/\partial h_T\|$")
ax.set_title("Back through time the gradient shrinks or grows geometrically")
ax.legend()
plt.show()
print(f"first step / last step: gain 0.8 {through_time[0.8][0]:.1e}, gain 2 {through_time[2.0][0]:.1e}")
glue("vanishing_ratio", f"{through_time[0.8][0]:.0e}")
glue("exploding_ratio", f"{through_time[2.0][0]:.0f}")

# %% tags=["remove-input"]
assert through_time[0.8][0] < 1e-6  # vanishing: "less than a millionth" after 49 steps
assert through_time[2.0][0] > 1e2  # exploding: "more than a hundred times larger"
assert through_time[2.0][0] > through_time[2.0][25] > through_time[2.0][-1]  # grows with the distance

# %% [markdown]
# **What to notice.**
# - With gain 0.8 the gradient that reaches the first time step is {glue:text}`vanishing_ratio` of
#   the one at the last, less than a millionth: the network cannot learn what happened 50 steps ago
#   (*vanishing gradients*, the reason for LSTMs and GRUs).
# - With gain 2 it is {glue:text}`exploding_ratio` times larger, more than a hundred times
#   (*exploding gradients*). The tanh
#   saturation damps it: a linear RNN with the same matrix would multiply it by $2^{49}$.
# - During training $W$ changes, so a network that starts near gain 1 can cross into the exploding
#   regime for some inputs: a rare mini-batch then produces a huge gradient. That is the cliff.

# %% [markdown]
# ## 5.2 A task with long-range dependencies: the adding problem
#
# The *adding problem* {cite}`pascanu2013` is a classic test for recurrent networks. Each input is
# a sequence of $T$ pairs $(v_t, m_t)$: $v_t$ uniform on $[0, 1]$, $m_t$ a marker that is 1 at two
# positions (one in each half) and 0 elsewhere. The target is the sum of the two marked values. A
# model that ignores the markers can only predict the mean, 1, with mean squared error
# $\operatorname{Var}(v_a + v_b) = 2/12 \approx 0.167$: that is the baseline to beat.

# %%
def adding_problem(n, length, rng):
    """n sequences of (value, marker) pairs and the sums of the two marked values."""
    values = rng.uniform(0.0, 1.0, (n, length))
    markers = np.zeros((n, length))
    first = rng.integers(0, length // 2, n)
    second = rng.integers(length // 2, length, n)
    markers[np.arange(n), first] = 1.0
    markers[np.arange(n), second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values * markers).sum(axis=1).astype(np.float32)
    return torch.tensor(x, device=device), torch.tensor(y, device=device)


LENGTH = 20
BASELINE_MSE = 2 / 12
data_rng = np.random.default_rng(0)
x_train, y_train = adding_problem(4096, LENGTH, data_rng)
x_test, y_test = adding_problem(1000, LENGTH, data_rng)
print("one input (value, marker) pairs:\n", x_train[0, :6].cpu().numpy().round(2), "...")
print("its target:", round(float(y_train[0]), 3))


class AddingRNN(nn.Module):
    """A vanilla tanh RNN with a linear read-out of the last hidden state."""

    def __init__(self, hidden=32):
        super().__init__()
        self.rnn = nn.RNN(2, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)
        nn.init.orthogonal_(self.rnn.weight_hh_l0)  # gain 1: neither vanishing nor exploding at the start

    def forward(self, x):
        states, _ = self.rnn(x)
        return self.head(states[:, -1]).squeeze(-1)


# %% [markdown]
# The training loop is short and visible. It records, at every step, the mini-batch loss and the
# global norm of the gradient *before* clipping (what the optimizer was handed), and stops at the
# first non-finite loss or gradient.

# %%
def train_rnn(transform, steps=800, seed=0, name=None):
    """Train an AddingRNN with a companion optimizer chain; return its History (test MSE in meta)."""
    torch.manual_seed(seed)
    model = AddingRNN().to(device)
    optimizer = ReferenceOptimizer(model.parameters(), transform)
    batches = torch.Generator().manual_seed(seed)
    history = History(name)
    for step in tqdm(range(1, steps + 1), desc=name, mininterval=2.0, leave=False):
        batch = torch.randint(0, len(x_train), (64,), generator=batches).to(device)
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x_train[batch]), y_train[batch])
        loss.backward()
        grad_norm = float(global_norm([p.grad for p in model.parameters()]))
        history.log(step, loss=loss.item(), grad_norm=grad_norm)
        if not (np.isfinite(loss.item()) and np.isfinite(grad_norm)):
            history.meta["diverged_at_step"] = step
            break
        optimizer.step()
    with torch.no_grad():
        history.meta["test_mse"] = nn.functional.mse_loss(model(x_test), y_test).item()
    return history


# %% [markdown]
# ## 5.3 Without clipping: the loss blows up
#
# SGD with momentum 0.9 and learning rate 0.1 (an effective step of $\eta/(1-\mu) = 1$ times the
# gradient once momentum builds up). For the first steps nothing looks wrong.

# %%
LR, MOMENTUM = 0.1, 0.9
unclipped = train_rnn(optim.sgd(LR, momentum=MOMENTUM), name="no clipping")
steps_run, losses = unclipped.series("loss")
print(f"stopped at step {unclipped.meta.get('diverged_at_step')}; last losses:", np.round(losses[-6:], 2))
print("gradient norms before the blow-up:", np.round(unclipped.series("grad_norm")[1][-8:], 1))

# %%
fig, (ax_loss, ax_norm) = plt.subplots(1, 2, figsize=(11, 4))
steps_run, norms = unclipped.series("grad_norm")
ax_loss.semilogy(steps_run, losses, color="C3", label="mini-batch loss")
ax_loss.axhline(BASELINE_MSE, color="gray", ls="--", label="predict the mean")
ax_loss.set(xlabel="optimizer step", ylabel="mean squared error", title="Without clipping the loss explodes")
ax_norm.semilogy(steps_run, norms, color="C3", label="global gradient norm")
ax_norm.set(xlabel="optimizer step", ylabel=r"$\|g\|$ (before the step)", title="...after the gradient norm spikes")
ax_loss.legend()
ax_norm.legend()
plt.show()

# %% tags=["remove-input"]
assert "diverged_at_step" in unclipped.meta and unclipped.meta["diverged_at_step"] < 100
finite_losses, finite_norms = losses[np.isfinite(losses)], norms[np.isfinite(norms)]
assert finite_losses[:5].min() < 1 and finite_losses.max() > 1e20
assert finite_norms[:10].max() > 300 * finite_norms[:5].min()  # the first jump
assert finite_norms[-1] > 1e10 * finite_norms[-21]  # twenty steps multiplied the norm by more than 1e10
assert np.all(np.diff(np.log(finite_norms[-20:])) > 0)  # every step made the next gradient larger

# %% [markdown]
# **What to notice.** For a few steps the loss stays near the baseline. Then the gradient norm
# jumps by a factor of about a thousand, the parameters jump with it, and from there every step
# makes the next gradient larger: the norm and the loss grow geometrically (straight lines on a
# log scale) until the loss overflows to `inf` a few dozen steps in. Lowering the learning rate
# would avoid it here, but at the price of slower training everywhere, for the sake of a few bad
# steps.

# %% [markdown]
# ## 5.4 Three ways to clip
#
# Write the gradient as a list of tensors $g = (g_1, \dots, g_L)$, one per parameter tensor, and let
# $c > 0$ be the threshold.
#
# **By value** clips every coordinate into $[-c, c]$:
#
# $$
# g_i \leftarrow \max\bigl(-c, \min(c, g_i)\bigr).
# $$
#
# **By global norm** {cite}`pascanu2013` rescales the whole gradient when its norm exceeds $c$:
#
# $$
# g \leftarrow g \cdot \min\!\left(1, \frac{c}{\|g\|}\right), \qquad \|g\| = \sqrt{\sum_{\ell=1}^{L} \|g_\ell\|^2}.
# $$
#
# **By norm per tensor** applies the same rule to each $g_\ell$ separately:
# $g_\ell \leftarrow g_\ell \cdot \min(1, c / \|g_\ell\|)$.
#
# Only the global norm keeps the direction of the step: it shortens the step and nothing else.
# Clipping by value changes the direction as soon as one coordinate is clipped (large coordinates
# are flattened, small ones kept), and clipping per tensor shrinks some layers more than others.
# In `companion.clipping` the three are links of an optimizer chain, placed first, so any optimizer
# of Part I can be clipped: `optim.chain(clip_by_global_norm(1.0), optim.adam(1e-3))`. Let us
# apply them to one real gradient of our RNN and compare directions.

# %%
torch.manual_seed(0)
probe = AddingRNN().to(device)
nn.functional.mse_loss(probe(x_train[:256]), y_train[:256]).backward()
grads = [p.grad.detach().clone() for p in probe.parameters()]
names = [name for name, _ in probe.named_parameters()]


def flat(tree):
    return torch.cat([g.reshape(-1) for g in tree])


def cosine(a, b):
    return float(flat(a) @ flat(b) / (flat(a).norm() * flat(b).norm()))


norm_g = float(global_norm(grads))
print(f"global gradient norm: {norm_g:.3f}; per tensor:", {n: round(float(g.norm()), 3) for n, g in zip(names, grads)})
clipped = {}
for label, transform in [
    ("global norm, c = |g|/4", clip_by_global_norm(norm_g / 4)),
    ("per tensor, c = |g|/4", clip_by_norm_per_leaf(norm_g / 4)),
    ("by value, c = 0.01", clip_by_value(0.01)),
]:
    clipped[label], _ = transform.update(grads, transform.init(grads))
    print(f"{label:24s} norm {float(global_norm(clipped[label])):.3f}   cosine with g {cosine(grads, clipped[label]):.3f}")

# %% tags=["remove-input"]
assert abs(cosine(grads, clipped["global norm, c = |g|/4"]) - 1) < 1e-5
assert abs(float(global_norm(clipped["global norm, c = |g|/4"])) - norm_g / 4) < 1e-4 * norm_g
assert cosine(grads, clipped["by value, c = 0.01"]) < 0.99
assert cosine(grads, clipped["per tensor, c = |g|/4"]) < 0.999

# %% [markdown]
# **What to notice.** The global-norm clip is exactly $g/4$ (cosine 1). The per-tensor clip
# leaves the small tensors alone and cuts the large ones, and the value clip flattens the largest
# coordinates: both now point somewhere else. The global-norm rule also has a reading as an
# *adaptive learning rate*: the step is $\eta \min(1, c/\|g\|)\, g$, so near a cliff SGD takes a
# step of length at most $\eta c$, in the direction of the gradient.

# %% [markdown]
# ## 5.5 Clipping stabilizes training
#
# The same network, data, learning rate and momentum, now with clipping first in the chain. The
# thresholds: $c = 0.25$ for the global norm (below the typical norm of this run's gradients, so
# most steps are clipped: exercise 4 asks why that is fine), and $0.02$ per coordinate.

# %%
runs = {"no clipping": unclipped}
runs["clip by global norm 0.25"] = train_rnn(
    optim.chain(clip_by_global_norm(0.25), optim.sgd(LR, momentum=MOMENTUM)), name="clip by global norm 0.25"
)
runs["clip by value 0.02"] = train_rnn(
    optim.chain(clip_by_value(0.02), optim.sgd(LR, momentum=MOMENTUM)), name="clip by value 0.02"
)
for label, h in runs.items():
    print(f"{label:26s} test MSE {h.meta['test_mse']:.4f}   diverged at {h.meta.get('diverged_at_step', '-')}")
print(f"{'baseline (predict 1)':26s} test MSE {BASELINE_MSE:.4f}")

# %%
fig, (ax_loss, ax_norm) = plt.subplots(1, 2, figsize=(12, 4.2))
plot_histories(runs, "loss", ax=ax_loss, smooth=20, ylabel="mean squared error (20-step mean)",
               title="Clipped by global norm, the RNN learns")
ax_loss.axhline(BASELINE_MSE, color="gray", ls="--", label="predict the mean")
ax_loss.set_ylim(0, 0.4)  # the unclipped run leaves the chart at the top within 35 steps
ax_loss.legend()
plot_histories(runs, "grad_norm", ax=ax_norm, logy=True, ylabel=r"global gradient norm $\|g\|$ before clipping",
               title="Clipping leaves the spikes of $\|g\|$")
ax_norm.set_ylim(1e-2, 1e3)
plt.show()

# %% tags=["remove-input"]
by_norm, by_value = runs["clip by global norm 0.25"], runs["clip by value 0.02"]
assert "diverged_at_step" not in by_norm.meta and "diverged_at_step" not in by_value.meta
assert by_norm.meta["test_mse"] < 0.35 * BASELINE_MSE  # learned the task: well under the baseline
assert by_value.meta["test_mse"] > 2 * by_norm.meta["test_mse"]  # value clipping helped less here
assert by_norm.series("grad_norm")[1].max() > 5 * np.median(by_norm.series("grad_norm")[1])  # spikes remain

# %% [markdown]
# **What to notice.**
# - Without clipping the run ends in `inf` within a few dozen steps; with the global norm clipped
#   at 0.25 it trains for all 800 steps and its test error ends far below the 0.167 baseline: it has
#   learned to find and add the two marked numbers.
# - The gradient-norm panel still shows spikes in the clipped run. Clipping does not make the
#   loss surface smoother: it only stops a spike from turning into a jump of the parameters.
# - Clipping by value avoids the blow-up too but trains worse at the same learning rate: it
#   distorts the direction of every step, even the ordinary ones. Clipping by global norm is the
#   default in practice (Transformers, RNNs, reinforcement learning: usually $c$ between 0.5 and
#   5 for the full model).

# %% [markdown]
# ## 5.6 The same thing in plain PyTorch
#
# In PyTorch, clipping is a function that modifies the `.grad` of the parameters in place, called
# between `backward()` and `step()`:
#
# ```python
# loss.backward()
# total_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.25)  # norm *before* clipping
# optimizer.step()
# ```
#
# `clip_grad_norm_` computes $g \cdot \min\bigl(1, c / (\|g\| + 10^{-6})\bigr)$: the $10^{-6}$
# keeps the division finite at $g = 0$, and makes a clipped norm end a hair *below* $c$. The
# companion link uses the same $\epsilon$ by default. Let us check that the two give the same
# parameters after 100 steps of our RNN. We run this comparison in float64: in float32, `torch.optim.SGD`
# and the adapter may round the last bit of an update differently (their floating-point operations differ in order), and
# training a recurrent network at a high learning rate amplifies such differences step after step.

# %%
def train_torch_native(steps=100, seed=0):
    torch.manual_seed(seed)
    model = AddingRNN().to(device, torch.float64)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    batches = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = torch.randint(0, len(x_train), (64,), generator=batches).to(device)
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x_train[batch].double()), y_train[batch].double()).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.25)
        optimizer.step()
    return model


def train_companion(steps=100, seed=0):
    torch.manual_seed(seed)
    model = AddingRNN().to(device, torch.float64)
    optimizer = ReferenceOptimizer(model.parameters(), optim.chain(clip_by_global_norm(0.25), optim.sgd(LR, momentum=MOMENTUM)))
    batches = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = torch.randint(0, len(x_train), (64,), generator=batches).to(device)
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x_train[batch].double()), y_train[batch].double()).backward()
        optimizer.step()
    return model


native, ours = train_torch_native(), train_companion()
largest_gap = max((p - q).abs().max().item() for p, q in zip(native.parameters(), ours.parameters()))
print(f"largest parameter difference after 100 steps: {largest_gap:.2e}")

# %% tags=["remove-input"]
assert largest_gap < 1e-8

# %% [markdown]
# ## 5.7 Keras: `clipnorm` is not `clip_grad_norm_`
#
# Every Keras optimizer takes three clipping options: `clipvalue=c` (by value), `global_clipnorm=c`
# (by global norm, like PyTorch's `clip_grad_norm_`, but without the $10^{-6}$) and `clipnorm=c`.
# The last one looks like the PyTorch function and is the one most snippets use, but it clips
# **each variable separately** (per tensor). With two variables whose gradients have norms 3 and 4
# (global norm 5) and $c = 1$, one step of `SGD(learning_rate=1.0)` from zero shows the difference.

# %%
from companion.quiet import quiet_tensorflow  # noqa: E402

with quiet_tensorflow():  # TensorFlow's C++ start-up messages stay off the page
    import keras  # noqa: E402  (imported here: only this section needs it)

g_numpy = [np.array([3.0, 0.0]), np.array([0.0, 4.0])]  # norms 3 and 4, global norm 5


def keras_step(**clip_option):
    variables = [keras.Variable(np.zeros(2), dtype="float64") for _ in g_numpy]
    keras.optimizers.SGD(learning_rate=1.0, **clip_option).apply_gradients(
        zip([keras.ops.convert_to_tensor(g, dtype="float64") for g in g_numpy], variables)
    )
    return [-np.asarray(v.numpy()) for v in variables]  # the clipped gradient that was applied


def companion_clip(transform):
    out, _ = transform.update(g_numpy, transform.init(g_numpy))
    return out


torch_params = [torch.zeros(2, dtype=torch.float64, requires_grad=True) for _ in g_numpy]
for p, g in zip(torch_params, g_numpy):
    p.grad = torch.tensor(g)
torch.nn.utils.clip_grad_norm_(torch_params, max_norm=1.0)

results = {
    "Keras clipnorm=1": keras_step(clipnorm=1.0),
    "companion clip_by_norm_per_leaf(1)": companion_clip(clip_by_norm_per_leaf(1.0)),
    "Keras global_clipnorm=1": keras_step(global_clipnorm=1.0),
    "companion clip_by_global_norm(1, eps=0)": companion_clip(clip_by_global_norm(1.0, eps=0.0)),
    "torch clip_grad_norm_(1)": [p.grad.numpy() for p in torch_params],
}
for label, (a, b) in results.items():
    print(f"{label:40s} g1 = {np.round(a, 4) + 0.0}  g2 = {np.round(b, 4) + 0.0}  global norm {np.sqrt(np.sum(a**2) + np.sum(b**2)):.4f}")

# %% tags=["remove-input"]
for a, b in zip(results["Keras clipnorm=1"], results["companion clip_by_norm_per_leaf(1)"]):
    assert np.allclose(a, b, rtol=1e-12, atol=0)
for key in ["companion clip_by_global_norm(1, eps=0)", "torch clip_grad_norm_(1)"]:
    for a, b in zip(results["Keras global_clipnorm=1"], results[key]):
        assert np.allclose(a, b, rtol=1e-6, atol=0)
assert np.allclose(results["Keras clipnorm=1"][0], [1.0, 0.0]) and np.allclose(results["Keras clipnorm=1"][1], [0.0, 1.0])
assert np.allclose(results["Keras global_clipnorm=1"][0], [0.6, 0.0]) and np.allclose(results["Keras global_clipnorm=1"][1], [0.0, 0.8])

# %% [markdown]
# **What to notice.** With `clipnorm=1` each variable's gradient has norm 1, so the step has
# global norm $\sqrt 2 \approx 1.41$, above the threshold, and points at 45° where the gradient
# pointed at 53°: each gradient was shrunk to norm 1 on its own, the smaller by $3\times$ and the
# larger by $4\times$, so the direction changed. With
# `global_clipnorm=1` the step is the gradient divided by 5, as with PyTorch's `clip_grad_norm_`
# (equal to six digits: PyTorch adds its $10^{-6}$). A model with $L$ weight tensors clipped with
# `clipnorm=c` can take steps of norm up to $c\sqrt{L}$. When you port a PyTorch recipe that says
# "clip the gradient norm at 1.0" to Keras, the option you want is `global_clipnorm=1.0`. The tests
# of `companion.clipping` check all three options against Keras over 20 steps in float64.

# %% [markdown]
# ## Pitfalls
#
# - **Clipping in the wrong place.** `clip_grad_norm_` must come after `loss.backward()` and before
#   `optimizer.step()`. Called before `backward()` it clips the previous step's gradients (or
#   nothing, after `zero_grad()`); called after `step()` it changes nothing.
# - **Mixed precision.** With `torch.amp.GradScaler` the `.grad` values are multiplied by the loss
#   scale: call `scaler.unscale_(optimizer)` before clipping, or the threshold means nothing.
# - **Keras' `clipnorm`** is per variable (section 5.7); use `global_clipnorm` for the usual rule.
# - **Clipping hides problems.** If nearly every step is clipped, the optimizer is really running
#   normalized SGD with learning rate $\eta c$, and the learning rate you set is not the one in use.
#   `clip_grad_norm_` returns the norm before clipping: log it, and look at how often it exceeds $c$
#   (chapter 6 shows how to monitor it).
# - **NaN is not fixed by clipping.** A NaN gradient has a NaN norm, and every clipped coordinate
#   becomes NaN too (in PyTorch, Keras and `companion.clipping` alike). Clipping prevents the huge
#   step that leads to NaN; it does not repair one (`clip_grad_norm_(..., error_if_nonfinite=True)`
#   raises instead).

# %% [markdown]
# ## Summary
#
# - Back-propagation through time (or depth) multiplies Jacobians; their product grows or shrinks
#   geometrically, so recurrent and very deep networks see exploding and vanishing gradients.
# - An exploding gradient shows as a spike of the gradient norm followed by a jump of the loss,
#   often to `inf`/`nan`; on the adding problem a vanilla RNN trained with SGD and momentum at
#   learning rate 0.1 blows up within a few dozen steps.
# - Clipping by global norm, $g \leftarrow g \min(1, c/\|g\|)$, keeps the direction and caps the
#   step; with it the same run learns the task. Clipping by value also prevents the blow-up but
#   bends every step.
# - `companion.clipping` provides the three rules as chain links equal to
#   `torch.nn.utils.clip_grad_norm_`/`clip_grad_value_` and to Keras' `global_clipnorm`, `clipnorm`
#   (per variable!) and `clipvalue`.

# %% [markdown]
# ## Exercises
#
# ### Exercise 1 (Implement it): clipping by global norm
#
# Write `clip_global_norm(grads, max_norm)`: `grads` is a list of NumPy arrays; return a new list
# with every array multiplied by $\min(1, c/\|g\|)$, where $c$ is `max_norm` and $\|g\|$ is the global
# norm of all the arrays together (no $\epsilon$; a zero gradient is returned unchanged). Do not modify the arrays
# you were given. The check compares your function with `companion.clipping.clip_by_global_norm(c, eps=0)`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "clip-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
def clip_global_norm(grads, max_norm):
    ### BEGIN SOLUTION
    norm = np.sqrt(sum(np.sum(g * g) for g in grads))
    factor = 1.0 if norm == 0 else min(1.0, max_norm / norm)
    return [g * factor for g in grads]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "clip-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
check_rng = np.random.default_rng(5)
check_grads = [check_rng.standard_normal(s) for s in [(3, 4), (4,), (2, 2, 2)]]
originals = [g.copy() for g in check_grads]
reference_clip = clip_by_global_norm(0.5, eps=0.0)
expected, _ = reference_clip.update(check_grads, reference_clip.init(check_grads))
mine = clip_global_norm(check_grads, 0.5)
assert len(mine) == 3 and all(m.shape == e.shape for m, e in zip(mine, expected)), (
    "return one array per gradient, each of the shape of the gradient it clips")
mine_norm = np.sqrt(sum(np.sum(m * m) for m in mine))
assert all(np.allclose(m, e, rtol=1e-12) for m, e in zip(mine, expected)), (
    f"the clipped gradients differ from the reference: their global norm is {mine_norm:.4f}, expected 0.5 "
    "(scale every array by the same factor min(1, c / ||g||), ||g|| over all arrays together)")
assert all(np.array_equal(g, o) for g, o in zip(check_grads, originals)), "do not modify the input arrays"
### BEGIN HIDDEN TESTS
# Under the threshold: unchanged.
small = clip_global_norm(check_grads, 1e3)
assert all(np.allclose(s, g) for s, g in zip(small, check_grads)), "below the threshold the gradients must be unchanged"
# A zero gradient stays zero (no division by zero).
zero = clip_global_norm([np.zeros(3), np.zeros(2)], 1.0)
assert all(np.all(z == 0) and np.all(np.isfinite(z)) for z in zero), "a zero gradient must stay zero (no 0/0)"
# The direction is kept and the norm is the threshold.
clipped_check = clip_global_norm(check_grads, 0.1)
assert np.isclose(np.sqrt(sum(np.sum(c * c) for c in clipped_check)), 0.1), "clipped, the global norm must equal c"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (Implement it): clipping by value, in place
#
# PyTorch clips the `.grad` of the parameters in place, between `backward()` and `step()` (section 5.6).
# Write `clip_value_in_place(parameters, clip_value)` in that style: `parameters` is an iterable of tensors
# (for example `model.parameters()`, a generator that can be read only once); clamp the `.grad` of each
# into $[-c, c]$, with $c$ = `clip_value`, **in place** (the same `.grad` tensor, modified), skipping
# parameters whose `.grad` is `None`. Return, as a Python `float`, the fraction of the gradient
# coordinates (over all parameters that have a gradient) whose absolute value exceeded $c$, that is,
# that were clipped: a number to log, like the norm that `clip_grad_norm_` returns (0.0 when no parameter
# has a gradient). A NaN coordinate stays NaN (it counts in the total but not as clipped). Raise a `ValueError` that names `clip_value` if it is not
# a positive number. The clipped gradients must equal those of `torch.nn.utils.clip_grad_value_`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "clip-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
def clip_value_in_place(parameters, clip_value):
    """Clamp every p.grad into [-clip_value, clip_value] in place; return the fraction of clipped coordinates."""
    ### BEGIN SOLUTION
    if not clip_value > 0:
        raise ValueError(f"Invalid clip_value: {clip_value} (must be positive)")
    clipped, total = 0, 0
    for p in parameters:
        if p.grad is None:
            continue
        clipped += int((p.grad.abs() > clip_value).sum())
        total += p.grad.numel()
        p.grad.clamp_(-clip_value, clip_value)
    return clipped / total if total else 0.0
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "clip-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error
torch.manual_seed(0)
ex2_model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
ex2_twin = [p.detach().clone().requires_grad_(True) for p in ex2_model.parameters()]
ex2_model(3 * torch.randn(64, 2)).pow(2).mean().backward()
for ex2_p, ex2_t in zip(ex2_model.parameters(), ex2_twin):
    ex2_t.grad = ex2_p.grad.clone()
ex2_grad_ptrs = [p.grad.data_ptr() for p in ex2_model.parameters()]
ex2_expected_fraction = sum(int((t.grad.abs() > 0.01).sum()) for t in ex2_twin) / sum(t.grad.numel() for t in ex2_twin)
ex2_fraction = clip_value_in_place(ex2_model.parameters(), 0.01)
torch.nn.utils.clip_grad_value_(ex2_twin, 0.01)
ex2_gap = max((p.grad - t.grad).abs().max().item() for p, t in zip(ex2_model.parameters(), ex2_twin))
assert ex2_gap == 0.0, f"your clipped gradients differ from torch.nn.utils.clip_grad_value_'s by up to {ex2_gap:.2e}"
assert [p.grad.data_ptr() for p in ex2_model.parameters()] == ex2_grad_ptrs, "modify each .grad in place (clamp_), do not assign a new tensor"
assert isinstance(ex2_fraction, float) and abs(ex2_fraction - ex2_expected_fraction) < 1e-12, f"fraction of clipped coordinates: expected {ex2_expected_fraction:.4f}, got {ex2_fraction!r}"
### BEGIN HIDDEN TESTS
ex2_a = torch.zeros(4, requires_grad=True)
ex2_b = torch.zeros(2, requires_grad=True)  # no gradient: skipped
ex2_c = torch.zeros(3, requires_grad=True)
ex2_a.grad = torch.tensor([0.5, -2.0, 1.0, 3.0])
ex2_c.grad = torch.tensor([-1.0, 0.2, float("nan")])
ex2_fraction = clip_value_in_place(iter([ex2_a, ex2_b, ex2_c]), 1.0)
assert ex2_b.grad is None, "a parameter without a gradient must be skipped (its .grad stays None)"
assert torch.equal(ex2_a.grad, torch.tensor([0.5, -1.0, 1.0, 1.0])), f"clip into [-1, 1]: expected [0.5, -1, 1, 1], got {ex2_a.grad.tolist()}"
assert torch.equal(ex2_c.grad[:2], torch.tensor([-1.0, 0.2])) and torch.isnan(ex2_c.grad[2]), f"expected [-1, 0.2, nan] (NaN stays NaN), got {ex2_c.grad.tolist()}"
assert abs(ex2_fraction - 2 / 7) < 1e-12, f"2 of the 7 coordinates exceed 1 in absolute value (1.0 itself is not clipped, NaN is not counted): expected {2 / 7:.4f}, got {ex2_fraction!r}"
ex2_none = clip_value_in_place([torch.zeros(3, requires_grad=True)], 0.5)
assert ex2_none == 0.0, f"no gradient at all: the fraction is 0.0, got {ex2_none!r}"
ex2_gen = torch.Generator().manual_seed(3)
for ex2_shape, ex2_limit in (((5, 7), 0.3), ((100,), 2.5), ((2, 3, 4), 1e-3)):
    ex2_p = torch.zeros(ex2_shape, dtype=torch.float64, requires_grad=True)
    ex2_q = torch.zeros(ex2_shape, dtype=torch.float64, requires_grad=True)
    ex2_p.grad = torch.randn(ex2_shape, dtype=torch.float64, generator=ex2_gen)
    ex2_q.grad = ex2_p.grad.clone()
    ex2_f = clip_value_in_place([ex2_p], ex2_limit)
    ex2_expected_fraction = int((ex2_q.grad.abs() > ex2_limit).sum()) / ex2_q.grad.numel()
    torch.nn.utils.clip_grad_value_([ex2_q], ex2_limit)
    assert torch.equal(ex2_p.grad, ex2_q.grad), f"shape {ex2_shape}, c = {ex2_limit}: your gradient differs from clip_grad_value_'s"
    assert abs(ex2_f - ex2_expected_fraction) < 1e-12, f"shape {ex2_shape}, c = {ex2_limit}: fraction {ex2_f!r}, expected {ex2_expected_fraction:.4f}"
for ex2_bad in (0.0, -1.0):
    expect_error(lambda: clip_value_in_place([ex2_a], ex2_bad), ValueError, "clip_value",
                 when=f"clip_value_in_place(parameters, {ex2_bad})")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 (Derive it): how far does clipping by value turn a spike?
#
# Take a gradient $g \in \mathbb R^n$ with one spike and $n - 1$ ordinary coordinates: $g_1 = s$ and
# $g_2 = \dots = g_n = a$, with $0 \le a \le c < s$, and a threshold $c$.
#
# (a) Clipping by global norm: what is the factor $\min(1, c/\lVert g\rVert)$, and the angle between $g$ and
# the clipped gradient? What happens to the ordinary coordinates when $s$ is large?
#
# (b) Clipping by value gives $(c, a, \dots, a)$. Derive the cosine of the angle between $g$ and the
# clipped gradient, and write it in `value_clip_cosine(s, a, c, n)`. When is it exactly 1?
#
# (c) What does the cosine tend to as $s \to \infty$? Evaluate it for $n = 1000$ coordinates with
# $a = c/10$, in degrees. Which direction does each rule follow after a spike?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "clip-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
def value_clip_cosine(s, a, c, n):
    """Cosine between g = (s, a, ..., a) in R^n and its clipping by value at c (a <= c < s)."""
    ### BEGIN SOLUTION
    rest = (n - 1) * a**2
    return (s * c + rest) / (np.sqrt(s**2 + rest) * np.sqrt(c**2 + rest))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "clip-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
ex3_cos = value_clip_cosine(3.0, 1.0, 1.0, 2)
assert abs(ex3_cos - 4 / np.sqrt(20)) < 1e-12, f"g = (3, 1) clipped at 1 is (1, 1): cosine 4 / sqrt(20) = {4 / np.sqrt(20):.6f}, got {ex3_cos}"
### BEGIN HIDDEN TESTS
for ex3_s, ex3_a, ex3_c, ex3_n in ((10.0, 0.5, 1.0, 5), (1e3, 0.01, 0.1, 1000), (7.0, 0.0, 2.0, 50), (2.0, 1.0, 1.0, 3)):
    ex3_g = torch.full((ex3_n,), ex3_a, dtype=torch.float64)
    ex3_g[0] = ex3_s
    ex3_p = torch.zeros(ex3_n, dtype=torch.float64, requires_grad=True)
    ex3_p.grad = ex3_g.clone()
    torch.nn.utils.clip_grad_value_([ex3_p], ex3_c)
    ex3_expected = float(ex3_g @ ex3_p.grad / (ex3_g.norm() * ex3_p.grad.norm()))
    ex3_found = value_clip_cosine(ex3_s, ex3_a, ex3_c, ex3_n)
    assert abs(ex3_found - ex3_expected) < 1e-12, f"s={ex3_s}, a={ex3_a}, c={ex3_c}, n={ex3_n}: expected cosine {ex3_expected:.8f} (measured with clip_grad_value_), got {ex3_found}"
ex3_limit = value_clip_cosine(1e12, 0.1, 1.0, 1000)
assert abs(ex3_limit - 1 / np.sqrt(1 + 999 / 100)) < 1e-9, f"as s grows the cosine tends to c / sqrt(c^2 + (n-1) a^2) = {1 / np.sqrt(1 + 999 / 100):.6f}, got {ex3_limit}"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "clip-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) $\lVert g\rVert = \sqrt{s^2 + (n-1)a^2} > s > c$, so the factor is $c/\sqrt{s^2 + (n-1)a^2} < 1$ and the
# clipped gradient is $g$ times a positive number: the angle is 0. All coordinates are scaled by the same
# factor, so the ordinary ones become $a\,c/\lVert g\rVert \approx a\,c/s$: a large spike shrinks the whole
# step, the ordinary coordinates nearly to nothing.
#
# (b) The dot product is $sc + (n-1)a^2$, the norms are $\sqrt{s^2 + (n-1)a^2}$ and $\sqrt{c^2 + (n-1)a^2}$:
#
# $$
# \cos\theta = \frac{sc + (n-1)a^2}{\sqrt{s^2 + (n-1)a^2}\,\sqrt{c^2 + (n-1)a^2}} .
# $$
#
# It is 1 only when $a = 0$ (or $n = 1$): a gradient with a single non-zero coordinate is merely shortened;
# otherwise (Cauchy–Schwarz, with $s \ne c$) it is below 1 and the direction changes.
#
# (c) Divide the numerator and the first norm by $s$: $\cos\theta \to c/\sqrt{c^2 + (n-1)a^2}$. With
# $n = 1000$ and $a = c/10$ this is $1/\sqrt{1 + 9.99} \approx 0.302$, an angle of about $72°$, however large
# the spike. Clipping by norm follows the spike (the step is almost all along $g_1$, with length $c$);
# clipping by value caps the spike at $c$ and keeps the $n - 1$ ordinary coordinates whole, so the step
# points mostly along them, as if the spike had not happened. Neither is "right", but only the norm rule
# is a step along the gradient, and the value rule's angle grows with the number of coordinates: in a
# network with millions of them, clipping by value mostly throws away the information of the spike.
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 (Investigate): how small should the threshold be?
#
# Train the RNN of section 5.5 (learning rate 0.1, momentum 0.9, clipping by global norm, 800
# steps) with thresholds $c = 0.05$ and $c = 2.5$, and compare with the run at $c = 0.25$ above:
# record the test MSE and the fraction of steps whose gradient norm exceeded $c$ (that is, that
# were clipped). Which threshold trains best? What goes wrong at each end? Relate the answer to
# the longest step the optimizer can take, about $\eta c / (1 - \mu)$ once momentum has built up.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "clip-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
sweep = {0.25: runs["clip by global norm 0.25"]}
for c in [0.05, 2.5]:
    sweep[c] = train_rnn(optim.chain(clip_by_global_norm(c), optim.sgd(LR, momentum=MOMENTUM)), name=f"c = {c}")
summary = {}
for c in sorted(sweep):
    norms_c = sweep[c].series("grad_norm")[1]
    summary[c] = (sweep[c].meta["test_mse"], float(np.mean(norms_c > c)))
    print(f"c = {c:<5} test MSE {summary[c][0]:.4f}   clipped steps {summary[c][1]:.0%}   "
          f"longest step {LR * c / (1 - MOMENTUM):.2f}")
assert summary[0.05][1] > 0.9 and summary[0.05][0] > 0.5 * BASELINE_MSE  # always clipped, barely learned
assert summary[2.5][0] > 0.8 * BASELINE_MSE  # too loose: no better than predicting the mean
assert summary[0.25][0] < min(summary[0.05][0], summary[2.5][0])
### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "clip-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# $c = 0.25$ trains best. At $c = 0.05$ every step is clipped, so SGD becomes normalized SGD whose
# steps have length at most $\eta c/(1-\mu) = 0.05$: stable, but after 800 steps the error is still
# close to the 0.167 baseline. At $c = 2.5$ the clip is active only on a few spikes; the steps can be
# as long as 2.5, the run does not overflow but bounces between cliffs, and its test error ends no
# better than the baseline. Note that $c = 0.25$ clips most steps (close to 90%) and still trains
# best: being clipped often is harmless as long as the capped step $\eta c$ is a sensible length. A good threshold sits near or a little below the typical gradient norm of the
# early steps, so that ordinary steps are barely touched and spikes are cut to an ordinary size;
# logging the norm for a few hundred steps (its median, a high quantile) is the usual way to pick it.
# :::
# <!-- ### END SOLUTION -->
