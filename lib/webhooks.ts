/**
 * Webhook records and the emission of events (README.md "Webhooks"): each event is written once per subscribed
 * webhook as a delivery record (its `_id`, the Standard Webhooks `webhook-id`, is derived from the webhook and the
 * event, so emitting the same event again, e.g. from a retried activity, adds nothing), and a delivery workflow
 * (`webhook-delivery/<deliveryId>`, workflows/webhooks.ts) sends it with retries and backoff. Used by the API
 * (a connection deleted keeping its data) and by the worker's activities (runs, delete jobs, owner tokens).
 */
import { createHash, randomBytes } from "node:crypto";
import { WorkflowExecutionAlreadyStartedError, type Client } from "@temporalio/client";
import type { Collection } from "mongodb";
import { Webhook } from "standardwebhooks";
import type { ConnectionRecord } from "../domain/model";
import type { DeliveryRecord, WebhookEvent, WebhookRecord } from "../domain/webhooks";
import { isDuplicateKey } from "./collections";
import type { Store } from "./db";
import type { Logger } from "./logger";

/** The collections of webhooks and their deliveries. */
export interface WebhookCollections {
  webhooks: Collection<WebhookRecord>;
  deliveries: Collection<DeliveryRecord>;
}

/** The `webhooks` and `webhookDeliveries` collections of the store. */
export function webhookCollections(store: Store): WebhookCollections {
  return {
    webhooks: store.db.collection<WebhookRecord>("webhooks"),
    deliveries: store.db.collection<DeliveryRecord>("webhookDeliveries"),
  };
}

/** Creates the indexes (idempotent). */
export async function ensureWebhookIndexes(c: WebhookCollections): Promise<void> {
  await Promise.all([
    c.webhooks.createIndex({ iModelId: 1 }),
    c.deliveries.createIndex({ webhookId: 1, createdDateTime: -1 }),
  ]);
}

