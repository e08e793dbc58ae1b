#!/usr/bin/env node
// Writes the two larger example files the README's "Cost accuracy" and
// "Testing" sections run against the simulator, into the current folder:
//
//   mixed.jsonl    400 lines: 200 gpt-4o-mini chat (80 with a ~1,500-token
//                  system prompt, so the prompt cache shows), 80 o4-mini with
//                  max_completion_tokens 300, 80 gpt-5-mini through
//                  /v1/responses, 40 text-embedding-3-small
//   stories.jsonl  1,000 gpt-4o-mini chat lines with max_tokens 400 (a file
//                  for trying --max-cost)
//
//   node samples/make-examples.js [folder]
//
// The same every time: no randomness.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const folder = process.argv[2] ?? '.';

/** About 1,500 tokens: long enough for the prompt cache (1,024 tokens and up). */
const CONTRACT = Array.from({ length: 150 }, (_, i) => `Clause ${i}: the supplier delivers goods within ten days.`).join(' ');

const mixed = [];
for (let i = 0; i < 200; i++) {
  const messages = i < 80 ? [{ role: 'system', content: CONTRACT }, { role: 'user', content: `Summarise clause ${i}.` }] : [{ role: 'user', content: `Name a colour, number ${i}.` }];
  mixed.push({ custom_id: `chat-${i}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages, max_tokens: 60 } });
}
for (let i = 0; i < 80; i++) {
  mixed.push({ custom_id: `reason-${i}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'o4-mini', messages: [{ role: 'user', content: `Prove that ${i} + 1 > ${i}.` }], max_completion_tokens: 300 } });
}
for (let i = 0; i < 80; i++) {
  mixed.push({ custom_id: `resp-${i}`, method: 'POST', url: '/v1/responses', body: { model: 'gpt-5-mini', input: `Write one sentence about invoice ${i}.`, max_output_tokens: 150 } });
}
for (let i = 0; i < 40; i++) {
  mixed.push({ custom_id: `emb-${i}`, method: 'POST', url: '/v1/embeddings', body: { model: 'text-embedding-3-small', input: `document number ${i} about invoices` } });
}

const stories = Array.from({ length: 1000 }, (_, i) => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: `Tell a short story about the number ${i}.` }],
  max_tokens: 400,
}));

for (const [name, lines] of [
  ['mixed.jsonl', mixed],
  ['stories.jsonl', stories],
]) {
  writeFileSync(join(folder, name), lines.map((line) => JSON.stringify(line)).join('\n') + '\n');
  console.log(`wrote ${join(folder, name)} (${lines.length} lines)`);
}
