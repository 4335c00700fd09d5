/**
 * Sync schedules on the real stack: one Temporal Schedule per connection, validation and permissions, whole-spec
 * replacement on a type change, pause/resume, scheduled runs on behalf of the owner, a fire during an active run
 * recorded as Skipped, exactly one run per local day (week) across DST transitions (Temporal backfill over
 * Europe/Berlin's and America/New_York's transitions of last year), and schedules surviving restarts of Temporal, worker and API.
 */
import { Client, Connection, ScheduleNotFoundError, ScheduleOverlapPolicy } from "@temporalio/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DateTime } from "luxon";
import { occurrenceInstant, type WallClockSchedule } from "../domain/schedule";
import { temporalSpec } from "../lib/schedules";
import {
  createUser,
  eventually,
  http,
  httpAs,
  killService,
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

/** The year whose transitions the DST backfills cover: the previous one (the spec lists its gap dates). */
const YEAR = DateTime.utc().year - 1;

/** The instants whose wall clock in `zone` is `date` at `time`, by brute force every 15 minutes (independent of the code). */
function wallInstants(zone: string, date: string, time: string): number[] {
  const start = DateTime.fromISO(`${date}T00:00`, { zone: "UTC" }).minus({ days: 1 }).toMillis();
  const out: number[] = [];
  for (let t = start; t < start + 3 * 86_400_000; t += 15 * 60_000) {
    const local = DateTime.fromMillis(t, { zone });
    if (local.toISODate() === date && local.toFormat("HH:mm") === time) out.push(t);
  }
  return out;
}
const wallInstant = (zone: string, date: string, time: string) => {
  const [t] = wallInstants(zone, date, time);
  if (t === undefined) throw new Error(`no ${time} on ${date} in ${zone}`);
  return t;
};

/** The local date of the zone's spring-forward or fall-back transition in `year`, by scanning its UTC offsets. */
function transitionDay(zone: string, kind: "spring" | "fall", year = YEAR): string {
  let d = DateTime.fromObject({ year, month: 1, day: 1, hour: 12 }, { zone });
  for (let i = 0; i < 366; i++, d = d.plus({ days: 1 })) {
    const next = d.plus({ days: 1 });
    if (next.offset > d.offset && kind === "spring") return next.toISODate()!;
    if (next.offset < d.offset && kind === "fall") return next.toISODate()!;
  }
  throw new Error(`no ${kind} transition in ${zone} ${year}`);
}
const shift = (date: string, days: number) => DateTime.fromISO(date, { zone: "UTC" }).plus({ days }).toISODate()!;
/** A backfill range from noon UTC `before` days before to noon UTC `after` days after a local date. */
const around = (date: string, after = 2, before = 2): [string, string] => [
  `${shift(date, -before)}T12:00:00Z`,
  `${shift(date, after)}T12:00:00Z`,
];
/** The local dates a backfill `around(date)` covers in a European or American zone. */
const daysAround = (date: string) => [shift(date, -1), date, shift(date, 1), shift(date, 2)];

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

  it("a time that can fall into a DST gap gets a catcher entry one hour later on each gap date only", async () => {
    await as(owner)("PUT", `/connections/${connection.id}/schedule`, {
      type: "daily",
      time: "02:30",
      timeZone: "Europe/Berlin",
    });
    const d = await describeIt();
    const [main, ...catchers] = d.spec.calendars!;
    expect([main.hour[0].start, main.minute[0].start, main.year]).toEqual([2, 30, []]);
    // The previous year to three years ahead: one spring-forward date each, at 03:30.
    const year = DateTime.utc().year;
    expect(catchers.map((c) => c.year[0].start)).toEqual([year - 1, year, year + 1, year + 2, year + 3]);
    for (const c of catchers) {
      const date = `${c.year[0].start}-03-${String(c.dayOfMonth[0].start).padStart(2, "0")}`;
      expect(date).toBe(transitionDay("Europe/Berlin", "spring", c.year[0].start));
      expect([c.month[0].start, c.hour[0].start, c.minute[0].start]).toEqual(["MARCH", 3, 30]);
    }
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

describe("DST: exactly one scheduled run per local day or week (Temporal backfill over last year's transitions)", () => {
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

  it(`daily 02:30 Europe/Berlin: spring-forward gap day runs once (03:30 CEST), fall-back overlap day runs once (${YEAR})`, async () => {
    const s: WallClockSchedule = { type: "daily", time: "02:30", timeZone: "Europe/Berlin" };
    expect((await as(owner)("PUT", `/connections/${connection.id}/schedule`, s)).status).toBe(200);
    const spring = transitionDay("Europe/Berlin", "spring");
    const fall = transitionDay("Europe/Berlin", "fall");
    const runs = await backfill([around(spring), around(fall)], 0, 8);
    expectOnePerLocalDate(runs, s, [...daysAround(spring), ...daysAround(fall)].sort());
    const gapDay = runs.find((r) => r.scheduledFor.localDate === spring);
    // 03:30 CEST: the first instant after the gap (found by brute force, not by the code under test).
    expect(gapDay.scheduledFor.scheduledDateTime).toBe(
      new Date(wallInstant("Europe/Berlin", spring, "03:30")).toISOString(),
    );
    // No duplicates: the spec has no daily catcher any more, only the gap date's.
    const fires = await temporal.workflow.count(
      `WorkflowType = "scheduledRunWorkflow" AND ConnectionId = "${connection.id}"`,
    );
    expect(fires.count).toBe(8);
  });

  it(`weekly on Sunday in America/New_York: 01:30 across the fall-back overlap, 02:30 across the spring-forward gap (${YEAR})`, async () => {
    const fall: WallClockSchedule = {
      type: "weekly",
      dayOfWeek: "Sunday",
      time: "01:30",
      timeZone: "America/New_York",
    };
    // A connection of its own: the Berlin test's days are claimed for the other one (one run per local day).
    ({
      connections: [connection],
    } = await connections(owner, { [HVAC]: SAMPLE(HVAC) }, "dst new york"));
    expect((await as(owner)("PUT", `/connections/${connection.id}/schedule`, fall)).status).toBe(200);
    const fallDay = transitionDay("America/New_York", "fall");
    let runs = await backfill([around(fallDay, 8, 8)], 0, 3);
    expectOnePerLocalDate(runs, fall, [shift(fallDay, -7), fallDay, shift(fallDay, 7)]);
    expect(runs.find((r) => r.scheduledFor.localDate === fallDay).scheduledFor.scheduledDateTime).toBe(
      new Date(wallInstants("America/New_York", fallDay, "01:30")[0]).toISOString(),
    ); // 01:30 EDT, once (the second 01:30, EST, is dropped as the day's duplicate)

    const spring: WallClockSchedule = {
      type: "weekly",
      dayOfWeek: "Sunday",
      time: "02:30",
      timeZone: "America/New_York",
    };
    expect((await as(owner)("PUT", `/connections/${connection.id}/schedule`, spring)).status).toBe(200);
    const springDay = transitionDay("America/New_York", "spring");
    runs = await backfill([around(springDay, 8, 8)], 3, 3);
    expectOnePerLocalDate(runs, spring, [shift(springDay, -7), springDay, shift(springDay, 7)]);
    expect(runs.find((r) => r.scheduledFor.localDate === springDay).scheduledFor.scheduledDateTime).toBe(
      new Date(wallInstant("America/New_York", springDay, "03:30")).toISOString(),
    ); // 03:30 EDT
  });
});

describe("one scheduled run per occurrence, whatever the saves", () => {
  /** Backfills BUFFER_ALL and waits for `fires` more scheduled workflows to finish; returns the scheduled runs. */
  async function backfillFires(connectionId: string, range: [string, string], fires: number): Promise<any[]> {
    const query = `WorkflowType = "scheduledRunWorkflow" AND ConnectionId = "${connectionId}"`;
    const before = (await temporal.workflow.count(query)).count;
    await temporal.schedule
      .getHandle(`schedule/${connectionId}`)
      .backfill([{ start: new Date(range[0]), end: new Date(range[1]), overlap: ScheduleOverlapPolicy.BUFFER_ALL }]);
    await eventually(
      `${fires} scheduled workflows of ${connectionId}`,
      async () => {
        const all = (await temporal.workflow.count(query)).count;
        const open = (await temporal.workflow.count(`${query} AND ExecutionStatus = "Running"`)).count;
        return all >= before + fires && open === 0 ? true : null;
      },
      90_000,
      500,
    );
    const runs = await scheduledRuns(connectionId);
    await eventually(
      "scheduled runs completed",
      async () => ((await scheduledRuns(connectionId)).every((r) => r.state === "Completed") ? true : null),
      120_000,
      500,
    );
    return runs;
  }
  const put = (c: any, body: unknown) => as(owner)("PUT", `/connections/${c.id}/schedule`, body);
  const byDate = (runs: any[], date: string) => runs.filter((r) => r.scheduledFor.localDate === date);

  it("the issue's sequence: an identical save changes nothing; a changed time on a day that had its run waits for the next day", async () => {
    const {
      connections: [c],
    } = await connections(owner, { [HVAC]: SAMPLE(HVAC) }, "saves");
    const body = { type: "daily", time: "02:30", timeZone: "Europe/Berlin" };
    const first = await put(c, body);
    expect(first.body.schedule.revision).toBe(1);
    // The 02:30 fire of 2025-01-15 (01:30Z).
    let runs = await backfillFires(c.id, ["2025-01-15T01:00:00Z", "2025-01-15T02:00:00Z"], 1);
    expect(byDate(runs, "2025-01-15")).toHaveLength(1);
    const before = await temporal.schedule.getHandle(`schedule/${c.id}`).describe();

    // The same body again: same revision, Temporal not updated.
    const again = await put(c, body);
    expect(again.status).toBe(200);
    expect(again.body.schedule.revision).toBe(1);
    const after = await temporal.schedule.getHandle(`schedule/${c.id}`).describe();
    expect(after.info.lastUpdatedAt?.getTime()).toBe(before.info.lastUpdatedAt?.getTime());
    // What used to be the catcher's hour of that day: nothing fires, nothing runs.
    await temporal.schedule.getHandle(`schedule/${c.id}`).backfill([
      {
        start: new Date("2025-01-15T02:00:00Z"),
        end: new Date("2025-01-15T03:00:00Z"),
        overlap: ScheduleOverlapPolicy.BUFFER_ALL,
      },
    ]);
    // A changed time (03:00 CET = 02:00Z) on the day that had its run: its fire that day is dropped.
    const moved = await put(c, { ...body, time: "03:00" });
    expect(moved.body.schedule.revision).toBe(2);
    runs = await backfillFires(c.id, ["2025-01-15T01:45:00Z", "2025-01-15T02:15:00Z"], 1);
    expect(byDate(runs, "2025-01-15")).toHaveLength(1);
    expect(byDate(runs, "2025-01-15")[0].scheduledFor).toMatchObject({
      scheduledDateTime: "2025-01-15T01:30:00.000Z",
      revision: 1,
      occurrence: "day 2025-01-15",
    });
    // From the next day on, the new time.
    runs = await backfillFires(c.id, ["2025-01-16T00:00:00Z", "2025-01-16T23:00:00Z"], 1);
    expect(byDate(runs, "2025-01-16").map((r) => r.scheduledFor.scheduledDateTime)).toEqual([
      "2025-01-16T02:00:00.000Z",
    ]);
    expect(runs).toHaveLength(2);
  });

  it("switching between daily and weekly: at most one run per local day and, weekly, per ISO week", async () => {
    const {
      connections: [c],
    } = await connections(owner, { [HVAC]: SAMPLE(HVAC) }, "switches");
    const zone = "Europe/Berlin";
    // Wednesday 2025-01-15 (ISO week 2025-W03): the weekly run.
    await put(c, { type: "weekly", dayOfWeek: "Wednesday", time: "02:30", timeZone: zone });
    let runs = await backfillFires(c.id, ["2025-01-15T00:00:00Z", "2025-01-15T02:00:00Z"], 1);
    expect(runs.map((r) => r.scheduledFor.occurrence)).toEqual(["week 2025-W03"]);
    // Daily at 05:00 the same day: that day had its run; the next day runs.
    await put(c, { type: "daily", time: "05:00", timeZone: zone });
    runs = await backfillFires(c.id, ["2025-01-15T03:00:00Z", "2025-01-16T05:00:00Z"], 2);
    expect(byDate(runs, "2025-01-15")).toHaveLength(1);
    expect(byDate(runs, "2025-01-16")).toHaveLength(1);
    // Weekly again, on Friday 2025-01-17: the week 2025-W03 had its weekly run, so the Friday after runs.
    await put(c, { type: "weekly", dayOfWeek: "Friday", time: "06:00", timeZone: zone });
    runs = await backfillFires(c.id, ["2025-01-17T00:00:00Z", "2025-01-24T12:00:00Z"], 2);
    expect(byDate(runs, "2025-01-17")).toHaveLength(0);
    expect(byDate(runs, "2025-01-24").map((r) => r.scheduledFor.occurrence)).toEqual(["week 2025-W04"]);
    // Back to daily on the 24th, later that day: the day had its (weekly) run.
    await put(c, { type: "daily", time: "09:00", timeZone: zone });
    runs = await backfillFires(c.id, ["2025-01-24T06:00:00Z", "2025-01-25T09:00:00Z"], 2);
    expect(byDate(runs, "2025-01-24")).toHaveLength(1);
    expect(byDate(runs, "2025-01-25")).toHaveLength(1);
    expect(runs).toHaveLength(4);
  });

  it("every 4 hours: one run per 4-hour slot, also when the same slot fires again after a save", async () => {
    const {
      connections: [c],
    } = await connections(owner, { [HVAC]: SAMPLE(HVAC) }, "slots");
    await put(c, { type: "every4Hours" });
    let runs = await backfillFires(c.id, ["2025-01-15T07:00:00Z", "2025-01-15T09:00:00Z"], 1);
    expect(runs.map((r) => r.scheduledFor.occurrence)).toEqual(["slot 2025-01-15T08:00:00.000Z"]);
    await put(c, { type: "daily", time: "10:00", timeZone: "UTC" });
    await put(c, { type: "every4Hours" });
    runs = await backfillFires(c.id, ["2025-01-15T07:00:00Z", "2025-01-15T13:00:00Z"], 2);
    expect(runs.map((r) => r.scheduledFor.occurrence).sort()).toEqual([
      "slot 2025-01-15T08:00:00.000Z",
      "slot 2025-01-15T12:00:00.000Z",
    ]);
  });

  it("today: a new time after today's run shows tomorrow in nextRunDateTime and in Temporal's upcoming runs; before the run it moves it", async () => {
    const {
      connections: [c],
    } = await connections(owner, { [HVAC]: SAMPLE(HVAC) }, "today");
    // A zone where it is now between 03:00 and 21:00, so that an hour before and after now are the same local day.
    const zone = ["UTC", "Asia/Tokyo", "America/New_York"].find((z) => {
      const h = DateTime.now().setZone(z).hour;
      return h >= 3 && h < 21;
    })!;
    const now = DateTime.now().setZone(zone);
    const hhmm = (t: DateTime) => t.toFormat("HH:mm");
    const today = now.toISODate()!;
    // Before today's run: a later time moves it (still today).
    const later = await put(c, { type: "daily", time: hhmm(now.plus({ hours: 1 })), timeZone: zone });
    const laterStill = await put(c, { type: "daily", time: hhmm(now.plus({ hours: 2 })), timeZone: zone });
    expect(DateTime.fromISO(laterStill.body.schedule.nextRunDateTime).setZone(zone).toISODate()).toBe(today);
    expect(laterStill.body.schedule.nextRunDateTime).not.toBe(later.body.schedule.nextRunDateTime);
    expect(laterStill.body.schedule.skipDates).toBeUndefined();

    // Today's run at an earlier time (backfilled: it is past).
    const earlier = now.minus({ hours: 1 }).startOf("minute");
    await put(c, { type: "daily", time: hhmm(earlier), timeZone: zone });
    const runs = await backfillFires(
      c.id,
      [earlier.minus({ minutes: 5 }).toISO()!, earlier.plus({ minutes: 5 }).toISO()!],
      1,
    );
    expect(runs.map((r) => r.scheduledFor.localDate)).toEqual([today]);

    // A time later today: today already had its run, so it runs from tomorrow, and both the API and Temporal say so.
    const moved = await put(c, { type: "daily", time: hhmm(now.plus({ hours: 2 })), timeZone: zone });
    expect(moved.body.schedule.skipDates).toEqual([today]);
    const next = DateTime.fromISO(moved.body.schedule.nextRunDateTime).setZone(zone);
    expect(next.toISODate()).toBe(now.plus({ days: 1 }).toISODate());
    const got = (await http("GET", `/connections/${c.id}/schedule`)).body.schedule;
    expect(got.temporal.nextActionTimes[0]).toBe(moved.body.schedule.nextRunDateTime);
    const d = await temporal.schedule.getHandle(`schedule/${c.id}`).describe();
    expect(d.spec.skip).toHaveLength(1);
  });
});

describe("Temporal's upcoming runs are the runs that will happen: exactly one per local day", () => {
  it("a daily 02:30 Europe/Berlin schedule lists one time per day, the first being the connection's nextRunDateTime", async () => {
    const {
      connections: [c],
    } = await connections(owner, { [HVAC]: SAMPLE(HVAC) }, "upcoming");
    const put = await as(owner)("PUT", `/connections/${c.id}/schedule`, {
      type: "daily",
      time: "02:30",
      timeZone: "Europe/Berlin",
    });
    const d = await temporal.schedule.getHandle(`schedule/${c.id}`).describe();
    const times = d.info.nextActionTimes.map((t) => t.toISOString());
    expect(times.length).toBeGreaterThanOrEqual(5);
    const days = times.map((t) => DateTime.fromISO(t).setZone("Europe/Berlin").toISODate());
    expect(new Set(days).size).toBe(times.length);
    expect(times[0]).toBe(put.body.schedule.nextRunDateTime);
    // The catcher entries name explicit gap dates of the coming years.
    const catchers = d.spec.calendars!.slice(1);
    expect(catchers.length).toBeGreaterThanOrEqual(4);
    for (const e of catchers) {
      expect(e.year).toHaveLength(1);
      expect(e.month[0].start).toBe("MARCH");
      expect([e.hour[0].start, e.minute[0].start]).toEqual([3, 30]);
    }
  });

  // Around the next transitions (months away), seen through a schedule with the same spec that starts just before.
  for (const [zone, time, kind] of [
    ["Europe/Berlin", "02:30", "spring"],
    ["America/New_York", "02:30", "spring"],
    ["Europe/Berlin", "02:30", "fall"],
  ] as const) {
    it(`${zone} ${time} over the next ${kind} transition: one per day, at the occurrence`, async () => {
      const s: WallClockSchedule = { type: "daily", time, timeZone: zone };
      const day = transitionDay(zone, kind, DateTime.now().year + 1);
      const id = `upcoming-${zone.replace("/", "-")}-${kind}-${Date.now()}`;
      await temporal.schedule.create({
        scheduleId: id,
        spec: { ...temporalSpec(s), startAt: DateTime.fromISO(day, { zone }).minus({ days: 3 }).toJSDate() },
        action: { type: "startWorkflow", workflowType: "none", workflowId: id, taskQueue: "nobody", args: [] },
        state: { paused: false },
      });
      try {
        const d = await temporal.schedule.getHandle(id).describe();
        const times = d.info.nextActionTimes.map((t) => t.getTime());
        const days = times.map((t) => DateTime.fromMillis(t).setZone(zone).toISODate());
        expect(new Set(days).size).toBe(times.length);
        expect(days).toContain(day);
        for (const [i, t] of times.entries()) expect(t, days[i]!).toBe(occurrenceInstant(s, days[i]!));
      } finally {
        await temporal.schedule.getHandle(id).delete();
      }
    });
  }
});

describe("text Temporal refuses, and Temporal failing during a change: the record never says paused while Temporal runs", () => {
  let connection: any;
  beforeAll(async () => {
    ({
      connections: [connection],
    } = await connections(owner, { [HVAC]: SAMPLE(HVAC) }, "refusals"));
    await as(owner)("PUT", `/connections/${connection.id}/schedule`, { type: "daily", time: "06:00", timeZone: "UTC" });
  });
  const describeIt = () => temporal.schedule.getHandle(`schedule/${connection.id}`).describe();
  const shown = async () => (await http("GET", `/connections/${connection.id}`)).body.connection.schedule;

  /**
   * Stops Temporal for `fn`, then starts it again on the same data and reconnects (the API is restarted too, so that its
   * gRPC channel does not sit in its reconnect back-off, up to 2 minutes).
   */
  async function withTemporalDown(fn: () => Promise<void>): Promise<void> {
    killService("temporal");
    try {
      await fn();
    } finally {
      await restartService("temporal");
      await restartService("api");
      await connectTemporal();
    }
  }

  /** A request by the owner, repeated while it answers 503 (Temporal just restarted). */
  const accepted = (method: string, p: string, body?: unknown) =>
    eventually(
      `${method} ${p} to be accepted`,
      async () => {
        const r = await as(owner)(method, p, body);
        return r.status === 503 ? null : r;
      },
      120_000,
      2000,
    );

  it("a note that is not well-formed Unicode, or too long in bytes, is 400 with a clear message; nothing is paused", async () => {
    for (const note of ["holi\ud800days", "\udc00", "€".repeat(334), "x".repeat(501)]) {
      const res = await as(owner)("POST", `/connections/${connection.id}/schedule/pause`, { note });
      expect(res.status, JSON.stringify(note.slice(0, 12))).toBe(400);
      expect(res.body.error.code).toBe("InvalidRequest");
      expect(res.body.error.details[0].target).toBe("note");
    }
    const bad = await as(owner)("POST", `/connections/${connection.id}/schedule/pause`, { note: "a\ud800" });
    expect(bad.body.error.message).toContain("well-formed Unicode");
    expect(
      (await as(owner)("POST", `/connections/${connection.id}/schedule/pause`, { note: "€".repeat(334) })).body.error
        .message,
    ).toContain("1000 bytes");
    expect((await shown()).paused).toBe(false);
    expect((await describeIt()).state.paused).toBe(false);
    // A name that is not well-formed Unicode never reaches Temporal's summary either.
    const rename = await as(owner)("PATCH", `/connections/${connection.id}`, { displayName: "bad \ud800 name" });
    expect(rename.status).toBe(400);
  });

  it(
    "Temporal down: pause, resume and a schedule change answer 503 and the record keeps what Temporal has",
    { timeout: 240_000 },
    async () => {
      const revision = (await shown()).revision;
      await withTemporalDown(async () => {
        const pause = await as(owner)("POST", `/connections/${connection.id}/schedule/pause`, { note: "down" });
        expect(pause.status, JSON.stringify(pause.body)).toBe(503);
        expect(pause.body.error.code).toBe("DependencyUnavailable");
        const change = await as(owner)("PUT", `/connections/${connection.id}/schedule`, { type: "every4Hours" });
        expect(change.status).toBe(503);
        const s = await shown();
        expect(s).toMatchObject({ paused: false, revision, type: "daily" });
      });
      let d = await describeIt();
      expect(d.state.paused).toBe(false);
      expect((d.action as any).args[0].revision).toBe(revision);

      expect((await accepted("POST", `/connections/${connection.id}/schedule/pause`, { note: "up" })).status).toBe(200);
      await withTemporalDown(async () => {
        const resume = await as(owner)("POST", `/connections/${connection.id}/schedule/resume`, {});
        expect(resume.status).toBe(503);
        expect(await shown()).toMatchObject({ paused: true, note: "up" });
      });
      d = await describeIt();
      expect(d.state).toMatchObject({ paused: true, note: "up" });
      expect((await accepted("POST", `/connections/${connection.id}/schedule/resume`, {})).status).toBe(200);
      expect((await describeIt()).state.paused).toBe(false);
    },
  );

  it("Temporal running the schedule while the record says paused (a double failure): no fire runs, and Temporal is paused again", async () => {
    expect((await as(owner)("POST", `/connections/${connection.id}/schedule/pause`, { note: "paused" })).status).toBe(
      200,
    );
    const handle = temporal.schedule.getHandle(`schedule/${connection.id}`);
    await handle.unpause("behind the service's back");
    const query = `WorkflowType = "scheduledRunWorkflow" AND ConnectionId = "${connection.id}"`;
    const before = (await temporal.workflow.count(query)).count;
    await handle.backfill([
      {
        start: new Date("2025-02-03T05:00:00Z"),
        end: new Date("2025-02-03T07:00:00Z"),
        overlap: ScheduleOverlapPolicy.BUFFER_ALL,
      },
    ]);
    await eventually(
      "the fire to be handled",
      async () =>
        (await temporal.workflow.count(query)).count > before &&
        (await temporal.workflow.count(`${query} AND ExecutionStatus = "Running"`)).count === 0
          ? true
          : null,
      60_000,
      500,
    );
    expect(await scheduledRuns(connection.id)).toEqual([]);
    expect((await handle.describe()).state.paused).toBe(true);
    // A read repairs it too.
    await handle.unpause("again");
    const got = (await http("GET", `/connections/${connection.id}/schedule`)).body.schedule;
    expect(got.paused).toBe(true);
    expect(got.temporal.paused).toBe(true);
  });

  it("an owner change with Temporal down answers 503 and the owner stays", { timeout: 120_000 }, async () => {
    // The other user interacts with the iModel (and is added to its team where the API has explicit teams).
    await as(other)("GET", `/imodels/${connection.iModelId}`);
    await http("POST", `/imodels/${connection.iModelId}/members`, { userId: other.user.id, role: "member" });
    await as(other)("GET", `/imodels/${connection.iModelId}`);
    await withTemporalDown(async () => {
      const res = await as(owner)("POST", `/connections/${connection.id}/owner`, { userId: other.user.id });
      expect(res.status, JSON.stringify(res.body)).toBe(503);
      expect((await http("GET", `/connections/${connection.id}`)).body.connection.owner.id).toBe(owner.user.id);
    });
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
