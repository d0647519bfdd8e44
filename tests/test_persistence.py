"""Persistence: pickle/joblib round trips, GPU-to-CPU loading, the safe save/load format, thread safety."""

import io
import json
import os
import pickle
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import make_moons

import skflow
from skflow import FlowDensity
from skflow._persistence import FORMAT_VERSION, METADATA_MEMBER

FAST = dict(n_transforms=2, hidden_units=(16,), max_epochs=8, random_state=0)


@pytest.fixture(scope="module")
def data():
    X, _ = make_moons(300, noise=0.1, random_state=0)
    return X * [2.0, 0.5] + [1.0, 3.0]


@pytest.fixture(scope="module")
def fitted(data):
    return FlowDensity(**FAST).fit(data)


def test_pickle_and_joblib_give_identical_scores_and_samples(fitted, data, tmp_path):
    joblib.dump(fitted, tmp_path / "model.joblib")
    for restored in (pickle.loads(pickle.dumps(fitted)), joblib.load(tmp_path / "model.joblib")):
        np.testing.assert_array_equal(restored.score_samples(data), fitted.score_samples(data))
        np.testing.assert_array_equal(restored.transform(data), fitted.transform(data))
        np.testing.assert_array_equal(restored.sample(10, random_state=3), fitted.sample(10, random_state=3))


def test_pickle_holds_no_torch_module(fitted):
    """The pickle stores config + a CPU state_dict, so it does not depend on the device or torch internals."""
    state = fitted.__getstate__()
    assert set(state["flow_"]) == {"config", "state_dict"}
    assert all(t.device.type == "cpu" for t in state["flow_"]["state_dict"].values())
    assert isinstance(state["device_"], str)


def gpu_pickle(estimator) -> bytes:
    """A pickle as a CUDA machine writes it: same CPU state_dict, but device_ is 'cuda:0'."""
    copy = pickle.loads(pickle.dumps(estimator))
    copy.device_ = torch.device("cuda:0")
    return pickle.dumps(copy)


def test_model_fitted_on_gpu_loads_on_cpu_with_a_warning(fitted, data, monkeypatch):
    payload = gpu_pickle(fitted)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match=r"fitted on cuda:0.*loading it on the CPU"):
        restored = pickle.loads(payload)
    assert restored.device_ == torch.device("cpu")
    assert all(t.device.type == "cpu" for t in restored.flow_.state_dict().values())
    np.testing.assert_array_equal(restored.score_samples(data), fitted.score_samples(data))


def test_save_load_round_trip_is_exact(fitted, data, tmp_path):
    path = tmp_path / "model.skflow"
    fitted.save(path)
    restored = FlowDensity.load(path)
    assert type(restored) is FlowDensity
    assert restored.get_params() == fitted.get_params()
    np.testing.assert_array_equal(restored.score_samples(data), fitted.score_samples(data))
    np.testing.assert_array_equal(restored.inverse_transform(data), fitted.inverse_transform(data))
    np.testing.assert_array_equal(restored.sample(10, random_state=3), fitted.sample(10, random_state=3))
    for name in ("location_", "scale_", "low_", "high_", "dequantized_"):
        np.testing.assert_array_equal(getattr(restored, name), getattr(fitted, name))
        assert getattr(restored, name).dtype == getattr(fitted, name).dtype
    assert restored.loss_curve_ == fitted.loss_curve_
    assert (restored.n_iter_, restored.best_epoch_, restored.n_features_in_) == (
        fitted.n_iter_,
        fitted.best_epoch_,
        fitted.n_features_in_,
    )
    assert restored.device_ == fitted.device_


