/**
 * Activities of webhook deliveries (workflows/webhooks.ts): one attempt to send an event to its webhook, signed as the
 * Standard Webhooks specification says (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<HMAC-SHA256>`,
 * with the `standardwebhooks` package), and the end of a delivery whose attempts ran out. Every attempt is recorded on
 * the delivery (README.md "Webhooks").
 */
import { Context } from "@temporalio/activity";
import { ApplicationFailure } from "@temporalio/common";
import { hostAllowed, type DeliveryAttempt } from "../domain/webhooks";
import { activityLogger, type Logger } from "../lib/logger";
import type { WorkerMetrics } from "../lib/metrics";
import type { Store } from "../lib/db";
import { signedHeaders, webhookCollections } from "../lib/webhooks";

export interface WebhookActivityDeps {
  store: Store;
  logger: Logger;
  /** WEBHOOK_ALLOWED_HOSTS (lib/config.ts): checked again at every attempt, so a host removed since is not called. */
  allowedHosts: string[];
  metrics?: WorkerMetrics;
  /** How long one attempt waits for the receiver's answer, in ms. */
  timeoutMs?: number;
}

/** What a delivery attempt ended with. */
export type DeliveryOutcome = { state: "Succeeded"; statusCode: number } | { state: "Cancelled"; reason: string };

/** How much of a receiver's answer is kept in an attempt's error, in characters. */
const ANSWER_EXCERPT = 200;

/**
 * The webhook delivery activities (activity type names `deliverWebhook` and `failWebhookDelivery`), created with their
 * dependencies so the worker and tests can wire them.
 */
export function createWebhookActivities({
  store,
  logger,
  allowedHosts,
  metrics,
  timeoutMs = 10_000,
}: WebhookActivityDeps) {
  const c = webhookCollections(store);
  const log = (extra: Record<string, unknown>) => activityLogger(logger, extra);

  return {
    /**
     * One attempt to deliver: signs the delivery's body anew (a fresh timestamp) and POSTs it to the webhook's URL,
     * without following redirects. A 2xx answer completes the delivery `Succeeded`. Any other answer, no answer within
     * the timeout, or a host no longer allowed throws (retryable, so Temporal tries again with its backoff; a host not
     * allowed is not retryable). Each attempt is recorded. A delivery whose webhook was deleted is not sent.
     */
    async deliverWebhook(input: { deliveryId: string; redelivery?: number }): Promise<DeliveryOutcome> {
      const redelivery = input.redelivery ?? 0;
      const delivery = await c.deliveries.findOne({ _id: input.deliveryId });
      if (!delivery) return { state: "Cancelled", reason: "the delivery has no record" };
      const webhook = await c.webhooks.findOne({ _id: delivery.webhookId });
      const l = log({ deliveryId: delivery._id, webhookId: delivery.webhookId, event: delivery.event });
      if (!webhook) {
        await c.deliveries.updateOne(
          { _id: delivery._id },
          {
            $set: {
              state: "Failed",
              error: "the webhook was deleted; not sent",
              completedDateTime: new Date().toISOString(),
            },
          },
        );
        return { state: "Cancelled", reason: "the webhook was deleted" };
      }
      const attempt = Context.current().info.attempt;
      const started = new Date();
      const record = async (fields: Pick<DeliveryAttempt, "statusCode" | "error">) => {
        const entry: DeliveryAttempt = {
          attempt,
          redelivery,
          dateTime: started.toISOString(),
          durationMs: Date.now() - started.getTime(),
          ...fields,
        };
        await c.deliveries.updateOne({ _id: delivery._id }, { $push: { attempts: entry } });
        metrics?.webhookDeliveries.inc({ event: delivery.event, outcome: fields.error ? "Failed" : "Succeeded" });
      };
      const url = new URL(webhook.url);
      if (!hostAllowed(url, allowedHosts)) {
        const error = `host '${url.host}' is no longer in the server's allow-list of webhook hosts (WEBHOOK_ALLOWED_HOSTS)`;
        await record({ error });
        throw ApplicationFailure.nonRetryable(error, "WebhookHostNotAllowed");
      }
      let statusCode: number | undefined;
      let error: string | undefined;
      try {
        const res = await fetch(webhook.url, {
          method: "POST",
          redirect: "manual",
          headers: {
            "user-agent": "imodel-sync-webhooks",
            ...signedHeaders(webhook.secret, delivery._id, started, delivery.body),
          },
          body: delivery.body,
          signal: AbortSignal.timeout(timeoutMs),
        });
        statusCode = res.status;
        const answer = await res.text().catch(() => "");
        if (res.status < 200 || res.status > 299)
          error = `the receiver answered ${res.status}${answer ? `: ${answer.slice(0, ANSWER_EXCERPT)}` : ""}`;
      } catch (err) {
        const e = err as Error & { cause?: { code?: string; message?: string } };
        error =
          e.name === "TimeoutError"
            ? `no answer within ${timeoutMs / 1000} s`
            : `the request failed: ${e.cause?.code ?? e.cause?.message ?? e.message}`;
      }
      await record({ ...(statusCode !== undefined ? { statusCode } : {}), ...(error ? { error } : {}) });
      if (error) {
        l.info({ attempt, redelivery, statusCode, error }, "webhook attempt failed; retried after the backoff");
        throw ApplicationFailure.retryable(error, "WebhookDeliveryFailed");
      }
      await c.deliveries.updateOne(
        { _id: delivery._id },
        { $set: { state: "Succeeded", completedDateTime: new Date().toISOString() }, $unset: { error: "" } },
      );
      l.info({ attempt, redelivery, statusCode }, "webhook delivered");
      return { state: "Succeeded", statusCode: statusCode! };
    },

    /** Ends a delivery whose attempts ran out (or whose host is not allowed): state `Failed` with the last error. */
    async failWebhookDelivery(input: { deliveryId: string; error: string }): Promise<void> {
      await c.deliveries.updateOne(
        { _id: input.deliveryId },
        { $set: { state: "Failed", error: input.error, completedDateTime: new Date().toISOString() } },
      );
      log({ deliveryId: input.deliveryId }).warn({ error: input.error }, "webhook delivery failed");
    },
  };
}

export type WebhookActivities = ReturnType<typeof createWebhookActivities>;
