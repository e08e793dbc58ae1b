// The architecture rules of DESIGN.md §5, checked by test/architecture.test.ts
// (and by hand: `npx depcruise src`). Type-only imports count: a cycle through
// types is still a cycle a reader has to untangle.

/** Folders of the product that are not the command-line shell. */
const BELOW_CLI = '^src/(pipeline|commands|stores|pricing|org|batch|observe|shared)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'No import cycles, type-only imports and dynamic imports included.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-cli-below-the-shell',
      severity: 'error',
      comment: 'The pipeline, the commands and everything under them never import the CLI: the CLI is a thin shell over them.',
      from: { path: BELOW_CLI },
      to: { path: '^src/cli/' },
    },
    {
      name: 'no-simulator-in-the-product',
      severity: 'error',
      comment:
        'The product never imports its simulator. Only the shell (`oai-batch simulate`, `--simulate`) and the library index, which exports startSimulator for tests of users, may load it.',
      from: { path: BELOW_CLI },
      to: { path: '^src/sim/' },
    },
    {
      name: 'pricing-is-pure-arithmetic',
      severity: 'error',
      comment: 'pricing/ is arithmetic over a loaded table: it imports only itself and the shared types (no files, no pipeline).',
      from: { path: '^src/pricing/' },
      to: { pathNot: ['^src/pricing/', '^src/shared/types[.]ts$'] },
    },
    {
      name: 'shared-is-the-foundation',
      severity: 'error',
      comment: 'shared/ holds what every layer uses; it imports nothing above it (pricing, being pure, is allowed for the price-file loader).',
      from: { path: '^src/shared/' },
      to: { path: '^src/(pipeline|commands|stores|org|batch|observe|cli|sim)/' },
    },
    {
      name: 'pipeline-stays-a-pipeline',
      severity: 'error',
      comment: 'The pipeline does not reach into whole commands, the Batch API, organisation reports or observers (they subscribe to its events).',
      from: { path: '^src/pipeline/' },
      to: { path: '^src/(commands|batch|org|observe)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(dist|node_modules)/' },
  },
};
