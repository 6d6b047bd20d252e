"""The raw input contract (``shared/CONTRACT.md``) as data, and the SQL that enforces it.

Each entity is a list of fields with a kind; from it come the staging table's DDL and one
set-based validation query that types every field and names, per row, the first rule it breaks.
Field names and rules are constants of this module, never user input, so building SQL text from
them is safe; user values only ever flow through the engine as data.
"""

from __future__ import annotations

from dataclasses import dataclass

CALL_OUTCOMES = ("no_answer", "busy", "wrong_number", "promise_to_pay", "refused", "callback", "paid", "dispute")
EVENT_TYPES = ("order_paid", "payout", "refund", "fee", "payout_reversed")
CHARGE_TYPES = ("fee", "penalty", "reversal")
ADJUSTMENT_TYPES = ("waive_interest", "waive_fee", "waive_penalty", "waive_principal", "reversal")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # id | string | text | amount | decimal | integer | date | timestamp | bool | enum | currency | timezone | schedule
    required: bool = False
    sql_type: str = "VARCHAR"
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    values: tuple[str, ...] = ()
    default: str | None = None  # SQL literal used when the field is absent
    # A date or time at which something happened (not a due date or a birth date): it cannot lie
    # after the day of ingest plus [ingest] max_future_days, nor before 1900.
    business: bool = False


@dataclass(frozen=True)
class Entity:
    name: str
    key: str
    versioned: bool
    fields: tuple[Field, ...]
    # the field `split` slices on and that orders versions; None: `split` puts every record in
    # part 1 (instalments: a schedule is known when the loan is issued)
    time_field: str | None
    extra_key: tuple[str, ...] = ()  # more fields of the key: instalments are (loan_id, effective_from, number)
    # key fields that may be absent (instalments' effective_from): matched NULL to NULL
    optional_key: tuple[str, ...] = ()

    @property
    def table(self) -> str:
        return f"staging.{self.name}"

    @property
    def key_fields(self) -> tuple[str, ...]:
        return (self.key, *self.extra_key)


def _id(name: str, required: bool = True) -> Field:
    return Field(name, "id", required=required)


