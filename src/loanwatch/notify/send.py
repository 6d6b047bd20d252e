"""`loanwatch notify send`: put today's plan in the outbox, then deliver what is pending.

Idempotency: a message's key is client:rule:date; enqueuing the same plan again adds nothing, and
only `pending` messages are delivered. Each delivery is committed as `sent` right after the
channel accepts it, and every attempt is recorded. SIGTERM (or Ctrl-C) finishes the message in
flight and stops, so a rerun delivers the rest exactly once. After a SIGKILL, the one message that
was in flight may go again, with the same Message-ID (mail systems drop repeats of a Message-ID).

Channels: email over SMTP (one connection for the batch, STARTTLS when configured), SMS through an
HTTP gateway (JSON POST), the call-centre queue as a CSV file per day. Retries with back-off, an
optional rate per channel, and the 08:00-21:00 window in the client's time zone (messages outside
it stay pending for a later run).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
import signal
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2

from loanwatch.config import Settings
from loanwatch.errors import UsageProblem
from loanwatch.notify import outbox
from loanwatch.notify.plan import contact_plan
from loanwatch.reports import as_of_date
from loanwatch.serve import open_snapshot

TEMPLATES = Path(__file__).with_name("templates")
_TEXT = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=False,
                           undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
_HTML = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)


@dataclass
class SendResult:
    plan_date: dt.date
    enqueued: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    written: list[Path] = field(default_factory=list)
    stopped: bool = False
    # (message id, reason) of each message that failed in this run
    failures: list[tuple[str, str]] = field(default_factory=list)


class Undeliverable(Exception):
    """This one message cannot go: its recipient is invalid (or would inject a header). It is
    recorded as failed with this reason, and the rest of the batch goes out."""


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text)


def _one_line(text: str) -> str:
    """Text for a header: control characters (line breaks included) become spaces."""
    return " ".join("".join(" " if _has_control(ch) else ch for ch in text).split())


def email_address(recipient, display_name=None) -> Address:
    """The recipient as parsed by the standard library (never concatenated into a header).

    Raises Undeliverable for an empty or invalid address, a list of addresses, or one with a
    control character: a line break there would start a new header (``a@b.com\\nBcc: x@y.com``).
    """
    text = str(recipient or "").strip()
    if not text:
        raise Undeliverable("no email address")
    if _has_control(text):
        raise Undeliverable(f"email address {text!r} contains a control character (a line break would add a header)")
    try:
        parsed = Address(addr_spec=text)
    except Exception as exc:  # the parser raises several kinds, all meaning "not an address"
        raise Undeliverable(f"email address {text!r} is not a valid address ({exc})") from None
    if not parsed.username or not parsed.domain:
        raise Undeliverable(f"email address {text!r} is not a valid address (it needs a name and a domain)")
    return Address(display_name=_one_line(str(display_name or "")), addr_spec=parsed.addr_spec)


_PHONE = re.compile(r"\+?[0-9][0-9 ().-]{3,30}")


def sms_number(recipient) -> str:
    """The recipient's phone number, or Undeliverable: digits with +, spaces, dots, dashes and
    parentheses, nothing else (a control character or text is not a number)."""
    text = str(recipient or "").strip()
    if not _PHONE.fullmatch(text):
        raise Undeliverable(f"phone number {text!r} is not a phone number")
    return text


def render(message: dict, settings: Settings) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of a message, in the client's language or the default."""
    n = settings.section("notify")
    rule = message["rule"]
    family = "overdue" if rule.startswith("overdue_") else rule
    dpd = int(rule.split("_")[1]) if rule.startswith("overdue_") else int(n["final_notice_dpd"])
    language = message.get("language") or n["default_language"]
    if not (TEMPLATES / f"{family}.{language}.j2").exists():
        language = n["default_language"]
    values = {
        "name": message.get("client_name") or "",
        "amount": f"{message['open_amount']:,.2f}",
        "currency": settings.get("warehouse", "default_currency"),
        "due_date": message.get("due_date") or "",
        "loans": ", ".join(str(message["loans"]).split()),
        "dpd": dpd,
        "reference": str(n["payment_reference"]).replace("{client_id}", str(message["client_id"])),
    }
    text = _TEXT.get_template(f"{family}.{language}.j2").render(**values)
    first, _, body = text.partition("\n")
    subject = first.removeprefix("Subject: ").strip()
    body = body.lstrip("\n")
    html = _HTML.get_template("email.html.j2").render(paragraphs=[p for p in body.split("\n\n") if p.strip()])
    return subject, body, html


