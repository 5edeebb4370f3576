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
# # 1. Transfer learning: a pretrained network on 400 photographs
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part4_applications/01_transfer_learning.ipynb)
#
# Two hundred and forty-four photographs of ants and bees are far too few to train a convolutional
# network: it has millions of weights, and nothing in 244 images pins them down. But a network trained
# on ImageNet {cite}`deng2009` (1.28 million images, 1000 classes) has already learnt what edges,
# textures, legs and wings look like, and those features *transfer* {cite}`yosinski2014`. Reusing
# them turns an impossible optimization problem into an easy one: instead of fitting 2.2 million
# convolution weights we fit a linear classifier on 1280 fixed features, a convex problem that
# trains in a second.
#
# This chapter covers
#
# * the real data (the ants-versus-bees set of the PyTorch tutorial) and the real weights
#   (MobileNetV2 {cite}`sandler2018` from Keras Applications), read from a cache;
# * the popular Keras snippet (a frozen VGG16 {cite}`simonyan2015`, `Flatten`, `Dense(256)`,
#   softmax) and the five things it gets wrong, each fixed and explained;
# * the cost of a base network: VGG16 against MobileNetV2 in parameters and multiply-adds;
# * feature caching: run the frozen base once, then train the head in seconds;
# * three regimes on the same split, with data augmentation: training from scratch, feature
#   extraction, fine-tuning; learning curves and a table of accuracy and seconds;
# * the same feature extraction in PyTorch, with a companion optimizer;
# * the photographs the network still gets wrong.

# %% tags=["hide-input"]
# Setup: on Colab (or anywhere companion is missing) install the course package.
try:
    import companion
except ImportError:
    %pip install -q "dl-optimization-companion[torch,keras,sklearn] @ git+https://github.com/YOUR-ORG/dl-optimization-hands-on@main"
    import companion

# %% tags=["keep-when-grading"]
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from companion.quiet import quiet_tensorflow

with quiet_tensorflow():  # TensorFlow's C++ start-up messages stay off the page
    import keras

from companion import optim, transfer_learning
from companion.data import HYMENOPTERA_CLASSES, load_hymenoptera
from companion.glue import glue
from companion.plotting import plot_histories, use_course_style
from companion.reproducibility import pick_device, seed_everything
from companion.training import accuracy, as_tensors, train_classifier

use_course_style()
seed_everything(0)
device = pick_device()  # for the PyTorch part; Keras uses a GPU by itself when there is one
print("Keras", keras.__version__, "backend", keras.backend.backend(), "| torch device:", device)

# %% [markdown]
# ## The data: ants and bees
#
# `load_hymenoptera` fetches
# [`hymenoptera_data.zip`](https://download.pytorch.org/tutorial/hymenoptera_data.zip) (47 MB)
# once, checks its sha256, extracts it into the writable cache (into a temporary folder first; the
# folder is moved into place only after the file counts 124/121/70/83 have been verified) and decodes every photograph with Pillow: the
# shorter side is resized to `IMAGE_SIZE`, then a centred square is cropped, as in ImageNet
# evaluation. The decoded images are kept in memory, once, as `uint8`.
#
# One file in `train/ants` is not an ant: `imageNotFound.gif` is the placeholder a photo site serves
# for a deleted picture. A folder loader that reads every image file (Keras'
# `image_dataset_from_directory` reads GIFs) trains on it with the label *ant*;
# `load_hymenoptera` drops it by default, so the training split has 244 images.
#
# **Input size.** MobileNetV2's ImageNet weights were trained at 224 pixels, and we use 224. A
# smaller input is tempting on a CPU (176 pixels cost $(176/224)^2 \approx 0.62$ of the
# computation), and because the network is fully convolutional up to its global pooling the same
# weights run at any size (Keras warns that it falls back to the 224 weights). But the features
# degrade: the course's benchmark (`python -m companion.bench transfer_learning`) measures a linear classifier
# on 224-, 176- and 144-pixel features, and the accuracy drops with the size, fast below 176 pixels,
# where ants and bees become too small for filters tuned at 224. On 153 validation images the
# accuracy at 224 pixels ({glue:text}`cached_acc` for the head below) is above 93 %, so we keep the
# native size.

# %%
IMAGE_SIZE = 224
start = time.perf_counter()
x_train_raw, y_train, train_paths = load_hymenoptera("train", IMAGE_SIZE)
x_val_raw, y_val, val_paths = load_hymenoptera("val", IMAGE_SIZE)
load_seconds = time.perf_counter() - start
print(f"train {x_train_raw.shape}, val {x_val_raw.shape}, loaded in {load_seconds:.1f} s")
print("train per class:", dict(zip(HYMENOPTERA_CLASSES, np.bincount(y_train))),
      "| val per class:", dict(zip(HYMENOPTERA_CLASSES, np.bincount(y_val))))

# %% tags=["remove-input"]
assert x_train_raw.shape == (244, IMAGE_SIZE, IMAGE_SIZE, 3) and x_val_raw.shape == (153, IMAGE_SIZE, IMAGE_SIZE, 3)
assert list(np.bincount(y_train)) == [123, 121] and list(np.bincount(y_val)) == [70, 83]
assert x_train_raw.dtype == np.uint8

# %%
fig, axes = plt.subplots(2, 6, figsize=(11, 4.2))
rng = np.random.default_rng(0)
for row, label in enumerate((0, 1)):
    picks = rng.choice(np.flatnonzero(y_train == label), size=6, replace=False)
    for ax, i in zip(axes[row], picks):
        ax.imshow(x_train_raw[i])
        ax.set_title(HYMENOPTERA_CLASSES[label], fontsize=9, fontweight="normal")
        ax.axis("off")
