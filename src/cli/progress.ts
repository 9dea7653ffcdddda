/**
 * Progress on long work, on stderr: a live bar on a terminal, plain periodic lines otherwise
 * (CI logs, pipes, tests).
 */
import cliProgress from 'cli-progress';
import type { CliIo, TextSink } from './io.js';

export interface Progress {
  update(done: number, total: number, detail?: string): void;
  stop(): void;
}

const LINE_INTERVAL_FRACTION = 0.1;

function isTerminal(sink: TextSink): sink is TextSink & NodeJS.WriteStream {
  return (sink as Partial<NodeJS.WriteStream>).isTTY === true;
}

export function createProgress(io: CliIo, label: string): Progress {
  return isTerminal(io.stderr) ? terminalProgress(io.stderr, label) : lineProgress(io.stderr, label);
}

function terminalProgress(stream: NodeJS.WriteStream, label: string): Progress {
  const bar = new cliProgress.SingleBar(
    { stream, format: `${label} [{bar}] {value}/{total} trials | {rate} trials/s | ETA {eta_formatted} {detail}`, hideCursor: true, etaBuffer: 200 },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const rate = rateCounter();
  return {
    update(done, total, detail = '') {
      const perSecond = rate(done).toFixed(1);
      if (!started) bar.start(total, done, { rate: perSecond, detail });
      started = true;
      bar.update(done, { rate: perSecond, detail });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

function lineProgress(sink: TextSink, label: string): Progress {
  let nextLineAt = 0;
  const rate = rateCounter();
  return {
    update(done, total, detail = '') {
      const perSecond = rate(done);
      if (done < nextLineAt && done !== total) return;
      nextLineAt = done + Math.max(1, Math.floor(total * LINE_INTERVAL_FRACTION));
      sink.write(`${label}: ${done}/${total} trials, ${perSecond.toFixed(1)}/s, ETA ${formatEta(total - done, perSecond)} ${detail}\n`);
    },
    stop() {},
  };
}

/**
 * Trials per second since the first update, counting only trials done in this process: a
 * resumed run starts with the trials found done, which took no time here.
 */
function rateCounter(): (done: number) => number {
  let first: number | undefined;
  const startMs = performance.now();
  return (done) => {
    first ??= done;
    return (done - first) / Math.max(1e-3, (performance.now() - startMs) / 1000);
  };
}

/** "1m05s", "12s", or "-" before there is a rate to go by. */
export function formatEta(remaining: number, perSecond: number): string {
  if (remaining <= 0) return '0s';
  if (!(perSecond > 0)) return '-';
  const seconds = Math.ceil(remaining / perSecond);
  const minutes = Math.floor(seconds / 60);
  return minutes === 0 ? `${seconds}s` : `${minutes}m${String(seconds % 60).padStart(2, '0')}s`;
}
