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
# # 4. Optimizers after Adam
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part1_optimizers/04_after_adam.ipynb)
#
# Adam {cite}`kingma2015` dates from 2014 and is still the default. The optimizers people ask about
# today each answer one of its weak spots:
#
# | method | the problem it answers | ships in |
# |---|---|---|
# | RAdam {cite}`liu2020radam` | Adam's first steps are unreliable; warmup hides it | `torch.optim.RAdam` |
# | Lion {cite}`chen2023lion` | Adam keeps two numbers per weight; a simpler rule found by search | `keras.optimizers.Lion` |
# | Adafactor {cite}`shazeer2018adafactor` | the second moment of a huge matrix costs as much as the matrix | both |
# | Schedule-Free AdamW {cite}`defazio2024schedulefree` | a decaying schedule must know the last step in advance | `keras.optimizers.ScheduleFreeAdamW` |
# | Muon {cite}`jordan2024muon` | an update matrix dominated by a few directions | both |
# | SAM {cite}`foret2021sam` | sharp minima that generalise worse | neither (a wrapper) |
#
# For each: the update rule, the `companion.optim` function (checked in the course's tests against the
# framework that ships it, over 200 steps in float64, in both conventions where both frameworks do), and a
# measurement of the problem it answers. Then all of them race on an MLP and a small CNN, several seeds
# each.

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
import torch.nn as nn

from companion import optim, schedules
from companion.data import load_mnist
from companion.glue import glue
from companion.optim.torch_adapter import SAM, ReferenceOptimizer
from companion.plotting import use_course_style
from companion.reproducibility import pick_device, seed_everything
from companion.training import accuracy, as_tensors, evaluate, mlp, train_classifier

use_course_style()
seed_everything(0)
torch.set_num_threads(1)  # small networks run fastest on one thread (see chapter 3)
device = pick_device()

# 10,000 training images, 5,000 held out to choose learning rates on, the full 10,000-image test set.
images, labels = load_mnist("train", limit=15_000)
test_images, test_labels = load_mnist("test")
x_train, y_train = as_tensors(images[:10_000, None], labels[:10_000], device)
x_val, y_val = as_tensors(images[10_000:, None], labels[10_000:], device)
x_test, y_test = as_tensors(test_images[:, None], test_labels, device)
print(f"device: {device}; train {tuple(x_train.shape)}, validation {tuple(x_val.shape)}, test {tuple(x_test.shape)}")

# %% [markdown]
# ## RAdam: a warmup derived from $\beta_2$
#
# In Adam's first steps $\hat v_t$ averages only a handful of squared gradients, and
# $1/\sqrt{\hat v_t}$, the per-weight step size, is at its noisiest: every weight, whatever the size of its
# gradient, moves by about $\eta$ (the first step is exactly $\eta\,\mathrm{sign}(g_1)$), in directions
# that one mini-batch chose. Practitioners add a *warmup*, a learning rate that ramps up
# from 0. Liu et al. {cite}`liu2020radam` measured the problem instead. The exponential average
# $v_t$ with factor $\beta_2$ behaves like a simple average of the last
# $\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)$ squared gradients, with $\rho_\infty = 2/(1-\beta_2) - 1$,
# and the variance of $1/\sqrt{\hat v_t}$ is finite only for $\rho_t > 4$. RAdam takes plain momentum
# steps until then, and afterwards Adam's step times a *rectification*
#
# $$
# r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\,\rho_\infty}{(\rho_\infty - 4)(\rho_\infty - 2)\,\rho_t}}
# \;\in (0, 1), \qquad
# \theta_{t+1} = \theta_t - \eta\, r_t\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}.
# $$
#
# $r_t$ grows towards 1 as the variance of the estimate settles: a warmup whose length follows from
# $\beta_2$, with nothing to tune. `optim.radam` is `torch.optim.RAdam` (which switches at $\rho_t > 5$);
# `optim.radam_rectification(t, b2)` returns $(\rho_t, r_t)$.

# %%
steps = np.arange(1, 3001)
fig, ax = plt.subplots()
for b2 in (0.99, 0.999):
    rho, r = np.array([optim.radam_rectification(int(t), b2) for t in steps]).T
    ax.plot(steps, np.where(rho > 5, r, 0.0), label=f"$\\beta_2$ = {b2}")  # torch's switch: rho_t > 5
ax.set_xscale("log")
ax.set_xlabel("step t")
ax.set_ylabel("rectification $r_t$ (0 while momentum steps are taken)")
ax.set_title("RAdam's built-in warmup: longer for a longer memory $\\beta_2$")
ax.legend()
plt.show()

first_adaptive = next(t for t in steps if optim.radam_rectification(int(t), 0.999)[0] > 5)
ninety = {b2: next(t for t in steps if np.nan_to_num(optim.radam_rectification(int(t), b2)[1]) > 0.9)
          for b2 in (0.99, 0.999)}
glue("radam_first_adaptive", f"{first_adaptive}")
glue("radam_ninety_999", f"{ninety[0.999]:,}")
glue("radam_ninety_99", f"{ninety[0.99]}")

# %% tags=["remove-input"]
assert first_adaptive == 6, first_adaptive
assert ninety[0.999] > ninety[0.99], ninety

# %% [markdown]
# With $\beta_2 = 0.999$ the first adaptive step is step {glue:text}`radam_first_adaptive`, and
# $r_t$ passes 0.9 only at step {glue:text}`radam_ninety_999` (step {glue:text}`radam_ninety_99` for
# $\beta_2 = 0.99$). Does it matter? At a learning rate well above Adam's default, the first steps decide:

# %%
def early_run(transformation, seed):
    seed_everything(seed)
    return train_classifier(mlp().to(device), transformation, x_train, y_train, x_val=x_val, y_val=y_val,
                            epochs=2, batch_size=128, seed=seed, progress=False)


LARGE_LR = 0.1
early = {}
for name, make in {"Adam": lambda: optim.adam(LARGE_LR),
                   "Adam + 100-step linear warmup": lambda: optim.adam(schedules.linear_warmup(LARGE_LR, 100)),
                   "RAdam": lambda: optim.radam(LARGE_LR)}.items():
    early[name] = [early_run(make(), seed) for seed in (0, 1, 2)]

fig, ax = plt.subplots()
for i, (name, runs) in enumerate(early.items()):
    losses = np.array([h.series("loss")[1] for h in runs])
    ax.plot(np.arange(1, losses.shape[1] + 1), np.median(losses, axis=0), color=f"C{i}", label=name)
    ax.fill_between(np.arange(1, losses.shape[1] + 1), losses.min(0), losses.max(0), color=f"C{i}", alpha=0.2)
ax.set_yscale("log")
ax.set_xlabel("step")
ax.set_ylabel("training loss (cross-entropy; median and range of 3 seeds)")
ax.set_title(f"At $\\eta$ = {LARGE_LR}, Adam's first steps blow up the loss; RAdam's do not")
ax.legend()
plt.show()

early_table = pd.DataFrame(
    [dict(method=name, peak_loss_first_30_steps=np.median([h.series("loss")[1][:30].max() for h in runs]),
          val_accuracy=np.median([h.last("val_accuracy") for h in runs])) for name, runs in early.items()]
).set_index("method")
glue("radam_adam_peak", f"{early_table.loc['Adam', 'peak_loss_first_30_steps']:.0f}")
glue("radam_peak", f"{early_table.loc['RAdam', 'peak_loss_first_30_steps']:.1f}")
glue("radam_val_gain", f"{100 * (early_table.loc['RAdam', 'val_accuracy'] - early_table.loc['Adam', 'val_accuracy']):.0f}")
warmup_name = "Adam + 100-step linear warmup"
radam_r_last = optim.radam_rectification(len(early["RAdam"][0].series("loss")[1]), 0.999)[1]
glue("radam_r_last", f"{radam_r_last:.2f}")
glue("warmup_peak", f"{early_table.loc[warmup_name, 'peak_loss_first_30_steps']:.1f}")
glue("warmup_behind", f"{100 * (early_table.loc['RAdam', 'val_accuracy'] - early_table.loc[warmup_name, 'val_accuracy']):.0f}")
early_table.round(3)

# %% tags=["remove-input"]
assert early_table.loc["Adam", "peak_loss_first_30_steps"] > 5 * early_table.loc["RAdam", "peak_loss_first_30_steps"]
assert early_table.loc["RAdam", "peak_loss_first_30_steps"] < 2.5
assert early_table.loc["RAdam", "val_accuracy"] > early_table.loc["Adam", "val_accuracy"] + 0.03
assert early_table.loc[warmup_name, "peak_loss_first_30_steps"] < 2.5
assert radam_r_last < 0.3, radam_r_last
assert early_table.loc["RAdam", "val_accuracy"] > early_table.loc[warmup_name, "val_accuracy"] + 0.02

