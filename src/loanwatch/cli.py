"""The `loanwatch` command: a thin layer over the library; each verb's work lives in its package."""

from __future__ import annotations

import atexit
import datetime as dt
import enum
import functools
import inspect
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Optional

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from loanwatch.config import Settings, load_settings
from loanwatch.errors import EXIT_ERROR, EXIT_USAGE, UsageProblem, explain
from loanwatch.output import Format, Log, render, shown

console = Console(soft_wrap=True, emoji=False)  # ":x:" in data is text, never an emoji
err = Console(stderr=True, soft_wrap=True, emoji=False)
log = Log(console, err)  # the operational commands' events: lines, or JSON (--log-format json)


# What the command-line layer raises on purpose (usage errors, --help, Ctrl-C at a prompt) passes
# through to it, which prints click's own message and exits 2 for a usage error. Typer >= 0.20
# vendors click (typer._click) and raises its own classes, all under typer.TyperException; older
# Typer raises click's. Both are listed, so neither is mistaken for a bug.
_CLI_SIGNALS: tuple[type[BaseException], ...] = tuple({
    typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.Abort, click.ClickException,
    getattr(typer, "TyperException", click.ClickException),
})


class _Guarded(TyperGroup):
    """Every command runs inside this: an error becomes one line and its exit code, never a
    traceback (``LOANWATCH_DEBUG=1`` adds it, for a bug report)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _CLI_SIGNALS:
            raise
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # the reader went away (`loanwatch report … | head`): stop quietly, as other tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except Exception as exc:  # noqa: BLE001 - the one place every error is turned into a line
            if os.environ.get("LOANWATCH_DEBUG"):
                import traceback

                traceback.print_exc()
            told = explain(exc)
            if told is None:
                message, code = (f"internal error: {type(exc).__name__}: {exc}. This is a bug in loanwatch; "
                                 "please report it with the output of the same command run with LOANWATCH_DEBUG=1"), EXIT_ERROR
            else:
                message, code = told
            log.error(message)
            raise typer.Exit(code) from None


# Help texts are plain text: rich markup would read "[notify] call_capacity" as a style tag and drop it.
app = typer.Typer(
    cls=_Guarded,
    rich_markup_mode=None,
    help="loanwatch: lending analytics on DuckDB + dbt. Ingest contract files, build the warehouse, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
report_app = typer.Typer(help="Figures from the serving snapshot; every figure is defined in docs/metrics.md, every report's columns in docs/reports.md.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(report_app, name="report")
notify_app = typer.Typer(help="Client notifications: the contact plan.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(notify_app, name="notify")

# Exit codes (documented in the README): 0 ok, 1 error, 2 usage, 3 loaded with quarantined rows.
EXIT_OK, EXIT_QUARANTINED = 0, 3


class LogFormat(enum.StrEnum):
    text = "text"
    json = "json"


@app.callback()
def main(
    ctx: typer.Context,
    home: Optional[Path] = typer.Option(
        None, "--home", envvar="LOANWATCH_HOME", help="Folder holding the warehouse (default ./loanwatch_home)."
    ),
    log_format: LogFormat = typer.Option(
        "text", "--log-format", envvar="LOANWATCH_LOG_FORMAT",
        help="text for people; json: one JSON object per event (ingest, build, run, notify send, schedule) for log collectors."),
) -> None:
    log.json = log_format == LogFormat.json
    ctx.obj = load_settings(home)


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj if isinstance(ctx.obj, Settings) else load_settings()


def _fail(message: str, code: int = EXIT_ERROR) -> None:
    log.error(message)
    raise typer.Exit(code)


FormatOption = typer.Option(Format.table, "--format", "-f", help="table for people; csv or json for programs.")
AsOfOption = typer.Option(None, "--as-of", help="Report date (YYYY-MM-DD); default: the data date.", formats=["%Y-%m-%d"])
MinAmountOption = typer.Option(None, "--min-amount", help="Only loans with amount >= this.")
MaxAmountOption = typer.Option(None, "--max-amount", help="Only loans with amount <= this.")


@app.command()
def init(ctx: typer.Context) -> None:
    """Create or upgrade the warehouse (schemas staging, core, marts; the batch manifest). Idempotent."""
    from loanwatch.warehouse import open_writer

    settings = _settings(ctx)
    with open_writer(settings):
        pass
    console.print(f"warehouse ready: {shown(str(settings.warehouse_path))}")


@app.command()
def generate(
    clients: int = typer.Option(..., "--clients", min=1, help="Number of clients."),
    out: Path = typer.Option(..., "--out", help="Folder to write the files into."),
    seed: int = typer.Option(42, "--seed", help="Random seed: the same seed gives the same files."),
    start: Optional[dt.datetime] = typer.Option(None, "--start", formats=["%Y-%m-%d"], help="First issue date (default: 2 years before --end)."),
    end: Optional[dt.datetime] = typer.Option(None, "--end", formats=["%Y-%m-%d"], help="Data date (default: today)."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl (NDJSON), json (arrays) or csv."),
    dirty_fraction: Optional[float] = typer.Option(
        None, "--dirty-fraction", help="Break this share of records (contract violations of every kind, "
        "duplicates, conflicts) and write answer_key.tsv beside the files. NDJSON only."),
) -> None:
    """Write a synthetic portfolio that follows the input contract (or breaks it, on purpose)."""
    from loanwatch.generate.memory import advice, out_of_memory

    if fmt not in ("jsonl", "json", "csv"):
        _fail(f"--format {fmt!r}: use jsonl, json or csv", EXIT_USAGE)
    if dirty_fraction is not None and (fmt != "jsonl" or not 0 < dirty_fraction < 0.5):
        _fail("--dirty-fraction takes a share between 0 and 0.5, with --format jsonl", EXIT_USAGE)
    writing = False
    try:
        # imported here, inside the guard: under a tight memory limit numpy's or Arrow's libraries
        # may not even map into memory
        from loanwatch.generate.portfolio import generate as make
        from loanwatch.generate.write import write_portfolio

        try:
            portfolio = make(clients, seed, start.date() if start else None, end.date() if end else None)
        except ValueError as exc:
            _fail(str(exc), EXIT_USAGE)
        writing = True
        written = write_portfolio(portfolio, out, fmt)
        del portfolio
        for entity, path in written.items():
            console.print(f"{entity:16} {shown(str(path))}")
        if dirty_fraction is not None:
            from loanwatch.generate.dirty import make_dirty

            key = make_dirty(out, dirty_fraction, seed)
            console.print(f"answer key       {shown(str(key))}")
    except _CLI_SIGNALS:
        raise
    except Exception as exc:  # noqa: BLE001 - only running out of memory is told here; the rest goes on
        if not out_of_memory(exc):
            raise
        if os.environ.get("LOANWATCH_DEBUG"):
            import traceback

            traceback.print_exc()
        _fail(advice(clients, out, writing))


@app.command()
def split(
    directory: Path = typer.Argument(..., exists=True, help="Folder (or file) of raw contract files."),
    parts: int = typer.Option(5, "--parts", min=1, help="Number of chronological parts."),
    out: Path = typer.Option(..., "--out", help="Folder to write part_01/ … into (part_001/ … with 100 parts or more)."),
) -> None:
    """Cut raw files into N chronological incremental batches (part_01/, part_02/, …)."""
    from loanwatch.generate.split import part_name
    from loanwatch.generate.split import split as do_split

    result = do_split([directory], parts, out)
    for part, files in sorted(result.parts.items()):
        console.print(f"{part_name(part, parts)}: {len(files)} files")
    if result.dropped_csv_rows:
        err.print(f"[yellow]warning:[/yellow] {result.dropped_csv_rows} malformed CSV rows were not copied; "
                  "ingest the original files to have them quarantined")


@app.command()
def ingest(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Files, or folders searched recursively."),
    entity: Optional[str] = typer.Option(None, "--entity", help="Entity of every file, instead of the file-name rule."),
    mapping: Optional[Path] = typer.Option(
        None, "--mapping", help="A source mapping (TOML, docs/mappings.md): load other systems' files as they come."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Read, map and validate, show what would load (and the first mapped rows); load nothing."),
) -> None:
    """Load files into staging. The same content again is a no-op.

    Exit codes: 0 all accepted; 3 loaded, some rows or files quarantined; 1 error, nothing loaded; 2 usage.
    """
    from loanwatch.ingest import run as ingest_files
    from loanwatch.ingest.contract import ENTITIES
    from loanwatch.ingest.mapping import load_mapping

    if entity is not None and entity not in ENTITIES:
        _fail(f"--entity {entity!r}: use one of {', '.join(ENTITIES)}", EXIT_USAGE)
    if entity is not None and mapping is not None:
        _fail("--entity and --mapping: give one (the mapping names each file's entity)", EXIT_USAGE)
    missing = [p for p in paths if not p.exists()]
    if missing:
        _fail(f"{missing[0]}: no such file or folder", EXIT_USAGE)
    settings = _settings(ctx)
    source_mapping = load_mapping(mapping) if mapping is not None else None
    would = "would be " if dry_run else ""

    def show(r) -> None:
        name = shown(str(r.path))
        if r.status == "fault":  # the machine's, not the file's: said as an error, exit 1
            log.error(shown(r.message), "file_fault", file=str(r.path), message=r.message)
            return
        if r.status in ("unmatched", "not_read"):
            log.warning(f"not loaded: {name}: {shown(r.message)}", "file_not_loaded", file=str(r.path), message=r.message)
            return
        if r.status == "overlap":  # loaded all the same, as each table says
            log.warning(f"{name}: {shown(r.message)}", "file_matched_twice", file=str(r.path), message=r.message)
            return
        if r.status == "skipped" or r.batch_id is None:
            log.info(f"{name}: {shown(r.message)}", "file_skipped", file=str(r.path), entity=r.entity, status=r.status, message=r.message)
            return
        filtered = f", left out by where {r.filtered:,}" if r.filtered else ""
        log.info(f"{name}: {r.entity or '?'}: read {r.rows_read:,}, {would}accepted {r.accepted:,}, "
                 f"duplicates {r.duplicates:,}, {would}rejected {r.rejected:,}{filtered}",
                 "file_loaded" if not dry_run else "file_checked", file=str(r.path), entity=r.entity, batch_id=r.batch_id,
                 status=r.status, rows_read=r.rows_read, accepted=r.accepted, duplicates=r.duplicates, rejected=r.rejected,
                 filtered=r.filtered)
        for example in r.examples:
            log.warning(f"{'would quarantine' if dry_run else 'quarantined'} {shown(example)}", "row_quarantined",
                        file=str(r.path), reason=example)
        if r.preview:
            from loanwatch.reports.table import Table

            columns = list(dict.fromkeys(k for row in r.preview for k in row))
            render(Table(columns, [[row.get(c) for c in columns] for row in r.preview]), Format.table,
                   title=f"first mapped {r.entity} records")

    with log.progress("ingesting…"):  # a held lock, a full disk: one line (the CLI's guard)
        results = ingest_files(settings, paths, source_mapping, dry_run, entity=entity, on_file=show)
    if not results:
        _fail("no input files found (expected .json, .jsonl, .ndjson or .csv, optionally .gz)")
    if dry_run:
        console.print("dry run: nothing was loaded")
    if any(r.status == "fault" for r in results):
        raise typer.Exit(EXIT_ERROR)
    if any(r.quarantined for r in results):
        if not dry_run and any(r.quarantined and r.status != "not_read" for r in results):
            err.print("some rows were quarantined: see `loanwatch rejects`")
        raise typer.Exit(EXIT_QUARANTINED)


@app.command()
def build(
    ctx: typer.Context,
    full_refresh: bool = typer.Option(False, "--full-refresh", help="Rebuild every model from scratch."),
) -> None:
    """Run the dbt project (core history, schedules, allocation, delinquency, marts, checks), then publish."""
    from loanwatch.transform.build import build as run_build

    with log.progress("building (dbt: models and checks)…"):
        result = run_build(_settings(ctx), full_refresh=full_refresh)
    if result.up_to_date:
        log.info(f"build {result.build_id} is current (data date {result.data_date}): nothing new, nothing run; "
                 "`loanwatch build --full-refresh` rebuilds everything", "build_up_to_date",
                 build_id=result.build_id, data_date=result.data_date)
        return
    for w in result.warnings:
        log.warning(shown(w), "check_warning", build_id=result.build_id, message=w)
    if result.status != "success":
        for e in result.errors:
            log.error(f"failed: {e}", "check_failed", build_id=result.build_id)
        _fail(f"build {result.build_id} failed; the previous serving snapshot stays published")
    log.info(f"build {result.build_id}: success, data date {result.data_date}, snapshot published", "build_published",
             build_id=result.build_id, data_date=result.data_date)


def _open_snapshot(ctx: typer.Context):
    """The serving snapshot; none yet, or a damaged one, is one line (NoSnapshot, a Problem)."""
    from loanwatch.serve import open_snapshot

    return open_snapshot(_settings(ctx))


def _date(value: Optional[dt.datetime]) -> Optional[dt.date]:
    return value.date() if value else None


def _dec(value: Optional[float]) -> Optional[Decimal]:
    return None if value is None else Decimal(str(value))


# Loan-grain filters, shared by every report: one decorator adds the options to a command and
# hands it a LoanFilter as `f` (the Typer form of sqlite-utils' shared option decorators).
_FILTER_OPTIONS = [
    ("min_amount", Optional[float], MinAmountOption),
    ("max_amount", Optional[float], MaxAmountOption),
    ("product", Optional[str], typer.Option(None, "--product", help="Only loans of this product.")),
    ("region", Optional[str], typer.Option(None, "--region", help="Only loans of clients in this region.")),
    ("merchant", Optional[str], typer.Option(None, "--merchant", help="Only loans at this merchant (id or name).")),
    ("issued_from", Optional[dt.datetime],
     typer.Option(None, "--issued-from", formats=["%Y-%m-%d"], help="Only loans issued on or after this date.")),
    ("issued_to", Optional[dt.datetime],
     typer.Option(None, "--issued-to", formats=["%Y-%m-%d"], help="Only loans issued on or before this date.")),
    ("currency", Optional[str],
     typer.Option(None, "--currency", help="Money in this currency (default [reports] currency); loans in other "
                                           "currencies are left out, with a warning naming them.")),
]


def _option_filters(options, build):
    """A decorator adding `options` to a report command, which receives `build(values)` as `f`:
    the loan filters, the ledger's or the call centre's; a contradiction is a usage error."""

    def decorate(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            f = build({name: kwargs.pop(name) for name, _, _ in options})
            if problem := f.contradiction():
                _fail(problem, EXIT_USAGE)
            return fn(*args, f=f, **kwargs)

        params = [p for p in sig.parameters.values() if p.name != "f"]
        params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
                   for name, kind, option in options]
        wrapper.__signature__ = sig.replace(parameters=params)
        return wrapper

    return decorate


def loan_filters(fn):
    """Add the loan-grain filter options to a report command; it receives them as `f`."""
    from loanwatch.reports import LoanFilter

    return _option_filters(_FILTER_OPTIONS, lambda v: LoanFilter(
        _dec(v["min_amount"]), _dec(v["max_amount"]), v["product"], v["region"], v["merchant"],
        _date(v["issued_from"]), _date(v["issued_to"]), v["currency"]))(fn)


_LEDGER_OPTIONS = [
    ("ledger_merchant", Optional[str], typer.Option(None, "--merchant", help="Only this merchant (its id).")),
    ("date_from", Optional[dt.datetime],
     typer.Option(None, "--from", formats=["%Y-%m-%d"], help="Only days on or after this date (the balance counts every earlier event).")),
    ("date_to", Optional[dt.datetime],
     typer.Option(None, "--to", formats=["%Y-%m-%d"], help="Only days on or before this date.")),
]
_CALL_OPTIONS = [
    ("period", str, typer.Option("month", "--period", help="month (YYYY-MM), week (ISO, YYYY-Www) or day.")),
    ("by", str, typer.Option("campaign", "--by", help="campaign, agent, channel (the login after the call's) or all.")),
    ("date_from", Optional[dt.datetime],
     typer.Option(None, "--from", formats=["%Y-%m-%d"], help="Only calls on or after this date (UTC).")),
    ("date_to", Optional[dt.datetime],
     typer.Option(None, "--to", formats=["%Y-%m-%d"], help="Only calls on or before this date (UTC).")),
]
_CONTACT_OPTIONS = [
    ("by", str, typer.Option("campaign", "--by", help="campaign or agent.")),
    *_CALL_OPTIONS[2:],
]


def ledger_filters(fn):
    """--merchant, --from, --to for the merchant ledger's reports."""
    from loanwatch.reports.ledger import LedgerFilter

    return _option_filters(_LEDGER_OPTIONS, lambda v: LedgerFilter(
        v["ledger_merchant"], _date(v["date_from"]), _date(v["date_to"])))(fn)


