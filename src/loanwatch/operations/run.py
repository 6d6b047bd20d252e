"""`loanwatch run`: one day's cycle, and its record in meta.runs / meta.run_steps.

The steps, each recorded with its start, end, status, counts and message:

1. ingest: the new files of the inbox folders ([run] inbox, or given), through [run] mapping when
   set. A file whose content was loaded before is skipped (ingest is idempotent).
2. build: when something is new (a batch since the last good build), build and publish.
3. notify: when [run] notify is true: the day's messages (`notify send`).
4. weekly: on [run] weekly_day: the weekly management summary (`notify weekly`).

A failed step stops the steps that depend on it: a failed build sends nothing. The run holds the
warehouse's writer lock throughout, so no other writer interleaves with it. With nothing new,
the run records so and stops (exit 0), after sending when the outbox has pending messages that
are due (held, retried, or left by a killed run).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from loanwatch.config import ConfigError, Settings
from loanwatch.errors import EXIT_ERROR, NoData, UsageProblem, explain
from loanwatch.reports import Table
from loanwatch.warehouse import connect, init_warehouse, writer_lock

# Exit codes of `loanwatch run` (the README lists them): 0 done or nothing new; 3 done, some rows
# quarantined; 4 the build failed (nothing sent); 5 sending failed; 1 another error; 2 usage.
EXIT_QUARANTINED, EXIT_BUILD_FAILED, EXIT_SEND_FAILED = 3, 4, 5
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass
class Step:
    name: str
    status: str = "skipped"  # ok | quarantined | skipped | failed
    counts: dict = field(default_factory=dict)
    message: str = ""


@dataclass
class RunResult:
    run_id: int
    status: str  # success | nothing_new | quarantined | failed
    exit_code: int
    steps: list[Step] = field(default_factory=list)
    message: str = ""


def inbox_folders(settings: Settings, given: list[Path] | None) -> list[Path]:
    folders = [Path(p) for p in (given or settings.get("run", "inbox") or [])]
    if not folders:
        raise ConfigError("no inbox: give folders (`loanwatch run --inbox DIR`) or set [run] inbox in loanwatch.toml")
    missing = [p for p in folders if not p.is_dir()]
    if missing:
        raise ConfigError(f"inbox {missing[0]}: no such folder; create it or correct [run] inbox / --inbox")
    return folders


def _weekly_day(settings: Settings) -> str:
    day = str(settings.get("run", "weekly_day") or "").strip().lower()
    if day and day not in WEEKDAYS:
        raise ConfigError(f"[run] weekly_day = {day!r}: use one of {', '.join(WEEKDAYS)}, or leave it empty")
    return day


class _History:
    """Writes meta.runs and meta.run_steps; a connection per write (the steps open the warehouse too)."""

    def __init__(self, settings: Settings, run_date: dt.date, trigger: str):
        self.settings = settings
        with self._con() as con:
            init_warehouse(con)
            # a run that was killed stays 'running': say so
            con.execute("UPDATE meta.runs SET status = 'interrupted' WHERE status = 'running'")
            self.run_id = con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM meta.runs").fetchall()[0][0]
            con.execute("INSERT INTO meta.runs (run_id, started_at, status, run_date, trigger) VALUES (?, now(), 'running', ?, ?)",
                        [self.run_id, run_date, trigger])

    def _con(self):
        return connect(self.settings.warehouse_path)  # closed by `with`

    def step(self, step: Step, started_at: dt.datetime) -> None:
        with self._con() as con:
            con.execute("INSERT INTO meta.run_steps VALUES (?, ?, ?, now(), ?, ?, ?)",
                        [self.run_id, step.name, started_at, step.status, json.dumps(step.counts, default=str), step.message])

    def finish(self, result: RunResult) -> None:
        with self._con() as con:
            con.execute("UPDATE meta.runs SET finished_at = now(), status = ?, exit_code = ?, message = ? WHERE run_id = ?",
                        [result.status, result.exit_code, result.message, self.run_id])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _failed(step: Step, exc: Exception) -> None:
    told = explain(exc)
    step.status, step.message = "failed", (told[0] if told else f"{type(exc).__name__}: {exc}")


def _settle_seconds(settings: Settings) -> float:
    value = float(settings.get("run", "settle_seconds"))
    if value < 0:
        raise UsageProblem(f"[run] settle_seconds = {value:g}: give 0 (load every file) or more seconds")
    return value


def ingest_step(settings: Settings, inboxes: list[Path], on_file=None) -> Step:
    """The ingest step: the inbox folders' files, through [run] mapping when set; counts for the history."""
    from loanwatch.ingest import run as ingest_files

    step = Step("ingest")
    mapping_file = settings.get("run", "mapping")
    results = ingest_files(settings, inboxes, Path(mapping_file) if mapping_file else None, on_file=on_file,
                           strict=False, settle_seconds=_settle_seconds(settings))
    loaded = [r for r in results if r.batch_id is not None and r.status != "skipped"]
    step.counts = {"files_new": len(loaded), "files_seen_before": sum(r.status == "skipped" for r in results),
                   "files_waiting": sum(r.status == "waiting" for r in results),
                   "rows_accepted": sum(r.accepted for r in loaded), "rows_rejected": sum(r.rejected for r in results),
                   "files_not_loaded": sum(r.status in ("rejected", "unmatched", "not_read") and r.batch_id is None for r in results)}
    quarantined = [r for r in results if r.quarantined]
    waiting = [r.path.name for r in results if r.status == "waiting"]
    faults = [r for r in results if r.status == "fault"]
    if faults:
        step.counts["files_not_loaded"] += len(faults)
    step.status = "quarantined" if quarantined else "ok"
    notes = []
    passed_over = [r for r in quarantined if r.status == "not_read"]
    if len(quarantined) > len(passed_over):
        notes.append(f"{len(quarantined) - len(passed_over)} file(s) with quarantined rows: see `loanwatch rejects`")
    if passed_over:
        notes.append(f"{len(passed_over)} file(s) passed over: " + "; ".join(r.examples[0] for r in passed_over[:3])
                     + (f"; and {len(passed_over) - 3} more" if len(passed_over) > 3 else ""))
    overlaps = [r for r in results if r.status == "overlap"]
    if overlaps:  # loaded as each table says, but likely by a glob too wide: said every run
        notes.append("; ".join(r.examples[0] for r in overlaps[:3])
                     + (f"; and {len(overlaps) - 3} more" if len(overlaps) > 3 else ""))
    if waiting:
        notes.append(f"left for the next run, modified within [run] settle_seconds: {', '.join(waiting[:5])}"
                     + (f" and {len(waiting) - 5} more" if len(waiting) > 5 else ""))
    if faults:  # the machine ran out of memory on these: the run goes on and ends with exit 1
        step.status = "faulted"
        notes.insert(0, "; ".join(r.message for r in faults[:3]) + (f"; and {len(faults) - 3} more" if len(faults) > 3 else ""))
    step.message = "; ".join(notes)
    return step


