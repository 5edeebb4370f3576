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
# # 1. Where the time goes: profiling, input pipelines, mixed precision, compilation
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part6_hardware/01_where_time_goes.ipynb)
#
# Every chapter so far counted *steps*: how many an optimizer needs, how a schedule spends them.
# What a reader pays for is *seconds*, and a step's seconds depend on where its work runs and in
# what number format. This chapter measures a training step the way a performance engineer does:
# first where the time goes (a timer that can be trusted, then the profiler), then three levers
# that change it without changing the model: feeding the data in parallel, computing in 16-bit
# floating point, and compiling the step. Each lever is measured against the plain version in the
# same run, on whatever machine runs the notebook; the CPU that built this page is named below, and
# on a Colab GPU the same cells measure CUDA.
#
# This chapter covers
#
# * timing a step honestly: warm-up, synchronization, median and interquartile range;
# * `torch.profiler` on an MLP and a small CNN: the operator table and a trace for the browser;
# * the Keras side: eager execution, `tf.function` graphs (and when they trace again), XLA;
# * the input pipeline as the bottleneck: `DataLoader` workers and `tf.data` prefetching;
# * mixed precision {cite}`micikevicius2018`: float16 against bfloat16 {cite}`kalamkar2019`, loss
#   scaling, `torch.autocast` and Keras' mixed-precision policies;
# * compilation: `torch.compile` {cite}`ansel2024` and `jit_compile=True`, with the compile time
#   counted.

# %% tags=["hide-input"]
# Setup: on Colab (or anywhere companion is missing) install the course package.
try:
    import companion
except ImportError:
    %pip install -q "dl-optimization-companion[torch,keras] @ git+https://github.com/YOUR-ORG/dl-optimization-hands-on@main"
    import companion

# %% tags=["keep-when-grading"]
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from companion import optim
from companion.augment import AugmentedImages
from companion.glue import glue
from companion.plotting import use_course_style
from companion.reproducibility import pick_device, seed_everything
from companion.timing import describe_device, synchronize, time_it
from companion.training import evaluate, mlp, mnist_tensors, train_classifier

use_course_style()
seed_everything(0)
DEVICE = pick_device()
print(f"device: {DEVICE} ({describe_device(DEVICE)}), {torch.get_num_threads()} threads")
glue("device_name", describe_device(DEVICE))

data = mnist_tensors(20_000, val=5_000, test=0, device=DEVICE)

# %% [markdown]
# This page was built on one machine, with an {glue:text}`device_name`. Every figure below is a
# measurement of that machine in one run; on another machine the numbers change.
#
# ## Timing a step honestly
#
# The simplest timer, `time.perf_counter()` around one call, measures the wrong thing in three
# ways. The first calls pay for one-time work (allocating memory, choosing kernels, compiling). On a
# GPU, a PyTorch call returns as soon as its work is *queued*, so the clock must wait for the device
# (`torch.cuda.synchronize()`) before it stops. And one measurement carries the noise of everything
# else the machine was doing. `companion.timing.time_it` runs a few untimed warm-up calls, then times
# each of $n$ calls on its own with the device synchronized, and reports the median
# $\tilde t = \operatorname{median}(t_1, \dots, t_n)$ and the interquartile range $Q_3 - Q_1$: the
# median ignores the call that the operating system interrupted, the IQR says how far to trust it.
# A comparison of two variants is the ratio of their medians, measured in the same run.

