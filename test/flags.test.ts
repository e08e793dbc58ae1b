import { describe, expect, it } from 'vitest';
import {
  choiceFlag,
  connectionOptions,
  integerFlag,
  listFlag,
  numberFlag,
  optionalString,
} from '../src/cli/flags.js';
import { runBuilder, runOptionsFromArgs, type RunCliOptions } from '../src/cli/run.js';
import { defaultOutputName } from '../src/cli/flags.js';
import { simulateBuilder, simulateOptionsFromArgs, type SimulateCliOptions } from '../src/cli/simulate.js';
import { ConfigError } from '../src/shared/errors.js';
import { DEFAULT_BASE_URL } from '../src/shared/types.js';
import type { Args } from '../src/cli/command.js';
import { parseArgs } from './support/argv.js';

type Env = Record<string, string | undefined>;

function runOptions(argv: string[], env: Env = {}): RunCliOptions {
  return runOptionsFromArgs(parseArgs('run <input>', runBuilder, ['run', ...argv]), { env: { HOME: '/home/u', ...env }, cwd: '/work' });
}

function simulateOptions(argv: string[]): SimulateCliOptions {
  return simulateOptionsFromArgs(parseArgs('simulate', simulateBuilder, ['simulate', ...argv]));
}

function configErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('run: argv → options', () => {
  it('fills every default from `run requests.jsonl`', () => {
    expect(runOptions(['requests.jsonl'], {})).toEqual({
      input: 'requests.jsonl',
      output: 'requests.results.jsonl',
      errors: 'requests.errors.jsonl',
      summary: 'requests.summary.json',
      endpoint: '/v1/chat/completions',
      connection: {
        baseUrl: DEFAULT_BASE_URL,
        simulate: false,
        apiKey: undefined,
        adminKey: undefined,
        organization: undefined,
        project: undefined,
      },
      transportKind: 'undici',
      rpm: undefined,
      tpm: undefined,
      headroom: 0.9,
      concurrency: 512,
      maxAttempts: 6,
      timeoutMs: 120_000,
      maxCostUsd: undefined,
      maxTotalCostUsd: undefined,
      cachePath: undefined,
      cacheTtlMs: undefined,
      dedup: false,
      resume: false,
      overwrite: false,
      force: false,
      limit: undefined,
      maxLineBytes: 8 * 1024 * 1024,
      drainTimeoutMs: 30_000,
      dryRun: false,
      pricesPath: undefined,
      quiet: false,
      logFormat: 'text',
      logBodies: false,
      metricsPort: undefined,
      metricsHost: '127.0.0.1',
      metricsLingerSeconds: 0,
      reportPath: undefined,
      failOnErrorRate: undefined,
      failOnRateLimitRate: undefined,
      redisUrl: undefined,
      budgetScope: undefined,
      redisTimeoutMs: 60_000,
      shard: undefined,
      tracing: { enabled: false },
    });
  });

  it.each<[string, string[], Partial<RunCliOptions>]>([
    ['-o, --errors and --summary', ['in.jsonl', '-o', 'out.jsonl.gz', '--errors', 'e.jsonl', '--summary', 's.json'], { output: 'out.jsonl.gz', errors: 'e.jsonl', summary: 's.json' }],
    ['--output', ['in.jsonl', '--output', 'o.jsonl'], { output: 'o.jsonl', errors: 'in.errors.jsonl' }],
    ['--endpoint', ['in.jsonl', '--endpoint', '/v1/embeddings'], { endpoint: '/v1/embeddings' }],
    ['--rpm and --tpm', ['in.jsonl', '--rpm', '500', '--tpm', '200000'], { rpm: 500, tpm: 200_000 }],
    ['fractional --rpm', ['in.jsonl', '--rpm', '1.5'], { rpm: 1.5 }],
    ['--headroom', ['in.jsonl', '--headroom', '0.5'], { headroom: 0.5 }],
    ['--concurrency', ['in.jsonl', '--concurrency', '64'], { concurrency: 64 }],
    ['--max-attempts', ['in.jsonl', '--max-attempts', '1'], { maxAttempts: 1 }],
    ['--timeout in seconds', ['in.jsonl', '--timeout', '2.5'], { timeoutMs: 2500 }],
    ['--max-cost', ['in.jsonl', '--max-cost', '12.5'], { maxCostUsd: 12.5 }],
    ['--max-cost 0', ['in.jsonl', '--max-cost', '0'], { maxCostUsd: 0 }],
    ['--resume', ['in.jsonl', '--resume'], { resume: true, overwrite: false }],
    ['--overwrite', ['in.jsonl', '--overwrite'], { resume: false, overwrite: true }],
    ['--resume --force', ['in.jsonl', '--resume', '--force'], { resume: true, force: true }],
    ['--limit', ['in.jsonl', '--limit', '10'], { limit: 10 }],
    ['--dry-run', ['in.jsonl', '--dry-run'], { dryRun: true }],
    ['--prices', ['in.jsonl', '--prices', 'p.json'], { pricesPath: 'p.json' }],
    ['--max-line-bytes', ['in.jsonl', '--max-line-bytes', '1024'], { maxLineBytes: 1024 }],
    ['--drain-timeout', ['in.jsonl', '--drain-timeout', '0'], { drainTimeoutMs: 0 }],
    ['--transport sdk', ['in.jsonl', '--transport', 'sdk'], { transportKind: 'sdk' }],
    ['-q', ['in.jsonl', '-q'], { quiet: true }],
    ['--log-format json --log-bodies', ['in.jsonl', '--log-format', 'json', '--log-bodies'], { logFormat: 'json', logBodies: true }],
    ['--metrics-port 0 (any free port)', ['in.jsonl', '--metrics-port', '0'], { metricsPort: 0 }],
    ['--metrics-port and --metrics-linger', ['in.jsonl', '--metrics-port', '9464', '--metrics-linger', '15'], { metricsPort: 9464, metricsLingerSeconds: 15 }],
    ['the alert thresholds', ['in.jsonl', '--fail-on-error-rate', '0.05', '--fail-on-429-rate', '0'], { failOnErrorRate: 0.05, failOnRateLimitRate: 0 }],
    ['--simulate', ['in.jsonl', '--simulate'], { connection: expect.objectContaining({ simulate: true }) as RunCliOptions['connection'] }],
    ['--redis', ['in.jsonl', '--redis', 'redis://127.0.0.1:6379'], { redisUrl: 'redis://127.0.0.1:6379', budgetScope: undefined }],
    ['--redis with TLS and a password', ['in.jsonl', '--redis', 'rediss://user:p%40ss@cache.example:6380/2'], { redisUrl: 'rediss://user:p%40ss@cache.example:6380/2' }],
    ['--budget-scope', ['in.jsonl', '--redis', 'redis://r:6379', '--budget-scope', 'nightly-jobs'], { budgetScope: 'nightly-jobs' }],
    ['--redis-timeout in seconds', ['in.jsonl', '--redis', 'redis://r:6379', '--redis-timeout', '90'], { redisTimeoutMs: 90_000 }],
    ['--shard', ['in.jsonl', '--shard', '2/8'], { shard: { index: 2, count: 8 }, output: 'in.shard-2-of-8.results.jsonl', errors: 'in.shard-2-of-8.errors.jsonl', summary: 'in.shard-2-of-8.summary.json' }],
    ['--shard with -o', ['in.jsonl', '--shard', '0/1', '-o', 'mine.jsonl'], { shard: { index: 0, count: 1 }, output: 'mine.jsonl', errors: 'in.shard-0-of-1.errors.jsonl' }],
    ['--max-total-cost', ['in.jsonl', '--max-total-cost', '5'], { maxTotalCostUsd: 5 }],
    ['--cache without a path: the default, and --dedup', ['in.jsonl', '--cache'], { cachePath: '/home/u/.cache/oai-batch/responses.lmdb', dedup: true }],
    ['--cache=PATH and --cache-ttl', ['in.jsonl', '--cache=c.lmdb', '--cache-ttl', '30d'], { cachePath: 'c.lmdb', cacheTtlMs: 30 * 86_400_000, dedup: true }],
    ['--cache PATH after the input', ['in.jsonl', '--cache', 'c.lmdb'], { input: 'in.jsonl', cachePath: 'c.lmdb' }],
    ['--dedup alone', ['in.jsonl', '--dedup'], { cachePath: undefined, dedup: true }],
  ])('reads %s', (_name, argv, expected) => {
    expect(runOptions(argv)).toMatchObject(expected);
  });

  it.each<[string, string, string, string]>([
    ['requests.jsonl', 'requests.results.jsonl', 'requests.errors.jsonl', 'requests.summary.json'],
    ['x.jsonl.gz', 'x.results.jsonl', 'x.errors.jsonl', 'x.summary.json'],
    ['data.json', 'data.results.jsonl', 'data.errors.jsonl', 'data.summary.json'],
    ['dump.gz', 'dump.results.jsonl', 'dump.errors.jsonl', 'dump.summary.json'],
    ['DATA.JSONL', 'DATA.results.jsonl', 'DATA.errors.jsonl', 'DATA.summary.json'],
    ['dir/v1.2/in.jsonl', 'dir/v1.2/in.results.jsonl', 'dir/v1.2/in.errors.jsonl', 'dir/v1.2/in.summary.json'],
    ['requests.txt', 'requests.txt.results.jsonl', 'requests.txt.errors.jsonl', 'requests.txt.summary.json'],
    ['noext', 'noext.results.jsonl', 'noext.errors.jsonl', 'noext.summary.json'],
  ])('names the outputs of %s after it', (input, results, errors, summary) => {
    expect(defaultOutputName(input, 'results')).toBe(results);
    expect(defaultOutputName(input, 'errors')).toBe(errors);
    expect(defaultOutputName(input, 'summary')).toBe(summary);
    expect(runOptions([input])).toMatchObject({ output: results, errors, summary });
  });

  it('reads stdin with -o, --errors and --summary', () => {
    expect(runOptions(['-', '-o', 'r.jsonl', '--errors', 'e.jsonl', '--summary', 's.json'])).toMatchObject({
      input: '-',
      output: 'r.jsonl',
      errors: 'e.jsonl',
      summary: 's.json',
    });
  });

  it.each<[string, string[]]>([
    ['no output names', ['-']],
    ['no --errors', ['-', '-o', 'r.jsonl', '--summary', 's.json']],
    ['no --summary', ['-', '-o', 'r.jsonl', '--errors', 'e.jsonl']],
    ['no -o', ['-', '--errors', 'e.jsonl', '--summary', 's.json']],
  ])('refuses stdin with %s', (_name, argv) => {
    expect(configErrorOf(() => runOptions(argv))).toBe(
      'reading stdin (-) needs -o, --errors and --summary: there is no input name to derive them from',
    );
  });

  it('refuses --resume with --overwrite', () => {
    expect(configErrorOf(() => runOptions(['in.jsonl', '--resume', '--overwrite']))).toBe('--resume and --overwrite cannot be used together');
  });

  it.each<[string, string[], string]>([
    ['--concurrency 0', ['--concurrency', '0'], 'Expected `concurrency` to be an integer ≥ 1, got `0`'],
    ['--concurrency 1.5', ['--concurrency', '1.5'], 'Expected `concurrency` to be an integer ≥ 1, got `1.5`'],
    ['--concurrency abc', ['--concurrency', 'abc'], 'Expected `concurrency` to be an integer ≥ 1, got `NaN`'],
    ['--max-attempts 0', ['--max-attempts', '0'], 'Expected `max-attempts` to be an integer ≥ 1, got `0`'],
    ['--rpm 0', ['--rpm', '0'], 'Expected `rpm` to be a number ≥ 1, got `0`'],
    ['--rpm abc', ['--rpm', 'abc'], 'Expected `rpm` to be a number ≥ 1, got `NaN`'],
    ['--tpm -5', ['--tpm', '-5'], 'Expected `tpm` to be a number ≥ 1, got `-5`'],
    ['--headroom 0', ['--headroom', '0'], 'Expected `headroom` to be a number between 0.01 and 1, got `0`'],
    ['--headroom 1.5', ['--headroom', '1.5'], 'Expected `headroom` to be a number between 0.01 and 1, got `1.5`'],
    ['--timeout 0', ['--timeout', '0'], 'Expected `timeout` to be a number ≥ 0.001, got `0`'],
    ['--max-cost -1', ['--max-cost', '-1'], 'Expected `max-cost` to be a number ≥ 0, got `-1`'],
    ['--limit 0', ['--limit', '0'], 'Expected `limit` to be an integer ≥ 1, got `0`'],
    ['--max-line-bytes 0', ['--max-line-bytes', '0'], 'Expected `max-line-bytes` to be an integer ≥ 1, got `0`'],
    ['--drain-timeout -1', ['--drain-timeout', '-1'], 'Expected `drain-timeout` to be a number ≥ 0, got `-1`'],
    ['--metrics-port -1', ['--metrics-port', '-1'], 'Expected `metrics-port` to be an integer ≥ 0, got `-1`'],
    ['--fail-on-error-rate 2', ['--fail-on-error-rate', '2'], 'Expected `fail-on-error-rate` to be a number between 0 and 1, got `2`'],
    ['--fail-on-429-rate -0.1', ['--fail-on-429-rate', '-0.1'], 'Expected `fail-on-429-rate` to be a number between 0 and 1, got `-0.1`'],
    ['--endpoint /v1/images/generations', ['--endpoint', '/v1/images/generations'], 'Expected `endpoint` to be one of /v1/chat/completions, /v1/responses, /v1/embeddings, /v1/completions, /v1/moderations, got `/v1/images/generations`'],
    ['--base-url not-a-url', ['--base-url', 'not-a-url'], 'Expected `base-url` to be an http(s) URL, got `not-a-url`'],
    ['--base-url ftp://…', ['--base-url', 'ftp://example.com/v1'], 'Expected `base-url` to be an http(s) URL, got `ftp://example.com/v1`'],
    ['an empty -o', ['-o', ''], 'Expected `output` to be a non-empty string, got ``'],
    ['--shard 4/4', ['--shard', '4/4'], 'Expected `shard` to be I/N with 0 ≤ I < N ≤ 1,000,000, e.g. 0/4, got `4/4`'],
    ['--shard 1', ['--shard', '1'], 'Expected `shard` to be I/N with 0 ≤ I < N ≤ 1,000,000, e.g. 0/4, got `1`'],
    ['--shard 0/0', ['--shard', '0/0'], 'Expected `shard` to be I/N with 0 ≤ I < N ≤ 1,000,000, e.g. 0/4, got `0/0`'],
    ['--shard -1/4', ['--shard=-1/4'], 'Expected `shard` to be I/N with 0 ≤ I < N ≤ 1,000,000, e.g. 0/4, got `-1/4`'],
    ['--redis http://…', ['--redis', 'http://127.0.0.1:6379'], 'Expected `redis` to start with redis:// or rediss://, got `http://…`'],
    ['--redis that is not a URL', ['--redis', 'secret-password-not-a-url'], 'Expected `redis` to be a URL like redis://host:6379 or rediss://user:password@host:6380/0, got something else (not shown: it may hold a password)'],
    ['--budget-scope without --redis', ['--budget-scope', 'x'], '--budget-scope names a budget shared through Redis: give --redis URL (or OAI_BATCH_REDIS_URL) too'],
    ['--budget-scope with a space', ['--redis', 'redis://r', '--budget-scope', 'a b'], 'Expected `budget-scope` to be 1–100 letters, digits or . _ - : @, got `a b`'],
    ['--redis-timeout 0', ['--redis-timeout', '0'], 'Expected `redis-timeout` to be a number ≥ 0.1, got `0`'],
    ['--max-total-cost -1', ['--max-total-cost', '-1'], 'Expected `max-total-cost` to be a number ≥ 0, got `-1`'],
    ['--cache-ttl without --cache', ['--cache-ttl', '30d'], '--cache-ttl needs --cache'],
    ['--cache-ttl soon', ['--cache', '--cache-ttl', 'soon'], 'Expected `cache-ttl` to be a duration such as 30d, 12h or 45m, got `soon`'],
  ])('refuses %s with a message naming the flag', (_name, argv, message) => {
    expect(configErrorOf(() => runOptions(['in.jsonl', ...argv]))).toBe(message);
  });

  it('lets yargs refuse an unknown flag and a bad choice', () => {
    expect(() => runOptions(['in.jsonl', '--no-such-flag'])).toThrow(/Unknown argument/);
    expect(() => runOptions(['in.jsonl', '--transport', 'fetch'])).toThrow(/Invalid values/);
  });

  describe('shared budget', () => {
    it.each<[string, string[], Env, string | undefined]>([
      ['no Redis by default', [], {}, undefined],
      ['OAI_BATCH_REDIS_URL from the environment', [], { OAI_BATCH_REDIS_URL: 'redis://env:6379' }, 'redis://env:6379'],
      ['--redis over OAI_BATCH_REDIS_URL', ['--redis', 'redis://flag:6379'], { OAI_BATCH_REDIS_URL: 'redis://env:6379' }, 'redis://flag:6379'],
      ['no Redis when OAI_BATCH_REDIS_URL is empty', [], { OAI_BATCH_REDIS_URL: '' }, undefined],
    ])('uses %s', (_name, argv, env, redisUrl) => {
      expect(runOptions(['in.jsonl', ...argv], env).redisUrl).toBe(redisUrl);
    });

    it('never puts a bad Redis URL in its message', () => {
      const message = configErrorOf(() => runOptions(['in.jsonl'], { OAI_BATCH_REDIS_URL: 'http://user:hunter2-secret@host' }));
      expect(message).not.toContain('hunter2-secret');
    });
  });

  describe('connection', () => {
    it.each<[string, string[], Env, string]>([
      ['the default API without flag or env', [], {}, DEFAULT_BASE_URL],
      ['OPENAI_BASE_URL from the environment', [], { OPENAI_BASE_URL: 'http://127.0.0.1:8787/v1' }, 'http://127.0.0.1:8787/v1'],
      ['--base-url over OPENAI_BASE_URL', ['--base-url', 'https://proxy.example/v1'], { OPENAI_BASE_URL: 'http://127.0.0.1:8787/v1' }, 'https://proxy.example/v1'],
      ['the default API when OPENAI_BASE_URL is empty', [], { OPENAI_BASE_URL: '' }, DEFAULT_BASE_URL],
    ])('uses %s', (_name, argv, env, baseUrl) => {
      expect(runOptions(['in.jsonl', ...argv], env).connection.baseUrl).toBe(baseUrl);
    });

    it('takes keys, organisation and project from the environment, never from flags', () => {
      const env = { OPENAI_API_KEY: 'sk-test', OPENAI_ADMIN_KEY: 'sk-admin-test', OPENAI_ORG_ID: 'org-1', OPENAI_PROJECT_ID: 'proj_1' };
      expect(runOptions(['in.jsonl'], env).connection).toMatchObject({
        apiKey: 'sk-test',
        adminKey: 'sk-admin-test',
        organization: 'org-1',
        project: 'proj_1',
      });
    });

    it('treats empty key variables as unset', () => {
      const env = { OPENAI_API_KEY: '', OPENAI_ADMIN_KEY: '', OPENAI_ORG_ID: '', OPENAI_PROJECT_ID: '' };
      expect(runOptions(['in.jsonl'], env).connection).toMatchObject({ apiKey: undefined, adminKey: undefined, organization: undefined, project: undefined });
    });

    it('does not check the base URL with --simulate', () => {
      expect(connectionOptions({ simulate: true }, { OPENAI_BASE_URL: 'garbage' })).toMatchObject({ simulate: true });
    });
  });
});

