/**
 * Trials as a whole: fast-forwarding from a golden checkpoint changes nothing, a trial's record
 * is the same byte for byte on every run, and the record's replay command reproduces it through
 * the CLI.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run.js';
import { faultTypes, type FaultType } from '../../src/faults/fault.js';
import type { MechanismName } from '../../src/recovery/mechanisms.js';
import { microreset } from '../../src/recovery/microreset.js';
import type { TrialRecord, TrialSpec } from '../../src/trial/record.js';
import { CHECKPOINT_INTERVAL_NS } from '../../src/trial/golden-cache.js';
import { runTrial } from '../../src/trial/trial.js';

const MS = 1_000_000;
const indexes = fc.integer({ min: 0, max: 99_999 });
const faultTypeArbitrary = fc.constantFrom(...faultTypes);

function recordOf(spec: TrialSpec, fromBoot = false): TrialRecord {
  return runTrial(spec, { fromBoot }).record;
}

describe('fast-forward', () => {
  it('gives the same record as running from boot (1AppVM, every fault type)', () => {
    const outcomes = new Set<string>();
    let pastFirstCheckpoint = 0;
    fc.assert(
      fc.property(indexes, faultTypeArbitrary, (trialIndex, faultType) => {
        const spec: TrialSpec = { configuration: '1AppVM', seed: 21, trialIndex, faultType, runLengthNs: 300 * MS };
        const fastForwarded = recordOf(spec);
        expect(JSON.stringify(recordOf(spec, true))).toBe(JSON.stringify(fastForwarded));
        outcomes.add(fastForwarded.outcome);
        if (fastForwarded.plan.trigger.timeNs >= CHECKPOINT_INTERVAL_NS) pastFirstCheckpoint++;
      }),
      { numRuns: 24 },
    );
    // not vacuous: several trials really fast-forwarded past boot, and they ended in more than one way
    expect(pastFirstCheckpoint).toBeGreaterThan(5);
    expect(outcomes.size).toBeGreaterThan(1);
  });

  it('gives the same record as running from boot, recovery included', () => {
    let recovered = 0;
    fc.assert(
      fc.property(indexes, fc.constantFrom<FaultType>('register', 'code'), fc.constantFrom<MechanismName>('microreset', 'microreboot'), (trialIndex, faultType, mechanism) => {
        // a failstop fault is always detected, so every run checks at least one recovery
        for (const type of ['failstop', faultType] as const) {
          const spec: TrialSpec = { configuration: '1AppVM', seed: 21, trialIndex, faultType: type, runLengthNs: 300 * MS, mechanism };
          const fastForwarded = recordOf(spec);
          expect(JSON.stringify(recordOf(spec, true))).toBe(JSON.stringify(fastForwarded));
          if (fastForwarded.outcome === 'detected' && fastForwarded.recovery !== undefined) recovered++;
        }
      }),
      { numRuns: 4 },
    );
    expect(recovered).toBeGreaterThanOrEqual(3);
  });

  it('gives the same record as running from boot (3AppVM)', () => {
    fc.assert(
      fc.property(indexes, faultTypeArbitrary, (trialIndex, faultType) => {
        const spec: TrialSpec = { configuration: '3AppVM', seed: 7, trialIndex, faultType, runLengthNs: 400 * MS };
        expect(JSON.stringify(recordOf(spec, true))).toBe(JSON.stringify(recordOf(spec)));
      }),
      { numRuns: 4 },
    );
  });
});

describe('determinism', () => {
  it('a trial gives the same record, byte for byte, on every run', () => {
    fc.assert(
      fc.property(indexes, faultTypeArbitrary, fc.constantFrom('1AppVM', '3AppVM'), fc.integer({ min: 0, max: 1 }), (trialIndex, faultType, configuration, seed) => {
        const spec: TrialSpec = { configuration, seed, trialIndex, faultType, runLengthNs: 250 * MS };
        const first = recordOf(spec);
        const second = recordOf(spec);
        expect(second).toEqual(first);
        expect(JSON.stringify(second)).toBe(JSON.stringify(first));
      }),
      { numRuns: 12 },
    );
  });

  it('a trial does not depend on which trials ran before it in the process', () => {
    const specs: TrialSpec[] = faultTypes.map((faultType, index) => ({ configuration: '1AppVM', seed: 4, trialIndex: 100 + index, faultType, runLengthNs: 250 * MS }));
    const forwards = specs.map((spec) => JSON.stringify(recordOf(spec)));
    const backwards = specs.slice().reverse().map((spec) => JSON.stringify(recordOf(spec))).reverse();
    expect(backwards).toEqual(forwards);
  });

  it('tracing does not change the record', () => {
    for (const faultType of faultTypes) {
      const spec: TrialSpec = { configuration: '1AppVM', seed: 2, trialIndex: 17, faultType, runLengthNs: 250 * MS };
      expect(JSON.stringify(runTrial(spec, { trace: true }).record)).toBe(JSON.stringify(recordOf(spec)));
    }
  });
});

async function cliRecord(command: string): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const [program, ...argv] = command.split(' ');
  expect(program).toBe('ninelives');
  let stdout = '';
  let stderr = '';
  const exitCode = await runCli(argv, { stdout: { write: (text: string) => (stdout += text) }, stderr: { write: (text: string) => (stderr += text) } });
  return { exitCode, stdout, stderr };
}

describe('the replay command', () => {
  const specs: TrialSpec[] = [
    { configuration: '1AppVM', seed: 7, trialIndex: 3, faultType: 'register', runLengthNs: 300 * MS },
    { configuration: '1AppVM', seed: 123, trialIndex: 40, faultType: 'code', runLengthNs: 200 * MS },
    { configuration: '1AppVM-blk', seed: 8, trialIndex: 2, faultType: 'memory', runLengthNs: 150 * MS },
    { configuration: '3AppVM', seed: 42, trialIndex: 5, faultType: 'failstop' },
    { configuration: '3AppVM', seed: 1, trialIndex: 9, faultType: 'register', runLengthNs: 300 * MS, strictNetBench: true },
    { configuration: '1AppVM', seed: 6, trialIndex: 11, faultType: 'failstop', runLengthNs: 300 * MS, mechanism: 'microreset', disabledSteps: microreset.repairOrder.slice(1, 3) },
    { configuration: '3AppVM', seed: 6, trialIndex: 12, faultType: 'failstop', runLengthNs: 400 * MS, mechanism: 'microreboot', host: { cpus: 16, memoryGiB: 32 } },
  ];

  for (const spec of specs) {
    it(`reproduces the record through the CLI: ${spec.configuration} ${spec.faultType} trial ${spec.trialIndex}`, async () => {
      const record = recordOf(spec);
      const result = await cliRecord(record.replay);
      expect(result.stderr).toBe('');
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toBe(JSON.stringify(record, null, 2) + '\n');
    });
  }

  it('the trials with a mechanism really recovered (so the replay covered the recovery record)', () => {
    for (const spec of specs.filter((candidate) => candidate.mechanism !== undefined)) {
      const record = recordOf(spec);
      expect(record.outcome).toBe('detected');
      expect(record.outcome === 'detected' && record.recovery !== undefined).toBe(true);
    }
  });

  it('names only the options that differ from the defaults', () => {
    expect(recordOf(specs[3]).replay).toBe('ninelives inject --config 3AppVM --fault failstop --seed 42 --trial 5');
    expect(recordOf(specs[4]).replay).toBe('ninelives inject --config 3AppVM --fault register --seed 1 --trial 9 --run-length-ms 300 --strict-netbench');
  });
});
