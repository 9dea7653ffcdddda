/**
 * The local interrupt controller: masking, the sti shadow, priorities and end-of-interrupt,
 * NMIs, the local timer, inter-processor interrupts and the watchdog.
 */
import { describe, expect, it } from 'vitest';
import { ref, type Assembler } from '../../src/machine/assembler.js';
import { CpuMode, NO_DEADLINE } from '../../src/machine/cpu.js';
import { NMI_EVENT } from '../../src/machine/event-queue.js';
import { FLAG_INTERRUPT_ENABLE } from '../../src/machine/isa.js';
import type { Machine } from '../../src/machine/machine.js';
import { CODE_BASE, DATA_BASE, TIMER_VECTOR, emitLog, emitSpin, readLog, rig } from './rig.js';

/** Times (local to the CPU) at which `address` starts executing. */
function entriesAt(machine: Machine, address: number, cpu = 0): number[] {
  const times: number[] = [];
  machine.tracer = (traced, programCounter, _word, timeNs) => {
    if (traced === cpu && programCounter === address) times.push(timeNs);
  };
  return times;
}

/** handler: log `vector`, end of interrupt, return */
function simpleHandler(asm: Assembler, vector: number): void {
  asm.label(`handler${vector}`);
  emitLog(asm, vector);
  asm.eoi().iret();
}

function idleWithInterrupts(asm: Assembler): void {
  asm.sti().label('idle').hlt().jmp(ref('idle'));
}

describe('masking', () => {
  it('a clear interrupt-enable flag blocks delivery; sti lets it in', () => {
    const built = rig(
      (asm) => {
        emitSpin(asm, 1000);
        asm.label('enable').sti().label('idle').hlt().jmp(ref('idle'));
        simpleHandler(asm, 5);
      },
      { handlers: { 5: 'handler5' } },
    );
    const entries = entriesAt(built.machine, built.address('handler5'));
    built.machine.raiseInterrupt(100, 0, 5);
    built.machine.run(2_000);
    expect(readLog(built.machine)).toEqual([]);
    expect(built.machine.cpus[0].pendingVectors).toBe(1 << 5);
    built.machine.run(1_000_000);
    expect(readLog(built.machine)).toEqual([5]);
    expect(entries).toEqual([1 + 3000 + 1 + 1]); // spin (movi + 3000), sti, then the shadowed hlt
    expect(built.machine.cpus[0].pendingVectors).toBe(0);
    expect(built.machine.cpus[0].inServiceVectors).toBe(0);
  });

  it('delivery pushes the stack pointer, flags, then the program counter, clears IF, and iret restores all three', () => {
    const built = rig(
      (asm) => {
        asm.sti().label('spin').jmp(ref('spin'));
        asm.label('handler5').rdsp(1).ld(2, 1, 0).ld(3, 1, 1).ld(5, 1, 2).mov(4, 1).eoi().iret();
      },
      { handlers: { 5: 'handler5' } },
    );
    built.machine.raiseInterrupt(100, 0, 5);
    built.machine.run(1_000);
    const r = built.machine.cpus[0].registers;
    expect(r[2]).toBe(built.address('spin'));
    expect(r[3] & FLAG_INTERRUPT_ENABLE).toBe(FLAG_INTERRUPT_ENABLE);
    expect(r[5]).toBe(built.machine.config.hostStackTops[0]);
    expect(r[4]).toBe(built.machine.config.hostStackTops[0] - 3);
    expect(built.machine.cpus[0].stackPointer).toBe(built.machine.config.hostStackTops[0]);
    expect(built.machine.cpus[0].flags & FLAG_INTERRUPT_ENABLE).toBe(FLAG_INTERRUPT_ENABLE);
    expect(built.machine.cpus[0].programCounter).toBe(built.address('spin'));
  });

  it('a handler runs with interrupts disabled, so even a higher vector waits for iret', () => {
    const built = rig(
      (asm) => {
        idleWithInterrupts(asm);
        asm.label('handler5');
        emitLog(asm, 5);
        emitSpin(asm, 500);
        emitLog(asm, 105);
        asm.eoi().iret();
        simpleHandler(asm, 20);
      },
      { handlers: { 5: 'handler5', 20: 'handler20' } },
    );
    built.machine.raiseInterrupt(100, 0, 5);
    built.machine.raiseInterrupt(200, 0, 20);
    built.machine.run(1_000_000);
    expect(readLog(built.machine)).toEqual([5, 105, 20]);
  });

  it('a maskable interrupt does not wake hlt with IF clear', () => {
    const built = rig((asm) => asm.hlt().movi(1, 1).hlt());
    built.machine.raiseInterrupt(100, 0, 5);
    built.machine.run(1_000_000);
    expect(built.machine.cpus[0].mode).toBe(CpuMode.Halted);
    expect(built.machine.cpus[0].registers[1]).toBe(0);
    expect(built.machine.cpus[0].pendingVectors).toBe(1 << 5);
  });
});