def test_save_load_keeps_feature_names_bounds_output_config_and_random_state(tmp_path):
    rng = np.random.RandomState(0)
    df = pd.DataFrame({"share": rng.beta(2, 5, 200), "size": rng.lognormal(size=200), "count": rng.poisson(3, 200)})
    est = FlowDensity(**{**FAST, "random_state": np.random.RandomState(7)}, bounds=[(0, 1), (0, None), None])
    est.fit(df).set_output(transform="pandas")
    est.save(tmp_path / "m.skflow")
    restored = FlowDensity.load(tmp_path / "m.skflow")
    np.testing.assert_array_equal(restored.feature_names_in_, ["share", "size", "count"])
    assert restored.feature_names_in_.dtype == object
    assert restored.bounds == est.bounds
    assert isinstance(restored.random_state, np.random.RandomState)
    np.testing.assert_array_equal(restored.random_state.get_state()[1], est.random_state.get_state()[1])
    np.testing.assert_array_equal(restored.dequantized_, [False, False, True])
    pd.testing.assert_frame_equal(restored.transform(df), est.transform(df))
    np.testing.assert_array_equal(restored.score_samples(df), est.score_samples(df))


def test_unfitted_estimator_round_trips(tmp_path):
    est = FlowDensity(flow="affine", hidden_units=(4, 4), learning_rate=0.01)
    est.save(tmp_path / "unfitted.skflow")
    restored = FlowDensity.load(tmp_path / "unfitted.skflow")
    assert restored.get_params() == est.get_params()
    assert not hasattr(restored, "flow_")


