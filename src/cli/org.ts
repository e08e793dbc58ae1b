// `oai-batch usage` and `oai-batch costs`: the organisation's spend from the
// Usage and Cost APIs (admin key), as a table with charts, CSV or JSON, an
// optional self-contained HTML page, and anomalies that can fail the command.
//
// flags → OrgCliOptions (pure, table tested) → fetch (src/org/fetch.ts) →
// render (src/org/format.ts, html.ts) → exit code 0, or 4 when
// --fail-on-anomaly is given and a day was flagged (DESIGN.md §3).

import type { Argv } from 'yargs';
import { ConfigError } from '../shared/errors.js';
import {
  BUCKET_WIDTHS,
  COSTS_SPEC,
  USAGE_KINDS,
  USAGE_SPECS,
  type BucketWidth,
  type FilterName,
  type GroupKey,
  type ReportSpec,
  type UsageKind,
} from '../org/kinds.js';
import { resolveRange, type TimeRange } from '../org/range.js';
import { defineCommand, type Args, type CliIO } from './command.js';
import {
  choiceFlag,
  connectionBuilder,
  connectionOptions,
  integerFlag,
  listFlag,
  numberFlag,
  optionalInteger,
  optionalString,
  type ConnectionOptions,
} from './flags.js';

/** Exit code when --fail-on-anomaly is given and a day was flagged (DESIGN.md §3). */
export const ANOMALY_EXIT_CODE = 4;

export interface OrgCliOptions {
  /** Which report: `usage` of one kind (`--kind`, default completions) or `costs`. */
  report: { name: 'usage'; kind: UsageKind } | { name: 'costs' };
  /** Unix seconds, end exclusive: `--start`/`--end` or `--days N` (default 30 days; 7 for 1h buckets, 1 for 1m). */
  range: TimeRange;
  /** `--bucket`: 1m, 1h or 1d (default; the only width of costs). */
  bucket: BucketWidth;
  /** `--group-by` keys valid for the report; default model (usage) or line_item (costs); `none` = []. */
  groupBy: GroupKey[];
  /** `--models`, `--project-ids`, `--api-key-ids`, `--user-ids`, where the report accepts them. */
  filters: Partial<Record<FilterName, string[]>>;
  /** Completions: true = Batch API usage only (`--batch`), false = without it (`--no-batch`), undefined = both. */
  batch: boolean | undefined;
  /** `--format`: table (default, with charts), csv or json. */
  format: 'table' | 'csv' | 'json';
  /** `--html FILE`: also write the self-contained HTML page there. */
  htmlPath: string | undefined;
  /** `--threshold`: robust score above which a day is an anomaly (default 3.5). */
  threshold: number;
  /** `--fail-on-anomaly`: exit 4 when a day is flagged. */
  failOnAnomaly: boolean;
  /** `--page-size`: buckets per page; default the API's maximum for the width. */
  pageSize: number | undefined;
  /** `--max-attempts` per page, 429 waits not counted (default 6, as `run`). */
  maxAttempts: number;
  /** `--timeout` per attempt, ms (flag in seconds, default 60). */
  timeoutMs: number;
  /** costs `--forecast`: also project this month's end (as of now, with the report's project/key filters). */
  forecast: boolean;
  /** `--base-url`/`--simulate` and the keys from the environment (OPENAI_ADMIN_KEY). */
  connection: ConnectionOptions;
}

/** Range when none is given: 30 days of daily buckets, 7 of hourly, 1 of minutes (keeps 1m reports to ~1,440 buckets). */
const DEFAULT_DAYS: Readonly<Record<BucketWidth, number>> = { '1d': 30, '1h': 7, '1m': 1 };

const FILTER_FLAGS: ReadonlyArray<[flag: string, filter: FilterName, describe: string]> = [
  ['models', 'models', 'only these models (comma-separated)'],
  ['project-ids', 'project_ids', 'only these projects (comma-separated ids)'],
  ['api-key-ids', 'api_key_ids', 'only these API keys (comma-separated key ids, not keys)'],
  ['user-ids', 'user_ids', 'only these users (comma-separated ids)'],
];

function commonBuilder(yargs: Argv, filters: readonly FilterName[], groupByHelp: string, daysHelp: string): Argv {
  let y = yargs
    .option('start', { type: 'string', describe: 'first day: YYYY-MM-DD (UTC midnight) or Unix seconds' })
    .option('end', { type: 'string', describe: 'end, exclusive: YYYY-MM-DD or Unix seconds (default now; without --start, the default days end here)' })
    .option('days', { type: 'number', describe: daysHelp })
    .option('group-by', { type: 'string', describe: groupByHelp });
  for (const [flag, filter, describe] of FILTER_FLAGS) {
    if (filters.includes(filter)) y = y.option(flag, { type: 'string', describe });
  }
  return connectionBuilder(
    y
      .option('format', { type: 'string', default: 'table', choices: ['table', 'csv', 'json'], describe: 'table (per-day totals, top groups, charts), csv or json (every row; see the README)' })
      .option('html', { type: 'string', describe: 'also write a self-contained HTML page with the charts and tables' })
      .option('threshold', { type: 'number', default: 3.5, describe: 'robust score above which a day is an anomaly' })
      .option('fail-on-anomaly', { type: 'boolean', default: false, describe: 'exit 4 when a day is flagged' })
      .option('page-size', { type: 'number', describe: 'buckets per page (default: the most the API allows)' })
      .option('max-attempts', { type: 'number', default: 6, describe: 'attempts per page; 429 waits not counted' })
      .option('timeout', { type: 'number', default: 60, describe: 'seconds per attempt' }),
  );
}

