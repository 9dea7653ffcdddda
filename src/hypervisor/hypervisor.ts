/**
 * A booted hypervisor on its machine: the program, the heap layout, exception delivery into
 * its panic path, and the detections the traps give.
 *
 * The protocol with the layer above: `run(bounds)` runs the machine and says why it stopped —
 * a detection (given back, with the machine stopped at it: the detecting CPU has just entered
 * its exception handler), the time bound, or the instruction limit. After a detection the
 * hypervisor stays stopped (another run returns the same detection without running) until
 * recovery has done its work and calls `resume()`. Recovery starts with `runRecoveryEntry`,
 * which runs the panic path and the recovery routine's entry in the machine until a CPU hands
 * over to the repair steps.
 */
import type { Program } from '../machine/assembler.js';
import type { CpuState } from '../machine/cpu.js';
import { Machine, type GuestPort, type RunBounds } from '../machine/machine.js';
import type { Trap } from '../machine/trap.js';
import { bootHypervisor, type BootConfig, type HeapLayout } from './boot.js';
import { entryPoint, hypervisorProgram } from './code/program.js';
import { detectionFromTrap, isDetection, type Detection } from './detection.js';
import {
  BOOT_SEED,
  PROTECTION_SEED,
  REHASH_EPOCH,
  REHASH_PERIOD_NS,
  applyProtectionPolicy,
  nextSeed,
  noLockHeld,
  protectionClaims,
  resetProtectionRights,
  type ProtectionClaims,
} from './protection-domains.js';
import {
  EXCEPTION_TABLE,
  INTERRUPT_TABLE,
  MAX_CPUS,
  VECTOR_TIMER,
  doubleFaultStackTop,
  nmiStackTop,
  segmentsFor,
  stackTop,
} from './layout.js';

/** How the recovery routine's entry ended, and the traps raised on the way (none is a detection). */
export type RecoveryEntryStop =
  | { readonly kind: 'handedOver'; readonly cpu: number; readonly traps: readonly Trap[] }
  | { readonly kind: 'timeReached'; readonly traps: readonly Trap[] };

/** Why a run of the hypervisor returned. */
export type RunStop =
  | { readonly kind: 'detected'; readonly detection: Detection }
  | { readonly kind: 'timeReached'; readonly timeNs: number }
  | { readonly kind: 'instructionLimit'; readonly cpu: number };

export class Hypervisor {
  readonly config: BootConfig;
  readonly program: Program;
  readonly machine: Machine;
  readonly layout: HeapLayout;
  /** every detection so far, in order: the log a golden run reports */
  readonly detections: Detection[] = [];
  /** the detection the hypervisor stopped at, until resume() */
  private stoppedAt: Detection | undefined;
  /**
   * The detecting CPU as it was when its detection trap was raised, before the machine delivered
   * the exception (pushed its frame, or double-faulted): triage rewinds to it to ask whether other
   * register values would have let the exception, and recovery, go through. Observation only.
   */
  private cpuAtDetectionTrap: CpuState | undefined;
  /** the intended-sharing policy's owners, from boot: only in a hypervisor built with protection keys */
  private readonly protection: ProtectionClaims | undefined;
  /** while the recovery entry runs: what it has met so far */
  private entry: { readonly traps: Trap[]; handedOverBy: number | undefined } | undefined;

  constructor(config: BootConfig, guestPort: GuestPort) {
    if (config.cpuCount < 1 || config.cpuCount > MAX_CPUS) throw new RangeError(`cpu count must be 1..${MAX_CPUS}`);
    this.config = config;
    const protectionKeys = config.protectionKeys === true;
    this.program = hypervisorProgram({ protectionKeys });
    this.machine = new Machine({
      cpuCount: config.cpuCount,
      segments: segmentsFor(config.cpuCount),
      interruptTableBase: INTERRUPT_TABLE,
      timerVector: VECTOR_TIMER,
      hostStackTops: perCpu(config.cpuCount, stackTop),
      vmExitEntry: entryPoint(this.program, 'vmexit_entry'),
      exceptions: {
        tableBase: EXCEPTION_TABLE,
        nmiStackTops: perCpu(config.cpuCount, nmiStackTop),
        doubleFaultStackTops: perCpu(config.cpuCount, doubleFaultStackTop),
      },
      // keyed per word: see protection-domains.ts
      ...(protectionKeys ? { protectionKeys, protectionKeyShift: 0 } : {}),
    });
    this.machine.guestPort = guestPort;
    this.layout = bootHypervisor(this.machine.memory, this.program, config);
    this.protection = protectionKeys ? protectionClaims(this.machine.memory.words, this.layout, config.cpuCount) : undefined;
    if (this.protection !== undefined) {
      applyProtectionPolicy(this.machine.memory, this.protection, BOOT_SEED);
      resetProtectionRights(this.machine.memory.words, this.machine.cpus, BOOT_SEED);
    }
    this.machine.trapHandler = (trap) => this.onTrap(trap);
  }

  /** Release every CPU into its start path. */
  start(): void {
    const start = entryPoint(this.program, 'start_cpu');
    for (let cpu = 0; cpu < this.config.cpuCount; cpu++) this.machine.startCpu(cpu, start, stackTop(cpu));
  }