describe('the sti shadow', () => {
  function stiHalt(asm: Assembler): void {
    asm.label('main').sti().hlt().label('after').movi(5, 1).hlt();
    asm.label('handler5').movi(6, 1).rdsp(1).ld(7, 1, 0).eoi().iret();
  }

  it('sti; hlt takes an already pending interrupt after the hlt, not before', () => {
    const built = rig(stiHalt, { handlers: { 5: 'handler5' } });
    built.machine.raiseInterrupt(0, 0, 5);
    built.machine.run(1_000_000);
    const r = built.machine.cpus[0].registers;
    expect(r[6]).toBe(1);
    expect(r[7]).toBe(built.address('after'));
    expect(r[5]).toBe(1);
  });

  it('the shadow survives a run boundary right after the sti', () => {
    const built = rig(stiHalt, { handlers: { 5: 'handler5' } });
    built.machine.raiseInterrupt(0, 0, 5);
    built.machine.run(1); // exactly the sti
    expect(built.machine.cpus[0].instructionsRetired).toBe(1);
    built.machine.run(1_000_000);
    const r = built.machine.cpus[0].registers;
    expect(r[7]).toBe(built.address('after'));
    expect(r[5]).toBe(1);
  });

  it('sti with interrupts already enabled has no shadow', () => {
    const built = rig((asm) => asm.sti().nop().sti().label('second').nop().hlt().label('handler5').rdsp(1).ld(7, 1, 0).eoi().iret(), {
      handlers: { 5: 'handler5' },
    });
    built.machine.run(3); // sti, nop, sti
    built.machine.raiseInterrupt(3, 0, 5);
    built.machine.run(1_000_000);
    expect(built.machine.cpus[0].registers[7]).toBe(built.address('second'));
  });
});

