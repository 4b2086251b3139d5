"""What the CLI end-to-end tests share: the real binary ($ONELLM_BIN) and a count of failed checks.

    import cli_check
    from cli_check import check, must, onellm
    ...
    return 1 if cli_check.failed else 0
"""
import os
import subprocess
import sys

BIN = os.environ.get("ONELLM_BIN", "")
failed = 0


def check(cond, what):
    """Counts and prints a failed check; the test goes on."""
    global failed
    if not cond:
        failed += 1
        print("FAIL:", what)


def onellm(*args):
    """(exit code, stdout, stderr) of one onellm command."""
    r = subprocess.run([BIN, *args], capture_output=True, timeout=600)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def must(*args):
    """(stdout, stderr) of a command that must succeed; exits the test if it does not."""
    rc, out, err = onellm(*args)
    if rc != 0:
        print("FAIL: onellm", " ".join(args), "exited", rc, "\n", err)
        sys.exit(1)
    return out, err


def main_in_tmp(run):
    """The exit code of a test body run(tmp) in a temporary directory: 77 (skipped) without a binary, else 0/1."""
    import tempfile
    if not BIN or not os.path.exists(BIN):
        print("skip: ONELLM_BIN not set")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        run(tmp)
    print("ok" if not failed else f"{failed} failed")
    return 1 if failed else 0
