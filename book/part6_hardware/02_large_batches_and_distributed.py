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
# # 2. Large batches and many processes: the scaling rule, LAMB, accumulation, data parallelism
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part6_hardware/02_large_batches_and_distributed.ipynb)
#
# The previous chapter made one step cheaper. The other way to finish sooner is to take fewer
# steps, each on a larger batch, and to share each batch among several processors: every
# accelerator in a data centre, and every core of a laptop, computes part of the gradient, and
# the parts are summed. This is how large models are trained, and it raises optimization
# questions that Part I did not: what happens to the learning rate when the batch grows a
# hundredfold, how to reach a batch that does not fit in memory, and how to make sure that eight
# processes take exactly the step that one would have taken.
#
# This chapter covers
#
# * the linear scaling rule with warm-up {cite}`goyal2017`, measured at batch 64 and 4,096;
# * LAMB {cite}`you2020lamb`, the layer-wise trust ratio (after LARS {cite}`you2017lars`), checked
#   against Keras' `Lamb`;
# * gradient accumulation: the same step as the large batch, with a fraction of the memory;
# * data parallelism with PyTorch's own machinery: `torch.distributed`, `DistributedDataParallel`
#   {cite}`li2020ddp` and `torchrun`, on one machine and as two "nodes" joined by a rendezvous;
# * Keras' `tf.distribute.MirroredStrategy`, for comparison;
# * what changes on TPUs and other accelerators.

# %% tags=["hide-input"]
# Setup: on Colab (or anywhere companion is missing) install the course package.
try:
    import companion
except ImportError:
    %pip install -q "dl-optimization-companion[torch,keras] @ git+https://github.com/YOUR-ORG/dl-optimization-hands-on@main"
    import companion

# %% tags=["keep-when-grading"]
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from companion import optim, schedules
from companion.distributed import DDPConfig, launch, train
from companion.glue import glue
from companion.plotting import use_course_style
from companion.reproducibility import pick_device, seed_everything
from companion.training import mlp, mnist_tensors, train_classifier

use_course_style()
seed_everything(0)
DEVICE = pick_device()
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def sci(x):
    """1.2e-07 as '1.2 × 10⁻⁷', for the prose."""
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa} × 10{str(int(exponent)).translate(SUPERSCRIPT)}"


data = mnist_tensors(50_000, val=10_000, test=0, shape="flat", device=DEVICE)
print(f"device: {DEVICE}; {len(data.x_train):,} training and {len(data.x_val):,} validation images")

# %% [markdown]
# ## Large batches and the linear scaling rule
#
# Minibatch SGD with batch size $B$ and learning rate $\eta$ takes the step
# $\theta_{t+1} = \theta_t - \eta\, \frac{1}{B} \sum_{i \in B_t} \nabla \ell_i(\theta_t)$. Take $k$
# such steps on $k$ consecutive batches, and compare them with *one* step on the union of the $k$
# batches, of size $kB$, with learning rate $\hat\eta$:
#
# $$\theta_{t+k} = \theta_t - \eta \sum_{j<k} \frac{1}{B} \sum_{i \in B_{t+j}} \nabla \ell_i(\theta_{t+j})
# \qquad\text{against}\qquad
# \hat\theta_{t+1} = \theta_t - \hat\eta\, \frac{1}{kB} \sum_{j<k} \sum_{i \in B_{t+j}} \nabla \ell_i(\theta_t).$$
#
# If the gradients barely change over $k$ steps ($\nabla\ell_i(\theta_{t+j}) \approx \nabla \ell_i(\theta_t)$),
# the two agree when $\hat\eta = k\eta$: **multiply the learning rate by the factor by which the
# batch grows** {cite}`goyal2017`. The assumption fails at the start of training, where the weights
# change fast; hence a **warm-up**: raise the learning rate linearly from a small value to $k\eta$
# over the first epochs. With both, Goyal et al. trained ImageNet at batch 8,192 to the accuracy of
# batch 256. Large batches have also been observed to generalize worse, converging to sharper minima
# {cite}`keskar2017`; how much of that gap is the batch itself and how much too few steps at a
# rate too small is still debated.
#
# We train the course's MLP on 50,000 MNIST images for 8 epochs with SGD (momentum 0.9) and a cosine
# schedule: at batch 64 with $\eta = 0.02$, and at batch 4,096 ($k = 64$) with the same $\eta$, with
# $k\eta = 1.28$, and with $k\eta$ after a warm-up of half the run. Accuracy is measured on 10,000
# held-out training images after every epoch.

# %%
EPOCHS, BASE_BATCH, BASE_LR, LARGE_BATCH = 8, 64, 0.02, 4_096
K = LARGE_BATCH // BASE_BATCH


