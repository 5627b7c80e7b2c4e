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

  --service teams   Microsoft Teams through a Workflows webhook ("Post to a channel when a
                    webhook request is received"; learn.microsoft.com, Adaptive Cards reference):
                    POST, Content-Type application/json, {"type": "message", "attachments": [one
                    attachment of contentType application/vnd.microsoft.card.adaptive]}; its
                    content an AdaptiveCard of version 1.0 to 1.5 (what Teams renders) that
                    validates against Microsoft's Adaptive Card JSON schema of that version
                    (fetched by deploy/dev/install-deps.sh; ALERTD_ADAPTIVE_CARD_SCHEMAS names
                    another folder); the message at most 28 KB. Answers 202 with no body, as
                    Power Automate does, even for a card the workflow will fail to post (that
                    failure shows only in the workflow's run history: hence the checks here),
                    and 400 {"error": {"code": "InvalidRequestContent", ...}} for a body that is
                    not JSON. Paths: /workflows/deleted/... 404 {"error": {"code":
                    "WorkflowNotFound", ...}}, /workflows/limited/... 429 with Retry-After: 1 once.

  --service google_chat
                    Google Chat incoming webhooks (developers.google.com/workspace/chat: the
                    Message and Card v2 references): POST, Content-Type application/json, a
                    Message with "text" or "cardsV2"; at most 32,000 bytes; text at most 4,096
                    characters, never a mention of everyone (<users/all>); each card a cardId, a
                    header with a title, sections of 1 to 100 widgets, each widget one of
                    textParagraph, decoratedText, buttonList, divider; card texts use only the
                    HTML Google Chat reads (<b> <i> <u> <s> <br> <font color> <a href>), so a
                    bare < or & is a problem; a button's link http(s). Answers 200 with the
                    created Message, or 400 {"error": {"code": 400, "status":
                    "INVALID_ARGUMENT", ...}}. Paths: /v1/spaces/deleted/... 404 NOT_FOUND,
                    /v1/spaces/limited/... 429 RESOURCE_EXHAUSTED once (no Retry-After, as
                    Google's quota errors come).

Listens on 127.0.0.1 (a free port unless --port), prints "listening on <port>" first, and appends
each request to --log as a JSON line: time, method, path, headers, body, and "problems" (the
service's rules the request broke; empty when it would be accepted).

With --check FILE..., checks each file as a request's body by the service's rules instead, prints
one JSON line per file ({"file": ..., "problems": [...]}) and exits.
"""
import argparse
import json
import os
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


def escaping_problems(where, text, reads, tags=None, entity=ENTITY):
    """A text's < > and & that are neither markup the service reads (`tags`) nor an entity: what
    an unescaped tenant's text would put there."""
    rest = tags.sub("", text) if tags else text
    problems = []
    if "<" in rest or ">" in rest:
        problems.append(f"{where}: unescaped < or > ({reads})")
    if "&" in entity.sub("", rest):
        problems.append(f"{where}: unescaped &")
    return problems


def mrkdwn_problems(where, text):
    return escaping_problems(where, text, "Slack reads them in mrkdwn as links or mentions")


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


def json_body(headers, body):
    """The body as a JSON object, or the problem that stops the checks."""
    if headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return None, ["Content-Type is not application/json"]
    try:
        payload = json.loads(body)
    except ValueError:
        return None, ["the body is not JSON"]
    if not isinstance(payload, dict):
        return None, ["the body is not a JSON object"]
    return payload, []


def slack_problems(headers, body):
    payload, problems = json_body(headers, body)
    if payload is None:
        return problems
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
    payload, problems = json_body(headers, body)
    if payload is None:
        return problems
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


SCHEMAS = os.environ.get("ALERTD_ADAPTIVE_CARD_SCHEMAS") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "alertd", "adaptive-card-schemas")
validators = {}


def card_validator(version):
    """Microsoft's Adaptive Card schema of `version`, as a validator; exits when it is missing (a
    check that cannot run must not pass)."""
    if version not in validators:
        import jsonschema
        path = os.path.join(SCHEMAS, f"schema-{version}.json")
        try:
            with open(path, encoding="utf-8") as f:
                schema = json.load(f)
        except OSError:
            sys.exit(f"chat-receiver: no Adaptive Card schema at {path}: run deploy/dev/install-deps.sh")
        validators[version] = jsonschema.Draft6Validator(schema)
    return validators[version]


def teams_problems(headers, body):
    payload, problems = json_body(headers, body)
    if payload is None:
        return problems
    if len(body) > 28 * 1024:
        problems.append(f"the message is {len(body)} bytes, more than Teams' 28 KB")
    if payload.get("type") != "message":
        problems.append('type is not "message"')
    attachments = payload.get("attachments")
    if not isinstance(attachments, list) or len(attachments) != 1:
        return problems + ["attachments is not a list of one card (the workflow posts attachments[0])"]
    attachment = attachments[0]
    if not isinstance(attachment, dict) or attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
        return problems + ["attachments[0].contentType is not application/vnd.microsoft.card.adaptive"]
    card = attachment.get("content")
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
        return problems + ["attachments[0].content is not an AdaptiveCard"]
    version = card.get("version")
    if version not in ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5"):
        return problems + [f"version {version!r} is not one Teams renders (1.0 to 1.5)"]
    for error in card_validator(version).iter_errors(card):
        # The schema wraps the card in anyOf: the reasons are in the error's context.
        for reason in error.context or [error]:
            where = "/".join(str(p) for p in reason.absolute_path) or "(card)"
            problems.append(f"schema {version}: {where}: {reason.validator}: {reason.message[-200:]}")
    texts = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                texts.append(node.get("text", ""))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(card.get("body", []))
    for text in texts:
        if not isinstance(text, str) or not text:
            problems.append("an empty TextBlock")
    return problems


GOOGLE_TAGS = re.compile(r'</?(b|i|u|s|br)>|<font color="#[0-9a-fA-F]{6}">|</font>|<a href="https?://[^"<>]*">|</a>')
GOOGLE_ENTITY = re.compile(r"&(amp|lt|gt|quot|#[0-9]+);")


def google_text_problems(where, text):
    if not isinstance(text, str) or not text:
        return [f"{where}: empty or not a string"]
    return escaping_problems(where, text, "Google Chat reads only <b> <i> <u> <s> <br> <font color> <a href>", GOOGLE_TAGS, GOOGLE_ENTITY)


def google_chat_problems(headers, body):
    payload, problems = json_body(headers, body)
    if payload is None:
        return problems
    if len(body) > 32000:
        problems.append(f"the message is {len(body)} bytes, more than 32,000")
    text, cards = payload.get("text"), payload.get("cardsV2")
    if not text and not cards:
        problems.append("neither text nor cardsV2")
    if text is not None:
        if not isinstance(text, str) or len(text) > 4096:
            problems.append("text is not a string of at most 4,096 characters")
        elif "<users/all>" in text:
            problems.append("text mentions everyone (<users/all>)")
    if cards is None:
        return problems
    if not isinstance(cards, list) or not cards:
        return problems + ["cardsV2 is not a list of cards"]
    for index, entry in enumerate(cards):
        where = f"cardsV2[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("card"), dict):
            problems.append(f"{where}: no card")
            continue
        if len(cards) > 1 and not entry.get("cardId"):
            problems.append(f"{where}: no cardId in a message of several cards")
        card = entry["card"]
        header = card.get("header")
        if header is not None:
            if not isinstance(header, dict) or not isinstance(header.get("title"), str) or not header["title"]:
                problems.append(f"{where}.header: no title")
        sections = card.get("sections")
        if not isinstance(sections, list) or not sections:
            problems.append(f"{where}.sections: not a list of sections")
            continue
        for s, section in enumerate(sections):
            widgets = section.get("widgets") if isinstance(section, dict) else None
            if not isinstance(widgets, list) or not 1 <= len(widgets) <= 100:
                problems.append(f"{where}.sections[{s}].widgets: not 1 to 100 widgets")
                continue
            for w, widget in enumerate(widgets):
                at = f"{where}.sections[{s}].widgets[{w}]"
                kinds = [k for k in ("textParagraph", "decoratedText", "buttonList", "divider") if isinstance(widget, dict) and k in widget]
                if len(kinds) != 1 or len(widget) != 1:
                    problems.append(f"{at}: not exactly one known widget")
                    continue
                kind = kinds[0]
                if kind in ("textParagraph", "decoratedText"):
                    problems += google_text_problems(f"{at}.{kind}.text", widget[kind].get("text"))
                    if kind == "decoratedText" and "topLabel" in widget[kind]:
                        problems += google_text_problems(f"{at}.{kind}.topLabel", widget[kind]["topLabel"])
                elif kind == "buttonList":
                    buttons = widget[kind].get("buttons")
                    if not isinstance(buttons, list) or not buttons:
                        problems.append(f"{at}: no buttons")
                        continue
                    for b, button in enumerate(buttons):
                        url = ((button.get("onClick") or {}).get("openLink") or {}).get("url", "")
                        if not button.get("text") or not re.match(r"^https?://", str(url)):
                            problems.append(f"{at}.buttons[{b}]: no text, or no http(s) link")
    return problems


CHECKS = {"slack": slack_problems, "discord": discord_problems, "teams": teams_problems, "google_chat": google_chat_problems}


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
        status, reply, extra, problems = getattr(self, self.server.service)(headers, body)
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
            self.send_header("Content-Type", "text/html" if self.server.service == "slack" else "application/json")
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

    def teams(self, headers, body):
        problems = teams_problems(headers, body)
        if "/workflows/deleted/" in self.path:
            return 404, json.dumps({"error": {"code": "WorkflowNotFound", "message": "The workflow could not be found."}}), {}, problems
        if "the body is not JSON" in problems:
            return 400, json.dumps({"error": {"code": "InvalidRequestContent", "message": "The request content is not valid JSON."}}), {}, problems
        if "/workflows/limited/" in self.path and self.limited_once():
            return 429, json.dumps({"error": {"code": "WorkflowTriggerRateLimited", "message": "Rate limit is exceeded."}}), {"Retry-After": "1"}, problems
        return 202, "", {}, problems

    def google_chat(self, headers, body):
        problems = google_chat_problems(headers, body)
        if self.path.startswith("/v1/spaces/deleted/"):
            return 404, json.dumps({"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}}), {}, problems
        if problems:
            return 400, json.dumps({"error": {"code": 400, "message": "Invalid JSON payload received. " + problems[0], "status": "INVALID_ARGUMENT"}}), {}, problems
        if self.path.startswith("/v1/spaces/limited/") and self.limited_once():
            return 429, json.dumps({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}}), {}, problems
        space = self.path.split("/")[3] if self.path.count("/") >= 4 else "space"
        return 200, json.dumps({"name": f"spaces/{space}/messages/{int(time.time() * 1000)}", "sender": {"type": "BOT"}}), {}, problems

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
    parser.add_argument("--service", choices=sorted(CHECKS), required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log")
    parser.add_argument("--check", nargs="+", metavar="FILE")
    args = parser.parse_args()
    if args.check:
        for path in args.check:
            with open(path, "rb") as f:
                body = f.read()
            print(json.dumps({"file": path, "problems": CHECKS[args.service]({"content-type": "application/json"}, body)}), flush=True)
        return
    if not args.log:
        parser.error("--log is needed to serve")
    if args.service == "teams":
        card_validator("1.4")
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    server = Server(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.log_path = args.log
    server.service = args.service
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
