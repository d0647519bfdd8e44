"""FlowDensity on Dask: searches on a cluster, scoring and transforming dask arrays, Incremental (also FlowRegressor).

Needs the ``dask`` extra (``pip install -e ".[dask]"``); skipped without it.
"""

import numpy as np
import pytest
from joblib import parallel_backend
from sklearn.base import clone
from sklearn.datasets import make_moons
from sklearn.model_selection import GridSearchCV, KFold

from skflow import FlowDensity

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

TINY = dict(n_transforms=2, hidden_units=(8,), n_bins=4, max_epochs=3, random_state=0)
GRID = {"learning_rate": [1e-3, 3e-3]}


@pytest.fixture(scope="module")
def X():
    return make_moons(200, noise=0.1, random_state=0)[0]


@pytest.fixture(scope="module")
def fitted(X):
    return FlowDensity(**TINY).fit(X)


def _search(X, n_jobs):
    search = GridSearchCV(FlowDensity(**TINY), GRID, cv=KFold(2), n_jobs=n_jobs)
    return search.fit(X)


@pytest.fixture(scope="module")
def serial_search(X):
    return _search(X, n_jobs=1)


def assert_same_scores(parallel, serial, tolerance=0.0):
    """Every test score of two searches, bit for bit unless ``tolerance`` (relative and absolute; fit and score
    times differ, of course)."""
    keys = [k for k in serial.cv_results_ if k.endswith("_test_score")]
    assert {"mean_test_score", "split0_test_score", "split1_test_score"} <= set(keys)
    assert [k for k in parallel.cv_results_ if k.endswith("_test_score")] == keys
    for key in keys:
        scores = np.asarray(serial.cv_results_[key], dtype=np.float64)
        assert np.isfinite(scores).all(), key
        np.testing.assert_allclose(parallel.cv_results_[key], scores, rtol=tolerance, atol=tolerance, err_msg=key)
    assert parallel.cv_results_["params"] == serial.cv_results_["params"]
    assert parallel.best_params_ == serial.best_params_


def test_grid_search_on_a_dask_cluster_equals_serial(X, serial_search):
    # Worker processes, not threads: threads in one process share torch's global random
    # generator and thread setting, which a real cluster's workers never do. The cluster starts
    # in ~1 s; each worker then spends ~5 s of CPU importing torch and scikit-learn and ~2.5 s
    # importing torch._dynamo at its first optimizer (benchmarks/parallel.py), which is most of
    # this test's time. processes=False takes ~3 s but races on torch's global generator.
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        with parallel_backend("dask"), distributed.get_task_stream(client) as tasks:
            parallel = _search(X, n_jobs=-1)
        workers = client.run(lambda: __import__("os").getpid())
    assert len(set(workers.values())) == 2
    # The fits ran on the cluster's workers (not in this process).
    assert {task["worker"] for task in tasks.data} <= set(workers) and tasks.data
    assert_same_scores(parallel, serial_search)
    refitted, serial_refit = parallel.best_estimator_, serial_search.best_estimator_
    np.testing.assert_array_equal(refitted.score_samples(X), serial_refit.score_samples(X))


def test_grid_search_with_threads_equals_serial(X, serial_search):
    with parallel_backend("threading", n_jobs=2):
        parallel = _search(X, n_jobs=2)
    # Training is single-threaded in every thread, but torch's thread count is process-wide: a fold
    # scored while another thread trains runs its matrix products on one thread instead of two, which
    # sums in another order (measured: 3e-9 relative, 2e-9 absolute on a standard deviation of the
    # scores, only when the threads overlap so).
    assert_same_scores(parallel, serial_search, tolerance=1e-7)


def test_score_samples_of_a_dask_array(X, fitted):
    X_dask = da.from_array(X, chunks=(64, 2))
    assert X_dask.numblocks == (4, 1)
    log_density = da.map_blocks(fitted.score_samples, X_dask, drop_axis=1, dtype=float)
    result = log_density.compute()
    assert result.shape == (X.shape[0],)
    assert np.isfinite(result).all()
    np.testing.assert_array_equal(result, fitted.score_samples(X))


def test_transform_of_a_dask_array(X, fitted):
    X_dask = da.from_array(X, chunks=(50, 2))
    latent = da.map_blocks(fitted.transform, X_dask, dtype=float).compute()
    assert latent.shape == X.shape
    np.testing.assert_array_equal(latent, fitted.transform(X))


@pytest.mark.skipif(not hasattr(FlowDensity, "partial_fit"), reason="FlowDensity.partial_fit is not implemented yet")
def test_incremental_fits_chunks_in_order_like_partial_fit(X):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X_dask = da.from_array(X, chunks=(50, 2))
    assert X_dask.numblocks == (4, 1)
    incremental = wrappers.Incremental(FlowDensity(**TINY), shuffle_blocks=False).fit(X_dask)

    serial = clone(FlowDensity(**TINY))
    for start in range(0, X.shape[0], 50):
        serial.partial_fit(X[start : start + 50])

    fitted = incremental.estimator_
    assert fitted.n_features_in_ == 2
    assert incremental.n_features_in_ == 2
    log_density = fitted.score_samples(X)
    assert np.isfinite(log_density).all()
    np.testing.assert_array_equal(log_density, serial.score_samples(X))


def test_incremental_trains_a_regressor_from_dask_arrays():
    wrappers = pytest.importorskip("dask_ml.wrappers")
    from skflow import FlowRegressor

    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (200, 2))
    y = X[:, 0] - X[:, 1] ** 2 + (0.1 + 0.2 * np.abs(X[:, 0])) * rng.normal(size=200)
    X_dask, y_dask = da.from_array(X, chunks=(50, 2)), da.from_array(y, chunks=50)
    incremental = wrappers.Incremental(FlowRegressor(**TINY), shuffle_blocks=False).fit(X_dask, y_dask)

    serial = FlowRegressor(**TINY)
    for start in range(0, X.shape[0], 50):
        serial.partial_fit(X[start : start + 50], y[start : start + 50])

    fitted = incremental.estimator_
    assert fitted.n_iter_ == 4 and fitted.n_features_in_ == 2
    log_density = fitted.score_samples(X, y)
    assert np.isfinite(log_density).all()
    np.testing.assert_array_equal(log_density, serial.score_samples(X, y))
    # The wrapper predicts block by block: the same conditional means as the estimator.
    np.testing.assert_array_equal(incremental.predict(X_dask[:20]).compute(), fitted.predict(X[:20]))
