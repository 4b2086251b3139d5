"""DRY, top-n-sigma and llama-server's n_probs / return_tokens against an independent NumPy reference.

On stories260K (a real trained Llama), greedy decoding with DRY is worked out here: each next token is the argmax of
forward_ref.py's float64 logits less DRY's penalties, computed by brute force from the definition (koboldcpp's DRY
as llama.cpp runs it; with one-character breakers, the breaker tokens are those whose text contains one). The tokens
of `onellm run --json`, of llama-server's /completion (whole and streamed, return_tokens) and the text of
/v1/completions must be those. /completion's n_probs must give the model's own log-probabilities and top tokens, and
with post_sampling_probs the probabilities of the tokens top-k / top-p / temperature leave, worked out here.
A top-n-sigma small enough to keep only the best token must turn sampling into greedy decoding.
Exit 77 = skipped (no binary or no ../shared).
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_check  # noqa: E402
import forward_ref  # noqa: E402
import gguf_ref  # noqa: E402
import service_e2e_test as e2e  # noqa: E402
from service_e2e_test import Daemon, check, sse_events  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("ONELLM_SHARED_DIR", os.path.join(HERE, "..", "..", "..", "shared"))
STORIES = os.path.join(SHARED, "models", "stories260K.gguf")
N = 90  # the model's context is 128 tokens

CASES = [  # prompt, multiplier, base, allowed length, window, breakers (None: the default four)
    ("Once upon a time", 0.8, 1.75, 2, -1, None),
    ("Lily and Tom", 3.0, 1.5, 1, 40, ["."]),
    ("One day", 2.0, 1.2, 2, 30, ["\n", "!"]),
]
DEFAULT_BREAKERS = ["\n", ":", "\"", "*"]


def pieces_of(path):
    """Each token's text as the model's detokenizer gives it (SentencePiece: byte tokens, U+2581 for spaces)."""
    out = []
    for t in gguf_ref.GgufFile(path).get("tokenizer.ggml.tokens"):
        if len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
            out.append(chr(int(t[3:5], 16)))
        else:
            out.append(t.replace("\u2581", " "))
    return out


def dry_penalties(history, multiplier, base, allowed, window, breaker_ids):
    """token -> penalty, from the definition: a token that followed an earlier stretch equal to the history's end,
    of length L (counted only after the newest breaker), with L >= allowed, loses multiplier * base^(L - allowed)
    for its largest L; breaker tokens are never penalized."""
    w = history if window < 0 else history[-window:] if window > 0 else []
    n = len(w)
    if n <= allowed:
        return {}
    limit = n
    for i in range(n - 1, -1, -1):
        if w[i] in breaker_ids:
            limit = n - 1 - i
            break
    if limit < allowed:
        return {}
    longest = {}
    for end in range(n - 1):
        length = 0
        while length <= end and w[end - length] == w[n - 1 - length]:
            length += 1
        length = min(length, limit)
        if length >= allowed:
            longest[w[end + 1]] = max(longest.get(w[end + 1], 0), length)
    return {t: multiplier * base ** (length - allowed) for t, length in longest.items() if t not in breaker_ids}


def reference_greedy(model, prompt_ids, case, pieces, eos):
    """(tokens until EOS or N, how many of them are sure): as the golden rule, a token is compared only while the
    best two (penalized) logits are more than 0.05 apart, the default path's tolerance."""
    _, multiplier, base, allowed, window, breakers = case
    breaker_ids = {i for i, p in enumerate(pieces) if any(b in p for b in (breakers or DEFAULT_BREAKERS))}
    tokens, sure = list(prompt_ids), None
    for step in range(N):
        row = forward_ref.forward(model, tokens)[-1].copy()
        if multiplier:
            for t, p in dry_penalties(tokens, multiplier, base, allowed, window, breaker_ids).items():
                row[t] -= p
        best, second = np.sort(row)[-2:][::-1]
        if sure is None and best - second <= 0.05:
            sure = step
        if int(np.argmax(row)) == eos:
            break
        tokens.append(int(np.argmax(row)))
    out = tokens[len(prompt_ids):]
    return out, len(out) if sure is None else sure


def same_while_sure(got, want, sure):
    return got[:sure] == want[:sure] and (sure < len(want) or got == want)


