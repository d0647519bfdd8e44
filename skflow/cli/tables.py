"""Reading and writing the data files of the command line: CSV, TSV and Parquet tables, through pandas."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .errors import CLIError, one_line

READ_FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
WRITE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
COMPRESSION_SUFFIXES = {".gz", ".bz2", ".xz", ".zip", ".zst"}


def pandas_module():
    """pandas, or CLIError saying how to install it (it is an optional dependency of skflow)."""
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


def _names(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _repeated(names: list[str]) -> list[str]:
    seen: set[str] = set()
    return list(dict.fromkeys(n for n in names if n in seen or seen.add(n)))


NUMERIC_HEADER_HINT = (
    "if these numbers are the column names (years, say), name the columns to use with --columns "
    "(e.g. --columns {example})"
)


def read_table(path: str, names: Iterable[str] = (), numeric_header_hint: str = NUMERIC_HEADER_HINT):
    """Read a CSV/TSV/Parquet file with a header row into a DataFrame, or raise CLIError saying why not.

    A first line of numbers only (``1.5,2,7``) is taken for data without a header and refused, unless it holds one
    of ``names``, the columns the command was asked for (``--columns``, ``--target``, a model's columns): then it is
    a header of numeric names (``2019,2020,2021``). ``numeric_header_hint`` ends the refusal: how to say so
    (``{example}`` in it: the first names, comma-separated).

    A first column without a name (``,a,b``) that holds row labels, as ``DataFrame.to_csv`` writes its index by
    default, is dropped with a note on stderr; any other column without a name is an error.
    """
    pd = pandas_module()
    kind = _file_format(path, READ_FORMATS)
    file = Path(path)
    if not file.exists():
        raise CLIError(f"{path}: no such file")
    if file.is_dir():
        raise CLIError(f"{path}: is a directory, not a data file")
    sep = "\t" if kind == "tsv" else ","
    try:
        if kind == "parquet":
            frame = pd.read_parquet(file)
            header = [str(c) for c in frame.columns]
        else:
            frame = pd.read_csv(file, sep=sep)
            # pandas silently renames a repeated header name ("a,a" -> a, a.1) and an empty one ("Unnamed: 2");
            # the raw header shows them.
            raw = pd.read_csv(file, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False)
            header = list(raw.iloc[0])
    except ImportError as exc:
        raise CLIError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow ({exc})") from None
    except pd.errors.EmptyDataError:
        raise CLIError(f"{path}: the file is empty") from None
    except UnicodeDecodeError as exc:
        # No byte position: pandas decodes in chunks, so the error's offset is within a chunk, not the file.
        raise CLIError(
            f"{path}: not UTF-8 text ({exc.reason}): a binary file, or text in another encoding such as "
            f"Latin-1; save it as UTF-8 {kind.upper()} (e.g. iconv -f latin1 -t utf-8 in.csv > out.csv)"
        ) from None
    except pd.errors.ParserError as exc:
        raise CLIError(f"{path}: not a valid {kind.upper()} file: {one_line(exc)}") from None
    except PermissionError:
        raise CLIError(f"{path}: permission denied") from None
    except Exception as exc:  # pyarrow's errors for corrupt Parquet files have no common public base class
        raise CLIError(f"{path}: could not be read as {kind.upper()}: {one_line(exc)}") from None
    if frame.shape[1] == 0:
        raise CLIError(f"{path}: no columns")
    if frame.shape[0] == 0:
        raise CLIError(f"{path}: a header but no data rows")
    frame.columns = [str(c) for c in frame.columns]
    numeric = all(_looks_numeric(c) for c in frame.columns)
    if kind != "parquet" and numeric and not set(names) & set(frame.columns):
        example = ",".join(frame.columns[:3]) + (",..." if frame.shape[1] > 3 else "")
        raise CLIError(
            f"{path}: the first line holds numbers, not column names; add a header row (e.g. x0,x1,...) "
            f"so that columns can be matched by name; {numeric_header_hint.format(example=example)}"
        )
    repeated = _repeated([name for name in header if name.strip()])
    if repeated:
        raise CLIError(f"{path}: the header repeats the column name(s) {_names(repeated)}; give each column its own")
    return _without_row_labels(frame, header, path)


def _without_row_labels(frame, header: list[str], path: str):
    """``frame`` without its first column where that has no name and holds row labels (a written index), with a
    note on stderr; CLIError for any other column without a name."""
    n_columns = frame.shape[1]
    unnamed = [j for j, name in enumerate(header[:n_columns]) if not name.strip()]
    if not unnamed:
        return frame
    position = next((j for j in unnamed if j > 0), 0)
    if position > 0:
        at_end = " (a separator at the end of the header line?)" if position == n_columns - 1 else ""
        raise CLIError(
            f"{path}: column {position + 1} of {n_columns} has no name in the header{at_end}; "
            "give every column a name in the header row"
        )
    labels = frame.iloc[:, 0]
    if n_columns == 1 or not _looks_like_row_labels(labels):
        raise CLIError(
            f"{path}: the first column has no name in the header (and its values are not row labels, such as "
            "the index DataFrame.to_csv writes); name it in the header row, or remove it"
        )
    shown = ", ".join(map(str, labels.iloc[:3])) + (", ..." if len(labels) > 3 else "")
    print(
        f"skflow: note: {path}: the first column has no name and holds row labels ({shown}), as DataFrame.to_csv "
        "writes its index: not used as data (write the file with index=False to leave it out)",
        file=sys.stderr,
        flush=True,
    )
    return frame.iloc[:, 1:]


def _looks_like_row_labels(column) -> bool:
    """Whether a column holds row labels: distinct integers (0, 1, 2, ... or a subset's) or distinct texts."""
    pd = pandas_module()
    integers = pd.api.types.is_integer_dtype(column)
    texts = not pd.api.types.is_numeric_dtype(column)  # bool counts as numeric
    return (integers or texts) and column.notna().all() and column.is_unique


def _looks_numeric(name: str) -> bool:
    try:
        float(name.split(".")[0] if name.count(".") > 1 else name)  # pandas renames a repeated "1.5" to "1.5.1"
    except ValueError:
        return False
    return True


def check_numeric(frame, path: str, hint: str = "drop or encode them, or choose columns with --columns"):
    """The frame as float64, or CLIError naming non-numeric columns, missing or infinite values.

    ``hint`` ends the message about non-numeric columns: what the user of this command can do about them.
    """
    import numpy as np

    pd = pandas_module()
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        column = frame[bad[0]]
        not_numbers = np.flatnonzero(pd.to_numeric(column, errors="coerce").isna() & column.notna())
        row = int(not_numbers[0]) if len(not_numbers) else 0
        raise CLIError(
            f"{path}: non-numeric column(s) {_names(bad)} (e.g. {column.iloc[row]!r} in data row {row + 1}); {hint}"
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


def parse_column_list(text: str, option: str) -> list[str]:
    """Column names from ``A,B,...``, or CLIError for an empty list or a name given twice."""
    columns = [c.strip() for c in text.split(",") if c.strip()]
    if not columns:
        raise CLIError(f"{option} {text!r} names no column; give names separated by commas, e.g. {option} x,y")
    repeated = _repeated(columns)
    if repeated:
        raise CLIError(f"{option} names {_names(repeated)} more than once; give each column once")
    return columns


def select_columns(frame, columns: list[str], path: str, what: str):
    """The columns of ``frame`` named by ``columns``, in that order, or CLIError naming the missing ones."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise CLIError(f"{path}: no column(s) {_names(missing)} {what}; the file has {_names(list(frame.columns), 20)}")
    return frame[columns]


def check_output_path(path: str | None, inputs: tuple[str, ...] = ()) -> None:
    """Fail before the work, not after, when the result could not be written (stdout for None or "-")."""
    if path is None or path == "-":
        return
    _file_format(path, WRITE_FORMATS)
    check_writable(path, inputs)


def check_writable(path: str, inputs: tuple[str, ...] = ()) -> None:
    """CLIError unless ``path`` can be created or overwritten, and is none of the ``inputs`` of the command."""
    target = Path(path)
    for source in inputs:
        if target.exists() and Path(source).exists() and target.samefile(source):
            raise CLIError(f"{path}: is also an input of this command; write the output to another file")
    if target.is_dir():
        raise CLIError(f"{path}: is a directory")
    parent = target.resolve().parent
    if not parent.exists():
        raise CLIError(f"{path}: directory {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise CLIError(f"{path}: {str(parent)!r} is not a directory")
    # os.access answers for the real user id and ignores read-only mounts: a real probe answers for both.
    try:
        if target.is_file():
            with open(target, "ab"):  # appends nothing: the file is unchanged
                pass
        elif not target.exists():
            with tempfile.TemporaryFile(dir=parent):
                pass
        # else a device such as /dev/null, or a named pipe that opening would block on: left to the write itself
    except OSError as exc:
        raise CLIError(f"{path}: cannot be written ({exc.strerror or one_line(exc)})") from None


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


__all__ = [
    "check_numeric",
    "check_output_path",
    "check_writable",
    "pandas_module",
    "parse_column_list",
    "read_table",
    "select_columns",
    "write_table",
]