export function usageBuilder(yargs: Argv): Argv {
  return commonBuilder(
    yargs
      .option('kind', { type: 'string', default: 'completions', choices: [...USAGE_KINDS], describe: 'which usage endpoint' })
      .option('bucket', { type: 'string', default: '1d', choices: [...BUCKET_WIDTHS], describe: 'bucket width' })
      .option('batch', { type: 'boolean', describe: 'completions: --batch = Batch API usage only, --no-batch = without it' }),
    ['models', 'project_ids', 'api_key_ids', 'user_ids'],
    'model, project_id, api_key_id, user_id, batch (completions); none for no grouping (default model; project_id for vector_stores and code_interpreter_sessions)',
    'the N days that end now (default 30; 7 with --bucket 1h, 1 with 1m)',
  )
    .example('$0 usage --simulate --days 30', 'daily tokens by model, with charts and anomalies')
    .example('$0 usage --days 60 --group-by model,project_id --format csv > usage.csv', 'every row, for a spreadsheet')
    .example('$0 usage --simulate --days 30 --html usage.html', 'a page with the charts');
}

export function costsBuilder(yargs: Argv): Argv {
  return commonBuilder(
    yargs.option('forecast', {
      type: 'boolean',
      default: false,
      describe: "also project this month's total (as of now): spent so far + the rest at the trailing 7 days' mean, with a 90% range",
    }),
    COSTS_SPEC.filters,
    'line_item, project_id, api_key_id; none for no grouping (default line_item)',
    'the N days that end now (default 30; costs come in daily buckets only)',
  )
    .example('$0 costs --simulate --days 30', 'daily cost by line item, with charts and anomalies')
    .example('$0 costs --simulate --forecast --format json', "the report and this month's projected total")
    .example('$0 costs --days 2 --fail-on-anomaly', 'nightly: exit 4 when yesterday was unusual');
}

export function orgOptionsFromArgs(
  name: 'usage' | 'costs',
  args: Args,
  io: Pick<CliIO, 'env' | 'cwd'>,
  nowMs: number = Date.now(),
): OrgCliOptions {
  const kind = name === 'usage' ? choiceFlag(args, 'kind', USAGE_KINDS, 'completions') : undefined;
  const spec: ReportSpec = kind === undefined ? COSTS_SPEC : USAGE_SPECS[kind];
  const where = kind === undefined ? 'costs' : `usage --kind ${kind}`;
  const bucket = name === 'usage' ? choiceFlag(args, 'bucket', BUCKET_WIDTHS, '1d') : '1d';
  if (!spec.bucketWidths.includes(bucket)) throw new ConfigError(`Expected \`bucket\` to be one of ${spec.bucketWidths.join(', ')} for ${where}, got \`${bucket}\``);

  const filters: Partial<Record<FilterName, string[]>> = {};
  for (const [flag, filter] of FILTER_FLAGS) {
    const values = listFlag(args, flag);
    if (values === undefined) continue;
    if (!spec.filters.includes(filter)) throw new ConfigError(`--${flag} is not accepted by ${where} (it filters by ${spec.filters.join(', ')})`);
    filters[filter] = values;
  }
  const batch = args.batch === undefined ? undefined : args.batch === true;
  if (batch !== undefined && !spec.hasBatchFilter) throw new ConfigError(`--batch/--no-batch is accepted by usage --kind completions only, not by ${where}`);

  const pageLimit = spec.pageLimits[bucket];
  const pageSize = optionalInteger(args, 'page-size', 1);
  if (pageSize !== undefined && pageLimit && pageSize > pageLimit.max) {
    throw new ConfigError(`Expected \`page-size\` to be at most ${pageLimit.max} for ${bucket} buckets, got \`${pageSize}\``);
  }
  const format = choiceFlag(args, 'format', ['table', 'csv', 'json'] as const, 'table');

  return {
    report: kind === undefined ? { name: 'costs' } : { name: 'usage', kind },
    range: resolveRange({ start: args.start, end: args.end, days: args.days }, nowMs / 1000, DEFAULT_DAYS[bucket]),
    bucket,
    groupBy: groupByFlag(args, spec, where),
    filters,
    batch,
    format,
    htmlPath: optionalString(args, 'html'),
    threshold: numberFlag(args, 'threshold', 0, Infinity, 3.5),
    failOnAnomaly: args['fail-on-anomaly'] === true,
    pageSize,
    maxAttempts: integerFlag(args, 'max-attempts', 1, 6),
    timeoutMs: numberFlag(args, 'timeout', 0.001, Infinity, 60) * 1000,
    forecast: args.forecast === true,
    connection: connectionOptions(args, io.env),
  };
}

