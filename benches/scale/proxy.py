#!/usr/bin/env python3
"""A counting loopback proxy in front of moto_server, for benches/scale.

Usage: proxy.py UPSTREAM_URL    (prints the port it listens on, then serves)

Every AWS call the tool makes (AWS_ENDPOINT_URL pointed here) is forwarded to
UPSTREAM_URL unchanged and recorded: the operation (the `Action` of a query
call such as CloudFormation's and STS's, or the `X-Amz-Target` of a JSON call
such as CodePipeline's), the region (from the SigV4 credential scope) and the
account (the one whose role was assumed to get the access key, learned from
the AssumeRole answers; 123456789012, moto's default, for the base keys).
A DescribeStacks call without a StackName is a listing: it counts as a new
page sequence unless it carries a NextToken.

GET /__calls answers the calls recorded since the last POST /__reset, as JSON.
"""

import http.client
import json
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM = urllib.parse.urlsplit(sys.argv[1] if len(sys.argv) > 1 else "")
DEFAULT_ACCOUNT = "123456789012"
LOCK = threading.Lock()
CALLS = []  # dicts: op, region, account, listing, next_token
KEY_ACCOUNT = {}  # access key id -> account
LOCAL = threading.local()

SCOPE = re.compile(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/")
ACCESS_KEY = re.compile(rb"<AccessKeyId>([^<]+)</AccessKeyId>")


def upstream():
    conn = getattr(LOCAL, "conn", None)
    if conn is None:
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=120)
        LOCAL.conn = conn
    return conn


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/__calls":
            with LOCK:
                body = json.dumps(CALLS).encode()
            return self.reply(200, body, [("Content-Type", "application/json")])
        self.forward(b"")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == "/__reset":
            with LOCK:
                CALLS.clear()
            return self.reply(200, b"{}")
        self.forward(body)

    def forward(self, body):
        auth = self.headers.get("Authorization", "")
        m = SCOPE.search(auth)
        key, region = (m.group(1), m.group(2)) if m else ("", "")
        form = {}
        if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        target = self.headers.get("X-Amz-Target", "")
        op = form.get("Action") or (target.split(".")[-1] if target else self.command + " " + self.path)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        headers["Host"] = f"{UPSTREAM.hostname}:{UPSTREAM.port}"
        for attempt in range(2):
            conn = upstream()
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                LOCAL.conn = None
                if attempt:
                    raise
        with LOCK:
            if op == "AssumeRole" and resp.status == 200:
                arn = form.get("RoleArn", "")
                parts = arn.split(":")
                k = ACCESS_KEY.search(data)
                if k and len(parts) > 4:
                    KEY_ACCOUNT[k.group(1).decode()] = parts[4]
            CALLS.append({
                "op": op,
                "region": region,
                "account": KEY_ACCOUNT.get(key, DEFAULT_ACCOUNT),
                "listing": op == "DescribeStacks" and "StackName" not in form,
                "next_token": "NextToken" in form,
                "status": resp.status,
            })
        out = [(k, v) for k, v in resp.getheaders()
               if k.lower() not in ("content-length", "connection", "transfer-encoding")]
        self.reply(resp.status, data, out)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
