// Observers of a run: Prometheus metrics, JSON logs, the HTML report.
// (Filled in by the observability work; text mode needs none of them.)

import { ConfigError } from '../core/errors.js';
import type { EventListener } from '../core/events.js';
import type { Summary } from '../core/types.js';
import type { CliIO } from './command.js';
import type { RunCliOptions } from './run.js';

export async function attachRunObservers(
  options: RunCliOptions,
  _io: CliIO,
  _listeners: EventListener[],
): Promise<{ finish(summary: Summary): Promise<void>; close(): Promise<void> }> {
  if (options.metricsPort !== undefined || options.logFormat === 'json' || options.reportPath !== undefined) {
    throw new ConfigError('--metrics-port, --log-format json and --report are not available yet');
  }
  return { finish: async () => {}, close: async () => {} };
}
