'use strict';
// Prompt building without a model: Jinja chat templates (strings in the request, the model's own),
// the named instruction templates, name-based guessing, characters and the three modes.
const t = require('tap');
const { buildChatPrompt, normalizeMessages } = require('../lib/prompt/chat-prompt.js');
const { instructionTemplateNames, instructionTemplate } = require('../lib/prompt/instruction-templates.js');
const { guessTemplateName } = require('../lib/prompt/guess-template.js');
const { loadCharacter, characterNames, replaceNames } = require('../lib/prompt/characters.js');
const { PromptError } = require('../lib/prompt/errors.js');
const { toApiError } = require('../lib/openai/errors.js');

/** The prompt layer raises PromptError; the OpenAI layer answers it with this status. */
const statusOf = (err) => (err instanceof PromptError ? toApiError(err).status : `not a PromptError: ${err}`);

const model = (over = {}) => ({ name: 'stories260K', chatTemplate: null, bosToken: '<s>', eosToken: '</s>', ...over });
const hello = [{ role: 'user', content: 'Hello!' }];

// Real Hugging Face templates, verbatim in style (bos_token, loop, trim, add_generation_prompt).
const HF_CHATML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const HF_LLAMA3 = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

t.test('a ChatML template string (chat_template_str) is rendered with Jinja', async (t) => {
  const p = buildChatPrompt({ messages: [{ role: 'system', content: 'Be brief.' }, ...hello], chat_template_str: HF_CHATML }, model());
  t.equal(p.prompt, '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n');
  t.equal(p.template, 'chat_template_str');
  t.ok(p.stop.includes('<|im_end|>\n<|im_start|>user\n'), 'turn boundary becomes a stop string');
});

