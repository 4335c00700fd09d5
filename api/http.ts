import type { NextFunction, Request, RequestHandler, Response } from "express";
import {
  MongoNetworkError,
  MongoServerSelectionError,
  type Collection,
  type Document,
  type Filter,
  type Sort,
  type WithId,
} from "mongodb";
import { ZodError, type ZodTypeAny, type z } from "zod";
import { ApiError } from "../domain/errors";
import type { Logger } from "../lib/logger";
import { isOutOfSpace } from "../lib/storage";

/** Wraps an async route so its rejections reach the error handler. */
export const route =
  (fn: (req: Request, res: Response) => Promise<unknown>): RequestHandler =>
  (req, res, next) => {
    fn(req, res).catch(next);
  };

/**
 * Parses `input` with a zod schema.
 * @throws ApiError `InvalidRequest` (400) with one detail per problem (`target` = the field's path).
 */
export function parse<S extends ZodTypeAny>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw zodToApiError(result.error);
}

function zodToApiError(error: ZodError): ApiError {
  const details = error.issues.flatMap((i) =>
    i.code === "unrecognized_keys"
      ? // One detail per unknown key, its target the key's full path (`sourceFiles.0.bar`).
        i.keys.map((key) => ({
          code: "UnknownField",
          message: `unknown field '${key}'`,
          target: [...i.path, key].join("."),
        }))
      : [
          {
            code: i.code === "invalid_type" && i.received === "undefined" ? "MissingField" : "InvalidValue",
            message: i.message,
            target: i.path.join("."),
          },
        ],
  );
  // Messages that already name their field ("$top must be ...") are not prefixed with it again.
  const summary = details
    .map((d) => (d.target && !d.message.startsWith(`${d.target} `) ? `${d.target}: ${d.message}` : d.message))
    .join("; ");
  return new ApiError("InvalidRequest", `The request is not valid: ${summary}`, details);
}

/** Methods whose body the API reads (as JSON). */
const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);

/** Media types the JSON body parser reads (and so the only ones a body may have). */
export const JSON_MEDIA_TYPES = ["application/json", "application/*+json"];

/** True when the request carries a body: a non-zero `content-length`, or a `transfer-encoding` (chunked) body. */
function carriesBody(req: Request): boolean {
  if (req.headers["transfer-encoding"] !== undefined) return true;
  const length = req.headers["content-length"];
  return length !== undefined && length.trim() !== "0";
}

/**
 * Refuses a POST, PUT or PATCH body that is not JSON (a `text/plain`, XML or form body, or one without a
 * `content-type`) with 415 `UnsupportedMediaType`, before the JSON parser would skip it and validation would report
 * every field missing. Requests without a body pass.
 */
export function requireJsonBody(): RequestHandler {
  return (req, _res, next) => {
    if (!BODY_METHODS.has(req.method) || !carriesBody(req) || req.is(JSON_MEDIA_TYPES)) return next();
    const mediaType = (req.headers["content-type"] ?? "").split(";")[0].trim();
    next(
      new ApiError(
        "UnsupportedMediaType",
        mediaType
          ? `The request body is '${mediaType}'; send application/json.`
          : "The request body has no content-type; send application/json.",
        [{ code: "UnsupportedMediaType", message: "send application/json", target: "content-type" }],
      ),
    );
  };
}