def enqueue(ob, plan_rows: list[dict], plan_date: dt.date) -> int:
    before = ob.execute("SELECT count(*) FROM messages").fetchall()[0][0]
    rows = [
        [f"{r['client_id']}:{r['rule']}:{plan_date}", r["client_id"], r["channel"], r["rule"], plan_date,
         r["recipient"], r["client_name"], r["language"], r["timezone"], r["loans"], r["open_amount"],
         r["due_date"], r["expected_recovery"], r["reason"]]
        for r in plan_rows if r["status"] == "planned"
    ]
    if rows:
        ob.executemany(
            """INSERT INTO messages (message_id, client_id, channel, rule, plan_date, recipient, client_name, language,
                                     timezone, loans, open_amount, due_date, expected_recovery, reason, status, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', now())
               ON CONFLICT DO NOTHING""",
            rows,
        )
    return ob.execute("SELECT count(*) FROM messages").fetchall()[0][0] - before


def in_contact_hours(timezone: str | None, now: dt.datetime, settings: Settings) -> bool:
    n = settings.section("notify")
    try:
        zone = ZoneInfo(timezone or settings.get("warehouse", "default_timezone"))
    except Exception:
        zone = ZoneInfo("UTC")
    local = now.astimezone(zone).time()
    start = dt.time.fromisoformat(str(n["quiet_start"]))
    end = dt.time.fromisoformat(str(n["quiet_end"]))
    return start <= local < end


class _Stop:
    """SIGTERM and Ctrl-C finish the message in flight, then stop."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}
        return self

    def _handle(self, *_):
        self.requested = True

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


def send(settings: Settings, plan_date: dt.date | None = None, dry_run: Path | None = None,
         now: dt.datetime | None = None, call_capacity: int | None = None) -> SendResult:
    now = now or dt.datetime.now(dt.UTC)
    snapshot = open_snapshot(settings)
    try:
        with outbox.opened(settings) as ob:
            return _send(settings, snapshot, ob, plan_date, dry_run, now, call_capacity)
    finally:
        snapshot.close()


def _send(settings, snapshot, ob, plan_date, dry_run, now, call_capacity) -> SendResult:
    d = as_of_date(snapshot, plan_date)
    result = SendResult(d)
    plan = contact_plan(snapshot, settings, d, call_capacity, show_all=False, outbox_con=ob).as_dicts()
    if dry_run is not None:
        return _dry_run(plan, d, dry_run, settings, result)
    result.enqueued = enqueue(ob, plan, d)
    cur = ob.execute("SELECT * FROM messages WHERE status = 'pending' AND plan_date = ? ORDER BY channel, message_id", [d])
    columns = [c[0] for c in cur.description]
    pending = [dict(zip(columns, row)) for row in cur.fetchall()]
    with _Stop() as stop:
        _deliver_calls(ob, settings, d, [m for m in pending if m["channel"] == "call"], result)
        messages = [m for m in pending if m["channel"] != "call"]
        _deliver(ob, settings, messages, now, result, stop)
        result.stopped = stop.requested
    return result


def _record(ob, message_id: str, ok: bool, detail: str, status: str | None = None) -> None:
    ob.execute("BEGIN TRANSACTION")
    ob.execute("INSERT INTO attempts VALUES (?, now(), ?, ?)", [message_id, ok, detail[:500]])
    if status == "sent":
        ob.execute("UPDATE messages SET status = 'sent', sent_at = now() WHERE message_id = ?", [message_id])
    elif status:
        ob.execute("UPDATE messages SET status = ? WHERE message_id = ?", [status, message_id])
    ob.execute("COMMIT")


def _email(message: dict, settings: Settings) -> EmailMessage:
    to = email_address(message["recipient"], message.get("client_name"))
    subject, text, html = render(message, settings)
    msg = EmailMessage()
    msg["From"] = sender_address(settings)
    msg["To"] = to
    msg["Subject"] = _one_line(subject)
    # The idempotency key is the Message-ID: a repeat after a crash is recognisable downstream.
    msg["Message-ID"] = message_id_header(message["message_id"])
    msg["X-Loanwatch-Message"] = message["message_id"]
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg


class BadSetting(UsageProblem):
    """A setting that stops every message; the message names it and what to do."""


def sender_address(settings: Settings) -> Address:
    try:
        return email_address(settings.get("smtp", "sender"))
    except Undeliverable as exc:
        raise BadSetting(f"[smtp] sender (LOANWATCH_SMTP__SENDER): {exc}; set it to an address such as "
                         "loanwatch@example.com") from None


def message_id_header(key: str) -> str:
    """A stable Message-ID for an outbox key (the same on every attempt)."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "." for ch in key)
    return f"<{safe}.{hashlib.md5(key.encode()).hexdigest()[:8]}@loanwatch>"


