/**
 * Owner tokens (docs/product-rules.md "Owner and token"), the real `ownerTokenWorkflow` code:
 *
 * 1. The 30/10-day rules with time skipping: Temporal's Java test server (Maven `io.temporal:temporal-test-server`,
 *    fetched by scripts/ensure-tools.sh) runs the workflow while a worker in this process runs the real activities
 *    against the test stack's FerretDB (a database of its own) and the test SMTP server. Visit on day 15: no change;
 *    visit on day 25: refreshed to day 55; no visit: a warning, then expiry on day 30 with exactly one email naming the
 *    owner's connection; a visit after expiry: a fresh token.
 * 2. End to end on the real stack (dev server; the Java server has no Schedules): the owner's token workflow is
 *    restarted with scaled durations (seconds), expires, the owner gets one email, the connection shows it, and the
 *    scheduled run fails at start with `UserNotAuthenticated` touching no file; the owner's next request issues a fresh
 *    token and scheduled runs work again.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { TestWorkflowEnvironment } from "@temporalio/testing";
import { Runtime, DefaultLogger, Worker } from "@temporalio/worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMailer, type Mailer } from "../activities/email";
import { createOwnerActivities } from "../activities/owners";
import type { ConnectionRecord, IModelRecord } from "../domain/model";
import { DAY_MS } from "../domain/token";
import type { UserRecord } from "../domain/users";
import { peopleCollections, ensurePeopleIndexes } from "../lib/collections";
import { openStore, type Store } from "../lib/db";
import { createLogger } from "../lib/logger";
import { ownerTokenQuery, ownerTokenWorkflow, ownerTokenWorkflowId, ownerVisitSignal } from "../workflows/owner-token";
import {
  eventually,
  http,
  httpAs,
  createUser,
  ownDatabaseUri,
  makeSource,
  ROOT,
  SAMPLE,
  stack,
  toolPath,
  waitForMails,
  waitForRun,
  triggerSchedule,
  useTemporalClient,
} from "./helpers";

const HOUR = 3_600_000;

describe("owner token workflow: 30/10-day rules with time skipping (Java test server)", () => {
  let env: TestWorkflowEnvironment;
  let store: Store;
  let mailer: Mailer;
  let worker: Worker;
  let running: Promise<void>;
  const taskQueue = "owner-token-test";
  const runId = `${Date.now()}`;

  /** A user owning one connection of one iModel, straight into the test database (no API visit involved). */
  async function seedOwner(name: string): Promise<{ user: UserRecord; connection: ConnectionRecord }> {
    const people = peopleCollections(store);
    const id = `${name.toLowerCase()}-${runId}`;
    const user: UserRecord = {
      _id: id,
      email: `${id}@tests.example`,
      name,
      role: "user",
      apiKeyHash: `hash-${id}`,
      createdDateTime: new Date().toISOString(),
    };
    await people.users.insertOne(user);
    const iModel: IModelRecord = {
      _id: `m-${id}`,
      name: `${name}'s iModel`,
      location: { type: "local", path: "/nowhere.bim" },
      createdDateTime: user.createdDateTime,
    };
    await store.imodels.insertOne(iModel);
    const connection: ConnectionRecord = {
      _id: `c-${id}`,
      iModelId: iModel._id,
      displayName: `${name}'s structural model`,
      source: { type: "local", path: "/nowhere" },
      sourceFiles: [],
      definesGcs: false,
      status: "Active",
      createdDateTime: user.createdDateTime,
      ownerId: user._id,
      owner: { id: user._id, email: user.email, name },
      schedule: {
        type: "daily",
        time: "02:30",
        timeZone: "Europe/Berlin",
        revision: 1,
        paused: false,
        updatedDateTime: user.createdDateTime,
      },
    };
    await store.connections.insertOne(connection);
    return { user, connection };
  }

  const tokenOf = async (userId: string) => (await peopleCollections(store).users.findOne({ _id: userId }))?.token;

  beforeAll(async () => {
    const started = Date.now();
    // One Runtime per process: quiet its logger before the first worker or test environment creates it.
    try {
      Runtime.install({ logger: new DefaultLogger("WARN") });
    } catch {
      /* already installed */
    }
    env = await TestWorkflowEnvironment.createTimeSkipping({
      server: {
        executable: { type: "existing-path", path: toolPath("temporal-test-server", "TEMPORAL_TEST_SERVER_BIN") },
      },
    });
    store = await openStore(ownDatabaseUri("imodelsync_tokens"));
    await ensurePeopleIndexes(peopleCollections(store));
    const logger = createLogger("owner-token-test", "warn");
    mailer = createMailer({
      smtpUrl: stack().env.SMTP_URL,
      from: "imodel-sync tests <tests@tests.example>",
      outboxDir: os.tmpdir(),
      logger,
    });
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowsPath: path.join(ROOT, "workflows", "owner-token.ts"),
      activities: createOwnerActivities({ store, logger, mailer, publicApiUrl: stack().apiUrl }),
    });
    running = worker.run();
    console.log(`time-skipping environment ready in ${Date.now() - started} ms`);
  }, 180_000);

  afterAll(async () => {
    worker?.shutdown();
    await running?.catch(() => undefined);
    await env?.teardown();
    mailer?.close();
    if (store) {
      await store.db.dropDatabase().catch(() => undefined);
      await store.close();
    }
  }, 60_000);

  it("visit on day 15 changes nothing; visit on day 25 refreshes the token to day 55", async () => {
    const { user } = await seedOwner("Vera");
    const handle = await env.client.workflow.start(ownerTokenWorkflow, {
      workflowId: ownerTokenWorkflowId(user._id),
      taskQueue,
      args: [{ userId: user._id }],
    });
    const first = await eventually("the first token", async () => (await tokenOf(user._id)) ?? null);
    const day0 = Date.parse(first.issuedDateTime);
    expect(first.state).toBe("Valid");
    expect(Date.parse(first.expiresDateTime) - day0).toBe(30 * DAY_MS);
    expect(Date.parse(first.refreshFromDateTime) - day0).toBe(20 * DAY_MS);

    await env.sleep(15 * DAY_MS);
    expect(await env.currentTimeMs()).toBeGreaterThanOrEqual(day0 + 15 * DAY_MS);
    await handle.signal(ownerVisitSignal, {});
    const day15 = await eventually("the day-15 visit to be received", async () => {
      const q = await handle.query(ownerTokenQuery);
      return q.visits >= 1 ? q : null;
    });
    expect(day15.state).toBe("Valid");
    expect(Date.parse(day15.expiresAt)).toBe(day0 + 30 * DAY_MS); // unchanged
    expect(await tokenOf(user._id)).toEqual(first);

    await env.sleep(10 * DAY_MS);
    const visitAt = await env.currentTimeMs();
    expect(visitAt - day0).toBeGreaterThanOrEqual(25 * DAY_MS);
    expect(visitAt - day0).toBeLessThan(26 * DAY_MS);
    await handle.signal(ownerVisitSignal, {});
    const refreshed = await eventually("the refreshed token in the user's record", async () => {
      const t = await tokenOf(user._id);
      return t && t.issuedDateTime !== first.issuedDateTime ? t : null;
    });
    const issued = Date.parse(refreshed.issuedDateTime);
    expect(refreshed.state).toBe("Valid");
    expect(issued - visitAt).toBeGreaterThanOrEqual(0);
    expect(issued - visitAt).toBeLessThan(HOUR);
    expect(Date.parse(refreshed.expiresDateTime) - day0).toBeGreaterThanOrEqual(55 * DAY_MS);
    expect(Date.parse(refreshed.expiresDateTime) - day0).toBeLessThan(55 * DAY_MS + HOUR);
    const q = await handle.query(ownerTokenQuery);
    expect(q.expiresAt).toBe(refreshed.expiresDateTime);
    // The owner's connections show the new expiry too.
    const c = await store.connections.findOne({ ownerId: user._id });
    expect(c?.ownerToken).toEqual({ state: "Valid", expiresDateTime: refreshed.expiresDateTime });
    await handle.terminate("test done");
  });

  it("without a visit: a warning, then expiry on day 30 with exactly one email; a visit after expiry issues a fresh token", async () => {
    const { user, connection } = await seedOwner("Otto");
    const handle = await env.client.workflow.start(ownerTokenWorkflow, {
      workflowId: ownerTokenWorkflowId(user._id),
      taskQueue,
      args: [{ userId: user._id }],
    });
    const first = await eventually("the first token", async () => (await tokenOf(user._id)) ?? null);
    const day0 = Date.parse(first.issuedDateTime);

    await env.sleep(29 * DAY_MS);
    const warnings = await waitForMails(user.email, 1);
    expect(warnings).toHaveLength(1);
    expect(warnings[0].subject).toMatch(/token expires on/);
    expect((await tokenOf(user._id))?.state).toBe("Valid");

    await env.sleep(2 * DAY_MS); // day 31
    const expired = await eventually("the Expired mirror", async () => {
      const t = await tokenOf(user._id);
      return t?.state === "Expired" ? t : null;
    });
    expect(Date.parse(expired.expiresDateTime)).toBe(day0 + 30 * DAY_MS);
    const mails = await waitForMails(user.email, 2);
    const expiry = mails.filter((m) => /expired/.test(m.subject));
    expect(expiry).toHaveLength(1);
    expect(expiry[0].to).toEqual([user.email]);
    expect(expiry[0].subject).toBe(
      `Your imodel-sync token expired: scheduled syncs of "${connection.displayName}" fail`,
    );
    expect(expiry[0].text).toContain(`"${connection.displayName}" (connection ${connection._id})`);
    expect(expiry[0].text).toContain("UserNotAuthenticated");
    expect((await store.connections.findOne({ _id: connection._id }))?.ownerToken?.state).toBe("Expired");
    expect((await handle.query(ownerTokenQuery)).state).toBe("Expired");

    // Days pass without a visit: still one email.
    await env.sleep(5 * DAY_MS);
    expect((await waitForMails(user.email, 2, 5_000, 1_000)).filter((m) => /expired/.test(m.subject))).toHaveLength(1);

    // A visit after expiry: a fresh 30-day token from the visit.
    const visitAt = await env.currentTimeMs();
    await handle.signal(ownerVisitSignal, {});
    const fresh = await eventually("a fresh token", async () => {
      const t = await tokenOf(user._id);
      return t?.state === "Valid" ? t : null;
    });
    expect(Date.parse(fresh.issuedDateTime) - visitAt).toBeLessThan(HOUR);
    expect(Date.parse(fresh.expiresDateTime) - Date.parse(fresh.issuedDateTime)).toBe(30 * DAY_MS);
    expect((await store.connections.findOne({ _id: connection._id }))?.ownerToken?.state).toBe("Valid");
    await handle.terminate("test done");
  });
});