describe('priority and end of interrupt', () => {
  function nestingProgram(asm: Assembler): void {
    idleWithInterrupts(asm);
    asm.label('handler10');
    emitLog(asm, 10);
    asm.sti();
    emitSpin(asm, 1000);
    asm.cli();
    emitLog(asm, 110);
    asm.eoi().iret();
    simpleHandler(asm, 5);
    simpleHandler(asm, 12);
  }

  it('a lower or equal vector waits for eoi; a higher one preempts', () => {
    const built = rig(nestingProgram, { handlers: { 5: 'handler5', 10: 'handler10', 12: 'handler12' } });
    built.machine.raiseInterrupt(100, 0, 10);
    built.machine.raiseInterrupt(500, 0, 5);
    built.machine.raiseInterrupt(600, 0, 10);
    built.machine.raiseInterrupt(700, 0, 12);
    built.machine.run(1_000);
    expect(built.machine.cpus[0].inServiceVectors).toBe(1 << 10);
    expect(built.machine.cpus[0].pendingVectors).toBe((1 << 5) | (1 << 10));
    built.machine.run(1_000_000);
    expect(readLog(built.machine)).toEqual([10, 12, 110, 10, 110, 5]);
    expect(built.machine.cpus[0].inServiceVectors).toBe(0);
  });

  it('without eoi the vector stays in service and blocks itself and everything below', () => {
    const built = rig(
      (asm) => {
        idleWithInterrupts(asm);
        asm.label('handler10');
        emitLog(asm, 10);
        asm.iret();
        simpleHandler(asm, 3);
        simpleHandler(asm, 11);
      },
      { handlers: { 3: 'handler3', 10: 'handler10', 11: 'handler11' } },
    );
    built.machine.raiseInterrupt(100, 0, 10);
    built.machine.raiseInterrupt(1_000, 0, 10);
    built.machine.raiseInterrupt(1_000, 0, 3);
    built.machine.raiseInterrupt(2_000, 0, 11);
    built.machine.run(1_000_000);
    expect(readLog(built.machine)).toEqual([10, 11]);
    expect(built.machine.cpus[0].inServiceVectors).toBe(1 << 10);
  });

  it('eoi retires the highest vector in service only, and is harmless with none', () => {
    const built = rig((asm) => asm.eoi().hlt());
    built.machine.cpus[0].inServiceVectors = (1 << 3) | (1 << 9);
    built.machine.run(1_000);
    expect(built.machine.cpus[0].inServiceVectors).toBe(1 << 3);
    const empty = rig((asm) => asm.eoi().eoi().hlt());
    empty.machine.run(1_000);
    expect(empty.machine.cpus[0].inServiceVectors).toBe(0);
    expect(empty.traps).toEqual([]);
  });

  it('the highest pending vector is delivered first', () => {
    const built = rig(
      (asm) => {
        asm.hlt(); // IF clear: let them all pend
        simpleHandler(asm, 2);
        simpleHandler(asm, 9);
        simpleHandler(asm, 31);
        asm.label('go').sti().label('idle').hlt().jmp(ref('idle'));
      },
      { handlers: { 2: 'handler2', 9: 'handler9', 31: 'handler31' } },
    );
    for (const vector of [9, 2, 31]) built.machine.raiseInterrupt(10, 0, vector);
    built.machine.run(1_000);
    built.machine.startCpu(0, built.address('go'), built.machine.config.hostStackTops[0]);
    built.machine.run(1_000_000);
    expect(readLog(built.machine)).toEqual([31, 9, 2]);
  });
});

describe('NMI', () => {
  function nmiProgram(asm: Assembler): void {
    asm.label('main').label('spin').jmp(ref('spin')); // interrupts stay disabled
    asm.label('nmi');
    emitLog(asm, 100);
    emitSpin(asm, 1000);
    emitLog(asm, 101);
    asm.iret();
  }

  it('is delivered through table slot 0 even with interrupts disabled', () => {
    const built = rig(nmiProgram, { handlers: { 0: 'nmi' } });
    const entries = entriesAt(built.machine, built.address('nmi'));
    built.machine.raiseInterrupt(100, 0, NMI_EVENT);
    built.machine.run(10_000);
    expect(entries).toEqual([100]);
    expect(readLog(built.machine)).toEqual([100, 101]);
    expect(built.machine.cpus[0].nmiBlocked).toBe(false);
  });

  it('is blocked from NMI entry until iret; NMIs arriving meanwhile latch as one', () => {
    const built = rig(nmiProgram, { handlers: { 0: 'nmi' } });
    built.machine.raiseInterrupt(100, 0, NMI_EVENT);
    built.machine.raiseInterrupt(200, 0, NMI_EVENT);
    built.machine.raiseInterrupt(300, 0, NMI_EVENT);
    built.machine.run(1_000);
    expect(built.machine.cpus[0].nmiBlocked).toBe(true);
    expect(built.machine.cpus[0].nmiPending).toBe(true);
    expect(readLog(built.machine)).toEqual([100]);
    built.machine.run(100_000);
    expect(readLog(built.machine)).toEqual([100, 101, 100, 101]);
    expect(built.machine.cpus[0].nmiPending).toBe(false);
  });

  it('preempts a maskable interrupt handler', () => {
    const built = rig(
      (asm) => {
        idleWithInterrupts(asm);
        asm.label('handler5');
        emitLog(asm, 5);
        emitSpin(asm, 500);
        emitLog(asm, 105);
        asm.eoi().iret();
        asm.label('nmi');
        emitLog(asm, 100);
        asm.iret();
      },
      { handlers: { 0: 'nmi', 5: 'handler5' } },
    );
    built.machine.raiseInterrupt(100, 0, 5);
    built.machine.raiseInterrupt(300, 0, NMI_EVENT);
    built.machine.run(1_000_000);
    expect(readLog(built.machine)).toEqual([5, 100, 105]);
  });

  it('wakes a CPU halted with interrupts disabled', () => {
    const built = rig((asm) => {
      asm.hlt().movi(1, 1).hlt();
      asm.label('nmi').iret();
    }, { handlers: { 0: 'nmi' } });
    built.machine.raiseInterrupt(5_000, 0, NMI_EVENT);
    built.machine.run(1_000_000);
    expect(built.machine.cpus[0].registers[1]).toBe(1);
  });
});

