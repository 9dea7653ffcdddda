/**
 * Diagnosis of one failed recovery: its footprint at the detection and after recovery, the
 * audit's findings after recovery, the disabled steps that repair it, and a minimal restoring
 * set found by delta debugging. Every verdict is a re-run from the detection snapshot through the
 * machine (trial/counterfactual.ts).
 */
import { performance } from 'node:perf_hooks';
import type { Injection } from '../../faults/fault.js';
import { audit } from '../../hypervisor/audit.js';
import { AddressNamer } from '../../hypervisor/symbols.js';
import type { Detection } from '../../hypervisor/detection.js';
import { settle } from '../../trial/golden.js';
import { goldenSystemAt, recoverFromDetection, redeliverFromTrap, runOnFromSdcPoint, runToDetectionPoint, runToSdcPoint, systemAtDetection, systemAtSdcPoint, type DetectionPoint } from '../../trial/counterfactual.js';
import type { GoldenRun } from '../../trial/golden-cache.js';
import type { CpuState } from '../../machine/cpu.js';
import type { RecoveryRecord, TrialSpec } from '../../trial/record.js';
import { System, type SystemOptions } from '../../trial/system.js';
import type { RestoringSet, TrialDiagnosis } from '../../results/triage.js';
import { ddmin } from './ddmin.js';
import { compareRegisters, compareWithGolden, regionOfName, setBack, setRegister, trapRegisters, type Comparison } from './footprint.js';
import { isGuestRegion } from './guest-footprint.js';
import { guestContextAtOwnPoint } from './guest-point.js';

export interface TriageBounds {
  /** re-runs per trial, the repair steps' and the search's together */
  readonly maxReruns: number;
  /** wall-clock budget per trial; absent: only re-runs bound it (and results stay deterministic) */
  readonly timeBudgetMs?: number;
}

export const DEFAULT_BOUNDS: TriageBounds = { maxReruns: 64 };

/** The failed trial to diagnose: its id, spec and recovery record. */
export interface FailedTrial {
  readonly id: string;
  readonly spec: TrialSpec;
  readonly recovery: RecoveryRecord;
  readonly replay: string;
}

export class NotReproducedError extends Error {}

export function diagnoseTrial(trial: FailedTrial, bounds: TriageBounds = DEFAULT_BOUNDS): TrialDiagnosis {
  const startMs = performance.now();
  const outOfTime = (): boolean => bounds.timeBudgetMs !== undefined && performance.now() - startMs > bounds.timeBudgetMs;
  const point = runToDetectionPoint(trial.spec);
  if (point === undefined) throw new NotReproducedError(`${trial.id}: the trial did not reach a detection when re-run`);
  const atDetection = footprintAtDetection(point);
  const afterRecovery = footprintAfterRecovery(point);
  const reruns = { count: 0 };
  const recovers = (recovery: RecoveryRecord | undefined): boolean => {
    reruns.count++;
    return recovery?.result === 'recovered';
  };
  const repairedBy = (trial.spec.disabledSteps ?? []).filter(
    (step) => reruns.count < bounds.maxReruns && recovers(recoverFromDetection(point, { disabledSteps: (trial.spec.disabledSteps ?? []).filter((other) => other !== step) }).recovery),
  );
  const restoring = restoringSet(point, atDetection.comparison, afterRecovery, (run) => recovers(orUndefined(run)), bounds.maxReruns - reruns.count, outOfTime);
  const atDetectionRegions = new Set(atDetection.comparison.differences.map((difference) => difference.region));
  const after = afterRecovery?.comparison.differences;
  return {
    id: trial.id,
    replay: trial.replay,
    mechanism: trial.spec.mechanism ?? 'none',
    cause: causeOf(trial.recovery),
    detector: detectorOf(point.detection),
    faultFunction: atDetection.faultFunction,
    footprint: {
      atDetection: atDetection.comparison.differences,
      afterRecovery: after,
      touchedByFault: (after ?? atDetection.comparison.differences).map((difference) => difference.region).filter((region) => atDetectionRegions.has(region)),
      leftHalfDone: (after ?? []).map((difference) => difference.region).filter((region) => !atDetectionRegions.has(region)),
      progressIgnored: atDetection.comparison.progressIgnored + (afterRecovery?.comparison.progressIgnored ?? 0),
    },
    auditAfterRecovery: afterRecovery?.audit ?? [],
    restoring,
    repairedBy,
    reruns: reruns.count,
  };
}

