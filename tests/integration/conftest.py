"""Fixtures of the integration tier: a local SMTP server and SMS gateway that receive what
loanwatch sends (tests never reach the internet)."""

from __future__ import annotations

import email
import json
import socket
import threading
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    def __init__(self, delay: float = 0.0):
        self.messages: list[email.message.EmailMessage] = []
        self.delay = delay
        self.connections = 0
        self.tls = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if not getattr(session, "counted", False):
            session.counted = True
            self.connections += 1
        return responses

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            import asyncio
            await asyncio.sleep(self.delay)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        self.tls.append(session.ssl is not None)
        return "250 OK"


@pytest.fixture()
def smtp():
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_port())
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


@pytest.fixture()
def gateway():
    """A local SMS gateway: it answers 503 to the first fail_first["n"] posts, 400 to the
    numbers in `refuse`, and answer["code"] to every post while it is set (401: a token refused)."""
    received, fail_first, refuse, answer = [], {"n": 0}, set(), {"code": None}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if answer["code"]:
                self.send_response(answer["code"])
                self.end_headers()
                return
            if body.get("to") in refuse:
                self.send_response(400)
                self.end_headers()
                return
            if fail_first["n"] > 0:
                fail_first["n"] -= 1
                self.send_response(503)
                self.end_headers()
                return
            received.append({"body": body, "auth": self.headers.get("Authorization"),
                             "key": self.headers.get("Idempotency-Key")})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.received, server.fail_first, server.refuse, server.answer = received, fail_first, refuse, answer
    server.url = f"http://127.0.0.1:{server.server_address[1]}/sms"
    yield server
    server.shutdown()


