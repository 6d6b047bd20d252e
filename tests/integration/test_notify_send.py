"""Delivery: a real SMTP server (aiosmtpd) and a local HTTP gateway receive exactly the expected
messages; reruns deliver nothing twice; retries, contact hours, the call queue, dry runs."""

from __future__ import annotations

import datetime as dt
import email
import os
import shutil
import signal
import subprocess
import sys
import time
from email import policy

import pytest

from loanwatch.config import load_settings
from loanwatch.notify import outbox
from loanwatch.notify.send import render, send
from tests.integration.conftest import Inbox, _port

pytestmark = pytest.mark.integration
NOON = dt.datetime(2024, 5, 31, 12, 0, tzinfo=dt.UTC)


@pytest.fixture()
def home(notify_home, tmp_path):
    """A private copy, so outboxes of different tests do not meet."""
    copy = tmp_path / "home"
    shutil.copytree(notify_home, copy, ignore=shutil.ignore_patterns("*.lock", "notify.duckdb*", "call_queue"))
    return copy


def settings_for(home, smtp=None, gateway=None, **env):
    base = {"LOANWATCH_NOTIFY__HOLDOUT_SHARE": "0", "LOANWATCH_NOTIFY__BACKOFF_SECONDS": "0.01", "LOANWATCH_NOTIFY__MAX_ATTEMPTS": "3",
            "LOANWATCH_SMTP__HOST": "127.0.0.1", "LOANWATCH_SMTP__PORT": str(smtp.port if smtp else _port()),
            "LOANWATCH_SMS__URL": gateway.url if gateway else "", "LOANWATCH_SMS__TOKEN": "s3cret"}
    return load_settings(home, environ={**base, **env})


def test_email_reaches_the_server_once_with_escaped_names(home, smtp):
    settings = settings_for(home, smtp)
    result = send(settings, dt.date(2024, 5, 31), now=NOON)
    assert (result.sent, result.failed) == (2, 0)  # C3's email and C4's call in the queue
    assert len(smtp.messages) == 1
    m = smtp.messages[0]
    # the display name is quoted by the standard library's address header, never concatenated
    assert (m["To"], m["Subject"], m["From"]) == ('"<b>Ömer</b>" <omer@example.com>', "Your payment is 30 days late",
                                                  "loanwatch@localhost")
    assert m["To"].addresses[0].addr_spec == "omer@example.com"
    text = m.get_body(("plain",)).get_content()
    html = m.get_body(("html",)).get_content()
    assert "Dear <b>Ömer</b>," in text and "300.00 USD" in text and "L03" in text and "LW-C3" in text
    assert "Dear &lt;b&gt;Ömer&lt;/b&gt;," in html and "<b>Ömer</b>" not in html
    # again: nothing new is planned into the outbox, nothing is sent twice
    again = send(settings, dt.date(2024, 5, 31), now=NOON)
    assert (again.enqueued, again.sent) == (0, 0) and len(smtp.messages) == 1
    queue = (home / "call_queue" / "call_queue_2024-05-31.csv").read_text().splitlines()
    assert len(queue) == 2 and queue[1].startswith("C4:call:2024-05-31,C4,Иван Петров,+79990001122,L11,300.00")


def test_sms_through_the_gateway_with_retries(home, gateway):
    gateway.fail_first["n"] = 2  # two 503s, then accepted on the third attempt
    settings = settings_for(home, gateway=gateway)
    result = send(settings, dt.date(2024, 4, 11), now=dt.datetime(2024, 4, 11, 9, 0, tzinfo=dt.UTC))
    assert (result.sent, result.failed) == (1, 0)
    assert len(gateway.received) == 1
    got = gateway.received[0]
    assert got["body"]["to"] == "+79990001122" and got["auth"] == "Bearer s3cret"
    assert got["key"] == "C4:overdue_1:2024-04-11" == got["body"]["id"]
    assert "800.00 USD" in got["body"]["text"] and "L04, L11" in got["body"]["text"]
    con = outbox.connect(settings)
    attempts = con.execute("SELECT ok FROM attempts WHERE message_id = 'C4:overdue_1:2024-04-11' ORDER BY attempted_at").fetchall()
    con.close()
    assert attempts == [(False,), (False,), (True,)]


