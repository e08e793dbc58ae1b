// The simulator through the official `openai` SDK (issue 15 item 27):
// scripts that delete files or list models run against it as against the API.

import { describe, expect, it } from 'vitest';
import OpenAI, { NotFoundError, toFile } from 'openai';
import { perTestFixture } from './support/fixture.js';

const KEY = 'sk-sim-sdk-0001';
const { simulator } = perTestFixture(KEY);

async function client(): Promise<OpenAI> {
  const sim = await simulator();
  return new OpenAI({ apiKey: KEY, baseURL: sim.url, maxRetries: 0 });
}

describe('the simulator through the openai SDK', () => {
  it('deletes an uploaded file: client.files.delete answers {id, object: "file", deleted: true}, and the file is gone', async () => {
    const openai = await client();
    const line = JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [] } });
    const uploaded = await openai.files.create({ file: await toFile(Buffer.from(line + '\n'), 'part.jsonl'), purpose: 'batch' });
    const deleted = await openai.files.delete(uploaded.id);
    expect(deleted).toEqual({ id: uploaded.id, object: 'file', deleted: true });
    await expect(openai.files.retrieve(uploaded.id)).rejects.toBeInstanceOf(NotFoundError);
    const ids: string[] = [];
    for await (const file of openai.files.list()) ids.push(file.id);
    expect(ids).not.toContain(uploaded.id);
    // Deleting it again is a 404, as the API answers.
    await expect(openai.files.delete(uploaded.id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('lists models with client.models.list and retrieves one', async () => {
    const openai = await client();
    const models: OpenAI.Models.Model[] = [];
    for await (const model of openai.models.list()) models.push(model);
    expect(models.map((m) => m.id)).toEqual(expect.arrayContaining(['gpt-4o-mini', 'gpt-4o-mini-2024-07-18', 'text-embedding-3-small', 'omni-moderation-latest']));
    for (const model of models) {
      expect(model).toEqual({ id: expect.any(String), object: 'model', created: expect.any(Number), owned_by: expect.any(String) });
    }
    expect(await openai.models.retrieve('gpt-4.1-mini')).toMatchObject({ id: 'gpt-4.1-mini', object: 'model' });
    await expect(openai.models.retrieve('nonexistent-model')).rejects.toBeInstanceOf(NotFoundError);
  });
});
