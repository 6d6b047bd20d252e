"""The engine setting and the PostgreSQL engine's pieces that need no server."""

from __future__ import annotations

import json

import pytest

from loanwatch.config import ConfigError, load_settings
from loanwatch.engines import open_engine
from loanwatch.engines.duckdb import DuckDBEngine
from loanwatch.engines.postgres import PASSWORD_VARIABLE, duck_type, pg_type
from loanwatch.transform import dbt_vars, write_profile

pytestmark = pytest.mark.unit


def test_the_engine_is_duckdb_unless_set(tmp_path):
    assert open_engine(load_settings(tmp_path, environ={})).name == "duckdb"
    assert type(open_engine(load_settings(tmp_path, environ={}))) is DuckDBEngine
    assert open_engine(load_settings(tmp_path, environ={"LOANWATCH_WAREHOUSE__ENGINE": " Postgres "})).name == "postgres"
    with pytest.raises(ConfigError, match="use one of duckdb, postgres, spark"):
        open_engine(load_settings(tmp_path, environ={"LOANWATCH_WAREHOUSE__ENGINE": "oracle"}))
    spark = load_settings(tmp_path, environ={"LOANWATCH_WAREHOUSE__ENGINE": "spark", "LOANWATCH_SPARK__MASTER": "local[1]"})
    assert open_engine(spark).name == "spark"
    engine = open_engine(spark)  # starts nothing until used
    assert engine.master == "local[1]" and engine.warehouse_dir == tmp_path.resolve() / "spark"
    assert not engine.resumes_after_failure and engine._session is None and engine.threads == 4
    thrift = {"LOANWATCH_WAREHOUSE__ENGINE": "spark", "LOANWATCH_SPARK__METHOD": "thrift"}
    assert open_engine(load_settings(tmp_path, environ=thrift)).threads == 2
    assert open_engine(load_settings(tmp_path, environ={**thrift, "LOANWATCH_SPARK__THREADS": " 8 "})).threads == 8
    (tmp_path / "loanwatch.toml").write_text("[spark]\nthreads = 3\n")
    assert open_engine(load_settings(tmp_path, environ=thrift)).threads == 3
    (tmp_path / "loanwatch.toml").unlink()
    with pytest.raises(ConfigError, match=r"\[spark\] threads = -1: use 1 or more, or 0"):
        open_engine(load_settings(tmp_path, environ={**thrift, "LOANWATCH_SPARK__THREADS": "-1"}))
    with pytest.raises(ConfigError, match="LOANWATCH_SPARK__THREADS"):
        open_engine(load_settings(tmp_path, environ={**thrift, "LOANWATCH_SPARK__THREADS": "two"}))
    with pytest.raises(ConfigError, match=r"\[spark\] driver_memory = 'lots'"):
        open_engine(load_settings(tmp_path, environ={"LOANWATCH_WAREHOUSE__ENGINE": "spark", "LOANWATCH_SPARK__DRIVER_MEMORY": "lots"}))


def test_spark_types_map_both_ways():
    from loanwatch.engines.spark import duck_type as from_spark
    from loanwatch.engines.spark import spark_type, valid_master

    assert [spark_type(t) for t in ("VARCHAR", "DECIMAL(18,2)", "HUGEINT", "TIMESTAMP", "INTEGER")] == [
        "STRING", "DECIMAL(18,2)", "DECIMAL(38,0)", "TIMESTAMP", "INT"]
    assert [from_spark(t) for t in ("string", "decimal(28,2)", "int", "timestamp", "bigint", "array<int>")] == [
        "VARCHAR", "DECIMAL(28,2)", "INTEGER", "TIMESTAMP", "BIGINT", "VARCHAR"]
    assert all(valid_master(m) for m in ("local", "local[2]", "local[*]", "spark://h:7077", "yarn"))
    assert not any(valid_master(m) for m in ("local[two]", "", "spark://", "yarn; rm -rf /"))


