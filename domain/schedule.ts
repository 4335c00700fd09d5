/**
 * Sync schedules (docs/product-rules.md "Sync schedule"): request schema, stored shape, and the pure rules that make a wall-clock
 * schedule run exactly once per local day (daily) or week (weekly), also on DST change days. No I/O; the time zone
 * database is the one of Node's ICU, read through Luxon.
 *
 * How it works with Temporal Schedules, whose calendar specs follow the literal wall clock (a time inside the
 * spring-forward gap does not fire that day; a time inside the fall-back overlap fires once or twice depending on
 * the server):
 * - the schedule's spec has the chosen wall time T and, when T falls into a DST gap of the zone, a second "catcher"
 *   entry at T+1h, which fires on the gap day at the first instant after the gap that is T+1h on the wall;
 * - every fire starts `scheduledRunWorkflow`, which asks `classifyFire` which local day (occurrence) the fire's
 *   scheduled time belongs to, and claims that occurrence in MongoDB (`_id` = connection, schedule revision, local
 *   date; insert is atomic per document). The first fire of a local day runs; later fires of the same day (the
 *   catcher on ordinary days, the second pass through an overlap) are dropped with a log line. Fires come one after
 *   the other in time, so "first" is the earliest; a backfill should use overlap BUFFER_ALL (not ALLOW_ALL, which
 *   starts all its actions at once and lets any fire of a day claim it first: still exactly one run per day);
 * - a scheduled time that belongs to no occurrence (the schedule was triggered by hand: "run now" in the Temporal UI
 *   or `trigger()`) always runs.
 */
import { DateTime, IANAZone } from "luxon";
import { z } from "zod";
import type { ErrorInfo } from "./errors";

export const WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export const SCHEDULE_TYPES = ["manual", "every4Hours", "daily", "weekly"] as const;
export type ScheduleType = (typeof SCHEDULE_TYPES)[number];

export interface ManualSchedule {
  type: "manual";
}
export interface Every4HoursSchedule {
  type: "every4Hours";
}
export interface DailySchedule {
  type: "daily";
  /** Wall-clock time `HH:MM` (24 h) in `timeZone`. */
  time: string;
  /** IANA time zone, canonical spelling (e.g. `Europe/Berlin`). */
  timeZone: string;
}
export interface WeeklySchedule {
  type: "weekly";
  dayOfWeek: Weekday;
  time: string;
  timeZone: string;
}
export type ScheduleInput = ManualSchedule | Every4HoursSchedule | DailySchedule | WeeklySchedule;
export type WallClockSchedule = DailySchedule | WeeklySchedule;

/** The schedule as stored on the connection. `revision` grows with every change (part of the occurrence key). */
export type StoredSchedule = ScheduleInput & {
  revision: number;
  paused: boolean;
  /** Why it was paused (free text), when paused. */
  note?: string;
  /** ISO 8601 UTC and who changed it last. */
  updatedDateTime: string;
  updatedBy?: string;
};

/** What a scheduled run was scheduled for (stored on its run record). */
export interface ScheduledFor {
  /** The fire's scheduled time (ISO 8601 UTC). */
  scheduledDateTime: string;
  /** `calendar`: a daily/weekly occurrence; `interval`: every 4 hours; `trigger`: started by hand from the schedule. */
  kind: "calendar" | "interval" | "trigger";
  /** For `calendar`: the local date (YYYY-MM-DD in the schedule's zone) of the occurrence. */
  localDate?: string;
  timeZone?: string;
  /** Revision of the schedule that fired. */
  revision: number;
}

/** The last thing a schedule did for a connection (stored on the connection). */
export interface LastScheduledRun {
  runId: string;
  scheduledDateTime: string;
  /** ISO 8601 UTC when the scheduled run was handled. */
  dateTime: string;
  /** `Queued`: a run started; `Skipped`: another run of the connection was active; `Refused`: it could not start. */
  outcome: "Queued" | "Skipped" | "Refused";
  error?: ErrorInfo;
  reason?: ErrorInfo;
}

// ---------------------------------------------------------------- validation

const TIME_RE = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** The canonical spelling of an IANA zone (`europe/berlin` → `Europe/Berlin`), or undefined when unknown. */
export function canonicalTimeZone(zone: string): string | undefined {
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(zone) || !IANAZone.isValidZone(zone)) return undefined;
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