def _amount(name: str, required: bool = False, minimum: float = 0, exclusive: bool = False) -> Field:
    return Field(name, "amount", required=required, sql_type="DECIMAL(18,2)", minimum=minimum, exclusive_minimum=exclusive)


ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity(
            "clients", "client_id", True,
            (
                _id("client_id"),
                Field("name", "text"),
                Field("email", "string"),
                Field("phone", "string"),
                Field("region", "string"),
                Field("city", "string"),
                Field("birth_date", "date", sql_type="DATE"),
                Field("gender", "string"),
                _amount("monthly_income"),
                Field("preferred_channel", "enum", values=("email", "sms", "call")),
                Field("do_not_contact", "bool", sql_type="BOOLEAN", default="false"),
                Field("timezone", "timezone"),
                Field("language", "string"),
                Field("updated_at", "timestamp", required=True, sql_type="TIMESTAMP", business=True),
                Field("deleted", "bool", sql_type="BOOLEAN", default="false"),
            ),
            "updated_at",
        ),
        Entity(
            "loans", "loan_id", True,
            (
                _id("loan_id"),
                _id("client_id"),
                _id("merchant_id", required=False),
                Field("product", "string"),
                _amount("amount", required=True, exclusive=True),
                Field("currency", "currency"),
                Field("interest_rate", "decimal", sql_type="DECIMAL(18,8)", minimum=0, default="0"),
                Field("issue_date", "date", required=True, sql_type="DATE", business=True),
                Field("term_months", "integer", sql_type="INTEGER", minimum=1, maximum=600),
                Field("repayment", "enum", values=("annuity", "bullet", "schedule"), default="'annuity'"),
                Field("schedule", "schedule"),
                Field("status", "string"),
                Field("restructured_at", "date", sql_type="DATE"),
                Field("risk_score", "decimal", sql_type="DECIMAL(18,8)", minimum=0, maximum=1),
                Field("fraud_score", "decimal", sql_type="DECIMAL(18,8)", minimum=0, maximum=1),
                Field("updated_at", "timestamp", required=True, sql_type="TIMESTAMP", business=True),
                Field("deleted", "bool", sql_type="BOOLEAN", default="false"),
            ),
            "updated_at",
        ),
        Entity(
            "payments", "payment_id", False,
            (
                _id("payment_id"),
                _id("loan_id"),
                Field("paid_at", "timestamp", required=True, sql_type="TIMESTAMP", business=True),
                _amount("amount", required=True, exclusive=True),
                Field("type", "enum", values=("payment", "reversal"), default="'payment'"),
                _id("reverses", required=False),
                Field("channel", "string"),
            ),
            "paid_at",
        ),
        Entity(
            "charges", "charge_id", False,
            (
                _id("charge_id"),
                _id("loan_id"),
                Field("type", "enum", required=True, values=CHARGE_TYPES),
                _amount("amount", required=True, exclusive=True),
                Field("charged_at", "timestamp", required=True, sql_type="TIMESTAMP", business=True),
                Field("due_date", "date", sql_type="DATE"),
                Field("instalment", "integer", sql_type="INTEGER", minimum=1),
                _id("reverses", required=False),
            ),
            "charged_at",
        ),
        Entity(
            "adjustments", "adjustment_id", False,
            (
                _id("adjustment_id"),
                _id("loan_id"),
                Field("type", "enum", required=True, values=ADJUSTMENT_TYPES),
                _amount("amount", required=True, exclusive=True),
                Field("adjusted_at", "timestamp", required=True, sql_type="TIMESTAMP", business=True),
                Field("instalment", "integer", sql_type="INTEGER", minimum=1),
                _id("reverses", required=False),
            ),
            "adjusted_at",
        ),
        Entity(
            "calls", "call_id", False,
            (
                _id("call_id"),
                _id("client_id"),
                _id("loan_id", required=False),
                Field("agent_id", "string"),
                Field("campaign", "string"),
                Field("phone", "string"),
                Field("called_at", "timestamp", required=True, sql_type="TIMESTAMP", business=True),
                Field("talk_seconds", "integer", sql_type="INTEGER", minimum=0),
                Field("total_seconds", "integer", sql_type="INTEGER", minimum=0),
                Field("outcome", "enum", values=CALL_OUTCOMES),
                _amount("promised_amount"),
                Field("promised_date", "date", sql_type="DATE"),
            ),
            "called_at",
        ),
        Entity(
            "instalments", "loan_id", False,
            (
                _id("loan_id"),
                Field("number", "integer", required=True, sql_type="INTEGER", minimum=1),
                Field("due_date", "date", required=True, sql_type="DATE"),
                _amount("principal", required=True),
                _amount("interest"),
                _amount("fee"),
                _amount("penalty"),
                Field("effective_from", "date", sql_type="DATE"),
            ),
            None,
            extra_key=("effective_from", "number"),
            optional_key=("effective_from",),
        ),
        Entity(
            "agents", "agent_id", True,
            (
                _id("agent_id"),
                Field("name", "string"),
                Field("team", "string"),
                Field("level", "integer", sql_type="INTEGER", minimum=0),
                Field("updated_at", "timestamp", required=True, sql_type="TIMESTAMP", business=True),
                Field("deleted", "bool", sql_type="BOOLEAN", default="false"),
            ),
            "updated_at",
        ),
        Entity(
            "logins", "login_id", False,
            (
                _id("login_id"),
                _id("client_id"),
                Field("logged_in_at", "timestamp", required=True, sql_type="TIMESTAMP", business=True),
                Field("channel", "string"),
            ),
            "logged_in_at",
        ),
        Entity(
            "merchants", "merchant_id", True,
            (
                _id("merchant_id"),
                Field("name", "text", required=True),
                Field("category", "string"),
                Field("size", "string"),
                Field("region", "string"),
                Field("updated_at", "timestamp", required=True, sql_type="TIMESTAMP", business=True),
                Field("deleted", "bool", sql_type="BOOLEAN", default="false"),
            ),
            "updated_at",
        ),
        Entity(
            "merchant_events", "event_id", False,
            (
                _id("event_id"),
                _id("merchant_id"),
                Field("event_type", "enum", required=True, values=EVENT_TYPES),
                _amount("amount", required=True, exclusive=True),
                Field("currency", "currency"),
                Field("occurred_at", "timestamp", required=True, sql_type="TIMESTAMP", business=True),
            ),
            "occurred_at",
        ),
    )
}