describe('local timer', () => {
  function timerProgram(asm: Assembler, microseconds: number, disarm = false): void {
    asm.movi(1, microseconds).settimer(1);
    if (disarm) asm.movi(2, -1).settimer(2);
    idleWithInterrupts(asm);
    simpleHandler(asm, TIMER_VECTOR);
  }

  it('fires once, the given number of microseconds after settimer', () => {
    const built = rig((asm) => timerProgram(asm, 5), { handlers: { [TIMER_VECTOR]: `handler${TIMER_VECTOR}` } });
    const entries = entriesAt(built.machine, built.address(`handler${TIMER_VECTOR}`));
    built.machine.run(1_000_000);
    expect(entries).toEqual([2 + 5_000]);
    expect(readLog(built.machine)).toEqual([TIMER_VECTOR]);
    expect(built.machine.cpus[0].timerDeadlineNs).toBe(NO_DEADLINE);
  });

  it("comes late by its CPU's interrupt delay, as a raised device interrupt does", () => {
    const handlers = { handlers: { [TIMER_VECTOR]: `handler${TIMER_VECTOR}` } };
    const onTime = rig((asm) => timerProgram(asm, 5), handlers);
    const late = rig((asm) => timerProgram(asm, 5), handlers);
    late.machine.setInterruptDelays([1_234]);
    const onTimeEntries = entriesAt(onTime.machine, onTime.address(`handler${TIMER_VECTOR}`));
    const lateEntries = entriesAt(late.machine, late.address(`handler${TIMER_VECTOR}`));
    onTime.machine.run(1_000_000);
    late.machine.run(1_000_000);
    expect(lateEntries).toEqual([onTimeEntries[0] + 1_234]);

    const device = rig((asm) => {
      idleWithInterrupts(asm);
      simpleHandler(asm, 5);
    }, { handlers: { 5: 'handler5' } });
    device.machine.setInterruptDelays([700]);
    const deviceEntries = entriesAt(device.machine, device.address('handler5'));
    device.machine.raiseInterrupt(10_000, 0, 5);
    device.machine.run(1_000_000);
    expect(deviceEntries).toEqual([10_700]);
    expect(() => device.machine.setInterruptDelays([-1])).toThrow(RangeError);
  });

  it('a negative count disarms it', () => {
    const built = rig((asm) => timerProgram(asm, 5, true), { handlers: { [TIMER_VECTOR]: `handler${TIMER_VECTOR}` } });
    built.machine.run(1_000_000);
    expect(readLog(built.machine)).toEqual([]);
    expect(built.machine.cpus[0].timerDeadlineNs).toBe(NO_DEADLINE);
  });

  it('zero fires at once; re-arming replaces the deadline', () => {
    const zero = rig((asm) => timerProgram(asm, 0), { handlers: { [TIMER_VECTOR]: `handler${TIMER_VECTOR}` } });
    const zeroEntries = entriesAt(zero.machine, zero.address(`handler${TIMER_VECTOR}`));
    zero.machine.run(1_000_000);
    expect(zeroEntries).toEqual([4]); // after the sti shadow

    const rearmed = rig(
      (asm) => {
        asm.movi(1, 5).settimer(1).movi(1, 20).settimer(1);
        idleWithInterrupts(asm);
        simpleHandler(asm, TIMER_VECTOR);
      },
      { handlers: { [TIMER_VECTOR]: `handler${TIMER_VECTOR}` } },
    );
    const entries = entriesAt(rearmed.machine, rearmed.address(`handler${TIMER_VECTOR}`));
    rearmed.machine.run(1_000_000);
    expect(entries).toEqual([4 + 20_000]);
  });

  it('a handler that re-arms it makes a periodic tick', () => {
    const built = rig(
      (asm) => {
        asm.movi(1, 10).settimer(1);
        idleWithInterrupts(asm);
        asm.label('tick');
        emitLog(asm, 1);
        asm.settimer(1).eoi().iret();
      },
      { handlers: { [TIMER_VECTOR]: 'tick' } },
    );
    built.machine.run(1_000_000);
    const ticks = readLog(built.machine).length;
    expect(ticks).toBeGreaterThanOrEqual(98);
    expect(ticks).toBeLessThanOrEqual(100);
  });
});

