/**
 * Ownership of a connection on the real stack (docs/product-rules.md "Owner and token", "Teams"): given by the owner to a
 * team member who has interacted with the iModel, taken by such a member, refused for others (403), for users outside
 * the iModel's team (409 NotATeamMember), for members who have not interacted since being added (409
 * TeamMemberNeverInteracted) and while a run is in progress (409 RunInProgress); the new (or previous) owner is
 * emailed; a manual sync is recommended; scheduled runs then run as the new owner.
 */
import { Client, Connection, ScheduleOverlapPolicy } from "@temporalio/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createUser,
  eventually,
  http,
  httpAs,
  makeSource,
  SAMPLE,
  stack,
  waitForMails,
  waitForRun,
  triggerSchedule,
} from "./helpers";

const HVAC = "ifc4_hvac_air_terminal_duct.ifc";
const STRUCTURAL = "ifc2x3_structural_revit_example_rev1.ifc";

type Who = { user: any; apiKey: string };
const as = (who: Who) => (method: string, p: string, body?: unknown) => httpAs(who.apiKey, method, p, body);

describe("connection ownership", () => {
  let temporalConnection: Connection;
  let temporal: Client;
  let alice: Who, bob: Who, carol: Who, dave: Who, erin: Who;
  let iModelId: string;
  let hvac: any;
  let slow: any;

  beforeAll(async () => {
    temporalConnection = await Connection.connect({ address: stack().temporalAddress });
    temporal = new Client({ connection: temporalConnection });
    [alice, bob, carol, dave, erin] = await Promise.all([
      createUser("Alice Owner"),
      createUser("Bob Builder"),
      createUser("Carol Stranger"),
      createUser("Dave Taker"),
      createUser("Erin Newcomer"),
    ]);
    const source = makeSource("ownership", { [HVAC]: SAMPLE(HVAC), [STRUCTURAL]: SAMPLE(STRUCTURAL) });
    iModelId = (await as(alice)("POST", "/imodels", { name: "Ownership campus" })).body.iModel.id;
    const create = async (file: string, displayName: string) => {
      const c = await as(alice)("POST", "/connections", {
        iModelId,
        displayName,
        source: { type: "local", path: source },
        sourceFiles: [{ path: file, connectorType: "IFC" }],
      });
      expect(c.status).toBe(201);
      return c.body.connection;
    };
    hvac = await create(HVAC, "Mechanical HVAC");
    slow = await create(STRUCTURAL, "Structure");
    expect(hvac.owner.id).toBe(alice.user.id);
    expect(
      (
        await as(alice)("PUT", `/connections/${hvac.id}/schedule`, {
          type: "daily",
          time: "05:00",
          timeZone: "Europe/Berlin",
        })
      ).status,
    ).toBe(200);
    // Alice, who created the iModel, manages its team: Bob, Dave and Erin are members; Carol is not.
    for (const who of [bob, dave, erin])
      expect((await as(alice)("POST", `/imodels/${iModelId}/members`, { userId: who.user.id })).status).toBe(201);
    // Bob and Dave interact with the iModel; Erin has not since being added.
    expect((await as(bob)("GET", `/connections/${hvac.id}`)).status).toBe(200);
    expect((await as(dave)("GET", `/imodels/${iModelId}`)).status).toBe(200);
  });

  afterAll(async () => {
    await temporalConnection?.close();
  });

  it("refuses a non-owner giving it away (403), a user outside the team (409), a member who never interacted (409), an unknown user (404)", async () => {
    const forbidden = await as(dave)("POST", `/connections/${hvac.id}/owner`, { userId: bob.user.id });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.code).toBe("OwnershipChangeForbidden");
    const stranger = await as(alice)("POST", `/connections/${hvac.id}/owner`, { userId: carol.user.id });
    expect(stranger.status).toBe(409);
    expect(stranger.body.error.code).toBe("NotATeamMember");
    expect(stranger.body.error.message).toContain(carol.user.email);
    // Carol cannot take it either: to her the connection does not exist.
    const outside = await as(carol)("POST", `/connections/${hvac.id}/owner`, { userId: carol.user.id });
    expect(outside.status).toBe(404);
    expect(outside.body.error).toEqual({
      code: "ConnectionNotFound",
      message: `Connection '${hvac.id}' does not exist.`,
    });
    const newcomer = await as(alice)("POST", `/connections/${hvac.id}/owner`, { userId: erin.user.id });
    expect(newcomer.status).toBe(409);
    expect(newcomer.body.error.code).toBe("TeamMemberNeverInteracted");
    // Erin's first request on the iModel is an attempt to take it: judged on what she did before, so refused too …
    const grab = await as(erin)("POST", `/connections/${hvac.id}/owner`, { userId: erin.user.id });
    expect(grab.status).toBe(409);
    expect(grab.body.error.code).toBe("TeamMemberNeverInteracted");
    // … but it was her interaction: she could now be given it (not done here: Bob gets it below).
    const members = (await as(alice)("GET", `/imodels/${iModelId}/members`)).body.members;
    expect(members.find((m: any) => m.userId === erin.user.id).firstInteractionDateTime).not.toBeNull();
    const unknown = await as(alice)("POST", `/connections/${hvac.id}/owner`, { userId: "nobody" });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("UserNotFound");
    expect((await as(alice)("POST", `/connections/${hvac.id}/owner`, {})).body.error.code).toBe("InvalidRequest");
    expect((await http("GET", `/connections/${hvac.id}`)).body.connection.owner.id).toBe(alice.user.id);
  });

  it("refuses any change while a run of the connection is in progress (409 RunInProgress)", async () => {
    // The HVAC run waits in the iModel's queue behind the structural run.
    const a = await as(alice)("POST", `/connections/${slow.id}/run`);
    const b = await as(alice)("POST", `/connections/${hvac.id}/run`);
    expect([a.status, b.status]).toEqual([202, 202]);
    const busy = await as(alice)("POST", `/connections/${hvac.id}/owner`, { userId: bob.user.id });
    expect(busy.status).toBe(409);
    expect(busy.body.error.code).toBe("RunInProgress");
    expect(busy.body.error.details[0].target).toBe(b.location);
    const taken = await as(dave)("POST", `/connections/${hvac.id}/owner`, { userId: dave.user.id });
    expect(taken.body.error.code).toBe("RunInProgress");
    await waitForRun(a.location!);
    await waitForRun(b.location!);
  });

  it("the owner gives it to a team member, who is emailed; the answer recommends a manual sync by the new owner", async () => {
    const res = await as(alice)("POST", `/connections/${hvac.id}/owner`, { userId: bob.user.id });
    expect(res.status).toBe(200);
    expect(res.body.changed).toBe(true);
    expect(res.body.connection.owner).toMatchObject({ id: bob.user.id, email: bob.user.email, name: "Bob Builder" });
    expect(res.body.recommendation).toMatchObject({
      code: "ManualSyncRecommended",
      _links: { run: { href: `/connections/${hvac.id}/run`, method: "POST" } },
    });
    expect(res.body.notice).toEqual({ to: bob.user.id, status: "queued" });
    const [mail] = await waitForMails(bob.user.email, 1);
    expect(mail.to).toEqual([bob.user.email]);
    expect(mail.subject).toBe('You are now the owner of connection "Mechanical HVAC"');
    expect(mail.text).toContain(`"Mechanical HVAC" (connection ${hvac.id}) of iModel "Ownership campus"`);
    expect(mail.text).toContain("Alice Owner");
    expect(mail.text).toContain(`/connections/${hvac.id}/run`);
    // Alice is no longer the owner: she may not change the schedule any more; Bob may.
    expect((await as(alice)("PUT", `/connections/${hvac.id}/schedule`, { type: "every4Hours" })).body.error.code).toBe(
      "NotConnectionOwner",
    );
    expect(
      (
        await as(bob)("PUT", `/connections/${hvac.id}/schedule`, {
          type: "daily",
          time: "05:30",
          timeZone: "Europe/Berlin",
        })
      ).status,
    ).toBe(200);
  });

  it("a team member takes it; the previous owner is emailed; scheduled runs then run as the new owner", async () => {
    const res = await as(dave)("POST", `/connections/${hvac.id}/owner`, { userId: dave.user.id });
    expect(res.status).toBe(200);
    expect(res.body.connection.owner.id).toBe(dave.user.id);
    expect(res.body.notice).toEqual({ to: bob.user.id, status: "queued" });
    const mails = await waitForMails(bob.user.email, 2);
    const taken = mails.find((m) => m.subject.includes("took ownership"))!;
    expect(taken.subject).toBe('Dave Taker took ownership of connection "Mechanical HVAC"');
    expect(taken.text).toContain(`"Mechanical HVAC" (connection ${hvac.id})`);
    expect(taken.text).toContain(dave.user.email);

    // Dave's token is valid (his requests were visits): the scheduled run is his.
    await eventually("Dave's token on the connection", async () => {
      const c = (await http("GET", `/connections/${hvac.id}`)).body.connection;
      return c.owner.tokenStatus === "Valid" ? c : null;
    });
    await triggerSchedule(temporal, `schedule/${hvac.id}`, ScheduleOverlapPolicy.SKIP);
    const run = await eventually("the scheduled run", async () => {
      const runs = await http("GET", `/connections/${hvac.id}/runs`);
      return runs.body.runs.find((r: any) => r.trigger === "schedule") ?? null;
    });
    expect(run.ownerId).toBe(dave.user.id);
    expect((await waitForRun(`/connections/${hvac.id}/runs/${run.id}`)).run.result).toBe("Success");
  });
});
