"""The estimators' parameters as command-line options, from their ``_parameter_constraints`` and docstrings."""

from __future__ import annotations

import argparse
import inspect
import re
from numbers import Integral, Real
from typing import Any

from .._validation import Interval, StrOptions
from ..density import FlowDensity
from ..regressor import FlowRegressor

# Metavars clearer than the ones derived from the parameter constraints.
METAVARS = {"hidden_units": "auto|INT,INT,...", "bounds": "none|LOW,HIGH[;LOW,HIGH...]", "device": "auto|cpu|cuda[:N]"}

# Options whose CLI default differs from FlowDensity's: a command-line fit shows its progress.
CLI_DEFAULTS = {"verbose": 1}


def _parameter_docs(estimator: type = FlowDensity) -> dict[str, str]:
    """Parameter descriptions from an estimator's numpydoc docstring, one line each."""
    doc = inspect.cleandoc(estimator.__doc__ or "")
    section = re.search(r"^Parameters\n-+\n(.*?)(?:^\S[^\n]*\n-+\n|\Z)", doc, flags=re.M | re.S)
    docs: dict[str, str] = {}
    if section is None:
        return docs
    name = None
    for line in section.group(1).splitlines():
        header = re.match(r"^(\w+) :", line)
        if header:
            name = header.group(1)
            docs[name] = ""
        elif name is not None and line.strip():
            docs[name] = f"{docs[name]} {line.strip()}".strip()
    # reST markup reads poorly in a terminal: ``x`` -> x, :meth:`a.b` -> a.b
    return {
        name: re.sub(r"``(.*?)``|:\w+:`(.*?)`", lambda m: m.group(1) or m.group(2), text) for name, text in docs.items()
    }


_BOOLEANS = {"true": True, "yes": True, "1": True, "on": True, "false": False, "no": False, "0": False, "off": False}


def _parse_number(text: str) -> int | float | None:
    text = text.strip()
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)  # raises ValueError when not a number


def _parse_sequence(text: str) -> tuple:
    """A tuple from commas, nested by semicolons: 64,64 -> (64, 64); 0,1;none,5 -> ((0, 1), (None, 5))."""
    if ";" in text:
        return tuple(_parse_sequence(part) for part in text.split(";"))
    return tuple(_parse_number(item) for item in text.split(",") if item.strip())


def _describe(constraints: list) -> str:
    """Metavar for an option, from FlowDensity's parameter constraints."""
    parts = []
    words = sorted({word for c in constraints if isinstance(c, StrOptions) for word in c.options})
    for constraint in constraints:
        if isinstance(constraint, StrOptions):
            parts.append("|".join(words))  # every estimator's words at once (--base)
        elif _integral(constraint):
            parts.append("INT")
        elif _real(constraint):
            parts.append("FLOAT")
        elif constraint == "boolean":
            parts.append("true|false")
        elif constraint in ("random_state", "verbose"):
            parts.append("INT")
        elif constraint == "array-like":
            parts.append("V,V,...")
        elif constraint is None:
            parts.append("none")
        elif constraint is str:
            parts.append("TEXT")
    return "|".join(dict.fromkeys(parts)) or "VALUE"


def _integral(constraint) -> bool:
    """Whether ``constraint`` takes integers: an Integral interval, or the bare type (``[None, Integral]``)."""
    return constraint in (Integral, int) or (isinstance(constraint, Interval) and constraint.type is Integral)


def _real(constraint) -> bool:
    """Whether ``constraint`` takes real numbers: a Real interval, or the bare type ``Real``."""
    return constraint in (Real, float) or (
        isinstance(constraint, Interval) and constraint.type in (Real, "real_not_int")
    )


def _value_parser(constraints: list, metavar: str):
    """A converter from option text to the Python value that satisfies one of a parameter's ``constraints``.

    Ranges are left to FlowDensity's own parameter validation, whose message names the problem.
    """

    def parse(text: str) -> Any:
        word = text.strip().lower()
        for constraint in constraints:
            try:
                if isinstance(constraint, StrOptions) and text.strip() in constraint.options:
                    return text.strip()
                if constraint is None and word == "none":
                    return None
                if constraint == "boolean" and word in _BOOLEANS:
                    return _BOOLEANS[word]
                if constraint == "random_state":
                    return None if word == "none" else int(word)
                if constraint == "verbose" or _integral(constraint):
                    return int(word)
                if _real(constraint):
                    return float(word)
                if constraint == "array-like":
                    return _parse_sequence(text)
                if constraint is str:
                    return text.strip()
            except ValueError:
                continue
        raise argparse.ArgumentTypeError(f"expected {metavar}, got {text!r}")

    return parse


def add_parameter_options(parser: argparse.ArgumentParser) -> None:
    """Add one option per FlowDensity parameter, and per FlowRegressor parameter that FlowDensity lacks
    (valid with ``--target`` only), to ``parser``, with its docstring, metavar and default.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The ``skflow fit`` parser; each option stores its parsed value as ``param_<name>``.
    """
    density = _keyword_defaults(FlowDensity) | CLI_DEFAULTS
    # A shared parameter with other values for the regressor (--base): the option takes both estimators'.
    regressor_values = {
        name: constraints
        for name, constraints in FlowRegressor._parameter_constraints.items()
        if name in density and constraints != FlowDensity._parameter_constraints.get(name)
    }
    _add_group(parser, "FlowDensity parameters (see the FlowDensity docstring)", FlowDensity, density, regressor_values)
    regressor = _keyword_defaults(FlowRegressor)
    regressor_only = {name: regressor[name] for name in regressor_only_parameters()}
    _add_group(parser, "FlowRegressor parameters (with --target; see its docstring)", FlowRegressor, regressor_only)


def regressor_only_parameters() -> list[str]:
    """The FlowRegressor parameters that FlowDensity does not have (options valid only with --target)."""
    density = _keyword_defaults(FlowDensity)
    return [name for name in _keyword_defaults(FlowRegressor) if name not in density]


def _keyword_defaults(estimator: type) -> dict[str, Any]:
    # In the signature's order, which groups related parameters, rather than get_params' alphabetical one.
    signature = inspect.signature(estimator.__init__).parameters
    return {name: p.default for name, p in signature.items() if p.kind is p.KEYWORD_ONLY}


def _add_group(
    parser: argparse.ArgumentParser,
    title: str,
    estimator: type,
    defaults: dict[str, Any],
    regressor_values: dict[str, list] | None = None,
) -> None:
    group = parser.add_argument_group(title)
    docs = _parameter_docs(estimator)
    regressor_values = regressor_values or {}
    for name, default in defaults.items():
        constraints = [*estimator._parameter_constraints.get(name, [str]), *regressor_values.get(name, [])]
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        text = docs.get(name, "").replace("%", "%%")
        if name in regressor_values:
            text += f" With --target: {_parameter_docs(FlowRegressor).get(name, '')}".replace("%", "%%")
        metavar = METAVARS.get(name, _describe(constraints))
        group.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"param_{name}",
            metavar=metavar,
            type=_value_parser(constraints, metavar),
            default=argparse.SUPPRESS,
            help=f"{text} [default: {shown}]",
        )