def run(batch_size, learning_rate, warmup_steps=0, method="sgd", epochs=EPOCHS):
    steps = epochs * (len(data.x_train) // batch_size)
    schedule = schedules.cosine_decay(learning_rate, steps - warmup_steps)  # decays to 0 by the end of the run
    if warmup_steps:
        schedule = schedules.linear_warmup(schedule, warmup_steps)
    optimizer = optim.sgd(schedule, momentum=0.9) if method == "sgd" else optim.lamb(schedule)
    torch.manual_seed(0)
    model = mlp((784, 256, 10)).to(DEVICE)
    return train_classifier(model, optimizer, data.x_train, data.y_train, x_val=data.x_val, y_val=data.y_val,
                            epochs=epochs, batch_size=batch_size, drop_last=True, progress=False)


large_steps_per_epoch = len(data.x_train) // LARGE_BATCH
WARMUP = EPOCHS // 2 * large_steps_per_epoch
runs = {
    f"batch {BASE_BATCH}, η = {BASE_LR}": run(BASE_BATCH, BASE_LR),
    f"batch {LARGE_BATCH:,}, η = {BASE_LR}": run(LARGE_BATCH, BASE_LR),
    f"batch {LARGE_BATCH:,}, η = {K * BASE_LR:.2f}, no warm-up": run(LARGE_BATCH, K * BASE_LR),
    f"batch {LARGE_BATCH:,}, η = {K * BASE_LR:.2f}, warm-up": run(LARGE_BATCH, K * BASE_LR, WARMUP),
}
final = {name: history.last("val_accuracy") for name, history in runs.items()}
small, same_lr, no_warmup, warmup = final.values()
for name, history in runs.items():
    print(f"{name:<38} validation accuracy {history.last('val_accuracy'):.2%}  "
          f"({history.last('seconds'):.1f} s, {history.series('loss')[0][-1]:.0f} steps)")
small_seconds = runs[f"batch {BASE_BATCH}, η = {BASE_LR}"].last("seconds")
large_seconds = runs[f"batch {LARGE_BATCH:,}, η = {K * BASE_LR:.2f}, warm-up"].last("seconds")
glue("lb_small", f"{small:.2%}")
glue("lb_same_lr", f"{same_lr:.2%}")
glue("lb_no_warmup", f"{no_warmup:.2%}")
glue("lb_warmup", f"{warmup:.2%}")
glue("lb_gap", f"{abs(small - warmup) * 100:.1f} points {'below' if warmup < small else 'above'} it")
glue("lb_warmup_epochs", str(EPOCHS // 2))
glue("lb_speed", f"{small_seconds / large_seconds:.1f}")
assert same_lr < small - 0.05  # "loses more than five points"
assert small_seconds > 1.5 * large_seconds  # "each epoch took much less time at batch 4,096"
assert no_warmup < warmup and abs(warmup - small) < 0.01  # "within a point of batch 64"

fig, (ax_epochs, ax_seconds) = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
for name, history in runs.items():
    steps, accuracy = history.series("val_accuracy")
    epochs_done = np.arange(1, len(accuracy) + 1)
    ax_epochs.plot(epochs_done, accuracy, marker="o", label=name)
    seconds = dict(zip(*history.series("seconds")))
    ax_seconds.plot([seconds[s] for s in steps], accuracy, marker="o", label=name)
ax_epochs.set(xlabel="epoch", ylabel="validation accuracy", ylim=(0.8, 1.0),
              title="Scaled and warmed up, batch 4,096 catches up")
ax_seconds.set(xlabel="seconds", title="... in less time per epoch")
ax_epochs.legend(fontsize=8)
plt.show()

# %% [markdown]
# At batch 64 the MLP reaches {glue:text}`lb_small`. At batch 4,096 with the same learning rate it
# takes 64 times fewer steps of the same size and ends at {glue:text}`lb_same_lr`, more than five
# points behind. Scaling the learning rate by 64 without a warm-up reaches {glue:text}`lb_no_warmup`:
# the first large steps, taken while the gradients still change fast, throw the weights far off.
# With the scaled rate reached after a warm-up of {glue:text}`lb_warmup_epochs` epochs the run ends at
# {glue:text}`lb_warmup`, within a point of batch 64 ({glue:text}`lb_gap`). Each epoch took
# much less time at batch 4,096 (the whole run was {glue:text}`lb_speed` times as fast here): one
# large matrix product keeps the hardware busier than 64 small ones, and on many processors the
# large batch is what can be split among them.
#
# ## LAMB: a learning rate for every layer
#
# The scaling rule gives one learning rate to every layer, but layers differ: in a network the ratio
# of a layer's weight norm to its gradient norm can vary by orders of magnitude, and a rate large
# enough for one layer makes another diverge. LARS {cite}`you2017lars` and LAMB {cite}`you2020lamb`
# rescale each layer's update $r^{(l)}$ to the size of its weights, the *trust ratio*:
#
# $$\theta^{(l)}_{t+1} = \theta^{(l)}_t - \eta_t\, \frac{\lVert \theta^{(l)}_t \rVert}{\lVert r^{(l)}_t \rVert}\, r^{(l)}_t,
# \qquad r^{(l)}_t = \frac{\hat m^{(l)}_t}{\sqrt{\hat v^{(l)}_t} + \epsilon} + \lambda\,\theta^{(l)}_t \quad\text{(LAMB)}.$$
#
# Every layer then moves by a fraction $\eta_t$ of its own norm per step, whatever its gradient's
# scale. In `companion.optim`, LAMB is Adam's chain with one more link, `scale_by_trust_ratio()`;
# PyTorch ships no LAMB, Keras does (`keras.optimizers.Lamb`, compared with ours in the Keras section
# below). How different the layers are shows in LARS's ratio of weight norm to gradient norm,
# $\lVert\theta^{(l)}\rVert / \lVert\nabla_{\theta^{(l)}} J\rVert$, for each of the MLP's four
# tensors at initialization, on a batch of 4,096:

# %%
torch.manual_seed(0)
probe = mlp((784, 256, 10)).to(DEVICE)
F.cross_entropy(probe(data.x_train[:LARGE_BATCH]), data.y_train[:LARGE_BATCH]).backward()
ratios = []
for name, p in probe.named_parameters():
    ratios.append((p.norm() / p.grad.norm()).item())
    print(f"{name:>9} {tuple(p.shape)!s:>11}: |w| = {p.norm():6.3f}   |g| = {p.grad.norm():6.4f}   "
          f"|w|/|g| = {ratios[-1]:5.1f}")
glue("trust_spread", f"{max(ratios) / min(ratios):.1f}")
assert max(ratios) / min(ratios) > 3  # "differ by a factor of more than three"

lamb_run = run(LARGE_BATCH, 0.05, WARMUP, method="lamb")
glue("lamb_acc", f"{lamb_run.last('val_accuracy'):.2%}")
print(f"LAMB, batch {LARGE_BATCH:,}, η = 0.05, warm-up: validation accuracy {lamb_run.last('val_accuracy'):.2%}")
assert lamb_run.last("val_accuracy") > same_lr + 0.05  # "far above batch 4,096 at SGD's unscaled rate"
assert lamb_run.last("val_accuracy") < warmup + 0.005  # "a well-scaled SGD does as well"

# %% [markdown]
# Even in this two-layer MLP the ratios differ by a factor of {glue:text}`trust_spread` (more than
# three): one learning rate moves the four tensors by very different fractions of their size.
# (LAMB's own ratio uses the Adam direction $r^{(l)}$ in place of the gradient; the point is the same.) In deep
# networks the ratios spread over orders of magnitude, which is what LARS was built for
# {cite}`you2017lars`. LAMB at batch 4,096 with $\eta = 0.05$ and the same warm-up reaches
# {glue:text}`lamb_acc`, far above SGD at its unscaled rate; on an MLP this small, a well-scaled SGD
# with warm-up does as well. LAMB's advantage shows on deep networks whose layers differ more, such
# as BERT, which its authors trained at batch 65,536 {cite}`you2020lamb`.
#
# ## Gradient accumulation: a large batch that does not fit
#
# A batch of $B$ examples needs memory for $B$ sets of activations, stored in the forward pass for the
# backward one. When $B$ does not fit, split it into $k$ micro-batches $B_1, \dots, B_k$, run
# forward and backward on each, and let the gradients *add up* in `.grad` before one optimizer
# step. The mean loss over the batch is the share-weighted sum of the micro-batches' mean losses,
#
# $$J(\theta; B) = \frac{1}{|B|}\sum_{i \in B} \ell_i(\theta) = \sum_{j=1}^{k} \frac{|B_j|}{|B|}\,
# J(\theta; B_j),$$
#
# so weighting each micro-batch's loss by $|B_j|/|B|$ before its backward pass gives exactly the
# gradient of the whole batch (dividing by $k$ is right only when the micro-batches are equal).
# `train_classifier(accumulation_steps=k)` does this. We check it on twenty steps at batch 4,096,
# whole and as 8 micro-batches of 512, in float64 so that rounding cannot hide a mistake (a large
# learning rate amplifies float32's last-bit differences from step to step), and we measure the
# activation memory that autograd keeps for the backward pass, with a hook that counts the bytes of
# every tensor it saves (the input batch, which is in memory anyway, left out):

# %%
x_train64 = data.x_train.double()


def accumulate_run(accumulation_steps, steps=20):
    torch.manual_seed(0)
    model = mlp((784, 256, 10)).to(DEVICE).double()
    history = train_classifier(model, optim.sgd(K * BASE_LR, momentum=0.9), x_train64, data.y_train,
                               batch_size=LARGE_BATCH, max_steps=steps, accumulation_steps=accumulation_steps,
                               progress=False)
    return model, history


def saved_activation_bytes(batch_size):
    """Bytes of the tensors autograd saves for the backward pass of one forward pass on ``batch_size`` images."""
    seen = {}

    def pack(tensor):
        seen[(tensor.data_ptr(), tensor.shape)] = tensor.numel() * tensor.element_size()
        return tensor

    torch.manual_seed(0)
    model = mlp((784, 256, 10)).to(DEVICE)
    inputs = data.x_train[:batch_size]
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        F.cross_entropy(model(inputs), data.y_train[:batch_size])
    not_activations = {p.data_ptr() for p in model.parameters()} | {inputs.data_ptr()}
    return sum(size for (ptr, _), size in seen.items() if ptr not in not_activations)


whole_model, whole = accumulate_run(1)
parts_model, parts = accumulate_run(8)
difference = max((a - b).abs().max().item() for a, b in zip(whole_model.parameters(), parts_model.parameters()))
memory_whole, memory_part = saved_activation_bytes(LARGE_BATCH), saved_activation_bytes(LARGE_BATCH // 8)
print(f"largest parameter difference after 20 steps: {difference:.1e} (float64)")
print(f"activations saved for backward: batch 4,096 {memory_whole / 2**20:.2f} MiB, micro-batch 512 "
      f"{memory_part / 2**20:.2f} MiB")
glue("accum_difference", sci(difference))
glue("accum_memory_ratio", f"{memory_whole / memory_part:.1f}")
glue("accum_time_ratio", f"{parts.last('seconds') / whole.last('seconds'):.2f}")
assert difference < 1e-10  # "agree to float64 rounding"
assert 7.5 < memory_whole / memory_part <= 8.0  # "about 8 times less"

# %% [markdown]
# After twenty steps the parameters agree to {glue:text}`accum_difference`: float64 rounding. The micro-batch of 512 saves
# {glue:text}`accum_memory_ratio` times less activation memory for its backward pass than the whole
# batch, about 8 times less. Accumulation is for memory, not speed: here the accumulated run took
# {glue:text}`accum_time_ratio` times as long as the whole batch at once.
#
# ## Data parallelism: one step, many processes
#
# Data parallelism gives each of $W$ processes (*ranks*) a full copy of the model and a $1/W$ share of
# every global batch. Each rank computes the gradient of its shard; an **all-reduce** sums the
# gradients of all ranks and hands every rank the result, which is divided by $W$:
#
# $$g_t = \frac{1}{W} \sum_{r=1}^{W} \nabla_\theta J(\theta_t; B_{t,r})
# = \nabla_\theta J(\theta_t; B_t) \quad\text{when } |B_{t,r}| = |B_t|/W.$$
#
# Every rank then takes the same optimizer step, and the copies stay identical without sending
# weights again (DDP sends rank 0's initial weights to the others once, when it wraps the model). PyTorch's `DistributedDataParallel` (DDP) {cite}`li2020ddp` does the all-reduce inside the
# backward pass, bucket by bucket, so that communication overlaps with the gradients still being
# computed; `torch.distributed` provides the collective operations over a *backend* (gloo on CPUs,
# NCCL between NVIDIA GPUs); `torchrun` starts the processes and tells each its rank, the world size
# and where to meet. The course's entry point, `python -m companion.distributed`, trains the MNIST
# MLP this way with the course's SGD and training loop: it calls
# `torch.distributed.init_process_group`, wraps the model in `DistributedDataParallel`, and gives
# `train_classifier` a sampler that hands each rank every $W$-th example of each global batch. On
# one machine:
#
# ```bash
# torchrun --standalone --nproc-per-node=2 -m companion.distributed --steps 60 --out result.pt
# ```
#
# `companion.distributed.launch` runs that command from Python (with every setting of the run spelled
# out as an option) and returns rank 0's result. We train for 60 steps at a global batch of 256 with
# two processes, and compare the parameters with those of one process that trains on the whole
# global batch, on the same device (`companion.distributed.train`):

# %%
ddp_config = DDPConfig(steps=60, global_batch=256, train=16_384, hidden=256)
two_processes = launch(ddp_config, nproc=2, timeout=300)
single = train(ddp_config, device=two_processes["device"])  # one GPU per process, or the CPU for both


def parameter_difference(a, b):
    return max((a["state_dict"][k] - b["state_dict"][k]).abs().max().item() for k in a["state_dict"])


ddp_difference = parameter_difference(two_processes, single)
print(f"2 processes ({two_processes['backend']}): largest difference from 1 process {ddp_difference:.1e}")
glue("ddp_difference", sci(ddp_difference))
glue("ddp_backend", two_processes["backend"])
assert two_processes["world_size"] == 2 and ddp_difference < 1e-5  # "the same parameters, to float32 rounding"

# %% [markdown]
# Two processes, talking over {glue:text}`ddp_backend`, end with the parameters of the single
# process to within {glue:text}`ddp_difference`: float32 rounding, since the all-reduce adds the two
# shards' mean gradients in a different order than one process sums 256 examples.
#
# **Past one machine.** Nothing in the script changes when the processes sit on different hosts:
# only the launch does. Each host runs `torchrun` with the number of nodes, and all of them meet at
# a *rendezvous* endpoint, a host and port that every node can reach; the c10d rendezvous backend
# assigns the ranks. On two real hosts, with the first one's address:
#
# ```bash
# # on every host (the first host's address as the endpoint)
# torchrun --nnodes=2 --nproc-per-node=1 --rdzv-backend=c10d --rdzv-endpoint=10.0.0.1:29500 \
#          --rdzv-id=mnist-run -m companion.distributed --steps 60 --out result.pt
# ```
#
# (With `--rdzv-backend=static`, `torchrun`'s default when no rendezvous backend is named, the ranks are
# fixed instead by `--node-rank=0` and `--node-rank=1` with `--master-addr` and `--master-port`.)
# Here both "nodes" are processes on this machine, meeting at 127.0.0.1: exactly the commands two
# hosts would run, with one address changed.

# %%
two_nodes = launch(ddp_config, nproc=1, nnodes=2, timeout=300)
nodes_difference = parameter_difference(two_nodes, single)
print(f"2 nodes x 1 process, c10d rendezvous on 127.0.0.1: largest difference {nodes_difference:.1e}")
glue("nodes_difference", sci(nodes_difference))
assert two_nodes["world_size"] == 2 and nodes_difference < 1e-5

# throughput, both on the CPU (a single GPU would otherwise serve one process and not two)
cpu_config = DDPConfig(**{**ddp_config.__dict__, "device": "cpu"})
one_process, two_on_cpu = launch(cpu_config, nproc=1, timeout=300), launch(cpu_config, nproc=2, timeout=300)
throughput_ratio = two_on_cpu["examples_per_second"] / one_process["examples_per_second"]
print(f"throughput: 1 process {one_process['examples_per_second']:,.0f} images/s, "
      f"2 processes {two_on_cpu['examples_per_second']:,.0f} images/s ({throughput_ratio:.2f}x)")
glue("ddp_throughput_ratio", f"{throughput_ratio:.2f}")
glue("cpu_count", str(os.cpu_count()))
if os.cpu_count() <= 2:
    glue("ddp_throughput_comment", "On two cores, the two processes (one thread each) share the cores that one "
         "process used with two threads, so there is nothing to gain (two processes were not faster), and the "
         "ratio shows the cost of the all-reduce, paid at every step, and of each process's smaller matrix products.")
    assert throughput_ratio < 1.0  # "two processes were not faster"
else:
    glue("ddp_throughput_comment", f"Each process had {os.cpu_count() // 2} of the cores, against all of them for "
         "the single process: what two processes gain here is what the all-reduce and the smaller per-process "
         "matrix products leave of the better use of the cores.")

# %% [markdown]
# The two-node run ends at the same parameters (largest difference {glue:text}`nodes_difference`).
# As for speed, on the CPU: two processes processed {glue:text}`ddp_throughput_ratio` times as many
# images per second as one, on a machine with {glue:text}`cpu_count` cores. {glue:text}`ddp_throughput_comment`
# Data parallelism pays when each rank brings hardware of its own, a GPU per process on one machine
# (NCCL over NVLink) or a machine per node: each rank computes only its $1/W$ of the global batch,
# while it sends and receives about $2\frac{W-1}{W}$ times the gradients' size per step with a ring
# all-reduce (Exercise 3): bounded by twice the gradients' size, nearly independent of $W$. The global batch grows with $W$, and with it the
# learning rate, by the rule of the first section.
#
# ## Keras: `tf.distribute.MirroredStrategy`
#
# TensorFlow's equivalent for one machine is `MirroredStrategy`: variables created in its scope are
# mirrored on every device, each device takes its share of the batch, and the gradients are
# all-reduced. Without two GPUs, TensorFlow can split the CPU into two *logical* devices (this must
# happen before TensorFlow's first operation, which is why the chapter imports it only here). We
# train the same MLP for one epoch on 8,192 images, global batch 256, once on one device and once
# mirrored on two:

# %%
from companion.quiet import quiet_tensorflow  # noqa: E402

with quiet_tensorflow():  # TensorFlow's C++ start-up messages stay off the page
    import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")  # MirroredStrategy logs every reduction at INFO level
try:  # before TensorFlow's first operation: hide any GPU (the comparison runs on the CPU), split the CPU in two
    tf.config.set_visible_devices([], "GPU")
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
except RuntimeError:  # this cell ran before in this kernel: the devices are already configured
    pass
import keras  # noqa: E402

x_keras = data.x_train[:8_192].cpu().numpy().reshape(-1, 28, 28)
y_keras = data.y_train[:8_192].cpu().numpy()


def keras_mlp():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(256, activation="relu"), keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


single_device = keras_mlp()
single_device.fit(x_keras, y_keras, batch_size=256, epochs=1, shuffle=False, verbose=0)
strategy = tf.distribute.MirroredStrategy([device.name for device in tf.config.list_logical_devices("CPU")])
with strategy.scope():
    mirrored = keras_mlp()
mirrored.fit(x_keras, y_keras, batch_size=256, epochs=1, shuffle=False, verbose=0)
mirrored_difference = max(np.abs(a - b).max() for a, b in zip(single_device.get_weights(), mirrored.get_weights()))
print(f"{strategy.num_replicas_in_sync} replicas; largest weight difference from one device: {mirrored_difference:.1e}")
glue("mirrored_difference", sci(mirrored_difference))
assert strategy.num_replicas_in_sync == 2 and mirrored_difference < 1e-5

# %% [markdown]
# Two replicas, and after 32 steps the mirrored model's weights differ from the single device's by
# {glue:text}`mirrored_difference`: the same equality as DDP's, in Keras. Past one machine,
# `MultiWorkerMirroredStrategy` plays the role of `torchrun`'s nodes (each worker reads its rank from
# the `TF_CONFIG` environment variable), and with the JAX backend Keras 3 offers the same through
# `keras.distribution` (`DataParallel`, and `ModelParallel` for models that do not fit on one
# device).
#
# Keras also ships the LAMB of the first section, `keras.optimizers.Lamb`. With the same settings it
# takes the same steps as `companion.optim.lamb`: twenty steps from the weights of the mirrored
# model, with gradients that change with the weights, in float64:

# %%
lamb_settings = dict(learning_rate=2.0**-6, beta_1=0.875, beta_2=1 - 2.0**-7, epsilon=2.0**-20)  # exact in float32
start_weights = [w.astype(np.float64) for w in mirrored.get_weights()]
keras_variables = [keras.Variable(w, dtype="float64") for w in start_weights]
keras_lamb = keras.optimizers.Lamb(**lamb_settings)
ours = optim.lamb(lamb_settings["learning_rate"], b1=lamb_settings["beta_1"], b2=lamb_settings["beta_2"],
                  eps=lamb_settings["epsilon"])
our_weights, our_state = list(start_weights), ours.init(start_weights)
for _ in range(20):
    gradients = [np.sin(3 * w) + 0.1 * w for w in our_weights]
    keras_gradients = [np.sin(3 * v.numpy()) + 0.1 * v.numpy() for v in keras_variables]
    keras_lamb.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in keras_gradients], keras_variables))
    updates, our_state = ours.update(gradients, our_state, our_weights)
    our_weights = optim.apply_updates(our_weights, updates)
lamb_difference = max(np.abs(v.numpy() - w).max() for v, w in zip(keras_variables, our_weights))
lamb_moved = max(np.abs(w - w0).max() for w, w0 in zip(our_weights, start_weights))
print(f"weights moved by up to {lamb_moved:.3f}; largest difference from keras.optimizers.Lamb {lamb_difference:.1e}")
glue("lamb_keras_difference", sci(lamb_difference))
assert lamb_moved > 1e-3 and lamb_difference < 1e-12

# %% [markdown]
# The two LAMBs agree to {glue:text}`lamb_keras_difference`, float64 rounding.
#
# ## TPUs and other accelerators
#
# A TPU is built around a large matrix-multiply unit, a systolic array {cite}`jouppi2017`; the
# generations that train networks add high-bandwidth memory and compute in bfloat16, and all are
# programmed through the XLA compiler. What changes in code:
#
# * **Everything is compiled.** JAX compiles every step with XLA; TensorFlow uses `TPUStrategy` and
#   `jit_compile`; PyTorch reaches TPUs through `torch_xla`, whose tensors on `xm.xla_device()`
#   build a graph that is compiled and run at `xm.mark_step()` (or through `torch.compile` with
#   its XLA backend). The lessons of the previous chapter become rules: fixed shapes (a new shape
#   is a new compilation), no Python values that change between steps, data loaded ahead.
# * **bfloat16 by default**, with float32 accumulation: no loss scaling.
# * **Data parallelism is the same idea at larger scale**: a TPU pod all-reduces over a dedicated
#   interconnect, and its very large global batches are where LAMB was developed
#   {cite}`you2020lamb` (the scaling rule and LARS came from clusters of GPUs).
#
# The same holds for other accelerators (AMD GPUs through ROCm builds of PyTorch, which keep the
# `cuda` device name; Apple GPUs through the `mps` device; Intel GPUs through `xpu`): the device
# name changes, the optimization is the one of this course.
#
# ## Pitfalls
#
# * Growing the batch without the learning rate: the same epochs with {fixed}`64 times` fewer steps
#   of the same size. Scale the rate, and warm it up.
# * Accumulating gradients without weighting: dividing each micro-batch's loss by $k$ is right only
#   when all micro-batches have the same size; weight by $|B_j|/|B|$.
# * Under DDP, synchronizing at every micro-batch of an accumulation: wrap all but the last in
#   `model.no_sync()` (`train_classifier` does), or the all-reduce runs $k$ times per step.
# * Shards of unequal size: DDP averages the ranks' mean gradients with equal weights, so a smaller
#   shard's examples count more. Use a global batch divisible by the world size, and only full
#   global batches (`drop_last`).
# * Every rank writing the checkpoint or the log: let rank 0 do it.
# * Seeds: every rank must draw the same global batches (the same seed for the order), so that the
#   shards partition them; only the shard differs. DDP sends rank 0's initial weights to every rank;
#   a hand-written all-reduce without DDP must seed the initial weights alike.
# * Batch normalization under accumulation or data parallelism: its statistics are those of the
#   micro-batch or the shard, not of the global batch, so the step is no longer exactly the large
#   batch's (PyTorch's `SyncBatchNorm` computes them over all ranks).
#
# ## Summary
#
# * At a {fixed}`64 times` larger batch, multiply the learning rate by 64 and warm it up: the
#   large-batch run catches up with the small one in the same epochs, in less time per epoch.
# * LAMB sets each layer's step to a fraction of its weights' norm, for very large batches and deep
#   networks.
# * Gradient accumulation reaches any batch size in the memory of a micro-batch, with the same step
#   (exactly, for models without batch statistics).
# * Data parallelism averages the ranks' gradients with an all-reduce; `torchrun` and DDP do it on
#   one machine and across machines with the same script, and the result equals one process on the
#   global batch.
#
# ## Exercises
#
# ### Exercise 1 — Implement it: the learning rate of the scaling rule with warm-up
#
# Write `scaled_learning_rate(step, base_lr, base_batch, batch, warmup_steps)` that returns the
# learning rate of Goyal et al.'s recipe at optimizer step `step` (counting from 0): the target rate
# is `base_lr * batch / base_batch`; during the first `warmup_steps` steps it rises linearly from
# `base_lr` (at step 0) to the target (reached at step `warmup_steps`), and stays there afterwards.
# (Goyal et al. start from the small-batch rate; the runs above started from 0. Either works: what
# matters is a small rate while the weights change fast.)

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "large-batches-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
def scaled_learning_rate(step, base_lr, base_batch, batch, warmup_steps):
    """Linear scaling rule with a linear warm-up from ``base_lr`` (Goyal et al., 2017)."""
    ### BEGIN SOLUTION
    target = base_lr * batch / base_batch
    if step >= warmup_steps:
        return target
    return base_lr + (target - base_lr) * step / warmup_steps
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "large-batches-ex1-check", "locked": true, "points": 2, "schema_version": 3, "solution": false}
assert scaled_learning_rate(0, 0.1, 256, 8192, 100) == 0.1, f"at step 0 the rate is the base rate, got {scaled_learning_rate(0, 0.1, 256, 8192, 100)}"
assert abs(scaled_learning_rate(100, 0.1, 256, 8192, 100) - 3.2) < 1e-12, f"after the warm-up: 0.1 * 8192 / 256 = 3.2, got {scaled_learning_rate(100, 0.1, 256, 8192, 100)}"
assert abs(scaled_learning_rate(50, 0.1, 256, 8192, 100) - 1.65) < 1e-12, f"half-way through the warm-up: 1.65, got {scaled_learning_rate(50, 0.1, 256, 8192, 100)}"
### BEGIN HIDDEN TESTS
reference = schedules.linear_warmup(schedules.constant(3.2), 100, start_factor=0.1 / 3.2)
for step in [0, 1, 37, 99, 100, 101, 5000]:
    assert abs(scaled_learning_rate(step, 0.1, 256, 8192, 100) - reference(step)) < 1e-12, step
