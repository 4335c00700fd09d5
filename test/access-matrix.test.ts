/**
 * The authorization matrix (README.md "Authorization matrix", docs/product-rules.md "Teams"): every route of the API,
 * called by each kind of caller, answers the status the README's table gives. The table is read from README.md itself;
 * every route the API registers (api/*.ts) must have a row. Every 404 a caller outside the team gets is compared with
 * the answer to the same request with unknown ids: the same code and message, so ids cannot be probed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { createUser, http, httpAs, makeSource, ROOT, SAMPLE, waitForRun } from "./helpers";

const COLUMNS = [
  "no key",
  "revoked key",
  "non-member",
  "member, never interacted",
  "member",
  "owner",
  "manager",
  "admin",
] as const;
type Column = (typeof COLUMNS)[number];

/** The rows of README.md's authorization matrix: route label → status per column. */
function readMatrix(): Map<string, Record<Column, number>> {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
  const start = readme.indexOf("\n### Authorization matrix\n");
  if (start < 0) throw new Error("README.md has no '### Authorization matrix' section");
  const lines = readme.slice(start).split("\n");
  const first = lines.findIndex((l) => l.startsWith("|"));
  const table: string[] = [];
  for (let i = first; i < lines.length && lines[i].startsWith("|"); i++) table.push(lines[i]);
  const cells = (line: string) =>
    line
      .slice(1, -1)
      .split("|")
      .map((c) => c.trim());
  const header = cells(table[0]);
  expect(header).toEqual(["route", ...COLUMNS]);
  const rows = new Map<string, Record<Column, number>>();
  for (const line of table.slice(2)) {
    const [label, ...statuses] = cells(line);
    expect(statuses, label).toHaveLength(COLUMNS.length);
    expect(rows.has(label), `row '${label}' appears twice`).toBe(false);
    rows.set(
      label,
      Object.fromEntries(
        COLUMNS.map((c, i) => {
          expect(statuses[i], `${label} / ${c}`).toMatch(/^\d{3}$/);
          return [c, Number(statuses[i])];
        }),
      ) as Record<Column, number>,
    );
  }
  return rows;
}

/** `METHOD /path/{param}` of every route api/*.ts registers (`app.get("/x/:id", ...)`, `router.post(...)`). */
function registeredRoutes(): string[] {
  const dir = path.join(ROOT, "api");
  const routes = new Set<string>();
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".ts"))) {
    const text = fs.readFileSync(path.join(dir, file), "utf8");
    for (const m of text.matchAll(/\b(?:app|router)\.(get|post|put|patch|delete)\(\s*"(\/[^"]*)"/g))
      routes.add(`${m[1].toUpperCase()} ${m[2].replace(/:(\w+)/g, "{$1}")}`);
  }
  return [...routes].sort();
}

/** `METHOD /path` of a row label such as "`DELETE /connections/{id}` (`mode=keepData`)" (the query left out). */
const routeOfLabel = (label: string) => /^`([A-Z]+ [^`?]+)/.exec(label)![1];

interface World {
  iModelId: string;
  /** Owned by the owner; maps f1.ifc and f2.ifc. */
  connection: any;
  /** A completed run of the connection (shared world only). */
  runId?: string;
  /** A webhook of the iModel, made by its manager. */
  webhookId: string;
}

interface Principal {
  column: Column;
  /** null: no authorization header. */
  apiKey: string | null;
  userId: string;
}

interface Call {
  method: string;
  path: string;
  body?: unknown;
}

const HVAC = SAMPLE("ifc4_hvac_air_terminal_duct.ifc");

