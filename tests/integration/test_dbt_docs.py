"""The published models are documented: every column of every table in the serving snapshot's
schemas core and marts has a description in its model's yml, and those ymls describe no column
the snapshot lacks."""

from __future__ import annotations

import duckdb
import pytest
import yaml

from loanwatch.transform import PROJECT_DIR

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def published(small_home) -> dict[str, list[str]]:
    """Each table of core and marts in the built snapshot, with its columns in order."""
    # a fresh in-memory instance that attaches the file read-only, as loanwatch.serve does: DuckDB
    # caches database instances by path within a process
    con = duckdb.connect()
    try:
        con.execute("ATTACH ? AS snapshot (READ_ONLY)", [str(small_home.serving_path)])
        rows = con.execute(
            """SELECT table_name, column_name FROM information_schema.columns
               WHERE table_catalog = 'snapshot' AND table_schema IN ('core', 'marts')
               ORDER BY table_schema, table_name, ordinal_position"""
        ).fetchall()
    finally:
        con.close()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(table, []).append(column)
    assert tables, f"no table in core or marts of {small_home.serving_path}"
    return tables


@pytest.fixture(scope="module")
def models() -> dict[str, dict]:
    """Every model entry of the dbt project's ymls, by name."""
    found: dict[str, dict] = {}
    for path in sorted((PROJECT_DIR / "models").rglob("*.yml")):
        for model in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models") or []:
            assert model["name"] not in found, f"model {model['name']} is described twice ({path})"
            found[model["name"]] = model
    return found


def _described(model: dict | None) -> dict[str, str]:
    return {c["name"]: (c.get("description") or "").strip() for c in (model or {}).get("columns") or []}


def test_every_published_column_has_a_description(published, models):
    """A column readers see (core, marts) says what it holds, in its model's yml."""
    missing = [f"{table}.{column}" for table, columns in published.items()
               for column in columns if not _described(models.get(table)).get(column)]
    assert not missing, f"{len(missing)} published columns have no description in their yml: " + ", ".join(missing)


def test_no_yml_describes_a_column_the_snapshot_lacks(published, models):
    """A published model's yml names only columns its table has: a renamed or dropped column
    leaves no stale description behind."""
    stale = [f"{table}.{column}" for table in published
             for column in _described(models.get(table)) if column not in published[table]]
    assert not stale, "described but not in the snapshot: " + ", ".join(stale)


def test_every_published_model_has_a_description(published, models):
    """Each table in core and marts has a model yml with a description of the model itself."""
    undescribed = sorted(t for t in published if not (models.get(t, {}).get("description") or "").strip())
    assert not undescribed, "published models without a description: " + ", ".join(undescribed)
