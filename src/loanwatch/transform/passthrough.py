"""`loanwatch dbt ARGS`: dbt itself, on a home, with the home's profile, vars and folders.

For analytics engineers (docs/architecture.md, "For analytics engineers"): `loanwatch dbt ls`,
`loanwatch dbt test`, `loanwatch dbt docs generate`, `loanwatch dbt build --select fct_calls+`
behave as dbt does, from any folder, with dbt's own output.

- Commands that only read the published models (ls, test, compile, show, docs, ...) read the
  serving snapshot, attached read-only as `published`.
- Commands that write models (build, run, seed, snapshot) write a working copy of the snapshot
  (`<home>/published.duckdb`, as `loanwatch build` does before it publishes) and never the serving
  snapshot: only `loanwatch build`, with its checks, publishes. Their rows in the warehouse are
  what a build would write (like a build that stopped before publishing), but the project they
  ran may differ from the one the last build ran, so the next `loanwatch build` rebuilds
  everything.

Both hold the writer lock, so neither runs beside a build or an ingest.
"""

from __future__ import annotations

from loanwatch.config import Settings
from loanwatch.errors import Problem, UsageProblem
from loanwatch.transform import WRITING_COMMANDS, dbt_vars, release_dbt, run_dbt

# dbt's commands that take a sub-command: `docs generate`, `docs serve`, `source freshness`
_GROUPS = {"docs", "source"}
# what loanwatch sets for every invocation; a user's value would point dbt elsewhere
_OWNED = {"--project-dir", "--profiles-dir", "--target-path", "--log-path", "--profile"}


def split_command(args: list[str]) -> tuple[str, list[str]]:
    """("docs generate", [rest]) from dbt's arguments; a usage error when there is no command."""
    if not args or args[0].startswith("-"):
        raise UsageProblem("loanwatch dbt: give a dbt command, e.g. `loanwatch dbt ls` or `loanwatch dbt build --select fct_calls+`")
    n = 2 if args[0] in _GROUPS and len(args) > 1 and not args[1].startswith("-") else 1
    owned = sorted({a.split("=")[0] for a in args[n:]} & _OWNED)
    if owned:
        raise UsageProblem(f"loanwatch dbt: {', '.join(owned)} is set by loanwatch (the home's profile and folders); "
                           "leave it out, or run dbt yourself")
    return " ".join(args[:n]), args[n:]


def merged_vars(settings: Settings, rest: list[str]) -> tuple[dict, list[str]]:
    """The home's dbt vars (its settings) with a `--vars` the user gave merged over them."""
    import yaml

    values, out, i = dict(dbt_vars(settings)), [], 0
    while i < len(rest):
        if rest[i] == "--vars" or rest[i].startswith("--vars="):
            text = rest[i].split("=", 1)[1] if "=" in rest[i] else (rest[i + 1] if i + 1 < len(rest) else "")
            i += 1 if "=" in rest[i] else 2
            try:
                given = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise UsageProblem(f"loanwatch dbt: --vars {text!r} is not YAML: {str(exc).splitlines()[0]}") from None
            if not isinstance(given, dict):
                raise UsageProblem(f"loanwatch dbt: --vars {text!r}: give a mapping, e.g. --vars '{{tolerance: 0.01}}'")
            values.update(given)
            continue
        out.append(rest[i])
        i += 1
    return values, out


def run(settings: Settings, args: list[str]) -> int:
    """Run dbt; its exit code (0, or 1 when dbt failed)."""
    from loanwatch.engines import open_engine
    from loanwatch.serve import restore_published
    from loanwatch.warehouse import connect, writer_lock

    command, rest = split_command(args)
    values, rest = merged_vars(settings, rest)
    if not settings.serving_path.exists():
        raise Problem(f"{settings.home}: nothing built yet; run `loanwatch build` first (dbt reads what it published)")
    engine = open_engine(settings)
    writes = command in WRITING_COMMANDS
    with writer_lock(settings):
        if writes:
            if engine is None:
                restore_published(settings)
            # the next build recomputes everything: this run's project may not be the last build's
            con = connect(settings.warehouse_path)
            try:
                con.execute("UPDATE meta.builds SET project_hash = 'changed by loanwatch dbt' WHERE status = 'success'")
                con.execute("CHECKPOINT")
            finally:
                con.close()
        result = run_dbt(settings, command, rest, engine=engine, quiet=False, extra_vars=values)
        release_dbt()
    return 0 if result.success else 1
