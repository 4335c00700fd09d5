/**
 * iModel teams on the real stack (docs/product-rules.md "Teams"): the creator manages the team; managers and admins
 * add and remove members; only members and admins see an iModel, its connections and runs (to anyone else they answer
 * like unknown ids, and lists leave them out); a member's first interaction after being added is recorded; a member who
 * owns connections is not removed; the records written before teams existed become teams at start.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createUser, eventually, http, httpAs, makeSource, restartService, SAMPLE, stack, waitForRun } from "./helpers";

const HVAC = SAMPLE("ifc4_hvac_air_terminal_duct.ifc");

type Who = { user: any; apiKey: string };
const as = (who: Who) => (method: string, p: string, body?: unknown) => httpAs(who.apiKey, method, p, body);

let mongo: MongoClient;
const teamMembers = () => mongo.db().collection<any>("teamMembers");

beforeAll(async () => {
  mongo = new MongoClient(stack().mongoUri, { serverSelectionTimeoutMS: 5000 });
  await mongo.connect();
});

afterAll(async () => {
  await mongo?.close();
});

/** A source folder with `n` copies of the HVAC sample, `f1.ifc` … `fn.ifc`. */
function source(name: string, n = 4): string {
  return makeSource(name, Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${i + 1}.ifc`, HVAC])));
}

/** Creates a connection as `who` over `file` of `folder`; returns it. */
async function connect(who: Who, iModelId: string, folder: string, file: string, displayName = file): Promise<any> {
  const c = await as(who)("POST", "/connections", {
    iModelId,
    displayName,
    source: { type: "local", path: folder },
    sourceFiles: [{ path: file, connectorType: "IFC" }],
  });
  if (c.status !== 201) throw new Error(`POST /connections answered ${c.status}: ${JSON.stringify(c.body)}`);
  return c.body.connection;
}

const membersOf = async (iModelId: string) =>
  (await http("GET", `/imodels/${iModelId}/members?$top=1000`)).body.members as any[];

describe("iModel teams", () => {
  it("the creator manages the team: adds members and managers, changes roles, removes them; others may not", async () => {
    const [ann, ben, cat, dan] = await Promise.all([
      createUser("Ann Manager"),
      createUser("Ben Member"),
      createUser("Cat Co-manager"),
      createUser("Dan Dropped"),
    ]);
    const created = await as(ann)("POST", "/imodels", { name: "team" });
    expect(created.status).toBe(201);
    const iModelId = created.body.iModel.id;
    expect((await mongo.db().collection<any>("imodels").findOne({ _id: iModelId })).createdBy).toBe(ann.user.id);
    const [manager] = await membersOf(iModelId);
    expect(manager).toMatchObject({
      userId: ann.user.id,
      email: ann.user.email,
      name: "Ann Manager",
      role: "manager",
      addedBy: ann.user.id,
    });
    // Creating the iModel was the creator's interaction with it.
    expect(manager.firstInteractionDateTime).toBe(created.body.iModel.createdDateTime);
    // One record per member, its _id the iModel and the user (one `_id` lookup per request).
    expect(await teamMembers().findOne({ _id: `${iModelId}:${ann.user.id}` })).toMatchObject({ role: "manager" });

    const addBen = await as(ann)("POST", `/imodels/${iModelId}/members`, { userId: ben.user.id });
    expect(addBen.status).toBe(201);
    expect(addBen.body.member).toMatchObject({
      userId: ben.user.id,
      role: "member",
      addedBy: ann.user.id,
      firstInteractionDateTime: null,
    });
    expect(
      (await as(ann)("POST", `/imodels/${iModelId}/members`, { userId: cat.user.id, role: "manager" })).status,
    ).toBe(201);
    // Someone already in the team: the role is set as given.
    const promote = await as(ann)("POST", `/imodels/${iModelId}/members`, { userId: ben.user.id, role: "manager" });
    expect(promote.status).toBe(200);
    expect(promote.body).toMatchObject({ changed: true, member: { role: "manager", addedBy: ann.user.id } });
    const same = await as(ann)("POST", `/imodels/${iModelId}/members`, { userId: ben.user.id, role: "manager" });
    expect(same.body.changed).toBe(false);
    // Ben, a manager now, adds Dan; demoted again, he may no longer add or remove.
    expect((await as(ben)("POST", `/imodels/${iModelId}/members`, { userId: dan.user.id })).status).toBe(201);
    expect((await as(ann)("POST", `/imodels/${iModelId}/members`, { userId: ben.user.id })).body.member.role).toBe(
      "member",
    );
    const refused = await as(ben)("POST", `/imodels/${iModelId}/members`, { userId: cat.user.id, role: "member" });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe("NotTeamManager");
    expect((await as(ben)("DELETE", `/imodels/${iModelId}/members/${dan.user.id}`)).body.error.code).toBe(
      "NotTeamManager",
    );

    // Bad requests.
    const unknown = await as(ann)("POST", `/imodels/${iModelId}/members`, { userId: "nobody" });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: "UserNotFound", details: [{ target: "userId" }] });
    expect((await as(ann)("POST", `/imodels/${iModelId}/members`, { userId: dan.user.id, role: "owner" })).status).toBe(
      400,
    );
    expect((await as(ann)("POST", `/imodels/${iModelId}/members`, {})).body.error.code).toBe("InvalidRequest");
    const notIn = await as(ann)("DELETE", `/imodels/${iModelId}/members/nobody`);
    expect(notIn.status).toBe(404);
    expect(notIn.body.error.code).toBe("TeamMemberNotFound");

    const members = await membersOf(iModelId);
    expect(members.map((m) => [m.userId, m.role])).toEqual([
      [ann.user.id, "manager"],
      [ben.user.id, "member"],
      [cat.user.id, "manager"],
      [dan.user.id, "member"],
    ]);
    expect(members[3].addedBy).toBe(ben.user.id);

    // Cat (a manager) removes Dan, who then no longer sees the iModel.
    expect((await as(dan)("GET", `/imodels/${iModelId}`)).status).toBe(200);
    const removed = await as(cat)("DELETE", `/imodels/${iModelId}/members/${dan.user.id}`);
    expect(removed.status).toBe(200);
    expect(removed.body.member).toMatchObject({ userId: dan.user.id, role: "member" });
    expect((await as(dan)("GET", `/imodels/${iModelId}`)).status).toBe(404);
    expect(await teamMembers().countDocuments({ _id: `${iModelId}:${dan.user.id}` })).toBe(0);

    // An admin manages any team without being in it.
    expect((await http("POST", `/imodels/${iModelId}/members`, { userId: dan.user.id })).status).toBe(201);
    expect((await http("DELETE", `/imodels/${iModelId}/members/${dan.user.id}`)).status).toBe(200);
    expect((await membersOf(iModelId)).map((m) => m.userId)).not.toContain("admin");
  });

  it("records a member's first interaction after being added, once; making requests never makes anyone a member", async () => {
    const [owner, eve] = await Promise.all([createUser("Olly Owner"), createUser("Eve Eager")]);
    const iModelId = (await as(owner)("POST", "/imodels", { name: "interactions" })).body.iModel.id;
    const c = await connect(owner, iModelId, source("interactions", 1), "f1.ifc");
    // Eve's requests on the iModel, its connection and its runs before she is added: 404, and no record.
    for (const p of [
      `/imodels/${iModelId}`,
      `/imodels/${iModelId}/members`,
      `/connections/${c.id}`,
      `/connections/${c.id}/runs`,
      `/connections?iModelId=${iModelId}`,
    ])
      expect((await as(eve)("GET", p)).status, p).toBe(404);
    expect(await teamMembers().countDocuments({ userId: eve.user.id })).toBe(0);

    await as(owner)("POST", `/imodels/${iModelId}/members`, { userId: eve.user.id });
    const before = (await membersOf(iModelId)).find((m) => m.userId === eve.user.id);
    expect(before.firstInteractionDateTime).toBeNull();
    // Requests by others (the admin, the owner) are not hers.
    await http("GET", `/connections/${c.id}`);
    await as(owner)("GET", `/connections/${c.id}/runs`);
    expect((await membersOf(iModelId)).find((m) => m.userId === eve.user.id).firstInteractionDateTime).toBeNull();
    // A request on one of the iModel's connections' runs is an interaction with the iModel.
    const t0 = Date.now();
    expect((await as(eve)("GET", `/connections/${c.id}/runs`)).status).toBe(200);
    const first = (await membersOf(iModelId)).find((m) => m.userId === eve.user.id).firstInteractionDateTime;
    expect(Date.parse(first)).toBeGreaterThanOrEqual(t0 - 1000);
    expect((await as(eve)("GET", `/imodels/${iModelId}`)).status).toBe(200);
    expect((await membersOf(iModelId)).find((m) => m.userId === eve.user.id).firstInteractionDateTime).toBe(first);
    expect(await teamMembers().countDocuments({ userId: eve.user.id })).toBe(1);
  });

  it("outside the team, an iModel, its connections and runs answer like unknown ids and are left out of lists", async () => {
    const [mia, nick] = await Promise.all([createUser("Mia Member"), createUser("Nick Nosy")]);
    const folder = source("visibility", 2);
    const mine = (await as(mia)("POST", "/imodels", { name: "mia's" })).body.iModel.id;
    const theirs = (await as(nick)("POST", "/imodels", { name: "nick's" })).body.iModel.id;
    const c = await connect(mia, mine, folder, "f1.ifc");
    const other = await connect(nick, theirs, folder, "f1.ifc");
    const run = await as(mia)("POST", `/connections/${c.id}/run`);
    expect(run.status).toBe(202);
    const runId = run.body.run.id;

    // Each request Nick makes on Mia's things gets what an unknown id gets, with that id in the message.
    const fake = "00000000-0000-4000-8000-000000000000";
    const probes: [string, string, unknown?][] = [
      ["GET", `/imodels/${mine}`],
      ["GET", `/imodels/${mine}/members`],
      ["POST", `/imodels/${mine}/members`, { userId: nick.user.id }],
      ["DELETE", `/imodels/${mine}/members/${mia.user.id}`],
      ["POST", `/imodels/${mine}/run`, {}],
      ["GET", `/connections?iModelId=${mine}`],
      [
        "POST",
        "/connections",
        {
          iModelId: mine,
          displayName: "x",
          source: { type: "local", path: folder },
          sourceFiles: [{ path: "f2.ifc", connectorType: "IFC" }],
        },
      ],
      ["GET", `/connections/${c.id}`],
      ["PATCH", `/connections/${c.id}`, { displayName: "mine" }],
      ["DELETE", `/connections/${c.id}?mode=deleteData`],
      ["POST", `/connections/${c.id}/run`],
      ["GET", `/connections/${c.id}/runs`],
      ["GET", `/connections/${c.id}/runs/${runId}`],
      ["POST", `/connections/${c.id}/runs/${runId}/cancel`],
      ["GET", `/connections/${c.id}/schedule`],
      ["PUT", `/connections/${c.id}/schedule`, { type: "every4Hours" }],
      ["POST", `/connections/${c.id}/owner`, { userId: nick.user.id }],
    ];
    const swap = (x: unknown, from: string, to: string) => JSON.parse(JSON.stringify(x ?? null).replaceAll(from, to));
    for (const [method, p, body] of probes) {
      const real = await as(nick)(method, p, body);
      expect(real.status, `${method} ${p}`).toBe(404);
      // The same request with the hidden ids replaced by unknown ones.
      let unknownPath = p;
      let unknownBody = body;
      for (const id of [mine, c.id]) {
        unknownPath = unknownPath.replaceAll(id, fake);
        unknownBody = body === undefined ? undefined : swap(unknownBody, id, fake);
      }
      const unknown = await as(nick)(method, unknownPath, unknownBody);
      expect(unknown.status, `${method} ${unknownPath}`).toBe(404);
      const hiddenId = p.includes(c.id) ? c.id : mine;
      expect(real.body, `${method} ${p}`).toEqual(swap(unknown.body, fake, hiddenId));
    }
    // A bulk run of Nick's iModel naming Mia's connection: as if it did not exist (not "of another iModel").
    const bulk = await as(nick)("POST", `/imodels/${theirs}/run`, { connectionIds: [other.id, c.id] });
    expect(bulk.status).toBe(404);
    expect(bulk.body.error.details).toEqual([
      { code: "ConnectionNotFound", message: `connection '${c.id}' does not exist`, target: "connectionIds.1" },
    ]);
    // Nothing of Mia's changed.
    expect((await http("GET", `/connections/${c.id}`)).body.connection).toMatchObject({
      displayName: "f1.ifc",
      status: "Active",
      owner: { id: mia.user.id },
    });

    // Lists: only what each may see; an admin sees both.
    const ids = async (who: Who | null, p: string, key: string) => {
      const res = who ? await as(who)("GET", p) : await http("GET", p);
      expect(res.status).toBe(200);
      return res.body[key].map((x: any) => x.id);
    };
    expect(await ids(mia, "/imodels?$top=1000", "iModels")).toEqual([mine]);
    expect(await ids(nick, "/imodels?$top=1000", "iModels")).toEqual([theirs]);
    expect(await ids(mia, "/connections?$top=1000", "connections")).toEqual([c.id]);
    expect(await ids(nick, "/connections?$top=1000", "connections")).toEqual([other.id]);
    expect(await ids(nick, "/connections?$top=1000&status=Deleted", "connections")).toEqual([]);
    expect(await ids(null, "/imodels?$top=1000", "iModels")).toEqual(expect.arrayContaining([mine, theirs]));
    expect(await ids(null, "/connections?$top=1000", "connections")).toEqual(expect.arrayContaining([c.id, other.id]));
    await waitForRun(`/connections/${c.id}/runs/${runId}`);
  });

  it("refuses to remove a member who owns connections, listing them, until they have another owner", async () => {
    const [lea, fay] = await Promise.all([createUser("Lea Lead"), createUser("Fay Former")]);
    const iModelId = (await as(lea)("POST", "/imodels", { name: "leaving" })).body.iModel.id;
    const folder = source("leaving", 3);
    await as(lea)("POST", `/imodels/${iModelId}/members`, { userId: fay.user.id });
    const a = await connect(fay, iModelId, folder, "f1.ifc", "A");
    const b = await connect(fay, iModelId, folder, "f2.ifc", "B");
    const kept = await connect(lea, iModelId, folder, "f3.ifc", "Lea's");

    const refused = await as(lea)("DELETE", `/imodels/${iModelId}/members/${fay.user.id}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("MemberOwnsConnections");
    expect(refused.body.error.message).toContain(fay.user.email);
    expect(refused.body.error.details).toEqual([
      { code: "MemberOwnsConnections", message: "owns connection 'A'", target: `/connections/${a.id}` },
      { code: "MemberOwnsConnections", message: "owns connection 'B'", target: `/connections/${b.id}` },
    ]);
    expect((await http("DELETE", `/imodels/${iModelId}/members/${fay.user.id}`)).status).toBe(409); // admins too

    // Fay gives A to Lea; B is deleted (keeping its data): a Deleted connection has no say.
    expect((await as(fay)("POST", `/connections/${a.id}/owner`, { userId: lea.user.id })).status).toBe(200);
    const still = await as(lea)("DELETE", `/imodels/${iModelId}/members/${fay.user.id}`);
    expect(still.body.error.details.map((d: any) => d.target)).toEqual([`/connections/${b.id}`]);
    expect((await as(fay)("DELETE", `/connections/${b.id}?mode=keepData`)).status).toBe(200);
    const removed = await as(lea)("DELETE", `/imodels/${iModelId}/members/${fay.user.id}`);
    expect(removed.status).toBe(200);
    expect((await as(fay)("GET", `/connections/${a.id}`)).status).toBe(404);
    expect((await as(lea)("GET", `/connections/${kept.id}`)).body.connection.owner.id).toBe(lea.user.id);
    // Removed, Fay can no longer be given a connection of the iModel.
    const give = await as(lea)("POST", `/connections/${a.id}/owner`, { userId: fay.user.id });
    expect(give.status).toBe(409);
    expect(give.body.error.code).toBe("NotATeamMember");
  });

  it("an admin creating a connection in an iModel outside their teams joins the team as a member", async () => {
    const zoe = await createUser("Zoe Zone");
    const iModelId = (await as(zoe)("POST", "/imodels", { name: "admin joins" })).body.iModel.id;
    const c = await http("POST", "/connections", {
      iModelId,
      displayName: "by the admin",
      source: { type: "local", path: source("admin-joins", 1) },
      sourceFiles: [{ path: "f1.ifc", connectorType: "IFC" }],
    });
    expect(c.status).toBe(201);
    expect(c.body.connection.owner.id).toBe("admin");
    const admin = (await membersOf(iModelId)).find((m) => m.userId === "admin");
    expect(admin).toMatchObject({ role: "member", addedBy: "admin" });
    expect(admin.firstInteractionDateTime).not.toBeNull();
    // The admin owns a connection: like any member, not removed until it has another owner.
    expect((await as(zoe)("DELETE", `/imodels/${iModelId}/members/admin`)).body.error.code).toBe(
      "MemberOwnsConnections",
    );
  });
});