/**
 * A re-run from a state with regions set back, or undefined when the guests' code threw on it:
 * guest state set back piecemeal can be a state no guest reaches (one field of an operation in
 * flight and not another), and a guest that chokes on it is a re-run that did not recover, not
 * a triage that fails.
 */
function orUndefined<T>(run: () => T): T | undefined {
  try {
    return run();
  } catch {
    return undefined;
  }
}

/** A silent data corruption to diagnose: its id, spec, and the symptom its record names. */
export interface SilentTrial {
  readonly kind: 'sdc';
  readonly id: string;
  readonly spec: TrialSpec;
  readonly cause: string;
  readonly replay: string;
  readonly injection: Injection;
}

/** What the detector of a silent data corruption reads in a diagnosis: none fired. */
export const SILENT = 'none (silent)';

/**
 * Diagnosis of a silent data corruption: its footprint where the trial is first compared with
 * the fault-free run after the fault (the first checkpoint after the injection; the fault itself
 * still in place, as an undetected trial keeps it), and a minimal restoring set there: the
 * fewest regions that, set back, make the run on to the end correct (non-manifested), each test
 * a re-run through the machine to the end of the run.
 */
export function diagnoseSdc(trial: SilentTrial, bounds: TriageBounds = DEFAULT_BOUNDS): TrialDiagnosis {
  const startMs = performance.now();
  const outOfTime = (): boolean => bounds.timeBudgetMs !== undefined && performance.now() - startMs > bounds.timeBudgetMs;
  const point = runToSdcPoint(trial.spec);
  const silent = { id: trial.id, replay: trial.replay, mechanism: trial.spec.mechanism ?? 'none', cause: `sdc: ${withoutNumbers(trial.cause)}`, detector: SILENT, auditAfterRecovery: [], repairedBy: [] };
  if (point === undefined) {
    // ran away (or ended) before the first checkpoint: nothing to compare there, no search
    const fresh = new System({ configuration: trial.spec.configuration, seed: trial.spec.seed });
    const faultFunction = faultFunctionOf(trial.injection, new AddressNamer(fresh.hypervisor.program, fresh.hypervisor.layout));
    return { ...silent, faultFunction, footprint: { atDetection: [], touchedByFault: [], leftHalfDone: [], progressIgnored: 0 }, restoring: { kind: 'none', reruns: 0, point: 'checkpoint' }, reruns: 0 };
  }
  const system = systemAtSdcPoint(point);
  const golden = goldenSystemAt(point.golden, point.atNs);
  const memory = compareWithGolden(system, golden, goldenSystemAt(point.golden, point.injection.timeNs));
  const registers = registersAgainstGolden(point.golden, point.options, system.machine.cpus, { timeNs: point.atNs, system: golden }, undefined);
  const comparison: Comparison = { differences: [...memory.differences, ...registers.differences], places: new Map([...memory.places, ...registers.places]), progressIgnored: memory.progressIgnored + registers.progressIgnored };
  const correct = (subset: readonly string[]): boolean => orUndefined(() => runOnFromSdcPoint(point, (rerun) => setBack(rerun, golden, subset, comparison.places)))?.outcome === 'nonManifested';
  const restoring = hypervisorFirst([comparison], (withGuests, budget) => searchAt('checkpoint', regionsFor(comparison, withGuests), correct, budget, outOfTime, withGuests), bounds.maxReruns, outOfTime);
  return {
    ...silent,
    faultFunction: faultFunctionOf(point.injection, new AddressNamer(system.hypervisor.program, system.hypervisor.layout)),
    footprint: { atDetection: comparison.differences, touchedByFault: comparison.differences.map((difference) => difference.region), leftHalfDone: [], progressIgnored: comparison.progressIgnored },
    restoring,
    reruns: restoring.reruns,
  };
}

/**
 * The trial at its detection against the golden run at the same instant (interval from the
 * injection): memory and CPU fields, and the CPUs' registers (the detecting CPU's as they were at
 * its trap, before the exception was delivered; see compareRegisters for how progress is told apart).
 */
