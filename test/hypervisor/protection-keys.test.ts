/**
 * The intended-sharing policy (PUSh) through the machine: the build without it is the program it
 * was, golden runs with it raise no violation, locks open and close their domains, and a race a
 * CPU plants (a write without the lock) traps at once, unless a domain collision hides it, which
 * a re-hash undoes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_DOMAINS } from '../../src/hypervisor/abi.js';
import { assembleHypervisor } from '../../src/hypervisor/code/program.js';
import { Domain, TIME_LOCK, WALLCLOCK, perCpuAddress, scheduleLockAddress, staticAddress, timerLockAddress } from '../../src/hypervisor/layout.js';
import {
  BOOT_SEED,
  CLOSED_PKRU,
  OPEN_COUNTS_OFFSET,
  PROTECTION_SEED,
  REHASH_EPOCH,
  hashedDomain,
  idleCounts,
  nextSeed,
  pkruForCounts,
} from '../../src/hypervisor/protection-domains.js';
import { CpuMode, accessDisableBit, writeDisableBit } from '../../src/machine/cpu.js';
import { Opcode, decode, operationOf } from '../../src/machine/isa.js';
import type { System } from '../../src/trial/system.js';
import { runTrial } from '../../src/trial/trial.js';
import { MS, runToQuiescence, startedSystem } from './system-helpers.js';

function keyedSystem(configuration = '1AppVM', seed = 5): System {
  return startedSystem({ configuration, seed, protectionKeys: true });
}

function lockAddresses(system: System): Set<number> {
  const { layout, config } = system.hypervisor;
  const locks = new Set<number>([TIME_LOCK, staticAddress('locks')]);
  for (let cpu = 0; cpu < config.cpuCount; cpu++) {
    locks.add(scheduleLockAddress(layout.cpuLocks, cpu));
    locks.add(timerLockAddress(layout.cpuLocks, cpu));
  }
  for (let domainId = 0; domainId < MAX_DOMAINS; domainId++) {
    locks.add(layout.domains[domainId] + Domain.offset.lock);
    locks.add(layout.domains[domainId] + Domain.offset.eventLock);
  }
  return locks;
}

describe('the build', () => {
  it('without protection keys is the program it was: no wrpkru, and the same words as the default build', () => {
    const plain = assembleHypervisor();
    expect(Array.from(assembleHypervisor({ protectionKeys: false }).words)).toEqual(Array.from(plain.words));
    expect(Array.from(plain.words).some((word) => operationOf(word) === Opcode.WritePkru)).toBe(false);
    const keyed = assembleHypervisor({ protectionKeys: true });
    expect(Array.from(keyed.words).filter((word) => operationOf(word) === Opcode.WritePkru).length).toBeGreaterThan(20);
  });

  it('PKRU from the open-domain counts: a domain with a count open for writing, every other hashed one and read-shared closed, key 0 open, nothing read-disabled', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 14 }), fc.integer({ min: 1, max: 3 })), { maxLength: 14 }), (open) => {
        const counts = open.reduce((sum, [domain, count]) => (sum & ~(3 << (2 * domain))) | (count << (2 * domain)), 0);
        const pkru = pkruForCounts(counts);
        for (let key = 0; key < 16; key++) {
          expect(pkru & accessDisableBit(key)).toBe(0);
          const isOpen = key === 0 || ((counts >>> (2 * key)) & 3) !== 0;
          expect((pkru & writeDisableBit(key)) === 0).toBe(isOpen);
        }
      }),
    );
    expect(pkruForCounts(0)).toBe(CLOSED_PKRU);
  });
});

describe('golden runs with the policy', () => {
  it.each(['1AppVM', '1AppVM-blk', '3AppVM'])('%s raises no violation, re-hashed every 100 ms', (configuration) => {
    const system = keyedSystem(configuration, 23);
    const stop = system.hypervisor.run({ untilNs: 250 * MS });
    expect(system.hypervisor.detections).toEqual([]);
    expect(stop.kind).toBe('timeReached');
    expect(system.machine.memory.words[REHASH_EPOCH]).toBe(2);
    expect(system.machine.memory.words[PROTECTION_SEED]).not.toBe(BOOT_SEED);
  });

  it('re-hashes alike however the run is cut into pieces: the same state at the end', () => {
    const whole = keyedSystem('3AppVM', 9);
    whole.hypervisor.run({ untilNs: 230 * MS });
    const pieces = keyedSystem('3AppVM', 9);
    for (const untilNs of [37 * MS, 100 * MS, 100 * MS + 1, 199 * MS, 230 * MS]) pieces.hypervisor.run({ untilNs });
    expect(pieces.machine.memory.words[REHASH_EPOCH]).toBe(2);
    expect(pieces.digest()).toBe(whole.digest());
  });
});

describe('locks open and close their domains', () => {
  it('every lock is taken with its domain open for writing, and at a quiescent point every CPU holds its idle rights again', () => {
    const system = keyedSystem();
    const machine = system.machine;
    const locks = lockAddresses(system);
    let acquisitions = 0;
    let closedAtAcquisition = 0;
    let pkruWrites = 0;
    machine.tracer = (index, _programCounter, word) => {
      const operation = operationOf(word);
      if (operation === Opcode.WritePkru) pkruWrites++;
      if (operation !== Opcode.CompareAndSwap) return;
      const cpu = machine.cpus[index];
      const address = cpu.registers[decode(word).b];
      if (!locks.has(address)) return;
      acquisitions++;
      if ((cpu.pkru & writeDisableBit(hashedDomain(address, BOOT_SEED))) !== 0) closedAtAcquisition++;
    };
    runToQuiescence(system, 60 * MS);
    machine.tracer = undefined;
    expect(acquisitions).toBeGreaterThan(100);
    expect(closedAtAcquisition).toBe(0);
    // an open and a close around each lock taken
    expect(pkruWrites).toBeGreaterThanOrEqual(2 * acquisitions - 2 * machine.cpus.length);
    for (const cpu of machine.cpus) {
      expect(machine.memory.words[perCpuAddress(cpu.index) + OPEN_COUNTS_OFFSET]).toBe(idleCounts(cpu.index, BOOT_SEED));
      expect(cpu.pkru).toBe(pkruForCounts(idleCounts(cpu.index, BOOT_SEED)));
    }
  });
});

/** The address of the store that writes the wall clock inside time_sync_fn's critical section. */
function wallclockStore(system: System): number {
  const { program } = system.hypervisor;
  const start = system.hypervisor.label('time_sync_fn');
  for (let address = start; address < start + 80; address++) {
    const instruction = decode(program.words[address - program.base]);
    if (instruction.opcode === Opcode.Store && instruction.immediate === 0) {
      const previous = decode(program.words[address - program.base - 2]);
      // movi r1, WALLCLOCK; rdtime r2; st [r1+0], r2
      if (previous.opcode === Opcode.MoveImmediate && previous.immediate === WALLCLOCK) return address;
    }
  }
  throw new Error('no wall clock store in time_sync_fn');
}

