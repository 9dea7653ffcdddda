/**
 * Instruction traces for `inject --trace`: what the faulty CPU executed around the injection and
 * what the detecting CPU executed on its way to detection, disassembled with symbols.
 */
import { disassemble } from '../machine/disassembler.js';
import type { Machine } from '../machine/machine.js';

export interface TraceLine {
  readonly timeNs: number;
  readonly cpu: number;
  readonly programCounter: number;
  readonly text: string;
}

export interface TrialTrace {
  readonly beforeInjection: readonly TraceLine[];
  readonly afterInjection: readonly TraceLine[];
  readonly beforeDetection: readonly TraceLine[];
}

interface Executed {
  readonly timeNs: number;
  readonly programCounter: number;
  readonly word: number;
}

const HISTORY = 16;
const FOLLOW = 24;

export class TraceRecorder {
  private readonly history: Executed[][];
  private followCpu = -1;
  private readonly followed: Executed[] = [];
  private beforeInjection: TraceLine[] = [];

  constructor(
    private readonly machine: Machine,
    private readonly nameAddress: (address: number) => string,
  ) {
    this.history = machine.cpus.map(() => []);
    machine.tracer = (cpu, programCounter, word, timeNs) => this.record(cpu, { timeNs, programCounter, word });
  }

  /** The fault is about to land on `cpu`: keep what it ran so far, and follow it a while. */
  markInjection(cpu: number): void {
    this.beforeInjection = this.lines(cpu, this.history[cpu]);
    this.followCpu = cpu;
  }

  finish(detectingCpu: number | undefined): TrialTrace {
    this.machine.tracer = undefined;
    return {
      beforeInjection: this.beforeInjection,
      afterInjection: this.lines(this.followCpu, this.followed),
      beforeDetection: detectingCpu === undefined ? [] : this.lines(detectingCpu, this.history[detectingCpu]),
    };
  }

  private record(cpu: number, executed: Executed): void {
    const history = this.history[cpu];
    history.push(executed);
    if (history.length > HISTORY) history.shift();
    if (cpu === this.followCpu && this.followed.length < FOLLOW) this.followed.push(executed);
  }

  private lines(cpu: number, executed: readonly Executed[]): TraceLine[] {
    return executed.map(({ timeNs, programCounter, word }) => ({
      timeNs,
      cpu,
      programCounter,
      text: `${disassemble(word)}  <${this.nameAddress(programCounter)}>`,
    }));
  }
}

export function formatTrace(trace: TrialTrace): string {
  const section = (title: string, lines: readonly TraceLine[]): string[] => [
    title,
    ...(lines.length === 0 ? ['  (none)'] : lines.map((line) => `  ${(line.timeNs / 1e6).toFixed(6)} ms  cpu${line.cpu}  ${line.programCounter.toString(16).padStart(5, '0')}  ${line.text}`)),
  ];
  return [
    ...section('instructions before the injection (faulty cpu):', trace.beforeInjection),
    ...section('instructions after the injection (faulty cpu):', trace.afterInjection),
    ...section('path to detection (detecting cpu):', trace.beforeDetection),
  ].join('\n');
}