def call_filters(fn):
    """--period, --by, --from, --to for the call centre's reports."""
    from loanwatch.reports.calls import CallFilter

    return _option_filters(_CALL_OPTIONS, lambda v: CallFilter(
        v["period"], v["by"], _date(v["date_from"]), _date(v["date_to"])))(fn)


def contact_filters(fn):
    """--by, --from, --to for the contact figures."""
    from loanwatch.reports.calls import ContactFilter

    return _option_filters(_CONTACT_OPTIONS, lambda v: ContactFilter(
        v["by"], _date(v["date_from"]), _date(v["date_to"])))(fn)


def book_filters(fn):
    """--currency alone, for the figures of the whole book (the transition matrix, the forecast)."""
    from loanwatch.reports import LoanFilter

    return _option_filters([o for o in _FILTER_OPTIONS if o[0] == "currency"],
                           lambda v: LoanFilter(currency=v["currency"]))(fn)


def _warn_unmatched(con, f) -> None:
    """A filter value no loan has (a typo, say) is not an error, but its report is all zeros."""
    for message in f.unmatched(con):
        err.print(f"[yellow]warning:[/yellow] {shown(message)}")


def _warn_projection(ctx: typer.Context, con, as_of: Optional[dt.date], option: str = "--as-of") -> None:
    """An as-of date after the data date is a projection: said on stderr; beyond the horizon, a
    usage error."""
    from loanwatch.reports import projection

    if message := projection(con, as_of, _settings(ctx).get("reports", "projection_horizon_days"), option):
        err.print(f"[yellow]warning:[/yellow] {shown(message)}")


