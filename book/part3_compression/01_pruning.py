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
# # 1. Pruning
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part3_compression/01_pruning.ipynb)
#
# A trained network has many weights that hardly matter: set the smallest 90% of them to zero and, after a
# little fine-tuning, the accuracy is back where it was {cite}`han2015pruning`. That is *pruning*. Whether it
# makes the model smaller or faster depends on *what* is removed: scattered single weights (unstructured
# pruning) or whole neurons and channels (structured pruning). This chapter measures both, on MNIST, against
# the dense model trained in the same run:
#
# - **magnitude pruning**, per layer and global, one-shot and *gradual* with the polynomial-decay sparsity
#   schedule of Zhu and Gupta {cite}`zhu2017prune`, with a figure of accuracy against sparsity;
# - the **PyTorch way** (`torch.nn.utils.prune`) and the **TensorFlow Model Optimization** recipe
#   (`prune_low_magnitude`, `PolynomialDecay`, `UpdatePruningStep`, `strip_pruning`);
# - what pruning buys: the **gzipped file** shrinks with unstructured sparsity, but the **latency** only
#   falls when whole neurons are removed and the model becomes a smaller dense one.
#
# The reference code is `companion.compression.pruning` (masks, schedule, `MagnitudePruner`,
# `remove_neurons`, and the chapter's training recipe, which `python -m companion.bench pruning` re-runs) and
# `companion.compression.measure` (sizes and latency).

# %% tags=["hide-input"]
# Setup: on Colab (or anywhere companion is missing) install the course package.
try:
    import companion
except ImportError:
    %pip install -q "dl-optimization-companion[torch,keras,compression] @ git+https://github.com/YOUR-ORG/dl-optimization-hands-on@main"
    import companion

# %% tags=["keep-when-grading"]
import os

# tfmot (used at the end of the chapter) wraps tf.keras 2 layers; Keras 3 layers are not supported. This
# variable makes tf.keras the tf_keras 2.x package, and it only works if set before TensorFlow is imported.
os.environ["TF_USE_LEGACY_KERAS"] = "1"

import copy
from dataclasses import replace
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from torch.nn.utils import prune

from companion.compression.measure import count_parameters, model_size
from companion.compression.pruning import (
    MagnitudePruner,
    PruningConfig,
    build_mlp,
    compare_latency,
    fine_tune_structured,
    global_magnitude_masks,
    magnitude_mask,
    prune_gradually,
    remove_neurons,
    sparsity_of,
    structured_mask,
    train_dense,
)
from companion.data import load_mnist
from companion.glue import glue
from companion.plotting import use_course_style
from companion.reproducibility import pick_device, seed_everything
from companion.training import accuracy, mnist_tensors

use_course_style()
seed_everything(0)
# The model is small: on a CPU one thread is fastest (more threads add synchronisation and waiting on a
# busy machine), and latencies below are measured with one thread. On a GPU this setting does not matter.
torch.set_num_threads(1)
device = pick_device()

recipe = PruningConfig()
x_train, y_train, _, _, x_test, y_test = mnist_tensors(recipe.train_images, device=device)  # full test set
print(f"device: {device}; train {len(x_train)}, test {len(x_test)} images")
print(recipe)

# %% [markdown]
# ## A dense model to prune
#
# A Linear-heavy multilayer perceptron, 784–512–256–10 (535,000 parameters), trained with the Adam of
# Part I (`companion.optim.adam`, $\eta = 10^{-3}$, batch 128) in the course's training loop
# (`companion.training.train_classifier`) for four epochs on 30,000 MNIST images. Its test accuracy is the
# reference for everything that follows.

# %%
dense = build_mlp(recipe, device)
train_dense(dense, x_train, y_train, recipe, name="dense")
dense_accuracy = accuracy(dense, x_test, y_test)
glue("dense_accuracy", f"{dense_accuracy:.2%}")
print(f"dense: {count_parameters(dense):,} parameters, test accuracy {dense_accuracy:.4f}")

# %% [markdown]
# ## Magnitude pruning
#
# Pruning a weight matrix $W$ to sparsity $s$ multiplies it by a 0/1 mask $M$ that keeps the largest
# weights in absolute value:
#
# $$
# M_{ij} = \begin{cases} 1 & |W_{ij}| > \tau \\ 0 & \text{otherwise,}\end{cases} \qquad
# \tau = \text{the } \operatorname{round}(s\,n)\text{-th smallest } |W_{ij}| \text{ of the } n \text{ weights},
# \qquad W \leftarrow M \odot W .
# $$
#
# *Per layer*, every layer gets the same sparsity; *global* pruning computes one threshold $\tau$ over all
# layers together, so a layer with many small weights (here the first one, whose 784 inputs include
# border pixels that are always zero) loses more. *Structured* pruning removes whole output neurons
# (rows $W_{j,:}$) ranked by their norm $\lVert W_{j,:}\rVert_2$. Biases are not pruned: they are few.
#
# First, *one-shot* pruning without any retraining: prune the trained model and measure the test accuracy.
# For structured pruning the horizontal axis counts the weights that disappear with the removed neurons
# (a neuron of layer $\ell$ takes its row of $W_\ell$ and its column of $W_{\ell+1}$ with it).

# %%
def pruned_copy(model, sparsity, scope):
    """A copy of `model` with its Linear weights pruned by magnitude at `sparsity` (no fine-tuning)."""
    model = copy.deepcopy(model)
    MagnitudePruner(model, scope=scope).update_masks(sparsity)
    return model


def linear_weights(model):
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))


sweep = [0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98]
one_shot = {scope: [accuracy(pruned_copy(dense, s, scope), x_test, y_test) for s in sweep]
            for scope in ("layer", "global")}
