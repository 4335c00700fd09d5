/**
 * Parsing off the main thread (docs/architecture.md "Heartbeats"): the connectors' parses are long and synchronous
 * (web-ifc, dxf-parser), so they run in parser threads (`worker_threads`) and the worker's main thread stays free to
 * record activity heartbeats while it waits. Threads are kept for reuse (at most {@link MAX_IDLE_THREADS} idle, unref'd
 * so they never keep the process alive), except after a file larger than {@link KEEP_THREAD_MAX_BYTES}; a thread that
 * dies mid-parse fails only that parse.
 */
import * as path from "node:path";
import { Worker } from "node:worker_threads";
import type { ConnectorType } from "../../domain/model";
import { PARSER_THREAD_MARK, type ParseReply, type ParseRequest } from "./parse-thread";
import { SourceFileError, type ParsedFile } from "./types";

/** Idle parser threads kept (the worker runs at most 2 activities at once, `worker/main.ts`). */
export const MAX_IDLE_THREADS = 2;

/**
 * A thread that parsed a file of more bytes than this is ended rather than kept idle: web-ifc's WebAssembly memory grows
 * to the largest model the thread opened and never shrinks (a 145.6 MB IFC of 100,000 elements left the worker at about
 * 2.9 GiB, README "Performance"), so keeping such a thread would keep that memory for good.
 */
export const KEEP_THREAD_MAX_BYTES = 16 * 1024 * 1024;

/** How many parser threads are idle now (kept for the next parse); for tests. */
export function idleParserThreads(): number {
  return idle.length;
}

/** The thread's entry beside this file: `.ts` under tsx, `.js` when compiled to `dist/`. */
const ENTRY = path.join(__dirname, `parse-thread${path.extname(__filename)}`);

const idle: Worker[] = [];

function startThread(): Worker {
  // Run from TypeScript sources (tsx, the embedded stack): the thread registers tsx's CommonJS hooks first, as the
  // loader hooks of the main thread do not reach it. Compiled (dist/): the .js entry directly.
  const thread =
    path.extname(ENTRY) === ".ts"
      ? new Worker(`require(${JSON.stringify(require.resolve("tsx/cjs"))}); require(${JSON.stringify(ENTRY)});`, {
          eval: true,
          workerData: PARSER_THREAD_MARK,
        })
      : new Worker(ENTRY, { workerData: PARSER_THREAD_MARK });
  // An idle thread that fails or exits is forgotten (a parse in progress has its own listeners and is rejected).
  thread.on("error", () => undefined);
  thread.on("exit", () => {
    const at = idle.indexOf(thread);
    if (at >= 0) idle.splice(at, 1);
  });
  return thread;
}

/**
 * The bytes as a Uint8Array that alone covers its ArrayBuffer, so that the ArrayBuffer can be transferred: a Buffer
 * that shares its ArrayBuffer with others (Node's pool of small Buffers) is copied first.
 */
function transferable(bytes: Uint8Array): Uint8Array {
  const whole =
    bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  return whole ? bytes : new Uint8Array(bytes);
}

/**
 * Parses the bytes of one source file with the connector of its type (`CONNECTORS`) in a parser thread. The bytes are
 * those the caller read once and hashed (`readSourceFileOnce`, `contentHashOf`): they are moved to the thread (their
 * ArrayBuffer transferred, not copied, when they alone cover it), so the caller must not use `bytes` afterwards.
 * @param fileName the file's name, for messages.
 * @returns the ParsedFile (a structured clone of the thread's).
 * @throws SourceFileError as the connector threw it (its code kept, e.g. `FileIncomplete`); Error with the connector's
 *   message otherwise, or when the thread stopped during the parse (e.g. it ran out of memory).
 */
export function parseInThread(connectorType: ConnectorType, bytes: Uint8Array, fileName: string): Promise<ParsedFile> {
  const moved = transferable(bytes);
  const keep = moved.byteLength <= KEEP_THREAD_MAX_BYTES;
  const thread = idle.pop() ?? startThread();
  thread.ref();
  return new Promise<ParsedFile>((resolve, reject) => {
    const done = () => {
      thread.off("message", onMessage);
      thread.off("error", onError);
      thread.off("exit", onExit);
    };
    const onMessage = (reply: ParseReply) => {
      done();
      if (keep && idle.length < MAX_IDLE_THREADS) {
        thread.unref();
        idle.push(thread);
      } else void thread.terminate();
      if (reply.ok) resolve(reply.parsed);
      else if (reply.error.sourceFileCode) reject(new SourceFileError(reply.error.sourceFileCode, reply.error.message));
      else reject(Object.assign(new Error(reply.error.message), { name: reply.error.name ?? "Error" }));
    };
    const onError = (err: Error) => {
      done();
      void thread.terminate();
      reject(new Error(`the parser thread failed: ${err.message}`, { cause: err }));
    };
    const onExit = (code: number) => {
      done();
      reject(new Error(`the parser thread stopped (exit code ${code}) while parsing`));
    };
    thread.on("message", onMessage);
    thread.on("error", onError);
    thread.on("exit", onExit);
    try {
      thread.postMessage({ connectorType, bytes: moved, fileName } satisfies ParseRequest, [
        moved.buffer as ArrayBuffer,
      ]);
    } catch (err) {
      done();
      void thread.terminate();
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
}
