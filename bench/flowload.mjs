// flowload.mjs URL AUTH N CONC [USERS]: POST N flow track events (wrk.lua's flow shape:
// ~700 B, event "Flow Event", properties.ts first, unique messageIds, user ids u0 ..
// u<USERS-1>, 10,000 by default), CONC requests at once, and print ok=<200 answers>.
// For bench/allocs.sh, which needs an exact event count (wrk runs for a time, not a
// count).
const [url, auth, n, conc] = [process.argv[2], process.argv[3], +process.argv[4], +process.argv[5]];
const users = process.argv[6] ? +process.argv[6] : 10000;
if (!url || !auth || !(n > 0) || !(conc > 0) || !(users > 0)) {
    console.error("usage: node flowload.mjs URL AUTH N CONC [USERS]");
    process.exit(2);
}
const body = (i) => JSON.stringify({
    type: "track", event: "Flow Event", userId: "u" + (i % users),
    anonymousId: "507f191e810c19729de860ea", messageId: `fl-${process.pid}-${i}`,
    timestamp: "2026-01-15T10:20:30.123Z",
    context: {
        ip: "203.0.113.42", locale: "en-US", library: { name: "analytics-node", version: "6.2.0" },
        userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        page: { path: "/checkout", referrer: "https://example.com/cart", title: "Checkout", url: "https://example.com/checkout" },
    },
    properties: {
        ts: String(Date.now() * 1000), order_id: "ord_" + i, revenue: 49.99, currency: "USD", plan: "pro",
        items: [{ sku: "sku-1001", name: "Widget", price: 19.99, quantity: 1 },
                { sku: "sku-1002", name: "Gadget", price: 29.99, quantity: 1 }],
    },
});
let next = 0, ok = 0;
async function worker() {
    while (next < n) {
        const i = next++;
        const r = await fetch(url, { method: "POST", body: body(i),
            headers: { authorization: auth, "content-type": "application/json" } });
        await r.text();
        if (r.status === 200) ok++;
    }
}
await Promise.all(Array.from({ length: conc }, worker));
console.log("ok=" + ok);
