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
import { ApiError } from "../domain/errors";
import type { ConnectionRecord } from "../domain/model";
import { pauseBody, scheduleBody, scheduleIdOf, type StoredSchedule } from "../domain/schedule";
import type { Config } from "../lib/config";
import type { Store } from "../lib/db";
import { applySchedule, describeTemporalSchedule } from "../lib/schedules";
import { currentUser, isAdmin } from "./auth";
import { parse, route } from "./http";
import { scheduleJson } from "./schedule-owner-json";

export interface ScheduleDeps {
  config: Config;
  store: Store;
  temporal: Client;
}

export function schedulesRouter({ config, store, temporal }: ScheduleDeps): Router {
  const router = Router();

  async function activeConnection(id: string): Promise<ConnectionRecord> {
    const c = await store.connections.findOne({ _id: id });
    if (!c) throw new ApiError("ConnectionNotFound", `Connection '${id}' does not exist.`);
    if (c.status !== "Active") throw new ApiError("ConnectionDeleted", `Connection '${id}' is deleted.`);
    return c;
  }

  function requireOwner(req: Request, c: ConnectionRecord): void {
    const me = currentUser(req);
    if (isAdmin(me) || (c.ownerId && c.ownerId === me._id)) return;
    throw new ApiError(
      "NotConnectionOwner",
      `Only the owner of connection '${c.displayName}'${c.owner ? ` (${c.owner.email})` : ""} or an administrator may change its schedule: scheduled syncs run on the owner's behalf.`,
    );
  }

  /**
   * Writes a new schedule revision with a conditional update (a concurrent change answers 409 `ConcurrentChange`),
   * then brings the Temporal Schedule in line with the newest revision in the database.
   */
  async function saveSchedule(c: ConnectionRecord, next: StoredSchedule): Promise<ConnectionRecord> {
    const filter = c.schedule ? { _id: c._id, "schedule.revision": c.schedule.revision } : { _id: c._id, schedule: { $exists: false } };
    const res = await store.connections.updateOne(filter, { $set: { schedule: next } });
    if (res.matchedCount === 0) throw new ApiError("ConcurrentChange", "The schedule was changed by another request at the same time; read it and try again.");
    // Apply the newest revision; re-apply when another change landed in between (the last writer's spec wins).
    for (let i = 0; i < 5; i++) {
      const current = await activeConnection(c._id);
      try {
        await applySchedule(temporal, config.taskQueue, current);
      } catch (err) {
        const message = (err as Error).message ?? String(err);
        if (/time ?zone|timezone|location/i.test(message)) {
          throw new ApiError("InvalidSchedule", `Temporal refused the schedule: ${message}`, [{ code: "InvalidSchedule", message, target: "timeZone" }]);
        }
        throw err;
      }
      const after = await store.connections.findOne({ _id: c._id });
      if (after?.schedule?.revision === current.schedule?.revision) return after ?? current;
    }
    return activeConnection(c._id);
  }

  router.put(
    "/connections/:id/schedule",
    route(async (req, res) => {
      const c = await activeConnection(req.params.id);
      requireOwner(req, c);
      let input;
      try {
        input = parse(scheduleBody, req.body);
      } catch (err) {
        if (err instanceof ApiError) throw new ApiError("InvalidSchedule", err.message.replace("The request is not valid", "The schedule is not valid"), err.details);
        throw err;
      }
      const next = {
        ...input,
        revision: (c.schedule?.revision ?? 0) + 1,
        paused: input.type === "manual" ? false : c.schedule?.paused ?? false,
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
      const c = await store.connections.findOne({ _id: req.params.id });
      if (!c) throw new ApiError("ConnectionNotFound", `Connection '${req.params.id}' does not exist.`);
      const description = c.schedule && c.schedule.type !== "manual" ? await describeTemporalSchedule(temporal, c._id) : undefined;
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
      const c = await activeConnection(req.params.id);
      requireOwner(req, c);
      const body = parse(pauseBody, req.body);
      if (!c.schedule || c.schedule.type === "manual") {
        throw new ApiError("ScheduleIsManual", `Connection '${c.displayName}' synchronizes manually only: there is no schedule to ${paused ? "pause" : "resume"}.`);
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
      // Same revision (the occurrences already run stay claimed); the conditional update still guards against races.
      const res1 = await store.connections.updateOne(
        { _id: c._id, "schedule.revision": c.schedule.revision, "schedule.updatedDateTime": c.schedule.updatedDateTime },
        { $set: { schedule: next } },
      );
      if (res1.matchedCount === 0) throw new ApiError("ConcurrentChange", "The schedule was changed by another request at the same time; read it and try again.");
      const saved = await activeConnection(c._id);
      await applySchedule(temporal, config.taskQueue, saved);
      req.log.info({ connectionId: c._id, paused }, paused ? "schedule paused" : "schedule resumed");
      res.json({ schedule: scheduleJson(saved) });
    });

  router.post("/connections/:id/schedule/pause", pauseOrResume(true));
  router.post("/connections/:id/schedule/resume", pauseOrResume(false));

  return router;
}
