"""End-to-end MCP tests with real processes: onellm's MCP client (`onellm mcp-call`) against
`onellm device-mcp` over stdio and streamable HTTP (JSON and SSE replies), and against small MCP
servers written here that die mid-call, write garbage, hang, answer in plain text, paginate and
announce list changes. Every failure must be a clear error within the timeout, never a hang.
Exit 77 = skipped (no binary)."""
import json
import os
import subprocess
import sys
import tempfile
import time
import http.server
import threading

sys.path.insert(0, os.path.dirname(__file__))
import service_e2e_test as e2e  # noqa: E402
from service_e2e_test import check  # noqa: E402

BIN = os.environ.get("ONELLM_BIN", "")

# A scripted MCP server on stdio: MODE says how it misbehaves at tools/call.
FAKE_SERVER = r'''
import json, sys, time
mode = sys.argv[1]
tools = [{"name": "echo", "description": "echo", "inputSchema": {"type": "object"}}]
for line in sys.stdin:
    m = json.loads(line)
    if "id" not in m:
        continue
    def reply(result):
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": result}) + "\n")
        sys.stdout.flush()
    if m["method"] == "initialize":
        reply({"protocolVersion": "2025-03-26", "capabilities": {"tools": {"listChanged": True}},
               "serverInfo": {"name": "fake-" + mode}})
    elif m["method"] == "tools/list":
        cursor = m.get("params", {}).get("cursor")
        if mode == "pages" and cursor is None:
            reply({"tools": tools[:1], "nextCursor": "p2"})
        elif mode == "pages":
            reply({"tools": [{"name": "second", "inputSchema": {"type": "object"}}]})
        else:
            reply({"tools": tools})
    elif m["method"] == "tools/call":
        if mode == "die":
            sys.exit(3)
        if mode == "garbage":
            sys.stdout.write("this is not json at all\n"); sys.stdout.flush(); time.sleep(30)
        if mode == "hang":
            time.sleep(60)
        if mode == "text":
            reply({"content": [{"type": "text", "text": "plain words, not JSON"}]})
        if mode == "list_changed":
            tools.append({"name": "added_later", "inputSchema": {"type": "object"}})
            sys.stdout.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}) + "\n")
            # a server request in the middle: the client must answer ping
            sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": "srv1", "method": "ping"}) + "\n")
            sys.stdout.flush()
            pong = json.loads(sys.stdin.readline())
            assert pong.get("id") == "srv1" and "result" in pong, pong
            reply({"content": [{"type": "text", "text": "{\"ok\": true}"}]})
        if mode == "pages":
            reply({"content": [{"type": "text", "text": "{}"}]})
'''


def run(args, timeout=60, stdin=None):
    t0 = time.time()
    p = subprocess.run([BIN] + args, capture_output=True, text=True, timeout=timeout, input=stdin)
    return p.returncode, p.stdout, p.stderr, time.time() - t0


def device_state(path, pointer):
    rc, out, err, _ = run(["device-state", path, "--path", pointer])
    return json.loads(out) if rc == 0 else None


