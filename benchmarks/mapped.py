"""`make bench-mapped`: mapped ingest against plain ingest of the same rows (issue: >= 50 %).

The generated portfolio (M by default) is written twice: as contract CSV files (loans,
instalments, payments) and as a "foreign" export of the same rows, the way another system
would write it: Spanish column names, `;` between fields, decimal commas, day-first dates and
local Mexico City times, payment types as codes, and a mapping (written here) that loads it.
Each is ingested into a fresh warehouse, alternating, `--runs` times; rows per second are all
rows read over the wall time of the `loanwatch ingest` process.

    python benchmarks/mapped.py --clients 50000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
LOANWATCH = [str(ROOT / ".venv" / "bin" / "python"), "-c", "from loanwatch.cli import run; run()"]

MAPPING = """
[[files]]
match = "prestamos*.csv"
entity = "loans"
delimiter = ";"
decimal = ","
date_format = "%d/%m/%Y"
timestamp_format = "%d/%m/%Y %H:%M:%S"
timezone = "America/Mexico_City"
[files.fields]
loan_id = "Prestamo"
client_id = "Cliente"
merchant_id = "Comercio"
product = "Producto"
amount = "Monto"
currency = "Moneda"
interest_rate = "Tasa"
issue_date = "FechaDesembolso"
term_months = "Plazo"
repayment = "Tipo"
status = "Estado"
updated_at = "Actualizado"
[files.values.repayment]
frances = "annuity"
bala = "bullet"
calendario = "schedule"

[[files]]
match = "cuotas*.csv"
entity = "instalments"
delimiter = ";"
decimal = ","
date_format = "%d/%m/%Y"
[files.fields]
loan_id = "Prestamo"
number = "Cuota"
due_date = "Vencimiento"
principal = "Capital"
interest = "Interes"

[[files]]
match = "pagos*.csv"
entity = "payments"
delimiter = ";"
decimal = ","
timestamp_format = "%d/%m/%Y %H:%M:%S"
timezone = "America/Mexico_City"
[files.fields]
payment_id = "Pago"
loan_id = "Prestamo"
paid_at = "Fecha"
amount = "Importe"
type = "Clase"
reverses = "Revierte"
channel = "Canal"
[files.values.type]
P = "payment"
R = "reversal"
"""

LOCAL = "strftime(timezone('America/Mexico_City', CAST({col} AS TIMESTAMPTZ)), '%d/%m/%Y %H:%M:%S')"


def comma(col: str) -> str:
    return f"replace(CAST({col} AS VARCHAR), '.', ',')"


def write_files(raw: Path, plain: Path, foreign: Path) -> int:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    plain.mkdir(parents=True, exist_ok=True)
    foreign.mkdir(parents=True, exist_ok=True)
    for entity in ("loans", "instalments", "payments"):
        con.execute(f"CREATE TABLE {entity} AS SELECT * FROM read_json_auto(?)", [str(raw / f"{entity}.jsonl")])
        con.execute(f"COPY (SELECT * FROM {entity}) TO ? (FORMAT CSV, HEADER true)", [str(plain / f"{entity}.csv")])
    con.execute(f"""COPY (SELECT loan_id AS Prestamo, client_id AS Cliente, merchant_id AS Comercio, product AS Producto,
                         {comma('amount')} AS Monto, currency AS Moneda, {comma('interest_rate')} AS Tasa,
                         strftime(CAST(issue_date AS DATE), '%d/%m/%Y') AS FechaDesembolso, term_months AS Plazo,
                         CASE repayment WHEN 'annuity' THEN 'frances' WHEN 'bullet' THEN 'bala' ELSE 'calendario' END AS Tipo,
                         status AS Estado, {LOCAL.format(col='updated_at')} AS Actualizado
                  FROM loans) TO ? (FORMAT CSV, HEADER true, DELIMITER ';')""", [str(foreign / "prestamos.csv")])
    con.execute(f"""COPY (SELECT loan_id AS Prestamo, number AS Cuota, strftime(CAST(due_date AS DATE), '%d/%m/%Y') AS Vencimiento,
                         {comma('principal')} AS Capital, {comma('interest')} AS Interes
                  FROM instalments) TO ? (FORMAT CSV, HEADER true, DELIMITER ';')""", [str(foreign / "cuotas.csv")])
    con.execute(f"""COPY (SELECT payment_id AS Pago, loan_id AS Prestamo, {LOCAL.format(col='paid_at')} AS Fecha,
                         {comma('amount')} AS Importe, CASE type WHEN 'reversal' THEN 'R' ELSE 'P' END AS Clase,
                         reverses AS Revierte, channel AS Canal
                  FROM payments) TO ? (FORMAT CSV, HEADER true, DELIMITER ';')""", [str(foreign / "pagos.csv")])
    (foreign.parent / "mapping.toml").write_text(MAPPING)
    rows = sum(con.execute(f"SELECT count(*) FROM {e}").fetchone()[0] for e in ("loans", "instalments", "payments"))
    con.close()
    return rows


def ingest(args: list[str], home: Path) -> float:
    shutil.rmtree(home, ignore_errors=True)
    env = {**os.environ, "LOANWATCH_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}
    start = time.monotonic()
    proc = subprocess.run([*LOANWATCH, "ingest", *args], env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"ingest {args} failed ({proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default="/tmp/loanwatch_bench_mapped")
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {**os.environ, "LOANWATCH_HOME": str(work / "gen"), "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([*LOANWATCH, "generate", "--clients", str(args.clients), "--seed", "1", "--end", "2026-10-31",
                    "--out", str(work / "raw")], env=env, check=True, capture_output=True)
    rows = write_files(work / "raw", work / "plain", work / "foreign" / "files")
    plain, mapped = [], []
    for i in range(args.runs):
        order = ("plain", "mapped") if i % 2 == 0 else ("mapped", "plain")
        for kind in order:
            if kind == "plain":
                plain.append(ingest([str(work / "plain")], work / "home_plain"))
            else:
                mapped.append(ingest(["--mapping", str(work / "foreign" / "mapping.toml"), str(work / "foreign" / "files")],
                                     work / "home_mapped"))
            print(f"run {i + 1} {kind}: {(plain if kind == 'plain' else mapped)[-1]:.2f} s", flush=True)
    p, m = statistics.median(plain), statistics.median(mapped)
    print(f"\n{rows:,} rows (loans, instalments, payments)")
    print(f"plain  ingest: {' / '.join(f'{t:.2f}' for t in plain)} s, median {rows / p:,.0f} rows/s")
    print(f"mapped ingest: {' / '.join(f'{t:.2f}' for t in mapped)} s, median {rows / m:,.0f} rows/s")
    print(f"mapped / plain rows per second: {p / m:.2f}")


if __name__ == "__main__":
    main()
