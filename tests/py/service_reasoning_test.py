"""End-to-end: replies of a thinking model split into reasoning_content and content by the real daemon.

A random-weight model gets a chat template whose generation prompt ends with <think> (as DeepSeek-R1's
distills write it), so everything it generates before a </think> is reasoning. Checked over the Unix socket
(the launcher app, by peer credentials): the reply's text moves whole to message.reasoning_content with
content empty, "reasoning_format": "none" keeps it as content, streaming sends it as
delta.reasoning_content, a session's reply carries it, and a bad reasoning_format is BAD_REQUEST naming
the field. Exit 77 = skipped (no binary).
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_ref  # noqa: E402
import service_e2e_test as e2e  # noqa: E402
from service_e2e_test import Daemon, check, sse_events  # noqa: E402

TEMPLATE = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|><think>\n{% endif %}")


def run(tmp, model):
    thinking = os.path.join(tmp, "thinking.gguf")
    gguf_ref.rewrite_gguf(model, thinking, [("tokenizer.chat_template", gguf_ref.STRING, TEMPLATE)])
    cfg = os.path.join(tmp, "onellm.toml")
    with open(cfg, "w") as f:
        f.write(e2e.CONFIG)
    d = Daemon(tmp, thinking, cfg)
    try:
        chat = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 8, "temperature": 0,
                "ignore_eos": True}
        st, raw = d.request("POST", "/v1/chat/completions", dict(chat, reasoning_format="none"), unix=True)
        text = raw["choices"][0]["message"]["content"] if st == 200 else ""
        check(st == 200 and "reasoning_content" not in raw["choices"][0]["message"],
              f"reasoning_format none keeps the text as content: {st} {raw}")
        st, body = d.request("POST", "/v1/chat/completions", chat, unix=True)
        message = body["choices"][0]["message"] if st == 200 else {}
        if "</think>" in text:  # the random model closed its thinking: the part before is reasoning
            want = text.split("</think>", 1)[0].strip()
        else:
            want = text.strip()
        check(st == 200 and message.get("reasoning_content", "") == want and
              (message["content"] or "") == ("" if "</think>" not in text else text.split("</think>", 1)[1].lstrip()),
              f"reasoning split off: {message} from {text!r}")
        conn, resp = d.request("POST", "/v1/chat/completions", dict(chat, stream=True), unix=True, stream=True)
        ev = sse_events(resp)
        conn.close()
        deltas = [e["choices"][0]["delta"] for e in ev if isinstance(e, dict) and e.get("choices")]
        streamed = "".join(x.get("reasoning_content", "") for x in deltas)
        check(streamed.strip() == want and all("content" not in x or x["content"] == "" or "</think>" in text
                                               for x in deltas),
              f"streamed as delta.reasoning_content: {deltas}")
        st, body = d.request("POST", "/v1/chat/completions", dict(chat, reasoning_format="xml"), unix=True)
        check(st == 400 and body["error"]["param"] == "reasoning_format", f"bad reasoning_format named: {body}")
        st, s1 = d.request("POST", "/v1/sessions", {"name": "thinker"}, unix=True)
        st, r1 = d.request("POST", f"/v1/sessions/{s1['id']}/messages",
                           {"role": "user", "content": "hello", "max_tokens": 8, "temperature": 0,
                            "ignore_eos": True}, unix=True)
        check(st == 200 and r1.get("reasoning_content") == want, f"a session's reply carries reasoning: {r1}")
    finally:
        d.stop()


def main():
    return e2e.run_on_tiny_model(run)


if __name__ == "__main__":
    sys.exit(main())
