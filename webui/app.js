// The chat playground: settings, conversations, streaming, Stop, and the API key prompt.
import * as api from './api.js';
import * as store from './store.js';
import { messageView } from './render.js';

const $ = (id) => document.getElementById(id);
const SETTING_IDS = ['model', 'mode', 'instruction_template', 'character', 'system', 'temperature', 'top_p', 'max_tokens', 'seed', 'response_format', 'json_schema'];

const state = {
  conversations: store.loadConversations(),
  current: null,
  /** The AbortController of the answer being streamed, null when idle. */
  controller: null,
  savedSettings: store.loadSettings(),
};

function setStatus(text, isError = false) {
  const status = $('status');
  status.textContent = text;
  status.classList.toggle('error', isError);
}

function persist() {
  store.saveConversations(state.conversations);
}

// ---- conversations ----

function currentConversation() {
  if (!state.current) {
    state.current = store.newConversation();
    state.conversations.unshift(state.current);
    store.setCurrentId(state.current.id);
  }
  return state.current;
}

function selectConversation(id) {
  state.current = state.conversations.find((c) => c.id === id) ?? null;
  if (state.current) store.setCurrentId(state.current.id);
  renderConversations();
  renderMessages();
}

function renderConversations() {
  const list = $('conversations');
  list.replaceChildren(...state.conversations.map((c) => {
    const item = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = c.title;
    button.dataset.id = c.id;
    if (c === state.current) button.setAttribute('aria-current', 'true');
    button.addEventListener('click', () => { if (!state.controller) selectConversation(c.id); });
    item.append(button);
    return item;
  }));
}

function renderMessages() {
  const box = $('messages');
  box.replaceChildren(...(state.current?.messages ?? []).map((m) => messageView(m)));
  box.scrollTop = box.scrollHeight;
}

/** Re-render the last message (the answer being streamed), at most once per frame. */
let frame = 0;
function updateLastMessage() {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    const box = $('messages');
    const last = box.lastElementChild;
    const messages = state.current?.messages ?? [];
    if (!last || messages.length === 0) return;
    const stick = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    last.replaceWith(messageView(messages[messages.length - 1], last));
    if (stick) box.scrollTop = box.scrollHeight;
  });
}

// ---- settings ----

function readSettings() {
  return Object.fromEntries(SETTING_IDS.map((id) => [id, $(id).value]));
}

function applySetting(id) {
  const saved = state.savedSettings[id];
  const input = $(id);
  if (saved === undefined) return;
  if (input.tagName === 'SELECT' && ![...input.options].some((o) => o.value === saved)) return;
  input.value = saved;
}

function showFieldsForMode() {
  const mode = $('mode').value;
  $('template-field').hidden = mode === 'chat';
  $('character-field').hidden = mode === 'instruct';
  $('schema-field').hidden = $('response_format').value !== 'json_schema';
}

function fillSelect(select, options) {
  const keep = [...select.options].filter((o) => o.dataset.fixed === 'true');
  select.replaceChildren(...keep, ...options.map(([value, label]) => new Option(label, value)));
}

function number(value) {
  return value === '' ? undefined : Number(value);
}

/** The chat completion request for the conversation so far and the settings. */
function requestBody(conversation, s) {
  const history = conversation.messages
    .filter((m) => !m.pending && !m.error && (m.role === 'user' || m.role === 'assistant'))
    .map((m) => ({ role: m.role, content: m.content }));
  const body = {
    model: s.model || undefined,
    messages: [...(s.system.trim() ? [{ role: 'system', content: s.system }] : []), ...history],
    mode: s.mode,
    temperature: number(s.temperature),
    top_p: number(s.top_p),
    max_tokens: number(s.max_tokens),
    seed: number(s.seed),
  };
  if (s.mode !== 'chat' && s.instruction_template) body.instruction_template = s.instruction_template;
  if (s.mode !== 'instruct' && s.character) body.character = s.character;
  if (s.response_format === 'json_object') body.response_format = { type: 'json_object' };
  if (s.response_format === 'json_schema') {
    let schema;
    try { schema = JSON.parse(s.json_schema); } catch (err) { throw new Error(`The JSON schema is not valid JSON: ${err.message}`); }
    body.response_format = { type: 'json_schema', json_schema: { name: 'playground', schema } };
  }
  return body;
}

// ---- the server ----

async function connect() {
  try {
    const [models, templates] = await Promise.all([api.getJson('/v1/models'), api.getJson('/v1/internal/templates')]);
    const chatModels = models.data.filter((m) => !m.serves || m.serves.includes('chat.completions'));
    fillSelect($('model'), chatModels.map((m) => [m.id, m.serves ? m.id : `${m.id} (load)`]));
    fillSelect($('instruction_template'), templates.instruction_templates.map((t) => [t, t]));
    fillSelect($('character'), templates.characters.map((c) => [c, c]));
    for (const id of ['instruction_template', 'character']) applySetting(id);
    const loaded = chatModels.find((m) => m.serves);
    if (loaded) $('model').value = loaded.id;
    showFieldsForMode();
    setStatus(loaded ? `${loaded.id} ready` : 'No model is loaded');
    document.body.dataset.ready = 'true';
  } catch (err) {
    if (err.status === 401) askForKey(err.message);
    else setStatus(`Cannot reach the server: ${err.message}`, true);
  }
}

