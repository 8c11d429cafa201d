// flowevent.mjs: the flow bench's Segment track event (wrk.lua's flow shape, ~700 B),
// shared by bench/bullmq.mjs (the peer's job payload) and bench/flowload.mjs.
// FLOW_EVENT has no userId, messageId or properties.ts/order_id: callers add their own.
export const FLOW_EVENT = Object.freeze({
  type: 'track', event: 'Flow Event', anonymousId: '507f191e810c19729de860ea',
  timestamp: '2026-01-15T10:20:30.123Z',
  context: {
    ip: '203.0.113.42', locale: 'en-US', library: { name: 'analytics-node', version: '6.2.0' },
    userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
    page: { path: '/checkout', referrer: 'https://example.com/cart', title: 'Checkout', url: 'https://example.com/checkout' },
  },
  properties: {
    revenue: 49.99, currency: 'USD', plan: 'pro',
    items: [{ sku: 'sku-1001', name: 'Widget', price: 19.99, quantity: 1 },
      { sku: 'sku-1002', name: 'Gadget', price: 29.99, quantity: 1 }],
  },
});
