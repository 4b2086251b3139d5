"""End-to-end: llama-server's /props, /apply-template and /completion's generation_settings, on the real daemon.

/apply-template must give the text `onellm template` prints for the same request (messages and tools), and that text
must be the prompt /v1/chat/completions counts. /props must report llama-server's /completion defaults, the model's
chat template and its BOS/EOS texts; /completion echoes the settings it ran with. POST /props and /slots are refused
with 501 and a reason. Exit 77 = skipped (no binary).
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_ref  # noqa: E402
import service_e2e_test as e2e  # noqa: E402
from service_e2e_test import Daemon, check  # noqa: E402

TOOLS = [{"type": "function", "function": {"name": "set_alarm", "description": "Sets an alarm",
                                           "parameters": {"type": "object", "properties": {"time": {"type": "string"}},
                                                          "required": ["time"]}}}]


def run(tmp, model):
    d = Daemon(tmp, model, extra=["--no-builtin-tools"])
    try:
        request = {"messages": [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "wake me at 7"}], "tools": TOOLS}
        st, applied = d.request("POST", "/apply-template", request)
        cli = subprocess.run([e2e.BIN, "template", "-m", model], input=json.dumps(request), capture_output=True,
                             text=True, timeout=60)
        prompt = applied.get("prompt", "") if st == 200 else ""
        check(st == 200 and prompt == cli.stdout and "set_alarm" in prompt and "wake me at 7" in prompt,
              f"/apply-template = onellm template: {applied} vs {cli.stdout!r} {cli.stderr[-300:]}")
        st, tok = d.request("POST", "/tokenize", {"content": prompt, "add_special": True, "parse_special": True})
        st2, chat = d.request("POST", "/v1/chat/completions", {**request, "max_tokens": 1})
        check(st == 200 and st2 == 200 and chat["usage"]["prompt_tokens"] == len(tok["tokens"]),
              f"its tokens are the chat request's prompt: {len(tok.get('tokens', []))} vs {chat.get('usage')}")
        st, plain = d.request("POST", "/apply-template", {"messages": [{"role": "user", "content": "hi"}],
                                                          "add_generation_prompt": False})
        st2, gen = d.request("POST", "/apply-template", {"messages": [{"role": "user", "content": "hi"}]})
        check(st == 200 and st2 == 200 and gen["prompt"].startswith(plain["prompt"]) and gen["prompt"] != plain["prompt"],
              f"add_generation_prompt: {plain} {gen}")
        st, bad = d.request("POST", "/apply-template", {"messages": "hi"})
        check(st == 400 and "messages" in json.dumps(bad), f"bad messages are named: {st} {bad}")

        st, props = d.request("GET", "/props")
        g = props.get("default_generation_settings", {}) if st == 200 else {}
        params = g.get("params", {})
        f = gguf_ref.GgufFile(model)
        tokens = f.get("tokenizer.ggml.tokens")
        check(st == 200 and abs(params.get("temperature", 0) - 0.8) < 1e-6 and params.get("top_k") == 40
              and abs(params.get("top_p", 0) - 0.95) < 1e-6 and abs(params.get("min_p", 0) - 0.05) < 1e-6
              and params.get("dry_multiplier") == 0 and params.get("dry_sequence_breakers") == ["\n", ":", "\"", "*"]
              and g.get("n_ctx", 0) > 0 and params.get("dry_penalty_last_n") == g["n_ctx"]
              and props.get("total_slots", 0) >= 1 and props.get("model_path") == model,
              f"/props defaults: {json.dumps(props)[:600]}")
        template = f.get("tokenizer.chat_template", None)
        check(template is None or props.get("chat_template") == template, "/props chat_template is the model's")
        check(props.get("bos_token") == tokens[f.get("tokenizer.ggml.bos_token_id")]
              and props.get("eos_token") == tokens[f.get("tokenizer.ggml.eos_token_id")],
              f"/props BOS/EOS texts: {props.get('bos_token')!r} {props.get('eos_token')!r}")

        st, done = d.request("POST", "/completion", {"prompt": "hello", "n_predict": 2, "temperature": 0.3,
                                                     "dry_multiplier": 0.5, "stop": ["xyz"], "seed": 4})
        s = done.get("generation_settings", {}) if st == 200 else {}
        check(st == 200 and abs(s.get("temperature", 0) - 0.3) < 1e-6 and s.get("dry_multiplier") == 0.5
              and s.get("stop") == ["xyz"] and s.get("seed") == 4 and s.get("n_predict") == 2,
              f"/completion generation_settings: {st} {json.dumps(done)[:400]}")

        for method, path in [("POST", "/props"), ("GET", "/slots")]:
            st, e = d.request(method, path, {} if method == "POST" else None)
            check(st == 501 and "/v1/status" in json.dumps(e), f"{method} {path} is refused with a reason: {st} {e}")
    finally:
        d.stop()


def main():
    return e2e.run_on_tiny_model(run)


if __name__ == "__main__":
    sys.exit(main())