def test_contact_hours_hold_messages_until_a_later_run(home, gateway):
    settings = settings_for(home, gateway=gateway)
    late = dt.datetime(2024, 4, 11, 19, 0, tzinfo=dt.UTC)  # 22:00 in Moscow
    assert send(settings, dt.date(2024, 4, 11), now=late).deferred == 1
    assert gateway.received == []
    morning = dt.datetime(2024, 4, 12, 6, 0, tzinfo=dt.UTC)  # 09:00 in Moscow
    assert send(settings, dt.date(2024, 4, 11), now=morning).sent == 1
    assert len(gateway.received) == 1


def test_a_dead_server_fails_the_message_after_its_attempts(home):
    settings = settings_for(home)  # nothing listens on the SMTP port
    result = send(settings, dt.date(2024, 5, 31), now=NOON)
    assert result.failed == 1
    con = outbox.connect(settings)
    assert con.execute("SELECT status FROM messages WHERE channel = 'email'").fetchall() == [("failed",)]
    assert con.execute("SELECT count(*) FROM attempts WHERE NOT ok").fetchone()[0] == 3
    con.close()


def test_dry_run_writes_messages_and_sends_nothing(home, smtp, tmp_path):
    settings = settings_for(home, smtp)
    result = send(settings, dt.date(2024, 5, 31), dry_run=tmp_path / "review", now=NOON)
    names = sorted(p.name for p in result.written)
    assert names == ["C3_overdue_30_2024-05-31.eml", "call_queue_2024-05-31.csv"]
    assert smtp.messages == []
    m = email.message_from_bytes((tmp_path / "review" / names[0]).read_bytes(), policy=policy.default)
    assert m["Subject"] == "Your payment is 30 days late"
    con = outbox.connect(settings)
    assert con.execute("SELECT count(*) FROM messages").fetchall() == [(0,)]  # a dry run queues nothing
    con.close()


def test_templates_follow_the_client_language():
    settings = load_settings("/nonexistent", environ={})
    base = {"client_id": "C9", "client_name": "Ana", "open_amount": 1234.5, "loans": "L1 L2", "due_date": "2024-07-20"}
    subject, text, _ = render({**base, "rule": "pre_due", "language": "es"}, settings)
    assert subject == "Recordatorio: 1,234.50 USD vencen el 2024-07-20" and "L1, L2" in text
    subject, _, _ = render({**base, "rule": "overdue_7", "language": "ru"}, settings)
    assert subject == "Платёж просрочен на 7 дн."
    subject, _, _ = render({**base, "rule": "final_notice", "language": "de"}, settings)  # no German: default
    assert subject == "Final notice: 1,234.50 USD past due"
    # one day is singular, in every language that says it with a number
    subject, text, _ = render({**base, "rule": "overdue_1", "language": "en"}, settings)
    assert subject == "Your payment is 1 day late" and "now 1 day past due" in text
    subject, text, _ = render({**base, "rule": "overdue_7", "language": "en"}, settings)
    assert subject == "Your payment is 7 days late" and "now 7 days past due" in text
    subject, text, _ = render({**base, "rule": "overdue_1", "language": "es"}, settings)
    assert subject == "Su pago tiene 1 día de atraso" and "con 1 día de atraso" in text