t.test('a Llama-3 template string: bos_token written by the template is not doubled', async (t) => {
  const p = buildChatPrompt({ messages: [{ role: 'user', content: '  Hi there \n' }], chat_template_str: HF_LLAMA3 }, model({ bosToken: '<|begin_of_text|>' }));
  t.equal(p.prompt, '<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
});

t.test("the model's own chat template is used when the request names none", async (t) => {
  const p = buildChatPrompt({ messages: hello }, model({ chatTemplate: HF_CHATML }));
  t.equal(p.template, 'model');
  t.match(p.prompt, /^<\|im_start\|>user\nHello!<\|im_end\|>\n<\|im_start\|>assistant\n$/);
});

t.test('instruction_template by name beats instruction_template_str and the model template', async (t) => {
  const p = buildChatPrompt({ messages: hello, instruction_template: 'alpaca', instruction_template_str: 'X', mode: 'instruct' }, model({ chatTemplate: HF_CHATML }));
  t.equal(p.template, 'Alpaca');
  t.equal(p.prompt, 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nHello!\n\n### Response:\n');
  t.same(p.stop.sort(), ['\n\n### Instruction:\n', '\n\n### Response:\n']);
});

t.test('every named instruction template renders a conversation', async (t) => {
  const names = instructionTemplateNames();
  for (const want of ['Alpaca', 'ChatML', 'Llama-2', 'Llama-3', 'Mistral', 'Vicuna-v1.1', 'Zephyr', 'Gemma', 'Phi-3']) t.ok(names.includes(want), `${want} ships`);
  const convo = [{ role: 'system', content: 'SYS' }, { role: 'user', content: 'U1' }, { role: 'assistant', content: 'A1' }, { role: 'user', content: 'U2' }];
  for (const name of names) {
    const p = buildChatPrompt({ messages: convo, instruction_template: name }, model());
    for (const part of ['SYS', 'U1', 'A1', 'U2']) t.ok(p.prompt.includes(part), `${name} renders ${part}`);
    t.ok(p.prompt.indexOf('U2') > p.prompt.indexOf('A1'), `${name} keeps the order`);
  }
  t.equal(buildChatPrompt({ messages: hello, instruction_template: 'Llama-3' }, model()).prompt,
    '<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
  t.equal(buildChatPrompt({ messages: [{ role: 'system', content: 'S' }, ...hello], instruction_template: 'Llama-v2' }, model()).prompt,
    '[INST] <<SYS>>\nS\n<</SYS>>\n\nHello! [/INST]', 'alias Llama-v2');
  t.equal(instructionTemplate('MISTRAL').name, 'Mistral', 'names are case-insensitive');
});

// Each built-in template's exact prompt for one conversation, written from the model families'
// published formats (the leading BOS left to the tokenizer). A template added without its
// expectation here fails the first check.
const EXPECTED_PROMPTS = {
  Alpaca: 'SYS\n\n### Instruction:\nU1\n\n### Response:\nA1\n\n### Instruction:\nU2\n\n### Response:\n',
  ChatML: '<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n',
  Gemma: '<start_of_turn>user\nSYS\n\nU1<end_of_turn>\n<start_of_turn>model\nA1<end_of_turn>\n<start_of_turn>user\nU2<end_of_turn>\n<start_of_turn>model\n',
  'Llama-2': '[INST] <<SYS>>\nSYS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]',
  'Llama-3': '<|start_header_id|>system<|end_header_id|>\n\nSYS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU1<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU2<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
  Mistral: '[INST] SYS\n\nU1 [/INST]A1</s>[INST] U2 [/INST]',
  'Phi-3': '<|system|>\nSYS<|end|>\n<|user|>\nU1<|end|>\n<|assistant|>\nA1<|end|>\n<|user|>\nU2<|end|>\n<|assistant|>\n',
  'Vicuna-v1.1': 'SYS\n\nUSER: U1\nASSISTANT: A1</s>\nUSER: U2\nASSISTANT:',
  Zephyr: '<|system|>\nSYS</s>\n<|user|>\nU1</s>\n<|assistant|>\nA1</s>\n<|user|>\nU2</s>\n<|assistant|>\n',
};

t.test('every built-in instruction template renders its exact prompt', async (t) => {
  t.same(instructionTemplateNames().sort(), Object.keys(EXPECTED_PROMPTS).sort(), 'an expectation for each shipped template');
  const convo = [{ role: 'system', content: 'SYS' }, { role: 'user', content: 'U1' }, { role: 'assistant', content: 'A1' }, { role: 'user', content: 'U2' }];
  for (const [name, expected] of Object.entries(EXPECTED_PROMPTS)) {
    const p = buildChatPrompt({ messages: convo, instruction_template: name }, model());
    t.equal(p.prompt, expected, name);
    t.equal(p.template, name);
  }
});

t.test('instruction_template_str is rendered; it beats chat_template_str, the model template and the guess', async (t) => {
  const tpl = "{% for m in messages %}{{ m['role'] | upper }}> {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}ASSISTANT>{% endif %}";
  const p = buildChatPrompt({ messages: [{ role: 'system', content: 'S' }, ...hello], instruction_template_str: tpl, chat_template_str: HF_CHATML }, model({ name: 'vicuna-7b', chatTemplate: HF_CHATML }));
  t.equal(p.template, 'instruction_template_str');
  t.equal(p.prompt, 'SYSTEM> S\nUSER> Hello!\nASSISTANT>');
  t.ok(p.stop.includes('\nUSER>'), 'its turn boundary is a stop string');
  const viaChatStr = buildChatPrompt({ messages: hello, chat_template_str: HF_CHATML }, model({ name: 'vicuna-7b', chatTemplate: '{{ "model template" }}' }));
  t.equal(viaChatStr.template, 'chat_template_str', 'in instruct mode chat_template_str beats the model template');
});

t.test("the model's own template beats the guess from its name", async (t) => {
  t.equal(guessTemplateName('vicuna-7b'), 'Vicuna-v1.1', 'this name guesses Vicuna');
  const own = buildChatPrompt({ messages: hello }, model({ name: 'vicuna-7b', chatTemplate: HF_CHATML }));
  t.equal(own.template, 'model');
  t.equal(own.prompt, '<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n');
  const guessed = buildChatPrompt({ messages: hello }, model({ name: 'vicuna-7b' }));
  t.equal(guessed.template, 'Vicuna-v1.1 (guessed)', 'without its own template, the guess');
});

t.test('unknown template name: a 400 listing the available ones', async (t) => {
  const err = t.throws(() => buildChatPrompt({ messages: hello, instruction_template: 'Nope' }, model()));
  t.equal(statusOf(err), 400);
  t.equal(err.param, 'instruction_template');
  t.match(err.message, /Available: .*Alpaca/);
});

t.test('a broken template or raise_exception() is a 400, not a crash', async (t) => {
  const bad = t.throws(() => buildChatPrompt({ messages: hello, chat_template_str: '{% for %}' }, model()));
  t.equal(statusOf(bad), 400);
  const raising = t.throws(() => buildChatPrompt({ messages: hello, chat_template_str: "{{ raise_exception('roles must alternate') }}" }, model()));
  t.equal(statusOf(raising), 400);
  t.match(raising.message, /roles must alternate/);
});

t.test('guessing a template from the model name (last matching rule wins), ChatML fallback', async (t) => {
  t.equal(guessTemplateName('Meta-Llama-3-8B-Instruct.Q4_K_M'), 'Llama-3');
  t.equal(guessTemplateName('llama-2-7b-chat.Q4_0'), 'Llama-2');
  t.equal(guessTemplateName('mistral-7b-instruct-v0.2'), 'Mistral');
  t.equal(guessTemplateName('vicuna-13b-v1.5'), 'Vicuna-v1.1');
  t.equal(guessTemplateName('zephyr-7b-beta'), 'Zephyr');
  t.equal(guessTemplateName('gemma-2-9b-it'), 'Gemma');
  t.equal(guessTemplateName('Phi-3-mini-4k-instruct'), 'Phi-3');
  t.equal(guessTemplateName('qwen2-0.5b-instruct'), 'ChatML');
  t.equal(guessTemplateName('gpt4-x-alpaca-13b'), 'Alpaca');
  t.equal(guessTemplateName('stories260K'), 'ChatML', 'no match: ChatML');
  // Names that match two rules: the later rule in the file wins, whatever the order in the name
  // (a first-match lookup would answer ChatML and Alpaca).
  t.equal(guessTemplateName('dolphin-2.6-mistral-7b-instruct'), 'Mistral', 'ChatML rule (dolphin), then Mistral');
  t.equal(guessTemplateName('alpaca-vicuna-7b'), 'Vicuna-v1.1', 'Alpaca rule, then Vicuna');
  t.equal(guessTemplateName('vicuna-alpaca-7b'), 'Vicuna-v1.1', 'the same whatever the order in the name');
  const p = buildChatPrompt({ messages: hello }, model({ name: 'vicuna-7b' }));
  t.equal(p.template, 'Vicuna-v1.1 (guessed)');
  t.match(p.prompt, /USER: Hello!\nASSISTANT:$/);
});

t.test('characters: Example ships, names are replaced, unsafe names refused', async (t) => {
  t.ok(characterNames().includes('Example'));
  const c = loadCharacter('Example');
  t.ok(c.name && c.context && c.greeting, 'name, context and greeting');
  t.equal(replaceNames('{{user}} meets {{char}} <BOT>', 'Ann', 'Bo'), 'Ann meets Bo Bo');
  for (const bad of ['../package', '/etc/passwd', 'Nope']) {
    const err = t.throws(() => loadCharacter(bad));
    t.equal(statusOf(err), 400, bad);
  }
});

t.test('chat mode: persona context, greeting, names, and a reply prefix', async (t) => {
  const c = loadCharacter('Example');
  const p = buildChatPrompt({ messages: [{ role: 'user', content: 'Hello! Who are you?' }], mode: 'chat', character: 'Example', name1: 'Sam' }, model());
  const context = replaceNames(c.context, 'Sam', c.name);
  t.ok(p.prompt.startsWith(`${context}\n\n`), 'starts with the character context, names replaced');
  t.notOk(p.prompt.includes('{{user}}'));
  t.ok(p.prompt.includes(`${c.name}: ${replaceNames(c.greeting, 'Sam', c.name)}\n`), 'greeting as the first reply');
  t.ok(p.prompt.endsWith(`Sam: Hello! Who are you?\n${c.name}:`));
  t.ok(p.stop.includes('\nSam:'), 'stops when the model starts the user turn');
  const renamed = buildChatPrompt({ messages: hello, mode: 'chat', bot_name: 'Zed', greeting: '' }, model());
  t.ok(renamed.prompt.endsWith('You: Hello!\nZed:'), 'defaults: Assistant character, You, bot_name override');
  t.notOk(renamed.prompt.includes('Zed: \n'), 'empty greeting is left out');
});

t.test('chat mode with a custom chat_template_str (webui style, no add_generation_prompt)', async (t) => {
  const tpl = "{%- for m in messages -%}{%- if m['role'] == 'user' -%}{{ name1 }} says: {{ m['content'] + '\\n' }}{%- elif m['role'] == 'assistant' -%}{{ name2 }} says: {{ m['content'] + '\\n' }}{%- endif -%}{%- endfor -%}";
  const p = buildChatPrompt({ messages: hello, mode: 'chat', chat_template_str: tpl, name2: 'Bot', greeting: '' }, model());
  t.equal(p.prompt, 'You says: Hello!\nBot says:', 'the reply prefix is found from the template');
});

t.test('chat-instruct: the dialogue inside an instruction, reply prefixed by the character', async (t) => {
  const p = buildChatPrompt({ messages: hello, mode: 'chat-instruct', character: 'Example', instruction_template: 'ChatML', greeting: '' }, model());
  const c = loadCharacter('Example');
  t.match(p.prompt, /^<\|im_start\|>user\nContinue the chat dialogue below\. Write a single reply for the character "Mira"\./);
  t.ok(p.prompt.includes('You: Hello!\n'), 'the dialogue is inside');
  t.ok(p.prompt.endsWith(`<|im_end|>\n<|im_start|>assistant\n${c.name}:`));
});

t.test('message content: text parts joined, developer = system, images and tools refused', async (t) => {
  const m = normalizeMessages([{ role: 'developer', content: 'D' }, { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }, { role: 'assistant', content: null }]);
  t.same(m, [{ role: 'system', content: 'D' }, { role: 'user', content: 'a\nb' }, { role: 'assistant', content: '' }]);
  const img = t.throws(() => normalizeMessages([{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }]));
  t.equal(img.param, 'messages[0].content[0].type');
  const tool = t.throws(() => normalizeMessages([{ role: 'tool', content: 'x' }]));
  t.equal(statusOf(tool), 400);
});
