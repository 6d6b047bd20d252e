"""The engine the dbt project runs on: `[warehouse] engine` = duckdb (default), postgres or spark.

Whatever the engine, ingest validates and quarantines in the local DuckDB file (the ingest
ledger: every batch, every reject, the rows it compares new content against) and readers read the
DuckDB serving snapshot. What changes is where the models are built:

* duckdb: in the local file itself (``warehouse.duckdb``, core and marts in ``published.duckdb``);
* postgres: in a PostgreSQL database. Ingest then *lands* each new batch's accepted rows in the
  server's staging tables (``COPY``, in one transaction with the server's batch manifest
  ``meta.landed_batches``), the build runs dbt-postgres there, and a good build *exports* the
  tables readers need into the serving snapshot (``engines.postgres``);
* spark: in Spark tables, the same way: each batch lands in its own partition of the staging
  tables, then in the manifest; dbt-spark builds in the session loanwatch starts (``engines.spark``).

An engine object has what the build needs of it: the dbt profile output (``target``,
``outputs``), ``land``, ``mirror_builds``, ``query``, ``export``; ``None`` stands for DuckDB,
whose build needs none of it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from loanwatch.config import ConfigError, Settings
from loanwatch.errors import Problem

ENGINES = ("duckdb", "postgres", "spark")


class EngineUnreachable(Problem):
    """The engine cannot be reached or started, refuses the login, or holds another home's
    batches: one line, exit 1."""


def engine_name(settings: Settings) -> str:
    """The configured engine, checked: a name loanwatch does not know is a usage error."""
    name = str(settings.get("warehouse", "engine") or "duckdb").strip().lower()
    if name not in ENGINES:
        raise ConfigError(f"[warehouse] engine = {name!r}: use one of {', '.join(ENGINES)} "
                          "(LOANWATCH_WAREHOUSE__ENGINE)")
    if name == "spark":  # its settings too, before anything is loaded (starts nothing)
        from loanwatch.engines.spark import SparkEngine

        SparkEngine(settings)
    return name


def quoted(name: str, quote: str = '"') -> str:
    """A quoted identifier (``"`` for DuckDB and PostgreSQL, a backtick for Spark). Names come
    from the engines' own catalogs, and are quoted all the same."""
    return quote + name.replace(quote, quote * 2) + quote


def qualified(table: str, quote: str = '"') -> str:
    """``schema.table``, each part quoted."""
    return ".".join(quoted(part, quote) for part in table.split("."))


def pending_batches(duck, landed: list[tuple], where: str, own_place: str) -> tuple[str, list[tuple]]:
    """The ingest ledger's id, and its batches an engine's manifest lacks (``landed``: the
    manifest's (batch_id, ledger_id) rows), as (batch_id, entity, file_name, content_hash,
    rows_accepted). Batch ids are a ledger's own (another home's batch 1 is not this one's), so
    a manifest holding another ledger's batches is refused; ``own_place`` says what to use instead."""
    ledger = duck.execute("SELECT min(ledger_id) FROM meta.ledger").fetchone()[0]
    if any(other != ledger for _, other in landed):
        raise EngineUnreachable(f"{where} holds batches another loanwatch home loaded; point this home at "
                                f"{own_place}, or use the home that loaded them")
    have = {row[0] for row in landed}
    return ledger, [b for b in duck.execute(
        "SELECT batch_id, entity, file_name, content_hash, rows_accepted FROM meta.batches ORDER BY batch_id"
    ).fetchall() if b[0] not in have]


def open_engine(settings: Settings):
    """The engine the build runs on, or None for the embedded DuckDB."""
    name = engine_name(settings)
    if name == "postgres":
        from loanwatch.engines.postgres import PostgresEngine

        return PostgresEngine(settings)
    if name == "spark":
        from loanwatch.engines.spark import SparkEngine

        return SparkEngine(settings)
    return None


def land_pending(settings: Settings, con) -> int:
    """After ingest: land the batches the engine does not have yet (none on DuckDB). Returns the
    number of batches landed."""
    engine = open_engine(settings)
    if engine is None:
        return 0
    try:
        return engine.land(con)
    except EngineUnreachable as exc:
        raise EngineUnreachable(f"{exc}. The files are loaded in the ingest ledger ({settings.warehouse_path.name}); "
                                f"they land {engine.place} with the next ingest or build") from None


def environment(engine) -> contextlib.AbstractContextManager:
    """What dbt needs of the environment on this engine (its password, its session options), for the block."""
    return _set_env(engine.dbt_environment() if engine is not None else {})


@contextlib.contextmanager
def _set_env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