function footprintAtDetection(point: DetectionPoint): { comparison: Comparison; faultFunction: string } {
  const trial = systemAtDetection(point);
  const golden = goldenSystemAt(point.golden, point.detection.timeNs);
  const start = goldenSystemAt(point.golden, point.injection.timeNs);
  const namer = new AddressNamer(trial.hypervisor.program, trial.hypervisor.layout);
  const memory = compareWithGolden(trial, golden, start, guestContextAtOwnPoint(point.golden, trial, golden, point.injection.timeNs, point.detection.timeNs));
  const cpus = trial.machine.cpus.map((cpu) => (cpu.index === point.detection.cpu && point.cpuAtTrap !== undefined ? point.cpuAtTrap : cpu));
  const registers = registersAgainstGolden(point.golden, point.options, cpus, { timeNs: point.detection.timeNs, system: golden }, point.cpuAtTrap === undefined ? undefined : point.detection.cpu);
  const comparison: Comparison = {
    differences: [...memory.differences, ...registers.differences],
    places: new Map([...memory.places, ...registers.places]),
    progressIgnored: memory.progressIgnored + registers.progressIgnored,
  };
  return { comparison, faultFunction: faultFunctionOf(point.injection, namer) };
}

/**
 * compareRegisters against the fault-free run: each CPU against the golden run at its own local
 * time, brought level with it (goldenCpuInStep). `known` is the golden run at one time already
 * made; `atTrap` the detecting CPU, if its registers are set back by rewinding to its trap.
 */
function registersAgainstGolden(golden: GoldenRun, options: SystemOptions, cpus: readonly CpuState[], known: { timeNs: number; system: System }, atTrap: number | undefined): ReturnType<typeof compareRegisters> {
  const goldenAt = new Map<number, System>([[known.timeNs, known.system]]);
  const goldenAtTime = (timeNs: number): System => {
    let system = goldenAt.get(timeNs);
    if (system === undefined) {
      system = goldenSystemAt(golden, timeNs);
      goldenAt.set(timeNs, system);
    }
    return system;
  };
  return compareRegisters(cpus, (index) => goldenCpuInStep(options, cpus[index], goldenAtTime(cpus[index].timeNs)), atTrap);
}

/** Instructions the fault-free run may be stepped on, all CPUs together, to bring one CPU level with the trial's (see goldenCpuInStep). */
const MAX_STEP_ON = 4096;

/**
 * CPU `trial.index` of the fault-free run at the trial CPU's point of its stream: the golden run
 * at the trial CPU's local time (`atTime`, left as it is), run on, in a copy, while that CPU has
 * retired fewer instructions than the trial's (the machine runs CPUs in slices, so at one instant
 * a CPU can stand anywhere in its slice: a CPU woken by an interrupt may not have run yet). When it cannot be brought level, it is returned as
 * it is, out of step: compareRegisters counts its differences as progress.
 */
function goldenCpuInStep(options: SystemOptions, trial: CpuState, atTime: System): CpuState {
  if (atTime.machine.cpus[trial.index].instructionsRetired >= trial.instructionsRetired) return atTime.machine.cpus[trial.index].clone();
  const system = new System(options);
  system.restore(atTime.snapshot());
  const cpu = (): CpuState => system.machine.cpus[trial.index];
  // other CPUs' instructions count toward a run's limit too: each round retires at most the gap
  const limit = system.machine.hypervisorInstructions + MAX_STEP_ON;
  for (let round = 0; round < 64 && cpu().instructionsRetired < trial.instructionsRetired; round++) {
    const behind = trial.instructionsRetired - cpu().instructionsRetired;
    if (system.machine.hypervisorInstructions + behind > limit) break;
    system.hypervisor.run({ untilNs: Number.MAX_SAFE_INTEGER, instructionLimit: system.machine.hypervisorInstructions + behind });
  }
  return cpu().clone();
}

/**
 * Where the fault landed, by the code label it is in: the flipped word's for a code fault (the
 * code that carries the fault), else the instruction the CPU was at when the fault struck.
 */
export function faultFunctionOf(injection: Injection, namer: AddressNamer): string {
  const address = injection.location.type === 'code' ? injection.location.address : injection.programCounter;
  return regionOfName(namer.name(address));
}

interface AfterRecovery {
  readonly comparison: Comparison;
  readonly audit: readonly string[];
  /** the fault-free run at the point the trial's CPUs were released, settled */
  readonly golden: System;
}

/**
 * The trial as recovery leaves it (every CPU released, nothing run yet) against the golden run at
 * the detection instant, settled to a quiescent point (no handler in flight: the state a
 * recovered hypervisor should be in). Not the golden run at the resume instant: while recovery
 * holds the CPUs the guests stand still too, and the golden run's tens of milliseconds of guest
 * work would drown the signal. The interval starts at the injection. Undefined when recovery did
 * not release the CPUs.
 */
