// The chat template of onellm's own tokenizers: ChatML, with a tool list
// short enough for a small model's context (one line per tool: name and
// arguments, '?' marking optional ones) and Qwen/Hermes-style calls.
#include "train/train.h"

namespace onellm {

std::string onellm_chat_template() {
  return R"TPL({%- if messages and messages[0].role == 'system' -%}
{%- set system = messages[0].content -%}
{%- set rest = messages[1:] -%}
{%- else -%}
{%- set system = '' -%}
{%- set rest = messages -%}
{%- endif -%}
{%- if tools -%}
<|im_start|>system
{% if system %}{{ system }}
{% endif %}Tools:
{% for tool in tools %}
{%- set f = tool.function if tool.function is defined else tool -%}
- {{ f.name }}(
{%- if f.parameters is defined and f.parameters.properties is defined -%}
{%- for name in f.parameters.properties -%}
{{ name }}{% if f.parameters.required is not defined or name not in f.parameters.required %}?{% endif %}{% if not loop.last %}, {% endif %}
{%- endfor -%}
{%- endif -%})
{% endfor -%}
Call tools as <tool_call>{"name": ..., "arguments": {...}}</tool_call><|im_end|>
{% elif system -%}
<|im_start|>system
{{ system }}<|im_end|>
{% endif -%}
{%- for m in rest -%}
{%- if m.role == 'assistant' -%}
<|im_start|>assistant
{% if m.content %}{{ m.content }}{% endif %}
{%- if m.tool_calls -%}
{%- for tc in m.tool_calls -%}
{%- set f = tc.function if tc.function is defined else tc -%}
<tool_call>{"name": "{{ f.name }}", "arguments": {% if f.arguments is string %}{{ f.arguments }}{% else %}{{ f.arguments | tojson }}{% endif %}}</tool_call>
{%- endfor -%}
{%- endif -%}
<|im_end|>
{% else -%}
<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
<|im_start|>assistant
{% endif -%})TPL";
}

}  // namespace onellm
