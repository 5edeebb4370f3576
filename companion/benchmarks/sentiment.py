"""IMDB sentiment benchmark: the chapter's LSTM on all 25,000 training reviews, test accuracy and seconds.

    python -m companion.bench sentiment [--cell lstm|gru] [--pooling max|last] [--epochs 3] [--max-len 200]
                                   [--vocab 20000] [--batch 64] [--lr 3e-3] [--threads 1] [--pack]

Reads the reviews with ``companion.data.load_imdb``, builds the vocabulary on the training split,
trains ``companion.sentiment.SentimentRNN`` with mini-batches bucketed by length, a one-cycle learning
rate and gradient clipping (the chapter's settings by default), and prints the accuracy on the
25,000 test reviews with the wall-clock and CPU seconds (user + system of this process) of each
phase. CPU seconds are the fairer figure on a shared machine.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion.bench sentiment", description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
    parser.add_argument("--pooling", choices=["max", "last"], default="max")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-len", type=int, default=200)
    parser.add_argument("--vocab", type=int, default=20_000)
    parser.add_argument("--embed", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads on a CPU")
    parser.add_argument("--pack", action="store_true", help="train with pack_padded_sequence instead of masking")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    from companion.data import load_imdb
    from companion.reproducibility import pick_device
    from companion.sentiment import SentimentRNN, Tokenizer, Vocabulary, encode_texts, predict_proba, train_sentiment

    device = pick_device()
    if device == "cpu":
        torch.set_num_threads(args.threads)

    def clock():
        return time.perf_counter(), time.process_time()

    def since(mark):
        return time.perf_counter() - mark[0], time.process_time() - mark[1]

    mark = clock()
    train_texts, y_train = load_imdb("train")
    test_texts, y_test = load_imdb("test")
    tokenizer = Tokenizer()
    train_tokens = [tokenizer(t) for t in train_texts]
    vocab = Vocabulary.build(train_tokens, min_freq=2, max_size=args.vocab)
    train_ids = [vocab.encode(t)[-args.max_len :] for t in train_tokens]
    test_ids = encode_texts(test_texts, tokenizer, vocab, max_len=args.max_len)
    prep = since(mark)

    torch.manual_seed(args.seed)
    model = SentimentRNN(len(vocab), args.embed, args.hidden, cell=args.cell, pooling=args.pooling)
    if args.pack:
        forward = model.forward
        model.forward = lambda ids, lengths=None, pack=True: forward(ids, lengths, pack=True)
    mark = clock()
    train_sentiment(model, train_ids, y_train, epochs=args.epochs, batch_size=args.batch, learning_rate=args.lr,
                    clip_norm=1.0, seed=args.seed, device=device)
    train = since(mark)
    mark = clock()
    accuracy = float(np.mean((predict_proba(model, test_ids, device=device) > 0.5) == y_test))
    evaluate = since(mark)

    print(f"settings: {vars(args)} | device {device}")
    print(f"{'phase':<28} {'wall s':>7} {'cpu s':>7}")
    for name, (wall, cpu) in (("load + tokenize + encode", prep), ("train", train), ("evaluate 25,000 reviews", evaluate)):
        print(f"{name:<28} {wall:7.1f} {cpu:7.1f}")
    print(f"test accuracy: {accuracy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
