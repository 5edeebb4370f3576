"""Pruning benchmark: the chapter's targets, re-measured with the chapter's recipe and seeds.

    python -m companion.bench pruning [--seeds 0 1 2] [--keras]

For each seed: train the dense MLP of :class:`companion.compression.pruning.PruningConfig` on MNIST,
prune it gradually to 90% sparsity while fine-tuning (polynomial-decay schedule, masks re-applied after
every step), and print the targets with their values and whether they pass:

- 90% sparsity with at most 1 point of test-accuracy loss (full 10,000-image test set, against the dense
  model of the same run);
- gzipped model (``torch.save`` of the state dict, ``gzip -9``) at least 3x smaller than the dense one.

It also prints the CPU latency (1 thread, batch 256) of the dense, the 90%-sparse and the structured
(half of the hidden neurons removed, then fine-tuned) models. With ``--keras``, the same targets for the
TensorFlow Model Optimization recipe (``prune_low_magnitude``; sets ``TF_USE_LEGACY_KERAS=1`` before
TensorFlow is imported). Needs the MNIST files (``companion.data``).
"""

from __future__ import annotations

import argparse
import sys
import copy
import os
import time


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion.bench pruning", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--keras", action="store_true", help="also run the tfmot recipe (imports TensorFlow)")
    args = parser.parse_args(argv)
    if args.keras:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"  # before TensorFlow is imported: tfmot wraps tf.keras 2 layers

    from dataclasses import replace

    import numpy as np
    import torch

    from companion.compression.measure import model_size
    from companion.compression.pruning import (
        PruningConfig,
        build_mlp,
        compare_latency,
        fine_tune_structured,
        prune_gradually,
        remove_neurons,
        sparsity_of,
        train_dense,
    )
    from companion.reproducibility import pick_device, seed_everything
    from companion.training import accuracy, mnist_tensors

    torch.set_num_threads(1)  # small model: one thread is fastest, and latencies are quoted for one thread
    device = pick_device()
    base = PruningConfig()
    x, y, _, _, x_test, y_test = mnist_tensors(base.train_images, device=device)
    all_ok = True
    for seed in args.seeds:
        recipe = replace(base, seed=seed)
        start = time.perf_counter()
        seed_everything(seed)
        dense = build_mlp(recipe, device)
        train_dense(dense, x, y, recipe, progress=False)
        pruned = copy.deepcopy(dense)
        prune_gradually(pruned, x, y, recipe, progress=False)
        structured = remove_neurons(dense, recipe.structured_amount)
        fine_tune_structured(structured, x, y, recipe, progress=False)
        dense_acc, pruned_acc = accuracy(dense, x_test, y_test), accuracy(pruned, x_test, y_test)
        sparsity = sparsity_of(pruned)
        ratio = model_size(dense).gzipped_bytes / model_size(pruned).gzipped_bytes
        latency = compare_latency({"dense": dense, "unstructured": pruned, "structured": structured}, x_test[:256])
        ok_acc = sparsity >= 0.9 - 1e-3 and pruned_acc >= dense_acc - 0.01
        ok_size = ratio >= 3.0
        all_ok &= ok_acc and ok_size
        print(f"seed {seed} ({time.perf_counter() - start:.0f} s): dense accuracy {dense_acc:.4f}")
        print(f"  [{verdict(ok_acc)}] sparsity {sparsity:.4f} >= 0.90 with accuracy {pruned_acc:.4f} "
              f"({100 * (pruned_acc - dense_acc):+.2f} points; target: loss <= 1 point)")
        print(f"  [{verdict(ok_size)}] gzipped model {ratio:.2f}x smaller (target >= 3x)")
        print(f"  latency, 1 thread, batch 256: dense {latency['dense'].median_ms:.2f} ms, "
              f"90%-sparse {latency['unstructured'].median_ms:.2f} ms "
              f"({latency['dense'].median_ms / latency['unstructured'].median_ms:.2f}x), "
              f"structured {latency['structured'].median_ms:.2f} ms "
              f"({latency['dense'].median_ms / latency['structured'].median_ms:.2f}x; "
              f"accuracy {accuracy(structured, x_test, y_test):.4f})", flush=True)

    if args.keras:
        from companion.compression.keras_pruning import build_keras_mlp, keras_model_gzipped_size, prune_with_tfmot
        from companion.data import load_mnist

        images, labels = load_mnist("train", limit=base.train_images)  # NumPy arrays, for Keras
        test_images, test_labels = load_mnist("test")
        for seed in args.seeds:
            recipe = replace(base, seed=seed)
            model = build_keras_mlp(recipe)
            model.fit(images, labels, batch_size=recipe.batch_size, epochs=recipe.dense_epochs, verbose=0)

            def keras_accuracy(m):
                return float(np.mean(m.predict(test_images, batch_size=2048, verbose=0).argmax(1) == test_labels))

            dense_acc, dense_gz = keras_accuracy(model), keras_model_gzipped_size(model)[1]
            pruned = prune_with_tfmot(model, images, labels, recipe)
            pruned_acc, pruned_gz = keras_accuracy(pruned), keras_model_gzipped_size(pruned)[1]
            kernels = [layer.kernel.numpy() for layer in pruned.layers if hasattr(layer, "kernel")]
            sparsity = sum(int((k == 0).sum()) for k in kernels) / sum(k.size for k in kernels)
            ok_acc = sparsity >= 0.9 - 1e-3 and pruned_acc >= dense_acc - 0.01
            ok_size = dense_gz / pruned_gz >= 3.0
            all_ok &= ok_acc and ok_size
            print(f"tfmot seed {seed}: dense accuracy {dense_acc:.4f}")
            print(f"  [{verdict(ok_acc)}] kernel sparsity {sparsity:.4f} >= 0.90 with accuracy {pruned_acc:.4f} "
                  f"({100 * (pruned_acc - dense_acc):+.2f} points; target: loss <= 1 point)")
            print(f"  [{verdict(ok_size)}] gzipped .h5 {dense_gz / pruned_gz:.2f}x smaller (target >= 3x)", flush=True)
    print("all targets met" if all_ok else "SOME TARGETS MISSED")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
