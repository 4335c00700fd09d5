import * as fs from "node:fs";
import { Context } from "@temporalio/activity";
import pino from "pino";

/**
 * Secrets never written to logs: the request headers that carry credentials (pino-http logs every request with its
 * headers; an API key in a log file would undo storing only its SHA-256).
 */
export const REDACTED_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
];

/** How often (ms) a destination that dropped lines tries again to write its notice, without waiting for a new line. */
const DROP_NOTICE_RETRY_MS = 5000;

/**
 * The log destination of the API and the worker: writes each line to a file descriptor (stdout, which the launcher
 * redirects into `$DATA_DIR/logs/<name>.log`) and never throws, so a failed log write never ends the process
 * (docs/architecture.md "Full disks"). A line that cannot be written (ENOSPC on a full disk, EPIPE on a closed pipe,
 * EIO...) is counted and dropped; the first line written afterwards is preceded by one warning with the count, the
 * first error code and the time of the first drop. While lines are pending, that warning is tried again every
 * {@link DROP_NOTICE_RETRY_MS} ms, so it appears once space returns even when nothing else is logged. EAGAIN (a full
 * non-blocking pipe) is waited out briefly, not dropped.
 */
export class LogDestination {
  /** Lines dropped since the last notice. */
  dropped = 0;
  /** Lines dropped since the process started. */
  droppedTotal = 0;
  private firstError?: string;
  private since?: string;
  /** A line was cut short by a failed write: the next text starts on a new line. */
  private partial = false;
  private retry?: NodeJS.Timeout;

  constructor(
    private readonly fd: number,
    private readonly fields: Record<string, unknown>,
  ) {}

  /** pino's destination contract: writes one serialized line; always succeeds from the caller's view. */
  write(line: string): boolean {
    if (this.dropped > 0 && !this.writeNotice()) {
      this.drop(this.firstError ?? "unknown");
      return true;
    }
    const error = this.writeAll(line);
    if (error) this.drop(error);
    return true;
  }

  /**
   * Counts a line lost elsewhere (e.g. an `error` event of `process.stdout`), with the error's code.
   */
  noteDropped(err: unknown): void {
    this.drop(errorCode(err));
  }

  private drop(code: string): void {
    if (this.dropped === 0) {
      this.firstError = code;
      this.since = new Date().toISOString();
    }
    this.dropped++;
    this.droppedTotal++;
    if (!this.retry) {
      this.retry = setInterval(() => {
        if (this.dropped === 0 || this.writeNotice()) this.stopRetry();
      }, DROP_NOTICE_RETRY_MS);
      this.retry.unref();
    }
  }

  private stopRetry(): void {
    if (this.retry) clearInterval(this.retry);
    this.retry = undefined;
  }

  /** Writes the dropped-lines warning (pino's JSON shape, level 40); true when written. */
  private writeNotice(): boolean {
    const notice = {
      level: 40,
      time: Date.now(),
      ...this.fields,
      droppedLogLines: this.dropped,
      error: this.firstError,
      since: this.since,
      msg: `${this.dropped} log line(s) could not be written since ${this.since} (${this.firstError}); logging resumed`,
    };
    const text = `${this.partial ? "\n" : ""}${JSON.stringify(notice)}\n`;
    if (this.writeAll(text, true)) return false;
    this.dropped = 0;
    this.firstError = undefined;
    this.since = undefined;
    this.stopRetry();
    return true;
  }

  /** Writes all of `text`; returns the error code when it could not (after a partial write, `partial` is set). */
  private writeAll(text: string, isNotice = false): string | undefined {
    const buf = Buffer.from(this.partial && !isNotice ? `\n${text}` : text);
    let offset = 0;
    let waits = 0;
    while (offset < buf.length) {
      try {
        offset += fs.writeSync(this.fd, buf, offset);
      } catch (err) {
        const code = errorCode(err);
        if ((code === "EAGAIN" || code === "EBUSY") && waits++ < 100) {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
          continue;
        }
        if (offset > 0) this.partial = true;
        return code;
      }
    }
    this.partial = false;
    return undefined;
  }
}

function errorCode(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  return typeof e?.code === "string" ? e.code : typeof e?.message === "string" ? e.message : String(err);
}

let stdoutDestination: LogDestination | undefined;

/**
 * The process's one stdout destination (created on first use). It also takes `error` events of `process.stdout` and
 * `process.stderr` (console writes that failed, e.g. ENOSPC): without a listener such an event would end the process.
 */
export function processLogDestination(fields: Record<string, unknown>): LogDestination {
  if (!stdoutDestination) {
    const destination = new LogDestination(1, fields);
    stdoutDestination = destination;
    for (const stream of [process.stdout, process.stderr]) stream.on("error", (err) => destination.noteDropped(err));
  }
  return stdoutDestination;
}

/**
 * Structured JSON logs (pino) on stdout through {@link processLogDestination}: a log write that fails never ends the
 * process. Child loggers carry `workflowId`, `runId`, `connectionId` where known.
 */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? "info"): pino.Logger {
  const base = { service: "imodel-sync", component: name };
  return pino(
    {
      name,
      level,
      base,
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    },
    processLogDestination({ ...base, name }),
  );
}
export type Logger = pino.Logger;

/**
 * A child logger for the current activity: carries `workflowId`, `activity` and `attempt` (from Temporal's activity
 * context) plus `extra`; outside an activity only `extra`.
 */
export function activityLogger(logger: pino.Logger, extra: Record<string, unknown> = {}): pino.Logger {
  try {
    const info = Context.current().info;
    return logger.child({
      workflowId: info.workflowExecution.workflowId,
      activity: info.activityType,
      attempt: info.attempt,
      ...extra,
    });
  } catch {
    return logger.child(extra);
  }
}
