"""DuckDB as the engine (the default): the models build in the home's own files.

The ingest ledger (``warehouse.duckdb``) is where the models read their sources and the build
watermark, so nothing is landed or mirrored; dbt-duckdb writes the tables readers need straight
into the build's own file (``published.duckdb``, attached as ``published``), which starts as a copy
of the serving snapshot and becomes the next one, so nothing is exported either. A check's failing
rows stay in the warehouse's schema ``dq``.
"""

from __future__ import annotations

from pathlib import Path

from loanwatch.engines import Engine, quoted


class DuckDBEngine(Engine):
    name = "duckdb"
    target = "duckdb"
    place = "in the warehouse"  # (nothing lands: the models read the ingest ledger itself)
    exports_published = False
    resumes_after_failure = True

    def where(self) -> str:
        return f"DuckDB {self.settings.warehouse_path}"

    def fingerprint(self) -> str:
        """Nothing beside the project: the tables a build starts from are the home's own."""
        return ""

    def outputs(self, writes_models: bool = True) -> dict:
        """The warehouse file, with the models readers need (configured ``database: published``)
        in the build's own file while a command writes models; a command that writes none reads
        them in the serving snapshot (the build's file exists only while a build runs)."""
        settings = self.settings
        if writes_models:
            published = {"path": str(settings.published_path), "alias": "published"}
        else:
            published = {"path": str(settings.serving_path), "alias": "published", "read_only": True}
        # Models use naive UTC timestamps only, so no session time zone is needed here; and the
        # default configuration lets the same process open the file again after dbt (publish).
        return {self.target: {"type": "duckdb", "path": str(settings.warehouse_path), "threads": 2,
                              "attach": [published]}}

    def dbt_environment(self) -> dict[str, str]:
        return {}

    def land(self, duck) -> int:
        return 0  # the models read the ledger's staging tables where they are

    def mirror_builds(self, duck) -> None:
        pass  # the models read meta.builds in the warehouse itself

    def query(self, sql: str, duck) -> list[tuple]:
        return duck.execute(sql).fetchall()

    def dq_tables(self) -> list[str]:
        from loanwatch.warehouse import read_warehouse

        with read_warehouse(self.settings) as con:
            return [r[0] for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'dq' ORDER BY 1").fetchall()]

    def dq_rows(self, check: str, limit: int) -> tuple[list[str], list[tuple]]:
        from loanwatch.warehouse import read_warehouse

        with read_warehouse(self.settings) as con:
            # (the name is one dq_tables() listed; quoted as an identifier all the same)
            cur = con.execute(f"SELECT * FROM dq.{quoted(check)} LIMIT {int(limit)}")
            return [d[0] for d in cur.description], cur.fetchall()

    def export(self, tables: list[str], target: Path, changes: bool = False) -> list[str]:
        return []  # dbt wrote them there (not exports_published)
