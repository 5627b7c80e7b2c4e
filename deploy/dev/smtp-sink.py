#!/usr/bin/python3
"""An SMTP server for trials and tests of alertd, built on aiosmtpd (Debian's python3-aiosmtpd).

Listens on 127.0.0.1 (a free port unless --port is given), prints "listening on <port>" as its
first line, and appends every message it accepts to --log as one JSON object per line:
{"time", "mail_from", "rcpt_tos", "data", "tls", "auth_user"}.

  --reject ADDRESS    answer RCPT TO for this address with 550 (repeatable)
  --tempfail ADDRESS  answer RCPT TO for this address with 451 (repeatable)
  --cert/--key        offer STARTTLS with this certificate, and require it before MAIL
  --auth USER:PASS    require AUTH (PLAIN or LOGIN) with these credentials, only over TLS
"""
import argparse
import json
import signal
import socket
import ssl
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    def __init__(self, log_path, reject, tempfail):
        self.log_path = log_path
        self.reject = set(reject)
        self.tempfail = set(tempfail)
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject:
            return "550 5.1.1 No such user here"
        if address in self.tempfail:
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        user = getattr(session, "alertd_user", None)
        with self.lock, open(self.log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps({
                "time": time.time(),
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "data": envelope.content.decode("utf-8", errors="replace"),
                "tls": session.ssl is not None,
                "auth_user": user,
            }) + "\n")
        return "250 2.0.0 Message accepted"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", required=True)
    parser.add_argument("--reject", action="append", default=[])
    parser.add_argument("--tempfail", action="append", default=[])
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--auth")
    args = parser.parse_args()
    # A parent may start us with signals blocked (the mask survives exec): unblock them.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})

    port = args.port
    if port == 0:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()

    options = {}
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        options.update(tls_context=context, require_starttls=True)
    if args.auth:
        user, _, password = args.auth.partition(":")

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
            if ok:
                session.alertd_user = user
            return AuthResult(success=ok, handled=False)

        options.update(authenticator=authenticator, auth_required=True, auth_require_tls=True)

    handler = Handler(args.log, args.reject, args.tempfail)
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="localhost", **options)
    controller.start()
    print(f"listening on {port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    sys.exit(main())
