/**
 * Sync schedules (docs/product-rules.md "Sync schedule"): request schema, stored shape, and the pure rules that make a
 * schedule run at most once per occurrence: per local day (daily), per ISO week in the schedule's zone (weekly), per
 * 4-hour slot (every 4 hours), whatever the saves and the zone's daylight-saving transitions. No I/O; the time zone
 * database is the one of Node's ICU, read through Luxon.
 *
 * How it works with Temporal Schedules, whose calendar specs follow the literal wall clock (a time inside the
 * spring-forward gap does not fire that day; a time inside the fall-back overlap fires once or twice depending on
 * the zone, docs/facts.md "Temporal"):
 * - the schedule's spec has the chosen wall time T and, for each date of the coming years on which T falls into a gap
 *   of the zone, an explicit-date "catcher" entry at the first instant after the gap (T+1h on the wall for a
 *   one-hour gap), so that the spec lists exactly the runs that will happen ({@link gapCatcherDates});
 * - dates that already had their run when the schedule was saved are skipped in the spec ({@link StoredSchedule}
 *   `skipDates`): a changed time or type takes effect from the next day (week) then;
 * - every fire starts `scheduledRunWorkflow`, which asks {@link classifyFire} which occurrence the fire's scheduled
 *   time belongs to and claims it in MongoDB ({@link occurrenceClaimKeys}: `_id` = connection + local day, ISO week
 *   or slot; an insert is atomic per document). The first fire of an occurrence runs; a later one (a repeated wall
 *   time, a backfill over an occurrence that already ran, a save in between) is dropped with a log line. Fires come one
 *   after the other in time, so "first" is the earliest; a backfill should use overlap BUFFER_ALL;
 * - a scheduled time that belongs to no occurrence (the schedule was triggered by hand: "run now" in the Temporal UI
 *   or `trigger()`) always runs.
 */
import { DateTime, IANAZone } from "luxon";
import { z } from "zod";
import type { ErrorInfo } from "./errors";
import { temporalText } from "./temporal-text";

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
  /**
   * Local dates (YYYY-MM-DD in `timeZone`) on which a daily or weekly schedule does not run because that day (weekly:
   * that day or ISO week) had already had its scheduled run when the schedule was saved; skipped in the Temporal spec
   * too (see {@link datesAlreadyRun}).
   */
  skipDates?: string[];
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
  /**
   * The occurrence claimed: `day <YYYY-MM-DD>` (daily), `week <YYYY-Www>` (weekly, ISO week in the zone), `slot
   * <ISO 8601 UTC>` (every 4 hours); absent for a trigger by hand.
   */
  occurrence?: string;
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

/** Longest pause note: 500 characters and 1,000 bytes in UTF-8 (it goes to Temporal as the schedule's note). */
export const NOTE_LIMITS = { characters: 500, bytes: 1000 } as const;

/** Body of `POST /connections/{id}/schedule/pause`: an optional note, well-formed Unicode within {@link NOTE_LIMITS}. */
export const pauseBody = z
  .object({ note: temporalText("note", NOTE_LIMITS.characters, NOTE_LIMITS.bytes).optional() })
  .strict();

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

/** Local date (YYYY-MM-DD) and wall time (HH:MM) of an instant in a zone. */
function wallOf(ms: number, timeZone: string): { date: string; time: string } {
  const t = DateTime.fromMillis(ms, { zone: timeZone });
  return { date: t.toISODate()!, time: t.toFormat("HH:mm") };
}

/**
 * The years whose gap dates a spec computed at `nowMs` lists: the previous calendar year (UTC) to three years ahead.
 * The previous year keeps backfills over recent transitions right; the spec is renewed when the year changes (at the
 * schedule's next fire, read or save: lib/schedules.ts `reconcileSchedule`), long before the listed dates run out.
 */
export function catcherYears(nowMs: number): { from: number; to: number } {
  const year = new Date(nowMs).getUTCFullYear();
  return { from: year - 1, to: year + 3 };
}

