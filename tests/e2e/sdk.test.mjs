// sdk.test.mjs: Courier's official Node SDK (@trycourier/courier 7.x) against herald, method
// by method, with the SDK's own TypeScript types (node_modules/@trycourier/courier/
// resources/*.d.ts) as the contract: every field the type declares is checked for presence
// (unless optional), for type and for null where the type allows none; status codes and
// cursor paging are checked as the SDK sees them. A shape drift in herald fails here.
// Fields herald adds beyond the type are allowed. Runs on the store HERALD_TEST_STORE names.

import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import Courier from '@trycourier/courier';

import { closeAfterAll } from './lib/cleanup.mjs';
import { scaled, startServer, waitFor } from './lib/server.mjs';

const T = { timeout: scaled(30000) };
closeAfterAll();

/* ---- the SDK's types as data ------------------------------------------------------------ */

// A type is 'string' | 'number' | 'boolean' | 'object' | 'array' | 'unknown', an array of
// literal values (an enum), or an object schema {field: type}. A field spec is a type, or
// {t: type, opt: true} (may be absent: `x?:`), {t, nul: true} (may be null: `| null`).
const opt = (t) => ({ t, opt: true });
const optNull = (t) => ({ t, opt: true, nul: true });
const nullable = (t) => ({ t, nul: true });
const arrayOf = (t) => ({ arrayOf: t });

const STATUSES = ['CANCELED', 'CLICKED', 'DELAYED', 'DELIVERED', 'DIGESTED', 'ENQUEUED', 'FILTERED', 'OPENED', 'ROUTED', 'SENT', 'SIMULATED', 'THROTTLED', 'UNDELIVERABLE', 'UNMAPPED', 'UNROUTABLE'];
const REASONS = ['BOUNCED', 'FAILED', 'FILTERED', 'NO_CHANNELS', 'NO_PROVIDERS', 'OPT_IN_REQUIRED', 'PROVIDER_ERROR', 'UNPUBLISHED', 'UNSUBSCRIBED'];

const Paging = { more: 'boolean', cursor: optNull('string') };
// messages.d.ts
const MessageDetails = {
  id: 'string', enqueued: 'number', event: 'string', notification: 'string', recipient: 'string', status: STATUSES,
  clicked: opt('number'), delivered: opt('number'), error: optNull('string'), opened: opt('number'), reason: optNull(REASONS), sent: opt('number'),
};
const MessageRetrieveResponse = { ...MessageDetails, providers: optNull(arrayOf('object')) };
const MessageListResponse = { paging: Paging, results: arrayOf(MessageDetails) };
const MessageContentResponse = {
  results: arrayOf({
    channel: 'string', channel_id: 'string',
    content: { blocks: arrayOf({ text: 'string', type: 'string' }), body: 'string', html: 'string', subject: 'string', text: 'string', title: 'string' },
  }),
};
const MessageHistoryResponse = { results: arrayOf('object') };
// notifications/notifications.d.ts
const TemplateState = ['DRAFT', 'PUBLISHED'];
const NotificationTemplateResponse = {
  brand: nullable({ id: 'string' }), content: { elements: 'array', version: opt('string') }, name: 'string', routing: nullable({ strategy_id: 'string' }),
  subscription: nullable({ topic_id: 'string' }), tags: arrayOf('string'),
  id: 'string', created: 'number', creator: 'string', state: TemplateState, updated: opt('number'), updater: opt('string'),
};
const NotificationTemplateSummary = {
  id: 'string', created: 'number', creator: 'string', name: 'string', state: TemplateState, tags: arrayOf('string'), updated: opt('number'), updater: opt('string'),
};
const NotificationListResponse = { paging: Paging, results: arrayOf(NotificationTemplateSummary) };
const VersionNode = { created: 'number', creator: 'string', version: 'string', has_changes: opt('boolean') };
const NotificationTemplateVersionListResponse = { paging: Paging, versions: arrayOf(VersionNode) };
// automations/automations.d.ts
const AutomationTemplate = { id: 'string', name: 'string', version: ['published', 'draft'], createdAt: opt('iso'), updatedAt: opt('iso') };
const AutomationTemplateListResponse = { cursor: opt('string'), templates: opt(arrayOf(AutomationTemplate)) };
const AutomationInvokeResponse = { runId: 'string' };
// brands.d.ts
const Brand = {
  id: 'string', created: 'number', name: 'string', updated: 'number', published: optNull('number'),
  settings: optNull({ colors: optNull('object'), email: optNull('object'), inapp: optNull('object') }), snippets: optNull('object'), version: optNull('string'),
};
const BrandListResponse = { paging: Paging, results: arrayOf(Brand) };
// providers/providers.d.ts, providers/catalog.d.ts
const Provider = { id: 'string', created: 'number', provider: 'string', settings: 'object', title: 'string', alias: opt('string'), updated: optNull('number') };
const ProviderListResponse = { paging: Paging, results: arrayOf(Provider) };
const ProvidersCatalogEntry = {
  channel: 'string', description: 'string', name: 'string', provider: 'string',
  settings: { mapOf: { required: 'boolean', type: 'string', values: opt(arrayOf('string')) } },
};
const CatalogListResponse = { paging: Paging, results: arrayOf(ProvidersCatalogEntry) };
// profiles/profiles.d.ts, inbound.d.ts, send.d.ts
const ProfileStatus = { status: ['SUCCESS'] };
const ProfileRetrieveResponse = { profile: 'object', preferences: optNull('object') };
const InboundTrackEventResponse = { messageId: 'string' };
const SendMessageResponse = { requestId: 'string' };

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

