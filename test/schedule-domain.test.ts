/**
 * Pure rules of schedules and owner tokens (no stack needed): validation, the DST occurrence logic for Europe/Berlin and
 * America/New_York on both transition days, Temporal calendar entries, next run times, token rules.
 */
import { DateTime } from "luxon";
import { describe, expect, it } from "vitest";
import {
  calendarEntries,
  classifyFire,
  inGap,
  inOverlap,
  datesAlreadyRun,
  gapCatcherDates,
  isoWeekOf,
  nextRunAfter,
  occurrenceClaimKeys,
  skipEntries,
  upcomingOccurrences,
  occurrenceInstant,
  scheduleBody,
  type ScheduleInput,
  type WallClockSchedule,
} from "../domain/schedule";
import { DAY_MS, issueToken, tokenDurations, tokenIsValid, tokenMirror, visitMatters } from "../domain/token";

const daily = (time: string, timeZone: string): WallClockSchedule => ({ type: "daily", time, timeZone });

/**
 * The instants whose wall clock in `zone` is `date` at `time`, found by brute force (every 15 minutes over three days;
 * every zone offset in use is a multiple of 15 minutes), independently of the code under test.
 */
function wallInstants(zone: string, date: string, time: string): number[] {
  const start = DateTime.fromISO(`${date}T00:00`, { zone: "UTC" }).minus({ days: 1 }).toMillis();
  const out: number[] = [];
  for (let t = start; t < start + 3 * DAY_MS; t += 15 * 60_000) {
    const local = DateTime.fromMillis(t, { zone });
    if (local.toISODate() === date && local.toFormat("HH:mm") === time) out.push(t);
  }
  return out;
}

const plusHour = (time: string) => {
  const [h, m] = time.split(":").map(Number);
  return `${String((h + 1) % 24).padStart(2, "0")}:${String(m).padStart(2, "0")}`;
};

const dates = (from: string, days: number) =>
  Array.from({ length: days }, (_, i) => DateTime.fromISO(from, { zone: "UTC" }).plus({ days: i }).toISODate()!);

/**
 * The instance of a repeated wall time Go's time.Date picks (a model of the Temporal server): the offset in effect at
 * the wall time read as UTC, if consistent.
 */
function goChoice(zone: string, instances: number[], date: string, time: string): number {
  const naiveMs = Date.parse(`${date}T${time}:00Z`);
  const offsetAt = (ms: number) => DateTime.fromMillis(ms, { zone }).offset;
  const guess = offsetAt(naiveMs);
  const utc = naiveMs - guess * 60_000;
  const chosen = offsetAt(utc) === guess ? utc : naiveMs - offsetAt(utc) * 60_000;
  return instances.includes(chosen) ? chosen : instances[0];
}

/**
 * Every fire a Temporal Schedule with the spec's calendar entries makes over `days` local days, the way a calendar
 * follows the literal wall clock: no fire for a wall time that does not exist; for one that exists twice, both
 * instances (`overlap: "both"`, what the Temporal dev server does in America/New_York) or only Go's choice (`"go"`,
 * what it does in Europe/Berlin).
 */
function temporalFires(s: WallClockSchedule, from: string, days: number, overlap: "both" | "go"): number[] {
  const fires: number[] = [];
  const year = Number(from.slice(0, 4));
  const entries = calendarEntries(s, gapCatcherDates(s, year - 1, year + 1));
  for (const date of dates(from, days)) {
    const day = DateTime.fromISO(date, { zone: "UTC" });
    const weekday = day.toFormat("cccc").toUpperCase();
    for (const e of entries) {
      if (e.dayOfWeek && e.dayOfWeek !== weekday) continue;
      if (e.year !== undefined && e.year !== day.year) continue;
      if (e.month !== undefined && e.month !== day.toFormat("MMMM").toUpperCase()) continue;
      if (e.dayOfMonth !== undefined && e.dayOfMonth !== day.day) continue;
      const wall = `${String(e.hour).padStart(2, "0")}:${String(e.minute).padStart(2, "0")}`;
      const at = wallInstants(s.timeZone, date, wall);
      fires.push(...(overlap === "go" && at.length === 2 ? [goChoice(s.timeZone, at, date, wall)] : at));
    }
  }
  return fires.sort((a, b) => a - b);
}

/** What the scheduled workflow does with a stream of fires: the first fire of a local date runs, the others are dropped. */
function runsOf(s: ScheduleInput, fires: number[]): Map<string, number> {
  const runs = new Map<string, number>();
  for (const f of fires) {
    const c = classifyFire(s, new Date(f));
    if (c.kind !== "calendar") throw new Error(`fire ${new Date(f).toISOString()} not recognised as an occurrence`);
    if (!runs.has(c.localDate)) runs.set(c.localDate, f);
  }
  return runs;
}

