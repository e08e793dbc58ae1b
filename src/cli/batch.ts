// `oai-batch batch <submit|status|wait|download|cancel> <input>`: the Batch
// API at half price, with the same input, results, errors and summary files
// as `run`. Flags → BatchCliOptions (pure), then one of five actions.
//
// --simulate starts a simulator inside this one command, and its batches end
// with the command; so `batch submit --simulate` runs the whole cycle
// (submit → wait → download) in one go, and the other actions refuse
// --simulate with a pointer to `oai-batch simulate` + --base-url.

import type { Argv, Options } from 'yargs';
import { ConfigError } from '../shared/errors.js';
import { DEFAULT_MAX_LINE_BYTES, ENDPOINTS, isEndpoint, type Endpoint } from '../shared/types.js';
import type { BatchEvent } from '../batch/session.js';
import type { BatchProgress } from '../batch/wait.js';
import { SIMULATED_BASE_URL, defaultManifestPath, type Manifest, type ManifestPart } from '../batch/manifest.js';
import { defineCommand, type Args, type CliIO } from './command.js';
import { cacheFlags, connectionBuilder, connectionOptions, defaultOutputName, integerFlag, numberFlag, optionalInteger, optionalNumber, optionalString, choiceFlag, type ConnectionOptions } from './flags.js';

export const BATCH_ACTIONS = ['submit', 'status', 'wait', 'download', 'cancel'] as const;
export type BatchAction = (typeof BATCH_ACTIONS)[number];


export interface BatchCliOptions {
  action: BatchAction;
  input: string;
  manifest: string;
  connection: ConnectionOptions;
  /** submit: endpoint of bare-form lines. */
  endpoint: Endpoint;
  maxLineBytes: number;
  /** submit: requests per part (≤ 50,000). */
  maxRequestsPerPart: number;
  /** submit: estimated input tokens the organisation may have enqueued per model, or undefined for unknown. */
  maxEnqueuedTokens: number | undefined;
  /** submit: wait until every part has ended (and submit the parts that wait for capacity). */
  wait: boolean;
  /** submit: wait, then download. */
  download: boolean;
  /** wait: seconds before giving up (exit 3); undefined = no limit. */
  timeoutSeconds: number | undefined;
  /** wait: first poll interval, seconds (grows while nothing changes). */
  pollSeconds: number;
  output: string;
  errors: string;
  summary: string;
  resume: boolean;
  overwrite: boolean;
  force: boolean;
  pricesPath: string | undefined;
  /** download: store the answers in the response cache (at their batch price), or undefined. */
  cachePath: string | undefined;
  format: 'table' | 'json';
  quiet: boolean;
}

/** One flag of `batch`: its yargs definition and the actions whose help shows it. */
interface BatchFlag {
  name: string;
  option: Options;
  /** Actions that use it; the others still parse it (to say where it belongs) but hide it from their help. */
  actions: readonly BatchAction[];
}

