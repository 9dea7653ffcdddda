/**
 * Memory segments and permissions, the event queue's order, and the digest.
 */
import { describe, expect, it } from 'vitest';
import { CpuState } from '../../src/machine/cpu.js';
import { Fingerprint, addCpuState } from '../../src/machine/digest.js';
import { EventQueue, NMI_EVENT } from '../../src/machine/event-queue.js';
import { Memory, PAGE_WORDS, PERMISSION_EXECUTE, PERMISSION_READ, PERMISSION_WRITE } from '../../src/machine/memory.js';
import { segments } from './rig.js';

describe('Memory', () => {
  const memory = new Memory(segments);

  it('maps each segment with the permissions of its kind and leaves the rest unmapped', () => {
    expect(memory.permissionAt(0x100)).toBe(PERMISSION_READ | PERMISSION_EXECUTE);
    expect(memory.permissionAt(0x3ff)).toBe(PERMISSION_READ | PERMISSION_EXECUTE);
    expect(memory.permissionAt(0x400)).toBe(PERMISSION_READ | PERMISSION_WRITE);
    expect(memory.permissionAt(0x800)).toBe(PERMISSION_READ | PERMISSION_WRITE);
    for (const address of [0, 1, PAGE_WORDS - 1, 0x500, 0x7ff, -1, memory.sizeWords, 1e12]) {
      expect(memory.permissionAt(address), String(address)).toBe(0);
    }
  });

  it('finds segments by address and name', () => {
    expect(memory.segmentAt(0x450)?.name).toBe('static');
    expect(memory.segmentAt(0x600)).toBeUndefined();
    expect(memory.segmentNamed('stack').base).toBe(0x800);
    expect(() => memory.segmentNamed('heap')).toThrow(/no segment/);
  });

  it('refuses unaligned, overlapping and null-guard segments', () => {
    expect(() => new Memory([{ name: 'x', kind: 'heap', base: 0x100, sizeWords: 10 }])).toThrow(/aligned/);
    expect(() => new Memory([{ name: 'x', kind: 'heap', base: 0, sizeWords: PAGE_WORDS }])).toThrow(/null guard/);
    expect(
      () =>
        new Memory([
          { name: 'x', kind: 'heap', base: 0x100, sizeWords: 0x100 },
          { name: 'y', kind: 'heap', base: 0x1c0, sizeWords: 0x40 },
        ]),
    ).toThrow(/overlaps/);
  });
});

describe('EventQueue', () => {
  it('orders by time, then CPU, then sequence', () => {
    const queue = new EventQueue();
    queue.push(30, 0, 5);
    queue.push(10, 2, 6);
    queue.push(10, 1, 7);
    queue.push(10, 1, NMI_EVENT);
    queue.push(20, 0, 8);
    expect(queue.peekTimeNs()).toBe(10);
    const order = [];
    while (queue.size > 0) order.push(queue.shift()?.vector);
    expect(order).toEqual([7, NMI_EVENT, 6, 8, 5]);
    expect(queue.peekTimeNs()).toBe(Number.POSITIVE_INFINITY);
  });

  it('save and restore copy the events and the sequence counter', () => {
    const queue = new EventQueue();
    queue.push(10, 0, 1);
    const saved = queue.save();
    queue.push(5, 0, 2);
    queue.restore(saved);
    expect(queue.toArray().map((event) => event.vector)).toEqual([1]);
    queue.push(7, 0, 3);
    expect(queue.toArray()[0]).toEqual({ timeNs: 7, cpu: 0, vector: 3, sequence: 1 });
  });
});

describe('Fingerprint', () => {
  it('is stable and sensitive to every word, its position and CPU state', () => {
    const base = new Fingerprint().addWords([1, 2, 3]).hex();
    expect(base).toMatch(/^[0-9a-f]{16}$/);
    expect(new Fingerprint().addWords([1, 2, 3]).hex()).toBe(base);
    expect(new Fingerprint().addWords([1, 2, 4]).hex()).not.toBe(base);
    expect(new Fingerprint().addWords([2, 1, 3]).hex()).not.toBe(base);
    expect(new Fingerprint().addNumber(2 ** 40).hex()).not.toBe(new Fingerprint().addNumber(0).hex());
    const cpu = new CpuState(0);
    const before = addCpuState(new Fingerprint(), cpu).hex();
    cpu.registers[15] = 1;
    expect(addCpuState(new Fingerprint(), cpu).hex()).not.toBe(before);
  });
});
