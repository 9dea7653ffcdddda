/**
 * BlkBench-like AppVM: a fixed, seeded sequence of block operations (write, copy, read, remove)
 * sent to the PrivVM over the domain's I/O ring, one request at a time. The guest models its
 * virtual disk, so every read is verified; it must finish the sequence before the run ends.
 */
import { Hypercall, PORT_RING, PRIVILEGED_DOMAIN_ID, RING_PORT_BASE, RING_SIZE } from '../hypervisor/abi.js';
import type { GuestAction, SharedRegion } from './kernel.js';
import { BLOCK_COMPUTE_NS, KernelBase, initialCommonState, type CommonState, type Failure } from './kernel-base.js';
import {
  BLOCKS_PER_DOMAIN,
  BLOCK_READ,
  BLOCK_TRIM,
  BLOCK_WRITE,
  RingView,
  STATUS_OK,
  blockAction,
  hypercallAction,
  portBit,
  type RingMessage,
} from './protocol.js';
import type { SeededRandom } from './random.js';

export interface BlkBenchOptions {
  readonly domainId: number;
  readonly seed: number;
  /** the I/O ring shared with the PrivVM (RING_WORDS words) */
  readonly ringRegion: SharedRegion;
  /** length of the operation sequence; 150 by default */
  readonly operationCount?: number;
}

export type BlockStep =
  | { readonly kind: 'write'; readonly block: number; readonly data: number }
  | { readonly kind: 'copy'; readonly from: number; readonly to: number }
  | { readonly kind: 'read'; readonly block: number }
  | { readonly kind: 'remove'; readonly block: number };

/** A request on the ring awaiting its response, with the data a read must return. */
interface Outstanding {
  readonly id: number;
  readonly operation: number;
  readonly block: number;
  readonly expectedData: number;
}

interface BlkBenchState extends CommonState {
  steps: BlockStep[];
  stepIndex: number;
  /** a copy is a read then a write: 1 once its read is verified */
  copyStage: number;
  copiedData: number;
  /** the guest's model of its virtual disk */
  model: number[];
  outstanding: Outstanding | null;
  /** a request was put on the ring and the PrivVM is not yet notified */
  notifyPending: boolean;
  nextRequestId: number;
  /** the guest's own ring indices; the header copies are for the PrivVM to read */
  requestProducer: number;
  responseConsumer: number;
  finishedAtNs: number | null;
  counts: { requests: number; verifiedReads: number };
  checksum: number;
}

export const BLKBENCH_OPERATIONS = 150;
const MINIMUM_COMPUTE_NS = 20_000;
const MAXIMUM_COMPUTE_NS = 80_000;
/** relative weights of write, copy, read, remove */
const STEP_WEIGHTS = [35, 20, 30, 15];

/** The seeded operation sequence: fixed at construction, so every run of a seed does the same. */
export function planBlockSteps(random: SeededRandom, count: number): BlockStep[] {
  const anyBlock = (): number => random.integer(0, BLOCKS_PER_DOMAIN - 1);
  const steps: BlockStep[] = [];
  for (let index = 0; index < count; index++) {
    switch (random.weighted(STEP_WEIGHTS)) {
      case 0:
        // Nonzero data, so that a write is never mistaken for a removed block.
        steps.push({ kind: 'write', block: anyBlock(), data: random.word() | 1 });
        break;
      case 1: {
        const from = anyBlock();
        const to = (from + random.integer(1, BLOCKS_PER_DOMAIN - 1)) % BLOCKS_PER_DOMAIN;
        steps.push({ kind: 'copy', from, to });
        break;
      }
      case 2:
        steps.push({ kind: 'read', block: anyBlock() });
        break;
      default:
        steps.push({ kind: 'remove', block: anyBlock() });
    }
  }
  return steps;
}

export class BlkBench extends KernelBase<BlkBenchState> {
  private readonly ring: RingView;

