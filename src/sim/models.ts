// The simulated Models API: GET /v1/models and GET /v1/models/{id}, so that
// scripts using the official SDK (`client.models.list()`) run against it.
//
// In:  the two requests.  Out: `{object: "list", data: [Model]}` and one Model
//      (`{id, object: "model", created, owned_by}`), as the API answers.
// Owns only the list of models it names; the simulator answers any model
// name on the model endpoints (except `nonexistent…`), so retrieving any
// other name succeeds too, as it would for a model the key has access to.

import { modelNotFoundError } from './error-bodies.js';
import { MODEL_SNAPSHOTS } from './responses.js';
import { DEFAULT_MODERATION_MODEL, isModelMissing } from './validate.js';
import type { SimContext } from './context.js';
import type { Route } from './route.js';

/** Models listed besides the chat aliases and their snapshots: one per other endpoint. */
const OTHER_MODELS = ['text-embedding-3-small', 'text-embedding-3-large', 'gpt-3.5-turbo-instruct', DEFAULT_MODERATION_MODEL];

/** A fixed creation time (2024-01-01T00:00:00Z): answers stay deterministic. */
const CREATED_SEC = 1_704_067_200;

export interface ModelObject {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

function modelObject(id: string): ModelObject {
  return { id, object: 'model', created: CREATED_SEC, owned_by: 'system' };
}

/** Every model the list names, sorted by id. */
export function listedModels(): ModelObject[] {
  const ids = new Set<string>([...Object.keys(MODEL_SNAPSHOTS), ...Object.values(MODEL_SNAPSHOTS), ...OTHER_MODELS]);
  return [...ids].sort().map(modelObject);
}

function listModels(ctx: SimContext): void {
  ctx.sendJson(200, { object: 'list', data: listedModels() });
}

function getModel(ctx: SimContext): void {
  const id = decodeURIComponent(ctx.params[1] as string);
  if (isModelMissing(id)) return ctx.sendJson(404, { error: modelNotFoundError(id) });
  ctx.sendJson(200, modelObject(id));
}

export const modelRoutes: Route[] = [
  { method: 'GET', pattern: /^\/v1\/models$/, handler: listModels },
  // Fine-tuned names contain colons (`ft:gpt-4o-mini:org::id`), never a slash.
  { method: 'GET', pattern: /^\/v1\/models\/([^/]+)$/, handler: getModel },
];
