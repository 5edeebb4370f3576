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
# # 5. Parameter-efficient fine-tuning in practice: LoRA with peft
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part3_compression/05_lora_with_peft.ipynb)
#
# The previous chapter built LoRA {cite}`hu2021lora` from scratch, on an MLP. In practice nobody
# wraps layers by hand: Hugging Face's `peft` library {cite}`peft2022` does it for any PyTorch model,
# given the *names* of the layers to adapt. This chapter applies it to a real pretrained transformer,
# the six-layer MiniLM sentence encoder {cite}`wang2020,reimers2019` (the encoder that Part IV's sentiment
# chapter uses for feature extraction), and
# fine-tunes it on IMDB reviews {cite}`maas2011`.
#
# This chapter covers
#
# * reading a model's module names and choosing `target_modules` (the attention's query and value,
#   or every linear layer), and the share of parameters that trains, *measured*;
# * three ways to use the same pretrained encoder on the same reviews, tested once on held-out reviews: a
#   linear probe on frozen embeddings, and LoRA and full fine-tuning with the same optimizer steps;
# * merging the adapters (`merge_and_unload`) and saving them (`save_pretrained`): what is on disk;
# * a check that `peft`'s LoRA layer computes exactly what the course's `LoRALinear` computes.

# %% tags=["hide-input"]
# Setup: on Colab (or anywhere companion is missing) install the course package.
try:
    import companion
except ImportError:
    %pip install -q "dl-optimization-companion[torch,text] @ git+https://github.com/YOUR-ORG/dl-optimization-hands-on@main"
    import companion

# %% tags=["keep-when-grading"]
import copy
import os
import tempfile
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import peft
import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn

from companion import optim, schedules
from companion.compression.lora import LoRALinear
from companion.compression.measure import count_parameters
from companion.data import load_imdb
from companion.glue import glue
from companion.optim.torch_adapter import ReferenceOptimizer
from companion.plotting import use_course_style
from companion.reproducibility import pick_device, seed_everything
from companion.sentiment import load_sentence_encoder
from companion.training import evaluate, train_classifier

warnings.filterwarnings("ignore", module="peft")  # peft warns that our wrapper model has no Hugging Face config
use_course_style()
seed_everything(0)
device = pick_device()
if device == "cpu":
    torch.set_num_threads(2)  # the transformer's matrix products use both cores
chapter_start = time.perf_counter()
print("torch", torch.__version__, "| peft", peft.__version__, "| device:", device)

# %% [markdown]
# ## The model, and the names of its layers
#
# `load_sentence_encoder` returns all-MiniLM-L6-v2 as a `SentenceTransformer`; its first module holds
# the Hugging Face `BertModel`, six transformer layers of width 384. `peft` finds the layers to adapt
# by name, so the first step is always to print the names:

# %%
sentence_encoder = load_sentence_encoder(device, progress=False)
encoder = sentence_encoder[0].auto_model.eval()
tokenizer = sentence_encoder.tokenizer
linear_names = [name for name, module in encoder.named_modules() if isinstance(module, nn.Linear)]
for name, module in encoder.named_modules():
    if name.startswith("encoder.layer.0.") and isinstance(module, nn.Linear):
        print(f"{name:<40} {module.in_features:>5} -> {module.out_features:<5}")
print(f"... the same in encoder.layer.1 to 5; {len(linear_names)} Linear layers in all (one is the unused pooler),")
print(f"{count_parameters(encoder):,} parameters, {encoder.embeddings.word_embeddings.weight.numel():,} of them in the word embeddings")

# %% [markdown]
# Each layer has six matrices: the attention's `query`, `key`, `value` and output `dense`
# ($384 \times 384$ each), and the feed-forward block's two ($384 \to 1536 \to 384$). `target_modules`
# matches whole name parts: a list entry selects every module whose full name is the entry or ends with `.`
# plus the entry (so `"uery"` matches nothing; a single string is instead a regular expression that must
# match the whole name). `["query", "value"]` matches the twelve `...attention.self.query` and `...value`
# layers. That is the choice of the LoRA paper, which found that adapting $W_q$ and $W_v$ at a small
# rank matched adapting more matrix types for the same number of trained parameters {cite}`hu2021lora`;
# QLoRA later found that adapting *every* linear layer was needed to match full fine-tuning
# {cite}`dettmers2023` (`peft` spells that `target_modules="all-linear"`).
#
# Our classifier puts a new head on the encoder's sentence embedding: the mean of the token vectors
# over the real tokens, scaled to length 1, the pooling that `sentence_encoder.encode` applies. The head is
# new, so it trains in every variant; in `peft` that is `modules_to_save=["head"]`. Here is what each
# choice of targets trains, counted by `peft` itself:

# %%
PAD_ID = tokenizer.pad_token_id


