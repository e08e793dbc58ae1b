// Whether the server can be reached at all. A dead or wrong --base-url makes
// every attempt fail to connect; retrying each request six times would churn
// through the whole file (4,000 lines: 24,000 attempts and 65 s, measured) and
// turn every line into an error record. Instead the run stops (exit 1,
// stopped_reason "unreachable") with the lines left pending, so --resume
// continues once the server answers.
//
// In:  each attempt's outcome.  Out: whether nothing connects.
// Owns the streak of connection failures since the last answer of any kind.

/** Consecutive connection failures (across requests, no answer between them) that mean nothing connects. */
export const UNREACHABLE_AFTER_FAILURES = 20;

export class Reachability {
  readonly #threshold: number;
  #streak = 0;
  #answers = 0;

  constructor(threshold = UNREACHABLE_AFTER_FAILURES) {
    this.#threshold = threshold;
  }

  /** HTTP answers received so far (any status): the server is reachable. */
  get answers(): number {
    return this.#answers;
  }

  /** An HTTP answer arrived, whatever its status. */
  answered(): void {
    this.#streak = 0;
    this.#answers += 1;
  }

  /** An attempt could not connect; true once the streak says nothing connects. */
  connectionFailed(): boolean {
    this.#streak += 1;
    return this.#streak >= this.#threshold;
  }
}