const timeField = z.string().regex(TIME_RE, "time must be HH:MM, 24-hour clock (00:00 to 23:59)");
const timeZoneField = z
  .string()
  .min(1)
  .max(64)
  .transform((zone, ctx) => {
    const canonical = canonicalTimeZone(zone);
    if (!canonical) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `'${zone}' is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)`,
      });
      return z.NEVER;
    }
    return canonical;
  });
const dayOfWeekField = z
  .string()
  .transform((d) => d.charAt(0).toUpperCase() + d.slice(1).toLowerCase())
  .pipe(z.enum(WEEKDAYS, { errorMap: () => ({ message: `dayOfWeek must be one of ${WEEKDAYS.join(", ")}` }) }));

/** Body of `PUT /connections/{id}/schedule`. Unknown fields are refused (a stale `time` on `every4Hours` is a mistake). */
export const scheduleBody = z.discriminatedUnion(
  "type",
  [
    z.object({ type: z.literal("manual") }).strict(),
    z.object({ type: z.literal("every4Hours") }).strict(),
    z.object({ type: z.literal("daily"), time: timeField, timeZone: timeZoneField }).strict(),
    z
      .object({ type: z.literal("weekly"), dayOfWeek: dayOfWeekField, time: timeField, timeZone: timeZoneField })
      .strict(),
  ],
  {
    errorMap: (issue, ctx) =>
      issue.code === "invalid_union_discriminator"
        ? { message: `type must be one of ${SCHEDULE_TYPES.join(", ")}` }
        : { message: ctx.defaultError },
  },
);

export const pauseBody = z.object({ note: z.string().max(500).optional() }).strict();

/** Only the schedule's own fields (no revision, paused, ...). */
export function scheduleInputOf(s: ScheduleInput): ScheduleInput {
  switch (s.type) {
    case "manual":
    case "every4Hours":
      return { type: s.type };
    case "daily":
      return { type: "daily", time: s.time, timeZone: s.timeZone };
    case "weekly":
      return { type: "weekly", dayOfWeek: s.dayOfWeek, time: s.time, timeZone: s.timeZone };
  }
}

/** `daily at 02:30 (Europe/Berlin)` and the like, for people (emails, notes). */
export function describeSchedule(s: ScheduleInput | undefined): string {
  if (!s) return "manual only";
  switch (s.type) {
    case "manual":
      return "manual only";
    case "every4Hours":
      return "every 4 hours";
    case "daily":
      return `daily at ${s.time} (${s.timeZone})`;
    case "weekly":
      return `weekly on ${s.dayOfWeek} at ${s.time} (${s.timeZone})`;
  }
}

// ---------------------------------------------------------------- wall clock and zones

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
export const EVERY_4_HOURS_MS = 4 * HOUR_MS;

function hm(time: string): { hour: number; minute: number } {
  const m = TIME_RE.exec(time);
  if (!m) throw new Error(`invalid time ${time}`);
  return { hour: Number(m[1]), minute: Number(m[2]) };
}

/** Epoch ms of a local date's wall time read as if it were UTC ("naive" ms), plus `addMs`. */
function naive(localDate: string, time: string, addMs = 0): number {
  const [y, mo, d] = localDate.split("-").map(Number);
  const { hour, minute } = hm(time);
  return Date.UTC(y, mo - 1, d, hour, minute) + addMs;
}

/** Offsets (minutes) of `zone` in effect around a local date: before and after any transition of that day. */
function offsetsAround(zone: IANAZone, localDate: string): number[] {
  const midnight = naive(localDate, "00:00");
  const set = new Set([
    zone.offset(midnight - 36 * HOUR_MS),
    zone.offset(midnight + 12 * HOUR_MS),
    zone.offset(midnight + 60 * HOUR_MS),
  ]);
  return [...set];
}

/** Instants (epoch ms) whose wall clock in `zone` is exactly the naive ms: none (gap), one, or two (overlap). */
function validInstants(zone: IANAZone, naiveMs: number, localDate: string): number[] {
  const out: number[] = [];
  for (const offset of offsetsAround(zone, localDate)) {
    const instant = naiveMs - offset * 60_000;
    if (zone.offset(instant) === offset && !out.includes(instant)) out.push(instant);
  }
  return out.sort((a, b) => a - b);
}

/** Local date (YYYY-MM-DD) shifted by `days` calendar days. */
function addDays(localDate: string, days: number): string {
  return DateTime.fromISO(localDate, { zone: "UTC" }).plus({ days }).toISODate()!;
}

function weekdayOf(localDate: string): Weekday {
  return WEEKDAYS[DateTime.fromISO(localDate, { zone: "UTC" }).weekday - 1];
}