assert scaled_learning_rate(7, 0.05, 64, 64, 10) == 0.05, f"the same batch size: the base rate, got {scaled_learning_rate(7, 0.05, 64, 64, 10)}"  # no growth, no warm-up effect
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 — Implement it: a ring all-reduce
#
# The all-reduce behind DDP is usually a *ring*: the $W$ ranks sit in a circle, each array is cut
# into $W$ chunks, and in $W - 1$ *reduce-scatter* steps each rank sends one chunk to its right
# neighbour, which adds it to its own; after them, rank $r$ holds the full sum of chunk
# $(r + 1) \bmod W$. In $W - 1$ *all-gather* steps the summed chunks travel around the ring
# once more, each rank overwriting its copy. At reduce-scatter step $s = 0, \dots, W-2$, rank $r$
# sends chunk $(r - s) \bmod W$; at all-gather step $s$, it sends chunk $(r + 1 - s) \bmod W$, the
# one it holds complete. Write `ring_allreduce(arrays)` that simulates it on a list
# of $W$ equal-length 1-D NumPy arrays (one per rank; cut them with `np.array_split`) and returns the
# list of the $W$ results and the number of array elements each rank sent.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "large-batches-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
def ring_allreduce(arrays):
    """Simulated ring all-reduce: (the W per-rank results, elements sent by each rank)."""
    ### BEGIN SOLUTION
    world = len(arrays)
    chunks = [[c.astype(float).copy() for c in np.array_split(np.asarray(a), world)] for a in arrays]
    sent = 0
    for step in range(world - 1):  # reduce-scatter: at step s, rank r sends chunk (r - s) mod W
        outgoing = [(r, (r - step) % world, chunks[r][(r - step) % world].copy()) for r in range(world)]
        for r, c, values in outgoing:
            chunks[(r + 1) % world][c] += values
        sent += len(outgoing[0][2])
    for step in range(world - 1):  # all-gather: rank r owns chunk (r + 1) mod W and passes it on
        outgoing = [(r, (r + 1 - step) % world, chunks[r][(r + 1 - step) % world].copy()) for r in range(world)]
        for r, c, values in outgoing:
            chunks[(r + 1) % world][c] = values
        sent += len(outgoing[0][2])
    return [np.concatenate(c) for c in chunks], sent
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "large-batches-ex2-check", "locked": true, "points": 2, "schema_version": 3, "solution": false}
results, sent = ring_allreduce([np.arange(6.0), np.ones(6), 10 * np.ones(6)])
for result in results:
    assert np.allclose(result, np.arange(6.0) + 11), f"every rank must end with the sum {np.arange(6.0) + 11}, got {result}"
