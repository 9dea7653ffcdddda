/**
 * The panic path and the start of recovery, as hypervisor code (Xen's exception entry, its
 * double-fault handler and `panic()`, and the entry of NiLiHype's and ReHype's recovery
 * routine), so that corrupted registers or data can crash or hang them before any repair runs:
 *
 *   exception_entry   every exception lands here, its frame pushed on the stack in use
 *   double_fault      a frame that could not be pushed: on its own stack, shut down and halt
 *   panic             find this CPU's area, say what ran, claim the recovery, jump to its entry
 *   recovery_entry    on the detecting CPU, interrupts off: the recovery IPI to every other
 *                     online CPU, wait for them to park (an NMI to the rest if this routine
 *                     sends one), then `handover` to the repairs
 *
 * and the other CPUs' side: the recovery IPI's handler and the park loop, and the resume path
 * the repairs release every CPU into.
 */
import { ref, r0, r1, r2, r3, r6, r7, r8, r9, r11, type Assembler } from '../../machine/assembler.js';
import {
  IPI_DESTINATIONS,
  MAX_CPUS,
  ONLINE_CPUS,
  PerCpu,
  RECOVERY_ENTRY_POINTER,
  RECOVERY_IN_PROGRESS,
  RECOVERY_NMI,
  RECOVERY_SHUTDOWN,
  SOFTIRQ_SCHEDULE,
  VECTOR_RECOVERY,
  Vcpu,
} from '../layout.js';
import { addToField, cpuAreaOf, routine, saveAll, storeImmediate, thisCpuArea } from './helpers.js';

/** How long the recovery entry waits for the recovery IPI to park the other CPUs before the NMI. */
export const RECOVERY_IPI_WAIT_US = 50;

/** In this order: ../../recovery/entry.ts tells where a stuck CPU is by the labels that follow each routine. */
export function emitRecoveryEntryPaths(asm: Assembler): void {
  emitExceptionEntry(asm);
  emitDoubleFault(asm);
  emitPanic(asm);
  emitRecoveryEntry(asm);
  emitSignalOthers(asm);
  emitOthersParked(asm);
  emitParkAndResume(asm);
}

/** The frame is on the stack the CPU was using; save the registers there (SAVE_ALL) and panic. */
function emitExceptionEntry(asm: Assembler): void {
  asm.label('exception_entry');
  saveAll(asm);
  asm.jmp(ref('panic'));
}

/**
 * The exception's frame could not be pushed (a corrupted stack pointer, say). The machine has
 * reported it; the system is shut down: no recovery may start after this, and NMIs or panics on
 * the other CPUs park them.
 */
function emitDoubleFault(asm: Assembler): void {
  asm.label('double_fault');
  asm.cli();
  asm.movi(r1, RECOVERY_SHUTDOWN);
  asm.movi(r2, RECOVERY_IN_PROGRESS);
  asm.st(r2, 0, r1);
  asm.label('double_fault.halt');
  asm.hlt();
  asm.jmp(ref('double_fault.halt'));
}

/**
 * panic(): the console line names the vCPU this CPU was running (through its per-CPU area);
 * then the first CPU to get here claims the recovery and jumps to the recovery routine through
 * its pointer in static data. A CPU that finds the recovery claimed by another parks with the
 * others; one that finds it claimed by itself has faulted inside its own panic path or recovery
 * entry, and halts.
 */
function emitPanic(asm: Assembler): void {
  asm.label('panic');
  asm.cli();
  thisCpuArea(asm, r7);
  asm.ld(r1, r7, PerCpu.offset.current);
  asm.ld(r1, r1, Vcpu.offset.id);
  asm.cpuid(r6);
  asm.addi(r2, r6, 1);
  asm.movi(r3, RECOVERY_IN_PROGRESS);
  asm.movi(r0, 0);
  asm.cas(r0, r3, r2);
  asm.bne(ref('panic.claimed'));
  asm.movi(r3, RECOVERY_ENTRY_POINTER);
  asm.ld(r3, r3, 0);
  asm.jr(r3);
  asm.label('panic.claimed');
  asm.cmp(r0, r2);
  asm.bne(ref('recovery_park'));
  asm.label('panic.halt');
  asm.hlt();
  asm.jmp(ref('panic.halt'));
}

/**
 * The recovery routine's entry, on the detecting CPU with interrupts disabled (r6 = this CPU).
 * A CPU spinning with interrupts masked never takes the recovery IPI: after a while the
 * routine sends it an NMI, if it is built to, and waits for every online CPU to park.
 */