/**
 * The local dates within the years `from`..`to` (inclusive) on which a wall-clock schedule occurs and its time T falls
 * into a DST gap of its zone (does not exist), with the instant it runs instead ({@link occurrenceInstant}: the first
 * instant after the gap, T+1h on the wall for a one-hour gap). Found from the zone's transitions: only days whose UTC
 * offset changes are examined. Zones without DST, and times no transition touches (most daytime times), have none.
 */
export function gapCatcherDates(
  s: WallClockSchedule,
  from: number,
  to: number,
): { localDate: string; instant: number }[] {
  const key = JSON.stringify([s.type, s.type === "weekly" ? s.dayOfWeek : "", s.time, s.timeZone, from, to]);
  const cached = gapDatesCache.get(key);
  if (cached) return cached;
  const computed = computeGapCatcherDates(s, from, to);
  if (gapDatesCache.size >= 1000) gapDatesCache.clear();
  gapDatesCache.set(key, computed);
  return computed;
}

/** Results of {@link gapCatcherDates} (pure and computed day by day over years, so kept; bounded). */
const gapDatesCache = new Map<string, { localDate: string; instant: number }[]>();

function computeGapCatcherDates(
  s: WallClockSchedule,
  from: number,
  to: number,
): { localDate: string; instant: number }[] {
  const zone = zoneOf(s);
  const out: { localDate: string; instant: number }[] = [];
  let date = `${String(from).padStart(4, "0")}-01-01`;
  const end = `${String(to).padStart(4, "0")}-12-31`;
  for (; date <= end; date = addDays(date, 1)) {
    const noon = naive(date, "12:00");
    // A transition on this date changes the offset between the previous and the next noon.
    if (zone.offset(noon - DAY_MS) === zone.offset(noon + DAY_MS)) continue;
    for (const d of [date, addDays(date, 1)]) {
      if (d > end || out.some((o) => o.localDate === d)) continue;
      if (occursOn(s, d) && inGap(s, d)) out.push({ localDate: d, instant: occurrenceInstant(s, d) });
    }
  }
  return out;
}

/** Temporal's upper-case month names (calendar `month` field). */
const MONTHS = [
  "JANUARY",
  "FEBRUARY",
  "MARCH",
  "APRIL",
  "MAY",
  "JUNE",
  "JULY",
  "AUGUST",
  "SEPTEMBER",
  "OCTOBER",
  "NOVEMBER",
  "DECEMBER",
] as const;

/**
 * A Temporal calendar entry (the subset this service uses; `dayOfWeek` and `month` in Temporal's upper-case words).
 * Unset `year`, `month`, `dayOfMonth`: every one; unset `hour`, `minute`, `second`: 0 (Temporal's defaults).
 */
export interface CalendarEntry {
  year?: number;
  month?: (typeof MONTHS)[number];
  dayOfMonth?: number;
  hour: number | "*";
  minute: number | "*";
  second?: "*";
  dayOfWeek?: "MONDAY" | "TUESDAY" | "WEDNESDAY" | "THURSDAY" | "FRIDAY" | "SATURDAY" | "SUNDAY";
  comment: string;
}

const temporalDay = (d: Weekday) => d.toUpperCase() as CalendarEntry["dayOfWeek"];

function dateFields(localDate: string): Pick<CalendarEntry, "year" | "month" | "dayOfMonth"> {
  const [y, m, d] = localDate.split("-").map(Number);
  return { year: y, month: MONTHS[m - 1], dayOfMonth: d };
}

/**
 * The Temporal calendar entries of a wall-clock schedule: the time T (on its weekday for weekly), and one explicit-date
 * "catcher" entry per gap date (see {@link gapCatcherDates}) at the wall time the occurrence runs that day.
 */
export function calendarEntries(
  s: WallClockSchedule,
  gapDates: { localDate: string; instant: number }[],
): CalendarEntry[] {
  const { hour, minute } = hm(s.time);
  const day = s.type === "weekly" ? { dayOfWeek: temporalDay(s.dayOfWeek) } : {};
  const entries: CalendarEntry[] = [{ hour, minute, ...day, comment: describeSchedule(s) }];
  for (const gap of gapDates) {
    const wall = wallOf(gap.instant, s.timeZone);
    const at = hm(wall.time);
    entries.push({
      ...dateFields(wall.date),
      hour: at.hour,
      minute: at.minute,
      comment: `DST catcher: ${s.time} does not exist on ${gap.localDate} (spring-forward gap); runs at ${wall.time}`,
    });
  }
  return entries;
}

