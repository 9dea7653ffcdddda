/**
 * The panic path and the start of recovery, as hypervisor code (Xen's exception entry, its
 * double-fault handler and `panic()`, and the entry of NiLiHype's and ReHype's recovery
 * routine), so that corrupted registers or data can crash or hang them before any repair runs:
 *
 *   exception_entry   every exception lands here, its frame pushed on the stack in use
 *   double_fault      a frame that could not be pushed: on its own stack, report and panic
 *   panic             find this CPU's area, say what ran, claim the recovery, jump to its entry
 *   recovery_entry    on the detecting CPU, interrupts off: the recovery IPI to every other
 *                     online CPU, wait for them to park (an NMI to the rest if this routine
 *                     sends one), then `handover` to the repairs
 *
 * and the other CPUs' side: the recovery IPI's handler and the park loop, and the resume path
 * the repairs release every CPU into.
 */
import { aliases, ref, reg, type Assembler } from '../../machine/assembler.js';
import {
  IPI_DESTINATIONS,
  MAX_CPUS,
  ONLINE_CPUS,
  PerCpu,
  RECOVERY_ENTRY_POINTER,
  RECOVERY_IN_PROGRESS,
  RECOVERY_NMI,
  SOFTIRQ_SCHEDULE,
  VECTOR_RECOVERY,
  Vcpu,
} from '../layout.js';
import { addToField, cpuAreaOf, routine, saveAll, smpProcessorId, storeImmediate, thisCpuArea } from './helpers.js';

/** How long the recovery entry waits for the recovery IPI to park the other CPUs before the NMI. */
export const RECOVERY_IPI_WAIT_US = 50;

/** In this order: ../../recovery/entry.ts tells where a stuck CPU is by the labels that follow each routine. */
/** What the recovery entry keeps across the routines it calls: this CPU's index, and the vector to send. */
const { self, vector } = aliases({ self: reg.r6, vector: reg.r9 });
const cpuArea = reg.r7;

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
  asm.func('exception_entry', () => {
    saveAll(asm);
    asm.jmp(ref('panic'));
  });
}

/**
 * The exception's frame could not be pushed (a stack pointer flipped out of mapped memory, say).
 * The machine has reported it; as Xen's `do_double_fault` (traps.c, every release since 3.x),
 * the handler, on its own stack, calls panic(), which recovery hooks. On that stack the CPU's
 * `cpu_info` is its own, so the panic path knows which CPU it runs on.
 */
function emitDoubleFault(asm: Assembler): void {
  asm.func('double_fault', () => {
    asm.jmp(ref('panic'));
  });
}

/** halt: for (;;) hlt, at the routine's local label `halt` */
function haltForever(asm: Assembler): void {
  const halt = asm.local('halt');
  asm.label(halt);
  asm.hlt();
  asm.jmp(halt);
}

/**
 * panic(): the console line names the vCPU this CPU was running (through its per-CPU area);
 * then the first CPU to get here claims the recovery and jumps to the recovery routine through
 * its pointer in static data. A CPU that finds the recovery claimed by another parks with the
 * others; one that finds it claimed by itself has faulted inside its own panic path or recovery
 * entry, and halts.
 */
function emitPanic(asm: Assembler): void {
  const { owner, vcpuId, claim, address } = aliases({ owner: reg.r0, vcpuId: reg.r1, claim: reg.r2, address: reg.r3 });
  asm.func('panic', () => {
    const claimed = asm.local('claimed');
    asm.cli();
    thisCpuArea(asm, cpuArea);
    // the console line: the vCPU this CPU ran
    asm.ld(vcpuId, cpuArea, PerCpu.offset.current);
    asm.ld(vcpuId, vcpuId, Vcpu.offset.id);
    // claim = this CPU + 1; cmpxchg(&recovery_in_progress, 0, claim)
    smpProcessorId(asm, self);
    asm.addi(claim, self, 1);
    asm.movi(address, RECOVERY_IN_PROGRESS);
    asm.movi(owner, 0);
    asm.cas(owner, address, claim);
    asm.bne(claimed);
    // (*recovery_entry_pointer)()
    asm.movi(address, RECOVERY_ENTRY_POINTER);
    asm.ld(address, address, 0);
    asm.jr(address);
    asm.label(claimed);
    asm.cmp(owner, claim);
    asm.bne(ref('recovery_park'));
    haltForever(asm);
  });
}

/**
 * The recovery routine's entry, on the detecting CPU with interrupts disabled (r6 = this CPU).
 * A CPU spinning with interrupts masked never takes the recovery IPI: after a while the
 * routine sends it an NMI, if it is built to, and waits for every online CPU to park.
 */
