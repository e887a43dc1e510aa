"""Progress display for long runs: silent for the first seconds, then a rich progress bar."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class DelayedProgress:
    """A ``(done, total)`` callback that shows a bar once a task has run ``delay_s`` seconds."""

    def __init__(self, description: str, delay_s: float = 2.0, console: Console | None = None) -> None:
        self.description = description
        self.delay_s = delay_s
        self._console = console or Console(stderr=True)
        self._start = time.monotonic()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, done: float, total: float) -> None:
        if self._progress is None:
            if time.monotonic() - self._start < self.delay_s:
                return
            # A 20-cell bar leaves room for "scenario × controller" in 80 columns (a log file, a small terminal).
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=20),
                                      TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                                      TimeRemainingColumn(), console=self._console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=total)
        if self._task is not None:
            self._progress.update(self._task, completed=done, total=total)

    def __enter__(self) -> DelayedProgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
