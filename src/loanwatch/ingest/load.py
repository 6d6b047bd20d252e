"""Loading files into staging: validate, drop duplicates, quarantine the rest, record the batch.

Each file is one batch and one transaction: a crash (even SIGKILL) leaves either the whole file
loaded and recorded in the manifest, or nothing of it, so running the same command again is
always safe. The same content again (by SHA-256) is a no-op.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import available_timezones

import duckdb

from loanwatch.errors import MachineFault, UsageProblem, environmental
from loanwatch.errors import explain as explain_error
from loanwatch.ingest.contract import ENTITIES, Entity, validation_sql
from loanwatch.ingest.mapping import FileMapping, Mapping, as_utf8, check_columns, mapped_sql, read_lookups
from loanwatch.ingest.read import (
    InputFile,
    Scan,
    UnreadableFile,
    csv_header,
    entity_of,
    explain,
    file_version,
    format_of,
    read_lines,
    scan,
    special_kind,
)


@dataclass(frozen=True)
class Limits:
    """[ingest] max_record_bytes: a longer record is quarantined alone; max_uncompressed_bytes: a
    gzip file that inflates past it is quarantined unread."""

    max_record_bytes: int = 64 << 20
    max_uncompressed_bytes: int = 20_000_000_000

    @classmethod
    def of(cls, settings) -> Limits:
        return cls(int(settings.get("ingest", "max_record_bytes")), int(settings.get("ingest", "max_uncompressed_bytes")))


@dataclass
class FileResult:
    path: Path
    entity: str | None
    status: str  # loaded | partial | rejected | skipped | unmatched | waiting | not_read (passed over, said) | fault (the machine's: exit 1) | overlap (a warning: loaded through tables of different entities)
    batch_id: int | None = None
    rows_read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    message: str = ""
    examples: list[str] = field(default_factory=list)
    filtered: int = 0  # source records a mapping's conditions (where, where_not, …) leave out (counted, not loaded)
    preview: list[dict] = field(default_factory=list)  # --dry-run: the first mapped records

    @property
    def quarantined(self) -> bool:
        """Rows or the file were quarantined, or the file was passed over (not_read): exit 3."""
        return self.status in ("partial", "rejected", "not_read")


def _ensure_timezones(con: duckdb.DuckDBPyConnection) -> None:
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = '_timezones' AND temporary"
    ).fetchone()[0]
    if not exists:
        # one statement (a row per zone through executemany costs 0.1 s)
        con.execute("CREATE TEMP TABLE _timezones AS SELECT unnest(CAST(? AS VARCHAR[])) AS name",
                    [sorted(available_timezones())])


def latest_business_date(max_future_days: int = 1, today: dt.date | None = None) -> dt.date:
    """The last day a business date may fall on: the day of ingest (UTC) plus max_future_days."""
    today = today or dt.datetime.now(dt.UTC).date()
    return today + dt.timedelta(days=int(max_future_days))


def ingest_file(con: duckdb.DuckDBPyConnection, path: Path, entity_name: str | None = None,
                scanned: Scan | None = None, latest_date: dt.date | None = None,
                check_repeated_keys: bool = True, mapping: FileMapping | None = None,
                dry_run: bool = False, limits: Limits | None = None) -> FileResult:
    """Load one file as one batch. ``scanned``: its content hash and longest line, when already taken;
    ``latest_date`` the last day a business date may fall on (default: tomorrow, UTC);
    ``check_repeated_keys``: quarantine JSON records that give a field twice; ``mapping``: the
    source mapping's table for this file (its entity wins); ``dry_run``: do everything, report,
    and roll back."""
    path = Path(path)
    con.execute("SET VARIABLE loanwatch_latest_date = CAST(? AS DATE)", [latest_date or latest_business_date()])
    entity_name = mapping.entity.name if mapping else (entity_name or entity_of(path))
    limits = limits or Limits()
    scanned = scanned or scan(path, limits.max_uncompressed_bytes)
    digest = scanned.digest
    mapping_hash = mapping.digest if mapping else None
    seen = con.execute(
        "SELECT batch_id, file_name FROM meta.batches WHERE content_hash = ? AND entity IS NOT DISTINCT FROM ? "
        "AND mapping_hash IS NOT DISTINCT FROM ? LIMIT 1",
        [digest, entity_name, mapping_hash],
    ).fetchone()
    if seen:
        return FileResult(path, entity_name, "skipped", seen[0],
                          message=f"already ingested (batch {seen[0]}, {seen[1]})")

    _ensure_timezones(con)
    entity = ENTITIES.get(entity_name) if entity_name else None
    # Read before the transaction: a file the engine cannot read must not abort the transaction
    # that records its quarantine.
    unreadable: str | None = None
    reader_rejects: list = []
    if entity is None:
        unreadable = ("cannot tell the entity from the file name: name it after one of "
                      + ", ".join(ENTITIES) + " (e.g. loans_01.jsonl) or pass --entity")
    elif scanned.inflates_past is not None:
        unreadable = (f"the gzip file inflates to more than [ingest] max_uncompressed_bytes ({scanned.inflates_past:,} bytes): "
                      "not read (raise the setting if the file is genuine)")
    else:
        try:
            with as_utf8(path, mapping.encoding) if mapping else contextlib.nullcontext(path) as readable:
                f = InputFile(readable, entity.name, mapping.format_of(readable) if mapping else format_of(readable))
                reader_rejects = read_lines(con, f, delimiter=mapping.delimiter if mapping else ",",
                                            longest=None if mapping and readable != path else scanned.longest,
                                            max_record=limits.max_record_bytes, ended=scanned.ended)
            try:
                # Lines are numbered by now: the rest needs no order (line_no travels along).
                con.execute("SET preserve_insertion_order = false")
                if mapping:
                    sql, params = mapped_sql(mapping)
                    con.execute(f"CREATE OR REPLACE TEMP TABLE _mapped AS {sql}", params)
                    con.execute(f"CREATE OR REPLACE TEMP TABLE _valid AS {validation_sql(entity, False, mapped=True)}")
                    _name_source_columns(con, mapping)
                else:
                    con.execute(f"CREATE OR REPLACE TEMP TABLE _valid AS {validation_sql(entity, check_keys=check_repeated_keys and f.fmt != 'csv')}")
            except duckdb.Error as exc:
                if environmental(exc):
                    raise
                raise UnreadableFile(explain(exc, f)) from None
            finally:
                # the raw text lives on in _valid
                con.execute("DROP VIEW IF EXISTS _lines; DROP TABLE IF EXISTS _text")
        except UnreadableFile as exc:
            unreadable = str(exc)
        if file_version(path) != scanned.version:
            # written to since it was hashed (still being written?): what was read may not be
            # what the hash names, so nothing of it is recorded; the next run reads it whole
            con.execute("DROP TABLE IF EXISTS _valid; DROP TABLE IF EXISTS _mapped")
            return FileResult(path, entity_name, "waiting",
                              message="changed while it was being read (still being written?): left for the next run")

    con.execute("BEGIN TRANSACTION")
    try:
        batch_id = con.execute("SELECT nextval('meta.batch_ids')").fetchone()[0]
        if unreadable is not None:
            result = _reject_file(con, batch_id, path, entity_name, digest, unreadable, mapping_hash)
        else:
            filtered = con.execute("SELECT count(*) FROM _mapped WHERE NOT keep").fetchone()[0] if mapping else 0
            result = _load(con, batch_id, path, entity, digest, reader_rejects, mapping_hash, filtered)
            if mapping and dry_run:
                result.preview = [json.loads(d) for (d,) in con.execute(
                    "SELECT doc FROM _mapped WHERE keep AND doc IS NOT NULL ORDER BY line_no LIMIT 5").fetchall()]
        con.execute("ROLLBACK" if dry_run else "COMMIT")
        return result
    except BaseException:
        # the engine may have ended the transaction itself (a full disk): the first error counts
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


def _name_source_columns(con, mapping: FileMapping) -> None:
    """A contract rule broken by a mapped record names the source column it came from:
    `amount "-3" must be greater than 0 (column Monto)`."""
    sources = [[f.name, mapping.column_of(f.name)] for f in mapping.entity.fields if mapping.column_of(f.name)]
    con.execute("CREATE OR REPLACE TEMP TABLE _sources (field VARCHAR, source VARCHAR)")
    if sources:
        con.executemany("INSERT INTO _sources VALUES (?, ?)", sources)
    con.execute("""
        UPDATE _valid SET error_reason = error_reason || ' (' || s.source || ')'
        FROM _sources s WHERE s.field = _valid.error_field AND _valid.error_reason IS NOT NULL""")


def _reject_file(con, batch_id: int, path: Path, entity: str | None, digest: str, reason: str,
                 mapping_hash: str | None = None) -> FileResult:
    con.execute(
        "INSERT INTO meta.rejects VALUES (?, ?, ?, NULL, NULL, ?, NULL)",
        [batch_id, entity, path.name, reason],
    )
    _record_batch(con, batch_id, entity, path, digest, 0, 0, 0, 0, "rejected", reason, mapping_hash)
    return FileResult(path, entity, "rejected", batch_id, message=reason, examples=[f"{path.name}: {reason}"])


def _record_batch(con, batch_id, entity, path: Path, digest, read, accepted, dups, rejected, status, message,
                  mapping_hash: str | None = None):
    con.execute(
        """INSERT INTO meta.batches (batch_id, entity, file_path, file_name, content_hash, size_bytes, rows_read,
               rows_accepted, rows_duplicate, rows_rejected, status, message, ingested_at, mapping_hash)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?)""",
        [batch_id, entity, str(path), path.name, digest, path.stat().st_size,
         read, accepted, dups, rejected, status, message, mapping_hash],
    )


def _load(con, batch_id: int, path: Path, entity: Entity, digest: str, reader_rejects: list,
          mapping_hash: str | None = None, filtered: int = 0) -> FileResult:
    """``filtered``: source records a mapping left out (read, counted, not loaded)."""
    version_key = list(entity.key_fields) + (["updated_at"] if entity.versioned else [])
    key_cols = ", ".join(version_key)
    typed = [x.name for x in entity.fields]
    # Content identity is the typed values (so key order, spacing or 12.0 vs 12 do not matter),
    # compared only where a key repeats in the file or already exists in staging: most keys are
    # new, and need neither a hash nor a sort.
    def content(alias: str = "") -> str:
        return "row(" + ", ".join(alias + x for x in typed) + ")"

    # the key as a reason quotes it: instalments are "L-1 #2" (loan and number), "L-1 2024-06-01 #2"
    # with an effective_from
    key_value = "concat_ws(' ', " + ", ".join(
        f"CAST(c.{k} AS VARCHAR)" if k != "number" else f"'#' || CAST(c.{k} AS VARCHAR)" for k in entity.key_fields) + ")"

    def same_key(a: str, b: str) -> str:
        # an optional key field (instalments' effective_from) matches when both are absent
        return " AND ".join(
            f"{a}.{k} IS NOT DISTINCT FROM {b}.{k}" if k in entity.optional_key else f"{a}.{k} = {b}.{k}"
            for k in version_key)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _classified AS
        WITH candidates AS (
            SELECT line_no, {key_cols} FROM _valid WHERE error_reason IS NULL
        ), repeated AS (
            SELECT {key_cols} FROM candidates GROUP BY {key_cols} HAVING count(*) > 1
        ), ranked AS (
            SELECT line_no,
                row_number() OVER w AS rn,
                {content()} IS NOT DISTINCT FROM first_value({content()}) OVER w AS same_as_first,
                first_value(line_no) OVER w AS first_line
            FROM _valid SEMI JOIN repeated ON {same_key("_valid", "repeated")}
            WHERE error_reason IS NULL
            WINDOW w AS (PARTITION BY {key_cols} ORDER BY line_no)
        ), existing AS (
            SELECT c.line_no, any_value(s.file_name) AS old_file, any_value(s.line_no) AS old_line,
                bool_or({content("s.")} IS NOT DISTINCT FROM {content("v.")}) AS same_as_old
            FROM candidates c
            JOIN {entity.table} s ON {same_key("c", "s")}
            JOIN _valid v ON v.line_no = c.line_no
            GROUP BY c.line_no
        )
        -- Only the rows that are not simply accepted: the few duplicates and conflicts.
        SELECT * FROM (
            SELECT c.line_no, {key_value} AS key_value, r.first_line, e.old_file, e.old_line,
                CASE
                    WHEN e.same_as_old THEN 'duplicate'
                    WHEN e.line_no IS NOT NULL THEN 'conflict_existing'
                    WHEN r.rn > 1 AND r.same_as_first THEN 'duplicate'
                    WHEN r.rn > 1 THEN 'conflict_file'
                END AS fate
            FROM candidates c
            LEFT JOIN ranked r USING (line_no)
            LEFT JOIN existing e USING (line_no)
            WHERE r.line_no IS NOT NULL OR e.line_no IS NOT NULL
        ) WHERE fate IS NOT NULL
    """)

    what = "same " + " and ".join(list(entity.key_fields) + (["updated_at"] if entity.versioned else []))
    con.execute(f"""
        INSERT INTO meta.rejects
        SELECT ?, ?, ?, line_no, error_field, error_reason, raw FROM _valid WHERE error_reason IS NOT NULL
        UNION ALL
        SELECT ?, ?, ?, c.line_no, '{entity.key}',
            CASE c.fate
                WHEN 'conflict_existing' THEN format('{entity.key} "{{}}" conflicts with the record loaded from {{}}:{{}} ({what}, different content)', c.key_value, c.old_file, c.old_line)
                ELSE format('{entity.key} "{{}}" conflicts with line {{}} of this file ({what}, different content)', c.key_value, c.first_line)
            END,
            v.raw
        FROM _classified c JOIN _valid v USING (line_no) WHERE c.fate LIKE 'conflict%'
    """, [batch_id, entity.name, path.name] * 2)
    if reader_rejects:
        con.executemany(
            "INSERT INTO meta.rejects VALUES (?, ?, ?, ?, NULL, ?, ?)",
            [[batch_id, entity.name, path.name, line, reason, raw] for line, reason, raw in reader_rejects],
        )

    columns = ", ".join(typed)
    con.execute(f"""
        INSERT INTO {entity.table} (batch_id, file_name, line_no, record, {columns})
        SELECT ?, ?, v.line_no, v.raw, {", ".join("v." + x for x in typed)}
        FROM _valid v ANTI JOIN _classified c USING (line_no) WHERE v.error_reason IS NULL
    """, [batch_id, path.name])
    if entity.name == "loans":
        con.execute("""
            INSERT INTO staging.loan_schedules
            SELECT ?, loan_id, updated_at, i.n::INTEGER,
                   CAST(trim(i.item.due_date) AS DATE),
                   CAST(i.item.principal AS DECIMAL(18,2)),
                   coalesce(CAST(i.item.interest AS DECIMAL(18,2)), 0),
                   coalesce(CAST(i.item.fee AS DECIMAL(18,2)), 0),
                   coalesce(CAST(i.item.penalty AS DECIMAL(18,2)), 0)
            FROM (
                SELECT loan_id, updated_at,
                       unnest(sched) AS item, unnest(generate_series(1, len(sched))) AS n
                FROM _valid v ANTI JOIN _classified c USING (line_no)
                WHERE v.error_reason IS NULL AND v.sched IS NOT NULL
            ) AS i(loan_id, updated_at, item, n)
        """, [batch_id])

    lines, invalid, dups, conflicts = con.execute("""
        SELECT count(*), count(*) FILTER (WHERE error_reason IS NOT NULL),
               (SELECT count(*) FILTER (WHERE fate = 'duplicate') FROM _classified),
               (SELECT count(*) FILTER (WHERE fate LIKE 'conflict%') FROM _classified)
        FROM _valid
    """).fetchone()
    accepted = lines - invalid - dups - conflicts
    read = lines + len(reader_rejects) + filtered
    rejected = invalid + conflicts + len(reader_rejects)
    status = "loaded" if rejected == 0 else "partial"
    examples = [
        f"{path.name}:{line}: {reason}" if line is not None else f"{path.name}: {reason}"
        for line, reason in con.execute(
            "SELECT line_no, reason FROM meta.rejects WHERE batch_id = ? ORDER BY line_no LIMIT 5", [batch_id]
        ).fetchall()
    ]
    message = f"{rejected} row(s) quarantined" if rejected else ""
    _record_batch(con, batch_id, entity.name, path, digest, read, accepted, dups, rejected, status, message,
                  mapping_hash)
    return FileResult(path, entity.name, status, batch_id, read, accepted, dups, rejected, message, examples,
                      filtered)




