/**
 * The hypervisor's intended-sharing policy enforced with protection keys, after PUSh (MICRO 2019):
 * every word of hypervisor data is in one protection domain, and each CPU's PKRU opens for
 * writing only the domains of the locks it holds and of its own private data.
 *
 *   domain 0        untracked: locks themselves, data shared without a lock on purpose (racy:
 *                   softirq bits other CPUs raise, the recovery claim, the online map), the
 *                   shared rings and multicall buffers the guests write
 *   domain 15       read-shared: tables written at boot only (interrupt, hypercall, exception
 *                   tables, routing, pointers): no CPU may write them
 *   domains 1..14   hashed: each lock's protected data in the domain of the lock's address, each
 *                   CPU's private data (its per-CPU area, its vCPUs' own fields) in the domain of
 *                   the CPU's area address, by one hash of a universal family (multiply-shift,
 *                   an odd seed); re-hashing takes another seed, so that data sharing a domain by
 *                   collision, which hides a violation, is apart after a re-hash with high odds
 *
 * Write-only: every CPU may read every domain (readers outside a lock are not what the policy
 * catches), and key 0 is open to all. Acquiring a lock opens its domain for writing, releasing
 * closes it again: each CPU keeps a 2-bit count per domain in its per-CPU area (PerCpu.reserved)
 * and sets PKRU from the counts, so nested locks whose domains collide stay open until the last
 * is released; the count of the CPU's private domain is 1 from boot. The code is in
 * code/protection-keys.ts; this file is the policy as data, used by boot and recovery.
 *
 * Keys cover single words here (the machine's protectionKeyShift 0): PUSh's allocator gives
 * every annotated object its own pages, which this packed toy layout does not; a key per word
 * checks exactly what per-object pages would, without moving anything, so a campaign with and
 * without the policy injects into the same words. Memory overhead is not modelled.
 */
import type { CpuState } from '../machine/cpu.js';
import type { Memory } from '../machine/memory.js';
import { MAX_DOMAINS } from './abi.js';
import type { HeapLayout } from './boot.js';
import {
  CpuLocks,
  DOMAIN_LIST_LOCK,
  DOMAIN_TABLE,
  Domain,
  FRAME_TABLE_WORDS,
  FrameDescriptor,
  MULTICALL_BUFFER_WORDS,
  PerCpu,
  RING_WORDS,
  STATIC_BASE,
  STATIC_WORDS,
  StaticData,
  TIME_LOCK,
  Timer,
  Vcpu,
  perCpuAddress,
  scheduleLockAddress,
  staticAddress,
  timerLockAddress,
} from './layout.js';

export const UNTRACKED_DOMAIN = 0;
export const READ_SHARED_DOMAIN = 15;
/** domains 1..14: locks and CPUs are hashed into them */
export const HASHED_DOMAINS = 14;
/** the word the acquire and release code reads the hash seed from: past the static data, so no fault aims at it and a reboot keeps it */
export const PROTECTION_SEED = STATIC_BASE + STATIC_WORDS - 1;
/** how many periodic re-hash points have passed (see REHASH_PERIOD_NS): beside the seed, where no fault aims and a reboot keeps it */
export const REHASH_EPOCH = PROTECTION_SEED - 1;
/** PUSh re-hashes periodically so that a collision does not hide a race for long: every 100 ms of simulated time, where no CPU holds a lock */
export const REHASH_PERIOD_NS = 100_000_000;
/** the seed boot uses (odd, as the multiply-shift family needs) */
export const BOOT_SEED = 0x9e3779b1 | 0;
/** every hashed domain and the read-shared one write-disabled; key 0 open */
export const CLOSED_PKRU = 0xaaaaaaa8 | 0;
/** each CPU's counts of open domains: two bits per domain, in its per-CPU area */
export const OPEN_COUNTS_OFFSET = PerCpu.offset.reserved;

/** The domain (1..14) of the object whose lock, or CPU area, is at `address`, under `seed`. */
export function hashedDomain(address: number, seed: number): number {
  return 1 + ((((Math.imul(address, seed) >>> 16) & 0xffff) * HASHED_DOMAINS) >>> 16);
}

/** The next seed of the family, for a re-hash: odd, and a deterministic function of the last. */
export function nextSeed(seed: number): number {
  return (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) | 1;
}

