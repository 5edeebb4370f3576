"""Transfer-learning benchmark: what the input size costs, and the three regimes' speed.

    python -m companion.bench transfer_learning [--sizes 224 176 144] [--regimes]

For each input size: extract MobileNetV2 ImageNet features (frozen base, global average pooling)
of the ants-versus-bees photographs once, fit a linear head (logistic regression) on them, and
print the validation accuracy and the seconds spent. With ``--regimes``, also time one epoch of
each training regime at 224 pixels. Needs the data (``companion.data``) and the Keras weights
(downloaded on first use, or from ``$KERAS_HOME/models``).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings



def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion.bench transfer_learning", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 176, 144])
    parser.add_argument("--regimes", action="store_true", help="also time one epoch of each regime")
    args = parser.parse_args(argv)

    import keras
    from sklearn.linear_model import LogisticRegression

    from companion import transfer_learning
    from companion.data import load_hymenoptera
    from companion.reproducibility import seed_everything

    preprocess = keras.applications.mobilenet_v2.preprocess_input
    print(f"{'size':>5} {'val acc':>8} {'load s':>7} {'features s':>11} {'cpu s':>6} {'head s':>7}")
    for size in args.sizes:
        seed_everything(0)
        start = time.perf_counter()
        x_train, y_train, _ = load_hymenoptera("train", size, progress=False)
        x_val, y_val, _ = load_hymenoptera("val", size, progress=False)
        load_s = time.perf_counter() - start
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sizes without their own weights fall back to the 224 ones
            base = transfer_learning.build_base("feature_extraction", size)
        pooled = keras.Sequential([base, keras.layers.GlobalAveragePooling2D()])
        start, cpu = time.perf_counter(), time.process_time()
        f_train = transfer_learning.extract_features(pooled, preprocess(x_train.astype("float32")))
        f_val = transfer_learning.extract_features(pooled, preprocess(x_val.astype("float32")))
        feature_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
        start = time.perf_counter()
        acc = LogisticRegression(C=1.0, max_iter=2000).fit(f_train, y_train).score(f_val, y_val)
        head_s = time.perf_counter() - start
        print(f"{size:>5} {acc:>8.3f} {load_s:>7.1f} {feature_s:>11.1f} {cpu_s:>6.1f} {head_s:>7.2f}", flush=True)
        keras.backend.clear_session()

    if args.regimes:
        x_train, y_train, _ = load_hymenoptera("train", 224, progress=False)
        x = preprocess(x_train.astype("float32"))
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        for regime in ("scratch", "feature_extraction", "fine_tuning"):
            seed_everything(0)
            base = transfer_learning.build_base(regime, 224)
            model = transfer_learning.build_transfer_model(base, transfer_learning.build_head(1280, 2), regime)
            if regime == "fine_tuning":
                transfer_learning.unfreeze_top(base, "block_15_expand")
            model.compile(keras.optimizers.Adam(1e-4), loss)
            model.fit(x[:32], y_train[:32], epochs=1, batch_size=32, verbose=0)  # build and trace once
            start = time.perf_counter()
            model.fit(x, y_train, epochs=1, batch_size=32, verbose=0)
            print(f"{regime:>20}: {time.perf_counter() - start:.1f} s per epoch ({len(x)} images, 224 px)", flush=True)
            keras.backend.clear_session()
    return 0


if __name__ == "__main__":
    sys.exit(main())
