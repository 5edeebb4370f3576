r"""Muon (Jordan et al., 2024): momentum, then an orthogonalized step for each weight matrix.

For a weight matrix :math:`W \in \mathbb{R}^{m\times n}` with gradient :math:`G_t`, Muon keeps SGD's
momentum and replaces the step :math:`B_t` by the orthogonal matrix nearest to it, :math:`UV^\top`
where :math:`B_t = U\Sigma V^\top`: every singular direction of the update moves by the same amount,
so the few directions that dominate a gradient no longer drown out the others.

.. math::
    B_t = \mu B_{t-1} + G_t, \qquad
    O_t = \mathrm{NS}_5\bigl(G_t + \mu B_t\bigr) \approx UV^\top, \qquad
    W_{t+1} = W_t - \eta\,(s_{m,n}\,O_t + \lambda W_t).

:math:`\mathrm{NS}_5` is five steps of a quintic Newton–Schulz iteration (:func:`newton_schulz`), a few
matrix products instead of an SVD; :math:`s_{m,n}` scales the step by the matrix's shape. Muon is for
the 2-D weights of hidden layers; biases, gains and (by advice) embeddings and the output layer are
left to AdamW. Papers: K. Jordan et al. (2024), "Muon: An optimizer for hidden layers in neural
networks" (blog post); J. Liu et al. (2025), "Muon is Scalable for LLM Training" (the shape scaling
:math:`0.2\sqrt{\max(m, n)}` that lets Muon reuse AdamW's learning rate and weight decay).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

import numpy as np

from .._checks import check_choice, check_in_range, check_non_negative, check_non_negative_int
from . import _ops
from ._tree import tree_leaves, tree_map
from .aliases import _with_gradient_checks
from .base import GradientTransformation, chain
from .transforms import decay_weights, scale, scale_by_adam, scale_by_learning_rate

__all__ = ["MUON_DEFAULTS", "muon", "newton_schulz", "scale_by_muon"]

#: Jordan's quintic coefficients (a, b, c): the largest slope at 0 that still keeps values near 1.
NS_COEFFICIENTS = (3.4445, -4.775, 2.0315)

#: Each framework's documented defaults (``torch.optim.Muon``, ``keras.optimizers.Muon``) where they differ;
#: both use momentum 0.95, Nesterov, 5 Newton–Schulz steps with :data:`NS_COEFFICIENTS` and a 1e-7 epsilon.
MUON_DEFAULTS = {
    "torch": dict(learning_rate=1e-3, weight_decay=0.1, eps=1e-7, adjust_lr_fn="original"),
    "keras": dict(learning_rate=1e-3, weight_decay=0.004, eps=1e-7, rms_rate=0.2,
                  adam_beta_1=0.9, adam_beta_2=0.999, adam_weight_decay=0.004, adam_lr_ratio=1.0),
}
SHAPE_FACTORS = ("original", "match_rms_adamw", None)


# --- the Newton–Schulz iteration ------------------------------------------------------------------


def _transpose(x):
    return _ops._keras_ops().transpose(x) if _ops._library(x) == "keras" else x.T


def _matmul(a, b):
    return _ops._keras_ops().matmul(a, b) if _ops._library(a) == "keras" else a @ b


def _addmm(c, a, b, beta: float, alpha: float = 1.0):
    """``beta * c + alpha * (a @ b)``; torch's fused ``addmm`` (one rounding) is what ``torch.optim.Muon`` calls."""
    kind = _ops._library(c)
    if kind == "torch":
        import torch

        return torch.addmm(c, a, b, beta=beta, alpha=alpha)
    return beta * c + alpha * _matmul(a, b)


def _divide_by_norm(x, eps: float, add_eps: bool):
    """:math:`X / \\max(\\lVert X\\rVert_F, \\epsilon)` (torch), or :math:`X / (\\lVert X\\rVert_F + \\epsilon)`
    with ``add_eps`` (Keras)."""
    kind = _ops._library(x)
    if kind == "torch":
        norm = x.norm()
        return x / (norm + eps if add_eps else norm.clamp(min=eps))
    if kind == "numpy":
        norm = np.linalg.norm(x)  # Frobenius
        return x / (norm + eps if add_eps else max(norm, eps))
    ops = _ops._keras_ops()
    norm = ops.norm(x)
    return x / (norm + eps if add_eps else ops.maximum(norm, eps))


