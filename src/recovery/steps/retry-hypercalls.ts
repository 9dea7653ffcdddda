/**
 * Hypercall retry: a guest whose hypercall was abandoned would see, as Xen's guests do, the
 * hypercall number where its result should be, and fail. Rewind each abandoned hypercall so the
 * guest executes it again (completed multicall sub-calls are skipped by their done flags).
 */
import { Vcpu } from '../../hypervisor/layout.js';
import { defineStep } from '../step.js';
import { liveDomains } from './walk.js';

export const retryHypercalls = defineStep({
  name: 'retry-hypercalls',
  fixes: 'rewinds every abandoned guest hypercall so that the guest issues it again',
  // the guest-visible result of the abandoned hypercall: what the guest reads on its return
  repairs: ['vcpu.returnValue', 'vcpu.restartHypercall', 'vcpu.hypercallInProgress'],
  run(context) {
    let rewound = 0;
    for (const { vcpu } of liveDomains(context)) {
      if (context.read(vcpu + Vcpu.offset.hypercallInProgress) === 0) continue;
      context.write(vcpu + Vcpu.offset.restartHypercall, 1);
      context.write(vcpu + Vcpu.offset.hypercallInProgress, 0);
      rewound++;
    }
    return { hypercallsRewound: rewound };
  },
});
