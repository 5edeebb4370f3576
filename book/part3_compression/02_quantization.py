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
# # 2. Quantization
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part3_compression/02_quantization.ipynb)
#
# A trained network stores every weight as a 32-bit float, yet a network rarely needs more than a
# few hundred distinct values per tensor to give the same answers. **Quantization** stores weights
# (and, in some recipes, activations) as 8-bit or 4-bit integers with a shared scale. The file
# shrinks about {fixed}`4x` at 8 bits, and on CPUs with integer vector instructions the matrix products run
# faster too. You have probably met the headline figures: [the TensorFlow Lite guide](https://www.tensorflow.org/lite/performance/post_training_quantization)
# promises dynamic-range quantization "4x smaller, 2x-3x speedup" on CPU; [the PyTorch
# tutorial](https://pytorch.org/tutorials/intermediate/dynamic_quantization_bert_tutorial.html) quantizes BERT from 438 MB to 181 MB
# at equal F1.
#
# This chapter derives the arithmetic of affine quantization {cite}`jacob2018`, implements it and
# checks it against PyTorch's own, and then applies every common recipe to the same trained MNIST
# network: post-training *dynamic* and *static* int8 quantization, *quantization-aware training*, a
# TensorFlow Lite int8 conversion, and the 4-bit NormalFloat (NF4) storage of QLoRA
# {cite}`dettmers2023`. Each result is measured against the float32 model in the same run: bytes on
# disk, CPU latency, test accuracy.

# %% tags=["hide-input"]
# Setup: on Colab (or anywhere companion is missing) install the course package.
try:
    import companion
except ImportError:
    %pip install -q "dl-optimization-companion[torch,keras] @ git+https://github.com/YOUR-ORG/dl-optimization-hands-on@main"
    import companion

# %% tags=["keep-when-grading"]
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from companion.compression import quantization as Q
from companion.compression.measure import measure_latency, model_size
from companion.compression.nf4 import NF4_LEVELS, dequantize_nf4, quantize_nf4
from companion.glue import glue
from companion.plotting import use_course_style
from companion.reproducibility import pick_device, seed_everything
from companion.training import accuracy, mnist_tensors

# torch.ao.quantization and torch.quantize_per_tensor print deprecation notices on every call in
# torch 2.13 (the tools are moving to the separate `torchao` package); they still work, so we silence them.
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*|.*quantize_per_channel.*|.*reduce_range.*")
use_course_style()
seed_everything(0)
device = pick_device()
# Every latency below is measured on one CPU thread: a small model gains little from a second thread,
# and one thread keeps the timings steady when other programs share the machine.
torch.set_num_threads(1)
print("device:", device, "| quantized engine:", torch.backends.quantized.engine)

# %% [markdown]
# ## 2.1 The arithmetic of affine quantization
#
# An 8-bit integer has 256 values; a float tensor occupies some range $[x_{\min}, x_{\max}]$. Affine
# quantization maps one onto the other with a **scale** $s > 0$ (the step between two neighbouring
# representable values) and an integer **zero point** $z$ (the integer that stands for 0.0):
#
# $$
# q = \operatorname{clamp}\!\left(\operatorname{round}\!\left(\frac{x}{s}\right) + z,\; q_{\min},\; q_{\max}\right),
# \qquad
# \hat x = s\,(q - z).
# $$
#
# Values inside the range are off by at most $s/2$; values outside are clamped. The range is first
# widened to contain 0, so that 0.0 is stored *exactly* (zero padding, ReLU outputs and pruned
# weights stay exact). Two ways to choose $(s, z)$:
#
# $$
# \text{asymmetric:}\quad s = \frac{x_{\max} - x_{\min}}{q_{\max} - q_{\min}},\quad z = q_{\min} - \operatorname{round}\!\left(\frac{x_{\min}}{s}\right);
# \qquad
# \text{symmetric:}\quad s = \frac{\max(|x_{\min}|, |x_{\max}|)}{(q_{\max} - q_{\min})/2},\quad z = 0 .
# $$
#
# Symmetric quantization wastes codes when the data are one-sided, but $z = 0$ makes the integer
# product cheaper: in $\sum_k s_w (q_{w,k} - z_w)\, s_x (q_{x,k} - z_x)$ the cross terms with $z_w$
# vanish. Hence PyTorch's usual pairing, which `companion.compression.quantization` follows:
# **qint8 symmetric** ($[-128, 127]$, $z = 0$) for weights, **quint8 affine** ($[0, 255]$) for
# activations. Our functions reproduce the observers of `torch.ao.quantization` bit for bit (the
# tests compare them); here is one check on the output range of a ReLU, $[0, 6]$:

# %%
relu_out = torch.linspace(0, 6, 1001)
print(f"{'':>22} {'scale':>9} {'zero point':>10}  distinct values used")
codes = {}
for name, symmetric in [("affine quint8", False), ("symmetric qint8", True)]:
    scale, zero_point = Q.minmax_qparams(relu_out, symmetric=symmetric)
    qmin, qmax = Q.quant_range(8, signed=symmetric)
    codes[name] = Q.quantize_affine(relu_out, scale, zero_point, qmin, qmax)
    torch_q = torch.quantize_per_tensor(relu_out, float(scale), int(zero_point), torch.qint8 if symmetric else torch.quint8)
    assert torch.equal(codes[name], torch_q.int_repr().long())  # same integers as PyTorch
    print(f"{name:>22} {float(scale):9.5f} {int(zero_point):10d}  {codes[name].unique().numel():>5}")

# %% tags=["remove-input"]
assert codes["affine quint8"].unique().numel() == 256 and codes["symmetric qint8"].unique().numel() == 128

# %% [markdown]
# On one-sided data the symmetric grid spends half its codes on negative values that never occur:
# 128 distinct values instead of 256, a step twice as coarse. The figure shows the two staircases
# and their rounding errors on the same inputs.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
zoom = relu_out <= 0.25
fine = torch.linspace(0, 0.25, 2001)  # a dense grid on a slice of the range, to draw the saw-tooth
for k, (name, symmetric) in enumerate([("affine quint8", False), ("symmetric qint8", True)]):
    scale, zero_point = Q.minmax_qparams(relu_out, symmetric=symmetric)
    qmin, qmax = Q.quant_range(8, signed=symmetric)
    x_hat = Q.dequantize_affine(codes[name], scale, zero_point)
    axes[0].step(relu_out[zoom], x_hat[zoom], where="mid", label=f"{name} (s = {float(scale):.4f})")
    fine_hat = Q.dequantize_affine(Q.quantize_affine(fine, scale, zero_point, qmin, qmax), scale, zero_point)
    axes[1].plot(fine, (fine_hat - fine) * 1e3, color=f"C{k}", label=name)
    axes[1].axhline(float(scale) / 2 * 1e3, color=f"C{k}", ls=":", lw=1)
    axes[1].axhline(-float(scale) / 2 * 1e3, color=f"C{k}", ls=":", lw=1)
