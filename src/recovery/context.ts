/**
 * What a repair step works on: the stopped machine and the hypervisor's memory, read and
 * written as the real recovery routine would, through the hypervisor's own (possibly corrupted)
 * pointers. An access to an unmapped address is a crash of the recovery itself; a walk that
 * exceeds its bound (a cycle in a corrupted list) is a hang of the recovery.
 */
import type { Hypervisor } from '../hypervisor/hypervisor.js';
import type { Detection } from '../hypervisor/detection.js';
import type { Machine } from '../machine/machine.js';
import { PERMISSION_READ, PERMISSION_WRITE } from '../machine/memory.js';

export class RecoveryCrash extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecoveryCrash';
  }
}

export class RecoveryHang extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecoveryHang';
  }
}

export class RecoveryContext {
  readonly machine: Machine;
  /** the CPU that detected the error and runs the repairs */
  readonly recoveryCpu: number;

  constructor(
    readonly hypervisor: Hypervisor,
    readonly detection: Detection,
  ) {
    this.machine = hypervisor.machine;
    this.recoveryCpu = detection.cpu;
  }

  read(address: number): number {
    if ((this.machine.memory.permissionAt(address) & PERMISSION_READ) === 0) {
      throw new RecoveryCrash(`recovery read unmapped address 0x${(address >>> 0).toString(16)}`);
    }
    return this.machine.memory.words[address];
  }

  write(address: number, value: number): void {
    if ((this.machine.memory.permissionAt(address) & PERMISSION_WRITE) === 0) {
      throw new RecoveryCrash(`recovery wrote unwritable address 0x${(address >>> 0).toString(16)}`);
    }
    this.machine.memory.words[address] = value;
  }

  /** Throws RecoveryHang when a walk takes more than `limit` steps. */
  bound(steps: number, limit: number, what: string): void {
    if (steps > limit) throw new RecoveryHang(`recovery looped walking ${what}`);
  }
}
