// Turns connection flags into transport options: a real base URL and keys,
// or (with --simulate) a simulator started in this process on 127.0.0.1.

import { ConfigError } from '../shared/errors.js';
import type { TransportOptions } from '../pipeline/send/transport.js';
import { DEFAULT_BASE_URL } from '../shared/types.js';
import type { SimulatorOptions } from '../sim/server.js';
import type { ConnectionOptions } from './flags.js';

export interface OpenConnection {
  transport: TransportOptions;
  /** Stops the in-process simulator, if one was started. */
  close(): Promise<void>;
}

/** Key the in-process simulator accepts on API paths; not a secret. */
const SIM_API_KEY = 'sk-sim-local';
const SIM_ADMIN_KEY = 'sk-admin-sim';

export async function openConnection(
  connection: ConnectionOptions,
  need: { apiKey?: boolean; adminKey?: boolean },
  simulatorOptions: SimulatorOptions = {},
): Promise<OpenConnection> {
  if (connection.simulate) {
    const { startSimulator } = await import('../sim/server.js');
    const sim = await startSimulator({ apiKey: SIM_API_KEY, adminKey: SIM_ADMIN_KEY, ...simulatorOptions });
    return {
      transport: { baseUrl: sim.url, apiKey: SIM_API_KEY, adminKey: SIM_ADMIN_KEY },
      close: () => sim.close(),
    };
  }
  const isOpenAI = connection.baseUrl.replace(/\/+$/, '') === DEFAULT_BASE_URL;
  if (need.apiKey && !connection.apiKey && isOpenAI) {
    throw new ConfigError('OPENAI_API_KEY is not set. Export your key, or try the built-in simulator with --simulate.');
  }
  if (need.adminKey && !connection.adminKey) {
    throw new ConfigError(
      'OPENAI_ADMIN_KEY is not set: the Usage and Cost APIs need an organisation admin key (platform.openai.com/settings/organization/admin-keys). Try --simulate to see a report without one.',
    );
  }
  return {
    transport: {
      baseUrl: connection.baseUrl,
      apiKey: connection.apiKey,
      adminKey: connection.adminKey,
      organization: connection.organization,
      project: connection.project,
    },
    close: async () => {},
  };
}
