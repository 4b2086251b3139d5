#!/usr/bin/env python3
"""The client library (through `onellm ask --url`) against another OpenAI-compatible server.

A small HTTP server written here answers /v1/chat/completions the way other servers do
(llama-server, OpenAI): a role-only first SSE delta whose content is null, events split
across chunk boundaries, a usage-only final event, `data: [DONE]`. The client must return the
text, not fail with PROTOCOL (it did on the null content).
"""
import http.server
import json
import os
import subprocess
import sys
import threading

BIN = os.environ.get("ONELLM_BIN", "")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        user = body["messages"][-1]["content"]
        events = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]}]
        for piece in ["hel", "lo ", user]:
            events.append({"choices": [{"index": 0, "delta": {"content": piece}}]})
        events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
        events.append({"choices": [], "usage": {"completion_tokens": 3}})
        stream = "".join("data: " + json.dumps(e) + "\n\n" for e in events) + "data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        raw = stream.encode()
        for start in range(0, len(raw), 37):  # chunks that cut events anywhere
            part = raw[start:start + 37]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        self.wfile.write(b"0\r\n\r\n")


def main():
    if not BIN or not os.path.exists(BIN):
        print("SKIP: no onellm binary")
        return 77
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d" % server.server_address[1]
    failures = 0
    r = subprocess.run([BIN, "ask", "--url", url, "world"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or "hello world" not in r.stdout:
        print("FAIL streamed: exit %d, stdout %r, stderr %r" % (r.returncode, r.stdout, r.stderr))
        failures += 1
    server.shutdown()
    print("%d failures" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
