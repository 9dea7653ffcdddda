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
  const startMs = performance.now();
  return {
    update(done, total, detail = '') {
      const rate = (done / Math.max(1e-3, (performance.now() - startMs) / 1000)).toFixed(1);
      if (!started) bar.start(total, done, { rate, detail });
      started = true;
      bar.update(done, { rate, detail });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

function lineProgress(sink: TextSink, label: string): Progress {
  let nextLineAt = 0;
  const startMs = performance.now();
  return {
    update(done, total, detail = '') {
      if (done < nextLineAt && done !== total) return;
      nextLineAt = done + Math.max(1, Math.floor(total * LINE_INTERVAL_FRACTION));
      const seconds = (performance.now() - startMs) / 1000;
      sink.write(`${label}: ${done}/${total} trials, ${(done / Math.max(seconds, 1e-3)).toFixed(1)}/s ${detail}\n`);
    },
    stop() {},
  };
}