# %% [markdown]
# **What to notice.** At $\eta = 0.1$ Adam's loss peaks at about {glue:text}`radam_adam_peak` in the first
# 30 steps (median of three seeds), from a start near $\ln 10 \approx 2.3$; RAdam's peak is
# {glue:text}`radam_peak`, and it ends {glue:text}`radam_val_gain` points of validation accuracy ahead of Adam.
# A hand-made 100-step linear warmup removes the spike too (peak {glue:text}`warmup_peak`), but from step 100
# on it runs at the full $\eta = 0.1$ and ends {glue:text}`warmup_behind` points behind RAdam. RAdam's warmup
# is the longer one: with $\beta_2 = 0.999$, $r_t$ is still {glue:text}`radam_r_last` at the last step of this
# run, so part of RAdam's lead is simply a smaller effective learning rate. The rectification is a warmup
# you do not have to design.
#
# ## Lion: the sign of an interpolated momentum
#
# Chen et al. {cite}`chen2023lion` let a program search the space of update rules and found a simpler one
# than Adam's:
#
# $$
# c_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
# \theta_{t+1} = \theta_t - \eta\,\bigl(\operatorname{sign}(c_t) + \lambda\theta_t\bigr), \qquad
# m_t = \beta_2 m_{t-1} + (1-\beta_2)\, g_t ,
# $$
#
# with $\beta_1 = 0.9$ and $\beta_2 = 0.99$: the step looks less far back than the momentum it keeps. One
# state array instead of Adam's two, no square roots, and every coordinate with a non-zero $c_t$ moves by
# exactly $\eta$ (plus the decay $\eta\lambda\theta_t$).
# That last property sets how to tune it: Lion's step is larger than Adam's at the same $\eta$, so the
# paper {cite}`chen2023lion` takes a learning rate 3 to 10 times smaller and a weight decay 3 to 10 times larger.
# Measured on the
# MLP: the root mean square of each update, divided by $\eta$, over the first 200 steps of each optimizer.

# %%
from companion.training import Callback  # noqa: E402


class UpdateSize(Callback):
    """The RMS of each step's parameter change, divided by the learning rate."""

    def __init__(self, learning_rate):
        self.learning_rate, self.sizes = learning_rate, []

    def on_step_begin(self, state):
        self.before = torch.cat([p.detach().flatten() for p in state.model.parameters()])

    def on_step(self, state):
        after = torch.cat([p.detach().flatten() for p in state.model.parameters()])
        self.sizes.append(((after - self.before).pow(2).mean().sqrt() / self.learning_rate).item())


update_sizes = {}
for name, transformation in [("Lion", optim.lion(1e-4)), ("Adam", optim.adam(1e-4))]:
    seed_everything(0)
    watcher = UpdateSize(1e-4)
    train_classifier(mlp().to(device), transformation, x_train, y_train, epochs=3, batch_size=128, max_steps=200,
                     callbacks=[watcher], progress=False)
    update_sizes[name] = np.array(watcher.sizes)

fig, ax = plt.subplots()
for name, sizes in update_sizes.items():
    ax.plot(np.arange(1, len(sizes) + 1), sizes, label=name)
ax.set_xlabel("step")
ax.set_ylabel("RMS of the update / learning rate")
ax.set_ylim(0, 1.05)
ax.set_title("Lion moves every weight by the full learning rate; Adam's moves shrink")
ax.legend()
plt.show()

lion_late, adam_late = update_sizes["Lion"][-50:].mean(), update_sizes["Adam"][-50:].mean()
glue("lion_update_rms", f"{lion_late:.2f}")
glue("adam_update_rms", f"{adam_late:.2f}")
glue("lion_over_adam", f"{lion_late / adam_late:.1f}")

# %% tags=["remove-input"]
assert abs(update_sizes["Lion"][0] - update_sizes["Adam"][0]) < 1e-3, update_sizes  # "both exactly eta" at step 1
assert np.all(np.diff(update_sizes["Lion"]) > -1e-3), "Lion's update RMS never shrinks"
assert update_sizes["Adam"][-50:].max() < 0.75 * update_sizes["Adam"][0], update_sizes["Adam"]  # "shrink"
assert lion_late > 1.5 * adam_late, (lion_late, adam_late)

# %% [markdown]
# **What to notice.** On the first step both move every weight that has a gradient by exactly $\eta$
# (bias-corrected Adam's first step is $\eta\,g/|g|$). Then Adam's steps shrink: where a weight's
# gradients change sign from batch to batch, $\hat m_t$ averages them out while $\sqrt{\hat v_t}$ does not,
# and over steps 151–200 Adam's update RMS is {glue:text}`adam_update_rms` $\eta$. Lion's never shrinks; it
# even grows, to {glue:text}`lion_update_rms` $\eta$, as weights of pixels lit for the first time get a
# non-zero momentum and start moving by $\eta$ too (the weights of never-lit pixels stand still). Lion's
# updates end {glue:text}`lion_over_adam` times the size of Adam's at the same $\eta$: the reason for its
# smaller learning rate.

# %% [markdown]
# ## Adafactor: the second moment in sublinear memory
#
# Adam keeps $m$ and $v$, two numbers per weight: for a model of a billion weights, {fixed}`8 GB` of optimizer
# state in float32 next to {fixed}`4 GB` of weights. Shazeer and Stern {cite}`shazeer2018adafactor` noticed that
# for a weight *matrix* $W \in \mathbb{R}^{n\times k}$ the second moment is well approximated by a rank-one
# matrix built from its row sums and column sums:
#
# $$
# R_t = \beta_{2,t} R_{t-1} + (1-\beta_{2,t})\,(g_t^2 + \epsilon_1)\mathbf 1_k, \quad
# C_t = \beta_{2,t} C_{t-1} + (1-\beta_{2,t})\,\mathbf 1_n^\top (g_t^2 + \epsilon_1), \quad
# \hat V_t = \frac{R_t C_t}{\mathbf 1_n^\top R_t},
# $$
#
# $n + k$ numbers instead of $nk$. Adafactor also drops the first moment, uses a decay
# $\beta_{2,t} = 1 - t^{-0.8}$ that grows towards 1 (no bias correction needed), clips each update to an
# RMS of at most $d = 1$, and makes the step *relative* to the weights' size:
#
# $$
# u_t = \frac{g_t}{\sqrt{\hat V_t}}\Big/\max\!\Bigl(1, \frac{\mathrm{RMS}(g_t/\sqrt{\hat V_t})}{d}\Bigr), \qquad
# \theta_{t+1} = \theta_t - \min\!\bigl(\eta, \tfrac{1}{\sqrt t}\bigr)\max\bigl(\epsilon_2, \mathrm{RMS}(\theta_t)\bigr)\, u_t .
# $$
#
# `optim.adafactor(convention="torch")` is `torch.optim.Adafactor`, `convention="keras"` is
# `keras.optimizers.Adafactor`: the defaults differ ($\eta$ = 0.01 vs 0.001) and so does where $\epsilon_1$
# sits (torch floors the row mean and $\sqrt{\hat V_t}$ at it; Keras adds it to $g^2$, as the paper does).
#
# How much state does each optimizer keep? We ask the frameworks themselves: one step of each on a single
# $1024 \times 4096$ weight matrix (the size of a transformer's feed-forward layer), then we count the
# numbers in the optimizer's state (step counters left out).

# %%
import keras  # noqa: E402  (Keras 3; the optimizers below are the frameworks' own)

SHAPE = (1024, 4096)


def torch_state_per_weight(make):
    weight = torch.zeros(SHAPE, requires_grad=True)
    weight.grad = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    opt = make([weight])
    opt.step()
    kept = sum(t.numel() for s in opt.state.values() for t in s.values() if torch.is_tensor(t) and t.dim() > 0)
    return kept / weight.numel()


def keras_state_per_weight(make):
    weight = keras.Variable(np.zeros(SHAPE, dtype="float32"))
    opt = make()
    opt.apply_gradients([(keras.ops.ones(SHAPE), weight)])
    kept = sum(int(np.prod(v.shape)) for v in opt.variables if len(v.shape) > 0)
    return kept / int(np.prod(SHAPE))