### BEGIN HIDDEN TESTS
gen = np.random.default_rng(0)
for world in (2, 4, 5, 8):
    arrays = [gen.normal(size=40) for _ in range(world)]
    results, sent = ring_allreduce(arrays)
    assert len(results) == world, f"one result per rank: expected {world}, got {len(results)}"
    for result in results:
        assert np.allclose(result, np.sum(arrays, axis=0)), f"world {world}: a result differs from the sum"
    assert sent == 2 * (world - 1) * 40 // world, (world, sent)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 — Derive it: what a ring all-reduce costs
#
# (a) With $W$ ranks and gradients of $N$ numbers (take $N$ divisible by $W$), how many numbers does
# each rank send in a ring all-reduce? Write it in `ring_elements_sent(n, world)`. (b) What happens
# to it as $W$ grows, and why does this make the ring the choice for many GPUs, compared with
# sending every gradient to one rank that sums and sends back? (c) For the MLP of this chapter
# (784-256-10) in float32, how many bytes per step does each of 8 ranks send?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "large-batches-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
def ring_elements_sent(n, world):
    ### BEGIN SOLUTION
    return 2 * (world - 1) * n // world
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "large-batches-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert ring_elements_sent(1_000, 2) == 1_000, f"two ranks: each sends (W - 1) N / W twice, got {ring_elements_sent(1_000, 2)}"
### BEGIN HIDDEN TESTS
for n, world, expected in [(1_000, 4, 1_500), (800, 8, 1_400), (203_530, 1, 0), (12, 3, 16)]:
    assert ring_elements_sent(n, world) == expected, (n, world)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "large-batches-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) Each chunk holds $N/W$ numbers. In each of the $W - 1$ reduce-scatter steps and each of the
