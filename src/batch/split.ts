// split: assign each planned request to a part (one Batch API batch) within
// the API's limits, and stream the input through read → plan → split.
//
// In:  request items in input order (from plan.ts), the part limits.
// Out: each item's part number and its batch-form line; the list of parts.
// Owns the limits: one endpoint and one model per batch; 50,000 requests,
// 50,000 embedding inputs and 200 MB per file; optionally the enqueued-token
// limit, so that no part is refused for being larger than the queue.
//
// Assignment is deterministic (a part is filled until the next line would
// pass a limit, numbered in order of first appearance), so a later command
// re-runs it over the same input (and the same lines left out, which the
// manifest records) and finds every line's part without storing a map of
// lines to parts.

import { openInput, readRecords } from '../pipeline/read.js';
import { createPlanContext, isInputProblem, planRecord } from '../pipeline/plan.js';
import type { Endpoint, InputProblem, RequestItem } from '../shared/types.js';

/** The Batch API's per-file limits (OPENAI-API.md §7). */
export const API_MAX_REQUESTS = 50_000;
export const API_MAX_EMBEDDING_INPUTS = 50_000;
/**
 * 200 MB, counted as 200,000,000 bytes: below the limit whether the API means
 * decimal or binary megabytes.
 */
export const API_MAX_BYTES = 200_000_000;

export interface PartLimits {
  /** Requests per part, at most 50,000. */
  maxRequests: number;
  /** Embedding inputs per part (an `input` array counts each element), at most 50,000. */
  maxEmbeddingInputs: number;
  /** Bytes of the uploaded JSONL per part, at most 200 MB. */
  maxBytes: number;
  /** Estimated input tokens per part (the enqueued-token limit per model), or null for no limit. */
  maxEnqueuedTokens: number | null;
}

export const DEFAULT_PART_LIMITS: PartLimits = {
  maxRequests: API_MAX_REQUESTS,
  maxEmbeddingInputs: API_MAX_EMBEDDING_INPUTS,
  maxBytes: API_MAX_BYTES,
  maxEnqueuedTokens: null,
};

export interface PartPlan {
  /** 1-based part number. */
  part: number;
  endpoint: Endpoint;
  model: string;
  /** First and last input line in the part (lines of other parts may lie between). */
  firstLine: number;
  lastLine: number;
  requests: number;
  embeddingInputs: number;
  bytes: number;
  /** Estimated input tokens: what the part adds to the organisation's enqueued-token count. */
  enqueuedTokens: number;
}

/** The Batch API input line for an item: our top-level `metadata` is not sent, the body's own is. */
export function batchLineOf(item: RequestItem): string {
  return JSON.stringify({ custom_id: item.customId, method: 'POST', url: item.url, body: item.body });
}

/** Embedding inputs a request carries: each element of an `input` array, else one. */
export function embeddingInputsOf(item: RequestItem): number {
  if (item.url !== '/v1/embeddings') return 0;
  return Array.isArray(item.body.input) ? item.body.input.length : 1;
}

/** Assigns items to parts, one open part per (endpoint, model). */
export class PartSplitter {
  readonly parts: PartPlan[] = [];
  private readonly open = new Map<string, PartPlan>();

  constructor(private readonly limits: PartLimits) {}

  /** The part `item` (whose batch line is `lineBytes` long, newline included) goes to. */
  assign(item: RequestItem, lineBytes: number): PartPlan {
    const key = `${item.url}\u0000${item.model}`;
    const inputs = embeddingInputsOf(item);
    const tokens = item.charge.inputTokens;
    let part = this.open.get(key);
    if (part && !this.fits(part, lineBytes, inputs, tokens)) part = undefined;
    if (!part) {
      part = {
        part: this.parts.length + 1,
        endpoint: item.url,
        model: item.model,
        firstLine: item.line,
        lastLine: item.line,
        requests: 0,
        embeddingInputs: 0,
        bytes: 0,
        enqueuedTokens: 0,
      };
      this.parts.push(part);
      this.open.set(key, part);
    }
    part.lastLine = item.line;
    part.requests += 1;
    part.embeddingInputs += inputs;
    part.bytes += lineBytes;
    part.enqueuedTokens += tokens;
    return part;
  }

  /** Whether one more line fits; an empty part takes any line (a single line larger than a limit cannot be split). */
  private fits(part: PartPlan, lineBytes: number, inputs: number, tokens: number): boolean {
    const l = this.limits;
    return (
      part.requests + 1 <= l.maxRequests &&
      part.embeddingInputs + inputs <= l.maxEmbeddingInputs &&
      part.bytes + lineBytes <= l.maxBytes &&
      (l.maxEnqueuedTokens === null || part.enqueuedTokens + tokens <= l.maxEnqueuedTokens)
    );
  }
}

export interface SplitOptions {
  input: string;
  /** Endpoint of bare-form lines. */
  endpoint: Endpoint;
  maxLineBytes: number;
  limits: PartLimits;
  /** Called for every line that cannot become a request (in input order). */
  onProblem?: (problem: InputProblem) => Promise<void> | void;
  /** Called for every request with its part and batch line (in input order). */
  onItem?: (item: RequestItem, part: PartPlan, batchLine: string) => Promise<void> | void;
  /**
   * Requests to leave out of every part (they already succeeded). Must give
   * the same answer for the same line every time the input is split, or the
   * parts will not match the manifest.
   */
  skip?: (item: RequestItem) => boolean;
  /** Called for every request `skip` left out (in input order). */
  onSkipped?: (item: RequestItem) => Promise<void> | void;
}

export interface SplitResult {
  parts: PartPlan[];
  /** Non-blank input lines. */
  lines: number;
  problems: number;
  /** Requests `skip` left out. */
  skipped: number;
}

/** Streams the input once through read → plan → split. */
export async function splitInput(options: SplitOptions): Promise<SplitResult> {
  const source = await openInput(options.input);
  const context = createPlanContext(options.endpoint, options.maxLineBytes);
  const splitter = new PartSplitter(options.limits);
  let lines = 0;
  let problems = 0;
  let skipped = 0;
  try {
    for await (const record of readRecords(source.stream, options.maxLineBytes)) {
      lines += 1;
      const planned = planRecord(record, context);
      if (isInputProblem(planned)) {
        problems += 1;
        await options.onProblem?.(planned);
        continue;
      }
      if (options.skip?.(planned)) {
        skipped += 1;
        await options.onSkipped?.(planned);
        continue;
      }
      const batchLine = batchLineOf(planned);
      const part = splitter.assign(planned, Buffer.byteLength(batchLine) + 1);
      await options.onItem?.(planned, part, batchLine);
    }
  } finally {
    source.close();
  }
  return { parts: splitter.parts, lines, problems, skipped };
}
