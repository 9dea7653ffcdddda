/**
 * The hypervisor's guest-visible interface: everything a guest may know of it.
 * Guests import this file and nothing else from hypervisor/.
 *
 * VM exit (guest -> hypervisor), registers written by the guest:
 *   r0 = exit reason (EXIT_HYPERCALL or EXIT_INTERRUPT), r1 = hypercall number, r2..r4 = arguments,
 *   r5 = the guest's resume token (an opaque value the guest expects back unchanged).
 * VM entry (hypervisor -> guest), registers the guest reads:
 *   r0 = return value of the pending hypercall, r1 = vCPU id (the `vmenter` context),
 *   r2 = event ports that became pending (bitmask, cleared in the hypervisor when delivered),
 *   r3 = 1 when the pending hypercall was rewound and must be executed again (as Xen rewinds
 *        the guest's instruction pointer onto the hypercall instruction), else 0,
 *   r5 = the resume token saved at exit; a token that does not match means a corrupted context.
 * As in Xen's saved guest frame, the return register holds the hypercall number until the
 * hypercall completes: a guest resumed after an abandoned hypercall sees that number.
 */

export const EXIT_HYPERCALL = 1;
export const EXIT_INTERRUPT = 2;

export const enum Hypercall {
  MmuUpdate = 0,
  Multicall = 1,
  SchedOp = 2,
  SetTimerOp = 3,
  EventChannelOp = 4,
  Domctl = 5,
  PhysdevOp = 6,
}
export const HYPERCALL_COUNT = 7;
export const hypercallNames = ['mmu_update', 'multicall', 'sched_op', 'set_timer_op', 'event_channel_op', 'domctl', 'physdev_op'] as const;

/** sched_op(command) */
export const SCHEDOP_YIELD = 0;
export const SCHEDOP_BLOCK = 1;

/** domctl(command, argument): create takes the CPU to place the new vCPU on; destroy takes a domain id */
export const DOMCTL_CREATE = 0;
export const DOMCTL_DESTROY = 1;

/**
 * physdev_op(command, argument). EOI takes the vector of a device interrupt routed to the caller:
 * as in Xen (ACKTYPE_EOI), the hypervisor leaves a guest-bound interrupt in service at the
 * interrupt controller until the guest says it has handled it.
 */
export const PHYSDEVOP_EOI = 0;

/** Error returns, as negative values like Xen's -errno. */
export const ERROR_PERMISSION = -1;
export const ERROR_NO_DOMAIN = -3;
export const ERROR_NO_MEMORY = -12;
export const ERROR_INVALID = -22;
export const ERROR_NO_SYSTEM_CALL = -38;

/**
 * mmu_update(slot, frame): point page-table slot `slot` of the calling domain at machine frame
 * `frame` (0 = unmap). Frames must be owned by the caller. Returns the new use count of `frame`
 * (0 when unmapping), so a guest can check that the hypervisor counted exactly its references.
 */
export const PAGE_TABLE_SLOTS = 16;

/**
 * multicall(count): run `count` sub-calls from the caller's multicall buffer (a shared page of
 * MULTICALL_ENTRY_WORDS-word entries). Each entry: hypercall number, two arguments, result, done
 * flag. The hypervisor sets `result` and then `done` = 1 for each sub-call it completes, and skips
 * entries already done; the guest clears `done` when it fills a new batch. Returns count done.
 */
export const MULTICALL_MAX_ENTRIES = 8;
export const MULTICALL_ENTRY_WORDS = 5;
export const MulticallEntry = { operation: 0, argument0: 1, argument1: 2, result: 3, done: 4 } as const;

/** set_timer_op(microseconds): one-shot timer on the calling vCPU; fires event PORT_TIMER. */

/** event_channel_op(domain id, port): make `port` pending in domain `domain id` and wake it. */
export const EVENT_PORT_COUNT = 31;
/** every domain: its one-shot timer */
export const PORT_TIMER = 0;
/** AppVM: activity on its ring with the PrivVM */
export const PORT_RING = 1;
/** PrivVM: block device completion */
export const PORT_DISK = 2;
/** PrivVM: network device received packets */
export const PORT_NIC = 3;
/** PrivVM: activity on the ring of AppVM `domain id` is port RING_PORT_BASE + domain id */
export const RING_PORT_BASE = 8;

/** Domain ids: the PrivVM is 0; AppVMs are 1..MAX_DOMAINS-1. */
export const PRIVILEGED_DOMAIN_ID = 0;
export const MAX_DOMAINS = 8;

/**
 * Shared I/O ring between an AppVM (front end) and the PrivVM (back end), in a shared page.
 * Requests: front end writes entry at req_prod % RING_SIZE then increments req_prod; back end
 * consumes up to req_prod. Responses the same way with rsp_prod / rsp_cons.
 */
export const RING_SIZE = 8;
export const RING_ENTRY_WORDS = 4;
export const RingHeader = { requestProducer: 0, requestConsumer: 1, responseProducer: 2, responseConsumer: 3 } as const;
export const RING_HEADER_WORDS = 4;
export const RING_REQUESTS_OFFSET = RING_HEADER_WORDS;
export const RING_RESPONSES_OFFSET = RING_HEADER_WORDS + RING_SIZE * RING_ENTRY_WORDS;
export const RING_WORDS = RING_HEADER_WORDS + 2 * RING_SIZE * RING_ENTRY_WORDS;
/** ring entry fields: request id, operation, argument, data */
export const RingEntry = { id: 0, operation: 1, argument: 2, data: 3 } as const;

/** Interrupt vectors the platform's devices raise on the PrivVM's CPU. */
export const VECTOR_DISK = 16;
export const VECTOR_NIC = 17;

/**
 * Machine frames: descriptor 0 is never used (frame 0 in a page-table slot means "unmapped").
 * Domain d owns the frames its guest may map, firstFrameOf(d) .. firstFrameOf(d) +
 * FRAMES_PER_DOMAIN - 1, and after them pageTableFrameOf(d), the page that holds its page-table
 * entries: typed as a page table, so that no guest can map it writable.
 */
export const FRAMES_PER_DOMAIN = 16;
/** frames owned by each domain: those its guest maps, and its page-table page */
export const FRAMES_OWNED_PER_DOMAIN = FRAMES_PER_DOMAIN + 1;
export const FRAME_COUNT = 1 + MAX_DOMAINS * FRAMES_OWNED_PER_DOMAIN;
export function firstFrameOf(domainId: number): number {
  return 1 + domainId * FRAMES_OWNED_PER_DOMAIN;
}
export function pageTableFrameOf(domainId: number): number {
  return firstFrameOf(domainId) + FRAMES_PER_DOMAIN;
}