class SentimentClassifier(nn.Module):
    """The encoder's mean-pooled, unit-length sentence embedding, then a linear head (2 logits)."""

    def __init__(self, encoder, n_classes=2):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.config.hidden_size, n_classes)

    def embed(self, ids):
        mask = (ids != PAD_ID).unsqueeze(-1)
        hidden = self.encoder(input_ids=ids, attention_mask=mask.squeeze(-1).long()).last_hidden_state
        mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1)
        return F.normalize(mean, dim=1)

    def forward(self, ids):
        return self.head(self.embed(ids))


RANK, ALPHA = 8, 16


def lora_config(targets, rank=RANK, alpha=ALPHA):
    return LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets, lora_dropout=0.0, modules_to_save=["head"])


shares = {}
for label, targets in [("query, value", ["query", "value"]),
                       ("every linear layer", ["query", "key", "value", "dense"])]:
    torch.manual_seed(0)
    candidate = get_peft_model(SentimentClassifier(copy.deepcopy(encoder)), lora_config(targets))
    trainable, total = candidate.get_nb_trainable_parameters()
    shares[label] = (trainable, total)
    print(f"LoRA r = {RANK} on {label:<19}: ", end="")
    candidate.print_trainable_parameters()
del candidate
qv_trainable, qv_total = shares["query, value"]
all_trainable, all_total = shares["every linear layer"]
glue("peft_qv_trainable", f"{qv_trainable:,}")
glue("peft_qv_share", f"{qv_trainable / qv_total:.2%}")
glue("peft_all_share", f"{all_trainable / all_total:.2%}")

# %% tags=["remove-input"]
# r (d_in + d_out) per adapted matrix, plus the head's 384 x 2 + 2
assert qv_trainable == 6 * 2 * RANK * (384 + 384) + 384 * 2 + 2
word_share = encoder.embeddings.word_embeddings.weight.numel() / sum(p.numel() for p in encoder.parameters())
assert 0.45 < word_share < 0.55, word_share  # "about half of MiniLM's parameters are word embeddings"
assert all_trainable == 6 * RANK * (4 * (384 + 384) + (384 + 1536) + (1536 + 384)) + RANK * (384 + 384) + 384 * 2 + 2

# %% [markdown]
# With adapters on the query and value projections, {glue:text}`peft_qv_trainable` parameters train,
# {glue:text}`peft_qv_share` of the model; on every linear layer, {glue:text}`peft_all_share`. (We
# match `"dense"` as a name part, which catches the attention output, both feed-forward layers and also the
# pooler's `dense`: the pooler is unused, its
# adapter harmless, but the count includes it, a reminder that suffixes match more than you may mean.)
# About half of MiniLM's parameters are word embeddings, which LoRA leaves alone. We use the paper's
# choice, query and value, below.
#
# ## The data: reviews, their last word pieces, three disjoint splits
#
# A transformer costs far more per review than a small LSTM (Part IV's sentiment chapter trains one), and fine-tuning needs
# a backward pass through all of it. So, to run on a 2-core CPU in a few minutes, this chapter
# fine-tunes on a small subset, with short inputs: a few hundred reviews, each cut to its last
# `MAX_TOKENS` word pieces (the tokenizer truncates from the left, where the verdict rarely is). The
# training and validation reviews come from IMDB's training split, the test reviews from its test
# split; the test reviews are used once, at the end.

# %%
MAX_TOKENS, N_TRAIN, N_VAL, N_TEST = 32, 96, 64, 200
BATCH, EPOCHS = 8, 1
texts, labels = load_imdb("train", limit=N_TRAIN + N_VAL, seed=0)
test_texts, test_labels = load_imdb("test", limit=N_TEST, seed=0)
tokenizer.truncation_side = "left"  # keep the end of each review


def encode_reviews(reviews):
    cleaned = [review.replace("<br />", " ") for review in reviews]
    batch = tokenizer(cleaned, truncation=True, max_length=MAX_TOKENS, padding="max_length", return_tensors="pt")
    return batch["input_ids"].to(device)


ids = encode_reviews(texts)
labels = torch.as_tensor(labels, device=device)
x_train, y_train, x_val, y_val = ids[:N_TRAIN], labels[:N_TRAIN], ids[N_TRAIN:], labels[N_TRAIN:]
x_test, y_test = encode_reviews(test_texts), torch.as_tensor(test_labels, device=device)
print(f"train {len(x_train)}, validation {len(x_val)}, test {len(x_test)} reviews of {MAX_TOKENS} word pieces; "
      f"positive share {y_train.float().mean():.2f} / {y_val.float().mean():.2f} / {y_test.float().mean():.2f}")
print("one training review, as the model sees it:", tokenizer.decode(x_train[0]))

