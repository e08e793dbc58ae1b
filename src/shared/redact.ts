// Keys never leave the process: the last line of defence scrubs any key that
// could have slipped into a message, log line or error record.

const MIN_SECRET_LENGTH = 8;

/** Replaces every occurrence of each secret in `text` with a fixed marker. */
export function redact(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = text;
  for (const secret of secrets) {
    if (secret && secret.length >= MIN_SECRET_LENGTH && out.includes(secret)) {
      out = out.split(secret).join('[redacted]');
    }
  }
  return out;
}

/**
 * A key as the API quotes it in a 401 ("Incorrect API key provided:
 * sk-proj-****…abcd"): part masked, but its visible ends are still the key's.
 */
const QUOTED_KEY = /\bsk-[A-Za-z0-9_-]*\*[A-Za-z0-9_*-]*/g;

/** An API message with any quoted key (masked or not, the part shown) replaced by a marker. */
export function maskQuotedKeys(message: string): string {
  return message.replace(QUOTED_KEY, 'sk-[redacted]');
}

/** A URL with any user name and password replaced by a marker (a proxy or Redis URL may carry them). */
export function redactUrlCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/i, '$1[redacted]@');
}
