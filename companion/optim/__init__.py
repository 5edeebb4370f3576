"""Reference optimizers in a composable, functional style (Part I of the course).

``opt = adam(1e-3)``; ``state = opt.init(params)``;
``updates, state = opt.update(grads, state, params)``; ``params = apply_updates(params, updates)``.
Parameters are NumPy arrays or torch tensors (or lists/tuples/dicts of them).
:class:`companion.optim.torch_adapter.ReferenceOptimizer` trains an ``nn.Module`` with any of them, and
:class:`companion.optim.keras_adapter.KerasReferenceOptimizer` a Keras model.
"""

from .aliases import DEFAULTS, adadelta, adagrad, adam, adamax, adamw, ftrl, lamb, nadam, rmsprop, sgd
from .adafactor import ADAFACTOR_DEFAULTS, adafactor, scale_by_adafactor
from .lbfgs import LBFGSState, lbfgs, lbfgs_direction
from .lion import lion, scale_by_lion
from .radam import radam, radam_rectification, scale_by_radam
from .muon import MUON_DEFAULTS, muon, newton_schulz, scale_by_muon
from .sam import sam_perturbation, sam_step
from .schedule_free import (
    SCHEDULE_FREE_DEFAULTS,
    scale_by_schedule_free_adam,
    schedule_free_adamw,
    schedule_free_eval_params,
)
from .base import GradientTransformation, NonFiniteGradientError, apply_updates, chain, check_gradients, state_size
from .transforms import (
    add_decayed_weights,
    scale,
    scale_by_adadelta,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_adamax,
    scale_by_ftrl,
    scale_by_learning_rate,
    scale_by_nadam,
    scale_by_rms,
    scale_by_trust_ratio,
    trace,
)

OPTIMIZERS = {
    "sgd": sgd,
    "adagrad": adagrad,
    "adadelta": adadelta,
    "rmsprop": rmsprop,
    "adam": adam,
    "adamw": adamw,
    "adamax": adamax,
    "nadam": nadam,
    "ftrl": ftrl,
    "lamb": lamb,
    "radam": radam,
    "lion": lion,
    "adafactor": adafactor,
    "schedule_free_adamw": schedule_free_adamw,
    "muon": muon,
    "lbfgs": lbfgs,
}


def get_optimizer(name: str, **hyperparameters) -> GradientTransformation:
    """Build an optimizer by name, e.g. ``get_optimizer("adam", learning_rate=1e-3)``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer name: {name!r} (expected one of {', '.join(sorted(OPTIMIZERS))})")
    return OPTIMIZERS[name](**hyperparameters)


__all__ = [
    "LBFGSState",
    "lbfgs",
    "lbfgs_direction",
    "ADAFACTOR_DEFAULTS",
    "MUON_DEFAULTS",
    "SCHEDULE_FREE_DEFAULTS",
    "adafactor",
    "muon",
    "newton_schulz",
    "scale_by_adafactor",
    "scale_by_muon",
    "scale_by_schedule_free_adam",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "lion",
    "radam",
    "radam_rectification",
    "sam_perturbation",
    "sam_step",
    "scale_by_lion",
    "scale_by_radam",
    "DEFAULTS",
    "GradientTransformation",
    "NonFiniteGradientError",
    "OPTIMIZERS",
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "add_decayed_weights",
    "apply_updates",
    "chain",
    "check_gradients",
    "ftrl",
    "lamb",
    "get_optimizer",
    "nadam",
    "rmsprop",
    "scale",
    "scale_by_adadelta",
    "scale_by_adagrad",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_ftrl",
    "scale_by_learning_rate",
    "scale_by_nadam",
    "scale_by_rms",
    "scale_by_trust_ratio",
    "sgd",
    "state_size",
    "trace",
]
