#!/usr/bin/env node
// Memory: a run keeps 15–30 MB live while it streams millions of requests
// through, and makes garbage at thousands of requests a second. By default V8
// lets the old generation grow to about four times the live size between full
// collections, and that garbage was most of a fast run's memory (100,000
// lines: 200 MB); growing it by a fifth at a time keeps the same run near
// 130 MB at the same speed (bench/run.js, cases d and e). V8 reads the flag
// at every collection, so setting it here, before the CLI loads, is enough.
import v8 from 'node:v8';

v8.setFlagsFromString('--heap-growing-percent=20');
const { main } = await import('../dist/cli/main.js');

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
