// The library surface of oai-batch. Everything not exported here is internal.

export { runBatch, type RunResult } from './pipeline/run.js';
export type { RunOptions } from './pipeline/options.js';
export type { RunEvent, ProgressSnapshot, EventListener } from './shared/events.js';
export { RateLimiter, MemoryLimiter, type Limiter, type Grant, type LimiterOptions } from './pipeline/limit.js';
export type { BudgetStore, BucketRates, SharedModelState, TakeResult } from './stores/budget-store.js';
export { MemoryBudgetStore } from './stores/memory-budget.js';
export { connectRedisBudgetStore, RedisBudgetStore, type RedisBudgetStoreOptions, type RedisStatus } from './stores/redis-budget.js';
export { defaultBudgetScope } from './stores/budget-scope.js';
export { shardOf, parseShard, type Shard } from './shared/shard.js';
export { createTransport, type Transport, type TransportOptions, type TransportKind, type HttpRequest, type HttpResponse } from './pipeline/send/transport.js';
export { callWithRetry, type CallOptions } from './pipeline/send.js';
export { chargeOf, DEFAULT_OUTPUT_TOKENS } from './pipeline/plan/charge.js';
export { exitCodeOf } from './pipeline/summarise.js';
export { usageFromBody } from './shared/usage.js';
export {
  OaiBatchError,
  ConfigError,
  InputError,
  APIError,
  AuthError,
  QuotaError,
  RateLimitError,
  ServerError,
  ConnectionError,
  TimeoutError,
  InvalidResponseError,
  RequestTooLargeError,
  BudgetStoreUnavailableError,
} from './shared/errors.js';
export * from './shared/types.js';
export { resolvePrice, type PriceTable, type ModelPrice } from './pricing/prices.js';
export { loadPriceTable } from './shared/price-file.js';
export { costOf } from './pricing/cost.js';
export { CostLedger } from './pricing/ledger.js';
export { startSimulator, type Simulator, type SimulatorOptions, type SimStats } from './sim/server.js';
export { validateInput, planInput, type ValidationReport, type InputScanOptions } from './commands/validate.js';
export { estimateInput, EstimateBuilder, type Estimate } from './commands/estimate.js';
export { compareModels, type Comparison, type CompareOptions } from './commands/compare.js';
export { exportResults, outputOf, type ExportRow, type ExportOptions } from './commands/export.js';
export { mergeResults, type MergeOptions, type MergePart, type MergeResult } from './commands/merge.js';
export { submitBatches } from './batch/submit.js';
export { waitForBatches } from './batch/wait.js';
export { downloadResults } from './batch/download.js';
export { BatchApi } from './batch/api.js';
