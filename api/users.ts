/**
 * Users:
 * - `POST /users` {email, name, role?} (admin only) → 201 {user, apiKey}: the key is shown this once;
 * - `GET /users` (admin only, paged), `GET /users/me`, `GET /users/{id}` (admin or the user);
 * - `POST /users/me/apiKey` → a new key for the caller (the old one stops working, also after a restart of the API:
 *   the admin bootstrap never puts a rotated key back, see `ensureAdminUser`).
 * iModel teams: api/teams.ts.
 */
import { randomUUID } from "node:crypto";
import { Router } from "express";
import { ApiError } from "../domain/errors";
import { pagingQuery } from "../domain/schemas";
import { createUserBody, isAdmin, type UserRecord } from "../domain/users";
import { isDuplicateKey, peopleCollections, putApiKey, userLockKey } from "../lib/collections";
import type { Store } from "../lib/db";
import { withRecord } from "../lib/record-writes";
import { currentUser, hashApiKey, newApiKey } from "./auth";
import { listPage, parse, route } from "./http";

/** A user as the API shows it (never the key or its hash). */
export function userJson(u: UserRecord) {
  return {
    id: u._id,
    email: u.email,
    name: u.name,
    role: u.role,
    createdDateTime: u.createdDateTime,
    token: u.token
      ? {
          state: u.token.state,
          issuedDateTime: u.token.issuedDateTime,
          expiresDateTime: u.token.expiresDateTime,
          refreshFromDateTime: u.token.refreshFromDateTime,
        }
      : null,
    _links: { self: { href: `/users/${u._id}` } },
  };
}

export function usersRouter({ store }: { store: Store }): Router {
  const router = Router();
  const people = peopleCollections(store);

  const requireAdmin = (u: UserRecord) => {
    if (!isAdmin(u)) throw new ApiError("AdminOnly", "Only an administrator may do this.");
  };

  router.post(
    "/users",
    route(async (req, res) => {
      requireAdmin(currentUser(req));
      const body = parse(createUserBody, req.body);
      const apiKey = newApiKey();
      const record: UserRecord = {
        _id: randomUUID(),
        email: body.email,
        name: body.name,
        role: body.role,
        apiKeyHash: hashApiKey(apiKey),
        createdDateTime: new Date().toISOString(),
      };
      try {
        await people.users.insertOne(record);
        await putApiKey(people, record.apiKeyHash, record._id);
      } catch (err) {
        if (isDuplicateKey(err)) {
          throw new ApiError("UserAlreadyExists", `A user with email '${body.email}' already exists.`, [
            { code: "UserAlreadyExists", message: "email already used", target: "email" },
          ]);
        }
        throw err;
      }
      req.log.info({ newUserId: record._id, role: record.role }, "user created");
      res
        .status(201)
        .location(`/users/${record._id}`)
        .json({ user: userJson(record), apiKey });
    }),
  );

  router.get(
    "/users",
    route(async (req, res) => {
      requireAdmin(currentUser(req));
      const q = parse(pagingQuery, req.query);
      const { items, _links } = await listPage(req, people.users, {}, { createdDateTime: 1, _id: 1 }, q);
      res.json({ users: items.map(userJson), _links });
    }),
  );

  router.get(
    "/users/me",
    route(async (req, res) => {
      // Fresh from the database: the visit of this very request may have changed the token since authentication.
      const me = currentUser(req);
      res.json({ user: userJson((await people.users.findOne({ _id: me._id })) ?? me) });
    }),
  );

  router.post(
    "/users/me/apiKey",
    route(async (req, res) => {
      const me = currentUser(req);
      const apiKey = newApiKey();
      // Under the user's lock (lib/record-writes.ts): the token mirror writing the same record never undoes the rotation.
      const apiKeyHash = hashApiKey(apiKey);
      let replaced: string | undefined;
      await withRecord(store.db, people.users, userLockKey(me._id), me._id, (current, write) => {
        replaced = current.apiKeyHash;
        return write({ $set: { apiKeyHash } });
      });
      await putApiKey(people, apiKeyHash, me._id, replaced);
      req.log.info("API key replaced");
      res.status(201).json({ user: userJson(me), apiKey });
    }),
  );

  router.get(
    "/users/:id",
    route(async (req, res) => {
      const me = currentUser(req);
      if (me._id !== req.params.id && !isAdmin(me))
        throw new ApiError("Forbidden", "You may read only your own user record.");
      const u = await people.users.findOne({ _id: req.params.id });
      if (!u) throw new ApiError("UserNotFound", `User '${req.params.id}' does not exist.`);
      res.json({ user: userJson(u) });
    }),
  );

  return router;
}