function emitRecoveryEntry(asm: Assembler): void {
  const { allParked, value, deadlineUs } = aliases({ allParked: reg.r0, value: reg.r1, deadlineUs: reg.r11 });
  asm.func('recovery_entry', () => {
    const stopped = asm.local('stopped');
    smpProcessorId(asm, self);
    asm.movi(vector, VECTOR_RECOVERY);
    asm.call(ref('recovery_signal_others'));
    asm.rdtime(deadlineUs);
    asm.addi(deadlineUs, deadlineUs, RECOVERY_IPI_WAIT_US);
    asm.loop((exit) => {
      asm.call(ref('recovery_others_parked'));
      asm.cmpi(allParked, 0);
      asm.bne(stopped);
      const now = value;
      asm.rdtime(now);
      asm.cmp(now, deadlineUs);
      asm.bge(exit);
    });
    // if (!recovery_nmi) hand over with the others still running
    const sendNmi = value;
    asm.movi(sendNmi, RECOVERY_NMI);
    asm.ld(sendNmi, sendNmi, 0);
    asm.cmpi(sendNmi, 0);
    asm.beq(stopped);
    const nmi = 0;
    asm.movi(vector, nmi);
    asm.call(ref('recovery_signal_others'));
    asm.label(asm.local('wait'));
    asm.loop((exit) => {
      asm.call(ref('recovery_others_parked'));
      asm.cmpi(allParked, 0);
      asm.bne(exit);
      asm.pause();
    });
    asm.label(stopped);
    asm.handover();
  });
}

/** The registers the walks over the other CPUs use. */
const walk = aliases({ value: reg.r1, destination: reg.r2, cpu: reg.r3, cpuArea, online: reg.r8 });

/**
 * for each other online CPU not yet parked: `body`, with `cpu` (r3) its index. The walk goes on
 * at the routine's local label `next`, so each routine using it has one walk.
 */
function forEachOtherCpuNotParked(asm: Assembler, body: () => void): void {
  const { value, cpu, online } = walk;
  const next = asm.local('next');
  asm.movi(online, ONLINE_CPUS);
  asm.ld(online, online, 0);
  asm.movi(cpu, 0);
  asm.loop((exit) => {
    asm.cmpi(cpu, MAX_CPUS);
    asm.bge(exit);
    // online & (1 << cpu), and not this CPU
    asm.shr(value, online, cpu);
    asm.andi(value, value, 1);
    asm.cmpi(value, 0);
    asm.beq(next);
    asm.cmp(cpu, self);
    asm.beq(next);
    cpuAreaOf(asm, cpuArea, cpu);
    const parked = value;
    asm.ld(parked, cpuArea, PerCpu.offset.recoveryParked);
    asm.cmpi(parked, 0);
    asm.bne(next);
    body();
    asm.label(next);
    asm.addi(cpu, cpu, 1);
  });
}

/** recovery_signal_others(r6 = this CPU, r9 = vector, 0 = NMI): to every other online CPU not yet parked. */
function emitSignalOthers(asm: Assembler): void {
  const { value, destination, cpu, online } = walk;
  routine(asm, 'recovery_signal_others', [value, destination, cpu, cpuArea, online], () => {
    forEachOtherCpuNotParked(asm, () => {
      asm.movi(destination, IPI_DESTINATIONS);
      asm.add(destination, destination, cpu);
      asm.ld(destination, destination, 0);
      asm.ipi(destination, vector);
    });
  });
}

/** recovery_others_parked(r6 = this CPU): r0 = 1 when every other online CPU has parked, else 0. */
function emitOthersParked(asm: Assembler): void {
  const { value, cpu, online } = walk;
  const allParked = reg.r0;
  routine(asm, 'recovery_others_parked', [value, cpu, cpuArea, online], (done) => {
    asm.movi(allParked, 1);
    forEachOtherCpuNotParked(asm, () => {
      asm.movi(allParked, 0);
      asm.jmp(done);
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
  const value = reg.r1;
  asm.func('recovery_interrupt', () => {
    asm.eoi();
    asm.push(value);
    const recovery = value;
    asm.movi(recovery, RECOVERY_IN_PROGRESS);
    asm.ld(recovery, recovery, 0);
    asm.ifZero(recovery, () => {
      asm.pop(value);
      asm.iret();
    });
    thisCpuArea(asm, cpuArea);
    addToField(asm, cpuArea, PerCpu.offset.irqCount, 1, value);
    // and on into recovery_park
  });
  asm.func('recovery_park', () => {
    asm.cli();
    thisCpuArea(asm, cpuArea);
    storeImmediate(asm, cpuArea, PerCpu.offset.recoveryParked, 1, value);
    haltForever(asm);
  });

  const raise = aliases({ cpu: reg.r1, bits: reg.r2 });
  asm.func('recovery_resume', () => {
    smpProcessorId(asm, raise.cpu);
    asm.movi(raise.bits, SOFTIRQ_SCHEDULE);
    asm.call(ref('raise_softirq'));
    asm.jmp(ref('return_to_guest'));
  });
}
