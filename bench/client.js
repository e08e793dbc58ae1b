// One benchmark client: runBatch in its own process, so that its peak RSS is
// its own. Reads a JSON config from argv[2]; prints one JSON line of results.

import { runBatch } from '../dist/core/run.js';
import { loadPriceTable } from '../dist/pricing/prices.js';

const config = JSON.parse(process.argv[2]);
const startedAt = Date.now();
const { summary, exitCode } = await runBatch({
  input: config.input,
  output: config.output,
  errors: config.errors,
  summary: config.summary,
  transport: { baseUrl: config.baseUrl, apiKey: config.apiKey ?? 'sk-bench-key' },
  transportKind: config.transport ?? 'undici',
  rpm: config.rpm,
  tpm: config.tpm,
  concurrency: config.concurrency,
  timeoutMs: 60_000,
  overwrite: true,
  prices: loadPriceTable(),
  summaryIntervalMs: 5000,
});
const wallSeconds = (Date.now() - startedAt) / 1000;
process.stdout.write(
  JSON.stringify({
    exitCode,
    wallSeconds,
    maxRssMB: process.resourceUsage().maxRSS / 1024,
    requests: summary.requests,
    attempts: summary.attempts,
    limits: summary.limits,
    latency: summary.timing.latency_ms,
  }) + '\n',
);
