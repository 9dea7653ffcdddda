/**
 * A trial's timeline, for a person to read (Jepsen's timeline is the model): what each CPU was
 * doing (in a guest, in a hypervisor handler by name, idle, held by recovery), the fault, the
 * detection and its detector, each recovery step with its modelled cost, and the guest-visible
 * events. The record shown is the trial's own (runTrial); the lanes come from a second run of the
 * same trial in short steps, sampled at each step, from the injection to a while after recovery.
 * Bounded runs of the machine are transparent (the golden run relies on it), so the sampled run
 * is the trial's run: the engine's phases in its order (start, trigger, inject, run to the
 * detection without the follow shortcut, put transient faults back, recover: the recovery entry
 * in the machine, then the steps); it stops sampling at the first detection after recovery.
 */
import { CpuMode } from '../machine/cpu.js';
import { functionOfSymbol } from '../machine/disassembler.js';
import { describeDetection } from '../hypervisor/detection.js';
import { AddressNamer } from '../hypervisor/symbols.js';
import { trialSeed } from '../faults/random.js';
import { goldenRun } from './golden-cache.js';
import { runToTrigger, startFrom } from './fast-forward.js';
import { faultPlansOf, injectFaults } from './inject.js';
import type { TrialRecord, TrialSpec } from './record.js';
import { recoveryOf } from './recover-and-run.js';
import { runToDetection } from './run-to-detection.js';
import { System } from './system.js';
import { runTrial } from './trial.js';
import { systemOptionsOf } from './spec-system.js';

export type Activity = 'guest' | 'hypervisor' | 'idle' | 'recovery' | 'stopped';

export interface TimelineSegment {
  readonly cpu: number;
  readonly startNs: number;
  readonly endNs: number;
  readonly activity: Activity;
  /** the hypervisor function running, for hypervisor segments */
  readonly handler?: string;
}

export interface TimelineEvent {
  readonly kind: 'fault' | 'detection' | 'recovery step' | 'resumed' | 'guest' | 'second failure';
  readonly timeNs: number;
  /** for recovery steps: the end of the step's modelled cost */
  readonly endNs?: number;
  readonly label: string;
}

export interface TrialTimeline {
  readonly record: TrialRecord;
  readonly cpuCount: number;
  readonly segments: readonly TimelineSegment[];
  readonly events: readonly TimelineEvent[];
}

/** Samples before the detection, and after the recovery. */
const SAMPLES = 600;
/** How long after the CPUs are released the lanes go on. */
const AFTER_RECOVERY_NS = 20_000_000;
/** A fault that is never detected is shown this long. */
const UNDETECTED_WINDOW_NS = 20_000_000;

export function trialTimeline(spec: TrialSpec): TrialTimeline {
  let finalSystem: System | undefined;
  const { record } = runTrial(spec, { onFinished: (system) => (finalSystem = system) });
  if (record.outcome === 'notInjected') return { record, cpuCount: 0, segments: [], events: [] };
  const sampler = sampledRun(spec, record);
  const events = [...sampler.events, ...recordEvents(record), ...guestEvents(finalSystem)];
  events.sort((x, y) => x.timeNs - y.timeNs);
  return { record, cpuCount: sampler.cpuCount, segments: sampler.segments, events };
}

class Lanes {
  readonly segments: TimelineSegment[] = [];
  private readonly open: (TimelineSegment | undefined)[] = [];

  constructor(private readonly namer: AddressNamer) {}

  /** Each CPU's activity at `atNs` (default the machine's time; a trap's own instant is finer: the machine's time is a slice's start). */
  sample(system: System, atNs = system.machine.nowNs): void {
    const nowNs = atNs;
    system.machine.cpus.forEach((cpu, index) => {
      const handler = cpu.mode === CpuMode.Running || cpu.mode === CpuMode.Paused ? functionOfSymbol(this.namer.name(cpu.programCounter)) : undefined;
      this.extend(index, nowNs, activityOf(cpu.mode), handler);
    });
  }

  /** Every CPU held by recovery from now until `endNs`. */
  held(cpuCount: number, startNs: number, endNs: number): void {
    for (let cpu = 0; cpu < cpuCount; cpu++) {
      this.extend(cpu, startNs, 'recovery', undefined);
      this.extend(cpu, endNs, 'recovery', undefined);
    }
  }

  finish(): TimelineSegment[] {
    for (const segment of this.open) if (segment !== undefined && segment.endNs > segment.startNs) this.segments.push(segment);
    this.open.length = 0;
    return this.segments;
  }

  private extend(cpu: number, nowNs: number, activity: Activity, handler: string | undefined): void {
    const current = this.open[cpu];
    if (current !== undefined && current.activity === activity && current.handler === handler) {
      this.open[cpu] = { ...current, endNs: nowNs };
      return;
    }
    // the time since the last sample goes to the activity seen then: segments never overlap
    const closed = current !== undefined && current.endNs > current.startNs;
    if (closed) this.segments.push({ ...current, endNs: nowNs });
    this.open[cpu] = { cpu, startNs: closed || current === undefined ? nowNs : current.startNs, endNs: nowNs, activity, ...(handler === undefined ? {} : { handler }) };
  }
}

