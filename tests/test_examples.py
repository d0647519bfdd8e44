"""Smoke tests for the examples, the README snippet and the docs' doctests.

The examples are run with FlowDensity's and FlowRegressor's training cut to two epochs (FlowRegressor's
n_flows="auto" fitting two flows) and
FlowDensity's starting mixture chosen among a few candidates (the figures would be meaningless, the
code paths are the same) from a copy in a
temporary folder, so the committed figures under docs/_static are left alone.
Each must save the figures the docs show.
"""

from __future__ import annotations

import doctest
import re
import runpy
import shutil
import warnings
from pathlib import Path

import pytest

from skflow import FlowDensity, FlowRegressor

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
STATIC = ROOT / "docs" / "_static"

pytest.importorskip("matplotlib")
pytest.importorskip("pandas")


def _two_epochs(fit):
    def quick_fit(self, *args, **kwargs):
        given = self.get_params(deep=False)
        quick = {"max_epochs": 2 if given["max_epochs"] == "auto" else min(given["max_epochs"], 2)}
        if given.get("n_flows") == "auto":  # two flows still take the ensemble's code paths
            quick["n_flows"] = 2
        self.set_params(**quick)
        try:
            return fit(self, *args, **kwargs)
        finally:
            self.set_params(**{name: given[name] for name in quick})

    return quick_fit


@pytest.fixture
def quick_fits(monkeypatch):
    """Cap max_epochs at 2 for every FlowDensity and FlowRegressor fit, including clones made by GridSearchCV,
    fit FlowRegressor's n_flows="auto" as two flows, and let FlowDensity's starting mixture choose among 1, 2
    or 4 components and one variance floor (the full search took most of the examples' time)."""
    from skflow import _mixture_init

    for estimator in (FlowDensity, FlowRegressor):
        monkeypatch.setattr(estimator, "fit", _two_epochs(estimator.fit))
    monkeypatch.setattr(_mixture_init, "CANDIDATE_COMPONENTS", (1, 2, 4))
    monkeypatch.setattr(_mixture_init, "SMALL_DATA_REG_COVARS", (1e-2,))


@pytest.fixture
def agg_backend():
    import matplotlib
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend()
    matplotlib.use("Agg")
    yield
    plt.close("all")
    matplotlib.use(backend)


def test_examples_are_gallery_scripts():
    assert EXAMPLES, "no examples found"
    for example in EXAMPLES:
        text = example.read_text(encoding="utf-8")
        # sphinx-gallery needs a docstring that opens with an underlined title.
        assert re.match(r'"""\n=+\n.+\n=+\n', text), f"{example.name}: no sphinx-gallery title"
        assert re.search(r"\.png[\"']", text), f"{example.name}: saves no figure"


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_example_runs_and_saves_committed_figures(example, tmp_path, quick_fits, agg_backend, monkeypatch):
    copy = tmp_path / "examples" / example.name
    copy.parent.mkdir()
    shutil.copy(example, copy)
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two-epoch fits warn that they stopped early
        runpy.run_path(str(copy), run_name="__main__")
    saved = sorted(p.name for p in tmp_path.rglob("*.png"))
    assert saved, f"{example.name} saved no figure"
    committed = {p.name for p in STATIC.rglob("*.png")}
    missing = [name for name in saved if name not in committed]
    assert not missing, f"{example.name}: figure(s) {missing} are not committed under docs/_static"


def test_readme_example_runs(quick_fits):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", readme, flags=re.S).group(1)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["X_new"].shape == (1000, 2)
    assert namespace["Z"].shape == namespace["X_test"].shape


DOCTEST_PAGES = [p for p in sorted((ROOT / "docs").rglob("*.md")) if ">>>" in p.read_text(encoding="utf-8")]


@pytest.mark.parametrize("page", DOCTEST_PAGES, ids=lambda p: p.name)
def test_docs_doctests(page):
    result = doctest.testfile(str(page), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
