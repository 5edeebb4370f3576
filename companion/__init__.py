"""Reference implementations for *Deep Learning Optimization, Hands-On*.

``import companion`` is light: it imports NumPy only. PyTorch, TensorFlow and
gymnasium are imported inside the modules that need them, so
``import companion.optim`` works everywhere, and
``companion.optim.torch_adapter`` needs PyTorch.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