function footprintAfterRecovery(point: DetectionPoint): AfterRecovery | undefined {
  let result: AfterRecovery | undefined;
  const start = goldenSystemAt(point.golden, point.injection.timeNs);
  const golden = goldenSystemAt(point.golden, point.detection.timeNs);
  settle(golden);
  recoverFromDetection(point, {
    observer: {
      onRecovered: (system) => {
        const findings = audit(system.machine, system.hypervisor.layout);
        const ownPoint = guestContextAtOwnPoint(point.golden, system, golden, point.injection.timeNs, golden.machine.nowNs);
        result = { comparison: compareWithGolden(system, golden, start, ownPoint), audit: findings.clean ? [] : findings.findings.map((finding) => `${finding.invariant}: ${finding.detail}`), golden };
      },
    },
  });
  return result;
}

/**
 * The minimal restoring set: after recovery when recovery got that far (regions set back just
 * before the CPUs run again), else at the detection. When nothing set back after recovery
 * recovers the trial, the damage may be in what recovery discards or overwrites (a CPU's
 * registers, a stack) before it could be compared: the search is tried again at the detection,
 * within the re-runs left.
 *
 * Hypervisor state is preferred: the search runs first over the hypervisor's regions alone (its
 * memory, the CPUs' fields and registers), and only when that finds nothing at either point
 * again with guest state (guest-footprint.ts) added, within the re-runs left. So when setting
 * back hypervisor state suffices, the restoring set names only hypervisor state, even if a set
 * of guest state would do as well; and within the search with guest state, the hypervisor's
 * regions come first, so delta debugging tries them before the guests' (ties break toward the
 * hypervisor).
 */
function restoringSet(
  point: DetectionPoint,
  atDetection: Comparison,
  afterRecovery: AfterRecovery | undefined,
  recovers: (run: () => RecoveryRecord | undefined) => boolean,
  maxReruns: number,
  outOfTime: () => boolean,
): RestoringSet {
  let golden: System | undefined;
  const atDetectionRerun = (subset: readonly string[]): boolean =>
    recovers(() => {
      golden ??= goldenSystemAt(point.golden, point.detection.timeNs);
      const reference = golden;
      return recoverFromDetection(point, { change: (system) => setBackAtDetection(system, point, reference, subset, atDetection.places) }).recovery;
    });
  const afterRecoveryRerun = (subset: readonly string[]): boolean =>
    recovers(() => recoverFromDetection(point, { observer: { onRecovered: (system) => setBack(system, (afterRecovery as AfterRecovery).golden, subset, (afterRecovery as AfterRecovery).comparison.places) } }).recovery);
  const search = (withGuests: boolean, budget: number): RestoringSet => {
    const detectionSide = regionsFor(atDetection, withGuests);
    if (afterRecovery === undefined) return searchAt('detection', detectionSide, atDetectionRerun, budget, outOfTime, withGuests);
    const after = searchAt('afterRecovery', regionsFor(afterRecovery.comparison, withGuests), afterRecoveryRerun, budget, outOfTime, withGuests);
    if (after.kind !== 'none' || after.reruns >= budget || outOfTime()) return after;
    const before = searchAt('detection', detectionSide, atDetectionRerun, budget - after.reruns, outOfTime, withGuests);
    return { ...before, reruns: before.reruns + after.reruns };
  };
  return hypervisorFirst([atDetection, afterRecovery?.comparison], search, maxReruns, outOfTime);
}

/**
 * `search` over the hypervisor's regions alone, then, when that restores nothing and the
 * footprints hold guest state, with guest state too, within the re-runs left.
 */
function hypervisorFirst(comparisons: readonly (Comparison | undefined)[], search: (withGuests: boolean, budget: number) => RestoringSet, maxReruns: number, outOfTime: () => boolean): RestoringSet {
  const hypervisor = search(false, maxReruns);
  const guestDamage = comparisons.some((comparison) => comparison?.differences.some((difference) => isGuestRegion(difference.region)));
  if (hypervisor.kind !== 'none' || !guestDamage || hypervisor.reruns >= maxReruns || outOfTime()) return hypervisor;
  const withGuests = search(true, maxReruns - hypervisor.reruns);
  return { ...withGuests, reruns: withGuests.reruns + hypervisor.reruns };
}

