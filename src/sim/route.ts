// The shape of a simulator route and how a request finds its route; the
// registry of routes is routes.ts.

import type { RouteHandler, SimHost } from './context.js';

export interface Route {
  /** 'GET', 'POST', … */
  method: string;
  /** Matched against the path without its query; anchor it (`^…$`), no `g` flag. */
  pattern: RegExp;
  handler: RouteHandler;
}

/** Runs when a simulator starts; may return a function to run when it closes. */
export type SetupHook = (host: SimHost) => void | (() => void);

export type RouteMatch =
  | { kind: 'found'; route: Route; params: string[] }
  /** The path exists, under other methods. */
  | { kind: 'method_not_allowed'; allowed: string[] }
  | { kind: 'none' };

/** Finds the route for a request among `routes` (the first match wins). */
export function matchRoute(routes: readonly Route[], method: string, path: string): RouteMatch {
  const allowed: string[] = [];
  for (const route of routes) {
    const match = route.pattern.exec(path);
    if (!match) continue;
    if (route.method === method) return { kind: 'found', route, params: Array.from(match, (group) => group ?? '') };
    allowed.push(route.method);
  }
  return allowed.length > 0 ? { kind: 'method_not_allowed', allowed } : { kind: 'none' };
}
