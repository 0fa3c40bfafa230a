"""Progress bars for every stage (rich, on stderr). ``STREAMGAZE_PROGRESS=0`` turns them off."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)


@contextmanager
def stage(description: str, total: float | None = None) -> Iterator[Callable[..., None]]:
    """``with stage("fixations", total=n) as advance: ... advance(1)``; ``advance(total=m)`` resets the total."""
    if os.environ.get("STREAMGAZE_PROGRESS", "1") == "0":
        yield lambda *a, **k: None
        return
    with Progress(
        TextColumn("[bold]{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total)

        def advance(step: float = 1, total: float | None = None) -> None:
            if total is not None:
                bar.update(task, total=total)
            bar.advance(task, step)

        yield advance
        if bar.tasks[0].total is None:
            bar.update(task, total=max(bar.tasks[0].completed, 1), completed=max(bar.tasks[0].completed, 1))
        else:
            bar.update(task, completed=bar.tasks[0].total)
