/**
 * Sync schedules on the real stack: one Temporal Schedule per connection, validation and permissions, whole-spec
 * replacement on a type change, pause/resume, scheduled runs on behalf of the owner, a fire during an active run
 * recorded as Skipped, exactly one run per local day (week) across DST transitions (Temporal backfill over
 * Europe/Berlin's and America/New_York's 2025 transitions), and schedules surviving restarts of Temporal, worker and API.
 */
import { Client, Connection, ScheduleNotFoundError, ScheduleOverlapPolicy } from "@temporalio/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { occurrenceInstant, type WallClockSchedule } from "../domain/schedule";
import {
  createUser,
  eventually,
  http,
  httpAs,
  makeSource,
  restartService,
  SAMPLE,
  stack,
  waitForRun,
  triggerSchedule,
} from "./helpers";

const HVAC = "ifc4_hvac_air_terminal_duct.ifc";
const STRUCTURAL = "ifc2x3_structural_revit_example_rev1.ifc";

let temporalConnection: Connection;
let temporal: Client;
let owner: { user: any; apiKey: string };
let other: { user: any; apiKey: string };

async function connectTemporal(): Promise<void> {
  await temporalConnection?.close().catch(() => undefined);
  temporalConnection = await Connection.connect({ address: stack().temporalAddress });
  temporal = new Client({ connection: temporalConnection });
}

const as = (who: { apiKey: string }) => (method: string, p: string, body?: unknown) =>
  httpAs(who.apiKey, method, p, body);

/** An iModel and connections (one per file) created by `who`, who so owns them. */
async function connections(who: { apiKey: string }, files: Record<string, string>, iModelName = "schedule iModel") {
  const source = makeSource("schedules", files);
  const m = await as(who)("POST", "/imodels", { name: iModelName });
  const out: any[] = [];
  for (const file of Object.keys(files)) {
    const c = await as(who)("POST", "/connections", {
      iModelId: m.body.iModel.id,
      displayName: `${iModelName} ${file}`,
      source: { type: "local", path: source },
      sourceFiles: [{ path: file, connectorType: "IFC" }],
    });
    if (c.status !== 201) throw new Error(JSON.stringify(c.body));
    out.push(c.body.connection);
  }
  return { iModel: m.body.iModel, connections: out };
}

async function scheduledRuns(connectionId: string): Promise<any[]> {
  const runs = await http("GET", `/connections/${connectionId}/runs?$top=1000`);
  return runs.body.runs.filter((r: any) => r.trigger === "schedule");
}

/** Waits until no scheduled workflow of the connection runs any more and its scheduled runs are all completed. */
async function settled(connectionId: string, expectedRuns: number): Promise<any[]> {
  return eventually(
    `${expectedRuns} completed scheduled runs of ${connectionId}`,
    async () => {
      const open = await temporal.workflow.count(
        `WorkflowType = "scheduledRunWorkflow" AND ConnectionId = "${connectionId}" AND ExecutionStatus = "Running"`,
      );
      const runs = await scheduledRuns(connectionId);
      const done = runs.filter((r) => r.state === "Completed");
      return open.count === 0 && runs.length >= expectedRuns && done.length === runs.length ? runs : null;
    },
    90_000,
    500,
  );
}

beforeAll(async () => {
  await connectTemporal();
  owner = await createUser("Sam Scheduler");
  other = await createUser("Olga Other");
});

afterAll(async () => {
  await temporalConnection?.close();
});

