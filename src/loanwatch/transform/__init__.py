"""The dbt project (package data in ``dbt_project/``) and how loanwatch runs it.

dbt runs in-process through ``dbtRunner``. Its profile is written into the warehouse folder
(``<home>/.dbt/profiles.yml``) so that the package directory stays read-only; so do its target
and log folders.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loanwatch.config import DEFAULTS, Settings

if TYPE_CHECKING:
    from loanwatch.engines import Engine

PROJECT_DIR = Path(__file__).parent / "dbt_project"


@dataclass
class NodeResult:
    unique_id: str
    name: str
    resource_type: str
    status: str
    message: str
    failures: int | None
    severity: str | None
    model: str | None
    relation: str | None = None  # where a check stored its failing rows
    seconds: float = 0.0  # dbt's execution time of the node
    schema: str | None = None
    published: bool = False  # a model readers need (configured `database: published`)


@dataclass
class DbtRun:
    success: bool
    results: list[NodeResult] = field(default_factory=list)
    error: str = ""
    # where the invocation's wall time went, in seconds: "dbt import" (the first run in a
    # process), "dbt start" (arguments, profile, the project's parse, adapter, on-run-start
    # hooks: until the first node starts), "dbt nodes" (from there to the end)
    phases: dict[str, float] = field(default_factory=dict)


# dbt commands that write models; the others (test, compile, show, ...) read the snapshot
WRITING_COMMANDS = {"build", "run", "seed", "snapshot"}


def write_profile(settings: Settings, target: str = "duckdb", extra: dict[str, Any] | None = None,
                  command: str = "build") -> Path:
    """``<home>/.dbt/profiles.yml`` for a dbt command: the home's DuckDB output (in every profile)
    and ``extra``, another engine's outputs; ``target``, the one dbt runs on."""
    from loanwatch.engines.duckdb import DuckDBEngine

    profiles_dir = settings.home / ".dbt"
    profiles_dir.mkdir(parents=True, exist_ok=True)
    outputs = {**DuckDBEngine(settings).outputs(command in WRITING_COMMANDS), **(extra or {})}
    profile = {"loanwatch": {"target": target, "outputs": outputs}}
    path = profiles_dir / "profiles.yml"
    # JSON is valid YAML, and needs no YAML writer.
    path.write_text(json.dumps(profile, indent=2))
    return profiles_dir


# The dbt vars loanwatch runs the project with, each from one setting: var -> (section, key). Their
# defaults are the settings' (config.DEFAULTS, the one table); dbt_project.yml's `vars:` repeats
# them for plain dbt in the project folder, written from here by `make docs` (a test checks).
DBT_VARS: dict[str, tuple[str, str]] = {
    "tolerance": ("warehouse", "tolerance"),
    "allocation_order": ("warehouse", "allocation_order"),
    "dpd_counts_due_day": ("warehouse", "dpd_counts_due_day"),
    "default_currency": ("warehouse", "default_currency"),
    "default_timezone": ("warehouse", "default_timezone"),
    "memory_limit": ("warehouse", "memory_limit"),
    "amount_outlier_factor": ("checks", "amount_outlier_factor"),
    "merchant_balance_floor": ("checks", "merchant_balance_floor"),
    "freshness_days": ("checks", "freshness_days"),
    "max_interest_rate": ("checks", "max_interest_rate"),
    "connect_min_talk_seconds": ("callcentre", "connect_min_talk_seconds"),
    "login_window_hours": ("callcentre", "login_window_hours"),
    "cure_window_days": ("callcentre", "cure_window_days"),
    "promise_grace_days": ("callcentre", "promise_grace_days"),
    # [notify] holdout_share as basis points: the hold-out draw compares a hash modulo 10000
    "holdout_basis_points": ("notify", "holdout_share"),
    "holdout_salt": ("notify", "holdout_salt"),
}


def var_value(name: str, value: Any) -> Any:
    """A setting's value as its dbt var (DBT_VARS) takes it."""
    section, key = DBT_VARS[name]
    like = DEFAULTS[section][key]
    if name == "holdout_basis_points":
        return int(round(float(value) * 10000))
    return type(like)(value)


def dbt_vars(settings: Settings) -> dict[str, Any]:
    """The dbt vars of these settings (``DBT_VARS``)."""
    return {name: var_value(name, settings.get(section, key)) for name, (section, key) in DBT_VARS.items()}


def project_vars_yaml() -> str:
    """dbt_project.yml's `vars:` block: every var at its setting's default (``make docs``)."""
    lines = ["vars:",
             "  # Written by `make docs` from loanwatch's settings (src/loanwatch/transform/__init__.py DBT_VARS,",
             "  # defaults in src/loanwatch/config.py): edit those. loanwatch passes every one of them from its",
             "  # settings; these values serve plain dbt in this folder. since_batch, the incremental",
             "  # watermark, comes from the environment (LOANWATCH_SINCE_BATCH, set by loanwatch build) or",
             "  # meta.builds when the SQL runs (macro since_batch()).",
             ]
    for name, (section, key) in DBT_VARS.items():
        value = var_value(name, DEFAULTS[section][key])
        lines.append(f"  {name}: {json.dumps(value)}  # [{section}] {key}")
    return "\n".join(lines) + "\n"


