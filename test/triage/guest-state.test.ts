/**
 * Guest state in the footprint: a guest out of step with the fault-free run (behind it, as the
 * fault-free run earlier) holds other values for reasons of timing, which are progress, never
 * damage; a guest in step has every field that differs listed, named as the guests name it, and
 * setting the listed regions back leaves nothing listed (without touching the golden run's
 * checkpoints); a guest that crashed is damage whatever its step. A guest's context in its vCPU
 * is compared at the guest's own point; and a failed recovery found by scanning code faults has a
 * restoring set of guest state alone, which its cluster reads as such.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareGuests, guestNames, guestStateOf, isGuestRegion, KERNEL_RECORD, setGuestsBack, type GuestStateTree } from '../../src/campaign/triage/guest-footprint.js';
import { clusterDiagnoses } from '../../src/campaign/triage/cluster.js';
import { diagnoseTrial } from '../../src/campaign/triage/diagnose.js';
import { compareWithGolden } from '../../src/campaign/triage/footprint.js';
import { guestContextAtOwnPoint } from '../../src/campaign/triage/guest-point.js';
import { Vcpu } from '../../src/hypervisor/layout.js';
import { recoverySteps } from '../../src/recovery/steps/index.js';
import type { TrialDiagnosis } from '../../src/results/triage.js';
import type { TrialSpec } from '../../src/trial/record.js';
import { runTrial } from '../../src/trial/trial.js';
import { goldenSystemAt } from '../../src/trial/counterfactual.js';
import { goldenRun } from '../../src/trial/golden-cache.js';
import type { System } from '../../src/trial/system.js';

const MS = 1_000_000;
const golden = goldenRun({ configuration: '3AppVM', seed: 7 });

function compare(trial: System, reference: System, start: System): ReturnType<typeof compareGuests> {
  return compareGuests(guestStateOf(trial), guestStateOf(reference), guestStateOf(start), guestNames(trial));
}

/** Top-level numeric fields of a guest kernel's working state (not the verdict's record). */
function numericFields(tree: GuestStateTree, domainId: number): string[] {
  const state = (tree.host.kernels[domainId] as { state: Record<string, unknown> }).state;
  return Object.keys(state).filter((field) => typeof state[field] === 'number' && !KERNEL_RECORD.has(field));
}

const domains = [0, 1, 2];

describe('guest state in the footprint', () => {
  it('lists nothing of guests behind the fault-free run: their differences are progress', () => {
    fc.assert(
      fc.property(fc.integer({ min: 20, max: 400 }), fc.integer({ min: 1, max: 20_000 }), (startMs, gapUs) => {
        const start = goldenSystemAt(golden, startMs * MS);
        const end = goldenSystemAt(golden, startMs * MS + gapUs * 1_000);
        const behind = compare(start, end, start);
        expect(behind.differences).toEqual([]);
        // the guests did move in between: it is progress that was ignored, not a comparison of nothing
        if (JSON.stringify(guestStateOf(start)) !== JSON.stringify(guestStateOf(end))) expect(behind.progressIgnored).toBeGreaterThan(0);
      }),
      { numRuns: 15 },
    );
  });

  it('lists every field changed in a guest in step, by its name, and setting them back lists nothing', () => {
    fc.assert(
      fc.property(fc.integer({ min: 20, max: 400 }), fc.constantFrom(...domains), fc.nat(), fc.integer({ min: 1, max: 1000 }), (atMs, domainId, pick, delta) => {
        const reference = goldenSystemAt(golden, atMs * MS);
        const checkpointDigest = goldenSystemAt(golden, atMs * MS).digest();
        const trial = goldenSystemAt(golden, atMs * MS);
        const tree = guestStateOf(trial);
        const fields = numericFields(tree, domainId);
        const field = fields[pick % fields.length];
        const state = (tree.host.kernels[domainId] as { state: Record<string, number> }).state;
        state[field] += delta;
        trial.host.loadState(tree.host);
        const start = goldenSystemAt(golden, (atMs - 10) * MS);
        const found = compare(trial, reference, start);
        expect(found.differences.map((difference) => difference.region)).toEqual([`${guestNames(trial)(domainId)}.${field}`]);
        expect(found.differences.every((difference) => isGuestRegion(difference.region))).toBe(true);
        setGuestsBack(trial, guestStateOf(reference), [...found.paths.values()].flat());
        expect(compare(trial, reference, start).differences).toEqual([]);
        expect(trial.digest()).toBe(reference.digest());
        expect(goldenSystemAt(golden, atMs * MS).digest()).toBe(checkpointDigest);
      }),
      { numRuns: 15 },
    );
  });

  it('lists a crashed guest as one region even when it is out of step, and setting it back revives it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 20, max: 400 }), fc.constantFrom(...domains), (startMs, domainId) => {
        const start = goldenSystemAt(golden, startMs * MS);
        const end = goldenSystemAt(golden, startMs * MS + 5 * MS);
        const trial = goldenSystemAt(golden, startMs * MS);
        trial.host.kernel(domainId)?.crash('resume token corrupted', startMs * MS);
        const tree = guestStateOf(trial);
        const vcpu = tree.host.vcpus[domainId];
        if (vcpu === null) throw new Error('no vCPU');
        tree.host.vcpus[domainId] = { ...vcpu, crashed: true };
        trial.host.loadState(tree.host);
        const found = compare(trial, end, start);
        const crashed = `${guestNames(trial)(domainId)}.crashed`;
        expect(found.differences.map((difference) => difference.region)).toEqual([crashed]);
        setGuestsBack(trial, guestStateOf(end), found.paths.get(crashed) ?? []);
        expect(trial.host.kernel(domainId)?.verdict(startMs * MS).kind).toBe('correct');
        expect(guestStateOf(trial).host.vcpus[domainId]?.crashed).toBe(false);
      }),
      { numRuns: 10 },
    );
  });

  it('lists an operation in flight of another kind as one region, and one of the same kind field by field', () => {
    const reference = goldenSystemAt(golden, 100 * MS);
    const start = goldenSystemAt(golden, 90 * MS);
    const regionsWith = (inFlight: unknown): string[] => {
      const tree = guestStateOf(reference);
      (tree.host.kernels[1] as { state: { inFlight: unknown } }).state.inFlight = inFlight;
      return compareGuests(tree, guestStateOf(reference), guestStateOf(start), guestNames(reference)).differences.map((difference) => difference.region);
    };
    const inFlight = (guestStateOf(reference).host.kernels[1] as { state: { inFlight: { kind: string } } }).state.inFlight;
    const other = inFlight.kind === 'setTimer' ? { kind: 'yield' } : { kind: 'setTimer', durationUs: 7 };
    expect(regionsWith(other)).toEqual(['guest[unixbench].inFlight']);
    expect(regionsWith({ kind: 'setTimer', durationUs: -1 })).toEqual(inFlight.kind === 'setTimer' ? ['guest[unixbench].inFlight.durationUs'] : ['guest[unixbench].inFlight']);
  });

  it('names the shared pages as the guests do, and a device field the fault-free run left alone is damage', () => {
    const system = goldenSystemAt(golden, 100 * MS);
    expect(domains.map(guestNames(system))).toEqual(['guest[privvm]', 'guest[unixbench]', 'guest[netbench]']);
    const start = goldenSystemAt(golden, 99 * MS);
    const trial = goldenSystemAt(golden, 100 * MS);
    const tree = guestStateOf(trial);
    const block = guestStateOf(start).disk.blocks.findIndex((value, index) => value === tree.disk.blocks[index]);
    tree.disk.blocks[block] ^= 1;
    trial.disk.loadState(tree.disk);
    trial.machine.memory.words[trial.hypervisor.layout.rings[2] + 3] ^= 1 << 20;
    const regions = compareWithGolden(trial, system, start).differences.map((difference) => difference.region);
    expect(regions.sort()).toEqual([`disk.blocks[${block}]`, 'guest[netbench].ring.responseConsumer']);
  });
});

