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
# # 3. Knowledge distillation
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part3_compression/03_knowledge_distillation.ipynb)
#
# Pruning and quantization shrink a trained network in place. *Knowledge distillation* trains a
# different, smaller network, the **student**, to imitate a large one, the **teacher**. The idea of
# compressing a big model (there, an ensemble) into a small one by training it on the big model's outputs
# is due to Buciluǎ, Caruana and Niculescu-Mizil {cite}`bucilua2006`; Hinton, Vinyals and Dean
# {cite}`hinton2015` gave it its current form: the student learns from the teacher's **soft targets**,
# its class probabilities softened by a **temperature**, which say not only "this is a 7" but also "and it
# looks a bit like a 2, not at all like a 6".
#
# This chapter:
#
# - trains a CNN teacher (1.08 million parameters) on 10,000 MNIST images;
# - looks at its soft targets at several temperatures ("dark knowledge");
# - writes the distillation loss of Hinton et al., and checks why it carries a factor $T^2$;
# - trains an MLP student (101,770 parameters, more than {fixed}`10x` fewer) twice, from the same initialisation,
#   on the same data, with the same optimizer and epochs: once on the labels alone, once distilled;
# - does the same with Keras 3, the way the Keras "Knowledge Distillation" example does it.
#
# The reference code is `companion.compression.distillation` (`soft_targets`, `distillation_loss`, the
# models and the training helpers, with the hyperparameters in `DistillationConfig`).

# %% tags=["hide-input"]
# Setup: on Colab (or anywhere companion is missing) install the course package.
try:
    import companion
except ImportError:
    %pip install -q "dl-optimization-companion[torch,keras,sklearn] @ git+https://github.com/YOUR-ORG/dl-optimization-hands-on@main"
    import companion

# %% tags=["keep-when-grading"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from companion.compression import distillation as kd
from companion.compression.measure import count_parameters
from companion.data import load_mnist
from companion.glue import glue
from companion.plotting import use_course_style
from companion.reproducibility import pick_device, seed_everything
from companion.training import accuracy, as_tensors

use_course_style()
seed_everything(0)
# The models are small: on a CPU one thread is fastest (more threads only add synchronisation, and a
# lot of waiting on a busy machine). On a GPU this setting does not matter.
torch.set_num_threads(1)
device = pick_device()

recipe = kd.DistillationConfig()  # the hyperparameters, shared with `python -m companion.bench distillation`
SEED = 1  # the benchmark runs seeds 0, 1 and 2 (this one is seed 1)
N_VAL = 5_000  # held out from the training file, to watch training; the test set is used once, at the end
all_images, all_labels = load_mnist("train", limit=recipe.n_train + N_VAL)
images, labels = all_images[: recipe.n_train], all_labels[: recipe.n_train]
val_images, val_labels = all_images[recipe.n_train :], all_labels[recipe.n_train :]
test_images, test_labels = load_mnist("test")
x_train, y_train = as_tensors(images[:, None], labels, device)
x_val, y_val = as_tensors(val_images[:, None], val_labels, device)
x_test, y_test = as_tensors(test_images[:, None], test_labels, device)
print(recipe)
print(f"device: {device}; train {len(x_train)} images, validation {len(x_val)} (from the training file), "
      f"test {len(x_test)} images (the full test set, used once at the end)")

# %% [markdown]
# ## The teacher and the student
#
# The teacher is a LeNet-style CNN (two 5x5 convolutions with 16 and 32 channels, a 2,048-unit hidden
# layer with dropout); the student is a multilayer perceptron with one hidden layer of 128 units. Both
# are trained on the same **10,000** training images (a sixth of MNIST): with little labelled data a
# small model over-fits its one-hot labels, and that is where the extra information of soft targets
# matters most. Training the teacher is ordinary supervised learning with the Adam of Part I
# (`companion.optim.adam`, $\eta = 10^{-3}$, batch 64, 6 epochs) in the course's training loop.

# %%
n_teacher = count_parameters(kd.teacher_cnn())
n_student = count_parameters(kd.student_mlp(recipe.student_hidden))
torch.manual_seed(SEED)
teacher = kd.teacher_cnn().to(device)
teacher_history = kd.train_teacher(teacher, x_train, y_train, recipe, seed=SEED, x_val=x_val, y_val=y_val)
acc_teacher = accuracy(teacher, x_test, y_test)
glue("acc_teacher", f"{acc_teacher:.2%}")
print(f"teacher: {n_teacher:,} parameters, test accuracy {acc_teacher:.4f}")
print(f"student: {n_student:,} parameters ({n_teacher / n_student:.1f}x fewer)")

# %% tags=["remove-input"]
assert n_teacher >= 10 * n_student, (n_teacher, n_student)
assert (n_teacher, n_student) == (1_084_362, 101_770) and round(n_teacher / n_student, 1) == 10.7
assert acc_teacher > 0.975, acc_teacher

# %% [markdown]
# The teacher reaches {glue:text}`acc_teacher` test accuracy, more than 97.5%, and has {fixed}`10.7 times` as
# many parameters as the student.
#
# ## Soft targets and temperature
#
# A classifier turns its logits $z$ into probabilities with a softmax. Dividing the logits by a
# temperature $T$ first,
#
# $$
# p_i^{(T)} = \operatorname{softmax}(z / T)_i = \frac{\exp(z_i / T)}{\sum_j \exp(z_j / T)},
# $$
#
# keeps the ranking of the classes but changes how peaked the distribution is: $T = 1$ is the ordinary
# softmax, $T \to \infty$ tends to the uniform distribution, $T \to 0$ to a one-hot vector. A well-trained
# teacher is very confident, so at $T = 1$ its wrong-class probabilities are tiny (say $10^{-6}$ against
# $10^{-9}$) and contribute almost nothing to a cross-entropy; at $T = 4$ they become visible. Hinton et
# al. call this information about *how* the wrong classes are ranked **dark knowledge**. The teacher's
# logits on the training images are computed **once**, in evaluation mode (dropout off): the teacher does
# not change while the student learns, so there is no reason to run it again at every step.

