#!/usr/bin/env python3
"""End to end: the GUI agent commands on the simulated apps and the committed tasks.

- gui-oracle plays every task's scripted solution; all must pass their essential states.
- eval-gui on the committed traces: golden traces succeed, traces with a skipped action fail.
- gui-agent with a random-weight model: every step's action is valid, the step limit holds, and the
  saved trace is evaluable; the same through the running service (`onellm serve`, response_format
  json_schema over the Unix socket).
- bad inputs (malformed dump in a trace, unknown task) are clear errors, not crashes.
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("ONELLM_BIN", os.path.join(ROOT, "build", "onellm"))
TASKS = os.path.join(ROOT, "data", "gui-tasks")
APPS = os.path.join(ROOT, "data", "gui-apps")


def run(*args, check=True):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        sys.exit(f"FAIL: {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def main():
    if not os.path.exists(BIN):
        print("SKIP: no onellm binary at " + BIN)
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        out = run("gui-oracle", "--tasks", TASKS, "--apps", APPS, "--out", os.path.join(tmp, "oracle"))
        assert "0 oracle traces fail" in out.stdout, out.stdout
        n_tasks = sum(len(json.load(open(os.path.join(TASKS, f)))) for f in os.listdir(TASKS) if f.endswith(".json"))
        assert n_tasks >= 40, n_tasks
        assert len(os.listdir(os.path.join(tmp, "oracle"))) == n_tasks

        report = json.loads(run("eval-gui", TASKS, "--json").stdout)
        traces = report["traces"]
        assert traces, "no committed traces"
        for t in traces:
            want = not t["trace"].endswith(".skip.json")
            assert t["success"] == want, t
            assert t["agrees"], t
        assert report["summary"]["success"] == sum(1 for t in traces if not t["trace"].endswith(".skip.json"))

        model = os.path.join(tmp, "tiny.gguf")
        run("make-tiny-model", "--arch", "llama", "--type", "F32", "--n-ctx", "4096", "-o", model)
        trace_path = os.path.join(tmp, "agent", "settings_wifi_off.json")
        os.makedirs(os.path.dirname(trace_path))
        p = run("gui-agent", "-m", model, "--task", "settings_wifi_off", "--tasks", TASKS, "--apps", APPS,
                "--max-steps", "3", "--trace", trace_path, "-t", "1")
        assert "step 0" in p.stdout, p.stdout
        trace = json.load(open(trace_path))
        assert trace["task_id"] == "settings_wifi_off"
        assert 1 <= len(trace["steps"]) <= 4, len(trace["steps"])
        for s in trace["steps"]:
            assert "invalid action" not in s.get("note", ""), s.get("note")
            if "action" in s:
                assert s["aitw_action"]["action_type"], s
        r = json.loads(run("eval-gui", TASKS, "--traces", os.path.dirname(trace_path), "--json").stdout)
        assert r["summary"]["traces"] == 1

        sys.path.insert(0, HERE)
        os.environ.setdefault("ONELLM_BIN", BIN)
        from service_e2e_test import Daemon  # noqa: E402
        d = Daemon(tmp, model)
        try:
            served = os.path.join(tmp, "served.json")
            run("gui-agent", "--socket", d.sock, "--task", "contacts_star_grace", "--tasks", TASKS, "--apps", APPS,
                "--max-steps", "2", "--trace", served)
            steps = json.load(open(served))["steps"]
            assert 1 <= len(steps) <= 3, len(steps)
            for s in steps:
                assert "invalid action" not in s.get("note", ""), s.get("note")
        finally:
            assert d.stop() == 0

        # A corrupted trace is a clear error naming the step.
        trace["steps"][0]["view_hierarchy"] = "<hierarchy><node"
        bad_dir = os.path.join(tmp, "bad")
        os.makedirs(bad_dir)
        json.dump(trace, open(os.path.join(bad_dir, "t.json"), "w"))
        p = run("eval-gui", TASKS, "--traces", bad_dir, check=False)
        assert p.returncode == 1 and "view hierarchy XML" in p.stderr, (p.returncode, p.stderr)
        p = run("gui-agent", "--task", "no_such_task", "--oracle", "--tasks", TASKS, check=False)
        assert p.returncode == 1 and "no task 'no_such_task'" in p.stderr, p.stderr
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
