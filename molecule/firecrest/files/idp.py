"""A stub of the site's IdP for molecule/firecrest (Python standard library only): serves
``GET /jwks.json`` and a client-credentials ``POST /token`` that hands the one known client (HTTP
Basic or form fields, RFC 6749 2.3.1) the service-account token make_site.py signed. Files in
DIR: jwks.json, service_token, client_id, client_secret. Usage: idp.py DIR PORT
"""
import base64
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote

DIR = Path(sys.argv[1])


def read(name):
    return (DIR / name).read_text().strip()


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        if self.path == "/jwks.json":
            self.reply(200, json.loads(read("jwks.json")))
        else:
            self.reply(404, {"error": "not_found"})

    def do_POST(self):  # noqa: N802
        if self.path != "/token":
            self.reply(404, {"error": "not_found"})
            return
        form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
        client_id = (form.get("client_id") or [""])[0]
        secret = (form.get("client_secret") or [""])[0]
        header = self.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            client_id, _sep, secret = base64.b64decode(header[6:]).decode().partition(":")
            client_id, secret = unquote(client_id), unquote(secret)
        if (form.get("grant_type") or [""])[0] != "client_credentials":
            self.reply(400, {"error": "unsupported_grant_type"})
        elif not (hmac.compare_digest(client_id, read("client_id")) and hmac.compare_digest(secret, read("client_secret"))):
            self.reply(401, {"error": "invalid_client"})
        else:
            token = read("service_token")
            exp = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==")).get("exp", 0)
            self.reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": int(exp - time.time())})

    def log_message(self, fmt, *args):  # the request line only (no secret ever travels in it)
        sys.stderr.write("idp: %s\n" % (fmt % args))


ThreadingHTTPServer(("0.0.0.0", int(sys.argv[2])), Handler).serve_forever()