function emitRecoveryEntry(asm: Assembler): void {
  asm.label('recovery_entry');
  asm.cpuid(r6);
  asm.movi(r9, VECTOR_RECOVERY);
  asm.call(ref('recovery_signal_others'));
  asm.rdtime(r11);
  asm.addi(r11, r11, RECOVERY_IPI_WAIT_US);
  asm.loop((exit) => {
    asm.call(ref('recovery_others_parked'));
    asm.cmpi(r0, 0);
    asm.bne(ref('recovery_entry.stopped'));
    asm.rdtime(r1);
    asm.cmp(r1, r11);
    asm.bge(exit);
  });
  asm.movi(r1, RECOVERY_NMI);
  asm.ld(r1, r1, 0);
  asm.cmpi(r1, 0);
  asm.beq(ref('recovery_entry.stopped'));
  asm.movi(r9, 0);
  asm.call(ref('recovery_signal_others'));
  asm.label('recovery_entry.wait');
  asm.loop((exit) => {
    asm.call(ref('recovery_others_parked'));
    asm.cmpi(r0, 0);
    asm.bne(exit);
    asm.pause();
  });
  asm.label('recovery_entry.stopped');
  asm.handover();
}

/** recovery_signal_others(r6 = this CPU, r9 = vector, 0 = NMI): to every other online CPU not yet parked. */
function emitSignalOthers(asm: Assembler): void {
  routine(asm, 'recovery_signal_others', [r1, r2, r3, r7, r8], () => {
    asm.movi(r8, ONLINE_CPUS);
    asm.ld(r8, r8, 0);
    asm.movi(r3, 0);
    asm.loop((exit) => {
      asm.cmpi(r3, MAX_CPUS);
      asm.bge(exit);
      asm.shr(r1, r8, r3);
      asm.andi(r1, r1, 1);
      asm.cmpi(r1, 0);
      asm.beq(ref('recovery_signal_others.next'));
      asm.cmp(r3, r6);
      asm.beq(ref('recovery_signal_others.next'));
      cpuAreaOf(asm, r7, r3);
      asm.ld(r1, r7, PerCpu.offset.recoveryParked);
      asm.cmpi(r1, 0);
      asm.bne(ref('recovery_signal_others.next'));
      asm.movi(r2, IPI_DESTINATIONS);
      asm.add(r2, r2, r3);
      asm.ld(r2, r2, 0);
      asm.ipi(r2, r9);
      asm.label('recovery_signal_others.next');
      asm.addi(r3, r3, 1);
    });
  });
}

/** recovery_others_parked(r6 = this CPU): r0 = 1 when every other online CPU has parked, else 0. */
function emitOthersParked(asm: Assembler): void {
  routine(asm, 'recovery_others_parked', [r1, r3, r7, r8], (done) => {
    asm.movi(r0, 1);
    asm.movi(r8, ONLINE_CPUS);
    asm.ld(r8, r8, 0);
    asm.movi(r3, 0);
    asm.loop((exit) => {
      asm.cmpi(r3, MAX_CPUS);
      asm.bge(exit);
      asm.shr(r1, r8, r3);
      asm.andi(r1, r1, 1);
      asm.cmpi(r1, 0);
      asm.beq(ref('recovery_others_parked.next'));
      asm.cmp(r3, r6);
      asm.beq(ref('recovery_others_parked.next'));
      cpuAreaOf(asm, r7, r3);
      asm.ld(r1, r7, PerCpu.offset.recoveryParked);
      asm.cmpi(r1, 0);
      asm.bne(ref('recovery_others_parked.next'));
      asm.movi(r0, 0);
      asm.jmp(ref(done));
      asm.label('recovery_others_parked.next');
      asm.addi(r3, r3, 1);
    });
  });
}

/**
 * A CPU told to stop (recovery IPI, or NMI or panic while a recovery is in progress) parks with
 * interrupts disabled and says so in its per-CPU area; the repairs later release every CPU at
 * `recovery_resume`, on a fresh stack, to reschedule. A CPU that had interrupts masked is
 * stopped by the NMI instead, and the recovery IPI it never took stays pending: it arrives once
 * the CPU runs again, after the recovery, and must not park it then.
 */
function emitParkAndResume(asm: Assembler): void {
  asm.label('recovery_interrupt');
  asm.eoi();
  asm.push(r1);
  asm.movi(r1, RECOVERY_IN_PROGRESS);
  asm.ld(r1, r1, 0);
  asm.ifZero(r1, () => {
    asm.pop(r1);
    asm.iret();
  });
  thisCpuArea(asm, r7);
  addToField(asm, r7, PerCpu.offset.irqCount, 1, r1);
  asm.label('recovery_park');
  asm.cli();
  thisCpuArea(asm, r7);
  storeImmediate(asm, r7, PerCpu.offset.recoveryParked, 1, r1);
  asm.label('recovery_park.halt');
  asm.hlt();
  asm.jmp(ref('recovery_park.halt'));

  asm.label('recovery_resume');
  asm.cpuid(r1);
  asm.movi(r2, SOFTIRQ_SCHEDULE);
  asm.call(ref('raise_softirq'));
  asm.jmp(ref('return_to_guest'));
}