amounts = [0.0, 0.25, 0.5, 0.7, 0.8, 0.9, 0.95]
structured_points = []
for amount in amounts:
    smaller = remove_neurons(dense, amount)
    structured_points.append((1 - linear_weights(smaller) / linear_weights(dense), accuracy(smaller, x_test, y_test)))
print(pd.DataFrame({"sparsity": sweep, "per layer": one_shot["layer"], "global": one_shot["global"]})
      .round(4).to_string(index=False))
print("structured:", [(round(f, 3), round(a, 4)) for f, a in structured_points])
for level in (0.9, 0.95):
    gain = one_shot["global"][sweep.index(level)] - one_shot["layer"][sweep.index(level)]
    glue(f"global_gain_{level * 100:.0f}", f"{100 * gain:.1f} points")

# %% [markdown]
# ## Gradual pruning with a polynomial-decay schedule
#
# Pruning {fixed}`90%` at once damages the network; fine-tuning can repair it. Zhu and Gupta {cite}`zhu2017prune`
# prune *while* fine-tuning, raising the sparsity from $s_i$ at step $t_0$ to $s_f$ at step $t_1$ along
#
# $$
# s_t = s_f + (s_i - s_f)\left(1 - \frac{t - t_0}{t_1 - t_0}\right)^{3},
# $$
#
# updating the masks every $\Delta t$ steps (`frequency`). The cubic prunes fast while many redundant weights
# remain and slowly near the end, when each weight matters more. Between updates the masks are
# re-applied after *every* optimizer step: Adam's moments keep moving a pruned weight even when its
# gradient is zero. Here: $s_i = 0$, $s_f = 0.9$, $t_0 = 0$, $t_1$ at {fixed}`60%` of three fine-tuning epochs,
# $\Delta t = 20$ steps, Adam with $\eta = 5\cdot10^{-4}$. The same budget spent as *one-shot* pruning
# followed by fine-tuning with fixed masks ($s_i = s_f$) is the comparison, at {fixed}`90%` and at {fixed}`98%`.

# %%
seed_everything(0)
fine_tuned, histories = {}, {}
for final in (0.9, 0.98):
    for method, initial in (("gradual", recipe.initial_sparsity), ("one-shot + fine-tune", final)):
        model = copy.deepcopy(dense)
        schedule = replace(recipe, final_sparsity=final, initial_sparsity=initial)
        _, histories[method, final] = prune_gradually(model, x_train, y_train, schedule, name=f"{method} {final:.0%}")
        fine_tuned[method, final] = model
        print(f"{method:>21} to {final:.0%}: sparsity {sparsity_of(model):.4f}, "
              f"test accuracy {accuracy(model, x_test, y_test):.4f}", flush=True)
pruned = fine_tuned["gradual", 0.9]
pruned_accuracy = accuracy(pruned, x_test, y_test)

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
steps, s = histories["gradual", 0.98].series("sparsity")
axes[0].plot(steps, s, label="gradual: sparsity of the masks")
axes[0].plot(*histories["one-shot + fine-tune", 0.98].series("sparsity"), ls="--", label="one-shot: sparsity")
axes[0].set(xlabel="fine-tuning step", ylabel="sparsity (fraction of weights zero)",
            title="To 98%: the cubic prunes fast, then slowly")
ax2 = axes[0].twinx()
for key, color in ((("gradual", 0.98), "C2"), (("one-shot + fine-tune", 0.98), "C3")):
    st, loss = histories[key].series("loss")
    ax2.plot(st[19:], np.convolve(loss, np.ones(20) / 20, mode="valid"), color=color, lw=1, alpha=0.7,
             label=f"{key[0]}: training loss")
ax2.set_ylabel("training loss (nats, running mean of 20)")
ax2.set_yscale("log")
ax2.grid(False)
lines = axes[0].get_lines() + ax2.get_lines()
axes[0].legend(lines, [l.get_label() for l in lines], fontsize=8, loc="center right")

axes[1].plot(sweep, one_shot["layer"], "o-", label="one-shot, per layer, no fine-tuning")
axes[1].plot(sweep, one_shot["global"], "s-", label="one-shot, global, no fine-tuning")
axes[1].plot(*zip(*structured_points), "^-", label="structured (neurons), no fine-tuning")
for (method, final), model in fine_tuned.items():
    gradual = method == "gradual"
    axes[1].plot(final, accuracy(model, x_test, y_test), "*" if gradual else "D", ms=13 if gradual else 8,
                 color="C4" if gradual else "C5", zorder=5 if gradual else 4,
                 label=f"{method} (3 epochs)" if final == 0.9 else None)
axes[1].axhline(dense_accuracy, color="gray", ls=":", label="dense model")
axes[1].set(xlabel="sparsity (fraction of Linear weights removed)", ylabel="test accuracy (fraction)",
            ylim=(0.5, 1.0), title="Fine-tuning makes 90% sparsity free; gradual wins at 98%")
axes[1].legend(fontsize=8, loc="lower left")
plt.tight_layout()
plt.show()