def _view(ctx: typer.Context, con, kind, f, as_of: Optional[dt.date]):
    """The filter and View of a kind of figures (reports.prepare: nothing of its data is exit 6;
    loans: the currency, --currency or the reporting one, others left out), with the warnings a
    person is owed on stderr: the loans left out, a projection."""
    from loanwatch import reports

    f, view = reports.prepare(con, kind, f, as_of=as_of, reporting=reports.reporting_currency(_settings(ctx)))
    if view.left_out:
        err.print(f"[yellow]warning:[/yellow] {shown(reports.left_out_message(view.currency, view.left_out))}")
    _warn_projection(ctx, con, as_of)
    return f, view


def _report(ctx: typer.Context, entry, fmt: Format, as_of: Optional[dt.date], f, params: dict | None = None) -> None:
    """Run one registry report on the serving snapshot and render it. What its figures rest on (a
    Noted table's notes: the provisions' method, LGD, months of the matrix) ends the table for
    people, under what it shows; with csv or json it goes to stderr, keeping stdout for programs."""
    from loanwatch.reports.table import notes_of

    con = _open_snapshot(ctx)
    try:
        _warn_unmatched(con, f)
        f, view = _view(ctx, con, entry.kind, f, as_of if entry.as_of else None)
        view = view.for_report(entry)
        table = entry.run(con, f=f, as_of=as_of, settings=_settings(ctx), **(params or {}))
        notes = notes_of(table)
        if fmt != Format.table:
            for line in notes:
                err.print(f"note: {shown(line)}")
        said = ([view.describe()] if entry.kind.data == "loans" else []) + notes
        render(table, fmt, title=entry.title, columns=entry.columns, currency=view.currency, note=said)
    except ValueError as exc:
        _fail(str(exc), EXIT_USAGE)
    finally:
        con.close()