function sampledRun(spec: TrialSpec, record: Exclude<TrialRecord, { outcome: 'notInjected' }>): { cpuCount: number; segments: TimelineSegment[]; events: TimelineEvent[] } {
  const options = systemOptionsOf(spec);
  const golden = goldenRun(options);
  const plans = faultPlansOf(spec, trialSeed(spec.seed, spec.trialIndex), golden.runLengthNs);
  const system = new System(options);
  const namer = new AddressNamer(system.hypervisor.program, system.hypervisor.layout);
  const lanes = new Lanes(namer);
  const events: TimelineEvent[] = [];
  startFrom(system, golden, plans[0], false);
  const trigger = runToTrigger(system, plans[0]);
  if (trigger.kind !== 'landed') return { cpuCount: system.machine.cpus.length, segments: [], events };
  const injected = injectFaults(system, plans, trigger.cpu, namer);
  lanes.sample(system, Math.max(system.machine.nowNs, record.injection.timeNs));
  const detectedNs = record.outcome === 'detected' ? record.detection.timeNs : Math.min(system.runLengthNs, system.machine.nowNs + UNDETECTED_WINDOW_NS);
  sampleUntil(system, lanes, detectedNs, Math.max(1_000, (detectedNs - system.machine.nowNs) / SAMPLES));
  if (record.outcome !== 'detected' || record.recovery === undefined) return { cpuCount: system.machine.cpus.length, segments: lanes.finish(), events };
  // the samples stop at the detection's instant, not past it: the engine's own phase takes the
  // run to the detection (and leaves the hypervisor stopped there, where the recovery entry starts)
  const ending = runToDetection(system, golden, { instructionCount: injected.last.instructionCount, detection: injected.detection }, false);
  if (ending.kind !== 'detected') return { cpuCount: system.machine.cpus.length, segments: lanes.finish(), events };
  lanes.sample(system, Math.max(system.machine.nowNs, ending.detection.timeNs));
  injected.restoreTransient();
  const detection = record.detection;
  let released = false;
  recoveryOf(system, spec, record.injection, detection, golden, {
    onRecovered: (recovered) => {
      released = true;
      lanes.held(recovered.machine.cpus.length, detection.timeNs, recovered.machine.nowNs);
      recovered.hypervisor.resume();
      const second = sampleUntil(recovered, lanes, recovered.machine.nowNs + AFTER_RECOVERY_NS, AFTER_RECOVERY_NS / SAMPLES);
      if (second !== undefined) events.push({ kind: 'second failure', timeNs: second.timeNs, label: `second failure: ${second.text}` });
    },
  });
  // a recovery that never released the CPUs leaves them where its entry (run in the machine) left them
  if (!released) lanes.sample(system);
  return { cpuCount: system.machine.cpus.length, segments: lanes.finish(), events };
}

/** Run in steps of `stepNs` to `untilNs`, sampling after each; the detection that stopped it, if one did. */
function sampleUntil(system: System, lanes: Lanes, untilNs: number, stepNs: number): { timeNs: number; text: string } | undefined {
  while (system.machine.nowNs < untilNs) {
    const stop = system.hypervisor.run({ untilNs: Math.min(untilNs, system.machine.nowNs + stepNs) });
    lanes.sample(system);
    if (stop.kind === 'detected') return { timeNs: stop.detection.timeNs, text: describeDetection(stop.detection) };
    if (stop.kind !== 'timeReached') return undefined;
  }
  return undefined;
}

/** The fault, the detection and the recovery steps (each its modelled cost long), from the record. */
function recordEvents(record: Exclude<TrialRecord, { outcome: 'notInjected' }>): TimelineEvent[] {
  const events: TimelineEvent[] = [{ kind: 'fault', timeNs: record.injection.timeNs, label: `fault: ${record.faultType} at ${record.injection.instruction} (cpu ${record.injection.cpu})` }];
  if (record.outcome !== 'detected') return events;
  events.push({ kind: 'detection', timeNs: record.detection.timeNs, label: `detection: ${describeDetection(record.detection)}` });
  let startNs = record.detection.timeNs;
  for (const step of record.recovery?.steps ?? []) {
    const endNs = startNs + Math.round(step.ms * 1_000_000);
    events.push({ kind: 'recovery step', timeNs: startNs, endNs, label: `${step.step} (${step.ms.toFixed(2)} ms)` });
    startNs = endNs;
  }
  const recovery = record.recovery;
  if (recovery?.cause === 'recoveryNeverRan') {
    // the entry ran in the machine for its window and never handed over: nothing resumed
    const endNs = startNs + Math.round(recovery.recoveryLatencyMs * 1_000_000);
    events.push({ kind: 'recovery step', timeNs: startNs, endNs, label: `recovery entry, never handed over: ${recovery.detail ?? ''}` });
  } else if (recovery !== undefined) {
    events.push({ kind: 'resumed', timeNs: startNs, label: recovery.result === 'recovered' ? 'resumed: recovered' : `resumed: ${recovery.cause}` });
  }
  return events;
}

/** Guests' failures, when and why (a VM declared failed, a lost ping, a hypercall error). */
function guestEvents(system: System | undefined): TimelineEvent[] {
  if (system === undefined) return [];
  const nowNs = system.machine.nowNs;
  return system.kernels().flatMap((kernel) => {
    const verdict = kernel.verdict(nowNs);
    return verdict.kind === 'failed' ? [{ kind: 'guest' as const, timeNs: verdict.atNs, label: `${kernel.name} (domain ${kernel.domainId}) failed: ${verdict.reason}` }] : [];
  });
}

function activityOf(mode: CpuMode): Activity {
  switch (mode) {
    case CpuMode.Guest:
      return 'guest';
    case CpuMode.Running:
    case CpuMode.Paused:
      return 'hypervisor';
    case CpuMode.Halted:
      return 'idle';
    case CpuMode.Stopped:
      return 'stopped';
  }
}

