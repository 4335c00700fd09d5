/**
 * Sync schedules of connections (one Temporal Schedule per connection, id `schedule/<connectionId>`):
 * - `PUT /connections/{id}/schedule` {type: manual | every4Hours | daily {time, timeZone} | weekly {dayOfWeek, time,
 *   timeZone}} → 200 {schedule}; manual removes the Temporal Schedule; any other type replaces its whole spec;
 * - `GET /connections/{id}/schedule` → {schedule} with what Temporal says (next action times, recent actions);
 * - `POST /connections/{id}/schedule/pause` {note?} and `/resume`.
 * Only the connection's owner (scheduled runs run on their behalf) or an administrator may change it: 403
 * `NotConnectionOwner`. Invalid input: 400 `InvalidSchedule` with one detail per problem.
 *
 * A change is written to Temporal first, then to the record, both under the connection's lock: a Temporal that refuses
 * or does not answer leaves the record as it was (400 or 503), and a record write that fails puts Temporal back. What
 * a double failure leaves different is repaired by the next fire, read or save (lib/schedules.ts `reconcileSchedule`),
 * and a fire never runs while the record says paused (activities/schedules.ts). So the record never says paused while
 * Temporal runs the schedule.
 */
import type { Client } from "@temporalio/client";
import { Router, type Request } from "express";
import { assertConnectionActive, assertConnectionOwner } from "../domain/connection-rules";
import { ApiError } from "../domain/errors";
import type { ConnectionRecord } from "../domain/model";
import {
  datesAlreadyRun,
  describeSchedule,
  pauseBody,
  scheduleBody,
  scheduleIdOf,
  scheduleInputOf,
  upcomingOccurrences,
  type ScheduleInput,
  type StoredSchedule,
} from "../domain/schedule";
import { peopleCollections } from "../lib/collections";
import type { Config } from "../lib/config";
import type { Store } from "../lib/db";
import { writeWithEvents, type NewConnectionEvent } from "../lib/connection-events";
import { withConnection } from "../lib/connection-writes";
import { UNAVAILABLE } from "../lib/runs";
import { applySchedule, describeTemporalSchedule, reconcileSchedule, scheduleInSync } from "../lib/schedules";
import { ownerSummary } from "../domain/users";
import { currentUser, viewerOf } from "./auth";
import { parse, route } from "./http";
import { loadConnection } from "./lookups";
import { scheduleJson } from "./schedule-owner-json";

export interface ScheduleDeps {
  config: Config;
  store: Store;
  temporal: Client;
}

/** How long (ms) a schedule change waits for each Temporal call before answering 503. */
export const TEMPORAL_DEADLINE_MS = 10_000;

