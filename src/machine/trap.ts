/**
 * Precise traps raised by the machine. The layer above routes them to its panic path.
 */

export type ExceptionKind =
  /** access to an unmapped address (including the null guard), by load, store, fetch or stack */
  | 'pageFault'
  /** write to code, or fetch from a segment that is not code */
  | 'protectionFault'
  /** the word at PC does not decode to a valid instruction */
  | 'invalidOpcode'
  /** `vmenter` named a guest context the guest port does not know */
  | 'vmEntryFailure';

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
  | { readonly kind: 'panic'; readonly cpu: number; readonly programCounter: number; readonly code: number };

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
  }
}

export function hex(value: number): string {
  return '0x' + (value >>> 0).toString(16);
}
