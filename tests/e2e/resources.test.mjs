// resources.test.mjs: Courier's configuration resources, black-box: notification
// templates (draft, publish, versions, replace, archive), brands and provider
// configurations (secret masking, keeping a masked secret on PUT, the catalog), their
// validation errors, and 401 without a key on every route.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { rawRequest, startServer, stopAll, scaled } from './lib/server.mjs';

after(stopAll);

const T = { timeout: scaled(60000) };

let srv;
before(async () => {
  srv = await startServer({ name: 'resources' });
});

const api = (method, path, json) => srv.request(method, path, { auth: 'admin', json });

function assertError(r, status, re) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(typeof r.json?.message, 'string', `error has a message: ${r.body}`);
  assert.equal(typeof r.json?.type, 'string', `error has a type: ${r.body}`);
  if (re) assert.match(r.json.message, re, `message: ${r.body}`);
}

function ok(r, status = 200) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  return r.json;
}

const CONTENT_A = {
  version: '2022-01-01',
  elements: [
    { type: 'meta', title: 'Hello {{profile.name}}' },
    { type: 'text', content: 'Your order {{data.order}} shipped.' },
  ],
};
const CONTENT_B = {
  version: '2022-01-01',
  elements: [{ type: 'text', content: 'Second wording for {{data.order}}.' }],
};

/* ---- templates --------------------------------------------------------------------- */

