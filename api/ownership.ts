/**
 * Ownership of a connection (docs/product-rules.md "Owner and token", "Teams"):
 * `POST /connections/{id}/owner` {userId} → 200 {connection, recommendation}.
 * - The current owner (or an administrator) may give it to a member of the iModel's team; a member may take it for
 *   themselves. Others: 403 `OwnershipChangeForbidden` (and 404 to anyone outside the team, as for an unknown id).
 *   The new owner must be a member who has interacted with the iModel since being added: 409 `NotATeamMember`, 409
 *   `TeamMemberNeverInteracted`. A member taking it is judged on what they did before that request.
 * - Refused with 409 `RunInProgress` while a run of the connection is queued or executing (asked of the iModel's run
 *   queue).
 * - Email: to the new owner when given; to the previous owner when taken (a durable workflow sends it, with retries).
 * - The answer recommends a manual sync by the new owner so that a fresh owner token is used.
 */
import { randomUUID } from "node:crypto";
import type { Client } from "@temporalio/client";
import { Router } from "express";
import {
  assertConnectionActive,
  assertNoRunInProgress,
  assertOwnerIsTeamMember,
  assertOwnershipChangeAllowed,
} from "../domain/connection-rules";
import { ApiError } from "../domain/errors";
import type { ConnectionRecord } from "../domain/model";
import { changeOwnerBody, ownerSummary, teamMemberId, type UserRecord } from "../domain/users";
import { peopleCollections } from "../lib/collections";
import type { Config } from "../lib/config";
import { writeWithEvents } from "../lib/connection-events";
import { updateConnection, withConnection } from "../lib/connection-writes";
import type { Store } from "../lib/db";
import { iModelMappingLockKey, iModelMappingLockOptions, withLock } from "../lib/locks";
import { activeRunOf } from "../lib/runs";
import type { OwnershipNotice } from "../activities/owners";
import { ownershipNoticeWorkflow } from "../workflows/notices";
import { currentUser, viewerOf } from "./auth";
import { parse, route } from "./http";
import { loadConnection } from "./lookups";
import { connectionJson } from "./representations";

/**
 * Copies the owner's token state onto the connection (and `record`), read after the connection's owner was written:
 * a token mirrored before this read is copied here, one mirrored after it reaches the connection through the mirror's
 * own update of the owner's connections. So the connection never misses its owner's token.
 */
export async function copyOwnerToken(store: Store, record: ConnectionRecord): Promise<void> {
  if (!record.ownerId) return;
  const owner = await peopleCollections(store).users.findOne({ _id: record.ownerId }, { projection: { token: 1 } });
  if (!owner?.token) return;
  const ownerToken = { state: owner.token.state, expiresDateTime: owner.token.expiresDateTime };
  await updateConnection(store, record._id, (c) =>
    c.ownerId === record.ownerId ? { $set: { ownerToken } } : undefined,
  );
  record.ownerToken = ownerToken;
}

export interface OwnershipDeps {
  config: Config;
  store: Store;
  temporal: Client;
}

export function ownershipRouter({ config, store, temporal }: OwnershipDeps): Router {
  const router = Router();
  const people = peopleCollections(store);

  router.post(
    "/connections/:id/owner",
    route(async (req, res) => {
      const viewer = viewerOf(req);
      const c = await loadConnection(store, req.params.id, viewer);
      assertConnectionActive(c);
      const body = parse(changeOwnerBody, req.body);
      const me = currentUser(req);
      const target = await people.users.findOne({ _id: body.userId });
      if (!target) {
        throw new ApiError("UserNotFound", `User '${body.userId}' does not exist.`, [
          { code: "UserNotFound", message: "no such user", target: "userId" },
        ]);
      }
      const previousOwnerId = c.ownerId;
      const taking = target._id === me._id;
      assertOwnershipChangeAllowed(me, c, target);
      if (previousOwnerId === target._id) {
        res.json({
          connection: connectionJson(c, await store.fileStates.find({ connectionId: c._id }).toArray()),
          changed: false,
        });
        return;
      }
      /**
       * The new owner is a member who has interacted with the iModel (read fresh: a removal may have happened). The
       * caller taking it counts as having interacted only through requests before this one.
       */
      const assertMemberWhoInteracted = async (newOwner: UserRecord) => {
        const fresh = await people.teamMembers.findOne({ _id: teamMemberId(c.iModelId, newOwner._id) });
        const judged = taking ? await viewer.membership(c.iModelId) : fresh;
        assertOwnerIsTeamMember(c, newOwner, fresh && judged);
      };
      await assertMemberWhoInteracted(target);
      assertNoRunInProgress(c, await activeRunOf(temporal, c));
      // Under the iModel's mapping lock, which removing a member takes too: the new owner is still a member when written.
      const updated = await withLock(
        store.db,
        iModelMappingLockKey(c.iModelId),
        async () => {
          await assertMemberWhoInteracted(target);
          return withConnection(store, c._id, async (current, write) => {
            assertConnectionActive(current);
            if ((current.ownerId ?? undefined) !== (previousOwnerId ?? undefined)) {
              throw new ApiError(
                "ConcurrentChange",
                "The owner was changed by another request at the same time; read the connection and try again.",
              );
            }
            return writeWithEvents(
              store,
              current,
              write,
              { $set: { ownerId: target._id, owner: ownerSummary(target) }, $unset: ["ownerToken"] },
              [
                {
                  type: "OwnerChanged",
                  by: ownerSummary(me),
                  details: { from: current.owner ?? null, to: ownerSummary(target), taken: taking },
                },
              ],
            );
          });
        },
        iModelMappingLockOptions(c.iModelId),
      );
      await copyOwnerToken(store, updated);
      req.log.info(
        { connectionId: c._id, from: previousOwnerId, to: target._id, by: me._id },
        "connection owner changed",
      );

      // Who is told: the new owner when someone gave it to them; the previous owner when it was taken from them.
      const recipient = taking ? previousOwnerId : target._id;
      let notice: { to: string; status: "queued" | "failed" } | undefined;
      if (recipient) {
        const noticeId = `ownership:${c._id}:${randomUUID()}`;
        const input: OwnershipNotice = {
          noticeId,
          connectionId: c._id,
          kind: taking ? "taken" : "given",
          to: recipient,
          newOwnerId: target._id,
          ...(previousOwnerId ? { previousOwnerId } : {}),
          changedBy: me._id,
        };
        try {
          await temporal.workflow.start(ownershipNoticeWorkflow, {
            workflowId: `notice/${noticeId}`,
            taskQueue: config.taskQueue,
            args: [input],
            staticSummary: `Ownership email about connection "${c.displayName}"`,
          });
          notice = { to: recipient, status: "queued" };
        } catch (err) {
          req.log.error({ err, connectionId: c._id }, "could not queue the ownership email");
          notice = { to: recipient, status: "failed" };
        }
      }
      res.json({
        connection: connectionJson(updated, await store.fileStates.find({ connectionId: c._id }).toArray()),
        changed: true,
        ...(notice ? { notice } : {}),
        recommendation: {
          code: "ManualSyncRecommended",
          message: `Ownership changed: ${target.name} should run a manual sync now (POST /connections/${c._id}/run with their own key), so that the next synchronizations use a fresh owner token.`,
          _links: { run: { href: `/connections/${c._id}/run`, method: "POST" } },
        },
      });
    }),
  );

  return router;
}
