/**
 * Following the golden run. A code fault in a word the run does not execute again leaves a state
 * that differs from the golden run's in that one word and nowhere else, and from then on the trial
 * does exactly what the golden run does: it cannot stop early at a golden checkpoint (the word is
 * still flipped), so it used to run to the end.
 *
 * The proof that it need not: at a checkpoint every part of the trial's state equals the golden
 * run's, except code words that the golden run never fetches from that checkpoint on (or that
 * decode to the same instruction, `sameInstruction`), and the golden run never reads an executable
 * page as data from that checkpoint to its end. Then, step by step, the trial executes the same
 * instructions on the same state as the golden run (it never fetches a changed word, or runs the
 * same instruction when it does; no load ever sees one), so it reaches the golden run's final
 * state with the same changed code words. That state is built directly and classified as
 * running to the end would have classified it. Nothing here looks at the fault: it compares states.
 */
import { changedCodeWords, sameMachineBesidesMemory } from '../machine/state-equality.js';
import type { Checkpoint, GoldenRun } from './golden-cache.js';
import { System, type SystemSnapshot } from './system.js';

/**
 * The trial's state at the end of the run, when from `checkpoint` on it follows the golden run
 * (see above), given the trial's instruction limit; undefined when it may not.
 */
export function finalStateIfFollowing(system: System, golden: GoldenRun, checkpoint: Checkpoint, instructionLimit: number): System | undefined {
  const machine = system.machine;
  const saved = checkpoint.snapshot;
  if (golden.final.machine.codeReads !== saved.machine.codeReads) return undefined;
  // the trial's instruction budget must not end it before the golden run ends
  if (golden.final.machine.hypervisorInstructions >= instructionLimit) return undefined;
  if (!sameMachineBesidesMemory(machine, saved.machine)) return undefined;
  const fetchedLater = (address: number): boolean => (golden.lastFetchNs.get(address) ?? -1) >= checkpoint.timeNs;
  const changedCode = changedCodeWords(machine.memory.words, saved.machine.words, machine.memory.pagePermissions, fetchedLater);
  if (changedCode === undefined || !sameDevicesAndGuests(system, saved)) return undefined;
  const final = new System(golden.options);
  final.restore(golden.final);
  for (const address of changedCode) final.machine.memory.words[address] = machine.memory.words[address];
  return final;
}

function sameDevicesAndGuests(system: System, saved: SystemSnapshot): boolean {
  const live = [system.host.saveState(), system.disk.saveState(), system.nic.saveState(), system.createdDomainIds()];
  return JSON.stringify(live) === JSON.stringify([saved.host, saved.disk, saved.nic, saved.createdDomains]);
}