def _ns_settings(steps, coefficients, eps, names=("steps", "coefficients", "eps")):
    steps = check_non_negative_int(names[0], steps)
    if not isinstance(coefficients, (tuple, list)) or len(coefficients) != 3 or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in coefficients):
        raise ValueError(f"Invalid {names[1]}: {coefficients!r} (expected three finite numbers a, b, c)")
    return steps, tuple(float(v) for v in coefficients), check_non_negative(names[2], eps)


def newton_schulz(matrix, steps: int = 5, coefficients=NS_COEFFICIENTS, eps: float = 1e-7, *,
                  add_eps: bool = False, bfloat16: bool = False):
    r"""Approximately orthogonalize a 2-D matrix: :math:`G = U\Sigma V^\top \mapsto \approx U V^\top`.

    .. math::
        X_0 = \frac{G}{\lVert G\rVert_F}, \qquad
        A_k = X_k X_k^\top, \qquad
        X_{k+1} = a X_k + (b A_k + c A_k^2) X_k

    Each step applies the odd polynomial :math:`p(\sigma) = a\sigma + b\sigma^3 + c\sigma^5` to every
    singular value and keeps the singular vectors. Dividing by the Frobenius norm puts them in
    :math:`(0, 1]`; Jordan's coefficients :math:`(3.4445, -4.775, 2.0315)` push small values up fast
    (slope 3.4 at 0) at the price of not converging to exactly 1: after 5 steps the singular values
    lie in about :math:`[0.68, 1.13]` (checked in the tests). A tall matrix (more rows than columns)
    is transposed first so that :math:`A_k` is the smaller Gram matrix, as both frameworks do.

    ``eps`` guards a zero matrix: torch divides by :math:`\max(\lVert G\rVert_F, \epsilon)`,
    Keras (``add_eps=True``) by :math:`\lVert G\rVert_F + \epsilon`. ``bfloat16=True`` runs the
    iteration in bfloat16 and returns a bfloat16 tensor, as ``torch.optim.Muon`` always does (torch
    tensors only); the tests check it bit for bit against torch's helper ``_zeropower_via_newtonschulz``,
    and ``add_eps=True`` against ``keras.optimizers.Muon.zeropower_via_newtonschulz5`` in float64.
    Works on NumPy arrays, torch tensors and Keras/TF tensors.
    """
    shape = tuple(matrix.shape)
    if len(shape) != 2:
        raise ValueError(f"Invalid matrix: Newton-Schulz orthogonalizes a 2-D matrix, got shape {shape}")
    steps, (a, b, c), eps = _ns_settings(steps, coefficients, eps)
    if bfloat16:
        if _ops._library(matrix) != "torch":
            raise TypeError("bfloat16=True (torch.optim.Muon's precision) needs a torch tensor, "
                            f"got {type(matrix).__name__}")
        matrix = matrix.bfloat16()
    tall = shape[0] > shape[1]
    x = _divide_by_norm(_transpose(matrix) if tall else matrix, eps, add_eps)
    for _ in range(steps):
        gram = _matmul(x, _transpose(x))  # A = X X^T
        x = _addmm(x, _addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)  # aX + (bA + cA^2) X
    return _transpose(x) if tall else x


# --- Muon's direction -----------------------------------------------------------------------------


class ScaleByMuonState(NamedTuple):
    momentum: Any


def _lerp(start, end, weight: float):
    """:math:`s + w\\,(e - s)`; torch's ``lerp``, the kernel ``torch.optim.Muon`` uses, on torch tensors."""
    if _ops._library(start) == "torch":
        import torch

        return torch.lerp(start, end, weight)
    return start + weight * (end - start)