/**
 * CPU `racer`, idle, runs the wall clock's store as a thread that never took the time lock would:
 * the one instruction alone (the other CPUs held). Returns the detection, if it trapped.
 */
function plantRace(system: System, racer: number, value: number): ReturnType<System['hypervisor']['stoppedDetection']> {
  const machine = system.machine;
  const held = machine.cpus.filter((cpu) => cpu.index !== racer).map((cpu) => [cpu, cpu.mode] as const);
  for (const [cpu] of held) cpu.mode = CpuMode.Stopped;
  const cpu = machine.cpus[racer];
  const store = decode(system.hypervisor.program.words[wallclockStore(system) - system.hypervisor.program.base]);
  cpu.registers[store.a] = WALLCLOCK;
  cpu.registers[store.b] = value;
  cpu.flags = 0;
  machine.startCpu(racer, wallclockStore(system), cpu.stackPointer === 0 ? perCpuAddress(racer) : cpu.stackPointer);
  system.hypervisor.run({ untilNs: machine.nowNs + 1_000, instructionLimit: machine.hypervisorInstructions + 1 });
  for (const [other, mode] of held) other.mode = mode;
  return system.hypervisor.stoppedDetection();
}

/** The first seed of the re-hash chain from BOOT_SEED under which some CPU's private domain is the time lock's. */
function collidingSeed(cpuCount: number): { seed: number; cpu: number } {
  let seed = BOOT_SEED;
  for (let rehash = 0; rehash < 500; rehash++, seed = nextSeed(seed)) {
    for (let cpu = 0; cpu < cpuCount; cpu++) {
      if (hashedDomain(perCpuAddress(cpu), seed) === hashedDomain(TIME_LOCK, seed)) return { seed, cpu };
    }
  }
  throw new Error('no colliding seed in 500 re-hashes');
}