/** A new signing secret: `whsec_` + base64 of 32 random bytes (Standard Webhooks). */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString("base64")}`;
}

/** The delivery id (`webhook-id`) of an event for a webhook: `msg_` + 26 hex digits of a SHA-256 of both. */
export function deliveryIdOf(webhookId: string, eventId: string): string {
  return `msg_${createHash("sha256").update(`${webhookId}\n${eventId}`).digest("hex").slice(0, 26)}`;
}

/**
 * The headers of one delivery attempt, as the Standard Webhooks specification names them (README.md "Webhooks"):
 * `webhook-id` (the delivery's id, the same at every attempt and redelivery), `webhook-timestamp` (seconds since
 * 1970-01-01 UTC, of `at`) and `webhook-signature` (`v1,` + base64 of the HMAC-SHA256 of `<id>.<timestamp>.<body>`
 * keyed with the secret's bytes), computed by the `standardwebhooks` package; with the JSON content type.
 * @param secret `whsec_` + base64 of the key (as {@link newWebhookSecret} makes it).
 * @throws Error when the secret is not base64 after its prefix.
 */
export function signedHeaders(secret: string, deliveryId: string, at: Date, body: string): Record<string, string> {
  return {
    "content-type": "application/json",
    "webhook-id": deliveryId,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": new Webhook(secret).sign(deliveryId, at, body),
  };
}

/** The workflow id of a delivery (`redelivery` 0) or of its n-th redelivery. */
export function deliveryWorkflowId(deliveryId: string, redelivery = 0): string {
  return redelivery === 0
    ? `webhook-delivery/${deliveryId}`
    : `webhook-delivery/${deliveryId}/redelivery-${redelivery}`;
}

/** How long (ms) starting a delivery workflow may take before the delivery is recorded Failed (to be redelivered). */
const START_DEADLINE_MS = 10_000;

/** An event to send to the webhooks that subscribed to it. */
export interface WebhookEventInput {
  type: WebhookEvent;
  /** Unique per event (e.g. `run.completed:<runId>`): the same id never sends twice to one webhook. */
  eventId: string;
  /** The iModels the event concerns: their webhooks get it, and so do the global ones. */
  iModelIds: string[];
  /** The event's `data` for a webhook of `iModelId` (undefined: a global webhook, which may see everything). */
  data: (iModelId: string | undefined) => unknown;
  /** ISO 8601 UTC time of the event (the body's `timestamp`); default now. */
  dateTime?: string;
}

/** What emitting needs. */
export interface WebhookEmitterDeps {
  store: Store;
  temporal: Client;
  taskQueue: string;
  logger: Logger;
}

/** Emits events; {@link createWebhookEmitter}. */
export interface WebhookEmitter {
  /**
   * Records one delivery per subscribed webhook and starts its delivery workflow. A delivery whose workflow cannot be
   * started (Temporal unavailable) is recorded `Failed` with the reason, to be redelivered.
   * @returns the delivery ids (new or already there).
   * @throws MongoDB's errors (nothing is lost: emitting again adds what is missing).
   */
  emit(event: WebhookEventInput): Promise<string[]>;
  /** Starts the delivery workflow of a recorded delivery (`redelivery` 0: its first). */
  startDelivery(delivery: Pick<DeliveryRecord, "_id" | "event">, url: string, redelivery: number): Promise<void>;
}

/**
 * The emitter of webhook events, for the API and the worker's activities (see {@link WebhookEmitter}): deliveries are
 * recorded in MongoDB and sent by `webhookDeliveryWorkflow` on `taskQueue` (README.md "Webhooks").
 */
export function createWebhookEmitter({ store, temporal, taskQueue, logger }: WebhookEmitterDeps): WebhookEmitter {
  const c = webhookCollections(store);

  async function startDelivery(
    delivery: Pick<DeliveryRecord, "_id" | "event">,
    url: string,
    redelivery: number,
  ): Promise<void> {
    try {
      await temporal.connection.withDeadline(Date.now() + START_DEADLINE_MS, () =>
        temporal.workflow.start("webhookDeliveryWorkflow", {
          workflowId: deliveryWorkflowId(delivery._id, redelivery),
          taskQueue,
          args: [{ deliveryId: delivery._id, redelivery }],
          workflowIdReusePolicy: "REJECT_DUPLICATE",
          staticSummary: `Webhook ${delivery.event} to ${new URL(url).host}${redelivery ? ` (redelivery ${redelivery})` : ""}`,
          staticDetails: `Delivery \`${delivery._id}\` of event \`${delivery.event}\` to ${url}`,
        }),
      );
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return;
      throw err;
    }
  }

  async function emit(event: WebhookEventInput): Promise<string[]> {
    const subscribed = (await c.webhooks.find({ events: event.type }).toArray()).filter(
      (w) => w.iModelId === undefined || event.iModelIds.includes(w.iModelId),
    );
    const ids: string[] = [];
    const timestamp = event.dateTime ?? new Date().toISOString();
    for (const webhook of subscribed) {
      const id = deliveryIdOf(webhook._id, event.eventId);
      ids.push(id);
      const record: DeliveryRecord = {
        _id: id,
        webhookId: webhook._id,
        event: event.type,
        eventId: event.eventId,
        body: JSON.stringify({ type: event.type, timestamp, data: event.data(webhook.iModelId) }),
        state: "Pending",
        attempts: [],
        redeliveries: 0,
        createdDateTime: new Date().toISOString(),
      };
      try {
        await c.deliveries.insertOne(record);
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        const existing = await c.deliveries.findOne({ _id: id });
        // Emitted before: its workflow was started then (or the attempt to start it recorded it Failed).
        if (existing && (existing.state !== "Pending" || existing.attempts.length > 0)) continue;
      }
      try {
        await startDelivery(record, webhook.url, 0);
      } catch (err) {
        const message = `the delivery could not be queued: ${(err as Error).message}; redeliver it`;
        logger.warn(
          { deliveryId: id, webhookId: webhook._id, err: (err as Error).message },
          "webhook delivery not queued",
        );
        await c.deliveries.updateOne(
          { _id: id },
          { $set: { state: "Failed", error: message, completedDateTime: new Date().toISOString() } },
        );
      }
    }
    if (ids.length > 0)
      logger.info({ event: event.type, eventId: event.eventId, deliveries: ids.length }, "webhook event");
    return ids;
  }

  return { emit, startDelivery };
}

/** `connection.deleted`: the connection as it is once Deleted (with how it was deleted and when). */
export function connectionDeletedEvent(connection: ConnectionRecord): WebhookEventInput {
  return {
    type: "connection.deleted",
    eventId: `connection.deleted:${connection._id}`,
    iModelIds: [connection.iModelId],
    data: () => ({
      connection: {
        id: connection._id,
        displayName: connection.displayName,
        iModelId: connection.iModelId,
        status: connection.status,
        ...(connection.deletion ? { deletion: connection.deletion } : {}),
        ...(connection.ownerId ? { ownerId: connection.ownerId } : {}),
      },
    }),
  };
}