def test_the_password_comes_only_from_the_environment_and_never_reaches_a_file(tmp_path):
    (tmp_path / "loanwatch.toml").write_text('[warehouse]\nengine = "postgres"\n[postgres]\npassword = "in-a-file"\nport = 6543\n')
    with pytest.warns(UserWarning, match=r"\[postgres\] password is a secret"):
        settings = load_settings(tmp_path, environ={})
    assert open_engine(settings).dbt_environment()[PASSWORD_VARIABLE] == ""
    with pytest.warns(UserWarning):
        settings = load_settings(tmp_path, environ={"LOANWATCH_POSTGRES__PASSWORD": "s3cr3t-from-env"})
    engine = open_engine(settings)
    assert engine.port == 6543 and engine.dbt_environment()[PASSWORD_VARIABLE] == "s3cr3t-from-env"
    profile = write_profile(settings, engine.target, engine.outputs()) / "profiles.yml"
    text = profile.read_text()
    assert "s3cr3t-from-env" not in text
    assert json.loads(text)["loanwatch"]["outputs"]["postgres"]["password"] == "{{ env_var('" + PASSWORD_VARIABLE + "', '') }}"


@pytest.mark.parametrize(("pg", "precision", "scale", "duck"), [
    ("numeric", 18, 2, "DECIMAL(18,2)"),
    ("numeric", 18, 8, "DECIMAL(18,8)"),
    ("numeric", None, None, "DECIMAL(38,10)"),  # unconstrained: exact to 10 places, never rounded to cents
    ("integer", 32, 0, "INTEGER"),
    ("bigint", 64, 0, "BIGINT"),
    ("timestamp without time zone", None, None, "TIMESTAMP"),
    ("text", None, None, "VARCHAR"),
    ("boolean", None, None, "BOOLEAN"),
])
def test_server_types_map_to_duckdb_types(pg, precision, scale, duck):
    assert duck_type(pg, precision, scale) == duck


def test_ledger_types_map_to_server_types():
    assert pg_type("DECIMAL(18,2)") == "NUMERIC(18,2)"
    assert pg_type("VARCHAR") == "TEXT" and pg_type("TIMESTAMP") == "TIMESTAMP" and pg_type("DOUBLE") == "DOUBLE PRECISION"


def test_dbt_runs_on_postgres_with_jit_and_nested_loops_off_and_the_users_own_options(tmp_path, monkeypatch):
    engine = open_engine(load_settings(tmp_path, environ={"LOANWATCH_WAREHOUSE__ENGINE": "postgres"}))
    monkeypatch.delenv("PGOPTIONS", raising=False)
    assert engine.dbt_environment()["PGOPTIONS"] == "-c jit=off -c enable_nestloop=off"
    monkeypatch.setenv("PGOPTIONS", "-c statement_timeout=0")
    assert engine.dbt_environment()["PGOPTIONS"] == "-c statement_timeout=0 -c jit=off -c enable_nestloop=off"


def test_a_manifest_of_another_ledger_is_refused_and_only_missing_batches_are_pending():
    """What every engine lands: the ledger's batches its manifest lacks; never beside another home's."""
    import duckdb

    from loanwatch.engines import EngineUnreachable, pending_batches

    duck = duckdb.connect()
    duck.execute("CREATE SCHEMA meta")
    duck.execute("CREATE TABLE meta.ledger AS SELECT 'ours' AS ledger_id")
    duck.execute("""CREATE TABLE meta.batches AS SELECT * FROM (VALUES (1, 'loans', 'a.csv', 'h1', 10),
                    (2, 'payments', 'b.csv', 'h2', 5), (3, 'payments', 'c.csv', 'h3', 0))
                    AS t(batch_id, entity, file_name, content_hash, rows_accepted)""")
    ledger, batches = pending_batches(duck, [(2, "ours")], "Spark local[2] (/w)", "its own [spark] warehouse_dir")
    assert ledger == "ours" and [b[0] for b in batches] == [1, 3]
    with pytest.raises(EngineUnreachable, match=r"Spark local\[2\] \(/w\) holds batches another loanwatch home loaded; "
                                                r"point this home at its own \[spark\] warehouse_dir"):
        pending_batches(duck, [(1, "ours"), (2, "theirs")], "Spark local[2] (/w)", "its own [spark] warehouse_dir")