# %% [markdown]
# ## Three ways to use the encoder
#
# 1. **Linear probe**: freeze the encoder, compute each review's embedding once, and fit a logistic
#    regression on them, its regularization strength chosen on the validation reviews (the feature
#    extraction that Part IV's sentiment chapter uses).
# 2. **LoRA**: `get_peft_model(classifier, LoraConfig(r=8, lora_alpha=16, target_modules=["query",
#    "value"], modules_to_save=["head"]))`, then train.
# 3. **Full fine-tuning**: train every weight.
#
# Both fine-tuned variants start from the probe's head (linear probing, then fine-tuning, a recipe that
# keeps a random head from scrambling the pretrained features in the first steps
# {cite}`kumar2022`); they see the same reviews in the same order, for the same number of steps, with the AdamW of
# Part I (`optim.adamw`) and the cosine decay of Part II, through `ReferenceOptimizer` and the course's
# `train_classifier`. Only the peak learning rate differs, as it does in practice: adapters take a
# larger one than the pretrained weights tolerate (`LR` below: 5e-5, the usual value for fully fine-tuning a
# BERT-sized model, and for LoRA a value above the 4e-4 to 5e-4 of the LoRA paper's RoBERTa-base runs
# {cite}`hu2021lora`, since this run has only a dozen steps; neither was tuned).

# %%
from sklearn.linear_model import LogisticRegression

probe_start = time.perf_counter()
base_classifier = SentimentClassifier(encoder).to(device).eval()
with torch.no_grad():
    features = {split: torch.cat([base_classifier.embed(x[i:i + 64]) for i in range(0, len(x), 64)]).cpu().numpy()
                for split, x in (("train", x_train), ("val", x_val), ("test", x_test))}
y_np = {"train": y_train.cpu().numpy(), "val": y_val.cpu().numpy(), "test": y_test.cpu().numpy()}
probe_val = {c: LogisticRegression(C=c, max_iter=2000).fit(features["train"], y_np["train"]).score(features["val"], y_np["val"])
             for c in (1, 3, 10, 30, 100)}
best_c = max(probe_val, key=probe_val.get)
probe = LogisticRegression(C=best_c, max_iter=2000).fit(features["train"], y_np["train"])
accuracy = {"linear probe": probe.score(features["test"], y_np["test"])}
print(f"probe: C = {best_c} (validation accuracy {probe_val[best_c]:.3f}), test accuracy {accuracy['linear probe']:.3f}, "
      f"{time.perf_counter() - probe_start:.0f} s")