const BATCH_FLAGS: readonly BatchFlag[] = [
  { name: 'endpoint', actions: ['submit', 'wait'], option: { type: 'string', default: '/v1/chat/completions', describe: 'endpoint for bare-form lines' } },
  { name: 'max-line-bytes', actions: ['submit', 'wait'], option: { type: 'number', default: DEFAULT_MAX_LINE_BYTES, describe: 'longest accepted input line, bytes' } },
  { name: 'max-requests-per-part', actions: ['submit'], option: { type: 'number', default: 50_000, describe: 'requests per batch (the API allows 50,000)' } },
  { name: 'max-enqueued-tokens', actions: ['submit'], option: { type: 'number', describe: "your organisation's enqueued-token limit per model; later parts wait for capacity" } },
  { name: 'wait', actions: ['submit'], option: { type: 'boolean', default: false, describe: 'then wait until every part has ended' } },
  { name: 'download', actions: ['submit'], option: { type: 'boolean', default: false, describe: 'then wait and download (implied by --simulate)' } },
  { name: 'timeout', actions: ['submit', 'wait'], option: { type: 'number', describe: 'give up waiting after this many seconds (exit 3; the batches keep running)' } },
  { name: 'poll-interval', actions: ['submit', 'wait'], option: { type: 'number', default: 5, describe: 'first poll interval, seconds; grows while nothing changes' } },
  {
    name: 'output',
    actions: ['submit', 'download'],
    option: { alias: 'o', type: 'string', describe: 'results file (default: <input>.results.jsonl); submit leaves out what already succeeded there' },
  },
  { name: 'errors', actions: ['submit', 'wait', 'download'], option: { type: 'string', describe: 'errors file (default: <input>.errors.jsonl)' } },
  { name: 'summary', actions: ['submit', 'download'], option: { type: 'string', describe: 'summary JSON (default: <input>.summary.json)' } },
  { name: 'resume', actions: ['submit', 'download'], option: { type: 'boolean', default: false, describe: 'append to an existing results file, skipping what succeeded' } },
  { name: 'overwrite', actions: ['submit', 'download'], option: { type: 'boolean', default: false, describe: 'download: replace the results file; submit: replace an ended manifest' } },
  {
    name: 'force',
    actions: ['submit', 'download'],
    option: { type: 'boolean', default: false, describe: 'download --resume (or submit leaving out what succeeded) even though a line-N keyed input changed' },
  },
  { name: 'prices', actions: ['submit', 'download'], option: { type: 'string', describe: 'price table overrides (JSON)' } },
  {
    name: 'cache',
    actions: ['submit', 'download'],
    option: { type: 'string', describe: 'download: store the answers in the response cache [PATH] (at their batch price), for later runs with --cache' },
  },
  { name: 'format', actions: ['status'], option: { type: 'string', default: 'table', choices: ['table', 'json'], describe: 'a table, or the manifest as JSON' } },
];

const ACTION_HELP: Readonly<Record<BatchAction, { describe: string; epilog: string[]; examples: Array<[string, string]> }>> = {
  submit: {
    describe: 'split into batches (one endpoint and model each, ≤ 50,000 requests, ≤ 200 MB), upload and create them',
    epilog: [
      '<input>.batch.json records every part. Submitting again resumes: nothing is uploaded or created twice, ' +
        'also after a crash. --simulate runs submit → wait → download in one command.',
    ],
    examples: [
      ['$0 batch submit requests.jsonl', 'upload and create the batches'],
      ['$0 batch submit samples/chat.jsonl --simulate --overwrite', 'the whole cycle against the built-in simulator'],
    ],
  },
  status: { describe: 'a table of parts: status, request counts, errors', epilog: [], examples: [['$0 batch status requests.jsonl', 'where each part stands']] },
  wait: {
    describe: 'poll until every part has ended; creates parts waiting for token capacity',
    epilog: [],
    examples: [['$0 batch wait requests.jsonl --timeout 3600', 'poll until they end']],
  },
  download: {
    describe: 'merge the output and error files into the results, errors and summary files `run` writes',
    epilog: ['After failures, `oai-batch run <input> --resume` sends exactly what is missing.'],
    examples: [['$0 batch download requests.jsonl', 'results, errors and summary as `run` writes them']],
  },
  cancel: { describe: 'cancel every running batch; parts not yet created are never sent', epilog: [], examples: [['$0 batch cancel requests.jsonl', 'stop them']] },
};

