/**
 * The audit sees each structural invariant broken by hand at a quiescent point, and nothing
 * after a fault-free run. Each case breaks one thing and expects exactly the one invariant.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { firstFrameOf, pageTableFrameOf } from '../../src/hypervisor/abi.js';
import { audit, describeAudit, type AuditFinding, type AuditInvariant } from '../../src/hypervisor/audit.js';
import { frameField } from '../../src/hypervisor/frames.js';
import { GuestHost } from '../../src/guests/host.js';
import { Hypervisor } from '../../src/hypervisor/hypervisor.js';
import {
  DOMAIN_TABLE,
  Domain,
  FRAME_TYPE_PAGE_TABLE,
  FRAME_TYPE_WRITABLE,
  PerCpu,
  RUN_STATE_RUNNABLE,
  TIME_LOCK,
  Timer,
  VECTOR_TIMER,
  Vcpu,
  perCpuAddress,
} from '../../src/hypervisor/layout.js';
import { CpuMode, NO_DEADLINE } from '../../src/machine/cpu.js';
import type { Machine } from '../../src/machine/machine.js';
import type { System } from '../../src/trial/system.js';
import { ScriptedKernel } from './scripted-kernel.js';
import { MS, runToQuiescence, startedSystem } from './system-helpers.js';

type Breakage = (machine: Machine, words: Int32Array) => void;

/** Breaks the state, audits it, and puts the state back as it was. */
function findingsAfter(machine: Machine, layout: Hypervisor['layout'], breakage: Breakage): AuditFinding[] {
  const saved = machine.snapshot();
  try {
    breakage(machine, machine.memory.words);
    const result = audit(machine, layout);
    return result.clean ? [] : [...result.findings];
  } finally {
    machine.restore(saved);
  }
}

function invariantsOf(findings: readonly AuditFinding[]): AuditInvariant[] {
  return [...new Set(findings.map((finding) => finding.invariant))];
}

/** Takes a timer off its CPU's list as timer_list_remove does: the list stays well formed. */
function unlinkTimer(words: Int32Array, cpu: number, timer: number): void {
  const previous = words[timer + Timer.offset.previous];
  const next = words[timer + Timer.offset.next];
  if (previous === 0) words[perCpuAddress(cpu) + PerCpu.offset.timerHead] = next;
  else words[previous + Timer.offset.next] = next;
  if (next !== 0) words[next + Timer.offset.previous] = previous;
  words[timer + Timer.offset.next] = 0;
  words[timer + Timer.offset.previous] = 0;
  words[timer + Timer.offset.active] = 0;
}

