"""Quantization benchmark: size, CPU latency and MNIST accuracy of float32, int8 and NF4 models.

    python -m companion.bench quantization [--seeds 0 1 2] [--batch 64] [--repeats 200] [--tflite]

For each seed, trains the chapter's Linear-heavy MLP (784-512-512-10, the recipe of
``companion.compression.quantization``), then compresses it with post-training dynamic int8, static
int8 (eager mode, x86 backend, 1,000 calibration images), quantization-aware training and NF4
weight-only storage, and measures each against the float32 model in the same run: bytes of
``torch.save(state_dict)``, median latency of one batch on one CPU thread, and accuracy on the
10,000 MNIST test images. With ``--tflite``, also converts the same weights to TFLite float32 and
full-integer int8 (needs TensorFlow). Prints the int8 targets with their values and whether
they pass: at least 3.5x smaller, at most 0.5 point accuracy loss, and the measured CPU latency ratio
of dynamic quantization (reported; a speed-up is expected, not a particular factor).
"""

from __future__ import annotations

import argparse
import sys
import os
import warnings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion.bench quantization", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--batch", type=int, default=64, help="batch size of the latency measurement")
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per latency measurement")
    parser.add_argument("--tflite", action="store_true", help="also convert to TFLite float32 and int8")
    args = parser.parse_args(argv)

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*|.*quantize_per_channel.*|.*reduce_range.*")
    warnings.filterwarnings("ignore", message=".*Statistics for quantized inputs.*")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported (with --tflite)
    import torch

    from companion.compression import quantization as Q
    from companion.compression.measure import measure_latency, model_size
    from companion.reproducibility import pick_device, seed_everything
    from companion.training import accuracy, mnist_tensors

    torch.set_num_threads(1)  # latency on one thread, as in the chapter
    device = pick_device()
    x_train, y_train, _, _, x_test, y_test = mnist_tensors(60_000, device=device)
    x_test, y_test = x_test.cpu(), y_test.cpu()  # evaluation and timing on the CPU
    config = Q.TrainConfig()
    print(f"device {device}, quantized engine {torch.backends.quantized.engine}, {config}")
    print(f"latency: median of {args.repeats} calls, batch {args.batch}, 1 thread\n")

    def measure(model):
        with torch.no_grad():
            return (
                model_size(model).bytes,
                100 * accuracy(model, x_test, y_test),
                measure_latency(model, x_test[: args.batch], repeats=args.repeats, warmup=10).median_ms,
            )

    verdicts = []
    for seed in args.seeds:
        seed_everything(seed)
        trained, _ = Q.train_float(x_train, y_train, seed=seed, config=config, progress=False)
        float_model = trained.cpu().eval()
        calibration_x = x_train[: config.calibration_size].cpu()
        models = {
            "float32": float_model,
            "int8 dynamic": Q.dynamic_int8(float_model),
            "int8 static": Q.static_int8(float_model, calibration_x),
            "int8 QAT": Q.qat_int8(float_model, x_train, y_train, seed=seed, config=config),
            "NF4 weight-only": Q.nf4_weight_only(float_model),
        }
        rows = {name: measure(model) for name, model in models.items()}
        if args.tflite:
            import numpy as np

            from companion.compression.keras_quantization import TFLiteClassifier, keras_copy, to_tflite

            keras_model = keras_copy(float_model)
            flat_test = x_test.reshape(len(x_test), -1).numpy()
            for name, flatbuffer in [
                ("TFLite float32", to_tflite(keras_model)),
                ("TFLite int8", to_tflite(keras_model, calibration_x.reshape(len(calibration_x), -1).numpy())),
            ]:
                classifier = TFLiteClassifier(flatbuffer, num_threads=1)
                latency = measure_latency(classifier.logits, np.ascontiguousarray(flat_test[: args.batch]), repeats=args.repeats, warmup=10)
                rows[name] = (len(flatbuffer), 100 * classifier.accuracy(flat_test, y_test.numpy()), latency.median_ms)

        print(f"seed {seed}")
        print(f"  {'model':<16} {'bytes':>10} {'x smaller':>9} {'accuracy %':>10} {'latency ms':>10} {'x faster':>8}")
        for name, (size, acc, latency) in rows.items():
            base = rows["TFLite float32" if name.startswith("TFLite") else "float32"]
            print(f"  {name:<16} {size:>10,} {base[0] / size:>9.2f} {acc:>10.2f} {latency:>10.3f} {base[2] / latency:>8.2f}")
        f_size, f_acc, f_lat = rows["float32"]
        for name in ("int8 dynamic", "int8 static", "int8 QAT"):
            size, acc, _ = rows[name]
            verdicts.append((seed, f"{name}: at least 3.5x smaller", f"{f_size / size:.2f}x", f_size / size >= 3.5))
            verdicts.append((seed, f"{name}: at most 0.5 point accuracy loss", f"{f_acc - acc:+.2f} points", f_acc - acc <= 0.5))
        ratio = f_lat / rows["int8 dynamic"][2]
        verdicts.append((seed, f"dynamic int8 CPU latency ratio float32/int8 (batch {args.batch}, 1 thread)", f"{ratio:.2f}x", ratio > 1.0))
        print(flush=True)

    print("targets")
    for seed, target, value, passed in verdicts:
        print(f"  seed {seed}  {target:<72} {value:>12}  {'PASS' if passed else 'FAIL'}")
    print("all targets pass" if all(v[3] for v in verdicts) else "SOME TARGETS FAIL")
    return 0 if all(v[3] for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