# %%
teacher_logits = kd.predict_logits(teacher, x_train)  # (10,000, 10), computed once
test_logits = kd.predict_logits(teacher, x_test[:500])
temperatures = [1.0, 4.0, 10.0]
# A test digit the teacher gets right and is sure of at T = 1, with the most visible runner-up at T = 4.
p1, p4 = kd.soft_targets(test_logits, 1.0), kd.soft_targets(test_logits, 4.0)
confident = (p1.argmax(1) == y_test[:500]) & (p1.max(1).values > 0.99)
runner_up = torch.where(confident, p4.topk(2, dim=1).values[:, 1], 0.0)
index = int(runner_up.argmax())
digit, second = int(y_test[index]), int(p4[index].topk(2).indices[1])
probs = {t: kd.soft_targets(test_logits[index], t).cpu().numpy() for t in temperatures}

fig, (ax_img, ax) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [1, 3]})
ax_img.imshow(test_images[index], cmap="gray_r")
ax_img.set_title(f"test image {index} (label {digit})")
ax_img.axis("off")
for k, t in enumerate(temperatures):
    ax.bar(np.arange(10) + (k - 1) * 0.27, probs[t], width=0.27, label=f"T = {t:g}")
ax.set_yscale("log")
ax.set_ylim(1e-6, 1.5)
ax.set_xticks(range(10))
ax.set_xlabel("class (digit)")
ax.set_ylabel("teacher probability softmax(z/T) (log scale)")
ax.set_title(f"Raising T flattens the teacher's output: at T = 4 a {digit} also looks like a {second}")
ax.legend()
plt.tight_layout()
plt.show()
for t in temperatures:
    entropy = -(probs[t] * np.log(probs[t])).sum()
    print(f"T = {t:>4g}: p({digit}) = {probs[t][digit]:.4f}, p({second}) = {probs[t][second]:.4f}, entropy {entropy:.2f} nats")
glue("p1_digit", f"{probs[1.0][digit]:.2%}")
glue("p1_second", f"{100 * probs[1.0][second]:.2g}%")  # two significant digits: never '0.00%'
glue("p4_second", f"{probs[4.0][second]:.1%}")

# %% tags=["remove-input"]
entropies = [-(probs[t] * np.log(probs[t])).sum() for t in temperatures]
assert entropies[0] < entropies[1] < entropies[2] < np.log(10)
assert probs[1.0][digit] > 0.99 and probs[1.0][second] < 0.01
assert probs[4.0][second] > 0.05 and probs[4.0].argmax() == probs[1.0].argmax() == digit

# %% [markdown]
# **What to notice.** The ranking of the classes is the same at every temperature (the arg-max, and so
# the prediction, never changes); only the spread does. At $T = 1$ the teacher puts more than 99% on the
# right digit ({glue:text}`p1_digit`) and less than 1% on the runner-up named in the title
# ({glue:text}`p1_second`); at $T = 4$ the runner-up gets more than 5% ({glue:text}`p4_second`), and the other classes are ordered by how much the teacher thinks this image resembles them.
# A one-hot label carries $\log_2 10 \approx 3.3$ bits at most per image; a vector of soft targets says
# something about every class.
#
# ## The distillation loss, and why $T^2$
#
# The student, with logits $z_s$, is trained on a weighted sum of the usual cross-entropy with the labels
# $y$ and the Kullback–Leibler divergence between the teacher's and its own soft targets, both at the
# same temperature:
#
# $$
# L = \alpha \, \mathrm{CE}\bigl(y, \operatorname{softmax}(z_s)\bigr)
#   + (1 - \alpha)\, T^2 \, \mathrm{KL}\bigl(\operatorname{softmax}(z_t / T) \,\big\|\, \operatorname{softmax}(z_s / T)\bigr),
# \qquad
# \mathrm{KL}(p \,\|\, q) = \sum_i p_i \log \frac{p_i}{q_i}.
# $$
#
# Why $T^2$? With $p = \operatorname{softmax}(z_t/T)$ and $q = \operatorname{softmax}(z_s/T)$, the gradient
# of the KL term with respect to a student logit is
#
# $$
# \frac{\partial\, \mathrm{KL}}{\partial z_{s,i}} = \frac{1}{T}\,(q_i - p_i)
# \;\approx\; \frac{1}{C\,T^2}\,\bigl(z_{s,i} - z_{t,i}\bigr) \quad \text{for large } T
# $$
#
# (with $C$ classes and logits centred to zero mean; expand $e^{x} \approx 1 + x$). The soft term's
# gradient shrinks like $1/T^2$: without the factor, raising the temperature would quietly turn the
# distillation term off and leave only the cross-entropy. Multiplying by $T^2$ keeps the two terms'
# relative weight equal to what $\alpha$ says, whatever the temperature. The figure measures it on a
# batch: the student's initial logits against the teacher's, for $T$ from 1 to 32.

# %%
torch.manual_seed(0)
fresh_student = kd.student_mlp(recipe.student_hidden).to(device)
with torch.no_grad():
    z_student = fresh_student(x_train[:256])
z_teacher, y_batch = teacher_logits[:256], y_train[:256]
# companion's loss is the direct formula (checked against F.kl_div in the tests; once more here).
direct = 0.1 * F.cross_entropy(z_student, y_batch) + 0.9 * 16 * F.kl_div(
    F.log_softmax(z_student / 4, dim=1), F.softmax(z_teacher / 4, dim=1), reduction="batchmean")