axes[0].plot(relu_out[zoom], relu_out[zoom], "k:", lw=1, label="exact")
axes[0].set(xlabel="x (a ReLU output)", ylabel="dequantized value $s(q - z)$",
            title="Symmetric codes are twice as coarse on $[0, 6]$")
axes[1].set(xlabel="x (a ReLU output)", ylabel="rounding error $\\hat x - x$ ($10^{-3}$)",
            title="Error within $\\pm s/2$ (dotted): half as large for affine")
for ax in axes:
    ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# **What to notice.** The error is a saw-tooth bounded by $s/2$, never larger inside the range. This
# is why the range matters so much: one outlier that doubles $x_{\max}$ doubles the error of every
# other value. The next question is what range to use for a *weight matrix*: one for the whole
# tensor, or one per output channel.
#
# ## 2.2 The model: a Linear-heavy MLP on MNIST
#
# We train one network and compress it in every way the chapter describes. To make the {fixed}`4x` of int8
# visible, the weights must dominate the file: a 784–512–512–10 MLP has 669,706 parameters, of which
# all but 1,034 are in weight matrices. The recipe (model, the Adam of Part I, two epochs, batch 128) lives in
# `companion.compression.quantization`, shared with the benchmark script. The model carries a
# `QuantStub` and a `DeQuantStub`, identities in float, which static quantization needs later.

# %%
x_train, y_train, _, _, x_test, y_test = mnist_tensors(60_000, device=device)
x_test, y_test = x_test.cpu(), y_test.cpu()  # evaluation and timing are on the CPU
config = Q.TrainConfig()
print(config)
trained, history = Q.train_float(x_train, y_train, seed=0, config=config)
float_model = trained.cpu().eval()  # the quantized kernels are CPU kernels: compare everything there
float_acc = accuracy(float_model, x_test, y_test)
print(f"float32 test accuracy: {float_acc:.2%}")

# %% tags=["remove-input"]
assert float_acc > 0.96
assert sum(p.numel() for p in float_model.parameters()) == 669_706
assert sum(p.numel() for n, p in float_model.named_parameters() if n.endswith("bias")) == 1_034

# %% [markdown]
# ## 2.3 Per-tensor versus per-channel scales
#
# Each row of a weight matrix feeds one output neuron, and rows differ in size. With one scale for
# the whole tensor, the step is set by the largest row, and the rows with small weights are rounded
# coarsely. **Per-channel** quantization gives every row $i$ its own scale $s_i$ (and zero point),
# which costs 4 to 8 bytes per row, nothing next to the row itself. PyTorch's static recipe on x86 and
# TFLite's int8 converter both quantize weights per channel.

# %%
W = float_model.fc1.weight.detach()
qmin, qmax = Q.quant_range(8, signed=True)
rms_error = {}
for name, axis in [("per tensor", None), ("per channel", 0)]:
    scale, zero_point = Q.minmax_qparams(W, axis=axis, symmetric=True)
    W_hat = Q.dequantize_affine(Q.quantize_affine(W, scale, zero_point, qmin, qmax, axis=axis), scale, zero_point, axis=axis)
    rms_error[name] = ((W_hat - W) ** 2).mean(dim=1).sqrt()  # one value per output channel
row_range = W.abs().amax(dim=1)
order = torch.argsort(row_range)
fig, ax = plt.subplots()
for name in rms_error:
    ax.plot(rms_error[name][order] * 1e4, ".", ms=3, label=f"{name} (mean {rms_error[name].mean() * 1e4:.2f})")
ax.set(xlabel="output channel of fc1, sorted by its largest |weight|", ylabel="RMS quantization error ($10^{-4}$)",
       title="Per-channel scales cut the error of small rows")
ax.legend()
plt.show()
gain = float(rms_error["per tensor"].mean() / rms_error["per channel"].mean())
print(f"largest |w| per row: {row_range.min():.3f} to {row_range.max():.3f}; mean RMS error per tensor / per channel = {gain:.2f}")

