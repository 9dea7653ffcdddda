/**
 * Precise traps raised by the machine. Each is reported to the layer above as it happens; with
 * exception delivery configured, the CPU then enters the hypervisor's own exception handler (its
 * panic path), otherwise it stops.
 */

export type ExceptionKind =
  /** access to an unmapped address (including the null guard), by load, store, fetch or stack */
  | 'pageFault'
  /** write to code, or fetch from a segment that is not code */
  | 'protectionFault'
  /** a data access to a page whose protection key the CPU's PKRU closes (x86's #PF with PK set) */
  | 'protectionKey'
  /** the word at PC does not decode to a valid instruction */
  | 'invalidOpcode'
  /** `vmenter` named a guest context the guest port does not know */
  | 'vmEntryFailure'
  /** delivering an exception failed (its frame could not be pushed, say): raised on its own stack */
  | 'doubleFault';

export type AccessKind = 'read' | 'write' | 'fetch';

export type Trap =
  | {
      readonly kind: 'exception';
      readonly exception: ExceptionKind;
      readonly cpu: number;
      readonly programCounter: number;
      /** the address that faulted, for memory exceptions */
      readonly address: number;
      readonly access: AccessKind | 'none';
    }
  /** a `bug_on` whose operand was non-zero */
  | { readonly kind: 'assertion'; readonly cpu: number; readonly programCounter: number; readonly code: number }
  /** an explicit `panic` (the watchdog's hang verdict uses one) */
  | { readonly kind: 'panic'; readonly cpu: number; readonly programCounter: number; readonly code: number }
  /** `handover`: the CPU stopped and gave the machine to the layer above */
  | { readonly kind: 'handover'; readonly cpu: number; readonly programCounter: number };

export function describeTrap(trap: Trap): string {
  const where = `cpu ${trap.cpu} pc ${hex(trap.programCounter)}`;
  switch (trap.kind) {
    case 'exception':
      return trap.access === 'none'
        ? `${trap.exception} at ${where}`
        : `${trap.exception} (${trap.access} ${hex(trap.address)}) at ${where}`;
    case 'assertion':
      return `assertion ${trap.code} failed at ${where}`;
    case 'panic':
      return `panic ${trap.code} at ${where}`;
    case 'handover':
      return `handover at ${where}`;
  }
}

export function hex(value: number): string {
  return '0x' + (value >>> 0).toString(16);
}