assert torch.allclose(kd.distillation_loss(z_student, z_teacher, y_batch, temperature=4.0, alpha=0.1), direct)

grid = np.geomspace(1, 32, 11)
grad_norms = {"KL term alone": [], "T² · KL (the distillation loss, α = 0)": []}
for t in grid:
    for label, scale in zip(grad_norms, (1.0 / t**2, 1.0)):
        z = z_student.clone().requires_grad_(True)
        (scale * kd.distillation_loss(z, z_teacher, y_batch, temperature=float(t), alpha=0.0)).backward()
        grad_norms[label].append(z.grad.norm().item())

fig, ax = plt.subplots()
for label, norms in grad_norms.items():
    ax.loglog(grid, norms, "o-", label=label)
ax.loglog(grid, grad_norms["KL term alone"][-1] * (grid / grid[-1]) ** -2.0, "k:", label="slope −2 (∝ 1/T²)")
ax.set_xlabel("temperature T")
ax.set_ylabel("gradient norm w.r.t. student logits")
ax.set_title("Without T², the soft term's gradient falls like 1/T²; with it, it levels off")
ax.legend()
plt.show()
unscaled, scaled = (np.array(v) for v in grad_norms.values())
i4 = int(np.argmin(np.abs(grid - 4)))  # T = 4
print(f"T from 4 to 32: KL gradient / {unscaled[i4] / unscaled[-1]:.0f}, "
      f"T²·KL gradient x {scaled[-1] / scaled[i4]:.2f} (largest / smallest for T >= 4: {scaled[i4:].max() / scaled[i4:].min():.2f})")

# %% tags=["remove-input"]
assert unscaled[i4] / unscaled[-1] > 40  # (32/4)² = 64 in the limit
assert scaled[i4:].max() / scaled[i4:].min() < 1.5

# %% [markdown]
# **What to notice.** Between $T = 4$ and $T = 32$ the bare KL gradient falls by a factor of more than 40
# (close to $8^2 = 64$), along the dotted $1/T^2$ line; the scaled one stays within a factor of 1.5. The
# loss *value* shrinks too, so a distillation loss that looks tiny in a log is not a sign that the student
# has nothing left to learn.
#
# ## Distilled student against the same student trained alone
#
# A fair comparison changes one thing only. Both students start from the same weights (`torch.manual_seed(SEED)`
# before building each), see the same mini-batches in the same order (`seed=SEED`), and use the same optimizer
# (the same Adam, $\eta = 10^{-3}$, batch 64) for the same 80 epochs. The teacher's logits travel with the
# labels as the loop's targets, so each mini-batch brings its own soft targets. The student trained alone minimises the
# cross-entropy; the distilled one minimises $L$ with $T = 4$ and $\alpha = 0.1$ (the values of the Keras
# example are $T = 10$, $\alpha = 0.1$; Hinton et al. report that for small students intermediate
# temperatures work best). The target: the distilled student recovers **at least half** of the accuracy
# gap between the student trained alone and the teacher, on the full test set.

# %%
students, histories = {}, {}
for mode, logits in (("scratch", None), ("distilled", teacher_logits)):
    torch.manual_seed(SEED)  # the same initial weights for both
    students[mode] = kd.student_mlp(recipe.student_hidden).to(device)
    histories[mode] = kd.train_student(students[mode], x_train, y_train, recipe, teacher_logits=logits, seed=SEED,
                                       x_val=x_val, y_val=y_val, name=f"student, {mode}")
acc_scratch = accuracy(students["scratch"], x_test, y_test)
acc_distilled = accuracy(students["distilled"], x_test, y_test)
recovered = (acc_distilled - acc_scratch) / (acc_teacher - acc_scratch)
glue("kd_recovered", f"{recovered:.0%}")
glue("kd_gain", f"{100 * (acc_distilled - acc_scratch):.1f} points")

fig, ax = plt.subplots()
for mode, h in histories.items():
    epochs, acc = h.series("val_accuracy")
    ax.plot(h.series("epoch")[1], acc, label=f"student trained {'alone' if mode == 'scratch' else 'with the teacher'}")
ax.axhline(teacher_history.last("val_accuracy"), color="k", ls="--",
           label=f"teacher ({n_teacher / n_student:.1f}x the parameters)")
ax.set_ylim(0.93, 0.99)
ax.set_xlabel("epoch")
ax.set_ylabel("validation accuracy (fraction, 5,000 images)")
ax.set_title(f"The distilled student closes {100 * recovered:.0f}% of the gap to its teacher")
ax.legend(loc="lower right")
plt.show()
print(pd.Series({"teacher": acc_teacher, "student alone": acc_scratch, "student distilled": acc_distilled}).round(4).to_string())
print(f"recovered fraction of the gap: {recovered:.2f}")

# %% tags=["remove-input"]
# The chapter's claim, with its exact thresholds.
assert n_teacher >= 10 * n_student
assert acc_teacher > acc_scratch
assert acc_distilled - acc_scratch >= 0.5 * (acc_teacher - acc_scratch), (acc_teacher, acc_scratch, acc_distilled)
# The prose below.
assert acc_distilled - acc_scratch > 0.01
_, scratch_curve = histories["scratch"].series("val_accuracy")
_, distilled_curve = histories["distilled"].series("val_accuracy")
assert (distilled_curve[-20:] > scratch_curve[-20:]).all()
assert abs(scratch_curve[-1] - scratch_curve[19]) < 0.01
glue("scratch_late_gain", f"{100 * (scratch_curve[-1] - scratch_curve[19]):+.1f} points")
assert distilled_curve[-1] - distilled_curve[19] > scratch_curve[-1] - scratch_curve[19]

