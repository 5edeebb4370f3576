"""companion.preprocessing against scikit-learn's StandardScaler, MinMaxScaler and SimpleImputer."""

import numpy as np
import pytest

sklearn_preprocessing = pytest.importorskip("sklearn.preprocessing")
sklearn_impute = pytest.importorskip("sklearn.impute")

from companion.preprocessing import (  # noqa: E402
    Imputer,
    MinMaxScaler,
    Standardizer,
    imputation_statistics,
    impute,
    missing_indicator,
)


def features(n=200, seed=0, missing=0.0):
    """Columns on very different scales (like raw tabular data), one constant column."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)) * np.array([1e-3, 1.0, 50.0, 1e4, 0.0]) + np.array([0.0, -3.0, 100.0, 5e4, 7.0])
    if missing:
        x[rng.random(x.shape) < missing] = np.nan
    return x


def test_standardizer_matches_sklearn_standard_scaler():
    train, test = features(seed=0), features(n=50, seed=1)
    mine, theirs = Standardizer().fit(train), sklearn_preprocessing.StandardScaler().fit(train)
    np.testing.assert_allclose(mine.mean_, theirs.mean_, rtol=1e-12)
    np.testing.assert_allclose(mine.scale_, theirs.scale_, rtol=1e-12)
    np.testing.assert_allclose(mine.transform(test), theirs.transform(test), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mine.inverse_transform(mine.transform(test)), test, rtol=1e-9)
    z = mine.fit_transform(train)
    np.testing.assert_allclose(z[:, :4].mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(z[:, :4].std(axis=0), 1.0, rtol=1e-9)


def test_standardizer_ignores_nan_when_fitting_like_sklearn():
    train = features(seed=2, missing=0.2)
    mine, theirs = Standardizer().fit(train), sklearn_preprocessing.StandardScaler().fit(train)
    np.testing.assert_allclose(mine.mean_, theirs.mean_, rtol=1e-12)
    np.testing.assert_allclose(mine.scale_, theirs.scale_, rtol=1e-12)
    np.testing.assert_allclose(mine.transform(train), theirs.transform(train), rtol=1e-9, equal_nan=True)


@pytest.mark.parametrize("feature_range", [(0.0, 1.0), (-1.0, 1.0), (2.0, 5.0)])
def test_min_max_scaler_matches_sklearn(feature_range):
    train, test = features(seed=0), features(n=50, seed=1)
    mine = MinMaxScaler(feature_range).fit(train)
    theirs = sklearn_preprocessing.MinMaxScaler(feature_range=feature_range).fit(train)
    for name in ("data_min_", "data_max_", "scale_", "min_"):
        np.testing.assert_allclose(getattr(mine, name), getattr(theirs, name), rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(mine.transform(test), theirs.transform(test), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mine.inverse_transform(mine.transform(test)), test, rtol=1e-9)
    z = mine.transform(train)
    np.testing.assert_allclose(z[:, :4].min(axis=0), feature_range[0], atol=1e-12)
    np.testing.assert_allclose(z[:, :4].max(axis=0), feature_range[1], atol=1e-12)


@pytest.mark.parametrize("strategy", ["mean", "median", "constant"])
@pytest.mark.parametrize("add_indicator", [False, True])
def test_imputer_matches_sklearn_simple_imputer(strategy, add_indicator):
    train, test = features(seed=3, missing=0.15), features(n=60, seed=4, missing=0.15)
    train[:, 1] = np.where(np.isnan(train[:, 1]), 0.5, train[:, 1])  # a column with nothing missing in training
    mine = Imputer(strategy, fill_value=-1.0, add_indicator=add_indicator).fit(train)
    theirs = sklearn_impute.SimpleImputer(strategy=strategy, fill_value=-1.0, add_indicator=add_indicator).fit(train)
    np.testing.assert_allclose(mine.statistics_, theirs.statistics_.astype(float), rtol=1e-12)
    np.testing.assert_allclose(mine.transform(test), theirs.transform(test), rtol=1e-12)
    np.testing.assert_allclose(mine.fit_transform(train), theirs.fit_transform(train), rtol=1e-12)


def test_imputation_functions():
    x = np.array([[1.0, np.nan], [3.0, 4.0], [np.nan, 8.0], [5.0, 6.0]])
    np.testing.assert_allclose(imputation_statistics(x, "mean"), [3.0, 6.0])
    np.testing.assert_allclose(imputation_statistics(x, "median"), [3.0, 6.0])
    np.testing.assert_allclose(imputation_statistics(x, "constant", fill_value=9.0), [9.0, 9.0])
    np.testing.assert_array_equal(missing_indicator(x), np.isnan(x).astype(float))
    np.testing.assert_allclose(impute(x, [0.0, -1.0]), [[1, -1], [3, 4], [0, 8], [5, 6]])
    np.testing.assert_allclose(impute(x, [0.0, -1.0], indicator_columns=[1])[:, 2], [1, 0, 0, 0])
    # A column with no observed value gets fill_value, like SimpleImputer(keep_empty_features=True).
    empty = np.array([[np.nan, 1.0], [np.nan, 3.0]])
    theirs = sklearn_impute.SimpleImputer(strategy="mean", keep_empty_features=True).fit(empty)
    np.testing.assert_allclose(imputation_statistics(empty, "mean"), theirs.statistics_)


def test_fit_on_train_only_leaves_test_statistics_alone():
    # The test split is transformed with the *training* statistics: its mean is not forced to 0.
    rng = np.random.default_rng(0)
    train, test = rng.normal(0.0, 1.0, size=(500, 2)), rng.normal(3.0, 1.0, size=(500, 2))
    z = Standardizer().fit(train).transform(test)
    assert np.all(np.abs(z.mean(axis=0) - 3.0) < 0.3)


def test_inputs_are_not_modified():
    x = features(seed=5, missing=0.1)
    copy = x.copy()
    Imputer("median", add_indicator=True).fit(x).transform(x)
    Standardizer().fit(x).transform(x)
    MinMaxScaler().fit(x).transform(x)
    np.testing.assert_array_equal(x, copy)


@pytest.mark.parametrize(
    "call, error, name",
    [
        (lambda: Standardizer().fit(np.ones(5)), ValueError, "x"),
        (lambda: Standardizer().fit(np.ones((0, 3))), ValueError, "x"),
        (lambda: Standardizer().fit(np.array([[1.0, np.inf]])), ValueError, "x"),
        (lambda: Standardizer().fit(np.array([[np.nan, 1.0]])), ValueError, "x"),
        (lambda: Standardizer().fit(np.array([["a", "b"]])), TypeError, "x"),
        (lambda: Standardizer().fit(np.ones((3, 2))).transform(np.ones((3, 4))), ValueError, "features"),
        (lambda: Standardizer().transform(np.ones((3, 2))), RuntimeError, "not fitted"),
        (lambda: MinMaxScaler((1.0, 0.0)), ValueError, "feature_range"),
        (lambda: Imputer("mode"), ValueError, "strategy"),
        (lambda: imputation_statistics(np.ones((2, 2)), "max"), ValueError, "strategy"),
        (lambda: impute(np.ones((2, 2)), [1.0, np.nan]), ValueError, "statistics"),
        (lambda: impute(np.ones((2, 2)), [1.0, 2.0, 3.0]), ValueError, "x"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, error, name):
    with pytest.raises(error, match=name):
        call()
