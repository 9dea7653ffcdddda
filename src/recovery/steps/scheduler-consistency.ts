/**
 * Scheduler metadata consistency: the running vCPU is recorded in three places (per-CPU
 * `current`, the vCPU's run state and `is_running`, runqueue membership) that an abandoned
 * scheduler leaves disagreeing. Per-CPU `current` is the most reliable copy: keep it where it is
 * valid (else idle), and rebuild run states and runqueues to match.
 */
import { RUN_STATE_BLOCKED, RUN_STATE_RUNNABLE, RUN_STATE_RUNNING, Vcpu } from '../../hypervisor/layout.js';
import type { RecoveryContext } from '../context.js';
import { defineStep } from '../step.js';
import { appendRunqueue, cpuCount, liveDomains, perCpuField, type LiveDomain } from './walk.js';

export const schedulerConsistency = defineStep({
  name: 'scheduler-consistency',
  fixes: 'makes runqueues, run states and is_running agree with each CPU\'s current vCPU',
  repairs: ['percpu.current', 'percpu.runqueueHead', 'percpu.runqueueTail', 'vcpu.runState', 'vcpu.isRunning', 'vcpu.runqueueNext', 'vcpu.runqueuePrevious', 'idle_vcpu.isRunning', 'idle_vcpu.runState', 'idle_vcpu.runqueueNext', 'idle_vcpu.runqueuePrevious'],
  run(context) {
    const domains = liveDomains(context);
    const currents = validCurrents(context, domains);
    for (let cpu = 0; cpu < cpuCount(context); cpu++) {
      context.write(perCpuField(cpu, 'runqueueHead'), 0);
      context.write(perCpuField(cpu, 'runqueueTail'), 0);
    }
    let requeued = 0;
    for (const { vcpu } of domains) requeued += placeVcpu(context, vcpu, currents);
    for (let cpu = 0; cpu < cpuCount(context); cpu++) placeIdle(context, cpu, currents[cpu]);
    return { currentsReset: currents.filter((current, cpu) => current === context.hypervisor.layout.idleVcpus[cpu]).length, vcpusQueued: requeued };
  },
});

/** Each CPU's `current` if it is its idle vCPU or a live vCPU placed on it; otherwise idle. */
function validCurrents(context: RecoveryContext, domains: readonly LiveDomain[]): number[] {
  const currents: number[] = [];
  for (let cpu = 0; cpu < cpuCount(context); cpu++) {
    const idle = context.hypervisor.layout.idleVcpus[cpu];
    const current = context.read(perCpuField(cpu, 'current'));
    const live = domains.some(({ vcpu }) => vcpu === current) && context.read(current + Vcpu.offset.processor) === cpu;
    const chosen = current === idle || (live && !currents.includes(current)) ? current : idle;
    context.write(perCpuField(cpu, 'current'), chosen);
    currents.push(chosen);
  }
  return currents;
}

/** Running where current, runnable and queued if it was running or runnable, else blocked. */
function placeVcpu(context: RecoveryContext, vcpu: number, currents: readonly number[]): number {
  const processor = context.read(vcpu + Vcpu.offset.processor);
  const state = context.read(vcpu + Vcpu.offset.runState);
  context.write(vcpu + Vcpu.offset.runqueueNext, 0);
  context.write(vcpu + Vcpu.offset.runqueuePrevious, 0);
  if (currents.includes(vcpu)) {
    context.write(vcpu + Vcpu.offset.runState, RUN_STATE_RUNNING);
    context.write(vcpu + Vcpu.offset.isRunning, 1);
    return 0;
  }
  context.write(vcpu + Vcpu.offset.isRunning, 0);
  const wantsCpu = state === RUN_STATE_RUNNING || state === RUN_STATE_RUNNABLE;
  if (!wantsCpu || processor < 0 || processor >= currents.length) {
    context.write(vcpu + Vcpu.offset.runState, RUN_STATE_BLOCKED);
    return 0;
  }
  context.write(vcpu + Vcpu.offset.runState, RUN_STATE_RUNNABLE);
  appendRunqueue(context, processor, vcpu);
  return 1;
}

/** The idle vCPU runs where nothing else is current; elsewhere it waits last on the runqueue. */
function placeIdle(context: RecoveryContext, cpu: number, current: number): void {
  const idle = context.hypervisor.layout.idleVcpus[cpu];
  context.write(idle + Vcpu.offset.runqueueNext, 0);
  context.write(idle + Vcpu.offset.runqueuePrevious, 0);
  context.write(idle + Vcpu.offset.isRunning, current === idle ? 1 : 0);
  context.write(idle + Vcpu.offset.runState, current === idle ? RUN_STATE_RUNNING : RUN_STATE_RUNNABLE);
  if (current !== idle) appendRunqueue(context, cpu, idle);
}
