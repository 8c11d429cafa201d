// prefs.test.mjs: subscription topics, users' preferences through the Courier SDK
// (users.preferences.retrieve / retrieveTopic / updateOrCreateTopic), their evaluation on
// send (an opted-out user's message ends FILTERED/UNSUBSCRIBED and never reaches the SMTP
// sink; REQUIRED topics still send; custom routing; message.preferences), and one-click
// unsubscribe (RFC 8058): the SMTP sink reads List-Unsubscribe and List-Unsubscribe-Post
// with mailparser, the POST is made as Gmail makes it, forged and truncated tokens fail,
// and the hosted page changes a topic in Chromium with JavaScript off. Runs on the store
// HERALD_TEST_STORE names.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import Courier from '@trycourier/courier';
import { chromium } from 'playwright-core';

import { finalMessage } from './lib/messages.mjs';
import { ARTIFACTS, herald, makeTempDir, scaled, startServer, stopAll, waitFor } from './lib/server.mjs';
import { startSmtpSink } from './lib/smtp.mjs';

const T = { timeout: scaled(30000) };
const CHROMIUM = process.env.HERALD_CHROMIUM || '/usr/bin/chromium';
const PUBLIC = 'https://mail.herald.test/';

let srv;
let sdk;
let smtp;

before(async () => {
  smtp = await startSmtpSink();
  srv = await startServer({ name: 'prefs', args: ['--public-url', PUBLIC, '--unsubscribe-mailto', 'unsub@herald.test'] });
  sdk = new Courier({ apiKey: srv.adminKey, baseURL: srv.url, maxRetries: 0, timeout: scaled(15000) });
  const r = await api('POST', '/providers', {
    provider: 'smtp',
    settings: { host: '127.0.0.1', port: smtp.port, secure: 'none', from: 'noreply@herald.test' },
  });
  assert.equal(r.status, 200, r.body);
});
after(async () => {
  try {
    await stopAll();
  } finally {
    await smtp?.close();
  }
});

const api = (method, p, json) => srv.request(method, p, { auth: 'admin', json });

async function putTopic(id, default_status, topic_name = id) {
  const r = await api('PUT', `/preferences/topics/${id}`, { topic_name, default_status });
  assert.equal(r.status, 200, r.body);
  return r.json;
}

async function send(message) {
  const r = await sdk.send.message({ message });
  return r.requestId;
}

const msg = (user, topic, extra = {}) => ({
  to: { user_id: user, email: `${user}@x.test` },
  content: { title: 'News', body: 'Hello {{unsubscribe_url}}' },
  routing: { method: 'single', channels: ['email'] },
  preferences: { subscription_topic_id: topic },
  ...extra,
});

/** the https URL in a List-Unsubscribe value, as the path herald serves (/u/<token>) */
function unsubPath(value) {
  const m = /<(https:\/\/[^>]+)>/.exec(value);
  assert.ok(m, `an https link in ${value}`);
  assert.ok(m[1].startsWith('https://mail.herald.test/u/'), m[1]);
  return new URL(m[1]).pathname;
}

/** the POST Gmail makes: form body, no cookies, no key */
const oneClick = (p, body = 'List-Unsubscribe=One-Click') =>
  fetch(srv.url + p, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body, redirect: 'manual' });