def test_dbt_reaches_a_thrift_server_with_its_threads_and_retries(tmp_path, monkeypatch):
    from loanwatch.engines.spark import SparkEngine

    monkeypatch.setattr(SparkEngine, "_thrift", lambda self: None)  # no server here: the profile only
    env = {"LOANWATCH_WAREHOUSE__ENGINE": "spark", "LOANWATCH_SPARK__METHOD": "thrift", "LOANWATCH_SPARK__HOST": "sql.internal"}
    [output] = open_engine(load_settings(tmp_path, environ=env)).outputs().values()
    assert (output["method"], output["host"], output["port"], output["threads"]) == ("thrift", "sql.internal", 10000, 2)
    assert output["connect_retries"] == 3 and output["retry_all"] is True


def test_an_engines_error_is_told_by_its_first_line():
    from loanwatch.errors import first_line

    jvm = RuntimeError("  [TABLE_OR_VIEW_NOT_FOUND] The table `core`.`x` cannot be found.  \n\tat org.apache.spark.sql...\n")
    assert first_line(jvm) == "[TABLE_OR_VIEW_NOT_FOUND] The table `core`.`x` cannot be found."
    assert first_line(jvm, 11) == "[TABLE_OR_V"
    assert first_line(EOFError()) == "EOFError"  # no text: the error's type


def test_a_failed_models_line_is_what_the_engine_says_went_wrong_not_its_stack():
    """dbt's report of a failed model, as dbt's own exceptions word it: the user's line is the
    engine's message, not dbt's trailer (it said "model x failed: compiled code at target/run/..."
    on PostgreSQL), not the JVM's stack and blank line (on Spark it said "model x failed:")."""
    from types import SimpleNamespace

    from dbt_common.exceptions import DbtDatabaseError, DbtRuntimeError

    from loanwatch.transform.build import _model_error

    node = SimpleNamespace(build_path="target/run/loanwatch/models/marts/dim_loans.sql", resource_type="model",
                           name="dim_loans", original_file_path="models/marts/dim_loans.sql")
    postgres = DbtDatabaseError('relation "core.loans" does not exist\nLINE 3: from core.loans\n             ^')
    postgres.node = node
    assert str(postgres).splitlines()[-1].strip().startswith("compiled code at")  # what was shown
    assert _model_error("dim_loans", str(postgres)) == 'model dim_loans failed: relation "core.loans" does not exist'
    duck = DbtRuntimeError('Binder Error: Referenced column "y" not found in FROM clause!\n'
                           'Candidate bindings: "loan_id"\n\nLINE 3: select y from core.loans\n               ^')
    duck.node = node
    assert _model_error("dim_loans", str(duck)) == (
        'model dim_loans failed: Binder Error: Referenced column "y" not found in FROM clause!')
    spark = ("Runtime Error in model int_servicing_steps (models/intermediate/servicing/int_servicing_steps.sql)\n"
             "  An error occurred while calling o47.sql.\n"
             "  : java.lang.RuntimeException: Max iterations (100) reached for batch Resolution\n"
             "  \tat org.apache.spark.sql.catalyst.rules.RuleExecutor.execute(RuleExecutor.scala:237)\n"
             "  \t... 42 more\n  \n")
    assert _model_error("int_servicing_steps", spark) == (
        "model int_servicing_steps failed: Max iterations (100) reached for batch Resolution")
    assert _model_error("m", " \n\n") == "model m failed: no reason given"


