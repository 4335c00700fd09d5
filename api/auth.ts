/**
 * Authentication and what every authenticated request also is:
 * - a bearer API key (`authorization: Bearer <key>`) identifies the user; 401 `Unauthorized` without a valid key
 *   (`GET /health` stays open for the launcher and load balancers);
 * - a **visit** for the owner token rules: when it can matter (no token yet, inside the refresh window, or expired;
 *   see `visitMatters`), the API signals the user's owner token workflow (signal-with-start). Other requests cost no
 *   Temporal call: the workflow mirrors the token state into the user's record, which is read here anyway;
 * - for a member of the team of the iModel the request is about (the iModel itself, one of its connections or runs),
 *   an **interaction**: the first one after being added is recorded on their team member record
 *   (docs/product-rules.md "Teams"). Nobody becomes a member by making requests: managers and administrators add
 *   members (api/teams.ts).
 * Each request gets a {@link Viewer} (`req.viewer`): the user and their memberships, which the routes use to show only
 * what the user may see (api/lookups.ts).
 *
 * API keys: `isk_` + 32 random bytes (256 bits, base64url). Only their SHA-256 is stored. A slow password hash
 * (bcrypt, scrypt, argon2) protects low-entropy secrets people choose against guessing after a database leak; a
 * uniformly random 256-bit key cannot be guessed at any hash speed (2^256 tries), and a plain digest lets the lookup be
 * one indexed equality match instead of checking a salted hash per user.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Client } from "@temporalio/client";
import type { RequestHandler, Response } from "express";
import { ApiError } from "../domain/errors";
import { visitMatters } from "../domain/token";
import { hasInteracted, type UserRecord } from "../domain/users";
import { findUserByApiKeyHash, isDuplicateKey, peopleCollections, type PeopleCollections } from "../lib/collections";
import type { Config } from "../lib/config";
import type { Store } from "../lib/db";
import type { Logger } from "../lib/logger";
import { recordInteraction } from "../lib/teams";
import { ownerTokenWorkflow, ownerTokenWorkflowId, ownerVisitSignal } from "../workflows/owner-token";
import { Viewer } from "./lookups";

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The authenticated user (set by `authenticate`). */
      user?: UserRecord;
      /** What the authenticated user may see (set by `authenticate`). */
      viewer?: Viewer;
    }
  }
}

export interface AuthDeps {
  config: Config;
  store: Store;
  temporal: Client;
  logger: Logger;
}

/** Id of the user bootstrapped from ADMIN_API_KEY. */
export const ADMIN_USER_ID = "admin";

