"""Prompt-lookup decoding (`onellm run --lookup-draft N`, `serve --lookup-draft N`, "lookup_draft") gives the text
plain decoding gives, on the fast path.

stories260K's greedy tokens must be the NumPy reference's (forward_ref.py, compared while its best two logits are
more than 0.05 apart, the golden rule), with guesses checked and some right. The bundled model's tool call, whose
arguments copy the request, must be the one plain decoding writes, with most of the copied tokens guessed right.
The daemon, guessing for every request by default, must answer the bundled model's chat requests as it does with
"lookup_draft": 0, alone and several at once (their guesses then share batched passes), and report the guesses in
usage.completion_tokens_details as OpenAI reports predicted outputs. A prediction (`--prediction`, OpenAI's
"prediction") is guessed from first and changes nothing in the output either.
Exit 77 = skipped (no binary).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_check  # noqa: E402
from cli_check import check  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLED = os.path.join(HERE, "..", "..", "models", "onellm-device.gguf")


def run_json(*args):
    rc, out, err = cli_check.onellm("run", "--json", "--no-escape", *args)
    if rc != 0:
        raise AssertionError(f"onellm run {' '.join(args)}: {err[-500:]}")
    return json.loads(out)


def run(tmp):
    import dry_sampling_test as dry  # the NumPy greedy reference with its margins
    if os.path.exists(dry.STORIES):
        import forward_ref
        import gguf_ref
        model = forward_ref.Model(dry.STORIES).load()
        eos = gguf_ref.GgufFile(dry.STORIES).get("tokenizer.ggml.eos_token_id")
        for prompt in ["Once upon a time", "Lily and Tom"]:
            got = run_json("-m", dry.STORIES, "-p", prompt, "-n", str(dry.N), "--temp", "0", "--lookup-draft", "8")
            want, sure = dry.reference_greedy(model, got["prompt_tokens"], (prompt, 0, 1, 0, 0, None), [], eos)
            check(dry.same_while_sure(got["tokens"], want, sure) and sure >= 30,
                  f"{prompt!r}: {got['tokens']} vs the reference {want} (sure of {sure})")
            check(got["draft_tokens"] > 0 and 0 < got["draft_accepted"] <= got["draft_tokens"],
                  f"{prompt!r}: guesses checked: {got['draft_tokens']}, right: {got['draft_accepted']}")
            # A prediction (--lookup-draft 8 by default then): the same tokens, nearly all guessed when it is
            # the output itself, and more than the context gives when it is an edited copy.
            pred_file = os.path.join(tmp, "prediction.txt")
            with open(pred_file, "w") as f:
                f.write(got["text"])
            same = run_json("-m", dry.STORIES, "-p", prompt, "-n", str(dry.N), "--temp", "0", "--prediction-file",
                            pred_file)
            check(same["tokens"] == got["tokens"] and same["draft_accepted"] >= 0.75 * len(got["tokens"]),
                  f"{prompt!r} with itself predicted: {same['draft_accepted']} of {same['draft_tokens']} right")
            words = got["text"].split(" ")
            edited = " ".join(w if i % 6 else "banana" for i, w in enumerate(words))
            near = run_json("-m", dry.STORIES, "-p", prompt, "-n", str(dry.N), "--temp", "0", "--prediction", edited)
            check(near["tokens"] == got["tokens"] and near["draft_accepted"] > got["draft_accepted"],
                  f"{prompt!r} with an edited prediction: {near['draft_accepted']} right, against "
                  f"{got['draft_accepted']} from the context alone")
    else:
        print("note: ../shared/models/stories260K.gguf absent; the bundled model only")
    request = "send a message to Alice saying I will be late for dinner tonight because the train is delayed"
    plain = run_json("-m", BUNDLED, "--chat", "-p", request, "-n", "80", "--temp", "0")
    guessed = run_json("-m", BUNDLED, "--chat", "-p", request, "-n", "80", "--temp", "0", "--lookup-draft", "8")
    check(guessed["tokens"] == plain["tokens"] and "the train is delayed" in guessed["text"],
          f"the bundled model's call: {guessed['text']!r} vs {plain['text']!r}")
    check(guessed["draft_accepted"] >= 10, f"the copied words are guessed: {guessed['draft_accepted']} right of "
                                           f"{guessed['draft_tokens']}")
    sampled = run_json("-m", BUNDLED, "--chat", "-p", request, "-n", "80", "--temp", "0.7", "-s", "3",
                       "--lookup-draft", "8")
    check(sampled["draft_tokens"] > 0 and len(sampled["tokens"]) > 0, f"sampling with guesses: {sampled}")
    rc, _, err = cli_check.onellm("run", "-m", BUNDLED, "-p", "hi", "-n", "4", "--lookup-draft", "x")
    check(rc != 0 and "--lookup-draft" in err, f"a bad count is named: {rc} {err!r}")
    rc, _, err = cli_check.onellm("run", "-m", BUNDLED, "-p", "hi", "-n", "4", "--prediction", "a",
                                  "--prediction-file", os.path.join(tmp, "absent.txt"))
    check(rc != 0 and "--prediction" in err, f"two predictions are refused: {rc} {err!r}")


def service_checks(tmp):
    import threading
    import service_e2e_test as e2e
    requests = ["send a message to Alice saying I will be late for dinner tonight because the train is delayed",
                "remind me to water the tomato plants on the balcony at 6 pm",
                "send a text to Bob saying the meeting moved to Thursday at noon in room 4"]
    d = e2e.Daemon(tmp, BUNDLED, extra=["--lookup-draft", "4"])
    try:
        def ask(text, **extra):
            body = {"messages": [{"role": "user", "content": text}], "max_tokens": 80, "temperature": 0, **extra}
            return d.request("POST", "/v1/chat/completions", body)
        plain = {}
        for text in requests:
            st, r = ask(text, lookup_draft=0)
            check(st == 200 and "completion_tokens_details" not in r["usage"], f"without guesses: {st} {r}")
            plain[text] = r["choices"][0]["message"]
        st, r = ask(requests[0])
        details = r.get("usage", {}).get("completion_tokens_details", {}) if st == 200 else {}
        check(st == 200 and r["choices"][0]["message"] == plain[requests[0]]
              and details.get("accepted_prediction_tokens", 0) >= 10 and details.get("rejected_prediction_tokens", -1) >= 0,
              f"the daemon's default guesses: {r}")
        got = {}

        def worker(text):
            got[text] = ask(text)
        threads = [threading.Thread(target=worker, args=(t,)) for t in requests]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for text in requests:
            st, r = got[text]
            check(st == 200 and r["choices"][0]["message"] == plain[text], f"at once: {text!r}: {r}")
        st, e = ask(requests[0], lookup_draft=-3)
        check(st == 400 and "lookup_draft" in json.dumps(e), f"a bad lookup_draft is named: {st} {e}")
        # OpenAI's predicted outputs: the same text, most of it guessed right, as a string or as text parts.
        def complete(**extra):
            body = {"prompt": "The weather today is", "max_tokens": 40, "temperature": 0, "lookup_draft": 0,
                    **extra}
            return d.request("POST", "/v1/completions", body)
        st, r = complete()
        check(st == 200 and r["choices"][0]["text"], f"a plain completion: {st} {r}")
        text = r["choices"][0]["text"]
        for content in (text, [{"type": "text", "text": text[:10]}, {"type": "text", "text": text[10:]}]):
            st, r2 = complete(lookup_draft=None, prediction={"type": "content", "content": content})
            details = r2.get("usage", {}).get("completion_tokens_details", {}) if st == 200 else {}
            check(st == 200 and r2["choices"][0]["text"] == text
                  and details.get("accepted_prediction_tokens", 0) >= r2["usage"]["completion_tokens"] - 8,
                  f"with the text predicted: {st} {r2}")
        st, r2 = ask(requests[2], prediction={"type": "content", "content": "Sure, Bob: the meeting is on Thursday"})
        check(st == 200 and r2["choices"][0]["message"] == plain[requests[2]], f"a wrong prediction: {st} {r2}")
        for bad in ({"type": "text", "content": "x"}, {"type": "content", "content": 3},
                    {"type": "content", "content": [{"type": "text"}]}, "x"):
            st, e = ask(requests[0], prediction=bad)
            check(st == 400 and "prediction" in json.dumps(e), f"a bad prediction {bad!r} is named: {st} {e}")
    finally:
        d.stop()


def main():
    def both(tmp):
        run(tmp)
        service_checks(tmp)
    return cli_check.main_in_tmp(both)


if __name__ == "__main__":
    sys.exit(main())