def source_columns(con: duckdb.DuckDBPyConnection, path: Path, fm: FileMapping) -> list[str] | None:
    """The columns of a source file as the mapping reads it (None: an empty file, or one that
    cannot be read: ingest then quarantines it, with its reason)."""
    try:
        with as_utf8(path, fm.encoding) as readable:
            fmt = fm.format_of(readable)
            if fmt == "csv":
                return csv_header(readable, fm.delimiter)
            read_lines(con, InputFile(readable, fm.entity.name, fmt))
            keys = con.execute("SELECT DISTINCT unnest(json_keys(raw)) FROM _lines WHERE json_valid(raw) "
                               "AND json_type(raw) = 'OBJECT'").fetchall()
            return sorted(k for (k,) in keys) or None
    except (UnreadableFile, duckdb.Error) as exc:
        if environmental(exc):
            raise
        return None
    finally:
        con.execute("DROP VIEW IF EXISTS _lines; DROP TABLE IF EXISTS _text")


def plan_mapped(con: duckdb.DuckDBPyConnection, mapping: Mapping, files: list[Path], strict: bool = True,
                results: list | None = None, on_file=None) -> tuple[list[tuple[Path, FileMapping]], list[Path]]:
    """Every (file, mapping table) pair to load, and the files no table matches (but the code
    tables the mapping's lookups read). A table that reads a column its file does not have, or a
    code table missing or without its columns, is a usage error, before anything is loaded;
    unless not ``strict``: then that pair is a FileResult appended to ``results`` (not loaded, not
    recorded: once the mapping or the file is fixed, it loads) and the rest goes on. The code
    tables are read here, once each (temp tables the pairs' tables name; drop_lookups)."""
    pairs, unmatched = [], []
    code_tables = mapping.lookup_files()
    read: dict[str, str] = {}
    for path in files:
        tables = mapping.for_file(path)
        if not tables and path.name not in code_tables:
            unmatched.append(path)
        for fm in tables:
            with _machine_faults(path):
                columns = source_columns(con, path, fm)
            try:
                if columns is not None:
                    check_columns(mapping, fm, path, columns)
                with _machine_faults(path):
                    fm = read_lookups(con, mapping, fm, path, read)
            except UsageProblem as exc:
                if (overlap := mapping.overlap(path)) is not None:  # the likely cause: a glob too wide
                    exc = UsageProblem(f"{exc}; {path.name} is {overlap}")
                if strict:
                    drop_lookups(con)
                    raise exc from None
                result = FileResult(path, fm.entity.name, "not_read", message=str(exc), examples=[f"{path.name}: {exc}"])
                results.append(result)
                if on_file:
                    on_file(result)
                continue
            pairs.append((path, fm))
    return pairs, unmatched


