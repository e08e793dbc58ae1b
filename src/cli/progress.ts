// The progress display of `run` on stderr, and the end-of-run table.
//
// On a terminal (stderr is a TTY reporting columns > 0): an ora spinner whose
// text is refreshed from progress events. Otherwise one plain line every
// 10 s. ora is enabled only on a real terminal with columns: a terminal
// reporting 0 columns made it loop forever (STACK.md).

import type { Writable } from 'node:stream';
import type { Ora } from 'ora';
import type { ProgressSnapshot, RunEvent } from '../shared/events.js';
import { countRows, fmtInt } from '../shared/figures.js';
import type { StoppedReason, Summary } from '../shared/types.js';
import { fmtCompact, fmtDuration } from './render.js';

export interface ProgressView {
  onEvent(event: RunEvent): void;
  /** Prints the end table (unless quiet). */
  finish(summary: Summary, files: { results: string; errors: string; summary: string }): void;
  stop(): void;
}

type ErrStream = Writable & { isTTY?: boolean; columns?: number };

export const PLAIN_INTERVAL_MS = 10_000;

/**
 * Stops `--quiet` keeps silent: those asked for (a cap, Ctrl-C) and a failed
 * write, which the shell prints as the run's error. Every other stop still
 * prints its one line, so an unattended job's exit 1 or 3 says why.
 */
const QUIET_STOPS: ReadonlySet<StoppedReason> = new Set(['interrupted', 'max_cost', 'max_total_cost', 'write_failed']);

