// What the organisation Usage and Cost APIs accept and return, per report
// kind (OPENAI-API.md §5–6): path, metric fields, group_by keys, filters,
// bucket widths and page-size limits.
//
// In: nothing (constants).  Out: the specs the CLI validates flags against,
// the client queries with and the simulator answers by.
// Owns these API facts, so they are written down once.

export const USAGE_KINDS = [
  'completions',
  'embeddings',
  'moderations',
  'images',
  'audio_speeches',
  'audio_transcriptions',
  'vector_stores',
  'code_interpreter_sessions',
] as const;
export type UsageKind = (typeof USAGE_KINDS)[number];

export const BUCKET_WIDTHS = ['1m', '1h', '1d'] as const;
export type BucketWidth = (typeof BUCKET_WIDTHS)[number];

export const BUCKET_SECONDS: Readonly<Record<BucketWidth, number>> = { '1m': 60, '1h': 3_600, '1d': 86_400 };

/** A group key of a result; each is null in a result unless the query grouped by it. */
export type GroupKey =
  | 'project_id'
  | 'user_id'
  | 'api_key_id'
  | 'model'
  | 'batch'
  | 'service_tier'
  | 'size'
  | 'source'
  | 'line_item';

/** A filter query parameter (sent as an array, `models[]=a&models[]=b`). */
export type FilterName = 'models' | 'project_ids' | 'user_ids' | 'api_key_ids';

export interface ReportSpec {
  /** Path below the /v1 base URL. */
  path: string;
  /** The `object` of each result. */
  resultObject: string;
  /** Numeric fields of a result that the report keeps, in output order. */
  metrics: readonly string[];
  /** Keys the API accepts in group_by, in the order rows show them. */
  groupKeys: readonly GroupKey[];
  /** Array filters the API accepts. */
  filters: readonly FilterName[];
  /** Whether the boolean `batch` filter is accepted (completions only). */
  hasBatchFilter: boolean;
  bucketWidths: readonly BucketWidth[];
  /** Buckets per page: the default when `limit` is not sent, and the most accepted. */
  pageLimits: Readonly<Partial<Record<BucketWidth, { default: number; max: number }>>>;
  /** The daily total anomalies are judged on (DESIGN.md §3): a name and how a result contributes. */
  volume: { metric: string; fields: readonly string[] };
  /** Group applied when the user names none: the one the views need. */
  defaultGroupBy: readonly GroupKey[];
}

const USAGE_PAGE_LIMITS = {
  '1m': { default: 60, max: 1_440 },
  '1h': { default: 24, max: 168 },
  '1d': { default: 7, max: 31 },
} as const;

const PER_CALLER_KEYS: readonly GroupKey[] = ['model', 'project_id', 'api_key_id', 'user_id'];
const PER_CALLER_FILTERS: readonly FilterName[] = ['models', 'project_ids', 'api_key_ids', 'user_ids'];

function usageSpec(kind: UsageKind, metrics: readonly string[], extra: Partial<ReportSpec> = {}): ReportSpec {
  return {
    path: `/organization/usage/${kind}`,
    resultObject: `organization.usage.${kind}.result`,
    metrics,
    groupKeys: PER_CALLER_KEYS,
    filters: PER_CALLER_FILTERS,
    hasBatchFilter: false,
    bucketWidths: BUCKET_WIDTHS,
    pageLimits: USAGE_PAGE_LIMITS,
    volume: { metric: 'tokens', fields: ['input_tokens'] },
    defaultGroupBy: ['model'],
    ...extra,
  };
}

const PROJECT_ONLY = { groupKeys: ['project_id'], filters: ['project_ids'], defaultGroupBy: ['project_id'] } as const;

export const USAGE_SPECS: Readonly<Record<UsageKind, ReportSpec>> = {
  completions: usageSpec(
    'completions',
    ['input_tokens', 'input_cached_tokens', 'output_tokens', 'input_audio_tokens', 'output_audio_tokens', 'num_model_requests'],
    {
      groupKeys: [...PER_CALLER_KEYS, 'batch'],
      hasBatchFilter: true,
      // input_tokens already includes cached and audio input tokens.
      volume: { metric: 'tokens', fields: ['input_tokens', 'output_tokens'] },
    },
  ),
  embeddings: usageSpec('embeddings', ['input_tokens', 'num_model_requests']),
  moderations: usageSpec('moderations', ['input_tokens', 'num_model_requests']),
  images: usageSpec('images', ['images', 'num_model_requests'], { volume: { metric: 'images', fields: ['images'] } }),
  audio_speeches: usageSpec('audio_speeches', ['characters', 'num_model_requests'], {
    volume: { metric: 'characters', fields: ['characters'] },
  }),
  audio_transcriptions: usageSpec('audio_transcriptions', ['seconds', 'num_model_requests'], {
    volume: { metric: 'seconds', fields: ['seconds'] },
  }),
  vector_stores: usageSpec('vector_stores', ['usage_bytes'], {
    ...PROJECT_ONLY,
    volume: { metric: 'usage_bytes', fields: ['usage_bytes'] },
  }),
  code_interpreter_sessions: usageSpec('code_interpreter_sessions', ['num_sessions'], {
    ...PROJECT_ONLY,
    volume: { metric: 'num_sessions', fields: ['num_sessions'] },
  }),
};

/** The Costs API: daily buckets only, amounts in USD (`amount.value`, kept as `amount_usd`). */
export const COSTS_SPEC: ReportSpec = {
  path: '/organization/costs',
  resultObject: 'organization.costs.result',
  metrics: ['amount_usd'],
  groupKeys: ['line_item', 'project_id', 'api_key_id'],
  filters: ['project_ids', 'api_key_ids'],
  hasBatchFilter: false,
  bucketWidths: ['1d'],
  pageLimits: { '1d': { default: 7, max: 180 } },
  volume: { metric: 'amount_usd', fields: ['amount_usd'] },
  defaultGroupBy: ['line_item'],
};

export function isUsageKind(value: unknown): value is UsageKind {
  return typeof value === 'string' && (USAGE_KINDS as readonly string[]).includes(value);
}

export function isBucketWidth(value: unknown): value is BucketWidth {
  return typeof value === 'string' && (BUCKET_WIDTHS as readonly string[]).includes(value);
}