describe('a planted race', () => {
  it('a write without the lock traps at the write as a protection-key fault: a detection, with nothing written', () => {
    const system = keyedSystem();
    runToQuiescence(system, 20 * MS);
    const before = system.machine.memory.words[WALLCLOCK];
    const racer = [1, 2, 3].find((cpu) => hashedDomain(perCpuAddress(cpu), BOOT_SEED) !== hashedDomain(TIME_LOCK, BOOT_SEED)) as number;
    const detection = plantRace(system, racer, 777);
    expect(detection).toMatchObject({ detector: 'exception', exception: 'protectionKey', cpu: racer, programCounter: wallclockStore(system), address: WALLCLOCK });
    expect(system.machine.memory.words[WALLCLOCK]).toBe(before);
  });

  it('the same write on a build without protection keys goes unnoticed: it is the silent corruption the policy catches', () => {
    const system = startedSystem({ configuration: '1AppVM', seed: 5 });
    runToQuiescence(system, 20 * MS);
    expect(plantRace(system, 3, 777)).toBeUndefined();
    expect(system.machine.memory.words[WALLCLOCK]).toBe(777);
  });

  it('hidden by a domain collision (the racing CPU\'s own domain is the lock\'s), and found after a re-hash', () => {
    const system = keyedSystem();
    runToQuiescence(system, 20 * MS);
    const { seed, cpu } = collidingSeed(system.hypervisor.config.cpuCount);
    system.hypervisor.rehashProtectionDomains(seed);
    expect(system.machine.memory.words[PROTECTION_SEED]).toBe(seed);
    expect(plantRace(system, cpu, 555)).toBeUndefined();
    expect(system.machine.memory.words[WALLCLOCK]).toBe(555);
    // periodic re-hashing: the next seed of the chain that keeps the two apart finds it
    let next = nextSeed(seed);
    let rehashes = 1;
    while (hashedDomain(perCpuAddress(cpu), next) === hashedDomain(TIME_LOCK, next)) {
      next = nextSeed(next);
      rehashes++;
    }
    expect(rehashes).toBeLessThanOrEqual(3);
    system.hypervisor.rehashProtectionDomains(next);
    expect(plantRace(system, cpu, 556)).toMatchObject({ exception: 'protectionKey', cpu, address: WALLCLOCK });
    expect(system.machine.memory.words[WALLCLOCK]).toBe(555);
  });

  it('the policy keeps working after a re-hash: golden run on, no violation', () => {
    const system = keyedSystem('3AppVM', 4);
    runToQuiescence(system, 20 * MS);
    system.hypervisor.rehashProtectionDomains(nextSeed(nextSeed(BOOT_SEED)));
    const stop = system.hypervisor.run({ untilNs: 120 * MS });
    expect(system.hypervisor.detections).toEqual([]);
    expect(stop.kind).toBe('timeReached');
  });
});

describe('a trial with protection keys', () => {
  it('says so in its record and replay command, and one seed reproduces it byte for byte; without keys the record has no such field', () => {
    const spec = { configuration: '1AppVM', seed: 3, trialIndex: 1, faultType: 'failstop' as const, runLengthNs: 120 * MS, mechanism: 'microreset' as const };
    const keyed = runTrial({ ...spec, pkeys: true }).record;
    expect(keyed).toMatchObject({ pkeys: true });
    expect(keyed.replay).toMatch(/ --pkeys/);
    expect(JSON.stringify(runTrial({ ...spec, pkeys: true }).record)).toBe(JSON.stringify(keyed));
    const plain = runTrial(spec).record;
    expect('pkeys' in plain).toBe(false);
    expect(plain.replay).not.toMatch(/pkeys/);
  });
});

describe('recovery that creates a VM, with protection keys', () => {
  it('raises no violation: the new domain\'s structures are initialised for a CPU chosen then, outside the keys\' policy', () => {
    for (const trialIndex of [0]) {
      const record = runTrial({ configuration: '3AppVM', seed: 20, trialIndex, faultType: 'failstop', mechanism: 'microreset', pkeys: true }).record;
      expect(record.outcome).toBe('detected');
      if (record.outcome !== 'detected') continue;
      expect(record.recovery?.detail ?? '').not.toMatch(/protectionKey/);
    }
  });
});
