/**
 * The layering of src/ is enforced by lint: a lower layer importing a higher one (or a sibling)
 * fails with the no-restricted-imports rule and a message naming the layers; an import down the
 * layers passes. The files are linted as if they were in src/, without being written there.
 */
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../check/built.js';

async function lintAs(path: string, source: string): Promise<ESLint.LintResult> {
  const eslint = new ESLint({ cwd: ROOT });
  const [result] = await eslint.lintText(source, { filePath: `${ROOT}/${path}` });
  return result;
}

const importing = (specifier: string): string => `import * as imported from '${specifier}';\nexport const used = imported;\n`;

describe('layering', () => {
  it('refuses src/machine importing src/trial, naming the rule and the layers', async () => {
    const result = await lintAs('src/machine/wrong-way.ts', importing('../trial/trial.js'));
    expect(result.messages).toHaveLength(1);
    expect(result.messages[0].ruleId).toBe('no-restricted-imports');
    expect(result.messages[0].message).toMatch(/layering: src\/machine imports nothing outside itself/);
  });

  it('refuses a sibling (results from campaign, report from campaign) and the package entry', async () => {
    for (const [path, specifier] of [
      ['src/results/wrong-way.ts', '../campaign/runner.js'],
      ['src/campaign/wrong-way.ts', '../report/write.js'],
      ['src/recovery/steps/wrong-way.ts', '../../trial/system.js'],
      ['src/trial/wrong-way.ts', '../index.js'],
    ]) {
      const result = await lintAs(path, importing(specifier));
      expect(result.messages.map((message) => message.ruleId), `${path} importing ${specifier}`).toEqual(['no-restricted-imports']);
    }
  }, 30_000);

  it('lets imports go down the layers', async () => {
    for (const [path, specifier] of [
      ['src/report/right-way.ts', '../results/summary.js'],
      ['src/campaign/right-way.ts', '../results/store.js'],
      ['src/hypervisor/code/right-way.ts', '../../machine/assembler.js'],
      ['src/machine/right-way.ts', '../errors.js'],
    ]) {
      const result = await lintAs(path, importing(specifier));
      expect(result.messages, `${path} importing ${specifier}`).toEqual([]);
    }
  }, 30_000);
});