/** The comparison's hypervisor regions, or all of them with the hypervisor's first. */
function regionsFor(comparison: Comparison, withGuests: boolean): Comparison {
  const hypervisor = comparison.differences.filter((difference) => !isGuestRegion(difference.region));
  const guests = withGuests ? comparison.differences.filter((difference) => isGuestRegion(difference.region)) : [];
  return { ...comparison, differences: [...hypervisor, ...guests] };
}

/** A passing superset, then delta debugging, at one point of the trial, within `maxReruns`. */
function searchAt(where: RestoringSet['point'], comparison: Comparison, rerun: (subset: readonly string[]) => boolean, maxReruns: number, outOfTime: () => boolean, withGuests = false): RestoringSet {
  const regions = comparison.differences.map((difference) => difference.region);
  if (maxReruns < 1 || outOfTime()) return { kind: 'exhausted', regions, reruns: 0, point: where, reason: 'no re-runs left for the search' };
  const start = passingSuperset(comparison, rerun, maxReruns, withGuests);
  if (start.regions === undefined) return { kind: 'none', reruns: start.reruns, point: where };
  const minimal = ddmin(start.regions, rerun, maxReruns - start.reruns, outOfTime);
  const reruns = minimal.tests + start.reruns;
  if (minimal.kind === 'exhausted') return { kind: 'exhausted', regions: minimal.items, reruns, point: where, reason: outOfTime() ? 'time budget spent' : `re-run bound (${maxReruns}) reached` };
  return { kind: 'found', regions: minimal.items, reruns, point: where };
}

/**
 * Set `regions` back in the trial at its detection; when they include the detecting CPU's
 * registers, rewind that CPU to its trap with them set back and let the machine deliver the
 * exception again (a stack pointer set back before the push, not after a double fault).
 */
function setBackAtDetection(system: System, point: DetectionPoint, golden: System, regions: readonly string[], places: Comparison['places']): void {
  setBack(system, golden, regions, places);
  const registers = trapRegisters(regions, places);
  if (registers.length === 0) return;
  redeliverFromTrap(system, point, (cpu) => {
    for (const place of registers) setRegister(cpu, place.register, place.value);
  });
}

/**
 * A set of regions that, set back, recovers the trial: the whole footprint, or else the footprint
 * without one kind of region (setting back guest-shared state, say, can break the trial's own
 * guests, whose state is not set back). With guest state in the search, the guest state alone is
 * tried first (the damage is often all in one guest), and only hypervisor kinds are left out one
 * at a time (guest state has a kind per field: too many to try each). No regions when none of
 * these recovers it.
 */
function passingSuperset(comparison: Comparison, rerun: (subset: readonly string[]) => boolean, maxReruns: number, withGuests: boolean): { regions: string[] | undefined; reruns: number } {
  const regions = comparison.differences.map((difference) => difference.region);
  if (regions.length === 0) return { regions: undefined, reruns: 0 };
  const guests = regions.filter(isGuestRegion);
  const candidates: string[][] = withGuests && guests.length < regions.length ? [guests, regions] : [regions];
  for (const kind of kindsOf(comparison)) {
    if (withGuests && isGuestRegion(kind)) continue;
    const without = comparison.differences.filter((difference) => difference.kind !== kind).map((difference) => difference.region);
    if (without.length > 0) candidates.push(without);
  }
  let reruns = 0;
  for (const candidate of candidates) {
    if (reruns >= maxReruns) break;
    reruns++;
    if (rerun(candidate)) return { regions: candidate, reruns };
  }
  return { regions: undefined, reruns };
}

function kindsOf(comparison: Comparison): string[] {
  return [...new Set(comparison.differences.map((difference) => difference.kind))];
}

/** The failure cause with its detail's numbers dropped, so that like failures read alike. */
export function causeOf(recovery: RecoveryRecord): string {
  const detail = withoutNumbers(recovery.detail ?? '');
  return detail === '' ? `${recovery.cause}` : `${recovery.cause}: ${detail}`;
}

function withoutNumbers(text: string): string {
  return text
    .replace(/ at cpu \d+ pc 0x[0-9a-f]+.*$/, '')
    .replace(/ on cpu \d+/, '')
    .replace(/0x[0-9a-f]+/g, 'N')
    .replace(/\d+/g, 'N');
}

function detectorOf(detection: Detection): string {
  switch (detection.detector) {
    case 'exception':
      return `exception ${detection.exception}`;
    case 'assertion':
      return `assertion "${detection.assertion}"`;
    case 'hang':
      return 'watchdog hang';
    case 'heartbeat':
      return 'missed heartbeats';
  }
}
