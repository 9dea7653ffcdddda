/**
 * Undo logged partial updates: mmu_update is not idempotent (a retry after the new page's use
 * count was incremented would increment it twice). Its steps are logged in the vCPU; undo them
 * in reverse so that the retried hypercall starts from the state before the first attempt.
 */
import { FRAME_COUNT } from '../../hypervisor/abi.js';
import {
  Domain,
  FRAME_TABLE_POINTER,
  frameStateFor,
  FrameDescriptor,
  MMU_LOG_GOT_NEW,
  MMU_LOG_IDLE,
  MMU_LOG_PUT_OLD,
  MMU_LOG_WROTE_ENTRY,
  Vcpu,
} from '../../hypervisor/layout.js';
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
  const slot = context.read(vcpu + Vcpu.offset.mmuLogSlot);
  const oldFrame = context.read(vcpu + Vcpu.offset.mmuLogOld);
  const newFrame = context.read(vcpu + Vcpu.offset.mmuLogNew);
  if (stage >= MMU_LOG_PUT_OLD) adjustUseCount(context, oldFrame, +1);
  if (stage >= MMU_LOG_WROTE_ENTRY) context.write(domain + Domain.offset.pageTable + slot, oldFrame);
  if (stage >= MMU_LOG_GOT_NEW) adjustUseCount(context, newFrame, -1);
}

function adjustUseCount(context: RecoveryContext, frame: number, delta: number): void {
  if (frame <= 0 || frame >= FRAME_COUNT) return;
  const descriptor = context.read(FRAME_TABLE_POINTER) + frame * FrameDescriptor.sizeWords;
  const count = context.read(descriptor + FrameDescriptor.offset.useCount) + delta;
  context.write(descriptor + FrameDescriptor.offset.useCount, count);
  const { type, validated } = frameStateFor(count);
  context.write(descriptor + FrameDescriptor.offset.type, type);
  context.write(descriptor + FrameDescriptor.offset.validated, validated);
}
