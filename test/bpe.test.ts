import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { countTokens as cl100kReference } from 'gpt-tokenizer/encoding/cl100k_base';
import { countTokens as o200kReference } from 'gpt-tokenizer/encoding/o200k_base';
import { describe, expect, it } from 'vitest';
import { tokenCounter, type EncodingName } from '../src/pipeline/plan/bpe.js';
import { mulberry32 } from '../src/shared/random.js';

// gpt-tokenizer is the reference: the compact counter must agree with it on every text.
const NO_SPECIAL = { disallowedSpecial: new Set<string>() };
const reference: Record<EncodingName, (text: string) => number> = {
  o200k_base: (text) => o200kReference(text, NO_SPECIAL),
  cl100k_base: (text) => cl100kReference(text, NO_SPECIAL),
};
const ENCODINGS: EncodingName[] = ['o200k_base', 'cl100k_base'];

/** Seeded strings over scripts that exercise the split patterns: Latin, Greek, Cyrillic, CJK, kana, Arabic, Devanagari, Hangul, emoji, control characters. */
function randomTexts(count: number, seed: number): string[] {
  const random = mulberry32(seed);
  const ranges: Array<[number, number]> = [
    [0x20, 0x7e], [0xa0, 0x24f], [0x370, 0x3ff], [0x400, 0x4ff], [0x4e00, 0x4fff], [0x3040, 0x30ff],
    [0x600, 0x6ff], [0x900, 0x97f], [0x1f300, 0x1f64f], [0xac00, 0xad00], [0x09, 0x0d], [0x300, 0x36f],
  ];
  const texts: string[] = [];
  for (let k = 0; k < count; k++) {
    let text = '';
    const length = 1 + Math.floor(random() * 120);
    for (let i = 0; i < length; i++) {
      const [from, to] = ranges[Math.floor(random() * ranges.length)]!;
      text += String.fromCodePoint(from + Math.floor(random() * (to - from + 1)));
      const extra = random();
      if (extra < 0.2) text += ' ';
      else if (extra < 0.23) text += '\n\n  ';
      else if (extra < 0.25) text += "'S";
      else if (extra < 0.27) text += '1234567';
    }
    texts.push(text);
  }
  return texts;
}

function sourceTexts(): string[] {
  const root = join(import.meta.dirname, '..');
  const texts = [readFileSync(join(root, 'README.md'), 'utf8'), readFileSync(join(root, 'pricing.json'), 'utf8')];
  for (const folder of ['pipeline', 'shared']) {
    const names = readdirSync(join(root, 'src', folder), { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.ts'));
    for (const name of names) texts.push(readFileSync(join(root, 'src', folder, name), 'utf8'));
  }
  return texts;
}

const EDGE_CASES = [
  '',
  ' ',
  'hello world',
  'Hello, World! HELLO world. hello_world HelloWorld',
  "I'm sure you'll see they've gone; we'd've thought it's OK. DON'T SHOUT",
  '          leading and trailing          ',
  'tabs\tand\r\nwindows\r\nline ends\n\n\n',
  '1234567890 3.14159 1,000,000 0x1f',
  '='.repeat(300),
  'a'.repeat(5000),
  '🙂'.repeat(50) + '👩‍👩‍👧‍👦 🇫🇷',
  'naïve café résumé — “quotes” ‘single’ …',
  'Grüße aus Zürich! 東京の天気は晴れです。 Les élèves étudient la mécanique quantique.',
  'مرحبا بالعالم नमस्ते दुनिया 안녕하세요 세계 Привет мир',
  'e\u0301 combining marks a\u0308\u0323',
  'lone surrogates \ud800 and \udc00 in text',
  '\u0000\u0001\u007f control',
  '<|endoftext|> special <|im_start|>user<|im_end|> tokens as plain text',
  'https://example.com/path/to/page?query=1&b=2#frag /usr/local/bin//',
  'function f(x) { return x * 2; } // code\n\tif (a && b) {}',
];

describe('tokenCounter', () => {
  it.each(ENCODINGS)('%s agrees with gpt-tokenizer on edge cases', (encoding) => {
    const counter = tokenCounter(encoding);
    for (const text of EDGE_CASES) expect([text, counter.count(text)]).toEqual([text, reference[encoding](text)]);
  });

  it.each(ENCODINGS)('%s agrees with gpt-tokenizer on 1,500 random multilingual texts', (encoding) => {
    const counter = tokenCounter(encoding);
    const mismatches = randomTexts(1500, 7).filter((text) => counter.count(text) !== reference[encoding](text));
    expect(mismatches).toEqual([]);
  });

  it.each(ENCODINGS)('%s agrees with gpt-tokenizer on this project’s own sources', (encoding) => {
    const counter = tokenCounter(encoding);
    for (const text of sourceTexts()) expect(counter.count(text)).toBe(reference[encoding](text));
  });

  it.each<[EncodingName, string, number]>([
    ['cl100k_base', 'tiktoken is great!', 6],
    ['o200k_base', 'hello world', 2],
    ['cl100k_base', 'hello world', 2],
    ['o200k_base', 'a', 1],
  ])('%s counts %j as %i tokens', (encoding, text, tokens) => {
    expect(tokenCounter(encoding).count(text)).toBe(tokens);
  });

  it.each(ENCODINGS)('%s agrees with gpt-tokenizer on long pieces (merged with a heap above 256 bytes)', (encoding) => {
    const random = mulberry32(5);
    const letters = (alphabet: string, length: number): string =>
      Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
    const texts = [
      'a'.repeat(257),
      'ab'.repeat(400),
      ' '.repeat(3000),
      '\n'.repeat(700),
      '=-'.repeat(900),
      'é'.repeat(500),
      letters('abcdefghijklmnopqrstuvwxyz', 3000),
      letters('etaoinshrdlu', 1200),
      letters('абвгдежзийклмнопрстуфхцчшщьыэюя', 900),
      letters('的一是不了人我在有他这为之大来以个中上们', 600),
      'x' + letters('AbCdEfGhIj', 2000),
    ];
    const counter = tokenCounter(encoding);
    for (const text of texts) expect([text.slice(0, 12), counter.count(text)]).toEqual([text.slice(0, 12), reference[encoding](text)]);
  });

  it('counts a one-megabyte single word without stalling (the quadratic merge took minutes)', () => {
    expect(tokenCounter('o200k_base').count('a'.repeat(1_000_000))).toBe(125_000);
  });

  it('counts the same after its piece cache has turned over', () => {
    const counter = tokenCounter('o200k_base');
    const texts = randomTexts(50, 11);
    const first = texts.map((text) => counter.count(text));
    // Thousands of distinct words push every cached piece out.
    for (let i = 0; i < 20_000; i++) counter.count(`zq${i.toString(36)}xw`);
    expect(texts.map((text) => counter.count(text))).toEqual(first);
  });

  it('loads each encoding once', () => {
    expect(tokenCounter('o200k_base')).toBe(tokenCounter('o200k_base'));
    expect(tokenCounter('o200k_base')).not.toBe(tokenCounter('cl100k_base'));
  });
});