def test_every_engine_is_a_class_with_every_member_of_the_interface():
    """DuckDB included: callers hold an engine and call it, never asking which one it is."""
    import inspect

    from loanwatch.engines import Engine, engine_classes

    classes = engine_classes()
    assert list(classes) == ["duckdb", "postgres", "spark"]
    methods = {name for name, member in vars(Engine).items() if getattr(member, "__isabstractmethod__", False)}
    assert {"where", "outputs", "dbt_environment", "land", "mirror_builds", "query", "dq_tables", "dq_rows",
            "export"} <= methods
    for name, cls in classes.items():
        assert issubclass(cls, Engine) and not inspect.isabstract(cls), name
        # the names and capabilities are said by each class itself, none inherited by default
        for attribute in ("name", "target", "place", "exports_published", "resumes_after_failure"):
            assert attribute in vars(cls), (name, attribute)
        assert cls.name == name and isinstance(cls.exports_published, bool) and isinstance(cls.resumes_after_failure, bool)
        for method in methods:  # called the same way on every engine
            assert list(inspect.signature(getattr(cls, method)).parameters) == \
                list(inspect.signature(getattr(Engine, method)).parameters), (name, method)
    assert not classes["duckdb"].exports_published and classes["postgres"].exports_published
    assert classes["spark"].exports_published and not classes["spark"].resumes_after_failure


def test_duckdb_builds_in_the_homes_own_files(tmp_path):
    """Nothing to land, mirror or export; queries run on the warehouse connection; the profile's
    output attaches the build's own file to write, the serving snapshot read-only to read."""
    import duckdb

    from loanwatch.transform.build import project_hash

    settings = load_settings(tmp_path, environ={})
    engine = open_engine(settings)
    duck = duckdb.connect()
    assert engine.land(duck) == 0 and engine.land_pending(duck) == 0 and engine.mirror_builds(duck) is None
    assert engine.query("SELECT 42", duck) == [(42,)]
    assert engine.dbt_environment() == {}
    [(target, output)] = engine.outputs().items()
    assert target == engine.target == "duckdb" and output["path"] == str(settings.warehouse_path)
    assert output["attach"] == [{"path": str(settings.published_path), "alias": "published"}]
    [reading] = engine.outputs(writes_models=False).values()
    assert reading["attach"] == [{"path": str(settings.serving_path), "alias": "published", "read_only": True}]
    profile = json.loads((write_profile(settings, command="ls") / "profiles.yml").read_text())["loanwatch"]
    assert profile == {"target": "duckdb", "outputs": {"duckdb": reading}}
    # the home's own files are nothing beside the project: a DuckDB home's hash is the project's
    assert engine.fingerprint() == "" and project_hash(settings, engine.fingerprint()) == project_hash(settings)
    postgres = open_engine(load_settings(tmp_path, environ={"LOANWATCH_WAREHOUSE__ENGINE": "postgres"}))
    assert project_hash(settings, postgres.fingerprint()) != project_hash(settings)
    # a setting the results depend on rebuilds everything; the memory DuckDB may use, nothing
    changed = load_settings(tmp_path, environ={"LOANWATCH_WAREHOUSE__TOLERANCE": "0.05"})
    assert project_hash(changed) != project_hash(settings)
    more_memory = load_settings(tmp_path, environ={"LOANWATCH_WAREHOUSE__MEMORY_LIMIT": "8GB"})
    assert dbt_vars(more_memory)["memory_limit"] == "8GB" and project_hash(more_memory) == project_hash(settings)


def test_an_unknown_engine_is_one_usage_line_and_checked_once_per_command(tmp_path, monkeypatch):
    from loanwatch import engines
    from tests.conftest import GOLDEN, cli

    for args in (["build"], ["ingest", str(GOLDEN)], ["check", "--rows", "any"]):
        result = cli(*args, home=tmp_path, env={"LOANWATCH_WAREHOUSE__ENGINE": "oracle"})
        assert result.exit_code == 2, args
        assert result.stderr.strip().splitlines() == [
            "error: [warehouse] engine = 'oracle': use one of duckdb, postgres, spark (LOANWATCH_WAREHOUSE__ENGINE)"], args
    assert not (tmp_path / "warehouse.duckdb").exists()  # stopped before anything was loaded
    opened = []
    monkeypatch.setattr(engines, "engine_classes", lambda real=engines.engine_classes: opened.append(1) or real())
    assert cli("ingest", str(GOLDEN / "clients.jsonl"), home=tmp_path).exit_code == 0
    assert len(opened) == 1  # one engine for the command: its setting read and checked once


