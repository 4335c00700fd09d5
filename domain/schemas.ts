import { z } from "zod";
import {
  CHANGE_OPERATIONS,
  CONNECTION_STATUSES,
  CONNECTOR_TYPES,
  DATA_MODES,
  RUN_RESULTS,
  RUN_TRIGGERS,
} from "./model";
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

/** A query parameter given at most once naming one of `values` (absent = undefined). */
const oneOfParam = (name: string, values: readonly string[]) =>
  textParam(name).refine((v) => v === undefined || values.includes(v), {
    message: `${name} must be one of ${values.join(", ")}`,
  });

/** `true` or `false` given at most once (absent = false). */
const booleanParam = (name: string) =>
  z.unknown().transform((v, ctx): boolean => {
    if (v === undefined) return false;
    if (v !== "true" && v !== "false") {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${name} must be given once, as true or false` });
      return z.NEVER;
    }
    return v === "true";
  });

/** ISO 8601 date and time in UTC (`Z`), to the minute, second or millisecond: `2024-05-01T08:00Z`, `...:00.000Z`. */
const ISO_UTC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?Z$/;

/**
 * A point in time given once as ISO 8601 UTC (see {@link ISO_UTC}); the value is normalised to
 * `Date.toISOString()` (milliseconds, `Z`), as every time the service stores, so times compare as text.
 */
const utcTimeParam = (name: string) =>
  z.unknown().transform((v, ctx): string | undefined => {
    if (v === undefined) return undefined;
    const m = typeof v === "string" ? ISO_UTC.exec(v) : null;
    const at = m ? new Date(v as string) : undefined;
    // A calendar date that does not exist (2024-02-30) rolls over in Date: refused.
    if (!m || !at || Number.isNaN(at.getTime()) || at.toISOString().slice(0, 10) !== (v as string).slice(0, 10)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `${name} must be given once, as a date and time in UTC (ISO 8601 with Z, e.g. 2024-05-01T08:00:00Z)`,
      });
      return z.NEVER;
    }
    return at.toISOString();
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

/**
 * `POST /connections/{id}/run`: optional. `confirmDeletions: true` applies deletions the deletion guard would hold;
 * `sourceFileIds` limits the run to those composite models (with their references); `force: true` parses and writes
 * files whose content hash is unchanged; `dryRun: true` starts nothing and answers what the run would do (README
 * "Run control").
 */
export const runConnectionBody = z
  .object({
    confirmDeletions: z.boolean({ invalid_type_error: "confirmDeletions must be true or false" }).optional(),
    sourceFileIds: z
      .array(z.string().min(1, "a source file id must not be empty").max(200), {
        invalid_type_error: "sourceFileIds must be a list of source file ids",
      })
      .min(1, "name at least one composite model, or leave sourceFileIds out to run them all")
      .max(LIMITS.compositeModelsPerIModel)
      .optional(),
    force: z.boolean({ invalid_type_error: "force must be true or false" }).optional(),
    dryRun: z.boolean({ invalid_type_error: "dryRun must be true or false" }).optional(),
  })
  .strict();

/** `POST /connections/{id}/runs/{runId}/retry`: optional; `confirmDeletions` as for a run. */
export const retryRunBody = z
  .object({
    confirmDeletions: z.boolean({ invalid_type_error: "confirmDeletions must be true or false" }).optional(),
  })
  .strict();

/**
 * `GET /connections/{id}/runs`: paging and filters: `result`, `trigger`, and `from` (inclusive) / `to` (exclusive) on
 * the time the run was queued, ISO 8601 UTC.
 */
export const listRunsQuery = pagingQuery
  .extend({
    result: oneOfParam("result", RUN_RESULTS),
    trigger: oneOfParam("trigger", RUN_TRIGGERS),
    from: utcTimeParam("from"),
    to: utcTimeParam("to"),
  })
  .superRefine((q, ctx) => {
    if (q.from !== undefined && q.to !== undefined && q.from >= q.to)
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: "to must be later than from", path: ["to"] });
  });

/** `GET /connections/{id}/runs/{runId}/changes`: paging and `operation` (inserted, updated or deleted; absent: all). */
export const listChangesQuery = pagingQuery.extend({
  operation: oneOfParam("operation", CHANGE_OPERATIONS),
});

/** `GET /connections/{id}/events`: paging and `kind` (`change` or `run`; absent: both, merged newest first). */
export const listEventsQuery = pagingQuery.extend({
  kind: oneOfParam("kind", ["change", "run"]),
});

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
  /** `dryRun=true`: change nothing, answer what the request would remove (README "Run control"). */
  dryRun: booleanParam("dryRun"),
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
