"""The TensorFlow Model Optimization pruning recipe, with the chapter's hyperparameters.

``tfmot.sparsity.keras.prune_low_magnitude`` wraps each layer in a ``PruneLowMagnitude`` wrapper that holds
a mask and a threshold next to the kernel; ``PolynomialDecay`` raises the sparsity (Zhu & Gupta, 2017);
the ``UpdatePruningStep`` callback advances the wrapper's step counter and recomputes the masks;
``strip_pruning`` removes the wrappers and leaves plain layers whose kernels hold the zeros.

tfmot wraps **tf.keras 2** layers (the ``tf_keras`` package). Keras 3, the default ``keras`` of TensorFlow
2.16 and later, has different layer classes that tfmot does not recognise. So ``TF_USE_LEGACY_KERAS=1``
must be in the environment *before TensorFlow is first imported*; ``tf.keras`` is then ``tf_keras``.
:func:`legacy_keras` checks this and explains the fix when it is not so.

Used by the pruning chapter and ``python -m companion.bench pruning``; its schedule is the one of
:meth:`companion.compression.pruning.PruningConfig.schedule`, whose values equal tfmot's
(``tests/test_compression_pruning.py``).
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import warnings

from ..quiet import quiet_tensorflow
from .pruning import PruningConfig

__all__ = ["build_keras_mlp", "keras_model_gzipped_size", "legacy_keras", "prune_with_tfmot"]


def legacy_keras():
    """Return ``tf.keras`` when it is tf.keras 2 (``tf_keras``); raise ``RuntimeError`` with the fix otherwise."""
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        raise RuntimeError(
            "tfmot needs tf.keras 2: set os.environ['TF_USE_LEGACY_KERAS'] = '1' before TensorFlow is first "
            "imported (and install tf_keras)"
        )
    imported_before = "tensorflow" in sys.modules
    with quiet_tensorflow():
        import tensorflow as tf

    if not tf.keras.layers.Dense.__module__.startswith("tf_keras"):
        hint = " (TensorFlow was imported before the variable was set: restart the kernel)" if imported_before else ""
        raise RuntimeError(f"tf.keras is Keras 3, which tfmot cannot wrap{hint}")
    return tf.keras


def build_keras_mlp(recipe: PruningConfig = PruningConfig()):
    """The recipe's MLP in tf.keras 2 (``Flatten -> Dense -> ReLU -> ... -> Dense`` logits), compiled with Adam."""
    keras = legacy_keras()
    keras.utils.set_random_seed(recipe.seed)
    sizes = tuple(recipe.sizes)
    layers = [keras.layers.InputLayer(input_shape=(28, 28)), keras.layers.Flatten()]
    layers += [keras.layers.Dense(width, activation="relu") for width in sizes[1:-1]]
    layers.append(keras.layers.Dense(sizes[-1]))
    model = keras.Sequential(layers)
    model.compile(
        optimizer=keras.optimizers.Adam(recipe.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def prune_with_tfmot(model, x, y, recipe: PruningConfig = PruningConfig(), *, verbose: int = 0):
    """Fine-tune a trained tf.keras ``model`` under ``prune_low_magnitude``; return the stripped pruned model.

    The recipe of the tfmot pruning guide, with the chapter's schedule (``recipe.schedule``) and
    hyperparameters: ``prune_epochs`` epochs of Adam(``fine_tune_learning_rate``).
    """
    import tensorflow_model_optimization as tfmot

    keras = legacy_keras()
    steps = recipe.prune_epochs * math.ceil(len(x) / recipe.batch_size)
    ours = recipe.schedule(steps)
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=ours.initial_sparsity, final_sparsity=ours.final_sparsity,
        begin_step=ours.begin_step, end_step=ours.end_step, power=ours.power, frequency=ours.frequency,
    )
    model_for_pruning = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    model_for_pruning.compile(
        optimizer=keras.optimizers.Adam(recipe.fine_tune_learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model_for_pruning.fit(x, y, batch_size=recipe.batch_size, epochs=recipe.prune_epochs, shuffle=True,
                          callbacks=[tfmot.sparsity.keras.UpdatePruningStep()], verbose=verbose)
    return tfmot.sparsity.keras.strip_pruning(model_for_pruning)


def keras_model_gzipped_size(model) -> tuple[int, int]:
    """``(bytes, gzipped bytes)`` of the model saved as in the tfmot guide: HDF5 ``.h5``, ``include_optimizer=False``.

    (The ``.keras`` format is a zip archive that cannot leave the optimizer out, so a compiled model's
    Adam moments would be counted too.)
    """
    from .measure import gzipped_size

    keras = legacy_keras()
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "HDF5 is a legacy format": the guide's format, kept for comparison
        path = os.path.join(folder, "model.h5")
        keras.models.save_model(model, path, include_optimizer=False)
        return os.path.getsize(path), gzipped_size(path)