def test_save_to_and_load_from_file_objects(fitted, data):
    buffer = io.BytesIO()
    fitted.save(buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(FlowDensity.load(buffer).score_samples(data), fitted.score_samples(data))


def test_saved_file_is_versioned_json_plus_numeric_arrays(fitted, tmp_path):
    path = tmp_path / "model.skflow"
    fitted.save(path)
    with zipfile.ZipFile(path) as archive:
        metadata = json.loads(archive.read(METADATA_MEMBER))
        others = [n for n in archive.namelist() if n != METADATA_MEMBER]
        assert all(n.startswith("arrays/") and n.endswith(".npy") for n in others)
        for name in others:
            array = np.load(io.BytesIO(archive.read(name)), allow_pickle=False)
            assert array.dtype.kind in "biuf"
    assert metadata["format_version"] == FORMAT_VERSION
    assert metadata["versions"]["skflow"] == skflow.__version__
    assert metadata["versions"]["torch"] == torch.__version__
    assert metadata["class"] == "skflow.density.FlowDensity"
    assert metadata["state"]["__dict__"]["learning_rate"] == fitted.learning_rate


class _Payload:
    """Unpickling this writes a marker file: proof that the code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_load_refuses_a_pickle_file_without_running_it(fitted, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ValueError, match="refusing to load.*pickle file"):
        FlowDensity.load(path)
    joblib.dump(fitted, tmp_path / "model.joblib")
    with pytest.raises(ValueError, match="pickle file"):
        FlowDensity.load(tmp_path / "model.joblib")
    assert not marker.exists()


def rewrite(path, out, add=None, replace=None, metadata=None):
    """Copy the archive at ``path`` to ``out``, adding/replacing members or editing the metadata."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            content = src.read(name)
            if name == METADATA_MEMBER and metadata is not None:
                content = json.dumps(metadata(json.loads(content)))
            dst.writestr(name, (replace or {}).get(name, content))
        for name, content in (add or {}).items():
            dst.writestr(name, content)
    return out


def test_load_refuses_an_archive_carrying_a_pickle_payload(fitted, tmp_path):
    marker = tmp_path / "pwned"
    fitted.save(tmp_path / "good.skflow")
    crafted = rewrite(
        tmp_path / "good.skflow", tmp_path / "bad.skflow", add={"data.pkl": pickle.dumps(_Payload(marker))}
    )
    with pytest.raises(ValueError, match=r"refusing to load.*pickle payload \(data.pkl\)"):
        FlowDensity.load(crafted)
    assert not marker.exists()


def test_load_refuses_an_object_array_member(fitted, tmp_path):
    """An .npy member may itself hold a pickle (an object array): np.load(allow_pickle=False) refuses it."""
    marker = tmp_path / "pwned"
    fitted.save(tmp_path / "good.skflow")
    evil = io.BytesIO()
    np.save(evil, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    crafted = rewrite(tmp_path / "good.skflow", tmp_path / "bad.skflow", replace={"arrays/0.npy": evil.getvalue()})
    with pytest.raises(ValueError, match="refusing to load.*not a plain numeric array"):
        FlowDensity.load(crafted)
    assert not marker.exists()


def test_load_refuses_a_torch_checkpoint(fitted, tmp_path):
    torch.save(fitted.flow_.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(ValueError, match="refusing to load"):
        FlowDensity.load(tmp_path / "weights.pt")


def test_load_refuses_newer_format_other_class_and_junk(fitted, tmp_path):
    fitted.save(tmp_path / "good.skflow")

    def newer(meta):
        return {**meta, "format_version": FORMAT_VERSION + 1}

    def other_class(meta):
        return {**meta, "class": "os.system"}

    with pytest.raises(ValueError, match="format version .* newer"):
        FlowDensity.load(rewrite(tmp_path / "good.skflow", tmp_path / "newer.skflow", metadata=newer))
    with pytest.raises(ValueError, match="holds a 'os.system'"):
        FlowDensity.load(rewrite(tmp_path / "good.skflow", tmp_path / "other.skflow", metadata=other_class))
    (tmp_path / "junk.skflow").write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match="not a skflow model file"):
        FlowDensity.load(tmp_path / "junk.skflow")


def test_load_refuses_weights_that_do_not_fit_the_flow(fitted, tmp_path):
    fitted.save(tmp_path / "good.skflow")

    def wider(meta):
        meta["state"]["__dict__"]["flow_"]["__dict__"]["config"]["__dict__"]["hidden_units"] = [32]
        return meta

    with pytest.raises(ValueError, match=r"weight .*hidden.0.weight.* has shape \(16, 1\).*config implies \(32, 1\)"):
        FlowDensity.load(rewrite(tmp_path / "good.skflow", tmp_path / "wider.skflow", metadata=wider))


def test_file_from_another_skflow_version_loads_with_a_warning(fitted, data, tmp_path):
    fitted.save(tmp_path / "good.skflow")

    def old(meta):
        meta["versions"]["skflow"] = "0.0.1"
        return meta

    with pytest.warns(UserWarning, match="written by skflow 0.0.1"):
        restored = FlowDensity.load(rewrite(tmp_path / "good.skflow", tmp_path / "old.skflow", metadata=old))
    np.testing.assert_array_equal(restored.score_samples(data), fitted.score_samples(data))


def test_gpu_saved_file_loads_on_cpu(fitted, data, tmp_path, monkeypatch):
    fitted.save(tmp_path / "good.skflow")

    def on_gpu(meta):
        meta["state"]["__dict__"]["device_"] = {"__device__": "cuda:0"}
        return meta

    path = rewrite(tmp_path / "good.skflow", tmp_path / "gpu.skflow", metadata=on_gpu)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="fitted on cuda:0"):
        restored = FlowDensity.load(path)
    assert restored.device_ == torch.device("cpu")
    np.testing.assert_array_equal(restored.score_samples(data), fitted.score_samples(data))


def test_concurrent_score_samples_equal_serial(fitted):
    rng = np.random.RandomState(1)
    chunks = [rng.normal(size=(500, 2)) * [2.0, 0.5] + [1.0, 3.0] for _ in range(8)]
    serial = [fitted.score_samples(c) for c in chunks]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(fitted.score_samples, chunks * 3))
    for i, result in enumerate(parallel):
        np.testing.assert_array_equal(result, serial[i % len(chunks)])
    with ThreadPoolExecutor(max_workers=4) as pool:
        latents = list(pool.map(fitted.transform, chunks))
    for chunk, latent in zip(chunks, latents):
        np.testing.assert_array_equal(latent, fitted.transform(chunk))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_real_gpu_fit_loads_on_cpu_in_a_fresh_process(data, tmp_path):
    import subprocess
    import sys

    est = FlowDensity(**FAST, device="cuda").fit(data)
    joblib.dump(est, tmp_path / "gpu.joblib")
    est.save(tmp_path / "gpu.skflow")
    np.save(tmp_path / "expected.npy", est.score_samples(data))
    np.save(tmp_path / "data.npy", data)
    pickled, safe = str(tmp_path / "gpu.joblib"), str(tmp_path / "gpu.skflow")
    script = (
        "import warnings, joblib, numpy as np, torch; from skflow import FlowDensity\n"
        "assert not torch.cuda.is_available()\n"
        f"X = np.load({str(tmp_path / 'data.npy')!r}); expected = np.load({str(tmp_path / 'expected.npy')!r})\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        f"    a = joblib.load({pickled!r}); b = FlowDensity.load({safe!r})\n"
        "assert sum('loading it on the CPU' in str(x.message) for x in w) == 2, [str(x.message) for x in w]\n"
        "for m in (a, b):\n"
        "    assert m.device_.type == 'cpu'\n"
        "    np.testing.assert_allclose(m.score_samples(X), expected, rtol=1e-9, atol=1e-9)\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_outlier_detector_with_nested_density_round_trips(data, tmp_path):
    from skflow._persistence import load_estimator, save_estimator
    from skflow.outlier import FlowOutlierDetector

    detector = FlowOutlierDetector(density=FlowDensity(**FAST), contamination=0.1).fit(data)
    save_estimator(detector, tmp_path / "detector.skflow")
    restored = load_estimator(FlowOutlierDetector, tmp_path / "detector.skflow")
    assert type(restored.density_) is FlowDensity and restored.density_ is not restored.density
    np.testing.assert_array_equal(restored.decision_function(data), detector.decision_function(data))
    np.testing.assert_array_equal(restored.predict(data), detector.predict(data))
    assert restored.get_params()["density__n_transforms"] == FAST["n_transforms"]


def test_nested_estimator_of_a_foreign_class_is_refused(fitted, tmp_path):
    fitted.save(tmp_path / "good.skflow")

    def smuggle(meta):
        meta["state"]["__dict__"]["extra"] = {"__estimator__": ["subprocess.Popen", {"__dict__": {}}]}
        return meta

    with pytest.raises(ValueError, match="refusing to load.*'subprocess.Popen' is not a skflow estimator"):
        FlowDensity.load(rewrite(tmp_path / "good.skflow", tmp_path / "smuggled.skflow", metadata=smuggle))


def test_save_refuses_state_it_cannot_store_safely_and_writes_nothing(fitted, tmp_path):
    copy = pickle.loads(pickle.dumps(fitted))
    copy.callback_ = print  # e.g. an attribute a user or subclass added: code, not the callback parameter
    with pytest.raises(TypeError, match=r"state\['callback_'\], a builtin_function_or_method: .* not code"):
        copy.save(tmp_path / "model.skflow")
    copy.__dict__.pop("callback_")
    copy.dtype_ = np.float32  # a class is no function: the general message
    with pytest.raises(TypeError, match=r"cannot save the estimator state\['dtype_'\] of type type in the safe format"):
        copy.save(tmp_path / "model.skflow")
    assert not (tmp_path / "model.skflow").exists()


def log_nothing(info):
    return None


@pytest.mark.parametrize("kind", ["density", "regressor", "detector"])
def test_a_callback_is_saved_as_none_with_a_warning(data, tmp_path, kind):
    """The safe format stores no code: a model fitted with a callback (also every flow of a regressor's ensemble, and
    a detector's density) saves with a warning, loads with none, and scores as before."""
    from skflow import FlowRegressor
    from skflow.outlier import FlowOutlierDetector

    X, y = data[:, :1], data[:, 1]
    model = {
        "density": lambda: FlowDensity(callback=log_nothing, **FAST).fit(data),
        "regressor": lambda: FlowRegressor(callback=log_nothing, n_flows=3, max_epochs=2, n_transforms=1).fit(X, y),
        "detector": lambda: FlowOutlierDetector(density=FlowDensity(callback=log_nothing, **FAST)).fit(data),
    }[kind]()
    with pytest.warns(UserWarning, match="the callback is not saved") as caught:
        model.save(tmp_path / "model.skflow")
    assert len([w for w in caught if "callback" in str(w.message)]) == 1 and caught[0].filename == __file__
    restored = type(model).load(tmp_path / "model.skflow")
    assert all(value is None for name, value in restored.get_params().items() if name.endswith("callback"))
    if kind == "regressor":
        assert all(flow.callback is None for flow in restored._members())
        np.testing.assert_array_equal(restored.score_samples(X, y), model.score_samples(X, y))
    else:
        np.testing.assert_array_equal(restored.score_samples(data), model.score_samples(data))


# ---------------------------------------------------------------- hardening

DATA = Path(__file__).parent / "data"


def test_format_version_1_file_still_loads_and_scores_identically():
    """tests/data/flowdensity_v1.skflow was written by format version 1 (script: tests/data/make_v1_model.py)."""
    expected = np.load(DATA / "flowdensity_v1_expected.npz")
    with zipfile.ZipFile(DATA / "flowdensity_v1.skflow") as archive:
        assert json.loads(archive.read(METADATA_MEMBER))["format_version"] == 1
    restored = FlowDensity.load(DATA / "flowdensity_v1.skflow")
    assert restored.bounds == [None, (-1.0, None)] and np.isfinite(restored.low_).sum() == 1
    # Fitted before the mixture base existed: it loads with the standard normal it was fitted with.
    assert restored.base == "normal" and restored.n_components_ == 1
    assert type(restored.flow_.base).__name__ == "StandardNormal"
    np.testing.assert_allclose(
        restored.score_samples(expected["points"]), expected["score_samples"], rtol=0, atol=1e-12
    )
    assert FORMAT_VERSION == 2


def test_failed_save_leaves_the_existing_file_intact(fitted, tmp_path, monkeypatch):
    path = tmp_path / "model.skflow"
    fitted.save(path)
    before = path.read_bytes()
    original = zipfile.ZipFile.writestr
    calls = []

    def fail_midway(self, name, data, *args, **kwargs):
        calls.append(name)
        if len(calls) > 2:
            raise OSError("No space left on device")
        return original(self, name, data, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", fail_midway)
    with pytest.raises(OSError, match="No space left"):
        FlowDensity(**FAST).fit(make_moons(100, random_state=1)[0]).save(path)
    assert len(calls) == 3  # the write really failed midway
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.skflow"]  # no temporary file left
    monkeypatch.undo()
    FlowDensity.load(path)


def _opened_members(monkeypatch):
    """Record every member name ZipFile.open is asked for (reading a member goes through it)."""
    opened = []
    original = zipfile.ZipFile.open

    def spy(self, name, *args, **kwargs):
        opened.append(getattr(name, "filename", name))
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    return opened


def test_archive_listing_is_checked_before_any_member_is_read(fitted, tmp_path, monkeypatch):
    """A small file hiding a 100 MB zero array, or carrying a member that will be refused, is refused unread."""
    fitted.save(tmp_path / "good.skflow")
    bomb = tmp_path / "bomb.skflow"
    with zipfile.ZipFile(tmp_path / "good.skflow") as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            if name != "arrays/0.npy":
                dst.writestr(name, src.read(name))
        with dst.open("arrays/0.npy", "w", force_zip64=True) as member:
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, {"descr": "<f8", "fortran_order": False, "shape": (12_500_000,)}
            )
            member.write(header.getvalue())
            for _ in range(100):
                member.write(bytes(2**20))
    assert bomb.stat().st_size < 2**20
    smuggled = rewrite(tmp_path / "good.skflow", tmp_path / "smuggled.skflow", add={"notes.txt": b"x" * 10_000})
    opened = _opened_members(monkeypatch)
    with pytest.raises(ValueError, match="expands .*-fold .*MAX_COMPRESSION_RATIO"):
        FlowDensity.load(bomb)
    with pytest.raises(ValueError, match=r"unexpected content \(notes.txt\)"):
        FlowDensity.load(smuggled)
    assert opened == []


@pytest.mark.parametrize(
    ("limit", "value", "message"),
    [
        ("MAX_TOTAL_BYTES", 1000, "over MAX_TOTAL_BYTES=1000"),
        ("MAX_MEMBERS", 5, "more than MAX_MEMBERS=5"),
        ("MAX_ARRAY_BYTES", 100, "arrays/.*npy declares .* bytes, over the limit of 100"),
        ("MAX_METADATA_BYTES", 100, "skflow.json declares .* bytes, over the limit of 100"),
    ],
)
def test_each_resource_limit_refuses_a_file_over_it(fitted, tmp_path, monkeypatch, limit, value, message):
    from skflow import _persistence_format

    fitted.save(tmp_path / "model.skflow")
    monkeypatch.setattr(_persistence_format, limit, value)
    opened = _opened_members(monkeypatch)
    with pytest.raises(ValueError, match=message):
        FlowDensity.load(tmp_path / "model.skflow")
    assert opened == []


def test_array_header_declaring_a_huge_shape_is_refused_without_allocating(fitted, tmp_path):
    fitted.save(tmp_path / "good.skflow")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (2**40,)})
    lying = header.getvalue() + bytes(8)
    path = rewrite(tmp_path / "good.skflow", tmp_path / "lying.skflow", replace={"arrays/0.npy": lying})
    with pytest.raises(ValueError, match=r"arrays/0.npy declares shape \(1099511627776,\)"):
        FlowDensity.load(path)


