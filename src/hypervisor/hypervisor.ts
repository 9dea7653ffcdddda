/**
 * A booted hypervisor on its machine: the program, the heap layout, and the panic path that
 * turns traps into detections for the recovery hook.
 */
import type { Program } from '../machine/assembler.js';
import { Machine, type GuestPort } from '../machine/machine.js';
import { bootHypervisor, type BootConfig, type HeapLayout } from './boot.js';
import { entryPoint, hypervisorProgram } from './code/program.js';
import { detectionFromTrap, type Detection } from './detection.js';
import { INTERRUPT_TABLE, MAX_CPUS, VECTOR_TIMER, segmentsFor, stackTop } from './layout.js';

export type RecoveryHook = (detection: Detection, hypervisor: Hypervisor) => void;

/** Without a recovery mechanism, detection stops the machine: the trial ends there. */
export const stopOnDetection: RecoveryHook = (_detection, hypervisor) => hypervisor.machine.stop('detected');

export class Hypervisor {
  readonly config: BootConfig;
  readonly program: Program;
  readonly machine: Machine;
  readonly layout: HeapLayout;
  readonly detections: Detection[] = [];
  recoveryHook: RecoveryHook = stopOnDetection;

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
    this.machine.trapHandler = (trap) => {
      const detection = detectionFromTrap(trap, this.machine.cpus[trap.cpu].timeNs);
      this.detections.push(detection);
      this.recoveryHook(detection, this);
    };
  }

  /** Release every CPU into its start path. */
  start(): void {
    const start = entryPoint(this.program, 'start_cpu');
    for (let cpu = 0; cpu < this.config.cpuCount; cpu++) this.machine.startCpu(cpu, start, stackTop(cpu));
  }

  label(name: string): number {
    return entryPoint(this.program, name);
  }
}
