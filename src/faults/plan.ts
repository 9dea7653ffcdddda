/**
 * Draws a fault plan from a trial seed: pure, so the same seed always gives the same fault.
 */
import {
  CODE_FAULT_WINDOW_WORDS,
  MAX_INSTRUCTIONS_AFTER_TRIGGER,
  registerNames,
  type FaultPlan,
  type FaultTarget,
  type FaultType,
} from './fault.js';
import { Random } from './random.js';

export function planFault(trialSeed: number, faultType: FaultType, runLengthNs: number): FaultPlan {
  const random = new Random(trialSeed);
  const trigger = {
    timeNs: random.integer(runLengthNs),
    instructionsAfter: random.integer(MAX_INSTRUCTIONS_AFTER_TRIGGER + 1),
  };
  return { trigger, target: drawTarget(random, faultType) };
}

function drawTarget(random: Random, faultType: FaultType): FaultTarget {
  switch (faultType) {
    case 'failstop':
      return { type: 'failstop' };
    case 'hostFailstop':
      return { type: 'hostFailstop' };
    case 'register':
      return { type: 'register', register: registerNames[random.integer(registerNames.length)], bit: random.integer(32) };
    case 'code':
      return { type: 'code', wordOffset: random.integer(CODE_FAULT_WINDOW_WORDS), bit: random.integer(32) };
    case 'memory':
      return { type: 'memory', fraction: random.fraction(), bit: random.integer(32) };
  }
}
