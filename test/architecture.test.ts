// The architecture rules of DESIGN.md §5 (.dependency-cruiser.cjs), checked on
// the real source tree, and shown to bite on a small tree that breaks each of them.

import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { cruise, type ICruiseResult, type IConfiguration } from 'dependency-cruiser';
import { describe, expect, it } from 'vitest';
import { tempDir } from './support/files.js';

const ROOT = join(import.meta.dirname, '..');
const config = createRequire(import.meta.url)(join(ROOT, '.dependency-cruiser.cjs')) as IConfiguration;

async function violationsIn(baseDir: string): Promise<Array<{ rule: string; from: string; to: string }>> {
  const cwd = process.cwd();
  process.chdir(baseDir); // the rules' paths are relative to the tree's root
  try {
    const result = await cruise(['src'], {
      validate: true,
      ruleSet: { forbidden: config.forbidden ?? [] },
      tsPreCompilationDeps: true,
      tsConfig: { fileName: 'tsconfig.json' },
      exclude: { path: '^(dist|node_modules)/' },
      doNotFollow: { path: 'node_modules' },
    });
    const output = result.output as ICruiseResult;
    return output.summary.violations.map((v) => ({ rule: v.rule.name, from: v.from, to: v.to }));
  } finally {
    process.chdir(cwd);
  }
}

describe('architecture (DESIGN.md §5)', () => {
  it('has no import cycle, keeps the CLI and the simulator out of the product, and pricing pure', async () => {
    expect(await violationsIn(ROOT)).toEqual([]);
  }, 60_000);

  it('reports a cycle, the pipeline importing the CLI, the product importing the simulator, and pricing importing the pipeline', async () => {
    const files: Record<string, string> = {
      'src/pipeline/a.ts': "import { b } from './b.js';\nimport { flag } from '../cli/flags.js';\nexport const a = () => b + flag;\n",
      'src/pipeline/b.ts': "import { a } from './a.js';\nexport const b = 1;\nexport const useA = () => a;\n",
      'src/cli/flags.ts': 'export const flag = 1;\n',
      'src/commands/c.ts': "import { sim } from '../sim/server.js';\nexport const c = sim;\n",
      'src/sim/server.ts': 'export const sim = 1;\n',
      'src/pricing/cost.ts': "import { b } from '../pipeline/b.js';\nexport const cost = b;\n",
      'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true }, include: ['src'] }),
    };
    const dir = await tempDir();
    for (const [path, text] of Object.entries(files)) {
      await mkdir(join(dir.path, path, '..'), { recursive: true });
      await writeFile(join(dir.path, path), text);
    }
    const rules = new Set((await violationsIn(dir.path)).map((v) => v.rule));
    await dir.remove();
    expect([...rules].sort()).toEqual(['no-cli-below-the-shell', 'no-cycles', 'no-simulator-in-the-product', 'pricing-is-pure-arithmetic']);
  }, 60_000);
});
