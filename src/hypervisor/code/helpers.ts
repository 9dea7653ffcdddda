/**
 * Small code-emitting idioms shared by the hypervisor's handlers, so each reads like C.
 */
import { ref, reg, type Assembler, type LabelReference, type Register } from '../../machine/assembler.js';
import { CPU_INFO_OFFSET, CPU_LOCKS_POINTER, CpuLocks, PER_CPU_BASE, PerCpu, STACK_WORDS } from '../layout.js';

/** The routines' scratch register (the structured helpers' first): clobbered by the helpers below. */
export const routineScratch = reg.r14;

/**
 * destination = smp_processor_id(): as Xen's `get_cpu_info()->processor_id`, the `cpu_info`
 * word of the stack block the stack pointer is in (so a stack pointer gone astray in mapped
 * memory names whatever that word holds)
 */
export function smpProcessorId(asm: Assembler, destination: Register): void {
  asm.rdsp(destination);
  asm.andi(destination, destination, -STACK_WORDS);
  asm.ld(destination, destination, CPU_INFO_OFFSET);
}

/**
 * destination = &per_cpu(this CPU), clobbering `scratch` (r14, the routines' scratch register,
 * unless the caller is an interrupt handler that has saved another: it must give back every
 * register of the code it interrupted)
 */
export function thisCpuArea(asm: Assembler, destination: Register, scratch: Register = routineScratch): void {
  smpProcessorId(asm, destination);
  cpuAreaOf(asm, destination, destination, scratch);
}

/** destination = &per_cpu(cpu), clobbering `scratch` */
export function cpuAreaOf(asm: Assembler, destination: Register, cpu: Register, scratch: Register = routineScratch): void {
  asm.movi(scratch, PerCpu.sizeWords);
  asm.mul(destination, cpu, scratch);
  asm.addi(destination, destination, PER_CPU_BASE);
}

/** destination = &schedule_lock(cpu), in the CPU's heap-allocated locks */
export function scheduleLockOf(asm: Assembler, destination: Register, cpu: Register): void {
  cpuLockOf(asm, destination, cpu, CpuLocks.offset.schedule);
}

/** destination = &timer_lock(cpu), in the CPU's heap-allocated locks */
export function timerLockOf(asm: Assembler, destination: Register, cpu: Register): void {
  cpuLockOf(asm, destination, cpu, CpuLocks.offset.timers);
}

/** destination = &cpu_locks[cpu].field, clobbering the routines' scratch register */
function cpuLockOf(asm: Assembler, destination: Register, cpu: Register, offset: number): void {
  const locksOffset = routineScratch;
  asm.movi(locksOffset, CpuLocks.sizeWords);
  asm.mul(locksOffset, cpu, locksOffset);
  asm.movi(destination, CPU_LOCKS_POINTER);
  asm.ld(destination, destination, 0);
  asm.add(destination, destination, locksOffset);
  asm.addi(destination, destination, offset);
}

/** destination = &table[index], for a static table of one word per entry (table[] indexed by a vector, a domain id) */
export function tableEntry(asm: Assembler, destination: Register, table: number, index: Register): void {
  asm.movi(destination, table);
  asm.add(destination, destination, index);
}

/** memory[base + offset] += delta, through `scratch` */
export function addToField(asm: Assembler, base: Register, offset: number, delta: number, scratch: Register): void {
  asm.ld(scratch, base, offset);
  asm.addi(scratch, scratch, delta);
  asm.st(base, offset, scratch);
}

/** memory[base + offset] = value, through `scratch` */
export function storeImmediate(asm: Assembler, base: Register, offset: number, value: number, scratch: Register): void {
  asm.movi(scratch, value);
  asm.st(base, offset, scratch);
}

/**
 * old = memory[address]; memory[address] = old | bits, atomically (Xen's set_bit): a
 * compare-and-swap loop at the routine's local label `retry` (one per routine: name another if
 * a routine has two); `updated` holds old | bits after.
 */
export function atomicOr(asm: Assembler, address: Register, bits: Register, registers: { readonly old: Register; readonly updated: Register; readonly expected: Register }, retry = 'retry'): void {
  const { old, updated, expected } = registers;
  const again = asm.local(retry);
  asm.label(again);
  asm.ld(old, address, 0);
  asm.or(updated, old, bits);
  asm.mov(expected, old);
  asm.cas(expected, address, updated);
  asm.bne(again);
}

/** old = xchg(&memory[address], 0): a compare-and-swap loop at the routine's local label `retry` (as atomicOr's) */
export function exchangeWithZero(asm: Assembler, address: Register, registers: { readonly old: Register; readonly expected: Register; readonly zero: Register }, retry = 'retry'): void {
  const { old, expected, zero } = registers;
  const again = asm.local(retry);
  asm.label(again);
  asm.ld(old, address, 0);
  asm.mov(expected, old);
  asm.movi(zero, 0);
  asm.cas(expected, address, zero);
  asm.bne(again);
}

/**
 * A function that saves the registers it uses and restores them on the way out.
 * `body` receives the exit label (local, `name.exit`): jump there instead of returning early.
 */
export function routine(asm: Assembler, name: string, saved: readonly Register[], body: (exit: LabelReference) => void): void {
  asm.func(name, () => {
    const exit = asm.local('exit');
    for (const register of saved) asm.push(register);
    body(exit);
    asm.label(exit);
    for (const register of [...saved].reverse()) asm.pop(register);
    asm.ret();
  });
}

/** Every general-purpose register, for interrupt handlers that may interrupt anything. */
export const ALL_REGISTERS: readonly Register[] = Array.from({ length: 16 }, (_, index) => index as Register);

export function saveAll(asm: Assembler): void {
  for (const register of ALL_REGISTERS) asm.push(register);
}

export function restoreAll(asm: Assembler): void {
  for (const register of [...ALL_REGISTERS].reverse()) asm.pop(register);
}

/** irq_count++ on interrupt entry, in this CPU's area */
export function irqEnter(asm: Assembler, cpuArea: Register, scratch: Register): void {
  addToField(asm, cpuArea, PerCpu.offset.irqCount, 1, scratch);
}

/** irq_count-- on interrupt exit */
export function irqExit(asm: Assembler, cpuArea: Register, scratch: Register): void {
  addToField(asm, cpuArea, PerCpu.offset.irqCount, -1, scratch);
}

export { ref };
