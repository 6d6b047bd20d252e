"""`loanwatch schedule`: start `loanwatch run` on a cron schedule until stopped.

Each run is a child process (`loanwatch run`, with the same home and settings): a run that
fails, or even crashes, leaves the scheduler running, and its memory goes back to the system
when it ends. Cron semantics come from croniter (five fields, or six with seconds last), in
[schedule] timezone. SIGTERM or SIGINT stops the scheduler: a run in progress is asked to stop
(SIGTERM; every step is safe to interrupt and to run again) and waited for.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from loanwatch.config import ConfigError, Settings
from loanwatch.notify.internal import tell_slack

# exit codes of `loanwatch run` that it reports to Slack itself (see operations/run.py)
_TOLD_BY_RUN = {0, 3, 4, 5}


def cron_expression(settings: Settings, at: str | None = None, cron: str | None = None) -> str:
    """The schedule to follow: --at HH:MM (daily), --cron EXPR, or [schedule] cron."""
    if at is not None:
        try:
            hour, minute = (int(x) for x in at.split(":"))
            if not (0 <= hour < 24 and 0 <= minute < 60):
                raise ValueError
        except ValueError:
            raise ConfigError(f"--at {at!r}: give a time of day as HH:MM, such as 06:30") from None
        return f"{minute} {hour} * * *"
    expression = cron if cron is not None else str(settings.get("schedule", "cron"))
    origin = "--cron" if cron is not None else "[schedule] cron"
    if not croniter.is_valid(expression):
        raise ConfigError(f"{origin} {expression!r}: not a cron expression (minute hour day month weekday, such as '30 6 * * *')")
    return expression


def timezone(settings: Settings) -> ZoneInfo:
    name = str(settings.get("schedule", "timezone") or "UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"[schedule] timezone {name!r}: not a time zone; use a name such as UTC or America/Mexico_City") from None


def serve(settings: Settings, expression: str, run_args: list[str], log: Callable[[str], None],
          max_runs: int | None = None) -> int:
    """Start `loanwatch run` at each time the expression gives, until SIGTERM/SIGINT (or max_runs)."""
    zone = timezone(settings)
    stop = threading.Event()
    child: list[subprocess.Popen] = []

    def on_signal(signum, _frame) -> None:
        stop.set()
        if child and child[0].poll() is None:
            child[0].send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        times = croniter(expression, dt.datetime.now(zone))
        done = 0
        while not stop.is_set() and (max_runs is None or done < max_runs):
            due = times.get_next(dt.datetime)
            log(f"next run at {due.isoformat(timespec='seconds')}")
            if stop.wait(max(0.0, (due - dt.datetime.now(zone)).total_seconds())):
                break
            started = dt.datetime.now(zone)
            log(f"run started at {started.isoformat(timespec='seconds')}")
            cmd = [sys.executable, "-c", "from loanwatch.cli import run; run()", "--home", str(settings.home), "run", "--trigger", "schedule", *run_args]
            child[:] = [subprocess.Popen(cmd)]
            code = child[0].wait()
            child.clear()
            done += 1
            seconds = (dt.datetime.now(zone) - started).total_seconds()
            log(f"run finished with exit code {code} after {seconds:.0f} s")
            if code not in _TOLD_BY_RUN:
                tell_slack(settings, f"loanwatch schedule: `loanwatch run` exited with code {code} at "
                                      f"{started.isoformat(timespec='seconds')}; the scheduler keeps going")
            # a run that outlasted its next time starts once, now, not once per missed time
            times = croniter(expression, dt.datetime.now(zone))
        log("stopped")
        return 0
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)