memory = pd.DataFrame([
    ("SGD + momentum", torch_state_per_weight(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
     keras_state_per_weight(lambda: keras.optimizers.SGD(0.1, momentum=0.9))),
    ("Adam", torch_state_per_weight(lambda p: torch.optim.Adam(p)), keras_state_per_weight(keras.optimizers.Adam)),
    ("RAdam", torch_state_per_weight(lambda p: torch.optim.RAdam(p)), np.nan),
    ("Lion", np.nan, keras_state_per_weight(keras.optimizers.Lion)),
    ("Adafactor", torch_state_per_weight(lambda p: torch.optim.Adafactor(p)),
     keras_state_per_weight(keras.optimizers.Adafactor)),
    ("Schedule-Free AdamW", np.nan, keras_state_per_weight(keras.optimizers.ScheduleFreeAdamW)),
    ("Muon", torch_state_per_weight(lambda p: torch.optim.Muon(p)), keras_state_per_weight(keras.optimizers.Muon)),
], columns=["method", "torch: numbers kept per weight", "Keras: numbers kept per weight"]).set_index("method")
glue("adafactor_torch_state", f"{memory.loc['Adafactor', 'torch: numbers kept per weight']:.5f}")
glue("adafactor_saving", f"{2 / memory.loc['Adafactor', 'torch: numbers kept per weight']:,.0f}")
glue("adafactor_keras_state", f"{memory.loc['Adafactor', 'Keras: numbers kept per weight']:.4f}")
memory.round(5)

# %% tags=["remove-input"]
torch_col, keras_col = memory["torch: numbers kept per weight"], memory["Keras: numbers kept per weight"]
assert torch_col["Adam"] == 2 and keras_col["Adam"] == 2 and torch_col["RAdam"] == 2
assert keras_col["Lion"] == 1 and torch_col["SGD + momentum"] == 1 and torch_col["Muon"] == 1
assert abs(torch_col["Adafactor"] - (SHAPE[0] + SHAPE[1]) / (SHAPE[0] * SHAPE[1])) < 1e-12, torch_col["Adafactor"]
assert 2 / torch_col["Adafactor"] > 1000
assert keras_col["Adafactor"] > 1 and keras_col["Muon"] == 1 and keras_col["Schedule-Free AdamW"] == 2

# %% [markdown]
# **What to notice.** Adam and RAdam keep 2 numbers per weight; Lion, Muon and SGD with momentum 1; torch's
# Adafactor {glue:text}`adafactor_torch_state` for this matrix, $(n + k)/(nk)$, about
# {glue:text}`adafactor_saving` times less than Adam. Keras' Adafactor keeps the factors *and* writes the
# rebuilt $\hat V_t$ into a full-size variable at every step, {glue:text}`adafactor_keras_state` numbers per
# weight: the same formula without the memory saving that is the method's reason to exist. Read the
# framework's numbers, not the paper's, when memory is tight. Schedule-Free AdamW keeps two arrays, $z$ and
# $v$ (the averaged weights $x$ are recomputed from the model's weights and $z$ when needed).

# %% [markdown]
# ## Schedule-Free AdamW: an average instead of a decay
#
# Part II shows that a learning rate decayed to zero at the last step (cosine, linear) beats a constant
# one: late in training, the noise of the mini-batch gradients keeps a constant-rate run bouncing around
# the minimum. But the decay must know the last step in advance; stop early or train longer and the
# schedule is wrong. Defazio et al. {cite}`defazio2024schedulefree` keep $\eta$ constant and average
# instead. Three sequences share one gradient per step:
#
# $$
# z_t = z_{t-1} - \eta\,\frac{g_t}{\sqrt{\hat v_t} + \epsilon}, \qquad
# x_t = \Bigl(1 - \tfrac1t\Bigr)\, x_{t-1} + \tfrac1t\, z_t, \qquad
# y_t = (1-\beta_1)\, z_t + \beta_1\, x_t, \qquad g_{t+1} = \nabla L(y_t).
# $$
#
# $z$ takes Adam-scaled steps at the constant rate; $x$ is the running mean of all the $z$'s, where the
# noise averages out; the gradient is taken at $y$, between the two, and $\beta_1$ plays the part of
# momentum. The model *trains* at $y$ and must be *evaluated* at $x$. `optim.schedule_free_adamw` is the
# rule of `keras.optimizers.ScheduleFreeAdamW` (PyTorch users take the authors' separate `schedulefree`
# package); `optim.schedule_free_eval_params(state)` returns $x$. Below, three runs of 4 epochs at the same large
# rate $\eta = 0.03$: AdamW at a constant rate, AdamW with a cosine decay to zero at the last step (it knows
# the total), and Schedule-Free AdamW, evaluated at $x$ and at $y$ after every epoch (and a fourth, explained
# below); weight decay off in all of them, to compare the schedules alone.

# %%
import copy  # noqa: E402


def averaged_model(model, optimizer):
    """A copy of ``model`` holding Schedule-Free's x, the weights to evaluate (the model trains at y)."""
    averaged = copy.deepcopy(model)
    x = optim.schedule_free_eval_params(optimizer.state_dict()["transformation_state"])
    with torch.no_grad():
        for p, value in zip(averaged.parameters(), x):
            p.copy_(value)
    return averaged


class ValidateAtX(Callback):
    """After every epoch, the validation loss at x."""

    def __init__(self):
        self.losses = []

    def on_epoch(self, state):
        self.losses.append(evaluate(averaged_model(state.model, state.optimizer), x_val, y_val)["loss"])


SF_LR, SF_EPOCHS = 0.03, 4
sf_total = SF_EPOCHS * -(-len(x_train) // 128)
sf_curves = {name: [] for name in ("AdamW, constant", "AdamW, cosine to 0", "Schedule-Free at y", "Schedule-Free at x",
                                   "Keras 3.15's rule at x")}
for seed in (0, 1, 2):
    for name, make in [("AdamW, constant", lambda: optim.adamw(SF_LR, weight_decay=0.0)),
                       ("AdamW, cosine to 0", lambda: optim.adamw(schedules.cosine_decay(SF_LR, sf_total), weight_decay=0.0)),
                       ("Schedule-Free at y", lambda: optim.schedule_free_adamw(SF_LR)),
                       ("Keras 3.15's rule at x", lambda: optim.schedule_free_adamw(SF_LR, x_from_updated_z=True))]:
        seed_everything(seed)
        at_x = ValidateAtX()
        history = train_classifier(mlp().to(device), make(), x_train, y_train, x_val=x_val, y_val=y_val,
                                   metrics=("loss",), epochs=SF_EPOCHS, batch_size=128, seed=seed, progress=False,
                                   callbacks=[at_x] if "Schedule" in name or "Keras" in name else [])
        if name.startswith("Keras"):
            sf_curves[name].append(np.array(at_x.losses))
            continue
        sf_curves[name].append(history.series("val_loss")[1])
        if name.startswith("Schedule"):
            sf_curves["Schedule-Free at x"].append(np.array(at_x.losses))

fig, ax = plt.subplots()
epochs_axis = np.arange(1, SF_EPOCHS + 1)
for i, (name, runs) in enumerate(sf_curves.items()):
    runs = np.array(runs)
    ax.plot(epochs_axis, np.median(runs, axis=0), marker="o", color=f"C{i}", label=name)
    ax.fill_between(epochs_axis, runs.min(0), runs.max(0), color=f"C{i}", alpha=0.15)
ax.set_xlabel("epoch")
ax.set_ylabel("validation loss (median and range of 3 seeds)")
ax.set_xticks(epochs_axis)
ax.set_title(f"At $\\eta$ = {SF_LR}, Schedule-Free's average x ends where the cosine decay ends")
ax.legend()
plt.show()

final = {name: float(np.median(np.array(runs)[:, -1])) for name, runs in sf_curves.items()}
glue("sf_final_x", f"{final['Schedule-Free at x']:.3f}")
glue("sf_final_cosine", f"{final['AdamW, cosine to 0']:.3f}")
glue("sf_final_constant", f"{final['AdamW, constant']:.3f}")
glue("sf_final_y", f"{final['Schedule-Free at y']:.3f}")
KERAS_RULE = "Keras 3.15's rule at x"
glue("sf_final_keras", f"{final[KERAS_RULE]:.3f}")

# %% tags=["remove-input"]
assert abs(final["Schedule-Free at x"] / final["AdamW, cosine to 0"] - 1) < 0.1, final  # "within 10 % of the cosine run"
assert final["Schedule-Free at x"] < final["AdamW, constant"] - 0.03, final
assert final["Schedule-Free at x"] <= final["Schedule-Free at y"], final
assert final[KERAS_RULE] > 2 * final["Schedule-Free at x"], final
assert all(np.all(np.array(x)[1:] < np.array(c)[1:]) for x, c in zip(sf_curves["Schedule-Free at x"],
                                                                        sf_curves["AdamW, constant"])), sf_curves

# %% [markdown]
# **What to notice.** At this rate the constant-rate AdamW bounces (validation loss
# {glue:text}`sf_final_constant` after 4 epochs, median of three seeds), the cosine decay settles it
# ({glue:text}`sf_final_cosine`), and Schedule-Free's $x$ gets within 10 % of the cosine run
# ({glue:text}`sf_final_x`) without knowing when training ends; from the second epoch on it is below the
# constant-rate run in every seed. The weights it trains with, $y$, are noisier
# ({glue:text}`sf_final_y`): evaluate and ship $x$.
#
# The last curve is `keras.optimizers.ScheduleFreeAdamW` as Keras 3.15 computes it with the TensorFlow (or
# torch) backend: its update step keeps a reference to $z$ where it means to keep a copy, updates $z$ in
# place, and then rebuilds $x$ from the *new* $z$, so the averaging is not the paper's (its JAX path,
# `stateless_apply`, is). `optim.schedule_free_adamw(..., x_from_updated_z=True)` reproduces it (the
# course's tests check both rules against Keras, step for step). The same runs end at
# {glue:text}`sf_final_keras`, more than twice the paper's rule: when a framework's optimizer disappoints,
# check it against a reference before blaming the method.
#
# ## Muon: orthogonalize the update of each weight matrix
#
# The gradient of a weight matrix is usually dominated by a few directions: its singular values fall
# off fast. Muon {cite}`jordan2024muon` keeps SGD's (Nesterov) momentum $B_t$ for each 2-D weight and
# replaces the update by the orthogonal matrix nearest to it, $UV^\top$ where $G_t + \mu B_t = U\Sigma V^\top$
# (the Nesterov form of the momentum): every singular direction moves by the same amount. For an $n \times k$
# weight (PyTorch's `(out, in)` layout):
#
# $$
# B_t = \mu B_{t-1} + G_t, \qquad O_t = \mathrm{NS}_5(G_t + \mu B_t) \approx UV^\top, \qquad
# W_{t+1} = W_t - \eta\,(s_{n,k}\, O_t + \lambda W_t).
# $$
#
# An SVD per step would be slow; $\mathrm{NS}_5$ is five steps of a quintic Newton–Schulz iteration,
# $X \leftarrow aX + b(XX^\top)X + c(XX^\top)^2X$ from $X_0 = M/\lVert M\rVert_F$ for the matrix $M$ being
# orthogonalized, with $(a, b, c) =
# (3.4445, -4.775, 2.0315)$ chosen for the steepest rise near 0 that still keeps values near 1: matrix
# products only, fast on a GPU. $s_{n,k}$ scales the step by the matrix's shape, and here the frameworks
# differ: `torch.optim.Muon` uses $\sqrt{\max(1, n/k)}$ (or $0.2\sqrt{\max(n,k)}$ with
# `adjust_lr_fn="match_rms_adamw"`), `keras.optimizers.Muon` $0.2\sqrt{\max(n,k)}$, which gives the update
# the RMS of a typical AdamW update, so that Muon can share AdamW's learning rate. Muon is for the
# hidden layers' matrices: biases, the output layer and embeddings are left to AdamW (Keras routes non-2-D
# variables and embeddings itself, and the output layer must be named in its `exclude_layers`;
# `optim.muon(convention="keras", adamw_mask=...)` takes the mask directly).
#
# Below, the singular values of the first layer's gradient ($128 \times 784$) at initialization, before
# and after the iteration.

# %%
seed_everything(0)
probe = mlp().to(device)
torch.nn.functional.cross_entropy(probe(x_train[:128]), y_train[:128]).backward()
gradient = probe[1].weight.grad.double().cpu()
before = torch.linalg.svdvals(gradient).numpy()
after = torch.linalg.svdvals(optim.newton_schulz(gradient)).numpy()

fig, ax = plt.subplots()
ax.plot(np.arange(1, len(before) + 1), before / before[0], marker=".", label="gradient, divided by its largest")
ax.plot(np.arange(1, len(after) + 1), after, marker=".", label="after 5 Newton–Schulz steps")
ax.set_yscale("log")
ax.set_xlabel("singular value, largest first")
ax.set_ylabel("singular value")
ax.set_title("Newton–Schulz flattens the spectrum: most directions now move by about 1")
ax.legend()
plt.show()

top_share = int((before > 0.5 * before[0]).sum())
in_band = int(((after > 0.5) & (after < 1.5)).sum())
glue("muon_before_half", f"{top_share}")
glue("muon_after_band", f"{in_band}")
glue("muon_rank", f"{len(after)}")
glue("muon_after_max", f"{after.max():.2f}")
glue("muon_smallest_before", f"{before[-1] / before[0]:.0e}")
glue("muon_smallest_after", f"{after[-1]:.0e}")

# %% tags=["remove-input"]
assert top_share <= 3 and in_band >= 100 and after.max() < 1.25, (top_share, in_band, after.max())
assert after[-1] < 0.5, after[-1]

# %% [markdown]
# **What to notice.** Before, only {glue:text}`muon_before_half` of the {glue:text}`muon_rank` singular
# values exceed half the largest; after five Newton–Schulz steps {glue:text}`muon_after_band` of them lie
# between 0.5 and 1.5 (the largest is {glue:text}`muon_after_max`: the quintic trades exactness for speed,
# and values settle in a band around 1 rather than at 1). The smallest, {glue:text}`muon_smallest_before`
# of the largest before, stay small ({glue:text}`muon_smallest_after`): five steps cannot lift a direction
# that carries almost nothing all the way to 1. The update now moves every significant direction of the
# layer by about the same amount.

# %% [markdown]
# ## One name, two frameworks
#
# Muon and Adafactor ship in both PyTorch and Keras, and `companion.optim` offers both conventions
# (`convention="torch"` or `"keras"`). The same call with the same learning rate does not take the same step.
# Below, the RMS of the first update of each convention from the same gradient, the MLP's first-layer
# gradient above ($128 \times 784$) and its transpose for Muon, the MLP's parameters at initialization for
# Adafactor, each convention at its framework's defaults except the learning rate where stated (weight
# decay off, so that only the update rule counts).

# %%
def first_step_rms(transformation, grads, params):
    updates, _ = transformation.update(grads, transformation.init(params), params)
    flat = torch.cat([u.flatten() for u in updates])
    return flat.pow(2).mean().sqrt().item()


rows = []
for label, matrix in (("128 x 784", gradient), ("784 x 128", gradient.T.contiguous())):
    zeros = [torch.zeros_like(matrix)]
    torch_rms = first_step_rms(optim.muon(1e-3, weight_decay=0.0, convention="torch"), [matrix], zeros)
    keras_rms = first_step_rms(optim.muon(1e-3, weight_decay=0.0, convention="keras"), [matrix], zeros)
    n, k = matrix.shape
    rows.append(dict(method="Muon, lr 1e-3", shape=label, torch=torch_rms, keras=keras_rms,
                     keras_over_torch=keras_rms / torch_rms,
                     shape_factors=(0.2 * np.sqrt(max(n, k))) / np.sqrt(max(1, n / k))))
seed_everything(0)
mlp_params = [p.detach().double() for p in mlp().parameters()]
mlp_grads = [torch.randn_like(p) for p in mlp_params]
torch_rms = first_step_rms(optim.adafactor(weight_decay=0.0, convention="torch"), mlp_grads, mlp_params)
keras_rms = first_step_rms(optim.adafactor(weight_decay=0.0, convention="keras"), mlp_grads, mlp_params)
rows.append(dict(method="Adafactor, defaults", shape="MLP", torch=torch_rms, keras=keras_rms,
                 keras_over_torch=keras_rms / torch_rms,
                 shape_factors=optim.ADAFACTOR_DEFAULTS["keras"]["learning_rate"]
                 / optim.ADAFACTOR_DEFAULTS["torch"]["learning_rate"]))
conventions = pd.DataFrame(rows).set_index(["method", "shape"])
muon_ratio = conventions.loc[("Muon, lr 1e-3", "128 x 784"), "keras_over_torch"]
muon_ratio_t = conventions.loc[("Muon, lr 1e-3", "784 x 128"), "keras_over_torch"]
adafactor_ratio = conventions.loc[("Adafactor, defaults", "MLP"), "keras_over_torch"]
glue("muon_keras_over_torch", f"{muon_ratio:.1f}")
glue("muon_keras_over_torch_t", f"{muon_ratio_t:.1f}")
glue("adafactor_torch_over_keras", f"{1 / adafactor_ratio:.0f}")
conventions.round(6)

# %% tags=["remove-input"]
assert np.allclose(conventions["keras_over_torch"], conventions["shape_factors"], rtol=1e-3), conventions
assert muon_ratio > 2 * muon_ratio_t, conventions

# %% [markdown]
# **What to notice.** At the same learning rate Keras' Muon steps {glue:text}`muon_keras_over_torch` times
# further than PyTorch's on the $128 \times 784$ layer and {glue:text}`muon_keras_over_torch_t` times on its
# transpose: the ratio is exactly the ratio of the two shape factors, $0.2\sqrt{\max(n,k)}$ over
# $\sqrt{\max(1, n/k)}$, and the orthogonalized direction is the same. A learning rate tuned in one framework
# is wrong by a shape-dependent factor in the other. Adafactor's update rules agree here; its default
# learning rates do not, and PyTorch's first step is {glue:text}`adafactor_torch_over_keras` times Keras'.
# One more difference is not in this table: `torch.optim.Muon` runs the Newton–Schulz iteration in
# bfloat16 whatever the weights' precision (`optim.muon(..., bfloat16=True)` reproduces it bit for bit).

# %% [markdown]
# ## The race: an MLP and a small CNN, three seeds
#
# Now all of them train the same networks: the 784–128–10 MLP of chapters 1–3 for 3 epochs, and a small
# CNN (two convolution layers, a hidden layer of 64 units, 10 outputs) for one epoch, both on the 10,000
# training images with mini-batches of 128. Muon updates the hidden layers' weight matrices and leaves
# everything else (convolution kernels, biases, the output layer) to AdamW, as Keras does with the output
# layer in `exclude_layers`; Schedule-Free is
# evaluated at $x$.
#
# **How the learning rates were chosen.** Each method gets the same budget: four learning rates,
# $\eta_0 \times \{0.3, 1, 3, 10\}$ around a recommended starting point $\eta_0$ (the framework's default;
# $10^{-4}$ for Lion, as its paper {cite}`chen2023lion` advises a rate 3 to 10 times below Adam's; 0.03 for SGD with momentum),
# tried on the MLP with seed 0 and judged on the 5,000 held-out images. The CNN reuses the rate each method
# won with on the MLP: a method whose rate carries over is easier to use. The race itself then runs seeds
# 1, 2 and 3, and only the chosen learning rates are evaluated on the test set.

# %%
def small_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10),
    )


