"""End-to-end tests of the context layer in the real daemon: sessions' KV chunks survive SIGTERM and
kill -9 (the greedy reply after resume equals the reply computed without any stored KV), a corrupted
chunk file is detected and recomputed, a different model file invalidates every chunk, one app's
chunks are never used for another app, and an unwritable chunk store keeps sessions working in memory.
Exit 77 = skipped (no binary)."""
import json
import concurrent.futures
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from service_e2e_test import Daemon, check  # noqa: E402
import service_e2e_test as base  # noqa: E402

BIN = os.environ.get("ONELLM_BIN", "")

LOAD = ["--kv-restore", "load"]  # chunks on disk are always loaded, never recomputed
PUBLIC = " ".join(f"Tool {i}: the shared device tool list that every app may reuse." for i in range(5))

CONFIG = """
[service]
keep_alive_s = 0
default_context = 512
public_prefixes = ["%s"]

[[app]]
id = "mail"
token = "tok-mail"

[[app]]
id = "notes"
token = "tok-notes"
""" % PUBLIC

INSTRUCTIONS = " ".join(f"Rule {i}: answer about the little dog and the red ball in the park." for i in range(5))


def hexname(app):
    return app.encode().hex()


class Client:
    def __init__(self, d):
        self.d = d

    def session(self, token, name, instructions=INSTRUCTIONS):
        st, s = self.d.request("POST", "/v1/sessions", {"instructions": instructions, "name": name, "qos": "chat"},
                               token=token)
        assert st == 200, s
        return s["id"]

    def say(self, token, sid, content):
        msg = {"role": "user", "content": content, "max_tokens": 12, "temperature": 0, "ignore_eos": True}
        st, r = self.d.request("POST", f"/v1/sessions/{sid}/messages", msg, token=token)
        assert st == 200, (st, r)
        return r

    def context(self):
        st, body = self.d.request("GET", "/v1/status", token="tok-mail")
        return body["context"]

    def wait_written(self):
        deadline = time.time() + 60
        while time.time() < deadline:
            c = self.context()
            if c["pending_writes"] == 0:
                return c
            time.sleep(0.05)
        raise RuntimeError("chunk writes did not finish")


def chunk_files(state, app):
    d = os.path.join(state, "kv", hexname(app))
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".kvc")) if os.path.isdir(d) else []


def run(tmp, model_a, model_b):
    cfg = os.path.join(tmp, "onellm.toml")
    with open(cfg, "w") as f:
        f.write(CONFIG)
    state = os.path.join(tmp, "state")

    # 1. Two turns in app mail; the reference for every later check is the same conversation in app
    # notes, computed with no stored KV at all (its chunks are never shared with mail).
    d = Daemon(tmp, model_a, cfg, state)
    c = Client(d)
    try:
        s1 = c.session("tok-mail", "restart")
        first = c.say("tok-mail", s1, "hello there")
        c.wait_written()
        files = chunk_files(state, "mail")
        check(len(files) >= 4, f"chunk files written back for app mail: {len(files)}")
        check(chunk_files(state, "notes") == [], "nothing stored for an app that did not run")
        check(oct(os.stat(os.path.dirname(files[0])).st_mode & 0o777) == "0o700", "app chunk directory is private")
    finally:
        code = d.stop()
    check(code == 0, "daemon stopped cleanly")

    # Loading is forced: on a tiny model "auto" may rightly find recomputing cheaper.
    d = Daemon(tmp, model_a, cfg, state, extra=LOAD)
    c = Client(d)
    try:
        second = c.say("tok-mail", s1, "and then?")
        check(second["usage"]["prompt_tokens_restored"] >= 64,
              f"after a restart the session's KV is loaded, not re-read: {second['usage']}")
        ref = c.session("tok-notes", "reference")
        ref_first = c.say("tok-notes", ref, "hello there")
        check(ref_first["usage"]["prompt_tokens_restored"] == 0, "another app's chunks are not used")
        check(ref_first["content"] == first["content"], "same first reply in both apps")
        ref_second = c.say("tok-notes", ref, "and then?")
        check(second["content"] == ref_second["content"],
              f"reply after restart equals the reply without stored KV: {second['content']!r} vs {ref_second['content']!r}")

        # Public prefixes (declared in the config) are shared across apps; nothing else is.
        pub_mail = c.session("tok-mail", "public", PUBLIC)
        r_mail = c.say("tok-mail", pub_mail, "hello there")
        c.wait_written()
        check(len(chunk_files(state, "\x02public")) >= 1, "public prefix chunks stored apart from any app")
        pub_notes = c.session("tok-notes", "public", PUBLIC)
        r_notes = c.say("tok-notes", pub_notes, "hello there")
        check(r_notes["usage"]["prompt_tokens_restored"] >= 32, f"a public prefix is shared: {r_notes['usage']}")
        check(r_notes["content"] == r_mail["content"], "same reply with the shared public prefix")

        # 2. kill -9 right after the chunks are durable.
        s2 = c.session("tok-mail", "killed")
        c.say("tok-mail", s2, "hello there")
        c.wait_written()
        d.kill()
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
    d = Daemon(tmp, model_a, cfg, state, extra=LOAD)
    c = Client(d)
    try:
        after_kill = c.say("tok-mail", s2, "and then?")
        check(after_kill["usage"]["prompt_tokens_restored"] >= 64, f"restored after kill -9: {after_kill['usage']}")
        check(after_kill["content"] == ref_second["content"], "reply after kill -9 equals the reference")
    finally:
        d.stop()

    # 3. A corrupted chunk file is detected and recomputed; the reply does not change.
    files = chunk_files(state, "mail")
    for i, path in enumerate(files):  # one byte flipped in each, and one file truncated
        with open(path, "r+b") as f:
            if i == 0:
                f.truncate(100)
                continue
            f.seek(300)
            byte = f.read(1)
            f.seek(300)
            f.write(bytes([byte[0] ^ 0xFF]))
    d = Daemon(tmp, model_a, cfg, state)
    c = Client(d)
    try:
        s3 = c.session("tok-mail", "after-corruption")
        r = c.say("tok-mail", s3, "hello there")
        ctx = c.context()
        check(ctx["chunks_corrupt"] >= 1, f"corrupt chunks detected: {ctx}")
        check(r["content"] == first["content"], "reply unchanged with corrupt chunks (recomputed)")
    finally:
        d.stop()
    check("kv_chunk_rejected" in d.log, "rejected chunk logged")

    # 4. Another model file on the same state directory: every old chunk is discarded.
    d = Daemon(tmp, model_b, cfg, state)
    c = Client(d)
    try:
        ctx = c.context()
        check(ctx["chunks_discarded"] >= 4, f"model swap discards old chunks: {ctx['chunks_discarded']}")
        r = c.say("tok-mail", s1, "one more")
        check(r["usage"]["prompt_tokens_restored"] == 0, "no chunk of the old model is loaded")
    finally:
        d.stop()

    # 5. Unwritable store (a file where the app's chunk directory goes): clear error, session works.
    state2 = os.path.join(tmp, "state2")
    os.makedirs(os.path.join(state2, "kv"))
    with open(os.path.join(state2, "kv", hexname("mail")), "w") as f:
        f.write("not a directory")
    d = Daemon(tmp, model_a, cfg, state2)
    c = Client(d)
    try:
        s = c.session("tok-mail", "no-disk")
        r1 = c.say("tok-mail", s, "hello there")
        ctx = c.wait_written()
        check(ctx["write_errors"] >= 1 and hexname("mail") in ctx["last_error"], f"write error reported: {ctx}")
        r2 = c.say("tok-mail", s, "and then?")
        check(r1["content"] == first["content"] and r2["content"] == ref_second["content"],
              "session works in memory without a writable store")
    finally:
        d.stop()
    check("kv_write_failed" in d.log, "write failure logged")


