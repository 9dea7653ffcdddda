/**
 * `ninelives check`: the pinned seed first, a line per invariant, on a violation the shrunk
 * scenario as JSON and the commands that replay it (exit 1), one-line usage errors (exit 2), the
 * run count raised by NINELIVES_CHECK_RUNS, a single scenario, users' invariants. In-process,
 * except the searches that run many trials: those run the built CLI as a child process.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_SEED } from '../../src/check/check.js';
import { parseScenario } from '../../src/check/replay.js';
import { EXIT_FAILURE, EXIT_SUCCESS, EXIT_USAGE } from '../../src/cli/errors.js';
import { loadInvariants } from '../../src/cli/commands/check.js';
import { runCli } from '../../src/cli/main.js';
import { runBuiltCli } from './built.js';

interface Captured {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function run(argv: string[]): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const io = { stdout: { write: (text: string) => (stdout += text) }, stderr: { write: (text: string) => (stderr += text) } };
  const exitCode = await runCli(argv, io);
  return { exitCode, stdout, stderr };
}

function expectOneErrorLine(result: Captured, pattern: RegExp): void {
  expect(result.exitCode).toBe(EXIT_USAGE);
  expect(result.stdout).toBe('');
  expect(result.stderr.split('\n').filter((line) => line !== '')).toHaveLength(1);
  expect(result.stderr).toMatch(pattern);
}

/** The shrunk scenario printed between its heading and the first-failure line. */
function printedCounterexample(stdout: string): unknown {
  const start = stdout.indexOf('shrunk counterexample (minimal scenario):\n');
  const end = stdout.indexOf('first failing scenario, before shrinking:');
  return JSON.parse(stdout.slice(start, end).split('\n').slice(1).join('\n'));
}

// a soak's NINELIVES_CHECK_RUNS must not change what these tests count
const NO_SOAK = { NINELIVES_CHECK_RUNS: '' };
beforeEach(() => {
  vi.stubEnv('NINELIVES_CHECK_RUNS', '');
});
afterEach(() => {
  vi.unstubAllEnvs();
});

