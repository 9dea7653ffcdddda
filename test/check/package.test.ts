/**
 * The package's public entry: package.json points at the built index and its declarations, and
 * the entry exports the property-testing API (fast-check is a dependency of the product).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, builtApi } from './built.js';

interface PackageJson {
  readonly main: string;
  readonly types: string;
  readonly exports: { readonly '.': { readonly types: string; readonly import: string } };
  readonly dependencies: Record<string, string>;
  readonly devDependencies: Record<string, string>;
}

const packageJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;

describe('the ninelives package', () => {
  it('points main, types and exports at the built entry and its declarations', async () => {
    expect(packageJson.main).toBe('dist/src/index.js');
    expect(packageJson.types).toBe('dist/src/index.d.ts');
    expect(packageJson.exports['.']).toEqual({ types: './dist/src/index.d.ts', import: './dist/src/index.js' });
    await builtApi();
    expect(existsSync(join(ROOT, packageJson.types))).toBe(true);
    expect(packageJson.dependencies['fast-check']).toBeDefined();
    expect(packageJson.devDependencies['fast-check']).toBeUndefined();
  });

  it('exports the property-testing API and the trial it is built on', async () => {
    const api = await builtApi();
    const functions = ['check', 'runScenario', 'scenarioArbitrary', 'faultPlanArbitrary', 'defineInvariant', 'parseScenario', 'runTrial', 'audit'] as const;
    expect(functions.filter((name) => typeof api[name] !== 'function')).toEqual([]);
    expect(api.invariantNames()).toEqual(['recovered-audit-clean', 'golden-results', 'preserved-vm-state', 'retry-same-effect', 'deterministic']);
    expect(api.DEFAULT_RUNS).toBe(25);
  });
});
