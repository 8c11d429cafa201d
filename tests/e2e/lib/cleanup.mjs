// cleanup.mjs: one after() hook per test file that stops every herald server the file
// started (stopAll) and then closes the file's own helpers (sinks, SMTP servers) in
// reverse order of registration, also when a test failed.
//
//   const closers = closeAfterAll();
//   const sink = await startHttpSink(); closers.push(() => sink.close());

import { after } from 'node:test';

import { stopAll } from './server.mjs';

/** Registers the after() hook; returns the array to push async close functions onto. */
export function closeAfterAll() {
  const closers = [];
  after(async () => {
    try {
      await stopAll();
    } finally {
      for (const c of closers.reverse()) await c();
    }
  });
  return closers;
}
