// The CLI's last word on a failure, as a JSON log line: with `--log-format json`
// nothing but JSON may reach stderr, the top-level error included.
//
// In:  the argv and the (already redacted) message.  Out: one line shaped like
// the pino lines of logs.ts ({level, time, event: "error", ...}). No pino here:
// main.ts imports this at start-up, so it must stay tiny.

/** True when argv asks for JSON logs (`--log-format json` or `--log-format=json`). */
export function wantsJsonLogs(argv: readonly string[]): boolean {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') return false;
    if (arg === '--log-format=json' || arg === '--logFormat=json') return true;
    if ((arg === '--log-format' || arg === '--logFormat') && argv[i + 1] === 'json') return true;
  }
  return false;
}

export function jsonErrorLine(message: string, code: string, exitCode: number, now: Date = new Date()): string {
  return JSON.stringify({ level: 'error', time: now.toISOString(), event: 'error', code, exit_code: exitCode, msg: message }) + '\n';
}