/** PKRU for a CPU's open-domain counts: a domain with a non-zero count open for writing, the rest closed. */
export function pkruForCounts(counts: number): number {
  const open = (counts | (counts >>> 1)) & 0x55555555;
  return (CLOSED_PKRU ^ (open << 1)) | 0;
}

/** A CPU's open-domain counts holding no lock: its private domain, once. */
export function idleCounts(cpu: number, seed: number): number {
  return 1 << (2 * hashedDomain(perCpuAddress(cpu), seed));
}

/** One range of words and the domain the policy puts it in, with the reason, for tests and reports. */
export interface PolicyRange {
  readonly base: number;
  readonly sizeWords: number;
  readonly domain: number;
  /** what owns it: `lock 0x..`, `cpu 1`, `read-shared`, `untracked` */
  readonly owner: string;
  readonly object: string;
}

type Owner = { readonly kind: 'lock'; readonly address: number } | { readonly kind: 'cpu'; readonly cpu: number } | { readonly kind: 'readShared' } | { readonly kind: 'untracked' };

const untracked: Owner = { kind: 'untracked' };
const readShared: Owner = { kind: 'readShared' };
const lock = (address: number): Owner => ({ kind: 'lock', address });
const privateTo = (cpu: number): Owner => ({ kind: 'cpu', cpu });

function domainOf(owner: Owner, seed: number): number {
  switch (owner.kind) {
    case 'lock':
      return hashedDomain(owner.address, seed);
    case 'cpu':
      return hashedDomain(perCpuAddress(owner.cpu), seed);
    case 'readShared':
      return READ_SHARED_DOMAIN;
    case 'untracked':
      return UNTRACKED_DOMAIN;
  }
}

function ownerName(owner: Owner): string {
  switch (owner.kind) {
    case 'lock':
      return `lock 0x${owner.address.toString(16)}`;
    case 'cpu':
      return `cpu ${owner.cpu}`;
    case 'readShared':
      return 'read-shared';
    case 'untracked':
      return 'untracked';
  }
}

export interface Claim {
  readonly base: number;
  readonly sizeWords: number;
  readonly owner: Owner;
  readonly object: string;
}

/** Who owns each piece of hypervisor data, as booted; the domains follow under a seed (policyUnder). */
export interface ProtectionClaims {
  readonly claims: readonly Claim[];
}

/**
 * The policy's owners over hypervisor data as booted (`words` gives each vCPU's processor, each
 * timer's CPU and each frame's owner). Words it does not name are untracked. Kept from boot, so
 * that a re-hash never reads owners from memory a fault may have corrupted since.
 */
export function protectionClaims(words: Int32Array, layout: HeapLayout, cpuCount: number): ProtectionClaims {
  return { claims: [...staticClaims(cpuCount, layout.cpuLocks), ...heapClaims(words, layout, cpuCount)] };
}

/** The domain of every claimed range under `seed`. */
export function policyUnder(owners: ProtectionClaims, seed: number): PolicyRange[] {
  return owners.claims.map((claim) => ({ base: claim.base, sizeWords: claim.sizeWords, domain: domainOf(claim.owner, seed), owner: ownerName(claim.owner), object: claim.object }));
}

type StaticField = keyof typeof StaticData.offset;

/** Words of a static-data field: up to the next field's offset. */
function staticFieldWords(name: StaticField): number {
  const offset = StaticData.offset[name];
  const later = Object.values(StaticData.offset).filter((other) => other > offset);
  return (later.length === 0 ? StaticData.sizeWords : Math.min(...later)) - offset;
}

function staticClaims(cpuCount: number, cpuLocks: number): Claim[] {
  const field = (name: StaticField, owner: Owner): Claim => ({ base: staticAddress(name), sizeWords: staticFieldWords(name), owner, object: name });
  const claims: Claim[] = [
    ...(['interruptTable', 'hypercallTable', 'exceptionTable', 'irqDomain', 'irqPort', 'ipiDestination', 'domainPool'] as const).map((name) => field(name, readShared)),
    ...(['frameTable', 'cpuLocks', 'timeSyncTimer', 'cpuCount', 'recoveryEntry'] as const).map((name) => field(name, readShared)),
    field('domainTable', lock(DOMAIN_LIST_LOCK)),
    field('wallclockUs', lock(TIME_LOCK)),
    { base: PROTECTION_SEED, sizeWords: 1, owner: readShared, object: 'protectionSeed' },
    { base: REHASH_EPOCH, sizeWords: 1, owner: readShared, object: 'rehashEpoch' },
  ];
  for (let cpu = 0; cpu < cpuCount; cpu++) claims.push(...perCpuClaims(cpu, cpuLocks));
  return claims;
}