def _edit_flow_config(**changes):
    def edit(meta):
        config = meta["state"]["__dict__"]["flow_"]["__dict__"]["config"]["__dict__"]
        config.update(changes)
        return meta

    return edit


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_transforms": 3000}, r"n_transforms=3000; expected an int in \[1, 512\]"),
        ({"hidden_units": [10**6]}, "hidden_units=.*1000000"),
        ({"hidden_units": [4096, 4096]}, "implies at least .* weights but the file stores"),
        ({"n_features": 5000}, "implies at least .* weights but the file stores"),
    ],
)
def test_oversized_flow_config_is_refused_before_any_flow_is_built(fitted, tmp_path, monkeypatch, changes, message):
    import skflow._core.flow as core_flow

    fitted.save(tmp_path / "good.skflow")
    path = rewrite(tmp_path / "good.skflow", tmp_path / "big.skflow", metadata=_edit_flow_config(**changes))
    built = []
    original = core_flow.build_flow
    monkeypatch.setattr(core_flow, "build_flow", lambda *a, **k: built.append(k) or original(*a, **k))
    with pytest.raises(ValueError, match=message):
        FlowDensity.load(path)
    assert built == []


def _edit_state(**changes):
    def edit(meta):
        state = meta["state"]["__dict__"]
        for name, value in changes.items():
            if value is None:
                del state[name]
            else:
                state[name] = value
        return meta

    return edit


