import { z } from "zod";
import { CONNECTION_STATUSES, CONNECTOR_TYPES, DATA_MODES } from "./model";
import { failureNoticesInput } from "./failure-notices";
import { LIMITS } from "./limits";
import { isWellFormedText, WELL_FORMED_MESSAGE } from "./temporal-text";

/** Request bodies and query strings of the API (zod). Unknown fields are refused so typos surface. */

/** Control characters (Unicode category Cc: C0 including NUL, tab and line breaks, DEL, C1). */
const CONTROL_CHARACTER = /\p{Cc}/u;

/**
 * A display text (name): trimmed, 1 to 255 characters, no control characters, well-formed Unicode (a connection's
 * name is part of its Temporal schedule's summary).
 */
const displayText = (field: string) =>
  z
    .string()
    .trim()
    .min(1, `${field} must not be empty`)
    .max(255, `${field} must be at most 255 characters`)
    .refine(
      (s) => !CONTROL_CHARACTER.test(s),
      `${field} must not contain control characters (such as NUL, tab or line breaks)`,
    )
    .refine(isWellFormedText, WELL_FORMED_MESSAGE(field));

export const createIModelBody = z
  .object({
    name: displayText("name"),
  })
  .strict();

export const sourceFileInput = z
  .object({
    path: z.string().min(1).max(1024),
    connectorType: z.enum(CONNECTOR_TYPES),
  })
  .strict();

export const createConnectionBody = z
  .object({
    iModelId: z.string().min(1),
    displayName: displayText("displayName"),
    source: z.object({ type: z.literal("local"), path: z.string().min(1).max(4096) }).strict(),
    sourceFiles: z
      .array(sourceFileInput)
      .min(1, "map at least one composite model")
      .max(LIMITS.compositeModelsPerIModel),
  })
  .strict();

/**
 * An integer query parameter given at most once (`?name=12`). A repeated (`?$top=1&$top=2`) or bracketed
 * (`?$top[]=1`, `?$top[a]=1`) parameter arrives as an array or object from the query parser and is refused.
 */
const integerParam = (name: string, min: number, max: number, dflt: number) =>
  z.unknown().transform((v, ctx): number => {
    if (v === undefined) return dflt;
    if (typeof v !== "string") {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${name} must be given once, as an integer` });
      return z.NEVER;
    }
    const n = /^\s*[+-]?\d{1,16}\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${name} must be an integer from ${min} to ${max}` });
      return z.NEVER;
    }
    return n;
  });

/** A text query parameter given at most once (`?name=text`, not repeated nor bracketed); absent = undefined. */
const textParam = (name: string) =>
  z.unknown().transform((v, ctx): string | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== "string") {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${name} must be given once, as text` });
      return z.NEVER;
    }
    if (v === "") {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${name} must not be empty` });
      return z.NEVER;
    }
    return v;
  });

/** Largest `$skip`: 2^31 - 1, far beyond any list this service holds. */
const MAX_SKIP = 2_147_483_647;

/** `$top` / `$skip` paging (strings in the query; each given at most once). */
export const pagingQuery = z.object({
  $top: integerParam("$top", 1, LIMITS.maxPageSize, LIMITS.defaultPageSize),
  $skip: integerParam("$skip", 0, MAX_SKIP, 0),
});

/**
 * `GET /connections`: paging, `iModelId`, and `status` (Active, Deleting or Deleted; absent: Active and Deleting, the
 * connections whose data may still change).
 */
export const listConnectionsQuery = pagingQuery.extend({
  iModelId: textParam("iModelId"),
  status: textParam("status").refine((v) => v === undefined || (CONNECTION_STATUSES as readonly string[]).includes(v), {
    message: `status must be one of ${CONNECTION_STATUSES.join(", ")}`,
  }),
});

/**
 * `deletionGuard` of `PATCH /connections/{id}`: any of its settings; the others keep their current values
 * (domain/deletion-guard.ts).
 */
export const deletionGuardInput = z
  .object({
    enabled: z.boolean({ invalid_type_error: "enabled must be true or false" }).optional(),
    fraction: z
      .number({ invalid_type_error: "fraction must be a number" })
      .min(0, "fraction must be from 0 to less than 1 (the share of a file's elements, e.g. 0.5)")
      .lt(1, "fraction must be from 0 to less than 1 (the share of a file's elements, e.g. 0.5)")
      .optional(),
    minElements: z
      .number({ invalid_type_error: "minElements must be an integer" })
      .int("minElements must be an integer")
      .min(1, "minElements must be at least 1")
      .max(1_000_000_000, "minElements must be at most 1000000000")
      .optional(),
  })
  .strict();

/**
 * `PATCH /connections/{id}`: the display name (docs/product-rules.md "Connections": rename changes the display name
 * only), the deletion guard and/or the failure notices (domain/failure-notices.ts); at least one of them.
 */
export const renameConnectionBody = z
  .object({
    displayName: displayText("displayName").optional(),
    deletionGuard: deletionGuardInput.optional(),
    failureNotices: failureNoticesInput.optional(),
  })
  .strict()
  .refine((b) => b.displayName !== undefined || b.deletionGuard !== undefined || b.failureNotices !== undefined, {
    message: "give displayName, deletionGuard, failureNotices or several of them",
  });

/** `POST /connections/{id}/run`: optional; `confirmDeletions: true` applies deletions the deletion guard would hold. */
export const runConnectionBody = z
  .object({
    confirmDeletions: z.boolean({ invalid_type_error: "confirmDeletions must be true or false" }).optional(),
  })
  .strict();

/** `POST /connections/{id}/sourceFiles`: composite models to add to the mapping. */
export const addSourceFilesBody = z
  .object({
    sourceFiles: z
      .array(sourceFileInput)
      .min(1, "add at least one composite model")
      .max(LIMITS.compositeModelsPerIModel),
  })
  .strict();

/** `?mode=keepData|deleteData` of a delete or an unmap: required, given once. */
export const dataModeQuery = z.object({
  mode: z.unknown().transform((v, ctx) => {
    if (typeof v !== "string" || !(DATA_MODES as readonly string[]).includes(v)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `mode must be given once, as ${DATA_MODES.join(" or ")} (keepData: stop future syncs and keep the data in the iModel; deleteData: also remove the data)`,
      });
      return z.NEVER;
    }
    return v as (typeof DATA_MODES)[number];
  }),
});

/** `POST /imodels/{id}/run`: the connections to synchronize (absent: every active connection of the iModel). */
export const bulkRunBody = z
  .object({
    connectionIds: z
      .array(z.string().min(1).max(200))
      .min(1, "name at least one connection, or leave connectionIds out to run them all")
      .max(100)
      .optional(),
  })
  .strict();

/** `GET /sources`: the folder to list (`path`, absolute, given once); absent: the SOURCE_ROOTS themselves. */
export const sourcesQuery = z
  .object({
    path: textParam("path").refine((v) => v === undefined || v.length <= 4096, {
      message: "path must be at most 4096 characters",
    }),
  })
  .strict();

export type CreateConnectionBody = z.infer<typeof createConnectionBody>;