fig.suptitle(f"Twelve of the 244 training photographs, {IMAGE_SIZE}×{IMAGE_SIZE} px: varied scale, pose and background")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The popular snippet, and what it gets wrong
#
# Search for "Keras transfer learning" and this is what you find, give or take:
#
# ```python
# base = VGG16(weights="imagenet", include_top=False, input_shape=(224, 224, 3))
# model = Sequential([base, Flatten(), Dense(256, activation="relu"), Dense(2, activation="softmax")])
# model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
# model.fit(x_train / 255.0, y_train_onehot, epochs=20)
# ```
#
# It runs, and it often scores worse than it should. The fixes:
#
# 1. **Preprocessing.** Every Keras Applications network has its own `preprocess_input`: VGG16
#    subtracts the ImageNet mean per channel in BGR order ("caffe" mode), MobileNetV2 maps pixels
#    to $[-1, 1]$. Dividing by 255 feeds the network inputs from a distribution it never saw. We
#    measure the damage below.
# 2. **The base is not frozen.** Without `base.trainable = False` the first gradient steps, driven
#    by a randomly initialised head, push large updates into the pretrained weights and wreck the
#    features we came for. Freeze first; unfreeze (part of) the base only after the head has
#    converged, with a smaller learning rate.
# 3. **BatchNorm in training mode.** MobileNetV2 (like ResNet and EfficientNet) normalizes with
#    BatchNorm. In training mode a BatchNorm layer uses the statistics of the current mini-batch and
#    updates its running mean and variance, so 32 photos of ants and bees overwrite statistics
#    estimated on ImageNet. The classic advice is to call the base with `base(x, training=False)`.
#    Beware: in Keras 3 `fit` calls the whole model with `training=True`, and that overrides the
#    nested flag (keras-team/keras#20285); BatchNorm then stays in inference mode only because
#    a layer with `trainable = False` always does. Unfreeze blocks for fine-tuning and their
#    BatchNorm layers silently start updating. `transfer_learning.unfreeze_top` therefore keeps every
#    BatchNorm layer frozen, and we still pass `training=False` (it is honoured when the model is
#    called directly, and in `tf.keras`). The course's tests check that the running statistics do
#    not move during fine-tuning.
# 4. **`Flatten` instead of pooling.** VGG16's last feature map at 224 pixels is $7 \times 7 \times 512$;
#    flattened into `Dense(256)` that is $25088 \times 256 \approx 6.4$ million weights to fit on 244
#    images. Global average pooling gives one 512-vector (1280 for MobileNetV2) and a head of a few
#    thousand weights.
# 5. **Softmax plus a loss that expects probabilities** works, but the numerically safe
#    form is a linear output layer (logits) with `from_logits=True`, as in the rest of the course.
#
# Our model is therefore
#
# $$
# x \;\xrightarrow{\text{preprocess\_input}}\; \tilde x \;\xrightarrow{\;\phi\ (\text{frozen})\;}\;
# \phi(\tilde x) \in \mathbb{R}^{1280} \;\xrightarrow{\;h_W\;}\; \text{logits} \in \mathbb{R}^{2},
# \qquad
# \min_W \; \frac{1}{n} \sum_{i=1}^{n} \ell\big(h_W(\phi(\tilde x_i)),\, y_i\big),
# $$
#
# where only the head's weights $W$ move. With a linear head this is logistic regression on fixed
# features: convex, a single minimum, quick to optimize.

# %% [markdown]
# ### Why MobileNetV2 and not VGG16
#
# The snippet uses VGG16. Its ImageNet weights are a 528 MB download
# ([Keras Applications](https://keras.io/api/applications/)), most of it the three fully connected layers
# of its classifier, and every image costs 15.5 billion
# multiply-adds; MobileNetV2 replaces full convolutions by depthwise-separable ones inside inverted
# residual blocks {cite}`sandler2018` and needs about 300 million. We build both *without* weights (`weights=None`: the architecture only) and count.
# `transfer_learning.multiply_adds` sums $H_\text{out} W_\text{out} k_h k_w C_\text{in} C_\text{out}$ over the
# convolutions (depthwise ones have no $C_\text{in}$ factor) and $n_\text{in} n_\text{out}$ over
# dense layers.

# %%
cost = {}
for name, build in [("VGG16", keras.applications.VGG16), ("MobileNetV2", keras.applications.MobileNetV2)]:
    net = build(weights=None, include_top=True, input_shape=(224, 224, 3))
    cost[name] = {"parameters": net.count_params(), "multiply-adds": transfer_learning.multiply_adds(net)}
    if name == "VGG16":
        vgg_dense = sum(layer.count_params() for layer in net.layers if isinstance(layer, keras.layers.Dense))
    del net
keras.backend.clear_session()
cost = pd.DataFrame(cost).T
cost["parameters (M)"] = cost["parameters"] / 1e6
cost["multiply-adds (G)"] = cost["multiply-adds"] / 1e9
print(cost[["parameters (M)", "multiply-adds (G)"]].round(2).to_string())
param_ratio = cost.loc["VGG16", "parameters"] / cost.loc["MobileNetV2", "parameters"]
flop_ratio = cost.loc["VGG16", "multiply-adds"] / cost.loc["MobileNetV2", "multiply-adds"]
print(f"VGG16 / MobileNetV2: {param_ratio:.0f}x the parameters, {flop_ratio:.0f}x the multiply-adds per image")