def left_to_adamw(model):
    """Muon's mask: True for every parameter but the weight matrices of the hidden Linear layers."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    hidden = {id(m.weight) for m in linears[:-1]}
    return [id(p) not in hidden for p in model.parameters()]


RACE = {  # name: (transformation for a learning rate and a model, starting point eta_0)
    "SGD + momentum": (lambda lr, model: optim.sgd(lr, momentum=0.9), 0.03),
    "Adam": (lambda lr, model: optim.adam(lr), 1e-3),
    "RAdam": (lambda lr, model: optim.radam(lr), 1e-3),
    "Lion": (lambda lr, model: optim.lion(lr), 1e-4),
    "Adafactor": (lambda lr, model: optim.adafactor(lr), 1e-2),
    "Schedule-Free AdamW": (lambda lr, model: optim.schedule_free_adamw(lr), 2.5e-3),
    "Muon + AdamW": (lambda lr, model: optim.muon(lr, convention="keras", adamw_mask=left_to_adamw(model)), 1e-3),
}
GRID = (0.3, 1.0, 3.0, 10.0)


def race_run(method, lr, make_model, seed, epochs):
    """Train one model; return its history and the model to evaluate (Schedule-Free's x)."""
    seed_everything(seed)
    model = make_model().to(device)
    make, _ = RACE[method]
    optimizer = ReferenceOptimizer(model.parameters(), make(lr, model))
    history = train_classifier(model, optimizer, x_train, y_train, epochs=epochs, batch_size=128, seed=seed,
                               progress=False, name=method)
    return history, averaged_model(model, optimizer) if method.startswith("Schedule") else model


start = time.perf_counter()
chosen_lr = {}
for method, (_, base) in RACE.items():
    scores = {base * f: accuracy(race_run(method, base * f, mlp, 0, 3)[1], x_val, y_val) for f in GRID}
    chosen_lr[method] = max(scores, key=scores.get)
    print(f"{method:20s} lr {chosen_lr[method]:<8.3g} validation accuracy {scores[chosen_lr[method]]:.4f}")
print(f"tuning: {time.perf_counter() - start:.0f} s")

# %%
SEEDS = (1, 2, 3)
race = {}  # (network, method) -> list of (history, test accuracy)
for network, make_model, epochs in (("MLP", mlp, 3), ("CNN", small_cnn, 1)):
    for method in RACE:
        race[network, method] = [
            (history, accuracy(final, x_test, y_test))
            for history, final in (race_run(method, chosen_lr[method], make_model, seed, epochs) for seed in SEEDS)
        ]


def plot_race(network, x_axis, ax):
    for i, method in enumerate(RACE):
        runs = race[network, method]
        losses = np.array([h.series("loss")[1] for h, _ in runs])
        smooth = np.array([pd.Series(l).rolling(10, min_periods=1).mean().to_numpy() for l in losses])
        xs = (np.arange(1, losses.shape[1] + 1) if x_axis == "step"
              else np.median([h.series("seconds")[1] for h, _ in runs], axis=0))
        ax.plot(xs, np.median(smooth, axis=0), color=f"C{i}", label=method)
        ax.fill_between(xs, smooth.min(0), smooth.max(0), color=f"C{i}", alpha=0.15)
    ax.set_yscale("log")
    ax.set_xlabel("step" if x_axis == "step" else "seconds (median of the seeds)")
    ax.set_ylabel("training loss (10-batch mean; median, range of 3 seeds)")


fig, axes = plt.subplots(2, 2, figsize=(12, 9))
for row, network in enumerate(("MLP", "CNN")):
    for col, x_axis in enumerate(("step", "seconds")):
        plot_race(network, x_axis, axes[row, col])
        axes[row, col].set_title(f"{network}: loss against {x_axis if x_axis == 'seconds' else 'steps'}")
axes[0, 0].legend(fontsize=8)
fig.suptitle("The optimizers after Adam, each at its tuned learning rate")
fig.tight_layout()
plt.show()

race_table = pd.DataFrame([
    dict(method=method, learning_rate=chosen_lr[method],
         **{f"{network} test accuracy (mean)": np.mean([a for _, a in race[network, method]]) for network in ("MLP", "CNN")},
         **{f"{network} test accuracy (std)": np.std([a for _, a in race[network, method]]) for network in ("MLP", "CNN")},
         cnn_ms_per_step=1000 * np.median([np.median(np.diff(h.series("seconds")[1])) for h, _ in race["CNN", method]]))
    for method in RACE
]).set_index("method")
race_table.round(4)

# %% tags=["remove-input"]
def top(network, k):
    return set(race_table[f"{network} test accuracy (mean)"].nlargest(k).index)


top_three = top("MLP", 3)
below_sgd = {network: {m for m in RACE if race_table.loc[m, f"{network} test accuracy (mean)"]
                       < race_table.loc["SGD + momentum", f"{network} test accuracy (mean)"]} for network in ("MLP", "CNN")}
at_top_of_grid = [m for m in RACE if np.isclose(chosen_lr[m], RACE[m][1] * GRID[-1])]
step_cost = race_table["cnn_ms_per_step"] / race_table.loc["SGD + momentum", "cnn_ms_per_step"]
glue("race_top_three", ", ".join(sorted(top_three)))
glue("race_below_sgd", ", ".join(sorted(below_sgd["MLP"] & below_sgd["CNN"])))
glue("race_top_of_grid", f"{len(at_top_of_grid)}")
glue("race_adafactor_cnn_std", f"{100 * race_table.loc['Adafactor', 'CNN test accuracy (std)']:.0f}")
glue("race_max_step_cost", f"{step_cost.max():.2f}")
for network in ("MLP", "CNN"):
    for m in ("Schedule-Free AdamW", "Muon + AdamW"):
        glue(f"race_{network}_{m.split()[0].split('-')[0].lower()}",
             f"{100 * race_table.loc[m, f'{network} test accuracy (mean)']:.1f} %")
assert top("CNN", 3) == top_three == {"Schedule-Free AdamW", "Muon + AdamW", "Adam"}, race_table
assert {"Lion", "RAdam", "Adafactor"} <= below_sgd["MLP"] & below_sgd["CNN"], below_sgd
assert len(at_top_of_grid) >= 3, at_top_of_grid
assert race_table.loc["Adafactor", "CNN test accuracy (std)"] > 3 * race_table["CNN test accuracy (std)"].drop("Adafactor").max()
assert step_cost.max() < 1.5, step_cost
assert top("MLP", 2) & top("CNN", 2) == {"Schedule-Free AdamW"}, race_table
assert sum(a < 0.75 for _, a in race["CNN", "Adafactor"]) == 1, race["CNN", "Adafactor"]

# %% [markdown]
# **What to notice.**
# - The same three methods finish on top on both networks: {glue:text}`race_top_three` (mean test
#   accuracy on the MLP: Muon {glue:text}`race_MLP_muon`, Schedule-Free {glue:text}`race_MLP_schedule`; on the
#   CNN {glue:text}`race_CNN_muon` and {glue:text}`race_CNN_schedule`). Schedule-Free AdamW is the only method
#   in the top two on both: these runs end at a constant learning rate, where an average is worth most, as in
#   the previous section.
# - {glue:text}`race_below_sgd` finish below plain SGD with momentum on both networks. For RAdam, part of it
#   is the short budget: its rectification is still far below 1 at the end of these runs (see the RAdam
#   section). Lion's papers train far longer and larger models than this; whether its gap closes with the
#   budget is a question this race does not answer. Adafactor's step is relative to each layer's weight
#   scale, and its learning rate does not carry over from the MLP to the CNN: one CNN seed ends below 75 %,
#   and its CNN accuracy has a seed-to-seed standard deviation of {glue:text}`race_adafactor_cnn_std` points,
#   more than three times any other method's.
# - {glue:text}`race_top_of_grid` of the seven chosen rates sit at the top of their grids: a short budget rewards
#   aggressive steps. Rank the methods again after ten times more steps before trusting this order; the
#   claim here is only what three seeds of a short run show.
# - Against seconds the picture hardly changes: on the CNN every method's step costs at most
#   {glue:text}`race_max_step_cost` times SGD's (Muon's matrix products and Adafactor's row and column means
#   are small next to the convolutions). Memory, not time, is what separates these methods at scale.

# %% [markdown]
# ## SAM: look for a flat minimum
#
# Among the many minima of a network's training loss, flat ones (the loss barely changes around them)
# tend to generalise better than sharp ones. Foret et al. {cite}`foret2021sam` turned this into an
# optimizer: minimise the worst loss in a ball of radius $\rho$ around the weights,
# $\min_\theta \max_{\lVert\epsilon\rVert\le\rho} L(\theta+\epsilon)$. To first order the worst perturbation
# points along the gradient, and the step uses the gradient *there*:
#
# $$
# \hat\epsilon_t = \rho\,\frac{g_t}{\lVert g_t\rVert}, \qquad
# g^{\mathrm{SAM}}_t = \nabla L(\theta_t + \hat\epsilon_t), \qquad
# \theta_{t+1} = \theta_t + \mathrm{base}\bigl(g^{\mathrm{SAM}}_t\bigr),
# $$
#
# with the norm over all parameters together and any base optimizer (SGD with momentum in the paper).
# Two forward and backward passes per step on the same mini-batch: twice the cost. Neither framework
# ships it; `companion.optim.torch_adapter.SAM(params, base, rho)` wraps a `companion` chain or a
# `torch.optim` optimizer, and `train_classifier` hands it the closure that recomputes the loss (the
# course's tests check it against the closed form on the quadratic $L = \tfrac12\theta^\top A\theta$, whose SAM
# gradient is $A\theta + \rho A^2\theta/\lVert A\theta\rVert$, and against the two passes written out).
#
# We train the MLP for 3 epochs with SGD with momentum, and with SAM around the same SGD for two radii,
# then measure flatness the way Li et al. {cite}`li2018visualizing` draw loss landscapes: the training loss
# along random directions $d$ with each row (neuron) of each weight matrix scaled to the norm of that row of
# the weights, biases left unperturbed ("filter normalization"),
# $L(\theta + \alpha d)$ for $\alpha \in [-1, 1]$, averaged over 3 directions.

# %%
def random_direction(model, generator):
    """A random direction with each row of each weight matrix scaled to that row's norm; biases unchanged."""
    direction = []
    for p in model.parameters():
        d = torch.randn(p.shape, generator=generator).to(p.device)
        if p.dim() > 1:
            d = d / d.norm(dim=1, keepdim=True) * p.detach().norm(dim=1, keepdim=True)
        else:
            d = torch.zeros_like(p)
        direction.append(d)
    return direction


def loss_along_directions(model, alphas, n_directions=3, samples=2_000):
    """Training loss at theta + alpha * d for random directions d: one row per direction."""
    origin = [p.detach().clone() for p in model.parameters()]
    generator = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(n_directions):
        direction = random_direction(model, generator)
        row = []
        for alpha in alphas:
            with torch.no_grad():
                for p, p0, d in zip(model.parameters(), origin, direction):
                    p.copy_(p0 + alpha * d)
            row.append(evaluate(model, x_train[:samples], y_train[:samples])["loss"])
        rows.append(row)
    with torch.no_grad():
        for p, p0 in zip(model.parameters(), origin):
            p.copy_(p0)
    return np.array(rows)


alphas = np.linspace(-1, 1, 21)
sharpness = {}
for name, make in [("SGD + momentum", lambda model: optim.sgd(0.05, momentum=0.9)),
                   ("SAM, rho = 0.05", lambda model: SAM(model.parameters(), optim.sgd(0.05, momentum=0.9), rho=0.05)),
                   ("SAM, rho = 0.2", lambda model: SAM(model.parameters(), optim.sgd(0.05, momentum=0.9), rho=0.2))]:
    seed_everything(0)
    model = mlp().to(device)
    history = train_classifier(model, make(model), x_train, y_train, epochs=3, batch_size=128, progress=False)
    profile = loss_along_directions(model, alphas)
    sharpness[name] = dict(profile=profile.mean(axis=0), val_accuracy=accuracy(model, x_val, y_val),
                           ms_per_step=1000 * np.median(np.diff(history.series("seconds")[1])))

fig, ax = plt.subplots()
for name, result in sharpness.items():
    ax.plot(alphas, result["profile"], marker=".", label=name)
ax.set_xlabel("distance $\\alpha$ along a filter-normalized random direction")
ax.set_ylabel("training loss (2,000 images; mean of 3 directions)")
ax.set_title("SAM ends in a flatter place: the loss rises less around it")
ax.legend()
plt.show()

rise = {name: r["profile"][[0, -1]].mean() - r["profile"][len(alphas) // 2] for name, r in sharpness.items()}
sam_table = pd.DataFrame([dict(method=name, loss_at_minimum=r["profile"][len(alphas) // 2], rise_at_distance_1=rise[name],
                               val_accuracy=r["val_accuracy"], ms_per_step=r["ms_per_step"])
                          for name, r in sharpness.items()]).set_index("method")
glue("sam_rise_sgd", f"{rise['SGD + momentum']:.3f}")
glue("sam_rise_02", f"{rise['SAM, rho = 0.2']:.3f}")
glue("sam_rise_cut", f"{1 - rise['SAM, rho = 0.2'] / rise['SGD + momentum']:.0%}")
glue("sam_cost", f"{sam_table.loc['SAM, rho = 0.2', 'ms_per_step'] / sam_table.loc['SGD + momentum', 'ms_per_step']:.1f}")
sam_table.round(4)

# %% tags=["remove-input"]
assert rise["SAM, rho = 0.2"] < rise["SAM, rho = 0.05"] < rise["SGD + momentum"], rise
assert rise["SAM, rho = 0.2"] < 0.95 * rise["SGD + momentum"], rise
assert 1.4 < sam_table.loc["SAM, rho = 0.2", "ms_per_step"] / sam_table.loc["SGD + momentum", "ms_per_step"] < 2.6

# %% [markdown]
# **What to notice.** At distance 1 the loss around SGD's weights rises by {glue:text}`sam_rise_sgd`;
# around SAM's ($\rho = 0.2$) by {glue:text}`sam_rise_02`, {glue:text}`sam_rise_cut` less, and the larger
# radius gives the flatter place. Each SAM step costs {glue:text}`sam_cost` times an SGD step (two passes
# instead of one). The table shows each run's validation accuracy too, from one seed each: flatness is
# what SAM buys, and whether it turns into accuracy depends on the data and the budget (the paper's gains
# are measured on long image-classification runs, where the doubled cost is paid back).

# %% [markdown]
# ## Pitfalls
#
# - **Evaluating Schedule-Free at the training weights.** The model trains at $y$; the good weights are $x$.
#   Keras' `model.evaluate` and `model.save` use $y$; copy $x$ in first.
# - **Lion at Adam's learning rate.** Every coordinate moves by the full $\eta$: start 3 to 10 times lower
#   than Adam's rate, with a weight decay 3 to 10 times higher {cite}`chen2023lion`.
# - **Muon on every parameter.** It is for the hidden layers' weight matrices; biases, norms, embeddings and
#   the output layer belong to AdamW. `torch.optim.Muon` refuses anything that is not 2-D, and Keras routes
#   by name and shape. Its learning rate means different things in the two frameworks (the shape factor).
# - **Adafactor's memory in Keras.** The saving is the method's point, and Keras 3's implementation keeps a
#   full-size array anyway: measure before relying on it.
# - **SAM with a `step()` that has no closure.** The second gradient needs a second forward and backward
#   pass on the same batch; a loop that calls `optimizer.step()` without a closure cannot run SAM (or
#   L-BFGS). `train_classifier` passes one.
#
# ## Summary
#
# Each method after Adam answers one problem, and each is a small change to a chain of transformations:
# RAdam rectifies the early adaptive steps (a warmup derived from $\beta_2$); Lion keeps one state array and
# steps by a sign; Adafactor factors the second moment of a matrix into its row and column means;
# Schedule-Free replaces the decay by an average and must be evaluated at it; Muon orthogonalizes each
# matrix's momentum with a few matrix products; SAM takes the gradient at the worst nearby point. Measured
# here: the spike RAdam removes, the update sizes of Lion and Adam, the optimizers' state in both
# frameworks, the spectrum Muon flattens, the average that replaces a cosine decay, the flatter minimum SAM
# finds, and a race on two networks where Schedule-Free AdamW, Muon and Adam lead and the rest trail SGD
# with momentum at a short budget.
#
# ## Exercises
#
# ### Exercise 1 (Implement it): Lion from scratch
#
# Write `my_lion(learning_rate, b1=0.9, b2=0.99, weight_decay=0.0)` returning an
# `optim.GradientTransformation` that implements Lion with decoupled weight decay:
#
# $$
# u_t = -\eta\bigl(\operatorname{sign}(\beta_1 m_{t-1} + (1-\beta_1) g_t) + \lambda\theta_t\bigr), \qquad
# m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t, \qquad m_0 = 0.
# $$
#
# Parameters and gradients are lists of NumPy arrays; `update(grads, state, params)` returns the steps
# $u_t$ and a new state, without modifying its inputs. Reject a negative learning rate or weight decay
# and betas outside $[0, 1]$ with a `ValueError` naming the argument. It must reproduce `optim.lion` and
# `keras.optimizers.Lion`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "after-adam-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
def my_lion(learning_rate, b1=0.9, b2=0.99, weight_decay=0.0):
    """Lion (Chen et al., 2023): the sign of an interpolated momentum, with decoupled weight decay."""
    ### BEGIN SOLUTION
    for name, value, high in (("learning_rate", learning_rate, np.inf), ("weight_decay", weight_decay, np.inf),
                              ("b1", b1, 1.0), ("b2", b2, 1.0)):
        if not 0.0 <= value <= high:
            raise ValueError(f"Invalid {name}: {value}")

    def init(params):
        return [np.zeros_like(p) for p in params]

    def update(grads, state, params=None):
        steps = [-learning_rate * (np.sign(b1 * m + (1 - b1) * g) + weight_decay * p)
                 for g, m, p in zip(grads, state, params)]
        return steps, [b2 * m + (1 - b2) * g for g, m in zip(grads, state)]

    return optim.GradientTransformation(init, update)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "after-adam-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
import copy

import keras

from companion.exercises import expect_error


def ex1_run(transformation, steps=30, seed=0):
    """Minimise sum(a w^2 + sin(3 w)) over two arrays; return the final parameters."""
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=(4, 3)), rng.normal(size=5)]
    scales = [rng.uniform(0.1, 10.0, size=p.shape) for p in params]
    state = transformation.init(params)
    for _ in range(steps):
        grads = [2 * a * p + 3 * np.cos(3 * p) for a, p in zip(scales, params)]
        frozen = copy.deepcopy((grads, state, params))
        updates, new_state = transformation.update(grads, state, params)
        assert ex1_same((grads, state, params), frozen), "update must not modify its inputs (gradients, state, parameters): build new arrays"
        params, state = optim.apply_updates(params, updates), new_state
    return params


def ex1_same(a, b):
    """Whether two nests of lists, tuples and arrays hold the same values."""
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(ex1_same(x, y) for x, y in zip(a, b))
    return bool(np.array_equal(a, b))


ex1_first = my_lion(0.01).update([np.array([3.0, -0.2])], my_lion(0.01).init([np.zeros(2)]), [np.zeros(2)])[0][0]
assert np.allclose(ex1_first, [-0.01, 0.01]), f"the first step moves each weight by exactly -lr * sign(g): expected [-0.01, 0.01], got {ex1_first}"
for ex1_mine, ex1_ref in zip(ex1_run(my_lion(0.01)), ex1_run(optim.lion(0.01))):
    assert np.allclose(ex1_mine, ex1_ref, atol=1e-12), f"after 30 steps your parameters differ from optim.lion by {np.abs(ex1_mine - ex1_ref).max():.1e}"
### BEGIN HIDDEN TESTS
for ex1_kwargs in (dict(b1=0.5, b2=0.9), dict(b1=0.95, b2=0.999, weight_decay=0.3), dict(b1=0.0, b2=0.5, weight_decay=1.0)):
    for ex1_mine, ex1_ref in zip(ex1_run(my_lion(0.02, **ex1_kwargs), seed=1), ex1_run(optim.lion(0.02, **ex1_kwargs), seed=1)):
        assert np.allclose(ex1_mine, ex1_ref, atol=1e-12), f"{ex1_kwargs}: differs from optim.lion by {np.abs(ex1_mine - ex1_ref).max():.1e}"
ex1_start = np.random.default_rng(3).normal(size=(3, 2))
ex1_var = keras.Variable(ex1_start, dtype="float64")
ex1_keras = keras.optimizers.Lion(learning_rate=2.0**-7, beta_1=0.75, beta_2=0.96875, weight_decay=0.25)
ex1_params = [ex1_start.copy()]
ex1_t = my_lion(2.0**-7, b1=0.75, b2=0.96875, weight_decay=0.25)
ex1_state = ex1_t.init(ex1_params)
for _ in range(20):
    ex1_g = np.sin(ex1_var.numpy()) + ex1_var.numpy() * np.cos(ex1_var.numpy())
    ex1_keras.apply_gradients([(keras.ops.convert_to_tensor(ex1_g), ex1_var)])
    ex1_updates, ex1_state = ex1_t.update([np.sin(ex1_params[0]) + ex1_params[0] * np.cos(ex1_params[0])], ex1_state, ex1_params)
    ex1_params = optim.apply_updates(ex1_params, ex1_updates)
assert np.allclose(ex1_params[0], ex1_var.numpy(), atol=1e-12), "differs from keras.optimizers.Lion"
for ex1_name, ex1_args in [("learning_rate", dict(learning_rate=-0.1)), ("weight_decay", dict(weight_decay=-1.0)),
                           ("b1", dict(b1=1.5)), ("b2", dict(b2=-0.1))]:
    ex1_call = dict(dict(learning_rate=0.01), **ex1_args)
    expect_error(lambda: my_lion(**ex1_call), ValueError, ex1_name, when=f"my_lion({ex1_call})")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (Implement it): the Newton–Schulz iteration
#
# Write `my_newton_schulz(matrix, steps=5, coefficients=(3.4445, -4.775, 2.0315))` for a 2-D NumPy array
# $G$: start from $X_0 = G / \lVert G\rVert_F$ (with $\lVert G\rVert_F$ floored at $10^{-7}$), work on the
# transpose when $G$ has more rows than columns (so that $XX^\top$ is the smaller matrix), repeat
# $A = XX^\top$, $X \leftarrow aX + (bA + cA^2)X$, and return $X$ in $G$'s orientation. Raise a
# `ValueError` naming `matrix` when it is not 2-D and naming `steps` when it is negative. It must agree with
# `optim.newton_schulz`, and its singular values must lie near 1.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "after-adam-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
def my_newton_schulz(matrix, steps=5, coefficients=(3.4445, -4.775, 2.0315)):
    """Approximately orthogonalize a 2-D matrix (Muon's quintic Newton–Schulz iteration)."""
    ### BEGIN SOLUTION
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"Invalid matrix: {matrix.ndim}-D (must be 2-D)")
    if steps < 0:
        raise ValueError(f"Invalid steps: {steps} (must be >= 0)")
    a, b, c = coefficients
    tall = matrix.shape[0] > matrix.shape[1]
    x = matrix.T if tall else matrix
    x = x / max(np.linalg.norm(x), 1e-7)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "after-adam-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
ex2_rng = np.random.default_rng(0)
ex2_g = ex2_rng.normal(size=(20, 50))
ex2_mine = my_newton_schulz(ex2_g)
assert ex2_mine.shape == (20, 50), f"the result must have the input's shape (20, 50), got {ex2_mine.shape}"
ex2_ref = optim.newton_schulz(ex2_g)
assert np.allclose(ex2_mine, ex2_ref, atol=1e-10), f"differs from optim.newton_schulz by {np.abs(ex2_mine - ex2_ref).max():.1e}: check the Frobenius normalization, the update X <- aX + (bA + cA^2)X with A = X X^T, and the transpose of tall matrices"
ex2_sv = np.linalg.svd(ex2_mine, compute_uv=False)
assert 0.6 < ex2_sv.min() and ex2_sv.max() < 1.25, f"singular values should end near 1 (0.6 to 1.25) for a random 20x50 matrix, got {ex2_sv.min():.2f} to {ex2_sv.max():.2f}"
### BEGIN HIDDEN TESTS
for ex2_shape, ex2_steps, ex2_coef in [((50, 20), 5, (3.4445, -4.775, 2.0315)), ((7, 7), 3, (3.4445, -4.775, 2.0315)),
                                       ((30, 12), 8, (2.0, -1.5, 0.5)), ((5, 40), 0, (3.4445, -4.775, 2.0315))]:
    ex2_m = ex2_rng.normal(size=ex2_shape)
    ex2_diff = np.abs(my_newton_schulz(ex2_m, ex2_steps, ex2_coef) - optim.newton_schulz(ex2_m, ex2_steps, ex2_coef)).max()
    assert ex2_diff < 1e-10, f"shape {ex2_shape}, {ex2_steps} steps, coefficients {ex2_coef}: differs by {ex2_diff:.1e}"
assert np.allclose(my_newton_schulz(np.zeros((3, 4))), 0.0), "a zero matrix stays zero (the norm is floored, no division by 0)"
expect_error(lambda: my_newton_schulz(np.ones(5)), ValueError, "matrix", when="my_newton_schulz(np.ones(5))")
expect_error(lambda: my_newton_schulz(np.ones((2, 3)), steps=-1), ValueError, "steps", when="my_newton_schulz(..., steps=-1)")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 (Derive it): how large can Lion's weights grow?
#
# Lion with decoupled weight decay updates each weight by
# $\theta_{t+1} = (1 - \eta\lambda)\,\theta_t - \eta\, s_t$ with $s_t \in \{-1, 0, 1\}$ and $0 < \eta\lambda < 1$.
#
# (a) Show that if $|\theta_t| \le 1/\lambda$ then $|\theta_{t+1}| \le 1/\lambda$, and conclude that
# $|\theta_t| \le \max(|\theta_0|, 1/\lambda)$ for all $t$. Write it in `lion_weight_bound(theta0, weight_decay)`.
#
# (b) If the sign stays $s_t = s$ for many steps, to which value does $\theta_t$ converge, and after how many
# steps has the distance to it halved? Write the exact number of steps (a real number) in
# `lion_half_life(learning_rate, weight_decay)`, and give its approximation for small $\eta\lambda$.
#
# (c) What does (a) say about the paper's advice {cite}`chen2023lion` to raise the weight decay 3 to 10 times when moving from
# AdamW to Lion?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "after-adam-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
def lion_weight_bound(theta0, weight_decay):
    ### BEGIN SOLUTION
    return max(abs(theta0), 1.0 / weight_decay)
    ### END SOLUTION


def lion_half_life(learning_rate, weight_decay):
    ### BEGIN SOLUTION
    return np.log(2.0) / -np.log1p(-learning_rate * weight_decay)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "after-adam-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert np.isclose(lion_weight_bound(0.5, 0.1), 10.0), f"|theta_0| = 0.5, lambda = 0.1: the bound is max(0.5, 1/0.1) = 10; got {lion_weight_bound(0.5, 0.1)}"
assert np.isclose(lion_half_life(0.01, 0.5), 138.2826, rtol=1e-5), f"eta = 0.01, lambda = 0.5: the distance to the fixed point shrinks by a constant factor per step, and halves after about 138.28 steps; got {lion_half_life(0.01, 0.5)}"
### BEGIN HIDDEN TESTS
for ex3_theta0, ex3_wd, ex3_expected in [(0.0, 0.1, 10.0), (-20.0, 0.1, 20.0), (3.0, 2.0, 3.0), (0.2, 2.0, 0.5)]:
    assert np.isclose(lion_weight_bound(ex3_theta0, ex3_wd), ex3_expected), f"theta_0 = {ex3_theta0}, lambda = {ex3_wd}: the bound is {ex3_expected}, got {lion_weight_bound(ex3_theta0, ex3_wd)}"
ex3_rng = np.random.default_rng(4)
for ex3_lr, ex3_wd, ex3_theta0 in [(0.01, 0.5, 0.0), (0.05, 2.0, 3.0), (1e-3, 0.1, -20.0)]:
    ex3_lion = optim.lion(ex3_lr, b1=0.0, b2=0.0, weight_decay=ex3_wd)
    ex3_w = [np.full(50, ex3_theta0)]
    ex3_state = ex3_lion.init(ex3_w)
    ex3_bound = lion_weight_bound(ex3_theta0, ex3_wd)
    for _ in range(3000):
        ex3_updates, ex3_state = ex3_lion.update([ex3_rng.normal(size=50) - 0.5], ex3_state, ex3_w)
        ex3_w = optim.apply_updates(ex3_w, ex3_updates)
        assert np.abs(ex3_w[0]).max() <= ex3_bound + 1e-9, f"lr {ex3_lr}, wd {ex3_wd}: a weight reached {np.abs(ex3_w[0]).max():.4g} > your bound {ex3_bound}"
    ex3_theta, ex3_steps = 5.0, 0  # a constant sign: count the steps until the distance to -1/lambda halves
    while abs(ex3_theta + 1 / ex3_wd) > 0.5 * abs(5.0 + 1 / ex3_wd):
        ex3_theta, ex3_steps = (1 - ex3_lr * ex3_wd) * ex3_theta - ex3_lr, ex3_steps + 1
    assert ex3_steps - 1 < lion_half_life(ex3_lr, ex3_wd) <= ex3_steps, f"lr {ex3_lr}, wd {ex3_wd}: the distance halves after {ex3_steps} steps, your half-life is {lion_half_life(ex3_lr, ex3_wd):.4g}"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "after-adam-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) $|\theta_{t+1}| \le (1-\eta\lambda)|\theta_t| + \eta|s_t| \le (1-\eta\lambda)/\lambda + \eta = 1/\lambda$.
# If instead $|\theta_t| > 1/\lambda$, the same inequality gives
# $|\theta_{t+1}| \le |\theta_t| - \eta(\lambda|\theta_t| - 1) < |\theta_t|$: $|\theta_t|$ decreases while it is
# outside the interval, and once inside it stays inside. So $|\theta_t| \le \max(|\theta_0|, 1/\lambda)$.
#
# (b) With a constant sign, $\theta^\star = (1-\eta\lambda)\theta^\star - \eta s$ gives $\theta^\star = -s/\lambda$, and
# $\theta_{t} - \theta^\star = (1-\eta\lambda)^t(\theta_0 - \theta^\star)$: the distance halves after
# $\ln 2 / (-\ln(1-\eta\lambda)) \approx 0.69/(\eta\lambda)$ steps.
#
# (c) Lion's weights live in $[-1/\lambda, 1/\lambda]$ whatever the gradients: $\lambda$ sets the scale of the
# weights directly, and the time to reach it is $\sim 1/(\eta\lambda)$ steps. Moving from AdamW, the paper divides
# $\eta$ by 3–10 and multiplies $\lambda$ by 3–10, keeping $\eta\lambda$ (the decay per step, as in AdamW's
# $\theta \leftarrow (1-\eta\lambda)\theta$) about the same, while the smaller $\eta$ tames the sign steps.
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 (Investigate): how many Newton–Schulz steps does Muon need?
#
# For the first-layer gradient of the MLP at initialization (one mini-batch of 128, as in the Muon
# section) and for a random $128 \times 784$ Gaussian matrix, run `optim.newton_schulz` with 1 to 8 steps. Plot the smallest, median and largest singular value
# against the number of steps, and time each call. Why do the Gaussian matrix's singular values reach the band
# around 1 in fewer steps than the gradient's? Why does Muon stop at 5, and what would an exact SVD cost
# instead?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "after-adam-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
seed_everything(0)
ex4_model = mlp().to(device)
torch.nn.functional.cross_entropy(ex4_model(x_train[:128]), y_train[:128]).backward()
ex4_gradient = ex4_model[1].weight.grad.double().cpu()
ex4_matrices = {"MLP first-layer gradient": ex4_gradient,
                "Gaussian 128 x 784": torch.randn(128, 784, generator=torch.Generator().manual_seed(0), dtype=torch.float64)}
fig, ax = plt.subplots()
for i, (name, g) in enumerate(ex4_matrices.items()):
    rows = []
    for n_steps in range(1, 9):
        tic = time.perf_counter()
        orthogonalized = optim.newton_schulz(g, steps=n_steps)
        seconds = time.perf_counter() - tic
        sv = torch.linalg.svdvals(orthogonalized).numpy()
        rows.append((n_steps, sv.min(), np.median(sv), sv.max(), seconds))
    rows = np.array(rows)
    print(name, "milliseconds for 1 to 8 steps:", np.round(1000 * rows[:, 4], 2))
    ax.plot(rows[:, 0], rows[:, 2], marker="o", color=f"C{i}", label=f"{name}: median")
    ax.fill_between(rows[:, 0], rows[:, 1], rows[:, 3], color=f"C{i}", alpha=0.2)
    print(name, "smallest / median / largest after 5 steps:", np.round(rows[4, 1:4], 3))
tic = time.perf_counter()
torch.linalg.svd(ex4_gradient, full_matrices=False)
print(f"one exact SVD: {1000 * (time.perf_counter() - tic):.1f} ms")
ax.set_yscale("log")
ax.set_xlabel("Newton–Schulz steps")
ax.set_ylabel("singular values (median; band: smallest to largest)")
ax.set_title("A well-spread spectrum needs few steps; a gradient's tail needs more")
ax.legend()
plt.show()
### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "after-adam-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# Each step maps every singular value $\sigma$ of $X$ through $p(\sigma) = a\sigma + b\sigma^3 + c\sigma^5$, the
# same polynomial for all of them, starting from $\sigma_i/\lVert G\rVert_F$. Near 0, $p(\sigma) \approx 3.4\sigma$,
# so a singular value that starts at $\sigma_0$ needs about $\log(1/\sigma_0)/\log 3.4$ steps to reach the band
# around 1. A Gaussian matrix's singular values are all of the same order ($\sigma_i/\lVert G\rVert_F$ near
# $1/\sqrt{128}$), so a few steps lift all of them; the gradient's spectrum falls off over many orders of
# magnitude (see the figure in the Muon section), so its small singular values stay small after 5 steps
# and all but its smallest few reach the band. Muon stops at 5 because the directions that matter are lifted by
# then, and every extra step costs three matrix products; the coefficients trade exactness (the band is
# roughly 0.7 to 1.2 instead of 1) for the steepest rise. An exact SVD gives exactly $UV^\top$ but is
# much slower on a GPU (sequential, poorly parallel) and costs far more than a few matrix products for the
# large matrices of a transformer; on this CPU and this small matrix, compare the printed times.
# :::
# <!-- ### END SOLUTION -->
