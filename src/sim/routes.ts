// The registry of simulator routes beyond the five model endpoints:
// /v1/organization/* (src/sim/org.ts), /v1/files*, /v1/batches* (src/sim/batch.ts)
// and /v1/models* (src/sim/models.ts).
//
// In:  a method and a path.  Out: the matching route and its capture groups.
// Owns only the list. The server consults it before its own model endpoints,
// after authentication: /v1/organization/* accepts only the admin key, every
// other /v1 path the API key (server.ts decides by path, not by route).
//
// To add routes, a module exports an array of Route (importing only types
// from context.ts and route.ts, so there is no import cycle) and is listed
// below. A module that must see every answer from the start (the usage and
// costs reports) lists a setup function in SETUP_HOOKS: it runs once per
// simulator and may subscribe with host.onBilled and keep its state in
// host.state(...).

import type { RouteHandler } from './context.js';
import type { Route, SetupHook } from './route.js';
import { orgRoutes, orgSetup } from './org.js';
import { batchRoutes, batchSetup } from './batch.js';
import { modelRoutes } from './models.js';

const REGISTERED_ROUTES: Route[] = [
  ...orgRoutes,
  ...batchRoutes,
  ...modelRoutes,
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