  /**
   * Run within `bounds`; a hypervisor stopped at a detection returns it again without running.
   * With protection keys, the run stops at every re-hash point on the way (see rehashAtPoints).
   */
  run(bounds: RunBounds): RunStop {
    if (this.stoppedAt !== undefined) return { kind: 'detected', detection: this.stoppedAt };
    return this.protection === undefined ? this.runWithin(bounds) : this.rehashAtPoints(bounds);
  }

  /**
   * PUSh's periodic re-hash: at every multiple of REHASH_PERIOD_NS, if no CPU holds a lock, the
   * next seed of the family. Where a run stops never changes what happens (the machine's
   * promise), and the points passed are counted in memory, so every path to a time re-hashes alike.
   */
  private rehashAtPoints(bounds: RunBounds): RunStop {
    const machine = this.machine;
    const words = machine.memory.words;
    // a bound on executed instructions is relative to where the run starts: make it absolute across the pieces
    const executedTarget = bounds.executedInstructionLimit === undefined ? undefined : machine.executedInstructions + bounds.executedInstructionLimit;
    for (;;) {
      const pointNs = (words[REHASH_EPOCH] + 1) * REHASH_PERIOD_NS;
      const limits = executedTarget === undefined ? {} : { executedInstructionLimit: Math.max(0, executedTarget - machine.executedInstructions) };
      if (pointNs > bounds.untilNs) return this.runWithin({ ...bounds, ...limits });
      if (pointNs > machine.nowNs) {
        const stop = this.runWithin({ ...bounds, ...limits, untilNs: pointNs });
        if (stop.kind !== 'timeReached') return stop;
      }
      words[REHASH_EPOCH]++;
      const seed = words[PROTECTION_SEED];
      if (noLockHeld(words, machine.cpus, seed)) this.rehashProtectionDomains(nextSeed(seed));
      if (pointNs === bounds.untilNs) return { kind: 'timeReached', timeNs: machine.nowNs };
    }
  }

  private runWithin(bounds: RunBounds): RunStop {
    const outcome = this.machine.run(bounds);
    if (this.stoppedAt !== undefined) return { kind: 'detected', detection: this.stoppedAt };
    if (outcome.kind === 'stopped') throw new Error(`the machine stopped without a detection: ${outcome.reason}`);
    return outcome;
  }

  /** The detection the hypervisor is stopped at, if it is. */
  stoppedDetection(): Detection | undefined {
    return this.stoppedAt;
  }

  /** The detecting CPU before its exception was delivered (see cpuAtDetectionTrap), if a trap was the detection. */
  detectingCpuAtTrap(): CpuState | undefined {
    return this.cpuAtDetectionTrap?.clone();
  }

  /** Put back the stop of a saved state: stopped at `detection`, or running when it is undefined. */
  restoreStop(detection: Detection | undefined): void {
    this.stoppedAt = detection;
  }

  /** Recovery is done: the next run runs again. */
  resume(): void {
    this.stoppedAt = undefined;
  }

  /**
   * From the detection the hypervisor is stopped at, run the machine (the detecting CPU in its
   * panic path) until some CPU executes `handover` or the time reaches `untilNs`. The hypervisor
   * stays stopped at the detection either way: the repairs and resume() come after.
   */
  runRecoveryEntry(untilNs: number): RecoveryEntryStop {
    if (this.stoppedAt === undefined) throw new Error('the recovery entry runs only from a detection');
    const entry = { traps: [] as Trap[], handedOverBy: undefined as number | undefined };
    this.entry = entry;
    this.machine.handoverArmed = true;
    try {
      this.machine.run({ untilNs });
    } finally {
      this.entry = undefined;
      this.machine.handoverArmed = false;
    }
    if (entry.handedOverBy === undefined) return { kind: 'timeReached', traps: entry.traps };
    return { kind: 'handedOver', cpu: entry.handedOverBy, traps: entry.traps };
  }

  /**
   * Re-hash the protection domains with `seed` (PUSh's periodic re-hash, so that data sharing a
   * domain by collision does not hide a race for long): memory keyed anew, the seed where the
   * lock code reads it, every CPU's rights those of a CPU holding no lock. Only at a point where
   * no CPU holds a lock, and only in a hypervisor built with protection keys.
   */
  rehashProtectionDomains(seed: number): void {
    if (this.protection === undefined) throw new Error('this hypervisor was built without protection keys');
    applyProtectionPolicy(this.machine.memory, this.protection, seed);
    resetProtectionRights(this.machine.memory.words, this.machine.cpus, seed);
  }

  label(name: string): number {
    return entryPoint(this.program, name);
  }

  /** A trap: during the recovery entry, something it met or its handover; otherwise a detection, if it is one. */
  private onTrap(trap: Trap): void {
    const entry = this.entry;
    if (entry !== undefined) {
      if (trap.kind !== 'handover') entry.traps.push(trap);
      else if (entry.handedOverBy === undefined) {
        entry.handedOverBy = trap.cpu;
        this.machine.stop('handover');
      }
      return;
    }
    if (!isDetection(trap)) return;
    if (this.stoppedAt === undefined) this.cpuAtDetectionTrap = this.machine.cpus[trap.cpu].clone();
    this.detect(detectionFromTrap(trap, this.machine.cpus[trap.cpu].timeNs));
  }

  private detect(detection: Detection): void {
    this.detections.push(detection);
    this.stoppedAt ??= detection;
    this.machine.stop('detected');
  }
}

function perCpu(cpuCount: number, valueOf: (cpu: number) => number): number[] {
  return Array.from({ length: cpuCount }, (_, cpu) => valueOf(cpu));
}
