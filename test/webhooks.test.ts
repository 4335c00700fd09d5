/**
 * Signed webhooks on the real stack (README.md "Webhooks"): a receiver in this test process (on loopback, which the
 * test stack's WEBHOOK_ALLOWED_HOSTS allows) checks every delivery's Standard Webhooks signature with the
 * `standardwebhooks` package. `run.completed` carries the result and each file's counts; a receiver that answers 500
 * twice gets the delivery on the third attempt and the delivery log shows all three; a delivery is redelivered with
 * the same `webhook-id`; `connection.deleted` and `run.failed` are sent; URLs, scopes and visibility are checked.
 */
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createConnection,
  createUser,
  eventually,
  http as api,
  httpAs,
  makeSource,
  SAMPLE,
  waitForRun,
} from "./helpers";

const HVAC = "ifc4_hvac_air_terminal_duct.ifc";

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The payload as `Webhook.verify` returned it (it throws on a bad signature). */
  payload: any;
  /** The status the receiver answered. */
  answered: number;
}

/** A webhook receiver on 127.0.0.1: verifies each request's signature with the secret it is given. */
class Receiver {
  readonly received: Received[] = [];
  readonly rejected: string[] = [];
  private server!: http.Server;
  /** Statuses to answer, in order; then 204. */
  answers: number[] = [];
  secret = "";

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (c: string) => (body += c));
      req.on("end", () => {
        try {
          const payload = new Webhook(this.secret).verify(body, req.headers as Record<string, string>);
          const answered = this.answers.shift() ?? 204;
          this.received.push({ headers: req.headers, body, payload, answered });
          res.writeHead(answered).end(answered >= 400 ? "receiver says no" : "");
        } catch (err) {
          this.rejected.push(`${(err as Error).message}: ${body.slice(0, 100)}`);
          res.writeHead(400).end("bad signature");
        }
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
  }

  url(p = "/hook"): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${p}`;
  }

  ofType(type: string): Received[] {
    return this.received.filter((r) => r.payload.type === type);
  }

  close(): void {
    this.server.close();
  }
}

const receiver = new Receiver();
beforeAll(() => receiver.start());
afterAll(() => receiver.close());

/** A webhook for `iModelId` to the receiver; the receiver takes its secret. */
async function webhook(iModelId: string | undefined, events: string[], apiKey?: string): Promise<any> {
  const body = { url: receiver.url(), events, ...(iModelId ? { iModelId } : {}) };
  const res = apiKey ? await httpAs(apiKey, "POST", "/webhooks", body) : await api("POST", "/webhooks", body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  receiver.secret = res.body.secret;
  return res.body;
}

describe("webhooks", () => {
  it("run.completed arrives signed (Standard Webhooks) with the result and each file's element counts", async () => {
    const source = makeSource("webhook", { [HVAC]: SAMPLE(HVAC), "b.ifc": SAMPLE(HVAC) });
    const { iModelId, connection } = await createConnection(source, [HVAC, "b.ifc"], "webhook run");
    const created = await webhook(iModelId, ["run.completed", "run.failed"]);
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(created.webhook).toMatchObject({
      iModelId,
      scope: "iModel",
      url: receiver.url(),
      events: ["run.completed", "run.failed"],
    });
    expect(JSON.stringify(created.webhook)).not.toContain(created.secret);

    const start = await api("POST", `/connections/${connection.id}/run`);
    const { run } = await waitForRun(start.location!);
    expect(run.result).toBe("Success");
    const [got] = await eventually("run.completed at the receiver", async () => {
      const r = receiver.ofType("run.completed").filter((x) => x.payload.data.run.id === run.id);
      return r.length ? r : undefined;
    });
    expect(receiver.rejected).toEqual([]);
    expect(got.headers["content-type"]).toBe("application/json");
    expect(got.headers["webhook-id"]).toMatch(/^msg_[0-9a-f]{26}$/);
    expect(Number(got.headers["webhook-timestamp"])).toBeGreaterThan(Date.now() / 1000 - 120);
    expect(got.headers["webhook-signature"]).toMatch(/^v1,/);
    expect(got.payload).toMatchObject({
      type: "run.completed",
      data: {
        run: { id: run.id, connectionId: connection.id, iModelId, trigger: "manual", result: "Success" },
        connection: { id: connection.id, displayName: "webhook run" },
      },
    });
    const files = got.payload.data.run.files;
    expect(files.map((f: any) => [f.path, f.result])).toEqual([
      [HVAC, "Success"],
      ["b.ifc", "Success"],
    ]);
    for (const f of files) expect(f.elements).toEqual({ inserted: 7, updated: 0, deleted: 0, unchanged: 0 });
    expect(got.payload.data.run.elements).toEqual({ inserted: 14, updated: 0, deleted: 0, unchanged: 0 });
    // A Success is no failure.
    expect(receiver.ofType("run.failed").filter((x) => x.payload.data.run.id === run.id)).toEqual([]);

    // The delivery log: one delivery, Succeeded at its first attempt (recorded once the receiver has answered).
    const delivery = await eventually("the delivery recorded Succeeded", async () => {
      const log = await api("GET", `/webhooks/${created.webhook.id}/deliveries`);
      expect(log.status).toBe(200);
      const d = log.body.deliveries.find((x: any) => x.payload.data.run.id === run.id);
      return d?.state === "Succeeded" ? d : undefined;
    });
    expect(delivery).toMatchObject({ id: got.headers["webhook-id"], event: "run.completed", state: "Succeeded" });
    expect(delivery.attempts).toMatchObject([{ attempt: 1, redelivery: 0, statusCode: 204 }]);
  });

  it("a receiver answering 500 twice gets the delivery on the third attempt; the log shows all three; redelivery keeps the webhook-id", async () => {
    const source = makeSource("webhook-retry", { [HVAC]: SAMPLE(HVAC) });
    const { iModelId, connection } = await createConnection(source, [HVAC], "webhook retries");
    const created = await webhook(iModelId, ["run.completed"]);
    receiver.answers = [500, 500];
    const start = await api("POST", `/connections/${connection.id}/run`);
    const { run } = await waitForRun(start.location!);
    const mine = () => receiver.ofType("run.completed").filter((x) => x.payload.data.run.id === run.id);
    await eventually("three attempts at the receiver", async () => mine().length >= 3, 60_000);
    expect(mine().map((r) => r.answered)).toEqual([500, 500, 204]);
    // One message: the same webhook-id every time, signed anew each time.
    expect(new Set(mine().map((r) => r.headers["webhook-id"])).size).toBe(1);

    const delivery = await eventually("the delivery Succeeded", async () => {
      const log = await api("GET", `/webhooks/${created.webhook.id}/deliveries`);
      const d = log.body.deliveries[0];
      return d?.state === "Succeeded" ? d : undefined;
    });
    expect(delivery.attempts.map((a: any) => [a.attempt, a.statusCode])).toEqual([
      [1, 500],
      [2, 500],
      [3, 204],
    ]);
    expect(delivery.attempts[0].error).toMatch(/answered 500/);

    // Asked again: delivered again with the same webhook-id, recorded as redelivery 1.
    const again = await api("POST", `/webhooks/${created.webhook.id}/deliveries/${delivery.id}/redeliver`);
    expect(again.status, JSON.stringify(again.body)).toBe(202);
    expect(again.body.delivery).toMatchObject({ id: delivery.id, state: "Pending", redeliveries: 1 });
    await eventually("the redelivery at the receiver", async () => mine().length >= 4);
    expect(mine()[3].headers["webhook-id"]).toBe(delivery.id);
    const after = await eventually("the redelivery Succeeded", async () => {
      const d = (await api("GET", `/webhooks/${created.webhook.id}/deliveries`)).body.deliveries[0];
      return d?.state === "Succeeded" && d.attempts.length === 4 ? d : undefined;
    });
    expect(after.attempts[3]).toMatchObject({ attempt: 1, redelivery: 1, statusCode: 204 });
    const unknown = await api("POST", `/webhooks/${created.webhook.id}/deliveries/msg_unknown/redeliver`);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("DeliveryNotFound");
    expect(connection.id).toBeTruthy();
  });

  it("run.failed for a run with a failed file; connection.deleted when a connection is deleted", async () => {
    const source = makeSource("webhook-fail", { [HVAC]: SAMPLE(HVAC), "gone.ifc": SAMPLE(HVAC) });
    const { iModelId, connection } = await createConnection(source, [HVAC, "gone.ifc"], "webhook failures");
    const created = await webhook(iModelId, ["run.failed", "connection.deleted"]);
    fs.rmSync(path.join(source, "gone.ifc"));
    const { run } = await waitForRun((await api("POST", `/connections/${connection.id}/run`)).location!);
    expect(run.result).toBe("PartialSuccess");
    const [failed] = await eventually("run.failed at the receiver", async () => {
      const r = receiver.ofType("run.failed").filter((x) => x.payload.data.run.id === run.id);
      return r.length ? r : undefined;
    });
    const gone = failed.payload.data.run.files.find((f: any) => f.path === "gone.ifc");
    expect(gone).toMatchObject({
      result: "Error",
      error: { code: "FileNotFound", category: "SourceFile", canUserFix: true, retryable: false },
    });
    expect(receiver.ofType("run.completed").filter((x) => x.payload.data.run.id === run.id)).toEqual([]);

    expect((await api("DELETE", `/connections/${connection.id}?mode=keepData`)).status).toBe(200);
    const [deleted] = await eventually("connection.deleted at the receiver", async () => {
      const r = receiver.ofType("connection.deleted").filter((x) => x.payload.data.connection.id === connection.id);
      return r.length ? r : undefined;
    });
    expect(deleted.payload.data.connection).toMatchObject({
      id: connection.id,
      iModelId,
      status: "Deleted",
      deletion: { mode: "keepData" },
    });
    expect((await api("DELETE", `/webhooks/${created.webhook.id}`)).status).toBe(200);
    expect((await api("GET", `/webhooks/${created.webhook.id}`)).status).toBe(404);
  });

  it("refuses URLs that are not http(s) or whose host the operator did not allow; scopes and visibility", async () => {
    const owner = await createUser("Webhook Owner");
    const outsider = await createUser("Webhook Outsider");
    const iModel = (await httpAs(owner.apiKey, "POST", "/imodels", { name: "webhook scopes" })).body.iModel;
    const post = (key: string, body: unknown) => httpAs(key, "POST", "/webhooks", body);
    const bad = async (url: string, pattern: RegExp) => {
      const r = await post(owner.apiKey, { url, events: ["run.completed"], iModelId: iModel.id });
      expect(r.status, url).toBe(400);
      expect(r.body.error.code).toBe("InvalidWebhookUrl");
      expect(r.body.error.details[0]).toMatchObject({ target: "url" });
      expect(r.body.error.message).toMatch(pattern);
    };
    await bad("ftp://127.0.0.1/x", /http or https/);
    await bad("http://example.com/hook", /not in the server's allow-list/);
    await bad("http://user:pw@127.0.0.1/hook", /user name or password/);
    await bad("not a url", /absolute/);
    const badEvents = await post(owner.apiKey, { url: receiver.url(), events: ["run.started"], iModelId: iModel.id });
    expect(badEvents.status).toBe(400);
    const badSecret = await post(owner.apiKey, {
      url: receiver.url(),
      events: ["run.completed"],
      iModelId: iModel.id,
      secret: "whsec_short",
    });
    expect(badSecret.status).toBe(400);

    // A team member's webhook of the iModel; a given secret is kept.
    const secret = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
    const mine = await post(owner.apiKey, {
      url: receiver.url(),
      events: ["token.expired"],
      iModelId: iModel.id,
      secret,
    });
    expect(mine.status).toBe(201);
    expect(mine.body.secret).toBe(secret);
    // Global webhooks are for administrators.
    const global = await post(owner.apiKey, { url: receiver.url(), events: ["token.expired"] });
    expect(global.status).toBe(403);
    expect(global.body.error.code).toBe("AdminOnly");
    // Outside the team: the iModel and its webhooks do not exist.
    const hidden = await post(outsider.apiKey, { url: receiver.url(), events: ["token.expired"], iModelId: iModel.id });
    expect(hidden.status).toBe(404);
    expect(hidden.body.error.code).toBe("IModelNotFound");
    const id = mine.body.webhook.id;
    const seen = await httpAs(outsider.apiKey, "GET", `/webhooks/${id}`);
    expect(seen.status).toBe(404);
    expect(seen.body.error).toEqual({ code: "WebhookNotFound", message: `Webhook '${id}' does not exist.` });
    expect((await httpAs(outsider.apiKey, "GET", "/webhooks")).body.webhooks.map((w: any) => w.id)).not.toContain(id);
    const listed = await httpAs(owner.apiKey, "GET", `/webhooks?iModelId=${iModel.id}`);
    expect(listed.body.webhooks.map((w: any) => w.id)).toEqual([id]);
    expect(JSON.stringify(listed.body)).not.toContain(secret);
    expect((await httpAs(outsider.apiKey, "DELETE", `/webhooks/${id}`)).status).toBe(404);
    expect((await httpAs(owner.apiKey, "DELETE", `/webhooks/${id}`)).status).toBe(200);
  });
});