def _up_to_date(settings: Settings) -> bool:
    """Nothing loaded yet, or nothing a build would do (`loanwatch.transform.build.up_to_date`:
    no batch after the last good build's, its snapshot published, the same project and settings)."""
    from loanwatch.transform.build import up_to_date

    with connect(settings.warehouse_path) as con:
        newest = con.execute("SELECT coalesce(max(batch_id), 0) FROM meta.batches").fetchall()[0][0]
    # nothing loaded yet counts as up to date: there is nothing to build
    return newest == 0 or up_to_date(settings)


def run(settings: Settings, inbox: list[Path] | None = None, date: dt.date | None = None, notify: bool = True,
        trigger: str = "cli", on_file=None, on_step=None, today: dt.date | None = None) -> RunResult:
    """One day's cycle. `date` is the plan date of the messages (default: the data date) and the
    day whose weekday decides the weekly summary (default: today, UTC)."""
    inboxes = inbox_folders(settings, inbox)
    weekly_day = _weekly_day(settings)
    _settle_seconds(settings)  # a setting that cannot be used stops the run before it starts (exit 2)
    day = date or today or dt.datetime.now(dt.UTC).date()
    announce = on_step or (lambda step: None)
    with writer_lock(settings):
        history = _History(settings, day, trigger)
        result = RunResult(history.run_id, "success", 0)

        def record(step: Step, started: dt.datetime) -> Step:
            history.step(step, started)
            result.steps.append(step)
            announce(step)
            return step

        try:
            started = _now()
            try:
                ingest = ingest_step(settings, inboxes, on_file)
            except Exception as exc:  # noqa: BLE001 - recorded, and the run stops with its line
                ingest = Step("ingest")
                _failed(ingest, exc)
            record(ingest, started)
            if ingest.status == "failed":
                result.status, result.exit_code, result.message = "failed", EXIT_ERROR, f"ingest failed: {ingest.message}"
                return result
            if _up_to_date(settings):
                result.status, result.message = "nothing_new", "nothing new since the last build: nothing to do"
                record(Step("build", message="nothing new"), _now())
                # nothing to build, but the outbox may still hold messages to send: held outside
                # contact hours, waiting for a retry, or left by a run that was killed
                waiting = _outbox_waiting(settings, history.run_id) if notify and settings.get("run", "notify") else ""
                if waiting:
                    started = _now()
                    send = record(_send(settings, date), started)
                    result.message = f"nothing new since the last build; {waiting}: sent {send.counts.get('sent', 0)}"
                    if send.status == "failed":
                        result.status, result.exit_code, result.message = "failed", EXIT_SEND_FAILED, send.message
                else:
                    record(Step("notify", message="nothing new"), _now())
                if notify and weekly_day and WEEKDAYS[day.weekday()] == weekly_day and _weekly_due(settings, date or day):
                    # the weekly day's summary has not gone yet (an earlier run failed or was killed)
                    weekly = record(_weekly(settings, date, today=day), _now())
                    if weekly.status == "failed":
                        result.status, result.exit_code, result.message = "failed", EXIT_SEND_FAILED, weekly.message
                else:
                    record(Step("weekly", message="nothing new"), _now())
                if ingest.status == "faulted" and result.exit_code == 0:
                    result.status, result.exit_code, result.message = "failed", EXIT_ERROR, ingest.message
                elif ingest.status == "quarantined" and result.exit_code == 0:
                    # files passed over (a link to nothing, one the mapping cannot map) are said on
                    # every run until they are resolved, with exit 3
                    result.exit_code, result.message = EXIT_QUARANTINED, f"nothing new since the last build; {ingest.message}"
                return result

            started = _now()
            build = _build(settings)
            record(build, started)
            if build.status == "failed":
                result.status, result.exit_code = "failed", EXIT_BUILD_FAILED
                result.message = f"build failed, nothing sent: {build.message}"
                for name in ("notify", "weekly"):
                    record(Step(name, message="the build failed"), _now())
                return result

            started = _now()
            send = _send(settings, date) if notify and settings.get("run", "notify") else Step(
                "notify", message="--no-notify" if not notify else "[run] notify is false")
            record(send, started)

            started = _now()
            if notify and weekly_day and WEEKDAYS[day.weekday()] == weekly_day:
                weekly = _weekly(settings, date, today=day)
            else:
                weekly = Step("weekly", message="--no-notify" if not notify else
                              (f"not {weekly_day}" if weekly_day else "[run] weekly_day is not set"))
            record(weekly, started)

            if send.status == "failed" or weekly.status == "failed":
                result.status, result.exit_code = "failed", EXIT_SEND_FAILED
                result.message = "; ".join(s.message for s in (send, weekly) if s.status == "failed")
            elif ingest.status == "faulted":
                result.status, result.exit_code, result.message = "failed", EXIT_ERROR, ingest.message
            elif ingest.status == "quarantined":
                result.status, result.exit_code, result.message = "quarantined", EXIT_QUARANTINED, ingest.message
            return result
        finally:
            history.finish(result)
            write_runs_file(settings)
            if result.status == "failed":
                from loanwatch.notify.internal import tell_slack

                tell_slack(settings, f"loanwatch run {result.run_id}: {result.status} (exit {result.exit_code}): {result.message}")