# %%
LR = {"LoRA": 2e-3, "full fine-tuning": 5e-5}
STEPS = EPOCHS * -(-N_TRAIN // BATCH)


def classifier_from_probe():
    """A fresh copy of the encoder with the probe's logistic regression as its head (logit 0 for class 0)."""
    model = SentimentClassifier(copy.deepcopy(encoder)).to(device)
    model.encoder.pooler.requires_grad_(False)  # the pooler is not used: no gradient would reach it
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.head.weight[1] = torch.as_tensor(probe.coef_[0], dtype=torch.float32)
        model.head.bias[1] = float(probe.intercept_[0])
    return model


def fine_tune(model, learning_rate, name):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = ReferenceOptimizer(params, optim.adamw(schedules.cosine_decay(learning_rate, STEPS), weight_decay=0.01))
    return train_classifier(model, optimizer, x_train, y_train, x_val=x_val, y_val=y_val, epochs=EPOCHS,
                            batch_size=BATCH, seed=0, progress=False, name=name)


models, histories, seconds, trained = {}, {}, {}, {}
for name in ("LoRA", "full fine-tuning"):
    torch.manual_seed(0)
    model = classifier_from_probe()
    if name == "LoRA":
        model = get_peft_model(model, lora_config(["query", "value"]))
    trained[name] = count_parameters(model, trainable_only=True)
    start = time.perf_counter()
    histories[name] = fine_tune(model, LR[name], name)
    seconds[name] = time.perf_counter() - start
    accuracy[name] = evaluate(model, x_test, y_test, ("accuracy",), batch_size=64)["accuracy"]
    models[name] = model.eval()
    print(f"{name:<17}: {trained[name]:>10,} trained parameters, {STEPS} steps in {seconds[name]:.0f} s, "
          f"validation {histories[name].series('val_accuracy')[1][-1]:.3f}, test {accuracy[name]:.3f}")
lora_model = models["LoRA"]

# %%
fig, (ax_acc, ax_par) = plt.subplots(1, 2, figsize=(9, 3.8))
names = list(accuracy)
ax_acc.bar(names, [accuracy[n] for n in names], color=["C7", "C0", "C3"])
ax_acc.axhline(0.5, color="black", linestyle="--", linewidth=0.8, label="chance")
ax_acc.set_ylim(0.4, 1.0)
ax_acc.set_ylabel(f"accuracy on {N_TEST} test reviews (fraction)")
ax_acc.legend()
ax_par.bar(names, [probe.coef_.size + probe.intercept_.size, trained["LoRA"], trained["full fine-tuning"]],
           color=["C7", "C0", "C3"])
ax_par.set_yscale("log")
ax_par.set_ylabel("trained parameters (count, log scale)")
fig.suptitle(f"LoRA and full fine-tuning, same {STEPS} steps: accuracies within the noise, "
             f"{trained['full fine-tuning'] / trained['LoRA']:.0f}x fewer trained weights")
fig.tight_layout()
plt.show()

# %%
lora_share = trained["LoRA"] / trained["full fine-tuning"]
probe_acc, lora_acc, full_acc = accuracy["linear probe"], accuracy["LoRA"], accuracy["full fine-tuning"]
standard_error = np.sqrt(0.25 / N_TEST)  # of one accuracy near 50-80 %, from N_TEST reviews
print(f"LoRA trains {lora_share:.2%} of what full fine-tuning trains")
print({name: round(value, 3) for name, value in accuracy.items()}, f"| standard error of one accuracy <= {standard_error:.3f}")
glue("peft_lora_share", f"{lora_share:.2%}")
glue("peft_probe_acc", f"{probe_acc:.1%}")
glue("peft_lora_acc", f"{lora_acc:.1%}")
glue("peft_full_acc", f"{full_acc:.1%}")
glue("peft_steps", f"{STEPS}")
glue("peft_n_train", f"{N_TRAIN}")
glue("peft_n_test", f"{N_TEST}")
glue("peft_standard_error", f"{100 * standard_error:.1f}")
glue("peft_two_se", f"{200 * standard_error:.0f}")
val_acc = {"linear probe": probe_val[best_c], **{n: histories[n].series("val_accuracy")[1][-1] for n in models}}
glue("peft_probe_val", f"{val_acc['linear probe']:.1%}")
glue("peft_lora_val", f"{val_acc['LoRA']:.1%}")
glue("peft_full_val", f"{val_acc['full fine-tuning']:.1%}")

# %% tags=["remove-input"]
assert 0.003 < lora_share < 0.004
# "the three differ by less than two standard errors": they cannot be told apart on this budget
assert max(accuracy.values()) - min(accuracy.values()) < 2 * standard_error
assert min(accuracy.values()) > 0.5  # all above chance

# %% [markdown]
# **What to notice.**
#
# * LoRA trains {glue:text}`peft_lora_share` of the parameters that full fine-tuning trains.
# * On the test reviews the linear probe scores {glue:text}`peft_probe_acc`, LoRA {glue:text}`peft_lora_acc` and
#   full fine-tuning {glue:text}`peft_full_acc`, after {glue:text}`peft_steps` steps on {glue:text}`peft_n_train`
#   reviews. One accuracy measured on {glue:text}`peft_n_test` reviews is uncertain by about {glue:text}`peft_standard_error` points (one standard
#   error), and the three differ by less than two standard errors of one accuracy: **this run gives no
#   ranking of them**. (On the 64 validation reviews: probe {glue:text}`peft_probe_val`, LoRA
#   {glue:text}`peft_lora_val`, full fine-tuning {glue:text}`peft_full_val`.)
# * That is the honest result of a CPU-sized run, not a verdict on LoRA. A dozen small steps barely move
#   a model away from the probe it starts from, and 96 reviews of 32 word pieces are little to learn
#   from. Fine-tuning pays with thousands of labelled examples, full-length inputs and a few epochs, which
#   is where the LoRA paper finds it on par with full fine-tuning {cite}`hu2021lora`; run the same cells
#   with `N_TRAIN` in the thousands and `MAX_TOKENS = 256` on a GPU to test that yourself. What this run does show is
#   the practice: the probe is the baseline to beat, the learning rates are set per method, and the test
#   reviews are scored once.
# * Each LoRA step computes no gradient for the frozen weights and keeps AdamW state for
#   {glue:text}`peft_lora_share` of them; the forward and backward passes through the activations remain,
#   so a LoRA step saves far less than its share of trained parameters suggests (compare the printed
#   times).
#
# ## Merging and saving the adapters
#
# Trained, the adapter is two small matrices per adapted layer plus the head. `save_pretrained` writes
# only those, plus `adapter_config.json` (the `LoraConfig`) and a `README.md` model card, to a folder; anyone holding the same
# pretrained encoder rebuilds the fine-tuned model with `PeftModel.from_pretrained`. For deployment,
# `merge_and_unload` folds $\frac{\alpha}{r}BA$ into each adapted weight and returns the plain model,
# with no adapter left, as fast as the original.

# %%
def folder_bytes(folder):
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(folder) for f in files)


with tempfile.TemporaryDirectory() as tmp:
    lora_model.save_pretrained(os.path.join(tmp, "adapter"))
    print("saved:", sorted(os.listdir(os.path.join(tmp, "adapter"))))
    adapter_bytes = folder_bytes(os.path.join(tmp, "adapter"))
    reloaded = PeftModel.from_pretrained(SentimentClassifier(copy.deepcopy(encoder)).to(device),
                                         os.path.join(tmp, "adapter")).eval()
    merged = copy.deepcopy(lora_model).merge_and_unload().eval()
    torch.save(merged.state_dict(), os.path.join(tmp, "merged.pt"))
    merged_bytes = os.path.getsize(os.path.join(tmp, "merged.pt"))
