/**
 * The parser thread's entry (a `worker_threads` Worker started by `parse-in-thread.ts`): parses the bytes of design
 * files with the connectors, one request at a time (the bytes the file task read and hashed, moved here; the thread
 * never reads the file itself), and posts each ParsedFile back (structured clone; transferring the typed arrays instead
 * was slower: a DXF gives one small buffer per curve, and detaching 200,000 of them costs more than copying).
 */
import { parentPort, workerData } from "node:worker_threads";
import type { ConnectorType } from "../../domain/model";
import { CONNECTORS } from "./index";
import { SourceFileError, type ParsedFile } from "./types";

/** A request to the parser thread: the bytes of one source file (transferred) and its name, for messages. */
export interface ParseRequest {
  connectorType: ConnectorType;
  bytes: Uint8Array;
  fileName: string;
}

/** The parser thread's answer: the parsed file, or the error (a SourceFileError keeps its code). */
export type ParseReply =
  { ok: true; parsed: ParsedFile } | { ok: false; error: { message: string; sourceFileCode?: string; name?: string } };

/** Marks the parser thread's `workerData`, so that importing this module elsewhere starts nothing. */
export const PARSER_THREAD_MARK = "imodel-sync parser thread";

if (parentPort && workerData === PARSER_THREAD_MARK) {
  const port = parentPort;
  port.on("message", (request: ParseRequest) => {
    const { bytes } = request;
    CONNECTORS[request.connectorType](
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      request.fileName,
    ).then(
      (parsed) => port.postMessage({ ok: true, parsed } satisfies ParseReply),
      (err: unknown) => {
        const e = err instanceof Error ? err : new Error(String(err));
        const reply: ParseReply = {
          ok: false,
          error: {
            message: e.message,
            name: e.name,
            ...(err instanceof SourceFileError ? { sourceFileCode: err.code } : {}),
          },
        };
        port.postMessage(reply);
      },
    );
  });
}
