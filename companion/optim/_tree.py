"""Parameter trees: a leaf array, or lists, tuples and dicts of them.

The optimizers work on whole trees (the parameters of a model), the way optax
works on pytrees. This module is the minimum needed: map a function over the
leaves of trees that share one structure, and say clearly when they do not.
"""

from __future__ import annotations

__all__ = ["tree_leaves", "tree_map"]


def _is_node(tree) -> bool:
    return isinstance(tree, (list, tuple, dict))


def tree_map(fn, tree, *rest, path: str = "params"):
    """Apply ``fn`` leaf by leaf to trees of the same structure and return a tree like ``tree``.

    ``None`` leaves in ``tree`` (a parameter with no gradient) map to ``None``.
    """
    if isinstance(tree, dict):
        for other in rest:
            if not isinstance(other, dict) or other.keys() != tree.keys():
                raise ValueError(f"tree structures differ at {path}: keys {sorted(tree)} vs {_describe(other)}")
        return {k: tree_map(fn, tree[k], *(o[k] for o in rest), path=f"{path}[{k!r}]") for k in tree}
    if isinstance(tree, (list, tuple)):
        for other in rest:
            if not isinstance(other, (list, tuple)) or len(other) != len(tree):
                raise ValueError(
                    f"tree structures differ at {path}: a sequence of {len(tree)} vs {_describe(other)}"
                )
        mapped = [tree_map(fn, *children, path=f"{path}[{i}]") for i, children in enumerate(zip(tree, *rest))]
        if isinstance(tree, list):
            return mapped
        return type(tree)(*mapped) if hasattr(tree, "_fields") else tuple(mapped)  # NamedTuple states too
    for other in rest:
        if _is_node(other):
            raise ValueError(f"tree structures differ at {path}: a leaf vs {_describe(other)}")
    if tree is None:
        return None
    for other in rest:
        shape_a, shape_b = getattr(tree, "shape", None), getattr(other, "shape", None)
        if shape_a is not None and shape_b is not None and tuple(shape_a) != tuple(shape_b):
            raise ValueError(f"shape mismatch at {path}: {tuple(shape_a)} vs {tuple(shape_b)}")
    return fn(tree, *rest)


def tree_leaves(tree) -> list:
    """The leaves of ``tree`` in order (``None`` leaves skipped)."""
    if isinstance(tree, dict):
        return [leaf for k in tree for leaf in tree_leaves(tree[k])]
    if isinstance(tree, (list, tuple)):
        return [leaf for child in tree for leaf in tree_leaves(child)]
    return [] if tree is None else [tree]


def _describe(tree) -> str:
    if isinstance(tree, dict):
        return f"keys {sorted(tree)}"
    if isinstance(tree, (list, tuple)):
        return f"a sequence of {len(tree)}"
    return "a leaf" if tree is not None else "None"
