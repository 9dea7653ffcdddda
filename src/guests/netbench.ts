/**
 * NetBench-like AppVM: answers the pings that the PrivVM forwards on the domain's ring. The
 * PrivVM produces requests (id = ping id, data = payload) and this guest produces responses
 * (data = pingReply(payload)). Whether the service was good enough is read from the NIC's log:
 * at most 10% of the pings of any 1 s window unanswered, outside service interruptions.
 */
import { Hypercall, PORT_RING, PRIVILEGED_DOMAIN_ID, RING_PORT_BASE, RING_SIZE } from '../hypervisor/abi.js';
import type { GuestAction, GuestVerdict, SharedRegion } from './kernel.js';
import { BLOCK_COMPUTE_NS, KernelBase, initialCommonState, type CommonState, type Failure } from './kernel-base.js';
import { evaluateNetBench, pingReply, type NetReport, type Nic, type ServiceInterruption } from './devices.js';
import { NET_PING, RingView, STATUS_OK, blockAction, hypercallAction, portBit } from './protocol.js';

export interface NetBenchOptions {
  readonly domainId: number;
  readonly seed: number;
  /** the I/O ring shared with the PrivVM (RING_WORDS words) */
  readonly ringRegion: SharedRegion;
  /** the platform's NIC, whose log decides the verdict; without it only ring errors count */
  readonly nic?: Nic;
  /** count pings inside service interruptions too */
  readonly strict?: boolean;
}

interface NetBenchState extends CommonState {
  /** the guest's own ring indices; the header copies are for the PrivVM to read */
  requestConsumer: number;
  responseProducer: number;
  serviceInterruptions: ServiceInterruption[];
  strict: boolean;
  replies: number;
  checksum: number;
}

const NOTIFY_BASE_COMPUTE_NS = 5_000;
const MINIMUM_COMPUTE_PER_REPLY_NS = 10_000;
const MAXIMUM_COMPUTE_PER_REPLY_NS = 30_000;

export class NetBench extends KernelBase<NetBenchState> {
  private readonly ring: RingView;
  private nic: Nic | undefined;
  /** the last evaluation of the NIC log, kept for summary() */
  private report: NetReport | null = null;

  constructor(options: NetBenchOptions) {
    super('netbench', options.domainId, options.seed, () => ({
      ...initialCommonState(),
      requestConsumer: 0,
      responseProducer: 0,
      serviceInterruptions: [],
      strict: options.strict ?? false,
      replies: 0,
      checksum: 0,
    }));
    this.ring = new RingView(options.ringRegion);
    this.nic = options.nic;
  }

  setNic(nic: Nic): void {
    this.nic = nic;
  }

  /** Recovery's service interruptions: pings arriving inside them are downtime losses. */
  override setServiceInterruptions(intervals: readonly ServiceInterruption[], strict = this.state.strict): void {
    super.setServiceInterruptions(intervals);
    this.state.serviceInterruptions = intervals.map(({ startNs, endNs }) => ({ startNs, endNs }));
    this.state.strict = strict;
  }

  boot(nowNs: number): GuestAction {
    this.started(nowNs);
    return this.issue(this.nextAction(nowNs));
  }

  resume(returnValue: number, events: number, nowNs: number): GuestAction {
    this.acceptEvents(events);
    this.checkNoError(returnValue, nowNs);
    return this.issue(this.nextAction(nowNs));
  }

  /** It has work while pings arrive: the last one arrives at the end of the run. */
  protected override progressOwedUntilNs(): number {
    return this.nic === undefined || this.nic.pingCount === 0 ? Number.POSITIVE_INFINITY : this.nic.arrivalNs(this.nic.pingCount - 1);
  }

  override verdict(nowNs: number): GuestVerdict {
    this.report = this.nic === undefined ? null : this.evaluate(nowNs);
    return super.verdict(nowNs);
  }

  /** Full per-window report of the NIC log at `nowNs`, or null without a NIC. */
  evaluate(nowNs: number): NetReport | null {
    if (this.nic === undefined) return null;
    return evaluateNetBench(this.nic, { atNs: nowNs, serviceInterruptions: this.state.serviceInterruptions, strict: this.state.strict });
  }

  override loadState(saved: unknown): void {
    super.loadState(saved);
    this.report = null;
  }

  summary(): Readonly<Record<string, number>> {
    const summary: Record<string, number> = { replies: this.state.replies, checksum: this.state.checksum };
    if (this.report === null) return summary;
    summary.answered = this.report.answered;
    summary.lost = this.report.lost;
    summary.downtimeLosses = this.report.downtimeLosses;
    summary.wrongReplies = this.report.wrongReplies;
    for (const window of this.report.windows) {
      summary[`window${window.index}Pings`] = window.counted;
      summary[`window${window.index}Lost`] = window.lost;
      summary[`window${window.index}DowntimeLosses`] = window.downtimeLosses;
    }
    return summary;
  }

  protected override failuresAtEnd(nowNs: number): Failure[] {
    const report = this.report ?? this.evaluate(nowNs);
    if (report === null || report.verdict.kind === 'correct') return [];
    return [{ reason: report.verdict.reason, atNs: report.verdict.atNs }];
  }

  private nextAction(nowNs: number): GuestAction {
    this.takeEvents(portBit(PORT_RING));
    if (this.state.halted) return this.idleAction();
    const answered = this.answerRequests(nowNs);
    if (this.state.halted) return this.idleAction();
    if (answered === 0) return blockAction(BLOCK_COMPUTE_NS);
    const computeNs = NOTIFY_BASE_COMPUTE_NS + answered * this.random.integer(MINIMUM_COMPUTE_PER_REPLY_NS, MAXIMUM_COMPUTE_PER_REPLY_NS);
    return hypercallAction(computeNs, Hypercall.EventChannelOp, PRIVILEGED_DOMAIN_ID, RING_PORT_BASE + this.domainId);
  }

  /** Answers every request on the ring that has a free response slot; returns how many. */
  private answerRequests(nowNs: number): number {
    const producer = this.ring.header('requestProducer');
    if (producer - this.state.requestConsumer > RING_SIZE || producer < this.state.requestConsumer) {
      this.failAndHalt(`ring request producer ${producer} inconsistent with consumer ${this.state.requestConsumer}`, nowNs);
      return 0;
    }
    let answered = 0;
    while (this.state.requestConsumer < producer && this.responseSlotFree()) {
      const request = this.ring.request(this.state.requestConsumer);
      if (request.operation !== NET_PING) {
        this.failAndHalt(`ring request ${request.id} has operation ${request.operation}, not a ping`, nowNs);
        return answered;
      }
      this.state.requestConsumer++;
      this.ring.setHeader('requestConsumer', this.state.requestConsumer);
      const data = pingReply(request.data);
      this.ring.writeResponse(this.state.responseProducer, { id: request.id, operation: STATUS_OK, argument: 0, data });
      this.state.responseProducer++;
      this.ring.setHeader('responseProducer', this.state.responseProducer);
      this.state.replies++;
      this.progressed(nowNs);
      this.state.checksum = (Math.imul(this.state.checksum, 31) + data) | 0;
      answered++;
    }
    return answered;
  }

  private responseSlotFree(): boolean {
    return this.state.responseProducer - this.ring.header('responseConsumer') < RING_SIZE;
  }
}
