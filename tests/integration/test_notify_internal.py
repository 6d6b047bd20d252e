"""Internal messages: the pipeline report reaches a (local) Slack webhook after a build; the
weekly summary has hand-computed figures and reaches a (local) SMTP server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import GOLDEN, cli
from tests.integration.test_notify_send import Inbox, _port

pytestmark = pytest.mark.integration


@pytest.fixture()
def webhook():
    posts = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.posts = posts
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T000/B000"
    yield server
    server.shutdown()


def test_pipeline_report_to_slack_after_build(tmp_path, webhook, monkeypatch):
    monkeypatch.setenv("LOANWATCH_SLACK__WEBHOOK_URL", webhook.url)
    home = tmp_path / "home"
    assert cli("ingest", str(GOLDEN), home=home).exit_code == 0
    assert cli("build", home=home).exit_code == 0
    assert len(webhook.posts) == 1
    text = webhook.posts[0]["text"]
    # 6 client, 13 loan, 16 payment, 1 call and 1 merchant records were loaded, none quarantined
    assert "loanwatch build 1: success, snapshot published" in text
    assert "data date: 2024-06-30" in text
    records = sum(len(f.read_text().splitlines()) for f in GOLDEN.glob("*.jsonl"))  # every record of the fixture
    assert f"rows in since the previous build: {records}; quarantined: 0" in text
    assert "warning: check warn_source_status_mismatch warns (4 rows)" in text


def test_weekly_summary_by_email(golden, monkeypatch):
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_port())
    controller.start()
    monkeypatch.setenv("LOANWATCH_SMTP__PORT", str(controller.port))
    monkeypatch.setenv("LOANWATCH_SMTP__HOST", "127.0.0.1")
    try:
        result = cli("notify", "weekly", "--date", "2024-04-30", "--to", "cfo@example.com", "-f", "json", home=golden.home)
    finally:
        controller.stop()
    assert result.exit_code == 0
    rows = {r["figure"]: (r["week_to_2024-04-30"], r["week_to_2024-04-23"]) for r in json.loads(result.stdout.split("\n", 1)[1])}
    assert rows["loans_issued"] == (0, 0)
    assert rows["amount_repaid"] == (340.03, 0.0)  # P03 on 04-30
    assert rows["paid_on_time_share"] == (1.0, 1.0)  # L01's 04-30 paid that day; L05's 04-20 prepaid
    assert rows["new_defaults"] == (0, 0)
    assert rows["overdue_share"] == (0.8, 0.666667)  # 4 of 5 active; at 04-23, 4 of 6
    assert rows["par30"] == (0.138889, 0.124353)  # L08 400 / 2880; 400 / 3216.66
    assert len(inbox.messages) == 1 and inbox.messages[0]["To"] == "cfo@example.com"
    assert "overdue share" in inbox.messages[0].get_content()
