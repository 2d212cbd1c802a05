"""A tiny OpenAI-compatible chat server on 127.0.0.1 for the llm English source: a real HTTP server over
a socket, deterministic. It reads the numbered lines of our prompt ("1. 他们是工人。") and answers with
the English that the HSK sentence bank (hsk-sentences-audio) gives for the closest Chinese sentence.

The path chooses how it answers, as different real servers do:
* /v1/chat/completions: a JSON array inside a ```json fence, after a sentence of chatter;
* /numbered/v1/chat/completions: numbered lines "1) ...";
* /chinese/v1/chat/completions: the Chinese lines back (an unusable answer);
* /partial/v1/chat/completions: numbered lines, but line 2 left in Chinese;
* anything else: 404.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_NUMBERED = re.compile(r"^(\d+)\. (.+)$")
_PUNCTUATION = re.compile(r"[，。！？、：；“”‘’（）,.!?\s]")


@functools.lru_cache(maxsize=1)
def hsk_english() -> dict[str, str]:
    """Chinese sentence without punctuation → its English in the HSK sentence bank."""
    from hsk_sentences_audio import load_sentences

    return {_PUNCTUATION.sub("", s["chinese"]): s["translation"]["en"] for s in load_sentences()}


def english_of(chinese: str) -> str:
    bank = hsk_english()
    key = _PUNCTUATION.sub("", chinese)
    if key not in bank:  # a recogniser's near miss: the closest sentence of the bank
        close = difflib.get_close_matches(key, list(bank), n=1, cutoff=0.0)
        key = close[0]
    return bank[key]


def numbered_lines(prompt: str) -> list[str]:
    return [m.group(2) for m in map(_NUMBERED.match, prompt.splitlines()) if m]


class ChatServer:
    def __init__(self):
        self.requests: list[dict] = []  # what each request sent: path, headers, body

        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                mode = {"/v1/chat/completions": "json", "/numbered/v1/chat/completions": "numbered",
                        "/chinese/v1/chat/completions": "chinese",
                        "/partial/v1/chat/completions": "partial"}.get(self.path)
                if mode is None:
                    self.send_error(404)
                    return
                lines = numbered_lines(body["messages"][-1]["content"])
                if mode == "json":
                    content = "Here are the translations:\n```json\n" + json.dumps(
                        [english_of(line) for line in lines], ensure_ascii=False) + "\n```"
                elif mode in ("numbered", "partial"):
                    content = "\n".join(f"{n}) {line if mode == 'partial' and n == 2 else english_of(line)}"
                                        for n, line in enumerate(lines, 1))
                else:
                    content = json.dumps(lines, ensure_ascii=False)
                reply = json.dumps({"object": "chat.completion", "model": body.get("model"),
                                    "choices": [{"index": 0, "finish_reason": "stop",
                                                 "message": {"role": "assistant", "content": content}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "ChatServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
