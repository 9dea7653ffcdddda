/**
 * The named invariants: each fails for a real reason, found by running the model and kept here as
 * a fixed scenario (that they hold on honest scenarios is properties.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { defineInvariant } from '../../src/check/invariant.js';
import { violationOf } from '../../src/check/check.js';
import {
  deterministic,
  goldenResults,
  invariantNamed,
  invariants,
  preservedVmState,
  recoveredAuditClean,
  retrySameEffect,
  UnknownInvariantError,
} from '../../src/check/invariants.js';
import { runScenario, type Scenario, type ScenarioRun } from '../../src/check/scenario.js';

const MS = 1_000_000;
const oneAppVm = { configuration: '1AppVM', runLengthNs: 300 * MS } as const;

function recoveryResult(run: ScenarioRun): string | undefined {
  return run.record.outcome === 'detected' ? run.record.recovery?.result : undefined;
}

describe('each invariant fails for a real reason', () => {
  it('recovered-audit-clean: without scheduler-consistency, a recovery the trial calls successful hands back disagreeing scheduler views', () => {
    const scenario: Scenario = {
      ...oneAppVm,
      seed: 0,
      mechanism: 'microreset',
      disabledSteps: ['scheduler-consistency'],
      faults: [{ trigger: { timeNs: 89_598_865, instructionsAfter: 2_710 }, target: { type: 'failstop' } }],
    };
    const broken = runScenario(scenario);
    expect(recoveryResult(broken)).toBe('recovered');
    expect(recoveredAuditClean.check(broken)).toMatch(/when the mechanism released the CPUs the audit found: schedulerViewsDisagree/);
    const repaired = runScenario({ ...scenario, disabledSteps: [] });
    expect(recoveryResult(repaired)).toBe('recovered');
    expect(recoveredAuditClean.check(repaired)).toBeUndefined();
  });

  it('golden-results: found a fault that made multicall return a short count UnixBench let through; UnixBench now checks the count', () => {
    // The invariant first found this: a code fault in do_multicall returned a count short of the batch, and
    // UnixBench, which then only checked that the count did not exceed the batch, finished with
    // results differing from the golden run's while the trial said non-manifested.
    const run = runScenario({
      ...oneAppVm,
      seed: 1,
      mechanism: 'microreboot',
      disabledSteps: [],
      faults: [{ trigger: { timeNs: 55_839_546, instructionsAfter: 1_484 }, target: { type: 'code', wordOffset: 2, bit: 0 } }],
    });
    expect(run.record.outcome !== 'notInjected' && run.record.injection.instruction).toMatch(/do_multicall/);
    expect(run.record.outcome === 'sdc' && run.record.cause).toMatch(/^unixbench \(domain 1\) failed: multicall\(\d mmu_update\) returned \d+$/);
    expect(goldenResults.check(run)).toBeUndefined();
  });

  it('golden-results: a guest that lets a wrong result through is caught by comparison with the golden run', () => {
    // A FLAGS bit the ISA does not use is always masked: a non-manifested trial.
    const run = runScenario({
      ...oneAppVm,
      seed: 1,
      mechanism: 'none',
      disabledSteps: [],
      faults: [{ trigger: { timeNs: 100 * MS, instructionsAfter: 5 }, target: { type: 'register', register: 'flags', bit: 20 } }],
    });
    expect(run.record.outcome).toBe('nonManifested');
    expect(goldenResults.check(run)).toBeUndefined();
    // one result folded in that the guest's own checks did not see
    const unixBench = run.system.host.kernel(1);
    const saved = unixBench?.saveState() as { state: { checksum: number } };
    saved.state.checksum = (saved.state.checksum + 1) | 0;
    unixBench?.loadState(saved);
    expect(goldenResults.check(run)).toMatch(/^unixbench \(domain 1\) is not declared failed, but after \d+ operations its results checksum is -?\d+, the golden run's -?\d+$/);
  });

  it('preserved-vm-state: microreset trusts a corrupted frame-table pointer and its frame-table pass overwrites VMs\' I/O rings; microreboot rebuilds the pointer', () => {
    const scenario: Scenario = {
      configuration: '1AppVM-blk',
      runLengthNs: 300 * MS,
      seed: 1,
      mechanism: 'microreset',
      disabledSteps: [],
      faults: [
        // fraction: the word static.frameTable, 354th of the 2,618 static and in-use heap words;
        // bit 10 moves the table onto the heap words after it, the PrivVM's and BlkBench's rings among them
        { trigger: { timeNs: 100 * MS, instructionsAfter: 100 }, target: { type: 'memory', fraction: 0.13502673796791445, bit: 10 } },
        // BlkBench makes no page-table update that would notice; a fail-stop brings the recovery
        { trigger: { timeNs: 102 * MS, instructionsAfter: 50 }, target: { type: 'failstop' } },
      ],
    };
    const reset = runScenario(scenario);
    expect(reset.record.outcome !== 'notInjected' && reset.record.injection.location).toMatchObject({ type: 'memory', symbol: 'static.frameTable', bit: 10 });
    expect(recoveryResult(reset)).toBe('recovered');
    expect(preservedVmState.check(reset)).toBe('recovery changed privvm (domain 0): ring; blkbench (domain 1): ring');
    const reboot = runScenario({ ...scenario, mechanism: 'microreboot' });
    expect(recoveryResult(reboot)).toBe('recovered');
    expect(preservedVmState.check(reboot)).toBeUndefined();
  });

  it('retry-same-effect judges only rewinds after fail-stop faults (a bit flip can corrupt what the retry then finishes)', () => {
    const run = runScenario({
      ...oneAppVm,
      seed: 0,
      mechanism: 'microreset',
      disabledSteps: [],
      faults: [
        { trigger: { timeNs: 103_521_310, instructionsAfter: 5_074 }, target: { type: 'code', wordOffset: 3, bit: 2 } },
        { trigger: { timeNs: 103_521_310, instructionsAfter: 5 }, target: { type: 'failstop' } },
      ],
    });
    expect(run.atRecovery?.rewound).toHaveLength(1);
    expect(retrySameEffect.appliesTo?.(run)).toBe(false);
    expect(retrySameEffect.check(run)).toBeUndefined();
  });

  it('deterministic: holds for a real run, and reports where a second record differs', () => {
    const run = runScenario({ ...oneAppVm, seed: 3, mechanism: 'microreboot', disabledSteps: [], faults: [{ trigger: { timeNs: 90 * MS, instructionsAfter: 77 }, target: { type: 'failstop' } }] });
    expect(deterministic.check(run)).toBeUndefined();
    const record = run.record;
    const drifted: ScenarioRun = { ...run, rerun: () => ({ ...record, trialSeed: record.trialSeed + 1 }) };
    expect(deterministic.check(drifted)).toBe(`run again, the same scenario gave a different record (first run vs again from boot) at .trialSeed: ${record.trialSeed} vs ${record.trialSeed + 1}`);
  });
});

describe('retry-same-effect when no step switched off can break it', () => {
  // Every step of a page-table update that is not idempotent runs with the page holding the
  // entries page-locked (as Xen's mod_l1_entry under page_lock), and only the frame-table pass
  // clears that lock: without the pass the retry never gets far enough to apply anything twice.
  it('a half-done mmu_update retried after undo, or after the frame-table pass alone, has the golden run\'s effect; without the pass the retry spins on the page lock', () => {
    const scenario: Scenario = {
      ...oneAppVm,
      seed: 1,
      mechanism: 'microreset',
      disabledSteps: [],
      // after get_page(new) has raised the new frame's use count
      faults: [{ trigger: { timeNs: 48_886_356, instructionsAfter: 682 }, target: { type: 'failstop' } }],
    };
    const repaired = runScenario(scenario);
    expect(repaired.atRecovery?.rewound.map((call) => call.hypercall)).toEqual([0]);
    expect(repaired.record.outcome === 'detected' && repaired.record.recovery?.steps.find((step) => step.step === 'undo-partial-updates')?.work).toEqual({ updatesUndone: 1 });
    expect(retrySameEffect.appliesTo?.(repaired)).toBe(true);
    expect(retrySameEffect.check(repaired)).toBeUndefined();
    // the frame-table pass alone recounts what the undo would restore
    const passOnly = runScenario({ ...scenario, disabledSteps: ['undo-partial-updates'] });
    expect(recoveryResult(passOnly)).toBe('recovered');
    expect(retrySameEffect.check(passOnly)).toBeUndefined();
    // without it, the retried update hangs: a failed recovery, and no effect to judge
    const noPass = runScenario({ ...scenario, disabledSteps: ['frame-table-pass'] });
    expect(noPass.record.outcome === 'detected' && noPass.record.recovery).toMatchObject({ result: 'recoveryFailed', cause: 'secondFailure', detail: 'watchdog hang on cpu 1' });
    expect(retrySameEffect.check(noPass)).toBeUndefined();
  });
});

describe('the invariant set', () => {
  it('has five named invariants, each described in one sentence', () => {
    expect(invariants.map((invariant) => invariant.name)).toEqual(['recovered-audit-clean', 'golden-results', 'preserved-vm-state', 'retry-same-effect', 'deterministic']);
    for (const invariant of invariants) expect(invariant.description).toMatch(/^[A-Z][^.]*(\.[^ .][^.]*)*\.$/);
  });

  it('finds invariants by name, and says which exist when one does not', () => {
    expect(invariantNamed('golden-results')).toBe(goldenResults);
    expect(() => invariantNamed('no-such')).toThrow(UnknownInvariantError);
    expect(() => invariantNamed('no-such')).toThrow(/known invariants: recovered-audit-clean, golden-results/);
  });

  it('checks the shape of a user\'s invariant', () => {
    expect(() => defineInvariant({ name: 'Bad Name', description: 'x.', check: () => undefined })).toThrow(/lower-case words/);
    expect(() => defineInvariant({ name: 'fine', description: ' ', check: () => undefined })).toThrow(/one-sentence description/);
    // what a module may export by mistake: a raw TypeError ("reading 'trim'") before
    for (const [value, shown] of [[42, 'number 42'], ['x', 'string "x"'], [null, 'null'], [undefined, 'undefined'], [{ name: 'fine' }, 'an object with name']] as const) {
      expect(() => defineInvariant(value as never)).toThrow(`an invariant is an object with a name, a description and a check function, not ${shown}`);
    }
  });

  it('counts a check that does not answer in words or undefined (an async one) as a violation that says so', () => {
    const asynchronous = { name: 'late', description: 'Answers later.', check: (async () => undefined) as never };
    expect(violationOf(asynchronous, {} as ScenarioRun)).toBe('the check returned a promise (it must not be async), not a violation in words or undefined');
  });
});