/** A CPU's area: its runqueue under its schedule lock, its timer list under its timer lock, softirq bits racy, the rest its own. */
function perCpuClaims(cpu: number, cpuLocks: number): Claim[] {
  const area = perCpuAddress(cpu);
  const schedule = lock(scheduleLockAddress(cpuLocks, cpu));
  const owners: Partial<Record<keyof typeof PerCpu.offset, Owner>> = {
    current: schedule,
    runqueueHead: schedule,
    runqueueTail: schedule,
    timerHead: lock(timerLockAddress(cpuLocks, cpu)),
    softirqPending: untracked,
    idleVcpu: readShared,
    stackTop: readShared,
    schedulerTickTimer: readShared,
    watchdogTimer: readShared,
  };
  return (Object.keys(PerCpu.offset) as (keyof typeof PerCpu.offset)[]).map((name) => ({
    base: area + PerCpu.offset[name],
    sizeWords: 1,
    owner: owners[name] ?? privateTo(cpu),
    object: `percpu[${cpu}].${name}`,
  }));
}

function heapClaims(words: Int32Array, layout: HeapLayout, cpuCount: number): Claim[] {
  const claims: Claim[] = [];
  const scheduleLock = (cpu: number): Owner => lock(scheduleLockAddress(layout.cpuLocks, cpu));
  const timerLock = (cpu: number): Owner => lock(timerLockAddress(layout.cpuLocks, cpu));
  const domainLock = (domainId: number): Owner => lock(layout.domains[domainId] + Domain.offset.lock);
  claims.push(...frameClaims(words, layout, domainLock));
  for (let domainId = 0; domainId < MAX_DOMAINS; domainId++) {
    const domain = layout.domains[domainId];
    if (words[DOMAIN_TABLE + domainId] === domain) {
      claims.push({ base: domain, sizeWords: Domain.sizeWords, owner: domainLock(domainId), object: `domain[${domainId}]` });
      claims.push(...vcpuClaims(words, layout.vcpus[domainId], `vcpu[${domainId}]`, scheduleLock, timerLock, cpuCount));
    }
    // a pooled domain (not running at boot): domctl create initialises it for a CPU chosen then,
    // a policy change the keys do not follow (PUSh would re-key it explicitly): untracked
    claims.push({ base: domain + Domain.offset.lock, sizeWords: 1, owner: untracked, object: `domain[${domainId}].lock` });
    claims.push({ base: domain + Domain.offset.eventLock, sizeWords: 1, owner: untracked, object: `domain[${domainId}].eventLock` });
    // set atomically by senders under the event lock, taken without it by the exit path (as Xen's
    // shared-info bits): a deliberate race
    claims.push({ base: domain + Domain.offset.pendingEvents, sizeWords: 1, owner: untracked, object: `domain[${domainId}].pendingEvents` });
    // published or not: domctl create and destroy write it under the domain-list lock
    claims.push({ base: domain + Domain.offset.inUse, sizeWords: 1, owner: lock(DOMAIN_LIST_LOCK), object: `domain[${domainId}].inUse` });
    claims.push({ base: layout.rings[domainId], sizeWords: RING_WORDS, owner: untracked, object: `ring[${domainId}]` });
    claims.push({ base: layout.multicallBuffers[domainId], sizeWords: MULTICALL_BUFFER_WORDS, owner: untracked, object: `multicall[${domainId}]` });
  }
  for (let cpu = 0; cpu < cpuCount; cpu++) {
    claims.push(...vcpuClaims(words, layout.idleVcpus[cpu], `idle[${cpu}]`, scheduleLock, timerLock, cpuCount));
    claims.push(...timerClaims(layout.schedulerTickTimers[cpu], `schedulerTickTimer[${cpu}]`, cpu, timerLock));
    claims.push(...timerClaims(layout.watchdogTimers[cpu], `watchdogTimer[${cpu}]`, cpu, timerLock));
  }
  claims.push(...timerClaims(layout.timeSyncTimer, 'timeSyncTimer', cpuOf(words[layout.timeSyncTimer + Timer.offset.cpu], cpuCount), timerLock));
  claims.push({ base: layout.cpuLocks, sizeWords: cpuCount * CpuLocks.sizeWords, owner: untracked, object: 'cpuLocks' });
  return claims;
}

