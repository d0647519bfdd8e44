"""Training progress: a tqdm bar on a terminal, a line every few epochs in logs."""

from __future__ import annotations

import io
import math
import os
import sys
from typing import TextIO

from tqdm.auto import tqdm

# In a non-interactive stream (CI logs, files) a line is written at epoch 1, then every this many epochs, then once
# at the end: a 500-epoch fit writes at most 12 lines.
LOG_EVERY_N_EPOCHS = 50


def _in_notebook() -> bool:
    """True inside a Jupyter kernel, where stderr is not a tty but tqdm.auto draws a widget."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def _is_interactive(stream: TextIO) -> bool:
    """A terminal a bar can be drawn on: a tty that reports a width (a pseudo-tty of width 0 shows no bar)."""
    try:
        if not stream.isatty():
            return False
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False
    try:
        return os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):  # a tty-like object without a descriptor
        return True


class EpochProgress:
    """Context manager whose ``update`` is the training loop's epoch callback.

    ``verbose=0`` prints nothing. ``verbose=1`` shows a progress bar with the
    epoch, the training loss and the validation loss on an interactive terminal
    or notebook; when the stream is not interactive (CI logs, files) it writes
    one line at the first epoch, one every ``log_every`` epochs and one when
    training ends. ``verbose>=2`` writes a line every epoch instead of a bar.

    Losses are mean negative log-likelihoods per sample in standardized units
    (lower is better; negative values are normal for a peaked density).

    Parameters
    ----------
    max_epochs : int
        Upper limit on epochs, the length of the bar.
    verbose : int
        Verbosity level, as ``FlowDensity(verbose=...)``.
    file : file-like, default=None
        Where to write; None means ``sys.stderr`` at the time of ``__enter__``.
    log_every : int, default=LOG_EVERY_N_EPOCHS
        Epochs between lines in non-interactive mode.
    desc : str, default="FlowDensity"
        Label of the bar and of each line.
    min_interval : float, default=0.1
        Minimum seconds between redraws of the bar.

    Examples
    --------
    >>> import io
    >>> log = io.StringIO()
    >>> with EpochProgress(max_epochs=100, verbose=1, file=log, log_every=50) as progress:
    ...     for epoch in range(1, 61):
    ...         progress.update(epoch, train_loss=1.0 / epoch, validation_score=-2.0 / epoch)
    >>> print(log.getvalue(), end="")
    FlowDensity epoch   1/100  train_nll=1.0000  val_nll=2.0000
    FlowDensity epoch  50/100  train_nll=0.0200  val_nll=0.0400
    FlowDensity stopped after 60 epochs: lowest val_nll=0.0333 at epoch 60
    """

    def __init__(
        self,
        max_epochs: int,
        verbose: int,
        file: TextIO | None = None,
        log_every: int = LOG_EVERY_N_EPOCHS,
        desc: str = "FlowDensity",
        min_interval: float = 0.1,
    ):
        self.max_epochs = max_epochs
        self.verbose = int(verbose or 0)
        self.file = file
        self.log_every = max(1, int(log_every))
        self.desc = desc
        self.min_interval = min_interval
        self.bar = None
        self.last_epoch = 0
        self.best: tuple[int, float] | None = None  # (epoch, loss) of the lowest validation (or training) loss
        self.has_validation = False
        self.width = len(str(max_epochs))

    def __enter__(self) -> EpochProgress:
        if self.verbose <= 0:
            return self
        if self.file is None:
            self.file = sys.stderr
        if self.verbose == 1 and (_is_interactive(self.file) or (self.file is sys.stderr and _in_notebook())):
            # leave=False: the bar disappears at the end and the summary line replaces it.
            self.bar = tqdm(
                total=self.max_epochs,
                desc=self.desc,
                unit="epoch",
                leave=False,
                file=self.file,
                dynamic_ncols=True,
                mininterval=self.min_interval,
            )
        return self

    def update(self, epoch: int, train_loss: float, validation_score: float | None) -> None:
        """Record one finished epoch (the signature of ``train_flow``'s callback)."""
        if self.verbose <= 0:
            return
        self.last_epoch = epoch
        loss = train_loss if validation_score is None else -validation_score
        self.has_validation = validation_score is not None
        if self.best is None or loss < self.best[1] or not math.isfinite(self.best[1]):
            self.best = (epoch, loss)
        values = {"train_nll": f"{train_loss:.4f}"}
        if validation_score is not None:
            values["val_nll"] = f"{-validation_score:.4f}"
        if self.bar is not None:
            # Postfix first, so the redraw triggered by update() shows this epoch's losses.
            self.bar.set_postfix(values, refresh=False)
            self.bar.update(epoch - self.bar.n)
        elif self.verbose >= 2 or epoch == 1 or epoch % self.log_every == 0:
            text = "  ".join(f"{k}={v}" for k, v in values.items())
            self._write(f"{self.desc} epoch {epoch:{self.width}d}/{self.max_epochs}  {text}")

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.verbose <= 0 or exc_type is not None or self.best is None:
            return
        name = "val_nll" if self.has_validation else "train_nll"
        best_epoch, best_loss = self.best
        epochs = f"{self.last_epoch} epoch" + ("s" if self.last_epoch != 1 else "")
        self._write(f"{self.desc} stopped after {epochs}: lowest {name}={best_loss:.4f} at epoch {best_epoch}")

    def _write(self, line: str) -> None:
        print(line, file=self.file, flush=True)