# %% tags=["remove-input"]
acc = {key: accuracy(model, x_test, y_test) for key, model in fine_tuned.items()}
glue("acc_gradual_90", f"{acc['gradual', 0.9]:.2%}")
glue("acc_one_shot_90", f"{acc['one-shot + fine-tune', 0.9]:.2%}")
# one-shot without fine-tuning: harmless at 50%, costly at 90% (per layer)
assert one_shot["layer"][sweep.index(0.5)] > dense_accuracy - 0.005
assert one_shot["layer"][sweep.index(0.9)] < dense_accuracy - 0.05
# at 90% both fine-tuned methods recover the dense accuracy within half a point of each other
assert abs(acc["gradual", 0.9] - acc["one-shot + fine-tune", 0.9]) < 0.005
# at 98% the gradual schedule is clearly better than one-shot + fine-tuning
assert acc["gradual", 0.98] > acc["one-shot + fine-tune", 0.98] + 0.01
assert all(abs(acc[method, 0.9] - dense_accuracy) < 0.005 for method in ("gradual", "one-shot + fine-tune"))
# global beats per-layer one-shot pruning at high sparsity, by more than 10 points at 90% and 95%
assert all(one_shot["global"][sweep.index(s)] > one_shot["layer"][sweep.index(s)] + 0.1 for s in (0.9, 0.95))
# structured pruning without fine-tuning collapses much earlier than unstructured
frac_50, acc_50 = structured_points[amounts.index(0.5)]
assert 0.5 < frac_50 < 0.6 and acc_50 < one_shot["layer"][sweep.index(0.6)] - 0.03
# at 98%, one-shot pruning starts from a much higher loss and is still above the gradual run at the end
loss_gradual = histories["gradual", 0.98].series("loss")[1]
loss_one_shot = histories["one-shot + fine-tune", 0.98].series("loss")[1]
assert loss_one_shot[:20].mean() > 3 * loss_gradual[:20].mean()
assert loss_one_shot[-100:].mean() > loss_gradual[-100:].mean()
print({k: round(v, 4) for k, v in acc.items()})
print(f"98%: first 20 steps' loss {loss_one_shot[:20].mean():.3f} (one-shot) vs {loss_gradual[:20].mean():.3f} "
      f"(gradual); last 100 steps {loss_one_shot[-100:].mean():.3f} vs {loss_gradual[-100:].mean():.3f}")

# %% [markdown]
# **What to notice.**
#
# - Without fine-tuning, pruning the smallest half of the weights costs nothing, but by {fixed}`90%` the network is
#   badly damaged (the one-shot curves, right). *Global* pruning holds up better than per-layer pruning
#   at high sparsity ({glue:text}`global_gain_90` better at 90% and {glue:text}`global_gain_95` at 95%, more than
#   10 points each): it spares the small last layer, whose weights are larger (Exercise 4).
# - With fine-tuning, {fixed}`90%` sparsity costs nothing: both the gradual ({glue:text}`acc_gradual_90`) and the
#   one-shot-then-fine-tune model ({glue:text}`acc_one_shot_90`) are within 0.5 point of each other and of the
#   dense model ({glue:text}`dense_accuracy`). At {fixed}`98%` the schedule matters: gradual pruning ends
#   more than one point above one-shot pruning with the same number of steps. The training loss (left)
#   shows why: one-shot pruning to {fixed}`98%` starts from a loss several times higher, and after the same number
#   of steps it is still above the loss of the gradual run.
# - Removing whole neurons hurts far sooner: at equal fractions of removed weights, the structured curve lies
#   well below the unstructured ones. Structured pruning needs fine-tuning (below), and buys something
#   unstructured pruning does not.

# %% [markdown]
# ## The targets: {fixed}`90%` sparsity, within {fixed}`1 point`, a {fixed}`3x` smaller file
#
# The size is measured as the TensorFlow Model Optimization guide measures it: the weights are stored
# *dense* (float32, zeros included; `torch.save` of the state dict) and the file is compressed with
# gzip (level 9). Runs of zeros compress; arbitrary float32 values barely do.

# %%
dense_size, pruned_size = model_size(dense), model_size(pruned)
print(f"dense : accuracy {dense_accuracy:.4f}, {dense_size}")
print(f"pruned: accuracy {pruned_accuracy:.4f}, sparsity {sparsity_of(pruned):.4f}, {pruned_size}")
size_ratio = dense_size.gzipped_bytes / pruned_size.gzipped_bytes
print(f"accuracy change {100 * (pruned_accuracy - dense_accuracy):+.2f} points; gzipped file {size_ratio:.1f}x smaller;"
      f" uncompressed file {dense_size.bytes / pruned_size.bytes:.2f}x")
glue("size_ratio", f"{size_ratio:.1f}x")
glue("dense_gzip_share", f"{dense_size.gzipped_bytes / dense_size.bytes:.1%}")

# %%
# The chapter's claims, with their exact thresholds.
assert sparsity_of(pruned) >= 0.9 - 1e-3
assert pruned_accuracy >= dense_accuracy - 0.01, "at most 1 point of test-accuracy loss"
assert size_ratio >= 3.0, "gzipped model at least 3x smaller"
# what the prose below claims
assert size_ratio > 4.5 and dense_size.bytes == pruned_size.bytes
assert abs(pruned_accuracy - dense_accuracy) < 0.005, "within half a point of the dense model"
glue("pruned_change", f"{100 * (pruned_accuracy - dense_accuracy):+.2f} points")
assert dense_size.gzipped_bytes > 0.9 * dense_size.bytes

# %% [markdown]
# The pruned model is {glue:text}`size_ratio` smaller once gzipped, at an unchanged test accuracy
# ({glue:text}`pruned_change`, within half a point; the three fine-tuning epochs are also three more epochs
# of training, so the pruned model can even end slightly above the dense one), while the raw file has
# *exactly* the same size as the dense one: dense storage pays 4 bytes for every zero. gzip barely
# compresses trained float32 weights ({glue:text}`dense_gzip_share` of the raw size remains, more than 90%) but
# encodes the zeros almost for free. The [guide](https://www.tensorflow.org/model_optimization/guide/pruning/pruning_with_keras) reports "3x smaller" for 50%→80%
# sparsity; at {fixed}`90%` the zeros leave about {fixed}`10%` of the weights plus the information of *where*
# they are, hence {glue:text}`size_ratio` here.

# %% [markdown]
# ## The PyTorch way: `torch.nn.utils.prune`
#
# PyTorch's pruning utilities reparametrize a layer: `prune.l1_unstructured(layer, "weight", amount)` moves
# the weight to `weight_orig`, stores a buffer `weight_mask`, and recomputes `weight = weight_orig * weight_mask`
# in a forward pre-hook. `prune.global_unstructured` uses one threshold for several layers,
# `prune.ln_structured(..., n=2, dim=0)` zeroes rows by their $L_2$ norm, and `prune.remove` makes the
# pruning permanent. Our masks agree with PyTorch's exactly (the tests check this on random tensors too).

