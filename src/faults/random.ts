/**
 * The injector's seeded generator (seedrandom's alea), and the derivation of trial seeds from
 * (campaign seed, trial index) so that a trial can be replayed alone.
 */
import seedrandom from 'seedrandom';

export class Random {
  private readonly generator: seedrandom.PRNG;

  constructor(seed: number | string) {
    this.generator = seedrandom.alea(String(seed));
  }

  /** uniform integer in [0, bound) */
  integer(bound: number): number {
    return Math.floor(this.generator() * bound);
  }

  /** uniform in [0, 1) */
  fraction(): number {
    return this.generator();
  }
}

/** A 32-bit seed for trial `trialIndex` of the campaign seeded `campaignSeed` (splitmix32). */
export function trialSeed(campaignSeed: number, trialIndex: number): number {
  let state = (Math.imul(campaignSeed | 0, 0x9e3779b1) ^ Math.imul(trialIndex | 0, 0x85ebca77)) | 0;
  state = (state + 0x9e3779b9) | 0;
  state = Math.imul(state ^ (state >>> 16), 0x21f0aaad);
  state = Math.imul(state ^ (state >>> 15), 0x735a2d97);
  return (state ^ (state >>> 15)) >>> 0;
}
