"""`onellm run --lookup-draft N` (prompt-lookup decoding) gives the text plain decoding gives, on the fast path.

stories260K's greedy tokens must be the NumPy reference's (forward_ref.py, compared while its best two logits are
more than 0.05 apart, the golden rule), with guesses checked and some right. The bundled model's tool call, whose
arguments copy the request, must be the one plain decoding writes, with most of the copied tokens guessed right.
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


def main():
    return cli_check.main_in_tmp(run)


if __name__ == "__main__":
    sys.exit(main())
