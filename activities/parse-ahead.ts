/**
 * Parse ahead (docs/architecture.md "Parse ahead"): while a file task writes its file, the worker reads and parses the
 * run's next file in a parser thread, where the machine has a core to spare. The next task uses that parse only when
 * it read exactly the same bytes (same content hash); otherwise, or when the read or parse ahead failed, it parses
 * itself, so what it writes and reports never depends on the parse ahead. Writes are untouched: one file at a time.
 */
import type { ParsedFile } from "./connectors/types";

/** What reading a file ahead gives: its content hash and the parse started on those bytes. */
export interface ReadAhead {
  contentHash: string;
  parsed: Promise<ParsedFile>;
}

/** Files larger than this (bytes) are not parsed ahead: two large parses at once would double the memory peak. */
export const PARSE_AHEAD_MAX_BYTES = 64 * 1024 * 1024;

/**
 * One file parsed ahead at a time. `start` replaces what was there (a parse no task took is dropped); `take` hands the
 * parse to the task that reads the same path with the same content hash, once.
 */
export class ParseAhead {
  private pending: { absolutePath: string; result: Promise<ReadAhead | undefined> } | undefined;

  /**
   * Starts reading and parsing `absolutePath` with `readAndParse` (which resolves undefined when the file is not to be
   * parsed ahead, e.g. too large). Its failures are never thrown: the task parses itself and reports them.
   */
  start(absolutePath: string, readAndParse: () => Promise<ReadAhead | undefined>): void {
    if (this.pending?.absolutePath === absolutePath) return;
    const result = readAndParse().then(
      (r) => {
        // never an unhandled rejection: the task that takes it awaits the same promise and handles its error
        r?.parsed.catch(() => undefined);
        return r;
      },
      () => undefined,
    );
    this.pending = { absolutePath, result };
  }

  /**
   * The parse of `absolutePath` started ahead, when its bytes had `contentHash`; undefined otherwise (nothing started for
   * that path, the file changed since, or reading it ahead failed). What was started is dropped either way.
   * @throws what the parse ahead threw (e.g. SourceFileError), as the task's own parse of the same bytes would.
   */
  async take(absolutePath: string, contentHash: string): Promise<ParsedFile | undefined> {
    const pending = this.pending;
    if (!pending || pending.absolutePath !== absolutePath) return undefined;
    this.pending = undefined;
    const ahead = await pending.result;
    return ahead && ahead.contentHash === contentHash ? ahead.parsed : undefined;
  }
}
