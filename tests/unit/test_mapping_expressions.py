"""Source mappings that express a real export (docs/mappings.md; issue 39): arithmetic over columns
and constants, conditions that pick rows, code tables in another file of the export, and a warning
for a file caught by the globs of tables of different entities. Each feature loads a tiny export
through a mapping and checks the loaded values, worked out by hand, and the quarantine reasons."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from loanwatch.config import load_settings
from loanwatch.ingest.load import ingest_paths
from loanwatch.ingest.mapping import load_mapping
from loanwatch.warehouse import open_writer
from tests.conftest import cli


@pytest.fixture()
def settings(tmp_path):
    return load_settings(tmp_path / "home", environ={})


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def ingest(settings, paths, mapping_path):
    with open_writer(settings) as con:
        results = ingest_paths(con, paths, mapping=load_mapping(mapping_path))
    return {(r.path.name, r.entity): r for r in results}


def query(settings, sql):
    with open_writer(settings) as con:
        return con.execute(sql).fetchall()


def rejects(settings):
    return query(settings, "SELECT file_name, line_no, field, reason FROM meta.rejects ORDER BY file_name, line_no")


# --- arithmetic ---------------------------------------------------------------------------------

ARITHMETIC = '''
[[files]]
match = "m_loan.csv"
entity = "loans"
[files.fields]
loan_id = "id"
client_id = "client_id"
amount = { column = "principal_cents", multiply = 0.01 }
interest_rate = { column = "annual_nominal_interest_rate", divide = 100 }
term_months = { column = "term_days", divide = 30 }
issue_date = "disbursedon_date"
updated_at = "disbursedon_date"

[[files]]
match = "m_loan_repayment_schedule.csv"
entity = "instalments"
[files.fields]
loan_id = "loan_id"
number = "installment"
due_date = "duedate"
principal = "principal_amount"
interest = { sum = ["interest_amount"], minus = ["interest_waived_derived"] }
'''


def test_arithmetic_over_columns_and_constants_is_exact(settings, tmp_path):
    folder = tmp_path / "export"
    loans = write(folder, "m_loan.csv",
                  "id,client_id,principal_cents,annual_nominal_interest_rate,term_days,disbursedon_date\n"
                  "L1,C1,100050,12.5,360,2024-01-05\n"     # 1000.50; 0.125; 12
                  "L2,C2,99999,7.333,90,2024-01-06\n"      # 999.99; 0.07333; 3
                  "L3,C3,5,n/a,30,2024-01-07\n"            # a rate that is not a number
                  "L4,C4,250,10,365,2024-01-08\n"          # 365 / 30 days is not a whole number of months
                  "L5,C5,1,10,60,2024-01-09\n")            # 0.01; 0.1; 2
    schedule = write(folder, "m_loan_repayment_schedule.csv",
                     "loan_id,installment,duedate,principal_amount,interest_amount,interest_waived_derived\n"
                     "L1,1,2024-02-05,100.00,10.50,0.25\n"  # 10.50 - 0.25 = 10.25
                     "L1,2,2024-03-05,100.00,10.005,\n"     # nothing waived counts as 0: 10.005, half-up 10.01
                     "L1,3,2024-04-05,100.00,,\n"           # neither: no interest
                     "L1,4,2024-05-05,100.00,abc,1\n"       # not a number
                     "L1,5,2024-06-05,100.00,3,5\n")        # 3 - 5 = -2: the contract refuses it
    mapping = write(tmp_path, "map.toml", ARITHMETIC)
    loaded = ingest(settings, [folder], mapping)
    r = loaded[("m_loan.csv", "loans")]
    assert (r.rows_read, r.accepted, r.rejected) == (5, 3, 2)
    r = loaded[("m_loan_repayment_schedule.csv", "instalments")]
    assert (r.rows_read, r.accepted, r.rejected) == (5, 3, 2)
    assert query(settings, "SELECT loan_id, amount, interest_rate, term_months FROM staging.loans ORDER BY 1") == [
        ("L1", Decimal("1000.50"), Decimal("0.12500000"), 12),
        ("L2", Decimal("999.99"), Decimal("0.07333000"), 3),
        ("L5", Decimal("0.01"), Decimal("0.10000000"), 2),
    ]
    assert query(settings, "SELECT number, interest FROM staging.instalments ORDER BY 1") == [
        (1, Decimal("10.25")), (2, Decimal("10.01")), (3, None)]
    assert rejects(settings) == [
        ("m_loan.csv", 4, "interest_rate",
         'interest_rate "n/a" is not a number (column annual_nominal_interest_rate / 100)'),
        ("m_loan.csv", 5, "term_months",
         'term_months "12.166666666666666667" is not a whole number (column term_days / 30)'),
        ("m_loan_repayment_schedule.csv", 5, "interest",
         'interest "abc - 1" is not a difference of numbers (columns interest_amount - interest_waived_derived)'),
        ("m_loan_repayment_schedule.csv", 6, "interest",
         'interest "-2" must not be less than 0 (columns interest_amount - interest_waived_derived)'),
    ]
    assert loans.exists() and schedule.exists()


@pytest.mark.parametrize("spec, value, expected", [
    ("divide = 3", "10", "3.333333333333333333"),          # rounded half away from zero at the 18th decimal
    ("divide = 3", "-10", "-3.333333333333333333"),
    ("divide = 3", "20", "6.666666666666666667"),
    ("multiply = -2", "1.25", "-2.5"),
    ("divide = 0.5", "1.25", "2.5"),
    ("multiply = 1.23456789", "99999999999999999999", "123456788999999999998.76543211"),  # no step overflows
    ("multiply = 0.01", "1e2", "1"),
    ("divide = 100", "-0.000000000000000001", "0"),           # below the 18th decimal: 0, without a sign
])
def test_a_scale_is_worked_in_whole_numbers_of_its_last_decimal(tmp_path, spec, value, expected):
    import duckdb

    from loanwatch.ingest.mapping import mapped_sql
    from loanwatch.ingest.read import InputFile, read_lines

    path = write(tmp_path, "map.toml", ARITHMETIC.replace("divide = 100", spec))
    source = write(tmp_path, "m_loan.csv", f"id,annual_nominal_interest_rate\nL1,{value}\n")
    con = duckdb.connect()
    read_lines(con, InputFile(source, "loans", "csv"))
    sql, params = mapped_sql(load_mapping(path).files[0])
    ((doc, error),) = con.execute(f"SELECT json_extract_string(doc, '$.interest_rate'), map_error FROM ({sql})",
                                  params).fetchall()
    assert (doc, error) == (expected, None)


def test_a_result_beyond_the_engine_is_out_of_range_not_an_error_of_the_file(settings, tmp_path):
    folder = tmp_path / "export"
    write(folder, "m_loan.csv", "id,client_id,principal_cents,annual_nominal_interest_rate,term_days,disbursedon_date\n"
                                "L1,C1,100,99999999999999999999,30,2024-01-05\n"
                                "L2,C2,100,5,30,2024-01-05\n")
    mapping = write(tmp_path, "map.toml", ARITHMETIC.replace("divide = 100", "multiply = 2"))
    r = ingest(settings, [folder / "m_loan.csv"], mapping)[("m_loan.csv", "loans")]
    assert (r.accepted, r.rejected) == (1, 1)
    assert rejects(settings)[0][3] == ('interest_rate "99999999999999999999" is out of range '
                                       '(column annual_nominal_interest_rate * 2)')


# --- conditions ---------------------------------------------------------------------------------

CONDITIONS = '''
[[files]]
match = "m_loan.csv"
entity = "loans"
where = { currency_code = ["MXN", "USD"] }
where_not = { loan_status_id = ["100", "200", "500"] }
where_empty = ["closedon_date"]
KEEP = ["disbursedon_date"]
[files.fields]
loan_id = "id"
client_id = "client_id"
amount = "principal_amount"
currency = "currency_code"
issue_date = "disbursedon_date"
updated_at = "disbursedon_date"
[files.constants]
repayment = "schedule"
'''


@pytest.mark.parametrize("keep", ["where_not_empty", "skip_if_empty"])
def test_conditions_pick_rows_and_the_others_are_counted_not_quarantined(settings, tmp_path, keep):
    source = write(tmp_path / "export", "m_loan.csv",
                   "id,client_id,principal_amount,currency_code,loan_status_id,disbursedon_date,closedon_date\n"
                   "L1,C1,100,MXN,300,2024-01-05,\n"            # kept
                   "L2,C2,100,EUR,300,2024-01-05,\n"            # where: not MXN or USD
                   "L3,C3,100,MXN,100,2024-01-05,\n"            # where_not: status 100
                   "L4,C4,100,USD,,2024-01-05,\n"               # no status is not one of them: kept
                   "L5,C5,100,MXN,300,2024-01-05,2024-03-01\n"  # where_empty: closed
                   "L6,C6,100,MXN,300,,\n"                      # where_not_empty (skip_if_empty): never disbursed
                   "L7,C7,100,,300,2024-01-05,\n"               # where: no currency is not one of them
                   "L8,C8,-5,USD,300,2024-01-05,\n")            # kept, and quarantined by the contract
    mapping = write(tmp_path, "map.toml", CONDITIONS.replace("KEEP", keep))
    r = ingest(settings, [source], mapping)[("m_loan.csv", "loans")]
    assert (r.rows_read, r.accepted, r.rejected, r.filtered) == (8, 2, 1, 5)
    assert query(settings, "SELECT loan_id, currency FROM staging.loans ORDER BY 1") == [("L1", "MXN"), ("L4", "USD")]
    assert rejects(settings) == [("m_loan.csv", 9, "amount", 'amount "-5" must be greater than 0 (column principal_amount)')]


def test_the_cli_counts_the_rows_left_out(tmp_path):
    source = write(tmp_path / "export", "m_loan.csv",
                   "id,client_id,principal_amount,currency_code,loan_status_id,disbursedon_date,closedon_date\n"
                   "L1,C1,100,MXN,300,2024-01-05,\nL2,C2,100,MXN,200,2024-01-05,\n")
    mapping = write(tmp_path, "map.toml", CONDITIONS.replace("KEEP", "where_not_empty"))
    result = cli("ingest", "--mapping", mapping, source, home=tmp_path / "home")
    assert result.exit_code == 0, result.output
    assert "loans: read 2, accepted 1, duplicates 0, rejected 0, left out by where 1" in result.stdout


# --- code tables --------------------------------------------------------------------------------

LOOKUPS = '''
[[files]]
match = "m_client.csv"
entity = "clients"
encoding = "latin-1"
[files.fields]
client_id = "id"
name = "display_name"
updated_at = "submittedon_date"

[files.lookups.gender]
file = "m_code_value.csv"
key = "id"
value = "code_value"
column = "gender_cv_id"

[files.lookups.region]
file = "m_office.csv"
key = "id"
value = "name"
column = "office_id"

[files.values.gender]
Male = "M"
Female = "F"
'''
CODES = "id,code_id,code_value,code_description,order_position\n15,4,Male,,0\n16,4,Female,,1\n17,4,Other,,2\n"
OFFICES = 'id,parent_id,name\n1,,Oficina Central\n2,1,"Región Norte, Monterrey"\n'
CLIENTS = ("id,display_name,gender_cv_id,office_id,submittedon_date\n"
           "C1,Ana,16,1,2024-01-05\n"     # Female -> F; the head office
           "C2,José,15,2,2024-01-06\n"    # Male -> M; a name with a comma and an accent
           "C3,Sam,17,2,2024-01-07\n"     # Other: not in values, passes through
           "C4,Eva,,1,2024-01-08\n"       # no gender: no value
           "C5,Kim,99,1,2024-01-09\n"     # a code the code table lacks
           "C6,Lee,16,7,2024-01-10\n")    # an office the office table lacks


def export(folder: Path, codes: str = CODES, offices: str | None = OFFICES) -> Path:
    write(folder, "m_code_value.csv", codes, "latin-1")
    if offices is not None:
        write(folder, "m_office.csv", offices, "latin-1")
    return write(folder, "m_client.csv", CLIENTS, "latin-1")


def test_a_code_table_beside_the_file_translates_a_column(settings, tmp_path):
    folder = tmp_path / "export"
    export(folder)
    mapping = write(tmp_path, "map.toml", LOOKUPS)
    loaded = ingest(settings, [folder], mapping)
    # the code tables are read with the file they translate, not reported as files no table matches
    assert list(loaded) == [("m_client.csv", "clients")]
    r = loaded[("m_client.csv", "clients")]
    assert (r.rows_read, r.accepted, r.rejected) == (6, 4, 2)
    assert query(settings, "SELECT client_id, name, gender, region FROM staging.clients ORDER BY 1") == [
        ("C1", "Ana", "F", "Oficina Central"),
        ("C2", "José", "M", "Región Norte, Monterrey"),
        ("C3", "Sam", "Other", "Región Norte, Monterrey"),
        ("C4", "Eva", None, "Oficina Central"),
    ]
    assert rejects(settings) == [
        ("m_client.csv", 6, "gender", 'gender "99" is not found in column id of m_code_value.csv (column gender_cv_id)'),
        ("m_client.csv", 7, "region", 'region "7" is not found in column id of m_office.csv (column office_id)'),
    ]
    # a new code in the code table loads the file again: the rows loaded meet themselves
    export(folder, codes=CODES + "99,4,Male,,3\n")
    again = ingest(settings, [folder], mapping)[("m_client.csv", "clients")]
    assert (again.status, again.accepted, again.duplicates, again.rejected) == ("partial", 1, 4, 1)
    assert query(settings, "SELECT gender FROM staging.clients WHERE client_id = 'C5'") == [("M",)]
    # and the same export again is already ingested
    assert ingest(settings, [folder], mapping)[("m_client.csv", "clients")].status == "skipped"


A_LOAN = ('\n[[files]]\nmatch = "a_loan.csv"\nentity = "loans"\n[files.fields]\nloan_id = "id"\nclient_id = "id"\n'
          'amount = "amount"\nissue_date = "day"\nupdated_at = "day"\n[files.constants]\nrepayment = "schedule"\n')


@pytest.mark.parametrize("change, key, says", [
    (lambda folder: (folder / "m_office.csv").unlink(), "files[0].lookups.region",
     "m_office.csv is not beside m_client.csv (in {folder}): a code table is read from the folder of the file it translates"),
    (('key = "id"\nvalue = "name"', 'key = "office"\nvalue = "name"'), "files[0].lookups.region.key",
     "column 'office' is not in m_office.csv (its columns: id, parent_id, name)"),
    (('value = "name"', 'value = "nombre"'), "files[0].lookups.region.value",
     "column 'nombre' is not in m_office.csv (its columns: id, parent_id, name)"),
    (('column = "office_id"', 'column = "office"'), "files[0].lookups.region",
     "column 'office' is not in m_client.csv (its columns: id, display_name, gender_cv_id, office_id, submittedon_date)"),
    (lambda folder: write(folder, "m_code_value.csv", CODES + "16,4,F,,3\n", "latin-1"), "files[0].lookups.gender",
     "m_code_value.csv gives id '16' two values ('F', 'Female'): a code table has one row per key "
     "(where keeps the rows that count; pick takes one of several values)"),
])
def test_a_code_table_missing_or_without_its_columns_stops_everything_before_anything_loads(tmp_path, change, key, says):
    folder = tmp_path / "export"
    export(folder)
    write(folder, "a_loan.csv", "id,amount,day\nL1,100,2024-01-05\n")  # read first: it would load first
    text = LOOKUPS + A_LOAN
    if isinstance(change, tuple):
        assert change[0] in text
        text = text.replace(*change)
    else:
        change(folder)
    mapping = write(tmp_path, "map.toml", text)
    home = tmp_path / "home"
    result = cli("ingest", "--mapping", mapping, folder, home=home)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (f'error: {mapping}: {key}: {says.format(folder=folder)} '
                                     '([[files]] #1, match "m_client.csv")')
    assert query(load_settings(home, environ={}), "SELECT count(*) FROM meta.batches") == [(0,)]
    # with the code table as the mapping says, everything loads
    export(folder)
    mapping.write_text(LOOKUPS + A_LOAN)
    assert cli("ingest", "--mapping", mapping, folder, home=home).exit_code == 3  # (C5 and C6 are quarantined)


RESCHEDULED = '''
[[files]]
match = "m_loan_repayment_schedule.csv"
entity = "instalments"
[files.fields]
loan_id = "loan_id"
number = "installment"
due_date = "duedate"
principal = { column = "principal_amount", default = 0 }
interest = "interest_amount"

[files.lookups.effective_from]
file = "m_loan_reschedule_request.csv"
key = "loan_id"
value = "approved_on_date"
column = "loan_id"
where = { status_enum = "200" }
pick = "max"
missing = "empty"
'''
# 7: approved twice (the latest counts) beside a rejected request; 8: only a pending one; 9: none
REQUESTS = ("id,loan_id,status_enum,submitted_on_date,approved_on_date\n"
            "1,7,200,2024-02-01,2024-02-03\n2,7,500,2024-02-20,\n3,7,200,2024-03-01, 2024-03-05 \n"
            "4,8,100,2024-03-01,\n")
SCHEDULE = ("id,loan_id,installment,duedate,principal_amount,interest_amount\n"
            "1,7,1,2024-02-10,100.000000,5.000000\n"
            "2,7,2,2024-04-10,,5.000000\n"        # an interest-only instalment: Fineract stores 0 as NULL
            "3,8,1,2024-02-10,100.000000,\n"
            "4,9,1,2024-02-10,100.000000,\n"
            "5,10,1,2024-02-10,abc,\n")           # a principal that is not a number is still quarantined


def test_a_code_table_keeps_some_rows_picks_one_value_and_may_leave_a_key_without_one(settings, tmp_path):
    """where keeps the code table's rows that count, pick = "max" takes the latest of a key's
    values (ISO dates compare as text), missing = "empty" gives a key the table lacks no value
    rather than quarantining it; a field's default fills a column with no value."""
    folder = tmp_path / "export"
    write(folder, "m_loan_reschedule_request.csv", REQUESTS)
    write(folder, "m_loan_repayment_schedule.csv", SCHEDULE)
    loaded = ingest(settings, [folder], write(tmp_path, "map.toml", RESCHEDULED))
    r = loaded[("m_loan_repayment_schedule.csv", "instalments")]
    assert (r.rows_read, r.accepted, r.rejected) == (5, 4, 1)
    assert query(settings, "SELECT loan_id, number, effective_from, principal, interest FROM staging.instalments "
                           "ORDER BY loan_id, number") == [
        ("7", 1, dt.date(2024, 3, 5), Decimal("100.00"), Decimal("5.00")),
        ("7", 2, dt.date(2024, 3, 5), Decimal("0.00"), Decimal("5.00")),
        ("8", 1, None, Decimal("100.00"), None),  # (interest: the contract's default 0 applies in the warehouse)
        ("9", 1, None, Decimal("100.00"), None),
    ]
    assert rejects(settings) == [("m_loan_repayment_schedule.csv", 6, "principal",
                                  'principal "abc" is not a number (column principal_amount)')]
    # without where and pick, loan 7's three rows are ambiguous: a usage line before anything loads
    text = RESCHEDULED.replace('where = { status_enum = "200" }\npick = "max"\n', "")
    result = cli("ingest", "--mapping", write(tmp_path, "map2.toml", text), folder, home=tmp_path / "home2")
    assert result.exit_code == 2
    assert "m_loan_reschedule_request.csv gives loan_id '7' two values ('', '2024-02-03', '2024-03-05')" in result.stderr
    # without missing = "empty", a loan never rescheduled is quarantined as a code the table lacks
    text = RESCHEDULED.replace('missing = "empty"\n', "")
    result = cli("ingest", "--mapping", write(tmp_path, "map3.toml", text), folder, home=tmp_path / "home3")
    assert result.exit_code == 3
    assert 'effective_from "9" is not found in column loan_id of m_loan_reschedule_request.csv' in result.stdout + result.stderr
    # a where column the code table lacks
    text = RESCHEDULED.replace("status_enum", "status")
    result = cli("ingest", "--mapping", write(tmp_path, "map4.toml", text), folder, home=tmp_path / "home4")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {tmp_path / 'map4.toml'}: files[0].lookups.effective_from.where.status: column 'status' is not in "
        "m_loan_reschedule_request.csv (its columns: id, loan_id, status_enum, submitted_on_date, approved_on_date) "
        '([[files]] #1, match "m_loan_repayment_schedule.csv")')


