/**
 * What guests agree on among themselves, on top of the hypervisor's ABI: the I/O ring message
 * codes (the hypervisor only moves notifications, it never reads ring entries), a typed view of
 * a ring page, and helpers to build hypercall actions.
 */
import {
  Hypercall,
  RING_ENTRY_WORDS,
  RING_REQUESTS_OFFSET,
  RING_RESPONSES_OFFSET,
  RING_SIZE,
  RING_WORDS,
  RingEntry,
  RingHeader,
  SCHEDOP_BLOCK,
} from '../hypervisor/abi.js';
import type { GuestAction, SharedRegion } from './kernel.js';

/** Request operation codes on a ring (RingEntry.operation of a request). */
export const BLOCK_READ = 1;
export const BLOCK_WRITE = 2;
export const BLOCK_TRIM = 3;
export const NET_PING = 4;

/** RingEntry.operation of a response holds a status: 0 or a negative abi ERROR_* value. */
export const STATUS_OK = 0;

/** Each AppVM sees a virtual disk of this many blocks; the PrivVM maps it onto its own partition. */
export const BLOCKS_PER_DOMAIN = 16;

export interface RingMessage {
  readonly id: number;
  readonly operation: number;
  readonly argument: number;
  readonly data: number;
}

export type RingHeaderField = keyof typeof RingHeader;

/** Reads and writes the entries of one shared ring page; indices are free-running counters. */
export class RingView {
  constructor(private readonly region: SharedRegion) {
    if (region.sizeWords < RING_WORDS) {
      throw new Error(`ring region has ${region.sizeWords} words, needs ${RING_WORDS}`);
    }
  }

  header(field: RingHeaderField): number {
    return this.region.read(RingHeader[field]);
  }

  setHeader(field: RingHeaderField, value: number): void {
    this.region.write(RingHeader[field], value | 0);
  }

  request(index: number): RingMessage {
    return this.readEntry(RING_REQUESTS_OFFSET, index);
  }

  writeRequest(index: number, message: RingMessage): void {
    this.writeEntry(RING_REQUESTS_OFFSET, index, message);
  }

  response(index: number): RingMessage {
    return this.readEntry(RING_RESPONSES_OFFSET, index);
  }

  writeResponse(index: number, message: RingMessage): void {
    this.writeEntry(RING_RESPONSES_OFFSET, index, message);
  }

  private entryBase(arrayOffset: number, index: number): number {
    return arrayOffset + (((index % RING_SIZE) + RING_SIZE) % RING_SIZE) * RING_ENTRY_WORDS;
  }

  private readEntry(arrayOffset: number, index: number): RingMessage {
    const base = this.entryBase(arrayOffset, index);
    return {
      id: this.region.read(base + RingEntry.id),
      operation: this.region.read(base + RingEntry.operation),
      argument: this.region.read(base + RingEntry.argument),
      data: this.region.read(base + RingEntry.data),
    };
  }

  private writeEntry(arrayOffset: number, index: number, message: RingMessage): void {
    const base = this.entryBase(arrayOffset, index);
    this.region.write(base + RingEntry.id, message.id | 0);
    this.region.write(base + RingEntry.operation, message.operation | 0);
    this.region.write(base + RingEntry.argument, message.argument | 0);
    this.region.write(base + RingEntry.data, message.data | 0);
  }
}

export function portBit(port: number): number {
  return 1 << port;
}

export function hypercallAction(computeNs: number, hypercall: number, argument0 = 0, argument1 = 0, argument2 = 0): GuestAction {
  return { computeNs: Math.max(0, Math.round(computeNs)), hypercall, args: [argument0 | 0, argument1 | 0, argument2 | 0] };
}

/** A guest with nothing to do blocks; the hypervisor returns at once if events are pending. */
export function blockAction(computeNs: number): GuestAction {
  return hypercallAction(computeNs, Hypercall.SchedOp, SCHEDOP_BLOCK);
}

export function microsecondsToNs(microseconds: number): number {
  return microseconds * 1_000;
}

export function formatMs(timeNs: number): string {
  return `${(timeNs / 1_000_000).toFixed(3)} ms`;
}