describe('topics and user preferences', () => {
  test('topics CRUD; SDK retrieve / retrieveTopic / updateOrCreateTopic; profile preferences', T, async () => {
    await putTopic('news', 'OPTED_IN', 'Newsletter');
    await putTopic('security', 'REQUIRED', 'Security alerts');
    await putTopic('promo', 'OPTED_OUT');
    const list = await api('GET', '/preferences/topics');
    assert.deepEqual(list.json.items.map((t) => [t.topic_id, t.default_status]), [['news', 'OPTED_IN'], ['promo', 'OPTED_OUT'], ['security', 'REQUIRED']]);
    assert.equal((await api('GET', '/preferences/topics/news')).json.topic_name, 'Newsletter');

    const all = await sdk.users.preferences.retrieve('alice');
    assert.deepEqual(all.items.map((i) => [i.topic_id, i.status]), [['news', 'OPTED_IN'], ['promo', 'OPTED_OUT'], ['security', 'REQUIRED']]);

    const put = await sdk.users.preferences.updateOrCreateTopic('news', { user_id: 'alice', topic: { status: 'OPTED_OUT' } });
    assert.equal(put.message, 'success');
    const one = await sdk.users.preferences.retrieveTopic('news', { user_id: 'alice' });
    assert.equal(one.topic.status, 'OPTED_OUT');
    assert.equal(one.topic.default_status, 'OPTED_IN');
    assert.equal(one.topic.topic_name, 'Newsletter');

    // REQUIRED cannot be opted out of (400, as Courier answers), and nothing is stored
    await assert.rejects(sdk.users.preferences.updateOrCreateTopic('security', { user_id: 'alice', topic: { status: 'OPTED_OUT' } }), (e) => e.status === 400);
    assert.equal((await sdk.users.preferences.retrieveTopic('security', { user_id: 'alice' })).topic.status, 'REQUIRED');
    // bad input: unknown status, unknown channel, bad topic id
    for (const [p, body] of [
      ['/users/alice/preferences/news', { topic: { status: 'MAYBE' } }],
      ['/users/alice/preferences/news', { topic: { status: 'OPTED_IN', has_custom_routing: true, custom_routing: ['pigeon'] } }],
      ['/users/alice/preferences/bad%20id', { topic: { status: 'OPTED_IN' } }],
      ['/preferences/topics/news', { default_status: 'SOMETIMES' }],
    ]) {
      const r = await api('PUT', p, body);
      assert.equal(r.status, 400, `${p}: ${r.body}`);
      assert.equal(typeof r.json.message, 'string');
      assert.equal(r.json.type, 'invalid_request_error');
    }
    assert.equal((await api('GET', '/preferences/topics/nope')).status, 404);

    await sdk.profiles.create('alice', { profile: { email: 'alice@x.test' } });
    const prof = await sdk.profiles.retrieve('alice');
    assert.deepEqual(prof.preferences.categories, { news: { status: 'OPTED_OUT' } });
  });

  test('an opted-out user is FILTERED/UNSUBSCRIBED and never mailed; REQUIRED still sends; message.preferences', T, async () => {
    await sdk.users.preferences.updateOrCreateTopic('news', { user_id: 'bob', topic: { status: 'OPTED_OUT' } });
    const filtered = await send(msg('bob', 'news'));
    const { m, h, why } = await finalMessage(srv, filtered);
    assert.equal(m.status, 'FILTERED', why);
    assert.equal(m.reason, 'UNSUBSCRIBED', why);
    assert.ok(h.some((e) => e.type === 'FILTERED' && e.reason === 'UNSUBSCRIBED'), why);

    // a template's subscription.topic_id links it to its topic
    const tpl = await sdk.notifications.create({ notification: { name: 'Promo', tags: [], brand: null, subscription: { topic_id: 'promo' }, routing: null, content: { version: '2022-01-01', elements: [{ type: 'text', content: 'promo' }] } } });
    await sdk.notifications.publish(tpl.id);
    const byTemplate = await send({ to: { user_id: 'bob', email: 'bob@x.test' }, template: tpl.id, routing: { method: 'single', channels: ['email'] } });
    assert.equal((await finalMessage(srv, byTemplate)).m.reason, 'UNSUBSCRIBED', 'promo defaults to OPTED_OUT');

    // an automation's send step is evaluated the same way
    const run = await api('POST', '/automations/invoke', { automation: { steps: [{ action: 'send', template: tpl.id, recipient: 'bob', profile: { email: 'bob@x.test' } }] } });
    assert.equal(run.status, 200, run.body);
    const viaRun = await waitFor(async () => {
      const r = await api('GET', `/messages?runId=${run.json.runId}`);
      return r.json?.results?.find((x) => x.status === 'FILTERED');
    }, { timeout: scaled(15000), what: 'the automation send to end FILTERED' });
    assert.equal(viaRun.reason, 'UNSUBSCRIBED');

    // REQUIRED: sent, and no List-Unsubscribe
    const required = await send(msg('bob', 'security'));
    assert.equal((await finalMessage(srv, required)).m.status, 'SENT');
    const mail = await smtp.waitForMail((x) => x.rcpt.includes('bob@x.test'));
    assert.equal(mail.parsed.headers.get('list'), undefined, 'no List-* header on a REQUIRED topic');
    assert.equal(smtp.to('bob@x.test').length, 1, 'only the REQUIRED email reached the sink');

    // custom routing restricts the channels: email not chosen -> nothing routable
    await sdk.users.preferences.updateOrCreateTopic('news', { user_id: 'carol', topic: { status: 'OPTED_IN', has_custom_routing: true, custom_routing: ['sms'] } });
    const routed = await send(msg('carol', 'news'));
    assert.equal((await finalMessage(srv, routed)).m.status, 'UNROUTABLE');

    // message.preferences is checked
    const bad = await api('POST', '/send', { message: msg('bob', 'news', { preferences: { subscription_topic_id: 'a b' } }) });
    assert.equal(bad.status, 400, bad.body);
  });
});

