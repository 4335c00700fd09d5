/**
 * The API's OpenAPI 3.1 document, generated from the zod schemas the routes validate with (domain/schemas.ts,
 * domain/schedule.ts, domain/users.ts) plus the shapes of the answers (api/representations.ts), and the API reference
 * page (Swagger UI) that reads it. README.md "API reference" says how to use both.
 *
 * Every Express route of the API has an operation here: `test/openapi.test.ts` compares the two lists and validates
 * the document as OpenAPI 3.1.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { extendZodWithOpenApi, OpenAPIRegistry, OpenApiGeneratorV31 } from "@asteasolutions/zod-to-openapi";
import express, { Router } from "express";
import helmet from "helmet";
import { z } from "zod";
import {
  CHANGE_OPERATIONS,
  CONNECTION_STATUSES,
  CONNECTOR_TYPES,
  DATA_MODES,
  RUN_RESULTS,
  RUN_STATES,
  RUN_TRIGGERS,
} from "../domain/model";
import { ERROR_STATUS } from "../domain/errors";
import { LIMITS } from "../domain/limits";
import { pauseBody, scheduleBody } from "../domain/schedule";
import {
  addSourceFilesBody,
  bulkRunBody,
  createConnectionBody,
  createIModelBody,
  renameConnectionBody,
  retryRunBody,
  runConnectionBody,
} from "../domain/schemas";
import { createWebhookBody, WEBHOOK_EVENTS } from "../domain/webhooks";
import { addMemberBody, changeOwnerBody, createUserBody } from "../domain/users";
import { route } from "./http";

extendZodWithOpenApi(z);

// ---------------------------------------------------------------- shared shapes

const link = z.object({ href: z.string() });
const links = z.record(link).openapi({ description: "Related resources (HAL-style `_links`)." });
const listLinks = z.object({ next: link.optional() }).openapi({
  description: "`next` while more items follow (same filters, the next `$skip`).",
});
const dateTime = z.string().openapi({ format: "date-time", description: "UTC, ISO 8601" });

const errorInfo = z
  .object({ code: z.string(), message: z.string(), target: z.string().optional() })
  .openapi("ErrorInfo", { description: "A problem: a code, a message for people, and what it concerns." });

const errorBody = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(ERROR_STATUS) as [keyof typeof ERROR_STATUS, ...(keyof typeof ERROR_STATUS)[]]),
      message: z.string(),
      details: z.array(errorInfo).optional(),
    }),
  })
  .openapi("Error", { description: 'Every error: `{error: {code, message, details?}}` (README.md "Errors").' });

const iModel = z
  .object({
    id: z.string(),
    name: z.string(),
    location: z.object({ type: z.literal("local"), path: z.string() }),
    createdDateTime: dateTime,
    gcsDefinedBy: z
      .object({
        connectionId: z.string(),
        sourceFileId: z.string(),
        path: z.string(),
        crs: z.object({ epsg: z.number().int(), name: z.string() }).optional(),
      })
      .optional(),
    _links: links,
  })
  .openapi("IModel");

const owner = z
  .object({
    id: z.string(),
    email: z.string(),
    name: z.string(),
    tokenStatus: z.enum(["Valid", "Expired", "None"]),
    tokenExpiresDateTime: dateTime.optional(),
    _links: links,
  })
  .openapi("Owner", { description: "Who scheduled runs run as, and whether their token lets them run." });

const schedule = z
  .object({
    type: z.enum(["manual", "every4Hours", "daily", "weekly"]),
    time: z.string().optional(),
    timeZone: z.string().optional(),
    dayOfWeek: z.string().optional(),
    description: z.string().optional(),
    paused: z.boolean().optional(),
    note: z.string().optional(),
    nextRunDateTime: dateTime.nullable(),
    skipDates: z.array(z.string()).optional(),
    revision: z.number().int().optional(),
    updatedDateTime: dateTime.optional(),
    temporalScheduleId: z.string().optional(),
    lastRun: z.object({ runId: z.string(), scheduledDateTime: dateTime, outcome: z.string() }).passthrough().optional(),
  })
  .openapi("Schedule", { description: "A connection's schedule; times are local to `timeZone`, `*DateTime` UTC." });

const reference: z.ZodType = z
  .object({
    id: z.string(),
    path: z.string(),
    referencedAs: z.string(),
    role: z.literal("ReferenceFile"),
    resolved: z.boolean(),
    circular: z.boolean().optional(),
  })
  .passthrough()
  .openapi("ReferenceFile", { description: "A reference file, with its own nested `references`." });

const connection = z
  .object({
    id: z.string(),
    displayName: z.string(),
    iModelId: z.string(),
    owner: owner.nullable(),
    schedule,
    source: z.object({ type: z.literal("local"), path: z.string() }),
    sourceFiles: z.array(
      z.object({
        id: z.string(),
        path: z.string(),
        connectorType: z.enum(CONNECTOR_TYPES),
        role: z.enum(["CompositeModel", "ReferenceFile"]),
        references: z.array(reference),
      }),
    ),
    definesGcs: z.boolean(),
    deletionGuard: z.object({ enabled: z.boolean(), fraction: z.number(), minElements: z.number().int() }),
    status: z.enum(CONNECTION_STATUSES),
    deletion: z.object({}).passthrough().optional(),
    createdDateTime: dateTime,
    _links: links,
  })
  .openapi("Connection");

const task = z
  .object({
    sourceFileId: z.string(),
    path: z.string(),
    fileName: z.string(),
    role: z.enum(["CompositeModel", "ReferenceFile"]),
    phase: z.enum(["MasterFile", "ReferenceFile"]),
    state: z.enum(RUN_STATES),
    result: z.enum(RUN_RESULTS),
    error: errorInfo.optional(),
    reason: errorInfo.optional(),
    warnings: z.array(errorInfo),
    elements: z.object({
      inserted: z.number().int(),
      updated: z.number().int(),
      deleted: z.number().int(),
      unchanged: z.number().int(),
    }),
    items: z
      .object({
        read: z.number().int(),
        written: z.object({ inserted: z.number().int(), updated: z.number().int(), unchanged: z.number().int() }),
        notWritten: z.array(
          z.object({ code: z.string(), className: z.string(), count: z.number().int(), examples: z.array(z.string()) }),
        ),
      })
      .optional()
      .openapi({ description: "Items read from the file: written, or not written with a reason (README.md)." }),
    startDateTime: dateTime.optional(),
    endDateTime: dateTime.optional(),
    durationMs: z.number().optional(),
  })
  .passthrough()
  .openapi("Task", { description: "One source file's part of a run; `durationMs` in milliseconds." });

const run = z
  .object({
    id: z.string(),
    connectionId: z.string(),
    iModelId: z.string(),
    trigger: z.enum(RUN_TRIGGERS),
    kind: z.enum(["sync", "delete"]),
    state: z.enum(RUN_STATES),
    result: z.enum(RUN_RESULTS),
    error: errorInfo.optional(),
    queuedDateTime: dateTime,
    startDateTime: dateTime.optional(),
    endDateTime: dateTime.optional(),
    workflowId: z.string(),
    jobs: z.array(
      z.object({
        connectorType: z.string(),
        state: z.enum(RUN_STATES),
        result: z.enum(RUN_RESULTS),
        phases: z.array(z.object({ phase: z.string(), state: z.enum(RUN_STATES), result: z.enum(RUN_RESULTS) })),
        tasks: z.array(task),
      }),
    ),
    _links: links,
  })
  .passthrough()
  .openapi("Run");

const user = z
  .object({
    id: z.string(),
    email: z.string(),
    name: z.string(),
    role: z.enum(["admin", "user"]),
    createdDateTime: dateTime,
    token: z
      .object({
        state: z.string(),
        issuedDateTime: dateTime,
        expiresDateTime: dateTime,
        refreshFromDateTime: dateTime,
      })
      .nullable(),
    _links: links,
  })
  .openapi("User");

const member = z
  .object({
    userId: z.string(),
    email: z.string(),
    name: z.string(),
    role: z.enum(["manager", "member"]),
    addedBy: z.string(),
    addedDateTime: dateTime,
    firstInteractionDateTime: dateTime.nullable(),
    _links: links,
  })
  .openapi("TeamMember");

// ---------------------------------------------------------------- parameters

const idParam = (name: string, what: string) =>
  z.string().openapi({ param: { name, in: "path" }, description: `The ${what}'s id.` });
const paging = {
  $top: z
    .string()
    .regex(/^\d+$/)
    .optional()
    .openapi({
      description: `Most items per page: 1 to ${LIMITS.maxPageSize} (default ${LIMITS.defaultPageSize}).`,
      example: "20",
    }),
  $skip: z.string().regex(/^\d+$/).optional().openapi({ description: "Items to skip (default 0).", example: "0" }),
};
const modeQuery = z.object({
  mode: z.enum(DATA_MODES).openapi({
    description: "keepData: stop future syncs and keep the data in the iModel; deleteData: also remove the data.",
  }),
  dryRun: z.enum(["true", "false"]).optional().openapi({
    description: 'true: change nothing; answer 200 with what the request would remove (README.md "Run control").',
  }),
});
const preview = z.object({}).passthrough().openapi("Preview", {
  description: 'What a request would do, counted from the iModel and the records (README.md "Run control").',
});
const webhook = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(z.enum(WEBHOOK_EVENTS)),
    iModelId: z.string().nullable().optional(),
    _links: links,
  })
  .passthrough()
  .openapi("Webhook");
const delivery = z
  .object({ id: z.string(), event: z.string(), state: z.string() })
  .passthrough()
  .openapi("WebhookDelivery", { description: "One delivery of an event to a webhook, with its attempts." });

// ---------------------------------------------------------------- operations

type Method = "get" | "post" | "put" | "patch" | "delete";

/** One documented answer: a status with its meaning, and the body's shape (errors share {@link errorBody}). */
interface Answer {
  description: string;
  body?: z.ZodTypeAny;
  /** A `text/plain` answer (Prometheus metrics). */
  text?: boolean;
}