const local = (ms: number, zone: string) => DateTime.fromMillis(ms, { zone }).toFormat("yyyy-MM-dd HH:mm ZZ");

describe("schedule request validation", () => {
  it("accepts the four types and canonicalises IANA zones", () => {
    expect(scheduleBody.parse({ type: "manual" })).toEqual({ type: "manual" });
    expect(scheduleBody.parse({ type: "every4Hours" })).toEqual({ type: "every4Hours" });
    expect(scheduleBody.parse({ type: "daily", time: "02:30", timeZone: "europe/berlin" })).toEqual({
      type: "daily",
      time: "02:30",
      timeZone: "Europe/Berlin",
    });
    expect(
      scheduleBody.parse({ type: "weekly", dayOfWeek: "sunday", time: "23:59", timeZone: "America/New_York" }),
    ).toEqual({
      type: "weekly",
      dayOfWeek: "Sunday",
      time: "23:59",
      timeZone: "America/New_York",
    });
    expect(scheduleBody.parse({ type: "daily", time: "00:00", timeZone: "UTC" }).type).toBe("daily");
  });

  it("refuses bad times, unknown zones, unknown types and stray fields", () => {
    for (const body of [
      { type: "daily", time: "24:00", timeZone: "UTC" },
      { type: "daily", time: "7:30", timeZone: "UTC" },
      { type: "daily", time: "07:60", timeZone: "UTC" },
      { type: "daily", time: "07:30", timeZone: "Mars/Olympus_Mons" },
      { type: "daily", time: "07:30", timeZone: "+01:00" },
      { type: "daily", time: "07:30" },
      { type: "weekly", dayOfWeek: "Someday", time: "07:30", timeZone: "UTC" },
      { type: "hourly" },
      { type: "every4Hours", time: "07:30" },
    ]) {
      expect(scheduleBody.safeParse(body).success, JSON.stringify(body)).toBe(false);
    }
  });
});

