"""Injecting contract violations of every kind into generated NDJSON files, with an answer key.

A share of each file's records is broken in place (one violation each, drawn from the kinds that
apply to the entity) and exact duplicates and conflicting copies are appended. The answer key
(`answer_key.tsv`: file, line, entity, kind, expected, field) says, for every injected line, what
ingest must do with it: `rejected` or `duplicate`. Only the injected lines are touched, so the
loop runs over them, never over the file's rows.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

# kind -> (entities it applies to or None for all, field reported, how to break a record)
KINDS: dict[str, tuple[tuple[str, ...] | None, str | None]] = {
    "invalid_json": (None, None),
    "not_object": (None, None),
    "missing_key": (None, "key"),
    "bad_timestamp": (None, "time"),
    "bad_amount_text": (("loans", "payments", "merchant_events"), "amount"),
    "amount_not_positive": (("loans", "payments", "merchant_events"), "amount"),
    "bad_issue_date": (("loans",), "issue_date"),
    "term_out_of_range": (("loans",), "term_months"),
    "bad_repayment": (("loans",), "repayment"),
    "score_out_of_range": (("loans",), "risk_score"),
    "bad_currency": (("loans", "merchant_events"), "currency"),
    "id_too_long": (None, "key"),
    "empty_name": (("clients", "merchants"), "name"),
    "bad_timezone": (("clients",), "timezone"),
    "bad_boolean": (("clients",), "do_not_contact"),
    "negative_income": (("clients",), "monthly_income"),
    "bad_birth_date": (("clients",), "birth_date"),
    "bad_payment_type": (("payments",), "type"),
    "reversal_without_target": (("payments",), "reverses"),
    "bad_outcome": (("calls",), "outcome"),
    "negative_talk_time": (("calls",), "talk_seconds"),
    "bad_event_type": (("merchant_events",), "event_type"),
}
KEYS = {"clients": "client_id", "loans": "loan_id", "payments": "payment_id", "calls": "call_id",
        "merchants": "merchant_id", "merchant_events": "event_id"}
TIMES = {"clients": "updated_at", "loans": "updated_at", "payments": "paid_at", "calls": "called_at",
         "merchants": "updated_at", "merchant_events": "occurred_at"}


def _break(kind: str, entity: str, rec: dict) -> tuple[str, str | None]:
    """The broken line and the field ingest must name."""
    key, time = KEYS[entity], TIMES[entity]
    if kind == "invalid_json":
        return json.dumps(rec)[:-7], None
    if kind == "not_object":
        return json.dumps([rec.get(key), "not", "an", "object"]), None
    if kind == "missing_key":
        rec.pop(key, None)
        return json.dumps(rec), key
    if kind == "bad_timestamp":
        rec[time] = "31/12/2024 10:00"
        return json.dumps(rec), time
    if kind == "id_too_long":
        rec[key] = "X" * 70
        return json.dumps(rec), key
    changes = {
        "bad_amount_text": ("amount", "twelve"),
        "amount_not_positive": ("amount", -10),
        "bad_issue_date": ("issue_date", "2024-13-45"),
        "term_out_of_range": ("term_months", 0),
        "bad_repayment": ("repayment", "balloon"),
        "score_out_of_range": ("risk_score", 1.7),
        "bad_currency": ("currency", "EURO"),
        "empty_name": ("name", "  "),
        "bad_timezone": ("timezone", "Mars/Olympus_Mons"),
        "bad_boolean": ("do_not_contact", "perhaps"),
        "negative_income": ("monthly_income", -1),
        "bad_birth_date": ("birth_date", "1990-02-30"),
        "bad_payment_type": ("type", "refund"),
        "bad_outcome": ("outcome", "maybe_later"),
        "negative_talk_time": ("talk_seconds", -5),
        "bad_event_type": ("event_type", "chargeback"),
    }
    if kind == "reversal_without_target":
        rec["type"] = "reversal"
        rec.pop("reverses", None)
        return json.dumps(rec), "reverses"
    field, value = changes[kind]
    rec[field] = value
    return json.dumps(rec), field


def _conflicting(entity: str, rec: dict) -> dict:
    """The same identity with other content."""
    out = dict(rec)
    for field in ("amount", "name", "outcome", "talk_seconds"):
        if field in out and out[field] is not None:
            if field == "amount":
                out[field] = round(float(out[field]) + 1.0, 2)
            elif field == "name":
                out[field] = str(out[field]) + " (corrected)"
            elif field == "outcome":
                out[field] = "callback" if out[field] != "callback" else "busy"
            else:
                out[field] = int(out[field]) + 1
            return out
    raise ValueError(f"no field to change in a {entity} record")


def make_dirty(folder: Path, fraction: float, seed: int = 0) -> Path:
    """Break a share of the records of every NDJSON file in folder; write answer_key.tsv."""
    if not 0 < fraction < 0.5:
        raise ValueError("--dirty-fraction must be between 0 and 0.5")
    rng = np.random.default_rng(seed + 1000)
    key_rows = []
    for entity in KEYS:
        path = folder / f"{entity}.jsonl"
        if not path.exists():
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        n = len(lines)
        if n < 4:
            continue
        kinds = [k for k, (ents, _) in KINDS.items() if ents is None or entity in ents]
        count = max(len(kinds), int(round(n * fraction)))
        count = min(count, n // 2)
        chosen = rng.choice(n, size=count + 2 * max(1, count // 10), replace=False)
        broken, dup_src, conf_src = chosen[:count], chosen[count:count + max(1, count // 10)], chosen[count + max(1, count // 10):]
        for i, idx in enumerate(sorted(broken)):  # loop over injected lines only
            kind = kinds[i % len(kinds)]
            rec = json.loads(lines[idx])
            if kind == "reversal_without_target" and rec.get("type") == "reversal":
                kind = "bad_payment_type"
            if kind == "bad_currency" and "currency" not in rec:
                kind = "bad_amount_text"
            lines[idx], field = _break(kind, entity, rec)
            key_rows.append([path.name, int(idx) + 1, entity, kind, "rejected", field or ""])
        for idx in dup_src:
            lines.append(lines[idx])
            key_rows.append([path.name, len(lines), entity, "exact_duplicate", "duplicate", ""])
        for idx in conf_src:
            rec = json.loads(lines[idx])
            lines.append(json.dumps(_conflicting(entity, rec)))
            key_rows.append([path.name, len(lines), entity, "conflict", "rejected", KEYS[entity]])
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    key = folder / "answer_key.tsv"
    with open(key, "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(["file", "line", "entity", "kind", "expected", "field"])
        w.writerows(sorted(key_rows, key=lambda r: (r[0], r[1])))
    return key
