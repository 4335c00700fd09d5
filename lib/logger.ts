import pino from "pino";

/** Structured JSON logs (pino). Child loggers carry `workflowId`, `runId`, `connectionId` where known. */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? "info"): pino.Logger {
  return pino({ name, level, base: { service: "imodel-sync", component: name } });
}
export type Logger = pino.Logger;
