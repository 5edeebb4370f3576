"""Use any reference optimizer as a Keras 3 optimizer (``model.compile(optimizer=...)``).

>>> model.compile(optimizer=KerasReferenceOptimizer(companion.optim.adam(convention="keras")), loss=...)

The transformation's state is kept in Keras variables, so it works inside ``model.fit``'s compiled
step. The learning rate belongs to the transformation; Keras' own ``learning_rate`` is unused.
"""

from __future__ import annotations

from ..quiet import quiet_tensorflow

with quiet_tensorflow():
    import keras

from ._tree import tree_leaves, tree_map
from .base import GradientTransformation

__all__ = ["KerasReferenceOptimizer"]


class KerasReferenceOptimizer(keras.optimizers.Optimizer):
    """A ``keras.optimizers.Optimizer`` whose update is a :class:`~companion.optim.GradientTransformation`.

    Checked in the tests to train a Keras model exactly as ``keras.optimizers.Adam`` does.
    """

    def __init__(self, transformation: GradientTransformation, name: str = "reference_optimizer", **kwargs):
        if not isinstance(transformation, GradientTransformation):
            raise TypeError(
                "transformation must be a companion.optim GradientTransformation such as "
                f"companion.optim.adam(convention='keras'), got {type(transformation).__name__}"
            )
        for option, where in (("learning_rate", "the transformation's learning rate, e.g. adam(1e-3, convention='keras')"),
                              ("weight_decay", "the transformation, e.g. adam(1e-3, weight_decay=0.004, "
                                               "convention='keras') (Keras' decoupled decay, checked against Keras)")):
            if kwargs.get(option) is not None:  # Keras would apply it with a learning rate of 0: nothing at all
                raise ValueError(f"Invalid {option}: a KerasReferenceOptimizer takes it from {where}")
            kwargs.pop(option, None)
        super().__init__(learning_rate=0.0, name=name, **kwargs)
        self.transformation = transformation

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        dtype = variables[0].dtype if variables else keras.backend.floatx()
        initial = self.transformation.init([v.value for v in variables])
        counter = iter(range(10**9))

        def as_variable(value):
            shape = tuple(getattr(value, "shape", ()))
            var = self.add_variable(shape=shape, dtype=dtype, initializer="zeros", name=f"state_{next(counter)}")
            var.assign(keras.ops.cast(value, dtype))
            return var

        self._state_variables = tree_map(as_variable, initial)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        state = tree_map(lambda v: v.value, self._state_variables)
        params = [v.value for v in trainable_variables]
        updates, new_state = self.transformation.update(list(grads), state, params)
        for var, value in zip(tree_leaves(self._state_variables), tree_leaves(new_state)):
            var.assign(keras.ops.cast(value, var.dtype))
        for var, update in zip(trainable_variables, updates):
            var.assign_add(keras.ops.cast(update, var.dtype))

    def get_config(self):
        raise NotImplementedError("a KerasReferenceOptimizer holds Python functions and cannot be serialized")