@pytest.mark.parametrize("builds, holds", [
    ([], False),
    ([("success", True)], True),  # a good whole build: the export applies the next one's changes
    ([("success", True), ("failed", None)], False),  # the failed one may have written tables
    ([("success", True), ("interrupted", None)], False),
    ([("success", True), ("success", None)], False),  # a selection copied only its own tables
    ([("success", True), ("failed", None), ("success", None), ("success", True)], True),
    ([("success", "another file")], False),  # the snapshot was replaced since (a backup put back)
])
def test_an_engine_exports_changes_only_while_its_tables_are_the_snapshots(tmp_path, builds, holds):
    """`_engine_holds_snapshot`: the last build was a good whole build (the one that records its
    snapshot's stat; a selection records none), and the snapshot is still the file it published."""
    from loanwatch.transform.build import _engine_holds_snapshot, _snapshot_stat
    from loanwatch.warehouse import connect, init_warehouse

    settings = load_settings(tmp_path, environ={})
    settings.serving_path.write_bytes(b"a snapshot")
    con = connect(settings.warehouse_path)
    try:
        init_warehouse(con)
        for build_id, (status, whole) in enumerate(builds, start=1):
            stat = {True: _snapshot_stat(settings), None: None}.get(whole, "1 2")
            con.execute("INSERT INTO meta.builds (build_id, started_at, status, full_refresh, published, snapshot_stat) "
                        "VALUES (?, now(), ?, false, ?, ?)", [build_id, status, status == "success", stat])
        assert _engine_holds_snapshot(con, settings) is holds
    finally:
        con.close()


def test_a_check_that_could_not_run_says_what_the_engine_said_not_zero_failing_rows():
    """A check whose query errored (status error, no failing-row count) is not a check with 0
    failing rows: the build's line says it could not run and why (on Spark through Thrift a check
    said "failed (0 rows)", and nothing more, in CI); a failing check keeps its count; a warning
    is only a warning. All three are recorded in meta.dq_results with dbt's whole message."""
    import duckdb

    from loanwatch.transform import DbtRun, NodeResult
    from loanwatch.transform.build import _record_checks
    from loanwatch.warehouse import init_warehouse

    duck = ("Runtime Error in test not_null_x_payment_id (models/marts/x.yml)\n"
            "  Catalog Error: Table with name x does not exist!\n  Did you mean \"core.loans\"?\n")
    run = DbtRun(success=False, results=[
        NodeResult("test.a", "not_null_x_payment_id", "test", "error", duck, None, "ERROR", "x"),
        NodeResult("test.b", "unique_x_payment_id", "test", "fail", "Got 3 results", 3, "ERROR", "x"),
        NodeResult("test.c", "accepted_x_kind", "test", "warn", "Got 1 result", 1, "WARN", None),
        NodeResult("test.d", "not_null_x_loan_id", "test", "error", "", None, "ERROR", "x"),
    ])
    con = duckdb.connect()
    init_warehouse(con)
    errors, warnings = _record_checks(con, 7, run, DuckDBEngine.__new__(DuckDBEngine))
    assert errors == [
        "check not_null_x_payment_id could not run on x: Catalog Error: Table with name x does not exist!",
        "check unique_x_payment_id failed (3 rows) on x",
        "check not_null_x_loan_id could not run on x: no reason given",
    ]
    assert warnings == ["check accepted_x_kind warns (1 rows)"]
    recorded = con.execute("select check_name, status, failing_rows, message from meta.dq_results where build_id = 7 "
                           "order by check_name").fetchall()
    assert [(name, status, failures) for name, status, failures, _ in recorded] == [
        ("accepted_x_kind", "warn", 1), ("not_null_x_loan_id", "error", 0), ("not_null_x_payment_id", "error", 0),
        ("unique_x_payment_id", "fail", 3)]
    assert "Did you mean" in recorded[2][3]


