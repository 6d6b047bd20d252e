"""`loanwatch dbt ARGS`: dbt itself, on a home, with the home's profile, vars and folders; and
`loanwatch mf ARGS`: MetricFlow's `mf` on the home's serving snapshot (the semantic layer).

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

import json
from pathlib import Path

from loanwatch.config import Settings
from loanwatch.errors import Problem, UsageProblem
from loanwatch.transform import PROJECT_DIR, WRITING_COMMANDS, dbt_vars, release_dbt, run_dbt

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
            if not engine.exports_published:  # dbt writes the build's own file: a copy of the snapshot
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


def _absolute_outputs(args: list[str]) -> list[str]:
    """mf runs in loanwatch's work folder: a relative `--csv FILE` is made relative to the
    user's folder, where they expect it."""
    out, i = [], 0
    while i < len(args):
        a = args[i]
        if a == "--csv" and i + 1 < len(args):
            out += [a, str(Path(args[i + 1]).expanduser().resolve())]
            i += 2
            continue
        if a.startswith("--csv="):
            a = "--csv=" + str(Path(a.split("=", 1)[1]).expanduser().resolve())
        out.append(a)
        i += 1
    return out


def run_mf(settings: Settings, args: list[str]) -> int:
    """MetricFlow's `mf` on the home's serving snapshot (docs/architecture.md, "Semantic layer"):
    a work folder `<home>/.dbt/mf/` with a copy of dbt_project.yml, a profile that attaches the
    snapshot read-only as `published` (the main database in memory: mf never opens the warehouse,
    so it neither waits for a build nor blocks one), and the semantic manifest, parsed again
    whenever the project changed. Returns mf's exit code."""
    import os
    import shutil
    import subprocess
    import sys

    mf = Path(sys.executable).parent / "mf"
    if not mf.exists():
        found = shutil.which("mf")
        if not found:
            raise Problem("loanwatch mf needs MetricFlow: pip install 'loanwatch[semantic]' (make install has it)")
        mf = Path(found)
    if not args:
        raise UsageProblem("loanwatch mf: give an mf command, e.g. `loanwatch mf query --metrics overdue_share "
                           "--group-by metric_time__month` or `loanwatch mf list metrics`")
    if not settings.serving_path.exists():
        raise Problem(f"{settings.home}: nothing built yet; run `loanwatch build` first (mf reads what it published)")
    work = settings.home / ".dbt" / "mf"
    work.mkdir(parents=True, exist_ok=True)
    profile = {"loanwatch": {"target": "duckdb", "outputs": {"duckdb": {
        "type": "duckdb", "path": ":memory:", "threads": 1,
        "attach": [{"path": str(settings.serving_path), "alias": "published", "read_only": True}]}}}}
    (work / "profiles.yml").write_text(json.dumps(profile, indent=2))  # JSON is YAML
    shutil.copyfile(PROJECT_DIR / "dbt_project.yml", work / "dbt_project.yml")
    from loanwatch.transform.build import project_hash

    # the build's own fingerprint of the project and its vars: parsed again whenever it changes
    stamp, manifest = project_hash(settings), work / "target" / "semantic_manifest.json"
    env = {**os.environ, "DBT_PROFILES_DIR": str(work), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    stale = not manifest.exists() or not (work / "stamp").exists() or (work / "stamp").read_text() != stamp
    if stale:
        from dbt.cli.main import dbtRunner

        os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        parsed = dbtRunner().invoke(["parse", "--quiet", "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(work),
                                     "--target-path", str(work / "target"), "--log-path", str(work / "logs"),
                                     "--vars", json.dumps(dbt_vars(settings))])
        if not parsed.success or not manifest.exists():
            raise Problem(f"the semantic layer could not be parsed: {parsed.exception or 'dbt parse failed'}")
        (work / "stamp").write_text(stamp)
    return subprocess.run([str(mf), *_absolute_outputs(args)], cwd=work, env=env).returncode