# %% [markdown]
# **What to notice.** On the validation images (the figure), trained alone, the student stalls early:
# after epoch 20 its accuracy changes by {glue:text}`scratch_late_gain`, less than 1 point,
# as it has fitted its 10,000 one-hot labels and has little left to learn from them. The distilled student
# gains more after epoch 20, because the teacher's soft targets are much harder to fit exactly; over the
# last 20 epochs it is ahead at every epoch, and on the test set it ends {glue:text}`kd_gain` above the student
# trained alone (more than 1 point), having recovered {glue:text}`kd_recovered` of the gap to a teacher ten
# times its size, at least half (`python -m companion.bench distillation` repeats the experiment with three
# seeds and prints each). It
# does not reach the teacher: an MLP does not have the convolutions' built-in knowledge of images, and
# it sees the teacher only on these 10,000 images.
#
# ## The Keras way
#
# Readers of the Keras example "Knowledge Distillation" (K. Borup) know the other common form: a
# `Distiller(keras.Model)` that holds the teacher and the student, `compile()`s with a student loss, a
# distillation loss, `alpha` and `temperature`, and overrides `compute_loss` (Keras 3; the Keras 2
# version overrode `train_step` with a `GradientTape`). The same class follows, run with Keras 3 on its
# PyTorch backend, which lets the *same* trained teacher serve, wrapped in `keras.layers.TorchModuleWrapper`;
# the student is the same 784–128–10 MLP as Keras layers. Two details that the popular snippets get wrong
# are handled here: the teacher is frozen (`teacher.trainable = False`; in a `compute_loss` override, the
# teacher's weights are otherwise among the Distiller's trainable weights), and the KL term is multiplied
# by $T^2$. The Keras version calls the teacher at every step, where ours read precomputed logits. To
# stay within the time budget, the Keras student trains for 5 epochs only.

# %%
import os

os.environ["KERAS_BACKEND"] = "torch"  # must be set before keras is first imported
from companion.quiet import quiet_tensorflow  # noqa: E402

with quiet_tensorflow():  # keras may import TensorFlow's data utilities: keep its start-up messages off the page
    import keras
    from keras import ops


class Distiller(keras.Model):
    """Teacher and student in one Keras model; `fit` trains the student with the distillation loss."""

    def __init__(self, student, teacher):
        super().__init__()
        self.teacher = teacher
        self.student = student

    def compile(self, optimizer, metrics, student_loss_fn, distillation_loss_fn, alpha=0.1, temperature=3):
        super().compile(optimizer=optimizer, metrics=metrics)
        self.student_loss_fn = student_loss_fn
        self.distillation_loss_fn = distillation_loss_fn
        self.alpha = alpha
        self.temperature = temperature

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        teacher_pred = self.teacher(x, training=False)
        student_loss = self.student_loss_fn(y, y_pred)
        distillation_loss = self.distillation_loss_fn(
            ops.softmax(teacher_pred / self.temperature, axis=1),
            ops.softmax(y_pred / self.temperature, axis=1),
        ) * (self.temperature**2)
        return self.alpha * student_loss + (1 - self.alpha) * distillation_loss

    def call(self, x):
        return self.student(x)


KERAS_EPOCHS = 5
teacher.eval()
keras_teacher = keras.Sequential([keras.Input((1, 28, 28)), keras.layers.TorchModuleWrapper(teacher)], name="teacher")
keras_teacher.trainable = False
keras.utils.set_random_seed(0)
keras_student = keras.Sequential([
    keras.Input((1, 28, 28)), keras.layers.Flatten(),
    keras.layers.Dense(recipe.student_hidden, activation="relu"), keras.layers.Dense(10),
], name="student")
teacher_before = [p.detach().clone() for p in teacher.parameters()]
distiller = Distiller(student=keras_student, teacher=keras_teacher)
distiller.compile(
    optimizer=keras.optimizers.Adam(recipe.learning_rate),
    metrics=[keras.metrics.SparseCategoricalAccuracy()],
    student_loss_fn=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    distillation_loss_fn=keras.losses.KLDivergence(),
    alpha=recipe.alpha,
    temperature=recipe.temperature,
)
x_np, x_val_np = images[:, None], val_images[:, None]
distiller.fit(x_np, labels, epochs=KERAS_EPOCHS, batch_size=recipe.batch_size, verbose=0)
acc_keras = distiller.evaluate(x_val_np, val_labels, verbose=0, return_dict=True)["sparse_categorical_accuracy"]
teacher_unchanged = all(torch.equal(a, b) for a, b in zip(teacher_before, teacher.parameters()))
acc_torch_5 = {mode: h.series("val_accuracy")[1][KERAS_EPOCHS - 1] for mode, h in histories.items()}
print(f"Keras: {count_parameters(keras_student):,} student parameters, "
      f"{len(distiller.trainable_weights)} trainable weight tensors (the student's), teacher unchanged: {teacher_unchanged}")
comparison = pd.DataFrame({
    "Keras example (60,000 images, CNN student)": {"teacher": 0.976, "student alone": 0.976, "distilled, 3 epochs": 0.981},
    f"this chapter, after {KERAS_EPOCHS} epochs (validation)": {
        "teacher": teacher_history.last("val_accuracy"), "student alone": acc_torch_5["scratch"],
        "distilled, companion": acc_torch_5["distilled"], "distilled, Keras Distiller": acc_keras},
    f"this chapter, after {recipe.student_epochs} epochs (test)": {
        "teacher": acc_teacher, "student alone": acc_scratch, "distilled, companion": acc_distilled},
})
print(comparison.round(4).to_string(na_rep=""))
glue("keras_gap", f"{100 * abs(acc_keras - acc_torch_5['distilled']):.1f} points")

