/**
 * What Xen's own detectors report: every trap the machine raises in hypervisor code (but the
 * double fault that follows one, and a handover) becomes a Detection, as the console would show
 * it, and stops the hypervisor there (hypervisor.ts); the CPU meanwhile enters the panic path.
 */
import type { ExceptionKind, Trap } from '../machine/trap.js';
import { PANIC_WATCHDOG_HANG, assertionNames } from './layout.js';

export type Detection =
  | {
      readonly detector: 'exception';
      readonly exception: ExceptionKind;
      readonly cpu: number;
      readonly programCounter: number;
      readonly address: number;
      readonly timeNs: number;
    }
  | {
      readonly detector: 'assertion';
      readonly assertion: string;
      readonly cpu: number;
      readonly programCounter: number;
      readonly timeNs: number;
    }
  | {
      readonly detector: 'hang';
      readonly cpu: number;
      readonly programCounter: number;
      readonly timeNs: number;
    }
  /**
   * Not Xen's: a backup host declared the primary failed when `missed` heartbeats in a row did
   * not arrive. Nothing on the primary detected anything, so there is no CPU (-1) and no PC (0).
   */
  | {
      readonly detector: 'heartbeat';
      readonly missed: number;
      readonly cpu: -1;
      readonly programCounter: 0;
      readonly timeNs: number;
    };

/** The traps that are detections: not a double fault (it follows the exception it could not deliver) nor a handover. */
export type DetectedTrap = Exclude<Trap, { readonly kind: 'handover' }>;

export function isDetection(trap: Trap): trap is DetectedTrap {
  return trap.kind !== 'handover' && !(trap.kind === 'exception' && trap.exception === 'doubleFault');
}

export function detectionFromTrap(trap: DetectedTrap, timeNs: number): Detection {
  switch (trap.kind) {
    case 'exception':
      return {
        detector: 'exception',
        exception: trap.exception,
        cpu: trap.cpu,
        programCounter: trap.programCounter,
        address: trap.address,
        timeNs,
      };
    case 'assertion':
      return {
        detector: 'assertion',
        assertion: assertionNames[trap.code] ?? `assertion ${trap.code}`,
        cpu: trap.cpu,
        programCounter: trap.programCounter,
        timeNs,
      };
    case 'panic':
      if (trap.code === PANIC_WATCHDOG_HANG) {
        return { detector: 'hang', cpu: trap.cpu, programCounter: trap.programCounter, timeNs };
      }
      return {
        detector: 'assertion',
        assertion: `panic ${trap.code}`,
        cpu: trap.cpu,
        programCounter: trap.programCounter,
        timeNs,
      };
  }
}

export function describeDetection(detection: Detection): string {
  const where = `cpu ${detection.cpu} pc 0x${detection.programCounter.toString(16)}`;
  switch (detection.detector) {
    case 'exception':
      return `${detection.exception} at ${where} (address 0x${(detection.address >>> 0).toString(16)})`;
    case 'assertion':
      return `assertion "${detection.assertion}" at ${where}`;
    case 'hang':
      return `watchdog hang on cpu ${detection.cpu}`;
    case 'heartbeat':
      return `${detection.missed} heartbeats missed by the backup host`;
  }
}