describe('notification templates', () => {
  let id;

  test('POST creates a draft with a generated nt_ id', T, async () => {
    const t = ok(
      await api('POST', '/notifications', {
        notification: { name: 'Order shipped', tags: ['orders'], brand: null, routing: { method: 'single', channels: ['email', 'sms'] }, content: CONTENT_A },
      }),
    );
    assert.match(t.id, /^nt_[a-z0-9]{26}$/);
    id = t.id;
    assert.equal(t.name, 'Order shipped');
    assert.deepEqual(t.tags, ['orders']);
    assert.equal(t.brand, null);
    assert.equal(t.subscription, null);
    assert.deepEqual(t.routing, { method: 'single', channels: ['email', 'sms'] });
    assert.deepEqual(t.content, CONTENT_A);
    assert.equal(t.state, 'DRAFT');
    assert.equal(t.creator, 'api');
    assert.equal(typeof t.created, 'number');
    assert.equal(t.published_version, null);
    assert.equal(t.archived, undefined, 'bookkeeping stays inside');

    // no version: the published one (Courier's default), which a new draft lacks
    assertError(await api('GET', `/notifications/${id}`), 404, /published/);
    assert.deepEqual(ok(await api('GET', `/notifications/${id}?version=draft`)), t);
    assertError(await api('GET', `/notifications/${id}?version=published`), 404);
    const v = ok(await api('GET', `/notifications/${id}/versions`));
    assert.equal(v.versions.length, 1);
    assert.equal(v.versions[0].version, 'draft');
    assert.equal(v.versions[0].has_changes, true);
    assert.deepEqual(v.paging, { cursor: null, more: false });
  });

  test('publish makes v001; the draft is PUBLISHED until it changes', T, async () => {
    const p = ok(await api('POST', `/notifications/${id}/publish`));
    assert.equal(p.state, 'PUBLISHED');
    assert.equal(p.published_version, 'v001');
    const pub = ok(await api('GET', `/notifications/${id}?version=published`));
    assert.equal(pub.version, 'v001');
    assert.equal(typeof pub.published, 'number');
    assert.deepEqual(pub.content, CONTENT_A);
    assert.deepEqual(ok(await api('GET', `/notifications/${id}?version=v001`)), pub);
    assert.equal(ok(await api('GET', `/notifications/${id}`)).state, 'PUBLISHED');
    const v = ok(await api('GET', `/notifications/${id}/versions`));
    assert.deepEqual(v.versions.map((x) => x.version), ['draft', 'published:v001']);
    assert.equal(v.versions[0].has_changes, false);
    assert.equal(v.versions[1].created, pub.published);
    assert.equal(v.versions[1].creator, 'api');
  });

  test('PUT replaces the draft; the published version stays until the next publish', T, async () => {
    const t = ok(await api('PUT', `/notifications/${id}`, { notification: { name: 'Order shipped v2', content: CONTENT_B } }));
    assert.equal(t.id, id);
    assert.equal(t.name, 'Order shipped v2');
    assert.deepEqual(t.tags, [], 'a full replace: absent tags become []');
    assert.equal(t.routing, null);
    assert.deepEqual(t.content, CONTENT_B);
    assert.equal(t.state, 'DRAFT');
    assert.ok(t.updated >= t.created);
    assert.deepEqual(ok(await api('GET', `/notifications/${id}?version=published`)).content, CONTENT_A);
    let v = ok(await api('GET', `/notifications/${id}/versions`));
    assert.equal(v.versions[0].has_changes, true);

    assert.equal(ok(await api('POST', `/notifications/${id}/publish`, {})).published_version, 'v002');
    const pub = ok(await api('GET', `/notifications/${id}?version=published`));
    assert.equal(pub.version, 'v002');
    assert.deepEqual(pub.content, CONTENT_B);
    assert.deepEqual(ok(await api('GET', `/notifications/${id}?version=v001`)).content, CONTENT_A);
    v = ok(await api('GET', `/notifications/${id}/versions`));
    assert.deepEqual(v.versions.map((x) => x.version), ['draft', 'published:v002', 'v001']);
    assert.equal(v.versions[0].has_changes, false);
  });

  test('publish {version} republishes an older version as the next one', T, async () => {
    const t = ok(await api('POST', `/notifications/${id}/publish`, { version: 'v001' }));
    assert.equal(t.published_version, 'v003');
    assert.equal(t.state, 'DRAFT', 'the draft (B) differs from the published v003 (A)');
    const pub = ok(await api('GET', `/notifications/${id}?version=published`));
    assert.equal(pub.version, 'v003');
    assert.deepEqual(pub.content, CONTENT_A);
    assert.equal(pub.name, 'Order shipped');
    assertError(await api('POST', `/notifications/${id}/publish`, { version: 'v009' }), 404);
    assertError(await api('POST', `/notifications/${id}/publish`, { version: 'latest' }), 400);
  });

  test('versions page newest first, at most 10, with a cursor', T, async () => {
    const p1 = ok(await api('GET', `/notifications/${id}/versions?limit=2`));
    assert.deepEqual(p1.versions.map((x) => x.version), ['draft', 'published:v003']);
    assert.equal(p1.paging.more, true);
    assert.equal(typeof p1.paging.cursor, 'string');
    const p2 = ok(await api('GET', `/notifications/${id}/versions?limit=2&cursor=${encodeURIComponent(p1.paging.cursor)}`));
    assert.deepEqual(p2.versions.map((x) => x.version), ['v002', 'v001']);
    assert.deepEqual(p2.paging, { cursor: null, more: false });
    assertError(await api('GET', `/notifications/${id}/versions?limit=11`), 400);
    assertError(await api('GET', `/notifications/${id}/versions?cursor=bogus`), 400);
  });

  test('POST with state PUBLISHED publishes v001 at once', T, async () => {
    const t = ok(await api('POST', '/notifications', { notification: { name: 'Welcome', content: CONTENT_A }, state: 'PUBLISHED' }));
    assert.equal(t.state, 'PUBLISHED');
    assert.equal(t.published_version, 'v001');
    assert.equal(ok(await api('GET', `/notifications/${t.id}?version=published`)).version, 'v001');
  });

  test('GET /notifications lists summaries without content, pages, and skips archived', T, async () => {
    const extra = ok(await api('POST', '/notifications', { notification: { name: 'To archive', content: CONTENT_B } }));
    let r = ok(await api('GET', '/notifications'));
    assert.ok(r.results.length >= 3);
    for (const s of r.results) {
      assert.equal(s.content, undefined, 'summaries carry no content');
      for (const k of ['id', 'name', 'tags', 'state', 'created', 'updated', 'published_version']) assert.ok(k in s, `summary has ${k}`);
    }
    assert.ok(r.results.some((s) => s.id === extra.id));

    // walk one at a time
    const seen = [];
    let cursor = '';
    for (let i = 0; i < 20; i++) {
      const page = ok(await api('GET', `/notifications?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`));
      seen.push(...page.results.map((s) => s.id));
      if (!page.paging.more) break;
      cursor = page.paging.cursor;
    }
    assert.deepEqual(seen, r.results.map((s) => s.id));

    assert.equal((await api('DELETE', `/notifications/${extra.id}`)).status, 204);
    r = ok(await api('GET', '/notifications'));
    assert.ok(!r.results.some((s) => s.id === extra.id), 'archived templates are not listed');
    assertError(await api('GET', '/notifications?limit=0'), 400);
  });

  test('DELETE archives: every later call is 404', T, async () => {
    const t = ok(await api('POST', '/notifications', { notification: { name: 'Gone soon', content: CONTENT_A }, state: 'PUBLISHED' }));
    assert.equal((await api('DELETE', `/notifications/${t.id}`)).status, 204);
    assertError(await api('GET', `/notifications/${t.id}`), 404);
    assertError(await api('GET', `/notifications/${t.id}?version=published`), 404);
    assertError(await api('GET', `/notifications/${t.id}/versions`), 404);
    assertError(await api('PUT', `/notifications/${t.id}`, { notification: { name: 'x', content: CONTENT_A } }), 404);
    assertError(await api('POST', `/notifications/${t.id}/publish`), 404);
    assertError(await api('DELETE', `/notifications/${t.id}`), 404);
  });

  test('unknown and malformed ids', T, async () => {
    const none = 'nt_doesnotexist';
    assertError(await api('GET', `/notifications/${none}`), 404, /not found/);
    assertError(await api('PUT', `/notifications/${none}`, { notification: { name: 'x', content: CONTENT_A } }), 404);
    assertError(await api('POST', `/notifications/${none}/publish`), 404);
    assertError(await api('GET', `/notifications/${none}/versions`), 404);
    assertError(await api('DELETE', `/notifications/${none}`), 404);
    assertError(await api('GET', `/notifications/${encodeURIComponent('bad id!')}`), 400);
    assertError(await api('GET', `/notifications/${'a'.repeat(129)}`), 400);
    assertError(await api('GET', `/notifications/${id}?version=v1`), 400);
    assertError(await api('GET', `/notifications/${id}?version=v999`), 404);
  });

  test('validation errors are 400 with a message naming the problem', T, async () => {
    const post = (notification, extra = {}) => api('POST', '/notifications', { notification, ...extra });
    assertError(await post({ content: CONTENT_A }), 400, /name/);
    assertError(await post({ name: '', content: CONTENT_A }), 400, /name/);
    assertError(await post({ name: 'x'.repeat(257), content: CONTENT_A }), 400, /name/);
    assertError(await post({ name: 'n' }), 400, /content/);
    assertError(await post({ name: 'n', content: 'just text' }), 400, /content/);
    assertError(await post({ name: 'n', content: { version: '2022-01-01', elements: [{ type: 'no-such-element' }] } }), 400, /content/);
    assertError(await post({ name: 'n', content: CONTENT_A, tags: Array.from({ length: 10 }, (_, i) => `t${i}`) }), 400, /tags/);
    assertError(await post({ name: 'n', content: CONTENT_A, tags: ['x'.repeat(31)] }), 400, /tag/);
    assertError(await post({ name: 'n', content: CONTENT_A, brand: 'acme' }), 400, /brand/);
    assertError(await post({ name: 'n', content: CONTENT_A, subscription: { topic: 'x' } }), 400, /subscription/);
    assertError(await post({ name: 'n', content: CONTENT_A, routing: { method: 'some', channels: ['email'] } }), 400, /routing/);
    assertError(await post({ name: 'n', content: CONTENT_A, routing: { method: 'all', channels: [1] } }), 400, /routing/);
    assertError(await post({ name: 'n', content: CONTENT_A }, { state: 'LIVE' }), 400, /state/);
    assertError(await api('POST', '/notifications', { name: 'n', content: CONTENT_A }), 400, /notification/);
    assertError(await srv.request('POST', '/notifications', { auth: 'admin', headers: { 'Content-Type': 'application/json' }, body: '{"notification":' }), 400);
    // subscription, brand and strategy references are accepted
    ok(await post({ name: 'n', content: CONTENT_A, brand: { id: 'acme' }, subscription: { topic_id: 'marketing' }, routing: { strategy_id: 'rs_1' } }));
    // a body over 1 MiB is refused (raw socket: the server may answer before reading it all)
    const big = await rawRequest(srv.port, {
      method: 'POST',
      path: '/notifications',
      headers: { Authorization: srv.authHeader('admin'), 'Content-Type': 'application/json' },
      body: JSON.stringify({ notification: { name: 'big', content: { version: '2022-01-01', elements: [{ type: 'text', content: 'x'.repeat(1024 * 1024) }] } } }),
    });
    assert.equal(big.status, 413, big.body);
  });
});