# %% tags=["remove-input"]
assert teacher_unchanged and len(distiller.trainable_weights) == len(keras_student.trainable_weights) == 4
assert count_parameters(keras_student) == n_student
assert abs(acc_keras - acc_torch_5["distilled"]) < 0.02, (acc_keras, acc_torch_5)

# %% [markdown]
# **What to notice.** The Keras `Distiller` and `companion`'s loop implement the same loss: after the same
# 5 epochs their distilled students are within 2 points of each other ({glue:text}`keras_gap` apart here; they
# differ in initialisation and
# batch order, and one reads precomputed logits; this early in training the validation accuracy still moves by
# about a point from one epoch to the next, and the distilled student has not yet overtaken the one trained
# alone: distillation pays off over many epochs, as the figure above shows). Our figures differ from [the Keras
# example's](https://keras.io/examples/vision/knowledge_distillation/) (teacher about 97.6%, student alone about 97.6%, distilled student about 98.1%) for clear reasons:
#
# - **data**: they train on all 60,000 images; we use 10,000, to fit a CPU budget and because that is
#   where soft targets help most;
# - **models**: their student is a small CNN (16 and 32 channels), as good as their teacher when trained
#   alone, and their teacher is a 2-convolution CNN trained for 5 epochs; our student is an MLP, which
#   cannot reach a CNN's accuracy on images, so there is a real gap to close;
# - **epochs and hyperparameters**: they distil for 3 epochs at $T = 10$; we train our students for many
#   more epochs (an epoch of 10,000 images through an MLP is cheap, and the distilled student keeps
#   improving long after the one trained alone has stalled), at $T = 4$.
#
# In their setting the distilled student even beats the teacher, which shows that distillation also
# *regularizes*; in ours, the student is the bottleneck, and the question is how much of the teacher's
# advantage it can inherit.
#
# ## Pitfalls
#
# - **Forgetting $T^2$.** The soft term's gradient then falls like $1/T^2$, and a high temperature silently
#   turns distillation off (early versions of several popular snippets omit it).
# - **The KL divergence the wrong way round.** `keras.losses.KLDivergence()(y_true, y_pred)` and
#   `F.kl_div(input, target)` take their arguments in opposite orders, and `F.kl_div` wants
#   *log*-probabilities for the student and probabilities for the teacher (or `log_target=True`).
#   With `reduction="mean"` it divides by the number of classes too; use `"batchmean"`.
# - **Softmax before the cross-entropy**: `F.cross_entropy` and `from_logits=True` expect logits.
# - **Teacher in training mode** when computing soft targets: dropout makes them noisy. Use `eval()` (or
#   `training=False`) and no gradients.
# - **A teacher that trains along.** In a Keras `compute_loss` override the teacher's weights are part of the
#   model; freeze it (`teacher.trainable = False`), and in PyTorch detach its logits.
# - **An unfair baseline.** Compare with the same student, same initialisation, data, optimizer and epochs;
#   a distilled student trained longer than its baseline proves nothing.
# - **Evaluating at temperature $T$.** The temperature is for training; at test time the student is an
#   ordinary classifier (and the arg-max does not depend on $T$ anyway).
#
# ## Summary
#
# | | what it is | in `companion.compression.distillation` |
# |---|---|---|
# | soft targets | $\operatorname{softmax}(z/T)$: the teacher's ranking of all classes | `soft_targets` |
# | distillation loss {cite}`hinton2015` | $\alpha\,\mathrm{CE} + (1-\alpha)\,T^2\,\mathrm{KL}(p_t \,\|\, p_s)$ | `distillation_loss` |
# | $T^2$ | keeps the soft term's gradient from vanishing as $T$ grows | (inside the loss) |
# | precomputed teacher logits | the teacher is fixed: run it once, in eval mode | `predict_logits` |
# | fair comparison | same student, init, data, optimizer and epochs, with or without a teacher | `train_student` |
#
# A student with {fixed}`10.7 times` fewer parameters than its teacher, trained on the same 10,000 images,
# recovered more than half of the accuracy the teacher has over it: the teacher's soft targets carry
# knowledge the labels do not, and the student keeps learning from them long after it has fitted the labels.
#
# ## Exercises
#
# ### Exercise 1 (Implement it): the distillation loss
#
# Write `my_distillation_loss(student_logits, teacher_logits, labels, temperature, alpha)` with
# `torch.log_softmax`, `torch.softmax` and plain tensor operations (no `F.kl_div`, no `F.cross_entropy`,
# no `companion`): $\alpha$ times the mean cross-entropy with the integer labels plus $(1-\alpha)\,T^2$
# times the batch mean of $\mathrm{KL}(\operatorname{softmax}(z_t/T)\,\|\,\operatorname{softmax}(z_s/T))$.
# No gradient may flow into the teacher's logits. Raise a `ValueError` if `temperature <= 0`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "distillation-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
def my_distillation_loss(student_logits, teacher_logits, labels, temperature, alpha):
    ### BEGIN SOLUTION
    if temperature <= 0:
        raise ValueError(f"Invalid temperature: {temperature} (must be > 0)")
    log_q = torch.log_softmax(student_logits / temperature, dim=1)
    log_p = torch.log_softmax(teacher_logits.detach() / temperature, dim=1)
    kl = (log_p.exp() * (log_p - log_q)).sum(dim=1).mean()
    log_probs = torch.log_softmax(student_logits, dim=1)
    ce = -log_probs.gather(1, labels[:, None]).mean()
    return alpha * ce + (1 - alpha) * temperature**2 * kl
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "distillation-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error

