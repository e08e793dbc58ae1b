// `oai-batch cache stats|prune --older-than D|clear [PATH]`: the response
// cache file (default under $XDG_CACHE_HOME/oai-batch/). Exit 0; 1 when the
// file does not exist or cannot be read.

import type { Argv } from 'yargs';
import { ConfigError } from '../shared/errors.js';
import { formatDuration, parseDurationMs } from '../shared/duration.js';
import { defaultCachePath } from '../stores/response-cache.js';
import { defineCommand, type Args, type CliIO } from './command.js';
import { choiceFlag, optionalString } from './flags.js';
import { fmtInt } from '../shared/figures.js';
import { writeText } from './render.js';

export interface CacheCliOptions {
  action: 'stats' | 'prune' | 'clear';
  path: string;
  olderThanMs: number | undefined;
  format: 'table' | 'json';
}

export function cacheBuilder(yargs: Argv): Argv {
  return yargs
    .positional('action', { type: 'string', choices: ['stats', 'prune', 'clear'], describe: 'stats: what the file holds; prune: remove old entries; clear: remove every entry' })
    .positional('path', { type: 'string', describe: 'the cache file (default: $XDG_CACHE_HOME/oai-batch/responses.lmdb)' })
    .option('older-than', { type: 'string', describe: 'prune: remove entries stored longer ago than this (30d, 12h)' })
    .option('format', { type: 'string', default: 'table', choices: ['table', 'json'], describe: 'stats: table for people, json for scripts' })
    .example('$0 cache stats', 'entries, size and age of the default cache')
    .example('$0 cache prune --older-than 30d', 'drop answers older than 30 days');
}

export function cacheOptionsFromArgs(args: Args, io: Pick<CliIO, 'env'>): CacheCliOptions {
  const action = choiceFlag(args, 'action', ['stats', 'prune', 'clear'] as const, 'stats');
  const older = optionalString(args, 'older-than');
  let olderThanMs: number | undefined;
  if (action === 'prune') {
    if (older === undefined) throw new ConfigError('cache prune needs --older-than, e.g. --older-than 30d');
    const ms = parseDurationMs(older);
    if (ms === null) throw new ConfigError(`Expected \`older-than\` to be a duration such as 30d or 12h, got \`${older}\``);
    olderThanMs = ms;
  } else if (older !== undefined) {
    throw new ConfigError('--older-than belongs to cache prune');
  }
  return {
    action,
    path: optionalString(args, 'path') ?? defaultCachePath(io.env),
    olderThanMs,
    format: choiceFlag(args, 'format', ['table', 'json'] as const, 'table'),
  };
}

export async function executeCache(options: CacheCliOptions, io: CliIO): Promise<number> {
  const { cacheStats, clearCache, pruneCache } = await import('../commands/cache.js');
  if (options.action === 'stats') {
    const stats = await cacheStats(options.path);
    if (options.format === 'json') {
      await writeText(io.stdout, JSON.stringify({ ...stats, oldest: iso(stats.oldest), newest: iso(stats.newest) }, null, 2) + '\n');
    } else {
      const lines = [
        `cache    ${stats.path}`,
        `entries  ${fmtInt(stats.entries)}`,
        `size     ${(stats.bytes / 1024 / 1024).toFixed(1)} MB on disk`,
        `oldest   ${iso(stats.oldest) ?? '–'}`,
        `newest   ${iso(stats.newest) ?? '–'}`,
      ];
      await writeText(io.stdout, lines.join('\n') + '\n');
    }
    return 0;
  }
  if (options.action === 'prune') {
    const removed = await pruneCache(options.path, options.olderThanMs as number);
    await writeText(io.stdout, `removed ${fmtInt(removed)} entries older than ${formatDuration(options.olderThanMs as number)} from ${options.path}\n`);
    return 0;
  }
  const removed = await clearCache(options.path);
  await writeText(io.stdout, `removed all ${fmtInt(removed)} entries from ${options.path}\n`);
  return 0;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export const cacheCommand = defineCommand<CacheCliOptions>({
  command: 'cache <action> [path]',
  describe: 'the response cache file: stats, prune --older-than D, clear',
  builder: cacheBuilder,
  toOptions: cacheOptionsFromArgs,
  execute: executeCache,
});
