"""`loanwatch notify send`: put today's plan in the outbox, then deliver what is pending.

Idempotency: a message's key is client:rule:date; enqueuing the same plan again adds nothing.
Every pending message that is due goes, whatever its plan date (one held outside contact hours,
one waiting for a retry, one left by a killed run). Each delivery is committed as `sent` right
after the channel accepts it, and every attempt is recorded. SIGTERM (or Ctrl-C) finishes the
message in flight and stops, so a rerun delivers the rest exactly once. After a SIGKILL, the one
message that was in flight may go again, with the same Message-ID (mail systems drop repeats).

Failures: permanent ones (an invalid address, an SMTP 5xx to the message, an SMS gateway 4xx)
fail the message at once; passing ones (an SMTP 4xx, a dropped or silent connection, a gateway
5xx or 429) are retried with back-off, in this send when the wait fits in its deadline, else by a
later send, up to [notify] max_attempts in all. A message expires unsent after expire_hours, or
when a newer message to the same client supersedes it. At most max_messages_per_day reach a
client per day. No delivery starts after send_deadline_seconds, and no network wait outlasts it.

Channels: email over SMTP (one connection for the batch, STARTTLS when configured), SMS through an
HTTP gateway (JSON POST), the call-centre queue as a CSV file per day. An optional rate per
channel, and the 08:00-21:00 window in the client's time zone (messages outside it are held until
it opens).
"""

from __future__ import annotations

import csv
import datetime as dt
import email.utils
import hashlib
import http.client
import json
import re
import signal
import smtplib
import socket
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
from loanwatch.errors import Problem, UsageProblem
from loanwatch.notify import outbox
from loanwatch.notify.internal import redact
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
    # held for later, not failed: outside the client's contact hours, or over the daily cap
    deferred: int = 0
    failed: int = 0
    written: list[Path] = field(default_factory=list)
    stopped: bool = False
    # (message id, reason) of each message that failed in this run, or that met a passing failure
    # and waits for a later send, or that expired unsent
    failures: list[tuple[str, str]] = field(default_factory=list)
    # a passing failure (4xx, a dropped connection): pending, tried again by a later send
    retrying: int = 0
    # not tried in this send: the deadline came, or the channel's server failed on another message
    not_tried: int = 0
    # expired unsent (expire_hours), or superseded by a newer message to the same client
    expired: int = 0


class Clock:
    """The send's time: `now` (given by tests, else the wall clock) moved on by the monotonic clock,
    so that every time the outbox records (entered, attempted, sent, next attempt) follows it;
    and the deadline (`[notify] send_deadline_seconds`) after which no delivery starts and no
    network wait lasts."""

    def __init__(self, now: dt.datetime | None = None, budget: float | None = None):
        self.start = now or dt.datetime.now(dt.UTC)
        if self.start.tzinfo is None:
            self.start = self.start.replace(tzinfo=dt.UTC)
        self.t0 = time.monotonic()
        self.budget = budget

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=time.monotonic() - self.t0)

    def stamp(self) -> dt.datetime:
        """Now as the outbox stores it: UTC without a zone."""
        return outbox.utc_naive(self.now())

    def left(self) -> float:
        return float("inf") if self.budget is None else self.budget - (time.monotonic() - self.t0)


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


def enqueue(ob, plan_rows: list[dict], plan_date: dt.date, entered: dt.datetime | None = None) -> int:
    """The plan's planned rows into the outbox as pending; a key already there is left alone.
    `entered` (UTC, naive) is when they entered: expire_hours counts from it."""
    before = ob.execute("SELECT count(*) FROM messages").fetchall()[0][0]
    entered = entered or outbox.utc_naive(dt.datetime.now(dt.UTC))
    rows = [
        [f"{r['client_id']}:{r['rule']}:{plan_date}", r["client_id"], r["channel"], r["rule"], plan_date,
         r["recipient"], r["client_name"], r["language"], r["timezone"], r["loans"], r["open_amount"],
         r["due_date"], r["expected_recovery"], r["reason"], entered]
        for r in plan_rows if r["status"] == "planned"
    ]
    if rows:
        ob.executemany(
            """INSERT INTO messages (message_id, client_id, channel, rule, plan_date, recipient, client_name, language,
                                     timezone, loans, open_amount, due_date, expected_recovery, reason, status, created_at,
                                     attempts)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, 0)
               ON CONFLICT DO NOTHING""",
            rows,
        )
    return ob.execute("SELECT count(*) FROM messages").fetchall()[0][0] - before


