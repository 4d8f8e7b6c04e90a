"""Work a run does beside its other stages: one daemon thread per job, its outcome in a Future."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

__all__ = ["in_background"]


def in_background(fn: Callable[..., Any], /, *args: Any, name: str = "circles-background",
                  **kwargs: Any) -> Future:
    """Start ``fn(*args, **kwargs)`` on its own thread and return its :class:`~concurrent.futures.Future`.

    The thread is a daemon: when the run fails meanwhile (a bad population file, say), the
    command exits with its error at once instead of waiting for work nobody will read. Its
    result, or the error it raised, comes out of ``Future.result()``.

    Parameters
    ----------
    fn
        What to run; it should spend its time in code that releases the GIL (NumPy, GEOS), or
        the thread only takes turns with the caller.
    *args, **kwargs
        Its arguments.
    name
        The thread's name (shown by debuggers and ``py-spy``).

    Returns
    -------
    concurrent.futures.Future

    """
    future: Future = Future()

    def work() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:  # handed to whoever reads the result
            future.set_exception(err)

    threading.Thread(target=work, name=name, daemon=True).start()
    return future
