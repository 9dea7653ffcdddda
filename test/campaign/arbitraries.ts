/**
 * Campaign records for property tests of the results file: few distinct names, as in a campaign,
 * chosen so that locale order differs from code-unit order (case, accents) and stage names sort
 * numerically ('10 + …' after '9 + …'); trial indexes repeat across mechanisms and stages, and
 * the same trial may appear twice.
 */
import fc from 'fast-check';
import type { CampaignRecord } from '../../src/results/summary.js';
import type { FaultType } from '../../src/faults/fault.js';
import type { MechanismName } from '../../src/recovery/mechanisms.js';
import { detected, nonManifested, notInjected, sdc, type RecoveryShape, type TrialShape } from '../report/fixtures.js';

const configurations = ['1AppVM', '3AppVM', 'a', 'B', 'é', 'e'];
const faultTypes = ['register', 'failstop', 'code', 'memory', 'Memory'] as FaultType[];
const mechanisms = ['microreset', 'microreboot', 'none', 'Microreset', 'ß'] as MechanismName[];
const stages = ['all', '0 no repairs', '1 + clear-irq-count', '2 + a', '9 + b', '10 + c', '01 + d'];

const shapeArbitrary: fc.Arbitrary<TrialShape> = fc.record({
  config: fc.constantFrom(...configurations),
  faultType: fc.constantFrom(...faultTypes),
  mechanism: fc.constantFrom(...mechanisms),
  stage: fc.constantFrom(...stages),
  trialIndex: fc.nat({ max: 12 }),
});

const recoveryArbitrary: fc.Arbitrary<RecoveryShape> = fc.record({
  recovered: fc.boolean(),
  noVmFailure: fc.boolean(),
  cause: fc.constantFrom('recoveryHung', 'appVmFailed', 'secondFailure'),
  // whole and fractional milliseconds, ties included
  serviceInterruptionMs: fc.oneof(fc.nat({ max: 50 }), fc.double({ min: 0, max: 1000, noNaN: true })),
  detector: fc.constantFrom('hang', 'assertion', 'pageFault'),
});

function recordOf(shapes: fc.Arbitrary<TrialShape>): fc.Arbitrary<CampaignRecord> {
  return fc.oneof(
    shapes.map(notInjected),
    shapes.map(nonManifested),
    shapes.map((shape) => sdc(shape)),
    shapes.map((shape) => detected(shape)),
    fc.tuple(shapes, recoveryArbitrary).map(([shape, recovery]) => detected(shape, recovery)),
  );
}

export const recordArbitrary: fc.Arbitrary<CampaignRecord> = recordOf(shapeArbitrary);

/** One cell, stage 'all', two mechanisms on a few trial indexes: pairs, and repeated trials. */
export const pairedRecordArbitrary: fc.Arbitrary<CampaignRecord> = recordOf(
  fc.record({ mechanism: fc.constantFrom<MechanismName>('microreset', 'microreboot'), trialIndex: fc.nat({ max: 5 }) }),
);

/** Records as a file holds them: what JSON keeps (no undefined fields, -0 as 0). */
export function stored(record: CampaignRecord): CampaignRecord {
  return JSON.parse(JSON.stringify(record)) as CampaignRecord;
}
