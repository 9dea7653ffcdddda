/**
 * Recovery scenarios driven through the real system: run a configuration to a chosen point of
 * hypervisor execution (a CPU at a chosen place, in a chosen state), land a fault there as the
 * injector would, let the hypervisor's own detectors notice, then recover with a mechanism and
 * some steps switched off and judge the recovery exactly as a trial does (recoverAndRun).
 *
 * The point is found once and kept as a snapshot; every variant restores it into a fresh system,
 * so the runs with and without a step start from the very same machine state.
 */
import { expect } from 'vitest';
import type { Injection } from '../../src/faults/fault.js';
import { audit, type AuditInvariant } from '../../src/hypervisor/audit.js';
import type { Detection } from '../../src/hypervisor/detection.js';
import { DOMAIN_TABLE, PerCpu, perCpuAddress } from '../../src/hypervisor/layout.js';
import { CpuMode, type CpuState } from '../../src/machine/cpu.js';
import { disassemble, functionOfSymbol, symbolizerFor } from '../../src/machine/disassembler.js';
import { NOMINAL_HOST, type NominalHost } from '../../src/recovery/cost-model.js';
import type { StepWork } from '../../src/recovery/step.js';
import type { RecoveryFailureCause, RecoveryRecord } from '../../src/trial/record.js';
import { goldenRun } from '../../src/trial/golden-cache.js';
import { recoverAndRun, type RecoveryObserver } from '../../src/trial/recover-and-run.js';
import { System, type SystemOptions, type SystemSnapshot } from '../../src/trial/system.js';

export const MS = 1_000_000;

/** The configuration every scenario runs: PrivVM on CPU 0, UnixBench on CPU 1, CPUs 2 and 3 idle. */
export const ONE_APP_VM: SystemOptions = { configuration: '1AppVM', seed: 5, runLengthNs: 600 * MS };
export const UNIXBENCH_CPU = 1;
export const IDLE_CPU = 3;

/** The runaway budget runTrial gives a trial: 3 times a fault-free run's hypervisor instructions, at least 2 million. */
function instructionBudget(options: SystemOptions): number {
  return Math.max(2_000_000, 3 * goldenRun(options).report.hypervisorInstructions);
}

export interface PointView {
  readonly system: System;
  readonly cpu: CpuState;
  readonly words: Int32Array;
}

export interface PointSpec {
  readonly options: SystemOptions;
  /** run the system this long before looking for the point */
  readonly afterNs: number;
  readonly cpu: number;
  /** the routines (each with its local labels) in which the CPU's instructions are watched */
  readonly routines: readonly string[];
  /** the state that makes this the point, checked after each instruction the CPU retires there */
  readonly at: (view: PointView) => boolean;
  /** changes to make to the system before looking for the point (a lock left held, say) */
  readonly prepare?: (system: System) => void;
}

/** A system stopped at the chosen point, as a snapshot, with where the point is. */
export interface Point {
  readonly options: SystemOptions;
  readonly snapshot: SystemSnapshot;
  readonly cpu: number;
  readonly programCounter: number;
  readonly timeNs: number;
}

/** Every code address that belongs to `routine`: its label and the local labels after it. */
function routineAddresses(system: System, routine: string): Set<number> {
  const program = system.hypervisor.program;
  const symbolize = symbolizerFor(program.labels);
  const addresses = new Set<number>();
  for (let address = system.hypervisor.label(routine); address < program.base + program.words.length; address++) {
    const symbol = symbolize(address);
    if (symbol === undefined || functionOfSymbol(symbol) !== routine) break;
    addresses.add(address);
  }
  return addresses;
}

/**
 * Boots the system, runs it to `afterNs`, then stops after every instruction `spec.cpu` retires
 * inside `spec.routines` until `spec.at` holds. Fails if the point is not reached within the run.
 */
export function findPoint(spec: PointSpec): Point {
  return findPoints(spec, () => true)[0];
}

/**
 * The point findPoint finds, then one after each further instruction `spec.cpu` retires inside
 * `spec.routines`, up to and including the first where `until` holds (at most `limit` points).
 */
export function findPoints(spec: PointSpec, until: (view: PointView) => boolean, limit = 1_000): Point[] {
  const system = new System(spec.options);
  system.start();
  const machine = system.machine;
  expect(machine.run(spec.afterNs).kind).toBe('timeReached');
  spec.prepare?.(system);
  const addresses = new Set(spec.routines.flatMap((routine) => [...routineAddresses(system, routine)]));
  machine.tracer = (cpu, programCounter) => {
    if (cpu === spec.cpu && addresses.has(programCounter)) machine.endRunAt(machine.hypervisorInstructions + 1);
  };
  const next = (): PointView => {
    for (;;) {
      const outcome = machine.run(system.runLengthNs);
      if (outcome.kind !== 'instructionLimit') throw new Error(`point in ${spec.routines.join('/')} on cpu ${spec.cpu} not reached (${outcome.kind})`);
      const cpu = machine.cpus[spec.cpu];
      if (cpu.mode === CpuMode.Running) return { system, cpu, words: machine.memory.words };
    }
  };
  const pointOf = ({ cpu }: PointView): Point => {
    expect(system.hypervisor.detections).toEqual([]);
    return { options: spec.options, snapshot: system.snapshot(), cpu: spec.cpu, programCounter: cpu.programCounter, timeNs: cpu.timeNs };
  };
  let view = next();
  while (!spec.at(view)) view = next();
  const points = [pointOf(view)];
  while (!until(view) && points.length < limit) {
    view = next();
    points.push(pointOf(view));
  }
  machine.tracer = undefined;
  return points;
}

