"""`loanwatch split`: cut a set of raw files into N chronological incremental batches.

Part k holds the records whose time (the entity's time field: updated_at, paid_at, charged_at,
adjusted_at, called_at, logged_in_at or occurred_at) falls in the k-th of N equal slices of the
whole time span, so later versions of a loan arrive in later parts (and a charge's reversal with
or after the charge). Instalment records have no time of their own: they go to part 1.
NDJSON lines and JSON array elements are copied byte for byte; CSV rows are written back by the
engine with the original header. A record whose time is missing or unreadable goes to part 1,
where ingest will quarantine it. CSV rows the reader cannot parse at all are counted and left
out (ingest the original file to have them quarantined).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from loanwatch.ingest.contract import ENTITIES
from loanwatch.ingest.read import InputFile, discover, engine_path, entity_of, format_of, read_lines


def _part(t: str) -> str:
    """The part (1..N) of a record whose time is column t: its slice of the whole span."""
    return (f"CASE WHEN {t} IS NULL OR $span = 0 THEN 1 "
            f"ELSE least($parts, 1 + floor(epoch({t} - $lo) / $span * $parts))::INTEGER END")


@dataclass
class SplitResult:
    parts: dict[int, list[Path]] = field(default_factory=dict)
    dropped_csv_rows: int = 0


def _time(path: str | None) -> str:
    """A record's time; none for an entity without one (instalments go to part 1, with the
    schedule's loan or before it)."""
    if path is None:
        return "CAST(NULL AS TIMESTAMP)"
    return f"TRY_CAST(TRY_CAST(json_extract_string({{record}}, '{path}') AS TIMESTAMPTZ) AS TIMESTAMP)"


def part_name(part: int, parts: int) -> str:
    """part_01 … part_05; zero-padded to the width of the largest number, so that names sort in
    chronological order (a shell's `parts/*` ingests them in order, also with 100 parts)."""
    return f"part_{part:0{max(2, len(str(parts)))}d}"


def _stage_csv(con, i: int, path: str, time_path: str, result: SplitResult) -> None:
    """A CSV file's rows with their time as table _f{i}; the rows the reader drops are counted."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _f{i} AS
            SELECT row_number() OVER () AS __lw_rn, r.*,
                   {_time(time_path).format(record='to_json(r)')} AS __lw_t
            FROM read_csv(?, header = true, all_varchar = true, ignore_errors = true) r""",
        [path],
    )
    total = con.execute(
        "SELECT count(*) FROM read_csv(?, columns = {'raw': 'VARCHAR'}, header = true, delim = E'\\x01', "
        "quote = E'\\x02', escape = E'\\x03', auto_detect = false, strict_mode = false) WHERE raw IS NOT NULL",
        [path],
    ).fetchone()[0]
    kept = con.execute(f"SELECT count(*) FROM _f{i}").fetchone()[0]
    result.dropped_csv_rows += max(0, total - kept)
    con.execute(f"CREATE OR REPLACE TEMP VIEW _t{i} AS SELECT __lw_t AS t FROM _f{i}")


def split(inputs: list[Path], parts: int, out_dir: Path) -> SplitResult:
    if parts < 1:
        raise ValueError("--parts must be at least 1")
    files = [f for f in discover(inputs) if entity_of(f)]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    result = SplitResult()
    staged = []
    # Pass 1: every record with its time, to find the whole span.
    for i, path in enumerate(files):
        entity = ENTITIES[entity_of(path)]
        f = InputFile(path, entity.name, format_of(path))
        # a constant of the contract, not user input
        time_path = f"$.{entity.time_field}" if entity.time_field else None
        if f.fmt == "csv":
            with engine_path(path) as literal:
                _stage_csv(con, i, literal, time_path, result)
        else:
            read_lines(con, f)
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _f{i} AS
                    SELECT line_no, raw, CASE WHEN json_valid(raw) THEN {_time(time_path).format(record='raw')} END AS t
                    FROM _lines"""
            )
            con.execute(f"CREATE OR REPLACE TEMP VIEW _t{i} AS SELECT t FROM _f{i}")
        staged.append((i, f))
    if not staged:
        return result
    union = " UNION ALL ".join(f"SELECT t FROM _t{i}" for i, _ in staged)
    lo, hi = con.execute(f"SELECT min(t), max(t) FROM ({union})").fetchone()
    span = (hi - lo).total_seconds() if lo is not None and hi is not None and hi > lo else 0.0
    params = {"span": span, "parts": parts, "lo": lo}

    # Pass 2: write each record to its part, in its file's order.
    for i, f in staged:
        name = f.path.name[:-3] if f.path.name.lower().endswith(".gz") else f.path.name
        for part in range(1, parts + 1):
            target = out_dir / part_name(part, parts) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if f.fmt == "csv":
                con.execute(
                    f"""COPY (SELECT * EXCLUDE (__lw_rn, __lw_t) FROM _f{i}
                              WHERE {_part('__lw_t')} = $part
                              ORDER BY __lw_rn)
                        TO $target (FORMAT CSV, HEADER true)""",
                    {**params, "part": part, "target": str(target)},
                )
            else:
                raws = [r[0] for r in con.execute(
                    f"SELECT raw FROM _f{i} WHERE {_part('t')} = $part ORDER BY line_no", {**params, "part": part}
                ).fetchall()]
                if f.fmt == "array":
                    target.write_text("[\n" + ",\n".join(raws) + "\n]\n" if raws else "[]\n", encoding="utf-8")
                else:
                    target.write_text("\n".join(raws) + ("\n" if raws else ""), encoding="utf-8")
            result.parts.setdefault(part, []).append(target)
    con.close()
    return result
