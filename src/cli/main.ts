#!/usr/bin/env node
/**
 * The `ninelives` executable. All behaviour is in runCli; this file only connects it to the
 * process when it is the entry point (and not when a test imports it).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runCli } from './run.js';

export { runCli } from './run.js';

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // a closed pipe (`ninelives ... | head`) ends the output, not the program with a stack trace
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
}
