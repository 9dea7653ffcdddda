/**
 * A booted hypervisor on its machine: the program, the heap layout, and the panic path that
 * turns traps into detections.
 *
 * The protocol with the layer above: `run(bounds)` runs the machine and says why it stopped —
 * a detection (given back, with the machine stopped at it), the time bound, or the instruction
 * limit. After a detection the hypervisor stays stopped (another run returns the same detection
 * without running) until recovery has done its work and calls `resume()`.
 */
import type { Program } from '../machine/assembler.js';
import { Machine, type GuestPort, type RunBounds } from '../machine/machine.js';
import { bootHypervisor, type BootConfig, type HeapLayout } from './boot.js';
import { entryPoint, hypervisorProgram } from './code/program.js';
import { detectionFromTrap, type Detection } from './detection.js';
import { INTERRUPT_TABLE, MAX_CPUS, VECTOR_TIMER, segmentsFor, stackTop } from './layout.js';

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
  private stopsAtDetection = true;

  constructor(config: BootConfig, guestPort: GuestPort) {
    if (config.cpuCount < 1 || config.cpuCount > MAX_CPUS) throw new RangeError(`cpu count must be 1..${MAX_CPUS}`);
    this.config = config;
    this.program = hypervisorProgram();
    this.machine = new Machine({
      cpuCount: config.cpuCount,
      segments: segmentsFor(config.cpuCount),
      interruptTableBase: INTERRUPT_TABLE,
      timerVector: VECTOR_TIMER,
      hostStackTops: Array.from({ length: config.cpuCount }, (_, cpu) => stackTop(cpu)),
      vmExitEntry: entryPoint(this.program, 'vmexit_entry'),
    });
    this.machine.guestPort = guestPort;
    this.layout = bootHypervisor(this.machine.memory, this.program, config);
    this.machine.trapHandler = (trap) => this.detect(detectionFromTrap(trap, this.machine.cpus[trap.cpu].timeNs));
  }

  /** Release every CPU into its start path. */
  start(): void {
    const start = entryPoint(this.program, 'start_cpu');
    for (let cpu = 0; cpu < this.config.cpuCount; cpu++) this.machine.startCpu(cpu, start, stackTop(cpu));
  }

  /** Run within `bounds`; a hypervisor stopped at a detection returns it again without running. */
  run(bounds: RunBounds): RunStop {
    if (this.stoppedAt !== undefined) return { kind: 'detected', detection: this.stoppedAt };
    const outcome = this.machine.run(bounds);
    if (this.stoppedAt !== undefined) return { kind: 'detected', detection: this.stoppedAt };
    if (outcome.kind === 'stopped') throw new Error(`the machine stopped without a detection: ${outcome.reason}`);
    return outcome;
  }

  /** The detection the hypervisor is stopped at, if it is. */
  stoppedDetection(): Detection | undefined {
    return this.stoppedAt;
  }

  /** Recovery is done: the next run runs again. */
  resume(): void {
    this.stoppedAt = undefined;
  }

  /** From now on, detections are only recorded: the machine runs on (the detecting CPU stopped). */
  recordDetectionsOnly(): void {
    this.stopsAtDetection = false;
  }

  label(name: string): number {
    return entryPoint(this.program, name);
  }

  private detect(detection: Detection): void {
    this.detections.push(detection);
    if (!this.stopsAtDetection) return;
    this.stoppedAt ??= detection;
    this.machine.stop('detected');
  }
}
