/**
 * Users, API keys and iModel teams: types and request schemas (no I/O).
 *
 * - Every API request is authenticated with a bearer API key; only the key's SHA-256 is stored (see api/auth.ts).
 * - Each iModel has a team (docs/product-rules.md "Teams"): the user who creates the iModel is its manager; a manager
 *   (or an administrator) adds and removes members. A member has interacted with the iModel once they made a request
 *   on it (or on one of its connections or runs) after being added.
 */
import { z } from "zod";
import type { OwnerTokenMirror } from "./token";

export const USER_ROLES = ["admin", "user"] as const;
export type UserRole = (typeof USER_ROLES)[number];

export interface UserRecord {
  /** UUID, or `admin` for the user bootstrapped from ADMIN_API_KEY. */
  _id: string;
  /** Lower case; unique. */
  email: string;
  name: string;
  role: UserRole;
  /** SHA-256 hex of the user's API key (unique). */
  apiKeyHash: string;
  /** ISO 8601 UTC. */
  createdDateTime: string;
  /** The owner token, mirrored by the user's owner token workflow. Absent until the user's first visit. */
  token?: OwnerTokenMirror;
}

/**
 * Whether the user is an administrator: they may do what an owner may, on every connection, and manage users
 * (docs/product-rules.md "Owner and token").
 */
export const isAdmin = (u: Pick<UserRecord, "role">): boolean => u.role === "admin";

/** Roles in an iModel's team: a manager adds and removes members; a member works on the iModel. */
export const TEAM_ROLES = ["manager", "member"] as const;
export type TeamRole = (typeof TEAM_ROLES)[number];

/**
 * A member of an iModel's team. `_id` = {@link teamMemberId}(iModelId, userId), so that the check made on every request
 * is one `_id` lookup (the only lookup FerretDB serves without a scan).
 */
export interface TeamMemberRecord {
  _id: string;
  iModelId: string;
  userId: string;
  role: TeamRole;
  /** Who added them (a user id); null for a member carried over from before teams existed (lib/teams.ts). */
  addedBy: string | null;
  /** ISO 8601 UTC. */
  addedDateTime: string;
  /**
   * ISO 8601 UTC of their first request on the iModel (or one of its connections or runs) after being added; absent
   * while they have not interacted (docs/product-rules.md "Teams").
   */
  firstInteractionDateTime?: string;
}

export const teamMemberId = (iModelId: string, userId: string) => `${iModelId}:${userId}`;

/** Whether the member has made a request on the iModel since being added (docs/product-rules.md "Teams"). */
export const hasInteracted = (m: Pick<TeamMemberRecord, "firstInteractionDateTime">): boolean =>
  m.firstInteractionDateTime !== undefined;

/** How an owner is shown on a connection (denormalized on the connection record). */
export interface OwnerSummary {
  id: string;
  email: string;
  name: string;
}

export const ownerSummary = (u: Pick<UserRecord, "_id" | "email" | "name">): OwnerSummary => ({
  id: u._id,
  email: u.email,
  name: u.name,
});

export const createUserBody = z
  .object({
    email: z.string().trim().toLowerCase().email("email must be an email address").max(254),
    name: z.string().trim().min(1, "name must not be empty").max(255),
    role: z.enum(USER_ROLES).default("user"),
  })
  .strict();

export const changeOwnerBody = z.object({ userId: z.string().min(1) }).strict();

/** `POST /imodels/{id}/members`: the user to add (or whose role to change) and the role (default `member`). */
export const addMemberBody = z
  .object({ userId: z.string().min(1).max(255), role: z.enum(TEAM_ROLES).default("member") })
  .strict();
