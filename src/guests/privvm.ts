/**
 * The privileged VM (domain 0): the back end of every AppVM's block ring (requests go to the
 * Disk, responses come back when it completes), the front end of NetBench's ring (pings from the
 * NIC go out as requests, replies come back and leave through the NIC), and the toolstack that
 * creates domains. It issues one hypercall per action from a queue and blocks when idle. Like
 * Linux's back ends and drivers it acts on the events it is sent and polls nothing: a device
 * event reads that device, then tells the hypervisor the interrupt is handled
 * (physdev_op(EOI)), and a ring's notification serves that ring. An interrupt or a notification
 * that is lost is lost. Its periodic 5 ms timer is its kernel's tick.
 */
import {
  DOMCTL_CREATE,
  ERROR_INVALID,
  Hypercall,
  PHYSDEVOP_EOI,
  PORT_DISK,
  PORT_NIC,
  PORT_RING,
  PORT_TIMER,
  PRIVILEGED_DOMAIN_ID,
  RING_PORT_BASE,
  RING_SIZE,
  VECTOR_DISK,
  VECTOR_NIC,
} from '../hypervisor/abi.js';
import type { Disk, DiskOperation, Nic } from './devices.js';
import type { GuestAction, SharedRegion } from './kernel.js';
import { BLOCK_COMPUTE_NS, KernelBase, initialCommonState, overdueTimer, type CommonState, type Failure } from './kernel-base.js';
import {
  BLOCKS_PER_DOMAIN,
  BLOCK_READ,
  BLOCK_TRIM,
  BLOCK_WRITE,
  NET_PING,
  RingView,
  blockAction,
  hypercallAction,
  microsecondsToNs,
  portBit,
} from './protocol.js';

export interface PrivVmOptions {
  /** always PRIVILEGED_DOMAIN_ID; present so every kernel is built the same way */
  readonly domainId: number;
  readonly seed: number;
  /** ring page of each AppVM it serves, by domain id */
  readonly rings: ReadonlyMap<number, SharedRegion>;
  /** the domain whose ring carries pings (NetBench); every other ring is a block ring */
  readonly netDomainId?: number;
  readonly disk?: Disk;
  readonly nic?: Nic;
  /** toolstack callback: domctl(create) returned this new domain id */
  readonly onDomainCreated?: (domainId: number) => void;
}

/** Back-end indices of an AppVM's block ring. */
interface BlockBackend {
  domainId: number;
  requestConsumer: number;
  responseProducer: number;
  /** requests sent to the disk and not yet answered: each holds a response slot */
  inFlight: number;
}

/** Front-end indices of NetBench's ring, and pings received but not yet on the ring. */
interface NetFrontend {
  domainId: number;
  requestProducer: number;
  responseConsumer: number;
  backlog: { pingId: number; payload: number }[];
}

/** Which ring request a disk request answers. */
interface DiskTicket {
  diskRequestId: number;
  domainId: number;
  requestId: number;
  block: number;
}

type QueuedCall =
  | { readonly kind: 'notify'; readonly domainId: number }
  | { readonly kind: 'setTimer' }
  | { readonly kind: 'createDomain'; readonly cpu: number }
  | { readonly kind: 'eoi'; readonly vector: number };

type IssuedCall = QueuedCall | { readonly kind: 'block' } | { readonly kind: 'none' };

interface PrivVmState extends CommonState {
  blockBackends: BlockBackend[];
  net: NetFrontend | null;
  tickets: DiskTicket[];
  nextDiskRequestId: number;
  queue: QueuedCall[];
  issued: IssuedCall;
  timerDeadlineNs: number | null;
  counts: {
    blockRequests: number;
    blockResponses: number;
    pingsForwarded: number;
    repliesTransmitted: number;
    pingsDiscarded: number;
    notifyErrors: number;
    eoiErrors: number;
    domainsCreated: number;
    timersRearmed: number;
  };
}

export const PRIVVM_TIMER_PERIOD_US = 5_000;
/** A periodic timer this late is taken as lost and programmed again. */
const TIMER_REARM_SLACK_NS = 2 * PRIVVM_TIMER_PERIOD_US * 1_000;
/** pings waiting for room on NetBench's ring; more are dropped (they would be late anyway) */
export const NET_BACKLOG_LIMIT = 64;
const BASE_COMPUTE_NS = 5_000;
const COMPUTE_PER_ITEM_NS = 3_000;
const MAXIMUM_JITTER_NS = 2_000;