def write_runs_file(settings: Settings, limit: int = 100) -> None:
    """<home>/runs.json: the latest runs, for readers that must not open the warehouse (the
    dashboard's Operations page). Replaced atomically."""
    import os

    table = runs(settings, limit)
    path = settings.home / "runs.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"columns": table.columns, "rows": table.rows}, default=str))
    os.replace(tmp, path)


def read_runs_file(settings: Settings) -> Table:
    path = settings.home / "runs.json"
    if not path.exists():
        return Table(RUN_COLUMNS, [])
    data = json.loads(path.read_text())
    return Table(data["columns"], data["rows"])


def _build(settings: Settings) -> Step:
    from loanwatch.transform.build import build

    step = Step("build")
    try:
        outcome = build(settings)
    except Exception as exc:  # noqa: BLE001
        _failed(step, exc)
        return step
    step.counts = {"build_id": outcome.build_id, "data_date": outcome.data_date, "warnings": len(outcome.warnings)}
    if outcome.status == "success":
        step.status = "ok"
    else:
        step.status, step.message = "failed", "; ".join(outcome.errors[:3]) or outcome.message
    return step


def _outbox_waiting(settings: Settings, run_id: int) -> str:
    """Why a run with nothing new still sends ('' when it need not): the outbox has pending
    messages that are due (or due to expire), or the last run that built was stopped before its
    notify step, so the day's plan may never have reached the outbox."""
    from loanwatch.notify import outbox

    try:
        due = outbox.pending_due(settings)
    except Exception:  # noqa: BLE001 - a damaged or busy outbox: the send step says what it is
        return "the outbox could not be read"
    if due:
        return f"{due} message(s) pending in the outbox"
    with connect(settings.warehouse_path) as con:
        # made good: that run's own notify step (whatever it did, --no-notify included), or a
        # later run's send
        last = con.execute(
            """SELECT r.run_id, EXISTS (SELECT 1 FROM meta.run_steps n WHERE n.step = 'notify' AND (
                                            n.run_id = r.run_id OR (n.run_id > r.run_id AND n.status IN ('ok', 'failed'))))
               FROM meta.runs r JOIN meta.run_steps b ON b.run_id = r.run_id AND b.step = 'build' AND b.status = 'ok'
               WHERE r.run_id < ? ORDER BY r.run_id DESC LIMIT 1""", [run_id]).fetchall()
    if last and not last[0][1]:
        return f"run {last[0][0]} built but was stopped before sending"
    return ""