interface Operation {
  method: Method;
  /** Express syntax (`/connections/:id`); the document writes `{id}`. */
  path: string;
  summary: string;
  tags: string[];
  /** False for the few routes that need no key. */
  auth?: boolean;
  params?: z.AnyZodObject;
  query?: z.AnyZodObject;
  body?: z.ZodTypeAny;
  answers: Record<number, Answer>;
}

const err = (description: string): Answer => ({ description, body: errorBody });
const e400 = err('The request is not valid (`InvalidRequest` and the codes of README.md "Errors").');
const e403 = err("Not allowed for this user.");
const e404 = err("No such resource, or one the caller may not see.");
const e409 = err("Refused by a product rule (the code says which).");

const connectionId = z.object({ id: idParam("id", "connection") });
const iModelIdParam = z.object({ id: idParam("id", "iModel") });
const runParams = z.object({ id: idParam("id", "connection"), runId: idParam("runId", "run") });

/** The API's operations. Keep in step with the Express routes (test/openapi.test.ts checks). */
export const OPERATIONS: Operation[] = [
  {
    method: "get",
    path: "/health",
    summary: "Health of the API and of what it depends on (MongoDB, Temporal, a worker, free disk space)",
    tags: ["Service"],
    auth: false,
    answers: {
      200: {
        description: "`ok`, or `degraded` when a data folder is low on space",
        body: z.object({ status: z.enum(["ok", "degraded"]), checks: z.record(z.string()) }).passthrough(),
      },
      503: {
        description: "A dependency is unavailable",
        body: z.object({ status: z.literal("unavailable"), checks: z.record(z.string()) }).passthrough(),
      },
    },
  },
  {
    method: "get",
    path: "/config",
    summary: "Settings the portal needs: the Temporal UI's address and namespace",
    tags: ["Service"],
    answers: { 200: { description: "The settings", body: z.object({ temporalUi: z.object({}).passthrough() }) } },
  },
  {
    method: "get",
    path: "/sources",
    summary: "List a folder under the SOURCE_ROOTS (absent path: the roots themselves)",
    tags: ["Sources"],
    query: z.object({ path: z.string().optional().openapi({ description: "An absolute folder path." }) }),
    answers: {
      200: {
        description: "The folder's subfolders and files",
        body: z
          .object({ folder: z.object({}).passthrough().nullable(), folders: z.array(z.object({}).passthrough()) })
          .passthrough(),
      },
      400: e400,
      404: err("No such folder (`SourceFolderNotFound`)"),
    },
  },
  // ---- users
  {
    method: "post",
    path: "/users",
    summary: "Create a user and their first API key (administrators)",
    tags: ["Users"],
    body: createUserBody,
    answers: {
      201: { description: "The user and the key (shown once)", body: z.object({ user, apiKey: z.string() }) },
      400: e400,
      403: e403,
      409: err("`UserAlreadyExists`"),
    },
  },
  {
    method: "get",
    path: "/users",
    summary: "List users (administrators)",
    tags: ["Users"],
    query: z.object(paging),
    answers: {
      200: { description: "A page of users", body: z.object({ users: z.array(user), _links: listLinks }) },
      400: e400,
      403: e403,
    },
  },
  {
    method: "get",
    path: "/users/me",
    summary: "The caller",
    tags: ["Users"],
    answers: { 200: { description: "The caller's record", body: z.object({ user }) } },
  },
  {
    method: "post",
    path: "/users/me/apiKey",
    summary: "Rotate the caller's API key (the old one stops working at once)",
    tags: ["Users"],
    answers: { 201: { description: "The new key (shown once)", body: z.object({ user, apiKey: z.string() }) } },
  },
  {
    method: "get",
    path: "/users/:id",
    summary: "One user (themselves, or any user for an administrator)",
    tags: ["Users"],
    params: z.object({ id: idParam("id", "user") }),
    answers: { 200: { description: "The user", body: z.object({ user }) }, 403: e403, 404: e404 },
  },
  // ---- iModels and teams
  {
    method: "post",
    path: "/imodels",
    summary: "Create an iModel; the caller becomes its team's manager",
    tags: ["iModels"],
    body: createIModelBody,
    answers: { 201: { description: "The iModel", body: z.object({ iModel }) }, 400: e400 },
  },
  {
    method: "get",
    path: "/imodels",
    summary: "List the iModels of the caller's teams (all of them for an administrator)",
    tags: ["iModels"],
    query: z.object(paging),
    answers: {
      200: { description: "A page of iModels", body: z.object({ iModels: z.array(iModel), _links: listLinks }) },
      400: e400,
    },
  },
  {
    method: "get",
    path: "/imodels/:id",
    summary: "One iModel",
    tags: ["iModels"],
    params: iModelIdParam,
    answers: { 200: { description: "The iModel", body: z.object({ iModel }) }, 404: e404 },
  },
  {
    method: "get",
    path: "/imodels/:id/members",
    summary: "List the iModel's team",
    tags: ["Teams"],
    params: iModelIdParam,
    query: z.object(paging),
    answers: {
      200: { description: "A page of members", body: z.object({ members: z.array(member), _links: listLinks }) },
      400: e400,
      404: e404,
    },
  },
  {
    method: "post",
    path: "/imodels/:id/members",
    summary: "Add a team member or change their role (team managers and administrators)",
    tags: ["Teams"],
    params: iModelIdParam,
    body: addMemberBody,
    answers: {
      200: {
        description: "The member existed; `changed` says whether the role changed",
        body: z.object({ member, changed: z.boolean() }),
      },
      201: { description: "The member was added", body: z.object({ member }) },
      400: e400,
      403: err("`NotTeamManager`"),
      404: e404,
      409: e409,
    },
  },
  {
    method: "delete",
    path: "/imodels/:id/members/:userId",
    summary: "Remove a team member (not one who owns active connections)",
    tags: ["Teams"],
    params: z.object({ id: idParam("id", "iModel"), userId: idParam("userId", "user") }),
    answers: {
      200: { description: "The removed member", body: z.object({ member }) },
      403: err("`NotTeamManager`"),
      404: e404,
      409: err("`MemberOwnsConnections` and other rules"),
    },
  },
  {
    method: "post",
    path: "/imodels/:id/run",
    summary: "Synchronize several (default: all active) connections of an iModel, one run each, queued in order",
    tags: ["Runs"],
    params: iModelIdParam,
    body: bulkRunBody,
    answers: {
      202: { description: "The runs", body: z.object({ runs: z.array(z.object({}).passthrough()) }) },
      400: e400,
      404: e404,
      409: e409,
      503: err("Temporal is unavailable (`DependencyUnavailable`)"),
    },
  },
  // ---- connections
  {
    method: "post",
    path: "/connections",
    summary: "Create a connection: a source folder and the composite models it maps into an iModel",
    tags: ["Connections"],
    body: createConnectionBody,
    answers: {
      201: { description: "The connection", body: z.object({ connection }) },
      400: e400,
      404: e404,
      409: e409,
    },
  },
  {
    method: "get",
    path: "/connections",
    summary: "List connections (default: Active and Deleting), optionally of one iModel",
    tags: ["Connections"],
    query: z.object({
      ...paging,
      iModelId: z.string().optional(),
      status: z.enum(CONNECTION_STATUSES).optional(),
    }),
    answers: {
      200: {
        description: "A page of connections",
        body: z.object({ connections: z.array(connection), _links: listLinks }),
      },
      400: e400,
      404: e404,
    },
  },
  {
    method: "get",
    path: "/connections/:id",
    summary: "One connection",
    tags: ["Connections"],
    params: connectionId,
    answers: { 200: { description: "The connection", body: z.object({ connection }) }, 404: e404 },
  },
  {
    method: "patch",
    path: "/connections/:id",
    summary: "Rename a connection and/or set its deletion guard (the owner or an administrator)",
    tags: ["Connections"],
    params: connectionId,
    body: renameConnectionBody,
    answers: {
      200: { description: "The connection", body: z.object({ connection }) },
      400: e400,
      403: e403,
      404: e404,
      409: e409,
    },
  },
  {
    method: "delete",
    path: "/connections/:id",
    summary: "Delete a connection, keeping or deleting its data in the iModel",
    tags: ["Connections"],
    params: connectionId,
    query: modeQuery,
    answers: {
      200: {
        description: "keepData: the connection, now Deleted; with dryRun=true: the preview",
        body: z.union([z.object({ connection }).passthrough(), z.object({ preview })]),
      },
      202: { description: "deleteData: the delete job", body: z.object({ connection, run }) },
      400: e400,
      403: e403,
      404: e404,
      409: e409,
      503: err("Temporal is unavailable; send the request again"),
    },
  },
  {
    method: "post",
    path: "/connections/:id/sourceFiles",
    summary: "Map more composite models",
    tags: ["Connections"],
    params: connectionId,
    body: addSourceFilesBody,
    answers: {
      200: { description: "The connection", body: z.object({ connection }) },
      400: e400,
      403: e403,
      404: e404,
      409: e409,
    },
  },
  {
    method: "delete",
    path: "/connections/:id/sourceFiles/:fileId",
    summary: "Unmap a composite model with the reference files only it names",
    tags: ["Connections"],
    params: z.object({ id: idParam("id", "connection"), fileId: idParam("fileId", "source file") }),
    query: modeQuery,
    answers: {
      200: {
        description: "keepData: the connection; with dryRun=true: the preview",
        body: z.union([z.object({ connection, unmappedSourceFileIds: z.array(z.string()) }), z.object({ preview })]),
      },
      202: {
        description: "deleteData: the delete job",
        body: z.object({ connection, unmappedSourceFileIds: z.array(z.string()), run }),
      },
      400: e400,
      403: e403,
      404: e404,
      409: e409,
      503: err("Temporal is unavailable; send the request again"),
    },
  },
  {
    method: "post",
    path: "/connections/:id/owner",
    summary: "Change the connection's owner (take it, or give it to a team member who has interacted)",
    tags: ["Connections"],
    params: connectionId,
    body: changeOwnerBody,
    answers: {
      200: {
        description: "The connection; `changed` false when nothing changed",
        body: z.object({ connection, changed: z.boolean() }).passthrough(),
      },
      400: e400,
      403: e403,
      404: e404,
      409: e409,
    },
  },
  // ---- schedules
  {
    method: "put",
    path: "/connections/:id/schedule",
    summary: "Set the schedule (manual, every4Hours, daily, weekly; times local to an IANA time zone)",
    tags: ["Schedules"],
    params: connectionId,
    body: scheduleBody,
    answers: {
      200: { description: "The schedule", body: z.object({ schedule }) },
      400: e400,
      403: e403,
      404: e404,
      409: e409,
      503: err("Temporal is unavailable"),
    },
  },
  {
    method: "get",
    path: "/connections/:id/schedule",
    summary: "The schedule, with what Temporal says of it",
    tags: ["Schedules"],
    params: connectionId,
    answers: { 200: { description: "The schedule", body: z.object({ schedule }) }, 404: e404 },
  },
  ...(["pause", "resume"] as const).map((verb): Operation => ({
    method: "post",
    path: `/connections/:id/schedule/${verb}`,
    summary: verb === "pause" ? "Pause the schedule (optional note)" : "Resume the schedule",
    tags: ["Schedules"],
    params: connectionId,
    ...(verb === "pause" ? { body: pauseBody } : {}),
    answers: {
      200: { description: "The schedule", body: z.object({ schedule }) },
      400: e400,
      403: e403,
      404: e404,
      409: err("`ScheduleIsManual` and other rules"),
      503: err("Temporal is unavailable"),
    },
  })),
  // ---- runs
  {
    method: "post",
    path: "/connections/:id/run",
    summary: "Synchronize now (one active run per connection)",
    tags: ["Runs"],
    params: connectionId,
    body: runConnectionBody,
    answers: {
      200: {
        description: "dryRun: what the run would do (files changed by hash, an estimate)",
        body: z.object({ preview }),
      },
      202: { description: "A new run was queued", body: z.object({ run }) },
      303: { description: "A run was already active: that run", body: z.object({ run }) },
      400: e400,
      404: e404,
      409: e409,
      503: err("Temporal is unavailable"),
    },
  },
  {
    method: "post",
    path: "/connections/:id/runs/:runId/retry",
    summary: "Retry the files of a completed run that ended in Error (with their reference files)",
    tags: ["Runs"],
    params: runParams,
    body: retryRunBody,
    answers: {
      202: { description: "The retry run (trigger retry, retryOf the run)", body: z.object({ run }) },
      303: { description: "A run was already active: that run", body: z.object({ run }) },
      400: e400,
      404: e404,
      409: err("`NoFailedTasks`, `RunStillActive`, `RunNotRetryable` and other rules"),
      503: err("Temporal is unavailable"),
    },
  },
  {
    method: "get",
    path: "/connections/:id/runs/:runId/changes",
    summary: "The elements a run inserted, updated or deleted (kept for the last CHANGE_LISTS_KEPT runs)",
    tags: ["Runs"],
    params: runParams,
    query: z.object({ ...paging, operation: z.enum(CHANGE_OPERATIONS).optional() }),
    answers: {
      200: {
        description: "A page of changes, and the run's counts per operation",
        body: z.object({
          changes: z.array(z.object({}).passthrough()),
          counts: z.record(z.number().int()),
          _links: listLinks,
        }),
      },
      400: e400,
      404: e404,
      409: err("`ChangeListNotKept`"),
    },
  },
  {
    method: "get",
    path: "/connections/:id/events",
    summary: "The connection's timeline: every change made to it (who, when) and its runs, newest first",
    tags: ["Connections"],
    params: connectionId,
    query: z.object({ ...paging, kind: z.enum(["change", "run"]).optional() }),
    answers: {
      200: {
        description: "A page of events",
        body: z.object({ events: z.array(z.object({}).passthrough()), _links: listLinks }),
      },
      400: e400,
      404: e404,
    },
  },
  {
    method: "get",
    path: "/connections/:id/sourceFiles",
    summary: "The connection's source files: composite models, then the reference files they reach",
    tags: ["Connections"],
    params: connectionId,
    query: z.object(paging),
    answers: {
      200: {
        description: "A page of source files",
        body: z.object({ sourceFiles: z.array(z.object({}).passthrough()), _links: listLinks }),
      },
      400: e400,
      404: e404,
    },
  },
  {
    method: "get",
    path: "/connections/:id/sourceFiles/:fileId",
    summary: "One source file: role, references, last synchronized hash and time, last task result",
    tags: ["Connections"],
    params: z.object({ id: idParam("id", "connection"), fileId: idParam("fileId", "source file") }),
    answers: {
      200: { description: "The source file", body: z.object({ sourceFile: z.object({}).passthrough() }) },
      404: e404,
    },
  },
  // ---- integrations
  {
    method: "get",
    path: "/metrics",
    summary: "Prometheus metrics of the API (administrators)",
    tags: ["Service"],
    answers: {
      200: { description: "Prometheus text exposition format", text: true },
      403: e403,
    },
  },
  {
    method: "post",
    path: "/webhooks",
    summary: "Subscribe a URL to events of an iModel (team members) or of every iModel (administrators)",
    tags: ["Webhooks"],
    body: createWebhookBody,
    answers: {
      201: {
        description: "The webhook and its signing secret (shown once)",
        body: z.object({ webhook, secret: z.string() }),
      },
      400: e400,
      403: e403,
      404: e404,
    },
  },
  {
    method: "get",
    path: "/webhooks",
    summary: "List the webhooks the caller may see",
    tags: ["Webhooks"],
    query: z.object({ ...paging, iModelId: z.string().optional() }),
    answers: {
      200: { description: "A page of webhooks", body: z.object({ webhooks: z.array(webhook), _links: listLinks }) },
      400: e400,
      404: e404,
    },
  },
  {
    method: "get",
    path: "/webhooks/:id",
    summary: "One webhook",
    tags: ["Webhooks"],
    params: z.object({ id: idParam("id", "webhook") }),
    answers: { 200: { description: "The webhook", body: z.object({ webhook }) }, 404: e404 },
  },
  {
    method: "delete",
    path: "/webhooks/:id",
    summary: "Remove a webhook",
    tags: ["Webhooks"],
    params: z.object({ id: idParam("id", "webhook") }),
    answers: { 200: { description: "The removed webhook", body: z.object({ webhook }) }, 404: e404 },
  },
  {
    method: "get",
    path: "/webhooks/:id/deliveries",
    summary: "The webhook's deliveries, newest first, with their attempts",
    tags: ["Webhooks"],
    params: z.object({ id: idParam("id", "webhook") }),
    query: z.object(paging),
    answers: {
      200: {
        description: "A page of deliveries",
        body: z.object({ deliveries: z.array(delivery), _links: listLinks }),
      },
      400: e400,
      404: e404,
    },
  },
  {
    method: "post",
    path: "/webhooks/:id/deliveries/:deliveryId/redeliver",
    summary: "Deliver an event again (same webhook-id)",
    tags: ["Webhooks"],
    params: z.object({ id: idParam("id", "webhook"), deliveryId: idParam("deliveryId", "delivery") }),
    answers: {
      202: { description: "The delivery, queued again", body: z.object({ delivery }) },
      404: e404,
      409: err("`DeliveryInProgress`"),
      503: err("Temporal is unavailable"),
    },
  },
  {
    method: "get",
    path: "/connections/:id/runs",
    summary: "List the connection's runs, newest first, optionally filtered",
    tags: ["Runs"],
    params: connectionId,
    query: z.object({
      ...paging,
      result: z.enum(RUN_RESULTS).optional(),
      trigger: z.enum(RUN_TRIGGERS).optional(),
      from: dateTime.optional().openapi({ description: "Queued at or after (UTC, ISO 8601)" }),
      to: dateTime.optional().openapi({ description: "Queued before (UTC, ISO 8601)" }),
    }),
    answers: {
      200: { description: "A page of runs", body: z.object({ runs: z.array(run), _links: listLinks }) },
      400: e400,
      404: e404,
    },
  },
  {
    method: "get",
    path: "/connections/:id/runs/:runId",
    summary: "One run with its jobs and tasks",
    tags: ["Runs"],
    params: runParams,
    answers: { 200: { description: "The run", body: z.object({ run }) }, 404: e404 },
  },
  {
    method: "post",
    path: "/connections/:id/runs/:runId/cancel",
    summary: "Cancel a queued or executing run (the file being written finishes)",
    tags: ["Runs"],
    params: runParams,
    answers: {
      202: { description: "The cancellation was requested: the run as it is now", body: z.object({ run }) },
      404: e404,
      409: e409,
      503: err("Temporal is unavailable"),
    },
  },
];