function askForKey(message) {
  // The server's reason is worth showing only once a key was tried.
  $('key-error').textContent = api.hasApiKey() ? message : '';
  $('api-key').value = '';
  if (!$('key-dialog').open) $('key-dialog').showModal();
  $('api-key').focus();
}

async function loadModel(id) {
  setStatus(`Loading ${id}…`);
  try {
    await api.postJson('/v1/internal/model/load', { model_name: id });
    await connect();
  } catch (err) {
    setStatus(`Cannot load ${id}: ${err.message}`, true);
  }
}

function setBusy(busy) {
  document.body.dataset.busy = String(busy);
  $('send').disabled = busy;
  $('stop').disabled = !busy;
}

async function send() {
  const text = $('input').value;
  if (!text.trim() || state.controller) return;
  const settings = readSettings();
  const conversation = currentConversation();
  conversation.messages.push({ role: 'user', content: text });
  if (conversation.title === 'New chat') conversation.title = text.trim().slice(0, 40);
  const answer = { role: 'assistant', content: '', reasoning: '', toolCalls: [], model: null, format: settings.response_format, pending: true };
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  $('input').value = '';
  conversation.messages.push(answer);
  persist();
  renderConversations();
  renderMessages();

  const started = performance.now();
  let first = null;
  let chunks = 0;
  let usage = null;
  let finish = null;
  try {
    for await (const chunk of api.streamChat(requestBody(conversation, settings), controller.signal)) {
      answer.model = chunk.model ?? answer.model;
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices?.[0];
      if (!choice) continue;
      const delta = choice.delta ?? {};
      if (delta.content || delta.reasoning_content || delta.tool_calls) {
        first ??= performance.now();
        chunks++;
      }
      if (delta.content) answer.content += delta.content;
      if (delta.reasoning_content) answer.reasoning += delta.reasoning_content;
      if (delta.tool_calls) api.mergeToolCalls(answer.toolCalls, delta.tool_calls);
      if (choice.finish_reason) finish = choice.finish_reason;
      updateLastMessage();
    }
  } catch (err) {
    if (controller.signal.aborted) {
      finish = 'stopped';
    } else {
      answer.error = err.message;
      if (err.status === 401) askForKey(err.message);
    }
  }
  const ended = performance.now();
  const tokens = usage?.completion_tokens ?? chunks;
  answer.stats = {
    tokens,
    exact: usage !== null,
    ttftMs: first === null ? null : first - started,
    tokensPerSecond: first !== null && ended > first && tokens > 0 ? tokens / ((ended - first) / 1000) : null,
    finish,
  };
  delete answer.pending;
  state.controller = null;
  persist();
  updateLastMessage();
  setBusy(false);
  $('input').focus();
}

function stop() {
  state.controller?.abort();
}

function exportConversations() {
  const blob = new Blob([store.exportJson(state.conversations)], { type: 'application/json' });
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = 'gguf-serve-conversations.json';
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function bindEvents() {
  $('composer').addEventListener('submit', (e) => { e.preventDefault(); send(); });
  $('input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && state.controller) {
      e.preventDefault();
      stop();
    }
  });
  $('stop').addEventListener('click', stop);
  $('new-chat').addEventListener('click', () => {
    if (state.controller) return;
    state.current = null;
    renderConversations();
    renderMessages();
    $('input').focus();
  });
  $('delete-chat').addEventListener('click', () => {
    if (state.controller || !state.current) return;
    state.conversations = state.conversations.filter((c) => c !== state.current);
    persist();
    selectConversation(state.conversations[0]?.id);
  });
  $('export').addEventListener('click', exportConversations);
  for (const id of SETTING_IDS) {
    $(id).addEventListener('change', () => {
      state.savedSettings = readSettings();
      store.saveSettings(state.savedSettings);
      showFieldsForMode();
      const picked = $('model').selectedOptions[0];
      if (id === 'model' && picked?.textContent.endsWith('(load)')) loadModel(picked.value);
    });
  }
  $('key-dialog').addEventListener('cancel', () => setStatus('This server needs an API key: reload the page to enter it.', true));
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    api.setApiKey($('api-key').value.trim());
    $('key-dialog').close();
    connect();
  });
}

for (const id of SETTING_IDS) if (id !== 'instruction_template' && id !== 'character' && id !== 'model') applySetting(id);
for (const id of ['instruction_template', 'character']) $(id).querySelectorAll('option').forEach((o) => { o.dataset.fixed = 'true'; });
showFieldsForMode();
bindEvents();
selectConversation(store.currentId());
connect();