def _param_option(param) -> tuple[object, object]:
    """A registry report's own option (registry.Param) as a Typer option: its annotation and
    default. Choices are an enum (click's Choice: another word is a usage error naming them),
    bounds an integer range."""
    if param.choices:
        words = enum.StrEnum(f"{param.name.title()}Choice", {c: c for c in param.choices})
        default = None if param.default is None else words(param.default)
        return Optional[words], typer.Option(default, param.option, help=param.help)
    low, high = param.bounds or (None, None)
    return int, typer.Option(param.default, param.option, min=low, max=high, help=param.help)


def _add_report_command(name: str) -> None:
    """`loanwatch report NAME`, built from the registry's entries of that name: the loan filters
    (or the book's, the ledger's or the call centre's options), --as-of when a view takes it, its own
    options (registry.Param: --by, --method, --months), --view when the name has several entries (or
    the option they name instead: recoveries' --period), --format."""
    from loanwatch.reports import registry

    entries = registry.by_name(name)
    views = [e.view for e in entries if e.view is not None]
    chooser = entries[0].view_option
    own = list({p.name: p for e in entries for p in e.params}.values())

    def command(ctx: typer.Context, f, fmt: Format = FormatOption, **options) -> None:
        view = options.get("view") or (views[0] if views else None)
        if views and view not in views:
            _fail(f"{chooser} {view!r}: use one of {', '.join(views)}", EXIT_USAGE)
        entry = next(e for e in entries if e.view == view)
        given = {p.name: options[p.name] for p in entry.params if options.get(p.name) is not None}
        _report(ctx, entry, fmt, _date(options.get("as_of")), f,
                {k: v.value if isinstance(v, enum.Enum) else v for k, v in given.items()})

    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter("ctx", keyword, annotation=typer.Context), inspect.Parameter("f", keyword)]
    if views:
        described = "; ".join(f"{e.view}: {e.help[0].lower()}{e.help[1:].rstrip('.')}" for e in entries)
        params.append(inspect.Parameter("view", keyword, annotation=str, default=typer.Option(
            views[0], chooser, help=f"{' or '.join(views)} ({described}).")))
    if any(e.as_of for e in entries):
        params.append(inspect.Parameter("as_of", keyword, annotation=Optional[dt.datetime], default=AsOfOption))
    for param in own:
        annotation, option = _param_option(param)
        params.append(inspect.Parameter(param.name, keyword, annotation=annotation, default=option))
    params.append(inspect.Parameter("fmt", keyword, annotation=Format, default=FormatOption))

    def signature_only(**kwargs):
        ctx, f, fmt = kwargs.pop("ctx"), kwargs.pop("f"), kwargs.pop("fmt")
        return command(ctx, f, fmt, **kwargs)

    signature_only.__signature__ = inspect.Signature(params)
    signature_only.__name__ = f"report_{name.replace('-', '_')}"
    signature_only.__doc__ = (entries[0].help if not views else
                              f"Views ({chooser}): " + "; ".join(f"{e.view}, {e.title.lower()}" for e in entries) + ".")
    filters = {"ledger": ledger_filters, "calls": call_filters, "contacts": contact_filters,
               "book": book_filters}.get(entries[0].filters, loan_filters)
    report_app.command(name)(filters(signature_only))


