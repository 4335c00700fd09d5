/**
 * One capture of console and process stdout/stderr output, used by both connectors around their parser calls
 * (web-ifc and dxf-parser print their messages): the messages become task warnings, nothing is printed
 * (docs/facts.md "web-ifc and dxf-parser").
 */
import * as util from "node:util";
import type { WarningTally } from "./warnings";

const CONSOLE_METHODS = ["log", "info", "warn", "error", "debug", "trace"] as const;

/** Receives the text of one console call or one stream write. */
export type OutputSink = (text: string) => void;

/** The sink of the innermost {@link captureOutput} running now, if any. */
let activeSink: OutputSink | undefined;

/** A console method that hands its text (formatted as the console would) to the active capture; dropped without one. */
function toActiveCapture(...args: unknown[]): void {
  activeSink?.(util.format(...args));
}

/**
 * Runs `work` (synchronous) with the console methods and process stdout/stderr writes routed to `sink`, and returns
 * its result (or throws its error); everything is restored afterwards. Console calls are formatted like the console
 * formats them (`util.format`). Stream writes are caught too, for loggers that bound console methods at load time
 * (dxf-parser's bundled loglevel). Nothing else runs meanwhile: the work is synchronous.
 */
export function captureOutput<T>(sink: OutputSink, work: () => T): T {
  const previousSink = activeSink;
  const saved = CONSOLE_METHODS.map((m) => [m, console[m]] as const);
  const out = process.stdout.write;
  const err = process.stderr.write;
  activeSink = sink;
  for (const m of CONSOLE_METHODS) console[m] = toActiveCapture;
  const write = ((chunk: unknown) => {
    sink(typeof chunk === "string" ? chunk : Buffer.isBuffer(chunk) ? chunk.toString("utf8") : String(chunk));
    return true;
  }) as typeof process.stdout.write;
  process.stdout.write = write;
  process.stderr.write = write;
  try {
    return work();
  } finally {
    for (const [m, fn] of saved) console[m] = fn;
    process.stdout.write = out;
    process.stderr.write = err;
    activeSink = previousSink;
  }
}

/**
 * Runs `init` (asynchronous) with the console methods replaced by functions that hand their text to whichever
 * {@link captureOutput} is active when they are called (and drop it when none is), then restores the console. For
 * libraries that bind console methods once while they initialise: web-ifc's WebAssembly module binds `console.log`
 * and `console.error` in `Init()`, so its later messages reach the capture around each parse while the global
 * console stays untouched between parses. Console output of other code during `init` is dropped.
 */
export async function bindConsoleToCaptures<T>(init: () => Promise<T>): Promise<T> {
  const saved = CONSOLE_METHODS.map((m) => [m, console[m]] as const);
  for (const m of CONSOLE_METHODS) console[m] = toActiveCapture;
  try {
    return await init();
  } finally {
    for (const [m, fn] of saved) console[m] = fn;
  }
}

/**
 * Collects captured output as trimmed, non-empty messages with their number of occurrences (the sink to give
 * {@link captureOutput}), and reports them as warnings.
 */
export class CapturedMessages {
  private readonly counts = new Map<string, number>();
  /** Occurrences of messages past `maxDistinct`. */
  private overflow = 0;

  /** @param maxDistinct distinct messages kept; occurrences of further ones are only counted. */
  constructor(private readonly maxDistinct = Number.POSITIVE_INFINITY) {}

  readonly sink: OutputSink = (text) => {
    const message = text.trim();
    if (!message) return;
    const n = this.counts.get(message);
    if (n !== undefined) this.counts.set(message, n + 1);
    else if (this.counts.size < this.maxDistinct) this.counts.set(message, 1);
    else this.overflow++;
  };

  /**
   * Adds one warning per distinct message to `tally`: code `code`, target `fileName`, message
   * `<fileName>: <reader> reported "<message>"` (plus ` (<n> times)` when repeated), with `count` when repeated or
   * when `alwaysCount`; the messages past `maxDistinct` as one more warning, `<reader> reported <n> more messages
   * (not listed)`, with its count.
   */
  reportTo(tally: WarningTally, opts: { code: string; fileName: string; reader: string; alwaysCount?: boolean }): void {
    const { code, fileName, reader } = opts;
    for (const [message, count] of this.counts) {
      tally.add(
        code,
        fileName,
        (n) => `${fileName}: ${reader} reported ${JSON.stringify(message)}${n > 1 ? ` (${n} times)` : ""}`,
        { key: message, count, alwaysCount: opts.alwaysCount },
      );
    }
    if (this.overflow > 0) {
      tally.add(code, fileName, (n) => `${fileName}: ${reader} reported ${n} more messages (not listed)`, {
        key: "\u0000more",
        count: this.overflow,
        alwaysCount: true,
      });
    }
  }

  /**
   * Adds one summary warning per group of messages to `tally` (e.g. per web-ifc function): code `code`, target
   * `fileName`, `count` = all occurrences of the group's messages, `examples` = the first few distinct texts, message
   * `<fileName>: <reader> reported <n> messages from <group> (e.g. "<text>", …)`. Messages past `maxDistinct` make one
   * more group, `other messages`.
   * @param groupOf the group of a message and its text within the group.
   */
  summarizeTo(
    tally: WarningTally,
    opts: {
      code: string;
      fileName: string;
      reader: string;
      groupOf: (message: string) => { group: string; text: string };
    },
  ): void {
    const { code, fileName, reader } = opts;
    const summary = (group: string) => (n: number, examples: string[]) =>
      `${fileName}: ${reader} reported ${n === 1 ? "1 message" : `${n} messages`} from ${group}` +
      (examples.length > 0
        ? ` (${n === 1 ? "" : "e.g. "}${examples.map((e) => JSON.stringify(e)).join(", ")}${n > examples.length && examples.length > 1 ? ", …" : ""})`
        : "");
    for (const [message, count] of this.counts) {
      const { group, text } = opts.groupOf(message);
      tally.add(code, fileName, summary(group), { key: group, count, example: text, alwaysCount: true });
    }
    if (this.overflow > 0) {
      tally.add(code, fileName, summary("other messages (not listed)"), {
        key: "\u0000more",
        count: this.overflow,
        alwaysCount: true,
      });
    }
  }
}