# %% tags=["remove-input"]
assert 138e6 < cost.loc["VGG16", "parameters"] < 139e6  # the published 138M
assert 3.4e6 < cost.loc["MobileNetV2", "parameters"] < 3.6e6  # 3.5M with its ImageNet classifier
assert 15e9 < cost.loc["VGG16", "multiply-adds"] < 16e9 and 0.28e9 < cost.loc["MobileNetV2", "multiply-adds"] < 0.32e9
assert param_ratio > 35 and flop_ratio > 45
assert 123e6 < vgg_dense < 124e6  # the fully connected layers that include_top=False drops

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
for ax, column, unit in zip(axes, ["parameters (M)", "multiply-adds (G)"], ["millions", "billions per 224-px image"]):
    bars = ax.bar(cost.index, cost[column], color=["tab:gray", "tab:blue"], label=list(cost.index))
    ax.set_yscale("log")
    ax.set_ylabel(f"{column.split(' (')[0]} ({unit})")
    ax.set_xlabel("network (with its ImageNet classifier)")
    ax.bar_label(bars, fmt="%.2f")
    ax.legend(fontsize=8)
fig.suptitle(f"VGG16 costs {param_ratio:.0f}x the weights and {flop_ratio:.0f}x the computation of MobileNetV2")
fig.tight_layout()
plt.show()

# %% [markdown]
# **What to notice.** Most of VGG16's weights (124 of 138 million) sit in its three fully connected
# layers, which `include_top=False` discards; its cost per image is all in the convolutions, which
# stay. On a CPU that factor of 50 is the difference between a chapter that runs in two minutes and
# one that runs for an hour.

# %% [markdown]
# ## Feature caching: run the frozen base once
#
# A frozen base called in inference mode is a fixed function $\phi$. Every epoch of head training
# would recompute exactly the same $\phi(\tilde x_i)$, so we compute them once
# (`transfer_learning.extract_features`) and train the head on a $244 \times 1280$ matrix. Training then costs
# microseconds per example instead of a full forward pass through the network.
#
# This is impossible with data augmentation: an augmented image is a new input every epoch
# (flipped, rotated, zoomed at random), so its features must be recomputed every epoch. Caching
# trades augmentation for a large speed-up; with 244 images and a linear
# head, augmentation buys little, as the table below shows.

# %%
preprocess = keras.applications.mobilenet_v2.preprocess_input
x_train = preprocess(x_train_raw.astype("float32"))  # pixels to [-1, 1], the range MobileNetV2 was trained on
x_val = preprocess(x_val_raw.astype("float32"))
print(f"after preprocess_input: [{x_train.min():.1f}, {x_train.max():.1f}]")

seed_everything(0)
base = transfer_learning.build_base("feature_extraction", IMAGE_SIZE)  # ImageNet weights, include_top=False, frozen
pooled_base = keras.Sequential([base, keras.layers.GlobalAveragePooling2D()], name="pooled_base")
start = time.perf_counter()
f_train = transfer_learning.extract_features(pooled_base, x_train, batch_size=32)
f_val = transfer_learning.extract_features(pooled_base, x_val, batch_size=32)
feature_seconds = time.perf_counter() - start
print(f"features {f_train.shape} + {f_val.shape} in {feature_seconds:.1f} s")

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def train_cached_head(f_train, f_val, epochs=30, learning_rate=1e-3, seed=0):
    """A linear head (with dropout) on cached features; returns (head, history)."""
    seed_everything(seed)
    head = transfer_learning.build_head(f_train.shape[1], 2)
    head.compile(keras.optimizers.Adam(learning_rate), LOSS, metrics=["accuracy"])
    recorder = transfer_learning.EpochHistory("head on cached features")
    head.fit(f_train, y_train, validation_data=(f_val, y_val), epochs=epochs, batch_size=32,
             verbose=0, callbacks=[recorder])
    return head, recorder.history_


cached_head, cached_history = train_cached_head(f_train, f_val)
cached_acc = cached_history.last("val_accuracy")
cached_seconds = cached_history.last("seconds")
print(f"head on cached features: val accuracy {cached_acc:.3f} after 30 epochs in {cached_seconds:.1f} s")
glue("cached_acc", f"{cached_acc:.1%}")

# %% [markdown]
# ### The preprocessing pitfall, measured
#
# Same network, same head, same training; the only change is the input scaling of the snippet
# (`x / 255`, pixels in $[0, 1]$ instead of $[-1, 1]$).

# %%
f_train_bad = transfer_learning.extract_features(pooled_base, x_train_raw.astype("float32") / 255.0)
f_val_bad = transfer_learning.extract_features(pooled_base, x_val_raw.astype("float32") / 255.0)
_, bad_history = train_cached_head(f_train_bad, f_val_bad)
bad_acc = bad_history.last("val_accuracy")

fig, ax = plt.subplots()
bad_history.name = "pixels / 255 (the snippet)"
cached_history.name = "preprocess_input (pixels in [-1, 1])"
plot_histories([cached_history, bad_history], key="val_accuracy", ax=ax, ylabel="validation accuracy",
               title=f"The model's own preprocessing: {cached_acc:.0%} instead of {bad_acc:.0%}")
ax.set_xlabel("epoch of head training (on cached features)")
plt.show()

# %% tags=["remove-input"]
assert cached_acc >= 0.93, cached_acc
assert bad_acc <= cached_acc - 0.03, (bad_acc, cached_acc)

# %% [markdown]
# **What to notice.** With the wrong scaling every input sits in the upper half of the range the
# first convolution was trained on; the features still carry information, but far less linearly
# separable information. No error, no warning, just several points of accuracy gone.

