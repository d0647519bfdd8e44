"""Reading and writing the data files of the command line: CSV, TSV and Parquet tables, through pandas."""

from __future__ import annotations

import sys
from pathlib import Path

READ_FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
WRITE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
COMPRESSION_SUFFIXES = {".gz", ".bz2", ".xz", ".zip", ".zst"}


class CLIError(Exception):
    """An error to report as one line, without a traceback."""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _pandas():
    try:
        import pandas
    except ImportError:
        raise CLIError(
            'reading and writing data files needs pandas: pip install "skflow[pandas]" (or pandas pyarrow)'
        ) from None
    return pandas


def _file_format(path: str, formats: dict[str, str]) -> str:
    suffixes = [s.lower() for s in Path(path).suffixes]
    while suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        suffixes.pop()
    suffix = suffixes[-1] if suffixes else ""
    if suffix not in formats:
        known = ", ".join(sorted(set(formats)))
        raise CLIError(f"{path}: unknown file type {suffix or '(no extension)'!r}; use one of {known}")
    return formats[suffix]


def read_table(path: str):
    """Read a CSV/TSV/Parquet file with a header row into a DataFrame, or raise CLIError saying why not."""
    pd = _pandas()
    kind = _file_format(path, READ_FORMATS)
    file = Path(path)
    if not file.exists():
        raise CLIError(f"{path}: no such file")
    if file.is_dir():
        raise CLIError(f"{path}: is a directory, not a data file")
    try:
        if kind == "parquet":
            frame = pd.read_parquet(file)
        else:
            frame = pd.read_csv(file, sep="\t" if kind == "tsv" else ",")
    except ImportError as exc:
        raise CLIError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow ({exc})") from None
    except pd.errors.EmptyDataError:
        raise CLIError(f"{path}: the file is empty") from None
    except UnicodeDecodeError:
        raise CLIError(f"{path}: not a text {kind.upper()} file (binary content?)") from None
    except pd.errors.ParserError as exc:
        raise CLIError(f"{path}: not a valid {kind.upper()} file: {_one_line(exc)}") from None
    except PermissionError:
        raise CLIError(f"{path}: permission denied") from None
    except Exception as exc:  # pyarrow's errors for corrupt Parquet files have no common public base class
        raise CLIError(f"{path}: could not be read as {kind.upper()}: {_one_line(exc)}") from None
    if frame.shape[1] == 0:
        raise CLIError(f"{path}: no columns")
    if frame.shape[0] == 0:
        raise CLIError(f"{path}: a header but no data rows")
    frame.columns = [str(c) for c in frame.columns]
    if kind != "parquet" and all(_looks_numeric(c) for c in frame.columns):
        raise CLIError(
            f"{path}: the first line holds numbers, not column names; add a header row (e.g. x0,x1,...) "
            "so that columns can be matched by name"
        )
    return frame


def _looks_numeric(name: str) -> bool:
    try:
        float(name.split(".")[0] if name.count(".") > 1 else name)  # pandas renames a repeated "1.5" to "1.5.1"
    except ValueError:
        return False
    return True


def _check_numeric(frame, path: str):
    """The frame as float64, or CLIError naming non-numeric columns, missing or infinite values."""
    import numpy as np

    pd = _pandas()
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        column = frame[bad[0]]
        not_numbers = np.flatnonzero(pd.to_numeric(column, errors="coerce").isna() & column.notna())
        row = int(not_numbers[0]) if len(not_numbers) else 0
        names = ", ".join(repr(c) for c in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise CLIError(
            f"{path}: non-numeric column(s) {names} (e.g. {column.iloc[row]!r} in data row {row + 1}); "
            "FlowDensity models numeric columns only: drop or encode them, or choose columns with --columns"
        )
    values = frame.to_numpy(dtype=np.float64, na_value=np.nan)  # na_value: pandas' nullable Int64/Float64 columns
    for problem, mask in (("missing", np.isnan(values)), ("infinite", np.isinf(values))):
        if mask.any():
            rows, cols = np.nonzero(mask)
            raise CLIError(
                f"{path}: column {frame.columns[cols[0]]!r} has {problem} values ({int(mask.any(axis=1).sum())} "
                f"row(s), first in data row {rows[0] + 1}); drop or impute them first"
            )
    # A fresh C-ordered, writable copy: column selection can leave pandas' view with negative strides or read-only,
    # which torch.from_numpy rejects.
    return pd.DataFrame(np.array(values, dtype=np.float64, order="C"), columns=frame.columns)


def _select_columns(frame, columns: list[str], path: str, what: str):
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        raise CLIError(f"{path}: no column(s) {names} {what}; the file has {', '.join(map(repr, frame.columns))}")
    return frame[columns]


def _check_output_path(path: str | None) -> None:
    """Fail before the work, not after, when the result could not be written."""
    if path is None or path == "-":
        return
    _file_format(path, WRITE_FORMATS)
    _check_writable(path)


def _check_writable(path: str) -> None:
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise CLIError(f"{path}: directory {str(parent)!r} does not exist")
    if Path(path).is_dir():
        raise CLIError(f"{path}: is a directory")


def write_table(frame, path: str | None) -> None:
    """Write a DataFrame as CSV/TSV/Parquet by extension, or as CSV to stdout for None or "-"."""
    if path is None or path == "-":
        frame.to_csv(sys.stdout, index=False)
        sys.stdout.flush()
        return
    kind = _file_format(path, WRITE_FORMATS)
    try:
        if kind == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False, sep="\t" if kind == "tsv" else ",")
    except ImportError as exc:
        raise CLIError(f"{path}: writing Parquet needs pyarrow: pip install pyarrow ({exc})") from None
