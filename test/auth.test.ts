/**
 * Users and authentication on the real stack: bearer API keys (401 without a valid one, /health open), the admin
 * bootstrapped from ADMIN_API_KEY (and never given back a key it rotated away, also after a restart; the reset
 * procedure for a lost admin key), users created by the admin with a key shown once and stored hashed, key rotation,
 * every request a visit (the first one issues the owner token; later ones outside the refresh window send no signal).
 * iModel teams: test/teams.test.ts; who may do what: test/access-matrix.test.ts.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { Client, Connection } from "@temporalio/client";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureAdminUser } from "../api/auth";
import type { Config } from "../lib/config";
import { ensurePeopleIndexes, peopleCollections } from "../lib/collections";
import { openStore } from "../lib/db";
import { createLogger } from "../lib/logger";
import { ownerTokenQuery, ownerTokenWorkflowId } from "../workflows/owner-token";
import { createUser, eventually, http, httpAs, ownDatabaseUri, restartService, ROOT, stack } from "./helpers";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

let mongo: MongoClient;
let temporalConnection: Connection;
let temporal: Client;

beforeAll(async () => {
  mongo = new MongoClient(stack().mongoUri, { serverSelectionTimeoutMS: 5000 });
  await mongo.connect();
  temporalConnection = await Connection.connect({ address: stack().temporalAddress });
  temporal = new Client({ connection: temporalConnection });
});

afterAll(async () => {
  await mongo?.close();
  await temporalConnection?.close();
});

const users = () => mongo.db().collection<any>("users");

describe("authentication", () => {
  it("answers 401 Unauthorized without a valid bearer key and leaves /health open", async () => {
    const none = await fetch(`${stack().apiUrl}/imodels`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Bearer realm="imodel-sync"');
    expect(((await none.json()) as any).error.code).toBe("Unauthorized");
    const wrong = await httpAs("isk_not-a-key", "GET", "/imodels");
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toMatchObject({ code: "Unauthorized", message: "The API key is not valid." });
    const basic = await fetch(`${stack().apiUrl}/imodels`, {
      headers: { authorization: `Basic ${Buffer.from("a:b").toString("base64")}` },
    });
    expect(basic.status).toBe(401);
    expect((await httpAs(null, "POST", "/imodels", { name: "x" })).status).toBe(401);
    expect((await fetch(`${stack().apiUrl}/health`)).status).toBe(200);
    expect((await http("GET", "/imodels")).status).toBe(200);
  });

  it("bootstraps exactly one admin holding ADMIN_API_KEY, stored as its SHA-256 only", async () => {
    // (Other tests create admins of their own with POST /users; the bootstrapped one is `admin`.)
    const admins = await users()
      .find({ apiKeyHash: sha256(stack().adminApiKey) })
      .toArray();
    expect(admins).toHaveLength(1);
    expect(admins[0]).toMatchObject({ _id: "admin", role: "admin" });
    expect(admins[0].apiKeyHash).toBe(sha256(stack().adminApiKey));
    expect(JSON.stringify(admins[0])).not.toContain(stack().adminApiKey);
    const me = await http("GET", "/users/me");
    expect(me.body.user).toMatchObject({ id: "admin", role: "admin" });
  });
});

describe("the admin bootstrap", () => {
  it("creates the admin once when several APIs start at once; a taken email still fails with a clear error", async () => {
    // A database of its own: the bootstrap runs on an empty one, as on a fresh production topology with two APIs.
    const uri = ownDatabaseUri("imodelsync_admin");
    const store = await openStore(uri);
    try {
      const people = peopleCollections(store);
      await ensurePeopleIndexes(people);
      const key = `isk_${"k".repeat(43)}`;
      const config = { adminApiKey: key, adminEmail: "admin@bootstrap.test" } as Config;
      const logger = createLogger("test", "silent");
      // Each start has its own client, as each API process has.
      const starts = await Promise.all(Array.from({ length: 8 }, () => openStore(uri)));
      let results: string[];
      try {
        results = await Promise.all(starts.map((s) => ensureAdminUser(s, config, logger)));
      } finally {
        await Promise.all(starts.map((s) => s.close()));
      }
      expect(results.filter((r) => r === "created")).toHaveLength(1);
      expect(results.filter((r) => r !== "created").every((r) => r === "unchanged")).toBe(true);
      expect(await people.users.countDocuments({})).toBe(1);
      expect((await people.users.findOne({ _id: "admin" }))!.apiKeyHash).toBe(sha256(key));

      // Another user already holds the email: no admin can be created, and the error says why.
      await people.users.deleteOne({ _id: "admin" });
      await people.users.insertOne({
        _id: "someone",
        apiKeyHash: sha256("other"),
        role: "user",
        email: "admin@bootstrap.test",
        name: "Someone",
        createdDateTime: new Date().toISOString(),
      } as never);
      await expect(ensureAdminUser(store, config, logger)).rejects.toThrow(
        "email admin@bootstrap.test or the ADMIN_API_KEY already belongs to another user",
      );
    } finally {
      await store.db.dropDatabase().catch(() => undefined);
      await store.close();
    }
  });
});

describe("API keys stay out of the logs", () => {
  it("redacts the authorization header in the API's request log", async () => {
    const { apiKey } = await createUser("Log Reader");
    expect((await httpAs(apiKey, "GET", "/imodels")).status).toBe(200);
    expect((await http("GET", "/imodels")).status).toBe(200);
    const logFile = path.join(stack().dataDir, "logs", "api.log");
    const log = await eventually("the request in the API log", async () => {
      const text = fs.readFileSync(logFile, "utf8");
      return text.includes("[redacted]") ? text : undefined;
    });
    expect(log).not.toContain(apiKey);
    expect(log).not.toContain(stack().adminApiKey);
    expect(log).not.toMatch(/Bearer isk_/);
  });
});

describe("users", () => {
  it("are created by an admin, with the key shown once and only its SHA-256 stored", async () => {
    const email = `Una.User-${Date.now()}@Tests.Example`;
    const res = await http("POST", "/users", { email, name: "Una User" });
    expect(res.status).toBe(201);
    expect(res.location).toBe(`/users/${res.body.user.id}`);
    expect(res.body.apiKey).toMatch(/^isk_[A-Za-z0-9_-]{43}$/);
    expect(res.body.user).toMatchObject({ email: email.toLowerCase(), name: "Una User", role: "user", token: null });
    expect(res.body.user.apiKeyHash).toBeUndefined();
    const stored = await users().findOne({ _id: res.body.user.id });
    expect(stored.apiKeyHash).toBe(sha256(res.body.apiKey));
    expect(JSON.stringify(stored)).not.toContain(res.body.apiKey);

    const again = await http("POST", "/users", { email: email.toUpperCase(), name: "Una Again" });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("UserAlreadyExists");
    expect((await http("POST", "/users", { email: "not-an-email", name: "x" })).body.error.code).toBe("InvalidRequest");
    expect(
      (await http("POST", "/users", { email: "x@tests.example", name: "x", apiKey: "mine" })).body.error.code,
    ).toBe("InvalidRequest");

    // The new user is no admin.
    const una = res.body.apiKey as string;
    const forbidden = await httpAs(una, "POST", "/users", {
      email: `other-${Date.now()}@tests.example`,
      name: "Other",
    });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.code).toBe("AdminOnly");
    expect((await httpAs(una, "GET", "/users")).status).toBe(403);
    expect((await httpAs(una, "GET", "/users/admin")).body.error.code).toBe("Forbidden");
    expect((await httpAs(una, "GET", `/users/${res.body.user.id}`)).status).toBe(200);
    expect((await http("GET", `/users/${res.body.user.id}`)).status).toBe(200);
    expect((await http("GET", "/users/nobody")).body.error.code).toBe("UserNotFound");
    const list = await http("GET", "/users?$top=1000");
    expect(list.body.users.map((u: any) => u.id)).toContain(res.body.user.id);
  });

  it("get a new key on request; the old one stops working", async () => {
    const { apiKey } = await createUser("Rita Rotate");
    const rotated = await httpAs(apiKey, "POST", "/users/me/apiKey");
    expect(rotated.status).toBe(201);
    expect(rotated.body.apiKey).not.toBe(apiKey);
    expect((await httpAs(apiKey, "GET", "/users/me")).status).toBe(401);
    expect((await httpAs(rotated.body.apiKey, "GET", "/users/me")).status).toBe(200);
  });

  it("are found by their key's record (_id = the key's hash); the old key's record goes with a rotation", async () => {
    const sha = (k: string) => createHash("sha256").update(k).digest("hex");
    const keys = mongo.db().collection<{ _id: string; userId: string }>("apiKeys");
    const { user, apiKey } = await createUser("Kim Keyrecord");
    expect(await keys.findOne({ _id: sha(apiKey) })).toEqual({ _id: sha(apiKey), userId: user.id });
    const rotated = (await httpAs(apiKey, "POST", "/users/me/apiKey")).body.apiKey as string;
    expect(await keys.findOne({ _id: sha(apiKey) })).toBeNull();
    expect(await keys.findOne({ _id: sha(rotated) })).toEqual({ _id: sha(rotated), userId: user.id });
    // A stale record (as a write stopped half-way would leave) authenticates nobody: the user record decides.
    await keys.insertOne({ _id: sha(apiKey), userId: user.id });
    expect((await httpAs(apiKey, "GET", "/users/me")).status).toBe(401);
    // A user of an earlier release has no key record: found on the users, and its record is written then.
    await keys.deleteOne({ _id: sha(rotated) });
    expect((await httpAs(rotated, "GET", "/users/me")).body.user.id).toBe(user.id);
    expect(await keys.findOne({ _id: sha(rotated) })).toEqual({ _id: sha(rotated), userId: user.id });
  });
});

describe("every request is a visit", () => {
  it("the first request issues the owner token (30 days); later requests outside the refresh window send no signal", async () => {
    const { user, apiKey } = await createUser("Vic Visitor");
    expect(user.token).toBeNull();
    expect((await httpAs(apiKey, "GET", "/users/me")).status).toBe(200);
    const token = await eventually(
      "the token mirror",
      async () => (await httpAs(apiKey, "GET", "/users/me")).body.user.token,
    );
    expect(token.state).toBe("Valid");
    expect(Date.parse(token.expiresDateTime) - Date.parse(token.issuedDateTime)).toBe(30 * 86_400_000);
    expect(Date.parse(token.refreshFromDateTime) - Date.parse(token.issuedDateTime)).toBe(20 * 86_400_000);
    const handle = temporal.workflow.getHandle(ownerTokenWorkflowId(user.id));
    expect((await handle.describe()).status.name).toBe("RUNNING");
    const visits = (await handle.query(ownerTokenQuery)).visits;
    expect(visits).toBe(1);
    await new Promise((r) => setTimeout(r, 5_500)); // past the API's resend interval
    for (let i = 0; i < 3; i++) expect((await httpAs(apiKey, "GET", "/imodels")).status).toBe(200);
    expect((await handle.query(ownerTokenQuery)).visits).toBe(visits);
  });
});

/**
 * Runs scripts/reset-admin-key.ts against the test stack's database (the documented procedure for a lost admin key).
 * @param stdin the key to set (`--stdin`), or undefined to have the script generate and print one.
 * @param args more arguments (e.g. `--user <id>`).
 */