# %% [markdown]
# ## Three regimes, side by side
#
# Now the full models, trained on images with data augmentation (random horizontal flips,
# rotations of up to $\pm 36°$ and zooms of up to {fixed}`10 %`), each on the same split:
#
# 1. **From scratch**: MobileNetV2 with random weights, all 2.2 million base weights trained
#    (BatchNorm in training mode: there are no statistics to keep).
# 2. **Feature extraction**: the frozen ImageNet base and a new linear head, Adam with
#    $\eta = 10^{-3}$.
# 3. **Fine-tuning**: continue from (2) once its head has converged, unfreeze the top of the base
#    (from `block_15_expand`: the last two inverted-residual blocks and the final $1 \times 1$
#    convolution) and train with $\eta = 10^{-4}$, ten times lower: the pretrained weights are
#    already good, and a large step would destroy them before the head's gradient has any useful
#    signal to give. The BatchNorm layers stay frozen, so their statistics stay those of ImageNet.
#
# In regime 2 the base is frozen, so the validation features do not change: the callback measures
# validation accuracy with the head on the cached `f_val` instead of re-running the base on every
# validation image each epoch. Regimes 1 and 3 change the base and must evaluate the full model.

# %%
augmentation = keras.Sequential(
    [keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.1), keras.layers.RandomZoom(0.1)],
    name="augmentation",
)
FE_EPOCHS, FT_EPOCHS, SCRATCH_EPOCHS = 5, 3, 1
results = {}

seed_everything(0)
head = transfer_learning.build_head(f_train.shape[1], 2)
fe_model = transfer_learning.build_transfer_model(base, head, "feature_extraction", augmentation=augmentation)
fe_model.compile(keras.optimizers.Adam(1e-3), LOSS, metrics=["accuracy"])


def head_on_cached_val():
    logits = head.predict(f_val, verbose=0)
    return {"val_accuracy": float(np.mean(logits.argmax(axis=1) == y_val))}


fe_recorder = transfer_learning.EpochHistory("feature extraction", validate=head_on_cached_val)
print(f"trainable weights: {sum(np.prod(w.shape) for w in fe_model.trainable_weights):,}")
fe_model.fit(x_train, y_train, epochs=FE_EPOCHS, batch_size=32, verbose=2, callbacks=[fe_recorder])
fe_history = fe_recorder.history_
results["feature extraction"] = (fe_history.last("val_accuracy"), fe_history.last("seconds"))

# %% tags=["remove-input"]
assert np.isclose(head_on_cached_val()["val_accuracy"],
                  np.mean(fe_model.predict(x_val, verbose=0).argmax(axis=1) == y_val), atol=1e-9)

# %%
n_tensors = transfer_learning.unfreeze_top(base, "block_15_expand")
fe_model.compile(keras.optimizers.Adam(1e-4), LOSS, metrics=["accuracy"])  # recompile: trainability changed
print(f"fine-tuning {n_tensors} weight tensors, "
      f"{sum(np.prod(w.shape) for w in fe_model.trainable_weights):,} weights")
ft_history = fe_history  # the curve continues where feature extraction stopped
ft_recorder = transfer_learning.EpochHistory("fine-tuning", ft_history, step_offset=FE_EPOCHS)
fe_model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=FT_EPOCHS, batch_size=32, verbose=2,
             callbacks=[ft_recorder])
ft_probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(fe_model.predict(x_val, verbose=0)))
ft_acc = float(np.mean(ft_probabilities.argmax(axis=1) == y_val))
results["fine-tuning (seconds incl. FE)"] = (ft_acc, ft_history.last("seconds"))

# %%
seed_everything(0)
scratch_base = transfer_learning.build_base("scratch", IMAGE_SIZE)
scratch_model = transfer_learning.build_transfer_model(scratch_base, transfer_learning.build_head(1280, 2), "scratch",
                                            augmentation=augmentation)
scratch_model.compile(keras.optimizers.Adam(1e-3), LOSS, metrics=["accuracy"])
scratch_recorder = transfer_learning.EpochHistory("from scratch")
scratch_model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=SCRATCH_EPOCHS, batch_size=32,
                  verbose=2, callbacks=[scratch_recorder])
scratch_history = scratch_recorder.history_
results["from scratch"] = (scratch_history.last("val_accuracy"), scratch_history.last("seconds"))
results["head on cached features"] = (cached_acc, feature_seconds + cached_seconds)

# %%
table = pd.DataFrame(results, index=["val accuracy", "training seconds"]).T
table["val accuracy"] = table["val accuracy"].map("{:.1%}".format)
table["training seconds"] = table["training seconds"].map("{:.0f}".format)
print(table.to_string())

fig, ax = plt.subplots()
steps, values = fe_history.series("val_accuracy")
ax.plot(steps[:FE_EPOCHS], values[:FE_EPOCHS], marker="o", label="feature extraction (frozen base)")
ax.plot(steps[FE_EPOCHS - 1:], values[FE_EPOCHS - 1:], marker="o", label="fine-tuning the top blocks, η/10")
steps, values = scratch_history.series("val_accuracy")
ax.plot(steps, values, marker="o", label="from scratch (random weights)")
ax.axhline(cached_acc, color="gray", linestyle="--", label="linear head on cached features")
ax.axhline(np.mean(y_val == 1), color="black", linestyle=":", label="always 'bees' (majority class)")
ax.set_xlabel("epoch")
ax.set_ylabel("validation accuracy")
ax.set_ylim(0.3, 1.0)
ax.set_title("Pretrained features win at once; from scratch stays at chance")
ax.legend(fontsize=8, loc="lower right")
plt.show()

# %% tags=["remove-input"]
fe_acc = results["feature extraction"][0]
scratch_acc = results["from scratch"][0]
assert fe_acc >= 0.93, fe_acc
glue("fe_acc", f"{fe_acc:.1%}")
assert ft_acc >= 0.93 and ft_acc >= fe_acc - 0.02, (ft_acc, fe_acc)
assert scratch_acc <= 0.65 and scratch_acc < fe_acc - 0.25, scratch_acc
assert feature_seconds + cached_seconds < results["feature extraction"][1]
assert cached_acc >= fe_acc - 0.02, (cached_acc, fe_acc)