describe("authorization matrix", () => {
  it("every route x every caller answers the status README.md gives (0 mismatches)", async () => {
    const matrix = readMatrix();
    // Every route the API registers has a row, and every row names a route the API has.
    expect([...new Set([...matrix.keys()].map(routeOfLabel))].sort()).toEqual(registeredRoutes());

    const folder = makeSource("matrix", Object.fromEntries([1, 2, 3].map((i) => [`f${i}.ifc`, HVAC])));
    const [manager, owner, member, nonMember, revoked, target, recipient] = await Promise.all([
      createUser("Matrix Manager"),
      createUser("Matrix Owner"),
      createUser("Matrix Member"),
      createUser("Matrix Outsider"),
      createUser("Matrix Revoked"),
      createUser("Matrix Target"),
      createUser("Matrix Recipient"),
    ]);
    // An admin of its own (not the stack's bootstrap admin, whose key the other tests use): outside every team.
    const adminRes = await http("POST", "/users", {
      email: `matrix-admin-${Date.now()}@tests.example`,
      name: "Matrix Admin",
      role: "admin",
    });
    expect(adminRes.status).toBe(201);
    const admin = { user: adminRes.body.user, apiKey: adminRes.body.apiKey as string };
    const revokedKey = revoked.apiKey;
    expect((await httpAs(revokedKey, "POST", "/users/me/apiKey")).status).toBe(201);

    const principals: Record<Exclude<Column, "member, never interacted">, Principal> = {
      "no key": { column: "no key", apiKey: null, userId: member.user.id },
      "revoked key": { column: "revoked key", apiKey: revokedKey, userId: revoked.user.id },
      "non-member": { column: "non-member", apiKey: nonMember.apiKey, userId: nonMember.user.id },
      member: { column: "member", apiKey: member.apiKey, userId: member.user.id },
      owner: { column: "owner", apiKey: owner.apiKey, userId: owner.user.id },
      manager: { column: "manager", apiKey: manager.apiKey, userId: manager.user.id },
      admin: { column: "admin", apiKey: admin.apiKey, userId: admin.user.id },
    };
    const ok = async (res: Promise<{ status: number; body: any }>, status: number, what: string) => {
      const r = await res;
      if (r.status !== status) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    };

    // The keys as they are now (the `POST /users/me/apiKey` row rotates them).
    const key = (column: keyof typeof principals) => principals[column].apiKey!;

    /**
     * An iModel made by the manager, with in its team: the owner (owning a connection over f1, f2), the member and the
     * recipient (who both have interacted with it), and the revoked key's user.
     */
    async function makeWorld(withRunAndSchedule = false): Promise<World> {
      const iModelId = (await ok(httpAs(key("manager"), "POST", "/imodels", { name: "matrix" }), 201, "iModel")).iModel
        .id;
      for (const who of [owner, member, revoked, recipient])
        await ok(httpAs(key("manager"), "POST", `/imodels/${iModelId}/members`, { userId: who.user.id }), 201, "add");
      const connection = (
        await ok(
          httpAs(key("owner"), "POST", "/connections", {
            iModelId,
            displayName: "matrix",
            source: { type: "local", path: folder },
            sourceFiles: ["f1.ifc", "f2.ifc"].map((p) => ({ path: p, connectorType: "IFC" })),
          }),
          201,
          "connection",
        )
      ).connection;
      await ok(httpAs(key("member"), "GET", `/imodels/${iModelId}`), 200, "member's interaction");
      await ok(httpAs(recipient.apiKey, "GET", `/imodels/${iModelId}`), 200, "recipient's interaction");
      const webhookId = (await ok(httpAs(key("manager"), "POST", "/webhooks", webhookBody(iModelId)), 201, "webhook"))
        .webhook.id as string;
      const world: World = { iModelId, connection, webhookId };
      if (withRunAndSchedule) {
        const run = await ok(httpAs(key("owner"), "POST", `/connections/${connection.id}/run`), 202, "run");
        world.runId = run.run.id;
        await waitForRun(`/connections/${connection.id}/runs/${world.runId}`);
        await ok(
          httpAs(key("owner"), "PUT", `/connections/${connection.id}/schedule`, {
            type: "daily",
            time: "05:00",
            timeZone: "Europe/Berlin",
          }),
          200,
          "schedule",
        );
      }
      return world;
    }

    /**
     * A webhook the matrix makes: an event no test of the suite causes, to a port nothing listens on (removed at the
     * end, so that no delivery is ever attempted).
     */
    function webhookBody(iModelId?: string) {
      return {
        url: "http://127.0.0.1:9/access-matrix",
        events: ["token.expired"],
        description: "access matrix",
        ...(iModelId ? { iModelId } : {}),
      };
    }

    /** A user just added to the world's team by its manager, who has made no request on the iModel. */
    async function newcomer(world: World): Promise<Principal> {
      const u = await createUser("Matrix Newcomer");
      await ok(httpAs(key("manager"), "POST", `/imodels/${world.iModelId}/members`, { userId: u.user.id }), 201, "add");
      return { column: "member, never interacted", apiKey: u.apiKey, userId: u.user.id };
    }

    const fileId = (w: World, p: string) => w.connection.sourceFiles.find((f: any) => f.path === p).id;
    const c = (w: World) => `/connections/${w.connection.id}`;
    const email = () => `matrix-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@tests.example`;

    /**
     * How each row is called. `fresh`: the call changes what other cells rely on, so a cell that is expected to
     * succeed gets a world of its own.
     */
    const rows: Record<string, { fresh?: boolean; call: (w: World, p: Principal) => Promise<Call> | Call }> = {
      "`GET /health`": { call: () => ({ method: "GET", path: "/health" }) },
      "`GET /openapi.json`": { call: () => ({ method: "GET", path: "/openapi.json" }) },
      "`GET /docs`": { call: () => ({ method: "GET", path: "/docs" }) },
      "`GET /docs/swagger-initializer.js`": { call: () => ({ method: "GET", path: "/docs/swagger-initializer.js" }) },
      "`POST /users`": { call: () => ({ method: "POST", path: "/users", body: { email: email(), name: "Made" } }) },
      "`GET /users`": { call: () => ({ method: "GET", path: "/users" }) },
      "`GET /users/me`": { call: () => ({ method: "GET", path: "/users/me" }) },
      "`GET /config`": { call: () => ({ method: "GET", path: "/config" }) },
      "`GET /sources`": { call: () => ({ method: "GET", path: "/sources" }) },
      "`POST /users/me/apiKey`": { call: () => ({ method: "POST", path: "/users/me/apiKey" }) },
      "`GET /users/{id}` (another user)": { call: () => ({ method: "GET", path: `/users/${target.user.id}` }) },
      "`POST /imodels`": { call: () => ({ method: "POST", path: "/imodels", body: { name: "by anyone" } }) },
      "`GET /imodels`": { call: () => ({ method: "GET", path: "/imodels" }) },
      "`GET /imodels/{id}`": { call: (w) => ({ method: "GET", path: `/imodels/${w.iModelId}` }) },
      "`GET /imodels/{id}/members`": { call: (w) => ({ method: "GET", path: `/imodels/${w.iModelId}/members` }) },
      "`POST /imodels/{id}/members`": {
        call: async (w) => ({
          method: "POST",
          path: `/imodels/${w.iModelId}/members`,
          body: { userId: (await createUser("Matrix Added")).user.id },
        }),
      },
      "`DELETE /imodels/{id}/members/{userId}`": {
        call: async (w) => {
          const u = await createUser("Matrix Removed");
          await ok(http("POST", `/imodels/${w.iModelId}/members`, { userId: u.user.id }), 201, "add");
          return { method: "DELETE", path: `/imodels/${w.iModelId}/members/${u.user.id}` };
        },
      },
      "`POST /imodels/{id}/run`": { call: (w) => ({ method: "POST", path: `/imodels/${w.iModelId}/run`, body: {} }) },
      "`POST /connections`": {
        fresh: true,
        call: (w) => ({
          method: "POST",
          path: "/connections",
          body: {
            iModelId: w.iModelId,
            displayName: "another",
            source: { type: "local", path: folder },
            sourceFiles: [{ path: "f3.ifc", connectorType: "IFC" }],
          },
        }),
      },
      "`GET /connections`": { call: () => ({ method: "GET", path: "/connections" }) },
      "`GET /connections?iModelId={id}`": {
        call: (w) => ({ method: "GET", path: `/connections?iModelId=${w.iModelId}` }),
      },
      "`GET /connections/{id}`": { call: (w) => ({ method: "GET", path: c(w) }) },
      "`PATCH /connections/{id}`": {
        call: (w) => ({ method: "PATCH", path: c(w), body: { displayName: "matrix renamed" } }),
      },
      "`DELETE /connections/{id}` (`mode=keepData`)": {
        fresh: true,
        call: (w) => ({ method: "DELETE", path: `${c(w)}?mode=keepData` }),
      },
      "`DELETE /connections/{id}` (`mode=deleteData&dryRun=true`)": {
        call: (w) => ({ method: "DELETE", path: `${c(w)}?mode=deleteData&dryRun=true` }),
      },
      "`DELETE /connections/{id}/sourceFiles/{fileId}` (`mode=deleteData&dryRun=true`)": {
        call: (w) => ({
          method: "DELETE",
          path: `${c(w)}/sourceFiles/${fileId(w, "f2.ifc")}?mode=deleteData&dryRun=true`,
        }),
      },
      "`GET /connections/{id}/sourceFiles`": { call: (w) => ({ method: "GET", path: `${c(w)}/sourceFiles` }) },
      "`GET /connections/{id}/sourceFiles/{fileId}`": {
        call: (w) => ({ method: "GET", path: `${c(w)}/sourceFiles/${fileId(w, "f1.ifc")}` }),
      },
      "`GET /connections/{id}/events`": { call: (w) => ({ method: "GET", path: `${c(w)}/events` }) },
      '`POST /connections/{id}/run` (`{"dryRun": true}`)': {
        call: (w) => ({ method: "POST", path: `${c(w)}/run`, body: { dryRun: true } }),
      },
      "`POST /connections/{id}/runs/{runId}/retry` (a run without failed files)": {
        call: (w) => ({ method: "POST", path: `${c(w)}/runs/${w.runId}/retry` }),
      },
      "`GET /connections/{id}/runs/{runId}/changes`": {
        call: (w) => ({ method: "GET", path: `${c(w)}/runs/${w.runId}/changes` }),
      },
      "`POST /connections/{id}/sourceFiles`": {
        fresh: true,
        call: (w) => ({
          method: "POST",
          path: `${c(w)}/sourceFiles`,
          body: { sourceFiles: [{ path: "f3.ifc", connectorType: "IFC" }] },
        }),
      },
      "`DELETE /connections/{id}/sourceFiles/{fileId}` (`mode=keepData`)": {
        fresh: true,
        call: (w) => ({ method: "DELETE", path: `${c(w)}/sourceFiles/${fileId(w, "f2.ifc")}?mode=keepData` }),
      },
      "`POST /connections/{id}/run`": { fresh: true, call: (w) => ({ method: "POST", path: `${c(w)}/run` }) },
      "`GET /connections/{id}/runs`": { call: (w) => ({ method: "GET", path: `${c(w)}/runs` }) },
      "`GET /connections/{id}/runs/{runId}`": { call: (w) => ({ method: "GET", path: `${c(w)}/runs/${w.runId}` }) },
      "`POST /connections/{id}/runs/{runId}/cancel` (a completed run)": {
        call: (w) => ({ method: "POST", path: `${c(w)}/runs/${w.runId}/cancel` }),
      },
      "`PUT /connections/{id}/schedule`": {
        call: (w) => ({
          method: "PUT",
          path: `${c(w)}/schedule`,
          body: { type: "daily", time: "05:00", timeZone: "Europe/Berlin" },
        }),
      },
      "`GET /connections/{id}/schedule`": { call: (w) => ({ method: "GET", path: `${c(w)}/schedule` }) },
      "`POST /connections/{id}/schedule/pause`": {
        call: (w) => ({ method: "POST", path: `${c(w)}/schedule/pause`, body: { note: "matrix" } }),
      },
      "`POST /connections/{id}/schedule/resume`": {
        call: (w) => ({ method: "POST", path: `${c(w)}/schedule/resume` }),
      },
      "`POST /connections/{id}/owner` (give to another member who interacted)": {
        fresh: true,
        call: (w) => ({ method: "POST", path: `${c(w)}/owner`, body: { userId: recipient.user.id } }),
      },
      "`POST /connections/{id}/owner` (take: `userId` = the caller)": {
        fresh: true,
        call: (w, p) => ({ method: "POST", path: `${c(w)}/owner`, body: { userId: p.userId } }),
      },
      "`GET /metrics`": { call: () => ({ method: "GET", path: "/metrics" }) },
      "`POST /webhooks` (for the iModel)": {
        call: (w) => ({ method: "POST", path: "/webhooks", body: webhookBody(w.iModelId) }),
      },
      "`POST /webhooks` (for every iModel)": {
        call: () => ({ method: "POST", path: "/webhooks", body: webhookBody() }),
      },
      "`GET /webhooks`": { call: () => ({ method: "GET", path: "/webhooks" }) },
      "`GET /webhooks/{id}` (the iModel's)": { call: (w) => ({ method: "GET", path: `/webhooks/${w.webhookId}` }) },
      "`DELETE /webhooks/{id}` (the iModel's)": {
        fresh: true,
        call: (w) => ({ method: "DELETE", path: `/webhooks/${w.webhookId}` }),
      },
      "`GET /webhooks/{id}/deliveries` (the iModel's)": {
        call: (w) => ({ method: "GET", path: `/webhooks/${w.webhookId}/deliveries` }),
      },
      "`POST /webhooks/{id}/deliveries/{deliveryId}/redeliver` (an unknown delivery)": {
        call: (w) => ({ method: "POST", path: `/webhooks/${w.webhookId}/deliveries/msg_unknown/redeliver` }),
      },
    };
    expect(Object.keys(rows).sort()).toEqual([...matrix.keys()].sort());

    const shared = await makeWorld(true);
    const mismatches: string[] = [];
    const runsStarted: string[] = [];
    const FAKE_IMODEL = "00000000-0000-4000-8000-00000000000a";
    const FAKE_CONNECTION = "00000000-0000-4000-8000-00000000000c";
    const swap = (x: unknown, pairs: [string, string][]) => {
      let text = JSON.stringify(x ?? null);
      for (const [from, to] of pairs) text = text.replaceAll(from, to);
      return JSON.parse(text);
    };

    for (const [label, expected] of matrix) {
      const row = rows[label];
      for (const column of COLUMNS) {
        const want = expected[column];
        const world = row.fresh && want < 300 ? await makeWorld() : shared;
        const who = column === "member, never interacted" ? await newcomer(world) : principals[column];
        const call = await row.call(world, who);
        const res = await httpAs(who.apiKey, call.method, call.path, call.body);
        if (res.status !== want) {
          mismatches.push(`${label} / ${column}: README ${want}, got ${res.status} ${JSON.stringify(res.body)}`);
          continue;
        }
        if (call.path === "/users/me/apiKey" && res.status === 201 && column in principals)
          principals[column as keyof typeof principals].apiKey = res.body.apiKey;
        if (res.status === 202 && res.body.run) runsStarted.push(`${c(world)}/runs/${res.body.run.id}`);
        if (res.status === 202 && res.body.runs)
          for (const r of res.body.runs) runsStarted.push(`/connections/${r.connectionId}/runs/${r.runId}`);
        if (want === 404 && column === "non-member") {
          // The same request with unknown ids: the same answer, but for the id.
          const there: [string, string][] = [
            [world.iModelId, FAKE_IMODEL],
            [world.connection.id, FAKE_CONNECTION],
          ];
          const unknown = await httpAs(
            who.apiKey,
            call.method,
            swap(call.path, there),
            call.body === undefined ? undefined : swap(call.body, there),
          );
          const back = swap(
            unknown.body,
            there.map(([a, b]) => [b, a]),
          );
          if (unknown.status !== 404 || JSON.stringify(back) !== JSON.stringify(res.body))
            mismatches.push(
              `${label} / ${column}: hidden ${JSON.stringify(res.body)} differs from unknown ${unknown.status} ${JSON.stringify(unknown.body)}`,
            );
        }
      }
    }
    // Let the runs the matrix started finish, so they do not weigh on the next tests.
    for (const location of runsStarted) await waitForRun(location);
    // And remove the webhooks it made.
    for (const w of (await http("GET", "/webhooks?$top=1000")).body.webhooks)
      if (w.description === "access matrix") await http("DELETE", `/webhooks/${w.id}`);
    expect(mismatches).toEqual([]);
  });
});
