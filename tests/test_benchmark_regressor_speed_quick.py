"""The regressor speed benchmark's quick mode runs end to end (it asserts nothing about speed)."""

import json

from benchmarks import regressor_speed


def test_quick_mode_times_every_method_of_both_layer_kinds(tmp_path):
    out = tmp_path / "regressor_speed.json"
    regressor_speed.main(["--quick", "--pytorch-too", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert [result["flow"] for result in saved["results"]] == ["spline", "spline", "mixture_cdf", "mixture_cdf"]
    assert [result["code"] for result in saved["results"]][1::2] == ["pytorch", "pytorch"]
    for result in saved["results"]:
        assert set(result["seconds"]) == {"predict", "quantiles_199", "interval_90", "sample_20", "score_samples"}
        assert all(seconds > 0 for seconds in result["seconds"].values())
