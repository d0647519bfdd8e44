"""What the regression experiments share: their command line of sets and split numbers, and their JSON lines."""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from ..regression import Settings, Split, splits_of

# The layers of the regressor's default before the twenty-fifth session, when flow="auto" became each flow's
# choice between splines and mixture-CDF layers (on 40 to 5,000 rows): the experiments that study the boosted
# trees' choice were measured, and rebuild their ensembles from the trainings they record, with splines alone.
SPLINES_ONLY = {"flow": "spline"}


def split_parser(description: str) -> argparse.ArgumentParser:
    """``--sets``, ``--splits`` (numbers), ``--data-dir`` and ``--out``; the caller adds its own options."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", required=True)
    parser.add_argument("--splits", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--data-dir", default=Settings.data_dir)
    parser.add_argument("--out", type=Path, required=True)
    return parser


def numbered_splits(args: argparse.Namespace) -> Iterator[tuple[str, Split]]:
    """Each set's splits (or synthetic draws) whose numbers are in ``args.splits``."""
    for name in args.sets:
        settings = Settings(data_dir=args.data_dir, first_split=min(args.splits), max_splits=max(args.splits) + 1)
        for split in splits_of(name, settings):
            if split.index in args.splits:
                yield name, split


def append_record(path: Path, record: dict) -> None:
    """One JSON line added to ``path``, and printed."""
    with path.open("a") as file:
        file.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def with_edited_flows(reg, edit: Callable[[object], None]):
    """A copy of the fitted ``FlowRegressor`` ``reg`` whose flows are copies, each changed in place by ``edit``
    (``reg`` and its flows unchanged): the same fit, rescored with something changed after it."""
    members = [copy.copy(member) for member in reg._members()]
    for member in members:
        edit(member)
    model = copy.copy(members[0])
    model.ensemble_ = members[1:]
    return model
