/**
 * The guests' only source of randomness: a seeded alea generator whose state is plain data, so
 * that a snapshot of a guest or a device captures exactly where its random stream stands.
 */
import seedrandom from 'seedrandom';

export type RandomState = seedrandom.State.Alea;

export class SeededRandom {
  private constructor(private readonly generator: seedrandom.StatefulPRNG<RandomState>) {}

  /** One independent stream per (seed, stream name): guests and devices never share a stream. */
  static fromSeed(seed: number, stream: string): SeededRandom {
    return new SeededRandom(seedrandom.alea(`${seed}/${stream}`, { state: true }));
  }

  static fromState(state: RandomState): SeededRandom {
    return new SeededRandom(seedrandom.alea('', { state: { ...state } }));
  }

  /** Uniform in [0, 1). */
  fraction(): number {
    return this.generator();
  }

  /** Uniform integer in [minimum, maximum], both inclusive. */
  integer(minimum: number, maximum: number): number {
    return minimum + Math.floor(this.generator() * (maximum - minimum + 1));
  }

  /** A uniformly random 32-bit signed word, as stored in shared memory. */
  word(): number {
    return this.generator.int32();
  }

  /** Picks an index with probability proportional to its weight. */
  weighted(weights: readonly number[]): number {
    const total = weights.reduce((sum, weight) => sum + weight, 0);
    let point = this.generator() * total;
    for (let index = 0; index < weights.length; index++) {
      point -= weights[index];
      if (point < 0) return index;
    }
    return weights.length - 1;
  }

  state(): RandomState {
    return this.generator.state();
  }
}