# Longest first, so that `merchant_events_01.json` is merchant_events, not merchants.
ENTITY_NAMES_LONGEST_FIRST = sorted(ENTITIES, key=len, reverse=True)

LINEAGE_COLUMNS = (
    ("batch_id", "BIGINT"),
    ("file_name", "VARCHAR"),
    ("line_no", "BIGINT"),
    # the raw record as read, unknown fields included; zstd writes long text about twice as fast
    # as the default string compressions, and smaller
    ("record", "VARCHAR USING COMPRESSION zstd"),
)


def staging_ddl(entity: Entity) -> list[str]:
    cols = [f"{n} {t}" for n, t in LINEAGE_COLUMNS]
    cols += [f"{f.name} {'VARCHAR' if f.kind == 'schedule' else f.sql_type}" for f in entity.fields]
    statements = [f"CREATE TABLE IF NOT EXISTS {entity.table} ({', '.join(cols)})"]
    # A warehouse made by an earlier version gains the fields added since (contract v3: loans'
    # restructured_at, instalments' fee, penalty and effective_from); its rows have none of them.
    statements += [
        f"ALTER TABLE {entity.table} ADD COLUMN IF NOT EXISTS {f.name} {'VARCHAR' if f.kind == 'schedule' else f.sql_type}"
        for f in entity.fields if f.name in ADDED_FIELDS.get(entity.name, ())
    ]
    if entity.name == "loans":
        # Explicit schedules, one row per instalment, keyed like the loan version they belong to.
        statements.append(
            """CREATE TABLE IF NOT EXISTS staging.loan_schedules (
                batch_id BIGINT, loan_id VARCHAR, updated_at TIMESTAMP, instalment_number INTEGER,
                due_date DATE, principal DECIMAL(18,2), interest DECIMAL(18,2),
                fee DECIMAL(18,2), penalty DECIMAL(18,2))"""
        )
        statements += [f"ALTER TABLE staging.loan_schedules ADD COLUMN IF NOT EXISTS {c} DECIMAL(18,2) DEFAULT 0"
                       for c in ("fee", "penalty")]
    return statements


# Fields of an entity added after version 2 of the contract: a staging table made before gains them.
ADDED_FIELDS = {"loans": ("restructured_at",), "instalments": ("fee", "penalty", "effective_from")}


# --- validation SQL -------------------------------------------------------------------------

_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
# The offset at the end of a timestamp's text: group 4 its hours, group 6 its minutes.
_OFFSET = r"[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?\s*([+-])([0-9]{2})(:?([0-9]{2}))?$"
# The first top-level key that a JSON object repeats (NULL when none does).
_DUPLICATE_KEY = "list_filter(json_keys(raw), lambda k, i: list_position(json_keys(raw), k) < i)[1]"
# Business dates before this are typos (a year 0024 or 1024 for 2024).
EARLIEST_DATE = "1900-01-01"
_BOOL_TRUE = "('true', '1', 'yes', 't', 'y')"
_BOOL_FALSE = "('false', '0', 'no', 'f', 'n')"


