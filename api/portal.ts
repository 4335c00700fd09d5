/**
 * The portal (web/, README.md "Portal"): a single-page app whose built files (web/dist) the API serves at `/`, before
 * authentication, since the sign-in page needs no key. The portal then calls the API with the key held in its memory.
 * - `GET /` (and `/index.html`): the page, never cached; `GET /assets/*`: its scripts and styles (content-hashed
 *   names, cached for a year). A missing file: 404 `NotFound`; a portal that was not built: 404 `NotFound` saying how
 *   to build it (`make portal`).
 * - These files carry security headers (helmet): a Content-Security-Policy that allows only the API's own origin
 *   (scripts, styles, calls), no framing, no referrer; the API's JSON answers are left as they were.
 * - `GET /config` (authenticated): what the portal needs to know of the deployment: the Temporal UI's address and
 *   namespace, for the link from each run to its workflow.
 */
import * as path from "node:path";
import express, { Router } from "express";
import helmet from "helmet";
import { ApiError } from "../domain/errors";
import type { Config } from "../lib/config";
import { route } from "./http";

/** The built portal: web/dist beside api/ (also in the compiled layout, dist/api → dist/web/dist). */
export const PORTAL_DIR = path.resolve(__dirname, "..", "web", "dist");

/**
 * The portal's static files with their security headers (see the module comment). Mount before authentication.
 * @param dir the built portal (default {@link PORTAL_DIR}).
 */
export function portalFiles(dir = PORTAL_DIR): Router {
  const router = Router();
  const securityHeaders = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", "data:"],
        fontSrc: ["'self'", "data:"],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    referrerPolicy: { policy: "no-referrer" },
  });
  const notFound = (message: string) => new ApiError("NotFound", message);

  router.get(["/", "/index.html"], securityHeaders, (req, res, next) => {
    res.sendFile("index.html", { root: dir, headers: { "cache-control": "no-cache" } }, (err) => {
      if (err)
        next(
          (err as NodeJS.ErrnoException).code === "ENOENT"
            ? notFound(`The portal is not built (no ${path.join(dir, "index.html")}): run 'make portal'.`)
            : err,
        );
    });
  });
  router.use(
    "/assets",
    securityHeaders,
    express.static(path.join(dir, "assets"), { index: false, immutable: true, maxAge: "365d", fallthrough: true }),
    (req, _res, next) => next(notFound(`No portal file ${req.originalUrl.split("?")[0]}.`)),
  );
  return router;
}

/** `GET /config`: the Temporal UI's address and namespace (links from runs to their workflows). */
export function portalConfigRouter({ config }: { config: Config }): Router {
  const router = Router();
  router.get(
    "/config",
    route(async (_req, res) => {
      res.json({
        temporalUi: {
          url: config.temporalUiUrl.replace(/\/+$/, ""),
          namespace: config.temporalNamespace,
          _links: {
            workflow: {
              href: `${config.temporalUiUrl.replace(/\/+$/, "")}/namespaces/${encodeURIComponent(config.temporalNamespace)}/workflows/{workflowId}`,
              templated: true,
            },
          },
        },
      });
    }),
  );
  return router;
}
