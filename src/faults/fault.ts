/**
 * Fault models, following the Gigan injector: a trigger picks a simulated time in the run and a
 * count of hypervisor instructions after it, so that every fault lands in hypervisor execution.
 *
 * A FaultPlan holds only random choices; where they land (which register value, which code word
 * near which PC) is resolved against the machine at the moment of injection by the injector.
 */

/** Faults in the hypervisor's execution (Gigan's). */
export const hypervisorFaultTypes = ['failstop', 'register', 'code', 'memory'] as const;
/** hostFailstop stops the whole primary host (every CPU) at the trigger: what replication is for. */
export const faultTypes = [...hypervisorFaultTypes, 'hostFailstop'] as const;
export type FaultType = (typeof faultTypes)[number];

export function isFaultType(value: string): value is FaultType {
  return (faultTypes as readonly string[]).includes(value);
}

/** The 16 GPRs, SP, FLAGS and PC, as Gigan chooses among them. */
export const registerNames = [
  'r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'sp', 'flags', 'pc',
] as const;
export type RegisterName = (typeof registerNames)[number];

/** Gigan's window of 0-20,000 hypervisor instructions after the trigger time. */
export const MAX_INSTRUCTIONS_AFTER_TRIGGER = 20_000;
/** Code faults land in one of the words holding the next 16 bytes from the PC (Gigan: 15 bytes). */
export const CODE_FAULT_WINDOW_WORDS = 4;

export interface Trigger {
  readonly timeNs: number;
  /** hypervisor instructions that retire after `timeNs` before the fault lands */
  readonly instructionsAfter: number;
}

export type FaultTarget =
  | { readonly type: 'failstop' }
  | { readonly type: 'hostFailstop' }
  | { readonly type: 'register'; readonly register: RegisterName; readonly bit: number }
  | { readonly type: 'code'; readonly wordOffset: number; readonly bit: number }
  /** `fraction` in [0, 1) picks a word among the in-use static data and heap words */
  | { readonly type: 'memory'; readonly fraction: number; readonly bit: number };

export interface FaultPlan {
  readonly trigger: Trigger;
  readonly target: FaultTarget;
}

/** Where and when a fault actually landed. */
export interface Injection {
  readonly cpu: number;
  readonly timeNs: number;
  /** hypervisor instructions retired by all CPUs before the fault */
  readonly instructionCount: number;
  readonly programCounter: number;
  /** the instruction the CPU was about to execute, disassembled, with its symbol */
  readonly instruction: string;
  readonly location: InjectedLocation;
}

export type InjectedLocation =
  | { readonly type: 'failstop'; readonly before: number; readonly after: 0 }
  /** every CPU of the host stopped; `cpus` says how many */
  | { readonly type: 'hostFailstop'; readonly cpus: number }
  | { readonly type: 'register'; readonly register: RegisterName; readonly bit: number; readonly before: number; readonly after: number }
  | { readonly type: 'code' | 'memory'; readonly address: number; readonly symbol: string; readonly bit: number; readonly before: number; readonly after: number };