/** What a parsed JSON value is, in words: `null`, `a string`, `an array`, … */
function jsonKind(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/**
 * Refuses a request body that is valid JSON but no JSON object (`null`, `"x"`, `3`, `true`, `[...]`) with 400
 * `InvalidRequest` ("The request body must be a JSON object ({...}), not null."): every body the API reads is an
 * object (README "API"). Runs after `express.json({strict: false})`, which parses any JSON value into `req.body` and
 * leaves `{}` there when the request has no JSON body, so requests without a body pass. Any method: a DELETE's body
 * is parsed too, and the authentication middleware reads `req.body`.
 */
export function requireObjectBody(): RequestHandler {
  return (req, _res, next) => {
    const body: unknown = req.body;
    if (typeof body === "object" && body !== null && !Array.isArray(body)) return next();
    next(new ApiError("InvalidRequest", `The request body must be a JSON object ({...}), not ${jsonKind(body)}.`));
  };
}

/**
 * Maps an error of Express itself or of its body parser (an http-errors object with a 4xx `status` and, for the
 * parser, a `type`) to an ApiError; undefined for any other error.
 */
function requestErrorToApiError(err: unknown): ApiError | undefined {
  const e = err as { status?: unknown; statusCode?: unknown; type?: unknown; charset?: unknown; code?: unknown } | null;
  // decodeURIComponent of a path segment: Express's param decoding sets status 400; other callers (the
  // authentication middleware finding the iModel of a path) throw the bare URIError.
  if (err instanceof URIError)
    return new ApiError("InvalidRequest", "The request URL is not validly percent-encoded (UTF-8).");
  const status =
    typeof e?.status === "number" ? e.status : typeof e?.statusCode === "number" ? e.statusCode : undefined;
  const type = typeof e?.type === "string" ? e.type : undefined;
  if (status === undefined || status < 400 || status > 499) return undefined;
  switch (type) {
    case "entity.parse.failed":
      return new ApiError("InvalidRequest", "The request body is not valid JSON.");
    case "entity.too.large":
      return new ApiError("PayloadTooLarge", "The request body is too large.");
    case "charset.unsupported":
      return new ApiError(
        "UnsupportedMediaType",
        `The request body's charset${typeof e?.charset === "string" ? ` '${e.charset}'` : ""} is not supported; send application/json in UTF-8.`,
      );
    case "encoding.unsupported":
      return new ApiError(
        "UnsupportedMediaType",
        "The request body's content-encoding is not supported; send it uncompressed (identity), gzip or deflate.",
      );
    case "request.aborted":
      return new ApiError("InvalidRequest", "The request body was not received completely.");
    case "request.size.invalid":
      return new ApiError("InvalidRequest", "The request body's length does not match its content-length.");
  }
  if (typeof e?.code === "string" && e.code.startsWith("Z_")) {
    return new ApiError("InvalidRequest", "The request body could not be decompressed as its content-encoding says.");
  }
  if (status === 413) return new ApiError("PayloadTooLarge", "The request body is too large.");
  if (status === 415)
    return new ApiError(
      "UnsupportedMediaType",
      "The request body's media type is not supported; send application/json.",
    );
  return new ApiError("InvalidRequest", "The request is not valid.");
}

/** gRPC status codes meaning Temporal could not be reached in time. */
const UNAVAILABLE_GRPC = new Set([4 /* DEADLINE_EXCEEDED */, 14 /* UNAVAILABLE */]);

/** True for faults of a dependency (MongoDB or Temporal unreachable) rather than of the request. */
export function isDependencyDown(err: unknown): boolean {
  if (err instanceof MongoServerSelectionError || err instanceof MongoNetworkError) return true;
  const e = err as { code?: unknown; cause?: unknown; name?: string };
  if (typeof e?.code === "number" && UNAVAILABLE_GRPC.has(e.code)) return true;
  if (e?.cause && e.cause !== err) return isDependencyDown(e.cause);
  return false;
}

/** The error handler: every error leaves as `{"error": {code, message, details?}}`. */
export function errorHandler(logger: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    let apiError: ApiError;
    const requestError = requestErrorToApiError(err);
    if (err instanceof ApiError) apiError = err;
    else if (err instanceof ZodError) apiError = zodToApiError(err);
    else if (requestError) {
      apiError = requestError;
    } else if (isOutOfSpace(err)) {
      // A full disk is not a bug: 503 with its own code, so clients retry later (docs/architecture.md "Full disks").
      logger.error({ err, path: req.path }, "no space left to store a change");
      apiError = new ApiError(
        "InsufficientStorage",
        "There is no space left to store this change (the disk of the data folder or of the database is full); try again once space is freed.",
      );
    } else if (isDependencyDown(err)) {
      logger.error({ err, path: req.path }, "dependency unavailable");
      apiError = new ApiError(
        "DependencyUnavailable",
        "A service this API depends on (MongoDB or Temporal) is unavailable; try again later.",
      );
    } else {
      logger.error({ err, path: req.path }, "unexpected error");
      apiError = new ApiError("InternalError", "An unexpected error occurred.");
    }
    res.status(apiError.status).json(apiError.toBody());
  };
}

/**
 * `_links.next` for a page: present when more items follow. It carries only the recognised parameters: `$top`,
 * `$skip` and the validated values in `params` (e.g. `{iModelId}`; undefined values are left out), never what else
 * the request's query string held.
 */
export function nextLink(
  req: Request,
  top: number,
  skip: number,
  returned: number,
  total: number,
  params: Record<string, string | undefined> = {},
): { href: string } | undefined {
  if (skip + returned >= total) return undefined;
  const url = new URL(req.originalUrl, "http://placeholder");
  const pairs: [string, string][] = [
    ...Object.entries(params).filter((p): p is [string, string] => p[1] !== undefined),
    ["$top", String(top)],
    ["$skip", String(skip + top)],
  ];
  // Keep `$top`/`$skip` readable (URLSearchParams would write `%24top`).
  const query = pairs.map(([k, v]) => `${encodeURIComponent(k).replace(/^%24/, "$")}=${encodeURIComponent(v)}`);
  return { href: `${url.pathname}?${query.join("&")}` };
}

/**
 * One page of a list: the items of `filter` in `sort` order from `$skip`, at most `$top` of them, and the list's
 * `_links` (`next` while more follow; see {@link nextLink}, which `params` feed). One query of `$top + 1` items: the
 * extra one says whether more follow, so no page counts the whole collection.
 */
export async function listPage<T extends Document>(
  req: Request,
  collection: Collection<T>,
  filter: Filter<T>,
  sort: Sort,
  q: { $top: number; $skip: number },
  params: Record<string, string | undefined> = {},
): Promise<{ items: WithId<T>[]; _links: { next?: { href: string } } }> {
  const found = await collection
    .find(filter)
    .sort(sort)
    .skip(q.$skip)
    .limit(q.$top + 1)
    .toArray();
  return pageOf(req, found, q, params);
}

/**
 * A page from up to `$top + 1` items found from `$skip` on (e.g. by `pageOfList`, lib/id-lists.ts): the first `$top`,
 * and `_links.next` when the extra one was found.
 */
export function pageOf<T>(
  req: Request,
  found: T[],
  q: { $top: number; $skip: number },
  params: Record<string, string | undefined> = {},
): { items: T[]; _links: { next?: { href: string } } } {
  const more = found.length > q.$top;
  const items = more ? found.slice(0, q.$top) : found;
  // A total that says only "more follow" or "none follow", which is all nextLink needs.
  const next = nextLink(req, q.$top, q.$skip, items.length, q.$skip + items.length + (more ? 1 : 0), params);
  return { items, _links: next ? { next } : {} };
}