# %% tags=["remove-input"]
assert torch.all(rms_error["per channel"] <= rms_error["per tensor"] * 1.01)
assert gain > 1.3
smallest_rows = order[: len(order) // 10]
assert (rms_error["per tensor"][smallest_rows] / rms_error["per channel"][smallest_rows]).mean() > 3  # "several times"

# %% [markdown]
# **What to notice.** With one scale the error is the same for every row (flat band): it is set by the
# largest weight of the whole matrix. Per channel, the error follows each row's own range, and the
# rows with small weights, to the left, are stored several times more precisely. For 8 bits on this
# MLP both are accurate enough; at 4 bits, or in convolutional networks with folded batch norm whose
# channel ranges differ by orders of magnitude, per-tensor weights can lose many points.
#
# ## 2.4 Post-training dynamic quantization
#
# The simplest recipe: store the weights of every `nn.Linear` as int8 (per tensor, symmetric), and at
# every call compute a scale for the *activations* from the batch at hand, quantize them, run an
# int8×int8 matrix product with int32 accumulation, and dequantize the result. Nothing to calibrate,
# one line of code: `torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)`
# (wrapped in `Q.dynamic_int8`, which works on a CPU copy). It suits models whose time goes into
# matrix products with weights: MLPs, LSTMs, Transformers.

# %%
LATENCY_BATCH = 64
x_batch = x_test[:LATENCY_BATCH]


def measure(model):
    """Size of the saved state dict, test accuracy, and the median latency of one batch of 64 (one thread)."""
    with torch.no_grad():
        return {
            "size (MB)": model_size(model).bytes / 1e6,
            "accuracy (%)": 100 * accuracy(model, x_test, y_test),
            "latency (ms)": measure_latency(model, x_batch, repeats=200, warmup=10).median_ms,
        }


dynamic_model = Q.dynamic_int8(float_model)
print(dynamic_model)
results = {"float32": measure(float_model), "int8 dynamic": measure(dynamic_model)}
pd.DataFrame(results).T.round(3)

# %%
size_ratio_dynamic = results["float32"]["size (MB)"] / results["int8 dynamic"]["size (MB)"]
speedup_dynamic = results["float32"]["latency (ms)"] / results["int8 dynamic"]["latency (ms)"]
loss_dynamic = results["float32"]["accuracy (%)"] - results["int8 dynamic"]["accuracy (%)"]
print(f"dynamic int8: {size_ratio_dynamic:.2f}x smaller, {speedup_dynamic:.2f}x faster "
      f"(batch {LATENCY_BATCH}, 1 thread), accuracy change {-loss_dynamic:+.2f} points")
glue("speedup_dynamic", f"{speedup_dynamic:.1f}x")
glue("size_ratio_dynamic", f"{size_ratio_dynamic:.2f}x")

# %% tags=["remove-input"]
assert size_ratio_dynamic >= 3.5
assert 3.8 < size_ratio_dynamic < 4.0
assert abs(loss_dynamic) <= 0.05  # at most 5 of the 10,000 test images change
assert loss_dynamic <= 0.5
assert speedup_dynamic > 1.5  # "a clear speed-up" (the glued ratio); a margin for noisy shared machines

# %% [markdown]
# **What to notice.** The file is {glue:text}`size_ratio_dynamic` smaller, nearly but not quite 4x: the biases stay float32, and each
# layer stores its scale, zero point and packing metadata. The accuracy is unchanged to within a few
# test images. The
# speed-up comes from the int8 kernels (FBGEMM on x86, using VNNI instructions where the CPU has
# them); it depends on the CPU and the batch size (Exercise 4).
#
# **Why BERT shrank only 2.4x.** [The PyTorch tutorial](https://pytorch.org/tutorials/intermediate/dynamic_quantization_bert_tutorial.html)'s
# BERT-base went from 438 MB to 181 MB.
# `quantize_dynamic(model, {nn.Linear})` quantizes *only* the module types listed: BERT's
# embeddings (a {fixed}`30,522 × 768` word table plus position and segment tables) are `nn.Embedding`s and stay
# float32. A back-of-the-envelope check reproduces the tutorial's figure:

# %%
bert_params = 438e6 / 4  # 438 MB of float32
embedding_params = 30522 * 768 + 512 * 768 + 2 * 768  # word, position, token-type tables
linear_params = bert_params - embedding_params  # (LayerNorm and biases, about 1%, counted as int8 here)
predicted_mb = (4 * embedding_params + 1 * linear_params) / 1e6
print(f"embeddings {embedding_params / 1e6:.1f} M params stay float32 ({4 * embedding_params / 1e6:.0f} MB); "
      f"{linear_params / 1e6:.1f} M Linear params -> int8 ({linear_params / 1e6:.0f} MB); total ≈ {predicted_mb:.0f} MB")

# %% tags=["remove-input"]
assert abs(predicted_mb - 181) < 5
assert 0.18 < embedding_params / bert_params < 0.25  # "a fifth of its weights"

# %% [markdown]
# ## 2.5 Post-training static quantization
#
# Dynamic quantization still converts activations between float and int8 around every layer, and
# computes their ranges at run time. **Static** quantization fixes the activation scales in advance
# by *calibration*: run a few hundred training images through the model with observers attached,
# record the ranges, then convert. The whole network then runs in int8 from the `QuantStub` to the
# `DeQuantStub`. We use the eager-mode API, which works on torch 2.13 with the `x86` backend (FBGEMM
# kernels), though it prints deprecation notices: `torch.ao.quantization` is moving to the separate
# `torchao` package, and FX graph mode to its PT2E flow. The steps, in `Q.static_int8`:
#
# 1. `model.eval()` and fuse `Linear + ReLU` pairs (`fuse_modules`), so that the ReLU is applied to
#    the int32 accumulator and no int8 tensor is produced in between;
# 2. `model.qconfig = get_default_qconfig("x86")`: weights per channel, qint8 symmetric; activations
#    quint8 affine with a histogram observer, on a 7-bit range (`reduce_range=True`, which avoids an
#    overflow in the x86 kernels' 16-bit intermediate sums);
# 3. `prepare`, run the calibration images, `convert`.

# %%
calibration_x = x_train[: config.calibration_size].cpu()  # training images, never test images
static_model = Q.static_int8(float_model, calibration_x)
print(static_model.quant, static_model.fc1, sep="\n")
results["int8 static"] = measure(static_model)
size_ratio_static = results["float32"]["size (MB)"] / results["int8 static"]["size (MB)"]
loss_static = results["float32"]["accuracy (%)"] - results["int8 static"]["accuracy (%)"]
speedup_static = results["float32"]["latency (ms)"] / results["int8 static"]["latency (ms)"]
print(f"static int8: {size_ratio_static:.2f}x smaller, {speedup_static:.2f}x faster, accuracy change {-loss_static:+.2f} points")
glue("size_ratio_static", f"{size_ratio_static:.2f}x")

# %% tags=["remove-input"]
assert size_ratio_static >= 3.5 and loss_static <= 0.5
assert speedup_static > 1.5
assert abs(float(static_model.quant.scale) - 1 / 127) < 1e-4 and int(static_model.quant.zero_point) == 0
assert 16 * 1034 <= model_size(static_model).bytes - model_size(dynamic_model).bytes < 16 * 1034 + 4000

# %% [markdown]
# **What to notice.** The `QuantStub` learned the input range: pixels in $[0, 1]$ become quint8
# with a scale near $1/127$ (7 bits) and zero point 0. The per-channel weights store a float64 scale
# and an int64 zero point per row, 16 bytes per output channel, which makes the file a little larger
# than the dynamic one. Accuracy and speed are those of dynamic quantization: on this model the
# activation conversions that static quantization removes are cheap next to the products.
#
# ## 2.6 Quantization-aware training
#
# When post-training quantization loses accuracy (small models, 4-bit weights), one fine-tunes with
# quantization *simulated* in the forward pass, so that the weights learn to sit well on the grid.
# *Fake quantization* rounds in floating point, $\hat x = s\,(q(x) - z)$; since rounding has zero
# derivative almost everywhere, the backward pass uses the **straight-through estimator**
# {cite}`jacob2018`:
#
# $$
# \frac{\partial \hat x}{\partial x} \approx \begin{cases} 1 & q_{\min} \le \operatorname{round}(x/s) + z \le q_{\max},\\ 0 & \text{otherwise (clamped).}\end{cases}
# $$
#
# Our `Q.fake_quantize` matches `torch.fake_quantize_per_tensor_affine` in value and in gradient:

# %%
x = torch.linspace(-1.5, 1.5, 601, requires_grad=True)
scale, zero_point = Q.affine_qparams(-1.0, 1.0, num_bits=3, symmetric=True)  # 3 bits, to see the steps
qmin3, qmax3 = Q.quant_range(3, signed=True)
y = Q.fake_quantize(x, scale, zero_point, qmin3, qmax3)
y.sum().backward()
x_torch = x.detach().clone().requires_grad_(True)
y_torch = torch.fake_quantize_per_tensor_affine(x_torch, float(scale), int(zero_point), qmin3, qmax3)
y_torch.sum().backward()
assert torch.equal(y, y_torch) and torch.equal(x.grad, x_torch.grad)
fig, ax = plt.subplots()
ax.plot(x.detach(), y.detach(), label="forward: fake-quantized $\\hat x$ (3 bits)")
ax.plot(x.detach(), x.grad, "--", label="backward: straight-through gradient")
ax.set(xlabel="x", ylabel="value", title="Fake quantization rounds forward, passes gradients straight through")
ax.legend()
plt.show()

# %% [markdown]
# `Q.qat_int8` fuses the layers with `fuse_modules_qat`, sets `get_default_qat_qconfig("x86")`,
# inserts the fake-quantize modules with `prepare_qat`, fine-tunes the trained float model for 150
# steps at a small learning rate, and converts.

# %%
qat_model = Q.qat_int8(float_model, x_train, y_train, seed=0, config=config)
results["int8 QAT"] = measure(qat_model)
print({k: round(v, 3) for k, v in results["int8 QAT"].items()})

# %% tags=["remove-input"]
assert results["float32"]["accuracy (%)"] - results["int8 QAT"]["accuracy (%)"] <= 0.2

# %% [markdown]
# **What to notice.** QAT is as accurate as the float model (here even a little better), but the comparison is
# not fair to post-training quantization: QAT trained for 150 more steps, and most of any gain is
# that extra training. At 8 bits this MLP has nothing to recover (static quantization already lost
# almost nothing), so QAT is not worth its cost here. It pays at 4 bits and below, and for compact
# convolutional networks such as MobileNet whose per-tensor activation ranges are wide.
#
# ## 2.7 TensorFlow Lite: full-integer int8
#
# The TFLite path readers know is post-training quantization with a *representative dataset*:
# `tf.lite.TFLiteConverter.from_keras_model`, `optimizations = [tf.lite.Optimize.DEFAULT]`, a
# generator of calibration inputs, and `TFLITE_BUILTINS_INT8` with int8 input and output. We copy our
# trained PyTorch weights into a Keras 3 model (`Dense` kernels are the transposed `nn.Linear`
# weights), so that TFLite quantizes *the same* network, and check that the copy computes the same
# logits. The `.tflite` flatbuffer is not a `torch.save` file, so we compare TFLite int8 with TFLite
# float32, like with like. On TensorFlow 2.21 the converter works; `tf.lite.Interpreter` warns that it
# is deprecated in favour of the LiteRT interpreter (`ai_edge_litert`), which reads the same files.
# Importing TensorFlow takes about ten seconds.

# %%
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow's first import: hide its C++ info lines
from companion.compression.keras_quantization import TFLiteClassifier, keras_copy, to_tflite  # imports TensorFlow

keras_model = keras_copy(float_model)
x_test_flat = x_test.reshape(len(x_test), -1).numpy()
max_logit_gap = np.abs(keras_model.predict(x_test_flat[:256], verbose=0) - float_model(x_test[:256]).detach().numpy()).max()
print(f"Keras copy vs PyTorch model: largest logit difference {max_logit_gap:.1e}")
tflite_float = to_tflite(keras_model)
tflite_int8 = to_tflite(keras_model, representative_x=calibration_x.reshape(len(calibration_x), -1).numpy(), num_samples=200)
tflite = {}
for name, flatbuffer in [("TFLite float32", tflite_float), ("TFLite int8", tflite_int8)]:
    classifier = TFLiteClassifier(flatbuffer, num_threads=1)
    tflite[name] = {
        "size (MB)": len(flatbuffer) / 1e6,
        "accuracy (%)": 100 * classifier.accuracy(x_test_flat, y_test.numpy()),
        "latency (ms)": measure_latency(classifier.logits, x_test_flat[:LATENCY_BATCH], repeats=200, warmup=10).median_ms,
    }
pd.DataFrame(tflite).T.round(3)

# %%
tfl_size_ratio = tflite["TFLite float32"]["size (MB)"] / tflite["TFLite int8"]["size (MB)"]
tfl_speedup = tflite["TFLite float32"]["latency (ms)"] / tflite["TFLite int8"]["latency (ms)"]
tfl_loss = tflite["TFLite float32"]["accuracy (%)"] - tflite["TFLite int8"]["accuracy (%)"]
print(f"TFLite int8: {tfl_size_ratio:.2f}x smaller, {tfl_speedup:.2f}x faster than TFLite float32, "
      f"accuracy change {-tfl_loss:+.2f} points")
glue("tfl_size_ratio", f"{tfl_size_ratio:.1f}x")

# %% tags=["remove-input"]
assert max_logit_gap < 1e-3
assert abs(tflite["TFLite float32"]["accuracy (%)"] - results["float32"]["accuracy (%)"]) < 0.05
assert tfl_size_ratio >= 3.5 and tfl_loss <= 0.5
assert 3.7 < tfl_size_ratio < 3.95
assert abs(tflite["TFLite float32"]["size (MB)"] / results["float32"]["size (MB)"] - 1) < 0.01
assert tfl_speedup > 1.5

# %% [markdown]
# **What to notice.** TFLite's own promise for full integer quantization, "4x smaller, 3x+ speedup"
# ([the TFLite guide](https://www.tensorflow.org/lite/performance/post_training_quantization)), holds for the size at this scale: the
# int8 flatbuffer is {glue:text}`tfl_size_ratio` smaller than the float one and, on one thread, clearly faster (the
# ratio printed above; TFLite's float path already uses the optimized XNNPACK kernels, so this is a
# fair comparison). TFLite too quantizes the `Dense` weights per output channel, and stores the
# biases as int32.
# The TFLite float32 file and the PyTorch state dict have almost the same size: both are essentially
# the raw weights.
#
# ## 2.8 4-bit NormalFloat (NF4)
#
# QLoRA {cite}`dettmers2023` stores the frozen weights of a large language model in 4 bits. With
# only 16 levels, *where* they sit matters. Trained weights are roughly normal, so NF4 places its
# levels at quantiles of $\mathcal N(0, 1)$, rescaled to $[-1, 1]$, with an exact zero; each block of
# 64 consecutive weights is divided by its absolute maximum $m_b$ (stored in float32), and each
# weight is stored as the index of the nearest level:
#
# $$
# c = \arg\min_k \left| \frac{w}{m_b} - q_k \right|, \qquad \hat w = m_b\, q_c,
# \qquad \text{storage: } 4 + \tfrac{32}{64} = 4.5 \text{ bits per weight.}
# $$
#
# (QLoRA's *double quantization* also quantizes the $m_b$, down to about 4.127 bits; left out here.)
# The figure compares NF4 with a uniform 4-bit grid using the same blocks and the same absmax, on
# the weights of `fc2`.

# %%
W2 = float_model.fc2.weight.detach()
nf4 = quantize_nf4(W2, block_size=64)
nf4_error = (dequantize_nf4(nf4) - W2).pow(2).mean().sqrt()
blocks = W2.reshape(-1, 64)
absmax = blocks.abs().amax(dim=1)
int4_scale = absmax / 7  # uniform symmetric 4-bit levels -7..7 with the same absmax per block
q4min, q4max = Q.quant_range(4, signed=True)
int4_zero = torch.zeros(len(blocks), dtype=torch.int64)
int4_codes = Q.quantize_affine(blocks, int4_scale, int4_zero, q4min, q4max, axis=0)  # one scale per block
int4_hat = Q.dequantize_affine(int4_codes, int4_scale, int4_zero, axis=0)
int4_error = (int4_hat.reshape(W2.shape) - W2).pow(2).mean().sqrt()
fig, ax = plt.subplots()
ax.hist((blocks / absmax[:, None]).flatten().numpy(), bins=120, density=True, color="0.75",
        label="fc2 weights / block absmax")
for k, level in enumerate(NF4_LEVELS):
    ax.axvline(level, color="C0", lw=1, label="NF4 levels" if k == 0 else None)
for k, level in enumerate(np.arange(-7, 8) / 7):
    ax.axvline(level, color="C1", lw=1, ls=":", label="uniform int4 levels" if k == 0 else None)
ax.set(xlabel="normalized weight $w / m_b$", ylabel="density",
       title=f"NF4 levels crowd where weights are (RMS error {nf4_error / int4_error:.2f}x of int4)")
ax.legend()
plt.show()
print(f"RMS error: NF4 {nf4_error:.2e}, uniform int4 {int4_error:.2e}; NF4 bits per weight {nf4.bits_per_weight:.2f}")

# %% tags=["remove-input"]
assert nf4_error < 0.9 * int4_error
assert abs(nf4.bits_per_weight - 4.5) < 1e-9

# %% [markdown]
# `Q.nf4_weight_only` replaces every `nn.Linear` by an `NF4Linear` that keeps the packed codes and the
# block maxima as buffers (so `torch.save` stores 4.5 bits per weight) and, at every call,
# *dequantizes the weight to float32* and runs an ordinary float product. That is all NF4 is for:
# storage. On a GPU, bitsandbytes fuses the dequantization into the kernel and the memory saved lets
# a 65B-parameter model be fine-tuned on one 48 GB card {cite}`dettmers2023`; on a CPU, the extra dequantization makes
# every call *slower* than float32: NF4 here saves size, not time.

# %%
nf4_model = Q.nf4_weight_only(float_model, block_size=64)
results["NF4 (weight-only)"] = measure(nf4_model)
print({k: round(v, 3) for k, v in results["NF4 (weight-only)"].items()})

# %% tags=["remove-input"]
nf4_size_ratio = results["float32"]["size (MB)"] / results["NF4 (weight-only)"]["size (MB)"]
glue("nf4_size_ratio", f"{nf4_size_ratio:.1f}x")
assert 6.5 < nf4_size_ratio < 7.5
assert results["float32"]["accuracy (%)"] - results["NF4 (weight-only)"]["accuracy (%)"] <= 1.0
assert results["NF4 (weight-only)"]["latency (ms)"] > results["float32"]["latency (ms)"]

# %% [markdown]
# ## 2.9 The whole picture
#
# Size is the byte count of `torch.save(model.state_dict())` (the same serialization for every
# PyTorch row; the TFLite rows are flatbuffers, compared with each other). Latency is the median of
# 200 calls on a batch of 64 test images, one CPU thread. Accuracy is on the full MNIST test set
# (10,000 images).

# %%
table = pd.DataFrame({**results, **tflite}).T
# each row against its own float32 baseline: the PyTorch float model, or the TFLite float flatbuffer
baseline = table.loc[np.where(table.index.str.startswith("TFLite"), "TFLite float32", "float32")].to_numpy()
table["x smaller"] = baseline[:, 0] / table["size (MB)"]
table["x faster"] = baseline[:, 2] / table["latency (ms)"]
int8_ratios = table.loc[table.index.str.contains("int8"), "x smaller"]
glue("int8_ratio_low", f"{int8_ratios.min():.2f}x")
glue("int8_ratio_high", f"{int8_ratios.max():.2f}x")
table.round(3)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
colors = ["0.5" if name.endswith("float32") else "C0" if "int8" in name else "C1" for name in table.index]
axes[0].barh(table.index, table["size (MB)"], color=colors)
axes[0].set(xlabel="size on disk (MB)", title="int8 is ~4x smaller, NF4 ~7x")
axes[1].barh(table.index, table["latency (ms)"], color=colors)
axes[1].set(xlabel="median latency, batch 64, 1 thread (ms)", title="int8 kernels are faster; NF4 on CPU is slower")
for ax in axes:
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
axes[1].set_yticklabels([])
handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in ("0.5", "C0", "C1")]
axes[1].legend(handles, ["float32", "int8", "4-bit NF4"], loc="lower right")
plt.tight_layout()
plt.show()

