// Where the rate budgets of `run` and `compare` live: with --redis, a Redis
// budget store (opened before anything is sent, so a Redis that is down fails
// the start with one line, exit 1); without, none (the run's own memory).
// Notices about a lost and restored Redis go to stderr; the URL's password never does.

import type { TransportOptions } from '../pipeline/send/transport.js';
import type { BudgetStore } from '../stores/budget-store.js';
import { defaultBudgetScope } from '../stores/budget-scope.js';
import type { RedisStatus } from '../stores/redis-budget.js';
import { redisUrlForDisplay } from '../stores/redis-url.js';
import type { CliIO } from './command.js';
import type { SendingOptions } from './flags.js';

export interface OpenBudget {
  /** The shared store, or undefined for this process's memory. */
  store: BudgetStore | undefined;
  close(): Promise<void>;
}

export interface BudgetNotices {
  /** No notice at all (--quiet). */
  quiet: boolean;
  /** Notices as JSON lines (--log-format json): nothing but JSON may reach stderr. */
  json: boolean;
}

export async function openBudgetStore(options: SendingOptions, transport: TransportOptions, io: Pick<CliIO, 'stderr'>, notices: BudgetNotices): Promise<OpenBudget> {
  if (options.redisUrl === undefined) return { store: undefined, close: async () => {} };
  const { connectRedisBudgetStore } = await import('../stores/redis-budget.js');
  const scope = options.budgetScope ?? defaultBudgetScope({ baseUrl: transport.baseUrl, apiKey: transport.apiKey, project: transport.project });
  const say = (event: string, message: string, fields: Record<string, unknown> = {}): void => {
    if (notices.quiet) return;
    if (notices.json) io.stderr.write(JSON.stringify({ level: event === 'redis_lost' ? 'warn' : 'info', time: new Date().toISOString(), event, ...fields, msg: message }) + '\n');
    else io.stderr.write(`oai-batch: ${message}\n`);
  };
  const store = await connectRedisBudgetStore({
    url: options.redisUrl,
    scope,
    timeoutMs: options.redisTimeoutMs,
    onStatus: (status: RedisStatus) => {
      if (status.kind === 'lost') {
        say('redis_lost', `lost Redis at ${status.display} (${status.reason}); requests wait up to ${status.timeoutMs / 1000} s for it to come back`, { redis: status.display });
      } else {
        say('redis_restored', `Redis at ${status.display} is back after ${(status.afterMs / 1000).toFixed(1)} s`, { redis: status.display });
      }
    },
  });
  say('redis_connected', `sharing rate budgets through ${redisUrlForDisplay(options.redisUrl)} (scope ${scope})`, { redis: redisUrlForDisplay(options.redisUrl), scope });
  return { store, close: () => store.close() };
}