describe("PUT /connections/{id}/schedule", () => {
  let connection: any;
  beforeAll(async () => {
    ({
      connections: [connection],
    } = await connections(owner, { [HVAC]: SAMPLE(HVAC) }, "validation"));
  });

  it("refuses invalid schedules with InvalidSchedule and one detail per problem", async () => {
    const put = (body: unknown) => as(owner)("PUT", `/connections/${connection.id}/schedule`, body);
    for (const body of [
      { type: "daily", time: "25:00", timeZone: "Europe/Berlin" },
      { type: "daily", time: "02:30", timeZone: "Europe/Nowhere" },
      { type: "weekly", dayOfWeek: "Funday", time: "02:30", timeZone: "UTC" },
      { type: "hourly" },
      { type: "every4Hours", timeZone: "UTC" },
    ]) {
      const res = await put(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe("InvalidSchedule");
      expect(res.body.error.details.length).toBeGreaterThan(0);
    }
    const bad = await put({ type: "daily", time: "02:30", timeZone: "Europe/Nowhere" });
    expect(bad.body.error.details[0]).toMatchObject({ target: "timeZone" });
    expect(bad.body.error.details[0].message).toContain("IANA");
    expect((await put({ type: "daily", time: "9:00", timeZone: "UTC" })).body.error.details[0].target).toBe("time");
  });

  it("lets only the owner (or an admin) change it: 403 NotConnectionOwner; 404 for an unknown connection", async () => {
    // Outside the iModel's team the connection does not exist; another member may not change its schedule.
    const outside = await as(other)("PUT", `/connections/${connection.id}/schedule`, { type: "every4Hours" });
    expect(outside.status).toBe(404);
    expect(outside.body.error.code).toBe("ConnectionNotFound");
    const added = await as(owner)("POST", `/imodels/${connection.iModelId}/members`, { userId: other.user.id });
    expect(added.status).toBe(201);
    const res = await as(other)("PUT", `/connections/${connection.id}/schedule`, { type: "every4Hours" });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe("NotConnectionOwner");
    expect((await as(owner)("PUT", "/connections/nope/schedule", { type: "every4Hours" })).body.error.code).toBe(
      "ConnectionNotFound",
    );
    expect((await as(other)("POST", `/connections/${connection.id}/schedule/pause`, {})).status).toBe(403);
  });
});

describe("one Temporal Schedule per connection", () => {
  let connection: any;
  beforeAll(async () => {
    ({
      connections: [connection],
    } = await connections(owner, { [HVAC]: SAMPLE(HVAC) }, "spec"));
  });

  const describeIt = () => temporal.schedule.getHandle(`schedule/${connection.id}`).describe();

  it("daily: a calendar in the zone, overlap SKIP, the action starts scheduledRunWorkflow; the connection shows the next run", async () => {
    const put = await as(owner)("PUT", `/connections/${connection.id}/schedule`, {
      type: "daily",
      time: "10:15",
      timeZone: "america/new_york",
    });
    expect(put.status).toBe(200);
    expect(put.body.schedule).toMatchObject({
      type: "daily",
      time: "10:15",
      timeZone: "America/New_York",
      paused: false,
      revision: 1,
    });
    const d = await describeIt();
    expect(d.spec.timezone).toBe("America/New_York");
    expect(d.spec.calendars).toHaveLength(1); // 10:15 never falls into a DST gap: no catcher entry
    expect(d.spec.calendars![0].hour).toEqual([{ start: 10, end: 10, step: 1 }]);
    expect(d.spec.calendars![0].minute).toEqual([{ start: 15, end: 15, step: 1 }]);
    expect(d.spec.intervals).toEqual([]);
    expect(d.policies.overlap).toBe(ScheduleOverlapPolicy.SKIP);
    expect(d.action).toMatchObject({
      type: "startWorkflow",
      workflowType: "scheduledRunWorkflow",
      workflowId: `scheduled/${connection.id}`,
      taskQueue: "imodel-sync",
    });
    expect(d.action.args).toEqual([
      {
        connectionId: connection.id,
        iModelId: connection.iModelId,
        revision: 1,
        schedule: { type: "daily", time: "10:15", timeZone: "America/New_York" },
      },
    ]);

    const c = (await http("GET", `/connections/${connection.id}`)).body.connection;
    expect(c.schedule).toMatchObject({
      type: "daily",
      time: "10:15",
      timeZone: "America/New_York",
      description: "daily at 10:15 (America/New_York)",
    });
    expect(c.schedule.nextRunDateTime).toBe(d.info.nextActionTimes[0].toISOString());
    const got = await http("GET", `/connections/${connection.id}/schedule`);
    expect(got.body.schedule.temporal.nextActionTimes[0]).toBe(c.schedule.nextRunDateTime);
    expect(got.body.schedule.temporal._links.ui.href).toContain(encodeURIComponent(`schedule/${connection.id}`));
  });

  it("a time that can fall into a DST gap gets the catcher entry one hour later", async () => {
    await as(owner)("PUT", `/connections/${connection.id}/schedule`, {
      type: "daily",
      time: "02:30",
      timeZone: "Europe/Berlin",
    });
    const d = await describeIt();
    expect(d.spec.calendars!.map((c) => [c.hour[0].start, c.minute[0].start])).toEqual([
      [2, 30],
      [3, 30],
    ]);
  });

  it("changing the type replaces the whole spec (no stale calendars or intervals) and manual removes the schedule", async () => {
    const four = await as(owner)("PUT", `/connections/${connection.id}/schedule`, { type: "every4Hours" });
    expect(four.body.schedule).toMatchObject({ type: "every4Hours", revision: 3 });
    let d = await describeIt();
    expect(d.spec.calendars).toEqual([]);
    expect(d.spec.intervals).toEqual([{ every: 4 * 3_600_000 }]);
    expect(four.body.schedule.nextRunDateTime).toBe(d.info.nextActionTimes[0].toISOString());
    expect(Date.parse(four.body.schedule.nextRunDateTime) % (4 * 3_600_000)).toBe(0);

    await as(owner)("PUT", `/connections/${connection.id}/schedule`, {
      type: "weekly",
      dayOfWeek: "Tuesday",
      time: "18:00",
      timeZone: "Asia/Tokyo",
    });
    d = await describeIt();
    expect(d.spec.intervals).toEqual([]);
    expect(d.spec.calendars).toHaveLength(1);
    expect(d.spec.calendars![0].dayOfWeek).toEqual([{ start: "TUESDAY", end: "TUESDAY", step: 1 }]);
    expect(d.spec.timezone).toBe("Asia/Tokyo");
    const next = (await http("GET", `/connections/${connection.id}`)).body.connection.schedule.nextRunDateTime;
    expect(next).toBe(d.info.nextActionTimes[0].toISOString());

    const manual = await as(owner)("PUT", `/connections/${connection.id}/schedule`, { type: "manual" });
    expect(manual.body.schedule).toEqual({ type: "manual", nextRunDateTime: null });
    await expect(describeIt()).rejects.toBeInstanceOf(ScheduleNotFoundError);
    expect((await http("GET", `/connections/${connection.id}/schedule`)).body.schedule.temporal).toBeNull();
  });

  it("pauses and resumes (an admin may too); a manual schedule cannot be paused", async () => {
    expect((await as(owner)("POST", `/connections/${connection.id}/schedule/pause`, {})).body.error.code).toBe(
      "ScheduleIsManual",
    );
    await as(owner)("PUT", `/connections/${connection.id}/schedule`, { type: "daily", time: "06:00", timeZone: "UTC" });
    const paused = await as(owner)("POST", `/connections/${connection.id}/schedule/pause`, { note: "holidays" });
    expect(paused.status).toBe(200);
    expect(paused.body.schedule).toMatchObject({ paused: true, note: "holidays", nextRunDateTime: null });
    let d = await describeIt();
    expect(d.state).toMatchObject({ paused: true, note: "holidays" });
    const resumed = await http("POST", `/connections/${connection.id}/schedule/resume`, {});
    expect(resumed.body.schedule.paused).toBe(false);
    expect(resumed.body.schedule.nextRunDateTime).not.toBeNull();
    d = await describeIt();
    expect(d.state.paused).toBe(false);
  });
});

describe("scheduled runs", () => {
  it("run on behalf of the owner; a fire while the connection has an active run is recorded as Skipped", async () => {
    const {
      connections: [slow, hvac],
    } = await connections(owner, { [STRUCTURAL]: SAMPLE(STRUCTURAL), [HVAC]: SAMPLE(HVAC) }, "overlap");
    for (const c of [slow, hvac]) {
      expect(
        (
          await as(owner)("PUT", `/connections/${c.id}/schedule`, {
            type: "daily",
            time: "04:00",
            timeZone: "Europe/Berlin",
          })
        ).status,
      ).toBe(200);
    }
    // hvac's manual run waits in the iModel's queue behind the structural run: the schedule fires meanwhile.
    const a = await as(owner)("POST", `/connections/${slow.id}/run`);
    const b = await as(owner)("POST", `/connections/${hvac.id}/run`);
    expect([a.status, b.status]).toEqual([202, 202]);
    await triggerSchedule(temporal, `schedule/${hvac.id}`, ScheduleOverlapPolicy.SKIP);
    const [skipped] = await settled(hvac.id, 1);
    expect(skipped).toMatchObject({
      trigger: "schedule",
      state: "Completed",
      result: "Skipped",
      ownerId: owner.user.id,
    });
    expect(skipped.reason).toMatchObject({ code: "RunInProgress", target: b.location!.split("/").pop() });
    expect(skipped.scheduledFor.kind).toBe("trigger");
    expect(skipped.jobs).toEqual([]);
    const shown = (await http("GET", `/connections/${hvac.id}`)).body.connection;
    expect(shown.schedule.lastRun).toMatchObject({
      runId: skipped.id,
      outcome: "Skipped",
      reason: { code: "RunInProgress" },
    });
    await waitForRun(b.location!);

    // Nothing active now: the next fire runs, as the owner, and synchronizes.
    await triggerSchedule(temporal, `schedule/${hvac.id}`, ScheduleOverlapPolicy.SKIP);
    const runs = await settled(hvac.id, 2);
    const ran = runs.find((r) => r.id !== skipped.id)!;
    expect(ran).toMatchObject({ trigger: "schedule", ownerId: owner.user.id });
    const { run } = await waitForRun(`/connections/${hvac.id}/runs/${ran.id}`);
    expect(run.result).toBe("Success");
    expect(run.workflowId).toBe(`sync/${hvac.id}/${ran.id}`);
    expect((await http("GET", `/connections/${hvac.id}`)).body.connection.schedule.lastRun).toMatchObject({
      runId: ran.id,
      outcome: "Queued",
    });
    await waitForRun(a.location!);
  });
});

describe("DST: exactly one scheduled run per local day or week (Temporal backfill over the 2025 transitions)", () => {
  let connection: any;
  beforeAll(async () => {
    ({
      connections: [connection],
    } = await connections(owner, { [HVAC]: SAMPLE(HVAC) }, "dst"));
  });

  /** Backfills (BUFFER_ALL: the fires run one after the other, in time order) and returns the new scheduled runs. */
  async function backfill(ranges: [string, string][], before: number, expected: number): Promise<any[]> {
    await temporal.schedule.getHandle(`schedule/${connection.id}`).backfill(
      ranges.map(([start, end]) => ({
        start: new Date(start),
        end: new Date(end),
        overlap: ScheduleOverlapPolicy.BUFFER_ALL,
      })),
    );
    const runs = await settled(connection.id, before + expected);
    return runs.slice(0, runs.length - before); // newest first
  }

  function expectOnePerLocalDate(runs: any[], s: WallClockSchedule, localDates: string[]) {
    const byDate = new Map<string, any[]>();
    for (const r of runs) byDate.set(r.scheduledFor.localDate, [...(byDate.get(r.scheduledFor.localDate) ?? []), r]);
    expect([...byDate.keys()].sort()).toEqual(localDates);
    for (const [date, rs] of byDate) {
      expect(rs, date).toHaveLength(1);
      const [r] = rs;
      expect(r.scheduledFor).toMatchObject({ kind: "calendar", timeZone: s.timeZone });
      // It ran at the predicted occurrence: the first fire of that local day.
      expect(r.scheduledFor.scheduledDateTime, date).toBe(new Date(occurrenceInstant(s, date)).toISOString());
      expect(["Success", "Skipped"]).toContain(r.result);
      expect(r.ownerId).toBe(owner.user.id);
    }
  }

  it("daily 02:30 Europe/Berlin: spring-forward gap day runs once (03:30 CEST), fall-back overlap day runs once", async () => {
    const s: WallClockSchedule = { type: "daily", time: "02:30", timeZone: "Europe/Berlin" };
    expect((await as(owner)("PUT", `/connections/${connection.id}/schedule`, s)).status).toBe(200);
    const runs = await backfill(
      [
        ["2025-03-28T12:00:00Z", "2025-04-01T12:00:00Z"],
        ["2025-10-24T12:00:00Z", "2025-10-28T12:00:00Z"],
      ],
      0,
      8,
    );
    expectOnePerLocalDate(runs, s, [
      "2025-03-29",
      "2025-03-30",
      "2025-03-31",
      "2025-04-01",
      "2025-10-25",
      "2025-10-26",
      "2025-10-27",
      "2025-10-28",
    ]);
    const gapDay = runs.find((r) => r.scheduledFor.localDate === "2025-03-30");
    expect(gapDay.scheduledFor.scheduledDateTime).toBe("2025-03-30T01:30:00.000Z"); // 03:30 CEST: the first instant after the gap
    // Duplicates (the catcher on ordinary days) were dropped without run records; the workflows say so.
    const dropped = await temporal.workflow.count(
      `WorkflowType = "scheduledRunWorkflow" AND ConnectionId = "${connection.id}"`,
    );
    expect(dropped.count).toBeGreaterThan(8);
  });

  it("weekly on Sunday in America/New_York: 01:30 across the fall-back overlap, 02:30 across the spring-forward gap", async () => {
    const fall: WallClockSchedule = {
      type: "weekly",
      dayOfWeek: "Sunday",
      time: "01:30",
      timeZone: "America/New_York",
    };
    expect((await as(owner)("PUT", `/connections/${connection.id}/schedule`, fall)).status).toBe(200);
    let runs = await backfill([["2025-10-25T12:00:00Z", "2025-11-10T12:00:00Z"]], 8, 3);
    expectOnePerLocalDate(runs, fall, ["2025-10-26", "2025-11-02", "2025-11-09"]);
    expect(runs.find((r) => r.scheduledFor.localDate === "2025-11-02").scheduledFor.scheduledDateTime).toBe(
      "2025-11-02T05:30:00.000Z",
    ); // 01:30 EDT, once

    const spring: WallClockSchedule = {
      type: "weekly",
      dayOfWeek: "Sunday",
      time: "02:30",
      timeZone: "America/New_York",
    };
    expect((await as(owner)("PUT", `/connections/${connection.id}/schedule`, spring)).status).toBe(200);
    runs = await backfill([["2025-03-01T12:00:00Z", "2025-03-17T12:00:00Z"]], 11, 3);
    expectOnePerLocalDate(runs, spring, ["2025-03-02", "2025-03-09", "2025-03-16"]);
    expect(runs.find((r) => r.scheduledFor.localDate === "2025-03-09").scheduledFor.scheduledDateTime).toBe(
      "2025-03-09T07:30:00.000Z",
    ); // 03:30 EDT
  });
});

describe("schedules survive restarts", () => {
  it("still exist and fire after Temporal, the worker and the API restart on the same data", async () => {
    const {
      connections: [connection],
    } = await connections(owner, { [HVAC]: SAMPLE(HVAC) }, "restart");
    await as(owner)("PUT", `/connections/${connection.id}/schedule`, {
      type: "weekly",
      dayOfWeek: "Friday",
      time: "23:45",
      timeZone: "Australia/Sydney",
    });
    const before = await temporal.schedule.getHandle(`schedule/${connection.id}`).describe();

    await restartService("temporal");
    await restartService("worker");
    await restartService("api");
    await connectTemporal();

    const after = await temporal.schedule.getHandle(`schedule/${connection.id}`).describe();
    expect(after.spec).toEqual(before.spec);
    expect(after.action).toEqual(before.action);
    expect(after.state.paused).toBe(false);
    const shown = (await http("GET", `/connections/${connection.id}`)).body.connection;
    expect(shown.schedule).toMatchObject({
      type: "weekly",
      dayOfWeek: "Friday",
      time: "23:45",
      timeZone: "Australia/Sydney",
    });
    expect(shown.schedule.nextRunDateTime).toBe(after.info.nextActionTimes[0].toISOString());

    await triggerSchedule(temporal, `schedule/${connection.id}`, ScheduleOverlapPolicy.SKIP);
    const [queued] = await settled(connection.id, 1);
    expect(queued).toMatchObject({ trigger: "schedule", ownerId: owner.user.id });
    const { run } = await waitForRun(`/connections/${connection.id}/runs/${queued.id}`);
    expect(run.result).toBe("Success");
  });
});