describe('ninelives check', () => {
  it('prints the pinned seed first, then a line per invariant, and exits 0 when all hold', async () => {
    const result = await run(['check', '--runs', '3', '--invariant', 'preserved-vm-state', 'golden-results']);
    expect(result.exitCode).toBe(EXIT_SUCCESS);
    expect(result.stderr).toBe('');
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe(`ninelives check: seed ${DEFAULT_SEED}, 3 scenarios per invariant (NINELIVES_CHECK_RUNS raises it)`);
    expect(lines[1]).toBe('scenarios: 1AppVM (workload seeds 0, 1, 2, 3), 300 ms runs, microreset or microreboot, all repairs on, 1-2 faults (failstop, register, code, memory)');
    expect(lines[2]).toMatch(/^ok {4}preserved-vm-state: 3 scenarios, \d+ where it applies \(\d+\.\d s\)$/);
    expect(lines[3]).toMatch(/^ok {4}golden-results: 3 scenarios, \d+ where it applies \(\d+\.\d s\)$/);
  });

  it('runs as many scenarios as NINELIVES_CHECK_RUNS asks when that is more', async () => {
    vi.stubEnv('NINELIVES_CHECK_RUNS', '5');
    const result = await run(['check', '--runs', '2', '--invariant', 'preserved-vm-state', '--seed', '9']);
    expect(result.exitCode).toBe(EXIT_SUCCESS);
    expect(result.stdout).toMatch(/^ninelives check: seed 9, 5 scenarios per invariant/);
    expect(result.stdout).toMatch(/preserved-vm-state: 5 scenarios/);
  });

  it.each(['1e3', '0x10', '99999999999999', '-5', '2.5'])('NINELIVES_CHECK_RUNS=%s: one line, exit 2, as --runs would be', async (value) => {
    vi.stubEnv('NINELIVES_CHECK_RUNS', value);
    const result = await run(['check', '--runs', '1', '--invariant', 'preserved-vm-state']);
    expect(result).toMatchObject({ exitCode: 2, stdout: '', stderr: `ninelives: NINELIVES_CHECK_RUNS must be an integer from 1 to 1000000, got "${value}"\n` });
  });

  it.each([
    [['--workload-seeds', '99999999999999999999'], 'ninelives: --workload-seeds expects integers from 0 to 4294967295 (comma-separated), got "99999999999999999999"'],
    [['--workload-seeds', '1,1'], 'ninelives: --workload-seeds names 1 twice'],
    [['--config', '1AppVM,1AppVM'], 'ninelives: --config names 1AppVM twice'],
    [['--workload-seeds', Array.from({ length: 65 }, (_, seed) => seed).join(',')], 'ninelives: --workload-seeds names 65 values, more than 64'],
  ])('%j: one line, exit 2', async (options, message) => {
    const result = await run(['check', '--runs', '1', ...options]);
    expect(result).toMatchObject({ exitCode: 2, stdout: '', stderr: `${message}\n` });
  });

  it('on a violation prints the shrunk scenario as JSON and the commands that replay it, and exits 1', () => {
    const result = runBuiltCli(['check', '--mechanism', 'microreset', '--disable', 'scheduler-consistency', '--invariant', 'recovered-audit-clean', '--runs', '100'], NO_SOAK);
    expect(result.exitCode).toBe(EXIT_FAILURE);
    expect(result.stderr).toBe(`ninelives: 1 of 1 invariants violated (seed ${DEFAULT_SEED})\n`);
    expect(result.stdout.split('\n')[0]).toBe(`ninelives check: seed ${DEFAULT_SEED}, 100 scenarios per invariant (NINELIVES_CHECK_RUNS raises it)`);
    expect(result.stdout).toMatch(/^FAIL {2}recovered-audit-clean: violated after \d+ scenarios, shrunk \d+ times/m);
    expect(result.stdout).toMatch(/^violation: recovered, but when the mechanism released the CPUs the audit found: schedulerViewsDisagree/m);
    const scenario = printedCounterexample(result.stdout);
    expect(parseScenario(JSON.stringify(scenario))).toEqual(scenario);
    const replay = /^replay \(fast-check seed and path\): (.*)$/m.exec(result.stdout)?.[1] ?? '';
    expect(replay).toMatch(new RegExp(`^ninelives check --mechanism microreset --disable scheduler-consistency --seed ${DEFAULT_SEED} --path [\\d:]+ --invariant recovered-audit-clean$`));
    expect(result.stdout).toContain(`run this scenario alone: ninelives check --scenario '${JSON.stringify(scenario)}' --invariant recovered-audit-clean`);

    // the printed command replays the very same scenario
    const replayed = runBuiltCli(replay.split(' ').slice(1), NO_SOAK);
    expect(replayed.exitCode).toBe(EXIT_FAILURE);
    expect(replayed.stdout).toMatch(/^ninelives check: seed \d+, replaying one counterexample$/m);
    expect(printedCounterexample(replayed.stdout)).toEqual(scenario);
  });

  it('runs one scenario: its record, then each invariant\'s verdict', async () => {
    const scenario = {
      configuration: '1AppVM',
      seed: 0,
      runLengthNs: 300_000_000,
      mechanism: 'microreset',
      disabledSteps: ['scheduler-consistency'],
      faults: [{ trigger: { timeNs: 89_598_865, instructionsAfter: 2_710 }, target: { type: 'failstop' } }],
    };
    const result = await run(['check', '--scenario', JSON.stringify(scenario)]);
    expect(result.exitCode).toBe(EXIT_FAILURE);
    const verdicts = result.stdout.slice(result.stdout.lastIndexOf('}\n') + 2).split('\n').filter((line) => line !== '');
    expect(verdicts).toEqual([
      expect.stringMatching(/^FAIL {2}recovered-audit-clean: recovered, but when the mechanism released the CPUs/),
      'ok    golden-results',
      'ok    preserved-vm-state',
      'ok    retry-same-effect',
      'ok    deterministic',
    ]);
    const record = JSON.parse(result.stdout.slice(0, result.stdout.lastIndexOf('}\n') + 1)) as { replay: string };
    expect(record.replay).toBe(`ninelives check --scenario '${JSON.stringify(scenario)}'`);
    expect(result.stderr).toBe('ninelives: 1 of 5 invariants violated by this scenario\n');
  });

  it('lists the invariants with their one-sentence descriptions', async () => {
    const result = await run(['check', '--list']);
    expect(result.exitCode).toBe(EXIT_SUCCESS);
    expect(result.stdout.split('\n').filter((line) => line !== '').map((line) => line.split(' ')[0])).toEqual([
      'recovered-audit-clean',
      'golden-results',
      'preserved-vm-state',
      'retry-same-effect',
      'deterministic',
    ]);
  });

  it('checks a user\'s own invariant loaded from a module, and names the module in the replay command', () => {
    const directory = mkdtempSync(join(tmpdir(), 'ninelives-check-'));
    const file = join(directory, 'my-invariants.mjs');
    writeFileSync(
      file,
      `export const invariants = [{
        name: 'fast-service',
        description: 'A recovered trial interrupts service for less than 100 ms.',
        check(run) {
          const recovery = run.record.outcome === 'detected' ? run.record.recovery : undefined;
          if (recovery?.result !== 'recovered' || recovery.serviceInterruptionMs < 100) return undefined;
          return 'service interrupted for ' + recovery.serviceInterruptionMs + ' ms';
        },
      }];\n`,
    );
    const result = runBuiltCli(['check', '--load', file, '--invariant', 'fast-service', '--mechanism', 'microreset', '--runs', '60'], NO_SOAK);
    expect(result.exitCode).toBe(EXIT_FAILURE);
    expect(result.stdout).toMatch(/^violation: service interrupted for \d+(\.\d+)? ms$/m);
    const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expect(result.stdout).toMatch(new RegExp(`^replay \\(fast-check seed and path\\): ninelives check --load ${escaped} --mechanism microreset --seed \\d+ --path [\\d:]+ --invariant fast-service$`, 'm'));
    rmSync(directory, { recursive: true, force: true });
  });

  it('gives up on a module whose top-level await never settles, in words (Node exited 13 silently before)', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'ninelives-check-'));
    const file = join(directory, 'never.mjs');
    writeFileSync(file, 'await new Promise(() => {});\nexport const invariants = [];\n');
    await expect(loadInvariants(file, 50)).rejects.toThrow(`--load could not import ${file}: it did not finish loading within 0.05 s (a top-level await that never settles?)`);
    rmSync(directory, { recursive: true, force: true });
  });

  it('reports a wrong command line on one line with exit code 2', async () => {
    expectOneErrorLine(await run(['check', '--invariant', 'no-such-invariant']), /^ninelives: unknown invariant "no-such-invariant"; known invariants: recovered-audit-clean, golden-results, preserved-vm-state, retry-same-effect, deterministic\n$/);
    expectOneErrorLine(await run(['check', '--path', '3:1', '--invariant', 'deterministic']), /^ninelives: --path replays one counterexample: give the --seed/);
    expectOneErrorLine(await run(['check', '--mechanism', 'microreboot', '--disable', 'clear-irq-count']), /^ninelives: microreboot has no step named clear-irq-count\n$/);
    expectOneErrorLine(await run(['check', '--fault', 'cosmic']), /^ninelives: --fault expects failstop, register, code or memory/);
    expectOneErrorLine(await run(['check', '--scenario', '{"faults":[]}']), /^ninelives: not a scenario: /);
    // failover needs a second host: a scenario with it threw, and the search said "ok" over one scenario
    expectOneErrorLine(await run(['check', '--mechanism', 'microreset,failover']), /^ninelives: scenarios recover with none, microreset, microreboot, not failover\n$/);
    const scenario = (mechanism: string, timeNs: number): string =>
      JSON.stringify({ configuration: '1AppVM', seed: 1, runLengthNs: 300_000_000, mechanism, faults: [{ trigger: { timeNs, instructionsAfter: 5 }, target: { type: 'failstop' } }] });
    expectOneErrorLine(await run(['check', '--scenario', scenario('replay-failover', 1e8)]), /^ninelives: not a scenario: mechanism must be none, microreset, microreboot\n$/);
    // a trigger far past the end ran on for minutes
    expectOneErrorLine(await run(['check', '--scenario', scenario('microreset', 1e14)]), /^ninelives: not a scenario: faults\[0\]\.trigger\.timeNs must be within the run \(below runLengthNs, 300000000\)\n$/);
    vi.stubEnv('NINELIVES_CHECK_RUNS', 'many');
    expectOneErrorLine(await run(['check']), /^ninelives: NINELIVES_CHECK_RUNS must be an integer from 1 to 1000000, got "many"\n$/);
  });
});