def write_project_vars(path: Path = PROJECT_DIR / "dbt_project.yml") -> bool:
    """Rewrite the `vars:` block of dbt_project.yml (the lines from `vars:` to the next top-level
    key); True when it changed."""
    text = path.read_text()
    start = text.index("\nvars:\n") + 1
    end = text.index("\n\n", start) + 1
    new = text[:start] + project_vars_yaml() + text[end:]
    if new != text:
        path.write_text(new)
    return new != text


def release_dbt() -> None:
    """Close the DuckDB instance dbt-duckdb keeps open for the rest of the process (its files
    are checkpointed and closed cleanly)."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    # dbt-duckdb (pinned <1.12) keeps it in a class attribute, and closes it only when Python
    # frees the attribute at exit
    env = getattr(DuckDBConnectionManager, "_ENV", None)
    DuckDBConnectionManager._ENV = None
    if env is not None:
        env.close()


@contextlib.contextmanager
def _before_connect(wait: Callable[[], Any]) -> Iterator[None]:
    """Call ``wait`` before dbt-duckdb opens its first connection, for one invocation.

    dbt-duckdb (pinned <1.12) creates its DuckDB instance, and attaches the profile's files, in
    ``DuckDBConnectionManager.open``; dbt loads and parses the project before that (about 2 s
    with its imports), which is what a caller overlaps with its own work.
    """
    import threading

    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    original = DuckDBConnectionManager.__dict__["open"]
    lock = threading.Lock()
    done = False

    def open_after_wait(cls, connection):
        nonlocal done
        with lock:
            if not done:
                wait()
                done = True
        return original.__func__(cls, connection)

    DuckDBConnectionManager.open = classmethod(open_after_wait)
    try:
        yield
    finally:
        DuckDBConnectionManager.open = original


def run_dbt(settings: Settings, command: str = "build", args: list[str] | None = None, *, engine: Engine,
            extra_vars: dict[str, Any] | None = None, before_connect: Callable[[], Any] | None = None,
            quiet: bool = True, environ: dict[str, str] | None = None) -> DbtRun:
    """Run one dbt command against this warehouse and collect every node's result.

    ``before_connect`` is called (once) before dbt opens its first DuckDB connection, which
    attaches the published file: `loanwatch build` waits there for that file's copy. ``engine``
    (``loanwatch.engines``) is where the project runs: its profile output, and its secrets in
    the environment while dbt runs (`loanwatch docs`, dbt's parse and unit tests pass the home's
    DuckDB file, whatever the home's engine). ``quiet=False`` leaves dbt's own output
    and files (`loanwatch dbt`). ``environ``: more of the environment while dbt runs (the
    build's watermark).
    """
    started = time.monotonic()
    from dbt.cli.main import dbtRunner

    imported = time.monotonic()
    first_node: list[float] = []

    def on_event(msg) -> None:  # dbt calls it for every event, whatever the log level
        if not first_node and msg.info.name == "NodeStart":
            first_node.append(time.monotonic())

    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    target = engine.target
    profiles_dir = write_profile(settings, target, engine.outputs(command in WRITING_COMMANDS), command)
    work = settings.home / ".dbt"
    cli_args = [
        *command.split(),  # "docs generate": a group and its command
        "--project-dir", str(PROJECT_DIR),
        "--profiles-dir", str(profiles_dir),
        "--target-path", str(work / "target"),
        "--log-path", str(work / "logs"),
        "--target", target,
        "--vars", json.dumps({**dbt_vars(settings), **(extra_vars or {})}),
        # nothing reads manifest.json or run_results.json (results come back in-process);
        # writing them cost about 0.7 s of an L batch build's dbt run. The partial-parse file
        # is written anyway. Nothing of dbt's on the console: its results come back in-process
        # and loanwatch says them in its own words (a failed model's error, in colour and with
        # DuckDB's SET advice, was printed as well); its file log keeps them, at info.
        *(["--quiet", "--log-level", "none", "--no-write-json", "--log-level-file", "info"] if quiet else []),
        *(args or []),
    ]
    from loanwatch.engines import environment

    with _before_connect(before_connect) if before_connect else contextlib.nullcontext(), environment(engine, environ):
        result = dbtRunner(callbacks=[on_event]).invoke(cli_args)
    finished = time.monotonic()
    nodes_from = first_node[0] if first_node else finished
    run = DbtRun(success=bool(result.success), phases={
        "dbt import": imported - started, "dbt start": nodes_from - imported, "dbt nodes": finished - nodes_from})
    if result.exception is not None:
        run.error = str(result.exception)
    if result.result is not None and hasattr(result.result, "results"):
        for r in result.result.results:
            node = r.node
            config = getattr(node, "config", None)
            attached = getattr(node, "attached_node", None)
            run.results.append(
                NodeResult(
                    unique_id=node.unique_id,
                    name=node.name,
                    resource_type=str(node.resource_type),
                    status=str(r.status),
                    message=str(r.message or ""),
                    failures=r.failures,
                    severity=str(getattr(config, "severity", "") or "") or None,
                    model=attached.split(".")[-1] if attached else None,
                    relation=getattr(node, "relation_name", None),
                    seconds=float(getattr(r, "execution_time", 0.0) or 0.0),
                    schema=getattr(node, "schema", None),
                    published=getattr(config, "database", None) == "published",
                )
            )
    return run
