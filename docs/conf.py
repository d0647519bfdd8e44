"""Sphinx configuration for the skflow documentation.

Build (as CI does): ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.

The gallery examples are not executed by default: each one saves its figures
under ``docs/_static`` when run, those figures are committed, and this file
inserts them into the example pages. Set ``SKFLOW_DOCS_RUN_EXAMPLES=1`` to run
every example during the build instead (several minutes on two cores), or to a
regular expression to run only the matching examples (``=latent``).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import skflow  # noqa: E402

project = "skflow"
author = "the skflow developers"
copyright = "the skflow developers"
version = release = skflow.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints", "auto_examples/*.py"]
templates_path = ["_templates"]

# MyST: $...$ and $$...$$ math, ::: fences, and heading anchors for cross-page links.
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# API reference: one page per public object, generated from the numpydoc docstrings.
autosummary_generate = True
autodoc_default_options = {"inherited-members": False}
autodoc_typehints = "none"
# Methods are listed by the class template (_templates/class.rst), not by numpydoc.
numpydoc_show_class_members = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# Links to the NumPy, scikit-learn and PyTorch docs need their inventories from
# the network; the default build is offline (references to them render as plain
# code). SKFLOW_DOCS_INTERSPHINX=1 turns the links on.
if os.environ.get("SKFLOW_DOCS_INTERSPHINX", "0") not in ("", "0", "false", "False"):
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "torch": ("https://docs.pytorch.org/docs/stable", None),
    }

# SKFLOW_DOCS_RUN_EXAMPLES: unset or 0 runs no example; 1 runs them all; any
# other value is a regular expression on the example's path (e.g. "latent").
_run_setting = os.environ.get("SKFLOW_DOCS_RUN_EXAMPLES", "0")
if _run_setting in ("", "0", "false", "False"):
    run_pattern = None
elif _run_setting in ("1", "true", "True", "all"):
    run_pattern = r"/plot_"
else:
    run_pattern = _run_setting


def _is_executed(example_name: str) -> bool:
    return run_pattern is not None and re.search(run_pattern, "/" + example_name) is not None


sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": run_pattern or r"/plot_",
    "plot_gallery": "False" if run_pattern is None else "True",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "show_memory": False,
    "show_signature": False,
    # "Examples using X" galleries on the API pages (the minigallery in _templates/class.rst).
    "doc_module": ("skflow",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"skflow": None},
}

html_theme = "pydata_sphinx_theme"
html_title = f"skflow {version}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False

# ---------------------------------------------------------------- committed example figures

FIGURE_NAME = re.compile(r"""["']([\w.-]+\.png)["']""")
GENERATED_BLOCK = re.compile(r"^\.\. GENERATED FROM PYTHON SOURCE LINES", flags=re.M)


def _committed_figure(name: str) -> str | None:
    """Path of a committed figure under docs/_static, as Sphinx resolves it ("/_static/...")."""
    matches = sorted((DOCS / "_static").rglob(name))
    return "/" + matches[0].relative_to(DOCS).as_posix() if matches else None


def _insert_committed_figures(app, docname: str, source: list[str]) -> None:
    """Show an example's committed figures on its page when the build does not run it.

    Each figure goes right after the code block that saves it (where
    sphinx-gallery would put it when running the example).
    """
    if not docname.startswith("auto_examples/plot_") or _is_executed(docname.split("/", 1)[1] + ".py"):
        return
    text = source[0]
    starts = [m.start() for m in GENERATED_BLOCK.finditer(text)] + [len(text)]
    blocks = [text[: starts[0]]] + [text[a:b] for a, b in zip(starts, starts[1:])]
    for i, block in enumerate(blocks):
        if ".. code-block::" not in block:
            continue
        for name in FIGURE_NAME.findall(block):
            figure = _committed_figure(name)
            if figure is not None:
                blocks[i] += f"\n.. image:: {figure}\n   :alt: {name}\n   :width: 100%\n\n"
    source[0] = "".join(blocks)


def _skip_metadata_request_methods(app, what, name, obj, skip, options):
    """Leave out the ``set_*_request`` methods scikit-learn generates for metadata routing."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


PARAMETER_LINE = re.compile(r"^(\s*[\w, *]+ : )(.+)$")
TRAILING_UNDERSCORE_NAME = re.compile(r"(?<![`\w])(\w+_)(?![`\w])")


def _literal_attribute_names_in_types(app, what, name, obj, options, lines):
    """Quote names like ``n_features_in_`` in "name : type" lines.

    In reStructuredText a bare ``word_`` is a link to a target called "word";
    scikit-learn's docstrings write ``ndarray of shape (`n_features_in_`,)`` for
    that reason. Runs before numpydoc.
    """
    for i, line in enumerate(lines):
        match = PARAMETER_LINE.match(line)
        if match:
            lines[i] = match.group(1) + TRAILING_UNDERSCORE_NAME.sub(r"``\1``", match.group(2))


def setup(app):
    app.connect("autodoc-process-docstring", _literal_attribute_names_in_types, priority=400)
    app.connect("source-read", _insert_committed_figures)
    app.connect("autodoc-skip-member", _skip_metadata_request_methods)
