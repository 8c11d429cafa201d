// fanout.mjs: one announcement to N recipients through herald's POST /send, as fast as
// herald takes it: the message has no list send yet (to.list_id is refused), so the
// recipients go as `to` arrays of CHUNK (default 100; herald's limit is 1,000) per
// request, CONC (default 4) requests at once. Every message's content body is "ts:<the request's send time in
// us>", so bench/sink.c measures send -> delivery per message.
//
//   node bench/fanout.mjs HERALD_URL ADMIN_KEY N [CHUNK] [CONC]
//
// Prints key=value lines: requests, accepted (recipients in 202 answers), bad (requests
// that got another status), accept_s (first request -> last answer).
const [url, key, nArg, chunkArg, concArg] = process.argv.slice(2);
const N = Number(nArg), CHUNK = Number(chunkArg || 100), CONC = Number(concArg || 4);
if (!url || !key || !(N > 0)) {
  console.error('usage: node bench/fanout.mjs HERALD_URL ADMIN_KEY N [CHUNK] [CONC]');
  process.exit(2);
}
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
let next = 0, requests = 0, accepted = 0, bad = 0;
const t0 = nowUs();
async function loop() {
  while (next < N) {
    const from = next, to = Math.min(N, from + CHUNK);
    next = to;
    const recipients = [];
    for (let i = from; i < to; i++) recipients.push({ user_id: `u${i}` });
    const body = JSON.stringify({
      message: {
        to: recipients.length === 1 ? recipients[0] : recipients,
        content: { title: 'Announcement', body: `ts:${nowUs()}` },
        routing: { method: 'single', channels: ['webhook'] },
      },
    });
    const r = await fetch(`${url}/send`, {
      method: 'POST', body,
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    });
    await r.arrayBuffer();
    requests++;
    if (r.status === 202) accepted += to - from;
    else {
      bad++;
      if (bad <= 3) console.error(`fanout: /send answered ${r.status}`);
    }
  }
}
await Promise.all(Array.from({ length: CONC }, loop));
console.log(`requests=${requests}\naccepted=${accepted}\nbad=${bad}\naccept_s=${((nowUs() - t0) / 1e6).toFixed(2)}`);
