/**
 * The OpenAPI document (api/openapi.ts, README.md "API reference"): valid OpenAPI 3.1, one operation for every Express
 * route of the API and no operation without its route, served at /openapi.json as built, and the reference page at
 * /docs with its scripts.
 */
import { Validator } from "@seriousme/openapi-schema-validator";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { createApp } from "../api/app";
import { buildOpenApiDocument, openApiPath, SERVICE_VERSION } from "../api/openapi";
import type { Config } from "../lib/config";
import { httpAs, stack } from "./helpers";

/** Routes that serve files for browsers, not API operations: the portal's pages and the reference page. */
const NOT_API = new Set([
  "GET /",
  "GET /index.html",
  "GET /docs",
  "GET /docs/swagger-initializer.js",
  "GET /openapi.json",
]);

/** `METHOD /path/{param}` of every route the Express app registers (walking its routers). */
function expressRoutes(): string[] {
  // The routes are registered when the app is built; no dependency is called until a request arrives.
  const unused: any = new Proxy(function () {}, {
    get: (_t, p) => (p === "then" ? undefined : unused),
    apply: () => unused,
  });
  const app: any = createApp({
    config: { sourceRoots: [], dataDir: "/nonexistent" } as unknown as Config,
    store: unused,
    temporal: unused,
    logger: pino({ level: "silent" }),
  });
  const out = new Set<string>();
  const walk = (stack: any[]) => {
    for (const layer of stack) {
      if (layer.route) {
        const paths: string[] = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const m of Object.keys(layer.route.methods))
          for (const p of paths) out.add(`${m.toUpperCase()} ${openApiPath(p)}`);
      } else if (layer.handle?.stack) walk(layer.handle.stack);
    }
  };
  walk(app._router.stack);
  return [...out].filter((r) => !NOT_API.has(r)).sort();
}

function documentedOperations(doc: any): string[] {
  return Object.entries(doc.paths as Record<string, Record<string, unknown>>)
    .flatMap(([p, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${p}`))
    .sort();
}

describe("OpenAPI document", () => {
  const doc = buildOpenApiDocument(SERVICE_VERSION) as any;

  it("is valid OpenAPI 3.1", async () => {
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  it("has an operation for every Express route, and a route for every operation", () => {
    const routes = expressRoutes();
    expect(routes.length).toBeGreaterThan(30);
    expect(documentedOperations(doc)).toEqual(routes);
  });

  it("documents for each operation its path parameters, an error shape for each error status, and a success", () => {
    for (const [p, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      const names = [...p.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      for (const [method, op] of Object.entries(item)) {
        const label = `${method.toUpperCase()} ${p}`;
        const pathParams = (op.parameters ?? []).filter((x: any) => x.in === "path").map((x: any) => x.name);
        expect(pathParams.sort(), label).toEqual(names);
        const statuses = Object.keys(op.responses).map(Number);
        expect(
          statuses.some((s) => s >= 200 && s < 400),
          label,
        ).toBe(true);
        for (const s of statuses.filter((x) => x >= 400 && !(p === "/health" && x === 503)))
          expect(op.responses[s].content["application/json"].schema, `${label} ${s}`).toEqual({
            $ref: "#/components/schemas/Error",
          });
      }
    }
  });

  it("is served at /openapi.json as built, without a key", async () => {
    const r = await httpAs(null, "GET", "/openapi.json");
    expect(r.status).toBe(200);
    expect(r.body.openapi).toBe("3.1.0");
    expect(r.body).toEqual(JSON.parse(JSON.stringify(doc)));
  });

  it("has its reference page at /docs, with the scripts it loads", async () => {
    const page = await fetch(`${stack().apiUrl}/docs`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const scripts = [...html.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1]);
    expect(scripts).toEqual(["/docs/swagger-ui-bundle.js", "/docs/swagger-initializer.js"]);
    for (const src of [...scripts, "/docs/swagger-ui.css"]) {
      const r = await fetch(new URL(src, page.url));
      expect(r.status, src).toBe(200);
      expect((await r.text()).length, src).toBeGreaterThan(50);
    }
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
  });
});
