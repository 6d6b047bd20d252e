"""Quarantine catches exactly the records `generate --dirty-fraction` broke: no more, no fewer."""

from __future__ import annotations

import csv
from collections import Counter

import pytest

from loanwatch.config import load_settings
from loanwatch.ingest.load import ingest_paths
from loanwatch.warehouse import open_writer
from tests.conftest import cli


@pytest.mark.integration
def test_quarantine_matches_the_answer_key(tmp_path):
    out = tmp_path / "raw"
    result = cli("generate", "--clients", "300", "--seed", "9", "--end", "2025-06-30",
                 "--dirty-fraction", "0.03", "--out", str(out))
    assert result.exit_code == 0, result.stdout
    key = list(csv.DictReader(open(out / "answer_key.tsv"), delimiter="\t"))
    kinds = Counter(r["kind"] for r in key)
    assert len(kinds) >= 20, kinds  # violations of every kind were injected
    expected_rejects = {(r["file"], int(r["line"])) for r in key if r["expected"] == "rejected"}
    expected_fields = {(r["file"], int(r["line"])): r["field"] or None for r in key if r["expected"] == "rejected"}
    expected_dups = Counter(r["file"] for r in key if r["expected"] == "duplicate")

    settings = load_settings(tmp_path / "home", environ={})
    with open_writer(settings) as con:
        results = ingest_paths(con, [out])
        rejects = con.execute("SELECT file_name, line_no, field, reason FROM meta.rejects").fetchall()
    got = {(f, line) for f, line, _, _ in rejects}
    assert got == expected_rejects
    for f, line, field, reason in rejects:
        assert field == expected_fields[(f, line)], (f, line, reason)
        assert reason
    assert {r.path.name: r.duplicates for r in results if r.duplicates} == dict(expected_dups)
    for r in results:
        assert r.rows_read == r.accepted + r.duplicates + r.rejected
