import { describe, expect, it } from 'vitest';
import { keyedRecord, inShard } from '../src/pipeline/plan/shard.js';
import { createPlanContext, planRecord } from '../src/pipeline/plan.js';
import type { RawRecord } from '../src/pipeline/read.js';
import { fnv1a64Hex, isInShard, parseShard, shardOf, shardSuffix } from '../src/shared/shard.js';

describe('the shard hash', () => {
  it.each([
    // Published FNV-1a 64 test vectors, and UTF-8 (not UTF-16) bytes.
    ['', 'cbf29ce484222325'],
    ['a', 'af63dc4c8601ec8c'],
    ['foobar', '85944171f73967e8'],
    ['héllo', 'a35ff71f960240e0'],
  ])('is FNV-1a 64 of the UTF-8 bytes: %j', (text, hex) => {
    expect(fnv1a64Hex(text)).toBe(hex);
  });

  it.each([
    ['req-1', 7, 6],
    ['line-123456', 7, 1],
    ['foobar', 999_983, 664_684],
  ])('maps %j to its 64-bit value mod %i', (id, count, shard) => {
    expect(shardOf(id, count)).toBe(shard);
    // The same as BigInt arithmetic on the full 64-bit value.
    expect(Number(BigInt(`0x${fnv1a64Hex(id)}`) % BigInt(count))).toBe(shard);
  });

  it('spreads ids evenly over the shards', () => {
    const counts = new Array<number>(8).fill(0);
    for (let i = 0; i < 80_000; i++) counts[shardOf(`request-${i}`, 8)]! += 1;
    for (const count of counts) expect(Math.abs(count - 10_000)).toBeLessThan(500);
  });

  it.each<[string, { index: number; count: number } | null]>([
    ['0/4', { index: 0, count: 4 }],
    ['3/4', { index: 3, count: 4 }],
    [' 2 / 8 ', { index: 2, count: 8 }],
    ['0/1', { index: 0, count: 1 }],
    ['4/4', null],
    ['0/0', null],
    ['-1/4', null],
    ['1.5/4', null],
    ['1', null],
    ['a/b', null],
    ['0/1000001', null],
  ])('parses %j', (text, shard) => {
    expect(parseShard(text)).toEqual(shard);
  });

  it('names files .shard-I-of-N', () => {
    expect(shardSuffix({ index: 2, count: 8 })).toBe('.shard-2-of-8');
  });
});

describe('the lines of a shard', () => {
  const text = (line: number, value: unknown): RawRecord => ({ kind: 'text', line, text: typeof value === 'string' ? value : JSON.stringify(value) });
  const batch = (id: unknown) => ({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model: 'm', messages: [] } });

  it.each<[string, RawRecord, string]>([
    ['a Batch-form line: its custom_id', text(3, batch('abc')), 'abc'],
    ['a bare line: line-N', text(4, { model: 'm', messages: [] }), 'line-4'],
    ['a Batch-form line without custom_id: line-N', text(5, batch(undefined)), 'line-5'],
    ['a Batch-form line with an empty custom_id: line-N', text(6, batch('')), 'line-6'],
    ['a line that is not JSON: line-N', text(7, '{nope'), 'line-7'],
    ['a JSON array: line-N', text(8, [1, 2]), 'line-8'],
    ['a line too long: line-N', { kind: 'too_long', line: 9, bytes: 10 }, 'line-9'],
    ['an element of a JSON-array input', { kind: 'value', line: 10, value: batch('xyz') }, 'xyz'],
  ])('keys %s, as plan names it', (_name, record, key) => {
    expect(keyedRecord(record).key).toBe(key);
    expect(planRecord(keyedRecord(record).record, createPlanContext('/v1/chat/completions', 1 << 20)).customId).toBe(key);
  });

  it('passes a parsed line on parsed', () => {
    expect(keyedRecord(text(1, batch('a'))).record).toEqual({ kind: 'value', line: 1, value: batch('a') });
  });

  it('splits an input into disjoint shards that cover every line, duplicates with their first use', async () => {
    const records: RawRecord[] = [];
    for (let i = 1; i <= 200; i++) records.push(i % 3 === 0 ? text(i, { model: 'm', messages: [] }) : text(i, batch(`id-${i % 50}`)));
    const seen = new Map<number, number>();
    for (let index = 0; index < 4; index++) {
      const shard = { index, count: 4 };
      for await (const record of inShard(from(records), shard)) {
        seen.set(record.line, (seen.get(record.line) ?? 0) + 1);
        expect(isInShard(keyedRecord(record).key, shard)).toBe(true);
      }
    }
    expect([...seen.keys()].sort((a, b) => a - b)).toEqual(records.map((r) => r.line));
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
  });

  it('passes every record through untouched without a shard', async () => {
    const records = [text(1, batch('a')), text(2, '{bad')];
    const out: RawRecord[] = [];
    for await (const record of inShard(from(records), undefined)) out.push(record);
    expect(out).toEqual(records);
  });
});

async function* from(records: RawRecord[]): AsyncGenerator<RawRecord> {
  yield* records;
}
