/**
 * Frame-table pass: restore and check every page-frame descriptor — its use count equal to the
 * page-table entries that reference it, its type and validated bit to match. Without it, counts
 * left wrong by an abandoned update make later updates fail or hang.
 */
import { FRAME_COUNT, PAGE_TABLE_SLOTS } from '../../hypervisor/abi.js';
import { Domain, FRAME_TABLE_POINTER, FrameDescriptor, frameStateFor } from '../../hypervisor/layout.js';
import { defineStep } from '../step.js';
import { liveDomains } from './walk.js';

export const frameTablePass = defineStep({
  name: 'frame-table-pass',
  fixes: 'recomputes each page frame\'s use count, type and validated bit from the page tables',
  run(context) {
    const references = new Int32Array(FRAME_COUNT);
    for (const { domain } of liveDomains(context)) {
      for (let slot = 0; slot < PAGE_TABLE_SLOTS; slot++) {
        const frame = context.read(domain + Domain.offset.pageTable + slot);
        if (frame > 0 && frame < FRAME_COUNT) references[frame]++;
      }
    }
    const table = context.read(FRAME_TABLE_POINTER);
    let fixed = 0;
    for (let frame = 1; frame < FRAME_COUNT; frame++) {
      const descriptor = table + frame * FrameDescriptor.sizeWords;
      const { type, validated } = frameStateFor(references[frame]);
      const expected = [references[frame], type, validated];
      const fields = [FrameDescriptor.offset.useCount, FrameDescriptor.offset.type, FrameDescriptor.offset.validated];
      if (fields.some((field, index) => context.read(descriptor + field) !== expected[index])) fixed++;
      fields.forEach((field, index) => context.write(descriptor + field, expected[index]));
    }
    return { framesChecked: FRAME_COUNT - 1, framesFixed: fixed };
  },
});