describe('the audit of a 3AppVM system at a quiescent point', () => {
  let system: System;
  let layout: Hypervisor['layout'];
  const check = (breakage: Breakage): AuditFinding[] => findingsAfter(system.machine, layout, breakage);

  beforeAll(() => {
    system = startedSystem({ configuration: '3AppVM', seed: 5 });
    runToQuiescence(system, 200 * MS);
    layout = system.hypervisor.layout;
  });

  it('is clean after a fault-free run', () => {
    expect(system.hypervisor.detections).toEqual([]);
    const result = audit(system.machine, layout);
    expect(describeAudit(result)).toBe('clean');
    expect(result).toEqual({ clean: true });
  });

  it('lockHeld: a static lock left held', () => {
    const findings = check((_machine, words) => {
      words[TIME_LOCK] = 3;
    });
    expect(invariantsOf(findings)).toEqual(['lockHeld']);
    expect(findings[0].detail).toMatch(/static lock \d+ held by 3/);
  });

  it('lockHeld: a domain lock left held', () => {
    const findings = check((_machine, words) => {
      words[layout.domains[2] + Domain.offset.lock] = 1;
    });
    expect(invariantsOf(findings)).toEqual(['lockHeld']);
    expect(findings[0].detail).toBe('lock of domain 2 held by 1');
  });

  it('irqCountNonZero: an irq_count left non-zero', () => {
    const findings = check((_machine, words) => {
      words[perCpuAddress(2) + PerCpu.offset.irqCount] = 1;
    });
    expect(invariantsOf(findings)).toEqual(['irqCountNonZero']);
    expect(findings[0].detail).toBe('cpu 2 irq_count = 1');
  });

  it('interruptStuck: a vector left in service, or NMIs left blocked', () => {
    const inService = check((machine) => {
      machine.cpus[0].inServiceVectors |= 1 << VECTOR_TIMER;
    });
    expect(invariantsOf(inService)).toEqual(['interruptStuck']);
    expect(inService[0].detail).toMatch(/^cpu 0 vectors in service/);
    const nmi = check((machine) => {
      machine.cpus[3].nmiBlocked = true;
    });
    expect(invariantsOf(nmi)).toEqual(['interruptStuck']);
    expect(nmi[0].detail).toBe('cpu 3 NMIs blocked');
  });

  it('frameCountMismatch: a mapped frame whose use count is one too high', () => {
    const words = system.machine.memory.words;
    const useCountOf = (frame: number): number => frameField(layout.frameTable, frame, 'useCount');
    const frames = Array.from({ length: 16 }, (_, index) => firstFrameOf(1) + index);
    const mapped = frames.find((frame) => words[useCountOf(frame)] > 0);
    if (mapped === undefined) throw new Error('UnixBench has no frame mapped');
    const findings = check((_machine, broken) => {
      broken[useCountOf(mapped)]++;
    });
    expect(invariantsOf(findings)).toEqual(['frameCountMismatch']);
    expect(findings[0].detail).toBe(`frame ${mapped} use count ${words[useCountOf(mapped)] + 1}, referenced ${words[useCountOf(mapped)]} times`);
  });

  it('frameCountMismatch: a page-table page left page-locked, or untyped, by an update that never finished', () => {
    const lockedField = frameField(layout.frameTable, pageTableFrameOf(1), 'locked');
    const typeField = frameField(layout.frameTable, pageTableFrameOf(1), 'type');
    expect(system.machine.memory.words[typeField]).toBe(FRAME_TYPE_PAGE_TABLE);
    const locked = check((_machine, broken) => {
      broken[lockedField] = 1;
    });
    expect(locked.map((finding) => `${finding.invariant}: ${finding.detail}`)).toEqual([`frameCountMismatch: frame ${pageTableFrameOf(1)} left page-locked`]);
    const untyped = check((_machine, broken) => {
      broken[typeField] = FRAME_TYPE_WRITABLE;
    });
    expect(untyped.map((finding) => finding.detail)).toEqual([`frame ${pageTableFrameOf(1)} type/validated do not match its 1 references`]);
  });

  it("schedulerViewsDisagree: current's is_running cleared", () => {
    const findings = check((_machine, words) => {
      const current = words[perCpuAddress(1) + PerCpu.offset.current];
      words[current + Vcpu.offset.isRunning] = 0;
    });
    expect(invariantsOf(findings)).toEqual(['schedulerViewsDisagree']);
    expect(findings[0].detail).toBe('cpu 1 current not marked running');
  });

  it('recurringTimerLost: a recurring timer taken off its list', () => {
    const findings = check((_machine, words) => {
      unlinkTimer(words, 2, layout.watchdogTimers[2]);
    });
    expect(invariantsOf(findings)).toEqual(['recurringTimerLost']);
    expect(findings[0].detail).toBe(`recurring timer ${layout.watchdogTimers[2]} is not on its list`);
  });

  it('recurringTimerLost: a recurring timer left with in_handler set', () => {
    const findings = check((_machine, words) => {
      words[layout.timeSyncTimer + Timer.offset.inHandler] = 1;
    });
    expect(invariantsOf(findings)).toEqual(['recurringTimerLost']);
    expect(findings[0].detail).toBe(`recurring timer ${layout.timeSyncTimer} still in its handler`);
  });

  it('timerListMalformed: a broken back link in a timer list', () => {
    const findings = check((_machine, words) => {
      const head = words[perCpuAddress(0) + PerCpu.offset.timerHead];
      const second = words[head + Timer.offset.next];
      expect(second).not.toBe(0);
      words[second + Timer.offset.previous] = 0;
    });
    expect(invariantsOf(findings)).toEqual(['timerListMalformed']);
  });

  it('timerNotArmed: a CPU whose local timer is disarmed', () => {
    const findings = check((machine) => {
      expect(machine.cpus[3].mode).not.toBe(CpuMode.Stopped);
      machine.cpus[3].timerDeadlineNs = NO_DEADLINE;
    });
    expect(invariantsOf(findings)).toEqual(['timerNotArmed']);
    expect(findings[0].detail).toBe('cpu 3 local timer not armed');
  });

  it('domainTableCorrupt: a domain structure that does not name itself', () => {
    const findings = check((_machine, words) => {
      words[words[DOMAIN_TABLE + 2] + Domain.offset.id] = 5;
    });
    expect(invariantsOf(findings)).toEqual(['domainTableCorrupt']);
  });
});