def _date_shape(v: str, exact: bool) -> str:
    """YYYY-MM-DD at the start (and nothing else, when exact): the engine's casts are lenient
    (they take 2024-1-5)."""
    pattern = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
    return f"regexp_full_match({v}, '{pattern}')" if exact else f"regexp_matches({v}, '^{pattern}')"


def shown_sql(expr: str) -> str:
    """A value as quoted in a reason: cut to 60 characters so a reason stays one readable line."""
    return f"CASE WHEN length({expr}) > 60 THEN left({expr}, 57) || '...' ELSE {expr} END"


def _exact_number(f: Field, v: str, places: int) -> str:
    """The number's text as written in the raw JSON record, where it matters.

    The JSON reader parses numbers as doubles: its text for 9999999999999999.99 is '1e+16'. A
    double's shortest text is the written number rounded to ``places`` decimals whenever it has no
    exponent, at most ``places`` decimals and at most 15 characters; otherwise the number is taken
    from the record's own text (the key's value, where it parses to the same double; a key of that
    name nested deeper, or spelled with escapes, keeps the double's text).
    """
    written = (f"nullif(regexp_extract(doc, '\"{f.name}\"\\s*:\\s*(-?[0-9]+(\\.[0-9]+)?([eE][+-]?[0-9]+)?)', 1), '')")
    return (
        f"CASE WHEN (length({v}) > 15 OR regexp_matches({v}, '[eE]|\\.[0-9]{{{places + 1}}}'))"
        f" AND TRY_CAST({written} AS DOUBLE) = TRY_CAST({v} AS DOUBLE) THEN {written} ELSE {v} END"
    )


def _typed(f: Field, v: str) -> str:
    """SQL for the typed value of field f given its text v (NULL when absent or invalid)."""
    if f.kind == "amount":
        return f"TRY_CAST({_exact_number(f, v, 2)} AS DECIMAL(18,2))"
    if f.kind == "decimal":
        return f"TRY_CAST({_exact_number(f, v, 8)} AS DECIMAL(18,8))"
    if f.kind == "integer":
        return f"CASE WHEN regexp_full_match(trim({v}), '[+-]?\\d+(\\.0*)?') THEN TRY_CAST(TRY_CAST(trim({v}) AS DECIMAL(38,6)) AS INTEGER) END"
    if f.kind == "date":
        return f"CASE WHEN {_date_shape(v, exact=True)} THEN TRY_CAST({v} AS DATE) END"
    if f.kind == "timestamp":
        return f"CASE WHEN {_date_shape(v, exact=False)} THEN TRY_CAST(TRY_CAST({v} AS TIMESTAMPTZ) AS TIMESTAMP) END"
    if f.kind == "bool":
        return (
            f"CASE WHEN lower(trim({v})) IN {_BOOL_TRUE} THEN true "
            f"WHEN lower(trim({v})) IN {_BOOL_FALSE} THEN false END"
        )
    if f.kind == "currency":
        return f"CASE WHEN regexp_full_match(trim({v}), '[A-Za-z]{{3}}') THEN upper(trim({v})) END"
    if f.kind == "enum":
        return f"lower(trim({v}))"
    return v


