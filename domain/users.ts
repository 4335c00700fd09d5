/**
 * Users, API keys and team members: types and request schemas (no I/O).
 *
 * - Every API request is authenticated with a bearer API key; only the key's SHA-256 is stored (see api/auth.ts).
 * - A user becomes a team member of an iModel the first time they interact with it (any request on the iModel or
 *   one of its connections).
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

/** `_id` = `${iModelId}:${userId}`. */
export interface TeamMemberRecord {
  _id: string;
  iModelId: string;
  userId: string;
  /** ISO 8601 UTC of the first interaction. */
  firstVisitDateTime: string;
}

export const teamMemberId = (iModelId: string, userId: string) => `${iModelId}:${userId}`;

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