describe("expired owner token on the real stack: scheduled runs fail, the owner's next request renews it", () => {
  const temporalClient = useTemporalClient();

  it("expires, emails once, refuses the scheduled run with UserNotAuthenticated, and works again after a visit", async () => {
    const temporal = temporalClient();
    const { user, apiKey } = await createUser("Tess Token");
    const as = (method: string, p: string, body?: unknown) => httpAs(apiKey, method, p, body);
    const source = makeSource("token", { "hvac.ifc": SAMPLE("ifc4_hvac_air_terminal_duct.ifc") });
    const m = await as("POST", "/imodels", { name: "token iModel" });
    const c = await as("POST", "/connections", {
      iModelId: m.body.iModel.id,
      displayName: "Token HVAC",
      source: { type: "local", path: source },
      sourceFiles: [{ path: "hvac.ifc", connectorType: "IFC" }],
    });
    expect(c.status).toBe(201);
    const connection = c.body.connection;
    expect(connection.owner.id).toBe(user.id);
    expect(
      (
        await as("PUT", `/connections/${connection.id}/schedule`, {
          type: "daily",
          time: "02:30",
          timeZone: "Europe/Berlin",
        })
      ).status,
    ).toBe(200);
    // Repair path for the dev server's transient "already completed" (see triggerSchedule): by the admin, so it is not
    // a visit of the owner.
    // An identical PUT changes nothing, so the schedule is changed and changed back (each a whole new spec).
    const reapplySchedule = async () => {
      for (const time of ["02:31", "02:30"]) {
        expect(
          (
            await http("PUT", `/connections/${connection.id}/schedule`, {
              type: "daily",
              time,
              timeZone: "Europe/Berlin",
            })
          ).status,
        ).toBe(200);
      }
    };

    // Replace the token workflow the API started at the user's first request by one with scaled durations.
    const lifetimeMs = 6_000;
    await temporal.workflow.start(ownerTokenWorkflow, {
      workflowId: ownerTokenWorkflowId(user.id),
      taskQueue: "imodel-sync",
      args: [{ userId: user.id, lifetimeMs, refreshWindowMs: 3_000, warningBeforeMs: 0 }],
      workflowIdConflictPolicy: "TERMINATE_EXISTING",
    });
    // No request by the user from here on until the visit below (the admin's requests are the admin's visits).
    const expiredConnection = await eventually(
      "the connection to show the expired token",
      async () => {
        const r = await http("GET", `/connections/${connection.id}`);
        return r.body.connection.owner.tokenStatus === "Expired" ? r.body.connection : null;
      },
      30_000,
      300,
    );
    expect(expiredConnection.owner.tokenExpiresDateTime).toBeDefined();
    const mails = await waitForMails(user.email, 1, 20_000, 1_500);
    expect(mails).toHaveLength(1);
    expect(mails[0].subject).toBe(`Your imodel-sync token expired: scheduled syncs of "Token HVAC" fail`);
    expect(mails[0].text).toContain(`"Token HVAC" (connection ${connection.id})`);

    // The scheduled run fails at start: result Error, code UserNotAuthenticated, no task, no file touched.
    const bim = m.body.iModel.location.path as string;
    await triggerSchedule(temporal, `schedule/${connection.id}`, undefined, reapplySchedule);
    const refusedRun = await eventually("the refused scheduled run", async () => {
      const runs = await http("GET", `/connections/${connection.id}/runs`);
      return runs.body.runs.find((r: any) => r.trigger === "schedule") ?? null;
    });
    expect(refusedRun).toMatchObject({ state: "Completed", result: "Error", trigger: "schedule", ownerId: user.id });
    expect(refusedRun.error.code).toBe("UserNotAuthenticated");
    expect(refusedRun.jobs).toEqual([]);
    expect(fs.existsSync(bim)).toBe(false); // never written: no file was touched
    const shown = (await http("GET", `/connections/${connection.id}`)).body.connection;
    expect(shown.schedule.lastRun).toMatchObject({
      runId: refusedRun.id,
      outcome: "Refused",
      error: { code: "UserNotAuthenticated" },
    });
    expect(shown._links.lastRun.href).toBe(`/connections/${connection.id}/runs/${refusedRun.id}`);

    // The owner comes back: any request is a visit; a fresh token is issued and scheduled runs work again.
    expect((await as("GET", "/users/me")).status).toBe(200);
    await eventually(
      "a fresh token",
      async () => {
        const r = await http("GET", `/connections/${connection.id}`);
        return r.body.connection.owner.tokenStatus === "Valid" ? true : null;
      },
      15_000,
      100,
    );
    await triggerSchedule(temporal, `schedule/${connection.id}`, undefined, reapplySchedule);
    const okRun = await eventually("a queued scheduled run", async () => {
      const runs = await http("GET", `/connections/${connection.id}/runs`);
      return runs.body.runs.find((r: any) => r.trigger === "schedule" && r.id !== refusedRun.id) ?? null;
    });
    expect(okRun.ownerId).toBe(user.id);
    // The scaled token would expire again in seconds: end its workflow (the mirror stays as it is).
    await temporal.workflow.getHandle(ownerTokenWorkflowId(user.id)).terminate("scaled test token done");
    const { run } = await waitForRun(`/connections/${connection.id}/runs/${okRun.id}`);
    expect(run.result).toBe("Success");
    expect(fs.existsSync(bim)).toBe(true);
    // Still exactly one expiry email.
    expect((await waitForMails(user.email, 1)).filter((x) => /expired/.test(x.subject))).toHaveLength(1);
  });
});
