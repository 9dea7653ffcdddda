/**
 * The intended-sharing policy's code (see ../protection-domains.ts): before a lock is taken, one
 * more count of the lock's domain in this CPU's open-domain counts, after it is released one
 * less, and PKRU written from the counts. Only a hypervisor built with protection keys has it.
 */
import { reg, type Assembler, type LockHooks, type Register } from '../../machine/assembler.js';
import { PER_CPU_BASE, PerCpu } from '../layout.js';
import { HASHED_DOMAINS, OPEN_COUNTS_OFFSET, PROTECTION_SEED } from '../protection-domains.js';
import { smpProcessorId } from './helpers.js';

/** the lock code's scratch registers (the assembler's), free around a lock */
const scratch = reg.r14;
const unit = reg.r15;

/**
 * unit = one count of the lock's domain, 1 << 2 * domain, where
 * domain = 1 + ((((lock * seed) >>> 16) * 14) >>> 16), as hashedDomain() computes it.
 */
function domainCount(asm: Assembler, lock: Register): void {
  asm.movi(scratch, PROTECTION_SEED).ld(scratch, scratch, 0);
  asm.mul(unit, lock, scratch);
  asm.movi(scratch, 16).shr(unit, unit, scratch);
  asm.movi(scratch, HASHED_DOMAINS).mul(unit, unit, scratch);
  asm.movi(scratch, 16).shr(unit, unit, scratch);
  asm.addi(unit, unit, 1).add(unit, unit, unit);
  asm.movi(scratch, 1).shl(unit, scratch, unit);
}

/**
 * counts += delta * unit in this CPU's area, then
 * PKRU = CLOSED_PKRU ^ (((counts | counts >>> 1) & 0x55555555) << 1), as pkruForCounts() computes it:
 * the write-disable bit of every domain with a count cleared.
 */
function updateRights(asm: Assembler, delta: 1 | -1): void {
  const counts = reg.r13;
  const mask = reg.r12;
  asm.push(mask).push(counts);
  smpProcessorId(asm, scratch);
  asm.movi(counts, PerCpu.sizeWords).mul(scratch, scratch, counts).addi(scratch, scratch, PER_CPU_BASE + OPEN_COUNTS_OFFSET);
  asm.ld(counts, scratch, 0);
  if (delta > 0) asm.add(counts, counts, unit);
  else asm.sub(counts, counts, unit);
  asm.st(scratch, 0, counts);
  asm.movi(mask, 1).shr(unit, counts, mask).or(unit, unit, counts);
  // mask = 0x55555555: the low bit of every count
  asm.movi(mask, 0x5555).movi(counts, 16).shl(counts, mask, counts).or(mask, mask, counts);
  asm.and(unit, unit, mask).add(unit, unit, unit);
  // mask = CLOSED_PKRU: 0xaaaaaaaa without key 0's write-disable bit
  asm.add(mask, mask, mask).addi(mask, mask, -2);
  asm.xor(unit, unit, mask);
  asm.wrpkru(unit);
  asm.pop(counts).pop(mask);
}

/** Open the lock's domain before taking it, close it after releasing it. */
export const protectionKeyHooks: LockHooks = {
  beforeAcquire(asm, lock) {
    domainCount(asm, lock);
    updateRights(asm, 1);
  },
  afterRelease(asm, lock) {
    domainCount(asm, lock);
    updateRights(asm, -1);
  },
};