# %% [markdown]
# **The targets, checked.** Every PyTorch int8 variant is at least 3.5x smaller than float32 and within 0.5
# point of its test accuracy (at worst {glue:text}`int8_worst_ratio` smaller and
# {glue:text}`int8_worst_change` in accuracy); the measured speed-up of dynamic quantization on this Linear-heavy
# model is printed below (it varies with the CPU, the batch size and the load of the machine, so the
# exact figure varies from one machine to the next).

# %% tags=["remove-input"]
pytorch_int8 = ["int8 dynamic", "int8 static", "int8 QAT"]
for name in pytorch_int8:
    assert table.loc[name, "x smaller"] >= 3.5, name
    assert results["float32"]["accuracy (%)"] - table.loc[name, "accuracy (%)"] <= 0.5, name
glue("int8_worst_ratio", f"{table.loc[pytorch_int8, 'x smaller'].min():.2f}x")
glue("int8_worst_change", f"{(table.loc[pytorch_int8, 'accuracy (%)'] - results['float32']['accuracy (%)']).min():+.2f} points")
assert 3.5 <= int8_ratios.min() and int8_ratios.max() < 4.0  # "... smaller (biases and scales are not int8)"
assert table.loc["int8 dynamic", "x faster"] > 1.5
print(f"int8 dynamic: {table.loc['int8 dynamic', 'x smaller']:.2f}x smaller (target >= 3.5x), "
      f"accuracy loss {results['float32']['accuracy (%)'] - table.loc['int8 dynamic', 'accuracy (%)']:.2f} points (target <= 0.5), "
      f"CPU latency ratio float32 / int8 = {table.loc['int8 dynamic', 'x faster']:.2f} (batch 64, 1 thread)")

