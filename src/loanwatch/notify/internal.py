"""Internal messages: the pipeline report to Slack after each build, and the weekly management
summary by email. Figures come from `loanwatch.reports`, like everything else.

Secrets (the SMTP password, the webhook URL, the SMS token) never reach an output, a log, the run
history or a file: errors about Slack are described by loanwatch (never by the exception's text,
which quotes the URL), slack_sdk's own loggers are silenced, and `redact` takes every secret out
of any text loanwatch records or prints about a delivery.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import re
import smtplib
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
from email.message import EmailMessage

from loanwatch.config import SECRETS, Settings
from loanwatch.errors import Problem
from loanwatch.reports import Table

# slack_sdk logs a failed request at ERROR with the URL in it ("Invalid URL detected: https://
# hooks.slack.com/services/…"), and Python prints such a record on stderr when no handler is set.
# Its loggers get a handler that drops everything and never pass records up to the root logger.
_QUIET = logging.getLogger("loanwatch.slack")
for _name in ("slack_sdk", "slack", _QUIET.name):
    _logger = logging.getLogger(_name)
    _logger.addHandler(logging.NullHandler())
    _logger.propagate = False
    # above every level: the client's `logger.level <= DEBUG` tests fail, so it builds no message
    _logger.setLevel(logging.CRITICAL + 1)

# A Slack 429 is retried once after its Retry-After, when that is at most this long; a longer
# wait would hold up the build (or the run) it reports on, so the post is dropped with a warning.
SLACK_MAX_RETRY_AFTER = 30.0
SLACK_TIMEOUT = 15


def secret_values(settings: Settings) -> list[str]:
    """Every form in which a configured secret could show up in a message: the value, stripped,
    escaped as Python shows it, URL-quoted; for a URL also its path, query and longer path parts
    (an HTTP library's error may quote only the path). Longest first, so that a part never
    replaces the start of a longer form."""
    found: set[str] = set()
    for section, key in SECRETS:
        value = str(settings.values.get(section, {}).get(key) or "")
        if not value.strip():
            continue
        forms = {value, value.strip(), repr(value)[1:-1], urllib.parse.quote(value, safe=""),
                 urllib.parse.quote(value), str(value.encode("utf-8", "replace"))[2:-1]}
        try:
            parts = urllib.parse.urlsplit(value.strip())
        except ValueError:
            parts = None
        if parts is not None and (parts.path or parts.query):
            forms |= {parts.path, parts.query, parts.path + ("?" + parts.query if parts.query else "")}
            forms |= {segment for segment in re.split(r"[/?&=#]", parts.path + "/" + parts.query) if len(segment) >= 8}
            if parts.password:
                forms.add(parts.password)
        found |= {f for f in forms if len(f.strip()) >= 4}
    return sorted(found, key=len, reverse=True)


def redact(text: object, settings: Settings) -> str:
    """The text with every secret of the settings replaced by ***."""
    out = str(text)
    for value in secret_values(settings):
        out = out.replace(value, "***")
    return out


def pipeline_text(settings: Settings, result, rows_in: int, rows_quarantined: int, models: int) -> str:
    url = settings.get("dashboard", "url") or f"http://localhost:{settings.get('dashboard', 'port')}/"
    lines = [
        f"loanwatch build {result.build_id}: {result.status}" + (", snapshot published" if result.published else ", snapshot NOT published"),
        f"data date: {result.data_date or '-'}",
        f"tables refreshed: {models}",
        f"rows in since the previous build: {rows_in:,}; quarantined: {rows_quarantined:,}",
    ]
    lines += [f"failing check: {e}" for e in result.errors[:10]]
    lines += [f"warning: {w}" for w in result.warnings[:10]]
    lines.append(f"dashboard: {url}")
    return "\n".join(lines)


class SlackFailed(Problem):
    """A post to the Slack webhook did not go; the message never quotes the webhook URL."""


def _slack_error(exc: BaseException) -> str:
    """Why a post failed, in loanwatch's words: an HTTP library's own message quotes the URL
    (the secret), so it is never shown."""
    from slack_sdk.errors import SlackRequestError

    if isinstance(exc, (SlackRequestError, ValueError)):  # http.client.InvalidURL is a ValueError
        return ("LOANWATCH_SLACK__WEBHOOK_URL is not a valid https:// URL (a missing scheme, a space or a line "
                "break); correct it")
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"no answer within {SLACK_TIMEOUT} s"
    if isinstance(exc, ssl.SSLError):
        return "the TLS handshake failed (certificate or protocol)"
    if isinstance(exc, socket.gaierror):
        return "its host name does not resolve"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return f"{type(exc).__name__} while posting"


def post_to_slack(settings: Settings, text: str) -> bool:
    """Post to the [slack] webhook (from the environment): True when posted, False when no webhook
    is set. A post that fails raises SlackFailed, whose message never holds the URL. A 429 (rate
    limited) is retried once, after its Retry-After (up to SLACK_MAX_RETRY_AFTER seconds)."""
    url = settings.get("slack", "webhook_url")
    if not url:
        return False
    from slack_sdk.webhook import WebhookClient

    # retry_handlers=[]: the 429 and connection retries are decided here, where they can be told
    client = WebhookClient(url, timeout=SLACK_TIMEOUT, logger=_QUIET, retry_handlers=[])
    waited = None
    while True:
        try:
            response = client.send(text=text)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one safe line
            raise SlackFailed(f"the post to Slack failed: {_slack_error(exc)}") from None
        if response.status_code == 200:
            return True
        if response.status_code == 429 and waited is None:
            from loanwatch.notify.send import retry_after_seconds

            wait = retry_after_seconds(response.headers)
            wait = 1.0 if wait is None else wait
            if wait <= SLACK_MAX_RETRY_AFTER:
                time.sleep(wait)
                waited = wait
                continue
            raise SlackFailed(f"the post to Slack was dropped: Slack answered 429 (rate limited) and asks to wait "
                              f"{wait:g} s, more than {SLACK_MAX_RETRY_AFTER:g} s")
        body = str(response.body or "").strip()
        # Slack's error bodies are short codes (invalid_token, no_service); any other body (a proxy's
        # page) may quote the URL, so it is left out
        said = f" ({body})" if re.fullmatch(r"[a-z_]{1,40}", body) else ""
        again = f" again after waiting {waited:g} s (its Retry-After)" if waited is not None else ""
        raise SlackFailed(f"the post to Slack failed: Slack answered {response.status_code}{said}{again}")


def tell_slack(settings: Settings, text: str) -> None:
    """A courtesy post (a failed run, a failed scheduled run): nothing when no webhook is set, and a
    warning on standard error, never an exception, when the post fails."""
    if not settings.get("slack", "webhook_url"):
        return
    try:
        post_to_slack(settings, redact(text, settings))
    except Exception as exc:  # noqa: BLE001 - the caller's own record and exit code say what happened
        print(f"warning: telling Slack failed: {redact(exc, settings)}", file=sys.stderr)


class MailFailed(Problem):
    """An internal email could not be sent; the line names the server and the cause."""


def send_email(settings: Settings, to: str, subject: str, text: str, message_id: str | None = None,
               timeout: float | None = None) -> None:
    s = settings.section("smtp")
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = s["sender"], to, subject
    if message_id:
        msg["Message-ID"] = message_id
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg.set_content(text)
    wait = min(float(s["timeout"]), float(timeout)) if timeout else float(s["timeout"])
    server = f"{s['host']}:{s['port']}"
    try:
        with smtplib.SMTP(s["host"], int(s["port"]), timeout=wait) as conn:
            if s["starttls"]:
                conn.starttls(context=ssl.create_default_context(cafile=s.get("tls_ca_file") or None))
            if s["user"]:
                conn.login(s["user"], s["password"])
            conn.send_message(msg)
    except smtplib.SMTPResponseException as exc:
        said = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        raise MailFailed(redact(f"mail server {server} answered {exc.smtp_code} {said.strip()} (email to {to}); "
                                "check [smtp] and try again", settings)) from None
    except Exception as exc:  # noqa: BLE001 - a refused connection, a silent server, a login that cannot be encoded
        if isinstance(exc, (TimeoutError, socket.timeout)) or "timed out" in str(exc):
            cause = f"no answer within {wait:g} s"
        elif isinstance(exc, UnicodeError):
            cause = "a setting holds characters the login cannot carry (not ASCII): check [smtp] user and password"
        elif isinstance(exc, OSError) and exc.strerror:
            cause = exc.strerror.lower()
        else:
            cause = str(exc) or type(exc).__name__
        raise MailFailed(redact(f"mail server {server}: {cause} (email to {to}); check [smtp] host and port, "
                                "then try again", settings)) from None


def _figure(value, share: bool) -> str:
    return "-" if value is None else (f"{value:.2%}" if share else f"{value:,}")


def weekly_text(table: Table) -> str:
    width = max(len(str(r[0])) for r in table.rows)
    lines = [f"{'':{width}}  {table.columns[1]:>22}  {table.columns[2]:>22}"]
    for name, this, previous in table.rows:
        share = name in ("paid_on_time_share", "overdue_share", "par30")
        lines.append(f"{name.replace('_', ' '):{width}}  {_figure(this, share):>22}  {_figure(previous, share):>22}")
    return "\n".join(lines)


def iso_week(day: dt.date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def weekly_due(settings: Settings, day: dt.date) -> bool:
    """Is a weekly summary to [notify] management_to still to go for the ISO week of `day`? (A run
    with nothing new on the weekly day sends it when an earlier run of the day failed to.)"""
    from loanwatch.notify import outbox

    recipient = settings.get("notify", "management_to")
    if not recipient or not (settings.home / "notify.duckdb").exists():
        return bool(recipient)
    with outbox.opened(settings) as ob:
        return not ob.execute("SELECT 1 FROM summaries WHERE summary_id = ?",
                              [f"weekly:{iso_week(day)}:{recipient}"]).fetchall()


def weekly_summary(settings: Settings, date=None, to: str | None = None, today: dt.date | None = None) -> tuple[Table, str, str]:
    """The weekly summary ending at `date` (default: the data date), emailed to `to` or
    [notify] management_to when either is set; returns the table, the recipient ('' when none)
    and why it was not sent ('' when it was, or when there is no recipient).

    One email per ISO week and recipient, however many runs fall on the weekly day: the outbox
    keeps the summaries sent, and a repeat is not sent. The week is that of `date` when given,
    else of `today` (the run's day; default: today, UTC), never of the data date, which moves
    between runs of one day as files arrive."""
    from loanwatch import reports
    from loanwatch.notify import outbox
    from loanwatch.serve import open_snapshot

    con = open_snapshot(settings)
    try:
        table = reports.weekly(con, date)
    finally:
        con.close()
    recipient = to or settings.get("notify", "management_to")
    if not recipient:
        return table, recipient, ""
    end = dt.date.fromisoformat(table.columns[1].removeprefix("week_to_"))
    week = iso_week(date if date is not None else (today or dt.datetime.now(dt.UTC).date()))
    key = f"weekly:{week}:{recipient}"
    with outbox.opened(settings) as ob:
        earlier = ob.execute("SELECT sent_at FROM summaries WHERE summary_id = ?", [key]).fetchall()
        if earlier:
            return table, recipient, (f"the weekly summary for {week} went to {recipient} at "
                                      f"{earlier[0][0]:%Y-%m-%d %H:%M} UTC: not sent again (one a week)")
        # the Message-ID follows the key, so a repeat after a crash is recognisable downstream
        from loanwatch.notify.send import message_id_header

        send_email(settings, recipient, f"loanwatch weekly summary, {end}", weekly_text(table),
                   message_id=message_id_header(key),
                   timeout=float(settings.get("notify", "send_deadline_seconds")))
        ob.execute("INSERT INTO summaries VALUES (?, ?, ?, ?)",
                   [key, week, recipient, dt.datetime.now(dt.UTC).replace(tzinfo=None)])
    return table, recipient, ""
