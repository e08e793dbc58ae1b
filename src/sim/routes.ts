// The registry of simulator routes beyond the five model endpoints:
// /v1/organization/* (src/sim/org.ts) and /v1/files*, /v1/batches* (src/sim/batch.ts).
//
// In:  a method and a path.  Out: the matching route and its capture groups.
// Owns only the list. The server consults it before its own model endpoints,
// after authentication: /v1/organization/* accepts only the admin key, every
// other /v1 path the API key (server.ts decides by path, not by route).
//
// To add routes, a module exports an array of Route (importing only types
// from context.ts and routes.ts, so there is no import cycle) and is listed
// below. A module that must see every answer from the start (the usage and
// costs reports) lists a setup function in SETUP_HOOKS: it runs once per
// simulator and may subscribe with host.onBilled and keep its state in
// host.state(...).

import type { RouteHandler, SimHost } from './context.js';
import { orgRoutes, orgSetup } from './org.js';
import { batchRoutes, batchSetup } from './batch.js';

export interface Route {
  /** 'GET', 'POST', … */
  method: string;
  /** Matched against the path without its query; anchor it (`^…$`), no `g` flag. */
  pattern: RegExp;
  handler: RouteHandler;
}

/** Runs when a simulator starts; may return a function to run when it closes. */
export type SetupHook = (host: SimHost) => void | (() => void);

const REGISTERED_ROUTES: Route[] = [
  ...orgRoutes,
  ...batchRoutes,
];
const SETUP_HOOKS: SetupHook[] = [
  orgSetup,
  batchSetup,
];

/** Adds a route to every simulator started afterwards. */
export function registerRoute(method: string, pattern: RegExp, handler: RouteHandler): void {
  REGISTERED_ROUTES.push({ method: method.toUpperCase(), pattern, handler });
}

/** Adds a setup hook to every simulator started afterwards. */
export function registerSetup(hook: SetupHook): void {
  SETUP_HOOKS.push(hook);
}

export function registeredRoutes(): readonly Route[] {
  return REGISTERED_ROUTES;
}

export function setupHooks(): readonly SetupHook[] {
  return SETUP_HOOKS;
}

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