const DISK_OPERATIONS: Readonly<Record<number, DiskOperation>> = { [BLOCK_READ]: 'read', [BLOCK_WRITE]: 'write', [BLOCK_TRIM]: 'trim' };

export class PrivVm extends KernelBase<PrivVmState> {
  /** by domain id: an array, as a ring is looked up several times in every poll */
  private readonly rings: (RingView | undefined)[] = [];

  constructor(private readonly options: PrivVmOptions) {
    super('privvm', options.domainId, options.seed, () => ({
      ...initialCommonState(),
      blockBackends: [],
      net: null,
      tickets: [],
      nextDiskRequestId: 1,
      queue: [],
      issued: { kind: 'none' },
      timerDeadlineNs: null,
      counts: { blockRequests: 0, blockResponses: 0, pingsForwarded: 0, repliesTransmitted: 0, pingsDiscarded: 0, notifyErrors: 0, eoiErrors: 0, domainsCreated: 0, timersRearmed: 0 },
    }));
    if (options.domainId !== PRIVILEGED_DOMAIN_ID) throw new Error(`privvm: domain id must be ${PRIVILEGED_DOMAIN_ID}, got ${options.domainId}`);
    for (const [domainId, region] of [...options.rings].sort(([a], [b]) => a - b)) this.attachRing(domainId, region);
  }

  /** Serves the ring of a domain created after boot (the post-recovery BlkBench VM). */
  attachRing(domainId: number, region: SharedRegion): void {
    if (this.rings[domainId] !== undefined) throw new Error(`privvm: ring of domain ${domainId} already attached`);
    this.rings[domainId] = new RingView(region);
    if (domainId === this.options.netDomainId) {
      this.state.net = { domainId, requestProducer: 0, responseConsumer: 0, backlog: [] };
    } else {
      this.state.blockBackends.push({ domainId, requestConsumer: 0, responseProducer: 0, inFlight: 0 });
    }
  }

  /** Toolstack: queue domctl(create) placing the new vCPU on `cpu`; the result goes to onDomainCreated. */
  requestCreateDomain(cpu: number): void {
    this.state.queue.push({ kind: 'createDomain', cpu });
  }

  /** True while a domctl(create) is issued and has not returned: the toolstack is building a VM. */
  isCreatingDomain(): boolean {
    return this.state.issued.kind === 'createDomain';
  }

  /**
   * A backup host's PrivVM takes over the I/O service of a checkpointed one (failover): its back
   * ends' and front end's indices, the disk requests in flight on the mirrored disk, the pings
   * it holds, its pending notifications. Its own hypercall in flight and its timer stay its own.
   */
  takeOverService(saved: unknown): void {
    const { issued, timerDeadlineNs, queue } = this.state;
    this.loadState(saved);
    this.state.queue = [...queue.filter((call) => call.kind !== 'notify'), ...this.state.queue.filter((call) => call.kind === 'notify')];
    this.state.issued = issued;
    this.state.timerDeadlineNs = timerDeadlineNs;
    // a back end that reconnects scans its rings and devices once, as it has had no events for them
    this.acceptEvents(this.servedPorts());
  }

  /** A back end reconnected to a restored front end notifies it, as a reconnecting Xen back end does. */
  notifyReconnected(domainId: number): void {
    this.queueOnce({ kind: 'notify', domainId });
  }

  boot(nowNs: number): GuestAction {
    this.started(nowNs);
    this.queueOnce({ kind: 'setTimer' });
    return this.issue(this.work(nowNs));
  }

  resume(returnValue: number, events: number, nowNs: number): GuestAction {
    this.acceptEvents(events);
    if (!this.state.halted) this.finishIssued(this.state.issued, returnValue, nowNs);
    return this.issue(this.work(nowNs));
  }

  override loadState(saved: unknown): void {
    super.loadState(saved);
    const served = [...this.state.blockBackends.map((backend) => backend.domainId), ...(this.state.net === null ? [] : [this.state.net.domainId])];
    const missing = served.filter((domainId) => this.rings[domainId] === undefined);
    if (missing.length > 0) throw new Error(`privvm: saved state serves domains ${missing.join(', ')} whose rings are not attached`);
  }

