/**
 * Webhooks (README.md "Webhooks"):
 * - `POST /webhooks` {url, events, iModelId?, secret?, description?} → 201 {webhook, secret}: a subscription to the
 *   events of one iModel (any member of its team, or an administrator) or, without `iModelId`, of every iModel
 *   (administrators only: 403 `AdminOnly`). The URL must be http(s) and its host in the operator's allow-list
 *   (WEBHOOK_ALLOWED_HOSTS; 400 `InvalidWebhookUrl` otherwise). The secret is generated when not given and shown
 *   in this answer only;
 * - `GET /webhooks` (`?iModelId=`, paged) → {webhooks}: those the caller may see (their iModels' ones; all for an
 *   administrator); `GET /webhooks/{id}` → {webhook}; `DELETE /webhooks/{id}` → 200 {webhook} (its deliveries go too);
 * - `GET /webhooks/{id}/deliveries` (paged, newest first) → {deliveries}: each delivery with its attempts;
 * - `POST /webhooks/{id}/deliveries/{deliveryId}/redeliver` → 202 {delivery}: sends the same event again (same
 *   `webhook-id`), refused with 409 `DeliveryInProgress` while it is being delivered.
 * A webhook of an iModel the caller may not see, and a global one for anyone but an administrator, answers like an
 * unknown id (404 `WebhookNotFound`), as iModels do (docs/product-rules.md "Teams").
 */
import { randomUUID } from "node:crypto";
import { Router, type Request } from "express";
import { z } from "zod";
import { ApiError } from "../domain/errors";
import { isAdmin } from "../domain/users";
import { createWebhookBody, webhookUrlProblem, type DeliveryRecord, type WebhookRecord } from "../domain/webhooks";
import type { Config } from "../lib/config";
import type { Store } from "../lib/db";
import { withRecord } from "../lib/record-writes";
import { webhookCollections, newWebhookSecret, type WebhookEmitter } from "../lib/webhooks";
import { currentUser, viewerOf } from "./auth";
import { listPage, parse, route } from "./http";
import { loadIModel } from "./lookups";
import { pagingQuery } from "../domain/schemas";
import { findById } from "../lib/db";

export interface WebhookDeps {
  config: Config;
  store: Store;
  emitter: WebhookEmitter;
}

/** A webhook as the API shows it: never its secret. */
export function webhookJson(w: WebhookRecord) {
  return {
    id: w._id,
    ...(w.iModelId ? { iModelId: w.iModelId } : {}),
    scope: w.iModelId ? "iModel" : "global",
    url: w.url,
    events: w.events,
    ...(w.description ? { description: w.description } : {}),
    createdBy: w.createdBy,
    createdDateTime: w.createdDateTime,
    _links: {
      self: { href: `/webhooks/${w._id}` },
      deliveries: { href: `/webhooks/${w._id}/deliveries` },
      ...(w.iModelId ? { iModel: { href: `/imodels/${w.iModelId}` } } : {}),
    },
  };
}

/** A delivery as the API shows it: the event's body parsed, the attempts as recorded. */
export function deliveryJson(d: DeliveryRecord) {
  return {
    id: d._id,
    webhookId: d.webhookId,
    event: d.event,
    eventId: d.eventId,
    state: d.state,
    ...(d.error ? { error: d.error } : {}),
    attempts: d.attempts,
    redeliveries: d.redeliveries,
    createdDateTime: d.createdDateTime,
    ...(d.completedDateTime ? { completedDateTime: d.completedDateTime } : {}),
    payload: JSON.parse(d.body) as unknown,
    _links: {
      webhook: { href: `/webhooks/${d.webhookId}` },
      redeliver: { href: `/webhooks/${d.webhookId}/deliveries/${d._id}/redeliver`, method: "POST" },
    },
  };
}

const listWebhooksQuery = pagingQuery.extend({ iModelId: z.string().min(1).max(200).optional() });

const webhookNotFound = (id: string) => new ApiError("WebhookNotFound", `Webhook '${id}' does not exist.`);