# %% [markdown]
# **What to notice.**
#
# * Feature extraction reaches {glue:text}`fe_acc` within five epochs, over 93 %; fine-tuning keeps it
#   there (on 153 validation images one photo is {fixed}`0.65 points`, so differences of a point or
#   two are noise).
#   Fine-tuning pays off with more data, or when the new images differ more from ImageNet
#   {cite}`yosinski2014`; ants and bees *are* ImageNet classes.
# * From scratch the network does not learn anything useful in its epoch (an epoch costs it three
#   times a frozen-base epoch, since every layer is back-propagated; we give it one, because many
#   more would not change the verdict on this budget): it predicts (almost) one class. Part of the reason is BatchNorm: Keras' MobileNetV2 updates its running statistics
#   with momentum 0.999, so after its 8 steps they are still mostly their initial values and the
#   network in inference mode sees badly normalized activations. With 244 images it would overfit
#   long before it generalized anyway.
# * The cached-feature head matches the augmented feature extraction at a fraction of the cost.

# %% [markdown]
# ## The same idea in PyTorch
#
# Feature extraction does not care which framework trains the head. We hand the cached Keras
# features to PyTorch and train a linear layer with the course's loop, `train_classifier`, and the
# reference Adam of `companion.optim` (which `train_classifier` wraps in `ReferenceOptimizer`, the
# `torch.optim` interface). In a pure PyTorch project the features would come from
# `torchvision.models.mobilenet_v2(weights="IMAGENET1K_V1")` with its classifier replaced by
# `nn.Identity()`, under `model.eval()` and `torch.no_grad()`: the same two pitfalls (eval mode for
# BatchNorm, the model's own normalization) in different clothes.

# %%
torch.manual_seed(0)
mean, std = f_train.mean(axis=0), f_train.std(axis=0) + 1e-6  # standardize with training statistics only
xt_train, yt_train = as_tensors((f_train - mean) / std, y_train, device)
xt_val, yt_val = as_tensors((f_val - mean) / std, y_val, device)
torch_head = torch.nn.Linear(f_train.shape[1], 2).to(device)
torch_history = train_classifier(torch_head, optim.adam(1e-3), xt_train, yt_train, x_val=xt_val, y_val=yt_val,
                                 epochs=20, batch_size=32, name="PyTorch linear head", progress=False)
torch_acc = accuracy(torch_head, xt_val, yt_val)
print(f"PyTorch linear head on the cached features: val accuracy {torch_acc:.3f}")

# %% tags=["remove-input"]
assert torch_acc >= 0.93, torch_acc

# %%
fig, ax = plt.subplots()
plot_histories({"PyTorch, companion Adam": torch_history}, key="val_accuracy", ax=ax, ylabel="validation accuracy",
               title=f"The same features, a PyTorch head: {torch_acc:.0%} validation accuracy")
ax.set_xlabel("optimizer step (mini-batches of 32)")
plt.show()

# %% [markdown]
# ## What the fine-tuned network gets wrong

# %%
predictions = ft_probabilities.argmax(axis=1)
n_wrong = int(np.sum(predictions != y_val))
fig = transfer_learning.plot_misclassified(x_val_raw, y_val, predictions, HYMENOPTERA_CLASSES, probabilities=ft_probabilities,
                                title=f"The {n_wrong} validation photos the fine-tuned network misclassifies")
plt.show()

# %% tags=["remove-input"]
assert n_wrong == round((1 - ft_acc) * len(y_val))

# %% [markdown]
# **What to notice.** The errors are rarely absurd: tiny insects in a large scene (the centre crop
# makes them tinier), unusual viewpoints, a bee-like fly or a winged ant,
# drawings rather than photos. Some are confidently wrong; a probability of 0.9 from a network
# fitted on 244 images is not a calibrated {fixed}`90 %`.

# %% [markdown]
# ## Pitfalls
#
# * **Skipping `preprocess_input`**, or using another network's (VGG's "caffe" mean subtraction for
#   MobileNetV2): silent loss of accuracy, measured above.
# * **Not freezing the base** before the head has converged, and **fine-tuning with the original
#   learning rate**: the random head's gradients destroy the pretrained features.
# * **BatchNorm in training mode** on small batches of a small data set: call the base with
#   `training=False` *and* keep the BatchNorm layers frozen when you unfreeze blocks (Keras 3's
#   `fit` overrides the nested flag).
# * **`Flatten` on the feature map**: millions of head weights to fit on a few hundred images.
# * **Caching features and augmenting**: the cache holds the features of the un-augmented images;
#   augmentation after the base does nothing sensible. Choose one.
# * **Trusting a folder of files**: a placeholder GIF labelled *ant* sits in the training set.
#
# ## Summary
#
# * A network pretrained on ImageNet turns 244 photographs into a problem a linear classifier
#   solves: over 93 % validation accuracy ({glue:text}`cached_acc` here), against chance for the
#   same network trained from scratch.
# * Freeze the base, call it in inference mode, pool, and train a small head on logits; then, if
#   there is data to justify it, unfreeze the top blocks with a learning rate 10 to 100 times lower
#   (ten here, a hundred in [the Keras guide](https://keras.io/guides/transfer_learning/)).
# * Without augmentation, compute the frozen base's features once: head training then takes
#   seconds, in Keras or PyTorch alike.
# * The base's cost matters: MobileNetV2 gives ImageNet features for 1/50 of VGG16's computation.