def _zone(timezone: str | None, settings: Settings) -> ZoneInfo:
    try:
        return ZoneInfo(timezone or settings.get("warehouse", "default_timezone"))
    except Exception:
        return ZoneInfo("UTC")


def _window(settings: Settings) -> tuple[dt.time, dt.time]:
    n = settings.section("notify")
    return dt.time.fromisoformat(str(n["quiet_start"])), dt.time.fromisoformat(str(n["quiet_end"]))


def in_contact_hours(timezone: str | None, now: dt.datetime, settings: Settings) -> bool:
    start, end = _window(settings)
    local = now.astimezone(_zone(timezone, settings)).time()
    return start <= local < end


def next_contact_time(timezone: str | None, now: dt.datetime, settings: Settings) -> dt.datetime:
    """When the client's contact hours next open (UTC): today's start if it is still to come,
    else tomorrow's."""
    zone = _zone(timezone, settings)
    start, _ = _window(settings)
    local = now.astimezone(zone)
    day = local.date() if local.time() < start else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, start, tzinfo=zone).astimezone(dt.UTC)


def next_local_midnight(timezone: str | None, now: dt.datetime, settings: Settings) -> dt.datetime:
    zone = _zone(timezone, settings)
    day = now.astimezone(zone).date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=zone).astimezone(dt.UTC)


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

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake up for a stop request (checked every tenth of a second)."""
        end = time.monotonic() + max(0.0, seconds)
        while not self.requested and time.monotonic() < end:
            time.sleep(min(0.1, end - time.monotonic()))


def send(settings: Settings, plan_date: dt.date | None = None, dry_run: Path | None = None,
         now: dt.datetime | None = None, call_capacity: int | None = None) -> SendResult:
    """Plan the day into the outbox, then deliver everything pending and due, whatever its plan
    date: a message held, retried or left by a killed run goes with the next send."""
    snapshot = open_snapshot(settings)
    try:
        with outbox.opened(settings) as ob:
            # the deadline bounds how long the outbox lock is held: it starts once it is taken
            clock = Clock(now, float(settings.get("notify", "send_deadline_seconds")))
            return _send(settings, snapshot, ob, plan_date, dry_run, clock, call_capacity)
    except Exception as exc:
        # whatever stops a send is told in one line; a secret in it (an HTTP library's error
        # quoting the SMS token, say) is taken out before anyone sees or records it
        text = str(exc)
        if redact(text, settings) != text:
            kind = UsageProblem if isinstance(exc, UsageProblem) else Problem
            raise kind(redact(text, settings)) from None
        raise
    finally:
        snapshot.close()


def _send(settings, snapshot, ob, plan_date, dry_run, clock: Clock, call_capacity) -> SendResult:
    d = as_of_date(snapshot, plan_date)
    result = SendResult(d)
    plan = contact_plan(snapshot, settings, d, call_capacity, show_all=False, outbox_con=ob).as_dicts()
    if dry_run is not None:
        return _dry_run(plan, d, dry_run, settings, result)
    result.enqueued = enqueue(ob, plan, d, clock.stamp())
    _expire(ob, settings, clock, result)
    # every due message, of any plan date; the newest plan first, so that a client's current
    # message is the one that goes when the daily cap allows one
    cur = ob.execute(
        """SELECT * FROM messages WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
           ORDER BY plan_date DESC, channel, message_id""", [clock.stamp()])
    columns = [c[0] for c in cur.description]
    pending = [dict(zip(columns, row)) for row in cur.fetchall()]
    with _Stop() as stop:
        calls = [m for m in pending if m["channel"] == "call"]
        for day in sorted({m["plan_date"] for m in calls}):
            _deliver_calls(ob, settings, day, [m for m in calls if m["plan_date"] == day], result, clock)
        messages = [m for m in pending if m["channel"] != "call"]
        _deliver(ob, settings, messages, clock, result, stop)
        result.stopped = stop.requested
    return result


def _expire(ob, settings: Settings, clock: Clock, result: SendResult) -> None:
    """The two rules by which a pending message is dropped unsent (docs/notify.md):
    - expire_hours after it entered the outbox (0: never), it is stale: expired, and told;
    - a newer message (a later plan date) to the same client, pending or sent, says what is
      current: the older is expired as superseded (not told: nothing is lost)."""
    now = clock.stamp()
    hours = float(settings.get("notify", "expire_hours") or 0)
    if hours > 0:
        stale = ob.execute("SELECT message_id, created_at FROM messages WHERE status = 'pending' AND created_at < ?",
                           [now - dt.timedelta(hours=hours)]).fetchall()
        for message_id, created in stale:
            why = (f"expired unsent: in the outbox since {created:%Y-%m-%d %H:%M} UTC, more than "
                   f"{hours:g} hours ([notify] expire_hours)")
            _update(ob, message_id, status="expired", last_error=why)
            result.expired += 1
            result.failures.append((message_id, why))
    superseded = ob.execute(
        """SELECT m.message_id, arg_max(n.message_id, n.plan_date)
           FROM messages m JOIN messages n
             ON n.client_id = m.client_id AND n.plan_date > m.plan_date AND n.status IN ('pending', 'sent')
                AND n.channel IN ('email', 'sms')
           WHERE m.status = 'pending' AND m.channel IN ('email', 'sms')
           GROUP BY m.message_id""").fetchall()
    for message_id, newer in superseded:
        _update(ob, message_id, status="expired", last_error=f"superseded by {newer}, a newer message to the same client")
        result.expired += 1


_KEEP = object()


def _update(ob, message_id: str, attempt: tuple[dt.datetime, bool, str] | None = None, **fields) -> None:
    """Change a message's delivery state (and record an attempt) in one transaction."""
    ob.execute("BEGIN TRANSACTION")
    try:
        if attempt is not None:
            ob.execute("INSERT INTO attempts (message_id, attempted_at, ok, detail) VALUES (?, ?, ?, ?)",
                       [message_id, attempt[0], attempt[1], attempt[2][:500]])
        if fields:
            # column names are this module's own (never input); values are parameters
            assignments = ", ".join(f"{name} = ?" for name in fields)
            ob.execute(f"UPDATE messages SET {assignments} WHERE message_id = ?", [*fields.values(), message_id])
        ob.execute("COMMIT")
    except BaseException:
        ob.execute("ROLLBACK")
        raise


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


