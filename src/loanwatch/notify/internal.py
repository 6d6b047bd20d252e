"""Internal messages: the pipeline report to Slack after each build, and the weekly management
summary by email. Figures come from `loanwatch.reports`, like everything else."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from loanwatch.config import Settings
from loanwatch.reports import Table


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


def post_to_slack(settings: Settings, text: str) -> bool:
    """Post to the [slack] webhook (from the environment); False when none is set or it fails."""
    url = settings.get("slack", "webhook_url")
    if not url:
        return False
    from slack_sdk.webhook import WebhookClient

    response = WebhookClient(url, timeout=15).send(text=text)
    return response.status_code == 200


def tell_slack(settings: Settings, text: str) -> None:
    """A courtesy post (a failed run, a failed scheduled run): nothing when no webhook is set, and a
    warning on standard error, never an exception, when the post fails."""
    if not settings.get("slack", "webhook_url"):
        return
    try:
        post_to_slack(settings, text)
    except Exception as exc:  # noqa: BLE001 - the caller's own record and exit code say what happened
        import sys

        print(f"warning: telling Slack failed: {exc}", file=sys.stderr)


def send_email(settings: Settings, to: str, subject: str, text: str) -> None:
    s = settings.section("smtp")
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = s["sender"], to, subject
    msg.set_content(text)
    with smtplib.SMTP(s["host"], int(s["port"]), timeout=float(s["timeout"])) as conn:
        if s["starttls"]:
            conn.starttls(context=ssl.create_default_context(cafile=s.get("tls_ca_file") or None))
        if s["user"]:
            conn.login(s["user"], s["password"])
        conn.send_message(msg)


def _figure(value, share: bool) -> str:
    return "-" if value is None else (f"{value:.2%}" if share else f"{value:,}")


def weekly_text(table: Table) -> str:
    width = max(len(str(r[0])) for r in table.rows)
    lines = [f"{'':{width}}  {table.columns[1]:>22}  {table.columns[2]:>22}"]
    for name, this, previous in table.rows:
        share = name in ("paid_on_time_share", "overdue_share", "par30")
        lines.append(f"{name.replace('_', ' '):{width}}  {_figure(this, share):>22}  {_figure(previous, share):>22}")
    return "\n".join(lines)


def weekly_summary(settings: Settings, date=None, to: str | None = None) -> tuple[Table, str]:
    """The weekly summary ending at `date` (default: the data date), emailed to `to` or
    [notify] management_to when either is set; returns the table and the recipient ('' when none)."""
    from loanwatch import reports
    from loanwatch.serve import open_snapshot

    con = open_snapshot(settings)
    try:
        table = reports.weekly(con, date)
    finally:
        con.close()
    recipient = to or settings.get("notify", "management_to")
    if recipient:
        send_email(settings, recipient, f"loanwatch weekly summary, {table.columns[1].removeprefix('week_to_')}", weekly_text(table))
    return table, recipient