/* ---- brands --------------------------------------------------------------------------- */

describe('brands', () => {
  test('create, get, list, replace, delete', T, async () => {
    const gen = ok(await api('POST', '/brands', { name: 'Generated' }));
    assert.match(gen.id, /^br_[a-z0-9]{26}$/);
    assert.equal(gen.name, 'Generated');
    assert.equal(gen.version, 'v001');
    assert.deepEqual(gen.settings, {});
    assert.deepEqual(gen.snippets, {});
    for (const k of ['created', 'updated', 'published']) assert.equal(typeof gen[k], 'number', k);

    const settings = {
      colors: { primary: '#9122c8', secondary: '#c1b834' },
      email: { header: { logo: { href: 'https://acme.example/logo.png', image: 'https://acme.example/logo.png' }, barColor: '#9122c8' }, footer: { content: 'Acme Inc.' } },
    };
    const snippets = { items: [{ name: 'signature', value: 'The Acme team' }] };
    const acme = ok(await api('POST', '/brands', { id: 'acme', name: 'Acme', settings, snippets }));
    assert.equal(acme.id, 'acme');
    assert.deepEqual(acme.settings, settings);
    assert.deepEqual(acme.snippets, snippets);

    const dup = await api('POST', '/brands', { id: 'acme', name: 'Again' });
    assertError(dup, 409, /brand already exists/);

    assert.deepEqual(ok(await api('GET', '/brands/acme')), acme);
    const list = ok(await api('GET', '/brands'));
    assert.deepEqual(list.paging, { cursor: null, more: false });
    assert.deepEqual(list.results.map((b) => b.id).sort(), ['acme', gen.id].sort());
    const p1 = ok(await api('GET', '/brands?limit=1'));
    assert.equal(p1.results.length, 1);
    assert.equal(p1.paging.more, true);
    const p2 = ok(await api('GET', `/brands?limit=1&cursor=${encodeURIComponent(p1.paging.cursor)}`));
    assert.equal(p2.results.length, 1);
    assert.equal(p2.paging.more, false);
    assert.notEqual(p2.results[0].id, p1.results[0].id);

    const rep = ok(await api('PUT', '/brands/acme', { name: 'Acme 2', settings: { colors: { primary: '#000000' } } }));
    assert.equal(rep.name, 'Acme 2');
    assert.equal(rep.version, 'v002');
    assert.equal(rep.created, acme.created);
    assert.deepEqual(rep.settings, { colors: { primary: '#000000' } });
    assert.deepEqual(rep.snippets, {}, 'a replace drops what is not sent');
    assert.deepEqual(ok(await api('GET', '/brands/acme')), rep);

    assertError(await api('PUT', '/brands/nope', { name: 'x' }), 404);
    assertError(await api('GET', '/brands/nope'), 404);
    assert.equal((await api('DELETE', '/brands/acme')).status, 204);
    assertError(await api('GET', '/brands/acme'), 404);
    assertError(await api('DELETE', '/brands/acme'), 404);
  });

  test('validation', T, async () => {
    assertError(await api('POST', '/brands', {}), 400, /name/);
    assertError(await api('POST', '/brands', { name: 7 }), 400, /name/);
    assertError(await api('POST', '/brands', { name: 'x', id: 'bad id' }), 400, /id/);
    assertError(await api('POST', '/brands', { name: 'x', settings: [] }), 400, /settings/);
    assertError(await api('POST', '/brands', { name: 'x', settings: { colors: { primary: 255 } } }), 400, /colors\.primary/);
    assertError(await api('POST', '/brands', { name: 'x', settings: { email: { header: { logo: { href: 'javascript:alert(1)' } } } } }), 400, /href/);
    assertError(await api('POST', '/brands', { name: 'x', snippets: { items: [{ name: 'a' }] } }), 400, /snippets/);
    assertError(await api('PUT', '/brands/whatever', { settings: {} }), 400, /name/);
  });
});