# %%
torch_pruned = copy.deepcopy(dense)
layers = [m for m in torch_pruned if isinstance(m, nn.Linear)]
for layer in layers:
    prune.l1_unstructured(layer, "weight", amount=0.9)
assert all(torch.equal(layer.weight_mask, magnitude_mask(original.weight, 0.9))
           for layer, original in zip(layers, [m for m in dense if isinstance(m, nn.Linear)]))
print("state dict while pruning:", [k for k in torch_pruned.state_dict()][:3], "...")
print(f"  size with masks: {model_size(torch_pruned)}")
for layer in layers:
    prune.remove(layer, "weight")
print(f"  after prune.remove: {model_size(torch_pruned)}")

global_model = copy.deepcopy(dense)
global_layers = [m for m in global_model if isinstance(m, nn.Linear)]
prune.global_unstructured([(m, "weight") for m in global_layers], pruning_method=prune.L1Unstructured, amount=0.9)
ours = global_magnitude_masks([m.weight for m in dense if isinstance(m, nn.Linear)], 0.9)
assert all(torch.equal(m.weight_mask, o) for m, o in zip(global_layers, ours))
print("global 90%: per-layer sparsity", {n: round(v, 3) for n, v in sparsity_of(global_model, per_layer=True).items()})

rows_model = copy.deepcopy(dense)
prune.ln_structured(rows_model[1], "weight", amount=0.5, n=2, dim=0)
assert torch.equal(rows_model[1].weight_mask, structured_mask(dense[1].weight, 0.5, dim=0, n=2))
print("ln_structured: rows of layer 1 zeroed:", int((rows_model[1].weight_mask[:, 0] == 0).sum()), "of 512")

# %% tags=["remove-input"]
with_masks = copy.deepcopy(dense)
for layer in [m for m in with_masks if isinstance(m, nn.Linear)]:
    prune.l1_unstructured(layer, "weight", amount=0.9)
assert model_size(with_masks).bytes > 1.9 * dense_size.bytes  # weight_orig + weight_mask: twice the dense size
assert abs(model_size(torch_pruned).bytes - dense_size.bytes) < 1e-3 * dense_size.bytes
global_sparsity = sparsity_of(global_model, per_layer=True)
assert global_sparsity["1"] > 0.9 > global_sparsity["5"]

# %% [markdown]
# **Pitfall.** Saving a model while `torch.nn.utils.prune` is attached stores `weight_orig` *and*
# `weight_mask`: the file is twice the dense size, not smaller. Call `prune.remove` before saving (or
# measuring). Likewise, a pruned model fine-tuned with a plain loop and *no* mask re-applied after each
# step is dense again after a few Adam steps; the reparametrization (PyTorch) or `MagnitudePruner.apply`
# (ours) prevents that.

# %% [markdown]
# ## Unstructured sparsity does not make the model faster; removing neurons does
#
# A dense matrix multiplication multiplies the zeros too: {fixed}`90%` zeros cost exactly as much time as
# {fixed}`90%` arbitrary numbers. To be faster, the model must *shrink*. Structured pruning removes half of the neurons
# of each hidden layer (by the $L_2$ norm of their weight rows) and rebuilds the network as a smaller dense
# one, 784–256–128–10, which is then fine-tuned for two epochs. (A pruned neuron whose row is zero still
# outputs the constant $\mathrm{ReLU}(b_j)$; `remove_neurons` folds it into the next layer's bias, so the
# smaller model computes exactly what the row-masked model computes; the tests check this.)
#
# Latency: CPU, one thread (`torch.set_num_threads(1)`), a batch of 256 test images, median of 5 rounds of 20
# calls, the three models alternating so that a busy spell of the machine hits all of them.

# %%
seed_everything(0)
structured = remove_neurons(dense, recipe.structured_amount)
structured_one_shot = accuracy(structured, x_test, y_test)
fine_tune_structured(structured, x_train, y_train, recipe)
structured_accuracy = accuracy(structured, x_test, y_test)
print(f"structured: {[m.out_features for m in structured if isinstance(m, nn.Linear)]}, "
      f"{count_parameters(structured):,} parameters; test accuracy {structured_one_shot:.4f} right after "
      f"removal, {structured_accuracy:.4f} after fine-tuning")
glue("structured_drop", f"{100 * (dense_accuracy - structured_one_shot):.1f} points")

models = {"dense": dense, "unstructured 90%": pruned, "structured 50% neurons": structured}
latency = compare_latency(models, x_test[:256])
table = pd.DataFrame({
    "test accuracy": [accuracy(m, x_test, y_test) for m in models.values()],
    "parameters": [count_parameters(m) for m in models.values()],
    "file (MB)": [model_size(m).bytes / 1e6 for m in models.values()],
    "gzipped (MB)": [model_size(m).gzipped_bytes / 1e6 for m in models.values()],
    "latency (ms, batch 256)": [latency[n].median_ms for n in models],
}, index=list(models))
print(table.round(4).to_string())

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
colors = ["C0", "C1", "C2"]
axes[0].bar(table.index, table["gzipped (MB)"], color=colors, label="gzipped")
axes[0].bar(table.index, table["file (MB)"], color="none", edgecolor="gray", ls="--", label="raw file")
axes[0].set(ylabel="size (MB)", title="Sparsity shrinks the gzipped file")
axes[1].bar(table.index, table["latency (ms, batch 256)"], color=colors, label="median latency")
axes[1].errorbar(range(3), [latency[n].median_ms for n in models],
                 yerr=[[latency[n].median_ms - latency[n].p25_ms for n in models],
                       [latency[n].p75_ms - latency[n].median_ms for n in models]],
                 fmt="none", color="black", capsize=4, label="interquartile range")