# %% [markdown]
# **Against the figures you know.** [The TFLite guide](https://www.tensorflow.org/lite/performance/post_training_quantization) promises
# "4x smaller" with a "2x-3x speedup" (dynamic range) or a "3x+ speedup" (full integer): we measure {glue:text}`int8_ratio_low` to {glue:text}`int8_ratio_high`
# smaller (biases and scales are not int8) and, on this machine's CPU with int8 instructions, a
# clear speed-up for both TFLite and PyTorch (the ratios in the table; {glue:text}`speedup_dynamic` for dynamic int8 on the
# machine that ran this page, at batch 64 on one thread; at batch 1 there is none, Exercise 4). [The PyTorch BERT
# tutorial](https://pytorch.org/tutorials/intermediate/dynamic_quantization_bert_tutorial.html)'s 2.4x (438 → 181 MB) is smaller than our
# {glue:text}`size_ratio_dynamic` because BERT's embedding tables, a fifth of its weights, are not
# `nn.Linear` and stay float32; our MLP is all Linear. QLoRA's NF4 gives {glue:text}`nf4_size_ratio` here (4.5 bits with float32
# block maxima), at the cost of a dequantization per call that only a fused GPU kernel hides.
#
# ## Pitfalls that popular snippets get wrong
#
# - **Measuring size with the wrong yardstick.** `sys.getsizeof(model)` measures a Python object
#   header; `torch.save(model)` pickles code references too. Compare `state_dict` bytes, the same way
#   for both models (`companion.compression.measure.model_size`).
# - **Timing with all threads, once.** A single call, or a float model on 16 threads against an int8
#   model on one, says nothing. Fix the thread count, warm up, take the median of many calls.
# - **Quantizing on the GPU.** The `torch.ao.quantization` kernels run on the CPU only; move a copy of the
#   model to the CPU first (the `Q.*` functions do).
# - **Forgetting `model.eval()` and fusion before static quantization**, or calibrating on the test
#   set. Calibrate on a few hundred *training* images.
# - **Expecting `quantize_dynamic` to shrink everything.** It converts only the module types you list
#   (`nn.Linear`, `nn.LSTM`, ...): embeddings and convolutions stay float (2.4x, not 4x, for BERT in
#   [the PyTorch tutorial](https://pytorch.org/tutorials/intermediate/dynamic_quantization_bert_tutorial.html)).
# - **Expecting NF4 to be fast on a CPU.** Weight-only 4-bit saves memory; without a fused kernel, it
#   costs time.
#
# ## Summary
#
# - Affine quantization: $q = \operatorname{clamp}(\operatorname{round}(x/s) + z)$, $\hat x = s(q - z)$;
#   error at most $s/2$ inside the range. Symmetric ($z = 0$) for weights, affine for one-sided
#   activations; per-channel scales for weights.
# - Dynamic int8 (one line, weights only stored in int8, activations quantized on the fly) and static
#   int8 (calibrated activation ranges, fused layers) both made this MLP {glue:text}`size_ratio_static` to
#   {glue:text}`size_ratio_dynamic` smaller and faster on one CPU thread at batch 64, within 0.5 point of float accuracy. TFLite's full-integer
#   conversion did the same.
# - Quantization-aware training simulates rounding with the straight-through estimator; it matters
#   when post-training quantization loses accuracy, which at 8 bits on this model it does not.
# - NF4 stores 4.5 bits per weight on levels matched to normal weights: {glue:text}`nf4_size_ratio` smaller, accurate, but on a
#   CPU slower, because every call dequantizes.

