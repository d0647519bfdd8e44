"""The speed benchmark's quick mode runs end to end (it asserts nothing about speed)."""

import json

import pytest

pytest.importorskip("zuko")

from benchmarks import speed  # noqa: E402


def test_quick_mode_writes_every_measurement(tmp_path):
    out = tmp_path / "speed.json"
    results = speed.main(["--quick", "--out", str(out), "--skip", "memory"])
    saved = json.loads(out.read_text())
    assert saved["mode"] == "quick" and saved["machine"]["torch_threads"] == 1
    (train,) = saved["train"]
    assert set(train["samples_per_s"]) == {"skflow", "skflow_permutation", "zuko_coupling", "zuko_autoregressive"}
    assert set(train["speedup"]) >= {"skflow_permutation/zuko_coupling", "skflow/zuko_autoregressive"}
    assert all(rate > 0 for rate in train["samples_per_s"].values())
    assert saved["sample"]["speedup"] > 0 and saved["score"]["speedup"] > 0
    assert results["score"]["n_train_rows"] == speed.Sizes.for_mode(True).score_train_rows


def test_memory_child_measures_peak_growth_of_each_call():
    result = speed._memory_child(n_rows=3000, n_features=3)
    if "error" in result:
        pytest.skip(result["error"])
    assert set(result["calls"]) == {"score_samples", "transform", "sample"}
    for call in result["calls"].values():
        # The kernel's peak-RSS reset is approximate (pages can be freed in between), so
        # small negative growth is possible: only check that a reading was taken.
        assert isinstance(call["peak_growth_bytes"], int) and call["output_bytes"] > 0


def test_step_profile_runs_end_to_end_on_a_small_flow(tmp_path):
    """The step breakdown reaches into the trainer (its flat buffers): a change there must not break it."""
    from benchmarks import step_profile

    out = tmp_path / "step.json"
    args = ["--features", "4", "--hidden", "8", "--steps", "2", "--repeats", "1", "--out", str(out)]
    result = step_profile.main(args)
    saved = json.loads(out.read_text())
    assert saved["ms_per_step"] == result["ms_per_step"] and result["ms_per_step"]
    assert all(ms > 0 for ms in result["step_ms_versus_zuko"].values())


def test_parallel_benchmarks_torch_optim_child_swaps_the_optimizer_and_fits_identically():
    """The child that compares torch.optim.AdamW with skflow's fused AdamW replaces the trainer's optimizer
    factory: a change of that factory's signature or of the trainer's param groups must not break it."""
    from benchmarks import parallel
    from skflow._core import train

    factory = train.make_adamw
    result = parallel._child_first_fit(200, torch_optim=True, profile=False)
    assert result["identical_to_skflow_adamw"] is True
    assert train.make_adamw is factory
    assert result["first_fit"]["wall_s"] > 0 and result["second_fit"]["wall_s"] > 0