g = torch.Generator().manual_seed(0)
s_check, t_check = torch.randn(32, 10, generator=g), 4 * torch.randn(32, 10, generator=g)
y_check = torch.randint(0, 10, (32,), generator=g)
mine = my_distillation_loss(s_check, t_check, y_check, 4.0, 0.1)
assert mine.shape == (), "the loss is a scalar (mean over the batch)"
assert torch.allclose(mine, kd.distillation_loss(s_check, t_check, y_check, temperature=4.0, alpha=0.1), atol=1e-5), f"your loss {float(mine):.6f} differs from companion's {float(kd.distillation_loss(s_check, t_check, y_check, temperature=4.0, alpha=0.1)):.6f} (T = 4, alpha = 0.1: remember the T^2 factor)"
assert torch.allclose(my_distillation_loss(s_check, t_check, y_check, 2.0, 1.0), F.cross_entropy(s_check, y_check), atol=1e-6), "with alpha = 1 the loss is the plain cross-entropy with the labels"
### BEGIN HIDDEN TESTS
for t, a in ((1.0, 0.5), (10.0, 0.0), (0.5, 0.9)):
    assert torch.allclose(my_distillation_loss(s_check, t_check, y_check, t, a),
                          kd.distillation_loss(s_check, t_check, y_check, temperature=t, alpha=a), atol=1e-5), f"T={t}, alpha={a}: your loss differs from companion's"
assert my_distillation_loss(t_check, t_check, y_check, 3.0, 0.0).abs() < 1e-5, "KL(p || p) = 0"
t_grad = t_check.clone().requires_grad_(True)
s_grad = s_check.clone().requires_grad_(True)
my_distillation_loss(s_grad, t_grad, y_check, 4.0, 0.1).backward()
assert t_grad.grad is None or t_grad.grad.abs().max() == 0, "no gradient into the teacher"
s_ref = s_check.clone().requires_grad_(True)
kd.distillation_loss(s_ref, t_check, y_check, temperature=4.0, alpha=0.1).backward()
assert torch.allclose(s_grad.grad, s_ref.grad, atol=1e-6), "the gradient with respect to the student differs from companion's"
for bad in (0.0, -1.0):
    expect_error(lambda: my_distillation_loss(s_check, t_check, y_check, bad, 0.5), ValueError,
                 when=f"my_distillation_loss(..., temperature={bad}, alpha=0.5)")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (Implement it): the gradient of the soft-target loss
#
# Write `soft_loss_gradient(student_logits, teacher_logits, temperature)`. For logits of shape
# `(batch, classes)` it returns, as a tensor of that shape, the gradient with respect to the student's
# logits of the soft term of the loss, $T^2$ times the batch mean of
# $\mathrm{KL}(\operatorname{softmax}(z_t/T)\,\|\,\operatorname{softmax}(z_s/T))$, in closed form:
#
# $$
# \frac{\partial}{\partial z_{s}}\; \frac{T^2}{N} \sum_{n=1}^{N} \mathrm{KL}_n = \frac{T}{N}\,\bigl(q - p\bigr),
# \qquad q = \operatorname{softmax}(z_s / T), \quad p = \operatorname{softmax}(z_t / T),
# $$
#
# with $N$ the batch size. Write the softmax yourself (no `torch.softmax`, `torch.log_softmax`, `F.*`
# and no autograd), numerically stable: subtract each row's maximum before `torch.exp`, so that logits
# in the thousands give finite results. Raise a `ValueError` naming `temperature` when
# `temperature <= 0`. The check compares your gradient with the one `torch.autograd` computes for
# `T**2 * F.kl_div(..., reduction="batchmean")`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "distillation-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
def soft_loss_gradient(student_logits, teacher_logits, temperature):
    """Closed-form gradient of T^2 * mean KL(softmax(z_t/T) || softmax(z_s/T)) with respect to z_s."""
    ### BEGIN SOLUTION
    if not temperature > 0:
        raise ValueError(f"Invalid temperature: {temperature} (must be > 0)")

    def stable_softmax(z):
        e = torch.exp(z - z.max(dim=1, keepdim=True).values)
        return e / e.sum(dim=1, keepdim=True)

    q = stable_softmax(student_logits.detach() / temperature)
    p = stable_softmax(teacher_logits.detach() / temperature)
    return temperature * (q - p) / student_logits.shape[0]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "distillation-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error
def ex2_autograd_gradient(student_logits, teacher_logits, temperature):
    """The reference: autograd through T^2 * F.kl_div (batch mean), PyTorch's own KL divergence."""
    z = student_logits.detach().clone().requires_grad_(True)
    loss = temperature**2 * F.kl_div(torch.log_softmax(z / temperature, dim=1),
                                      torch.log_softmax(teacher_logits / temperature, dim=1),
                                      log_target=True, reduction="batchmean")
    loss.backward()
    return z.grad