/** `quiet`: no progress and no end table; `silent` (JSON logs, which carry every event): nothing at all. */
export function createProgressView(stderr: ErrStream, options: { quiet: boolean; silent?: boolean; input: string }): ProgressView {
  if (options.silent) return { onEvent: () => {}, finish: () => {}, stop: () => {} };
  if (options.quiet) {
    const onEvent = (event: RunEvent): void => {
      if (event.type === 'stopping' && !QUIET_STOPS.has(event.reason)) stderr.write(`oai-batch: ${event.message}\n`);
    };
    return { onEvent, finish: () => {}, stop: () => {} };
  }

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
      stderr.write(summaryTable(summary, files, isTerminal ? (stderr.columns as number) : SUMMARY_COLUMNS));
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

/** The end table's width when the stream is not a terminal that reports its own. */
export const SUMMARY_COLUMNS = 80;

/**
 * The end-of-run table, `columns` wide (default 80): a short label, then its
 * figures, wrapped at their ` · ` separators onto indented lines so no line
 * is longer than the terminal (a single figure longer than that, such as a
 * long path, keeps its own line). Models are listed under one label rather
 * than used as labels: a dated model name would widen every row.
 */
export function summaryTable(summary: Summary, files: { results: string; errors: string; summary: string }, columns: number = SUMMARY_COLUMNS): string {
  const counts = countRows(summary);
  const rows: Array<[string, string]> = [
    ['requests', counts.requests],
    ['attempts', counts.attempts],
    ['tokens', counts.tokens],
    ['cost', costRow(summary)],
    ['time', timeRow(summary)],
  ];
  const saved = summary.cache;
  if (saved) {
    rows.push(['cache', `${fmtInt(saved.hits)} hits · ${fmtInt(saved.dedup)} dedup · saved $${saved.saved_usd.toFixed(6)} (${fmtCompact(saved.saved_tokens)} tokens)`]);
  }
  for (const [model, m] of Object.entries(summary.by_model)) {
    rows.push(['model', `${model}: ${fmtInt(m.requests)} req · ${fmtInt(m.input_tokens)} in · ${fmtInt(m.output_tokens)} out · ${m.cost_usd === null ? 'unpriced' : '$' + m.cost_usd.toFixed(6)}`]);
  }
  for (const [model, l] of Object.entries(summary.limits)) {
    const bound = l.concurrency_bound ? ' · held back by --concurrency' : '';
    rows.push(['limits', `${model}: ${l.rpm === null ? '–' : fmtInt(l.rpm)} rpm · ${l.tpm === null ? '–' : fmtCompact(l.tpm)} tpm (${l.source})${bound}`]);
  }
  if (summary.stopped_reason) rows.push(['stopped', `${summary.stopped_reason} — run again with --resume to continue`]);
  for (const alert of summary.alerts) rows.push(['alert', `${alert.name} ${alert.value} > ${alert.threshold}`]);
  for (const warning of summary.warnings) rows.push(['warning', warning]);
  rows.push(['files', `${files.results} · ${files.errors} · ${files.summary}`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines: string[] = [];
  let previous = '';
  for (const [label, value] of rows) {
    // A label repeated on consecutive rows (model, limits) is printed once.
    const shown = label === previous ? '' : label;
    previous = label;
    const wrapped = wrapFigures(value, Math.max(20, columns - width - 2));
    wrapped.forEach((part, i) => lines.push(`${(i === 0 ? shown : '').padEnd(width)}  ${part}`.trimEnd()));
  }
  return lines.join('\n') + '\n';
}

/** The `cost` row: this run's spend apart from the whole file's when an earlier run spent some of it. */
function costRow(summary: Summary): string {
  const total = summary.cost_usd.total;
  const run = summary.run_cost_usd ?? total;
  let row = Math.abs(run - total) < 1e-9 ? `$${total.toFixed(6)}` : `$${run.toFixed(6)} this run · $${total.toFixed(6)} the whole file (earlier runs included)`;
  if (summary.unpriced_models.length) row += ` · unpriced: ${summary.unpriced_models.join(', ')}`;
  if (summary.requests_without_usage > 0) row += ` · ${fmtInt(summary.requests_without_usage)} answers without usage (cost unknown)`;
  return row;
}

/**
 * The `time` row. A Batch API summary has no per-request latency or rate
 * worth showing (answers arrive all at once when a batch ends): its time is
 * the batches' wall time, from the first created to the last ended.
 */
function timeRow(summary: Summary): string {
  const t = summary.timing;
  if (summary.mode === 'batch') {
    const span = t.finished_at === null ? 'so far, some batches still running' : 'batch wall time, created → ended';
    return `${fmtWallTime(t.wall_seconds)} (${span})`;
  }
  // Latency is of the successes this run bought: with none (all skipped or answered by the cache), `p50 0 ms` would be made up.
  const reused = (summary.cache?.hits ?? 0) + (summary.cache?.dedup ?? 0);
  const hasLatency = t.latency_ms !== null && summary.requests.succeeded - summary.requests.skipped - reused > 0;
  const latency = hasLatency && t.latency_ms ? ` · p50 ${fmtInt(t.latency_ms.p50)} ms · p95 ${fmtInt(t.latency_ms.p95)} ms` : '';
  return `${fmtWallTime(t.wall_seconds)} · ${fmtInt(t.requests_per_minute)} req/min · ${fmtCompact(t.tokens_per_minute)} tok/min${latency}`;
}

/** A run's wall time: tenths of a second below 10 s (a 0.3 s run is not "0s"), else as durations are. */
function fmtWallTime(seconds: number): string {
  return seconds < 9.95 ? `${Math.max(0, seconds).toFixed(1)}s` : fmtDuration(seconds);
}

/** Splits `text` at its ` · ` separators into lines of at most `width` characters (a longer single figure keeps a line of its own; a long line without separators breaks at spaces). */
export function wrapFigures(text: string, width: number): string[] {
  const pieces = text.split(' · ');
  const lines: string[] = [];
  let line = '';
  for (const piece of pieces) {
    const candidate = line === '' ? piece : `${line} · ${piece}`;
    if (candidate.length <= width || line === '') line = candidate;
    else {
      lines.push(line);
      line = piece;
    }
  }
  if (line !== '') lines.push(line);
  return lines.flatMap((l) => (l.length <= width ? [l] : wrapWords(l, width)));
}

function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}



