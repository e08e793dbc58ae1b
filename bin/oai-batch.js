#!/usr/bin/env -S node --max-semi-space-size=4
// Memory: a run keeps about 20 MB live while it streams millions of requests
// through, and makes garbage at thousands of requests a second. With V8's
// defaults most of a fast run's memory is that garbage: 16 MB semi-spaces, and
// an old generation allowed to grow to four times the live size between full
// collections. Smaller semi-spaces (set above, so only when the tool is run as
// `oai-batch` or `npx oai-batch`: a flag V8 reads at start-up) and growth by a
// fifth at a time (set here, before anything is allocated) keep a 100,000-line
// run near 120 MB instead of 200 MB at the same speed (bench/run.js, cases d, e).
import v8 from 'node:v8';

v8.setFlagsFromString('--heap-growing-percent=20');
const { main } = await import('../dist/cli/main.js');

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