def test_killed_mid_batch_then_rerun_delivers_each_message_once(tmp_path):
    """SIGTERM while a slow server takes the batch: the sender stops after the message in flight;
    the rerun delivers the rest; every message arrives exactly once."""
    from aiosmtpd.controller import Controller

    from loanwatch.generate.portfolio import generate
    from loanwatch.generate.write import write_portfolio
    from tests.conftest import build_home

    write_portfolio(generate(4000, seed=5, start=dt.date(2024, 1, 1), end=dt.date(2025, 6, 30)), tmp_path / "raw")
    settings = build_home(tmp_path / "home", tmp_path / "raw")
    inbox = Inbox(delay=0.15)
    controller = Controller(inbox, hostname="127.0.0.1", port=_port())
    controller.start()
    env = {**os.environ, "LOANWATCH_HOME": str(settings.home), "LOANWATCH_SMTP__HOST": "127.0.0.1",
           "LOANWATCH_SMTP__PORT": str(controller.port), "LOANWATCH_NOTIFY__QUIET_START": "00:00",
           "LOANWATCH_NOTIFY__QUIET_END": "23:59:59", "LOANWATCH_NOTIFY__HOLDOUT_SHARE": "0",
           "LOANWATCH_NOTIFY__MAX_ATTEMPTS": "1", "LOANWATCH_SMS__URL": "http://127.0.0.1:9/unused"}
    try:
        cmd = [sys.executable, "-m", "loanwatch.cli", "notify", "send"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(inbox.messages) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        first = len(inbox.messages)
        subprocess.run(cmd, env=env, capture_output=True, timeout=300)
        con = outbox.connect(settings)
        expected = {r[0] for r in con.execute(
            "SELECT message_id FROM messages WHERE channel = 'email' AND status = 'sent'").fetchall()}
        pending = con.execute("SELECT count(*) FROM messages WHERE channel = 'email' AND status = 'pending'").fetchone()[0]
        con.close()
    finally:
        controller.stop()
    keys = [m["X-Loanwatch-Message"] for m in inbox.messages]
    assert len(keys) >= 10, "too few emails to test a batch"
    assert inbox.connections == 2  # one SMTP connection for each run's batch
    assert first < len(keys), "the first run was not stopped mid-batch"
    assert sorted(keys) == sorted(expected) and len(keys) == len(set(keys))
    assert pending == 0


def test_starttls_with_a_private_ca(home, tmp_path):
    """STARTTLS against a server whose certificate a private CA file vouches for."""
    import ssl
    import subprocess

    from aiosmtpd.controller import Controller

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_port(), tls_context=context, require_starttls=True)
    controller.start()
    inbox.port = controller.port
    try:
        plain = send(settings_for(home, inbox), dt.date(2024, 5, 31), now=NOON)
        assert plain.failed == 1 and inbox.messages == []  # the server insists on STARTTLS
        settings = settings_for(home, inbox, LOANWATCH_SMTP__STARTTLS="true", LOANWATCH_SMTP__TLS_CA_FILE=str(cert))
        con = outbox.connect(settings)
        con.execute("UPDATE messages SET status = 'pending' WHERE status = 'failed'")
        con.close()
        result = send(settings, dt.date(2024, 5, 31), now=NOON)
    finally:
        controller.stop()
    assert result.sent == 1 and inbox.tls == [True]


def test_sms_payload_is_configurable_and_stays_valid_json(home, gateway):
    template = '{"message": {"recipient": "{to}", "body": "{text}"}, "reference": "{id}", "sender": "LOANS"}'
    settings = settings_for(home, gateway=gateway, LOANWATCH_SMS__PAYLOAD=template)
    assert send(settings, dt.date(2024, 4, 11), now=dt.datetime(2024, 4, 11, 9, 0, tzinfo=dt.UTC)).sent == 1
    body = gateway.received[0]["body"]
    assert body["message"]["recipient"] == "+79990001122" and body["sender"] == "LOANS"
    assert body["reference"] == "C4:overdue_1:2024-04-11" and "L04, L11" in body["message"]["body"]


def test_rate_limit_spaces_deliveries(home, gateway):
    """Two SMS days' worth at 2 a second: the second delivery waits about half a second."""
    from loanwatch.notify.send import SendResult, _deliver, _Stop

    settings = settings_for(home, gateway=gateway, LOANWATCH_NOTIFY__SMS_PER_SECOND="2")
    ob = outbox.connect(settings)
    messages = [{"message_id": f"C{i}:overdue_1:2024-04-11", "client_id": f"C{i}", "channel": "sms", "rule": "overdue_1",
                 "recipient": f"+1555000{i}", "client_name": "X", "language": "en", "timezone": "UTC", "loans": "L1",
                 "open_amount": 10, "due_date": None} for i in range(3)]
    start = time.monotonic()
    with _Stop() as stop:
        _deliver(ob, settings, messages, NOON, SendResult(dt.date(2024, 4, 11)), stop)
    ob.close()
    assert len(gateway.received) == 3
    assert time.monotonic() - start >= 0.95  # 3 deliveries at 2 a second: at least two half-second gaps
