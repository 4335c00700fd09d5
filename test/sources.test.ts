/**
 * `GET /sources` (api/sources.ts) on the real stack: the SOURCE_ROOTS, a folder's subfolders and files with the
 * connector type each would use, and the refusals: outside the roots (also through `..` and through symbolic links),
 * not found, not a folder, bad query.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { http, httpAs, makeSource, ROOT, SAMPLE, stack } from "./helpers";

const list = (folder?: string) =>
  http("GET", folder === undefined ? "/sources" : `/sources?path=${encodeURIComponent(folder)}`);

describe("GET /sources", () => {
  let source: string;
  let outside: string;

  beforeAll(() => {
    source = makeSource("browse", {
      "b.ifc": SAMPLE("ifc4_hvac_air_terminal_duct.ifc"),
      "A.DXF": SAMPLE("ifc4_hvac_air_terminal_duct.ifc"),
      "notes.txt": SAMPLE("ifc4_hvac_air_terminal_duct.ifc"),
      "sub/c.ifc": SAMPLE("ifc4_hvac_air_terminal_duct.ifc"),
    });
    // A folder outside every SOURCE_ROOT, reached from inside one through symbolic links.
    outside = fs.mkdtempSync(path.join(os.tmpdir(), "imodel-sync-outside-"));
    fs.writeFileSync(path.join(outside, "secret.ifc"), "ISO-10303-21;");
    fs.symlinkSync(outside, path.join(source, "escape"));
    fs.symlinkSync(path.join(outside, "secret.ifc"), path.join(source, "linked-secret.ifc"));
    fs.symlinkSync(path.join(source, "sub", "c.ifc"), path.join(source, "linked-inside.ifc"));
  });

  afterAll(() => {
    fs.rmSync(outside, { recursive: true, force: true });
  });

  it("lists the SOURCE_ROOTS without a path", async () => {
    const res = await list();
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      folder: null,
      folders: [
        { name: path.join(ROOT, "samples"), path: path.join(ROOT, "samples") },
        { name: stack().sourcesDir, path: stack().sourcesDir },
      ],
      files: [],
      truncated: false,
    });
  });

  it("lists a folder's subfolders and files, each file with its connector type; links inside the roots are listed", async () => {
    const res = await list(source);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.folder).toEqual({ path: source, root: stack().sourcesDir, parent: stack().sourcesDir });
    expect(res.body.folders).toEqual([{ name: "sub", path: path.join(source, "sub") }]);
    const files = res.body.files.map((f: any) => [f.name, f.connectorType, f.path]);
    expect(files).toEqual([
      ["A.DXF", "DXF", path.join(source, "A.DXF")],
      ["b.ifc", "IFC", path.join(source, "b.ifc")],
      ["linked-inside.ifc", "IFC", path.join(source, "linked-inside.ifc")],
      ["notes.txt", null, path.join(source, "notes.txt")],
    ]);
    const b = res.body.files.find((f: any) => f.name === "b.ifc");
    expect(b.size).toBe(fs.statSync(SAMPLE("ifc4_hvac_air_terminal_duct.ifc")).size);
    expect(new Date(b.modifiedDateTime).toISOString()).toBe(b.modifiedDateTime);
    expect(res.body.truncated).toBe(false);
    // Nothing of what lies outside: neither the linked folder nor the linked file, nor where they point.
    expect(JSON.stringify(res.body)).not.toContain(outside);
    expect(JSON.stringify(res.body)).not.toContain("escape");
    expect(JSON.stringify(res.body)).not.toContain("secret");

    const sub = await list(path.join(source, "sub"));
    expect(sub.body.folder.parent).toBe(source);
    expect(sub.body.files.map((f: any) => f.name)).toEqual(["c.ifc"]);
    const root = await list(stack().sourcesDir);
    expect(root.body.folder).toEqual({ path: stack().sourcesDir, root: stack().sourcesDir, parent: null });
    expect(root.body.folders.map((f: any) => f.path)).toContain(source);
  });

  it("refuses folders outside the roots: lexically, through '..', and through a symbolic link", async () => {
    for (const p of [os.tmpdir(), "/", `${stack().sourcesDir}/../..`, `${source}/../../../etc`]) {
      const res = await list(p);
      expect(res.status, p).toBe(400);
      expect(res.body.error.code).toBe("SourcePathNotAllowed");
      expect(res.body.error.details).toEqual([expect.objectContaining({ target: "path" })]);
    }
    const link = await list(path.join(source, "escape"));
    expect(link.status).toBe(400);
    expect(link.body.error.code).toBe("SourcePathNotAllowed");
    expect(link.body.error.message).toContain("symbolic link");
    expect(JSON.stringify(link.body)).not.toContain(outside);
  });

  it("answers 404 SourceFolderNotFound for a missing folder or a file, 400 for a relative path or a bad query", async () => {
    const missing = await list(path.join(source, "nope"));
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ code: "SourceFolderNotFound", details: [{ target: "path" }] });
    expect((await list(path.join(source, "b.ifc"))).body.error.code).toBe("SourceFolderNotFound");
    expect((await list("samples")).body.error.code).toBe("InvalidSourcePath");
    const twice = await http("GET", `/sources?path=${encodeURIComponent(source)}&path=x`);
    expect(twice.status).toBe(400);
    expect(twice.body.error.code).toBe("InvalidRequest");
    expect((await http("GET", "/sources?path=")).body.error.code).toBe("InvalidRequest");
    expect((await http("GET", "/sources?folder=x")).body.error.code).toBe("InvalidRequest");
  });

  it("needs an API key", async () => {
    expect((await httpAs(null, "GET", "/sources")).status).toBe(401);
  });
});

describe("GET /config and the portal's files", () => {
  it("gives the Temporal UI's address and namespace to a signed-in caller", async () => {
    const res = await http("GET", "/config");
    expect(res.status).toBe(200);
    expect(res.body.temporalUi).toMatchObject({
      url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      namespace: "default",
    });
    expect((await httpAs(null, "GET", "/config")).status).toBe(401);
  });

  it("serves the portal at / without a key, with a Content-Security-Policy; JSON answers keep their headers", async () => {
    const page = await fetch(`${stack().apiUrl}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.headers.get("cache-control")).toBe("no-cache");
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await page.text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${stack().apiUrl}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get("cache-control")).toContain("immutable");
    const missing = await fetch(`${stack().apiUrl}/assets/nope.js`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as any).error.code).toBe("NotFound");
    const json = await fetch(`${stack().apiUrl}/imodels`);
    expect(json.status).toBe(401);
    expect(json.headers.get("content-security-policy")).toBeNull();
  });
});
