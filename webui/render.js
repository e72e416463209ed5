// How a message looks: markdown (never HTML: markdown-it with html off escapes every tag), the
// reasoning folded, tool calls and JSON output as formatted JSON, and the answer's statistics.
import markdownit from './lib/markdown-it.mjs';

const md = markdownit({ html: false, linkify: true, breaks: true });
const renderLink = md.renderer.rules.link_open ?? ((tokens, idx, options, env, self) => self.renderToken(tokens, idx, options));
md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  // A link opens in a new tab that cannot reach back into this page.
  tokens[idx].attrSet('target', '_blank');
  tokens[idx].attrSet('rel', 'noopener noreferrer');
  return renderLink(tokens, idx, options, env, self);
};

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** JSON text pretty-printed, or null when it is not JSON. */
function formatJson(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return null;
  }
}

function toolCallsView(calls) {
  const box = el('div', 'tool-calls');
  for (const call of calls) {
    const item = el('div', 'tool-call');
    item.append(el('div', 'tool-name', `Tool call: ${call.function?.name ?? '(unnamed)'}${call.id ? ` (${call.id})` : ''}`));
    const args = call.function?.arguments ?? '';
    item.append(el('pre', 'json', formatJson(args) ?? args));
    box.append(item);
  }
  return box;
}

export function formatStats(stats) {
  // Without the server's usage (a stopped answer) the count is of streamed pieces: about tokens.
  const parts = [`${stats.exact ? '' : 'about '}${stats.tokens} token${stats.tokens === 1 ? '' : 's'}`];
  if (stats.tokensPerSecond !== null) parts.push(`${stats.tokensPerSecond.toFixed(1)} tokens/s`);
  if (stats.ttftMs !== null) parts.push(`first token ${Math.round(stats.ttftMs)} ms`);
  if (stats.finish) parts.push(stats.finish);
  return parts.join(' · ');
}

/**
 * The element of one message. `previous` (the element it replaces while streaming) keeps the
 * reasoning folded or unfolded as the reader left it.
 */
export function messageView(message, previous = null) {
  const view = el('article', `message ${message.role}${message.error ? ' failed' : ''}`);
  const who = message.role === 'user' ? 'You' : message.role === 'assistant' ? (message.model ?? 'Assistant') : message.role;
  view.append(el('div', 'who', who));
  if (message.reasoning) {
    const details = el('details', 'reasoning');
    details.open = previous?.querySelector('details.reasoning')?.open ?? false;
    details.append(el('summary', '', message.pending && !message.content ? 'Reasoning…' : 'Reasoning'), el('div', 'reasoning-text', message.reasoning));
    view.append(details);
  }
  const json = message.format && message.format !== 'text' ? formatJson(message.content) : null;
  if (json !== null) {
    view.append(el('pre', 'json content', json));
  } else if (message.role === 'user') {
    view.append(el('div', 'content plain', message.content));
  } else {
    const content = el('div', 'content');
    content.innerHTML = md.render(message.content ?? '');
    view.append(content);
  }
  if (message.toolCalls?.length) view.append(toolCallsView(message.toolCalls));
  if (message.error) view.append(el('div', 'error', message.error));
  if (message.stats) view.append(el('div', 'stats', formatStats(message.stats)));
  return view;
}