  summary(): Readonly<Record<string, number>> {
    return { ...this.state.counts, diskInFlight: this.state.tickets.length, netBacklog: this.state.net?.backlog.length ?? 0 };
  }

  protected override failuresAtEnd(nowNs: number): Failure[] {
    const lost = this.state.halted ? null : overdueTimer('periodic timer', this.state.timerDeadlineNs, nowNs);
    return lost === null ? [] : [lost];
  }

  // --- the hypercall queue ------------------------------------------------------------------------

  private finishIssued(issued: IssuedCall, returnValue: number, nowNs: number): void {
    switch (issued.kind) {
      case 'notify':
        // Not fatal: the AppVM may have failed and been destroyed; its own verdict says so.
        if (returnValue < 0) this.state.counts.notifyErrors++;
        return;
      case 'eoi':
        // Linux only warns (WARN_ON in eoi_pirq)
        if (returnValue < 0) this.state.counts.eoiErrors++;
        return;
      case 'setTimer':
        if (returnValue < 0) return this.fail(`set_timer_op(${PRIVVM_TIMER_PERIOD_US} us) returned error ${returnValue}`, nowNs);
        this.state.timerDeadlineNs = nowNs + microsecondsToNs(PRIVVM_TIMER_PERIOD_US);
        return;
      case 'createDomain':
        return this.finishCreateDomain(issued.cpu, returnValue, nowNs);
      case 'block':
        // any answer but 0 never gets here: the guest host BUG()s as xen_safe_halt does
        return;
      case 'none':
        return;
    }
  }

  private finishCreateDomain(cpu: number, returnValue: number, nowNs: number): void {
    if (returnValue <= PRIVILEGED_DOMAIN_ID) {
      return this.fail(`domctl(create, cpu ${cpu}) failed: returned ${returnValue}`, nowNs);
    }
    this.state.counts.domainsCreated++;
    this.options.onDomainCreated?.(returnValue);
  }

  private queueOnce(call: QueuedCall): void {
    for (const queued of this.state.queue) if (sameCall(queued, call)) return;
    this.state.queue.push(call);
  }

  /** Acts on the events it was sent, then issues the next queued hypercall. */
  private work(nowNs: number): GuestAction {
    if (this.state.halted) return this.idleAction();
    const ticked = this.handleTimer(nowNs);
    const handled = this.serviceEvents(nowNs);
    // its periodic tick and the I/O it serves are the PrivVM's work
    if (ticked || handled > 0) this.progressed(nowNs);
    const computeNs = BASE_COMPUTE_NS + handled * COMPUTE_PER_ITEM_NS + this.random.integer(0, MAXIMUM_JITTER_NS);
    const next = this.state.queue.shift();
    if (next === undefined) {
      // Block at once: events delivered between deciding to block and blocking would be lost
      // wake-ups (see BLOCK_COMPUTE_NS).
      this.state.issued = { kind: 'block' };
      return blockAction(BLOCK_COMPUTE_NS);
    }
    this.state.issued = next;
    return this.actionFor(next, computeNs);
  }

  /**
   * A device's event: its driver reads the device, and the interrupt is ended (its EOI goes
   * ahead of the notifications its work queued, as Linux's eoi_pirq follows the handler). A
   * ring's event: its back end serves that ring.
   */
  private serviceEvents(nowNs: number): number {
    let handled = 0;
    if (this.takeEvents(portBit(PORT_DISK))) {
      handled += this.serviceDisk(nowNs) + this.serviceBlockRings(nowNs);
      this.state.queue.unshift({ kind: 'eoi', vector: VECTOR_DISK });
    }
    if (this.takeEvents(portBit(PORT_NIC))) {
      handled += this.receivePackets(nowNs);
      this.state.queue.unshift({ kind: 'eoi', vector: VECTOR_NIC });
    }
    for (const backend of this.state.blockBackends) {
      if (this.takeEvents(ringEvent(backend.domainId))) handled += this.serviceBlockRing(backend, nowNs);
    }
    const net = this.state.net;
    if (net !== null && this.takeEvents(ringEvent(net.domainId))) handled += this.serviceNetRing(net, nowNs);
    return handled;
  }