def test_first_takes_the_first_column_with_a_value(tmp_path):
    """A reversal's date: reversed_on_date, else (exports of before its column) transaction_date."""
    settings = load_settings(tmp_path / "home", environ={})
    source = write(tmp_path / "export", "m_loan_transaction.csv",
                   "id,loan_id,amount,transaction_date,reversed_on_date\n"
                   "1,7,100.000000,2024-02-10,2024-02-15\n"
                   "2,7,100.000000,2024-02-11,\n"
                   "3,7,100.000000,,\n")
    text = ('[[files]]\nmatch = "m_loan_transaction.csv"\nentity = "payments"\n[files.fields]\npayment_id = "id"\n'
            'loan_id = "loan_id"\namount = "amount"\npaid_at = { first = ["reversed_on_date", "transaction_date"] }\n')
    r = ingest(settings, [source], write(tmp_path, "map.toml", text))[("m_loan_transaction.csv", "payments")]
    assert (r.rows_read, r.accepted, r.rejected) == (3, 2, 1)
    assert query(settings, "SELECT payment_id, CAST(paid_at AS DATE) FROM staging.payments ORDER BY 1") == [
        ("1", dt.date(2024, 2, 15)), ("2", dt.date(2024, 2, 11))]
    assert rejects(settings) == [("m_loan_transaction.csv", 4, "paid_at",
                                  "paid_at is missing (columns reversed_on_date, else transaction_date)")]