/** `batch` alone: the flags every action shares, and the list of actions (each with its own --help). */
export function batchBuilder(yargs: Argv): Argv {
  return connectionBuilder(
    yargs
      .option('manifest', { type: 'string', describe: 'the batch manifest (default: <input>.batch.json)' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress display' })
      .epilog(
        [
          'Submitting again resumes: nothing is uploaded or created twice, also after a crash.',
          'After failures, `oai-batch run <input> --resume` sends exactly what is missing.',
          '--simulate: `batch submit --simulate` runs submit → wait → download in one command.',
          'Step by step: run `oai-batch simulate` elsewhere, then pass',
          '--base-url http://127.0.0.1:8787/v1 to each command.',
        ].join('\n'),
      )
      .example('$0 batch submit requests.jsonl --help', 'the flags of one action'),
  );
}

/** One action's flags: those it uses are listed in its help; the others parse (so toOptions can say where they belong) but stay hidden. */
export function batchActionBuilder(action: BatchAction): (yargs: Argv) => Argv {
  return (yargs) => {
    let y = yargs.positional('input', { type: 'string', describe: 'the JSONL request file (the same file `run` takes)' });
    for (const flag of BATCH_FLAGS) y = y.option(flag.name, { ...flag.option, hidden: !flag.actions.includes(action) });
    const help = ACTION_HELP[action];
    if (help.epilog.length > 0) y = y.epilog(help.epilog.join('\n'));
    for (const [command, describe] of help.examples) y = y.example(command, describe);
    return y;
  };
}

/** Flags that only make sense for some actions: naming them elsewhere is a mistake worth reporting. */
const ACTION_FLAGS: Record<string, readonly BatchAction[]> = {
  'max-enqueued-tokens': ['submit'],
  wait: ['submit'],
  download: ['submit'],
  timeout: ['submit', 'wait'],
  output: ['submit', 'download'],
  summary: ['submit', 'download'],
  resume: ['submit', 'download'],
  force: ['submit', 'download'],
  prices: ['submit', 'download'],
  cache: ['submit', 'download'],
};

export function batchOptionsFromArgs(args: Args, io: Pick<CliIO, 'env' | 'cwd'>): BatchCliOptions {
  const action = choiceFlag(args, 'action', BATCH_ACTIONS, 'status');
  const input = optionalString(args, 'input');
  if (input === undefined) throw new ConfigError('Expected an input file');
  if (input === '-') throw new ConfigError('batch needs an input file, not stdin: later commands (wait, download) read the input again');
  for (const [flag, actions] of Object.entries(ACTION_FLAGS)) {
    const value = args[flag];
    const isSet = value !== undefined && value !== false;
    if (isSet && !actions.includes(action)) throw new ConfigError(`--${flag} applies to \`batch ${actions.join('` and `batch ')}\`, not \`batch ${action}\``);
  }
  const endpoint = args.endpoint ?? '/v1/chat/completions';
  if (!isEndpoint(endpoint)) throw new ConfigError(`Expected \`endpoint\` to be one of ${ENDPOINTS.join(', ')}, got \`${String(endpoint)}\``);
  const resume = args.resume === true;
  const overwrite = args.overwrite === true;
  if (resume && overwrite) throw new ConfigError('--resume and --overwrite cannot be used together');
  const connection = connectionOptions(args, io.env);
  if (connection.simulate && action !== 'submit') {
    throw new ConfigError(
      `--simulate starts a simulator for this one command, which knows no batches from earlier commands. ` +
        '`oai-batch batch submit <input> --simulate` runs the whole cycle (submit → wait → download) in one go; ' +
        'for the step-by-step cycle, run `oai-batch simulate` in another terminal and pass --base-url http://127.0.0.1:8787/v1.',
    );
  }
  const maxRequestsPerPart = integerFlag(args, 'max-requests-per-part', 1, 50_000);
  if (maxRequestsPerPart > 50_000) throw new ConfigError(`Expected \`max-requests-per-part\` to be an integer from 1 to 50000, got \`${maxRequestsPerPart}\``);
  const download = args.download === true || (connection.simulate && action === 'submit');
  return {
    action,
    input,
    manifest: optionalString(args, 'manifest') ?? defaultManifestPath(input),
    connection,
    endpoint,
    maxLineBytes: integerFlag(args, 'max-line-bytes', 1, DEFAULT_MAX_LINE_BYTES),
    maxRequestsPerPart,
    maxEnqueuedTokens: optionalInteger(args, 'max-enqueued-tokens', 1),
    wait: args.wait === true || download,
    download,
    timeoutSeconds: optionalNumber(args, 'timeout', 0),
    // The in-process simulator finishes a batch in about a second: poll it often.
    pollSeconds: connection.simulate ? Math.min(0.1, numberFlag(args, 'poll-interval', 0.001, 3600, 5)) : numberFlag(args, 'poll-interval', 0.001, 3600, 5),
    output: optionalString(args, 'output') ?? defaultOutputName(input, 'results'),
    errors: optionalString(args, 'errors') ?? defaultOutputName(input, 'errors'),
    summary: optionalString(args, 'summary') ?? defaultOutputName(input, 'summary'),
    resume,
    overwrite,
    force: args.force === true,
    pricesPath: optionalString(args, 'prices'),
    cachePath: cacheFlags(args, io.env).cachePath,
    format: choiceFlag(args, 'format', ['table', 'json'] as const, 'table'),
    quiet: args.quiet === true,
  };
}

export async function executeBatch(options: BatchCliOptions, io: CliIO): Promise<number> {
  const [{ openConnection }, { createTransport }, { BatchApi }] = await Promise.all([
    import('./connection.js'),
    import('../pipeline/send/transport.js'),
    import('../batch/api.js'),
  ]);
  // The in-process simulator steps batches along every 200 ms: a cycle takes about a second.
  const connection = await openConnection(options.connection, { apiKey: true }, { batch: { stepMs: 200 } });
  const transport = createTransport({ ...connection.transport, connections: 4 });
  // A second Ctrl-C abandons the call in flight; the manifest stays resumable (uploads and creates are found again).
  const api = new BatchApi(transport, {}, io.force);
  const view = createBatchView(io.stderr, options.quiet);
  let unlock = async (): Promise<void> => {};
  try {
    // Every action but status rewrites the manifest: one at a time.
    if (options.action !== 'status') unlock = await (await import('../shared/lock.js')).lockFile(options.manifest, 'manifest_locked');
    switch (options.action) {
      case 'submit':
        return await submitAction(options, io, api, connection.transport.baseUrl, view);
      case 'status':
        return await statusAction(options, io, api);
      case 'wait':
        return await waitAction(options, io, api, view);
      case 'download':
        return await downloadAction(options, io, api);
      case 'cancel':
        return await cancelAction(options, io, api, view);
    }
  } catch (error) {
    if (!io.force.aborted) throw error;
    view.say(`stopped at once; run the same command again to continue (${options.manifest} records what was sent)`);
    return 3;
  } finally {
    view.stop();
    await unlock();
    await transport.close().catch(() => {});
    await connection.close();
  }
}

type Api = import('../batch/api.js').BatchApi;

async function submitAction(options: BatchCliOptions, io: CliIO, api: Api, baseUrl: string, view: BatchView): Promise<number> {
  const [{ submitBatches }, { readManifest }, { checkOutputs }, { rm }] = await Promise.all([
    import('../batch/submit.js'),
    import('../batch/manifest.js'),
    import('../pipeline/record/outputs.js'),
    import('node:fs/promises'),
  ]);
  // Found out now, not after the batches ran: the results file must be free (or --resume/--overwrite given).
  if (options.download) await checkOutputs({ ...options, protect: [options.manifest] });
  const manifestBase = options.connection.simulate ? SIMULATED_BASE_URL : baseUrl;
  if (options.connection.simulate) {
    // A manifest from an earlier --simulate run points at batches that ended with that command: start afresh.
    const existing = await readManifest(options.manifest);
    if (existing?.base_url === SIMULATED_BASE_URL) await rm(options.manifest, { force: true });
  }
  const result = await submitBatches(api, {
    input: options.input,
    errors: options.errors,
    manifestPath: options.manifest,
    endpoint: options.endpoint,
    maxLineBytes: options.maxLineBytes,
    limits: {
      maxRequests: options.maxRequestsPerPart,
      maxEmbeddingInputs: 50_000,
      maxBytes: 200_000_000,
      maxEnqueuedTokens: options.maxEnqueuedTokens ?? null,
    },
    baseUrl: manifestBase,
    overwrite: options.overwrite,
    // What a partial `run` already did is not bought again; unless --download --overwrite will replace those results.
    skipSucceeded: options.download && options.overwrite ? null : { results: options.output, summary: options.summary, force: options.force },
    signal: io.signal,
    session: { onEvent: view.onEvent },
  });
  const manifest = result.session.manifest;
  if (result.isResumed) view.say(`resumed ${options.manifest}: parts already uploaded or created were not sent again`);
  if (result.skipped > 0) {
    const skipped = manifest.skipped;
    view.say(
      `left out ${result.skipped} request(s) that already succeeded in ${skipped?.results ?? options.output}` +
        (result.isResumed ? ' (recorded when the manifest was made)' : '') +
        `; download with --resume to keep them`,
    );
  }
  if (result.inputProblems > 0) view.say(`${result.inputProblems} input line(s) cannot be sent; see ${options.errors}`);
  if (result.isInterrupted) {
    view.say(`interrupted: submit again to send the remaining parts (${options.manifest} records what was sent)`);
    return 3;
  }
  if (!options.wait) {
    if (!options.quiet) io.stderr.write(partsTable(manifest));
    view.say(`next: oai-batch batch wait ${options.input}, then oai-batch batch download ${options.input}${manifest.skipped ? ' --resume' : ''}`);
    return 0;
  }
  const waited = await waitLoop(options, io, result.session, view);
  if (waited !== 0 && waited !== 2) return waited;
  if (!options.download) return waited;
  return downloadAction(options, io, api, manifestBase);
}

async function statusAction(options: BatchCliOptions, io: CliIO, api: Api): Promise<number> {
  // Read-only: a wait or cancel may be working on the manifest meanwhile.
  const session = await openSession(options, api, undefined, true);
  await session.refresh();
  if (options.format === 'json') io.stdout.write(JSON.stringify(session.manifest, null, 2) + '\n');
  else io.stdout.write(partsTable(session.manifest));
  return 0;
}

async function waitAction(options: BatchCliOptions, io: CliIO, api: Api, view: BatchView): Promise<number> {
  let session = await openSession(options, api, view);
  if (session.needsUpload()) {
    // A submit stopped before every part was uploaded: finish it first (it resumes from the manifest).
    const { submitBatches } = await import('../batch/submit.js');
    const result = await submitBatches(api, {
      input: options.input,
      errors: options.errors,
      manifestPath: options.manifest,
      endpoint: options.endpoint,
      maxLineBytes: options.maxLineBytes,
      limits: { maxRequests: 50_000, maxEmbeddingInputs: 50_000, maxBytes: 200_000_000, maxEnqueuedTokens: null },
      baseUrl: session.manifest.base_url,
      overwrite: false,
      signal: io.signal,
      session: { onEvent: view.onEvent },
    });
    session = result.session;
  }
  return waitLoop(options, io, session, view);
}

async function waitLoop(options: BatchCliOptions, io: CliIO, session: import('../batch/session.js').BatchSession, view: BatchView): Promise<number> {
  const { waitForBatches } = await import('../batch/wait.js');
  const outcome = await waitForBatches(session, {
    pollMs: options.pollSeconds * 1000,
    ...(options.timeoutSeconds === undefined ? {} : { timeoutMs: options.timeoutSeconds * 1000 }),
    signal: io.signal,
    onProgress: view.onProgress,
    onPollError: (error) => view.say(`polling failed (${error.message}); trying again`),
  });
  view.stop();
  if (!options.quiet) io.stderr.write(partsTable(session.manifest));
  if (outcome === 'timeout') {
    view.say(`--timeout ${options.timeoutSeconds} s ran out; the batches keep running: run \`oai-batch batch wait ${options.input}\` again`);
    return 3;
  }
  if (outcome === 'interrupted') {
    view.say('interrupted; the batches keep running');
    return 3;
  }
  const bad = session.manifest.parts.some((part) => part.status !== 'completed' || (part.request_counts?.failed ?? 0) > 0);
  return bad ? 2 : 0;
}

async function downloadAction(options: BatchCliOptions, io: CliIO, api: Api, baseUrl?: string): Promise<number> {
  const [{ downloadResults }, { loadPriceTable }, { summaryTable }] = await Promise.all([
    import('../batch/download.js'),
    import('../shared/price-file.js'),
    import('./progress.js'),
  ]);
  const { summary, exitCode } = await downloadResults(api, {
    input: options.input,
    manifestPath: options.manifest,
    output: options.output,
    errors: options.errors,
    summary: options.summary,
    resume: options.resume,
    overwrite: options.overwrite,
    force: options.force,
    prices: loadPriceTable(options.pricesPath),
    baseUrl: baseUrl ?? options.connection.baseUrl,
    cachePath: options.cachePath,
  });
  const columns = io.stderr.isTTY === true && (io.stderr.columns ?? 0) > 0 ? io.stderr.columns : undefined;
  if (!options.quiet) io.stderr.write(summaryTable(summary, { results: options.output, errors: options.errors, summary: options.summary }, columns));
  return exitCode;
}

async function cancelAction(options: BatchCliOptions, io: CliIO, api: Api, view: BatchView): Promise<number> {
  const session = await openSession(options, api, view);
  await session.cancel();
  io.stderr.write(partsTable(session.manifest));
  view.say(`cancelling; \`oai-batch batch wait ${options.input}\` waits until they have stopped, then \`batch download\` keeps what finished`);
  return 0;
}

/** The session over an existing manifest, checked against this input and API. */
async function openSession(options: BatchCliOptions, api: Api, view?: BatchView, isReadOnly = false): Promise<import('../batch/session.js').BatchSession> {
  const [{ readManifest }, { BatchSession }, { checkManifestMatches }, { fingerprintFile }, { InputError }] = await Promise.all([
    import('../batch/manifest.js'),
    import('../batch/session.js'),
    import('../batch/submit.js'),
    import('../shared/fingerprint.js'),
    import('../shared/errors.js'),
  ]);
  const manifest = await readManifest(options.manifest);
  if (!manifest) {
    throw new InputError(`no batch manifest at ${options.manifest}: submit the input first with \`oai-batch batch submit ${options.input}\``, 'no_manifest');
  }
  const fingerprint = await fingerprintFile(options.input).catch((error: unknown) => {
    throw new InputError(`cannot read input ${options.input}: ${(error as Error).message}`, 'input_unreadable', { cause: error });
  });
  await checkManifestMatches(manifest, options.manifest, options.input, fingerprint, options.connection.baseUrl);
  return new BatchSession(options.manifest, manifest, api, { isReadOnly, ...(view ? { onEvent: view.onEvent } : {}) });
}

// ---- display ---------------------------------------------------------------

interface BatchView {
  onEvent(event: BatchEvent): void;
  onProgress(progress: BatchProgress): void;
  say(line: string): void;
  stop(): void;
}

type ErrStream = CliIO['stderr'];

/** Non-TTY: a line per event and per change of the status counts (at least every minute). TTY: an ora spinner. */
export function createBatchView(stderr: ErrStream, quiet: boolean): BatchView {
  if (quiet) return { onEvent: () => {}, onProgress: () => {}, say: () => {}, stop: () => {} };
  const isTerminal = stderr.isTTY === true && (stderr.columns ?? 0) > 0;
  let spinner: import('ora').Ora | null = null;
  let isStopped = false;
  let latest = '';
  let lastStatuses = '';
  let lastPrintedAt = 0;
  const say = (line: string): void => {
    if (spinner) spinner.clear();
    stderr.write(`oai-batch: ${line}\n`);
    if (spinner) spinner.render();
  };
  let isSpinnerLoading = false;
  const startSpinner = (): void => {
    isSpinnerLoading = true;
    void import('ora').then(({ default: ora }) => {
      // The wait may have ended while ora loaded: a spinner started now would keep the process alive.
      if (!isStopped) spinner = ora({ stream: stderr as NodeJS.WritableStream, text: latest, discardStdin: false }).start();
    });
  };
  return {
    onEvent(event) {
      switch (event.type) {
        case 'uploaded':
          say(`part ${event.part}: ${event.isReused ? 'found its earlier upload' : 'uploaded'} ${event.fileId}`);
          break;
        case 'created':
          say(`part ${event.part}: ${event.isReused ? 'found its earlier batch' : 'created'} ${event.batchId}`);
          break;
        case 'waiting_for_capacity':
          say(`part ${event.part} (${event.model}) waits: ${event.enqueuedTokens} tokens, ${Math.max(0, event.availableTokens)} of the enqueued-token limit free`);
          break;
        case 'refused':
          say(`part ${event.part}: refused for the enqueued-token limit; submitted again when capacity frees (${event.message})`);
          break;
        case 'cancel_requested':
          say(`part ${event.part}: ${event.batchId ? `cancelling ${event.batchId}` : 'cancelled before it was sent'}`);
          break;
        case 'status':
          break;
      }
    },
    onProgress(progress) {
      latest = progressLine(progress);
      if (isTerminal) {
        if (spinner) spinner.text = latest;
        else if (!isSpinnerLoading && !isStopped) startSpinner();
        return;
      }
      // Off a terminal: a line when a part changes status, else at most one every 10 s.
      const statuses = JSON.stringify(progress.byStatus);
      if (statuses !== lastStatuses || Date.now() - lastPrintedAt >= PLAIN_INTERVAL_MS) {
        lastStatuses = statuses;
        lastPrintedAt = Date.now();
        stderr.write(`oai-batch: ${latest}\n`);
      }
    },
    say,
    stop() {
      isStopped = true;
      if (spinner) spinner.stop();
      spinner = null;
    },
  };
}

/** Off a terminal, progress lines come at most this often while no part changes status. */
const PLAIN_INTERVAL_MS = 10_000;

export function progressLine(p: BatchProgress): string {
  const statuses = Object.entries(p.byStatus)
    .map(([status, n]) => `${n} ${status}`)
    .join(', ');
  const done = p.requests.completed + p.requests.failed;
  return `parts: ${statuses} · requests ${done.toLocaleString('en-US')}/${p.planned.toLocaleString('en-US')} done (${p.requests.failed.toLocaleString('en-US')} failed) · ${Math.round(p.elapsedSeconds)} s elapsed`;
}

/** The parts as a table: part, endpoint, model, lines, status, request counts, batch id, errors. */
export function partsTable(manifest: Manifest): string {
  const header = ['part', 'endpoint', 'model', 'lines', 'requests', 'status', 'done', 'failed', 'batch', 'errors'];
  const rows = manifest.parts.map((part) => [
    String(part.part),
    part.endpoint,
    part.model,
    `${part.first_line}–${part.last_line}`,
    String(part.requests),
    statusOf(part),
    part.request_counts ? String(part.request_counts.completed) : '–',
    part.request_counts ? String(part.request_counts.failed) : '–',
    part.batch_id ?? '–',
    errorsOf(part),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const format = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ').trimEnd();
  const lines = [format(header), ...rows.map(format)];
  if (manifest.parts.length === 0) lines.push('(no parts: the input has no request that can be sent)');
  if (manifest.input_problems > 0) lines.push(`${manifest.input_problems} input line(s) cannot be sent (see the errors file)`);
  return lines.join('\n') + '\n';
}

function statusOf(part: ManifestPart): string {
  if (part.state === 'submitted') return part.status ?? 'submitted';
  if (part.state === 'uploaded' && part.previous_batches.length > 0) return 'waiting (refused: token limit)';
  if (part.state === 'uploaded') return 'waiting';
  return part.state;
}

function errorsOf(part: ManifestPart): string {
  if (part.errors.length === 0) return '';
  const first = part.errors[0];
  const more = part.errors.length > 1 ? ` (+${part.errors.length - 1} more)` : '';
  return `${first?.code}${first?.line != null ? ` line ${first.line}` : ''}: ${first?.message}${more}`;
}

export const batchCommand = defineCommand<BatchCliOptions>({
  command: 'batch',
  describe: 'the Batch API at half price: submit | status | wait | download | cancel, with the same files as run',
  builder: batchBuilder,
  actions: BATCH_ACTIONS.map((action) => ({ name: action, command: `${action} <input>`, describe: ACTION_HELP[action].describe, builder: batchActionBuilder(action) })),
  toOptions: batchOptionsFromArgs,
  execute: executeBatch,
});