describe('inter-processor interrupts', () => {
  function ipiProgram(asm: Assembler, vector: number): void {
    asm.label('sender');
    emitSpin(asm, 100);
    asm.movi(1, 1).movi(2, vector).label('send').ipi(1, 2).hlt();
    asm.label('receiver');
    idleWithInterrupts(asm);
    simpleHandler(asm, 7);
    asm.label('nmi');
    emitLog(asm, 100);
    asm.iret();
  }

  function ipiRig(vector: number, ipiLatencyNs?: number) {
    return rig((asm) => ipiProgram(asm, vector), {
      cpuCount: 2,
      entries: { 0: 'sender', 1: 'receiver' },
      handlers: { 0: 'nmi', 7: 'handler7' },
      config: ipiLatencyNs === undefined ? {} : { ipiLatencyNs },
    });
  }

  it('arrives at the target after the IPI latency', () => {
    const built = ipiRig(7);
    const sendTimes = entriesAt(built.machine, built.address('send'), 0);
    const tracer = built.machine.tracer;
    const arrivals: number[] = [];
    built.machine.tracer = (cpu, pc, word, timeNs) => {
      tracer?.(cpu, pc, word, timeNs);
      if (cpu === 1 && pc === built.address('handler7')) arrivals.push(timeNs);
    };
    built.machine.run(1_000_000);
    expect(readLog(built.machine)).toEqual([7]);
    expect(sendTimes.length).toBe(1);
    expect(arrivals).toEqual([sendTimes[0] + 1 + 200]);
  });

  it('the latency is configurable', () => {
    const built = ipiRig(7, 5_000);
    const arrivals = entriesAt(built.machine, built.address('handler7'), 1);
    built.machine.run(1_000_000);
    expect(arrivals).toEqual([1 + 300 + 2 + 1 + 5_000]); // spin, movi, movi, ipi, then the latency
  });

  it('vector 0 sends an NMI', () => {
    const built = ipiRig(0);
    built.machine.run(1_000_000);
    expect(readLog(built.machine)).toEqual([100]);
  });

  it('out-of-range targets and vectors are ignored', () => {
    for (const [target, vector] of [[2, 7], [-1, 7], [1, 32], [1, -1]]) {
      const built = rig((asm) => asm.movi(1, target).movi(2, vector).ipi(1, 2).hlt(), { cpuCount: 2 });
      built.machine.run(1_000_000);
      expect(built.machine.queue.size).toBe(0);
      expect(built.machine.cpus[1].pendingVectors).toBe(0);
      expect(built.traps).toEqual([]);
    }
  });

  it('a CPU can interrupt itself', () => {
    const built = rig(
      (asm) => {
        asm.sti().cpuid(1).movi(2, 7).ipi(1, 2);
        asm.label('idle').hlt().jmp(ref('idle'));
        simpleHandler(asm, 7);
      },
      { handlers: { 7: 'handler7' } },
    );
    built.machine.run(1_000_000);
    expect(readLog(built.machine)).toEqual([7]);
  });
});