axes[1].set(ylabel="latency (ms per batch of 256, 1 CPU thread)", title="Only removing neurons cuts latency")
for ax in axes:
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% tags=["remove-input"]
speed_structured = latency["dense"].median_ms / latency["structured 50% neurons"].median_ms
speed_unstructured = latency["dense"].median_ms / latency["unstructured 90%"].median_ms
print(f"speed-up: structured {speed_structured:.2f}x, unstructured {speed_unstructured:.2f}x")
glue("speed_structured", f"{speed_structured:.2f}x")
assert speed_structured > 1.3, "structured pruning is more than 1.3x faster"
assert speed_unstructured < 1.25, "unstructured sparsity brings no real speed-up with dense kernels"
assert structured_accuracy >= dense_accuracy - 0.01 and structured_one_shot < dense_accuracy - 0.05
assert model_size(structured).bytes < 0.5 * dense_size.bytes

# %% [markdown]
# **What to notice.** The {fixed}`90%`-sparse model is as slow as the dense one (within the noise of the
# measurement), while the structured model, with a quarter of the hidden-layer multiplications
# and half of the first layer's, is {glue:text}`speed_structured` faster here, more than 1.3 times (the ratio
# varies from machine to machine and with the machine's load). Removing half the neurons costs a lot of
# accuracy at first ({glue:text}`structured_drop`, more than 5), but two epochs of fine-tuning bring it back
# within a point of the dense model. Its file is smaller *uncompressed* too. Unstructured sparsity can pay
# off in time only with sparse kernels and at high sparsity (or on hardware built for it, such as 2:4
# sparsity on recent GPUs); on a CPU with dense BLAS, structure is what turns pruning into speed.

# %% [markdown]
# ## The TensorFlow Model Optimization recipe
#
# Readers of the TensorFlow guide know pruning as four calls:
#
# ```python
# schedule = tfmot.sparsity.keras.PolynomialDecay(initial_sparsity, final_sparsity, begin_step, end_step,
#                                                  frequency=...)
# model_for_pruning = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
# model_for_pruning.compile(...)
# model_for_pruning.fit(..., callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
# final_model = tfmot.sparsity.keras.strip_pruning(model_for_pruning)
# ```
#
# `prune_low_magnitude` wraps every layer in a wrapper that holds a mask next to its kernel; the
# `UpdatePruningStep` callback advances the step counter the schedule reads (without it, `fit` stops with an
# error); `strip_pruning` removes the wrappers so that the saved model holds plain layers with zeros in
# their kernels. `companion.compression.keras_pruning.prune_with_tfmot` is exactly this, with the
# hyperparameters of our recipe (same model, data, epochs, schedule).
#
# **Why `TF_USE_LEGACY_KERAS=1`.** tfmot wraps tf.keras **2** layers. Since TensorFlow 2.16 the default
# `keras` is Keras 3, whose layer classes tfmot does not recognise; the `tf_keras` package keeps tf.keras 2
# alive, and `TF_USE_LEGACY_KERAS=1` makes `tf.keras` point to it. TensorFlow reads the variable once, when it
# is first imported, which is why this notebook sets it in its first import cell.
#
# On Colab, `tf_keras` comes with the runtime but the Model Optimization toolkit does not: the next cell
# installs it when it is missing (it is part of the course's pinned requirements).

# %%
try:
    import tensorflow_model_optimization  # noqa: F401
except ImportError:
    %pip install -q tensorflow-model-optimization tf-keras

# %%
start = time.perf_counter()
from companion.quiet import quiet_tensorflow  # noqa: E402

with quiet_tensorflow():  # TensorFlow's C++ start-up messages stay off the page
    import keras  # noqa: E402  (Keras 3: the package named keras)
    import tensorflow as tf  # noqa: E402
    import tensorflow_model_optimization as tfmot  # noqa: E402

from companion.compression.keras_pruning import (  # noqa: E402
    build_keras_mlp,
    keras_model_gzipped_size,
    prune_with_tfmot,
)

print(f"keras {keras.__version__}; tf.keras is {tf.keras.layers.Dense.__module__.split('.')[0]}; "
      f"imported in {time.perf_counter() - start:.0f} s")
try:
    tfmot.sparsity.keras.prune_low_magnitude(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]))
except ValueError as error:
    keras3_error = str(error)
    print("Keras 3 model:", keras3_error)

# %%
# The same images as NumPy arrays, the form Keras takes.
images, labels = load_mnist("train", limit=recipe.train_images)
test_images, test_labels = load_mnist("test")
keras_dense = build_keras_mlp(recipe)
keras_dense.fit(images, labels, batch_size=recipe.batch_size, epochs=recipe.dense_epochs, verbose=0)


def keras_accuracy(model):
    return float(np.mean(model.predict(test_images, batch_size=2048, verbose=0).argmax(axis=1) == test_labels))


keras_dense_accuracy = keras_accuracy(keras_dense)
keras_dense_size = keras_model_gzipped_size(keras_dense)
print(f"tf.keras dense: test accuracy {keras_dense_accuracy:.4f}", flush=True)
keras_pruned = prune_with_tfmot(keras_dense, images, labels, recipe)
keras_pruned_accuracy = keras_accuracy(keras_pruned)
keras_pruned_size = keras_model_gzipped_size(keras_pruned)
kernels = [layer.kernel.numpy() for layer in keras_pruned.layers if hasattr(layer, "kernel")]
keras_sparsity = sum(int((k == 0).sum()) for k in kernels) / sum(k.size for k in kernels)
keras_ratio = keras_dense_size[1] / keras_pruned_size[1]
print(f"tfmot pruned: test accuracy {keras_pruned_accuracy:.4f}, kernel sparsity {keras_sparsity:.4f}")
print(f".h5 file: dense {keras_dense_size[0] / 1e6:.3f} MB ({keras_dense_size[1] / 1e6:.3f} MB gzipped), "
      f"pruned {keras_pruned_size[0] / 1e6:.3f} MB ({keras_pruned_size[1] / 1e6:.3f} MB gzipped): "
      f"{keras_ratio:.1f}x smaller gzipped")