# %% [markdown]
# ## Exercises
#
# ### Exercise 1 (Implement it): per-channel symmetric int8 weights
#
# Write `quantize_weight_per_channel(w)` for a 2-D float tensor `w` (one row per output channel).
# Return `(q, scale)`: `q` an `int64` tensor of the shape of `w` with values in $[-128, 127]$, and
# `scale` a float32 tensor with one entry per row, $s_i = \max_j |w_{ij}| / 127.5$ (at least the
# float32 machine epsilon, `torch.finfo(torch.float32).eps`), and $q_{ij} = \operatorname{clamp}(\operatorname{round}(w_{ij} / s_i), -128, 127)$.
# Use only basic tensor operations (not `companion` and not `torch.quantize_per_channel`). The check
# compares your integers with `torch.quantize_per_channel(...).int_repr()`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "quant-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
def quantize_weight_per_channel(w):
    ### BEGIN SOLUTION
    bound = w.abs().amax(dim=1)
    scale = torch.clamp(bound / 127.5, min=torch.finfo(torch.float32).eps).to(torch.float32)
    q = torch.clamp(torch.round(w * (1.0 / scale[:, None])), -128, 127).to(torch.int64)
    return q, scale
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "quant-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
check_w = torch.randn(6, 50, generator=torch.Generator().manual_seed(3)) * torch.logspace(-2, 1, 6)[:, None]
q_mine, s_mine = quantize_weight_per_channel(check_w)
assert q_mine.shape == check_w.shape and s_mine.shape == (6,), f"expected q of shape {tuple(check_w.shape)} and one scale per row (6,), got {tuple(q_mine.shape)} and {tuple(s_mine.shape)}"
observer = torch.ao.quantization.PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
observer(check_w)
s_ref, z_ref = observer.calculate_qparams()
assert torch.allclose(s_mine.double(), s_ref.double(), rtol=1e-6), f"your scales differ from the observer's: {s_mine.tolist()} vs {s_ref.tolist()} (max |w| per row / 127.5)"
q_ref = torch.quantize_per_channel(check_w, s_ref, z_ref, 0, torch.qint8).int_repr().long()
assert (q_mine != q_ref).sum() <= 1, f"{int((q_mine != q_ref).sum())} of your integers differ from torch.quantize_per_channel's (round(w / s), clamped to [-128, 127])"  # equal (up to a rounding tie)
### BEGIN HIDDEN TESTS
assert q_mine.dtype == torch.int64 and int(q_mine.min()) >= -128 and int(q_mine.max()) <= 127, "q must be int64 with values in [-128, 127]"
q_zero, s_zero = quantize_weight_per_channel(torch.zeros(2, 5))  # an all-zero row: no division by zero
assert torch.all(q_zero == 0) and torch.all(s_zero > 0), "an all-zero row must give zeros and a positive scale (no division by zero)"
# A layer-sized, heavy-tailed matrix, as trained weights are.
big_w = torch.distributions.StudentT(3.0).sample((256, 784)) * 0.05
q_big, s_big = quantize_weight_per_channel(big_w)
observer = torch.ao.quantization.PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
observer(big_w)
s_ref, z_ref = observer.calculate_qparams()
q_ref = torch.quantize_per_channel(big_w, s_ref, z_ref, 0, torch.qint8).int_repr().long()
assert (q_big != q_ref).float().mean() < 1e-4, "on a 256 x 784 weight, your integers should match torch's"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (Implement it): fake quantization with the straight-through estimator
#
# Write `my_fake_quantize(x, scale, zero_point, qmin, qmax)` for a float tensor `x`, a Python float
# `scale` $s > 0$ and integers $z$, $q_{\min} < q_{\max}$. It returns, with the shape and dtype of `x`,
#
# $$
# \hat x = s\,\bigl(\operatorname{clamp}(c, q_{\min}, q_{\max}) - z\bigr), \qquad c = \operatorname{round}\!\left(x \cdot \tfrac{1}{s}\right) + z
# $$
#
# (`torch.round`, which rounds halves to even; multiply by the reciprocal of $s$, as PyTorch does), and it
# must be differentiable with respect to `x` with the straight-through estimator: the gradient flowing
# back from $\hat x$ passes unchanged where $q_{\min} \le c \le q_{\max}$ and is 0 where $c$ was clamped.
# (Rounding itself has gradient 0 almost everywhere; a detached term or a `torch.autograd.Function`
# will do.) Raise a `ValueError` naming `scale` when `scale` is not positive. The check compares the
# values and the gradients with `torch.fake_quantize_per_tensor_affine`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "quant-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
def my_fake_quantize(x, scale, zero_point, qmin, qmax):
    """Quantize then dequantize; straight-through gradient inside the range, 0 where clamped."""
    ### BEGIN SOLUTION
    if not scale > 0:
        raise ValueError(f"Invalid scale: {scale} (must be > 0)")
    code = torch.round(x.detach() * (1.0 / scale)) + zero_point
    inside = (code >= qmin) & (code <= qmax)
    x_hat = (torch.clamp(code, qmin, qmax) - zero_point) * scale
    return x_hat + (x - x.detach()) * inside  # the value of x_hat, the gradient of x where not clamped
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "quant-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error
ex2_x = torch.tensor([0.2, 0.3, -1.1, 3.74, 3.76, -4.24, -4.26], requires_grad=True)
ex2_y = my_fake_quantize(ex2_x, 0.5, 0, -8, 7)
ex2_expected = torch.tensor([0.0, 0.5, -1.0, 3.5, 3.5, -4.0, -4.0])
assert isinstance(ex2_y, torch.Tensor) and ex2_y.shape == ex2_x.shape, f"return a tensor of the shape of x {tuple(ex2_x.shape)}, got {type(ex2_y).__name__} {tuple(getattr(ex2_y, 'shape', ()))}"
assert torch.allclose(ex2_y.detach(), ex2_expected), f"s = 0.5, z = 0, codes in [-8, 7]: expected {ex2_expected.tolist()}, got {ex2_y.detach().tolist()}"
assert ex2_y.requires_grad, "the result must be differentiable with respect to x (it has no grad_fn)"
ex2_y.sum().backward()
assert torch.equal(ex2_x.grad, torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0])), f"straight-through gradient: 1 where round(x/s) + z is in [-8, 7] (3.76/0.5 rounds to 8 and -4.26/0.5 to -9: clamped, gradient 0), got {ex2_x.grad.tolist()}"
### BEGIN HIDDEN TESTS
ex2_gen = torch.Generator().manual_seed(0)
for ex2_scale, ex2_zero, ex2_qmin, ex2_qmax in [(0.05, 3, -128, 127), (0.1, 128, 0, 255), (0.0237, 0, -8, 7), (1 / 3, 10, 0, 15)]:
    ex2_data = torch.randn(40, 500, generator=ex2_gen) * 3
    ex2_upstream = torch.randn(40, 500, generator=ex2_gen)
    ex2_mine_x = ex2_data.clone().requires_grad_()
    ex2_ref_x = ex2_data.clone().requires_grad_()
    ex2_mine = my_fake_quantize(ex2_mine_x, ex2_scale, ex2_zero, ex2_qmin, ex2_qmax)
    ex2_ref = torch.fake_quantize_per_tensor_affine(ex2_ref_x, ex2_scale, ex2_zero, ex2_qmin, ex2_qmax)
    assert ex2_mine.shape == ex2_ref.shape and ex2_mine.dtype == ex2_ref.dtype, f"expected shape {tuple(ex2_ref.shape)} and dtype {ex2_ref.dtype}, got {tuple(ex2_mine.shape)} and {ex2_mine.dtype}"
    ex2_wrong = int((~torch.isclose(ex2_mine.detach(), ex2_ref.detach(), rtol=0, atol=1e-6)).sum())
    assert ex2_wrong <= 2, f"s={ex2_scale:.4f}, z={ex2_zero}, [{ex2_qmin}, {ex2_qmax}]: {ex2_wrong} of 20,000 values differ from torch.fake_quantize_per_tensor_affine"
    ex2_mine.backward(ex2_upstream)
    ex2_ref.backward(ex2_upstream)
    ex2_bad_grads = int((~torch.isclose(ex2_mine_x.grad, ex2_ref_x.grad)).sum())
    assert ex2_bad_grads <= 2, f"s={ex2_scale:.4f}, z={ex2_zero}, [{ex2_qmin}, {ex2_qmax}]: {ex2_bad_grads} of 20,000 gradients differ from torch's (the upstream gradient where not clamped, 0 where clamped)"