/** Answers every operation may give besides its own (authentication, media types, dependencies, bugs). */
const COMMON_ANSWERS: Record<number, Answer> = {
  401: err("No API key, or one that is not valid (`Unauthorized`)"),
  413: err("The body is over 1 MB (`PayloadTooLarge`)"),
  415: err("The body is not JSON (`UnsupportedMediaType`)"),
  500: err("An unexpected error (`InternalError`)"),
  503: err("MongoDB or Temporal is unavailable (`DependencyUnavailable`), or the disk is full (`InsufficientStorage`)"),
};

/** `/connections/:id` → `/connections/{id}`. */
export const openApiPath = (expressPath: string): string => expressPath.replace(/:([A-Za-z]+)/g, "{$1}");

/**
 * Builds the OpenAPI 3.1 document (a plain JSON object) from {@link OPERATIONS}.
 * @param version the service's version, written to `info.version`.
 */
export function buildOpenApiDocument(version: string): ReturnType<OpenApiGeneratorV31["generateDocument"]> {
  const registry = new OpenAPIRegistry();
  const bearer = registry.registerComponent("securitySchemes", "apiKey", {
    type: "http",
    scheme: "bearer",
    description: 'An API key: `Authorization: Bearer <key>` (README.md "Authentication and users").',
  });
  for (const op of OPERATIONS) {
    const answers: Record<number, Answer> = { ...(op.auth === false ? {} : COMMON_ANSWERS), ...op.answers };
    if (!op.body && op.method !== "get" && op.method !== "delete") delete answers[413];
    registry.registerPath({
      method: op.method,
      path: openApiPath(op.path),
      summary: op.summary,
      tags: op.tags,
      ...(op.auth === false ? { security: [] } : { security: [{ [bearer.name]: [] }] }),
      request: {
        ...(op.params ? { params: op.params } : {}),
        ...(op.query ? { query: op.query } : {}),
        ...(op.body ? { body: { required: false, content: { "application/json": { schema: op.body } } } } : {}),
      },
      responses: Object.fromEntries(
        Object.entries(answers).map(([status, a]) => [
          status,
          {
            description: a.description,
            ...(a.body ? { content: { "application/json": { schema: a.body } } } : {}),
            ...(a.text ? { content: { "text/plain": { schema: { type: "string" as const } } } } : {}),
          },
        ]),
      ),
    });
  }
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: "3.1.0",
    info: {
      title: "imodel-sync API",
      version,
      description:
        "Synchronizes folders of design files (IFC, DXF) into iModels. Conventions, rules and examples: README.md.",
    },
    servers: [{ url: "/" }],
  });
}

