// A summary's counts in words, written once for the two places that show
// them: the end table (src/cli/progress.ts) and the run report
// (src/observe/report.ts).
//
// In:  a Summary.  Out: plain text. Pure.

import type { Summary } from './types.js';

/** An integer with thousands separators: `1,234,567`. */
export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** The requests, attempts and tokens rows, as both views word them. */
export function countRows(s: Summary): { requests: string; attempts: string; tokens: string } {
  const r = s.requests;
  const a = s.attempts;
  const u = s.usage;
  const written = u.cache_write_input_tokens ?? 0;
  // Prompt-cache writes (billed at their own rate) only when the answers reported some.
  const cached = `${fmtInt(u.cached_input_tokens)} cached${written > 0 ? `, ${fmtInt(written)} written to the cache` : ''}`;
  return {
    requests: `${fmtInt(r.total)} total · ${fmtInt(r.succeeded)} succeeded · ${fmtInt(r.failed)} failed · ${fmtInt(r.skipped)} skipped · ${fmtInt(r.pending)} pending`,
    attempts: `${fmtInt(a.total)} · ${fmtInt(a.retries)} retries · ${fmtInt(a.rate_limited)} rate-limited · ${fmtInt(a.server_errors)} server errors · ${fmtInt(a.timeouts)} timeouts`,
    tokens: `${fmtInt(u.input_tokens)} in (${cached}) · ${fmtInt(u.output_tokens)} out (${fmtInt(u.reasoning_tokens)} reasoning)`,
  };
}
