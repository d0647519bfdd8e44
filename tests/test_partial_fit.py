"""FlowDensity.partial_fit: the first chunk fixes the preprocessing, later chunks continue one training state."""

import io
import pickle

import numpy as np
import pytest
from sklearn.base import clone

from skflow import FlowDensity

SMALL = dict(n_transforms=2, hidden_units=(16,), random_state=0)


def banana(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    X[:, 1] += X[:, 0] ** 2
    return X * [2.0, 0.5] + [5.0, -1.0]


def stream(est, X, n_chunks, **kwargs):
    for chunk in np.array_split(X, n_chunks):
        est.partial_fit(chunk, **kwargs)
    return est


def test_first_call_fixes_the_same_preprocessing_as_fit():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=300), rng.poisson(3, 300), rng.standard_t(1.5, 300), rng.uniform(1, 2, 300)])
    params = dict(n_transforms=1, hidden_units="auto", bounds=[None, None, None, (0, 3)], random_state=0)
    streamed = FlowDensity(**params).partial_fit(X)
    fitted = FlowDensity(max_epochs=1, **params).fit(X)
    for name in ("location_", "scale_", "low_", "high_", "dequantized_", "asinh_columns_"):
        np.testing.assert_array_equal(getattr(streamed, name), getattr(fitted, name), err_msg=name)
    assert streamed.hidden_units_ == fitted.hidden_units_ and streamed.batch_size_ == fitted.batch_size_
    assert streamed.dequantized_.tolist() == [False, True, False, False]
    assert streamed.n_iter_ == 1 and len(streamed.loss_curve_) == 1 and streamed.validation_scores_ == []


def test_continuing_improves_the_held_out_score():
    X, X_test = banana(3000, 0), banana(1000, 1)
    # A normal base: the point is what the passes add (a mixture start is already close, -2.88 vs -3.18).
    est = FlowDensity(**SMALL, base="normal").partial_fit(X[:500])
    first = est.score(X_test)
    stream(est, X[500:], 5)
    assert est.n_iter_ == 6 and len(est.loss_curve_) == 6
    assert est.score(X_test) > first + 0.1, (first, est.score(X_test))
    assert np.isfinite(est.score_samples(X_test)).all()


def test_later_chunk_beyond_the_first_range_is_fine_and_bad_chunks_raise_and_change_nothing():
    X = banana(400, 0)
    est = FlowDensity(bounds=[None, (-100, 100)], **SMALL).partial_fit(X)
    state = pickle.dumps(est)
    with pytest.raises(ValueError, match="NaN"):
        est.partial_fit(np.where(np.arange(400)[:, None] == 3, np.nan, X))
    with pytest.raises(ValueError, match="2 features"):
        est.partial_fit(X[:, :1])
    with pytest.raises(ValueError, match="outside the bounds"):
        est.partial_fit(X + [0.0, 150.0])
    assert pickle.dumps(est) == state  # nothing changed
    est.partial_fit(X * 10.0)  # far beyond the first chunk's range, inside the bounds
    assert est.n_iter_ == 2 and np.isfinite(est.score_samples(X)).all()


def test_seeded_streams_are_reproducible_bit_for_bit():
    X = banana(900, 0)
    a, b = (stream(FlowDensity(**SMALL), X, 3) for _ in range(2))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    assert a.loss_curve_ == b.loss_curve_
    other = stream(FlowDensity(**{**SMALL, "random_state": 1}), X, 3)
    assert not np.array_equal(a.score_samples(X), other.score_samples(X))


def test_pickled_or_saved_estimator_continues_exactly():
    X = banana(900, 0)
    est = stream(FlowDensity(**SMALL), X[:600], 2)
    unpickled = pickle.loads(pickle.dumps(est))
    buffer = io.BytesIO()
    est.save(buffer)
    buffer.seek(0)
    loaded = FlowDensity.load(buffer)
    for continued in (est, unpickled, loaded):
        continued.partial_fit(X[600:])
    np.testing.assert_array_equal(unpickled.score_samples(X), est.score_samples(X))
    np.testing.assert_array_equal(loaded.score_samples(X), est.score_samples(X))
    assert not hasattr(clone(est), "flow_") and not hasattr(clone(est), "_trainer_state_")


def test_partial_fit_after_fit_continues_and_fit_after_partial_fit_starts_over():
    X = banana(600, 0)
    est = FlowDensity(max_epochs=2, **SMALL).fit(X)
    fitted_curve = list(est.loss_curve_)
    est.partial_fit(X)
    assert est.n_iter_ == 3 and est.loss_curve_[:2] == fitted_curve and len(est.loss_curve_) == 3
    np.testing.assert_array_equal(
        est.fit(X).score_samples(X), FlowDensity(max_epochs=2, **SMALL).fit(X).score_samples(X)
    )


def test_zero_weight_rows_are_ignored_and_weights_are_honoured():
    X = banana(600, 0)
    junk = np.full((50, 2), 1e3)
    weights = np.r_[np.ones(600), np.zeros(50)]
    clean = FlowDensity(**SMALL).partial_fit(X).partial_fit(X[:300])
    padded = FlowDensity(**SMALL).partial_fit(np.r_[X, junk], sample_weight=weights)
    padded.partial_fit(np.r_[X[:300], junk], sample_weight=weights[-350:])
    np.testing.assert_array_equal(clean.score_samples(X), padded.score_samples(X))

    rng = np.random.default_rng(0)
    left, right = rng.normal(size=(400, 2)) - [3, 0], rng.normal(size=(400, 2)) + [3, 0]
    both, w = np.r_[left, right], np.r_[np.ones(400), np.full(400, 0.01)]
    est = FlowDensity(**SMALL)
    for _ in range(3):
        est.partial_fit(both, sample_weight=w)
    np.testing.assert_allclose(est.location_, np.average(both, axis=0, weights=w))
    assert est.score(left) > est.score(right) + 1.0


def test_trainer_resumed_from_its_state_dict_continues_bit_for_bit():
    import torch

    from skflow._core import Rows, TrainConfig, Trainer, build_flow

    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    rows = Rows(x, torch.ones(300))
    config = TrainConfig(batch_size=64)

    def trainer():
        return Trainer(
            build_flow(2, n_transforms=1, hidden_units=(8,), seed=0), config, torch.Generator().manual_seed(0)
        )

    straight = trainer()
    losses = [straight.one_pass(rows, 1e-2)[0] for _ in range(2)]
    paused = trainer()
    first_loss, _ = paused.one_pass(rows, 1e-2)
    state = paused.state_dict()
    paused.release()
    resumed = trainer()
    resumed.load_state_dict(state)
    assert [first_loss, resumed.one_pass(rows, 1e-2)[0]] == losses
    for a, b in zip(
        straight.state_dict()["params"] + straight.state_dict()["average"],
        resumed.state_dict()["params"] + resumed.state_dict()["average"],
    ):
        assert torch.equal(a, b)
    assert resumed.state_dict()["n_updates"] == 10 and set(state["optimizer"][0]) == {"step", "exp_avg", "exp_avg_sq"}