ex2_s = torch.tensor([[2.0, 1.0, 0.0]])
ex2_t = torch.tensor([[10.0, 5.0, 0.0]])
ex2_mine = soft_loss_gradient(ex2_s, ex2_t, 4.0)
assert isinstance(ex2_mine, torch.Tensor) and ex2_mine.shape == ex2_s.shape, f"return a tensor of the logits' shape {tuple(ex2_s.shape)}, got {type(ex2_mine).__name__} {tuple(getattr(ex2_mine, 'shape', ()))}"
assert torch.allclose(ex2_mine, torch.tensor([[-1.24580, 0.46861, 0.77719]]), atol=1e-4), f"z_s = (2, 1, 0), z_t = (10, 5, 0), T = 4: expected T (q - p) = [-1.2458, 0.4686, 0.7772], got {ex2_mine.tolist()}"
ex2_gen = torch.Generator().manual_seed(0)
ex2_s, ex2_t = torch.randn(16, 10, generator=ex2_gen), 5 * torch.randn(16, 10, generator=ex2_gen)
ex2_err = float((soft_loss_gradient(ex2_s, ex2_t, 2.0) - ex2_autograd_gradient(ex2_s, ex2_t, 2.0)).abs().max())
assert ex2_err < 1e-6, f"batch of 16, T = 2: your gradient differs from autograd's by {ex2_err:.1e} (did you divide by the batch size N and multiply by T?)"
### BEGIN HIDDEN TESTS
for ex2_temperature in (0.5, 1.0, 4.0, 10.0, 32.0):
    for ex2_batch, ex2_classes in ((1, 2), (7, 10), (64, 100)):
        ex2_s = torch.randn(ex2_batch, ex2_classes, generator=ex2_gen)
        ex2_t = 4 * torch.randn(ex2_batch, ex2_classes, generator=ex2_gen)
        ex2_ref = ex2_autograd_gradient(ex2_s, ex2_t, ex2_temperature)
        ex2_err = float((soft_loss_gradient(ex2_s, ex2_t, ex2_temperature) - ex2_ref).abs().max())
        assert ex2_err < 1e-6 * max(1.0, ex2_temperature), f"T = {ex2_temperature}, logits {ex2_batch} x {ex2_classes}: your gradient differs from autograd's by {ex2_err:.1e}"
ex2_s = torch.randn(8, 10, generator=ex2_gen).requires_grad_(True)
ex2_t = 3 * torch.randn(8, 10, generator=ex2_gen)
kd.distillation_loss(ex2_s, ex2_t, torch.zeros(8, dtype=torch.long), temperature=4.0, alpha=0.0).backward()
ex2_err = float((soft_loss_gradient(ex2_s.detach(), ex2_t, 4.0) - ex2_s.grad).abs().max())
assert ex2_err < 1e-6, f"with alpha = 0, companion's distillation loss has this gradient; yours differs by {ex2_err:.1e}"
ex2_s, ex2_t = 1000 * torch.randn(4, 10, generator=ex2_gen), 3000 * torch.randn(4, 10, generator=ex2_gen)
ex2_big = soft_loss_gradient(ex2_s, ex2_t, 1.0)
assert torch.isfinite(ex2_big).all(), "logits in the thousands: the gradient must be finite (subtract each row's maximum before exp)"
ex2_err = float((ex2_big - ex2_autograd_gradient(ex2_s, ex2_t, 1.0)).abs().max())
assert ex2_err < 1e-6, f"logits in the thousands: your gradient differs from autograd's by {ex2_err:.1e}"
assert float(soft_loss_gradient(ex2_t, ex2_t, 3.0).abs().max()) < 1e-6, "the student equal to the teacher: the gradient is 0"
for ex2_bad in (0.0, -2.0):
    expect_error(lambda: soft_loss_gradient(ex2_s, ex2_t, ex2_bad), ValueError, "temperature",
                 when=f"soft_loss_gradient(student_logits, teacher_logits, temperature={ex2_bad})")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 (Derive it): at high temperature, distillation matches logits
#
# Caruana and his collaborators trained the small model to match the big one's *logits* with a squared
# error (as Hinton et al. describe it); Hinton et al. show that their soft-target loss becomes exactly
# that as $T$ grows. Take one image, $C$ classes,
# and the difference $d = z_s - z_t$ of the student's and the teacher's logits, with mean $\bar d$.
#
# (a) For $|z| \ll T$, expand $\operatorname{softmax}(z/T)_i$ to first order in $1/T$.
# (b) Using $\mathrm{KL}(p\,\|\,q) \approx \frac12 \sum_i (q_i - p_i)^2 / p_i$ for nearby distributions, show that
# $T^2\,\mathrm{KL}\bigl(\operatorname{softmax}(z_t/T)\,\|\,\operatorname{softmax}(z_s/T)\bigr) \to \frac{1}{2C}\sum_i (d_i - \bar d)^2$
# as $T \to \infty$. Write `logit_matching_limit(student_logits, teacher_logits)`: this limit, as a
# `float`, for two 1-D tensors of logits.
# (c) Evaluate it for $z_t = (10, 5, 0)$ and $z_s = (2, 1, 0)$, and compare with $T^2\,\mathrm{KL}$ at
# $T = 1, 4, 10$. What does the limit say about the role of $T^2$, and why does adding a constant to
# all of the student's logits change nothing?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "distillation-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
def logit_matching_limit(student_logits, teacher_logits):
    ### BEGIN SOLUTION
    d = (student_logits - teacher_logits).double()
    return float(((d - d.mean()) ** 2).sum() / (2 * d.numel()))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "distillation-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert abs(logit_matching_limit(torch.tensor([2.0, 1.0, 0.0]), torch.tensor([10.0, 5.0, 0.0])) - 16 / 3) < 1e-6, f"z_s = (2, 1, 0), z_t = (10, 5, 0): d - mean(d) = (-4, 0, 4), so the limit is 32 / 6 = 5.3333; got {logit_matching_limit(torch.tensor([2.0, 1.0, 0.0]), torch.tensor([10.0, 5.0, 0.0]))}"
### BEGIN HIDDEN TESTS
ex3_gen = torch.Generator().manual_seed(1)
for ex3_classes in (2, 10, 100):
    ex3_s = torch.randn(ex3_classes, generator=ex3_gen, dtype=torch.float64)
    ex3_t = 3 * torch.randn(ex3_classes, generator=ex3_gen, dtype=torch.float64)
    ex3_T = 1e4
    ex3_kl = F.kl_div(torch.log_softmax(ex3_s / ex3_T, dim=0), torch.log_softmax(ex3_t / ex3_T, dim=0), log_target=True, reduction="sum")
    ex3_expected = float(ex3_T**2 * ex3_kl)
    ex3_mine = logit_matching_limit(ex3_s, ex3_t)
    assert abs(ex3_mine - ex3_expected) < 1e-3 * ex3_expected, f"{ex3_classes} classes: T^2 KL at T = 10^4 is {ex3_expected:.6f}, your limit gives {ex3_mine}"
    assert abs(logit_matching_limit(ex3_s + 7.0, ex3_t) - ex3_mine) < 1e-9, "adding a constant to every student logit leaves the softmax, and the limit, unchanged"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "distillation-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) With $\bar z$ the mean logit, $\operatorname{softmax}(z/T)_i = \frac{e^{(z_i - \bar z)/T}}{\sum_j e^{(z_j - \bar z)/T}}