def _shape_scale(shape, shape_factor, rms_rate: float, convention: str) -> float:
    """The factor :math:`s_{m,n}` that scales the orthogonalized update of an :math:`m\\times n` matrix."""
    rows, cols = shape
    if shape_factor == "original":
        return math.sqrt(max(1.0, rows / cols))
    if shape_factor == "match_rms_adamw":
        root = math.sqrt(max(rows, cols))
        if convention == "keras":  # Keras takes this root of the integer shape in float32, whatever the weights' dtype
            root = float(np.float32(root))
        return rms_rate * root
    return 1.0


def scale_by_muon(
    momentum: float = 0.95,
    nesterov: bool = True,
    ns_steps: int = 5,
    ns_coefficients=NS_COEFFICIENTS,
    eps: float = 1e-7,
    shape_factor: str | None = "original",
    rms_rate: float = 0.2,
    convention: str = "torch",
    bfloat16: bool = False,
) -> GradientTransformation:
    r"""Muon's direction for 2-D parameters: momentum, Newton–Schulz, then a factor set by the shape.

    .. math::
        B_t = \mu B_{t-1} + G_t \ \text{(Keras)} \quad\text{or}\quad
        B_t = \mu B_{t-1} + (1-\mu) G_t \ \text{(torch)}, \qquad
        M_t = \begin{cases} G_t + \mu B_t \ \text{(Keras)},\ (1-\mu) G_t + \mu B_t \ \text{(torch)} & \text{Nesterov} \\
                            B_t & \text{otherwise} \end{cases}, \qquad
        d_t = s_{m,n}\,\mathrm{NS}(M_t).

    torch's buffer is Keras' times :math:`1-\mu`; the normalization inside :func:`newton_schulz` cancels that
    factor, so the two forms differ only through :math:`\epsilon` (torch: :math:`\max(\lVert M\rVert_F, \epsilon)`,
    Keras: :math:`\lVert M\rVert_F + \epsilon`). The shape factor :math:`s_{m,n}` of an :math:`m\times n` matrix:

    * ``shape_factor="original"`` (torch's default ``adjust_lr_fn``, Jordan's code): :math:`\sqrt{\max(1, m/n)}`,
      a larger step only for tall matrices (torch's ``nn.Linear`` weight is (out, in): layers that widen);
    * ``"match_rms_adamw"`` (Liu et al., 2025; torch's ``adjust_lr_fn`` option, Keras' default): ``rms_rate`` times
      :math:`\sqrt{\max(m, n)}`, which gives the step the RMS of a typical AdamW step (0.2); torch fixes
      ``rms_rate`` at 0.2, Keras exposes it;
    * ``None``: :math:`s = 1` (Keras with ``rms_rate=None``).

    ``bfloat16=True`` runs the iteration in bfloat16 as ``torch.optim.Muon`` does (torch tensors only); the
    result is cast back to the gradient's dtype. Every leaf must be a 2-D matrix.
    """
    momentum = check_in_range("momentum", momentum, 0.0, 1.0)
    check_choice("convention", convention, ("torch", "keras"))
    check_choice("shape_factor", shape_factor, SHAPE_FACTORS)
    rms_rate = check_non_negative("rms_rate", rms_rate)
    for name, flag in (("nesterov", nesterov), ("bfloat16", bfloat16)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    ns_steps, ns_coefficients, eps = _ns_settings(ns_steps, ns_coefficients, eps,
                                                  names=("ns_steps", "ns_coefficients", "eps"))
    keras_form = convention == "keras"

    def init(params):
        shapes = [tuple(p.shape) for p in tree_leaves(params)]
        if any(len(s) != 2 for s in shapes):
            raise ValueError(f"Invalid params: Muon updates 2-D matrices only, got shapes {shapes} (torch.optim.Muon "
                             "rejects the others; muon(convention='keras') sends them to AdamW, as Keras does)")
        return ScaleByMuonState(tree_map(_ops.zeros_like, params))

    def direction(g, m):
        if nesterov:
            m = g + momentum * m if keras_form else _lerp(g, m, momentum)
        o = newton_schulz(m, ns_steps, ns_coefficients, eps, add_eps=keras_form, bfloat16=bfloat16)
        if bfloat16:
            o = o.to(g.dtype)  # exact: as torch adds the bfloat16 result to float32/64 weights
        return _shape_scale(tuple(g.shape), shape_factor, rms_rate, convention) * o

    def update(updates, state, params=None):
        if keras_form:
            accumulate = lambda g, b: momentum * b + g  # noqa: E731
        else:
            accumulate = lambda g, b: _ops.moving_average(b, g, momentum)  # noqa: E731 (torch's lerp)
        buffers = tree_map(accumulate, updates, state.momentum, path="updates")
        return tree_map(direction, updates, buffers, path="updates"), ScaleByMuonState(buffers)

    return GradientTransformation(init, update)


# --- the optimizer: Muon on matrices, AdamW on the rest (Keras) ------------------------------------


class MuonAdamWState(NamedTuple):
    muon: Any
    adamw: Any


def _muon_and_adamw(muon_part: GradientTransformation, adamw_part: GradientTransformation, adamw_mask=None):
    """Keras' split: ``muon_part`` updates the 2-D leaves, ``adamw_part`` the others and the masked ones.

    Each part sees the whole tree with ``None`` in place of the other part's leaves (a parameter
    without a gradient, for every transformation), so each keeps state for its own leaves only.
    """

    def split(tree):
        mask = tree_map(lambda x: False, tree) if adamw_mask is None else adamw_mask
        to_muon = tree_map(lambda x, excluded: len(x.shape) == 2 and not excluded, tree, mask, path="adamw_mask")
        return (tree_map(lambda x, m: x if m else None, tree, to_muon),
                tree_map(lambda x, m: None if m else x, tree, to_muon))

    def init(params):
        matrices, others = split(params)
        return MuonAdamWState(muon_part.init(matrices), adamw_part.init(others))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("muon(convention='keras') needs params: call update(grads, state, params)")
        (g_muon, g_adamw), (p_muon, p_adamw) = split(updates), split(params)
        u_muon, s_muon = muon_part.update(g_muon, state.muon, p_muon)
        u_adamw, s_adamw = adamw_part.update(g_adamw, state.adamw, p_adamw)
        merged = tree_map(lambda g, a, b: b if a is None else a, updates, u_muon, u_adamw, path="updates")
        return merged, MuonAdamWState(s_muon, s_adamw)

    return GradientTransformation(init, update)


def muon(
    learning_rate=None,
    momentum: float = 0.95,
    nesterov: bool = True,
    ns_steps: int = 5,
    ns_coefficients=NS_COEFFICIENTS,
    eps=None,
    weight_decay=None,
    adjust_lr_fn: str | None = None,
    bfloat16: bool = False,
    rms_rate=0.2,
    adam_beta_1=None,
    adam_beta_2=None,
    adam_weight_decay=None,
    adam_lr_ratio=None,
    adamw_mask=None,
    convention: str = "torch",
) -> GradientTransformation:
    r"""Muon (Jordan et al., 2024) as ``torch.optim.Muon`` or ``keras.optimizers.Muon``.

    .. math::
        W_{t+1} = W_t - \eta\,\bigl(s_{m,n}\,\mathrm{NS}(M_t) + \lambda W_t\bigr)

    with the momentum :math:`M_t` and shape factor :math:`s_{m,n}` of :func:`scale_by_muon`. Both frameworks
    decay the weights decoupled, by :math:`\eta\lambda W_t` with the unscaled :math:`\eta`. Where they differ:

    * parameters: torch takes 2-D ones only (anything else is a ``ValueError`` naming ``params``); Keras runs
      AdamW (its "epsilon hat" form, learning rate :math:`\eta\cdot` ``adam_lr_ratio``, decay
      ``adam_weight_decay`` :math:`\cdot\,\eta`) on the others and on the leaves where the tree
      ``adamw_mask`` is True (Keras chooses those by name: ``exclude_layers``, and ``exclude_embeddings``);
    * shape factor: torch :math:`\sqrt{\max(1, m/n)}` (``adjust_lr_fn="original"``, or ``"match_rms_adamw"``:
      :math:`0.2\sqrt{\max(m,n)}`); Keras ``rms_rate`` :math:`\cdot\sqrt{\max(m,n)}` (0.2; ``None``: 1);
    * momentum buffer: torch's is an average, :math:`(1-\mu)` times Keras' sum; the same direction up to
      :math:`\epsilon`, which torch uses as a floor on :math:`\lVert M\rVert_F` and Keras adds to it;
    * ``eps``: torch's is that floor; Keras' ``epsilon`` is AdamW's (its Newton–Schulz always adds 1e-7);
    * precision: torch runs the iteration in bfloat16, whatever the weights' dtype; here it runs in the
      weights' dtype unless ``bfloat16=True`` (torch tensors only), which reproduces torch bit for bit;
    * defaults: weight decay 0.1 (torch) or 0.004 (Keras).

    Checked against ``torch.optim.Muon`` (200 float64 steps: bit for bit with ``bfloat16=True`` on torch
    tensors, and in float64 against torch's update with its iteration run in float64) and against
    ``keras.optimizers.Muon`` (Muon on the matrix and AdamW on the other leaves of the shared test problem).
    """
    check_choice("convention", convention, ("torch", "keras"))
    given = dict(learning_rate=learning_rate, weight_decay=weight_decay, eps=eps)
    keras_only = dict(adam_beta_1=adam_beta_1, adam_beta_2=adam_beta_2, adam_weight_decay=adam_weight_decay,
                      adam_lr_ratio=adam_lr_ratio, adamw_mask=adamw_mask)
    defaults = MUON_DEFAULTS[convention]
    s = {key: defaults[key] if value is None else value for key, value in given.items()}
    settings = dict(momentum=momentum, nesterov=nesterov, ns_steps=ns_steps, ns_coefficients=ns_coefficients)
    lr = s["learning_rate"]
    if convention == "torch":
        for name, value in keras_only.items():
            if value is not None:
                raise ValueError(f"Invalid {name}: a keras.optimizers.Muon option (torch.optim.Muon updates 2-D "
                                 "parameters only; use convention='keras' for its AdamW part)")
        if rms_rate != 0.2:
            raise ValueError(f"Invalid rms_rate: {rms_rate} (torch's adjust_lr_fn='match_rms_adamw' fixes it at 0.2)")
        check_choice("adjust_lr_fn", adjust_lr_fn, SHAPE_FACTORS)  # None: "original", as in torch
        direction = scale_by_muon(**settings, eps=s["eps"], shape_factor=adjust_lr_fn or "original",
                                  bfloat16=bfloat16, convention="torch")
        return _with_gradient_checks(chain(direction, scale_by_learning_rate(lr), decay_weights(s["weight_decay"], lr)))
    if adjust_lr_fn is not None:
        raise ValueError("Invalid adjust_lr_fn: a torch.optim.Muon option (Keras scales by rms_rate; None: no scaling)")
    if bfloat16:
        raise ValueError("Invalid bfloat16: keras.optimizers.Muon works in the weights' dtype")
    k = {key: defaults[key] if value is None else value for key, value in keras_only.items() if key != "adamw_mask"}
    for name in ("adam_beta_1", "adam_beta_2"):
        check_in_range(name, k[name], 0.0, 1.0)
    matrices = chain(
        scale_by_muon(**settings, eps=1e-7, shape_factor=None if rms_rate is None else "match_rms_adamw",
                      rms_rate=0.0 if rms_rate is None else rms_rate, convention="keras"),
        scale_by_learning_rate(lr),
        decay_weights(s["weight_decay"], lr),
    )
    others = chain(
        scale_by_adam(k["adam_beta_1"], k["adam_beta_2"], s["eps"], eps_hat=True),
        scale(check_non_negative("adam_lr_ratio", k["adam_lr_ratio"])),
        scale_by_learning_rate(lr),
        decay_weights(k["adam_weight_decay"], lr),  # with Muon's learning rate, not times adam_lr_ratio (as Keras)
    )
    return _with_gradient_checks(_muon_and_adamw(matrices, others, adamw_mask))