export function schedulesRouter({ config, store, temporal }: ScheduleDeps): Router {
  const router = Router();
  const claims = peopleCollections(store).scheduleClaims;

  async function activeConnection(req: Request, id: string): Promise<ConnectionRecord> {
    const c = await loadConnection(store, id, viewerOf(req));
    assertConnectionActive(c);
    return c;
  }

  const requireOwner = (req: Request, c: ConnectionRecord) =>
    assertConnectionOwner(currentUser(req), c, "change its schedule");

  /**
   * One call to Temporal within {@link TEMPORAL_DEADLINE_MS}: no answer is 503 `DependencyUnavailable`; a refused
   * time zone 400 `InvalidSchedule`; any other refusal of the request 400 `InvalidRequest` with Temporal's message.
   */
  async function inTemporal<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await temporal.connection.withDeadline(Date.now() + TEMPORAL_DEADLINE_MS, call);
    } catch (err) {
      if (err instanceof ApiError) throw err;
      if (UNAVAILABLE(err))
        throw new ApiError(
          "DependencyUnavailable",
          "Temporal did not answer in time; the schedule was not changed. Try again.",
        );
      const message = (err as Error).message ?? String(err);
      if (/time ?zone|timezone|location/i.test(message)) {
        throw new ApiError("InvalidSchedule", `Temporal refused the schedule: ${message}`, [
          { code: "InvalidSchedule", message, target: "timeZone" },
        ]);
      }
      const code = (err as { code?: number }).code ?? (err as { cause?: { code?: number } }).cause?.code;
      if (code === 3 /* INVALID_ARGUMENT */ || code === 9 /* FAILED_PRECONDITION */)
        throw new ApiError(
          "InvalidRequest",
          `Temporal refused the schedule: ${message}; the schedule was not changed.`,
        );
      throw err;
    }
  }

  /** Puts Temporal back in line with `record` after a failed change (best effort: the next fire or read repairs). */
  async function restore(record: ConnectionRecord, log: Request["log"]): Promise<void> {
    try {
      await inTemporal(() => reconcileSchedule(temporal, config.taskQueue, record));
    } catch (err) {
      log.warn(
        { connectionId: record._id, err: (err as Error).message },
        "Temporal schedule not put back now; the next fire or read of the schedule does",
      );
    }
  }

  /**
   * Writes a schedule under the connection's lock (lib/connection-writes.ts, so a delete, which takes the same lock,
   * sees either no schedule or one it then removes): Temporal first, then the record; a failed record write puts
   * Temporal back. `build` gives the new schedule from the record read under the lock, or undefined when it would be
   * the same as the stored one (then nothing is written: same revision, no Temporal update, unless Temporal differs
   * from the record and is brought in line). A connection that changed revision since `c` was read answers 409
   * `ConcurrentChange`; a deleted one 409 `ConnectionDeleted`. A schedule written records `event(next)` in the
   * connection's timeline, in the same write (lib/connection-events.ts).
   */
  async function saveSchedule(
    req: Request,
    c: ConnectionRecord,
    build: (current: ConnectionRecord) => Promise<StoredSchedule | undefined>,
    event: (next: StoredSchedule) => Omit<NewConnectionEvent, "by">,
    same?: (s: StoredSchedule | undefined) => boolean,
  ): Promise<ConnectionRecord> {
    return withConnection(store, c._id, async (current, write) => {
      assertConnectionActive(current);
      const unchanged = same
        ? same(current.schedule)
        : (current.schedule?.revision ?? 0) === (c.schedule?.revision ?? 0);
      if (!unchanged)
        throw new ApiError(
          "ConcurrentChange",
          "The schedule was changed by another request at the same time; read it and try again.",
        );
      const next = await build(current);
      if (!next) {
        await restore(current, req.log);
        return current;
      }
      const target: ConnectionRecord = { ...current, schedule: next };
      try {
        await inTemporal(() => applySchedule(temporal, config.taskQueue, target));
      } catch (err) {
        // Nothing is written to the record; Temporal may have taken part of the change before failing.
        await restore(current, req.log);
        throw err;
      }
      try {
        return await writeWithEvents(store, current, write, { $set: { schedule: next } }, [
          { ...event(next), by: ownerSummary(currentUser(req)) },
        ]);
      } catch (err) {
        await restore(current, req.log);
        throw err;
      }
    });
  }

  /**
   * The local dates a wall-clock schedule saved now skips because that day (weekly: or week) already had its
   * scheduled run (domain/schedule.ts `datesAlreadyRun`), from the connection's occurrence claims.
   */
  async function skipDatesFor(connectionId: string, input: ScheduleInput): Promise<string[]> {
    if (input.type !== "daily" && input.type !== "weekly") return [];
    const upcoming = upcomingOccurrences(connectionId, input, Date.now());
    const claimed = new Set<string>();
    for (const key of new Set(upcoming.flatMap((o) => o.keys))) {
      // One `_id` lookup each: the only query FerretDB's SQLite backend serves without a scan (docs/facts.md).
      if (await claims.findOne({ _id: key }, { projection: { _id: 1 } })) claimed.add(key);
    }
    return datesAlreadyRun(upcoming, (k) => claimed.has(k));
  }

  router.put(
    "/connections/:id/schedule",
    route(async (req, res) => {
      const c = await activeConnection(req, req.params.id);
      requireOwner(req, c);
      let input;
      try {
        input = parse(scheduleBody, req.body);
      } catch (err) {
        if (err instanceof ApiError)
          throw new ApiError(
            "InvalidSchedule",
            err.message.replace("The request is not valid", "The schedule is not valid"),
            err.details,
          );
        throw err;
      }
      const saved = await saveSchedule(
        req,
        c,
        async (current) => {
          const stored = current.schedule;
          const previous: ScheduleInput = stored ? scheduleInputOf(stored) : { type: "manual" };
          if (JSON.stringify(previous) === JSON.stringify(input)) return undefined; // identical: nothing changes
          const skipDates = await skipDatesFor(current._id, input);
          return {
            ...input,
            revision: (stored?.revision ?? 0) + 1,
            paused: input.type === "manual" ? false : (stored?.paused ?? false),
            ...(stored?.paused && stored.note && input.type !== "manual" ? { note: stored.note } : {}),
            updatedDateTime: new Date().toISOString(),
            updatedBy: currentUser(req)._id,
            ...(skipDates.length ? { skipDates } : {}),
          } as StoredSchedule;
        },
        (next) => ({
          type: "ScheduleSet",
          details: { schedule: scheduleInputOf(next), description: describeSchedule(next), revision: next.revision },
        }),
      );
      if (saved !== c && saved.schedule?.revision !== c.schedule?.revision)
        req.log.info({ connectionId: c._id, schedule: saved.schedule }, "schedule changed");
      res.json({ schedule: scheduleJson(saved) });
    }),
  );

  router.get(
    "/connections/:id/schedule",
    route(async (req, res) => {
      const c = await loadConnection(store, req.params.id, viewerOf(req));
      let description = await describeTemporalSchedule(temporal, c._id);
      const wanted = c.status === "Active" && c.schedule !== undefined && c.schedule.type !== "manual";
      if (wanted ? !description || !scheduleInSync(description, c) : description) {
        // Temporal says something else than the record (a change that failed half-way, last year's catcher dates):
        // brought in line now, under the connection's lock (best effort; the next fire does it too).
        try {
          await withConnection(store, c._id, (current) =>
            inTemporal(() => reconcileSchedule(temporal, config.taskQueue, current)),
          );
          description = await describeTemporalSchedule(temporal, c._id);
        } catch (err) {
          req.log.warn({ connectionId: c._id, err: (err as Error).message }, "Temporal schedule not reconciled now");
        }
      }
      if (!wanted) description = undefined;
      const ui = `${config.temporalUiUrl}/namespaces/${encodeURIComponent(config.temporalNamespace)}/schedules/${encodeURIComponent(scheduleIdOf(c._id))}`;
      res.json({
        schedule: {
          ...scheduleJson(c),
          temporal: description
            ? {
                scheduleId: description.scheduleId,
                paused: description.state.paused,
                note: description.state.note ?? null,
                nextActionTimes: description.info.nextActionTimes.map((t) => t.toISOString()),
                recentActions: description.info.recentActions.map((a) => ({
                  scheduledAt: a.scheduledAt.toISOString(),
                  takenAt: a.takenAt.toISOString(),
                  workflowId: a.action.workflow.workflowId,
                })),
                _links: { ui: { href: ui } },
              }
            : null,
        },
      });
    }),
  );

  const pauseOrResume = (paused: boolean) =>
    route(async (req, res) => {
      const c = await activeConnection(req, req.params.id);
      requireOwner(req, c);
      const body = parse(pauseBody, req.body);
      if (!c.schedule || c.schedule.type === "manual") {
        throw new ApiError(
          "ScheduleIsManual",
          `Connection '${c.displayName}' synchronizes manually only: there is no schedule to ${paused ? "pause" : "resume"}.`,
        );
      }
      const saved = await saveSchedule(
        req,
        c,
        async (current) => {
          const { note: _previousNote, ...rest } = current.schedule!;
          return {
            ...rest,
            paused,
            ...(paused ? { note: body.note ?? `paused by ${currentUser(req).email}` } : {}),
            updatedDateTime: new Date().toISOString(),
            updatedBy: currentUser(req)._id,
          } as StoredSchedule;
        },
        (next) =>
          paused
            ? { type: "SchedulePaused", details: { note: next.note ?? null } }
            : { type: "ScheduleResumed", details: {} },
        // Same revision (the occurrences already run stay claimed); a change in between is refused.
        (s) => s?.revision === c.schedule!.revision && s.updatedDateTime === c.schedule!.updatedDateTime,
      );
      req.log.info({ connectionId: c._id, paused }, paused ? "schedule paused" : "schedule resumed");
      res.json({ schedule: scheduleJson(saved) });
    });

  router.post("/connections/:id/schedule/pause", pauseOrResume(true));
  router.post("/connections/:id/schedule/resume", pauseOrResume(false));

  return router;
}