/** The routes of webhooks and their deliveries (see the module comment); mounted after authentication. */
export function webhooksRouter({ config, store, emitter }: WebhookDeps): Router {
  const router = Router();
  const c = webhookCollections(store);

  /** The webhook, if the caller may see it (see the module comment); 404 `WebhookNotFound` as for an unknown id. */
  async function loadWebhook(req: Request, id: string): Promise<WebhookRecord> {
    const w = await c.webhooks.findOne({ _id: id });
    if (!w) throw webhookNotFound(id);
    if (isAdmin(currentUser(req))) return w;
    if (!w.iModelId || !(await viewerOf(req).canSee(w.iModelId))) throw webhookNotFound(id);
    return w;
  }

  router.post(
    "/webhooks",
    route(async (req, res) => {
      const body = parse(createWebhookBody, req.body);
      const me = currentUser(req);
      if (body.iModelId) await loadIModel(store, body.iModelId, viewerOf(req));
      else if (!isAdmin(me))
        throw new ApiError(
          "AdminOnly",
          "Only an administrator may create a webhook for every iModel; give the iModelId of one of your iModels.",
        );
      const problem = webhookUrlProblem(body.url, config.webhookAllowedHosts);
      if (problem)
        throw new ApiError("InvalidWebhookUrl", `The webhook URL is refused: ${problem}.`, [
          { code: "InvalidWebhookUrl", message: problem, target: "url" },
        ]);
      const record: WebhookRecord = {
        _id: randomUUID(),
        ...(body.iModelId ? { iModelId: body.iModelId } : {}),
        url: body.url,
        events: body.events,
        secret: body.secret ?? newWebhookSecret(),
        ...(body.description ? { description: body.description } : {}),
        createdBy: me._id,
        createdDateTime: new Date().toISOString(),
      };
      await c.webhooks.insertOne(record);
      req.log.info({ webhookId: record._id, iModelId: record.iModelId, events: record.events }, "webhook created");
      res
        .status(201)
        .location(`/webhooks/${record._id}`)
        .json({ webhook: webhookJson(record), secret: record.secret });
    }),
  );

  router.get(
    "/webhooks",
    route(async (req, res) => {
      const q = parse(listWebhooksQuery, req.query);
      if (q.iModelId) await loadIModel(store, q.iModelId, viewerOf(req));
      const visible = q.iModelId ? undefined : await viewerOf(req).visibleIModels();
      const filter = q.iModelId ? { iModelId: q.iModelId } : visible ? { iModelId: visible } : {};
      const { items, _links } = await listPage(req, c.webhooks, filter, { createdDateTime: 1, _id: 1 }, q, {
        iModelId: q.iModelId,
      });
      res.json({ webhooks: items.map(webhookJson), _links });
    }),
  );

  router.get(
    "/webhooks/:id",
    route(async (req, res) => {
      res.json({ webhook: webhookJson(await loadWebhook(req, req.params.id)) });
    }),
  );

  router.delete(
    "/webhooks/:id",
    route(async (req, res) => {
      const w = await loadWebhook(req, req.params.id);
      await c.webhooks.deleteOne({ _id: w._id });
      await c.deliveries.deleteMany({ webhookId: w._id });
      req.log.info({ webhookId: w._id }, "webhook deleted");
      res.json({ webhook: webhookJson(w) });
    }),
  );

  router.get(
    "/webhooks/:id/deliveries",
    route(async (req, res) => {
      const w = await loadWebhook(req, req.params.id);
      const q = parse(pagingQuery, req.query);
      const { items, _links } = await listPage(
        req,
        c.deliveries,
        { webhookId: w._id },
        { createdDateTime: -1, _id: 1 },
        q,
      );
      res.json({ deliveries: items.map(deliveryJson), _links });
    }),
  );

  router.post(
    "/webhooks/:id/deliveries/:deliveryId/redeliver",
    route(async (req, res) => {
      const w = await loadWebhook(req, req.params.id);
      const notFound = () =>
        new ApiError("DeliveryNotFound", `Delivery '${req.params.deliveryId}' of webhook '${w._id}' does not exist.`);
      const found = await findById(c.deliveries, req.params.deliveryId, (d) => d.webhookId === w._id);
      if (!found) throw notFound();
      // Under the delivery's lock: two requests at once make one redelivery.
      const { delivery, redelivery } = await withRecord(
        store.db,
        c.deliveries,
        `webhook-delivery/${found._id}`,
        found._id,
        async (current, write) => {
          if (current.state === "Pending")
            throw new ApiError(
              "DeliveryInProgress",
              `Delivery '${current._id}' is being delivered (attempts go on with backoff); redeliver it once it has ended.`,
            );
          const n = current.redeliveries + 1;
          return {
            delivery: await write({
              $set: { state: "Pending", redeliveries: n },
              $unset: ["error", "completedDateTime"],
            }),
            redelivery: n,
          };
        },
        { notFound },
      );
      try {
        await emitter.startDelivery(delivery, w.url, redelivery);
      } catch (err) {
        await c.deliveries.updateOne(
          { _id: delivery._id },
          {
            $set: {
              state: "Failed",
              error: `the redelivery could not be queued: ${(err as Error).message}`,
              completedDateTime: new Date().toISOString(),
            },
          },
        );
        throw err;
      }
      req.log.info({ webhookId: w._id, deliveryId: delivery._id, redelivery }, "webhook redelivery queued");
      res
        .status(202)
        .location(`/webhooks/${w._id}/deliveries`)
        .json({ delivery: deliveryJson(delivery) });
    }),
  );

  return router;
}