/** Assert that v has type t (see above); path names the place in messages. */
function check(v, t, path = '$') {
  const where = `${path}: ${JSON.stringify(v)?.slice(0, 300)}`;
  if (Array.isArray(t)) return assert.ok(t.includes(v), `${where} is one of ${t.join('|')}`);
  if (typeof t === 'string') {
    switch (t) {
      case 'unknown':
        return;
      case 'array':
        return assert.ok(Array.isArray(v), `${where} is an array`);
      case 'object':
        return assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), `${where} is an object`);
      case 'iso':
        return assert.ok(typeof v === 'string' && ISO.test(v) && !Number.isNaN(Date.parse(v)), `${where} is an ISO 8601 string`);
      default:
        return assert.equal(typeof v, t, `${where} is a ${t}`);
    }
  }
  if (t.arrayOf) {
    assert.ok(Array.isArray(v), `${where} is an array`);
    return v.forEach((x, i) => check(x, t.arrayOf, `${path}[${i}]`));
  }
  if (t.mapOf) {
    check(v, 'object', path);
    return Object.entries(v).forEach(([k, x]) => check(x, t.mapOf, `${path}.${k}`));
  }
  check(v, 'object', path);
  for (const [k, spec] of Object.entries(t)) {
    const s = spec && typeof spec === 'object' && 't' in spec ? spec : { t: spec };
    const p = `${path}.${k}`;
    if (!(k in v)) {
      assert.ok(s.opt, `${p} is present (${JSON.stringify(v).slice(0, 300)})`);
      continue;
    }
    if (v[k] === null) {
      assert.ok(s.nul, `${p} is not null`);
      continue;
    }
    if (v[k] === undefined) continue;
    check(v[k], s.t, p);
  }
}

/** The SDK call's data and HTTP status. */
async function call(promise) {
  const { data, response } = await promise.withResponse();
  return { data, status: response.status };
}

/** Assert that the SDK call fails with HTTP status and (unless re is false) an error body
 *  {message, type} whose message matches re; return the error. */
async function refused(promise, status, re) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof Courier.APIError, `an APIError, got ${e}`);
    assert.equal(e.status, status, `status ${status}, got ${e.status}: ${JSON.stringify(e.error)}`);
    if (re === false) return e;
    assert.equal(typeof e.error?.message, 'string', JSON.stringify(e.error));
    assert.equal(typeof e.error?.type, 'string', JSON.stringify(e.error));
    if (re) assert.match(e.error.message, re);
    return e;
  }
  assert.fail(`expected HTTP ${status}`);
}

