"""The streaming benchmark's quick mode runs end to end (it asserts nothing about quality)."""

import json

from benchmarks import streaming


def test_quick_mode_compares_fit_and_stream(tmp_path):
    out = tmp_path / "streaming.json"
    results = streaming.main(["--quick", "--out", str(out)])
    (run,) = json.loads(out.read_text())["runs"]
    assert len(run["stream_score_after_each_pass"]) == results["passes"] == 2
    assert run["gap_per_dimension"] == (run["fit_score"] - run["stream_score"]) / results["n_features"]