describe("records from before teams", () => {
  it("turns the records from before teams into teams at start", async () => {
    const [first, second, prober] = await Promise.all([
      createUser("Old First"),
      createUser("Old Second"),
      createUser("Old Prober"),
    ]);
    const folder = source("legacy", 2);
    const iModelId = (await as(first)("POST", "/imodels", { name: "legacy" })).body.iModel.id;
    await as(first)("POST", `/imodels/${iModelId}/members`, { userId: second.user.id });
    const a = await connect(first, iModelId, folder, "f1.ifc", "oldest");
    const b = await connect(second, iModelId, folder, "f2.ifc", "newer");
    const empty = (await http("POST", "/imodels", { name: "legacy without connections" })).body.iModel.id;

    // What a release without teams left behind: a record per user who ever made a request on the iModel.
    await teamMembers().deleteMany({ iModelId: { $in: [iModelId, empty] } });
    await mongo
      .db()
      .collection<any>("imodels")
      .updateMany({ _id: { $in: [iModelId, empty] } }, { $unset: { createdBy: "" } });
    const legacy = (iModel: string, userId: string, firstVisitDateTime: string) => ({
      _id: `${iModel}:${userId}`,
      iModelId: iModel,
      userId,
      firstVisitDateTime,
    });
    await teamMembers().insertMany([
      legacy(iModelId, prober.user.id, "2024-01-01T00:00:00.000Z"),
      legacy(iModelId, second.user.id, "2024-02-01T00:00:00.000Z"),
      legacy(iModelId, first.user.id, "2024-03-01T00:00:00.000Z"),
      legacy(empty, prober.user.id, "2024-01-01T00:00:00.000Z"),
    ]);

    await restartService("api");

    const members = await membersOf(iModelId);
    // The owner of the oldest connection manages; the other owner is a member; the prober is out.
    expect(members.map((m) => [m.userId, m.role, m.addedBy, m.firstInteractionDateTime]).sort()).toEqual(
      [
        [first.user.id, "manager", null, "2024-03-01T00:00:00.000Z"],
        [second.user.id, "member", null, "2024-02-01T00:00:00.000Z"],
      ].sort(),
    );
    expect((await as(prober)("GET", `/imodels/${iModelId}`)).status).toBe(404);
    expect((await as(prober)("GET", `/imodels/${empty}`)).status).toBe(404);
    expect(await membersOf(empty)).toEqual([]);
    expect(await teamMembers().countDocuments({ role: { $exists: false } })).toBe(0);
    // Both owners keep their connections and can act on them; ownership can move between them.
    expect((await as(second)("GET", `/connections/${b.id}`)).status).toBe(200);
    expect((await as(first)("POST", `/connections/${a.id}/owner`, { userId: second.user.id })).status).toBe(200);
    const log = await eventually("the migration in the API log", async () => {
      const text = fs.readFileSync(path.join(stack().dataDir, "logs", "api.log"), "utf8");
      return text.includes("team of the iModel made from the records written before teams existed") ? text : null;
    });
    expect(log).toContain(prober.user.id);
  });
});
