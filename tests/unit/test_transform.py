"""The private parts of dbt that loanwatch touches (docs/architecture.md, "dbt internals")."""

from __future__ import annotations


def test_the_dbt_internals_loanwatch_patches_are_still_there():
    """transform/__init__.py replaces or reads two private parts of dbt (docs/architecture.md,
    "dbt internals"). A dbt upgrade that moves one fails here, by name, before a build misbehaves."""
    import importlib.metadata
    import inspect

    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    def params(fn) -> list[str]:
        return list(inspect.signature(fn).parameters)

    assert importlib.metadata.version("dbt-core").startswith("1.11."), "dbt-core upgraded: re-check the patches"
    assert importlib.metadata.version("dbt-duckdb").startswith("1.11."), "dbt-duckdb upgraded: re-check the patches"
    assert isinstance(DuckDBConnectionManager.__dict__["open"], classmethod)
    assert params(DuckDBConnectionManager.open) == ["connection"]
    assert "_ENV" in DuckDBConnectionManager.__dict__