def _checks(f: Field, v: str, t: str) -> list[tuple[str, str]]:
    """Type and range rules of field f: (condition that means broken, reason), in order."""
    name = f.name
    out: list[tuple[str, str]] = []
    present = f"{v} IS NOT NULL"
    shown = shown_sql(v)
    if f.kind == "text" and not f.required:
        out.append((f"{present} AND trim({v}) = ''", f"'{name} is empty'"))
    if f.kind == "id":
        out.append((f"{present} AND (length({v}) < 1 OR length({v}) > 64)", f"format('{name} \"{{}}\" must be 1 to 64 characters', {shown})"))
    elif f.kind in ("amount", "decimal"):
        out.append((
            f"{present} AND {t} IS NULL",
            f"CASE WHEN TRY_CAST({v} AS DOUBLE) IS NOT NULL AND isfinite(TRY_CAST({v} AS DOUBLE)) "
            f"THEN format('{name} \"{{}}\" is out of range', {shown}) "
            f"ELSE format('{name} \"{{}}\" is not a number', {shown}) END",
        ))
    elif f.kind == "integer":
        out.append((f"{present} AND {t} IS NULL", f"format('{name} \"{{}}\" is not a whole number', {shown})"))
    elif f.kind == "date":
        out.append((f"{present} AND {t} IS NULL", f"format('{name} \"{{}}\" is not a date (YYYY-MM-DD)', {shown})"))
    elif f.kind == "timestamp":
        out.append((f"{present} AND {t} IS NULL", f"format('{name} \"{{}}\" is not an ISO 8601 timestamp', {shown})"))
    elif f.kind == "bool":
        out.append((f"{present} AND {t} IS NULL", f"format('{name} \"{{}}\" is not a boolean (true/false)', {shown})"))
    elif f.kind == "currency":
        out.append((f"{present} AND {t} IS NULL", f"format('{name} \"{{}}\" is not a 3-letter currency code', {shown})"))
    elif f.kind == "enum":
        allowed = ", ".join(f.values)
        literal = "(" + ", ".join(f"'{x}'" for x in f.values) + ")"
        out.append((f"{present} AND {t} NOT IN {literal}", f"format('{name} \"{{}}\" is not one of {allowed}', {shown})"))
    elif f.kind == "timezone":
        out.append((
            f"{present} AND {v} NOT IN (SELECT name FROM _timezones)",
            f"format('{name} \"{{}}\" is not an IANA time zone', {shown})",
        ))
    if f.kind == "timestamp":
        # an offset beyond the world's time zones (UTC-12:00 to UTC+14:00, with room: ±14:00)
        offset = f"regexp_extract({v}, '{_OFFSET}', 4)"
        minutes = f"regexp_extract({v}, '{_OFFSET}', 6)"
        out.append((
            f"{t} IS NOT NULL AND regexp_matches(substr({v}, 11), '[+-]') "
            f"AND TRY_CAST({offset} AS INTEGER) * 60 + coalesce(TRY_CAST(nullif({minutes}, '') AS INTEGER), 0) > 840",
            f"format('{name} \"{{}}\" has a UTC offset beyond ±14:00', {shown})",
        ))
    if f.business:
        day = f"CAST({t} AS DATE)"
        out.append((
            f"{t} IS NOT NULL AND {day} > getvariable('loanwatch_latest_date')",
            f"format('{name} \"{{}}\" is in the future: after {{}}, the day of ingest plus [ingest] max_future_days', "
            f"{shown}, CAST(getvariable('loanwatch_latest_date') AS VARCHAR))",
        ))
        out.append((
            f"{t} IS NOT NULL AND {day} < DATE '{EARLIEST_DATE}'",
            f"format('{name} \"{{}}\" is before {EARLIEST_DATE}', {shown})",
        ))
    if f.minimum is not None and f.kind in ("amount", "decimal", "integer"):
        if f.exclusive_minimum:
            out.append((f"{t} IS NOT NULL AND {t} <= {f.minimum}", f"format('{name} \"{{}}\" must be greater than {f.minimum:g}', {shown})"))
        else:
            out.append((f"{t} IS NOT NULL AND {t} < {f.minimum}", f"format('{name} \"{{}}\" must not be less than {f.minimum:g}', {shown})"))
    if f.maximum is not None:
        out.append((f"{t} IS NOT NULL AND {t} > {f.maximum}", f"format('{name} \"{{}}\" must not be more than {f.maximum:g}', {shown})"))
    return out


