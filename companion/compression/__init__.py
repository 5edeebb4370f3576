"""Model compression (Part III): pruning, quantization, knowledge distillation, LoRA and QLoRA.

One module per chapter, plus two shared by all of them:

- :mod:`companion.compression.measure`: parameters, size on disk (raw and gzipped), CPU latency,
  optimizer-state memory; every chapter compares a compressed model with the original this way.
- :mod:`companion.compression.nf4`: 4-bit NormalFloat quantization as QLoRA defines it.
- :mod:`companion.compression.double_quant`: QLoRA's double quantization of the NF4 block scales (8-bit
  dynamic map, 4.127 bits per weight).
- :mod:`companion.compression.pruning`, :mod:`~companion.compression.quantization`,
  :mod:`~companion.compression.distillation`, :mod:`~companion.compression.lora`: the reference
  implementations of each chapter, with the recipe (model, data, hyperparameters) that the chapter
  and its benchmark in :mod:`companion.benchmarks` share.
- :mod:`companion.compression.keras_pruning` (the TensorFlow Model Optimization pruning recipe, on
  tf.keras 2 with ``TF_USE_LEGACY_KERAS=1``) and :mod:`companion.compression.keras_quantization`
  (the same MLP in Keras 3, converted to TensorFlow Lite float32 and int8): the Keras way.

Importing this package imports nothing heavy; PyTorch is imported by the modules that need it.
"""
