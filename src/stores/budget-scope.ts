// Budget scopes (DESIGN.md §6): workers share a budget when they share a
// scope. By default the scope is a short hash of (base URL, sha256 of the API
// key, project id): same key, same budget, with no setting, and no key
// material in Redis (a hash of a hash, cut to 16 hex digits).

import { createHash } from 'node:crypto';
import { ConfigError } from '../shared/errors.js';

export interface ScopeSource {
  baseUrl: string;
  apiKey?: string | undefined;
  project?: string | undefined;
}

export function defaultBudgetScope(source: ScopeSource): string {
  const keyHash = createHash('sha256')
    .update(source.apiKey ?? '')
    .digest('hex');
  return createHash('sha256')
    .update(['oai-batch budget scope v1', source.baseUrl.replace(/\/+$/, ''), keyHash, source.project ?? ''].join('\n'))
    .digest('hex')
    .slice(0, 16);
}

/** A --budget-scope: 1–100 of letters, digits and . _ - : @ (it becomes part of Redis key names). */
export function checkBudgetScope(scope: string): void {
  if (!/^[A-Za-z0-9._:@-]{1,100}$/.test(scope)) {
    throw new ConfigError(`Expected \`budget-scope\` to be 1–100 letters, digits or . _ - : @, got \`${scope}\``);
  }
}
