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

/** Structured JSON logs (pino). Child loggers carry `workflowId`, `runId`, `connectionId` where known. */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? "info"): pino.Logger {
  return pino({
    name,
    level,
    base: { service: "imodel-sync", component: name },
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
  });
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
