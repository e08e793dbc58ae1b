// The progress display of `run` on stderr, and the end-of-run table.
//
// On a terminal (stderr is a TTY reporting columns > 0): an ora spinner whose
// text is refreshed from progress events. Otherwise one plain line every
// 10 s. ora is enabled only on a real terminal with columns: a terminal
// reporting 0 columns made it loop forever (STACK.md).

import type { Writable } from 'node:stream';
import type { Ora } from 'ora';
import type { ProgressSnapshot, RunEvent } from '../shared/events.js';
import type { Summary } from '../shared/types.js';
import { fmtCompact, fmtDuration, fmtInt } from './render.js';

export interface ProgressView {
  onEvent(event: RunEvent): void;
  /** Prints the end table (unless quiet). */
  finish(summary: Summary, files: { results: string; errors: string; summary: string }): void;
  stop(): void;
}

type ErrStream = Writable & { isTTY?: boolean; columns?: number };

export const PLAIN_INTERVAL_MS = 10_000;

export function createProgressView(stderr: ErrStream, options: { quiet: boolean; input: string }): ProgressView {
  if (options.quiet) return { onEvent: () => {}, finish: () => {}, stop: () => {} };
  const isTerminal = stderr.isTTY === true && (stderr.columns ?? 0) > 0;
  let spinner: Ora | null = null;
  let lastPlain = 0;
  let latest: ProgressSnapshot | null = null;
  const notices: string[] = [];

  const startSpinner = async (): Promise<void> => {
    const { default: ora } = await import('ora');
    spinner = ora({ stream: stderr as NodeJS.WritableStream, text: `reading ${options.input}…`, discardStdin: false }).start();
    if (latest) spinner.text = progressLine(latest);
  };
  if (isTerminal) void startSpinner();

  const say = (line: string): void => {
    if (spinner) {
      spinner.clear();
      stderr.write(line + '\n');
      spinner.render();
    } else {
      stderr.write(line + '\n');
    }
  };

  return {
    onEvent(event) {
      switch (event.type) {
        case 'progress':
          latest = event.progress;
          if (spinner) {
            spinner.text = progressLine(event.progress);
          } else if (!isTerminal && Date.now() - lastPlain >= PLAIN_INTERVAL_MS) {
            lastPlain = Date.now();
            stderr.write(`oai-batch: ${progressLine(event.progress)}\n`);
          }
          break;
        case 'started':
          if (event.resumed) say(`oai-batch: resuming: ${event.skippedAlready} requests already succeeded and will be skipped`);
          if (!isTerminal) lastPlain = Date.now();
          break;
        case 'stopping':
          say(`oai-batch: ${event.message}`);
          break;
        case 'request_finished':
          if (event.status === 'failed' && notices.length < 3) {
            notices.push(event.customId);
            if (event.code === 'request_too_large') say(`oai-batch: ${event.customId}: larger than the whole token budget; see the errors file`);
          }
          break;
        default:
          break;
      }
    },
    finish(summary, files) {
      if (spinner) {
        spinner.stop();
        spinner = null;
      }
      stderr.write(summaryTable(summary, files));
    },
    stop() {
      if (spinner) spinner.stop();
      spinner = null;
    },
  };
}

export function progressLine(p: ProgressSnapshot): string {
  const percent = p.fraction === null ? '' : ` (${(p.fraction * 100).toFixed(1)}%)`;
  const parts = [
    p.linesTotal === null ? `${fmtInt(p.linesDone)} done` : `${fmtInt(p.linesDone)} of ${fmtInt(p.linesTotal)} done${percent}`,
    `${fmtInt(p.inFlight)} in flight`,
    `${fmtInt(p.requestsPerMinute)} req/min`,
    `${fmtCompact(p.tokensPerMinute)} tok/min`,
    `retries ${fmtInt(p.retries)}`,
    `429s ${fmtInt(p.rateLimited)}`,
    `$${p.costUsd.toFixed(4)}`,
    p.etaSeconds === null ? 'ETA –' : `ETA ${fmtDuration(p.etaSeconds)}`,
  ];
  if (p.failed > 0) parts.splice(1, 0, `${fmtInt(p.failed)} failed`);
  if (p.reused > 0) parts.splice(1, 0, `${fmtInt(p.reused)} not bought (cache)`);
  const paused = Object.entries(p.limits).find(([, s]) => s.pausedUntil !== null);
  if (paused) parts.push(`${paused[0]} paused ${fmtDuration(((paused[1].pausedUntil as number) - Date.now()) / 1000)}`);
  if (p.concurrencyBound) parts.push(`held by --concurrency ${p.concurrencyLimit}`);
  return parts.join(' · ');
}

export function summaryTable(summary: Summary, files: { results: string; errors: string; summary: string }): string {
  const r = summary.requests;
  const a = summary.attempts;
  const t = summary.timing;
  const rows: Array<[string, string]> = [
    ['requests', `${fmtInt(r.total)} total · ${fmtInt(r.succeeded)} succeeded · ${fmtInt(r.failed)} failed · ${fmtInt(r.skipped)} skipped · ${fmtInt(r.pending)} pending`],
    ['attempts', `${fmtInt(a.total)} · ${fmtInt(a.retries)} retries · ${fmtInt(a.rate_limited)} rate-limited · ${fmtInt(a.server_errors)} server errors · ${fmtInt(a.timeouts)} timeouts`],
    ['tokens', `${fmtInt(summary.usage.input_tokens)} in (${fmtInt(summary.usage.cached_input_tokens)} cached) · ${fmtInt(summary.usage.output_tokens)} out (${fmtInt(summary.usage.reasoning_tokens)} reasoning)`],
    ['cost', `$${summary.cost_usd.total.toFixed(6)}${summary.unpriced_models.length ? ` + unpriced: ${summary.unpriced_models.join(', ')}` : ''}`],
    ['time', `${fmtDuration(t.wall_seconds)} · ${fmtInt(t.requests_per_minute)} req/min · ${fmtCompact(t.tokens_per_minute)} tok/min · p50 ${t.latency_ms.p50} ms · p95 ${t.latency_ms.p95} ms`],
  ];
  for (const [model, m] of Object.entries(summary.by_model)) {
    rows.push([`  ${model}`, `${fmtInt(m.requests)} req · ${fmtInt(m.input_tokens)} in · ${fmtInt(m.output_tokens)} out · ${m.cost_usd === null ? 'unpriced' : '$' + m.cost_usd.toFixed(6)}`]);
  }
  for (const [model, l] of Object.entries(summary.limits)) {
    const bound = l.concurrency_bound ? ' · held back by --concurrency' : '';
    rows.push([`  limits ${model}`, `${l.rpm === null ? '–' : fmtInt(l.rpm)} rpm · ${l.tpm === null ? '–' : fmtCompact(l.tpm)} tpm (${l.source})${bound}`]);
  }
  if (summary.stopped_reason) rows.push(['stopped', `${summary.stopped_reason} — run again with --resume to continue`]);
  for (const alert of summary.alerts) rows.push(['alert', `${alert.name} ${alert.value} > ${alert.threshold}`]);
  for (const warning of summary.warnings) rows.push(['warning', warning]);
  rows.push(['files', `${files.results} · ${files.errors} · ${files.summary}`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n';
}



