"""No secret in any output, log, history or file: the SMTP password, the Slack webhook URL and the
SMS token are set, every channel fails in one of several shapes (a malformed setting, a refused
connection, a 4xx, a 5xx from servers that echo the request back), and every output loanwatch
gives (stdout and stderr of each command, the run history, the outbox listing) and every file
under the home is searched for each secret."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loanwatch.config import load_settings
from loanwatch.notify import outbox
from tests.conftest import GOLDEN, cli, run_cli
from tests.integration.conftest import Inbox, _port
from tests.integration.test_notify_reliability import ALL_DAY, serving

pytestmark = pytest.mark.integration

PASSWORD = "pw-Zq81-SECRET-smtp"
TOKEN = "tok-Hh55-SECRET-sms"
HOOK = "/services/T0SECRET1/B0SECRET2/XsecretWEBHOOK3"
NEEDLES = [PASSWORD, TOKEN, HOOK, "T0SECRET1", "B0SECRET2", "XsecretWEBHOOK3"]


class Echo:
    """An HTTP server that answers every POST with `status` and a body that quotes the request
    back (its path and its Authorization header), as a careless proxy's error page would."""

    def __init__(self, status: int):
        self.posts = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.posts.append(self.path)
                body = f"error at {self.path} for {self.headers.get('Authorization')}".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()


def _authenticator(code: str | None):
    from aiosmtpd.smtp import AuthResult

    def check(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=False, handled=False, message=code)  # code None: 535

    return check


SHAPES = {
    # no scheme; a line break in the token (the HTTP library refuses the header, quoting it);
    # a password the login cannot encode
    "malformed": dict(slack="hooks.slack.example" + HOOK, sms_status=200, token=TOKEN + "\r\nX-Extra: 1",
                      password=PASSWORD + "ü", smtp_code=None),
    "refused": dict(slack=None, sms_status=None, token=TOKEN, password=PASSWORD, smtp_code="refused"),
    "4xx": dict(slack=403, sms_status=401, token=TOKEN, password=PASSWORD, smtp_code="454 4.7.0 Temporary authentication failure"),
    "5xx": dict(slack=500, sms_status=503, token=TOKEN, password=PASSWORD, smtp_code=None),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_no_secret_in_any_output_history_or_file(notify_home, tmp_path, shape):
    spec = SHAPES[shape]
    home = tmp_path / "home"
    shutil.copytree(notify_home, home, ignore=shutil.ignore_patterns("*.lock", "notify.duckdb*", "call_queue"))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for source in (GOLDEN, GOLDEN.parent / "notify_extra"):
        for f in source.glob("*.jsonl"):
            shutil.copy(f, inbox)
    servers = []
    if isinstance(spec["slack"], int):
        slack = Echo(spec["slack"])
        servers.append(slack)
        webhook = slack.base + HOOK
    else:
        slack = None
        webhook = spec["slack"] or f"http://127.0.0.1:{_port()}{HOOK}"
    if spec["sms_status"]:
        gateway = Echo(spec["sms_status"])
        servers.append(gateway)
        sms_url = gateway.base + "/sms"
    else:
        gateway, sms_url = None, f"http://127.0.0.1:{_port()}/sms"
    outputs: list[str] = []
    try:
        with serving(Inbox(), auth_require_tls=False, authenticator=_authenticator(spec["smtp_code"])) as smtp:
            smtp_port = _port() if spec["smtp_code"] == "refused" else smtp.port
            env = {**ALL_DAY, "LOANWATCH_NOTIFY__HOLDOUT_SHARE": "0", "LOANWATCH_NOTIFY__MAX_ATTEMPTS": "1",
                   "LOANWATCH_RUN__NOTIFY": "true", "LOANWATCH_SMTP__HOST": "127.0.0.1",
                   "LOANWATCH_SMTP__PORT": str(smtp_port), "LOANWATCH_SMTP__USER": "loanwatch",
                   "LOANWATCH_SMTP__PASSWORD": spec["password"], "LOANWATCH_SMS__URL": sms_url,
                   "LOANWATCH_SMS__TOKEN": spec["token"], "LOANWATCH_SLACK__WEBHOOK_URL": webhook}

            def run(*args, code: int | None = None, process: bool = False):
                if process:
                    result = run_cli("--home", home, *args, env=env)
                    outputs.extend([result.stdout, result.stderr])
                    got = result.returncode
                else:
                    result = cli(*args, home=home, env=env)
                    outputs.extend([result.stdout, result.stderr])
                    got = result.exit_code
                if code is not None:
                    assert got == code, f"{args}: exit {got}\n{outputs[-2]}\n{outputs[-1]}"
                return result

            run("notify", "send", "--date", "2024-04-11", code=1)  # C4's SMS
            run("notify", "send", "--date", "2024-05-31", code=1)  # C3's email
            run("notify", "weekly", "--date", "2024-05-31", "--to", "cfo@example.com", code=1)
            # put the failed messages back: the run finds them pending, sends, fails, tells Slack
            con = outbox.connect(load_settings(home, environ={}))
            con.execute("UPDATE messages SET status = 'pending', attempts = 0, next_attempt_at = NULL WHERE status = 'failed'")
            con.close()
            run("run", "--inbox", inbox, "--date", "2024-05-31", code=5)
            if shape == "malformed":  # a whole process, as cron runs it: the build's report to Slack
                run("build", code=0, process=True)
            for args in (["runs"], ["runs", "--format", "json"], ["runs", "1"], ["outbox"], ["outbox", "-f", "json"]):
                run(*args, code=0)
    finally:
        for server in servers:
            server.close()

    text = "\n".join(outputs)
    # each shape did fail as meant, and said so
    said = {"malformed": ["not a valid https:// URL", "not ASCII"], "refused": ["connection refused"],
            "4xx": ["Slack answered 403", "401", "454"], "5xx": ["Slack answered 500", "503", "535"]}[shape]
    for words in said:
        assert words in text, words
    if slack is not None:
        assert slack.posts, "Slack was never asked"
    for needle in NEEDLES:
        assert needle not in text, f"{needle!r} in the output:\n{text}"
        for path in home.rglob("*"):
            if path.is_file():
                assert needle.encode() not in path.read_bytes(), f"{needle!r} in {path}"
    # and the run history really was read (not an empty table)
    history = json.loads(cli("runs", "--format", "json", home=home).stdout)
    assert history[0]["status"] == "failed" and history[0]["exit_code"] == 5