def _add_report_commands() -> None:
    from loanwatch.reports import registry

    for name in registry.names():
        _add_report_command(name)


_add_report_commands()


@report_app.command("html")
@loan_filters
def report_html(
    ctx: typer.Context, f,
    out: Path = typer.Option(..., "--out", help="The HTML file to write."),
    as_of: Optional[dt.datetime] = AsOfOption,
) -> None:
    """A self-contained HTML report (the reports of every dashboard page, interactive charts, no network needed)."""
    from loanwatch.reports import registry

    try:
        from loanwatch.reports.html import write_html
    except ImportError as exc:  # plotly draws the charts: it comes with the dashboard extra
        raise UsageProblem(f"report html needs {(exc.name or 'plotly').split('.')[0]}, which comes with the dashboard extra: "
                           "pip install 'loanwatch[dashboard]'") from None

    con = _open_snapshot(ctx)
    try:
        _warn_unmatched(con, f)
        f, view = _view(ctx, con, registry.FILTERS["loans"], f, _date(as_of))
        write_html(con, out, f=f, as_of=_date(as_of), view=view, settings=_settings(ctx))
    finally:
        con.close()
    console.print(f"written {shown(str(out))} ({out.stat().st_size / 1e6:.1f} MB)")


@notify_app.command("plan")
def notify_plan(
    ctx: typer.Context,
    date: Optional[dt.datetime] = typer.Option(None, "--date", formats=["%Y-%m-%d"], help="Plan date (default: the data date)."),
    call_capacity: Optional[int] = typer.Option(None, "--call-capacity", min=0, help="Calls the call centre can make (default [notify] call_capacity)."),
    show_all: bool = typer.Option(False, "--all", help="Also list suppressed contacts, with why."),
    fmt: Format = FormatOption,
) -> None:
    """Today's planned contacts: one row per client and channel, with the rule and the reason."""
    from loanwatch.notify.plan import SHOWN, contact_plan

    settings = _settings(ctx)
    con = _open_snapshot(ctx)
    try:
        _warn_projection(ctx, con, _date(date), "--date")
        render(contact_plan(con, settings, _date(date), call_capacity, show_all), fmt, title="Contact plan",
               columns=SHOWN, shown_columns=[c.name for c in SHOWN])
    finally:
        con.close()