class _Session(Exception):
    """The mail server failed before any message: connecting, its greeting, EHLO, STARTTLS or
    login. Not this message's fault: a passing failure, and the server's, for the whole channel."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


class _Smtp:
    """One SMTP connection for the batch, opened on first use and reopened if the server drops it.
    Every network wait is at most `timeout` seconds: [smtp] timeout, or less, what is left of the
    send's deadline."""

    def __init__(self, settings: Settings):
        self.s = settings.section("smtp")
        self.conn: smtplib.SMTP | None = None

    def _open(self, timeout: float) -> smtplib.SMTP:
        try:
            conn = smtplib.SMTP(self.s["host"], int(self.s["port"]), timeout=timeout)
        except (smtplib.SMTPException, OSError) as exc:
            raise _Session(exc) from None
        try:
            conn.ehlo()
            if self.s["starttls"]:
                conn.starttls(context=ssl.create_default_context(cafile=self.s.get("tls_ca_file") or None))
                conn.ehlo()
            if self.s["user"]:
                conn.login(self.s["user"], self.s["password"])
        except Exception as exc:  # noqa: BLE001 - whatever stops the session is the server's or a setting's
            conn.close()
            raise _Session(exc) from None
        return conn

    def send(self, msg: EmailMessage, timeout: float) -> None:
        timeout = max(0.1, min(float(self.s["timeout"]), timeout))
        for last_try in (False, True):
            reused = self.conn is not None
            if self.conn is None:
                self.conn = self._open(timeout)
            try:
                self.conn.sock.settimeout(timeout)
                self.conn.send_message(msg)
                return
            except smtplib.SMTPResponseException:
                # an answer: the connection goes on, unless smtplib closed it (after a 421)
                if self.conn is not None and self.conn.sock is None:
                    self.conn = None
                raise
            except (smtplib.SMTPException, OSError) as exc:
                self.drop()  # a timeout or a broken connection: its state is unknown
                # a server may close a connection left idle (while this send waited for a retry
                # or a rate): reconnect once for this message before calling it a failure
                if reused and not last_try and isinstance(exc, (smtplib.SMTPServerDisconnected, ConnectionError)):
                    continue
                raise

    def drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self, timeout: float) -> None:
        if self.conn is not None:
            try:
                if timeout > 0.5:
                    self.conn.sock.settimeout(min(5.0, timeout))
                    self.conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
            finally:
                self.drop()