def budget_pressure(tmp, model, cfg):
    """Many sessions under a budget smaller than their KV: every request succeeds, the budget holds."""
    state = os.path.join(tmp, "state3")
    d = Daemon(tmp, model, cfg, state, extra=["--kv-budget", "1M"])
    c = Client(d)
    try:
        sessions = [c.session("tok-mail" if i % 2 else "tok-notes", f"b{i}") for i in range(6)]
        replies = {}
        for turn in ("hello there", "and then?"):
            for i, sid in enumerate(sessions):
                replies.setdefault(i, []).append(c.say("tok-mail" if i % 2 else "tok-notes", sid, turn)["content"])
        ctx = c.wait_written()
        check(ctx["peak_bytes"] <= ctx["budget_bytes"] and ctx["over_budget"] == 0,
              f"budget never exceeded: peak {ctx['peak_bytes']} of {ctx['budget_bytes']}")
        check(ctx["live_sessions"] < 6, f"sessions were parked: {ctx['live_sessions']} live")
        check(all(r == replies[0] for r in replies.values()), "same conversation, same replies, whatever was evicted")

        # Stateless requests lease scratch sessions from the same budget and
        # never write their text to disk.
        files_before = sum(len(chunk_files(state, app)) for app in ("mail", "notes"))
        prompt = "tell me a long story about a dog " * 20

        def stateless(i):
            token = "tok-mail" if i % 2 else "tok-notes"
            body = {"messages": [{"role": "user", "content": f"{prompt} {i}"}], "max_tokens": 8, "temperature": 0}
            return d.request("POST", "/v1/chat/completions", body, token=token)[0]

        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            codes = list(pool.map(stateless, range(9)))
        check(all(code == 200 for code in codes), f"stateless requests under the budget all succeed: {codes}")
        ctx = c.wait_written()
        check(ctx["peak_bytes"] <= ctx["budget_bytes"] and ctx["over_budget"] == 0,
              f"stateless KV counted in the budget: peak {ctx['peak_bytes']} of {ctx['budget_bytes']}")
        files_after = sum(len(chunk_files(state, app)) for app in ("mail", "notes"))
        check(files_after == files_before, f"stateless requests wrote no chunk files ({files_before} -> {files_after})")
    finally:
        d.stop()


def main():
    def body(tmp):
        a = os.path.join(tmp, "a.gguf")
        b = os.path.join(tmp, "b.gguf")
        for path, seed in ((a, "1"), (b, "2")):
            subprocess.run([BIN, "make-tiny-model", "--arch", "qwen2", "--n-layer", "2", "--seed", seed, "-o", path],
                           check=True, capture_output=True)
        run(tmp, a, b)
        budget_pressure(tmp, a, os.path.join(tmp, "onellm.toml"))
    return base.run_main(body)


if __name__ == "__main__":
    sys.exit(main())
