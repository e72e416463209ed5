// Conversations and settings, kept in this browser's localStorage.
const CONVERSATIONS = 'gguf-serve.conversations';
const CURRENT = 'gguf-serve.current';
const SETTINGS = 'gguf-serve.settings';

function readJson(key, fallback) {
  try {
    const value = JSON.parse(localStorage.getItem(key) ?? 'null');
    return value ?? fallback;
  } catch {
    return fallback;
  }
}

export function loadConversations() {
  const list = readJson(CONVERSATIONS, []);
  return Array.isArray(list) ? list.filter((c) => c && typeof c.id === 'string' && Array.isArray(c.messages)) : [];
}

export function saveConversations(list) {
  localStorage.setItem(CONVERSATIONS, JSON.stringify(list));
}

// crypto.randomUUID exists only on secure origins; a page served with --listen over http is not one.
const newId = () => `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;

export function newConversation() {
  return { id: newId(), title: 'New chat', created: new Date().toISOString(), messages: [] };
}

export const currentId = () => localStorage.getItem(CURRENT);
export const setCurrentId = (id) => localStorage.setItem(CURRENT, id);
export const loadSettings = () => readJson(SETTINGS, {});
export const saveSettings = (settings) => localStorage.setItem(SETTINGS, JSON.stringify(settings));

/** Every conversation as a JSON document (what Export downloads). */
export function exportJson(list) {
  return JSON.stringify({ exported: new Date().toISOString(), conversations: list }, null, 2);
}
