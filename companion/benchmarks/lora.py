"""LoRA and QLoRA benchmark: the chapter's transfer task over several seeds, against its targets.

    python -m companion.bench lora [--seeds 0 1 2]

For each seed: pretrain the chapter's MLP (784-1024-1024, ``companion.compression.lora.TransferConfig``)
on MNIST digits 0-4, then adapt it to digits 5-9 with a new 5-way head by full fine-tuning, LoRA
(rank 4 on both hidden layers), QLoRA (the same adapters on an NF4 base) and a new head alone, with the
same data, epochs and batch order. Prints, per seed and method, the test accuracy on all digit 5-9
test images, the trainable parameters (head included) against all parameters, the bytes of Adam's
state after training, and the bytes of the hidden-layer weights (float32, or NF4 for QLoRA); then the
two LoRA targets for every seed, with PASS or FAIL:

- at most 2% of the parameters trainable;
- test accuracy within 1 point of full fine-tuning on the same task.

One thread (``torch.set_num_threads(1)``), as in the chapter. About a minute per seed on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion.bench lora", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)

    import torch

    from companion.compression import lora
    from companion.data import load_mnist
    from companion.training import accuracy, as_tensors

    torch.set_num_threads(1)
    config = lora.TransferConfig()
    print(config)
    x_train, y_train = load_mnist("train", progress=False)
    x_test, y_test = load_mnist("test", progress=False)
    x_src, y_src = as_tensors(*lora.digit_subset(x_train, y_train, config.source_digits, config.pretrain_examples))
    x_src_test, y_src_test = as_tensors(*lora.digit_subset(x_test, y_test, config.source_digits))
    x_tgt, y_tgt = as_tensors(*lora.digit_subset(x_train, y_train, config.target_digits, config.finetune_examples))
    x_tgt_test, y_tgt_test = as_tensors(*lora.digit_subset(x_test, y_test, config.target_digits))

    rows = []
    header = f"{'seed':>4} {'method':>6} {'test acc':>9} {'trainable':>10} {'of':>10} {'share':>7} {'Adam B':>11} {'hidden W B':>11} {'s':>5}"
    for seed in args.seeds:
        start = time.perf_counter()
        pretrained, _ = lora.pretrain(config, x_src, y_src, seed=seed)
        print(f"\nseed {seed}: pretrained in {time.perf_counter() - start:.0f} s, "
              f"digits 0-4 test accuracy {accuracy(pretrained, x_src_test, y_src_test):.4f}")
        print(header)
        results = {}
        for method in ("full", "lora", "qlora", "head"):
            start = time.perf_counter()
            r = lora.finetune(pretrained, method, config, x_tgt, y_tgt, x_tgt_test, y_tgt_test, seed=seed)
            results[method] = r
            print(f"{seed:>4} {method:>6} {r.test_accuracy:>9.4f} {r.trainable:>10,} {r.total:>10,} "
                  f"{r.trainable_fraction:>7.2%} {r.optimizer_state_bytes:>11,} {r.base_weight_bytes:>11,} "
                  f"{time.perf_counter() - start:>5.0f}", flush=True)
        rows.append((seed, results))

    print("\nTargets: LoRA at most 2% of parameters trainable; within 1 point of full fine-tuning")
    all_pass = True
    for seed, results in rows:
        full, low_rank, quantized = results["full"], results["lora"], results["qlora"]
        share_ok = low_rank.trainable_fraction <= 0.02
        gap = 100 * (full.test_accuracy - low_rank.test_accuracy)
        gap_ok = full.test_accuracy - low_rank.test_accuracy <= 0.01
        all_pass &= share_ok and gap_ok
        print(f"seed {seed}: trainable share {low_rank.trainable_fraction:.2%} <= 2%: {'PASS' if share_ok else 'FAIL'} | "
              f"full {full.test_accuracy:.2%} - LoRA {low_rank.test_accuracy:.2%} = {gap:.2f} points <= 1: "
              f"{'PASS' if gap_ok else 'FAIL'}")
        print(f"        QLoRA {quantized.test_accuracy:.2%} (gap to full {100 * (full.test_accuracy - quantized.test_accuracy):.2f} "
              f"points); frozen base {quantized.base_weight_bytes:,} B in NF4 vs {low_rank.base_weight_bytes:,} B in float32 "
              f"({low_rank.base_weight_bytes / quantized.base_weight_bytes:.2f}x); Adam state full/LoRA "
              f"{full.optimizer_state_bytes / low_rank.optimizer_state_bytes:.0f}x")
    print("all targets:", "PASS" if all_pass else "FAIL")
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
