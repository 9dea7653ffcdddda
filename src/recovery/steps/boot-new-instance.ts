/**
 * Boot a fresh hypervisor instance that keeps the VMs (ReHype). The new instance has pristine
 * code and re-initialised static tables, per-CPU areas, static locks, hardware timers and
 * interrupt routing; it re-integrates the preserved heap (domains, vCPUs, frame table, rings)
 * at the same addresses and rebuilds the scheduler and the timer lists from the preserved
 * domain and vCPU structures. What the boot does not re-initialise survives: the domain table,
 * the heap structures' contents (their locks, logs, counts), and interrupts left in service.
 */
import { NO_DEADLINE } from '../../machine/cpu.js';
import { rebootStaticData } from '../../hypervisor/boot.js';
import { RUN_STATE_BLOCKED, RUN_STATE_RUNNABLE, RUN_STATE_RUNNING, Timer, Vcpu } from '../../hypervisor/layout.js';
import type { RecoveryContext } from '../context.js';
import { defineStep } from '../step.js';
import { appendRunqueue, insertTimer, liveDomains, perCpuField } from './walk.js';

export const bootNewInstance = defineStep({
  name: 'boot-new-instance',
  fixes: 'discards code, static tables, per-CPU and hardware state by booting a fresh instance over the preserved heap',
  run(context) {
    const { hypervisor, machine } = context;
    const words = machine.memory.words;
    words.set(hypervisor.program.words, hypervisor.program.base);
    const domains = liveDomains(context);
    rebootStaticData(words, hypervisor.program, hypervisor.layout, hypervisor.config.cpuCount, Math.floor(machine.nowNs / 1_000));
    resetHardware(context);
    let queued = 0;
    for (const { vcpu } of domains) queued += reintegrateVcpu(context, vcpu);
    programLocalTimers(context);
    return { codeWordsRestored: hypervisor.program.words.length, domainsPreserved: domains.length, vcpusQueued: queued };
  },
});

/** Registers and the interrupt controller's pending state and timer are re-initialised by the boot. */
function resetHardware(context: RecoveryContext): void {
  for (const cpu of context.machine.cpus) {
    cpu.registers.fill(0);
    cpu.flags = 0;
    cpu.pendingVectors = 0;
    cpu.nmiPending = false;
    cpu.interruptShadow = false;
    cpu.timerDeadlineNs = NO_DEADLINE;
  }
}

/** The new instance programs every CPU's local timer for its earliest timer, as boot does. */
function programLocalTimers(context: RecoveryContext): void {
  for (const cpu of context.machine.cpus) {
    const head = context.read(perCpuField(cpu.index, 'timerHead'));
    const deadlineNs = head === 0 ? context.machine.nowNs : context.read(head + Timer.offset.expiresUs) * 1_000;
    cpu.timerDeadlineNs = Math.max(context.machine.nowNs, deadlineNs);
  }
}

/** Put a preserved vCPU back on the rebuilt scheduler and its pending one-shot timer back on a list. */
function reintegrateVcpu(context: RecoveryContext, vcpu: number): number {
  const cpus = context.machine.cpus.length;
  const processor = context.read(vcpu + Vcpu.offset.processor);
  const state = context.read(vcpu + Vcpu.offset.runState);
  context.write(vcpu + Vcpu.offset.isRunning, 0);
  context.write(vcpu + Vcpu.offset.runqueueNext, 0);
  context.write(vcpu + Vcpu.offset.runqueuePrevious, 0);
  const timer = vcpu + Vcpu.offset.timer;
  const timerCpu = context.read(timer + Timer.offset.cpu);
  if (context.read(timer + Timer.offset.active) !== 0 && timerCpu >= 0 && timerCpu < cpus) insertTimer(context, timerCpu, timer);
  else context.write(timer + Timer.offset.active, 0);
  if ((state !== RUN_STATE_RUNNING && state !== RUN_STATE_RUNNABLE) || processor < 0 || processor >= cpus) {
    context.write(vcpu + Vcpu.offset.runState, RUN_STATE_BLOCKED);
    return 0;
  }
  context.write(vcpu + Vcpu.offset.runState, RUN_STATE_RUNNABLE);
  appendRunqueue(context, processor, vcpu);
  return 1;
}
