// The error hierarchy: every error the library throws has a stable `code`
// and the process exit code the CLI maps it to (DESIGN.md §3).
//
// OaiBatchError
// ├── ConfigError          bad flags or options (exit 1)
// ├── InputError           missing/unreadable input, bad output path, refused resume (exit 1)
// ├── APIError             an HTTP answer that is not a success (status, request id, body)
// │   ├── AuthError        401: stops the run
// │   ├── QuotaError       429 insufficient_quota: stops the run
// │   ├── RateLimitError   429 rate_limit_exceeded: wait and retry, no attempt spent
// │   └── ServerError      5xx
// ├── ConnectionError      reset, refused, DNS
// ├── TimeoutError         the attempt ran past --timeout
// ├── InvalidResponseError a 2xx whose body is not JSON (one-off calls, after the attempts ran out)
// ├── RequestTooLargeError  larger than the whole token budget: that request fails (exit 2)
// ├── BudgetStoreUnavailableError  a shared budget store was lost for too long (exit 3)
// └── WriteError           an output file refused a write, flush or close (exit 1)

import { maskQuotedKeys } from './redact.js';

export class OaiBatchError extends Error {
  readonly code: string;
  readonly exitCode: number;
  constructor(message: string, code: string, exitCode = 1, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
  }
}

export class ConfigError extends OaiBatchError {
  constructor(message: string) {
    super(message, 'config_error', 1);
  }
}

export class InputError extends OaiBatchError {
  constructor(message: string, code = 'input_error', options?: { cause?: unknown }) {
    super(message, code, 1, options);
  }
}

/** The `error` object of an OpenAI error body: `{message, type, param, code}`. */
export interface APIErrorObject {
  message?: string;
  type?: string;
  param?: string | null;
  code?: string | null;
}

export class APIError extends OaiBatchError {
  readonly status: number;
  readonly requestId: string | null;
  readonly headers: Record<string, string>;
  readonly body: unknown;
  readonly error: APIErrorObject | undefined;
  constructor(
    status: number,
    body: unknown,
    headers: Record<string, string>,
    requestId: string | null,
    exitCode = 1,
  ) {
    const error = errorObjectOf(body);
    const code = error?.code ?? `http_${status}`;
    super(`${status} ${error?.message !== undefined ? maskQuotedKeys(error.message) : 'status code ' + status}`, String(code), exitCode);
    this.status = status;
    this.requestId = requestId;
    this.headers = headers;
    this.body = body;
    this.error = error;
  }

  /** One factory maps a status (and the body's code) to a class. */
  static generate(
    status: number,
    body: unknown,
    headers: Record<string, string>,
    requestId: string | null,
  ): APIError {
    const code = errorObjectOf(body)?.code;
    if (status === 401) return new AuthError(status, body, headers, requestId);
    if (status === 429 && code === 'insufficient_quota') return new QuotaError(status, body, headers, requestId);
    if (status === 429) return new RateLimitError(status, body, headers, requestId);
    if (status >= 500) return new ServerError(status, body, headers, requestId);
    return new APIError(status, body, headers, requestId);
  }
}

export class AuthError extends APIError {}
export class QuotaError extends APIError {}
export class RateLimitError extends APIError {}
export class ServerError extends APIError {}

export class ConnectionError extends OaiBatchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'connection_error', 1, options);
  }
}

export class TimeoutError extends OaiBatchError {
  constructor(timeoutMs: number) {
    super(`no answer within ${timeoutMs / 1000} s`, 'timeout', 1);
  }
}

/**
 * A request charged more tokens than the model's whole token budget: no wait
 * can admit it. Final for that request (an errors-file record), not for the run.
 */
export class RequestTooLargeError extends OaiBatchError {
  constructor(model: string, tokens: number, tpm: number) {
    super(
      `request charged ${tokens} tokens is larger than the whole token budget of ${model} (${tpm} tokens/min); reduce its input or output limit`,
      'request_too_large',
      2,
    );
  }
}

/**
 * A shared budget store could not be reached for longer than allowed
 * (--redis-timeout). The run stops as an interrupt does (exit 3, resumable):
 * never a silent fallback to a private budget, which is how a fleet overshoots.
 */
export class BudgetStoreUnavailableError extends OaiBatchError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'budget_store_unavailable', 3, options);
  }
}

/**
 * An output file refused a write, a flush or a close (a full disk, a file
 * size limit, a vanished folder). The run stops (exit 1): what the files
 * accepted is kept, and --resume completes the rest once there is room.
 */
export class WriteError extends OaiBatchError {
  readonly path: string;
  constructor(path: string, cause: unknown) {
    const error = cause as NodeJS.ErrnoException;
    const reason = error?.code ? `${describeErrno(error.code, error.message)} (${error.code})` : String(error?.message ?? cause);
    super(`cannot write ${path}: ${reason}; what was written is kept, and --resume completes the rest once this is fixed`, 'write_failed', 1, { cause });
    this.path = path;
  }
}

function describeErrno(code: string, message: string): string {
  switch (code) {
    case 'ENOSPC':
      return 'no space left on the device';
    case 'EFBIG':
      return 'the file is larger than this process may write (ulimit -f)';
    case 'EDQUOT':
      return 'the disk quota is exhausted';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'the file system is read-only';
    case 'EIO':
      return 'an input/output error on the device';
    default:
      return message.replace(/^[A-Z]+: /, '');
  }
}

/** A 2xx answer whose body is not the JSON it should be, after the attempts ran out. */
export class InvalidResponseError extends OaiBatchError {
  readonly status: number;
  readonly requestId: string | null;
  constructor(status: number, requestId: string | null, message: string) {
    super(message, 'invalid_response', 1);
    this.status = status;
    this.requestId = requestId;
  }
}

export function errorObjectOf(body: unknown): APIErrorObject | undefined {
  if (body && typeof body === 'object' && 'error' in body) {
    const error = (body as { error: unknown }).error;
    if (error && typeof error === 'object') return error as APIErrorObject;
  }
  return undefined;
}
