"""A local imitation of the Hugging Face Hub's file-resolve protocol on 127.0.0.1, for the voices' Hub
route (app.speech.synthesis._voices_from_hub): a real HTTP server over a socket that huggingface_hub's
own `hf_hub_download` talks to, with HF_ENDPOINT pointing at it. It is not the Hub; it answers the
requests that huggingface_hub 2.4 makes for one public repository's files, as the Hub answers them
for a file kept in LFS (file_download.get_hf_file_metadata, then http_get):

* HEAD or GET {endpoint}/{repo}/resolve/{revision}/{path} (revision "main" or the commit): 302 to the
  file on a second port (as the Hub sends LFS files to its CDN, another origin, so the client stops at
  the redirect and reads the metadata from it), with X-Repo-Commit, X-Linked-Etag (the file's sha256),
  X-Linked-Size and ETag. No X-Xet-* headers and no xet-auth Link, so the client does not take the Xet
  path even with hf_xet installed.
* GET {cdn}/blobs/{sha256}: the bytes, with Content-Length.
* GET {endpoint}/api/agent-harnesses (huggingface_hub's best-effort user-agent registry, fetched once a
  day): an empty registry.
* another repo: 401 X-Error-Code RepoNotFound; another revision: 404 RevisionNotFound; another file:
  404 EntryNotFound (with X-Repo-Commit), as the Hub's error codes read.

`requests` records (method, port, path) of every request, so a test can see what the client did.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

COMMIT = "1c0e1f6e7d2b3a4c5d6e7f8091a2b3c4d5e6f708"  # a made-up commit id (40 hex digits, as the Hub's)


class HubServer:
    def __init__(self, repo: str, files: dict[str, bytes]):
        self.repo = repo
        self.files = {path: (blob, hashlib.sha256(blob).hexdigest()) for path, blob in files.items()}
        self.blobs = {digest: blob for blob, digest in self.files.values()}
        self.requests: list[tuple[str, int, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_HEAD(self):  # noqa: N802 (http.server's naming)
                self._answer(body=False)

            def do_GET(self):  # noqa: N802
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                port = self.server.server_address[1]
                server.requests.append((self.command, port, self.path))
                path = unquote(self.path.split("?", 1)[0])
                if port == server.cdn.server_address[1]:
                    blob = server.blobs.get(path.removeprefix("/blobs/"))
                    if blob is None:
                        return self._error(404, "EntryNotFound")
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(blob)))
                    self.send_header("Accept-Ranges", "bytes")
                    self.end_headers()
                    if body:
                        self.wfile.write(blob)
                    return
                if path == "/api/agent-harnesses":
                    registry = b'{"standardEnvVars": [], "harnesses": {}}'
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(registry)))
                    self.end_headers()
                    if body:
                        self.wfile.write(registry)
                    return
                prefix = f"/{server.repo}/resolve/"
                if not path.startswith(prefix):
                    return self._error(401, "RepoNotFound")
                revision, _, filename = path[len(prefix):].partition("/")
                if revision not in ("main", COMMIT):
                    return self._error(404, "RevisionNotFound")
                if filename not in server.files:
                    return self._error(404, "EntryNotFound", {"X-Repo-Commit": COMMIT})
                blob, digest = server.files[filename]
                self.send_response(302)
                self.send_header("Location", f"{server.cdn_base}/blobs/{digest}")
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("X-Linked-Etag", f'"{digest}"')
                self.send_header("X-Linked-Size", str(len(blob)))
                self.send_header("ETag", f'"{hashlib.sha1(blob).hexdigest()}"')  # the LFS pointer's git oid, on the Hub
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _error(self, status: int, code: str, headers: dict | None = None) -> None:
                message = f"{code}: {self.path}".encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", code)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(message)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(message)

            def log_message(self, *args):
                pass

        self.hub = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.cdn = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        for httpd in (self.hub, self.cdn):
            httpd.daemon_threads = True
        self.threads = [threading.Thread(target=h.serve_forever, daemon=True) for h in (self.hub, self.cdn)]

    @property
    def endpoint(self) -> str:
        """What HF_ENDPOINT is set to."""
        return f"http://127.0.0.1:{self.hub.server_address[1]}"

    @property
    def cdn_base(self) -> str:
        return f"http://127.0.0.1:{self.cdn.server_address[1]}"

    def __enter__(self) -> "HubServer":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for httpd in (self.hub, self.cdn):
            httpd.shutdown()
            httpd.server_close()
