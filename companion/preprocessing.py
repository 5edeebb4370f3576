r"""Feature scaling and missing-value imputation as ``fit`` / ``transform`` objects (NumPy only).

The rule every object here enforces: statistics are *fitted* on the training split only and then
*applied* unchanged to validation, test and production data. Fitting them on all the data leaks
information from the test set into training; fitting them on each test batch separately changes the
model's input from batch to batch.

- :class:`Standardizer`: :math:`z = (x - \mu) / \sigma` per feature (population :math:`\sigma`, ``ddof=0``).
- :class:`MinMaxScaler`: :math:`z = a + (b - a)(x - x_{min}) / (x_{max} - x_{min})` into ``[a, b]``.
- :class:`Imputer`, :func:`imputation_statistics`, :func:`impute`, :func:`missing_indicator`: replace
  ``NaN`` with the training mean, median or a constant, optionally appending a 0/1 column per feature that
  had missing values (so the model can learn that "missing" itself carries information).

Features are columns of a 2-D array ``(n_samples, n_features)``. A constant feature gets scale 1
(not a division by zero), as in scikit-learn. ``NaN`` values are ignored when fitting the scalers and
stay ``NaN`` when transforming.

Tested against ``sklearn.preprocessing.StandardScaler``, ``MinMaxScaler`` and
``sklearn.impute.SimpleImputer`` in ``tests/test_preprocessing.py``.
"""

from __future__ import annotations

import numpy as np

from ._checks import check_choice

__all__ = [
    "Imputer",
    "MinMaxScaler",
    "Standardizer",
    "imputation_statistics",
    "impute",
    "missing_indicator",
]


def _as_2d(name: str, x, n_features: int | None = None) -> np.ndarray:
    array = np.asarray(x)
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"{name} must be a numeric array, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(
            f"Invalid {name}: shape {array.shape} (expected a non-empty 2-D array (n_samples, n_features))"
        )
    if n_features is not None and array.shape[1] != n_features:
        raise ValueError(f"Invalid {name}: {array.shape[1]} features, but the object was fitted on {n_features}")
    if np.isinf(array).any():
        raise ValueError(f"Invalid {name}: contains infinite values")
    return array.astype(np.float64, copy=False)


def _nonzero_scale(scale: np.ndarray) -> np.ndarray:
    # A constant feature would divide by zero; scikit-learn leaves it unscaled (scale 1).
    scale = scale.copy()
    scale[scale < 10 * np.finfo(np.float64).eps] = 1.0
    return scale


class _Fitted:
    n_features_: int | None = None

    def _check_fitted(self):
        if self.n_features_ is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit(x_train) first")

    def fit_transform(self, x):
        return self.fit(x).transform(x)


class Standardizer(_Fitted):
    r"""Zero mean, unit variance per feature: :math:`z = (x - \mu_{train}) / \sigma_{train}`.

    ``mean_`` and ``scale_`` are fitted on the training data only (``NaN`` ignored).
    """

    def fit(self, x):
        x = _as_2d("x", x)
        with np.errstate(invalid="ignore"):
            if np.isnan(x).all(axis=0).any():
                raise ValueError("Invalid x: a feature has no observed (non-NaN) value")
            self.mean_ = np.nanmean(x, axis=0)
            self.scale_ = _nonzero_scale(np.nanstd(x, axis=0))
        self.n_features_ = x.shape[1]
        return self

    def transform(self, x):
        self._check_fitted()
        return (_as_2d("x", x, self.n_features_) - self.mean_) / self.scale_

    def inverse_transform(self, z):
        self._check_fitted()
        return _as_2d("z", z, self.n_features_) * self.scale_ + self.mean_