# \approx \frac{1 + (z_i - \bar z)/T}{C + \sum_j (z_j - \bar z)/T} = \frac{1}{C}\left(1 + \frac{z_i - \bar z}{T}\right)$,
# since the centred logits sum to zero.
#
# (b) So $p_i \approx \frac1C$ and $q_i - p_i \approx \frac{(z_{s,i} - \bar z_s) - (z_{t,i} - \bar z_t)}{CT} = \frac{d_i - \bar d}{CT}$. Then
# $\mathrm{KL} \approx \frac12 \sum_i \frac{(q_i - p_i)^2}{1/C} = \frac{C}{2} \sum_i \frac{(d_i - \bar d)^2}{C^2T^2} = \frac{1}{2CT^2}\sum_i (d_i - \bar d)^2$,
# and $T^2\,\mathrm{KL} \to \frac{1}{2C}\sum_i (d_i - \bar d)^2$: a squared error between the centred
# logits, whose gradient $\frac{1}{C}(d_i - \bar d)$ is the chapter's $\frac{1}{CT^2}(z_{s,i} - z_{t,i})$
# multiplied by $T^2$.
#
# (c) $d = (-8, -4, 0)$, $\bar d = -4$, so the limit is $\frac{16 + 0 + 16}{6} = 5.33$. $T^2\,\mathrm{KL}$ is
# $0.37$ at $T = 1$, $3.62$ at $T = 4$ and $4.97$ at $T = 10$, approaching it, while the bare KL falls from
# $0.37$ to $0.05$ and on to 0. The factor $T^2$ is exactly what keeps the soft term finite and
# non-zero as $T$ grows: without it the loss and its gradient vanish like $1/T^2$, with it they tend to
# logit matching. A constant added to all logits cancels in the softmax, and in $d_i - \bar d$: only
# the *differences* between classes carry information, which is why the limit matches centred logits.
# At moderate $T$ the soft loss sits between the two regimes: it still discounts very negative
# logits, which are noisy and which the student need not reproduce.
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 (Investigate): what does the teacher know that the labels do not?
#
# Average the teacher's soft targets at $T = 4$ over the training images of each class, giving a
# $10 \times 10$ matrix whose row $c$ says how much, on average, the teacher thinks a $c$ resembles each
# other digit. Compare its off-diagonal entries with the confusion matrix of the student trained alone on
# the test set (`students["scratch"]`). Which pairs of digits does the teacher consider most alike, are
# those the pairs the student trained alone confuses, and what does that suggest about where distillation
# helps? (No training needed: this runs in a second.)

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "distillation-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
from scipy.stats import spearmanr

soft = kd.soft_targets(teacher_logits, 4.0).cpu().numpy()
similarity = np.stack([soft[labels == c].mean(axis=0) for c in range(10)])
with torch.no_grad():
    predicted = students["scratch"](x_test).argmax(1).cpu().numpy()
confusion = np.zeros((10, 10))
np.add.at(confusion, (test_labels, predicted), 1)
off = ~np.eye(10, dtype=bool)
pair_similarity = (similarity + similarity.T)[off]  # symmetrised: "a looks like b" or "b like a"
pair_errors = (confusion + confusion.T)[off]
rho = spearmanr(pair_similarity, pair_errors).statistic
top = sorted({tuple(sorted(p)) for p in zip(*np.where(off & (similarity + similarity.T >= np.sort(pair_similarity)[-10])))})
print("digit pairs the teacher finds most alike:", top)
print("errors of the student trained alone on those pairs:", [int(confusion[a, b] + confusion[b, a]) for a, b in top])
print(f"Spearman correlation, teacher similarity vs student confusions over the 45 pairs: {rho:.2f}")
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, matrix, title in ((axes[0], np.where(off, similarity, np.nan), "teacher soft targets at T = 4 (mean)"),
                          (axes[1], np.where(off, confusion, np.nan), "student alone: test confusions")):
    im = ax.imshow(matrix, cmap="viridis")
    ax.set_xlabel("other class (digit)")
    ax.set_ylabel("true class (digit)")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="probability" if ax is axes[0] else "number of test images")
fig.suptitle(f"The pairs the teacher finds alike are the ones the student confuses (Spearman {rho:.2f})",
             fontweight="bold")
plt.tight_layout()
plt.show()
assert rho > 0.4, rho
### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "distillation-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# The averaged soft targets are far from uniform off the diagonal: the teacher gives a few pairs of digits
# (printed above, with the student's errors on each) much more probability than the rest. Those are
# largely the pairs the student trained alone gets wrong on the test set: over the 45 pairs, the rank
# correlation between the teacher's similarity and the student's confusions is clearly positive (above 0.4
# in the recorded run). One-hot labels treat every mistake as equally wrong; the soft targets tell the
# student *which* distinctions are hard and how ambiguous each training image is (a 4 that looks like a 9
# gets a soft target that says so), which is exactly the information it lacks where it errs. This is the
# dark knowledge of the chapter: it is concentrated on the confusable pairs, so that is where distillation
# can help most, and an image that is ambiguous is not forced to a fully confident label.
# :::
# <!-- ### END SOLUTION -->
