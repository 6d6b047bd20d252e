"""The engine the dbt project runs on: `[warehouse] engine` = duckdb (default), postgres or spark.

Whatever the engine, ingest validates and quarantines in the local DuckDB file (the ingest
ledger: every batch, every reject, the rows it compares new content against) and readers read the
DuckDB serving snapshot. What changes is where the models are built:

* duckdb: in the local file itself (``warehouse.duckdb``, core and marts in ``published.duckdb``;
  ``engines.duckdb``);
* postgres: in a PostgreSQL database. Ingest then *lands* each new batch's accepted rows in the
  server's staging tables (``COPY``, in one transaction with the server's batch manifest
  ``meta.landed_batches``), the build runs dbt-postgres there, and a good build *exports* the
  tables readers need into the serving snapshot (``engines.postgres``);
* spark: in Spark tables, the same way: each batch lands in its own partition of the staging
  tables, then in the manifest; dbt-spark builds in the session loanwatch starts (``engines.spark``).

Every engine, DuckDB included, is a class of its own with the members of ``Engine`` (as ibis's
backends are): callers hold one and call it, never asking which engine it is. Where the build's
flow itself differs, the class says so in a capability (``exports_published``,
``resumes_after_failure``). ``open_engine`` is the one place that reads and checks the setting.
"""

from __future__ import annotations

import abc
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from loanwatch.config import ConfigError, Settings
from loanwatch.errors import Problem


class EngineUnreachable(Problem):
    """The engine cannot be reached or started, refuses the login, or holds another home's
    batches: one line, exit 1."""


class Engine(abc.ABC):
    """What ingest, the build, `loanwatch dbt` and `loanwatch check` need of an engine.

    ``duck`` below is always the warehouse's connection (the ingest ledger, ``meta.builds``),
    which the build holds open; DuckDB builds in it, the other engines read it to land and mirror.
    Constructing an engine checks its settings and starts nothing: a server is reached, Spark
    started, when first used.
    """

    name: ClassVar[str]  # the [warehouse] engine setting
    target: ClassVar[str]  # the dbt profile's output
    place: ClassVar[str]  # where batches land, in messages ("on the server")
    # Capabilities: where the build's flow differs, declared rather than asked of the class's name.
    # The models are built in the engine's own tables (where incremental models start from) and
    # ``export`` copies those readers need into the build's DuckDB file after a good build; False:
    # dbt writes them into that file itself, which starts as a copy of the serving snapshot.
    exports_published: ClassVar[bool]
    # An incremental build may follow one that did not finish well; False: it rebuilds everything.
    resumes_after_failure: ClassVar[bool]

    def __init__(self, settings: Settings):
        self.settings = settings

    @abc.abstractmethod
    def where(self) -> str:
        """The engine and its place, for messages: ``PostgreSQL user@host:port/db``."""

    def fingerprint(self) -> str:
        """What, besides the dbt project and its vars, makes the tables a build starts from
        another's (part of the build's project hash): the server, or Spark's warehouse."""
        return self.where()

    def known_fault(self, message: str) -> str | None:
        """A failed dbt node's message that is a known fault of the engine itself, not of the SQL
        or the data: one line saying so and what to do (docs/engines.md); None otherwise."""
        return None

    @abc.abstractmethod
    def outputs(self, writes_models: bool = True) -> dict:
        """The dbt profile's outputs, ``{target: output}``, for a dbt command that writes models
        or one that only reads them."""

    @abc.abstractmethod
    def dbt_environment(self) -> dict[str, str]:
        """What dbt needs in the environment while it runs (a password, session options)."""

    @abc.abstractmethod
    def land(self, duck) -> int:
        """Land the ledger's batches the engine does not have yet; how many were landed."""

    def land_pending(self, duck) -> int:
        """After ingest: ``land``, and when the engine cannot be reached, say that the files are
        loaded and land with the next ingest or build."""
        try:
            return self.land(duck)
        except EngineUnreachable as exc:
            raise EngineUnreachable(f"{exc}. The files are loaded in the ingest ledger "
                                    f"({self.settings.warehouse_path.name}); they land {self.place} with the "
                                    "next ingest or build") from None

    @abc.abstractmethod
    def mirror_builds(self, duck) -> None:
        """Make the warehouse's ``meta.builds`` (the build watermark) readable where the models run."""

    @abc.abstractmethod
    def query(self, sql: str, duck) -> list[tuple]:
        """Rows of a query where the build ran (its data date, a check's failing rows)."""

    @abc.abstractmethod
    def dq_tables(self) -> list[str]:
        """The checks whose failing rows the last build kept (schema dq)."""

    @abc.abstractmethod
    def dq_rows(self, check: str, limit: int) -> tuple[list[str], list[tuple]]:
        """Column names and up to ``limit`` failing rows of a check ``dq_tables`` lists."""

    @abc.abstractmethod
    def export(self, tables: list[str], target: Path, changes: bool = False) -> list[str]:
        """Copy ``schema.table`` relations into the DuckDB file ``target`` (``exports_published``).
        ``changes``: ``target`` already holds them as the engine had them before this build, so
        an engine that kept the build's changes of a table may apply only those. Returns the
        tables exported that way."""


def engine_classes() -> dict[str, type[Engine]]:
    """Every engine by its setting's name, in the order messages list them."""
    from loanwatch.engines.duckdb import DuckDBEngine
    from loanwatch.engines.postgres import PostgresEngine
    from loanwatch.engines.spark import SparkEngine

    return {cls.name: cls for cls in (DuckDBEngine, PostgresEngine, SparkEngine)}


def open_engine(settings: Settings) -> Engine:
    """The engine the dbt project runs on, its settings checked: an engine loanwatch does not know,
    or a setting of its own it cannot use, is a usage error (before anything is loaded)."""
    name = str(settings.get("warehouse", "engine") or "duckdb").strip().lower()
    classes = engine_classes()
    if name not in classes:
        raise ConfigError(f"[warehouse] engine = {name!r}: use one of {', '.join(classes)} "
                          "(LOANWATCH_WAREHOUSE__ENGINE)")
    return classes[name](settings)


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


def environment(engine: Engine, more: dict[str, str] | None = None) -> contextlib.AbstractContextManager:
    """What dbt needs of the environment on this engine (its password, its session options), and
    ``more``, for the block."""
    return _set_env({**engine.dbt_environment(), **(more or {})})


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
