"""Loading files into staging: validate, drop duplicates, quarantine the rest, record the batch.

Each file is one batch and one transaction: a crash (even SIGKILL) leaves either the whole file
loaded and recorded in the manifest, or nothing of it, so running the same command again is
always safe. The same content again (by SHA-256) is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import available_timezones

import duckdb

from loanwatch.ingest.contract import ENTITIES, Entity, validation_sql
from loanwatch.ingest.read import InputFile, UnreadableFile, content_hash, entity_of, format_of, read_lines


@dataclass
class FileResult:
    path: Path
    entity: str | None
    status: str  # loaded | partial | rejected | skipped
    batch_id: int | None = None
    rows_read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    message: str = ""
    examples: list[str] = field(default_factory=list)

    @property
    def quarantined(self) -> bool:
        return self.status in ("partial", "rejected")


def _ensure_timezones(con: duckdb.DuckDBPyConnection) -> None:
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = '_timezones' AND temporary"
    ).fetchone()[0]
    if not exists:
        con.execute("CREATE TEMP TABLE _timezones (name VARCHAR)")
        con.executemany("INSERT INTO _timezones VALUES (?)", [[z] for z in sorted(available_timezones())])


def ingest_file(con: duckdb.DuckDBPyConnection, path: Path, entity_name: str | None = None) -> FileResult:
    path = Path(path)
    entity_name = entity_name or entity_of(path)
    digest = content_hash(path)
    seen = con.execute(
        "SELECT batch_id, file_name FROM meta.batches WHERE content_hash = ? AND entity IS NOT DISTINCT FROM ? LIMIT 1",
        [digest, entity_name],
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
    else:
        try:
            reader_rejects = read_lines(con, InputFile(path, entity.name, format_of(path)))
        except UnreadableFile as exc:
            unreadable = str(exc)

    con.execute("BEGIN TRANSACTION")
    try:
        batch_id = con.execute("SELECT nextval('meta.batch_ids')").fetchone()[0]
        if unreadable is not None:
            result = _reject_file(con, batch_id, path, entity_name, digest, unreadable)
        else:
            result = _load(con, batch_id, path, entity, digest, reader_rejects)
        con.execute("COMMIT")
        return result
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _reject_file(con, batch_id: int, path: Path, entity: str | None, digest: str, reason: str) -> FileResult:
    con.execute(
        "INSERT INTO meta.rejects VALUES (?, ?, ?, NULL, NULL, ?, NULL)",
        [batch_id, entity, path.name, reason],
    )
    _record_batch(con, batch_id, entity, path, digest, 0, 0, 0, 0, "rejected", reason)
    return FileResult(path, entity, "rejected", batch_id, message=reason, examples=[f"{path.name}: {reason}"])


def _record_batch(con, batch_id, entity, path: Path, digest, read, accepted, dups, rejected, status, message):
    con.execute(
        "INSERT INTO meta.batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
        [batch_id, entity, str(path), path.name, digest, path.stat().st_size,
         read, accepted, dups, rejected, status, message],
    )


def _load(con, batch_id: int, path: Path, entity: Entity, digest: str, reader_rejects: list) -> FileResult:
    con.execute(f"CREATE OR REPLACE TEMP TABLE _valid AS {validation_sql(entity)}")
    lines_read = con.execute("SELECT count(*) FROM _lines").fetchone()[0]
    con.execute("DROP TABLE _lines")  # the raw text lives on in _valid; keep one copy in memory
    version_key = [entity.key] + (["updated_at"] if entity.versioned else [])
    key_cols = ", ".join(version_key)
    typed = [x.name for x in entity.fields]
    # Content identity: the typed values, so key order, spacing or 12.0 vs 12 do not matter.
    content = ", ".join(typed)
    # Most keys occur once in a file: only keys that repeat need the (sorting) window.
    # _classified holds the fate of each valid row (no copy of its content): most keys occur
    # once in a file, so only keys that repeat need the (sorting) window.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _classified AS
        WITH candidates AS (
            SELECT line_no, {key_cols}, md5(row({content})::VARCHAR) AS record_hash
            FROM _valid WHERE error_reason IS NULL
        ), repeated AS (
            SELECT {key_cols} FROM candidates GROUP BY {key_cols} HAVING count(*) > 1
        ), ranked AS (
            SELECT line_no,
                row_number() OVER w AS rn,
                first_value(record_hash) OVER w AS first_hash,
                first_value(line_no) OVER w AS first_line
            FROM candidates SEMI JOIN repeated USING ({key_cols})
            WINDOW w AS (PARTITION BY {key_cols} ORDER BY line_no)
        ), existing AS (
            SELECT {key_cols}, any_value(record_hash) AS old_hash,
                   any_value(file_name) AS old_file, any_value(line_no) AS old_line
            FROM {entity.table}
            WHERE {entity.key} IN (SELECT {entity.key} FROM candidates)
            GROUP BY {key_cols}
        )
        SELECT c.line_no, c.{entity.key} AS key_value, c.record_hash, r.first_line, e.old_file, e.old_line,
            CASE
                WHEN e.old_hash = c.record_hash THEN 'duplicate'
                WHEN e.old_hash IS NOT NULL THEN 'conflict_existing'
                WHEN r.rn > 1 AND c.record_hash = r.first_hash THEN 'duplicate'
                WHEN r.rn > 1 THEN 'conflict_file'
                ELSE 'accept'
            END AS fate
        FROM candidates c
        LEFT JOIN ranked r USING (line_no)
        LEFT JOIN existing e USING ({key_cols})
    """)

    what = f"same {entity.key}" + (" and updated_at" if entity.versioned else "")
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
        INSERT INTO {entity.table} (batch_id, file_name, line_no, record, record_hash, {columns})
        SELECT ?, ?, v.line_no, v.raw, c.record_hash, {", ".join("v." + x for x in typed)}
        FROM _valid v JOIN _classified c USING (line_no) WHERE c.fate = 'accept'
    """, [batch_id, path.name])
    if entity.name == "loans":
        con.execute("""
            INSERT INTO staging.loan_schedules
            SELECT ?, loan_id, updated_at, i.n::INTEGER,
                   CAST(trim(i.item.due_date) AS DATE),
                   CAST(i.item.principal AS DECIMAL(18,2)),
                   coalesce(CAST(i.item.interest AS DECIMAL(18,2)), 0)
            FROM (
                SELECT loan_id, updated_at,
                       unnest(sched) AS item, unnest(generate_series(1, len(sched))) AS n
                FROM _valid v JOIN _classified c USING (line_no) WHERE c.fate = 'accept' AND v.sched IS NOT NULL
            ) AS i(loan_id, updated_at, item, n)
        """, [batch_id])

    read, invalid, accepted, dups, conflicts = con.execute("""
        SELECT ?,
               (SELECT count(*) FROM _valid WHERE error_reason IS NOT NULL),
               count(*) FILTER (WHERE fate = 'accept'),
               count(*) FILTER (WHERE fate = 'duplicate'),
               count(*) FILTER (WHERE fate LIKE 'conflict%')
        FROM _classified
    """, [lines_read]).fetchone()
    read += len(reader_rejects)
    rejected = invalid + conflicts + len(reader_rejects)
    status = "loaded" if rejected == 0 else "partial"
    examples = [
        f"{path.name}:{line}: {reason}" if line is not None else f"{path.name}: {reason}"
        for line, reason in con.execute(
            "SELECT line_no, reason FROM meta.rejects WHERE batch_id = ? ORDER BY line_no LIMIT 5", [batch_id]
        ).fetchall()
    ]
    message = f"{rejected} row(s) quarantined" if rejected else ""
    _record_batch(con, batch_id, entity.name, path, digest, read, accepted, dups, rejected, status, message)
    return FileResult(path, entity.name, status, batch_id, read, accepted, dups, rejected, message, examples)


def ingest_paths(con: duckdb.DuckDBPyConnection, paths: list[Path], entity: str | None = None, on_file=None) -> list[FileResult]:
    from loanwatch.ingest.read import discover

    results = []
    for path in discover([Path(p) for p in paths]):
        result = ingest_file(con, path, entity)
        results.append(result)
        if on_file:
            on_file(result)
    return results
