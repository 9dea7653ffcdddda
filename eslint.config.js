import tseslint from 'typescript-eslint';

/**
 * The layers of src/, lowest first: each folder may import the folders listed for it (and
 * src/errors.ts and src/package-info.ts, the lowest of all), never one above it or beside it. The README's architecture
 * section says the same in words.
 */
export const layers = {
  machine: [],
  hypervisor: ['machine'],
  guests: ['machine', 'hypervisor'],
  faults: ['machine', 'hypervisor', 'guests'],
  replication: ['machine', 'hypervisor', 'guests'],
  recovery: ['machine', 'hypervisor', 'guests', 'replication'],
  trial: ['machine', 'hypervisor', 'guests', 'faults', 'replication', 'recovery'],
  check: ['machine', 'hypervisor', 'guests', 'faults', 'replication', 'recovery', 'trial'],
  results: ['machine', 'hypervisor', 'guests', 'faults', 'replication', 'recovery', 'trial'],
  campaign: ['machine', 'hypervisor', 'guests', 'faults', 'replication', 'recovery', 'trial', 'results'],
  report: ['machine', 'hypervisor', 'guests', 'faults', 'replication', 'recovery', 'trial', 'results'],
  cli: ['machine', 'hypervisor', 'guests', 'faults', 'replication', 'recovery', 'trial', 'check', 'results', 'campaign', 'report'],
};

/** For each folder, a no-restricted-imports rule that refuses the folders it may not import. */
function layering() {
  const folders = Object.keys(layers);
  return Object.entries(layers).map(([folder, allowed]) => {
    const forbidden = folders.filter((other) => other !== folder && !allowed.includes(other));
    return {
      files: [`src/${folder}/**/*.ts`],
      rules: {
        'no-restricted-imports': [
          'error',
          {
            patterns: [
              {
                regex: `^(\\.\\./)+(${[...forbidden, 'index\\.js'].join('|')})(/|$)`,
                message: `layering: src/${folder} ${allowed.length === 0 ? 'imports nothing outside itself' : `may import only ${allowed.join(', ')}`} (and src/errors.ts, src/package-info.ts); see eslint.config.js and the README's architecture section.`,
              },
            ],
          },
        ],
      },
    };
  });
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'reports/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'The core is deterministic: use a seeded generator.' },
        { object: 'Date', property: 'now', message: 'The core is deterministic: use simulated time.' },
      ],
    },
  },
  ...layering(),
);