const CONTENT = { version: '2022-01-01', elements: [{ type: 'meta', title: 'Hi {{data.name}}' }, { type: 'text', content: 'Hello **{{data.name}}**.' }] };
const CONTENT_B = { version: '2022-01-01', elements: [{ type: 'meta', title: 'Second' }, { type: 'text', content: 'Changed.' }] };
const PENDING = new Set(['ENQUEUED', 'DELAYED', 'ROUTED']);

/* ---- the suite ---------------------------------------------------------------------------- */

describe('Courier SDK 7.x against herald', () => {
  let srv;
  let sdk;
  let providerId;
  let sentId;
  const raw = (method, p, json) => srv.request(method, p, { auth: 'admin', json });

  async function final(id) {
    return waitFor(
      async () => {
        const m = await sdk.messages.retrieve(id);
        return !PENDING.has(m.status) && m;
      },
      { timeout: scaled(15000), what: `message ${id} to leave the pending statuses` },
    );
  }

  before(async () => {
    srv = await startServer({ name: 'sdk' });
    sdk = new Courier({ apiKey: srv.adminKey, baseURL: srv.url, maxRetries: 0, timeout: scaled(15000) });
  });

  test('providers: create in the SDK shape, retrieve, update, list, catalog with filters', T, async () => {
    // the SDK's ProviderCreateParams: no channel, no title
    const c = await call(sdk.providers.create({ provider: 'console', settings: {} }));
    assert.ok(c.status >= 200 && c.status < 300);
    check(c.data, Provider);
    assert.equal(c.data.title, 'Default Configuration');
    providerId = c.data.id;
    check(await sdk.providers.retrieve(providerId), Provider);
    const u = await sdk.providers.update(providerId, { provider: 'console', title: 'Log', alias: 'log', settings: { channel: 'email' } });
    check(u, Provider);
    assert.equal(u.title, 'Log');
    assert.equal(u.alias, 'log');
    const l = await sdk.providers.list();
    check(l, ProviderListResponse);
    assert.ok(l.results.some((p) => p.id === providerId));

    const all = await sdk.providers.catalog.list();
    check(all, CatalogListResponse);
    assert.deepEqual(all.paging, { cursor: null, more: false });
    assert.equal(all.results.find((e) => e.provider === 'console')?.channel, 'email');
    const keys = (r) => r.results.map((e) => e.provider).sort();
    assert.deepEqual(keys(await sdk.providers.catalog.list({ channel: 'SMS' })), ['messagebird', 'twilio', 'vonage']);
    assert.deepEqual(keys(await sdk.providers.catalog.list({ keys: 'smtp,webhook' })), ['smtp', 'webhook']);
    assert.deepEqual(keys(await sdk.providers.catalog.list({ name: 'GRID' })), ['sendgrid']);
    assert.deepEqual(keys(await sdk.providers.catalog.list({ channel: 'email', keys: 'twilio' })), []);

    const tmp = await sdk.providers.create({ provider: 'console', settings: { channel: 'sms' } });
    const d = await sdk.providers.delete(tmp.id).withResponse();
    assert.equal(d.response.status, 204);
    await refused(sdk.providers.retrieve(tmp.id), 404);
  });

  test('send, then messages.retrieve, history, content', T, async () => {
    const r = await call(sdk.send.message({ message: { to: { email: 'a@x.test' }, content: { title: 'Hi {{name}}', body: 'Hello **{{name}}**' }, data: { name: 'Ann' }, metadata: { tags: ['sdk', 'one'], trace_id: 'tr-1' }, routing: { method: 'single', channels: ['email'] } } }));
    assert.equal(r.status, 202);
    check(r.data, SendMessageResponse);
    sentId = r.data.requestId;
    const m = await final(sentId);
    check(m, MessageRetrieveResponse);
    assert.equal(m.status, 'SENT', JSON.stringify(m));
    assert.equal(m.recipient, 'a@x.test');

    const h = await sdk.messages.history(sentId);
    check(h, MessageHistoryResponse);
    for (const e of h.results) check(e, { ts: 'number', type: 'string' });
    assert.deepEqual(h.results.find((e) => e.type === 'ENQUEUED')?.data, { name: 'Ann' }, 'ENQUEUED shows the message data');
    const only = await sdk.messages.history(sentId, { type: 'SENT' });
    assert.deepEqual(only.results.map((e) => e.type), ['SENT']);

    const out = await sdk.messages.content(sentId);
    check(out, MessageContentResponse);
    assert.equal(out.results.length, 1);
    const c = out.results[0].content;
    assert.equal(out.results[0].channel, 'email');
    assert.equal(c.subject, 'Hi Ann');
    assert.equal(c.title, 'Hi Ann');
    assert.match(c.html, /<strong>Ann<\/strong>/);
    assert.match(c.text, /Ann/);
    assert.equal(c.body, c.text);
    assert.deepEqual(c.blocks, [{ type: 'text', text: c.text }]);

    await refused(sdk.messages.retrieve('1-00000000-000000000000000000000000'), 404);

    // the final statuses that are not SENT keep to the SDK's reason enum too
    const unmapped = (await sdk.send.message({ message: { to: { email: 'a@x.test' }, template: 'nt_nosuchtemplate' } })).requestId;
    const um = await final(unmapped);
    check(um, MessageRetrieveResponse);
    assert.equal(um.status, 'UNMAPPED');
    const unroutable = (await sdk.send.message({ message: { to: { phone_number: '+15550001111' }, content: { title: 'T', body: 'B' }, routing: { method: 'single', channels: ['sms'] } } })).requestId;
    const ur = await final(unroutable);
    check(ur, MessageRetrieveResponse);
    assert.equal(ur.status, 'UNROUTABLE');
    assert.equal(ur.reason, 'NO_PROVIDERS');
  });

  test('messages.list: several statuses and tags, messageId, enqueued_after, paging', T, async () => {
    assert.ok(sentId, 'needs the message of the send test');
    const ids = [sentId];
    for (const [i, tags] of [['two'], ['three', 'sdk']].entries()) {
      const { requestId } = await sdk.send.message({ message: { to: { email: `l${i}@x.test` }, content: { title: 'T', body: 'B' }, metadata: { tags } } });
      ids.push(requestId);
      await final(requestId);
    }
    const canceled = (await sdk.send.message({ message: { to: { email: 'later@x.test' }, content: { title: 'T', body: 'B' }, delay: { duration: 3600000 } } })).requestId;
    check(await sdk.messages.cancel(canceled), MessageDetails);

    const list = await sdk.messages.list();
    check(list, MessageListResponse);
    const idsOf = (r) => r.results.map((m) => m.id);
    // the SDK joins arrays with commas: status=SENT,CANCELED
    const both = await sdk.messages.list({ status: ['SENT', 'CANCELED'] });
    check(both, MessageListResponse);
    assert.deepEqual(new Set(idsOf(both)), new Set([...ids, canceled]));
    assert.deepEqual(idsOf(await sdk.messages.list({ status: ['CANCELED'] })), [canceled]);
    assert.deepEqual(new Set(idsOf(await sdk.messages.list({ tag: ['one', 'two'] }))), new Set([ids[0], ids[1]]));
    assert.deepEqual(new Set(idsOf(await sdk.messages.list({ tags: 'three,nope' }))), new Set([ids[2]]));
    assert.deepEqual(new Set(idsOf(await sdk.messages.list({ tag: ['sdk'] }))), new Set([ids[0], ids[2]]));
    // repeated parameters (not what the SDK sends, but what other clients do) are any-of too
    const rep = await raw('GET', '/messages?status=CANCELED&status=SENT');
    assert.equal(rep.status, 200, rep.body);
    assert.deepEqual(new Set(rep.json.results.map((m) => m.id)), new Set([...ids, canceled]));
    assert.deepEqual(idsOf(await sdk.messages.list({ messageId: ids[1] })), [ids[1]]);
    assert.deepEqual(idsOf(await sdk.messages.list({ traceId: 'tr-1' })), [ids[0]]);
    const first = await sdk.messages.retrieve(ids[0]);
    const after = await sdk.messages.list({ enqueued_after: new Date(first.enqueued).toISOString() });
    assert.ok(!idsOf(after).includes(ids[0]), 'enqueued_after leaves out messages enqueued at or before it');
    assert.ok(idsOf(after).includes(canceled));
    assert.equal((await sdk.messages.list({ archived: true })).results.length, list.results.length);

    for (const [q, re] of [[{ provider: ['sendgrid'] }, /provider/], [{ tenant_id: 't1' }, /tenant_id/], [{ status: ['SENT', 'NOPE'] }, /NOPE/], [{ enqueued_after: 'yesterday' }, /enqueued_after/], [{ bogus: 1 }, /bogus/], [{ recipient: 'x'.repeat(1025) }, /recipient/]]) {
      await refused(sdk.messages.list(q), 400, re);
    }

    // ?list= is the messages a list send made (tests/e2e/listsend.test.mjs): none here
    assert.deepEqual(idsOf(await sdk.messages.list({ list: 'l1' })), []);

    // cursor paging as the SDK sees it: every message once, newest first
    const seen = [];
    let page = await sdk.messages.list({ status: ['SENT', 'CANCELED'], limit: 2 });
    for (let i = 0; i < 10; i++) {
      check(page, MessageListResponse);
      seen.push(...idsOf(page));
      if (!page.paging.more) break;
      assert.equal(typeof page.paging.cursor, 'string');
      page = await sdk.messages.list({ status: ['SENT', 'CANCELED'], limit: 2, cursor: page.paging.cursor });
    }
    assert.deepEqual(seen, idsOf(both));
  });

  test('messages.cancel: 200 with the record, 409 once sent', T, async () => {
    const { requestId } = await sdk.send.message({ message: { to: { email: 'c@x.test' }, content: { title: 'T', body: 'B' }, delay: { until: new Date(Date.now() + 3600000).toISOString() } } });
    const c = await call(sdk.messages.cancel(requestId));
    assert.equal(c.status, 200);
    check(c.data, MessageDetails);
    assert.equal(c.data.status, 'CANCELED');
    assert.ok(sentId);
    const e = await refused(sdk.messages.cancel(sentId), 409, false); // Courier answers the record
    check(e.error, MessageDetails);
  });

  test('send: fields herald cannot honour yet are refused by name', T, async () => {
    const base = { to: { email: 'r@x.test' }, content: { title: 'T', body: 'B' } };
    const cases = [
      [{ context: { tenant_id: 't1' } }, /message\.context\.tenant_id is not supported yet/],
      [{ expiry: { expires_in: 60000 } }, /message\.expiry is not supported yet/],
      [{ preferences: { subscription_topic_id: 'a topic' } }, /message\.preferences\.subscription_topic_id must be/],
      [{ metadata: { utm: { source: 'x' } } }, /message\.metadata\.utm is not supported yet/],
      [{ delay: { duration: 1000, timezone: 'Europe/Paris' } }, /message\.delay\.timezone is not supported yet/],
      [{ timeout: { channel: { email: 1000 } } }, /message\.timeout\.channel is not supported yet/],
      [{ timeout: { provider: { smtp: 1000 } } }, /message\.timeout\.provider is not supported yet/],
      [{ timeout: { escalation: 1000 } }, /message\.timeout\.escalation is not supported yet/],
      [{ timeout: { criteria: 'delivered' } }, /message\.timeout\.criteria is not supported yet/],
      [{ channels: { email: { routing_method: 'all' } } }, /message\.channels\.email\.routing_method is not supported yet/],
      [{ providers: { smtp: { if: 'true' } } }, /message\.providers\.smtp\.if is not supported yet/],
      [{ to: { email: 'r@x.test', tenant_id: 't1' } }, /message\.to\.tenant_id is not supported yet/],
      [{ to: [{ email: 'r@x.test' }, { email: 's@x.test', preferences: {} }] }, /message\.to\[1\]\.preferences is not supported yet/],
      [{ surprise: 1 }, /message\.surprise is not a field/],
    ];
    for (const [extra, re] of cases) await refused(sdk.send.message({ message: { ...base, ...extra } }), 400, re);
    // null means "none" in the SDK's types: accepted
    const ok = await call(sdk.send.message({ message: { ...base, expiry: null, context: null, delay: null, timeout: null, metadata: { utm: null, tags: ['n'] } } }));
    assert.equal(ok.status, 202);
  });

  test('profiles: create, retrieve, update (JSON Patch), replace, delete', T, async () => {
    const u = 'sdk user@x';
    const c = await call(sdk.profiles.create(u, { profile: { email: 'p@x.test', name: 'P' } }));
    assert.equal(c.status, 200);
    check(c.data, ProfileStatus);
    const g = await sdk.profiles.retrieve(u);
    check(g, ProfileRetrieveResponse);
    assert.equal(g.profile.email, 'p@x.test');
    const p = await sdk.profiles.update(u, { patch: [{ op: 'replace', path: '/name', value: 'Q' }] }).withResponse();
    assert.ok(p.response.status >= 200 && p.response.status < 300);
    assert.equal((await sdk.profiles.retrieve(u)).profile.name, 'Q');
    check(await sdk.profiles.replace(u, { profile: { email: 'r@x.test' } }), ProfileStatus);
    assert.deepEqual((await sdk.profiles.retrieve(u)).profile, { email: 'r@x.test' });
    const d = await sdk.profiles.delete(u).withResponse();
    assert.ok(d.response.status >= 200 && d.response.status < 300);
    await refused(sdk.profiles.retrieve(u), 404);
  });

  test('notifications: create, retrieve (published by default), replace, publish, list, versions, archive', T, async () => {
    const t = await call(sdk.notifications.create({ notification: { name: 'SDK welcome', tags: ['sdk'], brand: null, subscription: null, routing: null, content: CONTENT } }));
    assert.ok(t.status >= 200 && t.status < 300);
    check(t.data, NotificationTemplateResponse);
    const id = t.data.id;
    assert.equal(t.data.state, 'DRAFT');
    // the SDK documents the published version as the default: a draft has none yet
    await refused(sdk.notifications.retrieve(id), 404, /published/);
    check(await sdk.notifications.retrieve(id, { version: 'draft' }), NotificationTemplateResponse);
    const pub = await sdk.notifications.publish(id).withResponse();
    assert.ok(pub.response.status >= 200 && pub.response.status < 300);
    const r = await sdk.notifications.replace(id, { notification: { name: 'SDK welcome 2', tags: ['sdk'], brand: null, subscription: null, routing: null, content: CONTENT_B } });
    check(r, NotificationTemplateResponse);
    assert.equal(r.state, 'DRAFT');
    const dflt = await sdk.notifications.retrieve(id);
    check(dflt, NotificationTemplateResponse);
    assert.deepEqual(dflt.content, CONTENT, 'no version: the published one');
    assert.equal(dflt.state, 'PUBLISHED');
    assert.deepEqual((await sdk.notifications.retrieve(id, { version: 'draft' })).content, CONTENT_B);
    assert.deepEqual((await sdk.notifications.retrieve(id, { version: 'v001' })).content, CONTENT);
    await refused(sdk.notifications.retrieve(id, { version: 'latest' }), 400);

    const l = await sdk.notifications.list();
    check(l, NotificationListResponse);
    const s = l.results.find((x) => x.id === id);
    assert.equal(s.creator, 'api');
    check(await sdk.notifications.list({ notes: true }), NotificationListResponse);
    await refused(sdk.notifications.list({ event_id: 'order' }), 400, /event_id/);
    const v = await sdk.notifications.listVersions(id);
    check(v, NotificationTemplateVersionListResponse);
    assert.deepEqual(v.versions.map((x) => x.version), ['draft', 'published:v001']);

    const a = await sdk.notifications.archive(id).withResponse();
    assert.equal(a.response.status, 204);
    await refused(sdk.notifications.retrieve(id), 404);
  });

  test('brands: create, retrieve, update, list, delete', T, async () => {
    const c = await call(sdk.brands.create({ name: 'Acme', id: 'acme-sdk', settings: { colors: { primary: '#112233' } } }));
    assert.ok(c.status >= 200 && c.status < 300);
    check(c.data, Brand);
    check(await sdk.brands.retrieve('acme-sdk'), Brand);
    const u = await sdk.brands.update('acme-sdk', { name: 'Acme 2', settings: { colors: { primary: '#445566' } } });
    check(u, Brand);
    assert.equal(u.name, 'Acme 2');
    const l = await sdk.brands.list();
    check(l, BrandListResponse);
    assert.ok(l.results.some((b) => b.id === 'acme-sdk'));
    await refused(sdk.brands.create({ name: 'Again', id: 'acme-sdk' }), 409);
    const d = await sdk.brands.delete('acme-sdk').withResponse();
    assert.equal(d.response.status, 204);
    await refused(sdk.brands.retrieve('acme-sdk'), 404);
  });

  test('automations: list (published/draft, ISO times, no cursor on the last page), invoke', T, async () => {
    const tpl = await sdk.notifications.create({ notification: { name: 'Auto', tags: [], brand: null, subscription: null, routing: null, content: CONTENT }, state: 'PUBLISHED' });
    for (const id of ['sdk-auto-1', 'sdk-auto-2']) {
      const r = await raw('PUT', `/automations/${id}`, { name: id, steps: [{ action: 'send', template: tpl.id, recipient: 'refs.data.userId', profile: { email: 'auto@x.test' } }] });
      assert.equal(r.status, 200, r.body);
    }
    const l = await sdk.automations.list();
    check(l, AutomationTemplateListResponse);
    assert.ok(!('cursor' in l), 'no cursor on the last page');
    assert.deepEqual(l.templates.map((a) => a.id).sort(), ['sdk-auto-1', 'sdk-auto-2']);
    assert.ok(l.templates.every((a) => a.version === 'published'));
    check(await sdk.automations.list({ version: 'published' }), AutomationTemplateListResponse);
    assert.deepEqual((await sdk.automations.list({ version: 'draft' })).templates, []);
    await refused(sdk.automations.list({ version: 'latest' }), 400, /version/);

    const byId = await call(sdk.automations.invoke.invokeByTemplate('sdk-auto-1', { recipient: 'auto-user', data: { userId: 'auto-user' } }));
    assert.ok(byId.status >= 200 && byId.status < 300);
    check(byId.data, AutomationInvokeResponse);
    // 50 per page: a cursor while more follow, none on the last page
    for (let i = 3; i <= 51; i++) {
      const r = await raw('PUT', `/automations/sdk-auto-${String(i).padStart(2, '0')}`, { name: `a${i}`, steps: [{ action: 'delay', duration: '1 minute' }] });
      assert.equal(r.status, 200, r.body);
    }
    const p1 = await sdk.automations.list();
    check(p1, AutomationTemplateListResponse);
    assert.equal(p1.templates.length, 50);
    assert.equal(typeof p1.cursor, 'string');
    const p2 = await sdk.automations.list({ cursor: p1.cursor });
    check(p2, AutomationTemplateListResponse);
    assert.ok(!('cursor' in p2));
    assert.equal(new Set([...p1.templates, ...p2.templates].map((a) => a.id)).size, 51);

    const adhoc = await sdk.automations.invoke.invokeAdHoc({ recipient: 'auto-user', data: { userId: 'auto-user' }, automation: { steps: [{ action: 'send', template: tpl.id, recipient: 'auto-user', profile: { email: 'auto@x.test' } }] } });
    check(adhoc, AutomationInvokeResponse);
  });

  test('inbound.trackEvent: 202 {messageId}, 409 on a reused messageId', T, async () => {
    const body = { event: 'SDK Event', messageId: 'sdk-track-1', type: 'track', userId: 'u-track', properties: { plan: 'pro' } };
    const r = await call(sdk.inbound.trackEvent(body));
    assert.equal(r.status, 202);
    check(r.data, InboundTrackEventResponse);
    await refused(sdk.inbound.trackEvent(body), 409);
  });

  test("POST /debug: the key check Segment's Courier (Actions) destination runs", T, async () => {
    // testAuthentication: POST {domain}/debug with the Bearer key, no body; any 2xx passes
    const r = await fetch(`${srv.url}/debug`, { method: 'POST', headers: { Authorization: `Bearer ${srv.adminKey}`, 'Content-Type': 'application/json', 'User-Agent': 'SegmentCourier' } });
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { status: 'ok' });
    const bad = await fetch(`${srv.url}/debug`, { method: 'POST', headers: { Authorization: 'Bearer hk_wrong' } });
    assert.equal(bad.status, 401);
  });
});