def drop_lookups(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the code tables' temp tables (read_lookups) once their files are loaded."""
    for (table,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary "
                                "AND starts_with(table_name, '_lookup_')").fetchall():
        con.execute(f'DROP TABLE IF EXISTS "{table}"')


@contextlib.contextmanager
def _machine_faults(path: Path):
    """A fault of the machine while a file loads (memory, disk, temp space, an interrupted read)
    is one line naming the file, never its quarantine: its transaction is rolled back and nothing
    of it is recorded as seen, so the next run loads it. The files before it stay loaded."""
    try:
        yield
    except MachineFault:
        raise
    except Exception as exc:
        if not environmental(exc):
            raise
        told = explain_error(exc)
        cause = told[0] if told else str(exc).splitlines()[0][:200]
        raise MachineFault(f"{path.name} was not loaded (nothing of it is recorded): {cause.removeprefix('loanwatch: ')}",
                           memory="ran out of memory" in cause) from None


def _one_file(path: Path, entity: str | None, load) -> FileResult:
    """Load one file; when the machine runs out of memory on it (a file larger than the memory
    allows), say so in its result ("fault": exit 1, nothing recorded) and go on with the other
    files, which may well fit. A full disk or temp folder stops everything: nothing else would
    load either."""
    try:
        with _machine_faults(path):
            return load()
    except MachineFault as exc:
        if not exc.memory:
            raise
        return FileResult(path, entity, "fault", message=str(exc), examples=[str(exc)])


def ingest_paths(con: duckdb.DuckDBPyConnection, paths: list[Path], entity: str | None = None, on_file=None,
                 latest_date: dt.date | None = None, check_repeated_keys: bool = True,
                 mapping: Mapping | None = None, dry_run: bool = False, settle_seconds: float = 0,
                 home: Path | None = None, strict: bool = True, limits: Limits | None = None) -> list[FileResult]:
    """Load files and folders (recursively), a file a batch. ``settle_seconds``: a file modified
    less than this long ago may still be being written: it is left for the next run, and said so.
    ``home``: the warehouse folder, whose files are never input. ``strict``: a mapped file whose
    columns the mapping does not find is a usage error that loads nothing (by hand); otherwise
    (the daily run) that file is reported and passed over, and the rest loads."""
    import time

    from loanwatch.ingest.read import discover, not_read

    limits = limits or Limits()
    given = [Path(p) for p in paths]
    roots = [p.resolve() for p in given if p.exists()]
    # the home's own files are never input when the home lies inside a folder given (a home in
    # the inbox); folders given inside the home (the demo's parts, an inbox under the home) are
    home = home.resolve() if home is not None else None
    if home is not None and not any(home != r and home.is_relative_to(r) for r in roots if r.is_dir()):
        home = None
    # with a mapping, every file in a folder is looked at: one that no table matches is reported;
    # the home's own files (a home inside the inbox) are no one's input, and not worth a word
    found = [f for f in discover(given, every_file=mapping is not None)
             if home is None or not f.absolute().is_relative_to(home)]
    results = []
    files = []
    now = time.time()
    for path in found:
        if (reason := (None if special_kind(path) else not_read(path, roots))) is not None:
            result = FileResult(path, entity or entity_of(path), "not_read", message=reason,
                                examples=[f"{path.name}: {reason}"])
            results.append(result)
            if on_file:
                on_file(result)
        elif settle_seconds > 0 and not special_kind(path) and (age := now - path.stat().st_mtime) < settle_seconds:
            result = FileResult(path, entity or entity_of(path), "waiting",
                                message=f"modified {max(age, 0):.0f} s ago, within [run] settle_seconds ({settle_seconds:g}): "
                                        "it may still be being written; left for the next run")
            results.append(result)
            if on_file:
                on_file(result)
        elif kind := special_kind(path):
            # found inside a folder: reported, never read (a FIFO would wait forever)
            result = FileResult(path, entity or entity_of(path), "rejected",
                                message=f"{kind}, not a file: not read",
                                examples=[f"{path.name}: {kind}, not a file: not read (copy the data into a file)"])
            results.append(result)
            if on_file:
                on_file(result)
        else:
            files.append(path)
    if mapping is not None:
        pairs, unmatched = plan_mapped(con, mapping, files, strict, results, on_file)
        for path in unmatched:
            result = FileResult(path, None, "unmatched",
                                message=f"no [[files]] match of {mapping.path.name} covers this file name: left alone")
            results.append(result)
            if on_file:
                on_file(result)
        # a file caught by the globs of tables of different entities: said, then loaded as matched
        for path in dict.fromkeys(path for path, _ in pairs):
            if (overlap := mapping.overlap(path)) is not None:
                result = FileResult(path, None, "overlap", message=overlap, examples=[f"{path.name}: {overlap}"])
                results.append(result)
                if on_file:
                    on_file(result)
        scans: dict[Path, Scan] = {}  # a file several tables read is hashed once
        try:
            for path, fm in pairs:
                scanned = scans.get(path) or scans.setdefault(path, scan(path, limits.max_uncompressed_bytes))
                result = _one_file(path, fm.entity.name, functools.partial(
                    ingest_file, con, path, None, scanned, latest_date, check_repeated_keys, mapping=fm, dry_run=dry_run, limits=limits))
                results.append(result)
                if on_file:
                    on_file(result)
        finally:
            drop_lookups(con)
        return results
    # One thread hashes the files in order, ahead of the loading: hashing needs one core, and the
    # engine leaves a core idle part of the time (while committing, in single-threaded steps).
    # A file changed since its hash was taken is hashed again just before it is read, so the
    # recorded hash is always that of the content loaded ("already ingested" relies on it).
    hasher = ThreadPoolExecutor(max_workers=1)
    try:
        pending = [hasher.submit(scan, path, limits.max_uncompressed_bytes) for path in files]
        for path, hashed in zip(files, pending):
            scanned = hashed.result()
            if file_version(path) != scanned.version:
                scanned = None
            result = _one_file(path, entity or entity_of(path), functools.partial(
                ingest_file, con, path, entity, scanned, latest_date, check_repeated_keys, dry_run=dry_run, limits=limits))
            results.append(result)
            if on_file:
                on_file(result)
    finally:
        hasher.shutdown(cancel_futures=True)  # on an error, the files not reached are not hashed
    return results