@notify_app.command("send")
def notify_send(
    ctx: typer.Context,
    date: Optional[dt.datetime] = typer.Option(None, "--date", formats=["%Y-%m-%d"], help="Plan date (default: the data date)."),
    dry_run: Optional[Path] = typer.Option(None, "--dry-run", help="Write the rendered messages (.eml, .txt, calls CSV) into this folder; send nothing."),
    call_capacity: Optional[int] = typer.Option(None, "--call-capacity", min=0, help="Calls the call centre can make today."),
) -> None:
    """Put today's plan in the outbox and deliver what is pending (email, SMS, call-centre queue).

    Safe to run again: a message (client, rule, date) is delivered once.
    """
    from loanwatch.notify.send import send

    settings = _settings(ctx)
    con = _open_snapshot(ctx)  # a clear message when nothing is published yet
    try:
        _warn_projection(ctx, con, _date(date), "--date")
    finally:
        con.close()
    with log.progress("sending…"):
        result = send(settings, _date(date), dry_run, call_capacity=call_capacity)
    for message_id, reason in result.failures:
        log.warning(f"failed {shown(message_id)}: {shown(reason)}", "message_failed", message_id=message_id, reason=reason)
    if dry_run is not None:
        console.print(f"dry run for {result.plan_date}: {len(result.written)} file(s) written to {shown(str(dry_run))}"
                      + (f"; {result.failed} message(s) cannot be sent" if result.failed else ""))
    else:
        log.info(f"{result.plan_date}: {result.enqueued} new in the outbox; sent {result.sent}, "
                 f"held outside contact hours {result.deferred}, failed {result.failed}"
                 + ("; stopped on request, run again to continue" if result.stopped else ""),
                 "messages_sent", plan_date=result.plan_date, new=result.enqueued, sent=result.sent,
                 held=result.deferred, failed=result.failed, stopped=result.stopped)
    if result.failed:
        err.print("some messages failed, each with its reason above (the rest went out); "
                  "`loanwatch outbox --status failed` lists them, with why")
        raise typer.Exit(EXIT_ERROR)


@notify_app.command("weekly")
def notify_weekly(
    ctx: typer.Context,
    date: Optional[dt.datetime] = typer.Option(None, "--date", formats=["%Y-%m-%d"], help="Last day of the week (default: the data date)."),
    to: Optional[str] = typer.Option(None, "--to", help="Email the summary to this address ([notify] management_to)."),
    fmt: Format = FormatOption,
) -> None:
    """The weekly management summary, against the previous week; --to emails it."""
    from loanwatch.notify.internal import weekly_summary

    con = _open_snapshot(ctx)
    try:
        _warn_projection(ctx, con, _date(date), "--date")
    finally:
        con.close()
    table, recipient, not_sent = weekly_summary(_settings(ctx), _date(date), to)
    if not_sent:
        err.print(shown(not_sent))
    elif recipient:
        console.print(f"sent to {shown(recipient)}")
    render(table, fmt, title="Weekly summary")


class OutboxStatus(enum.StrEnum):
    pending = "pending"
    failed = "failed"
    sent = "sent"
    expired = "expired"
    all = "all"


@app.command("outbox")
def outbox_messages(
    ctx: typer.Context,
    status: OutboxStatus = typer.Option(OutboxStatus.all, "--status",
                                        help="Only messages in this state (pending: not sent yet; failed: for good)."),
    fmt: Format = FormatOption,
) -> None:
    """The notifier's outbox: each message with its status, attempts, next attempt and last error,
    the unsent first, so that stuck messages show (docs/operations.md)."""
    from loanwatch.notify.outbox import SHOWN, listing

    table = listing(_settings(ctx), status.value)
    if not table.rows and fmt == Format.table:
        console.print("no messages" + ("" if status == OutboxStatus.all else f" {status.value}")
                      + " in the outbox (`loanwatch notify send` fills it)")
        return
    render(table, fmt, title="Outbox" if status == OutboxStatus.all else f"Outbox: {status.value}",
           columns=SHOWN, shown_columns=[c.name for c in SHOWN])


@notify_app.command("simulate")
def notify_simulate(
    clients: int = typer.Option(5000, "--clients", min=100, help="Size of the simulated portfolio."),
    seed: int = typer.Option(7, "--seed"),
    days: int = typer.Option(120, "--days", min=14, help="Days to run forward."),
    call_capacity: int = typer.Option(40, "--call-capacity", min=0, help="Calls a day."),
    fmt: Format = FormatOption,
) -> None:
    """Run the baseline (message every late client daily, calls at random) and loanwatch's plan forward
    on the generator's behaviour model; compare contacts, money collected, cures, cap breaches."""
    from loanwatch.notify.simulate import as_rows, simulate
    from loanwatch.reports.table import Table

    cols, rows = as_rows(simulate(clients, seed=seed, horizon=days, call_capacity=call_capacity))
    render(Table(cols, rows), fmt, title=f"Contact policies over {days} days, {clients:,} clients")


@app.command()
def batches(ctx: typer.Context, fmt: Format = FormatOption) -> None:
    """List ingested files with their counts (read = accepted + duplicates + rejected) and status.
    While a writer (ingest, build, run) holds the warehouse, it waits ([warehouse] lock_timeout),
    then says the warehouse is busy."""
    from loanwatch.reports.table import Table
    from loanwatch.warehouse import read_warehouse

    with read_warehouse(_settings(ctx)) as con:
        cur = con.execute(
            """SELECT batch_id, entity, file_name, rows_read, rows_accepted, rows_duplicate, rows_rejected,
                      status, message, ingested_at FROM meta.batches ORDER BY batch_id"""
        )
        table = Table([d[0] for d in cur.description], cur.fetchall())
    render(table, fmt, title="Batches")