describe('simulate: argv → options', () => {
  it('fills every default from `simulate`', () => {
    expect(simulateOptions([])).toEqual({
      simulator: {
        port: 8787,
        host: '127.0.0.1',
        rpm: 10_000,
        tpm: 10_000_000,
        quantize: true,
        latencyMs: 0,
        faultsEveryAttempt: false,
        seed: 1,
        rateLimit429Headers: 'reset',
        batch: { stepMs: 1000 },
      },
    });
  });

  it.each<[string, string[], Partial<SimulateCliOptions['simulator']>]>([
    ['--port 0', ['--port', '0'], { port: 0 }],
    ['--rpm and --tpm', ['--rpm', '60', '--tpm', '30000'], { rpm: 60, tpm: 30_000 }],
    ['--no-quantize', ['--no-quantize'], { quantize: false }],
    ['--latency-ms', ['--latency-ms', '250'], { latencyMs: 250 }],
    ['--faults', ['--faults', '500=0.1, 503=0.02,reset=0.02,hang=0.01,malformed=0.02'], { faults: { 500: 0.1, 503: 0.02, reset: 0.02, hang: 0.01, malformed: 0.02 } as never }],
    ['--faults-every-attempt', ['--faults-every-attempt'], { faultsEveryAttempt: true }],
    ['--seed', ['--seed', '7'], { seed: 7 }],
    ['--hang-ms', ['--hang-ms', '1500'], { hangMs: 1500 }],
    ['--rate-limit-headers none', ['--rate-limit-headers', 'none'], { rateLimit429Headers: 'none' }],
    ['--api-key', ['--api-key', 'sk-only-this'], { apiKey: 'sk-only-this' }],
    ['--quota-after', ['--quota-after', '100'], { quotaAfterRequests: 100 }],
    ['--batch-seconds', ['--batch-seconds', '2.5'], { batch: { stepMs: 2500 } }],
  ])('reads %s', (_name, argv, expected) => {
    expect(simulateOptions(argv).simulator).toMatchObject(expected);
  });

  it.each<[string, string[], string]>([
    ['--port -1', ['--port', '-1'], 'Expected `port` to be an integer ≥ 0, got `-1`'],
    ['--port 80.5', ['--port', '80.5'], 'Expected `port` to be an integer ≥ 0, got `80.5`'],
    ['--rpm 0', ['--rpm', '0'], 'Expected `rpm` to be a number ≥ 1, got `0`'],
    ['--latency-ms -1', ['--latency-ms', '-1'], 'Expected `latency-ms` to be a number ≥ 0, got `-1`'],
    ['--seed 1.5', ['--seed', '1.5'], 'Expected `seed` to be an integer ≥ 0, got `1.5`'],
    ['a fault rate above 1', ['--faults', '500=2'], 'Expected `faults` like 500=0.1,reset=0.02 (rates 0..1), got `500=2`'],
    ['a fault without a rate', ['--faults', 'reset'], 'Expected `faults` like 500=0.1,reset=0.02 (rates 0..1), got `reset`'],
    ['a rate without a fault', ['--faults', '=0.1'], 'Expected `faults` like 500=0.1,reset=0.02 (rates 0..1), got `=0.1`'],
    ['a rate that is not a number', ['--faults', '500=often'], 'Expected `faults` like 500=0.1,reset=0.02 (rates 0..1), got `500=often`'],
    ['--quota-after -1', ['--quota-after', '-1'], 'Expected `quota-after` to be an integer ≥ 0, got `-1`'],
    ['--batch-seconds 0', ['--batch-seconds', '0'], 'Expected `batch-seconds` to be a number between 0.001 and 86400, got `0`'],
  ])('refuses %s', (_name, argv, message) => {
    expect(configErrorOf(() => simulateOptions(argv))).toBe(message);
  });
});

