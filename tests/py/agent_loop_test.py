"""End-to-end agent loop through the running daemon: `onellm serve` (tiny random-weight model, temporary
socket) <- `onellm agent` -> `onellm device-mcp` (MCP over stdio, state in a file). The model's answers are
nonsense; the checks are on the loop's mechanics: calls name offered tools with schema-valid arguments,
the device state changes, the step limit holds, destructive tools are confirmed, non-JSON tool results
reach the model as text, and eval-agent reports on the task set. Exit 77 = skipped (no binary)."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import service_e2e_test as e2e  # noqa: E402
from service_e2e_test import Daemon, check  # noqa: E402
import agent_mcp_test  # noqa: E402  (its scripted MCP server)

BIN = os.environ.get("ONELLM_BIN", "")
SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def agent(args, stdin="", timeout=600):
    p = subprocess.run([BIN, "agent"] + args, capture_output=True, text=True, timeout=timeout, input=stdin)
    try:
        out = json.loads(p.stdout)
    except ValueError:
        out = None
    return p.returncode, out, p.stderr


def state(path):
    return json.loads(subprocess.run([BIN, "device-state", path], capture_output=True, text=True, check=True).stdout)


def run_checks(d, tmp, model):
    tools_file = os.path.join(tmp, "tools.json")
    # Names, and one definition narrowed with maxLength so a random model's string ends in time.
    with open(tools_file, "w") as f:
        json.dump(["set_alarm", "toggle_setting", {"type": "function", "function": {
            "name": "delete_contact", "description": "Delete a contact.", "parameters": {
                "type": "object", "properties": {"name": {"type": "string", "maxLength": 8}}, "required": ["name"]}}}], f)
    echo_file = os.path.join(tmp, "echo_tools.json")
    with open(echo_file, "w") as f:
        json.dump([{"type": "function", "function": {"name": "echo", "description": "Echo.", "parameters": {
            "type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9}}, "required": ["n"]}}}], f)
    dev = os.path.join(tmp, "device.json")
    subprocess.run([BIN, "device-state", dev, "--reset"], check=True)
    before = state(dev)
    transcript = os.path.join(tmp, "transcript.json")
    common = ["--socket", d.sock, "--tools", tools_file, "--temp", "1", "--seed", "3", "--max-tokens", "300"]

    # tool_choice required: the model must call a tool at every step, so the step limit ends the run.
    rc, out, err = agent(common + ["--mcp", "%s device-mcp --state %s" % (BIN, dev), "--tool-choice", "required",
                                   "--max-steps", "3", "--yes", "--json", "--transcript", transcript,
                                   "wake me up at seven"])
    check(rc == 0 and out is not None, "agent exit code %d: %s" % (rc, err[-500:]))
    if out is None:
        return
    check(out["steps"] == 3 and out["stop_reason"] == "max_steps", "step limit respected (%s, %s)" % (out["steps"], out["stop_reason"]))
    calls = out["calls"]
    check(len(calls) >= 3, "a call at every step (%d)" % len(calls))
    check(all(c["name"] in ("set_alarm", "toggle_setting", "delete_contact") for c in calls), "calls name offered tools")
    results = [e for e in out["transcript"] if e["type"] == "tool_result"]
    schema_errors = [r["content"] for r in results if r["is_error"] and ("must be" in r["content"] or "missing required" in r["content"] or "unknown argument" in r["content"])]
    check(not schema_errors, "every call's arguments passed the tool schema: %s" % schema_errors[:2])
    check(any(c["ok"] for c in calls), "at least one call succeeded")
    after = state(dev)
    check(after != before, "the device state changed")
    tool_msgs = [m for m in out["messages"] if m["role"] == "tool"]
    check(len(tool_msgs) == len(calls), "one tool message per call")
    check(os.path.exists(transcript) and json.load(open(transcript))["steps"] == 3, "--transcript FILE written")
    check("model calls" in err and "stopped: step limit of 3 reached" in err, "readable transcript on stderr")

    # A destructive tool, declined on stdin: the contacts stay.
    rc, out, err = agent(common + ["--mcp", "%s device-mcp --state %s" % (BIN, dev), "--tool-choice", "delete_contact",
                                   "--max-steps", "2", "--json", "forget Sam"], stdin="n\nn\nn\nn\n")
    check(rc == 0 and out is not None and "destructive" in err, "confirmation asked on stdin: %s" % err[-300:])
    if out is not None:
        declined = [e for e in out["transcript"] if e["type"] == "tool_result" and "declined" in e["content"]]
        check(len(declined) == len(out["calls"]) >= 1, "every delete_contact call declined")
        check(len(state(dev)["contacts"]) == len(before["contacts"]), "no contact deleted")

    # Non-JSON tool results go to the model as text.
    script = os.path.join(tmp, "fake_server.py")
    with open(script, "w") as f:
        f.write(agent_mcp_test.FAKE_SERVER)
    rc, out, err = agent(["--socket", d.sock, "--mcp", "%s %s text" % (sys.executable, script), "--tools", echo_file,
                          "--tool-choice", "required", "--max-steps", "2", "--max-tokens", "300", "--json", "say hi"])
    check(rc == 0 and out is not None, "agent with the text server: %s" % err[-300:])
    if out is not None:
        check(any(m["role"] == "tool" and m["content"] == "plain words, not JSON" for m in out["messages"]),
              "plain-text tool result passed through")

    # An MCP server that dies: the run ends with a clear error, no hang.
    rc, out, err = agent(["--socket", d.sock, "--mcp", "%s %s die" % (sys.executable, script), "--tools", echo_file,
                          "--tool-choice", "required", "--max-steps", "2", "--max-tokens", "300", "--json", "say hi"], timeout=300)
    check(out is not None, "agent with a dying server still reports: %s" % err[-300:])
    if out is not None:
        errors = [e["content"] for e in out["transcript"] if e["type"] == "tool_result" and e["is_error"]]
        check(any("exited with status 3" in e for e in errors), "dead server reported to the model: %s" % errors[:1])

    # eval-agent on the shipped tasks (first two; all 26 tools make a ~5k-token prompt), same daemon.
    p = subprocess.run([BIN, "eval-agent", os.path.join(SRC, "data/agent-tasks/device-tasks.jsonl"), "--socket", d.sock,
                        "--limit", "2", "--max-steps", "1", "--tool-choice", "required", "--max-tokens", "400", "--seed", "1",
                        "--json"],
                       capture_output=True, text=True, timeout=900)
    check(p.returncode == 0, "eval-agent exit code: %s" % p.stderr[-300:])
    if p.returncode == 0:
        r = json.loads(p.stdout)
        s = r["summary"]
        check(s["tasks"] == 2 and len(r["tasks"]) == 2 and s["tasks_with_expected_calls"] == 2, "eval-agent summary %s" % s)
        check(all(t["stop_reason"] in ("max_steps", "answer", "length") and t["steps"] == 1 for t in r["tasks"]),
              "eval-agent tasks ran through the daemon: %s" % [t["stop_reason"] for t in r["tasks"]])
        check(0 <= s["success_rate"] <= 1 and s["valid_tool_calls"] <= s["tool_calls"], "eval-agent rates")
        check("success rate:" in p.stderr and ("PASS t001" in p.stderr or "FAIL t001" in p.stderr), "per-task report")

    # No service on the socket: one clear error, not a failure per task.
    p = subprocess.run([BIN, "eval-agent", os.path.join(SRC, "data/agent-tasks/device-tasks.jsonl"), "--socket",
                        d.sock + ".absent", "--quiet"], capture_output=True, text=True, timeout=60)
    check(p.returncode != 0 and "cannot connect" in p.stderr and "onellm serve" in p.stderr
          and "FAIL t002" not in p.stdout, "eval-agent without a service: rc %s, %s" % (p.returncode, p.stderr[-300:]))

    # -m MODEL: the agent starts its own daemon.
    rc, out, err = agent(["-m", model, "--mcp", "%s device-mcp" % BIN, "--tools", tools_file, "--tool-choice", "required",
                          "--max-steps", "1", "--max-tokens", "300", "--yes", "--json", "lights"])
    check(rc == 0 and out is not None and out["steps"] == 1 and len(out["calls"]) >= 1, "agent -m MODEL: %s" % err[-300:])


def main():
    if not BIN or not os.path.exists(BIN):
        print("no onellm binary")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "tiny.gguf")
        subprocess.run([BIN, "make-tiny-model", "--arch", "qwen2", "--type", "F32", "--n-ctx", "8192", "-o", model],
                       check=True, capture_output=True)
        config = os.path.join(tmp, "service.toml")
        with open(config, "w") as f:
            f.write("[service]\nkeep_alive_s = 0\ndefault_context = 8192\n\n[[app]]\nid = \"agent\"\nuids = [%d]\n"
                    "qos = [\"agent\", \"chat\"]\n" % os.getuid())
        d = Daemon(tmp, model, config)
        try:
            run_checks(d, tmp, model)
        finally:
            code = d.stop()
            check(code == 0, "daemon exit code %s" % code)
    print("%d passed, %d failed" % (e2e.passed, e2e.failed))
    return 1 if e2e.failed else 0


if __name__ == "__main__":
    sys.exit(main())