describe("DST: exactly one scheduled run per local day", () => {
  const cases = [
    // zone, time, transition day, what happens to the time that day
    { zone: "Europe/Berlin", time: "02:30", day: "2025-03-30", kind: "gap" },
    { zone: "Europe/Berlin", time: "02:30", day: "2025-10-26", kind: "overlap" },
    { zone: "America/New_York", time: "02:30", day: "2025-03-09", kind: "gap" },
    { zone: "America/New_York", time: "01:30", day: "2025-11-02", kind: "overlap" },
  ] as const;

  for (const c of cases) {
    describe(`${c.zone} ${c.time} around ${c.day} (${c.kind})`, () => {
      const s = daily(c.time, c.zone);
      const from = DateTime.fromISO(c.day, { zone: "UTC" }).minus({ days: 2 }).toISODate()!;

      it(`knows the time is in the ${c.kind} that day and nowhere near it the days before and after`, () => {
        expect(c.kind === "gap" ? inGap(s, c.day) : inOverlap(s, c.day)).toBe(true);
        for (const d of [dates(from, 1)[0], dates(c.day, 3)[2]]) {
          expect(inGap(s, d)).toBe(false);
          expect(inOverlap(s, d)).toBe(false);
        }
      });

      for (const overlap of ["both", "go"] as const) {
        it(`runs once per local day whatever the server does in an overlap (${overlap})`, () => {
          const fires = temporalFires(s, from, 5, overlap);
          const runs = runsOf(s, fires);
          expect([...runs.keys()]).toEqual(dates(from, 5));
          for (const [date, at] of runs) {
            const expected = wallInstants(c.zone, date, c.time);
            if (date === c.day && c.kind === "gap") {
              // No 02:30 that day: it runs at the first fire after the gap, 03:30 local.
              expect(expected).toEqual([]);
              expect(local(at, c.zone)).toBe(
                `${date} ${plusHour(c.time)} ${DateTime.fromMillis(at, { zone: c.zone }).toFormat("ZZ")}`,
              );
              expect(at).toBe(occurrenceInstant(s, date));
            } else if (date === c.day) {
              // Runs once, at the first fire of the day.
              expect(expected).toHaveLength(2);
              expect(at).toBe(overlap === "both" ? expected[0] : goChoice(c.zone, expected, date, c.time));
            } else {
              expect(expected).toHaveLength(1);
              expect(at).toBe(expected[0]);
              expect(at).toBe(occurrenceInstant(s, date));
            }
          }
          // With Go's choice as the first fire (what the server does), the predicted occurrence is the fire that runs.
          if (overlap === "go") for (const [date, at] of runs) expect(at).toBe(occurrenceInstant(s, date));
        });
      }

      it("adds a DST catcher entry one hour later on the gap dates only, one per year", () => {
        const gaps = gapCatcherDates(s, 2024, 2027);
        const entries = calendarEntries(s, gaps);
        const hour = Number(c.time.slice(0, 2));
        if (c.kind === "overlap" && c.zone === "America/New_York") {
          expect(gaps).toEqual([]); // 01:30 is only ever repeated, never skipped, in New York
          expect(entries).toHaveLength(1);
          return;
        }
        // The gap dates of 2024 to 2027, each an explicit date at the wall time the run happens (03:30).
        expect(gaps).toHaveLength(4);
        for (const g of gaps) {
          expect(wallInstants(c.zone, g.localDate, c.time)).toEqual([]);
          expect(wallInstants(c.zone, g.localDate, plusHour(c.time))).toEqual([g.instant]);
        }
        expect(gaps.map((g) => g.localDate)).toContain(
          c.kind === "gap" ? c.day : c.zone === "Europe/Berlin" ? "2025-03-30" : "",
        );
        expect(entries[0]).toMatchObject({ hour, minute: 30 });
        expect(entries[0].year).toBeUndefined();
        for (const [i, g] of gaps.entries()) {
          const [y, m, d] = g.localDate.split("-").map(Number);
          expect(entries[i + 1]).toMatchObject({ year: y, dayOfMonth: d, hour: hour + 1, minute: 30 });
          expect(entries[i + 1].month).toBe(DateTime.fromObject({ month: m }).toFormat("MMMM").toUpperCase());
        }
      });
    });
  }

  it("predicts the instants the Temporal dev server was measured to fire first on the four transition days", () => {
    expect(new Date(occurrenceInstant(daily("02:30", "Europe/Berlin"), "2025-03-30")).toISOString()).toBe(
      "2025-03-30T01:30:00.000Z",
    ); // 03:30 CEST
    expect(new Date(occurrenceInstant(daily("02:30", "Europe/Berlin"), "2025-10-26")).toISOString()).toBe(
      "2025-10-26T01:30:00.000Z",
    ); // 02:30 CET
    expect(new Date(occurrenceInstant(daily("02:30", "America/New_York"), "2025-03-09")).toISOString()).toBe(
      "2025-03-09T07:30:00.000Z",
    ); // 03:30 EDT
    expect(new Date(occurrenceInstant(daily("01:30", "America/New_York"), "2025-11-02")).toISOString()).toBe(
      "2025-11-02T05:30:00.000Z",
    ); // 01:30 EDT
  });

  it("weekly: one run per week on its weekday across both Berlin transitions", () => {
    const s: WallClockSchedule = { type: "weekly", dayOfWeek: "Sunday", time: "02:30", timeZone: "Europe/Berlin" };
    for (const from of ["2025-03-16", "2025-10-12"]) {
      const runs = runsOf(s, temporalFires(s, from, 28, "both"));
      expect([...runs.keys()].map((d) => DateTime.fromISO(d).toFormat("cccc"))).toEqual([
        "Sunday",
        "Sunday",
        "Sunday",
        "Sunday",
      ]);
    }
  });

  it("a gap at midnight: the catcher is on the gap date at the first minute after it (America/Santiago 00:30)", () => {
    const s = daily("00:30", "America/Santiago");
    const gaps = gapCatcherDates(s, 2025, 2025);
    expect(gaps).toHaveLength(1);
    expect(wallInstants("America/Santiago", gaps[0].localDate, "00:30")).toEqual([]);
    expect(wallInstants("America/Santiago", gaps[0].localDate, "01:30")).toEqual([gaps[0].instant]);
    expect(classifyFire(s, new Date(gaps[0].instant))).toMatchObject({
      kind: "calendar",
      localDate: gaps[0].localDate,
    });
    // A daily catcher of an earlier release's spec (T+1h every day) is still recognised, as the day's duplicate.
    const berlin = daily("23:30", "Europe/Berlin");
    const catcher = DateTime.fromISO("2025-06-11T00:30", { zone: "Europe/Berlin" }).toJSDate();
    expect(classifyFire(berlin, catcher)).toMatchObject({ kind: "calendar", localDate: "2025-06-10" });
  });

  it("needs no catcher where no transition touches the time", () => {
    for (const s of [
      daily("10:00", "Europe/Berlin"),
      daily("02:30", "UTC"),
      daily("02:30", "Asia/Tokyo"),
      daily("01:30", "America/New_York"),
    ])
      expect(gapCatcherDates(s, 2024, 2028), `${s.time} ${s.timeZone}`).toEqual([]);
    expect(gapCatcherDates(daily("02:15", "America/New_York"), 2024, 2028).map((g) => g.localDate)).toEqual([
      "2024-03-10",
      "2025-03-09",
      "2026-03-08",
      "2027-03-14",
      "2028-03-12",
    ]);
    // Weekly: only the gap dates on its weekday (the transitions are on Sundays in both zones).
    const weekly: WallClockSchedule = {
      type: "weekly",
      dayOfWeek: "Saturday",
      time: "02:30",
      timeZone: "Europe/Berlin",
    };
    expect(gapCatcherDates(weekly, 2024, 2028)).toEqual([]);
  });

  it("treats a fire at no occurrence instant (started by hand) as a trigger, and every 4 hours as interval fires", () => {
    const s = daily("02:30", "Europe/Berlin");
    expect(classifyFire(s, new Date("2025-06-10T11:12:13.456Z"))).toEqual({ kind: "trigger" });
    expect(classifyFire({ type: "every4Hours" }, new Date("2025-06-10T08:00:00Z"))).toEqual({ kind: "interval" });
    expect(classifyFire({ type: "every4Hours" }, new Date("2025-06-10T08:00:00.400Z"))).toEqual({ kind: "interval" });
    // every 4 hours, started by hand inside a slot: a trigger, which always runs (it claims no slot)
    for (const at of ["2025-06-10T08:00:01Z", "2025-06-10T09:30:00Z", "2025-06-10T11:59:59.999Z"])
      expect(classifyFire({ type: "every4Hours" }, new Date(at))).toEqual({ kind: "trigger" });
  });
});