glue("keras_ratio", f"{keras_ratio:.1f}x")

# %%
# The same targets, for the tfmot recipe.
assert "can only prune an object of the following types" in keras3_error
assert keras_sparsity >= 0.9 - 1e-3
assert keras_pruned_accuracy >= keras_dense_accuracy - 0.01, "at most 1 point of test-accuracy loss"
assert keras_ratio >= 3.0, "gzipped model at least 3x smaller"
assert abs(keras_ratio - size_ratio) < 1.0 and abs(keras_pruned_accuracy - pruned_accuracy) < 0.01

# %% [markdown]
# Both frameworks land in the same place: {fixed}`90%` of the kernel weights zero, the test accuracy within a
# point of the dense model, and a gzipped `.h5` {glue:text}`keras_ratio` smaller (the PyTorch file was
# {glue:text}`size_ratio` smaller; within one unit of each other). The guide's figures differ for three
# reasons: it prunes from 50% to 80% ([its schedule](https://www.tensorflow.org/model_optimization/guide/pruning/pruning_with_keras); we go to {fixed}`90%`, so more zeros
# compress), its model is a small convolutional network whose few parameters make the
# file's fixed overhead (HDF5 metadata, layer names, biases) a larger share, and it zips with
# `zipfile.ZIP_DEFLATED` instead of `gzip -9`. The "10x" of [the guide](https://www.tensorflow.org/model_optimization/guide/pruning/pruning_with_keras) needs quantization on top, the next
# chapter's subject. And just as in PyTorch, the stripped Keras model is no faster: its kernels are dense
# matrices full of zeros.
#
# ## Pitfalls that popular snippets get wrong
#
# - **Measuring the wrong file.** Saving with the pruning wrappers or PyTorch's reparametrization still
#   attached (`weight_orig` + `weight_mask`, or tfmot's masks and thresholds) stores more than the dense model:
#   `strip_pruning` / `prune.remove` first. And compare gzipped with gzipped, same format.
# - **Expecting speed from zeros.** Unstructured sparsity shrinks the compressed file, not the latency of
#   dense kernels. Measure latency; for speed, remove neurons or channels.
# - **Masks applied once.** Pruning before fine-tuning and then training without re-applying the masks
#   lets the optimizer regrow every pruned weight.
# - **Forgetting `UpdatePruningStep`** (an error in `fit`) or importing TensorFlow before setting
#   `TF_USE_LEGACY_KERAS=1` (Keras 3 models, which tfmot refuses).
# - **Ignoring biases in structured pruning.** Zeroing a neuron's weight row leaves its bias: the neuron
#   still outputs $\mathrm{ReLU}(b_j)$. Fold it into the next layer (as `remove_neurons` does) or the
#   smaller model is not the pruned one.
#
# ## Summary
#
# | | what is removed | file (gzipped) | latency (dense kernels) | needs |
# |---|---|---|---|---|
# | unstructured, per layer {cite}`han2015pruning` | single weights, same sparsity per layer | {glue:text}`size_ratio` smaller at {fixed}`90%` | unchanged | fine-tuning, except at low sparsity |
# | unstructured, global | single weights, one threshold | same | unchanged | fine-tuning |
# | gradual {cite}`zhu2017prune` | as above, sparsity raised along a cubic | same | unchanged | a schedule, masks after every step |
# | structured (neurons, channels) {cite}`li2017filters` | whole rows and their columns | smaller raw file too | faster (smaller dense model) | fine-tuning, always |
#
# Magnitude pruning to {fixed}`90%` with a little fine-tuning costs no accuracy on this MNIST model and, stored
# dense and gzipped, gives a file {glue:text}`size_ratio` smaller in PyTorch and {glue:text}`keras_ratio` smaller with
# tfmot. Only pruning whole neurons made the model faster.
#
# ## Exercises
#
# ### Exercise 1 (Implement it): a magnitude mask
#
# Write `my_magnitude_mask(weight, sparsity)`: return a tensor of the shape and dtype of `weight`, 0 for the
# `round(sparsity * weight.numel())` entries of smallest absolute value and 1 elsewhere. Raise a `ValueError`
# when `sparsity` is not in $[0, 1)$. The check compares it with `torch.nn.utils.prune.l1_unstructured`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "pruning-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
def my_magnitude_mask(weight, sparsity):
    ### BEGIN SOLUTION
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"Invalid sparsity: {sparsity} (must be in [0, 1))")
    mask = torch.ones_like(weight)
    k = round(sparsity * weight.numel())
    if k:
        mask.view(-1)[weight.abs().reshape(-1).argsort()[:k]] = 0
    return mask
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "pruning-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error

w_check = torch.tensor([[0.5, -2.0, 0.1], [3.0, -0.2, 1.0]])
assert torch.equal(my_magnitude_mask(w_check, 0.5), torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])), f"sparsity 0.5 of 6 weights: the 3 smallest magnitudes are pruned; got {my_magnitude_mask(w_check, 0.5)}"
assert torch.equal(my_magnitude_mask(w_check, 0.0), torch.ones_like(w_check)), "sparsity 0 keeps every weight"
assert my_magnitude_mask(w_check, 0.5).dtype == w_check.dtype, f"the mask must have the weight's dtype ({w_check.dtype}), got {my_magnitude_mask(w_check, 0.5).dtype}"
### BEGIN HIDDEN TESTS
generator = torch.Generator().manual_seed(0)
for shape in ((40, 30), (6, 3, 5, 5), (101,)):
    w = torch.randn(shape, generator=generator)
    for s in (0.1, 0.5, 0.9, 0.99):
        layer = nn.Linear(1, 1)
        layer.weight = nn.Parameter(w.clone())
        prune.l1_unstructured(layer, "weight", amount=s)
        assert torch.equal(my_magnitude_mask(w, s), layer.weight_mask), (shape, s)
        assert torch.equal(my_magnitude_mask(w, s), magnitude_mask(w, s)), (shape, s, "differs from companion.compression.pruning.magnitude_mask")
