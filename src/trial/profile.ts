/**
 * Where the hypervisor spends its time in a fault-free run: the share of hypervisor instructions
 * executed in each routine, and while the executing CPU holds each static lock. A fail-stop
 * lands on a hypervisor instruction chosen in proportion to this time, so the profile says how
 * often a fault finds a static lock held (which only the static-lock repair then releases), and
 * what the fault leaves for the other repairs: a hypercall in flight, any lock held, an interrupt
 * in service. Beside it, the share of the CPUs' time spent in the hypervisor at all: how likely
 * the recovery is to stop another CPU in the middle of its own hypervisor work.
 */
import type { Program } from '../machine/assembler.js';
import type { Tracer } from '../machine/machine.js';
import { functionOfSymbol, symbolizerFor } from '../machine/disassembler.js';
import { MAX_DOMAINS } from '../hypervisor/abi.js';
import { DOMAIN_LIST_LOCK, DOMAIN_TABLE, Domain, PerCpu, TIME_LOCK, Vcpu, perCpuAddress, scheduleLockAddress, timerLockAddress } from '../hypervisor/layout.js';
import type { System } from './system.js';

export interface HypervisorProfile {
  readonly instructions: number;
  /** share of hypervisor instructions executed in each routine (its own code, not its callees) */
  readonly routines: Readonly<Record<string, number>>;
  /** share executed while the executing CPU holds a static lock, by lock, and any of them */
  readonly staticLocks: Readonly<Record<StaticLockName | 'any', number>>;
  /** the same for the per-CPU schedule and timer locks, which live in the heap */
  readonly perCpuLocks: Readonly<Record<PerCpuLockName | 'any', number>>;
  /**
   * share executed with the executing CPU's vCPU in a hypercall (what hypercall retry repairs),
   * holding any lock (static, per-CPU, a domain's big or event lock: what the lock repairs
   * release), with an interrupt in service at its interrupt controller (what acknowledging
   * interrupts ends), and with none of the three: a fail-stop there leaves nothing for them
   */
  readonly exposure: Readonly<Record<'hypercall' | 'lockHeld' | 'interruptInService' | 'none', number>>;
  /** hypervisor instructions (one nanosecond each) over the simulated time of all CPUs */
  readonly hypervisorTimeShare: number;
}

type StaticLockName = 'domainList' | 'time';
type PerCpuLockName = 'schedule' | 'timers';

interface Lock<Name> {
  readonly name: Name;
  readonly address: number;
}

/** Counts instructions run while the executing CPU holds each of `locks`, and any of them. */
class LockTally<Name extends string> {
  private readonly counts = new Map<Name | 'any', number>();

  constructor(
    private readonly locks: readonly Lock<Name>[],
    private readonly words: Int32Array,
  ) {}

  /** counts one instruction; whether `owner` holds any of the locks */
  count(owner: number): boolean {
    let held = false;
    for (const lock of this.locks) {
      if (this.words[lock.address] !== owner) continue;
      this.counts.set(lock.name, (this.counts.get(lock.name) ?? 0) + 1);
      held = true;
    }
    if (held) this.counts.set('any', (this.counts.get('any') ?? 0) + 1);
    return held;
  }

  shares(names: readonly (Name | 'any')[], share: (count: number) => number): Record<Name | 'any', number> {
    return Object.fromEntries(names.map((name) => [name, share(this.counts.get(name) ?? 0)])) as Record<Name | 'any', number>;
  }
}

/** Whether `owner` holds a live domain's big lock or event lock. */
function holdsDomainLock(words: Int32Array, owner: number): boolean {
  for (let id = 0; id < MAX_DOMAINS; id++) {
    const domain = words[DOMAIN_TABLE + id];
    if (domain !== 0 && (words[domain + Domain.offset.lock] === owner || words[domain + Domain.offset.eventLock] === owner)) return true;
  }
  return false;
}

/** The routine each code address belongs to: its label, without offset or local suffix. */
function routineNames(program: Program): string[] {
  const symbol = symbolizerFor(program.labels);
  return Array.from({ length: program.words.length }, (_, offset) => {
    const name = symbol(program.base + offset);
    return name === undefined ? '?' : functionOfSymbol(name);
  });
}

/** A tracer that profiles, and the profile of what it has seen so far. */
export interface HypervisorProfiler {
  readonly tracer: Tracer;
  profile(): HypervisorProfile;
}

/**
 * Counts, instruction by instruction, what `system` runs while the tracer is the machine's
 * tracer (which also turns off block translation and loop skipping, so it is for diagnostics,
 * not campaigns).
 */
export function hypervisorProfiler(system: System): HypervisorProfiler {
  const machine = system.machine;
  const program = system.hypervisor.program;
  const names = routineNames(program);
  const words = machine.memory.words;
  const cpuLocks = system.hypervisor.layout.cpuLocks;
  const staticLocks = new LockTally<StaticLockName>([{ name: 'domainList', address: DOMAIN_LIST_LOCK }, { name: 'time', address: TIME_LOCK }], words);
  const perCpuLocks = new LockTally<PerCpuLockName>(
    machine.cpus.flatMap((cpu) => [
      { name: 'schedule' as const, address: scheduleLockAddress(cpuLocks, cpu.index) },
      { name: 'timers' as const, address: timerLockAddress(cpuLocks, cpu.index) },
    ]),
    words,
  );
  const byRoutine = new Map<string, number>();
  const exposure = { hypercall: 0, lockHeld: 0, interruptInService: 0, none: 0 };
  let instructions = 0;
  const tracer: Tracer = (cpu, programCounter) => {
    instructions++;
    const routine = names[programCounter - program.base] ?? '?';
    byRoutine.set(routine, (byRoutine.get(routine) ?? 0) + 1);
    // a lock word holds its owner's CPU index + 1
    const staticHeld = staticLocks.count(cpu + 1);
    const perCpuHeld = perCpuLocks.count(cpu + 1);
    const held = staticHeld || perCpuHeld || holdsDomainLock(words, cpu + 1);
    const inHypercall = words[words[perCpuAddress(cpu) + PerCpu.offset.current] + Vcpu.offset.hypercallInProgress] === 1;
    const inService = machine.cpus[cpu].inServiceVectors !== 0;
    if (inHypercall) exposure.hypercall++;
    if (held) exposure.lockHeld++;
    if (inService) exposure.interruptInService++;
    if (!inHypercall && !held && !inService) exposure.none++;
  };
  const profile = (): HypervisorProfile => {
    const share = (count: number): number => (instructions === 0 ? 0 : Math.round((count / instructions) * 10_000) / 10_000);
    const routines = Object.fromEntries([...byRoutine.entries()].sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0])).map(([name, count]) => [name, share(count)]));
    return {
      instructions,
      routines,
      staticLocks: staticLocks.shares(['any', 'domainList', 'time'], share),
      perCpuLocks: perCpuLocks.shares(['any', 'schedule', 'timers'], share),
      exposure: { hypercall: share(exposure.hypercall), lockHeld: share(exposure.lockHeld), interruptInService: share(exposure.interruptInService), none: share(exposure.none) },
      hypervisorTimeShare: machine.nowNs === 0 ? 0 : Math.round((machine.hypervisorInstructions / (machine.nowNs * machine.cpus.length)) * 1e6) / 1e6,
    };
  };
  return { tracer, profile };
}
