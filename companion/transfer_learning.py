r"""Transfer learning for image classification: folders of photos in, a pretrained network adapted.

A network pretrained on ImageNet (Deng et al., 2009) computes features :math:`\phi(x)` that transfer
to new tasks (Yosinski et al., 2014). Three regimes reuse it to different degrees:

- ``"scratch"``: the same architecture, randomly initialised, every weight trained;
- ``"feature_extraction"``: the pretrained base :math:`\phi` frozen, only a new head
  :math:`h_W(\phi(x))` trained, i.e. :math:`\min_W \tfrac1n\sum_i \ell(h_W(\phi(x_i)), y_i)`;
- ``"fine_tuning"``: after the head has converged, the top blocks of :math:`\phi` are unfrozen too
  and trained with a learning rate 10-100 times lower.

The base here is MobileNetV2 (Sandler et al., 2018) from Keras Applications. Helpers:
:func:`load_image_folder` (``root/<class>/<image>`` to arrays), :func:`build_base`,
:func:`build_head`, :func:`build_transfer_model`, :func:`unfreeze_top`,
:func:`extract_features` (run the frozen base once and cache its output), :func:`multiply_adds`
(the cost of a forward pass), :class:`EpochHistory` (a Keras callback filling a
:class:`~companion.history.History`) and :func:`plot_misclassified`.

Tested in ``tests/test_transfer_learning.py``: shapes and argument checks with ``weights=None`` and small
inputs; :func:`multiply_adds` against a hand count; :func:`extract_features` against calling the
model directly.

``import companion.transfer_learning`` imports Keras (its readers use it); :func:`load_image_folder` lives in
:mod:`companion.data.images` and needs only Pillow.
"""

from __future__ import annotations

import numbers
import time

import numpy as np

from ._checks import check_choice, check_in_range, check_positive_int
from .data.images import IMAGE_EXTENSIONS, _check_image_size, load_image_folder
from .history import History
from .quiet import quiet_tensorflow

with quiet_tensorflow():
    import keras

__all__ = [
    "IMAGE_EXTENSIONS",
    "REGIMES",
    "EpochHistory",
    "build_base",
    "build_head",
    "build_transfer_model",
    "extract_features",
    "imagenet_weights",
    "load_image_folder",
    "multiply_adds",
    "plot_misclassified",
    "unfreeze_top",
]

#: Where Keras fetches MobileNetV2's ImageNet weights, and the sha256 of the files the course uses:
#: Keras' own download does not check them, so :func:`imagenet_weights` fetches them through
#: ``keras.utils.get_file`` with this hash (a damaged or substituted file is refused).
MOBILENET_V2_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
MOBILENET_V2_NO_TOP_SHA256 = {
    224: "71e4c4ec4aa24c9c951b9265d6de42e1336dcf614c2214fa6a989208615e232c",
}

#: The three ways of reusing a pretrained network.
REGIMES = ("scratch", "feature_extraction", "fine_tuning")
def _check_regime(regime) -> str:
    return check_choice("regime", regime, REGIMES)


def _check_model(name: str, value):
    if not isinstance(value, keras.Model):
        raise TypeError(f"{name} must be a Keras model, got {type(value).__name__}")
    return value


def imagenet_weights(image_size: int = 224) -> str:
    """Path of MobileNetV2's ImageNet weights without the classifier (alpha 1.0) for ``image_size``.

    Downloaded by ``keras.utils.get_file`` into ``$KERAS_HOME/models`` (or found there) and, where
    the course knows the file's sha256 (``MOBILENET_V2_NO_TOP_SHA256``), checked against it.
    """
    image_size = _check_image_size(image_size)
    name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{image_size}_no_top.h5"
    return keras.utils.get_file(name, MOBILENET_V2_WEIGHTS_URL + name, cache_subdir="models",
                                file_hash=MOBILENET_V2_NO_TOP_SHA256.get(image_size), hash_algorithm="sha256")


def build_base(regime: str, image_size: int = 224, *, weights="imagenet"):
    """MobileNetV2 without its ImageNet classifier (``include_top=False``), set up for ``regime``.

    ``"scratch"`` gets random weights (``weights`` is ignored), every layer trainable;
    ``"feature_extraction"`` and ``"fine_tuning"`` get ``weights`` (ImageNet by default) and start
    frozen (``base.trainable = False``): fine-tuning unfreezes the top with :func:`unfreeze_top`
    once the new head has converged.
    """

    regime = _check_regime(regime)
    image_size = _check_image_size(image_size)
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32 for MobileNetV2, got {image_size}")
    if regime == "scratch":
        weights = None
    elif isinstance(weights, str) and weights == "imagenet" and image_size in MOBILENET_V2_NO_TOP_SHA256:
        weights = imagenet_weights(image_size)  # the same file Keras would load, its checksum verified
    base = keras.applications.MobileNetV2(
        input_shape=(image_size, image_size, 3),
        include_top=False,
        weights=weights,
    )
    base.trainable = regime == "scratch"
    return base