# %% [markdown]
# ## Exercises
#
# ### Exercise 1 — Implement it: a classifier with no training at all
#
# If the features are good, even the simplest classifier works. Write
# `nearest_class_mean(train_features, train_labels, features)`: compute the mean feature vector of
# each class, $\mu_c = \frac{1}{n_c} \sum_{i: y_i = c} \phi_i$, normalize every mean and every query
# to unit length, and predict the class whose mean has the largest cosine similarity
# $\langle \phi / \lVert\phi\rVert, \mu_c / \lVert\mu_c\rVert \rangle$. Return an `int64` array of
# labels, one per row of `features`. Raise a `ValueError` naming `features` when its number of
# columns differs from `train_features`'.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "transfer-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
def nearest_class_mean(train_features, train_labels, features):
    """Predict the class whose (normalized) mean training feature is most cosine-similar."""
    ### BEGIN SOLUTION
    train_features, features = np.asarray(train_features, dtype=float), np.asarray(features, dtype=float)
    train_labels = np.asarray(train_labels)
    if features.ndim != 2 or features.shape[1] != train_features.shape[1]:
        raise ValueError(f"features must have {train_features.shape[1]} columns, got shape {features.shape}")
    classes = np.unique(train_labels)
    means = np.stack([train_features[train_labels == c].mean(axis=0) for c in classes])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    queries = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    return classes[np.argmax(queries @ means.T, axis=1)].astype(np.int64)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "transfer-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error
# Three well-separated clusters of 5-dimensional "features": every point is nearest its own class mean.
rng_check = np.random.default_rng(3)
centres = rng_check.normal(size=(3, 5)) * 4
labels_check = rng_check.integers(0, 3, size=60)
feats_check = centres[labels_check] + rng_check.normal(size=(60, 5)) * 0.1
predicted_check = nearest_class_mean(feats_check, labels_check, feats_check)
assert isinstance(predicted_check, np.ndarray) and predicted_check.dtype == np.int64, (
    f"return an int64 NumPy array, got {type(predicted_check).__name__} {getattr(predicted_check, 'dtype', '')}")
assert predicted_check.shape == (60,), f"one label per row of features: expected shape (60,), got {predicted_check.shape}"
assert np.array_equal(predicted_check, labels_check), (
    f"{int(np.sum(predicted_check != labels_check))} of 60 points of well-separated clusters got the wrong class")
### BEGIN HIDDEN TESTS
# scale of a query does not matter (cosine similarity)
assert np.array_equal(nearest_class_mean(feats_check, labels_check, 7.0 * feats_check[:5]), labels_check[:5]), (
    "scaling a query must not change its class (cosine similarity)")
expect_error(lambda: nearest_class_mean(feats_check, labels_check, np.zeros((2, 4))), ValueError, "features",
             when="nearest_class_mean with training features of 5 columns and queries of 4")
### END HIDDEN TESTS

# %% [markdown]
# On the chapter's MobileNetV2 features, with no training at all:

# %%
ncm_predictions = nearest_class_mean(f_train, y_train, f_val)
ncm_acc = float(np.mean(ncm_predictions == y_val))
print(f"nearest class mean on the MobileNetV2 features: {ncm_acc:.3f} validation accuracy")
assert ncm_acc >= 0.85, "the pretrained features should make the class means far apart"

# %% [markdown]
# ### Exercise 2 — Implement it: discriminative learning rates for fine-tuning
#
# The fine-tuning above used one learning rate, $10^{-4}$, for the unfrozen blocks and the head
# alike. A common refinement gives the pretrained weights a smaller rate than the new head
# (*discriminative learning rates* {cite}`howard2018`): the head starts from random weights and
# must move far, the base only needs small corrections. In PyTorch this is one optimizer with two
# *parameter groups*. Write `fine_tuning_param_groups(backbone, head, lr, backbone_factor)` for two
# `torch.nn.Module`s that
#
# * freezes every BatchNorm layer of `backbone` (every `torch.nn.modules.batchnorm._BatchNorm`:
#   `BatchNorm1d`, `BatchNorm2d`, ...): its weight and bias get `requires_grad = False`, and the
#   layer is put in evaluation mode (`.eval()`) so that a forward pass does not update its running
#   statistics;
# * returns `(groups, n_trainable)`: `groups` is a list of two dicts, in this order,
#   `{"params": [...], "lr": lr * backbone_factor}` with the backbone parameters that still require
#   a gradient (a parameter someone froze before the call stays frozen and out of the list), and
#   `{"params": [...], "lr": lr}` with all the head's parameters; `n_trainable` is the number of
#   scalar weights in the two groups (an `int`);
# * raises a `ValueError` naming `lr` unless $\mathrm{lr} > 0$, and one naming `backbone_factor`
#   unless $0 < \text{backbone\_factor} \le 1$.
#
# `torch.optim.SGD(groups, lr=...)` must accept the result and then move a backbone weight by
# $-\mathrm{lr} \cdot \text{backbone\_factor} \cdot g$ and a head weight by $-\mathrm{lr} \cdot g$,
# whatever default rate it was given.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "transfer-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
def fine_tuning_param_groups(backbone, head, lr, backbone_factor):
    """Two torch.optim parameter groups (backbone at lr * backbone_factor, head at lr), BatchNorm frozen."""
    ### BEGIN SOLUTION
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if not 0 < backbone_factor <= 1:
        raise ValueError(f"backbone_factor must be in (0, 1], got {backbone_factor!r}")
    for module in backbone.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()  # inference mode: running statistics stay those of pretraining
            for parameter in module.parameters(recurse=False):
                parameter.requires_grad_(False)
    backbone_params = [p for p in backbone.parameters() if p.requires_grad]
    head_params = list(head.parameters())
    groups = [{"params": backbone_params, "lr": lr * backbone_factor}, {"params": head_params, "lr": lr}]
    return groups, int(sum(p.numel() for group in groups for p in group["params"]))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "transfer-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error
def ex2_small_network(norm=torch.nn.BatchNorm2d):
    torch.manual_seed(0)
    backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), norm(4), torch.nn.ReLU(), torch.nn.Conv2d(4, 6, 3),
                                   norm(6), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    return backbone, torch.nn.Linear(6, 2)