function groupByFlag(args: Args, spec: ReportSpec, where: string): GroupKey[] {
  const list = listFlag(args, 'group-by');
  if (list === undefined) return [...spec.defaultGroupBy];
  if (list.length === 1 && list[0] === 'none') return [];
  const keys: GroupKey[] = [];
  for (const key of list) {
    if (!(spec.groupKeys as readonly string[]).includes(key)) {
      throw new ConfigError(`Expected \`group-by\` to be among ${spec.groupKeys.join(', ')} (or none) for ${where}, got \`${key}\``);
    }
    if (!keys.includes(key as GroupKey)) keys.push(key as GroupKey);
  }
  return keys;
}

export async function executeOrgReport(options: OrgCliOptions, io: CliIO): Promise<number> {
  const [{ openConnection }, { createTransport }, { fetchOrgReport, fetchMonthForecast }, { viewsOf }, format] = await Promise.all([
    import('./connection.js'),
    import('../pipeline/send/transport.js'),
    import('../org/fetch.js'),
    import('../org/views.js'),
    import('../org/format.js'),
  ]);
  const connection = await openConnection(options.connection, { adminKey: true });
  const transport = createTransport(connection.transport);
  try {
    const built = await fetchOrgReport(
      transport,
      {
        report: options.report,
        range: options.range,
        bucket: options.bucket,
        groupBy: options.groupBy,
        filters: options.filters,
        batch: options.batch,
        pageSize: options.pageSize,
        threshold: options.threshold,
        timeoutMs: options.timeoutMs,
      },
      {
        maxAttempts: options.maxAttempts,
        signal: io.signal,
        onRetry: ({ reason, waitMs, attempt }) => io.stderr.write(`oai-batch: ${reason}; attempt ${attempt} in ${(waitMs / 1000).toFixed(1)} s\n`),
      },
    );
    const forecast = options.forecast
      ? await fetchMonthForecast(
          transport,
          { filters: options.filters, timeoutMs: options.timeoutMs },
          { maxAttempts: options.maxAttempts, signal: io.signal },
        )
      : undefined;
    const { report, spec } = built;
    const views = viewsOf(report, spec);
    const title = options.report.name === 'costs' ? 'Costs' : `Usage: ${options.report.kind}`;

    if (options.format === 'json') io.stdout.write(format.renderJson(report, forecast));
    else if (options.format === 'csv') {
      io.stdout.write(format.renderCsv(report, spec));
      // stdout stays one CSV table; what was flagged is said on stderr.
      for (const line of format.anomalyLines(built, spec, options.threshold)) io.stderr.write(`${line}\n`);
      if (forecast) for (const line of (await import('../org/forecast.js')).forecastSentences(forecast)) io.stderr.write(`${line}\n`);
    } else {
      const stdout = io.stdout as CliIO['stdout'] & { isTTY?: boolean; columns?: number };
      io.stdout.write(
        format.renderTable({
          title,
          built,
          spec,
          views,
          threshold: options.threshold,
          columns: stdout.columns && stdout.columns > 0 ? stdout.columns : 100,
          color: stdout.isTTY === true && !io.env.NO_COLOR,
          forecast,
        }),
      );
    }

    if (options.htmlPath !== undefined) {
      const [{ renderHtml }, { writeFileAtomic }, { resolve }] = await Promise.all([
        import('../org/html.js'),
        import('../pipeline/record/writer.js'),
        import('node:path'),
      ]);
      const path = resolve(io.cwd, options.htmlPath);
      await writeFileAtomic(path, renderHtml({ title, built, spec, views, threshold: options.threshold, generatedSec: Math.floor(Date.now() / 1000), forecast }));
      io.stderr.write(`oai-batch: wrote ${path}\n`);
    }
    return options.failOnAnomaly && report.anomalies.length > 0 ? ANOMALY_EXIT_CODE : 0;
  } finally {
    await transport.close();
    await connection.close();
  }
}

export const usageCommand = defineCommand<OrgCliOptions>({
  command: 'usage',
  describe: "the organisation's usage by day, model, project or key (Usage API, admin key), with anomalies",
  builder: usageBuilder,
  toOptions: (args, io) => orgOptionsFromArgs('usage', args, io),
  execute: executeOrgReport,
});

export const costsCommand = defineCommand<OrgCliOptions>({
  command: 'costs',
  describe: "the organisation's daily costs by line item or project (Costs API, admin key), with anomalies",
  builder: costsBuilder,
  toOptions: (args, io) => orgOptionsFromArgs('costs', args, io),
  execute: executeOrgReport,
});
