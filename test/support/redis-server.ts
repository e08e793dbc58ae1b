// A real redis-server for tests: Debian's package, started on a free loopback
// port (asked of the OS), nothing saved to disk, stopped and started again at
// will (a Redis that dies and comes back empty), killed when the test ends.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { createClient } from 'redis';

export interface RedisServer {
  port: number;
  url: string;
  /** Deletes every key. */
  flush(): Promise<void>;
  /** Every key, for assertions on names and TTLs. */
  keys(): Promise<string[]>;
  /** Milliseconds until `key` expires (-1 none, -2 no such key). */
  pttl(key: string): Promise<number>;
  /** Stops the server (its data is lost, as in a crash without persistence). */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  /** Stops it for good. */
  close(): Promise<void>;
}

/** A free loopback TCP port: bind port 0, read what the OS gave, let it go. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

export async function startRedisServer(options: { password?: string } = {}): Promise<RedisServer> {
  const port = await freePort();
  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`;
  const url = `redis://${auth}127.0.0.1:${port}`;
  let child: ChildProcess | null = null;

  const start = async (): Promise<void> => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    if (options.password !== undefined) args.push('--requirepass', options.password);
    const process = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = process;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (/Ready to accept connections/.test(output)) resolve();
      };
      process.stdout?.on('data', onData);
      process.stderr?.on('data', onData);
      process.once('error', reject);
      process.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output.slice(-500)}`)));
    });
  };
  const stop = async (): Promise<void> => {
    const process = child;
    child = null;
    if (!process || process.exitCode !== null) return;
    const exited = once(process, 'exit');
    process.kill('SIGKILL');
    await exited;
  };
  const newClient = () => createClient({ url });
  const withClient = async <T>(use: (client: ReturnType<typeof newClient>) => Promise<T>): Promise<T> => {
    const client = newClient();
    client.on('error', () => {});
    await client.connect();
    try {
      return await use(client);
    } finally {
      client.destroy();
    }
  };

  await start();
  return {
    port,
    url,
    flush: () => withClient(async (c) => void (await c.flushAll())),
    keys: () => withClient((c) => c.keys('*')),
    pttl: (key) => withClient((c) => c.pTTL(key)),
    stop,
    start,
    close: stop,
  };
}
