/* The page's access to the API: the key (kept for this tab only), JSON requests, event streams.
   The key travels in the Authorization header, never in a URL; that is why the event stream is
   read with fetch() and a ReadableStream (EventSource cannot send headers). */
'use strict';

const MovieGen = (() => {
  const KEY = 'movie-gen-api-key';
  const waiting = [];
  const keysRequired = () => document.body.dataset.keysRequired === 'true';
  const key = () => sessionStorage.getItem(KEY);

  function headers(extra) {
    const all = Object.assign({}, extra || {});
    if (key()) all.Authorization = 'Bearer ' + key();
    return all;
  }

  function askKey(message) {
    sessionStorage.removeItem(KEY);
    document.getElementById('key-prompt').hidden = false;
    document.getElementById('key-error').textContent = message || '';
    document.getElementById('api-key').focus();
    return new Promise((resolve) => waiting.push(resolve));
  }

  function ready() {
    return (!keysRequired() || key()) ? Promise.resolve() : askKey();
  }

  document.addEventListener('DOMContentLoaded', () => {
    const forget = document.getElementById('forget-key');
    forget.hidden = !key();
    forget.addEventListener('click', () => { sessionStorage.removeItem(KEY); location.reload(); });
    document.getElementById('key-form').addEventListener('submit', (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY, document.getElementById('api-key').value.trim());
      document.getElementById('api-key').value = '';
      document.getElementById('key-prompt').hidden = true;
      forget.hidden = false;
      waiting.splice(0).forEach((resolve) => resolve());
    });
  });

  async function request(method, path, body, extra) {
    await ready();
    const init = { method, headers: headers(extra) };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (response.status === 401 && keysRequired()) {
      await askKey('That key was refused; enter another.');
      return request(method, path, body, extra);
    }
    return response;
  }

  async function json(method, path, body, extra) {
    const response = await request(method, path, body, extra);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const fields = Object.entries(data.errors || {}).map(([name, why]) => name + ': ' + [].concat(why).join(' '));
      throw new Error(fields.length ? fields.join('; ') : (data.message || 'HTTP ' + response.status));
    }
    return data;
  }

  function parseEvent(block) {
    const event = { event: 'message', id: null, data: '' };
    for (const line of block.split('\n')) {
      if (!line || line.startsWith(':')) continue;
      const cut = line.indexOf(':');
      const name = cut < 0 ? line : line.slice(0, cut);
      const value = cut < 0 ? '' : line.slice(cut + 1).replace(/^ /, '');
      if (name === 'data') event.data += value;
      else if (name === 'event' || name === 'id') event[name] = value;
    }
    if (!event.data) return null;
    event.data = JSON.parse(event.data);
    return event;
  }

  /* Follow an event stream until its `end` event, reconnecting (with Last-Event-ID) if it drops. */
  async function follow(path, onEvent) {
    let lastId = null;
    for (;;) {
      try {
        const response = await request('GET', path, undefined, lastId ? { 'Last-Event-ID': lastId } : {});
        if (response.status === 404) { onEvent({ event: 'missing', data: {} }); return; }
        if (!response.ok) throw new Error('HTTP ' + response.status);
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
          let cut;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const event = parseEvent(buffer.slice(0, cut));
            buffer = buffer.slice(cut + 2);
            if (!event) continue;
            if (event.id) lastId = event.id;
            onEvent(event);
            if (event.event === 'end') { reader.cancel(); return; }
          }
        }
      } catch (err) {
        console.warn('event stream interrupted:', err);
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }

  /* An element whose text is set as text: nothing from a user or a model is parsed as HTML. */
  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    return node;
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : '';
  }

  return { request, json, follow, el, when, key, headers };
})();