sample = x_test[:32]
with torch.no_grad():
    out_lora, out_reloaded, out_merged = lora_model(sample), reloaded(sample), merged(sample)
reload_diff = (out_lora - out_reloaded).abs().max().item()
merge_diff = (out_lora - out_merged).abs().max().item()
lora_layers_left = sum("lora" in name for name, _ in merged.named_parameters())
print(f"adapter folder {adapter_bytes / 1e6:.2f} MB | whole merged model {merged_bytes / 1e6:.1f} MB | "
      f"ratio {merged_bytes / adapter_bytes:.0f}x")
print(f"largest logit difference: reloaded vs trained {reload_diff:.1e}, merged vs unmerged {merge_diff:.1e}; "
      f"LoRA parameters left after merging: {lora_layers_left}")
print(type(merged).__name__, "| its query layer:", merged.encoder.encoder.layer[0].attention.self.query)
glue("peft_adapter_mb", f"{adapter_bytes / 1e6:.2f}")
glue("peft_merged_mb", f"{merged_bytes / 1e6:.0f}")
glue("peft_size_ratio", f"{merged_bytes / adapter_bytes:.0f}")

# %% tags=["remove-input"]
assert type(merged) is SentimentClassifier, type(merged)
assert reload_diff < 1e-5 and merge_diff < 1e-4 and lora_layers_left == 0
assert type(merged.encoder.encoder.layer[0].attention.self.query) is nn.Linear
assert 200 < merged_bytes / adapter_bytes < 400 and adapter_bytes < 0.5e6

# %% [markdown]
# **What to notice.** The adapter folder holds {glue:text}`peft_adapter_mb` MB, the whole merged model
# {glue:text}`peft_merged_mb` MB: {glue:text}`peft_size_ratio` times more. One copy of the encoder can serve many tasks, each an
# adapter a few hundred kilobytes large. Reloaded from disk, the adapter gives the same logits, and merged,
# the model is again a plain `SentimentClassifier` whose layers are ordinary `nn.Linear`s, with the
# same outputs up to float32 rounding.
#
# ## `peft`'s LoRA layer is our `LoRALinear`
#
# Inside the `peft` model, each adapted layer is a `peft.tuners.lora.Linear` holding the frozen
# `base_layer`, `lora_A["default"]` and `lora_B["default"]` (`nn.Linear`s without bias, kept in
# dictionaries keyed by adapter name, since one layer can hold several adapters) and `scaling["default"]`
# $= \alpha/r$.
# Copy the trained $W_0, b, A, B$ of one layer into the course's `LoRALinear` and the two compute the
# same thing; `tests/test_compression_lora_peft.py` checks this for several ranks, the merge and the
# gradients, and that a wrong scale ($\alpha$ instead of $\alpha/r$, or rsLoRA's $\alpha/\sqrt r$) is
# caught.

# %%
peft_query = lora_model.base_model.model.encoder.encoder.layer[0].attention.self.query
print(type(peft_query).__module__ + "." + type(peft_query).__name__, "| scaling:", peft_query.scaling)
ours = LoRALinear(copy.deepcopy(peft_query.base_layer), rank=RANK, alpha=ALPHA)
with torch.no_grad():
    ours.lora_A.copy_(peft_query.lora_A["default"].weight)
    ours.lora_B.copy_(peft_query.lora_B["default"].weight)
    hidden_states = torch.randn(4, MAX_TOKENS, 384, generator=torch.Generator().manual_seed(0)).to(device)
    layer_diff = (ours(hidden_states) - peft_query(hidden_states)).abs().max().item()
    update_size = (peft_query(hidden_states) - peft_query.base_layer(hidden_states)).abs().max().item()
print(f"largest |LoRALinear - peft| = {layer_diff:.1e}, while the adapter moves the output by up to {update_size:.2e}")

# %% tags=["remove-input"]
assert layer_diff < 1e-5 and update_size > 1e-4

