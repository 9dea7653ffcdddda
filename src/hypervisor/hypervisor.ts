/**
 * A booted hypervisor on its machine: the program, the heap layout, exception delivery into
 * its panic path, and the detections that the traps give the recovery hook.
 */
import type { Program } from '../machine/assembler.js';
import { Machine, type GuestPort } from '../machine/machine.js';
import { bootHypervisor, type BootConfig, type HeapLayout } from './boot.js';
import { entryPoint, hypervisorProgram } from './code/program.js';
import { detectionFromTrap, isDetection, type Detection } from './detection.js';
import {
  EXCEPTION_TABLE,
  INTERRUPT_TABLE,
  IST_STACK_WORDS,
  MAX_CPUS,
  VECTOR_TIMER,
  doubleFaultStackBase,
  nmiStackBase,
  segmentsFor,
  stackTop,
} from './layout.js';

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
      hostStackTops: perCpu(config.cpuCount, stackTop),
      vmExitEntry: entryPoint(this.program, 'vmexit_entry'),
      exceptions: {
        tableBase: EXCEPTION_TABLE,
        nmiStackTops: perCpu(config.cpuCount, (cpu) => nmiStackBase(cpu) + IST_STACK_WORDS),
        doubleFaultStackTops: perCpu(config.cpuCount, (cpu) => doubleFaultStackBase(cpu) + IST_STACK_WORDS),
      },
    });
    this.machine.guestPort = guestPort;
    this.layout = bootHypervisor(this.machine.memory, this.program, config);
    this.machine.trapHandler = (trap) => {
      if (!isDetection(trap)) return;
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

function perCpu(cpuCount: number, valueOf: (cpu: number) => number): number[] {
  return Array.from({ length: cpuCount }, (_, cpu) => valueOf(cpu));
}