@app.command()
def rejects(
    ctx: typer.Context,
    file: Optional[str] = typer.Option(None, "--file", help="Only rows from files with this name."),
    fmt: Format = FormatOption,
) -> None:
    """List quarantined rows: entity, file, line, field, reason, raw."""
    from loanwatch import quality

    try:
        table = quality.rejects(_settings(ctx), file)
    except (LookupError, RuntimeError) as exc:
        _fail(str(exc))
    render(table, fmt, title="Quarantined rows")


@app.command()
def check(
    ctx: typer.Context,
    rows: Optional[str] = typer.Option(None, "--rows", help="List the failing rows of this check."),
    build_id: Optional[int] = typer.Option(None, "--build", help="A past build (default: the latest)."),
    fmt: Format = FormatOption,
) -> None:
    """Data-quality results of the latest build (or --build N); --rows CHECK lists a check's failing rows.

    Exit code 1 when an error-severity check failed in that build.
    """
    from loanwatch.quality import check_rows, latest_results

    settings = _settings(ctx)
    try:
        if rows:
            failing = check_rows(settings, rows)
            if failing.columns or fmt == Format.json:
                render(failing, fmt, title=f"Failing rows of {rows}")
            elif fmt == Format.table:  # (csv: nothing, not even a header: no columns are known)
                console.print(f"{shown(rows)}: no failing rows (the check passed when the build last ran it)")
            return
        build, table = latest_results(settings, build_id)
    except (LookupError, RuntimeError) as exc:
        _fail(str(exc))
    if fmt == Format.table:
        console.print(f"build {build['build_id']}: {build['status']}, data date {build['data_date']}"
                      + (", published" if build["published"] else ", not published")
                      + (f" - {shown(build['message'])}" if build["message"] else ""))
    render(table, fmt, title="Data-quality checks")
    if any(r[2] == "error" and r[3] in ("fail", "error") for r in table.rows):
        raise typer.Exit(EXIT_ERROR)


@app.command()
def dashboard(
    ctx: typer.Context,
    port: Optional[int] = typer.Option(None, "--port", help="Port to listen on (default [dashboard] port, 8501)."),
    address: str = typer.Option("127.0.0.1", "--address", help="Address to listen on (0.0.0.0 for every interface)."),
) -> None:
    """Serve the web dashboard on the serving snapshot (Ctrl-C stops it)."""
    from loanwatch.dashboard import serve

    settings = _settings(ctx)
    chosen = port or int(settings.get("dashboard", "port"))
    console.print(f"loanwatch dashboard: http://{'localhost' if address in ('127.0.0.1', '0.0.0.0') else address}:{chosen}/")
    raise typer.Exit(serve(settings, chosen, address))


@app.command()
def demo(
    ctx: typer.Context,
    clients: int = typer.Option(5000, "--clients", help="Size of the sample portfolio."),
    parts: int = typer.Option(5, "--parts", help="Incremental batches to ingest one by one."),
    seed: int = typer.Option(42, "--seed"),
) -> None:
    """Generate a sample portfolio, ingest it in parts with a build after each, print the figures."""
    from loanwatch.demo import run_demo

    code = run_demo(_settings(ctx), clients=clients, parts=parts, seed=seed, console=console)
    raise typer.Exit(code)


@app.command("run")
def run_day(
    ctx: typer.Context,
    inbox: Optional[list[Path]] = typer.Option(None, "--inbox", help="A folder of new files (repeatable; default [run] inbox)."),
    date: Optional[dt.datetime] = typer.Option(None, "--date", formats=["%Y-%m-%d"],
                                               help="The day: plan date of the messages, weekday of the summary (default: today)."),
    no_notify: bool = typer.Option(False, "--no-notify", help="Ingest and build only: send nothing."),
    trigger: str = typer.Option("cli", "--trigger", hidden=True, help="Who started the run (recorded): cli or schedule."),
) -> None:
    """One day's cycle: ingest the inbox's new files, build and publish, then (as [run] says) send the
    day's messages and, on its weekday, the weekly summary. Each run is recorded: `loanwatch runs`.

    Exit codes: 0 done, or nothing new; 3 done, some rows quarantined; 4 the build failed (nothing
    sent); 5 sending failed; 1 another error; 2 usage.
    """
    from loanwatch.operations.run import counts_text
    from loanwatch.operations.run import run as run_cycle

    def on_step(step) -> None:
        style = {"ok": "green", "quarantined": "yellow", "failed": "red", "faulted": "red"}.get(step.status, "dim")
        detail = counts_text(step.counts)
        log.info(f"[{style}]{step.name}: {step.status}[/{style}]" + (f" - {shown(detail)}" if detail else "")
                 + (f" ({shown(step.message)})" if step.message else ""),
                 "run_step", step=step.name, status=step.status, message=step.message or None, **step.counts)

    result = run_cycle(_settings(ctx), inbox, _date(date), notify=not no_notify, trigger=trigger, on_step=on_step)
    line = f"run {result.run_id}: {result.status}" + (f" - {shown(result.message)}" if result.message else "")
    if log.json:
        log.info(line, "run_finished", run_id=result.run_id, status=result.status, exit_code=result.exit_code,
                 message=result.message or None)
    else:
        (err if result.exit_code else console).print(line)
    raise typer.Exit(result.exit_code)


