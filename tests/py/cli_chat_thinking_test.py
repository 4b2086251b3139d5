#!/usr/bin/python3
"""`onellm chat` with a thinking model: on a terminal the <think> part is shown dimmed, piped it stays as generated.

A random-weight model gets a chat template whose generation prompt ends with <think> (as DeepSeek-R1's distills
write it), so the whole reply is reasoning until a </think>. With stdout a pseudo-terminal the reply must come
between the terminal's dim and reset codes; piped, stdout must be exactly `onellm run`'s greedy text for the
same prompt. Exit 77 = skipped (no binary).
"""
import os
import pty
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cli_check  # noqa: E402
import gguf_ref  # noqa: E402
from cli_check import check, must  # noqa: E402

TEMPLATE = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|><think>\n{% endif %}")


def chat(model, stdout):
    return subprocess.run([cli_check.BIN, "chat", "-m", model, "-n", "6", "--temp", "0", "--ignore-eos"],
                          input=b"hello\n", stdout=stdout, stderr=subprocess.PIPE, timeout=120)


def run(tmp):
    base = os.path.join(tmp, "tiny.gguf")
    must("make-tiny-model", "--arch", "qwen2", "--n-layer", "2", "-o", base)
    model = os.path.join(tmp, "thinking.gguf")
    gguf_ref.rewrite_gguf(base, model, [("tokenizer.chat_template", gguf_ref.STRING, TEMPLATE)])
    piped = chat(model, subprocess.PIPE)
    want, _ = must("run", "-m", model, "--chat", "-p", "hello", "-n", "6", "--temp", "0", "--ignore-eos")
    check(piped.returncode == 0 and piped.stdout.decode("utf-8", "replace") == want + "\n",
          f"piped: the text as generated: {piped.stdout!r} vs {want!r}")
    master, slave = pty.openpty()
    p = chat(model, slave)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    text = shown.decode("utf-8", "replace").replace("\r\n", "\n")
    thought = want.split("</think>")[0].strip() if want.strip() else ""
    check(p.returncode == 0 and "\x1b[2m" in text and "\x1b[0m" in text and thought in text
          and text.index("\x1b[2m") < text.index(thought or "\x1b[0m") <= text.rindex("\x1b[0m"),
          f"on a terminal the thinking is dimmed: {text!r} (want {thought!r})")


def main():
    return cli_check.main_in_tmp(run)


if __name__ == "__main__":
    sys.exit(main())