/* ---- providers ---------------------------------------------------------------------- */

const SECRETS = {
  smtp: 'smtp-password-0001',
  sendgrid: 'SG.sendgrid-key-0002',
  twilio: 'twilio-token-0003',
  webhook: 'webhook-secret-0004',
  bearer: 'bearer-token-0005',
  postmark: 'pm-server-token-0006',
  resend: 're_resend-key-0007',
  mailgun: 'key-mailgun-key-0008',
  ses: 'ses-secret-access-key-0006',
  vonage: 'vonage-secret-0007',
  messagebird: 'messagebird-key-0008',
};

const MINIMAL = {
  smtp: { provider: 'smtp', settings: { host: 'smtp.example.com', from: 'noreply@example.com', username: 'mailer', password: SECRETS.smtp } },
  sendgrid: { provider: 'sendgrid', settings: { api_key: SECRETS.sendgrid, from: 'noreply@example.com' } },
  twilio: { provider: 'twilio', settings: { account_sid: 'AC0123456789', auth_token: SECRETS.twilio, from: '+15550001111' } },
  webhook: {
    provider: 'webhook',
    settings: { url: 'https://hooks.example.com/in', secret: SECRETS.webhook, authentication: { mode: 'bearer', token: SECRETS.bearer } },
  },
  console: { provider: 'console', channel: 'push', settings: {} },
  postmark: { provider: 'postmark', settings: { server_token: SECRETS.postmark, from: 'noreply@example.com' } },
  resend: { provider: 'resend', settings: { api_key: SECRETS.resend, from: 'noreply@example.com' } },
  mailgun: { provider: 'mailgun', settings: { api_key: SECRETS.mailgun, domain: 'mg.example.com', from: 'noreply@example.com' } },
  ses: { provider: 'ses', settings: { access_key_id: 'AKID0123456789', secret_access_key: SECRETS.ses, region: 'us-east-1', from: 'noreply@example.com' } },
  vonage: { provider: 'vonage', settings: { api_key: 'abcd1234', api_secret: SECRETS.vonage, from: 'Acme' } },
  messagebird: { provider: 'messagebird', settings: { access_key: SECRETS.messagebird, originator: 'Acme' } },
};
const CHANNEL = { smtp: 'email', sendgrid: 'email', twilio: 'sms', webhook: 'webhook', console: 'push', postmark: 'email', resend: 'email', mailgun: 'email', ses: 'email', vonage: 'sms', messagebird: 'sms' };