# --- a file caught by two globs -----------------------------------------------------------------

OVERLAP = '''
[[files]]
match = "m_loan*.csv"
entity = "loans"
[files.fields]
loan_id = "id"
client_id = "CLIENT"
amount = "amount"
issue_date = "transaction_date"
updated_at = "transaction_date"
[files.constants]
repayment = "schedule"

[[files]]
match = "m_loan_transaction.csv"
entity = "payments"
[files.fields]
payment_id = "id"
loan_id = "loan_id"
paid_at = "transaction_date"
amount = "amount"
'''


def overlap_export(folder: Path) -> None:
    write(folder, "m_loan.csv", "id,loan_id,amount,transaction_date\nL1,,1000,2024-01-05\n")
    write(folder, "m_loan_transaction.csv", "id,loan_id,amount,transaction_date\nT1,L1,100,2024-02-05\n")


WARNING = ('m_loan_transaction.csv: matched by [[files]] #1 (loans, match "m_loan*.csv") and #2 (payments, match '
           '"m_loan_transaction.csv") of map.toml: it is read as loans and as payments; make match exact (a plain '
           'file name, without * ? or [, matches only that file), or give the tables that read one file as several '
           'entities the same match')


def test_a_file_caught_by_the_globs_of_tables_of_different_entities_is_warned_of(tmp_path):
    folder = tmp_path / "export"
    overlap_export(folder)
    mapping = write(tmp_path, "map.toml", OVERLAP.replace('"CLIENT"', '"id"'))
    result = cli("ingest", "--mapping", mapping, "--dry-run", folder, home=tmp_path / "home")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "matched by" in line]
    assert warnings == [f"warning: {folder}/{WARNING}"]
    # a warning, not a refusal: the file is read as each table says
    assert "m_loan_transaction.csv: loans: read 1" in result.stdout
    assert "m_loan_transaction.csv: payments: read 1" in result.stdout
    # an exact match: no warning
    mapping.write_text(OVERLAP.replace('"CLIENT"', '"id"').replace('"m_loan*.csv"', '"m_loan.csv"'))
    result = cli("ingest", "--mapping", mapping, "--dry-run", folder, home=tmp_path / "home")
    assert result.exit_code == 0 and "matched by" not in result.stderr, result.output


