"""Ollama's own JavaScript client library (npm "ollama", installed by scripts/setup.sh into build/js) against
the real daemon: list, ps, show, chat and generate (whole and streamed), format json, embed, and a bad request
raised as the library's ResponseError. Its answers must equal what the daemon's OpenAI API gives for the same
settings. Exit 77 = skipped (no binary, no node, or the library not installed: run scripts/setup.sh).
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import service_e2e_test as e2e  # noqa: E402
from service_e2e_test import Daemon, check  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "js", "ollama_client.mjs")


def module_dir():
    """build/js beside the binary (scripts/setup.sh installs the library there)."""
    return os.path.join(os.path.dirname(os.path.abspath(e2e.BIN)), "js")


def run(tmp, model):
    d = Daemon(tmp, model, extra=["--no-builtin-tools"])
    try:
        p = subprocess.run(["node", SCRIPT, module_dir(), str(d.port)], capture_output=True, text=True, timeout=300)
        check(p.returncode == 0, f"the client ran: {p.stderr[-2000:]}")
        if p.returncode != 0:
            return
        r = json.loads(p.stdout)
        name = os.path.splitext(os.path.basename(model))[0] + ":latest"
        check(r["list"]["models"][0]["name"] == name and r["ps"]["models"][0]["name"] == name,
              f"list and ps name the model: {r['list']} {r['ps']}")
        check(r["show"]["model_info"]["general.architecture"] == "qwen2" and "completion" in r["show"]["capabilities"],
              f"show: {str(r['show'])[:300]}")
        user = [{"role": "user", "content": "hello there"}]
        st, a = d.request("POST", "/v1/chat/completions", {"messages": user, "temperature": 0, "max_tokens": 8,
                                                            "repeat_penalty": 1.1})
        want = a["choices"][0]["message"]["content"]
        check(r["chat"]["message"]["content"] == want and r["chat"]["eval_count"] == 8, f"chat: {r['chat']}")
        parts = r["chat_stream"]
        check("".join(x["message"]["content"] for x in parts) == want and parts[-1]["done"] is True,
              f"chat streamed: {parts}")
        check(r["generate"]["response"] == want and "".join(x["response"] for x in r["generate_stream"]) == want,
              f"generate: {r['generate']} {r['generate_stream']}")
        st, j = d.request("POST", "/v1/chat/completions", {"messages": user, "temperature": 0, "max_tokens": 24,
                                                            "repeat_penalty": 1.1,
                                                            "response_format": {"type": "json_object"}})
        check(r["json"]["response"] == j["choices"][0]["message"]["content"]
              and r["json"]["response"].lstrip().startswith("{"), f"format json: {r['json']}")
        st, e = d.request("POST", "/v1/embeddings", {"input": ["a cat", "a dog"]})
        got = r["embed"]["embeddings"]
        check(len(got) == 2 and all(max(abs(x - y) for x, y in zip(v, w["embedding"])) < 1e-6
                                    for v, w in zip(got, e["data"])), "embed = /v1/embeddings")
        err = r["error"] or {}
        check(err.get("name") == "ResponseError" and err.get("status_code") == 400
              and "wizard" in err.get("message", ""),
              f"a bad request raises ResponseError naming the problem: {err}")
    finally:
        d.stop()


def main():
    if not shutil.which("node") or not os.path.isdir(os.path.join(module_dir(), "node_modules", "ollama")):
        print("skip: node or the npm package 'ollama' in build/js is missing (scripts/setup.sh installs it)")
        return 77
    return e2e.run_on_tiny_model(run)


if __name__ == "__main__":
    sys.exit(main())
