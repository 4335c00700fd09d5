/**
 * Sync schedules of connections (one Temporal Schedule per connection, id `schedule/<connectionId>`):
 * - `PUT /connections/{id}/schedule` {type: manual | every4Hours | daily {time, timeZone} | weekly {dayOfWeek, time,
 *   timeZone}} → 200 {schedule}; manual removes the Temporal Schedule; any other type replaces its whole spec;
 * - `GET /connections/{id}/schedule` → {schedule} with what Temporal says (next action times, recent actions);
 * - `POST /connections/{id}/schedule/pause` {note?} and `/resume`.
 * Only the connection's owner (scheduled runs run on their behalf) or an administrator may change it: 403
 * `NotConnectionOwner`. Invalid input: 400 `InvalidSchedule` with one detail per problem.
 */
import type { Client } from "@temporalio/client";
import { Router, type Request } from "express";
import { assertConnectionActive, assertConnectionOwner } from "../domain/connection-rules";
import { ApiError } from "../domain/errors";
import type { ConnectionRecord } from "../domain/model";
import { pauseBody, scheduleBody, scheduleIdOf, type StoredSchedule } from "../domain/schedule";
import type { Config } from "../lib/config";
import type { Store } from "../lib/db";
import { withConnection } from "../lib/connection-writes";
import { applySchedule, describeTemporalSchedule } from "../lib/schedules";
import { currentUser, viewerOf } from "./auth";
import { parse, route } from "./http";
import { loadConnection } from "./lookups";
import { scheduleJson } from "./schedule-owner-json";

export interface ScheduleDeps {
  config: Config;
  store: Store;
  temporal: Client;
}

export function schedulesRouter({ config, store, temporal }: ScheduleDeps): Router {
  const router = Router();

  async function activeConnection(req: Request, id: string): Promise<ConnectionRecord> {
    const c = await loadConnection(store, id, viewerOf(req));
    assertConnectionActive(c);
    return c;
  }

  const requireOwner = (req: Request, c: ConnectionRecord) =>
    assertConnectionOwner(currentUser(req), c, "change its schedule");

  /** Brings the Temporal Schedule in line with the record; a time zone Temporal refuses is 400 `InvalidSchedule`. */
  async function apply(saved: ConnectionRecord): Promise<void> {
    try {
      await applySchedule(temporal, config.taskQueue, saved);
    } catch (err) {
      const message = (err as Error).message ?? String(err);
      if (/time ?zone|timezone|location/i.test(message)) {
        throw new ApiError("InvalidSchedule", `Temporal refused the schedule: ${message}`, [
          { code: "InvalidSchedule", message, target: "timeZone" },
        ]);
      }
      throw err;
    }
  }

  /**
   * Writes a schedule and applies it to Temporal under the connection's lock (lib/connection-writes.ts), so a delete
   * (which takes the same lock) sees either no schedule or one it then removes. A connection that changed revision since
   * `c` was read answers 409 `ConcurrentChange`; a deleted one 409 `ConnectionDeleted`.
   */
  async function saveSchedule(
    c: ConnectionRecord,
    next: StoredSchedule,
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
      const saved = await write({ $set: { schedule: next } });
      await apply(saved);
      return saved;
    });
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
      const next = {
        ...input,
        revision: (c.schedule?.revision ?? 0) + 1,
        paused: input.type === "manual" ? false : (c.schedule?.paused ?? false),
        ...(c.schedule?.paused && c.schedule.note && input.type !== "manual" ? { note: c.schedule.note } : {}),
        updatedDateTime: new Date().toISOString(),
        updatedBy: currentUser(req)._id,
      } as StoredSchedule;
      const saved = await saveSchedule(c, next);
      req.log.info({ connectionId: c._id, schedule: saved.schedule }, "schedule changed");
      res.json({ schedule: scheduleJson(saved) });
    }),
  );

  router.get(
    "/connections/:id/schedule",
    route(async (req, res) => {
      const c = await loadConnection(store, req.params.id, viewerOf(req));
      const description =
        c.schedule && c.schedule.type !== "manual" ? await describeTemporalSchedule(temporal, c._id) : undefined;
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
      const { note: _previousNote, ...rest } = c.schedule;
      const next = {
        ...rest,
        revision: c.schedule.revision,
        paused,
        ...(paused ? { note: body.note ?? `paused by ${currentUser(req).email}` } : {}),
        updatedDateTime: new Date().toISOString(),
        updatedBy: currentUser(req)._id,
      } as StoredSchedule;
      // Same revision (the occurrences already run stay claimed); a change in between is refused.
      const saved = await saveSchedule(
        c,
        next,
        (s) => s?.revision === c.schedule!.revision && s.updatedDateTime === c.schedule!.updatedDateTime,
      );
      req.log.info({ connectionId: c._id, paused }, paused ? "schedule paused" : "schedule resumed");
      res.json({ schedule: scheduleJson(saved) });
    });

  router.post("/connections/:id/schedule/pause", pauseOrResume(true));
  router.post("/connections/:id/schedule/resume", pauseOrResume(false));

  return router;
}