const mask = (s) => (s.length < 8 ? '****' : `****${s.slice(-4)}`);

function assertNoSecrets(text, what) {
  for (const s of Object.values(SECRETS)) assert.ok(!text.includes(s), `${what}: the secret ${s.slice(0, 4)}… is in the response: ${text}`);
}

describe('providers', () => {
  const ids = {};

  test('POST each provider with its minimal settings; secrets come back masked', T, async () => {
    for (const [name, body] of Object.entries(MINIMAL)) {
      const r = await api('POST', '/providers', body);
      const p = ok(r);
      assertNoSecrets(r.body, `POST ${name}`);
      assert.match(p.id, /^pr_[a-z0-9]{26}$/);
      assert.equal(p.provider, name);
      assert.equal(p.channel, CHANNEL[name], `${name} channel`);
      assert.equal(p.priority, 100);
      assert.equal(p.enabled, true);
      assert.equal(p.alias, undefined, 'no alias: left out (the SDK types it string, not null)');
      assert.equal(p.title, 'Default Configuration', 'no title: Courier\'s default');
      assert.equal(typeof p.created, 'number');
      ids[name] = p.id;
    }
    const smtp = ok(await api('GET', `/providers/${ids.smtp}`));
    assert.equal(smtp.settings.password, mask(SECRETS.smtp));
    assert.equal(smtp.settings.host, 'smtp.example.com', 'other settings are shown');
    assert.equal(smtp.settings.username, 'mailer');
    assert.equal(ok(await api('GET', `/providers/${ids.sendgrid}`)).settings.api_key, mask(SECRETS.sendgrid));
    assert.equal(ok(await api('GET', `/providers/${ids.twilio}`)).settings.auth_token, mask(SECRETS.twilio));
    assert.equal(ok(await api('GET', `/providers/${ids.postmark}`)).settings.server_token, mask(SECRETS.postmark));
    assert.equal(ok(await api('GET', `/providers/${ids.resend}`)).settings.api_key, mask(SECRETS.resend));
    assert.equal(ok(await api('GET', `/providers/${ids.mailgun}`)).settings.api_key, mask(SECRETS.mailgun));
    assert.equal(ok(await api('GET', `/providers/${ids.ses}`)).settings.secret_access_key, mask(SECRETS.ses));
    assert.equal(ok(await api('GET', `/providers/${ids.vonage}`)).settings.api_secret, mask(SECRETS.vonage));
    assert.equal(ok(await api('GET', `/providers/${ids.messagebird}`)).settings.access_key, mask(SECRETS.messagebird));
    const wh = ok(await api('GET', `/providers/${ids.webhook}`));
    assert.equal(wh.settings.secret, mask(SECRETS.webhook));
    assert.equal(wh.settings.authentication.token, mask(SECRETS.bearer));
    assert.equal(wh.settings.authentication.mode, 'bearer');
    for (const id of Object.values(ids)) assertNoSecrets((await api('GET', `/providers/${id}`)).body, `GET ${id}`);
  });

  test('GET /providers lists all, masked, by channel then priority', T, async () => {
    const first = ok(await api('POST', '/providers', { ...MINIMAL.sendgrid, priority: 5, alias: 'primary-email', title: 'SendGrid primary' }));
    assert.equal(first.priority, 5);
    assert.equal(first.alias, 'primary-email');
    const r = await api('GET', '/providers');
    const list = ok(r);
    assertNoSecrets(r.body, 'GET /providers');
    assert.deepEqual(list.paging, { cursor: null, more: false });
    const order = ['email', 'sms', 'push', 'direct_message', 'webhook'];
    const ch = list.results.map((p) => order.indexOf(p.channel));
    assert.deepEqual(ch, [...ch].sort((a, b) => a - b), 'ordered by channel');
    const email = list.results.filter((p) => p.channel === 'email');
    assert.equal(email[0].id, first.id, 'priority 5 comes before priority 100');
    assert.equal(email.length, 7); // smtp, sendgrid, postmark, resend, mailgun, ses + this one
    assert.equal((await api('DELETE', `/providers/${first.id}`)).status, 204);
  });

  test('PUT with the mask keeps the stored secret; a new value replaces it', T, async () => {
    const cur = ok(await api('GET', `/providers/${ids.smtp}`));
    const edited = { provider: cur.provider, settings: { ...cur.settings, from_name: 'Acme' }, priority: 10, enabled: false };
    const r = await api('PUT', `/providers/${ids.smtp}`, edited);
    const p = ok(r);
    assertNoSecrets(r.body, 'PUT smtp');
    assert.equal(p.id, ids.smtp);
    assert.equal(p.settings.password, mask(SECRETS.smtp), 'the same secret, so the same mask');
    assert.equal(p.settings.from_name, 'Acme');
    assert.equal(p.priority, 10);
    assert.equal(p.enabled, false);
    assert.equal(p.created, cur.created);
    assert.equal(ok(await api('GET', `/providers/${ids.smtp}`)).settings.password, mask(SECRETS.smtp));

    const wh = ok(await api('GET', `/providers/${ids.webhook}`));
    const w2 = ok(await api('PUT', `/providers/${ids.webhook}`, { provider: 'webhook', settings: wh.settings }));
    assert.equal(w2.settings.secret, mask(SECRETS.webhook));
    assert.equal(w2.settings.authentication.token, mask(SECRETS.bearer));

    const fresh = 'brand-new-password-9876';
    const p2 = ok(await api('PUT', `/providers/${ids.smtp}`, { provider: 'smtp', settings: { ...cur.settings, password: fresh } }));
    assert.equal(p2.settings.password, mask(fresh));
    const short = ok(await api('PUT', `/providers/${ids.smtp}`, { provider: 'smtp', settings: { ...cur.settings, password: 'short' } }));
    assert.equal(short.settings.password, '****', 'short secrets show no characters');
    assertError(await api('PUT', '/providers/pr_nope', MINIMAL.smtp), 404);
  });

  test('validation', T, async () => {
    const r = await api('POST', '/providers', { provider: 'carrier-pigeon', settings: {} });
    assertError(r, 400, /unknown provider/);
    for (const name of ['smtp', 'sendgrid', 'twilio', 'webhook', 'console', 'postmark', 'resend', 'mailgun', 'ses', 'vonage', 'messagebird']) assert.match(r.json.message, new RegExp(name), 'lists the known ones');
    assertError(await api('POST', '/providers', { settings: {} }), 400, /provider/);
    assertError(await api('POST', '/providers', { provider: 'smtp', settings: { from: 'a@example.com' } }), 400, /host/);
    assertError(await api('POST', '/providers', { provider: 'smtp', settings: 'host=x' }), 400, /settings/);
    assertError(await api('POST', '/providers', { provider: 'webhook', settings: { url: 'ftp://x' } }), 400, /url/);
    assertError(await api('POST', '/providers', { provider: 'ses', settings: { ...MINIMAL.ses.settings, region: undefined } }), 400, /settings\.region/);
    assertError(await api('POST', '/providers', { provider: 'vonage', settings: { ...MINIMAL.vonage.settings, api_secret: '' } }), 400, /settings\.api_secret/);
    assertError(await api('POST', '/providers', { provider: 'messagebird', settings: { ...MINIMAL.messagebird.settings, originator: 'TooLongSenderName' } }), 400, /settings\.originator/);
    // the SDK's create shape has no channel: console defaults to email, titled as Courier does
    const dflt = ok(await api('POST', '/providers', { provider: 'console', settings: {} }));
    assert.equal(dflt.channel, 'email');
    assert.equal(dflt.title, 'Default Configuration');
    assert.equal((await api('DELETE', `/providers/${dflt.id}`)).status, 204);
    assertError(await api('POST', '/providers', { provider: 'console', channel: 'fax', settings: {} }), 400, /channel/);
    assertError(await api('POST', '/providers', { ...MINIMAL.twilio, priority: -1 }), 400, /priority/);
    assertError(await api('POST', '/providers', { ...MINIMAL.twilio, priority: 1.5 }), 400, /priority/);
    assertError(await api('POST', '/providers', { ...MINIMAL.twilio, enabled: 'yes' }), 400, /enabled/);
    assertError(await api('POST', '/providers', { ...MINIMAL.twilio, alias: 42 }), 400, /alias/);
  });

  test('GET /providers/catalog describes every provider', T, async () => {
    const c = ok(await api('GET', '/providers/catalog'));
    const by = Object.fromEntries(c.results.map((e) => [e.provider, e]));
    assert.deepEqual(Object.keys(by).sort(), ['console', 'mailgun', 'messagebird', 'postmark', 'resend', 'sendgrid', 'ses', 'smtp', 'twilio', 'vonage', 'webhook']);
    assert.equal(by.smtp.channel, 'email');
    assert.equal(by.twilio.channel, 'sms');
    assert.equal(by.webhook.channel, 'webhook');
    assert.deepEqual(by.smtp.settings.host, { type: 'string', required: true });
    assert.equal(by.smtp.settings.password.required, false);
    assert.equal(by.sendgrid.settings.api_key.required, true);
    assert.equal(by.twilio.settings.auth_token.required, true);
    assert.equal(by.postmark.settings.server_token.required, true);
    assert.equal(by.resend.settings.api_key.required, true);
    assert.deepEqual(by.mailgun.settings.region, { type: 'string', required: false, values: ['us', 'eu'] });
    assert.equal(by.ses.channel, 'email');
    assert.equal(by.ses.settings.secret_access_key.required, true);
    assert.equal(by.ses.settings.session_token.required, false);
    assert.equal(by.vonage.channel, 'sms');
    assert.equal(by.vonage.settings.api_secret.required, true);
    assert.equal(by.messagebird.channel, 'sms');
    assert.equal(by.messagebird.settings.access_key.required, true);
    assert.equal(by.webhook.settings.url.required, true);
    assert.ok(by.console.settings.channel);
    for (const e of c.results) {
      assert.equal(typeof e.name, 'string');
      for (const f of Object.values(e.settings)) {
        assert.equal(typeof f.type, 'string');
        assert.equal(typeof f.required, 'boolean');
      }
    }
  });

  test('DELETE removes a configuration', T, async () => {
    assert.equal((await api('DELETE', `/providers/${ids.console}`)).status, 204);
    assertError(await api('GET', `/providers/${ids.console}`), 404);
    assertError(await api('DELETE', `/providers/${ids.console}`), 404);
  });
});

/* ---- auth ---------------------------------------------------------------------------- */

test('every route answers 401 without a key', T, async () => {
  const routes = [
    ['POST', '/notifications'],
    ['GET', '/notifications'],
    ['GET', '/notifications/nt_x'],
    ['PUT', '/notifications/nt_x'],
    ['DELETE', '/notifications/nt_x'],
    ['POST', '/notifications/nt_x/publish'],
    ['GET', '/notifications/nt_x/versions'],
    ['POST', '/brands'],
    ['GET', '/brands'],
    ['GET', '/brands/b'],
    ['PUT', '/brands/b'],
    ['DELETE', '/brands/b'],
    ['POST', '/providers'],
    ['GET', '/providers'],
    ['GET', '/providers/catalog'],
    ['GET', '/providers/pr_x'],
    ['PUT', '/providers/pr_x'],
    ['DELETE', '/providers/pr_x'],
  ];
  for (const [method, path] of routes) {
    const body = method === 'POST' || method === 'PUT' ? { name: 'x' } : undefined;
    const r = await srv.request(method, path, { json: body });
    assertError(r, 401);
    const w = await srv.request(method, path, { json: body, auth: 'Bearer not-a-key' });
    assertError(w, 401);
  }
});