def validation_sql(entity: Entity, check_keys: bool = True, mapped: bool = False) -> str:
    """One query over ``_lines(line_no, raw)`` giving typed columns plus error_field/error_reason.

    ``error_reason`` is NULL for a row that passes every rule of the contract. ``check_keys``:
    look for a key given twice (JSON records; a CSV row's record cannot repeat one).
    ``mapped``: read ``_mapped(line_no, raw, doc, map_field, map_error)`` instead (a source
    mapping's output): the contract record is ``doc``, ``raw`` stays the source's record, and a
    failed conversion (``map_error``) comes first.
    """
    struct = "{" + ", ".join(f'"{f.name}": "VARCHAR"' for f in entity.fields) + "}"
    text_cols = ",\n        ".join(f"r.{f.name} AS v_{f.name}" for f in entity.fields)
    typed_cols = []
    for f in entity.fields:
        if f.kind == "schedule":
            continue  # typed by the schedule CTE
        expr = _typed(f, f"v_{f.name}")
        if f.default is not None:
            expr = f"CASE WHEN v_{f.name} IS NULL THEN {f.default} ELSE {expr} END"
        expr = f"CAST({expr} AS {f.sql_type})"
        typed_cols.append(f"{expr} AS {f.name}")
    relaxed = "coalesce(deleted, false)" if entity.versioned else "false"
    # Only what loading needs leaves the query: the per-field texts stay inside it.
    typed_names = ", ".join(f.name for f in entity.fields)

    conditions: list[tuple[str, str, str]] = []
    if mapped:
        conditions.append(("map_field", "map_error IS NOT NULL", "map_error"))
    conditions.append(("", "NOT is_json", "'not valid JSON'"))
    conditions.append(("", "NOT is_object", "'record is not a JSON object'"))
    if check_keys:
        # A field given twice ("amount": 1000, "amount": 2000) is ambiguous: the reader would take
        # the first. The object's keys are listed: a second parse of each record (about a
        # fifth of validating it, docs/architecture.md); [ingest] check_repeated_keys =
        # false leaves it out for producers that cannot repeat a key. Records read from CSV
        # cannot repeat one (the header is checked once per file).
        conditions.append(("", "repeats_a_key",
                           f"format('field \"{{}}\" appears twice in the record: its value is ambiguous', {_DUPLICATE_KEY})"))
    for f in entity.fields:
        if f.kind == "schedule":
            continue
        for cond, reason in _checks_simple(f, entity, relaxed):
            conditions.append((f.name, cond, reason))
    conditions += _cross_field_checks(entity, relaxed)

    case_field = "CASE " + " ".join(
        f"WHEN {c} THEN {n if n == 'map_field' else repr(n) if n else 'NULL'}" for n, c, _ in conditions) + " END"
    case_reason = "CASE " + " ".join(f"WHEN {c} THEN {r}" for _, c, r in conditions) + " END"
    schedule_cte = _schedule_cte(entity)

    # An object's keys are told distinct by one list comparison where they are those of one
    # object of the file, the first the engine reaches (a producer writes the same keys in the
    # same order: 0.1 s instead of 0.23 s for 460k payments); any other list is checked whole
    # (list_distinct). Exact either way: that object's list is used only when its own keys are
    # distinct.
    object_keys = "CASE WHEN starts_with(ltrim(raw, E' \\t\\r\\n'), '{') THEN try(json_keys(raw)) END"
    first_keys = (f"(SELECT k FROM (SELECT {object_keys} AS k FROM _lines WHERE {object_keys} IS NOT NULL LIMIT 1) "
                  "WHERE len(k) = len(list_distinct(k)))")
    keys = (f"\n        CASE WHEN k = {first_keys} THEN false ELSE len(k) <> len(list_distinct(k)) END AS repeats_a_key,"
            if check_keys else "")
    listed = f", {object_keys} AS k" if check_keys else ""
    # One JSON parse per line: from_json fails (NULL under try) only on invalid JSON or a JSON
    # null; any other value parses, so a non-object is told by its first character.
    return f"""
WITH fields AS (
    SELECT line_no, raw, doc,{" map_field, map_error," if mapped else ""}
        r IS NOT NULL OR json_valid(doc) AS is_json,
        r IS NOT NULL AND starts_with(ltrim(doc, E' \\t\\r\\n'), '{{') AS is_object,{keys}
        {text_cols}
    FROM (SELECT line_no, raw, {"doc, map_field, map_error" if mapped else "raw AS doc"},
                 try(from_json({"doc" if mapped else "raw"}, '{struct}')) AS r{listed}
          FROM {"_mapped WHERE keep" if mapped else "_lines"})
), typed AS (
    SELECT *,
        {", ".join(typed_cols)}
    FROM fields
){schedule_cte}
SELECT line_no, raw, {typed_names}{", sched" if schedule_cte else ""},
    {case_field} AS error_field,
    {case_reason} AS error_reason
FROM {"scheduled" if schedule_cte else "typed"}
"""