for ex2_bad in (0.0, -0.1):
    expect_error(lambda: my_fake_quantize(ex2_x, ex2_bad, 0, -8, 7), ValueError, "scale", when=f"my_fake_quantize(x, {ex2_bad}, 0, -8, 7)")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 (Derive it): six decibels per bit
#
# Quantize a signal $x$ of mean 0 and root mean square $\sigma$ whose values fill $[-c\sigma, c\sigma]$ ($c$ is
# the *crest factor* $\max|x| / \sigma$) with $b$ bits over that range, as the symmetric scale of this
# chapter does: step $\Delta = 2c\sigma / (2^b - 1)$.
#
# (a) When the values spread over many steps, the rounding error $e = \hat x - x$ is uniform on
# $[-\Delta/2, \Delta/2]$. Show that its mean square is $\Delta^2 / 12$.
# (b) Write `sqnr_db(bits, crest_factor)`, the signal-to-quantization-noise ratio
# $10 \log_{10}\bigl(\sigma^2 / \mathbb E[e^2]\bigr)$ in decibels (exactly, with the step above), and show that it
# is about $6.02\,b + 4.77 - 20 \log_{10} c$.
# (c) Evaluate it for 8-bit weights whose largest $|w|$ is $4\sigma$, and for 4 bits. What does one
# more bit buy, and what does a single outlier at $10\sigma$ cost? Relate this to per-channel scales.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "quant-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
import math  # noqa: E402


