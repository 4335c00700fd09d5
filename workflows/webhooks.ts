/**
 * `webhookDeliveryWorkflow`: sends one event to one webhook (id `webhook-delivery/<deliveryId>`, or
 * `webhook-delivery/<deliveryId>/redelivery-<n>` when asked again), retrying with backoff: 2 s, then three times longer
 * each time, at most an hour apart, for up to a day (README.md "Webhooks"). Deterministic code only.
 */
import { proxyActivities } from "@temporalio/workflow";
import type { DeliveryOutcome, WebhookActivities } from "../activities/webhooks";
import { activityError } from "./activity-errors";

/** One attempt: the receiver has 10 s to answer; attempts follow Temporal's retry policy. */
const delivery = proxyActivities<Pick<WebhookActivities, "deliverWebhook">>({
  startToCloseTimeout: "30 seconds",
  scheduleToCloseTimeout: "1 day",
  retry: {
    initialInterval: "2 seconds",
    backoffCoefficient: 3,
    maximumInterval: "1 hour",
    nonRetryableErrorTypes: ["WebhookHostNotAllowed"],
  },
});

const records = proxyActivities<Pick<WebhookActivities, "failWebhookDelivery">>({
  startToCloseTimeout: "30 seconds",
  retry: { initialInterval: "1 second", backoffCoefficient: 2, maximumInterval: "30 seconds" },
});

/** Input of a delivery: the recorded delivery, and which redelivery this is (0: the first delivery). */
export interface WebhookDeliveryInput {
  deliveryId: string;
  redelivery?: number;
}

/** Delivers; when every attempt failed, records the delivery `Failed` and returns that. */
export async function webhookDeliveryWorkflow(
  input: WebhookDeliveryInput,
): Promise<DeliveryOutcome | { state: "Failed"; error: string }> {
  try {
    return await delivery.deliverWebhook.executeWithOptions(
      // The options above (deep-merged); the summary names the delivery in the Temporal UI.
      { summary: `deliver ${input.deliveryId}` },
      [{ deliveryId: input.deliveryId, ...(input.redelivery ? { redelivery: input.redelivery } : {}) }],
    );
  } catch (err) {
    const error = activityError(err).message;
    await records.failWebhookDelivery({ deliveryId: input.deliveryId, error });
    return { state: "Failed", error };
  }
}