# %% [markdown]
# ## Pitfalls of popular snippets
#
# * **Target names that match nothing, or too much.** `target_modules` matches whole name parts;
#   `"q_proj"` (a LLaMA name) matches nothing in BERT and `peft` raises, but `"dense"` matches the
#   attention output, *both* feed-forward layers (`intermediate.dense`, `output.dense`) *and* the pooler. Print the names, then
#   `print_trainable_parameters()`.
# * **Forgetting the head.** A new classification head that is not in `modules_to_save` stays at its
#   random initialization, frozen; and it is not in the saved adapter.
# * **Saving the wrong thing.** `model.save_pretrained` on the `PeftModel` saves the adapter (small);
#   after `merge_and_unload` you hold the full model, and must save all of it.
# * **Testing while choosing.** The probe's regularization is chosen on the validation reviews; the
#   learning rates are fixed in advance, not tuned; the test reviews are scored once.
#
# ## Summary
#
# * `peft` adds LoRA to a model given the names of its layers: `LoraConfig(r, lora_alpha,
#   target_modules, modules_to_save)` and `get_peft_model`. On MiniLM with adapters on query and value,
#   {glue:text}`peft_qv_share` of the parameters train.
# * On 96 short reviews and 12 steps, LoRA, full fine-tuning and a linear probe on the frozen
#   embeddings end within two standard errors ({glue:text}`peft_two_se` points) of each other on the test
#   reviews: with few labels, the probe is the baseline to report, and fine-tuning has to earn its cost.
# * The saved adapter is {glue:text}`peft_size_ratio` times smaller than the model; merged, it leaves an
#   ordinary model.
# * `peft`'s LoRA layer and the course's `LoRALinear` compute the same function.

# %% [markdown]
# ## Exercises
#
# ### Exercise 1 (Implement it): merge an adapter into a `Linear`
#
# Write `merge_into_linear(base, lora_A, lora_B, alpha)`: given the frozen `nn.Linear` `base`
# (weight $W_0$ of shape `(d_out, d_in)`, bias $b$), `lora_A` of shape `(r, d_in)` and `lora_B` of shape
# `(d_out, r)`, return a **new** `nn.Linear` holding $W_0 + \frac{\alpha}{r} BA$ and the same bias (or
# none, if `base` has none), leaving `base` unchanged. The rank $r$ comes from the shapes. The check
# compares your layer with what `peft`'s `merge_and_unload` returns.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "peft-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
def merge_into_linear(base, lora_A, lora_B, alpha):
    ### BEGIN SOLUTION
    rank = lora_A.shape[0]
    merged = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None,
                       device=base.weight.device, dtype=base.weight.dtype)
    with torch.no_grad():
        merged.weight.copy_(base.weight + (alpha / rank) * (lora_B @ lora_A))
        if base.bias is not None:
            merged.bias.copy_(base.bias)
    return merged
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "peft-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def ex1_peft_layer(rank, alpha, bias=True, seed=0):
    torch.manual_seed(seed)
    net = get_peft_model(nn.Sequential(nn.Linear(20, 12, bias=bias), nn.ReLU(), nn.Linear(12, 2)),
                         LoraConfig(r=rank, lora_alpha=alpha, target_modules=["0"], lora_dropout=0.0))
    layer = net.base_model.model[0]
    with torch.no_grad():
        layer.lora_B["default"].weight.normal_()  # B = 0 at initialization: make the update visible
    return net, layer


ex1_net, ex1_layer = ex1_peft_layer(4, 8)
ex1_w0 = ex1_layer.base_layer.weight.detach().clone()
ex1_mine = merge_into_linear(ex1_layer.base_layer, ex1_layer.lora_A["default"].weight, ex1_layer.lora_B["default"].weight, 8)
ex1_theirs = copy.deepcopy(ex1_net).merge_and_unload()[0]
assert isinstance(ex1_mine, nn.Linear) and ex1_mine is not ex1_layer.base_layer, "return a new nn.Linear"
assert torch.equal(ex1_layer.base_layer.weight, ex1_w0), "the base layer must stay unchanged (merge into a copy)"
assert torch.allclose(ex1_mine.weight, ex1_theirs.weight, atol=1e-6), "the merged weight must be W_0 + (alpha / r) B A, as peft's merge_and_unload gives"
assert torch.equal(ex1_mine.bias, ex1_theirs.bias), "keep the base layer's bias"
### BEGIN HIDDEN TESTS
for ex1_rank, ex1_alpha, ex1_bias in ((1, 1, True), (3, 5, False), (8, 16, True)):
    ex1_net, ex1_layer = ex1_peft_layer(ex1_rank, ex1_alpha, ex1_bias, seed=ex1_rank)
    ex1_mine = merge_into_linear(ex1_layer.base_layer, ex1_layer.lora_A["default"].weight,
                                 ex1_layer.lora_B["default"].weight, ex1_alpha)
    ex1_theirs = copy.deepcopy(ex1_net).merge_and_unload()[0]
    assert torch.allclose(ex1_mine.weight, ex1_theirs.weight, atol=1e-6), f"rank {ex1_rank}, alpha {ex1_alpha}: the rank comes from the shapes of A and B"
    assert (ex1_mine.bias is None) == (not ex1_bias), "a base layer without bias gives a merged layer without bias"
    ex1_x = torch.randn(5, 20)
    with torch.no_grad():
        assert torch.allclose(ex1_mine(ex1_x), ex1_layer(ex1_x), atol=1e-5), "the merged layer must compute what the adapted one computes"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (Implement it): how many parameters will `peft` train?
