import os

import numpy as np
import pytest
import torch


def pytest_configure(config):
    """Each of pytest-xdist's workers (README's test command runs two) computes on one thread.

    The fits already train on one torch thread; this also holds the trees'
    OpenMP threads and torch's other operations to one, so two workers on two
    cores do not wait on each other's threads: without it the suite took a
    fifth more CPU time (939 s against 776 s, measured on the 2-core machine).
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(1)
        threadpool_limits(1)


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    np.random.seed(0)


def perturb_parameters(module: torch.nn.Module, scale: float = 0.5, seed: int = 0) -> torch.nn.Module:
    """Give every parameter random values so tests see a non-identity transform."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * scale)
    return module


def autograd_log_abs_det(function, x: torch.Tensor) -> torch.Tensor:
    """log|det J| per row, from the full autograd Jacobian of a row-wise map."""
    values = []
    for row in x:
        jacobian = torch.autograd.functional.jacobian(lambda r: function(r.unsqueeze(0))[0].squeeze(0), row)
        values.append(torch.linalg.slogdet(jacobian).logabsdet)
    return torch.stack(values)


def mass_on_grid(flow, axis_0: np.ndarray, axis_1: np.ndarray) -> float:
    """The probability a 2-D flow puts on the rectangle of ``axis_0`` x ``axis_1`` (trapezoid rule)."""
    grid = np.stack(np.meshgrid(axis_0, axis_1, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        density = flow.log_prob(torch.from_numpy(grid)).exp().numpy().reshape(len(axis_0), len(axis_1))
    return float(np.trapezoid(np.trapezoid(density, axis_1, axis=1), axis_0))


def pickled_and_saved_copies(est):
    """Two copies of a fitted estimator: through pickle, and through ``save``/``load`` (skflow's file format)."""
    import io
    import pickle

    buffer = io.BytesIO()
    est.save(buffer)
    buffer.seek(0)
    return pickle.loads(pickle.dumps(est)), type(est).load(buffer)


def from_older_state(est, missing: tuple[str, ...], **changed):
    """``est`` unpickled from its state as an older skflow wrote it: without the attributes ``missing``,
    and with the entries ``changed`` (parameters a user may have set since)."""
    state = est.__getstate__()
    for name in missing:
        del state[name]
    state.update(changed)
    restored = type(est).__new__(type(est))
    restored.__setstate__(state)
    return restored


# Fast configurations of every estimator, shared by tests/test_common.py and the per-module tests.
FAST_FLOW = dict(n_transforms=2, hidden_units=(8,), max_epochs=3, n_bins=4, random_state=0)
# The regressor modules' small flows: a high learning rate, so that a few epochs fit the mean function.
SMALL_REGRESSOR = dict(n_transforms=2, hidden_units=(16,), batch_size=64, learning_rate=1e-2, random_state=0)
# One flow without the boosted trees: the modules that test a single flow's density, not the ensemble's.
ONE_FLOW_ALONE = dict(n_flows=1, boosted_feature=False)


def fast_flow(**params):
    from skflow import FlowDensity

    return FlowDensity(**{**FAST_FLOW, **params})


def fast_detector(**params):
    """A detector whose density is unseeded: the detector's random_state must seed it."""
    from skflow import FlowDensity, FlowOutlierDetector

    density = FlowDensity(**{**FAST_FLOW, "random_state": None, "max_epochs": 2})
    return FlowOutlierDetector(**{"density": density, "random_state": 0, **params})


def fast_regressor(**params):
    """Two flows, so that scikit-learn's checks run through the ensemble; learning_rate 1e-2 and five epochs
    so that both reach check_regressors_train's R² > 0.5 (about 0.15 at 1e-3, three epochs). The flows alone
    (no boosted trees) unless asked: tests/test_boosted_feature.py covers the trees."""
    from skflow import FlowRegressor

    settings = {**FAST_FLOW, "learning_rate": 1e-2, "max_epochs": 5, "n_flows": 2, "boosted_feature": False}
    return FlowRegressor(**{**settings, **params})


# Checks that a stochastic-gradient density estimator cannot pass, with the precise reason.
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "the fitted statistics are identical (weighted location, scale, integrality and tails; "
        "tests/test_sample_weight.py), but Adam divides each gradient component by its magnitude: float32 "
        "rounding differences between weighting a row by 2 and repeating it (~1e-7 relative) flip the sign of "
        "near-zero components and move those weights by a full learning-rate step. Even one full-batch step "
        "without a validation split differs by ~1e-3, far above the check's rtol=1e-7"
    ),
}

SCORE_SAMPLES_NEEDS_Y = (
    "calls score_samples(X) alone, but a conditional density is score_samples(X, y): the targets are "
    "required (predict's invariances and score_samples(X, y)'s are tested in test_regressor.py)"
)
REGRESSOR_FAILED_CHECKS = {
    **EXPECTED_FAILED_CHECKS,
    "check_methods_sample_order_invariance": SCORE_SAMPLES_NEEDS_Y,
    "check_methods_subset_invariance": SCORE_SAMPLES_NEEDS_Y,
}


def fit_recording_trainings(monkeypatch, X, y, **params):
    """A quiet ``FlowRegressor(**params)`` fit, and the fitted state of every training of every flow, in order
    (for each flow: each layer kind, and within it without, then with the trees)."""
    import warnings

    from skflow import FlowRegressor
    from skflow import _flow_choice as choice

    states, original = [], choice._fitted_state
    monkeypatch.setattr(choice, "_fitted_state", lambda estimator: states.append(original(estimator)) or states[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FlowRegressor(**params).fit(X, y)
    monkeypatch.undo()
    return model, states


@pytest.fixture
def trees_tested_once(monkeypatch):
    """``skflow._target_scale.tested_scales`` once per distinct input, for tests that ask about the same rows
    several times (its gains, then the bounds, then a fit): it is deterministic in its arguments and the
    module's constants, which the key holds, so a test that changes a constant gets a fresh test. Each call
    gets its own copies of the arrays."""
    import copy

    import skflow._target_scale as target_scale

    tested, results = target_scale.tested_scales, {}

    def once(X, Y, weights, seed):
        constants = repr(sorted((k, v) for k, v in vars(target_scale).items() if k.isupper()))
        arrays = [np.ascontiguousarray(a) for a in (X, Y, weights)]
        key = (constants, seed, *((a.dtype.str, a.shape, a.tobytes()) for a in arrays))
        if key not in results:
            results[key] = tested(X, Y, weights, seed)
        return copy.deepcopy(results[key])

    monkeypatch.setattr(target_scale, "tested_scales", once)
