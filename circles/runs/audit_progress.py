"""An audit's progress over its cities, on the client: done / running / failed, with elapsed time.

:class:`CityProgress` is the ``progress`` callable :func:`circles.run_audit` takes: it is told
``(city, stage)`` and keeps one line of counts. On a terminal it is a bar (stderr); elsewhere it is
quiet unless asked (``show=True``), and then writes a plain line each time a count changes, which a
batch job's log keeps readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["CityProgress"]

# Stages that end a city, and the one a city waits in before a worker takes it.
_ENDED = ("done", "skipped", "failed")
_QUEUED = "queued"


class CityProgress:
    """Progress over an audit's cities (a callable taking ``(city, stage)``).

    Parameters
    ----------
    show
        ``True`` always, ``False`` never, ``None`` (default) only when ``stream`` is a terminal.
    stream
        Where to write (default: stderr).

    Attributes
    ----------
    state
        Each city's last state: ``queued``, ``running``, ``done``, ``skipped`` or ``failed``.
    retried
        The cities rerun after a lost worker.

    """

    def __init__(self, *, show: bool | None = None, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.mode = "off" if show is False or (show is None and not tty) else ("bar" if tty else "lines")
        self.state: dict[str, str] = {}
        self.stage: dict[str, str] = {}
        self.retried: set[str] = set()
        self._t0 = time.monotonic()
        self._bar = None
        self._last = ""

    def __call__(self, city: str, stage: str) -> None:
        if stage == "retried":
            self.retried.add(city)
        elif stage in (*_ENDED, _QUEUED):
            self.state[city] = stage
        else:  # a worker's stage (network, coverage, report...): the city is running
            self.state[city], self.stage[city] = "running", stage
        if self.mode == "bar" or stage != _QUEUED:  # a log needs no line per city announced
            self._show()

    def counts(self) -> dict[str, int]:
        """Cities per state, and ``retried``."""
        out = dict.fromkeys(("done", "skipped", "running", "queued", "failed"), 0)
        for state in self.state.values():
            out[state] = out.get(state, 0) + 1
        out["retried"] = len(self.retried)
        return out

    def text(self) -> str:
        """The counts as one line: ``3/12 cities · 2 done · 1 skipped · 2 running · 0 failed · 0:42``."""
        c = self.counts()
        ended = c["done"] + c["skipped"] + c["failed"]
        parts = [f"{ended}/{len(self.state)} cities", f"{c['done']} done", f"{c['skipped']} skipped",
                 f"{c['running']} running", f"{c['failed']} failed"]
        if c["retried"]:
            parts.append(f"{c['retried']} retried")
        return " · ".join(parts) + f" · {_clock(time.monotonic() - self._t0)}"

    def _show(self) -> None:
        if self.mode == "lines":
            line = self.text()
            if line.rsplit(" · ", 1)[0] != self._last:  # a count changed, not only the clock
                self._last = line.rsplit(" · ", 1)[0]
                print(f"audit: {line}", file=self.stream, flush=True)
        elif self.mode == "bar":
            bar = self._open_bar()
            c = self.counts()
            bar.total = len(self.state)
            bar.n = c["done"] + c["skipped"] + c["failed"]
            running = [f"{city} ({self.stage.get(city, '…')})" for city, s in self.state.items() if s == "running"]
            bar.set_postfix_str(f"done {c['done']} · skipped {c['skipped']} · running {c['running']} · "
                                f"failed {c['failed']}" + (f" · retried {c['retried']}" if c["retried"] else "")
                                + (f" | {', '.join(running[:3])}" if running else ""), refresh=True)

    def _open_bar(self):
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=0, desc="cities", unit="city", file=self.stream, leave=True,
                             bar_format="{desc} {n_fmt}/{total_fmt} |{bar:20}| {elapsed} {postfix}")
        return self._bar

    def close(self) -> None:
        """End the bar (a final line stays on the terminal)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
