"""Apply progress: a live rich display for people at a terminal, plain lines for CI logs.

Presentation only: the engine calls the `Progress` protocol (`engine/apply.py`).

Both report the same events; the plain form (``[wave 2/5] host.deliver:Trust_1 ... ok``) is
what CI keeps, so every line stands on its own and never holds a secret (outcome messages
come from executors, which only ever mention hashes).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from flipgitops.engine.apply import Progress
from flipgitops.model.actions import Action

if TYPE_CHECKING:
    from rich.progress import TaskID

Echo = Callable[..., None]


class PlainProgress:
    """One line per finished action, prefixed with its wave: greppable in CI logs."""

    def __init__(self, echo: Echo, *, err: bool = False) -> None:
        self._echo = echo
        self._err = err
        self._wave = ""

    def start_wave(self, index: int, total: int, actions: Sequence[Action]) -> None:
        self._wave = f"[wave {index}/{total}]"

    def started(self, action: Action) -> None:
        return None

    def finished(self, action: Action, ok: bool, message: str) -> None:
        status = "ok" if ok else "FAILED"
        detail = f" ({message})" if message else ""
        self._echo(f"{self._wave} {action.id} ... {status}{detail}", err=self._err)

    def line(self, text: str) -> None:
        self._echo(f"{self._wave} {text}", err=self._err)

    def close(self) -> None:
        return None


class RichProgress:
    """A live table on stderr: which wave runs, which actions are pending/running/done."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn
        from rich.progress import Progress as RichBar

        self._console = Console(stderr=True)
        self._bar = RichBar(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=self._console,
            transient=False,
        )
        self._bar.start()
        self._task: TaskID | None = None

    def start_wave(self, index: int, total: int, actions: Sequence[Action]) -> None:
        self._task = self._bar.add_task(f"wave {index}/{total}", total=len(actions))

    def started(self, action: Action) -> None:
        return None

    def finished(self, action: Action, ok: bool, message: str) -> None:
        from rich.markup import escape

        mark = "[green]ok[/]" if ok else "[red]FAILED[/]"
        detail = f" [dim]({escape(message)})[/]" if message else ""
        self._console.print(f"  {escape(action.id)} ... {mark}{detail}", highlight=False)
        if self._task is not None:
            self._bar.advance(self._task)

    def line(self, text: str) -> None:
        from rich.markup import escape

        self._console.print(f"    [dim]{escape(text)}[/]", highlight=False)

    def close(self) -> None:
        self._bar.stop()


def make_progress(echo: Echo, *, machine_output: bool) -> Progress:
    """Rich on an interactive stderr; plain lines otherwise (stderr when stdout is JSON)."""
    if sys.stderr.isatty() and "NO_COLOR" not in os.environ:
        return RichProgress()
    return PlainProgress(echo, err=machine_output)