/** The service's version (package.json). */
export const SERVICE_VERSION: string = (
  JSON.parse(readFileSync(path.join(__dirname, "..", "package.json"), "utf8")) as { version: string }
).version;

/**
 * `GET /openapi.json` (the document) and `GET /docs` (Swagger UI reading it). Both need no key: the document says
 * nothing a caller could not learn from README.md.
 */
export function openApiRouter(version = SERVICE_VERSION): Router {
  const router = Router();
  let document: unknown;
  router.get(
    "/openapi.json",
    route(async (_req, res) => {
      document ??= buildOpenApiDocument(version);
      res.json(document);
    }),
  );
  const swaggerUi = path.dirname(require.resolve("swagger-ui-dist/package.json"));
  const docsHeaders = helmet({
    contentSecurityPolicy: {
      directives: { "script-src": ["'self'"], "style-src": ["'self'"], "img-src": ["'self'", "data:"] },
    },
  });
  router.get("/docs", docsHeaders, (_req, res) => {
    res.type("html").send(DOCS_PAGE);
  });
  router.get("/docs/swagger-initializer.js", docsHeaders, (_req, res) => {
    res.type("application/javascript").send(DOCS_INITIALIZER);
  });
  router.use("/docs", docsHeaders, express.static(swaggerUi, { index: false, maxAge: "1d" }));
  return router;
}

const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>imodel-sync API reference</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-initializer.js"></script>
</body>
</html>
`;

const DOCS_INITIALIZER = `window.onload = function () {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
};
`;
