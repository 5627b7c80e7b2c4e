#!/usr/bin/python3
"""A stand-in for a chat service's incoming webhooks, for alertd's tests: it checks each request
the way the service documents it, and answers the way the service does.

  --service slack   Slack incoming webhooks (api.slack.com/messaging/webhooks, Block Kit
                    reference): POST, Content-Type application/json, a JSON object with "text"
                    or "blocks"; at most 50 blocks of known types; a header's plain_text at most
                    150 characters; a section's text at most 3,000, its fields at most 10 of at
                    most 2,000; a context at most 10 elements; a button's text at most 75, its URL
                    at most 3,000; mrkdwn text escaped (no bare <, > or & outside an entity).
                    Answers 200 "ok", or 400 "invalid_payload" / "invalid_blocks" with the reason
                    in the log. Paths: /services/archived/... 410 "channel_is_archived",
                    /services/revoked/... 404 "no_service", /services/prohibited/... 403
                    "action_prohibited", /services/limited/... 429 with Retry-After: 1 (then ok).

  --service discord Discord webhooks (discord.com/developers/docs/resources/webhook, the message
                    and embed limits): POST, Content-Type application/json, "content" or
                    "embeds"; content at most 2,000 characters; at most 10 embeds, each a title of
                    at most 256, a description of 4,096, at most 25 fields of name 256 and value
                    1,024 (neither empty), a footer of 2,048, a colour 0 to 0xFFFFFF, and 6,000 in
                    all; no text that would ping (@everyone, @here, <@...>) unless
                    allowed_mentions says {"parse": []}, and none at all of @everyone or @here.
                    Answers 204, or 400 {"code": 50035, "message": "Invalid Form Body"}. Paths:
                    /api/webhooks/unknown/... 404 {"code": 10015, "message": "Unknown Webhook"},
                    /api/webhooks/limited/... 429 {"retry_after": 0.5, ...} once (then 204).

Listens on 127.0.0.1 (a free port unless --port), prints "listening on <port>" first, and appends
each request to --log as a JSON line: time, method, path, headers, body, and "problems" (the
service's rules the request broke; empty when it would be accepted).
"""
import argparse
import json
import re
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
limited = set()

ENTITY = re.compile(r"&(amp|lt|gt);")


def utf16_length(text):
    return len(text.encode("utf-16-le")) // 2


def mrkdwn_problems(where, text):
    problems = []
    if "<" in text or ">" in text:
        problems.append(f"{where}: unescaped < or > in mrkdwn text (Slack reads them as links or mentions)")
    if "&" in ENTITY.sub("", text):
        problems.append(f"{where}: unescaped & in mrkdwn text")
    return problems


def text_object(where, obj, limit, kinds=("plain_text", "mrkdwn")):
    if not isinstance(obj, dict) or obj.get("type") not in kinds or not isinstance(obj.get("text"), str):
        return [f"{where}: not a text object of type {'/'.join(kinds)}"]
    problems = []
    if not obj["text"]:
        problems.append(f"{where}: empty text")
    if utf16_length(obj["text"]) > limit:
        problems.append(f"{where}: {utf16_length(obj['text'])} characters, more than {limit}")
    if obj["type"] == "mrkdwn":
        problems += mrkdwn_problems(where, obj["text"])
    return problems


def slack_problems(headers, body):
    if headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return ["Content-Type is not application/json"]
    try:
        payload = json.loads(body)
    except ValueError:
        return ["the body is not JSON"]
    if not isinstance(payload, dict):
        return ["the body is not a JSON object"]
    problems = []
    if not payload.get("text") and not payload.get("blocks"):
        problems.append("neither text nor blocks")
    if "text" in payload:
        if not isinstance(payload["text"], str):
            problems.append("text is not a string")
        else:
            problems += mrkdwn_problems("text", payload["text"])
    blocks = payload.get("blocks", [])
    if not isinstance(blocks, list) or len(blocks) > 50:
        return problems + ["blocks is not a list of at most 50"]
    for index, block in enumerate(blocks):
        where = f"blocks[{index}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "header":
            problems += text_object(where + ".text", block.get("text"), 150, ("plain_text",))
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(where + ": a section needs text or fields")
            if "text" in block:
                problems += text_object(where + ".text", block["text"], 3000)
            if "fields" in block:
                fields = block["fields"]
                if not isinstance(fields, list) or not 1 <= len(fields) <= 10:
                    problems.append(where + ".fields: not 1 to 10 fields")
                else:
                    for n, field in enumerate(fields):
                        problems += text_object(f"{where}.fields[{n}]", field, 2000)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
                problems.append(where + ".elements: not 1 to 10 elements")
            else:
                for n, element in enumerate(elements):
                    problems += text_object(f"{where}.elements[{n}]", element, 3000)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
                problems.append(where + ".elements: not 1 to 25 elements")
            else:
                for n, element in enumerate(elements):
                    if element.get("type") != "button":
                        problems.append(f"{where}.elements[{n}]: not a button")
                        continue
                    problems += text_object(f"{where}.elements[{n}].text", element.get("text"), 75, ("plain_text",))
                    url = element.get("url", "")
                    if not isinstance(url, str) or utf16_length(url) > 3000 or not re.match(r"^https?://", url):
                        problems.append(f"{where}.elements[{n}].url: not an http(s) URL of at most 3000 characters")
        elif kind == "divider":
            pass
        else:
            problems.append(f"{where}: unknown block type {kind!r}")
    return problems


