"""Reference implementations for *Deep Learning Optimization, Hands-On*.

Each chapter's module is named after the chapter:

=========================================  =================================================
Part I, optimizers                          ``gradient_descent``, ``momentum``, ``optim``
Part II, making training work               ``schedules``, ``initialization``, ``preprocessing``
                                            and ``augment``, ``regularization``, ``normalization``,
                                            ``clipping``, ``monitoring``
Part III, compression                       ``compression`` (``pruning``, ``quantization``,
                                            ``distillation``, ``lora``; ``measure``, ``nf4``,
                                            ``double_quant``)
Part IV, applications                       ``transfer_learning``, ``rl`` (DQN), ``sentiment``
Part V, search                              ``tuning`` (Optuna objective, Bayesian
                                            optimization from scratch), ``search``
                                            (metaheuristics, test functions, ``policy_search``,
                                            ``race``)
=========================================  =================================================

The shared machinery that every part uses: ``training`` (the one training loop, its evaluation pass
and the MNIST tensors), ``history`` (what a loop records), ``plotting`` (the course's figure style),
``reproducibility`` (seeds, device), ``glue`` (measured values into a chapter's prose), ``data`` (cached, checksummed downloads), ``benchmarks`` with its
entry point ``bench`` (``python -m companion.bench NAME``), and ``_checks`` (argument checks).

``import companion`` is light: it imports NumPy only. A module that only PyTorch (or Keras) users
import imports its framework at its top; ``import companion.optim`` works everywhere, and
``companion.optim.torch_adapter`` needs PyTorch.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