def sqnr_db(bits, crest_factor):
    ### BEGIN SOLUTION
    return 10 * math.log10(3 * (2**bits - 1) ** 2 / crest_factor**2)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "quant-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert abs(sqnr_db(8, 4) - 40.861) < 1e-3, f"8 bits, crest factor 4: 10 log10(3 (2^8 - 1)^2 / 4^2) = 40.861 dB, got {sqnr_db(8, 4)}"
### BEGIN HIDDEN TESTS
for ex3_bits, ex3_crest, ex3_expected in [(4, 4, 16.2518), (8, 10, 32.9020), (16, 3, 91.5583), (2, 1, 14.3136)]:
    assert abs(sqnr_db(ex3_bits, ex3_crest) - ex3_expected) < 1e-3, f"sqnr_db({ex3_bits}, {ex3_crest}): expected {ex3_expected} dB, got {sqnr_db(ex3_bits, ex3_crest)}"
# a uniform signal on [-1, 1] (crest factor sqrt(3)), quantized for real: the formula predicts the measurement
torch.manual_seed(0)
ex3_x = torch.rand(1_000_000, dtype=torch.float64) * 2 - 1
for ex3_bits in (4, 6, 8):
    ex3_step = 2 / (2**ex3_bits - 1)
    ex3_hat = torch.clamp(torch.round(ex3_x / ex3_step), -(2 ** (ex3_bits - 1)), 2 ** (ex3_bits - 1) - 1) * ex3_step
    ex3_measured = 10 * math.log10(float((ex3_x**2).mean() / ((ex3_hat - ex3_x) ** 2).mean()))
    assert abs(sqnr_db(ex3_bits, math.sqrt(3)) - ex3_measured) < 0.05, f"{ex3_bits} bits on uniform data: measured {ex3_measured:.3f} dB, your formula gives {sqnr_db(ex3_bits, math.sqrt(3))}"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "quant-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) With $e$ uniform on $[-\Delta/2, \Delta/2]$ (density $1/\Delta$), $\mathbb E[e] = 0$ and
# $\mathbb E[e^2] = \frac{1}{\Delta}\int_{-\Delta/2}^{\Delta/2} e^2\,de = \frac{1}{\Delta}\cdot\frac{2}{3}\left(\frac{\Delta}{2}\right)^3 = \frac{\Delta^2}{12}$:
# the RMS error is $\Delta/\sqrt{12} \approx 0.29\,\Delta$, well below the worst case $\Delta/2$.
#
# (b) $\mathrm{SQNR} = \frac{\sigma^2}{\Delta^2/12} = \frac{12\sigma^2 (2^b-1)^2}{4c^2\sigma^2} = \frac{3(2^b-1)^2}{c^2}$, so
# $\mathrm{SQNR}_{\mathrm{dB}} = 20\log_{10}(2^b - 1) + 10\log_{10} 3 - 20\log_{10} c \approx 6.02\,b + 4.77 - 20\log_{10} c$,
# using $2^b - 1 \approx 2^b$ and $20\log_{10} 2 = 6.02$. For a uniform signal, $c = \sqrt 3$ and the
# constant cancels: exactly $20\log_{10}(2^b - 1)$, about $6.02\,b$ dB.
#
# (c) $c = 4$: $40.9$ dB at 8 bits (the noise power is $10^{-4.09}$ of the signal's, an RMS error of
# under 1% of $\sigma$) and $16.3$ dB at 4 bits. Each bit halves $\Delta$, which divides the noise power
# by 4: $+6.02$ dB. A single outlier at $10\sigma$ stretches the range by $10/4$ and costs
# $20\log_{10} 2.5 \approx 8$ dB, more than one bit, for *every* weight of the tensor. Per-channel
# scales apply this formula row by row: each row's crest factor is computed from its own largest
# weight, so an outlier costs only its own row, and rows with small weights are no longer measured
# against the largest row of the matrix (the figure of Section 2.3). At 4 bits, where 16 dB leaves
# little margin, this and blockwise scales (NF4's blocks of 64) become necessary.
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 (Investigate): when does dynamic quantization pay?
#
# Measure the latency ratio float32 / dynamic int8 of `float_model` (one thread, median of 50 calls)
# for batches of 1, 16, 64 and 512 test images. Where is the speed-up largest, and why? Think about
# what dynamic quantization does at every call besides the matrix product (computing the activation
# range, quantizing the input, dequantizing the output), and about how the cost of each part grows
# with the batch.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "quant-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
speedups = {}
with torch.no_grad():
    for batch in [1, 16, 64, 512]:
        xb = x_test[:batch]
        t_float = measure_latency(float_model, xb, repeats=50, warmup=5).median_ms
        t_int8 = measure_latency(dynamic_model, xb, repeats=50, warmup=5).median_ms
        speedups[batch] = t_float / t_int8
        print(f"batch {batch:>4}: float32 {t_float:7.3f} ms, int8 dynamic {t_int8:7.3f} ms, ratio {speedups[batch]:.2f}")
assert speedups[64] > 1.5 * speedups[1]  # the gain grows with the batch
### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "quant-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# The speed-up grows with the batch. At batch 1 there is none here (a ratio near 1): one image is a
# matrix-vector product of about 0.1 ms, and every call of the dynamic model also pays a fixed
# overhead per layer (finding the activation range, quantizing the input, dequantizing the output)
# that is as large as the saving. The float weights (2.7 MB) also sit largely in the CPU cache, so
# reading 4x fewer bytes gains little. From batch 16 on, the matrix products dominate and the int8
# kernels win by their instruction throughput (with VNNI, four int8 multiply-adds per lane where
# float32 does one): {glue:text}`speedup_dynamic` at batch 64 here. At large batches the ratio levels off or dips slightly,
# because the conversions of the activations grow with the batch too. The exact ratios depend on the
# CPU (with or without VNNI/AVX-512), the thread count and the machine's load; this is why the chapter
# reports a measured ratio at a stated batch and thread count instead of quoting "2x–3x". Dynamic
# quantization suits batched server inference; for one request at a time, static quantization (no
# range computation at run time) or a float model is as good.
# :::
# <!-- ### END SOLUTION -->