describe('one-click unsubscribe', () => {
  let link;

  test('the email carries List-Unsubscribe (https + mailto) and List-Unsubscribe-Post; {{unsubscribe_url}} renders', T, async () => {
    const id = await send(msg('dave', 'news'));
    assert.equal((await finalMessage(srv, id)).m.status, 'SENT');
    const mail = await smtp.waitForMail((x) => x.rcpt.includes('dave@x.test'));
    // mailparser reads the List-* headers into headers.get('list')
    const list = mail.parsed.headers.get('list');
    const lu = list?.unsubscribe;
    assert.ok(lu, mail.raw.slice(0, 2000));
    assert.match(lu.url, /^https:\/\/mail\.herald\.test\/u\//);
    assert.equal(lu.mail, 'unsub@herald.test?subject=unsubscribe');
    assert.equal(list['unsubscribe-post']?.name, 'List-Unsubscribe=One-Click');
    link = unsubPath(`<${lu.url}>`);
    assert.ok(mail.parsed.text.includes(lu.url), 'the body has {{unsubscribe_url}}');
  });

  test('the POST made like Gmail unsubscribes; replay is harmless; the next email is FILTERED', T, async () => {
    for (let i = 0; i < 2; i++) {
      const r = await oneClick(link);
      assert.equal(r.status, 200, await r.text());
    }
    assert.equal((await sdk.users.preferences.retrieveTopic('news', { user_id: 'dave' })).topic.status, 'OPTED_OUT');
    const id = await send(msg('dave', 'news'));
    assert.equal((await finalMessage(srv, id)).m.reason, 'UNSUBSCRIBED');
    assert.equal(smtp.to('dave@x.test').length, 1);
  });

  test('the multipart/form-data variant of the POST (RFC 8058 allows both) unsubscribes too', T, async () => {
    const id = await send(msg('frank', 'news'));
    assert.equal((await finalMessage(srv, id)).m.status, 'SENT');
    const mail = await smtp.waitForMail((x) => x.rcpt.includes('frank@x.test'));
    const form = new FormData();
    form.append('List-Unsubscribe', 'One-Click');
    const r = await fetch(srv.url + unsubPath(`<${mail.parsed.headers.get('list').unsubscribe.url}>`), { method: 'POST', body: form });
    assert.equal(r.status, 200, await r.text());
    assert.equal((await sdk.users.preferences.retrieveTopic('news', { user_id: 'frank' })).topic.status, 'OPTED_OUT');
  });

  test('bad unsubscribe options are refused at start, naming the flag', T, () => {
    for (const [args, re] of [
      [['--public-url', 'ftp://x.test'], /--public-url must start with https:\/\/ or http:\/\//],
      [['--public-url', 'https://x.test/a b'], /--public-url has a character/],
      [['--unsubscribe-mailto', 'nobody'], /--unsubscribe-mailto must be an email address/],
      [['--unsubscribe-ttl-days', '-1'], /--unsubscribe-ttl-days must be 0\.\.3650/],
    ]) {
      const r = herald(['serve', '--listen', '127.0.0.1:1', ...args], { dir: makeTempDir() });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
  });

  test('forged, truncated and garbage tokens are 404 with no detail; a bad body is 400', T, async () => {
    const tok = link.slice('/u/'.length);
    const [uid, tid, ts, mac] = tok.split('.');
    const other = Buffer.from('erin').toString('hex');
    const flip = mac.slice(0, -1) + (mac.endsWith('0') ? '1' : '0');
    for (const bad of [`${other}.${tid}.${ts}.${mac}`, `${uid}.${tid}.${ts}.${flip}`, tok.slice(0, -1), tok.slice(0, 20), 'x', `${tok}.00`]) {
      for (const method of ['GET', 'POST']) {
        const r = method === 'GET' ? await fetch(`${srv.url}/u/${bad}`) : await oneClick(`/u/${bad}`);
        assert.equal(r.status, 404, `${method} ${bad}`);
        assert.deepEqual(await r.json(), { message: 'not found', type: 'invalid_request_error' });
      }
    }
    assert.equal((await sdk.users.preferences.retrieve('erin')).items.find((i) => i.topic_id === 'news').status, 'OPTED_IN');
    assert.equal((await oneClick(link, 'List-Unsubscribe=Maybe')).status, 400);
  });

  test('Idempotency-Key on the public POST stores and replays nothing', T, async () => {
    const post = (body) => fetch(srv.url + link, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Idempotency-Key': 'same-key' }, body });
    assert.equal((await post('topic=promo&status=OPTED_IN')).status, 200);
    assert.equal((await post('topic=promo&status=OPTED_OUT')).status, 200);
    const r = await post('List-Unsubscribe=One-Click');
    assert.equal(r.headers.get('idempotent-replayed'), null);
    assert.equal(await r.text(), 'unsubscribed\n');
    assert.equal((await sdk.users.preferences.retrieveTopic('promo', { user_id: 'dave' })).topic.status, 'OPTED_OUT');
  });

  test('the hosted page changes a topic in Chromium without JavaScript', T, async (t) => {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/deps.sh test`);
    const browser = await chromium.launchPersistentContext(makeTempDir('herald-prefs-chromium-'), {
      executablePath: CHROMIUM,
      headless: true,
      javaScriptEnabled: false,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    t.after(() => browser.close());
    const page = await browser.newPage();
    const res = await page.goto(srv.url + link);
    assert.equal(res.status(), 200);
    assert.match(res.headers()['content-security-policy'], /default-src 'none'/);
    const news = page.locator('li[data-topic="news"]');
    assert.match(await news.textContent(), /unsubscribed/);
    assert.match(await page.locator('li[data-topic="security"]').textContent(), /required/);
    assert.equal(await page.locator('li[data-topic="security"] button').count(), 0, 'no button for a REQUIRED topic');
    await news.locator('button').click();
    await page.waitForLoadState();
    assert.match(await page.locator('#notice').textContent(), /Subscribed/);
    assert.match(await page.locator('li[data-topic="news"] .status').textContent(), /^subscribed/);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'prefs-hosted-page.png') });
    await waitFor(async () => (await sdk.users.preferences.retrieveTopic('news', { user_id: 'dave' })).topic.status === 'OPTED_IN', { what: 'dave back on news' });
  });
});