def test_a_column_the_caught_file_lacks_names_the_overlap_as_its_likely_cause(tmp_path):
    folder = tmp_path / "export"
    overlap_export(folder)
    mapping = write(tmp_path, "map.toml", OVERLAP)
    write(folder, "m_loan.csv", "id,CLIENT,amount,transaction_date\nL1,C1,1000,2024-01-05\n")
    result = cli("ingest", "--mapping", mapping, folder, home=tmp_path / "home")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {mapping}: files[0].fields.client_id: column 'CLIENT' is not in m_loan_transaction.csv (its columns: "
        f'id, loan_id, amount, transaction_date) ([[files]] #1, match "m_loan*.csv"); m_loan_transaction.csv is '
        + WARNING.removeprefix("m_loan_transaction.csv: "))


@pytest.mark.parametrize("tables, warned", [
    # one file read as several entities on purpose: the same match
    ([("loans", "export*.csv"), ("instalments", "export*.csv"), ("payments", "export*.csv")], False),
    # two globs of one entity: the records load twice, as duplicates; not this warning's matter
    ([("payments", "export*.csv"), ("payments", "export_2024.csv")], False),
    ([("loans", "export*.csv"), ("payments", "export_2024.csv")], True),
    ([("loans", "export*.csv"), ("instalments", "export*.csv"), ("payments", "*_2024.csv")], True),
    ([("loans", "other*.csv"), ("payments", "export_2024.csv")], False),
])
def test_the_overlap_rule(tmp_path, tables, warned):
    text = "".join(f'[[files]]\nmatch = "{m}"\nentity = "{e}"\n[files.fields]\n' + {
        "loans": 'loan_id = "a"\nclient_id = "a"\namount = "a"\nissue_date = "a"\nupdated_at = "a"\n',
        "instalments": 'loan_id = "a"\nnumber = "a"\ndue_date = "a"\nprincipal = "a"\n',
        "payments": 'payment_id = "a"\nloan_id = "a"\npaid_at = "a"\namount = "a"\n'}[e] for e, m in tables)
    mapping = load_mapping(write(tmp_path, "map.toml", text))
    assert (mapping.overlap(Path("export_2024.csv")) is not None) == warned


def test_the_daily_run_says_the_overlap_in_its_ingest_step(tmp_path):
    from loanwatch.operations.run import ingest_step

    folder = tmp_path / "inbox"
    overlap_export(folder)
    mapping = write(tmp_path, "map.toml", OVERLAP.replace('"CLIENT"', '"id"'))
    settings = load_settings(tmp_path / "home", environ={"LOANWATCH_RUN__MAPPING": str(mapping)})
    step = ingest_step(settings, [folder])
    assert WARNING in step.message
    assert step.counts["files_new"] == 3  # loaded all the same