  constructor(options: BlkBenchOptions) {
    super('blkbench', options.domainId, options.seed, (random) => ({
      ...initialCommonState(),
      steps: planBlockSteps(random, options.operationCount ?? BLKBENCH_OPERATIONS),
      stepIndex: 0,
      copyStage: 0,
      copiedData: 0,
      model: new Array<number>(BLOCKS_PER_DOMAIN).fill(0),
      outstanding: null,
      notifyPending: false,
      nextRequestId: 1,
      requestProducer: 0,
      responseConsumer: 0,
      finishedAtNs: null,
      counts: { requests: 0, verifiedReads: 0 },
      checksum: 0,
    }));
    this.ring = new RingView(options.ringRegion);
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

  summary(): Readonly<Record<string, number>> {
    return {
      completed: this.state.stepIndex,
      operations: this.state.steps.length,
      finished: this.state.finishedAtNs === null ? 0 : 1,
      requests: this.state.counts.requests,
      verifiedReads: this.state.counts.verifiedReads,
      checksum: this.state.checksum,
    };
  }

  protected override hasFinished(): boolean {
    return this.state.finishedAtNs !== null;
  }

  protected override failuresAtEnd(nowNs: number): Failure[] {
    if (this.state.finishedAtNs !== null) return [];
    return [{ reason: `did not complete: ${this.state.stepIndex} of ${this.state.steps.length} operations done`, atNs: nowNs }];
  }

  private nextAction(nowNs: number): GuestAction {
    this.takeEvents(portBit(PORT_RING));
    if (this.state.halted) return this.idleAction();
    this.consumeResponses(nowNs);
    if (this.state.halted) return this.idleAction();
    if (this.state.outstanding === null && this.state.finishedAtNs === null) this.issueNextRequest(nowNs);
    if (this.state.notifyPending) return this.notifyPrivVm();
    return blockAction(BLOCK_COMPUTE_NS);
  }

  private notifyPrivVm(): GuestAction {
    this.state.notifyPending = false;
    const computeNs = this.random.integer(MINIMUM_COMPUTE_NS, MAXIMUM_COMPUTE_NS);
    return hypercallAction(computeNs, Hypercall.EventChannelOp, PRIVILEGED_DOMAIN_ID, RING_PORT_BASE + this.domainId);
  }

  // --- requests ---------------------------------------------------------------------------------

  /** Puts the request for the current step (or stage of a copy) on the ring, or finishes. */
  private issueNextRequest(nowNs: number): void {
    const step = this.state.steps[this.state.stepIndex];
    if (step === undefined) {
      this.state.finishedAtNs = nowNs;
      return;
    }
    const { model } = this.state;
    switch (step.kind) {
      case 'write':
        return this.putRequest(BLOCK_WRITE, step.block, step.data, 0);
      case 'read':
        return this.putRequest(BLOCK_READ, step.block, 0, model[step.block]);
      case 'remove':
        return this.putRequest(BLOCK_TRIM, step.block, 0, 0);
      case 'copy':
        if (this.state.copyStage === 0) return this.putRequest(BLOCK_READ, step.from, 0, model[step.from]);
        return this.putRequest(BLOCK_WRITE, step.to, this.state.copiedData, 0);
    }
  }

  private putRequest(operation: number, block: number, data: number, expectedData: number): void {
    const id = this.state.nextRequestId++;
    this.ring.writeRequest(this.state.requestProducer, { id, operation, argument: block, data });
    this.state.requestProducer++;
    // The entry is complete before the producer index that publishes it moves.
    this.ring.setHeader('requestProducer', this.state.requestProducer);
    this.state.outstanding = { id, operation, block, expectedData };
    this.state.notifyPending = true;
    this.state.counts.requests++;
  }

  // --- responses --------------------------------------------------------------------------------

  private consumeResponses(nowNs: number): void {
    const producer = this.ring.header('responseProducer');
    if (producer - this.state.responseConsumer > RING_SIZE || producer < this.state.responseConsumer) {
      return this.failAndHalt(`ring response producer ${producer} inconsistent with consumer ${this.state.responseConsumer}`, nowNs);
    }
    while (!this.state.halted && this.state.responseConsumer < producer) {
      const response = this.ring.response(this.state.responseConsumer);
      this.state.responseConsumer++;
      this.ring.setHeader('responseConsumer', this.state.responseConsumer);
      this.checkResponse(response, nowNs);
    }
  }

  private checkResponse(response: RingMessage, nowNs: number): void {
    const outstanding = this.state.outstanding;
    if (outstanding === null) return this.failAndHalt(`unexpected response id ${response.id}: no request outstanding`, nowNs);
    const what = `${operationName(outstanding.operation)} block ${outstanding.block} (request ${outstanding.id})`;
    if (response.id !== outstanding.id) return this.failAndHalt(`${what}: response id ${response.id}`, nowNs);
    if (response.operation !== STATUS_OK) return this.failAndHalt(`${what}: error status ${response.operation}`, nowNs);
    if (response.argument !== outstanding.block) return this.failAndHalt(`${what}: response for block ${response.argument}`, nowNs);
    if (outstanding.operation === BLOCK_READ) {
      if (response.data !== outstanding.expectedData) {
        return this.failAndHalt(`${what}: read ${response.data}, expected ${outstanding.expectedData}`, nowNs);
      }
      this.state.counts.verifiedReads++;
    }
    this.state.checksum = (Math.imul(this.state.checksum, 31) + response.data) | 0;
    this.state.outstanding = null;
    // every verified response (a copy's read too) is a step of the benchmark
    this.progressed(nowNs);
    this.completeStage(response.data);
  }

  /** Applies a verified response to the model and moves the sequence on. */
  private completeStage(data: number): void {
    const step = this.state.steps[this.state.stepIndex];
    const { model } = this.state;
    if (step.kind === 'copy' && this.state.copyStage === 0) {
      this.state.copyStage = 1;
      this.state.copiedData = data;
      return;
    }
    if (step.kind === 'write') model[step.block] = step.data;
    if (step.kind === 'remove') model[step.block] = 0;
    if (step.kind === 'copy') model[step.to] = this.state.copiedData;
    this.state.copyStage = 0;
    this.state.stepIndex++;
  }
}

function operationName(operation: number): string {
  if (operation === BLOCK_READ) return 'read';
  if (operation === BLOCK_WRITE) return 'write';
  if (operation === BLOCK_TRIM) return 'remove';
  return `operation ${operation}`;
}