def stdio_round_trip(tmp):
    state = os.path.join(tmp, "stdio.json")
    rc, out, err, _ = run(["mcp-call", "--mcp", "%s device-mcp --state %s" % (BIN, state), "--list",
                           "set_alarm", '{"hour": 6, "minute": 40, "label": "run"}'])
    check(rc == 0, "stdio mcp-call exit code (%s)" % err)
    r = json.loads(out)
    check(r["protocolVersion"] == "2025-06-18", "negotiated protocol version")
    check(len(r["tools"]) >= 26 and "delete_contact" in r["tools"], "all device tools listed")
    check(r["list_requests"] == (len(r["tools"]) + 9) // 10, "tools/list followed every page (%d)" % r["list_requests"])
    check(r["tools_after"] == r["tools"], "no re-list without list_changed")
    check(not r["result"]["isError"] and r["result"]["structuredContent"]["alarm"]["hour"] == 6, "set_alarm result")
    alarms = device_state(state, "/alarms")
    check(any(a["hour"] == 6 and a["minute"] == 40 and a["label"] == "run" for a in alarms), "state file has the alarm")
    # a bad call is an isError result, the state is unchanged
    rc, out, err, _ = run(["mcp-call", "--mcp", "%s device-mcp --state %s" % (BIN, state), "set_alarm", '{"hour": 30, "minute": 0}'])
    r = json.loads(out)
    check(rc == 0 and r["result"]["isError"] and "hour" in r["result"]["text"], "invalid arguments -> isError naming 'hour'")
    check(device_state(state, "/alarms") == alarms, "failed call left the state alone")
    # annotations, read straight off the wire
    p = subprocess.run([BIN, "device-mcp"], input='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}\n'
                       '{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}\n'
                       '{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"cursor":"10"}}\n'
                       '{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"cursor":"20"}}\n',
                       capture_output=True, text=True, timeout=30)
    tools = [t for line in p.stdout.splitlines() for t in json.loads(line)["result"].get("tools", [])]
    ann = {t["name"]: t["annotations"] for t in tools}
    check(ann["delete_contact"]["destructiveHint"] and not ann["set_alarm"]["destructiveHint"], "destructiveHint")
    check(ann["get_contact"]["readOnlyHint"], "readOnlyHint")


class Http:
    def __init__(self, tmp, sse):
        self.ready = os.path.join(tmp, "ready-%d" % sse)
        self.state = os.path.join(tmp, "http-%d.json" % sse)
        args = [BIN, "device-mcp", "--http", "127.0.0.1:0", "--ready-file", self.ready, "--state", self.state]
        self.proc = subprocess.Popen(args + (["--sse"] if sse else []), stderr=subprocess.PIPE)
        deadline = time.time() + 30
        while not os.path.exists(self.ready) and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(0.05)
        self.url = "http://127.0.0.1:%s/mcp" % open(self.ready).read().split("=")[1].strip()

    def stop(self):
        self.proc.terminate()
        return self.proc.wait(timeout=30)


def http_round_trip(tmp, sse):
    srv = Http(tmp, sse)
    try:
        rc, out, err, _ = run(["mcp-call", "--mcp-http", srv.url, "--list", "toggle_setting", '{"setting": "wifi", "on": false}'])
        check(rc == 0, "http (sse=%s) mcp-call exit code: %s" % (sse, err))
        r = json.loads(out)
        check(len(r["tools"]) >= 26 and r["list_requests"] >= 3, "http tools listed over pages")
        check(r["result"]["structuredContent"] == {"setting": "wifi", "on": False}, "http toggle result")
        check(device_state(srv.state, "/settings/wifi") is False, "http call persisted the state")
        # a request without the session id is refused
        import urllib.request, urllib.error
        req = urllib.request.Request(srv.url, data=b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
                                     headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=10)
            check(False, "request without Mcp-Session-Id accepted")
        except urllib.error.HTTPError as e:
            check(e.code == 400, "missing session -> 400 (%d)" % e.code)
    finally:
        check(srv.stop() == 0, "device-mcp --http exits cleanly on SIGTERM")


def fake(tmp, mode, extra=(), timeout_ms=5000):
    script = os.path.join(tmp, "fake_server.py")
    with open(script, "w") as f:
        f.write(FAKE_SERVER)
    return run(["mcp-call", "--timeout", str(timeout_ms), "--mcp", "%s %s %s" % (sys.executable, script, mode)] + list(extra),
               timeout=60)


def broken_servers(tmp):
    rc, out, err, secs = fake(tmp, "die", ["echo", "{}"])
    check(rc == 1 and "exited with status 3" in err and "tools/call" in err, "dying server: clear error (%s)" % err.strip())
    check(secs < 10, "dying server: no hang (%.1fs)" % secs)
    rc, out, err, secs = fake(tmp, "garbage", ["echo", "{}"])
    check(rc == 1 and "not JSON-RPC" in err and "this is not json" in err, "garbage: clear error (%s)" % err.strip())
    check(secs < 10, "garbage: no hang (%.1fs)" % secs)
    rc, out, err, secs = fake(tmp, "hang", ["echo", "{}"], timeout_ms=1500)
    check(rc == 1 and "did not answer tools/call in time" in err, "silent server: timeout error (%s)" % err.strip())
    check(secs < 10, "silent server: gave up after the timeout (%.1fs)" % secs)
    rc, out, err, _ = run(["mcp-call", "--mcp", "/nonexistent/mcp-server", "--list"])
    check(rc == 1 and "cannot start MCP server" in err, "missing server binary: clear error (%s)" % err.strip())
    rc, out, err, _ = run(["mcp-call", "--mcp-http", "http://127.0.0.1:1/mcp", "--list"])
    check(rc == 1 and "cannot connect" in err, "unreachable HTTP server: clear error (%s)" % err.strip())


def odd_but_valid_servers(tmp):
    rc, out, err, _ = fake(tmp, "text", ["echo", "{}"])
    check(rc == 0 and json.loads(out)["result"]["text"] == "plain words, not JSON", "non-JSON tool result passed as text")
    rc, out, err, _ = fake(tmp, "list_changed", ["--list", "echo", "{}"])
    r = json.loads(out) if rc == 0 else {}
    check(rc == 0 and "added_later" in r.get("tools_after", []) and r.get("list_requests") == 2,
          "list_changed -> re-listed (%s %s)" % (out.strip(), err.strip()))
    check(r.get("protocolVersion") == "2025-03-26", "accepts a 2025-03-26 server")
    rc, out, err, _ = fake(tmp, "pages", ["--list"])
    check(rc == 0 and json.loads(out)["tools"] == ["echo", "second"], "cursor pagination")


class BadHttp(http.server.BaseHTTPRequestHandler):
    mode = "garbage"

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        method = request.get("method", "")
        if BadHttp.mode == "die_on_call" and method != "tools/call":
            # a working server until the call: initialize, the initialized notification, one tool
            results = {"initialize": {"protocolVersion": "2025-03-26", "capabilities": {"tools": {}},
                                      "serverInfo": {"name": "dies", "version": "1"}},
                       "tools/list": {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}}
            if "id" not in request:
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": results.get(method, {})}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif BadHttp.mode == "garbage":
            body = b"<html>not json</html>"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:  # promises a long body, then dies
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"jsonrpc":')
            self.wfile.flush()
            self.connection.shutdown(2)

    def log_message(self, *a):
        pass


def broken_http():
    srv = http.server.HTTPServer(("127.0.0.1", 0), BadHttp)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d/mcp" % srv.server_address[1]
    for mode, expect in [("garbage", "not JSON-RPC"), ("die", "closed the connection")]:
        BadHttp.mode = mode
        rc, out, err, secs = run(["mcp-call", "--timeout", "5000", "--mcp-http", url, "--list"], timeout=60)
        check(rc == 1 and expect in err and secs < 10, "HTTP server %s: clear error (%s)" % (mode, err.strip()))
    BadHttp.mode = "die_on_call"
    rc, out, err, secs = run(["mcp-call", "--timeout", "5000", "--mcp-http", url, "echo", "{}"], timeout=60)
    check(rc == 1 and "closed the connection" in err and "tools/call" in err and secs < 10,
          "HTTP server dying mid-call: clear error (%s)" % err.strip())
    srv.shutdown()


def main():
    if not BIN or not os.path.exists(BIN):
        print("skip: ONELLM_BIN not set")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        stdio_round_trip(tmp)
        http_round_trip(tmp, sse=False)
        http_round_trip(tmp, sse=True)
        broken_servers(tmp)
        odd_but_valid_servers(tmp)
        broken_http()
    print("%d passed, %d failed" % (e2e.passed, e2e.failed))
    return 1 if e2e.failed else 0


if __name__ == "__main__":
    sys.exit(main())
