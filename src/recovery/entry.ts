/**
 * The start of recovery runs in the machine, as hypervisor code (code/recovery-entry.ts): the
 * detecting CPU delivers its exception, runs panic(), jumps to the recovery routine, stops the
 * other CPUs and hands over. Only then do the mechanism's repair steps run. Corrupted state can
 * keep that from happening (a double fault, a fault inside the panic path, a wait for a CPU that
 * never parks, a jump through a corrupted pointer): recovery never runs. The entry gets a
 * bounded simulated time, so one that hangs ends.
 */
import type { Hypervisor } from '../hypervisor/hypervisor.js';
import type { Detection } from '../hypervisor/detection.js';
import { IST_STACK_WORDS, MAX_CPUS, ONLINE_CPUS, RECOVERY_NMI, doubleFaultStackBase, perCpuAddress, PerCpu } from '../hypervisor/layout.js';
import { CpuMode } from '../machine/cpu.js';
import { symbolizerFor } from '../machine/disassembler.js';
import { describeTrap, hex, type Trap } from '../machine/trap.js';

/** Simulated time the entry may take before it counts as hung; it takes microseconds when healthy. */
export const ENTRY_WINDOW_NS = 1_000_000;

export type RecoveryEntry =
  | { readonly kind: 'handedOver'; readonly cpu: number; readonly entryNs: number }
  | { readonly kind: 'neverRan'; readonly detail: string; readonly entryNs: number };

export interface EntryOptions {
  /** the routine sends an NMI to CPUs that the recovery IPI did not stop (ReHype's NMI IPI) */
  readonly sendsNmi: boolean;
}

/** Run the machine from the detection until some CPU hands over to the repairs, or the window ends. */
export function runRecoveryEntry(hypervisor: Hypervisor, detection: Detection, options: EntryOptions): RecoveryEntry {
  const machine = hypervisor.machine;
  // which build of the recovery routine this is: part of the mechanism, not of the failed state
  machine.memory.words[RECOVERY_NMI] = options.sendsNmi ? 1 : 0;
  const startNs = machine.nowNs;
  const stop = hypervisor.runRecoveryEntry(startNs + ENTRY_WINDOW_NS);
  const entryNs = machine.nowNs - startNs;
  if (stop.kind === 'handedOver') return { kind: 'handedOver', cpu: stop.cpu, entryNs };
  return { kind: 'neverRan', detail: whatStopped(hypervisor, detection.cpu, stop.traps), entryNs };
}

/** Why the detecting CPU never handed over, from where it is and what it hit on the way. */
function whatStopped(hypervisor: Hypervisor, cpuIndex: number, traps: readonly Trap[]): string {
  const symbol = symbolizerFor(hypervisor.program.labels);
  const cpu = hypervisor.machine.cpus[cpuIndex];
  const where = `${symbol(cpu.programCounter) ?? hex(cpu.programCounter)}`;
  const nested = traps.find((trap) => trap.cpu === cpuIndex && !(trap.kind === 'exception' && trap.exception === 'doubleFault'));
  if (nested !== undefined) return `fault inside the panic path: ${describeTrap(nested)} <${symbol(nested.programCounter) ?? '?'}>`;
  if (between(hypervisor, cpu.programCounter, 'double_fault', 'panic')) {
    const words = hypervisor.machine.memory.words;
    const frameStackPointer = words[doubleFaultStackBase(cpuIndex) + IST_STACK_WORDS - 1];
    return `double fault: the exception frame could not be pushed (stack pointer ${hex(frameStackPointer)})`;
  }
  if (cpu.mode === CpuMode.Stopped) return `cpu ${cpuIndex} shut down delivering a double fault`;
  // the entry, and the routines it calls while it waits, come before the park loop
  if (between(hypervisor, cpu.programCounter, 'recovery_entry', 'recovery_interrupt')) {
    return `hang waiting for CPUs to park: ${unparkedCpus(hypervisor, cpuIndex).join(', ') || 'none'} (online map ${hex(hypervisor.machine.memory.words[ONLINE_CPUS])})`;
  }
  return `panic path hung at ${where}`;
}

/** True when `address` lies in [label `from`, label `to`). */
function between(hypervisor: Hypervisor, address: number, from: string, to: string): boolean {
  return address >= hypervisor.label(from) && address < hypervisor.label(to);
}

/** The online CPUs, other than `leader`, that have not parked. */
function unparkedCpus(hypervisor: Hypervisor, leader: number): string[] {
  const words = hypervisor.machine.memory.words;
  const online = words[ONLINE_CPUS];
  const waiting: string[] = [];
  for (let cpu = 0; cpu < MAX_CPUS; cpu++) {
    if (cpu === leader || ((online >>> cpu) & 1) === 0) continue;
    if (words[perCpuAddress(cpu) + PerCpu.offset.recoveryParked] === 0) waiting.push(`cpu ${cpu}`);
  }
  return waiting;
}
