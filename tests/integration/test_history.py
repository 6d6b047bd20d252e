"""History: every version kept, ordered by updated_at whatever batch it arrived in."""

from __future__ import annotations

import datetime as dt
import json

from loanwatch import reports
from loanwatch.config import load_settings
from loanwatch.ingest.load import ingest_paths
from loanwatch.serve import open_snapshot
from loanwatch.transform.build import build
from loanwatch.warehouse import open_writer

V1 = {"loan_id": "L1", "client_id": "C1", "amount": 900, "issue_date": "2024-01-10", "term_months": 3,
      "status": "active", "updated_at": "2024-01-10T10:00:00Z"}
V2 = dict(V1, status="written_off", updated_at="2024-05-01T10:00:00Z")
V3 = dict(V1, status="cancelled", updated_at="2024-06-01T10:00:00Z")


def test_a_late_arriving_earlier_version_lands_in_its_place(tmp_path):
    settings = load_settings(tmp_path / "home", environ={})
    (tmp_path / "b1").mkdir()
    (tmp_path / "b2").mkdir()
    (tmp_path / "b1" / "loans.jsonl").write_text(json.dumps(V2) + "\n")
    (tmp_path / "b1" / "payments.jsonl").write_text(json.dumps(
        {"payment_id": "P1", "loan_id": "L1", "paid_at": "2024-02-10", "amount": 300}) + "\n")
    (tmp_path / "b2" / "loans.jsonl").write_text(json.dumps(V1) + "\n")
    for batch in ("b1", "b2"):
        with open_writer(settings) as con:
            ingest_paths(con, [tmp_path / batch])
        assert build(settings).status == "success"
    con = open_snapshot(settings)
    rows = con.execute(
        "SELECT version_number, source_status, valid_from, valid_to, is_current FROM core.loan_versions ORDER BY 1"
    ).fetchall()
    assert rows == [
        (1, "active", dt.datetime(2024, 1, 10, 10), dt.datetime(2024, 5, 1, 10), False),
        (2, "written_off", dt.datetime(2024, 5, 1, 10), None, True),
    ]
    states = {r[0]: r[3] for r in reports.loans(con, as_of=dt.date(2024, 4, 30)).rows}
    assert states == {"L1": "overdue"}  # instalment 2 due 03-10 unpaid
    assert reports.loans(con, as_of=dt.date(2024, 5, 1)).rows[0][3] == "written_off"
    con.close()

    # a still later version cancels the loan: it leaves every figure, at every date
    (tmp_path / "b3").mkdir()
    (tmp_path / "b3" / "loans.jsonl").write_text(json.dumps(V3) + "\n")
    with open_writer(settings) as c:
        ingest_paths(c, [tmp_path / "b3"])
    assert build(settings).status == "success"
    con = open_snapshot(settings)
    assert reports.loans(con, as_of=dt.date(2024, 4, 30)).rows[0][3] == "cancelled"
    assert con.execute("SELECT count(*) FROM marts.fct_loan_states").fetchone()[0] == 0


def test_later_client_and_merchant_versions_reach_earlier_loans_on_an_incremental_build(tmp_path):
    """dim_loans is recomputed for the loans of clients and merchants with new versions, not
    only for loans with new versions; a deleted client leaves core.clients."""
    settings = load_settings(tmp_path / "home", environ={})

    def batch(name, **files):
        folder = tmp_path / name
        folder.mkdir()
        for entity, records in files.items():
            (folder / f"{entity}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        with open_writer(settings) as con:
            ingest_paths(con, [folder])
        assert build(settings).status == "success"

    c1 = {"client_id": "C1", "name": "Ana", "region": "Jalisco", "updated_at": "2024-01-01T00:00:00Z"}
    c2 = {"client_id": "C2", "name": "Boris", "region": "Moscow", "updated_at": "2024-01-01T00:00:00Z"}
    m1 = {"merchant_id": "M1", "name": "Shop", "updated_at": "2024-01-01T00:00:00Z"}
    batch("b1", clients=[c1, c2], merchants=[m1],
          loans=[dict(V1, merchant_id="M1"), dict(V1, loan_id="L2", client_id="C2")])
    # a later batch: C1 moved, M1 renamed, C2 deleted; no loan record at all
    batch("b2", clients=[dict(c1, region="Sonora", updated_at="2024-03-01T00:00:00Z"),
                         {"client_id": "C2", "updated_at": "2024-03-01T00:00:00Z", "deleted": True}],
          merchants=[dict(m1, name="Shop & Co", updated_at="2024-03-01T00:00:00Z")])

    con = open_snapshot(settings)
    builds = con.execute("SELECT full_refresh FROM meta.builds ORDER BY build_id").fetchall()
    assert builds == [(True,), (False,)]
    assert con.execute("SELECT loan_id, client_name, region, merchant_name FROM marts.dim_loans ORDER BY 1").fetchall() == [
        ("L1", "Ana", "Sonora", "Shop & Co"),
        ("L2", None, None, None),
    ]
    assert con.execute("SELECT client_id, region FROM core.clients").fetchall() == [("C1", "Sonora")]
    assert con.execute("SELECT client_id, count(*) FROM core.client_versions GROUP BY 1 ORDER BY 1").fetchall() == [
        ("C1", 2), ("C2", 2)]
