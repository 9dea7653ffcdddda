/**
 * The frame-table pass on its own, through the machine's memory: at a quiescent point of a 3AppVM
 * run, whatever it finds in the descriptors' use counts, types, validated bits and page locks, it
 * puts back exactly what the page tables imply (the words the quiescent system held, no other word
 * touched), and counts the frames it had to fix.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { FRAME_COUNT, pageTableFrameOf } from '../../src/hypervisor/abi.js';
import { audit } from '../../src/hypervisor/audit.js';
import type { Detection } from '../../src/hypervisor/detection.js';
import { checkedFrameFields, frameField } from '../../src/hypervisor/frames.js';
import { FRAME_TYPE_PAGE_TABLE } from '../../src/hypervisor/layout.js';
import type { MachineSnapshot } from '../../src/machine/machine.js';
import { RecoveryContext } from '../../src/recovery/context.js';
import { frameTablePass } from '../../src/recovery/steps/frame-table-pass.js';
import type { System } from '../../src/trial/system.js';
import { MS, runToQuiescence, startedSystem } from '../hypervisor/system-helpers.js';

/** Where the pass runs from: a detection on CPU 0 (the pass reads and writes memory only). */
const detection: Detection = { detector: 'exception', exception: 'pageFault', cpu: 0, programCounter: 0, address: 0, timeNs: 0 };

const corruption = fc.record({
  frame: fc.integer({ min: 1, max: FRAME_COUNT - 1 }),
  field: fc.constantFrom(...checkedFrameFields),
  value: fc.integer({ min: -2, max: 40 }),
});

describe('the frame-table pass at a quiescent 3AppVM point', () => {
  let system: System;
  let quiescent: MachineSnapshot;
  let words: Int32Array;

  beforeAll(() => {
    system = startedSystem({ configuration: '3AppVM', seed: 5 });
    runToQuiescence(system, 200 * MS);
    quiescent = system.machine.snapshot();
    words = system.machine.memory.words;
  });

  const runPass = () => frameTablePass.run(new RecoveryContext(system.hypervisor, detection));

  it('finds nothing to fix where nothing is wrong, and the page-table pages are typed and referenced', () => {
    system.machine.restore(quiescent);
    const table = system.hypervisor.layout.frameTable;
    for (const domainId of [0, 1, 2]) {
      expect(words[frameField(table, pageTableFrameOf(domainId), 'type')]).toBe(FRAME_TYPE_PAGE_TABLE);
      expect(words[frameField(table, pageTableFrameOf(domainId), 'useCount')]).toBe(1);
    }
    expect(runPass()).toEqual({ framesChecked: FRAME_COUNT - 1, framesFixed: 0 });
    expect(audit(system.machine, system.hypervisor.layout)).toEqual({ clean: true });
  });

  it('puts back the quiescent words after any corruption of the fields it checks, and fixes each frame that was wrong', () => {
    fc.assert(
      fc.property(fc.array(corruption, { minLength: 1, maxLength: 6 }), (corruptions) => {
        system.machine.restore(quiescent);
        const clean = Int32Array.from(words);
        const table = system.hypervisor.layout.frameTable;
        for (const { frame, field, value } of corruptions) words[frameField(table, frame, field)] = value;
        const wrongFrames = new Set(corruptions.filter(({ frame }) => checkedFrameFields.some((field) => words[frameField(table, frame, field)] !== clean[frameField(table, frame, field)])).map(({ frame }) => frame));
        expect(runPass()).toEqual({ framesChecked: FRAME_COUNT - 1, framesFixed: wrongFrames.size });
        expect(words).toEqual(clean);
      }),
      { numRuns: 60 },
    );
  });
});