function occursOn(s: WallClockSchedule, localDate: string): boolean {
  return s.type === "daily" || weekdayOf(localDate) === s.dayOfWeek;
}

function zoneOf(s: WallClockSchedule): IANAZone {
  const zone = IANAZone.create(s.timeZone);
  if (!zone.isValid) throw new Error(`unknown time zone ${s.timeZone}`);
  return zone;
}

/**
 * Which instance of a wall time that exists twice (fall-back overlap) Go's `time.Date` returns, and so which one a
 * Temporal calendar fires first: the offset in effect at the wall time read as UTC, if that gives a consistent
 * instant, else the offset in effect at the first guess. In practice: the standard-time (later) instance east of
 * Greenwich (Europe/Berlin), the daylight-time (earlier) one west of it (America/New_York), where the server then also
 * fires the later instance (measured with the Temporal dev server; test/schedules.test.ts checks it end to end).
 */
function goTimeDate(zone: IANAZone, naiveMs: number): number {
  const guess = zone.offset(naiveMs);
  const utc = naiveMs - guess * 60_000;
  return zone.offset(utc) === guess ? utc : naiveMs - zone.offset(utc) * 60_000;
}

/**
 * The instant a wall-clock schedule runs on a local date it occurs on (epoch ms), that is its first fire that day:
 * the time itself; on a spring-forward day when the time is inside the gap, the same wall time one hour later (the
 * catcher's fire, the first valid instant of that wall time after the gap); on a fall-back day when the time exists
 * twice, the instance the Temporal server fires first (see `goTimeDate`).
 */
export function occurrenceInstant(s: WallClockSchedule, localDate: string): number {
  const zone = zoneOf(s);
  const at = validInstants(zone, naive(localDate, s.time), localDate);
  if (at.length === 1) return at[0];
  if (at.length > 1) {
    const chosen = goTimeDate(zone, naive(localDate, s.time));
    return at.includes(chosen) ? chosen : at[0];
  }
  const after = validInstants(zone, naive(localDate, s.time, HOUR_MS), localDate);
  if (after.length > 0) return after[0];
  // A gap longer than an hour (rare historical zone changes): the start of the day's next valid minute.
  for (let m = 1; m <= 24 * 60; m++) {
    const later = validInstants(zone, naive(localDate, s.time, m * 60_000), localDate);
    if (later.length > 0) return later[0];
  }
  throw new Error(`no valid instant for ${localDate} ${s.time} in ${s.timeZone}`);
}

/** True when the schedule's wall time T falls into a DST gap (does not exist) on a local date it occurs on. */
export function inGap(s: WallClockSchedule, localDate: string): boolean {
  return validInstants(zoneOf(s), naive(localDate, s.time), localDate).length === 0;
}

/** True when T exists twice (fall-back overlap) on that local date. */
export function inOverlap(s: WallClockSchedule, localDate: string): boolean {
  return validInstants(zoneOf(s), naive(localDate, s.time), localDate).length === 2;
}

/**
 * Whether the schedule needs the catcher entry at T+1h: T falls into a DST gap of its zone on some day it occurs on
 * within `days` days from `fromMs` (three years by default). Zones without DST, and times no transition touches (most
 * daytime times), get no catcher, so no extra workflow runs. After a time zone rule change, PUT the schedule again.
 */
export function needsGapCatcher(s: WallClockSchedule, fromMs: number, days = 3 * 366): boolean {
  const zone = zoneOf(s);
  let date = DateTime.fromMillis(fromMs, { zone: s.timeZone }).toISODate()!;
  for (let i = 0; i < days; i++, date = addDays(date, 1)) {
    const noon = naive(date, "12:00");
    // A transition near this date changes the offset between the previous and the next noon.
    if (zone.offset(noon - DAY_MS - 12 * HOUR_MS) === zone.offset(noon + DAY_MS)) continue;
    for (const d of [addDays(date, -1), date, addDays(date, 1)]) {
      if (occursOn(s, d) && inGap(s, d)) return true;
    }
  }
  return false;
}

/** A Temporal calendar entry (the subset this service uses; `dayOfWeek` in Temporal's upper-case words). */
export interface CalendarEntry {
  hour: number;
  minute: number;
  dayOfWeek?: "MONDAY" | "TUESDAY" | "WEDNESDAY" | "THURSDAY" | "FRIDAY" | "SATURDAY" | "SUNDAY";
  comment: string;
}

const temporalDay = (d: Weekday) => d.toUpperCase() as CalendarEntry["dayOfWeek"];

