"""Training progress output: silent at verbose=0, a bar on a terminal, few lines in logs."""

from __future__ import annotations

import io
import os
import re
import sys

import numpy as np
import pytest

from skflow import FlowDensity
from skflow._progress import LOG_EVERY_N_EPOCHS, EpochProgress


class FakeTerminal(io.StringIO):
    """A stream that claims to be a terminal, so that the progress bar is drawn into it."""

    def isatty(self) -> bool:
        return True


def _simulate(progress: EpochProgress, n_epochs: int, validation: bool = True) -> None:
    with progress:
        for epoch in range(1, n_epochs + 1):
            loss = 2.0 + 1.0 / epoch
            progress.update(epoch, loss, -(loss + 0.1) if validation else None)


@pytest.fixture
def data():
    return np.random.default_rng(0).normal(size=(200, 2))


def test_verbose_0_fit_prints_nothing(data, capfd):
    FlowDensity(max_epochs=3, n_transforms=1, verbose=0, random_state=0).fit(data)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_verbose_1_fit_in_log_writes_epoch_and_losses(data, capfd):
    # Under pytest stderr is not a terminal: the log mode.
    est = FlowDensity(max_epochs=4, n_iter_no_change=100, n_transforms=1, verbose=1, random_state=0).fit(data)
    out, err = capfd.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert re.match(r"FlowDensity epoch +1/4 +train_nll=-?\d+\.\d{4} +val_nll=-?\d+\.\d{4}$", lines[0])
    assert lines[-1].startswith(f"FlowDensity stopped after {est.n_iter_} epochs")
    # The logged losses are the fitted history.
    assert float(re.search(r"train_nll=(\S+)", lines[0]).group(1)) == pytest.approx(est.loss_curve_[0], abs=1e-4)
    assert float(re.search(r"val_nll=(\S+)", lines[0]).group(1)) == pytest.approx(-est.validation_scores_[0], abs=1e-4)
    assert len(lines) == 2  # epoch 1 and the summary: 4 epochs are fewer than LOG_EVERY_N_EPOCHS


def test_verbose_0_is_silent_even_on_a_terminal():
    stream = FakeTerminal()
    _simulate(EpochProgress(100, verbose=0, file=stream), 100)
    assert stream.getvalue() == ""


@pytest.mark.parametrize("n_epochs", [1, 49, 50, 51, 500, 1000])
def test_log_mode_is_bounded(n_epochs):
    stream = io.StringIO()
    _simulate(EpochProgress(1000, verbose=1, file=stream), n_epochs)
    lines = stream.getvalue().splitlines()
    # epoch 1, every LOG_EVERY_N_EPOCHS-th epoch, and the final summary
    expected = 1 + n_epochs // LOG_EVERY_N_EPOCHS - (n_epochs == 1 and LOG_EVERY_N_EPOCHS == 1) + 1
    assert len(lines) == expected
    assert len(lines) <= n_epochs / LOG_EVERY_N_EPOCHS + 2
    logged = [int(m.group(1)) for line in lines if (m := re.search(r"epoch +(\d+)/1000", line))]
    assert logged == sorted({1, *range(LOG_EVERY_N_EPOCHS, n_epochs + 1, LOG_EVERY_N_EPOCHS)})
    epochs = f"{n_epochs} epochs" if n_epochs > 1 else "1 epoch"
    summary = f"FlowDensity stopped after {epochs}: lowest val_nll={2.1 + 1 / n_epochs:.4f} at epoch {n_epochs}"
    assert lines[-1] == summary


def test_verbose_2_logs_every_epoch():
    stream = io.StringIO()
    _simulate(EpochProgress(30, verbose=2, file=stream), 7)
    lines = stream.getvalue().splitlines()
    assert [line.split()[2] for line in lines[:-1]] == [f"{e}/30" for e in range(1, 8)]


def test_without_validation_only_training_loss_is_shown():
    stream = io.StringIO()
    _simulate(EpochProgress(10, verbose=1, file=stream), 3, validation=False)
    text = stream.getvalue()
    assert "val_nll" not in text
    assert text.splitlines()[-1].endswith("lowest train_nll=2.3333 at epoch 3")


def test_terminal_gets_a_bar_with_epoch_and_losses():
    stream = FakeTerminal()
    _simulate(EpochProgress(200, verbose=1, file=stream, min_interval=0), 120)
    text = stream.getvalue()
    # tqdm redraws with carriage returns; the bar shows the count, the unit and both losses.
    assert "\r" in text
    assert re.search(r"FlowDensity: +\d+%.*\| *\d+/200 .*epoch.*train_nll=\d+\.\d{4}, val_nll=\d+\.\d{4}", text)
    # No per-epoch log lines on a terminal; the bar is cleared and one summary line remains.
    assert "FlowDensity epoch" not in text
    assert text.rstrip().endswith("FlowDensity stopped after 120 epochs: lowest val_nll=2.1083 at epoch 120")


def test_no_summary_when_training_fails():
    stream = io.StringIO()
    with pytest.raises(RuntimeError):
        with EpochProgress(10, verbose=1, file=stream) as progress:
            progress.update(1, 1.0, -1.0)
            raise RuntimeError("diverged")
    assert "stopped" not in stream.getvalue()


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
@pytest.mark.parametrize("columns", [0, 100])
def test_a_real_terminal_gets_the_bar_unless_it_has_no_width(columns):
    import fcntl
    import pty
    import struct
    import termios

    controller, terminal = pty.openpty()
    # Some CI runners allocate a pseudo-terminal of width 0, on which tqdm draws nothing: log lines instead.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    with open(terminal, "w") as stream:
        progress = EpochProgress(10, verbose=1, file=stream)
        with progress:
            drew_bar = progress.bar is not None
            progress.update(1, 1.0, -1.0)
    os.close(controller)
    assert drew_bar == (columns > 0)
