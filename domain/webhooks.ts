/**
 * Webhooks (README.md "Webhooks"): what a subscription is, which events there are, which URLs are allowed, and the
 * body of an event as the Standard Webhooks specification shapes it (`{type, timestamp, data}`). Pure: the records
 * live in lib/webhooks.ts, deliveries are made by workflows/webhooks.ts with activities/webhooks.ts.
 */
import { z } from "zod";
import type { ErrorInfo } from "./errors";
import type { ElementCounts, RunRecord, TaskRecord } from "./model";
import { describedError } from "./task-errors";

/** The events a webhook may subscribe to. */
export const WEBHOOK_EVENTS = [
  "run.completed",
  "run.failed",
  "connection.deleted",
  "token.expiring",
  "token.expired",
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** A subscription: `iModelId` set = events of that iModel only (a team's); absent = every event (administrators'). */
export interface WebhookRecord {
  _id: string;
  iModelId?: string;
  url: string;
  events: WebhookEvent[];
  /** `whsec_` + base64 of the signing key (Standard Webhooks); shown once, when the webhook is created. */
  secret: string;
  description?: string;
  createdBy: string;
  /** ISO 8601 UTC. */
  createdDateTime: string;
}

/** One attempt to deliver an event. */
export interface DeliveryAttempt {
  /** 1 for the first attempt of a delivery (or of a redelivery), counting Temporal's retries. */
  attempt: number;
  /** 0 for the delivery, n for its n-th redelivery. */
  redelivery: number;
  /** ISO 8601 UTC. */
  dateTime: string;
  /** The receiver's HTTP status; absent when no answer came (`error` says why). */
  statusCode?: number;
  error?: string;
  durationMs: number;
}

/** `Pending` while attempts go on; `Succeeded` on a 2xx answer; `Failed` when the attempts ran out or could not start. */
export type DeliveryState = "Pending" | "Succeeded" | "Failed";

/** One event for one webhook: its body is fixed; every attempt signs it anew. `_id` is the `webhook-id` header. */
export interface DeliveryRecord {
  _id: string;
  webhookId: string;
  event: WebhookEvent;
  /** What the event is about, once per event (a run, a connection's deletion, a token). */
  eventId: string;
  /** The JSON body sent, exactly. */
  body: string;
  state: DeliveryState;
  attempts: DeliveryAttempt[];
  /** Times the delivery was asked again (`POST …/redeliver`). */
  redeliveries: number;
  createdDateTime: string;
  /** Set when the state became Succeeded or Failed. */
  completedDateTime?: string;
  /** Why it Failed (the last attempt's error, or why no attempt could start). */
  error?: string;
}

/** Largest accepted URL, in characters. */
export const MAX_WEBHOOK_URL = 2048;

/**
 * Whether a URL's host is allowed by the operator's allow-list (WEBHOOK_ALLOWED_HOSTS): an entry is a host name or
 * address (any port), `host:port` (that port only), `*.domain` (any host below the domain) or `*` (any host). Host
 * names are compared in lower case as written in the URL (no DNS lookup); IPv6 addresses in brackets.
 */
export function hostAllowed(url: URL, allowed: string[]): boolean {
  const host = url.hostname.toLowerCase();
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return allowed.some((entry) => {
    const e = entry.toLowerCase();
    if (e === "*") return true;
    const at = e.lastIndexOf(":");
    const bracketed = e.startsWith("[");
    const hasPort = at > 0 && (!bracketed || e.indexOf("]") < at);
    const pattern = hasPort ? e.slice(0, at) : e;
    if (hasPort && e.slice(at + 1) !== port) return false;
    if (pattern.startsWith("*.")) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
    return host === pattern;
  });
}

/**
 * Why a webhook URL is refused, or undefined when it is accepted: only `http:` and `https:`, at most
 * {@link MAX_WEBHOOK_URL} characters, no credentials in it, and a host the allow-list allows (see {@link hostAllowed}).
 */
export function webhookUrlProblem(text: string, allowed: string[]): string | undefined {
  if (text.length > MAX_WEBHOOK_URL) return `url must be at most ${MAX_WEBHOOK_URL} characters`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return "url must be an absolute http or https URL";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return "url must use http or https";
  if (url.username || url.password) return "url must not carry a user name or password";
  if (!hostAllowed(url, allowed))
    return allowed.length === 0
      ? "no webhook host is allowed on this server (the operator sets WEBHOOK_ALLOWED_HOSTS)"
      : `host '${url.host}' is not in the server's allow-list of webhook hosts (WEBHOOK_ALLOWED_HOSTS)`;
  return undefined;
}

/** A secret: `whsec_` + base64 of 24 to 64 bytes (Standard Webhooks). */
const SECRET = /^whsec_[A-Za-z0-9+/]{32,88}={0,2}$/;

/** `POST /webhooks`: the URL, the events, an iModel (absent: every iModel, administrators only), a secret. */
export const createWebhookBody = z
  .object({
    url: z.string().min(1).max(MAX_WEBHOOK_URL),
    events: z
      .array(z.enum(WEBHOOK_EVENTS))
      .min(1, "subscribe to at least one event")
      .max(WEBHOOK_EVENTS.length)
      .refine((e) => new Set(e).size === e.length, "events must not repeat"),
    iModelId: z.string().min(1).max(200).optional(),
    secret: z
      .string()
      .regex(SECRET, "secret must be whsec_ followed by the base64 of 24 to 64 random bytes")
      .refine((s) => {
        const b64 = s.slice(6);
        const bytes = (b64.length * 3) / 4 - (b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0);
        return bytes >= 24 && bytes <= 64;
      }, "secret must be whsec_ followed by the base64 of 24 to 64 random bytes")
      .optional(),
    description: z.string().trim().max(500).optional(),
  })
  .strict();

/** One file of a run in an event: its task's result, error and element counts. */
export interface RunEventFile {
  sourceFileId: string;
  path: string;
  role: TaskRecord["role"];
  phase: TaskRecord["phase"];
  result: TaskRecord["result"];
  error?: ReturnType<typeof describedError>;
  reason?: ErrorInfo;
  elements: ElementCounts;
}

/** The `data` of `run.completed` and `run.failed`: the run, its result, each file with its counts, and the totals. */
export function runEventData(
  run: RunRecord,
  tasks: TaskRecord[],
  connection: { _id: string; displayName: string } | null,
  iModel: { _id: string; name: string } | null,
) {
  const files: RunEventFile[] = [...tasks]
    .sort((a, b) => a.index - b.index)
    .map((t) => ({
      sourceFileId: t.sourceFileId,
      path: t.path,
      role: t.role,
      phase: t.phase,
      result: t.result,
      ...(t.error ? { error: describedError(t.error) } : {}),
      ...(t.reason ? { reason: t.reason } : {}),
      elements: t.elements,
    }));
  const elements = files.reduce<ElementCounts>(
    (sum, f) => ({
      inserted: sum.inserted + f.elements.inserted,
      updated: sum.updated + f.elements.updated,
      deleted: sum.deleted + f.elements.deleted,
      unchanged: sum.unchanged + f.elements.unchanged,
    }),
    { inserted: 0, updated: 0, deleted: 0, unchanged: 0 },
  );
  return {
    run: {
      id: run._id,
      connectionId: run.connectionId,
      iModelId: run.iModelId,
      trigger: run.trigger,
      kind: run.kind ?? "sync",
      state: run.state,
      result: run.result,
      ...(run.error ? { error: describedError(run.error) } : {}),
      ...(run.reason ? { reason: run.reason } : {}),
      queuedDateTime: run.queuedDateTime,
      ...(run.startDateTime ? { startDateTime: run.startDateTime } : {}),
      ...(run.endDateTime ? { endDateTime: run.endDateTime } : {}),
      ...(run.scheduledFor ? { scheduledFor: run.scheduledFor } : {}),
      workflowId: run.workflowId,
      files,
      elements,
      _links: { self: { href: `/connections/${run.connectionId}/runs/${run._id}` } },
    },
    connection: connection ? { id: connection._id, displayName: connection.displayName } : { id: run.connectionId },
    iModel: iModel ? { id: iModel._id, name: iModel.name } : { id: run.iModelId },
  };
}

/** Whether a run result means failed files (`run.failed`, failure notices): Error or PartialSuccess. */
export function runFailed(result: RunRecord["result"]): boolean {
  return result === "Error" || result === "PartialSuccess";
}
