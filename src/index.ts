// The library surface of oai-batch. Everything not exported here is internal.

export { runBatch, type RunResult } from './core/run.js';
export type { RunOptions } from './core/options.js';
export type { RunEvent, ProgressSnapshot, EventListener } from './core/events.js';
export { MemoryLimiter, RequestTooLargeError, type Limiter, type Grant, type ModelLimitState, type MemoryLimiterOptions } from './core/limiter.js';
export { createTransport, type Transport, type TransportOptions, type TransportKind, type HttpRequest, type HttpResponse } from './core/transport.js';
export { callWithRetry, type CallOptions } from './core/call.js';
export { chargeOf, DEFAULT_OUTPUT_TOKENS } from './core/charge.js';
export { exitCodeOf } from './core/summary.js';
export { usageFromBody } from './core/usage.js';
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
} from './core/errors.js';
export * from './core/types.js';
export { loadPriceTable, resolvePrice, type PriceTable, type ModelPrice } from './pricing/prices.js';
export { costOf } from './pricing/cost.js';
export { CostLedger } from './pricing/ledger.js';
export { startSimulator, type Simulator, type SimulatorOptions, type SimStats } from './sim/server.js';
export { validateInput, planInput, type ValidationReport, type InputScanOptions } from './core/validate.js';
export { estimateInput, EstimateBuilder, type Estimate } from './core/estimate.js';
export { compareModels, type Comparison, type CompareOptions } from './core/compare.js';
export { exportResults, outputOf, type ExportRow, type ExportOptions } from './core/export.js';
export { submitBatches } from './batch/submit.js';
export { waitForBatches } from './batch/wait.js';
export { downloadResults } from './batch/download.js';
export { BatchApi } from './batch/api.js';