def _send(settings: Settings, date: dt.date | None) -> Step:
    from loanwatch.notify.send import send

    step = Step("notify")
    try:
        outcome = send(settings, date)
    except NoData as exc:  # no loans yet (a first batch of clients alone): nothing to plan, not a failure
        step.message = f"nothing to plan: {exc}"
        return step
    except Exception as exc:  # noqa: BLE001
        _failed(step, exc)
        return step
    step.counts = {"plan_date": outcome.plan_date, "new": outcome.enqueued, "sent": outcome.sent,
                   "held": outcome.deferred, "failed": outcome.failed}
    step.status = "failed" if outcome.failed else "ok"
    if outcome.failed:
        step.message = f"{outcome.failed} message(s) failed for good: `loanwatch outbox --status failed` lists them, with why"
    return step


def _weekly_due(settings: Settings, day: dt.date) -> bool:
    from loanwatch.notify.internal import weekly_due

    try:
        return weekly_due(settings, day)
    except Exception:  # noqa: BLE001 - a damaged or busy outbox: the weekly step says what it is
        return True


def _weekly(settings: Settings, date: dt.date | None, today: dt.date | None = None) -> Step:
    from loanwatch.notify.internal import weekly_summary

    step = Step("weekly")
    try:
        _, recipient, not_sent = weekly_summary(settings, date, today=today)
    except NoData as exc:
        step.message = f"nothing to summarise: {exc}"
        return step
    except Exception as exc:  # noqa: BLE001
        _failed(step, exc)
        return step
    step.status = "ok"
    step.counts = {"to": recipient} if recipient and not not_sent else {}
    step.message = not_sent or ("" if recipient else "[notify] management_to is not set: summary made, not sent")
    return step


def runs(settings: Settings, limit: int = 30) -> Table:
    """The latest runs, newest first: when, how long, the outcome and each step's status."""
    from loanwatch.warehouse import read_warehouse

    with read_warehouse(settings) as con:
        if not _has_history(con):
            return Table(RUN_COLUMNS, [])
        cur = con.execute(
            f"""SELECT r.run_id, strftime(r.started_at, '%Y-%m-%d %H:%M:%S') AS started_at,
                       round(epoch(r.finished_at - r.started_at), 1) AS seconds, r.trigger, r.status, r.exit_code,
                       {", ".join(f"max(CASE WHEN s.step = '{step}' THEN s.status END) AS {step}" for step in STEPS)},
                       r.message
                FROM (SELECT * FROM meta.runs ORDER BY run_id DESC LIMIT ?) AS r
                LEFT JOIN meta.run_steps AS s ON s.run_id = r.run_id
                GROUP BY ALL ORDER BY r.run_id DESC""", [int(limit)])
        return Table([d[0] for d in cur.description], cur.fetchall())


def run_steps(settings: Settings, run_id: int) -> Table:
    """One run's steps in order: when, how long, the status, the counts and the message."""
    from loanwatch.warehouse import read_warehouse

    with read_warehouse(settings) as con:
        found = _has_history(con) and con.execute("SELECT count(*) FROM meta.runs WHERE run_id = ?", [run_id]).fetchall()[0][0]
        if not found:
            raise LookupError(f"no run {run_id}: `loanwatch runs` lists them")
        rows = con.execute(
            """SELECT step, strftime(started_at, '%Y-%m-%d %H:%M:%S'), round(epoch(finished_at - started_at), 1),
                      status, counts, message
               FROM meta.run_steps WHERE run_id = ? ORDER BY started_at""", [run_id]).fetchall()
    return Table(["step", "started_at", "seconds", "status", "counts", "message"],
                 [[step, started, seconds, status, counts_text(json.loads(counts) if counts else {}) or None, message or None]
                  for step, started, seconds, status, counts, message in rows])


def _has_history(con) -> bool:
    return con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'meta' AND table_name = 'runs'").fetchall()[0][0] > 0


STEPS = ("ingest", "build", "notify", "weekly")
RUN_COLUMNS = ["run_id", "started_at", "seconds", "trigger", "status", "exit_code", *STEPS, "message"]


def counts_text(figures: dict) -> str:
    """A step's counts for people: "files new 6, rows accepted 40" (zeros and blanks left out)."""
    return ", ".join(f"{k.replace('_', ' ')} {v:,}" if isinstance(v, int) and not isinstance(v, bool)
                     else f"{k.replace('_', ' ')} {v}" for k, v in figures.items() if v not in (None, "", 0))
