// Request validation for the model endpoints, as the API answers bad bodies.
//
// In:  an endpoint and the parsed JSON body.  Out: the requested model, or
//      the 400/404 the API would send.
// Runs before rate limiting: a body without a model has no limit to count against.

import type { Endpoint } from '../shared/types.js';
import { apiError, modelNotFoundError, type ApiErrorObject } from './error-bodies.js';

export interface RequestProblem {
  status: 400 | 404;
  error: ApiErrorObject;
}

export type Validation = { ok: true; model: string } | { ok: false; problem: RequestProblem };

/** The model moderations use when a request names none. */
export const DEFAULT_MODERATION_MODEL = 'omni-moderation-latest';

const OUTPUT_LIMIT_FIELDS: Record<Endpoint, readonly string[]> = {
  '/v1/chat/completions': ['max_tokens', 'max_completion_tokens'],
  '/v1/responses': ['max_output_tokens'],
  '/v1/completions': ['max_tokens'],
  '/v1/embeddings': [],
  '/v1/moderations': [],
};

export function validateRequest(endpoint: Endpoint, body: unknown): Validation {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return bad(invalidType('body', 'an object', body));
  }
  const fields = body as Record<string, unknown>;

  let model: string;
  if (fields.model === undefined && endpoint === '/v1/moderations') {
    model = DEFAULT_MODERATION_MODEL;
  } else if (fields.model === undefined) {
    return bad(apiError('invalid_request_error', 'missing_required_parameter', 'you must provide a model parameter', 'model'));
  } else if (typeof fields.model !== 'string' || fields.model === '') {
    return bad(invalidType('model', 'a string', fields.model));
  } else {
    model = fields.model;
  }

  // The API refuses parameters it does not know; `custom_id` is the one a JSONL
  // client most easily leaks into a body (it belongs on the Batch API line).
  if ('custom_id' in fields) return bad(unknownParameter(endpoint, 'custom_id'));

  if (fields.stream === true) {
    return bad(
      apiError(
        'invalid_request_error',
        'unsupported_parameter',
        "Unsupported parameter: 'stream'. The simulator does not stream; send the request without \"stream\": true.",
        'stream',
      ),
    );
  }

  switch (endpoint) {
    case '/v1/chat/completions': {
      if (fields.messages === undefined) return bad(missing('messages'));
      if (!Array.isArray(fields.messages)) return bad(invalidType('messages', 'an array of objects', fields.messages));
      if (fields.messages.length === 0) {
        return bad(
          apiError(
            'invalid_request_error',
            'empty_array',
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            'messages',
          ),
        );
      }
      break;
    }
    case '/v1/responses':
      if (fields.input === undefined || fields.input === null) return bad(missing('input'));
      break;
    case '/v1/embeddings':
    case '/v1/moderations':
      if (fields.input === undefined || fields.input === null) return bad(missing('input'));
      if (Array.isArray(fields.input) && fields.input.length === 0) {
        return bad(
          apiError(
            'invalid_request_error',
            'empty_array',
            "Invalid 'input': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            'input',
          ),
        );
      }
      break;
    case '/v1/completions':
      // Required, though null is allowed (the model then starts a new document).
      if (!('prompt' in fields)) return bad(missing('prompt'));
      break;
  }

  for (const field of OUTPUT_LIMIT_FIELDS[endpoint]) {
    const value = fields[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'number' || !Number.isInteger(value)) return bad(invalidType(field, 'an integer', value));
    if (value < 1) {
      return bad(
        apiError(
          'invalid_request_error',
          'integer_below_min_value',
          `Invalid '${field}': integer below minimum value. Expected a value >= 1, but got ${value} instead.`,
          field,
        ),
      );
    }
  }

  if (isModelMissing(model)) return { ok: false, problem: { status: 404, error: modelNotFoundError(model) } };
  return { ok: true, model };
}

/** The simulator's way to ask for a model that does not exist: a name starting with `nonexistent`. */
export function isModelMissing(model: string): boolean {
  return model.startsWith('nonexistent');
}

function bad(error: ApiErrorObject): Validation {
  return { ok: false, problem: { status: 400, error } };
}

/** Chat, completions and embeddings answer in the older wording; responses names the parameter. */
function unknownParameter(endpoint: Endpoint, param: string): ApiErrorObject {
  return endpoint === '/v1/responses'
    ? apiError('invalid_request_error', 'unknown_parameter', `Unknown parameter: '${param}'.`, param)
    : apiError('invalid_request_error', null, `Unrecognized request argument supplied: ${param}`);
}

function missing(param: string): ApiErrorObject {
  return apiError('invalid_request_error', 'missing_required_parameter', `Missing required parameter: '${param}'.`, param);
}

function invalidType(param: string, expected: string, value: unknown): ApiErrorObject {
  const kind = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  const got = kind === 'null' ? 'null' : `${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind}`;
  return apiError(
    'invalid_request_error',
    'invalid_type',
    `Invalid type for '${param}': expected ${expected}, but got ${got} instead.`,
    param === 'body' ? null : param,
  );
}