describe('watchdog NMI', () => {
  function watchdogRig(cpuCount: number, config = {}) {
    const entries = Object.fromEntries(Array.from({ length: cpuCount }, (_, cpu) => [cpu, 'main']));
    return rig(
      (asm) => {
        asm.label('main').label('idle').hlt().jmp(ref('idle'));
        asm.label('nmi');
        emitLog(asm, 1);
        asm.iret();
      },
      { cpuCount, entries, handlers: { 0: 'nmi' }, config },
    );
  }

  it('fires every 100 ms of simulated time on every CPU', () => {
    const built = watchdogRig(2);
    const entries = entriesAt(built.machine, built.address('nmi'), 1);
    built.machine.run(1_050_000_000);
    expect(entries).toEqual(Array.from({ length: 10 }, (_, index) => (index + 1) * 100_000_000));
    expect(readLog(built.machine).length).toBe(20);
  });

  it('the period is configurable', () => {
    const built = watchdogRig(1, { nmiPeriodNs: 1_000_000 });
    built.machine.run(10_500_000);
    expect(readLog(built.machine).length).toBe(10);
  });
});

describe('sleeping costs no host time', () => {
  it('four halted CPUs for 10 simulated seconds execute only the watchdog handlers', () => {
    const built = rig(
      (asm) => {
        asm.label('main').label('idle').hlt().jmp(ref('idle'));
        asm.label('nmi').iret();
      },
      { cpuCount: 4, entries: { 0: 'main', 1: 'main', 2: 'main', 3: 'main' }, handlers: { 0: 'nmi' } },
    );
    built.machine.run(10_000_000_000);
    // per CPU: hlt; then per NMI: iret, jmp, hlt (the hundredth NMI lands on the last instant)
    expect(built.machine.hypervisorInstructions).toBe(4 * (1 + 99 * 3));
    expect(built.machine.cpus.every((cpu) => cpu.nmiPending)).toBe(true);
    expect(built.machine.nowNs).toBe(10_000_000_000);
  });

  it('without a watchdog, 10 simulated seconds of halted CPUs are a handful of instructions', () => {
    const built = rig((asm) => asm.label('main').sti().hlt(), {
      cpuCount: 4,
      entries: { 0: 'main', 1: 'main', 2: 'main', 3: 'main' },
      config: { nmiPeriodNs: 1e15 },
    });
    const outcome = built.machine.run(10_000_000_000);
    expect(outcome).toEqual({ kind: 'timeReached', timeNs: 10_000_000_000 });
    expect(built.machine.hypervisorInstructions).toBe(8);
  });

  it('a CPU spinning on pause with nobody writing sleeps', () => {
    const built = rig((asm) => asm.label('spin').pause().jmp(ref('spin')), { config: { nmiPeriodNs: 1e15 } });
    built.machine.run(10_000_000_000);
    expect(built.machine.hypervisorInstructions).toBe(1);
    expect(built.machine.cpus[0].mode).toBe(CpuMode.Paused);
  });

  it('hlt wakes on an interrupt and continues after the hlt', () => {
    const built = rig(
      (asm) => {
        asm.sti().hlt().movi(1, 1).cli().hlt();
        simpleHandler(asm, 5);
      },
      { handlers: { 5: 'handler5' } },
    );
    built.machine.raiseInterrupt(7_000_000, 0, 5);
    built.machine.run(10_000_000);
    expect(built.machine.cpus[0].registers[1]).toBe(1);
    expect(built.machine.hypervisorInstructions).toBeLessThan(30);
  });
});

