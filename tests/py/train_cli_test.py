"""End-to-end check of the training commands through the real binary ($ONELLM_BIN).

make-corpus -> train-tokenizer -> train a tiny model: the loss must fall well below the
uniform ln(vocab), held-out loss too; the exported GGUF must run with `onellm run`; a run
stopped with --stop-at and resumed from its checkpoint must export the same bytes as an
uninterrupted one; finetune --lora must lower the held-out loss of its frozen base (also
with --loss replies), resume from its checkpoint to the same adapter bytes, and its merged
model must run (in F32, and by default in the base's type); the same for a qwen3 model (--arch:
per-head q/k norms, wide heads), whose adapter applied at run time must say what its merged
model does. Bad input fails with exit code 1 and a message naming it.
Exit 77 = skipped (no binary).
"""
import json
import math
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_check  # noqa: E402
from cli_check import BIN, check, must, onellm  # noqa: E402,F401


def losses(stderr, pattern=r"^step \d+/\d+ loss ([0-9.]+)"):
    return [float(m.group(1)) for m in re.finditer(pattern, stderr, re.M)]


def main():
    if not BIN or not os.path.exists(BIN):
        print("skip: ONELLM_BIN not set")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        p = lambda name: os.path.join(tmp, name)
        must("make-corpus", "--seed", "3", "--out", p("corpus"), "--train", "1500", "--heldout", "100")
        train_txt, heldout_txt = p("corpus/train.txt"), p("corpus/heldout.txt")
        vocab = 512
        must("train-tokenizer", "--corpus", train_txt, "--vocab-size", str(vocab), "-o", p("tok.gguf"))

        shape = ["--n-embd", "64", "--n-layer", "2", "--n-head", "4", "--n-head-kv", "2", "--seq-len", "64",
                 "--batch", "4", "--lr", "3e-3", "--warmup", "5", "--seed", "7", "-t", "2"]
        _, err = must("train", "--corpus", train_txt, "--tokenizer", p("tok.gguf"), *shape, "--steps", "80",
                      "--eval", heldout_txt, "--eval-every", "80", "--log-every", "1", "--out", p("model.gguf"),
                      "--out-type", "Q8_0", "--copy-bias", "7.5")
        steps = losses(err)
        check(len(steps) == 80, "one progress line per step (got %d)" % len(steps))
        check("tokens/s" in err, "progress reports tokens/s")
        check(abs(steps[0] - math.log(vocab)) < 0.5, "first loss %.3f near ln(%d) = %.3f" % (steps[0], vocab, math.log(vocab)))
        tail = sum(steps[-5:]) / 5
        check(tail < 0.6 * steps[0], "loss falls: %.3f -> %.3f" % (steps[0], tail))
        evals = losses(err, r"^eval step \d+ loss ([0-9.]+)")
        check(len(evals) == 1 and evals[0] < 0.7 * math.log(vocab), "held-out loss %s well below uniform" % evals)

        prompt = "<|im_start|>user\nset an alarm for 7 am<|im_end|>\n<|im_start|>assistant\n"
        rc, out, err = onellm("run", "-m", p("model.gguf"), "-p", prompt, "-n", "12", "--temp", "0")
        check(rc == 0, "onellm run loads the trained model: " + err[-300:])
        # --copy-bias is stored with the model as the default of run/chat/serve.
        out, _ = must("info", p("model.gguf"))
        check(re.search(r"^copy bias:\s+7\.5 ", out, re.M), "info shows the stored copy bias: " + out[-300:])

        # The teacher-forced loss split of scripts/tool-call-token-loss on the trained model.
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "tool-call-token-loss")
        r = subprocess.run([script, p("model.gguf"), p("corpus/heldout.jsonl"), "--limit", "6", "--bin", BIN],
                           capture_output=True, text=True, timeout=300)
        rows = re.findall(r"^(.+?)\s+tokens\s+(\d+)\s+mean nll\s+([0-9.]+)", r.stdout, re.M)
        check(r.returncode == 0 and rows and all(0 < float(nll) < 3 * math.log(vocab) for _, _, nll in rows),
              "tool-call-token-loss: %s %s" % (r.stdout[-400:], r.stderr[-400:]))

        # scripts/eval-tool-calls on the bundled model: per-prompt `onellm run` and the real service
        # (--served: the service renders the row's messages and tools itself) agree within a row,
        # so the service's prompt is the corpus's. Without copy-aware decoding in both: raw-prompt
        # `onellm run` has no request to copy from.
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "eval-tool-calls")
        bundled = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "onellm-device.gguf")
        exact = {}
        for mode in ([], ["--served", p("corpus/tools.json"), "--copy-bias", "0"]):
            r = subprocess.run([script, bundled, p("corpus/heldout.jsonl"), "--limit", "12", "--bin", BIN, *mode],
                               capture_output=True, text=True, timeout=300)
            m = re.search(r"^all\s+n=\s*12\s+exact calls\s+([0-9.]+)%", r.stdout, re.M)
            check(r.returncode == 0 and m, "eval-tool-calls %s: %s %s" % (mode, r.stdout[-300:], r.stderr[-300:]))
            exact[bool(mode)] = float(m.group(1)) if m else -100
            # The misses, by kind, account for every row that is not exact.
            missed = re.search(r"^misses\s+n=\s*(\d+)$", r.stdout, re.M)
            by_kind = [int(c) for c in re.findall(r"^  \S.*?\s(\d+)\s+[0-9.]+%$", r.stdout, re.M)]
            check(missed and m and int(missed.group(1)) == round(12 * (1 - exact[bool(mode)] / 100))
                  and sum(by_kind) == int(missed.group(1)), "eval-tool-calls counts its misses: " + r.stdout[-500:])
        print("eval-tool-calls exact:", exact)
        check(abs(exact[True] - exact[False]) <= 100 / 12 + 0.1, "served and per-prompt evaluation agree: %s" % exact)
        tok_txt = p("corpus/tokenizer.txt")
        check(os.path.exists(tok_txt) and 0 < os.path.getsize(tok_txt) < os.path.getsize(train_txt),
              "make-corpus writes tokenizer.txt, shorter than train.txt (values cut out)")

        # Stopped at step 30 and resumed == uninterrupted, byte for byte.
        base = ["--corpus", train_txt, *shape, "--steps", "40"]
        must("train", "--tokenizer", p("tok.gguf"), *base, "--out", p("full.gguf"))
        must("train", "--tokenizer", p("tok.gguf"), *base, "--stop-at", "30", "--checkpoint", p("ck.gguf"))
        _, err = must("train", "--resume", p("ck.gguf"), "--corpus", train_txt, "-t", "1", "--out", p("resumed.gguf"))
        check("resumed" in err and "at step 30 of 40" in err, "resume reports its step: " + err[:200])
        with open(p("full.gguf"), "rb") as a, open(p("resumed.gguf"), "rb") as b:
            check(a.read() == b.read(), "resumed run exports the same bytes as the uninterrupted run")

        # LoRA on the frozen Q8_0 model, on the held-out text (a new task for it).
        _, err = must("finetune", "--lora", "--base", p("model.gguf"), "--corpus", heldout_txt, "--rank", "4",
                      "--targets", "attn_q,attn_v,ffn_down", "--steps", "40", "--seq-len", "64", "--batch", "4",
                      "--lr", "1e-2", "--eval", heldout_txt, "--eval-every", "40", "--out", p("adapter.gguf"),
                      "--merged-out", p("merged.gguf"), "--out-type", "F32")
        evals = losses(err, r"^eval step \d+ loss ([0-9.]+)")
        check(len(evals) == 2 and evals[1] < evals[0] - 0.02, "LoRA lowers held-out loss: %s" % evals)
        check(os.path.getsize(p("adapter.gguf")) > 0, "adapter written")
        rc, merged_out, err = onellm("run", "-m", p("merged.gguf"), "-p", prompt, "-n", "12", "--temp", "0",
                                     "--exact", "--ignore-eos", "--json")
        check(rc == 0, "merged model runs: " + err[-300:])
        # The adapter applied at run time on the frozen base says the same.
        rc, lora_out, err = onellm("run", "-m", p("model.gguf"), "--lora", p("adapter.gguf"), "-p", prompt, "-n",
                                   "12", "--temp", "0", "--exact", "--ignore-eos", "--json")
        check(rc == 0 and json.loads(lora_out)["text"] == json.loads(merged_out)["text"],
              "run --lora generates what the merged model does: %r vs %r" % (lora_out[:200], merged_out[:200]))
        # Without --out-type the merged model keeps the base's Q8_0 (about its size) and runs.
        must("finetune", "--lora", "--base", p("model.gguf"), "--corpus", heldout_txt, "--rank", "4", "--steps",
             "2", "--seq-len", "32", "--batch", "1", "--out", p("a2.gguf"), "--merged-out", p("merged-q8.gguf"))
        out, _ = must("info", p("merged-q8.gguf"))
        size_ratio = os.path.getsize(p("merged-q8.gguf")) / os.path.getsize(p("model.gguf"))
        check("Q8_0" in out and 0.9 < size_ratio < 1.1, "merged model in the base's type: %.2f %s" % (size_ratio,
                                                                                           out[:300]))
        must("run", "-m", p("merged-q8.gguf"), "-p", prompt, "-n", "2")
        rc, _, err = onellm("run", "-m", p("model.gguf"), "--lora", p("model.gguf"), "-p", prompt, "-n", "2")
        check(rc == 1 and "not a LoRA adapter" in err, "a model given as adapter refused: " + err[-300:])

        # LoRA stopped at step 12 and resumed (on one thread) == uninterrupted, byte for byte; the
        # checkpoint itself runs as an adapter; another corpus is refused by name.
        ft = ["finetune", "--lora", "--base", p("model.gguf"), "--corpus", heldout_txt, "--rank", "4",
              "--steps", "20", "--seq-len", "32", "--batch", "2", "--lr", "1e-2"]
        must(*ft, "--out", p("ft-full.gguf"))
        must(*ft, "--stop-at", "12", "--checkpoint", p("ft-ck.gguf"))
        _, err = must("finetune", "--lora", "--base", p("model.gguf"), "--corpus", heldout_txt, "--resume",
                      p("ft-ck.gguf"), "-t", "1", "--rank", "8", "--out", p("ft-resumed.gguf"))
        check("at step 12 of 20" in err, "finetune resume reports its step: " + err[:300])
        check("--rank is ignored with --resume" in err, "a resumed run says which options it ignores: " + err[:300])
        with open(p("ft-full.gguf"), "rb") as a, open(p("ft-resumed.gguf"), "rb") as b:
            check(a.read() == b.read(), "resumed fine-tuning writes the adapter of the uninterrupted run")
        rc, _, err = onellm("run", "-m", p("model.gguf"), "--lora", p("ft-ck.gguf"), "-p", prompt, "-n", "2")
        check(rc == 0, "a fine-tuning checkpoint runs as an adapter: " + err[-300:])
        rc, _, err = onellm("finetune", "--lora", "--base", p("model.gguf"), "--corpus", train_txt, "--resume",
                            p("ft-ck.gguf"), "--out", p("x.gguf"))
        check(rc == 1 and "corpus differs" in err, "resume on another corpus refused: " + err[-300:])

        # Without --base: the bundled model, as run uses it; the adapter then runs on it without -m.
        env_model = os.environ.pop("ONELLM_MODEL", None)
        _, err = must("finetune", "--lora", "--corpus", heldout_txt, "--rank", "2", "--steps", "2", "--seq-len",
                      "32", "--batch", "1", "--out", p("bundled-lora.gguf"))
        check("adapter: rank 2" in err, "finetune without --base trains on the bundled model: " + err[-300:])
        rc, _, err = onellm("run", "--lora", p("bundled-lora.gguf"), "-p", "hi", "-n", "2")
        check(rc == 0, "the bundled model runs with an adapter trained on it: " + err[-300:])
        if env_model is not None:
            os.environ["ONELLM_MODEL"] = env_model

        # Supervised LoRA on chat data: only the assistant replies count, in training and in --eval.
        _, err = must("finetune", "--lora", "--base", p("model.gguf"), "--corpus", heldout_txt, "--rank", "4",
                      "--loss", "replies", "--attention", "documents", "--steps", "30", "--seq-len", "64",
                      "--batch", "4", "--lr", "1e-2", "--eval", heldout_txt, "--eval-every", "30",
                      "--out", p("sft.gguf"))
        evals = losses(err, r"^eval step \d+ loss ([0-9.]+)")
        check("loss on assistant replies:" in err and len(evals) == 2 and evals[1] < evals[0] - 0.02,
              "LoRA on replies lowers the held-out reply loss: %s %s" % (evals, err[-300:]))

        # qwen3 from scratch (per-head q/k norms, heads of 32 on n_embd 64), then LoRA on it.
        q3_shape = shape + ["--arch", "qwen3", "--head-dim", "32"]
        _, err = must("train", "--corpus", train_txt, "--tokenizer", p("tok.gguf"), *q3_shape, "--steps", "60",
                      "--log-every", "1", "--out", p("q3.gguf"), "--out-type", "Q8_0")
        steps = losses(err)
        check(len(steps) == 60 and sum(steps[-5:]) / 5 < 0.7 * steps[0], "qwen3 loss falls: %s" % steps[::10])
        out, _ = must("info", p("q3.gguf"))
        check("qwen3" in out, "the trained model is a qwen3 GGUF: " + out[:300])
        _, err = must("finetune", "--lora", "--base", p("q3.gguf"), "--corpus", heldout_txt, "--rank", "4",
                      "--steps", "20", "--seq-len", "64", "--batch", "4", "--lr", "1e-2", "--out",
                      p("q3-adapter.gguf"), "--merged-out", p("q3-merged.gguf"), "--out-type", "F32")
        rc, lora_out, _ = onellm("run", "-m", p("q3.gguf"), "--lora", p("q3-adapter.gguf"), "-p", prompt, "-n",
                                 "12", "--temp", "0", "--exact", "--ignore-eos", "--json")
        _, merged_out, _ = onellm("run", "-m", p("q3-merged.gguf"), "-p", prompt, "-n", "12", "--temp", "0",
                                  "--exact", "--ignore-eos", "--json")
        check(rc == 0 and json.loads(lora_out)["text"] == json.loads(merged_out)["text"],
              "qwen3 run --lora generates what the merged model does: %r vs %r" % (lora_out[:200], merged_out[:200]))
        rc, _, err = onellm("train", "--corpus", train_txt, "--tokenizer", p("tok.gguf"), "--arch", "gemma",
                            "--out", p("x.gguf"))
        check(rc == 1 and "gemma" in err, "unknown --arch refused: " + err)

        # Bad input: exit 1 and the offending name in the message.
        rc, _, err = onellm("train", "--corpus", p("missing.txt"), "--tokenizer", p("tok.gguf"), "--out", p("x.gguf"))
        check(rc == 1 and "missing.txt" in err, "missing corpus named: " + err)
        rc, _, err = onellm("train", "--corpus", train_txt, "--tokenizer", train_txt, "--out", p("x.gguf"))
        check(rc == 1 and "train.txt" in err, "non-GGUF tokenizer named: " + err)
        rc, _, err = onellm("finetune", "--base", p("model.gguf"), "--corpus", train_txt, "--out", p("a.gguf"))
        check(rc == 1 and "--lora" in err, "finetune without --lora refused: " + err)
        rc, _, err = onellm("train", "--corpus", train_txt, "--tokenizer", p("tok.gguf"), "--n-embd", "60",
                            "--n-head", "8", "--out", p("x.gguf"))
        check(rc == 1 and "--n-head" in err, "bad shape refused: " + err)
        rc, _, err = onellm("train", "--corpus", train_txt, "--tokenizer", p("tok.gguf"), "--copy-bias", "-1",
                            "--out", p("x.gguf"))
        check(rc == 1 and "--copy-bias" in err, "negative copy bias refused: " + err)
        rc, _, err = onellm("run", "-m", p("model.gguf"), "--chat", "-p", "hi", "--copy-bias", "nan")
        check(rc == 1 and "--copy-bias" in err, "run refuses a bad copy bias: " + err)
    print("train_cli_test:", "FAILED" if cli_check.failed else "ok")
    return 1 if cli_check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
