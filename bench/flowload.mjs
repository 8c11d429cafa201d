// flowload.mjs URL AUTH N CONC [USERS]: POST N flow track events (wrk.lua's flow shape:
// ~700 B, event "Flow Event", properties.ts first, unique messageIds, user ids u0 ..
// u<USERS-1>, 10,000 by default), CONC requests at once, and print ok=<200 answers>.
// For bench/allocs.sh, which needs an exact event count (wrk runs for a time, not a
// count).
import { FLOW_EVENT } from "./flowevent.mjs";

const [url, auth, n, conc] = [process.argv[2], process.argv[3], +process.argv[4], +process.argv[5]];
const users = process.argv[6] ? +process.argv[6] : 10000;
if (!url || !auth || !(n > 0) || !(conc > 0) || !(users > 0)) {
    console.error("usage: node flowload.mjs URL AUTH N CONC [USERS]");
    process.exit(2);
}
const body = (i) => JSON.stringify({
    ...FLOW_EVENT, userId: "u" + (i % users), messageId: `fl-${process.pid}-${i}`,
    properties: { ts: String(Date.now() * 1000), order_id: "ord_" + i, ...FLOW_EVENT.properties },
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