@app.command()
def runs(
    ctx: typer.Context,
    run_id: Optional[int] = typer.Argument(None, help="One run: its steps with their counts and messages."),
    last: int = typer.Option(30, "--last", min=1, help="How many of the latest runs."),
    fmt: Format = FormatOption,
) -> None:
    """The history of `loanwatch run`: each run, newest first, with each step's status; `runs N`
    shows run N's steps with their counts and messages."""
    from loanwatch.operations.run import run_steps
    from loanwatch.operations.run import runs as run_history

    try:
        table = run_history(_settings(ctx), last) if run_id is None else run_steps(_settings(ctx), run_id)
    except (LookupError, RuntimeError) as exc:
        _fail(str(exc))
    if not table.rows and fmt == Format.table:
        console.print("no runs yet: `loanwatch run` records each one")
        return
    render(table, fmt, title="Runs" if run_id is None else f"Run {run_id}")


@app.command()
def docs(
    ctx: typer.Context,
    out: Path = typer.Option(Path("loanwatch_docs"), "--out", help="Folder for the site (index.html)."),
    serve: bool = typer.Option(False, "--serve", help="Then serve it on localhost until Ctrl-C."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="Port for --serve."),
) -> None:
    """dbt's documentation of the warehouse: every model, column and check, with the lineage graph;
    one HTML file that opens without a network."""
    from loanwatch.operations.docs import serve_docs, write_docs

    with log.progress("generating the documentation (dbt docs)…"):
        index = write_docs(_settings(ctx), out)
    log.info(f"written {shown(str(index))}", "docs_written", path=str(index))
    if serve:
        console.print(f"serving on http://localhost:{port}/ (Ctrl-C stops)")
        serve_docs(out, port)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def dbt(
    ctx: typer.Context,
    args: Optional[list[str]] = typer.Argument(None, help="dbt's command and options, as for dbt itself.", show_default=False),
) -> None:
    """dbt itself on this home, with its profile, settings (as dbt vars) and folders, from any folder:
    `loanwatch dbt ls`, `loanwatch dbt test`, `loanwatch dbt docs generate`, `loanwatch dbt build
    --select fct_calls+` (dbt's own help: `loanwatch dbt -- build --help`). Reading commands read the
    serving snapshot; build, run, seed and snapshot write a working copy and never publish: `loanwatch
    build` publishes, and rebuilds everything after them (docs/architecture.md, For analytics engineers)."""
    from loanwatch.transform.passthrough import run as run_passthrough

    raise typer.Exit(run_passthrough(_settings(ctx), list(args or []) + list(ctx.args)))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def mf(
    ctx: typer.Context,
    args: Optional[list[str]] = typer.Argument(None, help="mf's command and options, as for mf itself.", show_default=False),
) -> None:
    """The semantic layer: MetricFlow's `mf` on the serving snapshot, e.g. `loanwatch mf query --metrics
    overdue_share --group-by metric_time__month`, `loanwatch mf list metrics` (mf's own help:
    `loanwatch mf -- query --help`). Needs the semantic extra (docs/architecture.md, Semantic layer)."""
    from loanwatch.transform.passthrough import run_mf

    raise typer.Exit(run_mf(_settings(ctx), list(args or []) + list(ctx.args)))


@app.command()
def schedule(
    ctx: typer.Context,
    at: Optional[str] = typer.Option(None, "--at", help="Run every day at this time (HH:MM, in [schedule] timezone)."),
    cron: Optional[str] = typer.Option(None, "--cron", help="Run on this cron expression (default [schedule] cron)."),
    inbox: Optional[list[Path]] = typer.Option(None, "--inbox", help="Passed to each run (default [run] inbox)."),
    no_notify: bool = typer.Option(False, "--no-notify", help="Passed to each run: send nothing."),
) -> None:
    """Start `loanwatch run` on a schedule and keep going, also after a failed run; stop with SIGTERM
    or Ctrl-C. Each run is recorded (`loanwatch runs`); a run that fails is told to Slack when configured."""
    from loanwatch.operations.schedule import cron_expression, serve, timezone

    if at is not None and cron is not None:
        _fail("--at and --cron: give one", EXIT_USAGE)
    settings = _settings(ctx)
    expression = cron_expression(settings, at, cron)
    timezone(settings)
    run_args = [a for p in (inbox or []) for a in ("--inbox", str(p))] + (["--no-notify"] if no_notify else [])

    def say(line: str) -> None:
        log.info(f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} schedule: {shown(line)}", "schedule", message=line)

    say(f"{expression} ({settings.get('schedule', 'timezone')}); stop with SIGTERM or Ctrl-C")
    if log.json:  # each run's events too
        os.environ["LOANWATCH_LOG_FORMAT"] = "json"
    raise typer.Exit(serve(settings, expression, run_args, say))


def run() -> None:
    """The `loanwatch` command: the CLI, and a quick exit from a process that loaded dbt.

    Such a process (`build`, `demo`) holds dbt's whole parsed project. At exit Python would walk
    and free those objects one by one: 0.6-0.7 s of a `loanwatch build` at L, after the build is
    done and checkpointed. Instead, the quick exit closes dbt's DuckDB instance (if the build has
    not already), runs what the libraries registered for exit (logging flushes its files),
    flushes output and ends the process; the operating system takes the memory back at once.
    """
    try:
        app(prog_name="loanwatch")  # also under `python -m` or `python -c`: usage lines name the command
        code = 0
    except SystemExit as exc:
        code = exc.code
    if "dbt.cli" in sys.modules and (code is None or isinstance(code, int)):
        from loanwatch.transform import release_dbt

        release_dbt()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code or 0)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