def cli_args(case):
    _, multiplier, base, allowed, window, breakers = case
    args = ["--dry-multiplier", str(multiplier), "--dry-base", str(base), "--dry-allowed-length", str(allowed),
            "--dry-penalty-last-n", str(window)]
    for b in breakers or []:
        args += ["--dry-sequence-breaker", b.replace("\n", "\\n")]
    return args


def api_fields(case):
    _, multiplier, base, allowed, window, breakers = case
    body = {"dry_multiplier": multiplier, "dry_base": base, "dry_allowed_length": allowed,
            "dry_penalty_last_n": window}
    if breakers:
        body["dry_sequence_breakers"] = breakers
    return body


def cli_run(prompt, *extra):
    rc, out, err = cli_check.onellm("run", "-m", STORIES, "-p", prompt, "-n", str(N), "--no-escape", "--json", *extra)
    if rc != 0:
        raise AssertionError(f"onellm run {' '.join(extra)}: {err[-500:]}")
    return json.loads(out)


def body(tmp):
    model = forward_ref.Model(STORIES).load()
    pieces = pieces_of(STORIES)
    eos = gguf_ref.GgufFile(STORIES).get("tokenizer.ggml.eos_token_id")
    d = Daemon(tmp, STORIES)
    try:
        changed = 0
        for case in CASES:
            prompt = case[0]
            greedy = cli_run(prompt, "--temp", "0")
            want, sure = reference_greedy(model, greedy["prompt_tokens"], case, pieces, eos)
            plain, plain_sure = reference_greedy(model, greedy["prompt_tokens"], (prompt, 0, 1, 0, 0, None), pieces,
                                                 eos)
            check(same_while_sure(greedy["tokens"], plain, plain_sure),
                  f"{prompt!r}: greedy without DRY is the reference's")
            changed += want[:sure] != plain[:sure]
            check(sure >= 30, f"{case}: the reference is sure of {sure} tokens only")
            got = cli_run(prompt, "--temp", "0", *cli_args(case))
            check(same_while_sure(got["tokens"], want, sure),
                  f"{case}: onellm run {got['tokens']} vs reference {want} (sure of {sure})")
            # The service must give what the CLI gives.
            common = {"prompt": prompt, "temperature": 0, **api_fields(case)}
            st, nat = d.request("POST", "/completion", {**common, "n_predict": N, "return_tokens": True})
            check(st == 200 and nat.get("tokens") == got["tokens"], f"{case}: /completion {str(nat)[:300]}")
            conn, resp = d.request("POST", "/completion", {**common, "n_predict": N, "return_tokens": True,
                                                            "stream": True}, stream=True)
            streamed = [t for e in sse_events(resp) for t in e.get("tokens", [])]
            conn.close()
            check(streamed == got["tokens"], f"{case}: streamed /completion tokens {streamed[:30]}")
            st, oai = d.request("POST", "/v1/completions", {**common, "max_tokens": N})
            check(st == 200 and oai["choices"][0]["text"] == got["text"], f"{case}: /v1/completions {str(oai)[:300]}")
        check(changed == len(CASES), f"DRY changed the greedy text in {changed} of {len(CASES)} cases")

        # n_probs: the model's own distribution (before sampling), most likely first.
        st, nat = d.request("POST", "/completion", {"prompt": "Once upon a time", "n_predict": 3, "temperature": 0,
                                                    "n_probs": 4, "return_tokens": True})
        probs = nat.get("completion_probabilities", []) if st == 200 else []
        prompt_ids = cli_run("Once upon a time", "--temp", "0")["prompt_tokens"]
        logits = forward_ref.forward(model, prompt_ids + nat.get("tokens", []))
        ok = len(probs) == 3
        for i, entry in enumerate(probs):
            row = logits[len(prompt_ids) - 1 + i]
            logp = row - (row.max() + np.log(np.exp(row - row.max()).sum()))
            top = [t for t, _ in forward_ref.top_k(row, 4)]
            # The default path's logit tolerance (0.03, ../shared/golden/README.md), for a difference of two.
            ok = ok and entry["id"] == nat["tokens"][i] and abs(entry["logprob"] - logp[entry["id"]]) < 0.06
            ok = ok and [t["id"] for t in entry["top_logprobs"]] == top
            ok = ok and all(abs(t["logprob"] - logp[t["id"]]) < 0.06 and t["token"] == pieces[t["id"]]
                            for t in entry["top_logprobs"])
        check(ok, f"n_probs against NumPy: {json.dumps(probs)[:600]}")

        # post_sampling_probs: the distribution each token was drawn from. Top-k 5, then top-p 0.8 on the
        # temperature-1 probabilities, then temperature 0.7 over the survivors (llama.cpp's order), worked out here.
        settings = {"temperature": 0.7, "top_k": 5, "top_p": 0.8, "min_p": 0, "seed": 11}
        st, post = d.request("POST", "/completion", {"prompt": "Once upon a time", "n_predict": 4, "n_probs": 10,
                                                     "post_sampling_probs": True, "return_tokens": True, **settings})
        entries = post.get("completion_probabilities", []) if st == 200 else []
        logits = forward_ref.forward(model, prompt_ids + post.get("tokens", []))
        ok = len(entries) == 4 and post["generation_settings"].get("post_sampling_probs") is True
        for i, entry in enumerate(entries):
            row = logits[len(prompt_ids) - 1 + i].astype(np.float64)
            order = list(np.argsort(-row, kind="stable")[:5])
            p1 = np.exp(row[order] - row[order].max())
            p1 /= p1.sum()
            keep = int(np.searchsorted(np.cumsum(p1), 0.8) + 1)  # the fewest whose mass reaches top_p
            kept = order[:keep]
            pt = np.exp((row[kept] - row[kept].max()) / 0.7)
            pt /= pt.sum()
            want = dict(zip((int(t) for t in kept), pt))
            got = {t["id"]: t["prob"] for t in entry.get("top_probs", [])}
            ok = ok and set(got) == set(want) and all(abs(got[t] - want[t]) < 0.02 for t in want)
            ok = ok and entry["id"] == post["tokens"][i] and abs(entry.get("prob", -1) - want.get(entry["id"], 2)) < 0.02
            ok = ok and "logprob" not in entry and list(got.values()) == sorted(got.values(), reverse=True)
        check(ok, f"post_sampling_probs against NumPy: {json.dumps(entries)[:800]}")

        # Top-n-sigma 1e-6 keeps the best token alone: sampling at temperature 1 is then greedy.
        want = cli_run("Once upon a time", "--temp", "0")["tokens"]
        got = cli_run("Once upon a time", "--temp", "1", "--top-k", "0", "--top-p", "1", "--min-p", "0",
                      "-s", "5", "--top-nsigma", "1e-6")
        check(got["tokens"] == want, f"--top-nsigma 1e-6 is greedy: {got['tokens'][:20]} vs {want[:20]}")
        st, oai = d.request("POST", "/v1/completions", {"prompt": "Once upon a time", "max_tokens": N,
                                                        "temperature": 1, "seed": 5, "top_n_sigma": 1e-6})
        check(st == 200 and oai["choices"][0]["text"] == got["text"], f"top_n_sigma on /v1/completions: {oai}")
        st, free = d.request("POST", "/v1/completions", {"prompt": "Once upon a time", "max_tokens": N,
                                                         "temperature": 1.5, "seed": 5})
        check(st == 200 and free["choices"][0]["text"] != got["text"], "without it, sampling at 1.5 is not greedy")

        # Bad settings are named.
        for bad, field in [({"dry_multiplier": -1}, "dry_multiplier"), ({"dry_sequence_breakers": []},
                           "dry_sequence_breakers"), ({"dry_sequence_breakers": [1]}, "dry_sequence_breakers"),
                           ({"dry_penalty_last_n": -2}, "dry_penalty_last_n")]:
            st, e = d.request("POST", "/v1/completions", {"prompt": "hi", "max_tokens": 2, "dry_multiplier": 1, **bad})
            check(st == 400 and field in json.dumps(e), f"{bad} is refused naming {field}: {st} {e}")
    finally:
        d.stop()


def main():
    if not os.path.exists(STORIES):
        print("skip: ../shared/models/stories260K.gguf absent")
        return 77
    return e2e.run_main(body)


if __name__ == "__main__":
    sys.exit(main())