# dbt's message for the check that failed in CI on 2026-12-06 (Spark 4's Thrift server; the
# JVM's stack cut to its first and last frames)
CLOSE_FAILED = (
    "TCloseSessionResp(status=TStatus(statusCode=3, infoMessages=['*java.lang.RuntimeException:java.lang."
    "NoClassDefFoundError: org/apache/hadoop/hive/llap/security/LlapSigner$Signable:21:20', 'org.apache.hive."
    "service.cli.session.HiveSessionProxy:invoke:HiveSessionProxy.java:76', 'java.lang.ClassLoader:loadClass:"
    "ClassLoader.java:525'], sqlState=None, errorCode=None, errorMessage='java.lang.NoClassDefFoundError: "
    "org/apache/hadoop/hive/llap/security/LlapSigner$Signable'))")


def test_a_thrift_servers_reply_is_told_by_its_error_message_and_spark_4s_failed_close_by_its_fix(tmp_path):
    """A Thrift server's reply that dbt passes on whole is told by its errorMessage (its quoting
    undone), not by its first line (the reply's repr, with the JVM's stack in it); Spark 4's
    failed session close, a fault of the server's jars, says what to add to the server
    (docs/engines.md). Other engines know no such fault."""
    import duckdb

    from loanwatch.errors import engine_line
    from loanwatch.transform import DbtRun, NodeResult
    from loanwatch.transform.build import _model_error, _record_checks
    from loanwatch.warehouse import init_warehouse

    assert engine_line(CLOSE_FAILED) == "NoClassDefFoundError: org/apache/hadoop/hive/llap/security/LlapSigner$Signable"
    # Spark's message runs on over lines (the plan), and may hold both quotes
    plan = repr("Error running query: [TABLE_OR_VIEW_NOT_FOUND] The table `x` can't be found ('y').\nProject [*]\n+- x")
    assert engine_line(f"TExecuteStatementResp(status=TStatus(statusCode=3, infoMessages=['*x:1:0'], "
                       f"errorMessage={plan}))") == (
        "Error running query: [TABLE_OR_VIEW_NOT_FOUND] The table `x` can't be found ('y').")
    # a message that only quotes the words is not a reply
    assert engine_line("Parser Error: syntax error at or near \"errorMessage='x')\"") == (
        "Parser Error: syntax error at or near \"errorMessage='x')\"")
    env = {"LOANWATCH_WAREHOUSE__ENGINE": "spark", "LOANWATCH_SPARK__METHOD": "thrift", "LOANWATCH_SPARK__HOST": "sql.internal"}
    spark = open_engine(load_settings(tmp_path, environ=env))
    run = DbtRun(success=False, results=[
        NodeResult("test.a", "not_null_fct_payment_allocations_payment_id", "test", "error", CLOSE_FAILED, None,
                   "ERROR", "fct_payment_allocations"),
        NodeResult("model.b", "dim_loans", "model", "error", CLOSE_FAILED, None, None, None)])
    con = duckdb.connect()
    init_warehouse(con)
    errors, _ = _record_checks(con, 1, run, spark)
    fault = (f"{spark.where()} failed closing a session: its Hive jars lack hive-llap-common and hive-llap-client "
             "2.3.10 (Spark 4); add them to the server's jars and restart it (docs/engines.md, Thrift server)")
    assert errors == [f"check not_null_fct_payment_allocations_payment_id could not run on fct_payment_allocations: {fault}",
                      f"model dim_loans failed: {fault}"]
    # in-process, the registry fails to load where Spark's own jars are
    in_process = open_engine(load_settings(tmp_path, environ={"LOANWATCH_WAREHOUSE__ENGINE": "spark"}))
    assert in_process.known_fault(": java.lang.NoClassDefFoundError: org/apache/hadoop/hive/llap/security/"
                                  "LlapSigner$Signable") == (
        f"{in_process.where()}: Hive's function registry could not load, its jars lack hive-llap-common and "
        "hive-llap-client 2.3.10 (Spark 4); add them to Spark's jars (docs/engines.md, Thrift server)")
    assert spark.known_fault("[TABLE_OR_VIEW_NOT_FOUND] The table `x` cannot be found.") is None
    assert DuckDBEngine.__new__(DuckDBEngine).known_fault(CLOSE_FAILED) is None
    assert _model_error("dim_loans", CLOSE_FAILED) == (
        "model dim_loans failed: NoClassDefFoundError: org/apache/hadoop/hive/llap/security/LlapSigner$Signable")