# %%
def make_step(model, x, y, lr=0.01, precision="float32"):
    """One SGD training step of ``model`` on the batch ``x, y``, as a function of nothing.

    ``precision="bfloat16"`` or ``"float16"`` runs the forward pass under ``torch.autocast`` (float16
    with a loss-scaling ``GradScaler``); see the section on mixed precision.
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    device_type = next(model.parameters()).device.type
    scaler = torch.amp.GradScaler(device_type, enabled=precision == "float16")

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type, dtype=getattr(torch, precision), enabled=precision != "float32"):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return step


torch.manual_seed(0)
wide_mlp = mlp((784, 512, 512, 10)).to(DEVICE)
x256, y256 = data.x_train[:256], data.y_train[:256]
mlp_step = make_step(wide_mlp, x256, y256)
mlp_timing = time_it(mlp_step, repeats=30, warmup=5)
print("MLP 784-512-512-10, batch 256:", mlp_timing)
glue("mlp_step_ms", f"{mlp_timing.median * 1e3:.1f}")
glue("mlp_step_iqr", f"{mlp_timing.iqr * 1e3:.2f}")
assert mlp_timing.iqr < 0.5 * mlp_timing.median  # "less than half the median"

# %% [markdown]
# A step of a 784-512-512-10 MLP on a batch of 256 images takes {glue:text}`mlp_step_ms` ms here,
# with an interquartile range of {glue:text}`mlp_step_iqr` ms, less than half the median.
#
# ## The profiler: which operators take the time
#
# A timer says how long; a profiler says *where*. `torch.profiler` records every operator a step
# runs, with its time on the CPU (and on the GPU, when there is one), and aggregates them in a
# table. We profile five steps of the MLP and of a small convolutional network of the kind Part III
# pruned, after the warm-up above.

# %%
from torch.profiler import ProfilerActivity, profile, record_function  # noqa: E402

from companion.quiet import quiet_stderr  # noqa: E402


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
    )


torch.manual_seed(0)
cnn = small_cnn().to(DEVICE)
cnn_step = make_step(cnn, x256.unsqueeze(1), y256)
for _ in range(3):
    cnn_step()
activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if DEVICE == "cuda" else [])


def profile_steps(step, label, n=5):
    # quiet_stderr: the profiler's back end (Kineto) writes its own start/stop trace points to stderr
    with quiet_stderr(), profile(activities=activities, record_shapes=True) as prof:
        for _ in range(n):
            with record_function(label):
                step()
    return prof


mlp_prof = profile_steps(mlp_step, "mlp_step")
cnn_prof = profile_steps(cnn_step, "cnn_step")
SORT_BY = "self_device_time_total" if DEVICE == "cuda" else "self_cpu_time_total"
print(cnn_prof.key_averages().table(sort_by=SORT_BY, row_limit=10, max_name_column_width=34))

# %% [markdown]
# Each row is an operator; *Self CPU* (on a GPU, *Self CUDA*) is the time spent in it, not counting
# the operators it called, so the Self column adds up to the whole. Near the top of the CNN's table
# are the convolutions, forward (`aten::mkldnn_convolution` on a CPU with oneDNN, cuDNN kernels on a
# GPU) and backward (`aten::convolution_backward`), and operators that do almost no arithmetic:
# max-pooling and the ReLU (`clamp_min` forward, `threshold_backward` backward). Grouped by kind of
# work:

# %%
def self_time_shares(prof, groups):
    """Share of the total self time of the profiled operators in each group of operator-name fragments.

    Only the operators (events on the CPU side) count; on a GPU, each with the device time of the kernels
    it launched, so that no kernel is counted twice.
    """
    events = [e for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.CPU
              and not e.key.startswith(("mlp_step", "cnn_step", "ProfilerStep"))]
    device_time = DEVICE == "cuda"
    total = sum(e.self_device_time_total if device_time else e.self_cpu_time_total for e in events)
    shares = {}
    for group, fragments in groups.items():
        shares[group] = sum(
            (e.self_device_time_total if device_time else e.self_cpu_time_total) for e in events
            if any(f in e.key for f in fragments)) / total
    shares["everything else"] = 1 - sum(shares.values())
    return shares


GROUPS = {"matrix products": ("addmm", "aten::mm", "matmul", "gemm", "linear"),
          "convolutions": ("convolution", "conv2d", "cudnn"),
          "element-wise, pooling, loss": ("relu", "threshold", "clamp", "pool", "softmax", "nll", "cross_entropy")}
mlp_shares = self_time_shares(mlp_prof, GROUPS)
cnn_shares = self_time_shares(cnn_prof, GROUPS)
for name, shares in (("MLP", mlp_shares), ("CNN", cnn_shares)):
    print(name, "  ".join(f"{k}: {v:.0%}" for k, v in shares.items()))
glue("mlp_matmul_share", f"{mlp_shares['matrix products']:.0%}")
glue("cnn_conv_share", f"{cnn_shares['convolutions']:.0%}")
glue("cnn_elementwise_share", f"{cnn_shares['element-wise, pooling, loss']:.0%}")
glue("cnn_matmul_share", f"{cnn_shares['matrix products']:.0%}")
assert mlp_shares["matrix products"] > 0.5  # "most of the MLP's step"
assert cnn_shares["convolutions"] + cnn_shares["element-wise, pooling, loss"] > 0.75  # "three quarters"
assert cnn_shares["matrix products"] < 0.1  # "its single linear layer, little"

trace_path = Path(tempfile.gettempdir()) / "cnn_step_trace.json"
cnn_prof.export_chrome_trace(str(trace_path))
print(f"trace written to {trace_path} ({trace_path.stat().st_size / 1e6:.1f} MB)")

# %% [markdown]
# Matrix products take {glue:text}`mlp_matmul_share` of the MLP's step. In the CNN, convolutions
# take {glue:text}`cnn_conv_share` and the pooling, activations and loss {glue:text}`cnn_elementwise_share`
# (together more than three quarters), its single linear layer little ({glue:text}`cnn_matmul_share`).
# Pooling and ReLU do one comparison per element, yet they read and write every activation of the
# 28x28 and 14x14 feature maps: their cost is memory traffic, not arithmetic, the kind of cost that *fusing*
# operators into one kernel removes. That is the first lesson of profiling: a network's time sits in
# a few operators, and those, not the Python around them, are what to make faster (a better kernel,
# a lower precision, fewer of them through fusion). The trace file holds every call on a timeline; open it at
# [ui.perfetto.dev](https://ui.perfetto.dev) (or `chrome://tracing`) to see each step's forward
# operators, then the backward ones in reverse order, then the optimizer's.
#
# ## The input pipeline as the bottleneck
#
# A step can only be as fast as its data arrives. When every example needs work on the CPU (decoding
# an image, augmenting it), the loader can take longer than the step. `torch.utils.data.DataLoader`
# with `num_workers=k` prepares batches in $k$ worker processes while the main process trains; with
# a GPU, `pin_memory=True` puts batches in page-locked memory so that the copy to the device can
# overlap with computation. Here each training image is rotated and shifted at random in the
# dataset's `__getitem__`, as a typical augmentation pipeline does: `companion.augment.AugmentedImages`
# draws image $i$'s angle and shift from a generator seeded with $i$, so that every worker process
# produces the same batches. We time epochs of 8,192 images: the loader alone; the training steps
# alone (32 steps, estimated from the median step time above); and both together, serially and with
# two workers. Each is the median of three epochs, the three settings taking turns so that a slow
# moment of the machine affects them alike. The workers are started once
# (`persistent_workers=True`), so that their start-up, a fixed cost paid in the first epoch, is
# reported apart.

# %%
N_LOADER = 8_192
augmented = AugmentedImages(data.x_train[:N_LOADER].cpu().numpy(), data.y_train[:N_LOADER].cpu().numpy(),
                            max_degrees=15.0, max_shift=2.0, seed=0)
image, label = augmented[0]
print(f"item 0: a {image.dtype} array of shape {image.shape}, label {label}; the DataLoader batches them into tensors")


class Epochs:
    """Epochs of the MLP's training on the ``augmented`` loader with ``workers`` worker processes.

    Each call runs one epoch and returns its seconds. ``threads``: the training process's intra-op
    threads during the epoch; by default one when there are workers on a CPU-only machine (they need
    the cores), else PyTorch's default. Workers persist from one call to the next, so their start-up
    is paid in the first epoch only. ``train=False`` only loads the batches.
    """

    def __init__(self, workers, threads=None, train=True):
        torch.manual_seed(0)
        self.model = mlp((784, 512, 512, 10)).to(DEVICE)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01)
        self.loader = torch.utils.data.DataLoader(
            augmented, batch_size=256, shuffle=True, num_workers=workers, persistent_workers=workers > 0,
            pin_memory=DEVICE == "cuda", generator=torch.Generator().manual_seed(0))
        self.threads = threads or (1 if workers and DEVICE == "cpu" else torch.get_num_threads())
        self.train = train

    def __call__(self):
        default_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            start = time.perf_counter()
            for images, labels in self.loader:
                if self.train:
                    images, labels = images.to(DEVICE, non_blocking=True), labels.to(DEVICE, non_blocking=True)
                    self.optimizer.zero_grad(set_to_none=True)
                    F.cross_entropy(self.model(images), labels).backward()
                    self.optimizer.step()
            synchronize(DEVICE)
            return time.perf_counter() - start
        finally:
            torch.set_num_threads(default_threads)


def interleaved_medians(runs, rounds=3):
    """Median seconds of each run's epochs after its first, the runs taking turns (so that a slow spell of
    the machine slows them all alike); also the first epochs."""
    first = {name: run() for name, run in runs.items()}
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            times[name].append(run())
    return {name: float(np.median(t)) for name, t in times.items()}, first


medians, first_epochs = interleaved_medians({"loading only": Epochs(0, train=False), "serial": Epochs(0),
                                             "2 workers": Epochs(2)})
loading_only, serial, parallel = medians["loading only"], medians["serial"], medians["2 workers"]
startup_epoch = first_epochs["2 workers"]
training_only = N_LOADER / 256 * mlp_timing.median
print(f"loading alone {loading_only:.2f} s, training alone {training_only:.2f} s per epoch")
print(f"num_workers=0: {serial:.2f} s   num_workers=2: {parallel:.2f} s ({serial / parallel:.2f}x), "
      f"its first epoch {startup_epoch:.2f} s")
glue("loading_s", f"{loading_only:.2f}")
glue("training_s", f"{training_only:.2f}")
glue("workers_speedup", f"{serial / parallel:.2f}")
glue("loader_share", f"{loading_only / serial:.0%}")
glue("worker_first_epoch_s", f"{startup_epoch:.2f}")
assert loading_only > 2 * training_only  # "the loader, not the model, is the bottleneck"
assert serial / parallel > 1.2  # "two workers make the epoch more than 1.2 times as fast"

# %% [markdown]
# Reading and augmenting the 8,192 images takes {glue:text}`loading_s` s, the training steps on
# them {glue:text}`training_s` s: the loader, not the model, is the bottleneck (more than twice the
# model's time), and it accounts for {glue:text}`loader_share` of the serial epoch. Two worker
# processes make the epoch {glue:text}`workers_speedup` times as fast (more than 1.2 times); their
# first epoch, start-up included, took {glue:text}`worker_first_epoch_s` s (on Linux, workers are
# forked: starting them costs little). On a machine without a GPU the
# workers and the training process share the cores, so the training process was given one thread
# while the workers run; how much its default of one thread per core would cost is Exercise 4. On a
# GPU machine with many cores,
# where the step runs on the device and the CPU is otherwise idle, a loader with 4 to 8 workers is
# the usual fix, and a profiler trace that shows the GPU waiting between steps is the usual symptom.
#
# ## The Keras side: eager, graph and XLA
#
# Keras on TensorFlow runs a training step in one of three ways. *Eagerly* (`run_eagerly=True`),
# every operation is dispatched from Python one at a time, like PyTorch. Otherwise `fit` wraps the
# step in a `tf.function`: the first call *traces* the Python code into a graph, and later calls
# run the graph without Python. With `jit_compile=True` the graph is also compiled by XLA, which
# fuses operations into fewer kernels; Keras' default, `jit_compile="auto"`, uses XLA on a GPU or
# TPU and the plain graph on a CPU. The same 784-512-512-10 MLP, one step on the same batch, with
# each of the three set explicitly:

# %%
from companion.quiet import quiet_tensorflow  # noqa: E402

with quiet_tensorflow():  # TensorFlow's C++ start-up messages stay off the page
    import keras  # noqa: E402  (TensorFlow's import takes several seconds: only from here on)
    import tensorflow as tf  # noqa: E402

for gpu in tf.config.list_physical_devices("GPU"):  # share the GPU with PyTorch: allocate as needed
    tf.config.experimental.set_memory_growth(gpu, True)


def keras_mlp():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(512, activation="relu"), keras.layers.Dense(512, activation="relu"),
                              keras.layers.Dense(10)])
    return model


xk, yk = x256.cpu().numpy(), y256.cpu().numpy()
keras_timings, first_calls = {}, {}
for mode, options in {"eager": dict(run_eagerly=True), "graph": dict(jit_compile=False),
                      "XLA": dict(jit_compile=True)}.items():
    model = keras_mlp()
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), **options)
    start = time.perf_counter()
    model.train_on_batch(xk, yk)  # the first call traces (and, for XLA, compiles) the step
    first_calls[mode] = time.perf_counter() - start
    keras_timings[mode] = time_it(lambda: model.train_on_batch(xk, yk), repeats=30, warmup=5)
    print(f"{mode:>5}: first call {first_calls[mode] * 1e3:.0f} ms, then {keras_timings[mode]}")
graph_speedup = keras_timings["eager"].median / keras_timings["graph"].median
xla_vs_graph = keras_timings["graph"].median / keras_timings["XLA"].median
glue("keras_graph_speedup", f"{graph_speedup:.1f}")
glue("keras_xla_vs_graph", f"{xla_vs_graph:.2f}")
glue("keras_xla_verdict", "faster" if xla_vs_graph > 1 else "no faster")
glue("keras_xla_first_call", f"{first_calls['XLA'] / keras_timings['XLA'].median:,.0f}")
glue("keras_graph_first_call", f"{first_calls['graph'] / keras_timings['graph'].median:,.0f}")
assert first_calls["XLA"] > 10 * keras_timings["XLA"].median  # "the first call costs many steps"
assert graph_speedup > 1.5  # "the graph runs the step more than 1.5 times as fast as eager"

# %% [markdown]
# The graph runs the step {glue:text}`keras_graph_speedup` times as fast as eager execution (more
# than 1.5 times), because Python no longer stands between the operations. XLA's fused kernels ran
# it {glue:text}`keras_xla_vs_graph` times as fast as the plain graph ({glue:text}`keras_xla_verdict`):
# this step is three matrix products that both versions hand to the same optimized library, with
# little between them to fuse. The dispatch overhead that the graph removes is a fixed cost per
# operation, so the smaller the operations, the larger its share of the step. Both pay up front: the
# first call, which traces the step, cost as much as {glue:text}`keras_graph_first_call` graph steps,
# and with XLA, which also compiles it, as much as {glue:text}`keras_xla_first_call` XLA steps.
#
# Tracing has a cost and a trap: a `tf.function` traces again for every new input *signature*, a
# new shape or dtype, or a new Python value of an argument. A loop whose last batch is smaller, or
# that passes a Python number that changes, traces again and again:

# %%
traces = []


@tf.function
def scaled_sum(x, factor):
    traces.append(x.shape)  # Python code runs only while tracing
    return tf.reduce_sum(x) * factor


for batch, factor in [(256, 2.0), (256, 2.0), (128, 2.0), (256, 3.0), (256, tf.constant(3.0)), (256, tf.constant(4.0))]:
    scaled_sum(tf.ones((batch, 10)), factor)
print(f"6 calls, {len(traces)} traces")
glue("n_traces", str(len(traces)))
assert len(traces) == 4  # 256/2.0; 128 (new shape); 3.0 (new Python value); the first tensor factor

# %% [markdown]
# Six calls, {glue:text}`n_traces` traces: once for the first call, once for the batch of 128, once
# for the Python number 3.0 (each Python value is part of the signature), and once for the first
# tensor factor, after which tensors of the same shape and dtype reuse the graph. Pass tensors, not
# Python numbers, for values that change, and keep batch shapes fixed (`drop_last`,
# `drop_remainder=True`) or declare an `input_signature` with a `None` dimension.
#
# `tf.data` builds the input pipeline as a graph. The per-example function of `map` runs on
# several threads with `num_parallel_calls=tf.data.AUTOTUNE`; `prefetch` prepares the next batches
# while the current one trains; and mapping *after* `batch` applies the function to a whole batch
# at once, one vectorized call instead of 256 small ones. The augmentation is TensorFlow's own
# (`keras.layers.RandomRotation`, a different random angle for each image of a batch):

# %%
rotate_layer = keras.layers.RandomRotation(15 / 360, fill_mode="constant", seed=0)
images_np, labels_np = data.x_train[:N_LOADER].cpu().numpy(), data.y_train[:N_LOADER].cpu().numpy()


def tf_pipeline(kind):
    ds = tf.data.Dataset.from_tensor_slices((images_np[..., None], labels_np)).shuffle(N_LOADER, seed=0)
    augment = lambda x, y: (rotate_layer(x, training=True)[..., 0], y)  # noqa: E731
    if kind == "plain":  # one example at a time, on one thread, no prefetch
        return ds.map(augment).batch(256)
    if kind == "parallel":
        return ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE).batch(256).prefetch(tf.data.AUTOTUNE)
    return ds.batch(256).map(augment, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def pipeline_seconds(kind):
    """(seconds of one Keras epoch over the pipeline, seconds of one pass of the pipeline alone)."""
    pipeline = tf_pipeline(kind)
    for _ in pipeline:  # a first pass: builds the pipeline's functions, so that timing sees only the work
        pass
    start = time.perf_counter()
    for _ in pipeline:
        pass
    alone_seconds = time.perf_counter() - start
    model = keras_mlp()
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(pipeline.take(2), epochs=1, shuffle=False, verbose=0)  # trace the step before timing
    start = time.perf_counter()
    model.fit(pipeline, epochs=1, shuffle=False, verbose=0)  # the pipeline shuffles
    return time.perf_counter() - start, alone_seconds


tf_seconds = {kind: pipeline_seconds(kind) for kind in ("plain", "parallel", "vectorized")}
for kind, (fit_s, alone_s) in tf_seconds.items():
    print(f"{kind:>10}: epoch {fit_s:.2f} s, pipeline alone {alone_s:.2f} s")
tf_epoch_speedup = tf_seconds["plain"][0] / tf_seconds["vectorized"][0]
tf_parallel_speedup = tf_seconds["plain"][1] / tf_seconds["parallel"][1]
tf_batching_speedup = tf_seconds["parallel"][1] / tf_seconds["vectorized"][1]
glue("tfdata_epoch_speedup", f"{tf_epoch_speedup:.1f}")
glue("tfdata_parallel_speedup", f"{tf_parallel_speedup:.1f}")
glue("tfdata_batching_speedup", f"{tf_batching_speedup:.1f}")
assert tf_batching_speedup > 2  # "batching first: more than twice as fast again"
assert tf_epoch_speedup > 1.5 and min(tf_seconds, key=lambda k: tf_seconds[k][0]) == "vectorized"

# %% [markdown]
# On the pipeline alone, the parallel map with prefetching is {glue:text}`tfdata_parallel_speedup`
# times as fast as the plain one, and batching before the map makes it {glue:text}`tfdata_batching_speedup`
# times as fast again (more than twice): one call on 256 images costs far less than 256 calls on one.
# With the training steps, the vectorized pipeline's epoch is {glue:text}`tfdata_epoch_speedup` times
# as fast as the plain pipeline's (more than 1.5 times), the fastest of the three. The rule is the same in
# both frameworks: time the loader alone, and if it is slower than the step, vectorize it,
# parallelize it, prefetch, or move the work out of the loop (augment on the GPU, cache decoded
# data).
#
# ## Mixed precision: float16 and bfloat16
#
# Most of a step's time sits in matrix products (the profiler said so), and their speed on modern
# hardware depends on the number format. A floating-point number is a sign, an exponent of $e$ bits
# and a mantissa of $m$ bits; the exponent sets the *range*, the mantissa the *precision*: the gap
# between 1 and the next number is $\epsilon = 2^{-m}$.
#
# | format | exponent bits | mantissa bits | largest | smallest normal | $\epsilon$ |
# |---|---|---|---|---|---|
# | float32 | 8 | 23 | $3.4 \times 10^{38}$ | $1.2 \times 10^{-38}$ | $1.2 \times 10^{-7}$ |
# | float16 | 5 | 10 | $65\,504$ | $6.1 \times 10^{-5}$ | $9.8 \times 10^{-4}$ |
# | bfloat16 | 8 | 7 | $3.4 \times 10^{38}$ | $1.2 \times 10^{-38}$ | $7.8 \times 10^{-3}$ |
#
# (The values are the formats' definitions in IEEE 754 and in {cite}`kalamkar2019`; the cell below
# reads them from `torch.finfo` and checks the table.) float16 keeps more precision but a range so
# narrow that small gradients *underflow* to zero and large activations overflow; bfloat16 is
# float32 with the mantissa cut to 7 bits: float32's range, a coarse precision. Mixed precision
# {cite}`micikevicius2018` computes the products in 16 bits and keeps the weights, their updates
# and the reductions (sums, softmax, the loss) in float32.

# %%
for dtype, row in {torch.float32: (3.4e38, 1.2e-38, 1.2e-7), torch.float16: (65504, 6.1e-5, 9.8e-4),
                   torch.bfloat16: (3.4e38, 1.2e-38, 7.8e-3)}.items():
    info = torch.finfo(dtype)
    print(f"{str(dtype):>15}: max {info.max:.3g}  smallest normal {info.tiny:.3g}  eps {info.eps:.3g}")
    assert np.allclose((info.max, info.tiny, info.eps), row, rtol=0.03)  # the table above

# gradients of a real step, in float32: how many would float16 lose?
torch.manual_seed(0)
probe = mlp((784, 512, 512, 10)).to(DEVICE)
F.cross_entropy(probe(data.x_train[:256]), data.y_train[:256]).backward()
grads = torch.cat([p.grad.flatten() for p in probe.parameters()]).abs()
grads = grads[grads > 0].double().cpu()
fp16_smallest_normal = torch.finfo(torch.float16).smallest_normal  # below it, float16 keeps fewer bits
underflow = (grads.half() == 0).double().mean().item()
subnormal = (grads < fp16_smallest_normal).double().mean().item()
scaled_underflow = ((grads * 1024).half() == 0).double().mean().item()
glue("fp16_zero_share", f"{underflow:.1%}")
glue("fp16_subnormal_share", f"{subnormal:.0%}")
glue("fp16_scaled_zero_share", f"{scaled_underflow:.2%}")
assert underflow > 0 and subnormal > 0.2 and scaled_underflow < underflow / 10  # "some", "more than a fifth"

fig, (ax_fmt, ax_grad) = plt.subplots(1, 2, figsize=(12, 4))
magnitudes = np.logspace(-45, 39, 2000)
for dtype, colour in ((torch.float32, "C0"), (torch.float16, "C1"), (torch.bfloat16, "C2")):
    info = torch.finfo(dtype)
    spacing = np.where((magnitudes >= info.tiny) & (magnitudes <= info.max),
                       info.eps * 2.0 ** np.floor(np.log2(np.maximum(magnitudes, 1e-300))), np.nan)
    ax_fmt.loglog(magnitudes, spacing / magnitudes, color=colour, label=str(dtype).replace("torch.", ""))
ax_fmt.set(xlabel="magnitude |x|", ylabel="relative gap to the next number", xlim=(1e-40, 1e39),
           title="bfloat16 has float32's range; float16 has more precision")
ax_fmt.legend()
ax_grad.hist(np.log10(grads.numpy()), bins=80, color="0.5")
for value, label, style in ((torch.finfo(torch.float16).smallest_normal, "float16 smallest normal", "--"),
                            (2.0**-24, "float16 smallest subnormal", ":")):
    ax_grad.axvline(np.log10(value), color="C1", linestyle=style, label=label)
ax_grad.set(xlabel="log10 |gradient entry|", ylabel="entries", title="Small gradients fall off float16's range")
ax_grad.legend()
plt.show()

# %% [markdown]
# The histogram holds the nonzero gradient entries of one float32 step of the MLP. Cast to float16,
# some become exactly zero ({glue:text}`fp16_zero_share` of them) and many more,
# {glue:text}`fp16_subnormal_share` (more than a fifth), fall below float16's smallest normal number,
# where precision thins out: the smaller the entry, the fewer of its bits survive. *Loss scaling* shifts them back
# into range: multiply the loss by $S$, so that by the chain rule every gradient is multiplied by
# $S$, and divide the float32 gradients by $S$ before the optimizer step,
#
# $$\nabla_\theta J = \frac{1}{S}\, \nabla_\theta \bigl(S \cdot J\bigr).$$
#
# With $S = 1024$ the zeros fall to {glue:text}`fp16_scaled_zero_share`. A fixed $S$ that is too large
# overflows (float16 stops at 65,504), so `torch.amp.GradScaler` and Keras' `LossScaleOptimizer`
# adapt it: start large ($2^{16}$ in PyTorch, $2^{15}$ in Keras), halve $S$ and skip the step whenever
# a gradient is inf or NaN,
# double it after 2,000 steps without overflow. bfloat16 has float32's exponent: nothing
# underflows that float32 keeps, and no loss scaling is needed.
#
# In PyTorch, `torch.autocast` runs each operation in the precision that suits it: matrix products
# and convolutions in 16 bits, reductions and the loss in float32. First the cost of one training
# step of the MLP in each precision, then whole training runs. The course's training loop takes
# `precision="bfloat16"` or `"float16"` (the latter with a `GradScaler`); each run trains the MLP
# on 20,000 images for three epochs and is validated on 5,000 held-out training images.

# %%
step_timings = {}
for precision in ("float32", "bfloat16", "float16"):
    torch.manual_seed(0)
    step_timings[precision] = time_it(make_step(mlp((784, 512, 512, 10)).to(DEVICE), x256, y256, precision=precision),
                                      repeats=10, warmup=2)
    print(f"{precision:>9} step: {step_timings[precision]}")
bf16_step_speed = step_timings["float32"].median / step_timings["bfloat16"].median
fp16_step_speed = step_timings["float32"].median / step_timings["float16"].median
glue("bf16_step_speed", f"{bf16_step_speed:.2f}")
glue("fp16_step_phrase", f"ran {fp16_step_speed:.2f} times as fast" if fp16_step_speed >= 1
     else f"took {1 / fp16_step_speed:.1f} times as long")
# float16 training runs only where float16 products are fast (on this CPU a step takes many times longer)
fast_fp16 = fp16_step_speed > 0.5


def precision_run(precision, epochs=3):
    torch.manual_seed(0)
    model = mlp((784, 512, 512, 10)).to(DEVICE)
    history = train_classifier(model, optim.adam(1e-3), data.x_train, data.y_train, epochs=epochs, batch_size=256,
                               precision=precision, progress=False, name=precision)
    with torch.autocast(torch.device(DEVICE).type, dtype=getattr(torch, precision),
                        enabled=precision != "float32"):
        val = evaluate(model, data.x_val, data.y_val)
    return history, val


for precision in ("float32", "bfloat16"):  # an untimed warm-up, so that neither run pays for first calls
    train_classifier(mlp((784, 512, 512, 10)).to(DEVICE), optim.adam(1e-3), data.x_train, data.y_train,
                     max_steps=20, batch_size=256, precision=precision, progress=False)
precision_results = {p: precision_run(p) for p in ("float32", "bfloat16") + (("float16",) if fast_fp16 else ())}
base_seconds = precision_results["float32"][0].last("seconds")
for precision, (history, val) in precision_results.items():
    seconds = history.last("seconds")
    print(f"{precision:>9}: {seconds:5.2f} s ({base_seconds / seconds:.2f}x float32's speed)  "
          f"validation accuracy {val['accuracy']:.2%}  skipped steps {history.meta.get('skipped_steps', 0)}")
bf16_speed = base_seconds / precision_results["bfloat16"][0].last("seconds")
acc = {p: v["accuracy"] for p, (_, v) in precision_results.items()}
glue("bf16_speed", f"{bf16_speed:.2f}")
glue("bf16_verdict", "faster" if bf16_speed > 1 else "slower")
glue("acc_fp32", f"{acc['float32']:.2%}")
glue("acc_bf16", f"{acc['bfloat16']:.2%}")
glue("fp16_run", f"float16 with loss scaling reached {acc['float16']:.2%}" if fast_fp16 else
     f"float16 was not trained here, since its step took {1 / fp16_step_speed:.0f} times as long as float32's")
assert all(abs(a - acc["float32"]) < 0.005 for a in acc.values())  # "within half a point"

fig, ax = plt.subplots(figsize=(7, 4))
for precision, (history, _) in precision_results.items():
    seconds, losses = history.series("seconds")[1], history.series("loss")[1]
    ax.plot(seconds[9:], np.convolve(losses, np.ones(10) / 10, mode="valid"), label=precision)
ax.set(xlabel="seconds", ylabel="training loss (10-step mean)", yscale="log",
       title="The same training curve, in less time where 16-bit products are fast")
ax.legend()
plt.show()

# %% [markdown]
# On this {glue:text}`device_name`, a bfloat16 step ran {glue:text}`bf16_step_speed` times as fast
# as a float32 one, and a float16 step {glue:text}`fp16_step_phrase`. Whole runs:
# bfloat16 autocast made training {glue:text}`bf16_speed` times as fast as float32
# ({glue:text}`bf16_verdict`), with validation accuracies of {glue:text}`acc_fp32` (float32) and
# {glue:text}`acc_bf16` (bfloat16), within half a point of each other; {glue:text}`fp16_run`.
# Whether 16 bits pay depends on the hardware: recent x86 CPUs with AVX-512 BF16 or AMX
# instructions have fast bfloat16 products but few fast float16 ones, so float16 falls back to slow
# generic code; NVIDIA GPUs since Volta run float16 on tensor cores (bfloat16 since Ampere), and
# TPUs were built around bfloat16 {cite}`jouppi2017`. Where 16 bits pay, they also halve the memory
# of activations, so a larger batch fits.
#
# Keras expresses the same idea as a *dtype policy*: `mixed_bfloat16` or `mixed_float16` makes
# every layer compute in 16 bits and keep its variables in float32. Under `mixed_float16`, `compile`
# wraps the optimizer in a `LossScaleOptimizer` on its own. Keep the last layer in float32, so that
# the softmax and the loss are computed in full precision:

# %%
def keras_policy_model(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                                  keras.layers.Dense(512, activation="relu"), keras.layers.Dense(512, activation="relu"),
                                  keras.layers.Dense(10, dtype="float32")])  # logits and loss in float32
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return model


x_train_np, y_train_np = data.x_train.cpu().numpy(), data.y_train.cpu().numpy()
x_val_np, y_val_np = data.x_val.cpu().numpy(), data.y_val.cpu().numpy()
keras_results = {}
for policy in ("float32", "mixed_bfloat16", "mixed_float16"):
    model = keras_policy_model(policy)
    dense = model.layers[1]
    model.fit(x_train_np[:512], y_train_np[:512], batch_size=256, epochs=1, verbose=0)  # trace first
    start = time.perf_counter()
    model.fit(x_train_np, y_train_np, batch_size=256, epochs=2, verbose=0)
    seconds = time.perf_counter() - start
    accuracy = model.evaluate(x_val_np, y_val_np, verbose=0)[1]
    keras_results[policy] = (seconds, accuracy, type(model.optimizer).__name__)
    print(f"{policy:>15}: compute {dense.compute_dtype}, variables {dense.variable_dtype}, "
          f"optimizer {type(model.optimizer).__name__}: {seconds:.2f} s, validation accuracy {accuracy:.2%}")
assert keras_results["mixed_float16"][2] == "LossScaleOptimizer" and keras_results["mixed_bfloat16"][2] == "Adam"
glue("keras_bf16_time", f"{keras_results['mixed_bfloat16'][0] / keras_results['float32'][0]:.0%}")
glue("keras_acc_gap", f"{abs(keras_results['mixed_bfloat16'][1] - keras_results['float32'][1]) * 100:.2f}")
assert abs(keras_results["mixed_bfloat16"][1] - keras_results["float32"][1]) < 0.01  # "within a point"

# %% [markdown]
# The policy changes the compute dtype and leaves the variables in float32; under `mixed_float16`
# the optimizer became a `LossScaleOptimizer`, under `mixed_bfloat16` it stayed `Adam`, since bfloat16
# needs no scaling. Here the two `mixed_bfloat16` epochs took {glue:text}`keras_bf16_time` of
# float32's time, and the validation accuracies are {glue:text}`keras_acc_gap` points apart (within
# a point). On a CPU, how much of a Keras step runs in fast bfloat16 kernels depends on TensorFlow's
# oneDNN build; on a GPU or a TPU the policy is the standard setting.
#
# ## Compilation: `torch.compile`
#
# Eager PyTorch runs one kernel per operation and returns to Python in between. `torch.compile`
# {cite}`ansel2024` captures the step's graph (TorchDynamo), then generates fused kernels for it
# (TorchInductor: C++/OpenMP on a CPU, Triton on a GPU). The compilation happens at the first call
# and costs seconds; it pays only if the later calls are faster by enough, for long enough. We
# time the first call separately and compare steady-state medians:

# %%
import warnings  # noqa: E402

import torch._inductor.config  # noqa: E402

torch._inductor.config.force_disable_caches = True  # a cold compilation, as on a fresh machine, every run
warnings.filterwarnings("ignore", message="dynamo_pgo force disabled")  # says only what the line above asked
torch.manual_seed(0)
compiled_mlp = torch.compile(mlp((784, 512, 512, 10)).to(DEVICE))
compiled_step = make_step(compiled_mlp, x256, y256)
synchronize(DEVICE)
start = time.perf_counter()
compiled_step()  # compiles the forward and the backward graphs
synchronize(DEVICE)
compile_seconds = time.perf_counter() - start
compiled_timing = time_it(compiled_step, repeats=30, warmup=3)
eager_timing = time_it(mlp_step, repeats=30, warmup=3)  # again, in the same conditions
compile_speedup = eager_timing.median / compiled_timing.median
saved_per_step = eager_timing.median - compiled_timing.median
print(f"eager {eager_timing}\ncompiled {compiled_timing}\nfirst call (compilation) {compile_seconds:.1f} s")
glue("compile_speedup", f"{compile_speedup:.2f}")
glue("compile_in_steps", f"{compile_seconds / eager_timing.median:,.0f}")
glue("compile_verdict", "pays back its compilation after about "
     f"{compile_seconds / saved_per_step:,.0f} steps" if saved_per_step > 0 else "never pays back its compilation here")
assert compile_seconds > 20 * eager_timing.median  # "costs as much as many eager steps"
if DEVICE == "cpu":
    assert compile_speedup < 1.1  # "on a CPU, a small MLP is a poor case for compilation"

# %% [markdown]
# The compiled step runs {glue:text}`compile_speedup` times as fast as the eager one; its first call,
# the compilation, cost as much as {glue:text}`compile_in_steps` eager steps, so on this machine the
# compiled model {glue:text}`compile_verdict`. On a CPU, a small MLP is a poor case for compilation
# (a speed-up under 1.1): its time sits in a few large matrix products that oneDNN already runs well,
# and there is little to fuse between them. Compilation pays where the step has many small element-wise operations
# (normalizations, activations, attention's softmax) and where kernel launches are expensive, on a
# GPU, and for long training runs. The same holds for XLA in Keras (`jit_compile=True`, measured
# above) and for JAX, which compiles every step with XLA by design.
#
# ## Pitfalls
#
# * Timing without synchronizing on a GPU measures how fast Python queues work, not the work.
#   Timing a single call includes its warm-up. Use a helper that does both, and compare medians
#   measured in one run.
# * Optimizing before profiling: the operator table shows where the time is; a faster loss function
#   does nothing for a step whose time sits in convolutions.
# * A `DataLoader` with `num_workers=0` behind a GPU: the GPU waits for the CPU. On macOS and
#   Windows, workers are *spawned*, not forked: the data set must be importable (a class defined in a
#   module, such as `AugmentedImages`, not in the notebook) and hold no open file handles.
# * float16 without loss scaling: small gradients become zero and training quietly stalls; keep the
#   scaler, or use bfloat16 where the hardware has it.
# * Putting the softmax and the loss in 16 bits: keep the last layer in float32 (Keras'
#   `dtype="float32"`, autocast's float32 list for `cross_entropy`).
# * A `tf.function` that traces on every call (a Python number that changes, a ragged last batch):
#   it is slower than eager. Count the traces.
# * Judging `torch.compile` by its first call, or by its steady state alone: report both.
#
# ## Summary
#
# * Measure a step with warm-up, device synchronization and the median of repeats; compare variants
#   by ratios measured in one run.
# * The profiler shows that a network's time sits in a few operators: matrix products for an MLP,
#   convolutions for a CNN.
# * The input pipeline can be the bottleneck: parallel workers, prefetching and moving work out of
#   the per-example path fix it.
# * Mixed precision computes products in 16 bits and keeps weights and reductions in float32;
#   float16 needs loss scaling, bfloat16 does not; the speed-up depends on the hardware, the accuracy
#   barely moves.
# * Graph execution and compilation remove Python and fuse kernels; compilation has an up-front cost
#   that long runs and GPUs repay.
#
# ## Exercises
#
# ### Exercise 1 — Implement it: dynamic loss scaling
#
# Write `update_loss_scale(scale, found_inf, good_steps, growth_interval=2000)` that returns the new
# `(scale, good_steps)` after one step, as `torch.amp.GradScaler` does with its defaults: on an
# overflow (`found_inf` true) halve the scale and reset the count of good steps; otherwise count
# the step, and when the count reaches `growth_interval`, double the scale and reset the count.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "where-time-goes-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
def update_loss_scale(scale, found_inf, good_steps, growth_interval=2000):
    """Halve on overflow; double after ``growth_interval`` steps in a row without one."""
    ### BEGIN SOLUTION
    if found_inf:
        return scale * 0.5, 0
    good_steps += 1
    if good_steps == growth_interval:
        return scale * 2.0, 0
    return scale, good_steps
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "where-time-goes-ex1-check", "locked": true, "points": 2, "schema_version": 3, "solution": false}
assert update_loss_scale(65536.0, True, 5) == (32768.0, 0), f"an overflow halves the scale and resets the count: got {update_loss_scale(65536.0, True, 5)}"
assert update_loss_scale(1024.0, False, 1998) == (1024.0, 1999), f"no overflow: the count grows by one: got {update_loss_scale(1024.0, False, 1998)}"
assert update_loss_scale(1024.0, False, 1999) == (2048.0, 0), f"after 2000 good steps the scale doubles and the count resets: got {update_loss_scale(1024.0, False, 1999)}"
### BEGIN HIDDEN TESTS
# the same sequence of overflows through torch's own GradScaler
overflows = [True, False, False, True, False, False, False, False, True, False, False, False]
scaler = torch.amp.GradScaler("cpu", init_scale=256.0, growth_interval=3)
weight = torch.nn.Parameter(torch.ones(1))
sgd = torch.optim.SGD([weight], lr=0.0)
scale, good = 256.0, 0
for overflow in overflows:
    sgd.zero_grad()
    scaler.scale(weight.sum() * (float("inf") if overflow else 1.0)).backward()
    scaler.step(sgd)
    scaler.update()
    scale, good = update_loss_scale(scale, overflow, good, growth_interval=3)
    assert scale == scaler.get_scale(), (scale, scaler.get_scale())
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 — Implement it: rounding to bfloat16
#
# bfloat16 is the upper half of a float32's 32 bits. Write `to_bfloat16(x)` that takes a float32
# NumPy array and returns the float32 values of its nearest bfloat16 numbers, rounding to nearest
# with ties to even, using only integer operations on the bits (`x.view(np.uint32)`). Finite values
# only; you need not handle NaN.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "where-time-goes-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
def to_bfloat16(x):
    """Round float32 values to the nearest bfloat16 (ties to even), returned as float32."""
    ### BEGIN SOLUTION
    bits = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    lsb = (bits >> 16) & 1  # the last bit that stays: ties go to the even neighbour
    rounded = (bits + 0x7FFF + lsb) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "where-time-goes-ex2-check", "locked": true, "points": 2, "schema_version": 3, "solution": false}
assert to_bfloat16(np.float32([1.0]))[0] == 1.0, "1.0 is exactly representable in bfloat16"
assert to_bfloat16(np.float32([1 + 2**-8]))[0] == 1.0, "round to nearest, ties to even"  # a tie: 1.0 is even
assert to_bfloat16(np.float32([1 + 3 * 2**-8]))[0] == 1 + 2**-6, "round to nearest, ties to even"  # a tie: rounds up to the even neighbour
### BEGIN HIDDEN TESTS
values = np.random.default_rng(0).standard_normal(100_000).astype(np.float32) * np.float32(1e3)
values = np.concatenate([values, np.float32([0.0, -0.0, 3.0e38, 1e-30, -7.25])])
expected = torch.from_numpy(values).bfloat16().float().numpy()
assert np.array_equal(to_bfloat16(values), expected), "some values differ from torch's bfloat16 rounding (round to nearest, ties to even; keep the input's shape)"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 — Derive it: precision and range of a format
#
# A binary floating-point format with $e$ exponent bits and $m$ mantissa bits (the leading 1 not
# stored) has exponent bias $2^{e-1} - 1$; the stored exponent 0 is reserved for zero and the
# subnormal numbers, the largest ($2^e - 1$) for inf and NaN.
# (a) Derive its machine epsilon (the gap between 1 and the next number), its smallest positive
# normal number, and its largest finite number, as functions of $e$ and $m$. Write them in
# `format_limits(e, m)`, returning `(eps, smallest_normal, largest)`. (b) With your formula, how
# large may a loss scale $S$ be if the largest gradient entry of a step is $g_{max} = 0.5$ and no
# entry may overflow in float16? Why does bfloat16 never need the scale?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "where-time-goes-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
def format_limits(e, m):
    ### BEGIN SOLUTION
    bias = 2 ** (e - 1) - 1
    eps = 2.0**-m
    smallest_normal = 2.0 ** (1 - bias)
    largest = (2 - 2.0**-m) * 2.0**bias  # largest exponent 2^e - 2, minus the bias
    return eps, smallest_normal, largest
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "where-time-goes-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert format_limits(5, 10) == (2.0**-10, 2.0**-14, 65504.0), f"float16 is (2^-10, 2^-14, 65504), got {format_limits(5, 10)}"  # float16
### BEGIN HIDDEN TESTS
for dtype, (e, m) in {torch.float16: (5, 10), torch.bfloat16: (8, 7), torch.float32: (8, 23),
                      torch.float64: (11, 52)}.items():
    info = torch.finfo(dtype)
    assert format_limits(e, m) == (info.eps, info.tiny, info.max), dtype
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "where-time-goes-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) The numbers in $[1, 2)$ are $1.f$ with $m$ fraction bits, spaced $2^{-m}$ apart: $\epsilon = 2^{-m}$.
# The stored exponent runs from 1 (0 is reserved for zero and subnormals) to $2^e - 2$ ($2^e - 1$ is
# reserved for inf and NaN); with bias $b = 2^{e-1} - 1$ the smallest normal number is $2^{1-b}$ and
# the largest is $(2 - 2^{-m})\,2^{(2^e - 2) - b} = (2 - 2^{-m})\,2^{b}$. For float16 ($e = 5$,
# $m = 10$): $\epsilon = 2^{-10}$, smallest normal $2^{-14} \approx 6.1 \times 10^{-5}$, largest
# $65\,504$.
#
# (b) Every gradient entry is multiplied by $S$, so no entry overflows while $S\,g_{max} \le 65\,504$:
# $S \le 131\,008$ for $g_{max} = 0.5$, and the largest power of two, which keeps the scaling exact, is
# $2^{16} = 65\,536$, GradScaler's starting value. bfloat16 has 8 exponent bits like float32, so its
# smallest normal number is float32's ($2^{-126}$): a gradient that float32 represents without
# underflow, bfloat16 represents too (with fewer significant bits), and there is nothing to shift.
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 — Investigate: workers and threads
#
# The two-worker epochs above ran with the training process limited to one thread. Time the epochs
# of the `augmented` loader with the training steps (`Epochs(workers, threads=...)`, and
# `interleaved_medians`) for `num_workers` = 0, 1 and 2, once with the training process at one
# thread and once at PyTorch's default (one per core), and keep the median seconds in a dict
# `worker_seconds` keyed by `(workers, threads)`. Which setting is fastest on this machine? Why can
# more threads in the training process make the epoch *slower*? What would you expect on a machine
# with a GPU and 16 cores?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "where-time-goes-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
default_threads = torch.get_num_threads()
worker_seconds, _ = interleaved_medians({(workers, threads): Epochs(workers, threads=threads)
                                         for workers in (0, 1, 2) for threads in sorted({1, default_threads})},
                                        rounds=2)
for (workers, threads), seconds in worker_seconds.items():
    print(f"num_workers={workers}, {threads} training thread(s): {seconds:.2f} s")
### END SOLUTION

# %% tags=["remove-input"]
assert min(worker_seconds, key=worker_seconds.get)[0] > 0  # "a setting with workers is fastest"

# %% [markdown] nbgrader={"grade": true, "grade_id": "where-time-goes-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# A setting with workers is fastest. With `num_workers=0` the main process alternates between augmenting images and training,
# so the two costs add up; workers overlap them, but only while there are cores to run them. The
# training process's intra-op threads (OpenMP) do not sleep the moment an operation ends: they
# spin for a while waiting for the next one, holding a core. With one thread per core in the
# training process, its threads and the workers fight over the two cores, and a worker that loses
# delays the batch the training process waits for: more threads, slower epoch. On a GPU machine with 16
# cores, the step runs on the GPU and needs one CPU thread to launch kernels; the cores belong to
# the loader, and the epoch time falls with each worker until loading is faster than the GPU step,
# after which it is flat: the profiler trace then shows the GPU busy without gaps between steps.
# :::
# <!-- ### END SOLUTION -->
