/**
 * The API's Prometheus metrics (README.md "Metrics"):
 * - {@link requestMetrics}: counts every answered request and its duration by method, Express route pattern and
 *   status. The route is the pattern the request matched (`/connections/:id/runs/:runId`), never the raw path, so ids
 *   never become label values; requests no route matched are `unmatched`, the portal's files `portal`.
 * - `GET /metrics` ({@link metricsRouter}): the registry in Prometheus's text format, for administrators only (401
 *   without a key, 403 `AdminOnly` for other users): the figures span every team's iModels.
 */
import { Router, type RequestHandler } from "express";
import { ApiError } from "../domain/errors";
import { isAdmin } from "../domain/users";
import type { ApiMetrics } from "../lib/metrics";
import { currentUser } from "./auth";
import { route } from "./http";

/**
 * Middleware (mounted first) that observes each request when its answer is finished.
 * @param portalPaths whether a path is one of the portal's files (they match no API route).
 */
export function requestMetrics(metrics: ApiMetrics, portalPaths: (path: string) => boolean): RequestHandler {
  return (req, res, next) => {
    const end = metrics.httpDuration.startTimer();
    res.on("finish", () => {
      const pattern = req.route?.path as string | undefined;
      const routeLabel =
        typeof pattern === "string"
          ? `${req.baseUrl}${pattern}`
          : req.method === "GET" && portalPaths(req.path)
            ? "portal"
            : "unmatched";
      const labels = { method: req.method, route: routeLabel, status: String(res.statusCode) };
      metrics.httpRequests.inc(labels);
      end(labels);
    });
    next();
  };
}

/** `GET /metrics` (after authentication): administrators only. */
export function metricsRouter(metrics: ApiMetrics): Router {
  const router = Router();
  router.get(
    "/metrics",
    route(async (req, res) => {
      if (!isAdmin(currentUser(req)))
        throw new ApiError("AdminOnly", "Only an administrator may read the metrics (they span every iModel).");
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    }),
  );
  return router;
}
