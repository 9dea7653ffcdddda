/**
 * Long commands stop cleanly on SIGINT or SIGTERM and at once on a second one.
 */
import { errorLine, EXIT_INTERRUPTED } from './errors.js';
import type { CliIo } from './io.js';
import type { Progress } from './progress.js';

/**
 * What a second signal does: give the directory's lock back, say in one line what was kept and
 * how to go on (`line`, without the "interrupted again: " it begins with), and exit 130.
 */
export function stoppingAtOnce(io: CliIo, release: () => void, line: string): () => never {
  return () => {
    release();
    io.stderr.write(errorLine(`interrupted again: ${line}`));
    process.exit(EXIT_INTERRUPTED);
  };
}

/**
 * Runs `work` with a signal that SIGINT or SIGTERM aborts, so the work stops cleanly and keeps
 * what it finished; a second signal does not wait for the work in progress: the progress stops
 * and `stopAtOnce` ends the process. When the work ends, so do the progress (if any) and the
 * handlers.
 */
export async function interruptibly<T>(progress: Progress | undefined, stopAtOnce: () => never, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const interrupt = (): void => {
    if (!controller.signal.aborted) return controller.abort();
    progress?.stop();
    stopAtOnce();
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  try {
    return await work(controller.signal);
  } finally {
    progress?.stop();
    process.removeListener('SIGINT', interrupt);
    process.removeListener('SIGTERM', interrupt);
  }
}