def _checks_simple(f: Field, entity: Entity, relaxed: str) -> list[tuple[str, str]]:
    v, t = f"v_{f.name}", f.name
    out: list[tuple[str, str]] = []
    if f.required:
        is_text = f.kind == "text"
        missing = f"({v} IS NULL OR trim({v}) = '')" if is_text else f"{v} IS NULL"
        reason = (
            f"CASE WHEN {v} IS NULL THEN '{f.name} is missing' ELSE '{f.name} is empty' END"
            if is_text else f"'{f.name} is missing'"
        )
        # A deletion record (deleted = true) needs only its key and updated_at.
        if f.name in (entity.key, "updated_at"):
            out.append((missing, reason))
        else:
            out.append((f"{missing} AND NOT {relaxed}", reason))
    out += _checks(f, v, t)
    return out


def _cross_field_checks(entity: Entity, relaxed: str) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    if entity.name == "loans":
        out.append((
            "term_months",
            f"v_term_months IS NULL AND v_schedule IS NULL AND repayment IS DISTINCT FROM 'schedule' AND NOT {relaxed}",
            "'term_months is missing (required unless a schedule is given or repayment is schedule)'",
        ))
        out.append(("schedule", "schedule_error IS NOT NULL", "schedule_error"))
        out.append(("amount", f"{_SCHEDULE_TOTAL} > {MONEY_LIMIT}", _SCHEDULE_TOO_LARGE))
    if entity.name in ("payments", "charges", "adjustments"):
        out.append(("reverses", "type = 'reversal' AND v_reverses IS NULL", "'reverses is missing (required for a reversal)'"))
        out.append(("reverses", f"type = 'reversal' AND v_reverses = v_{entity.key}", "'a reversal cannot reverse itself'"))
    return out


# The largest total a loan's schedule may reach: money is DECIMAL(18,2) in the warehouse (up to
# 9,999,999,999,999,999.99), and the estimate below is a double, so a tenth is kept in hand.
MONEY_LIMIT = 9_000_000_000_000_000

# An upper estimate of a generated schedule's total due (METRICS §1), in double precision. For an
# annuity: n payments of A, plus how far the balance recurrence can drift from them: each cent
# of rounding grows by (1 + r) a month, so at high rates over long terms the last instalment
# (which takes the remaining balance) can hold any amount.
_SCHEDULE_TOTAL = """(CASE
    WHEN v_schedule IS NOT NULL OR amount IS NULL OR term_months IS NULL THEN 0
    WHEN repayment = 'bullet' THEN amount::DOUBLE * (1 + coalesce(interest_rate, 0)::DOUBLE * term_months / 12)
    WHEN coalesce(interest_rate, 0) = 0 THEN amount::DOUBLE
    ELSE term_months * amount::DOUBLE * (interest_rate::DOUBLE / 12)
             / (1 - power(1 + interest_rate::DOUBLE / 12, -term_months))
         + 0.01 * power(1 + interest_rate::DOUBLE / 12, term_months) / (interest_rate::DOUBLE / 12)
END)"""
_SCHEDULE_TOO_LARGE = (
    "format('amount {} at interest_rate {} over {} months: the repayment schedule would exceed "
    "9,000,000,000,000,000, the largest total loanwatch computes exactly', "
    "CAST(amount AS VARCHAR), rtrim(rtrim(CAST(interest_rate AS VARCHAR), '0'), '.'), term_months)"
)