  /** The events of every device and ring it serves. */
  private servedPorts(): number {
    let ports = portBit(PORT_DISK) | portBit(PORT_NIC);
    for (const backend of this.state.blockBackends) ports |= ringEvent(backend.domainId);
    if (this.state.net !== null) ports |= ringEvent(this.state.net.domainId);
    return ports;
  }

  private actionFor(call: QueuedCall, computeNs: number): GuestAction {
    switch (call.kind) {
      case 'eoi':
        return hypercallAction(computeNs, Hypercall.PhysdevOp, PHYSDEVOP_EOI, call.vector);
      case 'notify':
        return hypercallAction(computeNs, Hypercall.EventChannelOp, call.domainId, PORT_RING);
      case 'setTimer':
        return hypercallAction(computeNs, Hypercall.SetTimerOp, PRIVVM_TIMER_PERIOD_US);
      case 'createDomain':
        return hypercallAction(computeNs, Hypercall.Domctl, DOMCTL_CREATE, call.cpu);
    }
  }

  /** Re-arms the periodic timer when it fires; one still missing at the end of the run is a failure. */
  /** True if the periodic timer fired. */
  private handleTimer(nowNs: number): boolean {
    if (this.takeEvents(portBit(PORT_TIMER))) {
      this.state.timerDeadlineNs = null;
      this.queueOnce({ kind: 'setTimer' });
      return true;
    }
    // Like a tickless kernel, which programs its next timer event whenever it goes idle, a
    // timer long overdue is programmed again: its event was lost.
    const deadline = this.state.timerDeadlineNs;
    if (deadline !== null && nowNs > deadline + TIMER_REARM_SLACK_NS) {
      this.state.counts.timersRearmed++;
      this.state.timerDeadlineNs = null;
      this.queueOnce({ kind: 'setTimer' });
    }
    return false;
  }

  // --- block back end -----------------------------------------------------------------------------

  private serviceDisk(nowNs: number): number {
    const disk = this.options.disk;
    if (disk === undefined) return 0;
    const completions = disk.completed(nowNs);
    for (const completion of completions) {
      const index = this.state.tickets.findIndex((ticket) => ticket.diskRequestId === completion.id);
      if (index < 0) continue;
      const [ticket] = this.state.tickets.splice(index, 1);
      const backend = this.state.blockBackends.find((candidate) => candidate.domainId === ticket.domainId);
      if (backend === undefined) continue;
      backend.inFlight--;
      this.respond(backend, ticket.requestId, completion.status, ticket.block, completion.operation === 'read' ? completion.data : 0);
    }
    return completions.length;
  }

  private serviceBlockRings(nowNs: number): number {
    let handled = 0;
    for (const backend of this.state.blockBackends) handled += this.serviceBlockRing(backend, nowNs);
    return handled;
  }

  /** Takes requests while a response slot is guaranteed for each of them. */
  private serviceBlockRing(backend: BlockBackend, nowNs: number): number {
    const ring = this.ringOf(backend.domainId);
    const producer = ring.header('requestProducer');
    if (producer - backend.requestConsumer > RING_SIZE || producer < backend.requestConsumer) {
      this.fail(`ring of domain ${backend.domainId}: request producer ${producer} inconsistent with consumer ${backend.requestConsumer}`, nowNs);
      return 0;
    }
    let handled = 0;
    while (backend.requestConsumer < producer && backend.responseProducer + backend.inFlight - ring.header('responseConsumer') < RING_SIZE) {
      const request = ring.request(backend.requestConsumer);
      backend.requestConsumer++;
      ring.setHeader('requestConsumer', backend.requestConsumer);
      this.submitBlockRequest(backend, request.id, request.operation, request.argument, request.data, nowNs);
      handled++;
    }
    return handled;
  }

