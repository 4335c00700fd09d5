import type { NextFunction, Request, RequestHandler, Response } from "express";
import { MongoNetworkError, MongoServerSelectionError } from "mongodb";
import { ZodError, type ZodTypeAny, type z } from "zod";
import { ApiError } from "../domain/errors";
import type { Logger } from "../lib/logger";

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
  const details = error.issues.map((i) => ({
    code: i.code === "unrecognized_keys" ? "UnknownField" : i.code === "invalid_type" && i.received === "undefined" ? "MissingField" : "InvalidValue",
    message: i.message,
    target: i.path.join(".") || (i.code === "unrecognized_keys" ? i.keys.join(",") : ""),
  }));
  const summary = details.map((d) => (d.target ? `${d.target}: ${d.message}` : d.message)).join("; ");
  return new ApiError("InvalidRequest", `The request is not valid: ${summary}`, details);
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
    if (err instanceof ApiError) apiError = err;
    else if (err instanceof ZodError) apiError = zodToApiError(err);
    else if ((err as { type?: string })?.type === "entity.parse.failed") {
      apiError = new ApiError("InvalidRequest", "The request body is not valid JSON.");
    } else if ((err as { type?: string })?.type === "entity.too.large") {
      apiError = new ApiError("InvalidRequest", "The request body is too large.");
    } else if (isDependencyDown(err)) {
      logger.error({ err, path: req.path }, "dependency unavailable");
      apiError = new ApiError("DependencyUnavailable", "A service this API depends on (MongoDB or Temporal) is unavailable; try again later.");
    } else {
      logger.error({ err, path: req.path }, "unexpected error");
      apiError = new ApiError("InternalError", "An unexpected error occurred.");
    }
    res.status(apiError.status).json(apiError.toBody());
  };
}

/** `_links.next` for a page: present when more items follow. */
export function nextLink(req: Request, top: number, skip: number, returned: number, total: number): { href: string } | undefined {
  if (skip + returned >= total) return undefined;
  const url = new URL(req.originalUrl, "http://placeholder");
  url.searchParams.set("$top", String(top));
  url.searchParams.set("$skip", String(skip + top));
  // Keep `$top`/`$skip` readable (URLSearchParams would write `%24top`).
  const query = [...url.searchParams].map(([k, v]) => `${encodeURIComponent(k).replace(/^%24/, "$")}=${encodeURIComponent(v)}`);
  return { href: `${url.pathname}?${query.join("&")}` };
}