#
# Write `count_lora_trainable(model, target_modules, rank, modules_to_save=())`: the number of
# parameters that `get_peft_model(model, LoraConfig(r=rank, target_modules=target_modules,
# modules_to_save=modules_to_save))` makes trainable, computed from `model` alone. Follow `peft`'s
# matching rule: a module is a target when its name (as in `model.named_modules()`) equals an entry of
# `target_modules` or ends with `"." + entry`; each target `nn.Linear` gains $r(d_\text{in} +
# d_\text{out})$ parameters; each module named in `modules_to_save` (same rule) trains all its parameters.
# The check compares your count with `peft`'s `get_nb_trainable_parameters()` on a small BERT.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "peft-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
def count_lora_trainable(model, target_modules, rank, modules_to_save=()):
    ### BEGIN SOLUTION
    def matches(name, keys):
        return any(name == key or name.endswith("." + key) for key in keys)

    total = 0
    for name, module in model.named_modules():
        if matches(name, modules_to_save):
            total += sum(p.numel() for p in module.parameters())
        elif matches(name, target_modules) and isinstance(module, nn.Linear):
            total += rank * (module.in_features + module.out_features)
    return total
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "peft-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from transformers import BertConfig, BertModel


class Ex2Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.encoder = BertModel(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                            intermediate_size=48, max_position_embeddings=16))
        self.head = nn.Linear(32, 3)


def ex2_peft_count(targets, rank, save=()):
    return get_peft_model(Ex2Classifier(), LoraConfig(r=rank, target_modules=targets, modules_to_save=list(save))).get_nb_trainable_parameters()[0]


ex2_mine = count_lora_trainable(Ex2Classifier(), ["query", "value"], 4, ["head"])
assert ex2_mine == ex2_peft_count(["query", "value"], 4, ["head"]), f"query and value at r = 4 plus the head: peft trains {ex2_peft_count(['query', 'value'], 4, ['head'])}, you count {ex2_mine}"
### BEGIN HIDDEN TESTS
for ex2_targets, ex2_rank, ex2_save in ((["query"], 1, ()), (["dense"], 2, ["head"]), (["query", "key", "value", "dense"], 8, ["head"]),
                                       (["intermediate.dense"], 3, ()), (["attention.output.dense", "value"], 5, ["head"])):
    ex2_expected = ex2_peft_count(ex2_targets, ex2_rank, ex2_save)
    ex2_mine = count_lora_trainable(Ex2Classifier(), ex2_targets, ex2_rank, ex2_save)
    assert ex2_mine == ex2_expected, f"targets {ex2_targets}, r = {ex2_rank}, modules_to_save {list(ex2_save)}: peft trains {ex2_expected}, you count {ex2_mine} (names match by suffix after a dot)"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 (Derive it): what an adapter stores, and what it costs at inference
#
# (a) Write `lora_storage_bytes(n_layers, matrices_per_layer, d_in, d_out, rank, bytes_per_number=4)`: the
# bytes of the adapters when `matrices_per_layer` matrices of shape $d_\text{out} \times d_\text{in}$ are
# adapted in each of `n_layers` layers at rank $r$. Evaluate it for this chapter's adapters (MiniLM:
# 6 layers, query and value, $384 \times 384$, $r = 8$, float32) and compare with the adapter folder
# measured above. (b) Write `unmerged_extra_flops(d_in, d_out, rank)`: the extra multiply-adds per token of
# an *unmerged* adapter on one layer, as a fraction of the layer's own $d_\text{in} d_\text{out}$. What is it for
# MiniLM's query at $r = 8$, and for a $4096 \times 4096$ projection at $r = 16$? (c) What does the adapter
# cost at inference once merged, and what does merging give up?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "peft-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
def lora_storage_bytes(n_layers, matrices_per_layer, d_in, d_out, rank, bytes_per_number=4):
    ### BEGIN SOLUTION
    return n_layers * matrices_per_layer * rank * (d_in + d_out) * bytes_per_number
    ### END SOLUTION


def unmerged_extra_flops(d_in, d_out, rank):
    ### BEGIN SOLUTION
    return rank * (d_in + d_out) / (d_in * d_out)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "peft-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert lora_storage_bytes(6, 2, 384, 384, 8) == 294_912, f"for MiniLM's adapters (6 layers, query and value, 384 x 384, r = 8, float32) expected 294,912 bytes, got {lora_storage_bytes(6, 2, 384, 384, 8)}"