describe("occurrences and their claims", () => {
  it("claims the local day (daily), the ISO week and the day (weekly), the 4-hour slot (every 4 hours), whatever the revision", () => {
    const at = new Date("2025-01-15T01:30:00Z");
    const d = daily("02:30", "Europe/Berlin");
    expect(occurrenceClaimKeys("c1", d, classifyFire(d, at), at)).toEqual({
      keys: ["c1:day:2025-01-15"],
      occurrence: "day 2025-01-15",
    });
    const w: WallClockSchedule = { type: "weekly", dayOfWeek: "Wednesday", time: "02:30", timeZone: "Europe/Berlin" };
    expect(occurrenceClaimKeys("c1", w, classifyFire(w, at), at)).toEqual({
      keys: ["c1:week:2025-W03", "c1:day:2025-01-15"],
      occurrence: "week 2025-W03",
    });
    const slotFire = new Date("2025-01-15T08:00:00Z");
    expect(occurrenceClaimKeys("c1", { type: "every4Hours" }, { kind: "interval" }, slotFire)).toEqual({
      keys: ["c1:slot:2025-01-15T08:00:00.000Z"],
      occurrence: "slot 2025-01-15T08:00:00.000Z",
    });
    expect(occurrenceClaimKeys("c1", d, { kind: "trigger" }, at)).toEqual({ keys: [] });
    // ISO weeks: the week of 2024-12-30 (a Monday) is 2025-W01; 2027-01-03 (a Sunday) is in 2026-W53.
    expect(isoWeekOf("2024-12-30")).toBe("2025-W01");
    expect(isoWeekOf("2027-01-03")).toBe("2026-W53");
  });

  it("a changed time on a day that had its run takes effect the next day; before the run it moves it", () => {
    const now = Date.parse("2025-01-15T06:00:00Z"); // 07:00 in Berlin: the 02:30 run of the 15th happened
    const s = daily("10:00", "Europe/Berlin");
    const upcoming = upcomingOccurrences("c1", s, now);
    expect(upcoming.map((o) => o.localDate)).toEqual(["2025-01-15", "2025-01-16"]);
    const ran = new Set(["c1:day:2025-01-15"]);
    const skip = datesAlreadyRun(upcoming, (k) => ran.has(k));
    expect(skip).toEqual(["2025-01-15"]);
    expect(nextRunAfter(s, now, skip)!.toISOString()).toBe("2025-01-16T09:00:00.000Z");
    // Nothing ran yet today: the new time is today's run.
    expect(datesAlreadyRun(upcoming, () => false)).toEqual([]);
    expect(nextRunAfter(s, now)!.toISOString()).toBe("2025-01-15T09:00:00.000Z");
    // Weekly on the same day: the day (or its week) had its run, so the next is a week later.
    const w: WallClockSchedule = { type: "weekly", dayOfWeek: "Wednesday", time: "10:00", timeZone: "Europe/Berlin" };
    const wUp = upcomingOccurrences("c1", w, now);
    expect(wUp).toHaveLength(1);
    expect(wUp[0].keys).toEqual(["c1:week:2025-W03", "c1:day:2025-01-15"]);
    const wSkip = datesAlreadyRun(wUp, (k) => ran.has(k));
    expect(nextRunAfter(w, now, wSkip)!.toISOString()).toBe("2025-01-22T09:00:00.000Z");
    // A weekly schedule moved to Friday in a week that had its weekly run runs the Friday after.
    const friday: WallClockSchedule = { ...w, dayOfWeek: "Friday" };
    const fUp = upcomingOccurrences("c1", friday, now);
    const fSkip = datesAlreadyRun(fUp, (k) => k === "c1:week:2025-W03");
    expect(fSkip).toEqual(["2025-01-17"]);
    expect(nextRunAfter(friday, now, fSkip)!.toISOString()).toBe("2025-01-24T09:00:00.000Z");
    // The skipped dates go to Temporal as whole skipped days.
    expect(skipEntries(s, skip)).toEqual([
      expect.objectContaining({ year: 2025, month: "JANUARY", dayOfMonth: 15, hour: "*", minute: "*", second: "*" }),
    ]);
  });
});

