// plan: turn one input record into a request item, or an input problem.
//
// In:  a RawRecord from read.ts.  Out: RequestItem | InputProblem.
// Owns: the two line forms (DESIGN.md §2), validation (a body must fit its
// endpoint), custom_id uniqueness, the charge.
// Validation returns results, not exceptions: a bad line is data and the run goes on.

import { chargeOf } from './plan/charge.js';
import { KeySet } from '../shared/keyset.js';
import { lineKey } from '../shared/records.js';
import type { RawRecord } from './read.js';
import { isEndpoint, type Charge, type Endpoint, type InputProblem, type InputProblemCode, type RequestItem } from '../shared/types.js';

export interface PlanContext {
  /** Endpoint for bare-form lines. */
  endpoint: Endpoint;
  /** custom_ids seen so far in this input. */
  seen: KeySet;
  maxLineBytes: number;
}

export function createPlanContext(endpoint: Endpoint, maxLineBytes: number): PlanContext {
  return { endpoint, seen: new KeySet(), maxLineBytes };
}


export function isInputProblem(x: RequestItem | InputProblem): x is InputProblem {
  return 'code' in x;
}

/**
 * The model a record's request names, without planning it (no validation, no
 * charge): for checks over a whole file. null for lines that are not requests.
 */
export function modelOfRecord(record: RawRecord): string | null {
  let value: unknown;
  if (record.kind === 'text') {
    try {
      value = JSON.parse(record.text);
    } catch {
      return null;
    }
  } else if (record.kind === 'value') {
    value = record.value;
  } else {
    return null;
  }
  if (!value || typeof value !== 'object') return null;
  const object = value as Record<string, unknown>;
  const body = 'body' in object ? object.body : object;
  const model = body && typeof body === 'object' ? (body as Record<string, unknown>).model : undefined;
  return typeof model === 'string' && model !== '' ? model : null;
}

export function planRecord(record: RawRecord, context: PlanContext): RequestItem | InputProblem {
  const { line } = record;
  const problem = (code: InputProblemCode, message: string, customId = lineKey(line), metadata?: unknown): InputProblem =>
    metadata === undefined
      ? { line, code, message: `line ${line}: ${message}`, customId }
      : { line, code, message: `line ${line}: ${message}`, customId, metadata };

  if (record.kind === 'too_long') {
    return problem('line_too_long', `${record.bytes} bytes, more than --max-line-bytes (${context.maxLineBytes})`);
  }
  if (record.kind === 'broken') return problem('invalid_json', record.message);

  let value: unknown;
  if (record.kind === 'text') {
    try {
      value = JSON.parse(record.text);
    } catch (error) {
      return problem('invalid_json', `not valid JSON (${(error as Error).message})`);
    }
  } else {
    value = record.value;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return problem('not_an_object', `expected a JSON object, got ${describeType(value)}`);
  }
  const object = value as Record<string, unknown>;
  const metadata = object.metadata;

  let customId: string;
  let url: Endpoint;
  let body: Record<string, unknown>;
  let form: 'batch' | 'bare';
  if ('body' in object) {
    form = 'batch';
    const id = object.custom_id;
    const idText = typeof id === 'string' && id !== '' ? id : lineKey(line);
    if (typeof id !== 'string' || id === '') {
      return problem('invalid_body', 'a Batch API line needs a non-empty string custom_id', idText, metadata);
    }
    customId = id;
    if (object.method !== 'POST') {
      return problem('unsupported_endpoint', `method must be "POST", got ${JSON.stringify(object.method)}`, customId, metadata);
    }
    if (!isEndpoint(object.url)) {
      return problem(
        'unsupported_endpoint',
        `url ${JSON.stringify(object.url)} is not one of /v1/chat/completions, /v1/responses, /v1/embeddings, /v1/completions, /v1/moderations`,
        customId,
        metadata,
      );
    }
    url = object.url;
    if (object.body === null || typeof object.body !== 'object' || Array.isArray(object.body)) {
      return problem('invalid_body', `body must be a JSON object, got ${describeType(object.body)}`, customId, metadata);
    }
    body = object.body as Record<string, unknown>;
  } else {
    form = 'bare';
    url = context.endpoint;
    // A top-level custom_id is the line's id, ours like metadata: the API refuses unknown parameters.
    const ownId = bareCustomIdOf(object, line);
    if (ownId === null) {
      return problem('invalid_body', `"custom_id" must be a non-empty string, got ${describeType(object.custom_id)}`, lineKey(line), metadata);
    }
    customId = ownId;
    if ('metadata' in object || 'custom_id' in object) {
      const { metadata: _ours, custom_id: _id, ...rest } = object;
      body = rest;
    } else {
      body = object;
    }
  }

  const model = body.model;
  if (model !== undefined && (typeof model !== 'string' || model === '')) {
    return problem('missing_model', `"model" must be a non-empty string, got ${describeType(model)}`, customId, metadata);
  }
  if (model === undefined && url !== '/v1/moderations') {
    return problem('missing_model', `no "model" (required by ${url})`, customId, metadata);
  }
  if (body.stream === true) {
    return problem('stream_not_supported', '"stream": true is not supported: results are recorded whole', customId, metadata);
  }
  const misfit = endpointMisfit(url, body, form);
  if (misfit !== null) return problem('invalid_body', misfit, customId, metadata);
  if (!context.seen.add(customId)) {
    return problem('duplicate_custom_id', `custom_id ${JSON.stringify(customId)} was already used by an earlier line`, customId, metadata);
  }

  // The charge tokenizes the prompt (the costliest step of planning): computed
  // on first use, so that a line resume skips or the cache answers never pays it.
  let charge: Charge | undefined;
  const item: RequestItem = {
    customId,
    line,
    method: 'POST',
    url,
    body,
    model: typeof model === 'string' ? model : 'omni-moderation-latest',
    form,
    get charge(): Charge {
      return (charge ??= chargeOf(url, body));
    },
  };
  if (metadata !== undefined) item.metadata = metadata;
  return item;
}

