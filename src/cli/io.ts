/**
 * Where the CLI writes. process.stdout and process.stderr fit; tests pass collectors.
 */
export interface TextSink {
  write(text: string): unknown;
}

export interface CliIo {
  readonly stdout: TextSink;
  readonly stderr: TextSink;
}
