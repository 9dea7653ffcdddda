/** The system a trial spec runs on, one function for every engine (plain, failover, replay-failover). */
import type { TrialSpec } from './record.js';
import type { SystemOptions } from './system.js';

/** The configuration, its workload seed (and the key-value server's options), run length, NetBench rule and protection keys. */
export function systemOptionsOf(spec: TrialSpec): SystemOptions {
  return {
    configuration: spec.configuration,
    seed: spec.seed,
    runLengthNs: spec.runLengthNs,
    strictNetBench: spec.strictNetBench,
    ...(spec.pkeys === true ? { protectionKeys: true } : {}),
    ...(spec.kvServer === undefined ? {} : { kvServer: spec.kvServer }),
  };
}