assert abs(unmerged_extra_flops(384, 384, 8) - 1 / 24) < 1e-12, f"expected 1/24 for MiniLM's query at r = 8, got {unmerged_extra_flops(384, 384, 8)}"
### BEGIN HIDDEN TESTS
assert lora_storage_bytes(32, 4, 4096, 4096, 16, bytes_per_number=2) == 32 * 4 * 16 * 8192 * 2, "32 layers, 4 matrices of 4096 x 4096, r = 16, 2-byte numbers: use bytes_per_number"
assert lora_storage_bytes(1, 1, 784, 1024, 4) == 4 * 4 * (784 + 1024), "one 1024 x 784 matrix at r = 4: r (d_in + d_out) numbers of 4 bytes"
assert abs(unmerged_extra_flops(4096, 4096, 16) - 32 / 4096) < 1e-12, "4096 x 4096 at r = 16: 16 (4096 + 4096) / 4096^2"
assert abs(unmerged_extra_flops(384, 1536, 8) - 8 * 1920 / (384 * 1536)) < 1e-12, "a non-square layer: r (d_in + d_out) / (d_in d_out)"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "peft-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) Each adapted matrix stores $A$ ($r \times d_\text{in}$) and $B$ ($d_\text{out} \times r$): $r(d_\text{in} +
# d_\text{out})$ numbers. For MiniLM: $6 \times 2 \times 8 \times 768 = 73{,}728$ numbers, $294{,}912$ bytes in float32.
# The measured folder is a little larger: it also holds the head ($384 \times 2 + 2 = 770$ numbers, 3,080 bytes),
# the safetensors header that names every tensor, `adapter_config.json`, and the `README.md` model card
# `peft` writes (a few kilobytes, the largest extra).
#
# (b) Unmerged, the layer computes $W_0 x$ ($d_\text{in} d_\text{out}$ multiply-adds per token) plus
# $B(Ax)$ ($r d_\text{in} + r d_\text{out}$), a fraction $\frac{r(d_\text{in} + d_\text{out})}{d_\text{in} d_\text{out}}$
# $= \frac{2r}{d}$ for a square layer: $16/384 \approx 4.2\%$ for MiniLM's query at $r = 8$, and $32/4096
# \approx 0.8\%$ for a $4096 \times 4096$ projection at $r = 16$. In time it is often more than that
# share, because the two thin products are extra kernel launches with little work each.
#
# (c) Merged, nothing: $W = W_0 + \frac{\alpha}{r}BA$ has the shape of $W_0$ and the layer is one
# ordinary matrix product. What merging gives up is the separation: a merged model serves one task, and
# switching tasks means unmerging (subtracting the update, exact up to rounding) or keeping a full copy
# per task, whereas unmerged adapters let one base serve many tasks, a few hundred kilobytes each.
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 (Investigate): does the rank matter here?
#
# Fine-tune LoRA on query and value at ranks 1 and 32 (keep $\alpha = 16$ fixed, as the LoRA paper does:
# the $1/r$ in $\alpha/r$ is what lets one learning rate serve every rank), each from the probe's
# head, on only the first 24 training reviews for 3 steps of 8 (a tiny run, to keep it to seconds).
# Record the trainable parameters and the validation accuracy (the validation reviews, not the test
# reviews: this is a choice of $r$). Does accuracy follow the number of trained parameters? What would
# you need to tell the ranks apart?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "peft-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
ex4_rows = []
for ex4_rank in (1, 32):
    torch.manual_seed(0)
    ex4_model = get_peft_model(classifier_from_probe(), lora_config(["query", "value"], rank=ex4_rank))
    ex4_params = [p for p in ex4_model.parameters() if p.requires_grad]
    ex4_opt = ReferenceOptimizer(ex4_params, optim.adamw(schedules.cosine_decay(LR["LoRA"], 3), weight_decay=0.01))
    train_classifier(ex4_model, ex4_opt, x_train[:24], y_train[:24], epochs=1, batch_size=8, seed=0, progress=False)
    ex4_val = evaluate(ex4_model, x_val, y_val, ("accuracy",), batch_size=64)["accuracy"]
    ex4_rows.append((ex4_rank, count_parameters(ex4_model, trainable_only=True), ex4_val))
    print(f"r = {ex4_rank:>2}: {ex4_rows[-1][1]:>7,} trained parameters, validation accuracy {ex4_val:.3f}")
print(f"the probe alone: validation accuracy {probe_val[best_c]:.3f}")
### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "peft-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# The trainable parameters grow linearly with $r$ (each adapted matrix adds $768$ per unit of rank,
# plus the head's 770), from about 10,000 at $r = 1$ to about 300,000 at $r = 32$, 30 times more. The
# validation accuracies tell little: with 64 validation reviews one review is 1.6 points and the standard
# error of one accuracy is about 6 points, so differences of a few points say nothing, and 3 steps move the
# adapters only a little away from the probe's solution. This agrees with the LoRA paper, where ranks from 1 to 64 on $W_q, W_v$ gave nearly the
# same results on GPT-3 {cite}`hu2021lora`: the update needed for a task has a small "intrinsic" rank,
# and rank is seldom what limits LoRA. To tell ranks apart you would need many more training steps (so
# that the adapters use their capacity), several seeds, and thousands of validation reviews, on a GPU.
# :::
# <!-- ### END SOLUTION -->

# %% tags=["remove-input"]
print(f"chapter computations: {time.perf_counter() - chapter_start:.0f} s")
