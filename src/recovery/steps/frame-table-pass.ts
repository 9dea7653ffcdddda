/**
 * Frame-table pass: restore and check every page-frame descriptor: its use count equal to the
 * references the page tables make to it, its type and validated bit to match, and no page left
 * page-locked. Without it, counts left wrong by an abandoned update make later updates fail, and
 * a page-table page left locked by an abandoned update makes the next update of it spin for ever
 * (ReHype: without it the hypervisor can hang after recovery).
 */
import { FRAME_COUNT } from '../../hypervisor/abi.js';
import { checkedFrameFields, expectedFrames, frameField } from '../../hypervisor/frames.js';
import { FRAME_TABLE_POINTER } from '../../hypervisor/layout.js';
import { defineStep } from '../step.js';
import { liveDomains } from './walk.js';

export const frameTablePass = defineStep({
  name: 'frame-table-pass',
  fixes: 'recomputes each page frame\'s use count, type and validated bit from the page tables and clears page locks',
  run(context) {
    const expected = expectedFrames((address) => context.read(address), liveDomains(context).map(({ domain }) => domain));
    const table = context.read(FRAME_TABLE_POINTER);
    let fixed = 0;
    for (let frame = 1; frame < FRAME_COUNT; frame++) {
      if (checkedFrameFields.some((field) => context.read(frameField(table, frame, field)) !== expected[frame][field])) fixed++;
      for (const field of checkedFrameFields) context.write(frameField(table, frame, field), expected[frame][field]);
    }
    return { framesChecked: FRAME_COUNT - 1, framesFixed: fixed };
  },
});