/**
 * The id of a bare-form line: its own top-level `custom_id` when it has one
 * (null when that is not a non-empty string: an input problem), else `line-N`.
 * Exported so that a pass that only needs ids (resume's skip check) keys lines
 * exactly as planning does.
 */
export function bareCustomIdOf(object: Record<string, unknown>, line: number): string | null {
  if (!('custom_id' in object)) return lineKey(line);
  const id = object.custom_id;
  return typeof id === 'string' && id !== '' ? id : null;
}

/**
 * The field each endpoint cannot do without (besides `model`), as the API
 * refuses a body without it with a 400. Checked here so that validate,
 * --dry-run and estimate catch a file sent to the wrong endpoint before a
 * run pays for nothing but 400s.
 */
const REQUIRED_FIELDS: Record<Endpoint, string> = {
  '/v1/chat/completions': 'messages',
  '/v1/responses': 'input',
  '/v1/embeddings': 'input',
  '/v1/moderations': 'input',
  '/v1/completions': 'prompt',
};

/**
 * Why a body does not fit its endpoint, with the endpoint it seems meant for,
 * or null when it fits:
 * - chat completions: `messages`, a non-empty array;
 * - embeddings and moderations: `input`, not null and not an empty array;
 * - responses: `input`, or a stored prompt (`"prompt": {"id": …}`) instead;
 * - completions: `prompt` (null is allowed: the API then starts a new document).
 */
export function endpointMisfit(url: Endpoint, body: Record<string, unknown>, form: 'batch' | 'bare'): string | null {
  const field = REQUIRED_FIELDS[url];
  const value = body[field];
  let problem: string | null = null;
  switch (url) {
    case '/v1/chat/completions':
      if (value === undefined) problem = 'no "messages"';
      else if (!Array.isArray(value)) problem = `"messages" must be an array of messages, got ${describeType(value)}`;
      else if (value.length === 0) problem = '"messages" is empty';
      break;
    case '/v1/responses':
      if ((value === undefined || value === null) && !isObject(body.prompt)) problem = 'no "input"';
      break;
    case '/v1/embeddings':
    case '/v1/moderations':
      if (value === undefined || value === null) problem = 'no "input"';
      else if (Array.isArray(value) && value.length === 0) problem = '"input" is empty';
      break;
    case '/v1/completions':
      if (!(field in body)) problem = 'no "prompt"';
      break;
  }
  if (problem === null) return null;
  const meant = likelyEndpoint(body);
  const hint =
    meant === null || meant === url
      ? ''
      : form === 'bare'
        ? `: the body looks like a ${meant} request, use --endpoint ${meant}`
        : `: the body looks like a ${meant} request, set "url": "${meant}"`;
  return `${problem} (${url} requires "${field}")${hint}`;
}

/** The endpoint a body's fields (and its model's name) point at, or null. */
function likelyEndpoint(body: Record<string, unknown>): Endpoint | null {
  const model = typeof body.model === 'string' ? body.model.toLowerCase() : '';
  if (Array.isArray(body.messages) && body.messages.length > 0) return '/v1/chat/completions';
  if (body.input !== undefined && body.input !== null) {
    if (model.includes('embedding')) return '/v1/embeddings';
    if (model.includes('moderation') || model === '') return '/v1/moderations';
    return '/v1/responses';
  }
  if (typeof body.prompt === 'string' || Array.isArray(body.prompt)) return '/v1/completions';
  return null;
}

function isObject(value: unknown): boolean {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value === undefined) return 'nothing';
  return `a ${typeof value}`;
}
