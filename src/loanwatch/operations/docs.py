"""`loanwatch docs`: dbt's documentation site for the project (models, columns, tests, lineage),
as one static HTML file that opens without a network, or served locally."""

from __future__ import annotations

import shutil
from pathlib import Path

from loanwatch.config import Settings
from loanwatch.errors import Problem


def write_docs(settings: Settings, out: Path) -> Path:
    """Generate the site from the project and the published warehouse's catalog; returns index.html."""
    from loanwatch.engines.duckdb import DuckDBEngine
    from loanwatch.transform import release_dbt, run_dbt
    from loanwatch.warehouse import writer_lock

    if not settings.serving_path.exists():
        raise Problem(f"{settings.home}: nothing built yet; run `loanwatch build` first (the docs list the tables it makes)")
    # dbt opens the warehouse to read its catalog: the writer lock keeps a build out meanwhile
    with writer_lock(settings):
        # the catalog of the home's DuckDB file, whatever the engine: what readers read
        run = run_dbt(settings, "docs generate", ["--static", "--write-json"], engine=DuckDBEngine(settings))
        release_dbt()
    static = settings.home / ".dbt" / "target" / "static_index.html"
    if not run.success or not static.exists():
        raise Problem(f"the documentation could not be generated: {run.error or 'dbt docs generate failed'}")
    out.mkdir(parents=True, exist_ok=True)
    index = out / "index.html"
    shutil.copyfile(static, index)
    return index


def serve_docs(folder: Path, port: int, address: str = "127.0.0.1") -> None:
    """Serve the folder until Ctrl-C."""
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer((address, port), handler) as server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