describe('pause', () => {
  const flag = DATA_BASE;

  function waiterAndWriter(asm: Assembler, writerIterations: number): void {
    asm.label('waiter').movi(1, flag);
    asm.label('wait').ld(2, 1, 0).cmpi(2, 0).bne(ref('done')).pause().jmp(ref('wait'));
    asm.label('done').rdtime(3).hlt();
    asm.label('writer');
    emitSpin(asm, writerIterations);
    asm.movi(1, flag).movi(2, 1).label('store').st(1, 0, 2).hlt();
  }

  it('sleeps until another CPU stores to memory, then wakes at the store', () => {
    const built = rig((asm) => waiterAndWriter(asm, 10_000), { cpuCount: 2, entries: { 0: 'waiter', 1: 'writer' } });
    const storeTimes = entriesAt(built.machine, built.address('store'), 1);
    const doneTimes: number[] = [];
    const tracer = built.machine.tracer;
    built.machine.tracer = (cpu, pc, word, timeNs) => {
      tracer?.(cpu, pc, word, timeNs);
      if (cpu === 0 && pc === built.address('done')) doneTimes.push(timeNs);
    };
    built.machine.run(1_000_000);
    expect(storeTimes.length).toBe(1);
    expect(doneTimes.length).toBe(1);
    expect(doneTimes[0]).toBeGreaterThan(storeTimes[0]);
    expect(doneTimes[0]).toBeLessThan(storeTimes[0] + 20);
    expect(built.machine.cpus[0].instructionsRetired).toBeLessThan(20);
    expect(built.machine.cpus[0].registers[3]).toBe(Math.floor(doneTimes[0] / 1000) + 0);
  });

  it('wakes on an interrupt it can take', () => {
    const built = rig(
      (asm) => {
        asm.sti().label('spin').pause().jmp(ref('spin'));
        simpleHandler(asm, 5);
      },
      { handlers: { 5: 'handler5' }, config: { nmiPeriodNs: 1e15 } },
    );
    built.machine.raiseInterrupt(50_000, 0, 5);
    built.machine.run(1_000_000);
    expect(readLog(built.machine)).toEqual([5]);
    expect(built.machine.cpus[0].mode).toBe(CpuMode.Paused);
  });
});

describe('startCpu', () => {
  it('starts at the given address with interrupts disabled', () => {
    const built = rig((asm) => asm.sti().hlt().label('other').movi(1, 3).hlt(), { entries: {} });
    expect(built.machine.cpus[0].mode).toBe(CpuMode.Stopped);
    built.machine.run(1_000);
    built.machine.startCpu(0, built.address('other'), 0x880);
    expect(built.machine.cpus[0].timeNs).toBe(1_000);
    built.machine.run(2_000);
    expect(built.machine.cpus[0].registers[1]).toBe(3);
    expect(built.machine.cpus[0].flags).toBe(0);
    expect(built.machine.cpus[0].programCounter).toBe(CODE_BASE + 4);
  });
});

describe('the simulated clock', () => {
  it('never goes back, even when a CPU restarts long after it stopped', () => {
    const built = rig(
      (asm) => {
        asm.label('main').label('idle').hlt().jmp(ref('idle'));
        asm.label('late').panic(1);
        asm.label('nmi').iret();
      },
      { cpuCount: 2, entries: { 0: 'main', 1: 'late' }, handlers: { 0: 'nmi' } },
    );
    built.machine.run(1_000_000);
    expect(built.traps.length).toBe(1); // CPU 1 stopped at once
    built.machine.run(1_000_000_000);
    built.machine.startCpu(1, built.address('main'), built.machine.config.hostStackTops[1]);
    const seen: number[] = [];
    built.machine.tracer = () => seen.push(built.machine.nowNs);
    built.machine.run(1_500_000_000);
    expect(seen.length).toBeGreaterThan(0);
    for (let index = 1; index < seen.length; index++) expect(seen[index]).toBeGreaterThanOrEqual(seen[index - 1]);
    expect(seen[0]).toBeGreaterThanOrEqual(1_000_000_000);
  });
});
