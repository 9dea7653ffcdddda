/**
 * The start of recovery runs in the machine, as hypervisor code (code/recovery-entry.ts): the
 * detecting CPU delivers its exception, runs panic(), jumps to the recovery routine, stops the
 * other CPUs and hands over. Only then do the mechanism's repair steps run. Corrupted state can
 * keep that from happening (a fault inside the panic path, a stack pointer gone astray that makes
 * it take its CPU for another, a wait for a CPU that never parks, a jump through a corrupted
 * pointer): recovery never runs. The entry gets a bounded simulated time, so one that hangs ends.
 */
import type { Hypervisor } from '../hypervisor/hypervisor.js';
import type { Detection } from '../hypervisor/detection.js';
import { MAX_CPUS, ONLINE_CPUS, RECOVERY_IN_PROGRESS, RECOVERY_NMI, cpuInfoAddresses, cpuInfoAddressOf, perCpuAddress, PerCpu } from '../hypervisor/layout.js';
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
  const identity = mistakenIdentity(hypervisor, detection.cpu);
  const stop = hypervisor.runRecoveryEntry(startNs + ENTRY_WINDOW_NS);
  const entryNs = machine.nowNs - startNs;
  if (stop.kind === 'handedOver') return { kind: 'handedOver', cpu: stop.cpu, entryNs };
  const detail = whatStopped(hypervisor, detection.cpu, stop.traps);
  return { kind: 'neverRan', detail: identity === undefined ? detail : `${identity}; ${detail}`, entryNs };
}

/**
 * A CPU whose stack pointer, as the panic path begins, has left its own stacks (into mapped
 * memory: else it double-faults onto its own) reads another block's last word as its
 * `cpu_info`, and runs the panic path as the CPU that word names.
 */
function mistakenIdentity(hypervisor: Hypervisor, cpuIndex: number): string | undefined {
  const stackPointer = hypervisor.machine.cpus[cpuIndex].stackPointer;
  const address = cpuInfoAddressOf(stackPointer);
  if (cpuInfoAddresses(cpuIndex).includes(address)) return undefined;
  const named = hypervisor.machine.memory.words[address];
  return `cpu ${cpuIndex} ran its panic path on stack pointer ${hex(stackPointer)}, outside its stacks, as cpu ${named ?? '?'}`;
}

/** Why the detecting CPU never handed over, from where it is and what it hit on the way. */
function whatStopped(hypervisor: Hypervisor, cpuIndex: number, traps: readonly Trap[]): string {
  const symbol = symbolizerFor(hypervisor.program.labels);
  const cpu = hypervisor.machine.cpus[cpuIndex];
  const where = `${symbol(cpu.programCounter) ?? hex(cpu.programCounter)}`;
  const nested = traps.find((trap) => trap.cpu === cpuIndex && !(trap.kind === 'exception' && trap.exception === 'doubleFault'));
  if (nested !== undefined) return `fault inside the panic path: ${describeTrap(nested)} <${symbol(nested.programCounter) ?? '?'}>`;
  if (cpu.mode === CpuMode.Stopped) return `cpu ${cpuIndex} shut down delivering a double fault`;
  // the entry, and the routines it calls while it waits, come before the park loop
  if (between(hypervisor, cpu.programCounter, 'recovery_entry', 'recovery_interrupt')) {
    return `hang waiting for CPUs to park: ${unparkedCpus(hypervisor, cpuIndex).join(', ') || 'none'} (online map ${hex(hypervisor.machine.memory.words[ONLINE_CPUS])})`;
  }
  if (between(hypervisor, cpu.programCounter, 'recovery_park', 'recovery_resume')) {
    const claimant = hypervisor.machine.memory.words[RECOVERY_IN_PROGRESS] - 1;
    const claimed = claimant === cpuIndex ? 'claimed the recovery, then parked' : `parked in a recovery claimed as cpu ${claimant}`;
    return `cpu ${cpuIndex} ${claimed}: no CPU ran it`;
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