def ex2_sgd_step(backbone, head, groups):
    """One torch.optim.SGD step on a fixed batch: (parameters before, gradients, parameters after, buffers)."""
    model = torch.nn.Sequential(backbone, head)
    sgd = torch.optim.SGD(groups, lr=123.0)  # the groups' own rates must win over this default
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    torch.manual_seed(1)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(5, 3, 8, 8)), torch.tensor([0, 1, 0, 1, 1]))
    sgd.zero_grad()
    loss.backward()
    grads = {name: None if p.grad is None else p.grad.clone() for name, p in model.named_parameters()}
    sgd.step()
    after = {name: p.detach().clone() for name, p in model.named_parameters()}
    moved_buffers = [name for name, b in model.named_buffers() if not torch.equal(b, buffers[name])]
    return before, grads, after, moved_buffers


ex2_backbone, ex2_head = ex2_small_network()
ex2_groups, ex2_count = fine_tuning_param_groups(ex2_backbone, ex2_head, 0.1, 0.01)
assert isinstance(ex2_groups, list) and len(ex2_groups) == 2, f"return a list of two parameter groups, got {type(ex2_groups).__name__}"
ex2_lrs = [group.get("lr") for group in ex2_groups]
assert ex2_lrs == [0.1 * 0.01, 0.1], f"group rates: expected [lr * backbone_factor, lr] = [0.001, 0.1], got {ex2_lrs}"
ex2_expected = 4 * 3 * 9 + 4 + 6 * 4 * 9 + 6 + 6 * 2 + 2  # two convolutions and the head; no BatchNorm
assert ex2_count == ex2_expected, f"trainable weights: expected {ex2_expected} (convolutions + head, BatchNorm frozen), got {ex2_count}"
ex2_before, ex2_grads, ex2_after, ex2_moved = ex2_sgd_step(ex2_backbone, ex2_head, ex2_groups)
for ex2_name, ex2_rate in [("0.0.weight", 0.001), ("0.3.bias", 0.001), ("1.weight", 0.1), ("1.bias", 0.1)]:
    ex2_err = float((ex2_after[ex2_name] - (ex2_before[ex2_name] - ex2_rate * ex2_grads[ex2_name])).abs().max())
    assert ex2_err < 1e-7, f"{ex2_name}: torch.optim.SGD did not step with rate {ex2_rate} (off by {ex2_err:.1e})"
for ex2_name in ["0.1.weight", "0.1.bias", "0.4.weight", "0.4.bias"]:
    assert torch.equal(ex2_after[ex2_name], ex2_before[ex2_name]), f"the BatchNorm parameter {ex2_name} moved: it must be frozen"
assert not ex2_moved, f"BatchNorm running statistics changed in the forward pass (put the layers in eval mode): {ex2_moved}"
### BEGIN HIDDEN TESTS
# a convolution frozen before the call stays frozen; BatchNorm1d counts too; backbone_factor = 1 is allowed
ex2_backbone, ex2_head = ex2_small_network()
ex2_backbone[0].weight.requires_grad_(False)
ex2_groups, ex2_count = fine_tuning_param_groups(ex2_backbone, ex2_head, 3e-4, 1.0)
assert ex2_count == ex2_expected - 4 * 3 * 9, f"a weight frozen before the call stays out: expected {ex2_expected - 108}, got {ex2_count}"
assert all(p is not ex2_backbone[0].weight for p in ex2_groups[0]["params"]), "a parameter frozen before the call must stay out of the groups"
assert [group["lr"] for group in ex2_groups] == [3e-4, 3e-4], f"backbone_factor = 1: both groups at lr, got {[g['lr'] for g in ex2_groups]}"
ex2_before, ex2_grads, ex2_after, ex2_moved = ex2_sgd_step(ex2_backbone, ex2_head, ex2_groups)
assert torch.equal(ex2_after["0.0.weight"], ex2_before["0.0.weight"]), "the frozen convolution weight moved"
assert not ex2_moved, f"BatchNorm running statistics changed: {ex2_moved}"
ex2_mlp = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.BatchNorm1d(7), torch.nn.ReLU())
ex2_groups, ex2_count = fine_tuning_param_groups(ex2_mlp, torch.nn.Linear(7, 3), 1e-2, 0.1)
assert ex2_count == 5 * 7 + 7 + 7 * 3 + 3, f"BatchNorm1d must be frozen too: expected 66 trainable weights, got {ex2_count}"
assert not ex2_mlp[1].training and not ex2_mlp[1].weight.requires_grad, "BatchNorm1d must be frozen and in eval mode"
assert abs(ex2_groups[0]["lr"] - 1e-3) < 1e-15, f"backbone rate: expected 1e-3, got {ex2_groups[0]['lr']}"
torch.optim.Adam(ex2_groups, lr=1.0)  # the groups are valid for any torch optimizer
for ex2_kwargs, ex2_arg in [({"lr": 0.0, "backbone_factor": 0.1}, "lr"), ({"lr": -1e-3, "backbone_factor": 0.1}, "lr"),
                            ({"lr": 1e-3, "backbone_factor": 0.0}, "backbone_factor"),
                            ({"lr": 1e-3, "backbone_factor": 2.0}, "backbone_factor")]:
    expect_error(lambda: fine_tuning_param_groups(*ex2_small_network(), **ex2_kwargs), ValueError, ex2_arg,
                 when=f"fine_tuning_param_groups(backbone, head, lr={ex2_kwargs['lr']}, backbone_factor={ex2_kwargs['backbone_factor']})")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 — Derive it: how many weights the new head has
