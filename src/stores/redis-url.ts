// A --redis URL (redis:// or rediss://, maybe with user and password): its
// check, the form fit to print, and what must be scrubbed from any message.
// Light on purpose (no Redis client): the CLI checks flags with it at start-up.

import { ConfigError } from '../shared/errors.js';

/** Checks a --redis URL's form (redis:// or rediss:// with a host). The message never contains the URL. */
export function checkRedisUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError('Expected `redis` to be a URL like redis://host:6379 or rediss://user:password@host:6380/0, got something else (not shown: it may hold a password)');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new ConfigError(`Expected \`redis\` to start with redis:// or rediss://, got \`${parsed.protocol}//…\``);
  }
  if (parsed.hostname === '') throw new ConfigError('Expected `redis` to name a host, e.g. redis://127.0.0.1:6379');
}

/** A Redis URL fit to print: scheme, host, port and database, never the user or password. */
export function redisUrlForDisplay(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' || parsed.pathname === '' ? '' : parsed.pathname}`;
  } catch {
    return 'the --redis URL';
  }
}

/** What must never be printed of a Redis URL: the URL itself, user:password, and the password (raw and decoded), longest first. */
export function redisSecretsOf(url: string): string[] {
  const secrets = new Set<string>([url]);
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') secrets.add(`${parsed.username}:${parsed.password}`);
    for (const part of [parsed.password, safeDecode(parsed.password)]) {
      // A password of 1–3 characters would scrub ordinary words; we never print it ourselves anyway.
      if (part.length >= 4) secrets.add(part);
    }
  } catch {
    // not a URL: only the whole text is secret
  }
  return [...secrets].filter((s) => s !== '').sort((a, b) => b.length - a.length);
}

/** `text` with every secret replaced by [redacted]. */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret !== '') out = out.split(secret).join('[redacted]');
  return out;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Every secret of the Redis URLs a command line and environment hold (--redis URL, --redis=URL, OAI_BATCH_REDIS_URL). */
export function redisSecretsIn(argv: readonly string[], env: Record<string, string | undefined>): string[] {
  const urls: string[] = [];
  if (env.OAI_BATCH_REDIS_URL) urls.push(env.OAI_BATCH_REDIS_URL);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--redis' && argv[i + 1] !== undefined) urls.push(argv[i + 1] as string);
    else if (arg.startsWith('--redis=')) urls.push(arg.slice('--redis='.length));
  }
  return urls.flatMap(redisSecretsOf);
}
