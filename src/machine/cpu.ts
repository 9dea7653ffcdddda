/**
 * The architectural state of one simulated CPU and its local interrupt controller.
 * Plain fields, copied whole by snapshots.
 */
import { DOUBLE_FIELD } from './double-field.js';
import { REGISTER_COUNT } from './isa.js';

export const enum CpuMode {
  /** executing hypervisor instructions */
  Running = 0,
  /** `hlt`: asleep until an interrupt it can take */
  Halted = 1,
  /** `pause` in a spin loop: asleep until another CPU writes memory or an interrupt arrives */
  Paused = 2,
  /** running guest code through the guest port, until its exit time or an interrupt */
  Guest = 3,
  /** stopped by a trap or by the layer above (recovery holds CPUs here) */
  Stopped = 4,
}

export const NO_DEADLINE = -1;

export class CpuState {
  readonly index: number;
  registers = new Int32Array(REGISTER_COUNT);
  stackPointer = 0;
  flags = 0;
  programCounter = 0;
  mode: CpuMode = CpuMode.Stopped;
  /** local simulated time; stale while the CPU sleeps */
  timeNs = DOUBLE_FIELD;

  /** interrupt controller: bit v set = vector v pending / in service; higher vector = higher priority */
  pendingVectors = 0;
  inServiceVectors = 0;
  nmiPending = false;
  /** set on NMI entry, cleared by the next `iret` */
  nmiBlocked = false;
  /** the instruction after an `sti` that enabled interrupts runs before any delivery */
  interruptShadow = false;
  /** local one-shot timer, absolute simulated time, or NO_DEADLINE */
  timerDeadlineNs = DOUBLE_FIELD;
  /** next watchdog NMI from the performance counter */
  nextNmiNs = DOUBLE_FIELD;
  /** when the running guest will exit on its own, or NO_DEADLINE */
  guestExitNs = DOUBLE_FIELD;
  /** the write epoch seen when the CPU paused */
  pausedWriteEpoch = 0;
  /** hypervisor instructions this CPU has retired */
  instructionsRetired = 0;
  /**
   * protection-key rights (x86's PKRU): for key k, bit 2k disables every data access to pages
   * of that key, bit 2k+1 disables writes. 0: every key open.
   */
  pkru = 0;

  constructor(index: number) {
    this.index = index;
    this.timeNs = 0;
    this.timerDeadlineNs = NO_DEADLINE;
    this.nextNmiNs = 0;
    this.guestExitNs = NO_DEADLINE;
  }

  copyFrom(other: CpuState): void {
    this.registers.set(other.registers);
    this.stackPointer = other.stackPointer;
    this.flags = other.flags;
    this.programCounter = other.programCounter;
    this.mode = other.mode;
    this.timeNs = other.timeNs;
    this.pendingVectors = other.pendingVectors;
    this.inServiceVectors = other.inServiceVectors;
    this.nmiPending = other.nmiPending;
    this.nmiBlocked = other.nmiBlocked;
    this.interruptShadow = other.interruptShadow;
    this.timerDeadlineNs = other.timerDeadlineNs;
    this.nextNmiNs = other.nextNmiNs;
    this.guestExitNs = other.guestExitNs;
    this.pausedWriteEpoch = other.pausedWriteEpoch;
    this.instructionsRetired = other.instructionsRetired;
    this.pkru = other.pkru;
  }

  clone(): CpuState {
    const copy = new CpuState(this.index);
    copy.copyFrom(this);
    return copy;
  }
}

/** Highest set bit index, or -1 for zero. */
export function highestVector(mask: number): number {
  return 31 - Math.clz32(mask);
}

/** A pending vector outranks everything in service (interrupt-enable not considered). */
export function hasUnblockedVector(cpu: CpuState): boolean {
  return highestVector(cpu.pendingVectors) > highestVector(cpu.inServiceVectors);
}

/** PKRU's access-disable bit of protection key `key`. */
export function accessDisableBit(key: number): number {
  return 1 << (2 * key);
}

/** PKRU's write-disable bit of protection key `key`. */
export function writeDisableBit(key: number): number {
  return 1 << (2 * key + 1);
}

/** True when `pkru` denies the access (`write` or not) to a page of protection key `key`. */
export function keyDenies(pkru: number, key: number, write: boolean): boolean {
  return ((pkru >>> (2 * key)) & (write ? 3 : 1)) !== 0;
}