describe('flag helpers', () => {
  it.each<[string, Args, number]>([
    ['the value', { n: 5 }, 5],
    ['the fallback when unset', {}, 3],
    ['the minimum itself', { n: 1 }, 1],
  ])('integerFlag gives %s', (_name, args, expected) => {
    expect(integerFlag(args, 'n', 1, 3)).toBe(expected);
  });

  it.each<[string, () => unknown, string]>([
    ['a required integer that is missing', () => integerFlag({}, 'n', 1), 'Expected `n` to be set'],
    ['a string where an integer is due', () => integerFlag({ n: '5' }, 'n', 1), 'Expected `n` to be an integer ≥ 1, got `5`'],
    ['Infinity as a number with a range', () => numberFlag({ f: Infinity }, 'f', 0, 1), 'Expected `f` to be a number between 0 and 1, got `Infinity`'],
    ['an empty string', () => optionalString({ s: '' }, 's'), 'Expected `s` to be a non-empty string, got ``'],
    ['a choice not on the list', () => choiceFlag({ c: 'x' }, 'c', ['a', 'b'] as const, 'a'), 'Expected `c` to be one of a, b, got `x`'],
  ])('refuses %s', (_name, fn, message) => {
    expect(configErrorOf(fn)).toBe(message);
  });

  it.each<[string, Args, string[] | undefined]>([
    ['a comma-separated list', { m: 'a,b, c' }, ['a', 'b', 'c']],
    ['repeated flags', { m: ['a', 'b,c'] }, ['a', 'b', 'c']],
    ['empty items dropped', { m: 'a,,b,' }, ['a', 'b']],
    ['nothing when unset', {}, undefined],
    ['nothing for an empty list', { m: ',' }, undefined],
  ])('listFlag reads %s', (_name, args, expected) => {
    expect(listFlag(args, 'm')).toEqual(expected);
  });
});