# $W - 1$ all-gather steps, every rank sends one chunk: $2(W-1)\,N/W$ numbers per rank.
#
# (b) $2(W-1)/W$ tends to 2: the traffic per rank is bounded by twice the gradients' size, however
# many ranks join, and every link of the ring is busy at every step. Sending everything to one rank
# makes that rank receive $(W-1)N$ numbers and send as many back: its link is the bottleneck, and
# the time grows linearly with $W$. (The ring's price is latency: $2(W-1)$ steps in sequence, which
# is why large clusters use trees or hierarchical rings for small messages.)
#
# (c) The MLP has $784 \cdot 256 + 256 + 256 \cdot 10 + 10 = 203\,530$ parameters, 814,120 bytes in
# float32; with $W = 8$ each rank sends $2 \cdot \frac{7}{8} \cdot 814\,120 = 1\,424\,710$ bytes,
# about 1.4 MB per step.
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 — Investigate: how long a warm-up?
#
# At batch 4,096 with the scaled rate $\eta = 1.28$, the run above warmed up over half of its 96
# steps. Train with warm-ups of 0, 12, 24 and 48 steps (use `run` and `LARGE_BATCH`), keep the final
# validation accuracies in a dict `warmup_accuracy` (steps -> accuracy), and explain the trend. Is a
# warm-up of half the run a good recipe for long runs?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "large-batches-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
warmup_accuracy = {steps: run(LARGE_BATCH, K * BASE_LR, steps).last("val_accuracy") for steps in (0, 12, 24, 48)}
for steps, accuracy in warmup_accuracy.items():
    print(f"warm-up {steps:>2} steps: validation accuracy {accuracy:.2%}")
### END SOLUTION

# %% tags=["remove-input"]
assert warmup_accuracy[48] > warmup_accuracy[0]  # "a longer warm-up does better than none"

# %% [markdown] nbgrader={"grade": true, "grade_id": "large-batches-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# A longer warm-up does better than none here. The scaled rate assumes the gradient changes little
# over the 64 small steps that one large step replaces; at initialization it changes fast, and the
# first full-size steps throw the weights into a region from which a short, cosine-decayed run does
# not recover. A warm-up spends the first steps at small rates while the gradient settles. In a run
# of only 96 steps the warm-up takes a large share of the budget, so its length trades stability
# against steps at full rate. For long runs, half the run is far too much: Goyal et al. warm up for 5
# of 90 epochs. What matters is the number of steps the network needs to leave the initial
# transient, not a fraction of the run; measure it as here, on a validation split.
# :::
# <!-- ### END SOLUTION -->
