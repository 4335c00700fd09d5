/**
 * iModel teams (docs/product-rules.md "Teams"):
 * - `GET /imodels/{id}/members` → {members}: each with role, who added them and when, and their first interaction with
 *   the iModel since (null while they have not interacted), paged; for every member and administrator;
 * - `POST /imodels/{id}/members` {userId, role: "manager" | "member" (default)} → 201 {member} for a new member, 200
 *   {member, changed} for one already in the team (its role set as given);
 * - `DELETE /imodels/{id}/members/{userId}` → 200 {member}; refused with 409 `MemberOwnsConnections` (one detail per
 *   connection) while the member owns Active connections of the iModel.
 * Adding and removing are for the team's managers and administrators (403 `NotTeamManager`). To anyone who is not a
 * member, the iModel does not exist (404 `IModelNotFound`, as for an unknown id).
 */
import { Router } from "express";
import { assertMemberRemovable, assertTeamManager } from "../domain/connection-rules";
import { ApiError } from "../domain/errors";
import { pagingQuery } from "../domain/schemas";
import { addMemberBody, teamMemberId, type TeamMemberRecord, type UserRecord } from "../domain/users";
import { peopleCollections } from "../lib/collections";
import type { Store } from "../lib/db";
import { iModelMappingLockKey, iModelMappingLockOptions, withLock } from "../lib/locks";
import { deleteTeamMember, putTeamMember } from "../lib/teams";
import { currentUser, viewerOf } from "./auth";
import { listPage, parse, route } from "./http";
import { loadIModel } from "./lookups";

/** A team member as the API shows it. */
export function memberJson(m: TeamMemberRecord, u: Pick<UserRecord, "_id" | "email" | "name">) {
  return {
    userId: u._id,
    email: u.email,
    name: u.name,
    role: m.role,
    addedBy: m.addedBy,
    addedDateTime: m.addedDateTime,
    firstInteractionDateTime: m.firstInteractionDateTime ?? null,
    _links: { user: { href: `/users/${u._id}` } },
  };
}

export function teamsRouter({ store }: { store: Store }): Router {
  const router = Router();
  const people = peopleCollections(store);

  const userNotFound = (userId: string) =>
    new ApiError("UserNotFound", `User '${userId}' does not exist.`, [
      { code: "UserNotFound", message: "no such user", target: "userId" },
    ]);

  router.get(
    "/imodels/:id/members",
    route(async (req, res) => {
      const q = parse(pagingQuery, req.query);
      const iModel = await loadIModel(store, req.params.id, viewerOf(req));
      const { items: members, _links } = await listPage(
        req,
        people.teamMembers,
        { iModelId: iModel._id },
        { addedDateTime: 1, _id: 1 },
        q,
      );
      const users = members.length
        ? await people.users.find({ _id: { $in: members.map((m) => m.userId) } }).toArray()
        : [];
      const byId = new Map(users.map((u) => [u._id, u]));
      res.json({
        members: members.filter((m) => byId.has(m.userId)).map((m) => memberJson(m, byId.get(m.userId)!)),
        _links,
      });
    }),
  );

  router.post(
    "/imodels/:id/members",
    route(async (req, res) => {
      const body = parse(addMemberBody, req.body);
      const viewer = viewerOf(req);
      const iModel = await loadIModel(store, req.params.id, viewer);
      const me = currentUser(req);
      assertTeamManager(me, iModel, await viewer.membership(iModel._id));
      const user = await people.users.findOne({ _id: body.userId });
      if (!user) throw userNotFound(body.userId);
      const { member, created, changed } = await putTeamMember(store.db, people, {
        iModelId: iModel._id,
        userId: user._id,
        role: body.role,
        addedBy: me._id,
      });
      req.log.info({ iModelId: iModel._id, memberId: user._id, role: body.role, created, changed }, "team member put");
      if (created) res.status(201).json({ member: memberJson(member, user) });
      else res.json({ member: memberJson(member, user), changed });
    }),
  );

  router.delete(
    "/imodels/:id/members/:userId",
    route(async (req, res) => {
      const viewer = viewerOf(req);
      const iModel = await loadIModel(store, req.params.id, viewer);
      assertTeamManager(currentUser(req), iModel, await viewer.membership(iModel._id));
      const userId = req.params.userId;
      // Under the iModel's mapping lock: an owner change (same lock) cannot give this member a connection meanwhile.
      const removed = await withLock(
        store.db,
        iModelMappingLockKey(iModel._id),
        async (lease) => {
          const member = await people.teamMembers.findOne({ _id: teamMemberId(iModel._id, userId) });
          if (!member)
            throw new ApiError(
              "TeamMemberNotFound",
              `User '${userId}' is not a member of the team of iModel '${iModel.name}' (${iModel._id}).`,
            );
          const user = (await people.users.findOne({ _id: userId })) ?? {
            _id: userId,
            email: "(unknown)",
            name: userId,
          };
          const owned = await store.connections
            .find({ iModelId: iModel._id, ownerId: userId, status: "Active" }, { projection: { displayName: 1 } })
            .sort({ createdDateTime: 1, _id: 1 })
            .toArray();
          assertMemberRemovable(user, iModel, owned);
          lease.assertHeld();
          await deleteTeamMember(store.db, people, member._id);
          return memberJson(member, user);
        },
        iModelMappingLockOptions(iModel._id),
      );
      req.log.info({ iModelId: iModel._id, memberId: userId }, "team member removed");
      res.json({ member: removed });
    }),
  );

  return router;
}