def _schedule_cte(entity: Entity) -> str:
    if entity.name != "loans":
        return ""
    item = '[{"due_date": "VARCHAR", "principal": "VARCHAR", "interest": "VARCHAR", "fee": "VARCHAR", "penalty": "VARCHAR"}]'
    return f""", sched_parsed AS (
    SELECT *,
        CASE WHEN v_schedule IS NOT NULL AND json_valid(v_schedule) AND try(json_type(v_schedule)) = 'ARRAY'
             THEN try(from_json(v_schedule, '{item}')) END AS sched
    FROM typed
), scheduled AS (
    SELECT *,
        CASE
            WHEN v_schedule IS NULL THEN NULL
            WHEN sched IS NULL
                THEN 'schedule is not a JSON array of instalments'
            WHEN len(sched) = 0 THEN 'schedule is empty'
            WHEN len(list_filter(sched, lambda x: x IS NULL OR x.due_date IS NULL OR NOT regexp_full_match(trim(x.due_date), '{_DATE_PATTERN}') OR TRY_CAST(trim(x.due_date) AS DATE) IS NULL)) > 0
                THEN 'schedule has an instalment whose due_date is missing or not a date (YYYY-MM-DD)'
            WHEN len(list_filter(sched, lambda x: TRY_CAST(x.principal AS DECIMAL(18,2)) IS NULL OR TRY_CAST(x.principal AS DECIMAL(18,2)) < 0)) > 0
                THEN 'schedule has an instalment whose principal is missing, not a number or negative'
            WHEN len(list_filter(sched, lambda x: x.interest IS NOT NULL AND (TRY_CAST(x.interest AS DECIMAL(18,2)) IS NULL OR TRY_CAST(x.interest AS DECIMAL(18,2)) < 0))) > 0
                THEN 'schedule has an instalment whose interest is not a number or negative'
            WHEN len(list_filter(sched, lambda x: x.fee IS NOT NULL AND (TRY_CAST(x.fee AS DECIMAL(18,2)) IS NULL OR TRY_CAST(x.fee AS DECIMAL(18,2)) < 0))) > 0
                THEN 'schedule has an instalment whose fee is not a number or negative'
            WHEN len(list_filter(sched, lambda x: x.penalty IS NOT NULL AND (TRY_CAST(x.penalty AS DECIMAL(18,2)) IS NULL OR TRY_CAST(x.penalty AS DECIMAL(18,2)) < 0))) > 0
                THEN 'schedule has an instalment whose penalty is not a number or negative'
            WHEN amount IS NOT NULL AND abs(list_sum(list_transform(sched, lambda x: TRY_CAST(x.principal AS DECIMAL(18,2)))) - amount) > 0.01 * len(sched)
                THEN format('schedule principals sum to {{}}, not the amount {{}}', CAST(CAST(list_sum(list_transform(sched, lambda x: TRY_CAST(x.principal AS DECIMAL(18,2)))) AS DECIMAL(18,2)) AS VARCHAR), CAST(amount AS VARCHAR))
            WHEN list_sum(list_transform(sched, lambda x: TRY_CAST(x.principal AS DOUBLE) + coalesce(TRY_CAST(x.interest AS DOUBLE), 0)
                                                         + coalesce(TRY_CAST(x.fee AS DOUBLE), 0) + coalesce(TRY_CAST(x.penalty AS DOUBLE), 0))) > {MONEY_LIMIT}
                THEN 'schedule instalments total more than 9,000,000,000,000,000, the largest total loanwatch computes exactly'
        END AS schedule_error,
        CASE WHEN v_schedule IS NOT NULL THEN v_schedule END AS schedule
    FROM sched_parsed
)"""
