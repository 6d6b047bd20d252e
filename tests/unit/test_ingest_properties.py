"""Property: whatever bytes arrive, ingest never crashes and its accounting always holds."""

from __future__ import annotations

import csv
import io
import itertools
import json

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from loanwatch.config import load_settings
from loanwatch.ingest.contract import ENTITIES
from loanwatch.ingest.load import ingest_file
from loanwatch.warehouse import connect, init_warehouse

FIELDS = sorted({f.name for e in ENTITIES.values() for f in e.fields}) + ["junk", "schedule"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**20, max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
    st.sampled_from(["2024-01-15", "2024-01-15T09:30:00Z", "2024-02-30", "abc", "1e400", "-0", "NaN",
                     "loans", "payment", "reversal", "annuity", "bullet", "no_answer", "true", "yes", "UTC",
                     "Robert'); DROP TABLE loans;--", "<b>x</b>", "=HYPERLINK(\"x\")"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.sampled_from(["due_date", "principal", "interest", "x"]), inner, max_size=3)),
                      max_leaves=6)
records = st.dictionaries(st.sampled_from(FIELDS), values, max_size=12)
mutations = st.sampled_from(["none", "truncate", "junk", "array", "bytes"])
counter = itertools.count()


def _render_jsonl(recs, mutation, data) -> bytes:
    lines = [json.dumps(r) for r in recs]
    if mutation == "truncate" and lines:
        i = data.draw(st.integers(0, len(lines) - 1))
        lines[i] = lines[i][: data.draw(st.integers(0, max(0, len(lines[i]) - 1)))]
    elif mutation == "junk":
        lines.insert(data.draw(st.integers(0, len(lines))), data.draw(st.text(max_size=30)).replace("\n", " "))
    elif mutation == "array":
        return json.dumps(recs).encode()[: data.draw(st.integers(0, 10_000))]
    raw = ("\n".join(lines) + "\n").encode()
    if mutation == "bytes" and raw:
        i = data.draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([data.draw(st.integers(0, 255))]) + raw[i + 1:]
    return raw


def _render_csv(recs, mutation, data) -> bytes:
    cols = sorted({k for r in recs for k in r}) or ["loan_id"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    for r in recs:
        w.writerow(["" if r.get(c) is None else (json.dumps(r[c]) if isinstance(r.get(c), (list, dict)) else r[c])
                    for c in cols])
    text = buf.getvalue()
    if mutation == "junk":
        text += data.draw(st.text(max_size=30)) + "\n"
    elif mutation == "truncate" and text:
        text = text[: data.draw(st.integers(0, len(text)))]
    return text.encode("utf-8", "surrogatepass") if mutation != "bytes" else text.encode("utf-8", "replace")[:-1] + b"\xff"


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), recs=st.lists(records, max_size=8), mutation=mutations,
       entity=st.sampled_from(sorted(ENTITIES)), fmt=st.sampled_from(["jsonl", "json", "csv"]))
def test_ingest_never_crashes_and_accounts_for_every_row(tmp_path_factory, data, recs, mutation, entity, fmt):
    home = tmp_path_factory.getbasetemp() / "prop_home"
    home.mkdir(exist_ok=True)
    con = connect(load_settings(home, environ={}).warehouse_path)
    try:
        init_warehouse(con)
        name = f"{entity}_{next(counter):05d}.{fmt}"
        path = home / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            raw = _render_csv(recs, mutation, data) if fmt == "csv" else _render_jsonl(recs, mutation, data)
        except UnicodeEncodeError:
            raw = b"\xff\xfe"
        path.write_bytes(raw)
        result = ingest_file(con, path)
        assert result.status in ("loaded", "partial", "rejected", "skipped")
        if result.status == "skipped":
            return
        assert result.rows_read == result.accepted + result.duplicates + result.rejected
        stored = con.execute("SELECT count(*) FROM meta.rejects WHERE batch_id = ?", [result.batch_id]).fetchone()[0]
        if result.status == "rejected":
            assert stored == 1
        else:
            assert stored == result.rejected
            loaded = con.execute(f"SELECT count(*) FROM staging.{entity} WHERE batch_id = ?", [result.batch_id]).fetchone()[0]
            assert loaded == result.accepted
    finally:
        con.close()
