#!/usr/bin/env node
// Guards a refactoring of the hypervisor's handler code that must not change what it assembles to:
// dump the built program (its words and label table) before, dump again after, compare. The words
// and every symbol (labels not starting with '.', the names traces and records give addresses)
// must be equal; generated labels ('.loop3') are reported but may differ.
// Usage: npm run build && node scripts/program-identity.mjs dump BEFORE.json
//        (change, rebuild)  node scripts/program-identity.mjs dump AFTER.json
//        node scripts/program-identity.mjs compare BEFORE.json AFTER.json   (exit 1 if different)
import { readFileSync, writeFileSync } from 'node:fs';

const [command, first, second] = process.argv.slice(2);

async function dump(out) {
  const { assembleHypervisor } = await import(new URL('../dist/src/hypervisor/code/program.js', import.meta.url).href);
  const program = assembleHypervisor();
  const labels = [...program.labels.entries()].sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : 1));
  writeFileSync(out, JSON.stringify({ base: program.base, words: [...program.words], labels }));
  console.log(`${program.words.length} words, ${labels.length} labels -> ${out}`);
}

const symbols = (dump) => dump.labels.filter(([name]) => !name.startsWith('.')).map(([name, address]) => `${name}@${address}`);
const generated = (dump) => dump.labels.filter(([name]) => name.startsWith('.')).map(([name, address]) => `${name}@${address}`);

function compare(beforeFile, afterFile) {
  const [before, after] = [beforeFile, afterFile].map((file) => JSON.parse(readFileSync(file, 'utf8')));
  const differences = [];
  if (before.base !== after.base) differences.push(`base ${before.base} -> ${after.base}`);
  const length = Math.max(before.words.length, after.words.length);
  for (let index = 0; index < length; index++) {
    if (before.words[index] !== after.words[index]) differences.push(`word ${index}: ${before.words[index]} -> ${after.words[index]}`);
  }
  const [symbolsBefore, symbolsAfter] = [symbols(before), symbols(after)];
  for (const symbol of symbolsBefore.filter((name) => !symbolsAfter.includes(name))) differences.push(`symbol gone: ${symbol}`);
  for (const symbol of symbolsAfter.filter((name) => !symbolsBefore.includes(name))) differences.push(`symbol new: ${symbol}`);
  const sameGenerated = generated(before).join() === generated(after).join();
  console.log(`generated labels ${sameGenerated ? 'identical' : 'differ'}`);
  for (const line of differences.slice(0, 20)) console.log(line);
  console.log(differences.length === 0 ? `IDENTICAL: ${after.words.length} words, ${symbolsAfter.length} symbols` : `DIFFERENT: ${differences.length} differences`);
  return differences.length === 0;
}

if (command === 'dump' && first !== undefined) await dump(first);
else if (command === 'compare' && first !== undefined && second !== undefined) process.exitCode = compare(first, second) ? 0 : 1;
else {
  console.error('usage: program-identity.mjs dump OUT.json | compare BEFORE.json AFTER.json');
  process.exitCode = 2;
}