function resetAdminKey(stdin?: string, args: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      path.join(ROOT, "node_modules/.bin/tsx"),
      [path.join(ROOT, "scripts/reset-admin-key.ts"), ...(stdin !== undefined ? ["--stdin"] : []), ...args],
      { cwd: ROOT, env: { ...process.env, MONGODB_URI: stack().mongoUri } },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(stdin ?? "");
  });
}

describe("the admin's key", () => {
  it("stays rotated after an API restart: the environment's key stays revoked and a warning says so", async () => {
    const original = stack().adminApiKey;
    const logFile = path.join(stack().dataDir, "logs", "api.log");
    let current: string | undefined;
    try {
      const rotated = await http("POST", "/users/me/apiKey");
      expect(rotated.status).toBe(201);
      current = rotated.body.apiKey;
      expect((await httpAs(original, "GET", "/users/me")).status).toBe(401);

      // The launcher starts the API again with ADMIN_API_KEY = the original key (the stack's env).
      await restartService("api");
      const old = await httpAs(original, "GET", "/users/me");
      expect(old.status).toBe(401);
      expect(old.body.error.code).toBe("Unauthorized");
      const me = await httpAs(current!, "GET", "/users/me");
      expect(me.status).toBe(200);
      expect(me.body.user).toMatchObject({ id: "admin", role: "admin" });
      expect((await users().findOne({ _id: "admin" })).apiKeyHash).toBe(sha256(current!));
      expect(fs.readFileSync(logFile, "utf8")).toContain("ADMIN_API_KEY is no longer valid");
      expect(await users().countDocuments({ role: "admin", _id: "admin" })).toBe(1);
    } finally {
      // The reset procedure puts the test stack's key back (and is tested by it).
      const reset = await resetAdminKey(original);
      expect(reset.code, reset.stderr).toBe(0);
    }
    expect(
      await users()
        .findOne({ _id: "admin" })
        .then((u) => u.apiKeyHash),
    ).toBe(sha256(original));
    expect((await httpAs(original, "GET", "/users/me")).status).toBe(200);
    expect((await httpAs(current!, "GET", "/users/me")).status).toBe(401);
  });

  it("a lost key is replaced with scripts/reset-admin-key.ts, which prints the new key once", async () => {
    const original = stack().adminApiKey;
    try {
      const reset = await resetAdminKey();
      expect(reset.code, reset.stderr).toBe(0);
      const key = reset.stdout.trim();
      expect(key).toMatch(/^isk_[A-Za-z0-9_-]{43}$/);
      expect(reset.stderr).toContain("the API key of user 'admin' was replaced");
      // No restart needed: keys are read per request.
      expect((await httpAs(key, "GET", "/users/me")).body.user.id).toBe("admin");
      expect((await httpAs(original, "GET", "/users/me")).status).toBe(401);
      // Refused: a short key; an unknown user.
      expect((await resetAdminKey("short")).code).toBe(1);
      const nobody = await resetAdminKey(undefined, ["--user", "nobody"]);
      expect(nobody.code).toBe(1);
      expect(nobody.stderr).toContain("there is no user 'nobody'");
      expect(nobody.stdout).toBe("");
      expect((await users().findOne({ _id: "admin" })).apiKeyHash).toBe(sha256(key));
    } finally {
      expect((await resetAdminKey(original)).code).toBe(0);
    }
    expect((await http("GET", "/users/me")).status).toBe(200);
  });
});
