// record: one line per finished request (DESIGN.md §1 step 5, §2).
//
// In:  a request and how its journey ended (send.ts), or a bad input line.
// Out: a results line for a success, an errors line for a final failure or a
//      bad line; the usage and cost of a success in the ledger; a
//      `request_finished` or `input_problem` event once the line is written.
// Owns: the result and error line formats and their serialisation, pricing
// one answer, settling its --max-cost reservation. The writers
// (record/writer.ts) own bytes on disk; a success counts only once its line
// has been handed to the kernel.

import type { CostLedger } from '../pricing/ledger.js';
import type { RunEvent } from '../shared/events.js';
import { problemRecord } from '../shared/records.js';
import type { ErrorRecord, InputProblem, RequestItem, Usage } from '../shared/types.js';
import { modelOf, serviceTierOf, usageFromBody } from '../shared/usage.js';
import type { SpendGuard } from './limit/spend-cap.js';
import type { ReusedAnswer } from './reuse.js';
import type { ItemResult } from './send.js';
import type { HttpResponse } from './send/transport.js';
import type { JsonlWriter } from './record/writer.js';

export interface RecorderOptions {
  results: JsonlWriter;
  errors: JsonlWriter;
  ledger: CostLedger;
  spend: SpendGuard | null;
  nextId: () => string;
  emit: (event: RunEvent) => void;
}

export class Recorder {
  readonly #o: RecorderOptions;

  constructor(options: RecorderOptions) {
    this.#o = options;
  }

  /** Writes what a finished journey produced; a stopped one writes nothing (the request stays pending). */
  async record(item: RequestItem, result: ItemResult | ReusedAnswer): Promise<void> {
    if (result.kind === 'reused') {
      await this.#reused(item, result);
    } else if (result.kind === 'answered') {
      try {
        await this.#success(item, result.response, result.attempts, result.latencyMs, result);
      } finally {
        result.done();
      }
    } else if (result.kind === 'failed') {
      await this.failure(item, result.response, result.code, result.message, result.attempts, result.latencyMs);
    }
  }

  async #success(item: RequestItem, response: HttpResponse, attempts: number, latencyMs: number, result: ItemResult): Promise<void> {
    const { ledger, spend } = this.#o;
    const body = response.json;
    const usage = usageFromBody(item.url, body);
    const model = modelOf(body) ?? item.model;
    const options = { serviceTier: serviceTierOf(body) };
    const costUsd = usage ? ledger.lineCostUsd(model, usage, options) : null;
    if (usage) ledger.add(model, usage, options);
    else ledger.addWithoutUsage(model);
    if (spend && result.reservation) spend.settle(result.reservation, usage ? (costUsd ?? 0) : null);
    await this.#o.results.writeRaw(serializeResult(this.#o.nextId(), item, response, attempts, latencyMs, costUsd));
    this.#finished(item, 'succeeded', response, null, attempts, latencyMs, usage, costUsd);
  }

  /** An answer not bought for this line: written like any success, `"cache"` saying where it came from, at no cost. */
  async #reused(item: RequestItem, answer: ReusedAnswer): Promise<void> {
    const usage = usageFromBody(item.url, answer.json);
    const model = modelOf(answer.json) ?? item.model;
    const savedUsd = usage ? this.#o.ledger.lineCostUsd(model, usage, { serviceTier: serviceTierOf(answer.json), batch: answer.batch }) : null;
    const response = { status: answer.status, requestId: answer.requestId, text: answer.text, json: answer.json, headers: {} };
    await this.#o.results.writeRaw(serializeResult(this.#o.nextId(), item, response, 0, 0, 0, answer.source));
    this.#finished(item, 'succeeded', response, null, 0, 0, usage, 0, { cache: answer.source, savedUsd });
  }

  /** A final failure (`latencyMs`: of the last attempt; 0 when nothing was sent). */
  async failure(item: RequestItem, response: HttpResponse | null, code: string, message: string, attempts: number, latencyMs: number): Promise<void> {
    const record: ErrorRecord = {
      id: this.#o.nextId(),
      custom_id: item.customId,
      line: item.line,
      response: response ? { status_code: response.status, request_id: response.requestId, body: response.json ?? response.text } : null,
      error: { code, message },
      attempts,
    };
    if (item.metadata !== undefined) record.metadata = item.metadata;
    await this.#o.errors.write(record);
    this.#finished(item, 'failed', response, code, attempts, latencyMs, null, null);
  }

  /** A line that could not become a request. */
  async problem(problem: InputProblem): Promise<void> {
    await this.#o.errors.write(problemRecord(problem, this.#o.nextId()));
    this.#o.emit({ type: 'input_problem', line: problem.line, customId: problem.customId, code: problem.code, message: problem.message });
  }

  #finished(
    item: RequestItem,
    status: 'succeeded' | 'failed',
    response: HttpResponse | null,
    code: string | null,
    attempts: number,
    latencyMs: number,
    usage: Usage | null,
    costUsd: number | null,
    reused?: { cache: 'hit' | 'dedup'; savedUsd: number | null },
  ): void {
    this.#o.emit({
      type: 'request_finished',
      customId: item.customId,
      line: item.line,
      model: item.model,
      endpoint: item.url,
      status,
      httpStatus: response?.status ?? null,
      code,
      attempts,
      latencyMs,
      usage,
      costUsd,
      requestId: response?.requestId ?? null,
      body: response?.json,
      ...reused,
    });
  }
}

/**
 * A result line, built around the response body's own JSON text so the body
 * is not serialised a second time (it was valid JSON: we parsed it). A body
 * with raw line breaks (pretty-printed) is re-serialised to keep one line.
 */
export function serializeResult(
  id: string,
  item: RequestItem,
  response: Pick<HttpResponse, 'status' | 'requestId' | 'text' | 'json'>,
  attempts: number,
  latencyMs: number,
  costUsd: number | null,
  cache?: 'hit' | 'dedup',
): string {
  const bodyText = /[\r\n\u2028\u2029]/.test(response.text) ? JSON.stringify(response.json) : response.text.trim();
  let line =
    `{"id":${JSON.stringify(id)},"custom_id":${JSON.stringify(item.customId)},` +
    `"response":{"status_code":${response.status},"request_id":${JSON.stringify(response.requestId)},"body":${bodyText}},` +
    `"error":null,"line":${item.line},"attempts":${attempts},"latency_ms":${Math.round(latencyMs)},"cost_usd":${costUsd === null ? 'null' : Number(costUsd.toPrecision(12))}`;
  if (cache !== undefined) line += `,"cache":"${cache}"`;
  if (item.metadata !== undefined) line += `,"metadata":${JSON.stringify(item.metadata)}`;
  return line + '}';
}