/** A new API key: `isk_` + 256 random bits, base64url. Shown once; only its hash is stored. */
export function newApiKey(): string {
  return `isk_${randomBytes(32).toString("base64url")}`;
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/** The user of a request that went through `authenticate`. */
export function currentUser(req: { user?: UserRecord }): UserRecord {
  if (!req.user)
    throw new ApiError("Unauthorized", "Authentication is required: send 'authorization: Bearer <API key>'.");
  return req.user;
}

/** The {@link Viewer} of a request that went through `authenticate`. */
export function viewerOf(req: { viewer?: Viewer }): Viewer {
  if (!req.viewer)
    throw new ApiError("Unauthorized", "Authentication is required: send 'authorization: Bearer <API key>'.");
  return req.viewer;
}

/**
 * Creates the admin user (`id` admin, email ADMIN_EMAIL) holding ADMIN_API_KEY when there is none. An existing admin is
 * left alone: its key may have been rotated (`POST /users/me/apiKey`), and a rotated key stays revoked, so when
 * ADMIN_API_KEY is not the admin's key any more this only logs a warning that it is not valid. To set a new key for
 * the admin, the operator runs `scripts/reset-admin-key.ts` (README "Authentication and users"). No ADMIN_API_KEY:
 * nothing is done. Safe to call from several API processes starting at once: exactly one creates the admin, the others
 * find it.
 * @returns what was done: `created`, `unchanged` (the key is the admin's), `ignored` (the admin's key differs) or
 *   `none` (no ADMIN_API_KEY).
 * @throws Error when the admin cannot be created because ADMIN_EMAIL or the key already belongs to another user.
 */
export async function ensureAdminUser(
  store: Store,
  config: Config,
  logger: Logger,
): Promise<"created" | "unchanged" | "ignored" | "none"> {
  const people = peopleCollections(store);
  if (!config.adminApiKey) {
    const count = await people.users.countDocuments({});
    if (count === 0)
      logger.warn("ADMIN_API_KEY is not set and there are no users: nobody can use the API (set ADMIN_API_KEY)");
    return "none";
  }
  const apiKeyHash = hashApiKey(config.adminApiKey);
  const existing = await people.users.findOne({ _id: ADMIN_USER_ID });
  if (existing) {
    if (
      existing.apiKeyHash.length === apiKeyHash.length &&
      timingSafeEqual(Buffer.from(existing.apiKeyHash), Buffer.from(apiKeyHash))
    )
      return "unchanged";
    logger.warn(
      { userId: ADMIN_USER_ID },
      "ADMIN_API_KEY is no longer valid: the admin's key was rotated (or set by scripts/reset-admin-key.ts) and stays as it is; use the admin's current key, or set a new one with scripts/reset-admin-key.ts",
    );
    return "ignored";
  }
  try {
    // Inserted only if still missing: a concurrent start that created it first wins, and its key is kept.
    const res = await people.users.updateOne(
      { _id: ADMIN_USER_ID },
      {
        $setOnInsert: {
          apiKeyHash,
          role: "admin",
          email: config.adminEmail.toLowerCase(),
          name: "Administrator",
          createdDateTime: new Date().toISOString(),
        },
      },
      { upsert: true },
    );
    if (res.upsertedCount === 0) return ensureAdminUser(store, config, logger);
  } catch (err) {
    if (isDuplicateKey(err)) {
      // Two APIs starting at once both found no admin: the other one's upsert inserted it first, and ours then
      // collided on _id (or on the unique email/apiKeyHash it just wrote). That is the same admin: compare its key.
      if (await people.users.findOne({ _id: ADMIN_USER_ID }, { projection: { _id: 1 } }))
        return ensureAdminUser(store, config, logger);
      throw new Error(
        `cannot create the admin user: email ${config.adminEmail} or the ADMIN_API_KEY already belongs to another user (set ADMIN_EMAIL)`,
        { cause: err },
      );
    }
    throw err;
  }
  logger.info({ userId: ADMIN_USER_ID, email: config.adminEmail }, "admin user created from ADMIN_API_KEY");
  return "created";
}

/** A bounded set/map: forgets everything when full (the records stay the truth; this only saves lookups). */
class Bounded<V> extends Map<string, V> {
  constructor(private readonly max: number) {
    super();
  }
  override set(key: string, value: V): this {
    if (this.size >= this.max) this.clear();
    return super.set(key, value);
  }
}

/** How long (ms) the API waits for Temporal to take a visit signal; a visit lost to a timeout is sent again next time. */
const VISIT_SIGNAL_DEADLINE_MS = 3_000;
/** A user's visits are signalled at most this often (ms) while the mirror has not caught up yet. */
const VISIT_SIGNAL_INTERVAL_MS = 5_000;

export function authenticate({ config, store, temporal, logger }: AuthDeps): RequestHandler {
  const people: PeopleCollections = peopleCollections(store);
  const connectionIModel = new Bounded<string>(50_000);
  const lastVisitSignal = new Bounded<number>(50_000);

  function unauthorized(res: Response, message: string): ApiError {
    res.setHeader("WWW-Authenticate", 'Bearer realm="imodel-sync"');
    return new ApiError("Unauthorized", message);
  }

  /** Signals a visit to the user's owner token workflow when it can change the token. Never fails the request. */
  async function recordVisit(user: UserRecord, log: Logger): Promise<void> {
    const now = Date.now();
    if (!visitMatters(user.token, now)) return;
    const last = lastVisitSignal.get(user._id);
    if (last !== undefined && now - last < VISIT_SIGNAL_INTERVAL_MS) return;
    lastVisitSignal.set(user._id, now);
    try {
      await temporal.connection.withDeadline(now + VISIT_SIGNAL_DEADLINE_MS, () =>
        temporal.workflow.signalWithStart(ownerTokenWorkflow, {
          workflowId: ownerTokenWorkflowId(user._id),
          taskQueue: config.taskQueue,
          args: [{ userId: user._id }],
          // What the Temporal UI shows (README.md "Temporal UI"); later runs (continue-as-new) show current details.
          staticSummary: `Owner token of ${user.email}`,
          staticDetails: `Tracks the 30-day owner token of user \`${user._id}\` (${user.email}): refresh window, warning and expiry emails.`,
          signal: ownerVisitSignal,
          signalArgs: [{ at: new Date(now).toISOString() }],
        }),
      );
      log.info({ userId: user._id, token: user.token?.state ?? "none" }, "owner token visit signalled");
    } catch (err) {
      lastVisitSignal.delete(user._id);
      log.warn(
        { err, userId: user._id },
        "could not signal the owner token visit; it is sent again at the next request",
      );
    }
  }

  /**
   * The iModel a request is about, when it names one (directly, through a connection, or as the `iModelId` of a
   * connection list or a new connection); undefined otherwise. Not checked to exist: only a member record counts.
   */
  async function iModelOf(
    method: string,
    urlPath: string,
    body: unknown,
    query: Record<string, unknown>,
  ): Promise<string | undefined> {
    const m = /^\/(imodels|connections)\/([^/]+)/.exec(urlPath);
    let iModelId: unknown;
    if (m?.[1] === "connections") {
      const connectionId = decodeURIComponent(m[2]);
      const cached = connectionIModel.get(connectionId);
      if (cached) return cached;
      const c = await store.connections.findOne({ _id: connectionId }, { projection: { iModelId: 1 } });
      // A connection's iModel never changes: safe to remember.
      if (c) connectionIModel.set(connectionId, c.iModelId);
      return c?.iModelId;
    }
    if (m?.[1] === "imodels") iModelId = decodeURIComponent(m[2]);
    else if (urlPath === "/connections" && method === "POST") iModelId = (body as { iModelId?: unknown })?.iModelId;
    else if (urlPath === "/connections" && method === "GET") iModelId = query.iModelId;
    return typeof iModelId === "string" && iModelId !== "" ? iModelId : undefined;
  }

  /**
   * Reads the user's membership of the iModel the request is about (kept by the viewer as it was before this request)
   * and records their first interaction since being added. A failure to record it is logged, not answered: the next
   * request records it.
   */
  async function recordInteractionOf(viewer: Viewer, iModelId: string, log: Logger): Promise<void> {
    const membership = await viewer.membership(iModelId);
    if (!membership || hasInteracted(membership)) return;
    try {
      await recordInteraction(store.db, people, membership._id);
      log.info({ iModelId, role: membership.role }, "first interaction of a team member since being added");
    } catch (err) {
      log.warn({ err, iModelId }, "could not record the team member's first interaction; the next request does");
    }
  }

  return (req, res, next) => {
    if (req.method === "GET" && req.path === "/health") return next();
    void (async () => {
      const header = req.headers.authorization ?? "";
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!m) throw unauthorized(res, "Authentication is required: send 'authorization: Bearer <API key>'.");
      // By the key record's _id, not a scan of the users (lib/collections.ts).
      const user = await findUserByApiKeyHash(people, hashApiKey(m[1]));
      if (!user) throw unauthorized(res, "The API key is not valid.");
      req.user = user;
      req.viewer = new Viewer(user, people);
      const log = (req.log ?? logger).child({ userId: user._id });
      req.log = log;
      await recordVisit(user, log);
      const iModelId = await iModelOf(req.method, req.path, req.body, req.query as Record<string, unknown>);
      if (iModelId) await recordInteractionOf(req.viewer, iModelId, log);
    })().then(() => next(), next);
  };
}
