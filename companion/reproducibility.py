"""Seeds and devices: the same numbers on every run, the GPU when there is one."""

from __future__ import annotations

import os
import random
import sys

import numpy as np

__all__ = ["pick_device", "seed_everything"]


def seed_everything(seed: int = 0) -> np.random.Generator:
    """Seed Python, NumPy and (when imported) PyTorch and TensorFlow/Keras; return a NumPy generator."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"Invalid seed: {seed!r} (must be an integer >= 0)")
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)
    if "keras" in sys.modules:
        import keras

        keras.utils.set_random_seed(seed)
    elif "tensorflow" in sys.modules:
        import tensorflow as tf

        tf.random.set_seed(seed)
    return np.random.default_rng(seed)


def pick_device() -> str:
    """``"cuda"`` when PyTorch sees a GPU, else ``"cpu"``: the same notebook runs on both."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