def build_head(num_features: int, num_classes: int, *, hidden_units: int = 0, dropout: float = 0.2):
    """The new classifier: ``Dropout -> [Dense(hidden_units, relu) -> Dropout] -> Dense(num_classes)``.

    Outputs logits (no softmax): train it with ``SparseCategoricalCrossentropy(from_logits=True)``.
    """

    num_features = check_positive_int("num_features", num_features)
    num_classes = check_positive_int("num_classes", num_classes)
    if isinstance(hidden_units, bool) or not isinstance(hidden_units, numbers.Integral) or hidden_units < 0:
        raise ValueError(f"hidden_units must be an integer >= 0, got {hidden_units!r}")
    dropout = check_in_range("dropout", dropout, 0.0, 1.0)
    layers = [keras.Input(shape=(num_features,)), keras.layers.Dropout(dropout)]
    if hidden_units:
        layers += [keras.layers.Dense(hidden_units, activation="relu"), keras.layers.Dropout(dropout)]
    layers.append(keras.layers.Dense(num_classes))
    return keras.Sequential(layers, name="head")


def build_transfer_model(base, head, regime: str, *, augmentation=None):
    """``input -> [augmentation] -> base -> global average pooling -> head``, as a Keras model.

    The inputs are already preprocessed for the base (for MobileNetV2:
    ``keras.applications.mobilenet_v2.preprocess_input``, pixels to ``[-1, 1]``). For the two
    pretrained regimes the base is called with ``training=False``: its BatchNorm layers keep the
    ImageNet statistics (in Keras 3 ``fit`` overrides this flag, so :func:`unfreeze_top` also keeps
    the BatchNorm layers frozen). From scratch the BatchNorm layers must learn their statistics, so
    the base follows the training flag.
    """

    regime = _check_regime(regime)
    _check_model("base", base)
    _check_model("head", head)
    if augmentation is not None and not callable(augmentation):
        raise TypeError(f"augmentation must be a Keras layer or model (or None), got {type(augmentation).__name__}")
    shape = tuple(base.input_shape[1:])
    inputs = keras.Input(shape=shape)
    x = augmentation(inputs) if augmentation is not None else inputs
    x = base(x, training=False) if regime != "scratch" else base(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = head(x)
    return keras.Model(inputs, outputs, name=f"mobilenet_v2_{regime}")


def unfreeze_top(base, first_trainable: str):
    """Make the layers of ``base`` from the one named ``first_trainable`` onwards trainable.

    Layers before it stay frozen, and so do *all* BatchNormalization layers: in Keras 3, ``fit``
    calls the model with ``training=True``, which overrides a nested ``base(x, training=False)``
    (keras-team/keras#20285), so a trainable BatchNorm layer would switch to mini-batch statistics
    and overwrite its ImageNet running averages. A frozen one always runs in inference mode.
    Returns the number of trainable weight tensors. Recompile the model afterwards (with a 10-100
    times smaller learning rate) for the change to take effect.
    """

    _check_model("base", base)
    if not isinstance(first_trainable, str):
        raise TypeError(f"first_trainable must be a layer's name (a string), got {type(first_trainable).__name__}")
    names = [layer.name for layer in base.layers]
    if first_trainable not in names:
        raise ValueError(f"first_trainable: no layer named {first_trainable!r} in {base.name}")
    start = names.index(first_trainable)
    base.trainable = True
    for i, layer in enumerate(base.layers):
        layer.trainable = i >= start and not isinstance(layer, keras.layers.BatchNormalization)
    return len(base.trainable_weights)


def extract_features(model, images, batch_size: int = 32) -> np.ndarray:
    """Run ``model`` in inference mode over ``images`` once, in batches, and return its outputs.

    The frozen base is a fixed function :math:`\\phi`, so :math:`\\phi(x_i)` can be computed once and
    reused for every epoch of head training. ``images`` is a ``(n, height, width, channels)`` array
    that matches the model's input shape.
    """
    _check_model("model", model)
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must have shape (n, height, width, channels), got shape {images.shape}")
    expected = getattr(model, "input_shape", None)
    if isinstance(expected, tuple) and len(expected) == 4:
        for got, want in zip(images.shape[1:], expected[1:]):
            if want is not None and got != want:
                raise ValueError(
                    f"images have shape {images.shape[1:]} per image, the model expects {tuple(expected[1:])}"
                )
    if len(images) == 0:
        raise ValueError("images is empty")
    return np.asarray(model.predict(images.astype(np.float32, copy=False), batch_size=int(batch_size), verbose=0))


def multiply_adds(model) -> int:
    """Multiply-accumulate operations of one forward pass of one image (convolutions and dense layers).

    Counts ``Conv2D`` (:math:`H_{out} W_{out} k_h k_w C_{in} C_{out}`), ``DepthwiseConv2D``
    (:math:`H_{out} W_{out} k_h k_w C`) and ``Dense`` (:math:`n_{in} n_{out}`); BatchNorm, activations
    and pooling are comparatively free and ignored. Nested models are counted recursively.
    """

    _check_model("model", model)
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += multiply_adds(layer)
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * kh * kw * c
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            c_in = layer.input.shape[-1]
            total += h * w * kh * kw * c_in * c_out // layer.groups
        elif isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return int(total)


class EpochHistory(keras.callbacks.Callback):
    """A Keras callback that records each epoch into a :class:`~companion.history.History` (``.history_``).

    Logs ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` (whatever Keras reports) and the
    cumulative ``seconds``, at step = epoch number (plus ``step_offset``, to continue a curve).
    Passing an existing ``history`` appends to it (fine-tuning continues feature extraction).
    ``validate``, a function returning ``{name: value}``, adds measurements of its own (for example
    the head's accuracy on cached validation features); its time is not counted in ``seconds``.
    """

    def __init__(self, name: str, history: History | None = None, *, step_offset: int = 0, validate=None):
        super().__init__()
        if validate is not None and not callable(validate):
            raise TypeError(f"validate must be a callable returning {{name: value}}, got {type(validate).__name__}")
        self.history_ = history if history is not None else History(name)
        self.offset = step_offset
        self.validate = validate
        self.spent = self.history_.last("seconds") if "seconds" in self.history_ else 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.spent += time.perf_counter() - self._start
        values = {k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}
        if self.validate is not None:
            values.update(self.validate())
        self.history_.log(self.offset + epoch + 1, seconds=self.spent, **values)


def plot_misclassified(images, labels, predictions, class_names, *, probabilities=None, max_images: int = 8, title=None):
    """Show the images whose prediction differs from the label, titled ``true -> predicted (p)``.

    ``images`` are displayable ``uint8`` (or ``[0, 1]`` float) arrays ``(n, h, w, 3)``; returns the
    figure, or ``None`` (with a message) when every prediction is right.
    """
    import matplotlib.pyplot as plt

    max_images = check_positive_int("max_images", max_images)
    images, labels, predictions = np.asarray(images), np.asarray(labels), np.asarray(predictions)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must have shape (n, height, width, 3), got shape {images.shape}")
    if not len(images) == len(labels) == len(predictions):
        raise ValueError(
            f"images, labels and predictions have different lengths: {len(images)}, {len(labels)}, {len(predictions)}"
        )
    if not isinstance(class_names, (list, tuple)) or not all(isinstance(c, str) for c in class_names):
        raise TypeError(f"class_names must be a list of strings, got {class_names!r}")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer) or (
                len(values) and (values.min() < 0 or values.max() >= len(class_names))):
            raise ValueError(f"{name} must be class indices in [0, {len(class_names)}) (one per image), got {values!r}")
    if probabilities is not None:
        probabilities = np.asarray(probabilities)
        if probabilities.shape != (len(images), len(class_names)):
            raise ValueError(f"probabilities must have shape (n_images, n_classes) = {(len(images), len(class_names))}, "
                             f"got {probabilities.shape}")
    wrong = np.flatnonzero(labels != predictions)[:max_images]
    if len(wrong) == 0:
        print("No misclassified image.")
        return None
    cols = min(4, len(wrong))
    rows = -(-len(wrong) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.imshow(images[i])
        caption = f"{class_names[labels[i]]} → {class_names[predictions[i]]}"
        if probabilities is not None:
            caption += f" (p={probabilities[i, predictions[i]]:.2f})"
        ax.set_title(caption, fontsize=9, fontweight="normal")
    fig.suptitle(title or f"{len(wrong)} misclassified images (true → predicted)", fontweight="bold")
    fig.tight_layout()
    return fig