describe('the audit of runqueues (two vCPUs sharing CPU 1)', () => {
  const host = new GuestHost(2);
  const hypervisor = new Hypervisor({ cpuCount: 2, domains: [{ domainId: 0, cpu: 0 }, { domainId: 1, cpu: 1 }, { domainId: 2, cpu: 1 }] }, host);
  const check = (breakage: Breakage): AuditFinding[] => findingsAfter(hypervisor.machine, hypervisor.layout, breakage);
  const area = perCpuAddress(1);
  let queued = 0;

  beforeAll(() => {
    for (const id of [0, 1, 2]) host.attach(id, new ScriptedKernel(id));
    hypervisor.start();
    const machine = hypervisor.machine;
    const words = machine.memory.words;
    const quiescent = (): boolean => machine.cpus.every((cpu) => cpu.mode === CpuMode.Guest || cpu.mode === CpuMode.Halted);
    // Find a quiescent point where one vCPU runs on CPU 1 and the other waits on its runqueue.
    while (machine.nowNs < 100 * MS) {
      expect(machine.run(machine.nowNs + 7_000).kind).toBe('timeReached');
      // (the idle vCPU waits there too, last, whenever another runs)
      if (quiescent() && ![0, hypervisor.layout.idleVcpus[1]].includes(words[area + PerCpu.offset.runqueueHead])) break;
    }
    queued = words[area + PerCpu.offset.runqueueHead];
    expect(queued).not.toBe(0);
    expect(words[queued + Vcpu.offset.runState]).toBe(RUN_STATE_RUNNABLE);
  });

  it('is clean with a vCPU waiting on the runqueue', () => {
    expect(hypervisor.detections).toEqual([]);
    expect(audit(hypervisor.machine, hypervisor.layout)).toEqual({ clean: true });
  });

  it('runqueueMalformed: a queued vCPU whose back link is wrong', () => {
    const findings = check((_machine, words) => {
      words[queued + Vcpu.offset.runqueuePrevious] = queued;
    });
    expect(invariantsOf(findings)).toEqual(['runqueueMalformed']);
    expect(findings[0].detail).toBe(`cpu 1 runqueue back link of ${queued} is wrong`);
  });

  it('runqueueMalformed: a tail that is not the last entry', () => {
    const findings = check((_machine, words) => {
      words[area + PerCpu.offset.runqueueTail] = 0;
    });
    expect(invariantsOf(findings)).toEqual(['runqueueMalformed']);
  });

  it('schedulerViewsDisagree: the idle vCPU lost from the runqueue of a CPU running another', () => {
    const idle = hypervisor.layout.idleVcpus[1];
    const findings = check((_machine, words) => {
      expect(words[queued + Vcpu.offset.runqueueNext]).toBe(idle);
      words[queued + Vcpu.offset.runqueueNext] = 0;
      words[area + PerCpu.offset.runqueueTail] = queued;
      words[idle + Vcpu.offset.runqueuePrevious] = 0;
    });
    expect(invariantsOf(findings)).toEqual(['schedulerViewsDisagree']);
    expect(findings[0].detail).toBe('cpu 1 idle vCPU not current and queued on no cpu');
  });

  it('schedulerViewsDisagree: the idle vCPU queued before a vCPU', () => {
    const idle = hypervisor.layout.idleVcpus[1];
    const findings = check((_machine, words) => {
      words[area + PerCpu.offset.runqueueHead] = idle;
      words[idle + Vcpu.offset.runqueuePrevious] = 0;
      words[idle + Vcpu.offset.runqueueNext] = queued;
      words[queued + Vcpu.offset.runqueuePrevious] = idle;
      words[queued + Vcpu.offset.runqueueNext] = 0;
      words[area + PerCpu.offset.runqueueTail] = queued;
    });
    expect(invariantsOf(findings)).toEqual(['schedulerViewsDisagree']);
    expect(findings[0].detail).toBe('cpu 1 idle vCPU queued before another vCPU');
  });

  it('schedulerViewsDisagree: a runnable vCPU unlinked from its runqueue', () => {
    const findings = check((_machine, words) => {
      words[area + PerCpu.offset.runqueueHead] = 0;
      words[area + PerCpu.offset.runqueueTail] = 0;
    });
    expect(invariantsOf(findings)).toEqual(['schedulerViewsDisagree']);
    expect(findings[0].detail).toMatch(/^domain [12]: runnable but queued on no cpu, processor 1$/);
  });
});