for bad in (1.0, -0.1, 2.0):
    expect_error(lambda: my_magnitude_mask(w_check, bad), ValueError, when=f"my_magnitude_mask(w, sparsity={bad})")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (Implement it): a structured mask by the $L_n$ norm of rows
#
# Write `my_structured_mask(weight, amount, n=2)`: return a tensor of the shape and dtype of `weight`
# (a `Linear` weight of shape `(out, in)` or a conv weight of shape `(out, in, kh, kw)`) that is 0 on
# every entry of the `round(amount * weight.shape[0])` output rows (slices `weight[j]`) of smallest
# $L_n$ norm $\lVert W_{j}\rVert_n = \left(\sum |W_{j\cdot}|^n\right)^{1/n}$, the sum running over all the
# other dimensions, and 1 elsewhere. `n` is 1 or 2. Raise a `ValueError` naming `amount` when `amount` is
# not in $[0, 1)$. The check compares it with `torch.nn.utils.prune.ln_structured(module, "weight",
# amount, n=n, dim=0)`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "pruning-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
def my_structured_mask(weight, amount, n=2):
    """0/1 mask zeroing the ``round(amount * rows)`` output rows of smallest L_n norm."""
    ### BEGIN SOLUTION
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"Invalid amount: {amount} (must be in [0, 1))")
    norms = weight.detach().abs().pow(n).reshape(weight.shape[0], -1).sum(dim=1).pow(1.0 / n)
    mask = torch.ones_like(weight)
    k = round(amount * weight.shape[0])
    if k:
        mask[norms.argsort()[:k]] = 0
    return mask
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "pruning-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error
ex2_w = torch.tensor([[3.0, 0.0], [1.0, 1.0], [0.0, -1.5], [2.0, -2.0]])  # L2 norms 3, 1.41, 1.5, 2.83; L1 norms 3, 2, 1.5, 4
ex2_expected_l2 = torch.tensor([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
ex2_expected_l1 = torch.tensor([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
ex2_expected_l1_quarter = torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0]])
assert torch.equal(my_structured_mask(ex2_w, 0.5), ex2_expected_l2), f"amount 0.5, n=2: rows 1 and 2 (L2 norms 1.41 and 1.5) are zeroed; got {my_structured_mask(ex2_w, 0.5)}"
assert torch.equal(my_structured_mask(ex2_w, 0.25, n=1), ex2_expected_l1_quarter), f"amount 0.25, n=1: only row 2 (L1 norm 1.5) is zeroed; got {my_structured_mask(ex2_w, 0.25, n=1)}"
assert torch.equal(my_structured_mask(ex2_w, 0.0), torch.ones_like(ex2_w)), "amount 0 keeps every row"
assert my_structured_mask(ex2_w, 0.5).dtype == ex2_w.dtype, f"the mask must have the weight's dtype ({ex2_w.dtype}), got {my_structured_mask(ex2_w, 0.5).dtype}"
### BEGIN HIDDEN TESTS
assert torch.equal(my_structured_mask(ex2_w, 0.5, n=1), ex2_expected_l1), f"amount 0.5, n=1: rows 1 and 2 (L1 norms 2 and 1.5) are zeroed; got {my_structured_mask(ex2_w, 0.5, n=1)}"
torch.manual_seed(0)
for ex2_layer in (nn.Linear(30, 40), nn.Linear(7, 7), nn.Conv2d(3, 16, 3), nn.Conv2d(4, 10, 5)):
    ex2_weight = ex2_layer.weight.detach().clone()
    for ex2_amount in (0.1, 0.3, 0.5, 0.9):
        for ex2_n in (1, 2):
            ex2_ref = copy.deepcopy(ex2_layer)
            prune.ln_structured(ex2_ref, "weight", amount=ex2_amount, n=ex2_n, dim=0)
            ex2_mine = my_structured_mask(ex2_weight, ex2_amount, n=ex2_n)
            assert tuple(ex2_mine.shape) == tuple(ex2_weight.shape), f"the mask must have the weight's shape {tuple(ex2_weight.shape)}, got {tuple(ex2_mine.shape)}"
            ex2_rows = int((ex2_mine.reshape(len(ex2_mine), -1) != ex2_ref.weight_mask.reshape(len(ex2_mine), -1)).any(dim=1).sum())
            assert torch.equal(ex2_mine, ex2_ref.weight_mask), f"weight {tuple(ex2_weight.shape)}, amount {ex2_amount}, n={ex2_n}: {ex2_rows} rows differ from prune.ln_structured's mask"
            assert torch.equal(ex2_mine, structured_mask(ex2_weight, ex2_amount, dim=0, n=ex2_n)), f"weight {tuple(ex2_weight.shape)}, amount {ex2_amount}, n={ex2_n}: differs from companion.compression.pruning.structured_mask"
for ex2_bad in (1.0, -0.1, 1.5):
    expect_error(lambda: my_structured_mask(ex2_w, ex2_bad), ValueError, "amount", when=f"my_structured_mask(w, amount={ex2_bad})")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 (Derive it): when does a sparse format pay?
#
# The pruned model above was stored *dense*: 4 bytes per weight, zeros included. A sparse format stores
# only the nonzeros. In *compressed sparse row* (CSR) form, an $m \times n$ float32 matrix with density
# $d$ (the fraction $1 - s$ of nonzero entries, $\text{nnz} = \operatorname{round}(d\,m\,n)$ of them) is three
# arrays: the nonzero values (float32), the column index of each (int32), and $m + 1$ row pointers (int32;
# row $i$'s entries are those from position `ptr[i]` to `ptr[i+1]`).
#
# (a) Write `csr_bytes(rows, cols, density)`, the number of bytes of these three arrays (an `int`).
# (b) Above which density is CSR *larger* than the dense matrix? Give the break-even density as a formula
# and its limit for large matrices. (c) For the first layer of this chapter's model ($512 \times 784$) at
# {fixed}`90%` sparsity, how many times smaller than dense is the CSR form? Compare with the gzipped file.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "pruning-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
def csr_bytes(rows, cols, density):
    ### BEGIN SOLUTION
    nnz = round(density * rows * cols)
    return 4 * nnz + 4 * nnz + 4 * (rows + 1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "pruning-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert csr_bytes(512, 784, 0.1) == 323_180, f"512 x 784 at density 0.1: 40,141 values and column indices plus 513 row pointers, 4 bytes each, is 323,180 bytes; got {csr_bytes(512, 784, 0.1)}"
### BEGIN HIDDEN TESTS
for ex3_args, ex3_expected in [((512, 784, 1.0), 3_213_316), ((10, 10, 0.0), 44), ((256, 10, 0.5), 11_268),
                               ((3, 4, 0.25), 40), ((1000, 1000, 0.02), 164_004)]:
    assert csr_bytes(*ex3_args) == ex3_expected, f"csr_bytes{ex3_args}: expected {ex3_expected} bytes (8 per nonzero + 4 per row pointer), got {csr_bytes(*ex3_args)}"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "pruning-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) Each nonzero costs its value and its column index, $4 + 4 = 8$ bytes, and the row pointers add
# $4(m + 1)$: $\text{CSR} = 8\,\text{nnz} + 4(m+1) = 8\,d\,m\,n + 4(m+1)$ bytes, against $4mn$ dense.
#
# (b) CSR is larger when $8dmn + 4(m+1) > 4mn$, that is above the break-even density
# $d^* = \frac{1}{2} - \frac{m+1}{2mn}$, which tends to $\frac12$ for large matrices. Every stored weight
# carries an index as large as itself, so CSR pays only beyond 50% sparsity, and halves the size only at
# 75%; the ratio is $\frac{4mn}{8dmn + 4(m+1)} \approx \frac{1}{2d}$. (16-bit indices, or bitmask
# formats, move the break-even up; that is what hardware sparse formats do.)
#
# (c) $\text{nnz} = \operatorname{round}(0.1 \cdot 401\,408) = 40\,141$, so CSR takes
# $8 \cdot 40\,141 + 4 \cdot 513 = 323\,180$ bytes against $4 \cdot 401\,408 = 1\,605\,632$ dense: about
# $5.0\times$ smaller, i.e. $\frac{1}{2d}$. That is what gzip achieved on the dense file: both pay for the
# surviving values (which barely compress) plus the information of *where* they are.
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 (Investigate): where does global pruning cut?
#
# Prune the dense model globally and per layer to {fixed}`80%`, {fixed}`90%` and {fixed}`95%` (no fine-tuning) and report, for each,
# the sparsity of each of the three Linear layers and the test accuracy. Which layer does global pruning
# cut most, which least, and why does that help at high sparsity? (Hint: compare the typical magnitude
# $\operatorname{mean}|W_{ij}|$ of each layer with its fan-in.)

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "pruning-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
rows = []
for s in (0.8, 0.9, 0.95):
    for scope in ("layer", "global"):
        model = pruned_copy(dense, s, scope)
        per_layer = sparsity_of(model, per_layer=True)
        rows.append({"target": s, "scope": scope, **{f"layer {k}": v for k, v in per_layer.items()},
                     "test accuracy": accuracy(model, x_test, y_test)})
investigate = pd.DataFrame(rows)
print(investigate.round(4).to_string(index=False))
magnitude = {name: float(m.weight.detach().abs().mean()) for name, m in dense.named_modules() if isinstance(m, nn.Linear)}
print("mean |w| per layer:", {k: round(v, 4) for k, v in magnitude.items()},
      "fan-in:", [m.in_features for m in dense if isinstance(m, nn.Linear)])
assert magnitude["5"] > 1.5 * magnitude["1"] and magnitude["3"] > magnitude["1"]
g = investigate[investigate.scope == "global"]
assert 0.6 < g.loc[g.target == 0.9, "layer 5"].item() < 0.75
assert (g["layer 1"] > g["target"]).all() and (g["layer 5"] < g["target"]).all()
for s in (0.9, 0.95):
    by_scope = investigate[investigate.target == s].set_index("scope")["test accuracy"]
    assert by_scope["global"] > by_scope["layer"]
### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "pruning-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# Global pruning cuts the first layer (784×512) hardest, slightly above the target sparsity, and the last
# layer (256×10) least, far below it (about 68% when the target is 90% in the recorded run). The reason is
# scale: PyTorch initialises a `Linear` layer with weights of size about $1/\sqrt{\text{fan-in}}$, and
# training keeps that ordering, so the weights of the last layer (fan-in 256) are on average more than
# 1.5 times as large as those of the first (fan-in 784; about 1.7 times in the recorded run). One global threshold therefore removes mostly
# first-layer weights, where there are many redundant ones (75% of all weights sit there), and keeps the
# 2,560 weights that map features to classes, each of which matters. Per-layer pruning forces 90% or 95% on
# the last layer too, and that is where the accuracy goes: without fine-tuning, global pruning is more
# than 10 points better at 90% and 95% in the recorded run. The price: the per-layer sparsities are no
# longer chosen, so a layer with small weights can be pruned almost entirely; some recipes therefore exclude
# the first and last layers or cap each layer's sparsity.
# :::
# <!-- ### END SOLUTION -->