class _Smtp:
    """One SMTP connection for the batch, opened on first use and reopened if the server drops it."""

    def __init__(self, settings: Settings):
        self.s = settings.section("smtp")
        self.conn: smtplib.SMTP | None = None

    def send(self, msg: EmailMessage) -> None:
        if self.conn is None:
            conn = smtplib.SMTP(self.s["host"], int(self.s["port"]), timeout=float(self.s["timeout"]))
            if self.s["starttls"]:
                conn.starttls(context=ssl.create_default_context(cafile=self.s.get("tls_ca_file") or None))
            if self.s["user"]:
                conn.login(self.s["user"], self.s["password"])
            self.conn = conn
        try:
            self.conn.send_message(msg)
        except smtplib.SMTPServerDisconnected:
            self.conn = None
            raise

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except smtplib.SMTPException:
                pass


def _sms(message: dict, settings: Settings) -> None:
    sms = settings.section("sms")
    if not sms["url"]:
        raise RuntimeError("no SMS gateway: set [sms] url")
    to = sms_number(message["recipient"])
    _, text, _ = render(message, settings)
    body = json.dumps(sms_payload(sms["payload"], message["message_id"], to, text)).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": message["message_id"]}
    if sms.get("token"):
        headers["Authorization"] = f"Bearer {sms['token']}"
    req = urllib.request.Request(sms["url"], data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        if resp.status >= 300:
            raise RuntimeError(f"SMS gateway answered {resp.status}")


def sms_payload(template: str, message_id: str, to: str, text: str):
    """The gateway's JSON body: the configured template with {id}, {to}, {text} filled into its
    strings (values are inserted after parsing, so any text stays valid JSON)."""
    values = {"{id}": message_id, "{to}": to, "{text}": text}

    def fill(node):
        if isinstance(node, str):
            for key, value in values.items():
                node = node.replace(key, value)
            return node
        if isinstance(node, list):
            return [fill(x) for x in node]
        if isinstance(node, dict):
            return {k: fill(v) for k, v in node.items()}
        return node

    return fill(json.loads(template))


def _deliver(ob, settings: Settings, messages: list[dict], now: dt.datetime, result: SendResult, stop: _Stop) -> None:
    n = settings.section("notify")
    smtp = _Smtp(settings)
    last = {"email": 0.0, "sms": 0.0}
    try:
        for message in messages:
            if stop.requested:
                break
            if not in_contact_hours(message["timezone"], now, settings):
                result.deferred += 1
                _record(ob, message["message_id"], False, "outside contact hours in " + str(message["timezone"]))
                continue
            rate = float(n.get(f"{message['channel']}_per_second") or 0)
            if rate > 0:
                wait = last[message["channel"]] + 1 / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            for attempt in range(1, int(n["max_attempts"]) + 1):
                try:
                    if message["channel"] == "email":
                        smtp.send(_email(message, settings))
                    else:
                        _sms(message, settings)
                    last[message["channel"]] = time.monotonic()
                    _record(ob, message["message_id"], True, f"{message['channel']} accepted", "sent")
                    result.sent += 1
                    break
                except (Undeliverable, smtplib.SMTPRecipientsRefused, urllib.error.HTTPError) as exc:
                    if isinstance(exc, urllib.error.HTTPError) and exc.code >= 500:
                        if _retry(ob, message, attempt, f"SMS gateway answered {exc.code}", n, result):
                            continue
                        break
                    # this message cannot go, however often it is tried: fail it alone
                    reason = _why(exc)
                    _record(ob, message["message_id"], False, f"attempt {attempt}: {reason}", "failed")
                    result.failed += 1
                    result.failures.append((message["message_id"], reason))
                    break
                except (smtplib.SMTPException, OSError, urllib.error.URLError, RuntimeError, ValueError) as exc:
                    if not _retry(ob, message, attempt, str(exc), n, result):
                        break
    finally:
        smtp.close()


def _why(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"SMS gateway refused the message ({exc.code} {exc.reason})"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "mail server refused the recipient: " + "; ".join(
            f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
            for code, text in exc.recipients.values())
    return str(exc)


def _retry(ob, message: dict, attempt: int, reason: str, n: dict, result: SendResult) -> bool:
    """Record a failed attempt that may pass later; True when another attempt follows."""
    final = attempt == int(n["max_attempts"])
    _record(ob, message["message_id"], False, f"attempt {attempt}: {reason}", "failed" if final else None)
    if final:
        result.failed += 1
        result.failures.append((message["message_id"], reason))
        return False
    time.sleep(float(n["backoff_seconds"]) * 2 ** (attempt - 1))
    return True


CALL_COLUMNS = ["message_id", "client_id", "client_name", "phone", "loans", "open_amount", "expected_recovery", "reason"]


def _deliver_calls(ob, settings: Settings, d: dt.date, calls: list[dict], result: SendResult) -> None:
    """The day's call-centre queue as a CSV file, rewritten from the outbox (so reruns add no rows)."""
    if not calls:
        return
    folder = settings.home / "call_queue"
    folder.mkdir(parents=True, exist_ok=True)
    rows = ob.execute(
        """SELECT message_id, client_id, client_name, recipient, loans, open_amount, expected_recovery, reason
           FROM messages WHERE channel = 'call' AND plan_date = ? AND status IN ('pending', 'sent')
           ORDER BY expected_recovery DESC, client_id""", [d]).fetchall()
    path = folder / f"call_queue_{d}.csv"
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(CALL_COLUMNS)
        w.writerows(rows)
    tmp.replace(path)
    for m in calls:
        _record(ob, m["message_id"], True, f"queued in {path.name}", "sent")
        result.sent += 1
    result.written.append(path)


def _dry_run(plan: list[dict], d: dt.date, folder: Path, settings: Settings, result: SendResult) -> SendResult:
    """Render every planned message into folder (.eml for email, .txt for SMS, a CSV of calls); send nothing."""
    folder.mkdir(parents=True, exist_ok=True)
    calls = []
    for r in plan:
        if r["status"] != "planned":
            continue
        message = {**r, "message_id": f"{r['client_id']}:{r['rule']}:{d}"}
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in message["message_id"])
        if r["channel"] == "call":
            calls.append([message["message_id"], r["client_id"], r["client_name"], r["recipient"], r["loans"],
                          r["open_amount"], r["expected_recovery"], r["reason"]])
            continue
        try:
            if r["channel"] == "email":
                path, content = folder / f"{safe}.eml", bytes(_email(message, settings))
            else:
                text = f"To: {sms_number(r['recipient'])}\n\n{render(message, settings)[1]}"
                path, content = folder / f"{safe}.txt", text.encode("utf-8")
        except Undeliverable as exc:
            result.failed += 1
            result.failures.append((message["message_id"], str(exc)))
            continue
        path.write_bytes(content)
        result.written.append(path)
    if calls:
        path = folder / f"call_queue_{d}.csv"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(CALL_COLUMNS)
            w.writerows(calls)
        result.written.append(path)
    return result
