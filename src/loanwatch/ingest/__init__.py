"""Ingest: raw files into staging, a file a batch, bad rows quarantined (docs/contract.md).

``run`` is the one way in: `loanwatch ingest`, `loanwatch run` and the demo call it, with contract
files or a source mapping alike. The work is in ``load`` (batches, validation, quarantine),
``read`` (finding and reading files), ``contract`` (the rules as data) and ``mapping`` (other
systems' exports).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loanwatch.config import Settings
    from loanwatch.ingest.load import FileResult
    from loanwatch.ingest.mapping import Mapping


def run(settings: Settings, paths: list[Path], mapping: Mapping | Path | None = None, dry_run: bool = False, *,
        entity: str | None = None, on_file: Callable[[FileResult], None] | None = None, strict: bool = True,
        settle_seconds: float = 0.0) -> list[FileResult]:
    """Load files and folders into the home's warehouse under its writer lock, with its settings
    ([ingest] limits, the home's own folder left out), then land the batches on the engine.

    ``mapping``: a source mapping (loaded, or its TOML file); ``dry_run``: read, map and validate,
    load nothing; ``entity``: the entity of every file instead of the file-name rule; ``on_file``:
    called with each file's result as it is done; ``strict``: a file the mapping cannot map stops
    everything (by hand) rather than being passed over (the daily run); ``settle_seconds``: a file
    modified that recently is left for the next run.
    """
    from loanwatch.engines import open_engine
    from loanwatch.ingest.load import Limits, ingest_paths, latest_business_date
    from loanwatch.ingest.mapping import load_mapping
    from loanwatch.warehouse import open_writer

    engine = open_engine(settings)  # a wrong [warehouse] engine stops before anything is loaded
    if isinstance(mapping, Path):
        mapping = load_mapping(mapping)
    with open_writer(settings) as con:
        results = ingest_paths(con, [Path(p) for p in paths], entity, on_file=on_file,
                               latest_date=latest_business_date(settings.get("ingest", "max_future_days")),
                               check_repeated_keys=settings.get("ingest", "check_repeated_keys"), mapping=mapping,
                               dry_run=dry_run, settle_seconds=settle_seconds, home=settings.home, strict=strict,
                               limits=Limits.of(settings))
        if not dry_run:
            engine.land_pending(con)
    return results
