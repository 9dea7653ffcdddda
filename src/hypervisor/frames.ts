/**
 * What the frame table should say when no update is in flight, counted from the page tables:
 * shared by the audit, which checks it, and the frame-table pass, which restores it.
 */
import { FRAME_COUNT, PAGE_TABLE_SLOTS } from './abi.js';
import { Domain, FrameDescriptor, frameStateFor } from './layout.js';

export interface ExpectedFrame {
  readonly useCount: number;
  readonly type: number;
  readonly validated: number;
  /** page_lock's bit: no page stays locked once its update is done */
  readonly locked: number;
}

/** The descriptor fields a frame's expected state covers, in ExpectedFrame's order. */
export const checkedFrameFields = ['useCount', 'type', 'validated', 'locked'] as const;
export type CheckedFrameField = (typeof checkedFrameFields)[number];

/**
 * Each frame's expected state (index 0 unused), given the addresses of the live domains'
 * structures: a frame is referenced once by each page-table entry that names it and once by the
 * domain whose page table it holds, which types it as a validated page table. Entries or
 * page-table frames outside the frame table count for nothing.
 */
export function expectedFrames(read: (address: number) => number, domains: readonly number[]): ExpectedFrame[] {
  const references = new Int32Array(FRAME_COUNT);
  const pageTables = new Uint8Array(FRAME_COUNT);
  const inTable = (frame: number): boolean => frame > 0 && frame < FRAME_COUNT;
  for (const domain of domains) {
    for (let slot = 0; slot < PAGE_TABLE_SLOTS; slot++) {
      const frame = read(domain + Domain.offset.pageTable + slot);
      if (inTable(frame)) references[frame]++;
    }
    const pageTableFrame = read(domain + Domain.offset.pageTableFrame);
    if (inTable(pageTableFrame)) {
      references[pageTableFrame]++;
      pageTables[pageTableFrame] = 1;
    }
  }
  return Array.from(references, (useCount, frame) => ({ useCount, ...frameStateFor(useCount, pageTables[frame] === 1), locked: 0 }));
}

/** The address of `field` in frame `frame`'s descriptor, in a frame table at `table`. */
export function frameField(table: number, frame: number, field: keyof typeof FrameDescriptor.offset): number {
  return table + frame * FrameDescriptor.sizeWords + FrameDescriptor.offset[field];
}
