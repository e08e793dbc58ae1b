// The error answers of the simulator, worded as OpenAI words them
// (OPENAI-API.md §1.3 and §4).
//
// In:  what went wrong (and the request id, limits, model).  Out: an error
//      object `{message, type, param, code}` or, for a 502, an HTML page.
// Owns every message text, so clients are tested against the real shapes.

export interface ApiErrorObject {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

export function apiError(type: string, code: string | null, message: string, param: string | null = null): ApiErrorObject {
  return { message, type, param, code };
}

const RATE_LIMITS_URL = 'https://platform.openai.com/account/rate-limits';
const API_KEYS_URL = 'https://platform.openai.com/account/api-keys';
/** The organisation every simulator answer names. */
export const SIM_ORGANIZATION = 'org-sim';

export function missingKeyError(): ApiErrorObject {
  return apiError(
    'invalid_request_error',
    'invalid_api_key',
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth " +
      '(i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you\'re accessing the API ' +
      `from your browser and are prompted for a username. You can obtain an API key from ${API_KEYS_URL}.`,
  );
}

export function incorrectKeyError(key: string): ApiErrorObject {
  return apiError(
    'invalid_request_error',
    'invalid_api_key',
    `Incorrect API key provided: ${maskKey(key)}. You can find your API key at ${API_KEYS_URL}.`,
  );
}

/**
 * A key as OpenAI shows it in errors: a head and a tail around `*****`, never
 * the whole key. Real keys (~51+ characters) show 8 and 4 characters; short
 * keys show proportionally less, so at least half stays hidden
 * (`sk-wrong-wrong-wrong` → `sk-wro*****ong`).
 */
export function maskKey(key: string): string {
  const head = Math.min(8, Math.floor(key.length / 3));
  const tail = Math.min(4, Math.floor(key.length / 6));
  return `${key.slice(0, head)}*****${tail > 0 ? key.slice(-tail) : ''}`;
}

export function requestsLimitError(model: string, limit: number, used: number, waitMs: string): ApiErrorObject {
  return apiError(
    'requests',
    'rate_limit_exceeded',
    `Rate limit reached for ${model} in organization ${SIM_ORGANIZATION} on requests per min (RPM): ` +
      `Limit ${limit}, Used ${used}, Requested 1. Please try again in ${waitMs}. Visit ${RATE_LIMITS_URL} to learn more.`,
  );
}

export function tokensLimitError(model: string, limit: number, used: number, requested: number, waitMs: string): ApiErrorObject {
  return apiError(
    'tokens',
    'rate_limit_exceeded',
    `Rate limit reached for ${model} in organization ${SIM_ORGANIZATION} on tokens per min (TPM): ` +
      `Limit ${limit}, Used ${used}, Requested ${requested}. Please try again in ${waitMs}. Visit ${RATE_LIMITS_URL} to learn more.`,
  );
}

export function requestTooLargeError(model: string, limit: number, requested: number): ApiErrorObject {
  return apiError(
    'tokens',
    'rate_limit_exceeded',
    `Request too large for ${model} in organization ${SIM_ORGANIZATION} on tokens per min (TPM): ` +
      `Limit ${limit}, Requested ${requested}. The input or output tokens must be reduced in order to run successfully. ` +
      `Visit ${RATE_LIMITS_URL} to learn more.`,
  );
}

export function insufficientQuotaError(): ApiErrorObject {
  return apiError(
    'insufficient_quota',
    'insufficient_quota',
    'You exceeded your current quota, please check your plan and billing details. For more information on this error, ' +
      'read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.',
  );
}

export function serverError(requestId: string): ApiErrorObject {
  return apiError(
    'server_error',
    null,
    'The server had an error processing your request. Sorry about that! You can retry your request, or contact us ' +
      'through our help center at help.openai.com if you keep seeing this error. ' +
      `(Please include the request ID ${requestId} in your email.)`,
  );
}

export function overloadedError(requestId: string): ApiErrorObject {
  return apiError(
    'server_error',
    null,
    'That model is currently overloaded with other requests. You can retry your request, or contact us through our ' +
      `help center at help.openai.com if the error persists. (Please include the request ID ${requestId} in your message.)`,
  );
}

/** What a proxy in front of the API sends when the upstream fails: HTML, not JSON. */
export const BAD_GATEWAY_HTML =
  '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n' +
  '<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n';

export function modelNotFoundError(model: string): ApiErrorObject {
  return apiError(
    'invalid_request_error',
    'model_not_found',
    `The model \`${model}\` does not exist or you do not have access to it.`,
  );
}

export function forbiddenError(): ApiErrorObject {
  return apiError('request_forbidden', 'unsupported_country_region_territory', 'Country, region, or territory not supported');
}

/** The 400 fault: the prompt does not fit the model's context window. */
export function contextLengthError(param: string, promptTokens: number): ApiErrorObject {
  const limit = 128_000;
  return apiError(
    'invalid_request_error',
    'context_length_exceeded',
    `This model's maximum context length is ${limit} tokens. However, your messages resulted in ` +
      `${limit + 1 + promptTokens} tokens. Please reduce the length of the messages.`,
    param,
  );
}

export function invalidJsonError(): ApiErrorObject {
  return apiError(
    'invalid_request_error',
    null,
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library " +
      'correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble ' +
      'figuring out how to fix this, please contact us through our help center at help.openai.com.)',
  );
}

export function invalidUrlError(method: string, path: string): ApiErrorObject {
  return apiError('invalid_request_error', null, `Invalid URL (${method} ${path})`);
}

export function methodNotAllowedError(method: string, path: string): ApiErrorObject {
  return apiError('invalid_request_error', null, `Invalid method for URL (${method} ${path})`);
}
