"""End-to-end check of `onellm template` through the real binary ($ONELLM_BIN).

The prompt of an OpenAI chat request, rendered by a small template written here: content null reaches
the template as none, chat_template_kwargs become variables, add_generation_prompt is honoured, tools
are described in the system message for a template that has no tools of its own, --tokens prints ids;
bad requests fail with exit code 1 and a message naming the field. Exit 77 = skipped (no binary).
"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_check  # noqa: E402
from cli_check import BIN, check, must, onellm  # noqa: E402

TEMPLATE = ("{% for m in messages %}[{{ m.role }}:{{ m.content if m.content is not none else 'NONE' }}"
            "{% for c in m.tool_calls or [] %} call {{ c.function.name }} {{ c.function.arguments | tojson }}"
            "{% endfor %}]{% endfor %}{{ greeting | default('-') }}{% if add_generation_prompt %}>{% endif %}")
CALL = {"id": "c1", "type": "function", "function": {"name": "set_alarm", "arguments": "{\"time\": \"7:30\"}"}}
TOOL = {"type": "function", "function": {"name": "set_alarm", "description": "Sets an alarm",
                                         "parameters": {"type": "object", "properties": {"time": {"type": "string"}}}}}


def render(tmp, request, *extra):
    path = os.path.join(tmp, "request.json")
    with open(path, "w") as f:
        f.write(request if isinstance(request, str) else json.dumps(request))
    return onellm("template", "--chat-template", os.path.join(tmp, "t.jinja"), "--request", path, *extra)


def main():
    if not BIN or not os.access(BIN, os.X_OK):
        print(f"SKIP: ONELLM_BIN not set or not executable ({BIN!r})")
        return 77
    with tempfile.TemporaryDirectory(prefix="onellm_template_") as tmp:
        with open(os.path.join(tmp, "t.jinja"), "w") as f:
            f.write(TEMPLATE)
        history = [{"role": "user", "content": "wake me"}, {"role": "assistant", "content": None, "tool_calls": [CALL]},
                   {"role": "tool", "tool_call_id": "c1", "content": "ok"}]
        rc, out, err = render(tmp, {"messages": history, "chat_template_kwargs": {"greeting": "hi"}})
        # Arguments given as JSON text reach the template parsed, as the service reads them.
        check(rc == 0 and out == '[user:wake me][assistant:NONE call set_alarm {"time": "7:30"}][tool:ok]hi>',
              f"null content, parsed arguments, kwargs: {rc} {out!r} {err}")
        rc, out, err = render(tmp, {"messages": history[:1], "add_generation_prompt": False})
        check(rc == 0 and out == "[user:wake me]-", f"add_generation_prompt false: {out!r} {err}")
        rc, out, err = render(tmp, {"messages": history[:1], "tools": [TOOL]})
        check(rc == 0 and out.startswith("[system:") and "set_alarm" in out and out.endswith("[user:wake me]->"),
              f"tools described in a system message: {out!r} {err}")
        out, _ = must("template", "--request", os.path.join(tmp, "request.json"), "--tokens")
        ids = json.loads(out)
        check(isinstance(ids, list) and len(ids) > 5 and all(isinstance(i, int) for i in ids), f"--tokens: {out}")
        for request, field in (({"messages": history, "chat_template_kwargs": [1]}, "chat_template_kwargs"),
                               ({"messages": history, "chat_template_kwargs": {"messages": []}}, "chat_template_kwargs"),
                               ({"messages": "hi"}, "messages"),
                               ("{not json", "not a JSON object")):
            rc, out, err = render(tmp, request)
            check(rc == 1 and field in err, f"bad request names {field}: {rc} {err}")
    return 1 if cli_check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