  /** Maps the AppVM's virtual block onto its partition of the disk; bad requests fail at once. */
  private submitBlockRequest(backend: BlockBackend, requestId: number, operation: number, block: number, data: number, nowNs: number): void {
    this.state.counts.blockRequests++;
    const diskOperation = DISK_OPERATIONS[operation];
    const disk = this.options.disk;
    if (diskOperation === undefined || disk === undefined || block < 0 || block >= BLOCKS_PER_DOMAIN) {
      return this.respond(backend, requestId, ERROR_INVALID, block, 0);
    }
    const diskRequestId = this.state.nextDiskRequestId++;
    this.state.tickets.push({ diskRequestId, domainId: backend.domainId, requestId, block });
    backend.inFlight++;
    disk.submit({ id: diskRequestId, operation: diskOperation, block: backend.domainId * BLOCKS_PER_DOMAIN + block, data }, nowNs);
  }

  private respond(backend: BlockBackend, requestId: number, status: number, block: number, data: number): void {
    const ring = this.ringOf(backend.domainId);
    ring.writeResponse(backend.responseProducer, { id: requestId, operation: status, argument: block, data });
    backend.responseProducer++;
    ring.setHeader('responseProducer', backend.responseProducer);
    this.state.counts.blockResponses++;
    this.queueOnce({ kind: 'notify', domainId: backend.domainId });
  }

  // --- network front end --------------------------------------------------------------------------

  /** The NIC's receive queue: pings go onto NetBench's ring as room allows, the rest wait in a backlog. */
  private receivePackets(nowNs: number): number {
    const nic = this.options.nic;
    if (nic === undefined) return 0;
    const net = this.state.net;
    const packets = nic.receive(nowNs);
    if (net === null) {
      this.state.counts.pingsDiscarded += packets.length;
      return packets.length;
    }
    for (const packet of packets) {
      if (net.backlog.length < NET_BACKLOG_LIMIT) net.backlog.push({ pingId: packet.pingId, payload: packet.payload });
      else this.state.counts.pingsDiscarded++;
    }
    return this.forwardPings(net);
  }

  /** NetBench answered: its replies leave through the NIC, and the room they free takes waiting pings. */
  private serviceNetRing(net: NetFrontend, nowNs: number): number {
    const nic = this.options.nic;
    const replies = nic === undefined ? 0 : this.transmitReplies(net, nic, nowNs);
    return replies + this.forwardPings(net);
  }

  private transmitReplies(net: NetFrontend, nic: Nic, nowNs: number): number {
    const ring = this.ringOf(net.domainId);
    const producer = ring.header('responseProducer');
    if (producer - net.responseConsumer > RING_SIZE || producer < net.responseConsumer) {
      this.fail(`ring of domain ${net.domainId}: response producer ${producer} inconsistent with consumer ${net.responseConsumer}`, nowNs);
      return 0;
    }
    let transmitted = 0;
    while (net.responseConsumer < producer) {
      const response = ring.response(net.responseConsumer);
      net.responseConsumer++;
      ring.setHeader('responseConsumer', net.responseConsumer);
      nic.transmit(response.id, response.data, nowNs);
      this.state.counts.repliesTransmitted++;
      transmitted++;
    }
    return transmitted;
  }

  /** At most RING_SIZE pings outstanding, so NetBench always has a response slot for each. */
  private forwardPings(net: NetFrontend): number {
    const ring = this.ringOf(net.domainId);
    let forwarded = 0;
    while (net.backlog.length > 0 && net.requestProducer - net.responseConsumer < RING_SIZE) {
      const { pingId, payload } = net.backlog.shift()!;
      ring.writeRequest(net.requestProducer, { id: pingId, operation: NET_PING, argument: 0, data: payload });
      net.requestProducer++;
      ring.setHeader('requestProducer', net.requestProducer);
      forwarded++;
    }
    this.state.counts.pingsForwarded += forwarded;
    if (forwarded > 0) this.queueOnce({ kind: 'notify', domainId: net.domainId });
    return forwarded;
  }

  private ringOf(domainId: number): RingView {
    const ring = this.rings[domainId];
    if (ring === undefined) throw new Error(`privvm: no ring attached for domain ${domainId}`);
    return ring;
  }
}

function sameCall(queued: QueuedCall, call: QueuedCall): boolean {
  if (queued.kind !== call.kind) return false;
  if (queued.kind === 'notify' && call.kind === 'notify') return queued.domainId === call.domainId;
  return true;
}

/** The event bit of the ring AppVM `domainId` shares with the PrivVM (its port: RING_PORT_BASE + domain id). */
function ringEvent(domainId: number): number {
  return portBit(RING_PORT_BASE + domainId);
}