describe("a guest's context in its vCPU, at the guest's own point", () => {
  it('is, in the fault-free run behind itself, the resume token the guest holds: no token is listed', () => {
    fc.assert(
      fc.property(fc.integer({ min: 20, max: 400 }), fc.integer({ min: 50, max: 5_000 }), (startMs, gapUs) => {
        const start = goldenSystemAt(golden, startMs * MS);
        const end = goldenSystemAt(golden, startMs * MS + gapUs * 1_000);
        const ownPoint = guestContextAtOwnPoint(golden, start, end, startMs * MS, startMs * MS + gapUs * 1_000);
        const layout = start.hypervisor.layout;
        for (const domainId of domains) {
          const token = ownPoint.get(layout.vcpus[domainId] + Vcpu.offset.resumeToken);
          const [before, after] = [start.host.vcpuPoint(domainId), end.host.vcpuPoint(domainId)];
          const moved = before?.token !== after?.token || before?.awaitingReturn !== after?.awaitingReturn;
          if (moved) expect(token).toBe(start.host.vcpuPoint(domainId)?.token);
          else expect(token).toBeUndefined();
        }
        const regions = compareWithGolden(start, end, start, ownPoint).differences.map((difference) => difference.region);
        expect(regions.filter((region) => region.endsWith('.resumeToken'))).toEqual([]);
      }),
      { numRuns: 15 },
    );
  });
});

/**
 * The first failed recovery of a scan of code faults whose restoring set is guest state alone
 * (on this model, trial 274: the PrivVM crashed).
 */
function firstGuestRestoringSet(): { diagnosis: TrialDiagnosis } {
  for (let trialIndex = 250; trialIndex < 450; trialIndex++) {
    const spec: TrialSpec = { configuration: '3AppVM', seed: 2018, trialIndex, faultType: 'code', mechanism: 'microreset' };
    const { record } = runTrial(spec);
    // a guest's failure is where guest damage shows: the other failed recoveries are not diagnosed
    if (record.outcome !== 'detected' || record.recovery?.result !== 'recoveryFailed' || !/VmFail/.test(record.recovery.cause ?? '')) continue;
    const diagnosis = diagnoseTrial({ id: String(trialIndex), spec, recovery: record.recovery, replay: record.replay }, { maxReruns: 64 });
    if (diagnosis.restoring.kind === 'found' && diagnosis.restoring.regions.every(isGuestRegion)) return { diagnosis };
  }
  throw new Error('no failed recovery with a restoring set of guest state in 200 code faults');
}

describe('a failed recovery whose damage is in guest state', () => {
  it('gets a restoring set of guest state from its footprint, and its cluster reads as guest damage', () => {
    const { diagnosis } = firstGuestRestoringSet();
    if (diagnosis.restoring.kind === 'none') throw new Error('expected a restoring set');
    const footprint = new Set([...diagnosis.footprint.atDetection, ...(diagnosis.footprint.afterRecovery ?? [])].map((difference) => difference.region));
    for (const region of diagnosis.restoring.regions) expect(footprint.has(region), region).toBe(true);
    const cluster = clusterDiagnoses('scan', [diagnosis], recoverySteps, []).clusters[0];
    expect(cluster.restoring.every(isGuestRegion)).toBe(true);
    expect(cluster.reading).toMatch(/^guest kernel state damaged (before|after) recovery \(.+\): no hypervisor repair restores it$/);
  }, 900_000);
});
