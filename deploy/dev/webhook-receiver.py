#!/usr/bin/python3
"""A webhook receiver for trials and tests of alertd.

Listens on 127.0.0.1 (or --host; a free port unless --port is given), prints "listening on <port>" as its
first line, and appends every request it receives to --log as one JSON object per line:
{"time": ..., "method": ..., "path": ..., "headers": {...}, "body": "..."}.

How it answers is chosen by the request path:
  /codes/503,503,200/<name>   the n-th request to this exact path gets the n-th code; the last repeats
  /sleep/<seconds>/<name>     waits, then answers 200
  anything else               200
A "retry_after" query parameter adds that Retry-After header to every answer that is not 2xx.
With --status CODE every request, whatever its path, gets CODE: a receiver that is up and failing
(an outage that still answers, so that what reaches it can be counted).

With --cert and --key it serves https instead of http.

With --secret whsec_... (repeatable), each logged request also says whether its Standard Webhooks
signature verifies with each secret ("signatures_valid", in the order given) and with all of them
("signature_valid"), checked here independently of alertd.
"""
import argparse
import base64
import hashlib
import hmac
import json
import signal
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

counts = {}
lock = threading.Lock()


def signatures_valid(secrets, headers, body):
    """For each secret, whether the request verifies with it (None without secrets)."""
    if not secrets:
        return None
    return [signature_valid(secret, headers, body) for secret in secrets]


def signature_valid(secret, headers, body):
    """The Standard Webhooks check: any v1 signature equal to HMAC-SHA256 of id.timestamp.body."""
    key = base64.b64decode(secret[len("whsec_"):])
    signed = f"{headers.get('webhook-id', '')}.{headers.get('webhook-timestamp', '')}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in headers.get("webhook-signature", "").split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm holds the
        # body until the client's delayed ACK, about 40 ms per request.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        valid = signatures_valid(self.server.secrets, {k.lower(): v for k, v in self.headers.items()}, body)
        with lock:
            counts[url.path] = counts.get(url.path, 0) + 1
            n = counts[url.path]
            with open(self.server.log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps({
                    "time": time.time(),
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode("utf-8", errors="replace"),
                    "signature_valid": None if valid is None else all(valid),
                    "signatures_valid": valid,
                }) + "\n")
        status = 200
        if self.server.status:
            status = self.server.status
        elif len(parts) >= 2 and parts[0] == "codes":
            codes = [int(c) for c in parts[1].split(",")]
            status = codes[min(n, len(codes)) - 1]
        elif len(parts) >= 2 and parts[0] == "sleep":
            time.sleep(float(parts[1]))
        reply = json.dumps({"received": n}).encode()
        self.send_response(status)
        retry_after = parse_qs(url.query).get("retry_after")
        if retry_after and not 200 <= status < 300:
            self.send_header("Retry-After", retry_after[0])
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


class Server(ThreadingHTTPServer):
    def __init__(self, address, handler):
        # An IPv6 address such as ::1 needs an IPv6 socket.
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def handle_error(self, request, client_address):
        # A client that goes away mid-request (alertd killed by a fault test) is not news.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", required=True, help="file to append requests to (/dev/stdout in a container)")
    parser.add_argument("--secret", action="append", default=[], help="whsec_ secret to verify signatures with (repeatable: each is checked)")
    parser.add_argument("--status", type=int, default=None, help="answer every request with this status")
    parser.add_argument("--cert", help="serve https with this certificate")
    parser.add_argument("--key", help="the certificate's key")
    args = parser.parse_args()
    # A parent may start us with signals blocked (threads of a Swift process block them, and the
    # mask survives exec): unblock them so that SIGTERM and Ctrl-C stop the receiver.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    server = Server((args.host, args.port), Handler)
    server.daemon_threads = True
    server.log_path = args.log
    server.secrets = args.secret
    server.status = args.status
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