describe("next run", () => {
  it("daily: the next occurrence, also across the spring-forward gap", () => {
    const s = daily("02:30", "Europe/Berlin");
    expect(nextRunAfter(s, Date.parse("2025-03-29T12:00:00Z"))!.toISOString()).toBe("2025-03-30T01:30:00.000Z"); // 03:30 CEST
    expect(nextRunAfter(s, Date.parse("2025-03-30T01:30:00Z"))!.toISOString()).toBe("2025-03-31T00:30:00.000Z"); // 02:30 CEST
    expect(nextRunAfter(s, Date.parse("2025-10-25T12:00:00Z"))!.toISOString()).toBe("2025-10-26T01:30:00.000Z"); // 02:30 CET
    const ny = daily("01:30", "America/New_York");
    expect(nextRunAfter(ny, Date.parse("2025-11-01T12:00:00Z"))!.toISOString()).toBe("2025-11-02T05:30:00.000Z"); // 01:30 EDT
  });

  it("weekly: the next matching weekday", () => {
    const s: WallClockSchedule = { type: "weekly", dayOfWeek: "Monday", time: "09:00", timeZone: "America/New_York" };
    expect(nextRunAfter(s, Date.parse("2025-06-11T12:00:00Z"))!.toISOString()).toBe("2025-06-16T13:00:00.000Z");
  });

  it("every 4 hours: the next multiple of four hours since the epoch (UTC)", () => {
    expect(nextRunAfter({ type: "every4Hours" }, Date.parse("2025-06-11T05:59:00Z"))!.toISOString()).toBe(
      "2025-06-11T08:00:00.000Z",
    );
    expect(nextRunAfter({ type: "manual" }, Date.now())).toBeUndefined();
  });
});

describe("owner token rules", () => {
  const d = tokenDurations();
  const t0 = Date.parse("2025-01-01T00:00:00Z");
  const token = issueToken(t0, d);

  it("is valid 30 days, refreshable in its last 10", () => {
    expect(token.expiresAt - t0).toBe(30 * DAY_MS);
    expect(token.refreshFrom - t0).toBe(20 * DAY_MS);
    const mirror = tokenMirror(token, "Valid");
    expect(visitMatters(undefined, t0)).toBe(true);
    expect(visitMatters(mirror, t0 + 15 * DAY_MS)).toBe(false);
    expect(visitMatters(mirror, t0 + 25 * DAY_MS)).toBe(true);
    expect(visitMatters({ ...mirror, state: "Expired" }, t0 + 31 * DAY_MS)).toBe(true);
    expect(tokenIsValid(mirror, t0 + 29 * DAY_MS)).toBe(true);
    expect(tokenIsValid(mirror, t0 + 30 * DAY_MS)).toBe(false);
    expect(tokenIsValid({ ...mirror, state: "Expired" }, t0)).toBe(false);
  });

  it("refuses durations that make no sense", () => {
    expect(() => tokenDurations({ lifetimeMs: 0 })).toThrow();
    expect(() => tokenDurations({ lifetimeMs: DAY_MS, refreshWindowMs: 2 * DAY_MS })).toThrow();
  });
});
