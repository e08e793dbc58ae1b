// The server's own budget as the x-ratelimit-remaining-* headers last showed
// it, aged to now: how the limit policy stays within what is left when other
// clients share the key. Pure functions over plain state, for table tests.

/**
 * The server's own budget as we last saw it (x-ratelimit-remaining-*), aged
 * to `now`: it refills linearly to `limit` over the reset time the server
 * named, and every request we sent after the observed one has taken from it.
 */
export interface ServerView {
  limit: number;
  remaining: number;
  /** Refill per ms as the reset header implies ((limit − remaining) / reset), or limit / 60 s. */
  ratePerMs: number;
  observedAt: number;
  /** Our cumulative sends (requests or tokens) at the observed request's grant. */
  sentAtObservation: number;
}

export function serverRemaining(view: ServerView, now: number, sentNow: number): number {
  const refilled = Math.min(view.limit, view.remaining + Math.max(0, now - view.observedAt) * view.ratePerMs);
  return refilled - (sentNow - view.sentAtObservation);
}

/**
 * Milliseconds until the server view holds `charge` plus `margin`. The need is
 * capped at the limit: the view never holds more, so a charge within `margin`
 * of the limit would otherwise wait forever.
 */
export function serverWait(view: ServerView, now: number, sentNow: number, charge: number, margin: number): number {
  const need = Math.min(charge + margin, view.limit);
  const have = serverRemaining(view, now, sentNow);
  if (have >= need) return 0;
  if (view.ratePerMs <= 0) return Infinity;
  return Math.ceil((need - have) / view.ratePerMs);
}

export function serverRate(limit: number, remaining: number, resetMs: number | null): number {
  const nominal = limit / 60_000;
  if (resetMs === null || resetMs <= 0 || remaining >= limit) return nominal;
  const implied = (limit - remaining) / resetMs;
  // Trust the reset header within reason; a garbled value falls back to the nominal refill.
  return implied > nominal / 4 && implied < nominal * 4 ? implied : nominal;
}