/** Temporal `skip` entries: whole local dates (every hour, minute and second of them) on which nothing fires. */
export function skipEntries(s: WallClockSchedule, skipDates: string[]): CalendarEntry[] {
  return skipDates.map((d) => ({
    ...dateFields(d),
    hour: "*" as const,
    minute: "*" as const,
    second: "*" as const,
    comment: `${d} already had its scheduled run when the schedule was changed: ${describeSchedule(s)} from the next ${s.type === "weekly" ? "week" : "day"}`,
  }));
}

// ---------------------------------------------------------------- fires and occurrences

export type FireClass =
  { kind: "calendar"; localDate: string; occurrenceDateTime: string } | { kind: "interval" } | { kind: "trigger" };

/**
 * Which occurrence a fire of the schedule belongs to, from the fire's scheduled time.
 *
 * A fire of a wall-clock schedule belongs to local date D when its scheduled time is the instant D's occurrence runs
 * on a gap day (the catcher), or one of the instants whose wall clock is D at T or at T+1h (the daily catcher of
 * specs written by earlier releases), read with any offset the zone has around D (so that whatever a server does with
 * a non-existent or repeated wall time, its fire is recognised). A fire of an every-4-hours schedule belongs to its slot
 * when it is at the slot's start (within 1 s). Anything else was started by hand (`trigger`).
 */