export function restoredSystem(point: Point): System {
  const system = new System(point.options);
  system.restore(point.snapshot);
  return system;
}

/** A fault landed at the point, and the detection it led to, on the system it happened in. */
export interface Detected {
  readonly system: System;
  readonly injection: Injection;
  readonly detection: Detection;
}

/** The failstop fault at the point: the CPU's PC becomes 0, so its next fetch faults at once. */
export function failstopAt(point: Point): Detected {
  const system = restoredSystem(point);
  const cpu = system.machine.cpus[point.cpu];
  const injection = injectionAt(system, point, { type: 'failstop', before: cpu.programCounter, after: 0 });
  cpu.programCounter = 0;
  return runToDetection(system, injection);
}

/** A register fault at the point: bit `bit` of the CPU's stack pointer flips. */
export function stackPointerFaultAt(point: Point, bit: number): Detected {
  const system = restoredSystem(point);
  const cpu = system.machine.cpus[point.cpu];
  const before = cpu.stackPointer;
  cpu.stackPointer ^= 1 << bit;
  const injection = injectionAt(system, point, { type: 'register', register: 'sp', bit, before, after: cpu.stackPointer });
  return runToDetection(system, injection);
}

/**
 * A code fault at the point that is not repaired at detection: bit `bit` of the instruction the
 * CPU is about to execute. (The injector's code faults are transient and a trial restores the bit
 * when the error is detected; this one stays, to show which mechanism discards it.)
 */
export function persistentCodeFaultAt(point: Point, bit: number): Detected {
  const system = restoredSystem(point);
  const words = system.machine.memory.words;
  const address = point.programCounter;
  const before = words[address];
  words[address] = before ^ (1 << bit);
  const symbol = symbolizerFor(system.hypervisor.program.labels)(address) ?? '?';
  const injection = injectionAt(system, point, { type: 'code', address, symbol, bit, before, after: words[address] });
  return runToDetection(system, injection);
}

function injectionAt(system: System, point: Point, location: Injection['location']): Injection {
  const symbol = symbolizerFor(system.hypervisor.program.labels)(point.programCounter);
  return {
    cpu: point.cpu,
    timeNs: point.timeNs,
    instructionCount: system.machine.hypervisorInstructions,
    programCounter: point.programCounter,
    instruction: `${disassemble(system.machine.memory.words[point.programCounter])} <${symbol}>`,
    location,
  };
}

function runToDetection(system: System, injection: Injection): Detected {
  expect(system.machine.run(system.runLengthNs)).toEqual({ kind: 'stopped', reason: 'detected' });
  expect(system.hypervisor.detections).toHaveLength(1);
  return { system, injection, detection: system.hypervisor.detections[0] };
}

export type MechanismChoice = 'microreset' | 'microreboot';

/** Recover from the detection and run the liveness phase, exactly as a trial does. */
export function recoverFrom(
  detected: Detected,
  mechanism: MechanismChoice,
  disabledSteps: readonly string[] = [],
  host: NominalHost = NOMINAL_HOST,
  observer: RecoveryObserver = {},
): RecoveryRecord {
  const options = { configuration: detected.system.configuration.name, seed: detected.system.seed, runLengthNs: detected.system.runLengthNs };
  return recoverAndRun(detected.system, { injection: detected.injection, detection: detected.detection }, { mechanism, disabledSteps, host }, instructionBudget(options), observer);
}

export function auditInvariants(system: System): AuditInvariant[] {
  const result = audit(system.machine, system.hypervisor.layout);
  return result.clean ? [] : [...new Set(result.findings.map((finding) => finding.invariant))].sort();
}

/** The routine a code address lies in, e.g. `schedule` for `schedule.pick+3`. */
export function routineAt(system: System, address: number): string | undefined {
  const symbol = symbolizerFor(system.hypervisor.program.labels)(address);
  return symbol === undefined ? undefined : functionOfSymbol(symbol);
}

export function expectRecovered(record: RecoveryRecord): void {
  expect({ result: record.result, cause: record.cause, detail: record.detail, failedVms: record.failedVms }).toEqual({
    result: 'recovered',
    cause: null,
    detail: null,
    failedVms: [],
  });
}

export function expectRecoveryFailed(record: RecoveryRecord, cause: RecoveryFailureCause, detail: RegExp): void {
  expect({ result: record.result, cause: record.cause }).toEqual({ result: 'recoveryFailed', cause });
  expect(record.detail).toMatch(detail);
}

/** What a step reported doing, in a recovery record; undefined when it did not run. */
export function workOf(record: RecoveryRecord, step: string): StepWork | undefined {
  return record.steps.find((report) => report.step === step)?.work;
}

export function perCpuWord(words: Int32Array, cpu: number, field: keyof typeof PerCpu.offset): number {
  return words[perCpuAddress(cpu) + PerCpu.offset[field]];
}

/** The vCPU structures of the domains in use. */
export function guestVcpus(system: System): number[] {
  const words = system.machine.memory.words;
  const layout = system.hypervisor.layout;
  return layout.vcpus.filter((_, id) => words[DOMAIN_TABLE + id] !== 0);
}
