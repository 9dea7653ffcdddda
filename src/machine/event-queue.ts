/**
 * Deterministic queue of external interrupts (device completions, inter-processor interrupts).
 * Ordered by time, then target CPU, then sequence number: ties never depend on host behaviour.
 * Per-CPU singletons (local timer, watchdog NMI, guest exit) live in the CPU state instead.
 */

import { DOUBLE_FIELD } from './double-field.js';

export interface InterruptEvent {
  readonly timeNs: number;
  readonly cpu: number;
  readonly sequence: number;
  /** interrupt vector, or NMI_EVENT for a non-maskable interrupt */
  readonly vector: number;
}

export const NMI_EVENT = -1;

function before(x: InterruptEvent, y: InterruptEvent): boolean {
  if (x.timeNs !== y.timeNs) return x.timeNs < y.timeNs;
  if (x.cpu !== y.cpu) return x.cpu < y.cpu;
  return x.sequence < y.sequence;
}

export class EventQueue {
  private events: InterruptEvent[] = [];
  private nextSequence = 0;

  get size(): number {
    return this.events.length;
  }

  push(timeNs: number, cpu: number, vector: number): void {
    const event = { timeNs: DOUBLE_FIELD, cpu, vector, sequence: this.nextSequence++ };
    event.timeNs = timeNs;
    let index = this.events.length;
    while (index > 0 && before(event, this.events[index - 1])) index--;
    this.events.splice(index, 0, event);
  }

  peekTimeNs(): number {
    return this.events.length === 0 ? Number.POSITIVE_INFINITY : this.events[0].timeNs;
  }

  shift(): InterruptEvent | undefined {
    return this.events.shift();
  }

  toArray(): readonly InterruptEvent[] {
    return this.events;
  }

  save(): { events: InterruptEvent[]; nextSequence: number } {
    return { events: this.events.slice(), nextSequence: this.nextSequence };
  }

  restore(saved: { events: readonly InterruptEvent[]; nextSequence: number }): void {
    this.events = saved.events.slice();
    this.nextSequence = saved.nextSequence;
  }
}