def _sms(message: dict, settings: Settings, timeout: float = 30) -> None:
    sms = settings.section("sms")
    if not sms["url"]:
        raise _NoGateway("no SMS gateway: set [sms] url")
    to = sms_number(message["recipient"])
    _, text, _ = render(message, settings)
    body = json.dumps(sms_payload(sms["payload"], message["message_id"], to, text)).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": message["message_id"]}
    if sms.get("token"):
        headers["Authorization"] = f"Bearer {sms['token']}"
    req = urllib.request.Request(sms["url"], data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=max(0.1, min(30.0, timeout))) as resp:
        if resp.status >= 300:
            raise RuntimeError(f"SMS gateway answered {resp.status}")


class _NoGateway(RuntimeError):
    """[sms] url is not set."""


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


@dataclass
class Failure:
    """What a failed delivery means: permanent (the message cannot go: fail it now) or passing
    (try again later); whether the channel's server itself failed (the channel's other messages
    then wait for the next send); the reason; how long the other side asked to wait."""

    permanent: bool
    channel_down: bool
    reason: str
    retry_after: float | None = None


def _smtp_text(value) -> str:
    return (value.decode(errors="replace") if isinstance(value, bytes) else str(value)).strip()


def classify(exc: BaseException) -> Failure:
    """SMTP: a 5xx answer to this message (MAIL, RCPT, DATA) is permanent, a 4xx passing (421:
    the server is closing, for every message); a failure before any message (connect, greeting,
    STARTTLS, login), a refused sender (a setting) and a dropped or silent connection are passing,
    and the server's. SMS gateway: 429, 408 and 5xx are passing (Retry-After is honoured), 401 and
    403 (the token) passing and the channel's, another 4xx permanent; no answer is passing. An
    invalid address or number is permanent."""
    if isinstance(exc, Undeliverable):
        return Failure(True, False, str(exc))
    if isinstance(exc, _Session):
        inner = classify(exc.cause)
        return Failure(False, True, "mail server: " + inner.reason.removeprefix("mail server "), None)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        text = "; ".join(f"{code} {_smtp_text(said)}" for code, said in exc.recipients.values())
        permanent = bool(codes) and all(500 <= c < 600 for c in codes)
        return Failure(permanent, 421 in codes, "mail server refused the recipient: " + text)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        # the sender is a setting ([smtp] sender), the same for every message: the channel is
        # down until it is fixed, and the messages wait for it rather than fail for good
        return Failure(False, True, f"mail server refused the sender ([smtp] sender): {exc.smtp_code} "
                                    f"{_smtp_text(exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPResponseException):
        what = {smtplib.SMTPDataError: "the message", smtplib.SMTPAuthenticationError: "the login"}.get(type(exc), "the command")
        code = exc.smtp_code
        reason = f"mail server refused {what}: {code} {_smtp_text(exc.smtp_error)}"
        return Failure(500 <= code < 600, not (400 <= code < 600) or code == 421, reason)
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return Failure(False, True, "no answer in time (the server is silent)")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if "timed out" in str(exc):  # smtplib reports a silent server as a closed connection
            return Failure(False, True, "no answer in time (the server is silent)")
        return Failure(False, True, f"mail server closed the connection ({exc})")
    if isinstance(exc, smtplib.SMTPException):
        return Failure(False, True, f"mail server: {exc}")
    if isinstance(exc, urllib.error.HTTPError):
        code = exc.code
        if code in (408, 429) or code >= 500:
            return Failure(False, True, f"SMS gateway answered {code} {exc.reason}",
                           retry_after_seconds(exc.headers))
        if code in (401, 403):  # the token ([sms] token), for every message: wait for it to be fixed
            return Failure(False, True, f"SMS gateway refused the credentials ({code} {exc.reason}): check LOANWATCH_SMS__TOKEN")
        return Failure(True, False, f"SMS gateway refused the message ({code} {exc.reason})")
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        said = "no answer in time" if isinstance(reason, (TimeoutError, socket.timeout)) else (
            reason.strerror.lower() if isinstance(reason, OSError) and reason.strerror else str(reason))
        return Failure(False, True, f"SMS gateway: {said}")
    if isinstance(exc, ssl.SSLError):
        return Failure(False, True, f"TLS failed: {exc.reason or exc}")
    if isinstance(exc, OSError):
        return Failure(False, True, exc.strerror.lower() if exc.strerror else str(exc) or type(exc).__name__)
    if isinstance(exc, UnicodeError):
        return Failure(False, True, "a setting holds characters the mail server's login cannot carry (not ASCII): "
                                    "check [smtp] user and LOANWATCH_SMTP__PASSWORD")
    if isinstance(exc, _NoGateway):
        return Failure(False, True, str(exc))
    # a malformed [sms] url, a header the HTTP library refuses (a token with a line break), …:
    # a setting's fault, for every message; passing, so that the message goes once it is fixed
    # (the text may quote the token: every reason is redacted before it is kept or shown)
    if isinstance(exc, ValueError):
        return Failure(False, True, f"the request cannot be made ({type(exc).__name__}: {exc}); check [sms] url "
                                    "and LOANWATCH_SMS__TOKEN")
    return Failure(False, True, f"{type(exc).__name__}: {exc}")


# What a delivery may raise that is about the message, the server or the connection (classify
# tells them apart); anything else is a bug, or a setting that stops the send, and propagates.
_DELIVERY_ERRORS = (Undeliverable, _Session, smtplib.SMTPException, OSError, http.client.HTTPException,
                    ssl.SSLError, ValueError, RuntimeError)


def retry_after_seconds(headers) -> float | None:
    """The wait a 429 or 503 asks for (Retry-After: seconds, or an HTTP date), from any mapping of
    headers (an HTTP library's, or slack_sdk's dict, whose values may be lists)."""
    value = None
    for key, v in (headers or {}).items():
        if str(key).lower() == "retry-after":
            value = v[0] if isinstance(v, list) else v
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


def _sent_today(ob, clients: set[str], since: dt.datetime) -> dict[str, list[dt.datetime]]:
    """When each client was last sent email or SMS, from `since` on (UTC)."""
    if not clients:
        return {}
    rows = ob.execute(
        """SELECT client_id, sent_at FROM messages
           WHERE status = 'sent' AND channel IN ('email', 'sms') AND sent_at >= ? AND list_contains(?, client_id)""",
        [since, sorted(clients)]).fetchall()
    found: dict[str, list[dt.datetime]] = {}
    for client, sent_at in rows:
        found.setdefault(client, []).append(sent_at.replace(tzinfo=dt.UTC))
    return found


def _deliver(ob, settings: Settings, messages: list[dict], now, result: SendResult, stop: _Stop) -> None:
    """Deliver each message on its own (docs/notify.md, "Retries"). `now` is the send's Clock
    (or a moment, for a test of this function alone)."""
    clock = now if isinstance(now, Clock) else Clock(now, float(settings.get("notify", "send_deadline_seconds")))
    n = settings.section("notify")
    max_attempts = max(1, int(n["max_attempts"]))
    per_day = int(n["max_messages_per_day"])
    backoff = float(n["backoff_seconds"])
    smtp = _Smtp(settings)
    last = {"email": 0.0, "sms": 0.0}
    down: dict[str, str] = {}  # channel -> why its server failed in this send
    sent = _sent_today(ob, {m["client_id"] for m in messages}, clock.stamp() - dt.timedelta(days=2))

    def leave(message: dict, why: str) -> None:
        result.not_tried += 1
        _update(ob, message["message_id"], last_error=why)

    try:
        for message in messages:
            if stop.requested:
                break
            key, channel = message["message_id"], message["channel"]
            if clock.left() <= 0.5:
                leave(message, "not tried: the send's deadline passed ([notify] send_deadline_seconds); "
                               "the next send takes it")
                continue
            if channel in down:
                leave(message, f"not tried: the {channel} server failed on another message ({down[channel]})")
                continue
            moment = clock.now()
            if not in_contact_hours(message["timezone"], moment, settings):
                opens = next_contact_time(message["timezone"], moment, settings)
                result.deferred += 1
                _update(ob, key, next_attempt_at=outbox.utc_naive(opens),
                        last_error=f"held: outside contact hours in {message['timezone'] or 'UTC'} until {opens:%Y-%m-%d %H:%M} UTC")
                continue
            zone = _zone(message["timezone"], settings)
            today = [t for t in sent.get(message["client_id"], []) if t.astimezone(zone).date() == moment.astimezone(zone).date()]
            if per_day > 0 and len(today) >= per_day:
                tomorrow = next_local_midnight(message["timezone"], moment, settings)
                result.deferred += 1
                _update(ob, key, next_attempt_at=outbox.utc_naive(tomorrow),
                        last_error=f"held: {len(today)} message(s) already sent to this client today "
                                   f"([notify] max_messages_per_day = {per_day})")
                continue
            rate = float(n.get(f"{channel}_per_second") or 0)
            if rate > 0:
                wait = last[channel] + 1 / rate - time.monotonic()
                if wait > 0:
                    stop.sleep(wait)
            attempts = int(message.get("attempts") or 0)
            while True:
                try:
                    if channel == "email":
                        smtp.send(_email(message, settings), clock.left())
                    else:
                        _sms(message, settings, clock.left())
                except _DELIVERY_ERRORS as exc:  # a setting that stops every message (BadSetting) is not one
                    failure = classify(exc)
                    reason = redact(failure.reason, settings)
                    attempts += 1
                    at = clock.stamp()
                    detail = f"attempt {attempts}: {reason}"
                    if failure.permanent or attempts >= max_attempts:
                        why = reason if failure.permanent else f"{reason} (attempt {attempts} of {max_attempts}: no more)"
                        _update(ob, key, (at, False, detail), status="failed", attempts=attempts, last_error=why,
                                next_attempt_at=None)
                        result.failed += 1
                        result.failures.append((key, why))
                        if failure.channel_down:
                            down[channel] = reason
                        break
                    wait = max(backoff * 2 ** (attempts - 1), failure.retry_after or 0.0)
                    retry_at = at + dt.timedelta(seconds=wait)
                    _update(ob, key, (at, False, detail), attempts=attempts, last_error=reason, next_attempt_at=retry_at)
                    if wait + 0.5 < clock.left() and not stop.requested:
                        stop.sleep(wait)  # the retry fits in this send
                        if not stop.requested:
                            continue
                    result.retrying += 1
                    result.failures.append((key, f"{reason} (attempt {attempts} of {max_attempts}; it stays pending and "
                                                 f"is tried again from {retry_at:%Y-%m-%d %H:%M:%S} UTC)"))
                    if failure.channel_down:
                        down[channel] = reason
                    break
                else:
                    last[channel] = time.monotonic()
                    at = clock.stamp()
                    _update(ob, key, (at, True, f"{channel} accepted"), status="sent", sent_at=at,
                            attempts=attempts, last_error=None, next_attempt_at=None)
                    sent.setdefault(message["client_id"], []).append(at.replace(tzinfo=dt.UTC))
                    result.sent += 1
                    break
    finally:
        smtp.close(clock.left())


CALL_COLUMNS = ["message_id", "client_id", "client_name", "phone", "loans", "open_amount", "expected_recovery", "reason"]


def _deliver_calls(ob, settings: Settings, d: dt.date, calls: list[dict], result: SendResult,
                   clock: Clock | None = None) -> None:
    """The day's call-centre queue as a CSV file, rewritten from the outbox (so reruns add no rows)."""
    if not calls:
        return
    clock = clock or Clock()
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
        at = clock.stamp()
        _update(ob, m["message_id"], (at, True, f"queued in {path.name}"), status="sent", sent_at=at, last_error=None)
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
