// Per test: a fresh temporary folder, and a simulator the test may start;
// both are removed after it. Call once at the top of a test file.

import { afterEach, beforeEach } from 'vitest';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/sim/server.js';
import { tempDir } from './files.js';

type TempDir = Awaited<ReturnType<typeof tempDir>>;

export interface TestFixture {
  /** The current test's folder. */
  dir: Pick<TempDir, 'path' | 'file'>;
  /** Starts the current test's simulator (its key unless `options.apiKey` says otherwise). */
  simulator(options?: SimulatorOptions): Promise<Simulator>;
}

export function perTestFixture(apiKey: string | null): TestFixture {
  let current: TempDir | null = null;
  let sim: Simulator | null = null;
  const folder = (): TempDir => {
    if (!current) throw new Error('perTestFixture: no test is running');
    return current;
  };
  beforeEach(async () => {
    current = await tempDir();
  });
  afterEach(async () => {
    await sim?.close();
    sim = null;
    await current?.remove();
    current = null;
  });
  return {
    dir: {
      get path() {
        return folder().path;
      },
      file: (name) => folder().file(name),
    },
    async simulator(options = {}) {
      sim = await startSimulator({ apiKey, ...options });
      return sim;
    },
  };
}