#
# (a) A linear head (one `Dense` layer, with bias) on $F$ pooled features for $C$ classes: how many
# weights does it have? And a head with one hidden layer of $H$ units,
# `Dense(H, relu) -> Dense(C)`? Write `head_parameter_count(features, classes, hidden=0)` (with
# `hidden=0` meaning no hidden layer; dropout has no weights). (b) MobileNetV2 without its classifier
# has 2,257,984 weights (2,223,872 trainable, 34,112 BatchNorm moving means and variances). What
# share of the feature-extraction model's weights does our two-class head train? Adding the
# ImageNet classifier (1000 classes) to the base gives the model's published total: check it.
# (c) The popular snippet puts `Flatten -> Dense(256) -> Dense(2)` on VGG16's $7 \times 7 \times
# 512$ feature map. How many weights does its head have, and how many would a linear head on
# globally pooled VGG16 features (512 of them) have?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "transfer-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
def head_parameter_count(features, classes, hidden=0):
    ### BEGIN SOLUTION
    if hidden == 0:
        return features * classes + classes
    return features * hidden + hidden + hidden * classes + classes
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "transfer-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert head_parameter_count(1280, 2) == 2_562, f"a linear head on 1280 features, 2 classes: F C + C = 2562, got {head_parameter_count(1280, 2)}"
### BEGIN HIDDEN TESTS
for ex3_args, ex3_expected in [((1280, 1000), 1_281_000), ((512, 2), 1_026), ((7 * 7 * 512, 2, 256), 6_423_298),
                               ((10, 3, 4), 59), ((1, 1), 2)]:
    assert head_parameter_count(*ex3_args) == ex3_expected, (
        f"head_parameter_count{ex3_args}: expected {ex3_expected}, got {head_parameter_count(*ex3_args)}")
for ex3_hidden in (0, 64):  # the chapter's own Keras head
    ex3_keras = transfer_learning.build_head(1280, 2, hidden_units=ex3_hidden).count_params()
    assert head_parameter_count(1280, 2, ex3_hidden) == ex3_keras, (
        f"hidden={ex3_hidden}: Keras counts {ex3_keras}, got {head_parameter_count(1280, 2, ex3_hidden)}")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "transfer-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) A `Dense` layer from $F$ inputs to $C$ outputs has an $F \times C$ kernel and $C$ biases:
# $FC + C = (F + 1)C$ weights. With a hidden layer: $(F + 1)H + (H + 1)C$.
#
# (b) Our head: $1281 \cdot 2 = 2562$ weights. The feature-extraction model holds
# $2\,257\,984 + 2\,562 = 2\,260\,546$, of which the optimizer trains $2562 / 2\,260\,546 \approx
# 0.11\,\%$ (the `trainable weights` printed above). The ImageNet classifier is
# $1281 \cdot 1000 = 1\,281\,000$ weights, and $2\,257\,984 + 1\,281\,000 = 3\,538\,984$, the 3.5
# million of MobileNetV2 in the cost table: more than a third of the full network is its classifier.
#
# (c) The snippet's head: $25\,088 \cdot 256 + 256 + 256 \cdot 2 + 2 = 6\,423\,298$ weights, to be
# fitted on 244 images, against $513 \cdot 2 = 1026$ after global average pooling, a factor of
# about 6000: some 26,000 weights per training image against about 4.
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 — Investigate: how many labelled photos does transfer learning need?
#
# Train a linear classifier on the cached features (scikit-learn's `LogisticRegression` fits one in
# milliseconds) with only $k \in \{2, 5, 10, 25, 60, 121\}$ training photos per class, three
# random subsets per $k$, and plot validation accuracy against $k$. How many photos per class reach
# {fixed}`90 %`? What does this say about where the "knowledge" of the classifier comes from, and when
# would you expect fine-tuning to start paying off?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "transfer-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
from sklearn.linear_model import LogisticRegression  # a fast, deterministic linear head for many small fits

ks = [2, 5, 10, 25, 60, 121]
ex4_acc = {k: [] for k in ks}
for k in ks:
    for repeat in range(3):
        pick_rng = np.random.default_rng(100 + repeat)
        idx = np.concatenate([pick_rng.choice(np.flatnonzero(y_train == c), size=k, replace=False) for c in (0, 1)])
        clf = LogisticRegression(C=1.0, max_iter=2000).fit(f_train[idx], y_train[idx])
        ex4_acc[k].append(clf.score(f_val, y_val))
means_k = [np.mean(ex4_acc[k]) for k in ks]
fig, ax = plt.subplots()
ax.errorbar(ks, means_k, yerr=[np.std(ex4_acc[k]) for k in ks], marker="o", capsize=3,
            label="linear head on MobileNetV2 features (3 subsets)")
ax.axhline(0.5, color="black", linestyle=":", label="chance")
ax.set_xscale("log")
ax.set_xlabel("training photos per class")
ax.set_ylabel("validation accuracy")
ax.set_title("A few dozen photos per class reach 90 % with pretrained features")
ax.legend()
plt.show()
print({k: round(float(m), 3) for k, m in zip(ks, means_k)})
assert means_k[-1] > means_k[0] and means_k[ks.index(25)] >= 0.9
### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "transfer-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# Accuracy climbs steeply and then flattens: a handful of photos per class already beats chance by a
# wide margin, and a few dozen per class come close to what all 121 give. The classifier learns
# almost nothing about ants and bees from our photos; what it needs, features that separate the two
# classes, was learnt from ImageNet's 1.28 million images, and our examples only have to place one
# hyperplane in a 1280-dimensional space where the classes already lie apart. The plateau is set by
# the features, not by the number of examples, so more photos of the same kind help little; that is
# when fine-tuning starts to pay off: with thousands of images, or images unlike ImageNet
# (microscopy, satellite views, spectrograms), where adapting the top blocks moves the plateau itself.
# :::
# <!-- ### END SOLUTION -->