class MinMaxScaler(_Fitted):
    r"""Map each feature's training range to ``feature_range = (a, b)``:
    :math:`z = a + (b - a)\,(x - x_{min}) / (x_{max} - x_{min})`.

    Test values outside the training range map outside ``[a, b]`` (nothing is clipped).
    """

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0)):
        low, high = feature_range
        if not low < high:
            raise ValueError(f"Invalid feature_range: {feature_range!r} (need low < high)")
        self.feature_range = (float(low), float(high))

    def fit(self, x):
        x = _as_2d("x", x)
        with np.errstate(invalid="ignore"):
            if np.isnan(x).all(axis=0).any():
                raise ValueError("Invalid x: a feature has no observed (non-NaN) value")
            self.data_min_ = np.nanmin(x, axis=0)
            self.data_max_ = np.nanmax(x, axis=0)
        low, high = self.feature_range
        self.scale_ = (high - low) / _nonzero_scale(self.data_max_ - self.data_min_)
        self.min_ = low - self.data_min_ * self.scale_
        self.n_features_ = x.shape[1]
        return self

    def transform(self, x):
        self._check_fitted()
        return _as_2d("x", x, self.n_features_) * self.scale_ + self.min_

    def inverse_transform(self, z):
        self._check_fitted()
        return (_as_2d("z", z, self.n_features_) - self.min_) / self.scale_


STRATEGIES = ("mean", "median", "constant")


def imputation_statistics(x, strategy: str = "mean", fill_value: float = 0.0) -> np.ndarray:
    """The value that replaces ``NaN`` in each column: the column's mean or median over its observed
    entries, or ``fill_value`` (``strategy="constant"``). A column with no observed value gets
    ``fill_value`` too (scikit-learn's ``SimpleImputer(keep_empty_features=True)`` uses 0)."""
    check_choice("strategy", strategy, STRATEGIES)
    x = _as_2d("x", x)
    stats = np.full(x.shape[1], float(fill_value))
    if strategy == "constant":
        return stats
    observed = ~np.isnan(x).all(axis=0)
    reduce = np.nanmean if strategy == "mean" else np.nanmedian
    stats[observed] = reduce(x[:, observed], axis=0)
    return stats


def missing_indicator(x) -> np.ndarray:
    """A 0/1 float array, 1 where ``x`` is ``NaN``."""
    return np.isnan(_as_2d("x", x)).astype(np.float64)


def impute(x, statistics, indicator_columns=None) -> np.ndarray:
    """Replace each ``NaN`` of column ``j`` by ``statistics[j]``; if ``indicator_columns`` (indices) is
    given, append ``missing_indicator(x)[:, indicator_columns]``."""
    statistics = np.asarray(statistics, dtype=np.float64)
    x = _as_2d("x", x, statistics.shape[0] if statistics.ndim == 1 else None)
    if statistics.ndim != 1 or not np.isfinite(statistics).all():
        raise ValueError(f"Invalid statistics: expected {x.shape[1]} finite values, one per column")
    missing = np.isnan(x)
    filled = np.where(missing, statistics, x)
    if indicator_columns is None:
        return filled
    return np.hstack([filled, missing[:, np.asarray(indicator_columns, dtype=int)].astype(np.float64)])


class Imputer(_Fitted):
    """Fit the replacement values (and which columns get an indicator) on the training data, then
    :func:`impute` any split with them. ``add_indicator=True`` appends one 0/1 column per feature that
    had missing values in the training data, like ``SimpleImputer(add_indicator=True)``."""

    def __init__(self, strategy: str = "mean", fill_value: float = 0.0, add_indicator: bool = False):
        self.strategy = check_choice("strategy", strategy, STRATEGIES)
        self.fill_value = float(fill_value)
        self.add_indicator = bool(add_indicator)

    def fit(self, x):
        x = _as_2d("x", x)
        self.statistics_ = imputation_statistics(x, self.strategy, self.fill_value)
        self.indicator_columns_ = np.flatnonzero(np.isnan(x).any(axis=0)) if self.add_indicator else None
        self.n_features_ = x.shape[1]
        return self

    def transform(self, x):
        self._check_fitted()
        return impute(x, self.statistics_, self.indicator_columns_)
