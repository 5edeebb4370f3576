r"""Full-integer TensorFlow Lite conversion of the quantization chapter's MLP, and its interpreter.

The TFLite converter quantizes a Keras model after training: with a *representative dataset* it
observes the range of every activation, stores weights as int8 per output channel (symmetric) and
activations as int8 per tensor (affine), the arithmetic of Jacob et al. (2018). With
``inference_input_type = tf.int8`` the model's input and output are integers too: the caller
quantizes the images with the input's ``(scale, zero_point)`` and dequantizes the logits with the
output's, as :class:`TFLiteClassifier` does.

``tf.lite.TFLiteConverter`` still ships with TensorFlow 2.21; ``tf.lite.Interpreter`` warns that it is
deprecated in favour of the LiteRT interpreter (package ``ai_edge_litert``), which reads the same
``.tflite`` files.

Checked in the chapter: the Keras copy gives the PyTorch model's logits (to float32 rounding), and the
int8 TFLite model's test accuracy is compared with the float one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TFLiteClassifier", "keras_copy", "to_tflite"]


def keras_copy(model):
    """A Keras 3 ``Sequential`` of ``Dense`` layers with the weights of a PyTorch ``QuantizableMLP``.

    ``nn.Linear`` stores its weight as ``(out, in)`` and Keras' ``Dense`` kernel is ``(in, out)``: the
    copy transposes it. The input is the flattened 784-pixel image.
    """
    from ..quiet import quiet_tensorflow

    with quiet_tensorflow():
        import keras

    linears = [getattr(model, f"fc{i}") for i in range(1, model.n_layers + 1)]
    layers = [keras.Input((linears[0].in_features,))]
    for i, linear in enumerate(linears):
        last = i == len(linears) - 1
        layers.append(keras.layers.Dense(linear.out_features, activation=None if last else "relu", name=f"fc{i + 1}"))
    copy = keras.Sequential(layers, name="mlp")
    for linear, dense in zip(linears, copy.layers):
        dense.set_weights([linear.weight.detach().cpu().numpy().T, linear.bias.detach().cpu().numpy()])
    return copy


def to_tflite(keras_model, representative_x=None, *, num_samples: int = 200) -> bytes:
    """Convert ``keras_model`` to a ``.tflite`` flatbuffer: float32, or full int8 when ``representative_x`` is given.

    The representative dataset yields ``num_samples`` single images (batch 1, the converter's habit) of
    ``representative_x``; their activation ranges fix the int8 scales and zero points.
    """
    import contextlib
    import io
    import warnings

    from ..quiet import quiet_tensorflow

    with quiet_tensorflow():
        import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # the converter logs every asset it writes
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if representative_x is not None:
        samples = np.asarray(representative_x, dtype=np.float32)[:num_samples]
        if len(samples) == 0:
            raise ValueError("Invalid representative_x: empty")

        def representative_dataset():
            for sample in samples:
                yield [sample[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():  # it prints the exported signature
        warnings.filterwarnings("ignore", message=".*Statistics for quantized inputs.*")  # int8 input: expected
        return converter.convert()


class TFLiteClassifier:
    """Run a ``.tflite`` classifier on float inputs with ``num_threads`` threads: quantize in, dequantize out."""

    def __init__(self, model_content: bytes, num_threads: int = 1):
        import warnings

        import tensorflow as tf

        with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice (LiteRT): said in the docstring
            warnings.simplefilter("ignore")
            self.interpreter = tf.lite.Interpreter(model_content=model_content, num_threads=num_threads)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch = None

    def _resize(self, batch: int) -> None:
        if batch != self.batch:
            self.interpreter.resize_tensor_input(self.input["index"], [batch, int(self.input["shape"][1])])
            self.interpreter.allocate_tensors()
            self.batch = batch

    def logits(self, x) -> np.ndarray:
        """Float logits of float images ``x`` of shape ``(batch, 784)``."""
        x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        self._resize(len(x))
        if self.input["dtype"] != np.float32:
            scale, zero_point = self.input["quantization"]
            info = np.iinfo(self.input["dtype"])
            x = np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(self.input["dtype"])
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self.output["index"])
        if self.output["dtype"] != np.float32:
            scale, zero_point = self.output["quantization"]
            out = (out.astype(np.float32) - zero_point) * scale
        return out

    def accuracy(self, x, y, batch_size: int = 1000) -> float:
        """Fraction of correct arg-max predictions."""
        y = np.asarray(y)
        correct = sum(int((self.logits(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum()) for i in range(0, len(x), batch_size))
        return correct / len(x)
