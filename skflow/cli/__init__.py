"""The ``skflow`` command line: fit, score and sample FlowDensity models on CSV/Parquet files (fit, score and predict
FlowRegressors with ``--target``), and the demo.

Run ``skflow --help`` (or ``python -m skflow --help``) for the commands and examples. Every error is reported as one
line on stderr with a non-zero exit status; set the environment variable ``SKFLOW_DEBUG=1`` to see tracebacks.

The parts: :mod:`~skflow.cli.app` (``main``: run a command, report errors), :mod:`~skflow.cli.parser` (the
arguments), :mod:`~skflow.cli.commands` (fit, score, predict, sample, demo), :mod:`~skflow.cli.regression` (the
regressor's columns and predictions), :mod:`~skflow.cli.options` (FlowDensity's parameters as options),
:mod:`~skflow.cli.tables` (data files), :mod:`~skflow.cli.errors` and :mod:`~skflow.cli.demo`.
"""

from .app import main

__all__ = ["main"]