def discord_problems(headers, body):
    if headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return ["Content-Type is not application/json"]
    try:
        payload = json.loads(body)
    except ValueError:
        return ["the body is not JSON"]
    if not isinstance(payload, dict):
        return ["the body is not a JSON object"]
    problems = []
    content = payload.get("content", "")
    embeds = payload.get("embeds", [])
    if not content and not embeds:
        problems.append("neither content nor embeds")
    if not isinstance(content, str) or len(content) > 2000:
        problems.append("content is not a string of at most 2000 characters")
    if not isinstance(embeds, list) or len(embeds) > 10:
        return problems + ["embeds is not a list of at most 10"]
    texts = [content] if isinstance(content, str) else []
    total = 0
    for index, embed in enumerate(embeds):
        where = f"embeds[{index}]"
        for key, limit in (("title", 256), ("description", 4096)):
            value = embed.get(key, "")
            if not isinstance(value, str) or len(value) > limit:
                problems.append(f"{where}.{key}: not a string of at most {limit} characters")
            else:
                total += len(value)
                texts.append(value)
        color = embed.get("color", 0)
        if not isinstance(color, int) or not 0 <= color <= 0xFFFFFF:
            problems.append(f"{where}.color: not 0 to 0xFFFFFF")
        if "url" in embed and not re.match(r"^https?://", str(embed["url"])):
            problems.append(f"{where}.url: not an http(s) URL")
        fields = embed.get("fields", [])
        if not isinstance(fields, list) or len(fields) > 25:
            problems.append(f"{where}.fields: not a list of at most 25")
            fields = []
        for n, field in enumerate(fields):
            name, value = field.get("name"), field.get("value")
            if not isinstance(name, str) or not name or len(name) > 256:
                problems.append(f"{where}.fields[{n}].name: empty or longer than 256")
            if not isinstance(value, str) or not value or len(value) > 1024:
                problems.append(f"{where}.fields[{n}].value: empty or longer than 1024")
            if isinstance(name, str) and isinstance(value, str):
                total += len(name) + len(value)
                texts += [name, value]
        footer = (embed.get("footer") or {}).get("text", "")
        if not isinstance(footer, str) or len(footer) > 2048:
            problems.append(f"{where}.footer.text: longer than 2048")
        else:
            total += len(footer)
            texts.append(footer)
    if total > 6000:
        problems.append(f"the embeds hold {total} characters, more than 6000")
    allowed = payload.get("allowed_mentions")
    silenced = isinstance(allowed, dict) and allowed.get("parse") == [] and not allowed.get("users") and not allowed.get("roles")
    for text in texts:
        if "@everyone" in text or "@here" in text:
            problems.append("a text holds @everyone or @here")
        if not silenced and re.search(r"<@[!&]?[0-9]+>", text):
            problems.append("a text mentions a user or role, and allowed_mentions does not silence it")
    return problems


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.server.service == "discord":
            status, reply, extra, problems = self.discord(headers, body)
        else:
            status, reply, extra, problems = self.slack(headers, body)
        with lock:
            with open(self.server.log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps({
                    "time": time.time(), "method": self.command, "path": self.path, "headers": headers,
                    "body": body.decode("utf-8", errors="replace"), "problems": problems, "status": status,
                }) + "\n")
        data = reply.encode()
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json" if self.server.service == "discord" else "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def limited_once(self):
        with lock:
            first = self.path not in limited
            limited.add(self.path)
        return first

    def discord(self, headers, body):
        problems = discord_problems(headers, body)
        if self.path.startswith("/api/webhooks/unknown/"):
            return 404, json.dumps({"message": "Unknown Webhook", "code": 10015}), {}, problems
        if problems:
            return 400, json.dumps({"message": "Invalid Form Body", "code": 50035}), {}, problems
        if self.path.startswith("/api/webhooks/limited/") and self.limited_once():
            return 429, json.dumps({"message": "You are being rate limited.", "retry_after": 0.5, "global": False}), {"Retry-After": "1"}, problems
        return 204, "", {}, problems

    def slack(self, headers, body):
        problems = slack_problems(headers, body)
        status, reply, extra = 200, "ok", {}
        if self.path.startswith("/services/archived/"):
            status, reply = 410, "channel_is_archived"
        elif self.path.startswith("/services/revoked/"):
            status, reply = 404, "no_service"
        elif self.path.startswith("/services/prohibited/"):
            status, reply = 403, "action_prohibited"
        elif problems:
            status, reply = 400, "invalid_blocks" if any(p.startswith("blocks") for p in problems) else "invalid_payload"
        elif self.path.startswith("/services/limited/") and self.limited_once():
            status, reply, extra = 429, "rate_limited", {"Retry-After": "1"}
        return status, reply, extra, problems


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--service", choices=["slack", "discord"], required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    server = Server(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.log_path = args.log
    server.service = args.service
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