def _nan_weight(path, out):
    with zipfile.ZipFile(path) as archive:
        state = json.loads(archive.read(METADATA_MEMBER))["state"]["__dict__"]
    weights = state["flow_"]["__dict__"]["state_dict"]["__dict__"]
    name = next(k for k in weights if "conditioner" in k and k.endswith("weight"))
    index = weights[name]["__tensor__"]
    array = np.load(io.BytesIO(zipfile.ZipFile(path).read(f"arrays/{index}.npy")))
    array.flat[0] = np.nan
    buffer = io.BytesIO()
    np.save(buffer, array)
    return rewrite(path, out, replace={f"arrays/{index}.npy": buffer.getvalue()}), name


def test_corrupt_or_inconsistent_state_is_refused_naming_the_problem(fitted, tmp_path):
    fitted.save(tmp_path / "good.skflow")
    path, name = _nan_weight(tmp_path / "good.skflow", tmp_path / "nan.skflow")
    with pytest.raises(ValueError, match=rf"weight '{name}' holds 1 non-finite value"):
        FlowDensity.load(path)
    cases = {
        "missing": (_edit_state(scale_=None), r"lacks fitted attribute\(s\) \['scale_'\]"),
        "features": (
            _edit_state(n_features_in_=3),
            "fitted attribute flow_ is a Flow; expected flow .*n_features_in_=3",
        ),
        "meta": (_edit_state(device_="meta"), "device_='meta' is not a device skflow runs on"),
        "junk_device": (_edit_state(device_="warp:9"), "device_='warp:9' is not a device"),
        "type": (_edit_state(n_iter_="many"), "fitted attribute n_iter_ is a str; expected int"),
        "param": (_edit_state(n_bins=-3), "invalid parameter: The 'n_bins' parameter"),
        "no_param": (_edit_state(tol=None), r"lacks parameter\(s\) \['tol'\]"),
        "array_ref": (_edit_state(scale_={"__ndarray__": 10**6}), "array reference 1000000 is not one of"),
        "bins": (_edit_state(n_bins_=fitted.n_bins_ + 1), "n_bins_=.* disagrees with the fitted flow"),
        "kind": (_edit_state(flow_kind_="affine"), "flow_kind_='affine' disagrees with the fitted flow"),
        "width": (
            _edit_state(hidden_units_={"__tuple__": [7]}),
            r"hidden_units_=\(7,\) disagrees with the fitted flow, built with hidden_units=",
        ),
    }
    for label, (edit, message) in cases.items():
        path = rewrite(tmp_path / "good.skflow", tmp_path / f"{label}.skflow", metadata=edit)
        with pytest.raises(ValueError, match=message):
            FlowDensity.load(path)


