/*
 * Switchboard live chat widget. Plain JavaScript, no build step; served by
 * the Switchboard server at /chat/widget.js.
 *
 * Embed it on any page:
 *
 *   <script src="https://support.example.com/chat/widget.js"
 *           data-channel="CHANNEL_KEY" async></script>
 *
 * Optional attributes: data-title (panel title), data-greeting (first line
 * shown to the visitor), data-color (accent colour), data-ask-email="false"
 * (do not offer name and e-mail fields before the first message).
 *
 * How it works: the first message starts a conversation
 * (POST /chat/{key}/conversations); the server answers with a signed
 * visitor token, kept in this site's localStorage with the conversation id
 * and sent with every call (X-Visitor-Token header; a query parameter for
 * EventSource, which cannot send headers). Agent replies arrive over
 * Server-Sent Events (/events); after any disconnection the widget refetches
 * the messages it missed (/messages?after=ID) before listening again. The
 * visitor id (the token's part before the dot) is also written to a
 * first-party `sb_visitor` cookie, so forms on this site name the same
 * visitor. Every text is inserted with textContent, never as HTML.
 */
(function () {
  'use strict';

  var script = document.currentScript || document.querySelector('script[data-channel][src*="/chat/widget.js"]');
  if (!script) return;
  var channel = script.getAttribute('data-channel');
  if (!channel) {
    if (window.console) console.warn('Switchboard chat: the script tag needs data-channel="CHANNEL_KEY"');
    return;
  }
  var src = new URL(script.src, location.href);
  var root = src.origin + src.pathname.replace(/\/chat\/widget\.js$/, '');
  var api = root + '/chat/' + encodeURIComponent(channel);
  var title = script.getAttribute('data-title') || 'Chat with us';
  var greeting = script.getAttribute('data-greeting') || 'Hi! How can we help?';
  var color = script.getAttribute('data-color') || '#2457d6';
  var askEmail = script.getAttribute('data-ask-email') !== 'false';

  // ---- state kept across page loads ----
  var storageKey = 'switchboard-chat:' + channel;
  var memory = {};
  function load() {
    try { return JSON.parse(localStorage.getItem(storageKey)) || {}; } catch (e) { return memory; }
  }
  function save() {
    try { localStorage.setItem(storageKey, JSON.stringify(state)); } catch (e) { memory = state; }
  }
  var state = load(); // {token, conversation, lastId}
  var shown = {};
  var source = null;
  var retryDelay = 1000;

  function rememberVisitor(token) {
    var visitor = String(token).split('.')[0];
    document.cookie = 'sb_visitor=' + visitor + '; path=/; max-age=31536000; SameSite=Lax';
  }

  // ---- the panel, in a shadow root so the page's CSS cannot reach it ----
  var host = document.createElement('div');
  host.setAttribute('data-switchboard-chat', '');
  var shadow = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;
  var css = document.createElement('style');
  css.textContent = [
    ':host{all:initial}',
    '.sb{position:fixed;right:20px;bottom:20px;z-index:2147483000;font:14px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;color:#1d2330}',
    '.launch{background:' + color + ';color:#fff;border:0;border-radius:24px;padding:12px 18px;font:inherit;font-weight:600;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.2)}',
    '.panel{display:none;flex-direction:column;width:340px;max-width:calc(100vw - 40px);height:460px;max-height:calc(100vh - 100px);background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.25);overflow:hidden}',
    '.open .panel{display:flex}.open .launch{display:none}',
    '.head{background:' + color + ';color:#fff;padding:12px 14px;font-weight:600;display:flex;justify-content:space-between;align-items:center}',
    '.head button{background:none;border:0;color:#fff;font-size:20px;cursor:pointer;line-height:1}',
    '.log{flex:1;overflow-y:auto;padding:12px;background:#f6f7fb}',
    '.msg{max-width:80%;margin:6px 0;padding:8px 11px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}',
    '.visitor{margin-left:auto;background:' + color + ';color:#fff;border-bottom-right-radius:3px}',
    '.agent{background:#fff;border:1px solid #e2e5ee;border-bottom-left-radius:3px}',
    '.who{display:block;font-size:11px;color:#6b7285;margin-bottom:2px}',
    '.note{text-align:center;color:#6b7285;font-size:12px;margin:8px 0}',
    'form{border-top:1px solid #e2e5ee;padding:8px;display:flex;flex-direction:column;gap:6px}',
    'input,textarea{font:inherit;border:1px solid #cfd4e0;border-radius:6px;padding:7px 9px;resize:none}',
    '.row{display:flex;gap:6px}.row input{flex:1;min-width:0}',
    '.send{display:flex;gap:6px}.send textarea{flex:1}',
    '.send button{background:' + color + ';color:#fff;border:0;border-radius:6px;padding:0 14px;font:inherit;cursor:pointer}',
    '.status{font-size:12px;color:#b3261e;min-height:0}'
  ].join('\n');
  var wrap = el('div', 'sb');
  var launch = el('button', 'launch', title);
  var panel = el('div', 'panel');
  var head = el('div', 'head', title);
  var close = el('button', '', '\u00d7');
  close.setAttribute('aria-label', 'Close chat');
  head.appendChild(close);
  var log = el('div', 'log');
  log.setAttribute('aria-live', 'polite');
  var form = document.createElement('form');
  var who = el('div', 'row');
  var nameInput = input('text', 'Your name (optional)');
  var emailInput = input('email', 'E-mail (optional)');
  who.appendChild(nameInput);
  who.appendChild(emailInput);
  var sendRow = el('div', 'send');
  var text = document.createElement('textarea');
  text.rows = 2;
  text.placeholder = 'Write a message\u2026';
  var sendButton = el('button', '', 'Send');
  sendButton.type = 'submit';
  sendRow.appendChild(text);
  sendRow.appendChild(sendButton);
  var status = el('div', 'status');
  form.appendChild(who);
  form.appendChild(sendRow);
  form.appendChild(status);
  panel.appendChild(head);
  panel.appendChild(log);
  panel.appendChild(form);
  wrap.appendChild(launch);
  wrap.appendChild(panel);
  shadow.appendChild(css);
  shadow.appendChild(wrap);

  function el(tag, cls, content) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (content) e.textContent = content;
    return e;
  }
  function input(type, placeholder) {
    var i = document.createElement('input');
    i.type = type;
    i.placeholder = placeholder;
    return i;
  }
  function note(content) {
    log.appendChild(el('div', 'note', content));
    log.scrollTop = log.scrollHeight;
  }
  function refreshForm() {
    who.style.display = askEmail && !state.conversation ? 'flex' : 'none';
  }

  function render(m) {
    if (!m || shown[m.id]) return;
    shown[m.id] = true;
    var bubble = el('div', 'msg ' + (m.from === 'visitor' ? 'visitor' : 'agent'));
    if (m.from !== 'visitor' && m.author_name) bubble.appendChild(el('span', 'who', m.author_name));
    bubble.appendChild(document.createTextNode(m.body));
    log.appendChild(bubble);
    log.scrollTop = log.scrollHeight;
    if (!state.lastId || m.id > state.lastId) {
      state.lastId = m.id;
      save();
    }
  }

  // ---- the API ----
  function call(method, path, body) {
    var headers = { Accept: 'application/json' };
    if (body) headers['Content-Type'] = 'application/json';
    if (state.token) headers['X-Visitor-Token'] = state.token;
    return fetch(api + path, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined })
      .then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (data) {
          return { status: res.status, data: data, retry: res.headers.get('Retry-After') };
        });
      });
  }
  function clientId() {
    var a = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }
  function forget(keepToken) {
    if (source) { source.close(); source = null; }
    state = keepToken ? { token: state.token } : {};
    save();
    refreshForm();
  }
  function explain(res) {
    if (res.status === 429) return 'Too many messages; please wait ' + (res.retry || 'a few') + ' seconds.';
    if (res.data && res.data.detail) return res.data.detail;
    return 'Your message could not be sent (' + res.status + ').';
  }

  // POSTs with one retry on a network failure; the client id makes the
  // retry store one message even if the first attempt did arrive.
  function post(path, body) {
    return call('POST', path, body).catch(function () { return call('POST', path, body); });
  }

  function send(message, isRetry) {
    status.textContent = '';
    var id = clientId();
    var request;
    if (!state.conversation) {
      var body = { message: message, client_id: id };
      if (nameInput.value.trim()) body.name = nameInput.value.trim();
      if (emailInput.value.trim()) body.email = emailInput.value.trim();
      request = post('/conversations', body).then(function (res) {
        if (res.status === 201 || res.status === 200) {
          state.token = res.data.visitor_token;
          state.conversation = res.data.conversation_id;
          save();
          rememberVisitor(state.token);
          refreshForm();
          render(res.data.message);
          listen();
        }
        return res;
      });
    } else {
      request = post('/conversations/' + state.conversation + '/messages', { message: message, client_id: id })
        .then(function (res) {
          if (res.status === 201 || res.status === 200) render(res.data.message);
          return res;
        });
    }
    return request.then(function (res) {
      if (res.status === 201 || res.status === 200) return true;
      // The conversation is gone or the token no longer valid (the key was
      // rotated): start a new conversation with this message, once.
      if ((res.status === 404 || res.status === 401) && state.conversation && !isRetry) {
        forget(res.status === 404);
        note('A new conversation was started.');
        return send(message, true);
      }
      status.textContent = explain(res);
      return false;
    }, function () {
      status.textContent = 'No connection; your message was not sent.';
      return false;
    });
  }

  // Catches up on missed messages, then listens for new ones.
  function catchUp() {
    if (!state.conversation) return Promise.resolve(false);
    return call('GET', '/conversations/' + state.conversation + '/messages?after=' + (state.lastId || 0))
      .then(function (res) {
        if (res.status === 200) {
          res.data.items.forEach(render);
          return true;
        }
        if (res.status === 404 || res.status === 401) forget(res.status === 404);
        return false;
      });
  }
  function listen() {
    if (source) source.close();
    if (!state.conversation || !window.EventSource) return;
    var url = api + '/conversations/' + state.conversation + '/events?visitor_token=' +
      encodeURIComponent(state.token) + '&after=' + (state.lastId || 0);
    source = new EventSource(url);
    source.onopen = function () { retryDelay = 1000; };
    source.onmessage = function (e) {
      try { render(JSON.parse(e.data)); } catch (err) { /* not ours */ }
    };
    source.addEventListener('status', function (e) {
      try {
        var s = JSON.parse(e.data).status;
        note(s === 'closed' ? 'This conversation was closed. Write again to reopen it.' : 'The conversation was reopened.');
      } catch (err) { /* not ours */ }
    });
    source.onerror = function () {
      // EventSource retries dropped connections by itself (sending
      // Last-Event-ID); it gives up on an error status (429, 401, 404).
      // Then: wait, catch up over REST, and listen again.
      if (source && source.readyState === 2) {
        source = null;
        setTimeout(function () {
          catchUp().then(function (ok) { if (ok) listen(); }, function () { listen(); });
        }, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 60000);
      }
    };
  }

  // ---- events ----
  var opened = false;
  function open() {
    wrap.className = 'sb open';
    if (!opened) {
      opened = true;
      note(greeting);
      state.lastId = 0;
      catchUp().then(function (ok) { if (ok) listen(); });
    }
    text.focus();
  }
  launch.addEventListener('click', open);
  close.addEventListener('click', function () { wrap.className = 'sb'; });
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var message = text.value.trim();
    if (!message) return;
    sendButton.disabled = true;
    send(message).then(function (ok) {
      if (ok) text.value = '';
      sendButton.disabled = false;
      text.focus();
    });
  });
  text.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event('submit', { cancelable: true }));
    }
  });

  refreshForm();
  if (state.token) rememberVisitor(state.token);
  function mount() { document.body.appendChild(host); }
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);
})();
