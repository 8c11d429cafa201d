// app.js: herald's admin UI. Sign in with an admin API key, then a hash router over
// the pages (web/pages/*.js). Every page talks to the public API through api.js.
import { ApiError, api, clearKey, getKey, setKey } from './api.js';
import { clearMessages, fail, field, h, say } from './dom.js';
import * as automations from './pages/automations.js';
import * as bulk from './pages/bulk.js';
import * as events from './pages/events.js';
import * as lists from './pages/lists.js';
import * as messages from './pages/messages.js';
import * as profiles from './pages/profiles.js';
import * as providers from './pages/providers.js';
import * as suppressions from './pages/suppressions.js';
import * as templates from './pages/templates.js';
import * as topics from './pages/topics.js';
import * as webhooks from './pages/webhooks.js';

const PAGES = { events, automations, templates, providers, messages, profiles, lists, bulk, topics, suppressions, webhooks };
const main = document.getElementById('main');
const top = document.getElementById('top');

function signInView(message) {
  top.hidden = true;
  const input = h('input', { type: 'password', name: 'key', autocomplete: 'off', required: true, spellcheck: 'false' });
  const err = h('p', { class: 'error', id: 'signin-error' }, message || '');
  const form = h(
    'form',
    { class: 'card signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in to herald'),
    h('p', {}, 'Use an admin API key (hk_...). It is kept in this tab only.'),
    field('Admin API key', input),
    err,
    h('button', { type: 'submit' }, 'Sign in'),
  );
  input.setAttribute('aria-describedby', 'signin-error');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    try {
      await api('GET', '/settings', undefined, { key });
      setKey(key);
      if (!location.hash || location.hash === '#/' || location.hash === '#/signin') location.hash = '#/events';
      else route();
      say('Signed in.');
    } catch (e) {
      err.textContent = e instanceof ApiError && e.status === 401 ? 'That key was not accepted.' : `Could not sign in: ${e.message}`;
      input.focus();
    }
  });
  main.replaceChildren(form);
  input.focus();
}

let current = 0;

async function route() {
  clearMessages();
  if (!getKey()) return signInView();
  top.hidden = false;
  const parts = (location.hash.replace(/^#\/?/, '') || 'events').split('/').map(decodeURIComponent);
  const name = PAGES[parts[0]] ? parts[0] : 'events';
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === `#/${name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const mine = ++current;
  main.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
  main.setAttribute('aria-busy', 'true');
  try {
    const view = await PAGES[name].render(parts.slice(1));
    if (mine !== current) return; // a newer navigation won
    main.replaceChildren(view);
    // a re-render that removed the focused control leaves focus on the page, not lost
    if (document.activeElement === document.body) main.focus({ preventScroll: true });
    const h1 = main.querySelector('h1');
    document.title = `${h1 ? h1.textContent : name} · herald`;
  } catch (e) {
    if (mine !== current) return;
    main.replaceChildren(h('h1', {}, 'Something went wrong'));
    fail(e);
  } finally {
    if (mine === current) main.removeAttribute('aria-busy');
  }
}

// pages ask for a fresh render after a change (dom.js reload())
window.addEventListener('herald:reload', () => route());

window.addEventListener('hashchange', async () => {
  await route();
  // move focus to the new page so keyboard and screen reader users start there (the
  // sign-in form focuses its own field)
  if (getKey()) main.focus({ preventScroll: false });
});
window.addEventListener('herald:unauthorized', () => {
  clearKey();
  signInView('The key is no longer accepted; sign in again.');
});
document.getElementById('signout').addEventListener('click', () => {
  clearKey();
  if (location.hash !== '#/signin') location.hash = '#/signin';
  else signInView();
  say('Signed out.');
});

route();