/** The Temporal calendar entries of a wall-clock schedule: T, and the catcher at T+1h when `withCatcher`. */
export function calendarEntries(s: WallClockSchedule, withCatcher: boolean): CalendarEntry[] {
  const { hour, minute } = hm(s.time);
  const day = s.type === "weekly" ? { dayOfWeek: temporalDay(s.dayOfWeek) } : {};
  const entries: CalendarEntry[] = [{ hour, minute, ...day, comment: describeSchedule(s) }];
  if (withCatcher) {
    const wraps = hour === 23;
    const catcherDay =
      s.type === "weekly"
        ? { dayOfWeek: temporalDay(wraps ? WEEKDAYS[(WEEKDAYS.indexOf(s.dayOfWeek) + 1) % 7] : s.dayOfWeek) }
        : {};
    entries.push({
      hour: (hour + 1) % 24,
      minute,
      ...catcherDay,
      comment: `DST catcher: runs ${s.time} on a day when it falls into a spring-forward gap; dropped as a duplicate on other days`,
    });
  }
  return entries;
}

// ---------------------------------------------------------------- fires and occurrences

export type FireClass =
  { kind: "calendar"; localDate: string; occurrenceDateTime: string } | { kind: "interval" } | { kind: "trigger" };

/**
 * Which occurrence a fire of the schedule belongs to, from the fire's scheduled time.
 *
 * A fire of a wall-clock schedule belongs to local date D when its scheduled time is one of the instants whose wall
 * clock is D at T or at T+1h (the catcher), read with any offset the zone has around D (so that whatever a server does
 * with a non-existent or repeated wall time, its fire is recognised). Anything else was started by hand (`trigger`).
 */
export function classifyFire(s: ScheduleInput, scheduledAt: Date): FireClass {
  if (s.type === "every4Hours") return { kind: "interval" };
  if (s.type === "manual") return { kind: "trigger" };
  const zone = zoneOf(s);
  const at = scheduledAt.getTime();
  const today = DateTime.fromMillis(at, { zone: s.timeZone }).toISODate()!;
  for (const d of [addDays(today, -1), today, addDays(today, 1)]) {
    if (!occursOn(s, d)) continue;
    const offsets = offsetsAround(zone, d);
    for (const wall of [naive(d, s.time), naive(d, s.time, HOUR_MS)]) {
      for (const offset of offsets) {
        if (Math.abs(wall - offset * 60_000 - at) < 1000) {
          return {
            kind: "calendar",
            localDate: d,
            occurrenceDateTime: new Date(occurrenceInstant(s, d)).toISOString(),
          };
        }
      }
    }
  }
  return { kind: "trigger" };
}

/** `_id` of the claim of one occurrence: the first fire of a local day claims it; later fires are duplicates. */
export function occurrenceKey(connectionId: string, revision: number, localDate: string): string {
  return `${connectionId}:r${revision}:${localDate}`;
}

/**
 * When the schedule runs next after `nowMs` (epoch ms), or undefined for manual. Wall-clock schedules: the next
 * occurrence instant (see `occurrenceInstant`); every 4 hours: the next multiple of 4 h since the epoch (UTC 00:00,
 * 04:00, ...), which is how a Temporal interval spec without offset fires.
 */
export function nextRunAfter(s: ScheduleInput, nowMs: number): Date | undefined {
  switch (s.type) {
    case "manual":
      return undefined;
    case "every4Hours":
      return new Date((Math.floor(nowMs / EVERY_4_HOURS_MS) + 1) * EVERY_4_HOURS_MS);
    default: {
      const today = DateTime.fromMillis(nowMs, { zone: s.timeZone }).toISODate()!;
      for (let i = -1; i <= 8; i++) {
        const d = addDays(today, i);
        if (!occursOn(s, d)) continue;
        const t = occurrenceInstant(s, d);
        if (t > nowMs) return new Date(t);
      }
      return undefined;
    }
  }
}

/** Argument of `scheduledRunWorkflow`, carried by the Temporal Schedule's action (the spec's revision included). */
export interface ScheduledRunInput {
  connectionId: string;
  iModelId: string;
  revision: number;
  schedule: ScheduleInput;
}

/** Temporal Schedule id of a connection's schedule. */
export const scheduleIdOf = (connectionId: string) => `schedule/${connectionId}`;

/** Workflow id the schedule's action uses (Temporal appends the scheduled time). */
export const scheduledWorkflowIdOf = (connectionId: string) => `scheduled/${connectionId}`;
