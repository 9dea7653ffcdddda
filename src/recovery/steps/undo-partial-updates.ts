/**
 * Undo logged partial updates: mmu_update is not idempotent (a retry after the new page's use
 * count was incremented would increment it twice). Before each step it logs in the vCPU the step
 * and the value the step changes; undo puts the old values back in reverse, so that the retried
 * hypercall starts from the state before the first attempt whether or not the logged step ran.
 */
import { FRAME_COUNT } from '../../hypervisor/abi.js';
import {
  Domain,
  FRAME_TABLE_POINTER,
  frameStateFor,
  MMU_LOG_GET_NEW,
  MMU_LOG_IDLE,
  MMU_LOG_PUT_OLD,
  MMU_LOG_WRITE_ENTRY,
  Vcpu,
} from '../../hypervisor/layout.js';
import { frameField } from '../../hypervisor/frames.js';
import type { RecoveryContext } from '../context.js';
import { defineStep } from '../step.js';
import { liveDomains } from './walk.js';

export const undoPartialUpdates = defineStep({
  name: 'undo-partial-updates',
  fixes: 'undoes the logged steps of a half-done mmu_update so that its retry is not applied twice',
  run(context) {
    let undone = 0;
    for (const { domain, vcpu } of liveDomains(context)) {
      const stage = context.read(vcpu + Vcpu.offset.mmuLogStage);
      if (stage === MMU_LOG_IDLE) continue;
      if (context.read(vcpu + Vcpu.offset.hypercallInProgress) !== 0 || context.read(vcpu + Vcpu.offset.restartHypercall) !== 0) {
        undo(context, domain, vcpu, stage);
        undone++;
      }
      context.write(vcpu + Vcpu.offset.mmuLogStage, MMU_LOG_IDLE);
    }
    return { updatesUndone: undone };
  },
});

function undo(context: RecoveryContext, domain: number, vcpu: number, stage: number): void {
  const logged = (field: number) => context.read(vcpu + field);
  if (stage >= MMU_LOG_PUT_OLD) restoreUseCount(context, logged(Vcpu.offset.mmuLogOld), logged(Vcpu.offset.mmuLogOldCount));
  if (stage >= MMU_LOG_WRITE_ENTRY) context.write(domain + Domain.offset.pageTable + logged(Vcpu.offset.mmuLogSlot), logged(Vcpu.offset.mmuLogOld));
  if (stage >= MMU_LOG_GET_NEW) restoreUseCount(context, logged(Vcpu.offset.mmuLogNew), logged(Vcpu.offset.mmuLogNewCount));
}

/** A frame's use count back to its logged value, with the type and validated bit that follow from it. */
function restoreUseCount(context: RecoveryContext, frame: number, useCount: number): void {
  if (frame <= 0 || frame >= FRAME_COUNT) return;
  const table = context.read(FRAME_TABLE_POINTER);
  context.write(frameField(table, frame, 'useCount'), useCount);
  const { type, validated } = frameStateFor(useCount);
  context.write(frameField(table, frame, 'type'), type);
  context.write(frameField(table, frame, 'validated'), validated);
}
