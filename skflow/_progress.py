"""Training progress: a tqdm bar on a terminal, a line every few epochs in logs."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

LOG_EVERY_N_EPOCHS = 50


class EpochProgress:
    """Context manager whose ``update`` is the training loop's epoch callback.

    ``verbose=0`` prints nothing. Otherwise a progress bar with the training and
    validation losses is shown on an interactive terminal; when stderr is not a
    terminal (CI logs, files), one line every ``LOG_EVERY_N_EPOCHS`` epochs.
    """

    def __init__(self, max_epochs: int, verbose: int):
        self.verbose = verbose
        self.max_epochs = max_epochs
        self.interactive = sys.stderr.isatty()
        self.bar = None

    def __enter__(self) -> EpochProgress:
        if self.verbose and self.interactive:
            self.bar = tqdm(total=self.max_epochs, desc="FlowDensity", unit="epoch", leave=False)
        return self

    def update(self, epoch: int, train_loss: float, validation_score: float | None) -> None:
        if not self.verbose:
            return
        values = {"train_nll": f"{train_loss:.4f}"}
        if validation_score is not None:
            values["val_nll"] = f"{-validation_score:.4f}"
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(values, refresh=False)
        elif epoch == 1 or epoch % LOG_EVERY_N_EPOCHS == 0:
            text = " ".join(f"{k}={v}" for k, v in values.items())
            print(f"FlowDensity epoch {epoch}/{self.max_epochs} {text}", file=sys.stderr, flush=True)

    def __exit__(self, *exc_info) -> None:
        if self.bar is not None:
            self.bar.close()