export function classifyFire(s: ScheduleInput, scheduledAt: Date): FireClass {
  // Every 4 hours: the interval spec fires at the starts of the 4-hour slots (see `nextRunAfter`); a fire at any other
  // time was started by hand.
  if (s.type === "every4Hours")
    return scheduledAt.getTime() % EVERY_4_HOURS_MS < 1000 ? { kind: "interval" } : { kind: "trigger" };
  if (s.type === "manual") return { kind: "trigger" };
  const zone = zoneOf(s);
  const at = scheduledAt.getTime();
  const today = DateTime.fromMillis(at, { zone: s.timeZone }).toISODate()!;
  for (const d of [addDays(today, -1), today, addDays(today, 1)]) {
    if (!occursOn(s, d)) continue;
    const offsets = offsetsAround(zone, d);
    if (inGap(s, d) && Math.abs(occurrenceInstant(s, d) - at) < 1000) {
      return { kind: "calendar", localDate: d, occurrenceDateTime: new Date(occurrenceInstant(s, d)).toISOString() };
    }
    // T, and T+1h: the daily catcher entry of specs written by earlier releases.
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

/** ISO week (`YYYY-Www`) of a local date: the week a weekly schedule's occurrence on that date belongs to. */
export function isoWeekOf(localDate: string): string {
  return DateTime.fromISO(localDate, { zone: "UTC" }).toFormat("kkkk-'W'WW");
}

/** `_id` of the claim of a connection's local day (daily and weekly occurrences claim the day they run on). */
export const dayClaimKey = (connectionId: string, localDate: string) => `${connectionId}:day:${localDate}`;
/** `_id` of the claim of a connection's ISO week in the schedule's zone (weekly occurrences). */
export const weekClaimKey = (connectionId: string, isoWeek: string) => `${connectionId}:week:${isoWeek}`;
/** `_id` of the claim of a 4-hour slot (every 4 hours), by the slot's start (ISO 8601 UTC). */
export const slotClaimKey = (connectionId: string, slotStart: string) => `${connectionId}:slot:${slotStart}`;

/** The 4-hour slot (start, ISO 8601 UTC) an instant lies in: slots start at 00:00, 04:00, ... UTC. */
export function slotOf(ms: number): string {
  return new Date(Math.floor(ms / EVERY_4_HOURS_MS) * EVERY_4_HOURS_MS).toISOString();
}

/**
 * What one fire claims so that a connection gets at most one scheduled run per occurrence, whatever the saves in
 * between (the claim is keyed by the occurrence, not by the schedule's revision): daily, the local day; weekly, its
 * ISO week and the local day (so that switching between daily and weekly never gives a day or a week a second run);
 * every 4 hours, the slot. `occurrence` is the readable form recorded with the run. None for a trigger by hand.
 */
export function occurrenceClaimKeys(
  connectionId: string,
  s: ScheduleInput,
  fire: FireClass,
  scheduledAt: Date,
): { keys: string[]; occurrence?: string } {
  if (fire.kind === "trigger") return { keys: [] };
  if (fire.kind === "interval") {
    const slot = slotOf(scheduledAt.getTime());
    return { keys: [slotClaimKey(connectionId, slot)], occurrence: `slot ${slot}` };
  }
  if (s.type === "weekly") {
    const week = isoWeekOf(fire.localDate);
    return {
      keys: [weekClaimKey(connectionId, week), dayClaimKey(connectionId, fire.localDate)],
      occurrence: `week ${week}`,
    };
  }
  return { keys: [dayClaimKey(connectionId, fire.localDate)], occurrence: `day ${fire.localDate}` };
}

/** `_id` of an occurrence claim written by earlier releases (keyed by revision); still honoured for the day it names. */
export function legacyOccurrenceKey(connectionId: string, revision: number, localDate: string): string {
  return `${connectionId}:r${revision}:${localDate}`;
}

/**
 * The occurrences of a wall-clock schedule after `nowMs` whose day could already be claimed: those on the local dates
 * from yesterday to tomorrow in the schedule's zone (a claim exists only for a day that has begun somewhere), with the
 * claim keys that would make each one a duplicate. For {@link datesAlreadyRun}.
 */
export function upcomingOccurrences(
  connectionId: string,
  s: WallClockSchedule,
  nowMs: number,
): { localDate: string; instant: number; keys: string[] }[] {
  const today = DateTime.fromMillis(nowMs, { zone: s.timeZone }).toISODate()!;
  const out: { localDate: string; instant: number; keys: string[] }[] = [];
  for (let i = -1; i <= (s.type === "weekly" ? 7 : 1); i++) {
    const d = addDays(today, i);
    if (!occursOn(s, d)) continue;
    const instant = occurrenceInstant(s, d);
    if (instant <= nowMs) continue;
    const keys = [dayClaimKey(connectionId, d)];
    if (s.type === "weekly") keys.unshift(weekClaimKey(connectionId, isoWeekOf(d)));
    out.push({ localDate: d, instant, keys });
    if (s.type === "weekly") break; // only the first: a later one lies in another week
  }
  return out;
}

/**
 * The local dates a newly saved wall-clock schedule must skip: its upcoming occurrences (see
 * {@link upcomingOccurrences}) whose day (weekly: or ISO week) already had a scheduled run. So changing the time or
 * the type on a day that already had its run takes effect from the next day (week); before the day's run, the new
 * time moves that day's run.
 * @param claimed whether a claim with that `_id` exists.
 */
export function datesAlreadyRun(
  upcoming: { localDate: string; keys: string[] }[],
  claimed: (key: string) => boolean,
): string[] {
  return upcoming.filter((o) => o.keys.some(claimed)).map((o) => o.localDate);
}

/**
 * When the schedule runs next after `nowMs` (epoch ms), or undefined for manual. Wall-clock schedules: the next
 * occurrence instant (see `occurrenceInstant`) on a date not in `skipDates`; every 4 hours: the next multiple of 4 h
 * since the epoch (UTC 00:00, 04:00, ...), which is how a Temporal interval spec without offset fires.
 */
export function nextRunAfter(s: ScheduleInput, nowMs: number, skipDates: string[] = []): Date | undefined {
  switch (s.type) {
    case "manual":
      return undefined;
    case "every4Hours":
      return new Date((Math.floor(nowMs / EVERY_4_HOURS_MS) + 1) * EVERY_4_HOURS_MS);
    default: {
      const today = DateTime.fromMillis(nowMs, { zone: s.timeZone }).toISODate()!;
      for (let i = -1; i <= 15; i++) {
        const d = addDays(today, i);
        if (!occursOn(s, d) || skipDates.includes(d)) continue;
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