def _mutations(good: bytes, rng: np.random.RandomState):
    """Damaged versions of a valid file: truncated, bytes flipped, JSON fields edited, deeply nested."""
    for size in sorted(set(rng.randint(0, len(good), 40))):
        yield good[:size]
    for _ in range(60):
        damaged = bytearray(good)
        for position in rng.randint(0, len(good), rng.randint(1, 4)):
            damaged[position] ^= 1 << rng.randint(8)
        yield bytes(damaged)
    with zipfile.ZipFile(io.BytesIO(good)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    metadata = json.loads(members[METADATA_MEMBER])
    junk = [None, "x", -1, 2**70, 1.5, [], {}, {"__ndarray__": 0}, {"__tuple__": 3}, {"__float__": "boom"}]
    edits = [("state", "__dict__", name) for name in metadata["state"]["__dict__"]]
    edits += [("state", "__dict__", "flow_", "__dict__", "config", "__dict__", key) for key in ("n_features", "seed")]
    edits += [("n_arrays",), ("format_version",), ("class",), ("versions",), ("state",)]
    for path in edits:
        for value in junk:
            edited = json.loads(members[METADATA_MEMBER])
            target = edited
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
            yield _zip({**members, METADATA_MEMBER: json.dumps(edited).encode()})
    deep_json = b"[" * 200_000 + b"]" * 200_000
    yield _zip({**members, METADATA_MEMBER: deep_json})
    deep_state = json.loads(members[METADATA_MEMBER])
    deep_state["state"]["__dict__"]["bounds"] = "DEEP"
    nested = '{"__tuple__": [' * 5000 + "0" + "]}" * 5000  # valid JSON, too deep for a recursive decoder
    yield _zip({**members, METADATA_MEMBER: json.dumps(deep_state).replace('"DEEP"', nested).encode()})


def _zip(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_fuzzed_files_raise_only_value_or_os_errors(tmp_path):
    est = FlowDensity(n_transforms=1, hidden_units=(4,), n_bins=4, max_epochs=1, random_state=0)
    buffer = io.BytesIO()
    est.fit(make_moons(60, random_state=0)[0]).save(buffer)
    refused = loaded = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for damaged in _mutations(buffer.getvalue(), np.random.RandomState(0)):
            try:
                FlowDensity.load(io.BytesIO(damaged))
            except (ValueError, OSError):
                refused += 1
            else:
                loaded += 1
    assert refused > 300, (refused, loaded)