/** Each frame's descriptor under its owner's domain lock; frame 0 (nobody's) untracked. */
function frameClaims(words: Int32Array, layout: HeapLayout, domainLock: (domainId: number) => Owner): Claim[] {
  const claims: Claim[] = [];
  for (let offset = 0; offset < FRAME_TABLE_WORDS; offset += FrameDescriptor.sizeWords) {
    const owner = words[layout.frameTable + offset + FrameDescriptor.offset.owner];
    const frame = offset / FrameDescriptor.sizeWords;
    claims.push({ base: layout.frameTable + offset, sizeWords: FrameDescriptor.sizeWords, owner: owner >= 0 && owner < MAX_DOMAINS ? domainLock(owner) : untracked, object: `frame[${frame}]` });
  }
  return claims;
}

/** A vCPU: its scheduling state under its processor's schedule lock, its timer under that CPU's timer lock, the rest its processor's own. */
function vcpuClaims(words: Int32Array, vcpu: number, name: string, scheduleLock: (cpu: number) => Owner, timerLock: (cpu: number) => Owner, cpuCount: number): Claim[] {
  const processor = cpuOf(words[vcpu + Vcpu.offset.processor], cpuCount);
  const timerCpu = cpuOf(words[vcpu + Vcpu.offset.timer + Timer.offset.cpu], cpuCount);
  const claims: Claim[] = [{ base: vcpu, sizeWords: Vcpu.sizeWords, owner: privateTo(processor), object: name }];
  for (const field of ['runState', 'runqueueNext', 'runqueuePrevious'] as const) {
    claims.push({ base: vcpu + Vcpu.offset[field], sizeWords: 1, owner: scheduleLock(processor), object: `${name}.${field}` });
  }
  // racy, as Xen's is_running: context_switch sets and clears it after the schedule lock is dropped (found by the golden-run check)
  claims.push({ base: vcpu + Vcpu.offset.isRunning, sizeWords: 1, owner: untracked, object: `${name}.isRunning` });
  claims.push(...timerClaims(vcpu + Vcpu.offset.timer, `${name}.timer`, timerCpu, timerLock));
  return claims;
}

/**
 * A timer under its CPU's timer lock, but for in_handler: the handler sets and clears it on its
 * CPU with the lock dropped around the call (found by the golden-run check), so it is that CPU's own.
 */
function timerClaims(timer: number, name: string, cpu: number, timerLock: (cpu: number) => Owner): Claim[] {
  return [
    { base: timer, sizeWords: Timer.sizeWords, owner: timerLock(cpu), object: name },
    { base: timer + Timer.offset.inHandler, sizeWords: 1, owner: privateTo(cpu), object: `${name}.inHandler` },
  ];
}

function cpuOf(value: number, cpuCount: number): number {
  return value >= 0 && value < cpuCount ? value : 0;
}

/**
 * Key hypervisor memory by the policy under `seed` (x86's pkey_mprotect over each object) and
 * write the seed where the lock code reads it. Later ranges override earlier ones (a struct,
 * then its fields).
 */
export function applyProtectionPolicy(memory: Memory, owners: ProtectionClaims, seed: number): PolicyRange[] {
  const policy = policyUnder(owners, seed);
  memory.pageKeys.fill(UNTRACKED_DOMAIN);
  for (const range of policy) memory.setKey(range.base, range.sizeWords, range.domain);
  memory.words[PROTECTION_SEED] = seed;
  return policy;
}

/** True when every CPU holds no lock and is not inside the lock code: its counts and PKRU those of a CPU holding none. */
export function noLockHeld(words: Int32Array, cpus: readonly CpuState[], seed: number): boolean {
  return cpus.every((cpu) => {
    const counts = idleCounts(cpu.index, seed);
    return words[perCpuAddress(cpu.index) + OPEN_COUNTS_OFFSET] === counts && cpu.pkru === pkruForCounts(counts);
  });
}

/** Every CPU holding no lock: its open-domain counts its private domain alone, its PKRU from them. */
export function resetProtectionRights(words: Int32Array, cpus: readonly CpuState[], seed: number): void {
  for (const cpu of cpus) {
    const counts = idleCounts(cpu.index, seed);
    words[perCpuAddress(cpu.index) + OPEN_COUNTS_OFFSET] = counts;
    cpu.pkru = pkruForCounts(counts);
  }
}
