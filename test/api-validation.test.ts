/** Bad requests get the error shape and the right status, and create nothing. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { http, makeSource, SAMPLE, stack } from "./helpers";

function expectError(res: { status: number; body: any }, status: number, code: string) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body.error.code).toBe(code);
  expect(typeof res.body.error.message).toBe("string");
  expect(res.body.error.message.length).toBeGreaterThan(0);
}

describe("API validation", () => {
  let iModelId: string;
  let source: string;
  const file = (p: string) => ({ path: p, connectorType: "IFC" });
  const body = (over: Record<string, unknown> = {}) => ({
    iModelId,
    displayName: "v",
    source: { type: "local", path: source },
    sourceFiles: [file("a.ifc")],
    ...over,
  });

  beforeAll(async () => {
    source = makeSource("validation", { "a.ifc": SAMPLE("ifc4_hvac_air_terminal_duct.ifc") });
    iModelId = (await http("POST", "/imodels", { name: "validation" })).body.iModel.id;
  });

  it("creates an iModel and reads it back", async () => {
    const res = await http("POST", "/imodels", { name: "x" });
    expect(res.status).toBe(201);
    expect(res.body.iModel).toMatchObject({ name: "x", location: { type: "local" } });
    expect(res.body.iModel.location.path).toMatch(/\.bim$/);
    expect((await http("GET", `/imodels/${res.body.iModel.id}`)).body.iModel.id).toBe(res.body.iModel.id);
  });

  it("refuses missing and unknown fields with details", async () => {
    const res = await http("POST", "/connections", { iModelId });
    expectError(res, 400, "InvalidRequest");
    const targets = res.body.error.details.map((d: any) => d.target);
    expect(targets).toEqual(expect.arrayContaining(["displayName", "source", "sourceFiles"]));
    expectError(await http("POST", "/imodels", {}), 400, "InvalidRequest");
    expectError(await http("POST", "/imodels", { name: "x", extra: 1 }), 400, "InvalidRequest");
    expectError(await http("POST", "/connections", body({ sourceFiles: [] })), 400, "InvalidRequest");
    expectError(
      await http("POST", "/connections", body({ sourceFiles: [{ path: "a.ifc", connectorType: "DWG" }] })),
      400,
      "InvalidRequest",
    );
  });

  it("refuses a body that is not JSON", async () => {
    expectError(await http("POST", "/imodels", undefined, "{not json"), 400, "InvalidRequest");
  });

  it("refuses a JSON body that is not an object, saying it must be one, and creates nothing", async () => {
    const count = async () => (await http("GET", "/imodels?$top=1000")).body.iModels.length;
    const before = await count();
    for (const [text, kind] of [
      ["null", "null"],
      ['"x"', "a string"],
      [" 3 ", "a number"],
      ["true", "a boolean"],
      ['[{"name": "x"}]', "an array"],
    ]) {
      const res = await http("POST", "/imodels", undefined, text);
      expectError(res, 400, "InvalidRequest");
      expect(res.body.error.message, text).toBe(`The request body must be a JSON object ({...}), not ${kind}.`);
    }
    // any route and method that reads a body, and a DELETE with one (never a 500)
    expectError(await http("POST", "/connections", null), 400, "InvalidRequest");
    expectError(await http("PATCH", "/connections/nope", "x"), 400, "InvalidRequest");
    expectError(await http("DELETE", "/connections/nope", null), 400, "InvalidRequest");
    // text that is no JSON keeps its own answer; an object body is read as before
    expect((await http("POST", "/imodels", undefined, "nul")).body.error.message).toBe(
      "The request body is not valid JSON.",
    );
    expect(await count()).toBe(before);
  });

  it("answers 404 for unknown ids", async () => {
    expectError(await http("GET", "/imodels/nope"), 404, "IModelNotFound");
    expectError(await http("GET", "/connections/nope"), 404, "ConnectionNotFound");
    expectError(await http("POST", "/connections/nope/run"), 404, "ConnectionNotFound");
    expectError(await http("GET", "/connections/nope/runs"), 404, "ConnectionNotFound");
    expectError(await http("POST", "/connections", body({ iModelId: "nope" })), 404, "IModelNotFound");
    expectError(await http("GET", "/nothing-here"), 404, "NotFound");
  });

  it("refuses sources outside SOURCE_ROOTS and file paths that leave the source", async () => {
    expectError(
      await http("POST", "/connections", body({ source: { type: "local", path: os.tmpdir() } })),
      400,
      "SourcePathNotAllowed",
    );
    expectError(
      await http("POST", "/connections", body({ source: { type: "local", path: `${source}/../../..` } })),
      400,
      "SourcePathNotAllowed",
    );
    expectError(
      await http("POST", "/connections", body({ source: { type: "local", path: "relative/dir" } })),
      400,
      "InvalidSourcePath",
    );
    const climb = await http("POST", "/connections", body({ sourceFiles: [file("../a.ifc")] }));
    expectError(climb, 400, "InvalidSourceFilePath");
    expect(climb.body.error.details[0].target).toBe("sourceFiles.0.path");
    expectError(
      await http("POST", "/connections", body({ sourceFiles: [file("x/../../a.ifc")] })),
      400,
      "InvalidSourceFilePath",
    );
    expectError(
      await http("POST", "/connections", body({ sourceFiles: [file("/etc/passwd")] })),
      400,
      "InvalidSourceFilePath",
    );
    expectError(
      await http("POST", "/connections", body({ sourceFiles: [file("missing.ifc")] })),
      400,
      "SourceFileNotFound",
    );
    expectError(
      await http("POST", "/connections", body({ sourceFiles: [file("a.ifc"), file("./a.ifc")] })),
      400,
      "DuplicateSourceFile",
    );
    const list = await http("GET", `/connections?iModelId=${iModelId}`);
    expect(list.body.connections).toEqual([]);
  });

  it("refuses a file already mapped by another connection of the iModel (409)", async () => {
    expect((await http("POST", "/connections", body())).status).toBe(201);
    expectError(await http("POST", "/connections", body({ displayName: "second" })), 409, "SourceFileAlreadyMapped");
  });

  it("validates paging", async () => {
    expectError(await http("GET", "/imodels?$top=0"), 400, "InvalidRequest");
    expectError(await http("GET", "/imodels?$skip=-1"), 400, "InvalidRequest");
  });
});

/** A request with exactly these headers and body (the admin's key unless `authorization` is given). */
async function raw(method: string, urlPath: string, headers: Record<string, string> = {}, body?: string | Uint8Array) {
  const res = await fetch(`${stack().apiUrl}${urlPath}`, {
    method,
    redirect: "manual",
    headers: { authorization: `Bearer ${stack().adminApiKey}`, ...headers },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const newIModel = async (name: string): Promise<string> => {
  const res = await http("POST", "/imodels", { name });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.iModel.id;
};

const connectionBody = (iModelId: string, source: string, files: string[], displayName = "c") => ({
  iModelId,
  displayName,
  source: { type: "local", path: source },
  sourceFiles: files.map((p) => ({ path: p, connectorType: "IFC" })),
});

describe("symbolic links in sources", () => {
  const SMALL = SAMPLE("ifc4x3_georef_mapconversion_utm.ifc");
  const unique = () => `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  let outside: string;
  beforeAll(() => {
    // A folder outside every SOURCE_ROOT (the test stack's roots: samples/ and DATA_DIR/sources).
    outside = fs.mkdtempSync(path.join(os.tmpdir(), "imodel-sync-outside-"));
    fs.copyFileSync(SMALL, path.join(outside, "secret.ifc"));
  });
  afterAll(() => fs.rmSync(outside, { recursive: true, force: true }));

  it("refuses a file, a sub-folder or a source folder that links outside SOURCE_ROOTS", async () => {
    const iModelId = await newIModel("symlinks out");
    const source = makeSource("links-out", { "a.ifc": SMALL });
    fs.symlinkSync(path.join(outside, "secret.ifc"), path.join(source, "evil.ifc"));
    fs.symlinkSync(outside, path.join(source, "sub"));
    fs.symlinkSync(path.join(outside, "missing.ifc"), path.join(source, "dangling.ifc"));

    const file = await http("POST", "/connections", connectionBody(iModelId, source, ["a.ifc", "evil.ifc"]));
    expectError(file, 400, "SourceFileOutsideRoots");
    expect(file.body.error.details[0].target).toBe("sourceFiles.1.path");
    expect(file.body.error.message).not.toContain(outside); // where the link points is not revealed
    expectError(
      await http("POST", "/connections", connectionBody(iModelId, source, ["sub/secret.ifc"])),
      400,
      "SourceFileOutsideRoots",
    );
    expectError(
      await http("POST", "/connections", connectionBody(iModelId, source, ["dangling.ifc"])),
      400,
      "SourceFileNotFound",
    );

    const linkedSource = path.join(stack().sourcesDir, `link-out-${unique()}`);
    fs.symlinkSync(outside, linkedSource);
    expectError(
      await http("POST", "/connections", connectionBody(iModelId, linkedSource, ["secret.ifc"])),
      400,
      "SourcePathNotAllowed",
    );
    expect((await http("GET", `/connections?iModelId=${iModelId}`)).body.connections).toEqual([]);
  });

  it("accepts links that stay inside SOURCE_ROOTS and stores the source folder's real path", async () => {
    const iModelId = await newIModel("symlinks in");
    const source = makeSource("links-in", { "a.ifc": SMALL, "deep/b.ifc": SMALL });
    const linkedSource = path.join(stack().sourcesDir, `link-in-${unique()}`);
    fs.symlinkSync(source, linkedSource);
    fs.symlinkSync(path.join(source, "deep"), path.join(source, "shortcut"));
    const res = await http("POST", "/connections", connectionBody(iModelId, linkedSource, ["a.ifc", "shortcut/b.ifc"]));
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.connection.source.path).toBe(fs.realpathSync(source));
    expect(res.body.connection.sourceFiles.map((f: any) => f.path)).toEqual(["a.ifc", "shortcut/b.ifc"]);
  });

  it("refuses an alias of a file mapped by another connection of the iModel, or listed twice", async () => {
    const iModelId = await newIModel("symlink aliases");
    const source = makeSource("aliases", { "a.ifc": SMALL, "b.ifc": SMALL });
    const aliasFolder = path.join(stack().sourcesDir, `alias-${unique()}`);
    fs.symlinkSync(source, aliasFolder);
    fs.symlinkSync(path.join(source, "a.ifc"), path.join(source, "a-link.ifc"));
    fs.symlinkSync(source, path.join(source, "self"));

    const twice = await http(
      "POST",
      "/connections",
      connectionBody(iModelId, source, ["b.ifc", "a.ifc", "a-link.ifc"]),
    );
    expectError(twice, 400, "DuplicateSourceFile");
    expect(twice.body.error.details[0].target).toBe("sourceFiles.2.path");

    expect((await http("POST", "/connections", connectionBody(iModelId, source, ["a.ifc"], "first"))).status).toBe(201);
    for (const [folder, file] of [
      [aliasFolder, "a.ifc"], // the same file through a linked source folder
      [source, "a-link.ifc"], // through a linked file
      [source, "self/a.ifc"], // through a linked sub-folder
      [aliasFolder, "self/a-link.ifc"],
    ]) {
      const res = await http("POST", "/connections", connectionBody(iModelId, folder, ["b.ifc", file], "alias"));
      expectError(res, 409, "SourceFileAlreadyMapped");
      expect(res.body.error.details[0].target).toBe("sourceFiles.1.path");
    }
    expect(
      (await http("POST", "/connections", connectionBody(iModelId, aliasFolder, ["b.ifc"], "second"))).status,
    ).toBe(201);
    expect((await http("GET", `/connections?iModelId=${iModelId}`)).body.connections).toHaveLength(2);
  });
});

describe("request shape", () => {
  let iModelId: string;
  let source: string;
  beforeAll(async () => {
    source = makeSource("shape", {
      "a.ifc": SAMPLE("ifc4x3_georef_mapconversion_utm.ifc"),
      "folder.ifc/x.ifc": SAMPLE("ifc4x3_georef_mapconversion_utm.ifc"),
    });
    iModelId = await newIModel("request shape");
  });

  it("answers 4xx, not 500, for undecodable URLs and unsupported charsets or encodings", async () => {
    expectError(await raw("GET", "/imodels/%ZZ"), 400, "InvalidRequest");
    expectError(await raw("GET", "/connections/%E0%A4%A/runs"), 400, "InvalidRequest");
    expectError(await raw("GET", "/connections/%E0%A4%A"), 400, "InvalidRequest");
    expectError(
      await raw("POST", "/imodels", { "content-type": "application/json; charset=latin1" }, '{"name": "x"}'),
      415,
      "UnsupportedMediaType",
    );
    expectError(
      await raw(
        "POST",
        "/imodels",
        { "content-type": "application/json", "content-encoding": "compress" },
        '{"name": "x"}',
      ),
      415,
      "UnsupportedMediaType",
    );
    // UTF-8 stays accepted, in any spelling.
    expect(
      (await raw("POST", "/imodels", { "content-type": "application/json; charset=UTF-8" }, '{"name": "utf8"}')).status,
    ).toBe(201);
  });

  it("refuses a body that is not JSON with 415, and an oversized body with 413", async () => {
    const text = await raw("POST", "/imodels", { "content-type": "text/plain" }, '{"name": "x"}');
    expectError(text, 415, "UnsupportedMediaType");
    expect(text.body.error.message).toContain("send application/json");
    expectError(
      await raw("POST", "/imodels", { "content-type": "application/xml" }, "<iModel name='x'/>"),
      415,
      "UnsupportedMediaType",
    );
    expectError(
      await raw("POST", "/imodels", { "content-type": "application/x-www-form-urlencoded" }, "name=x"),
      415,
      "UnsupportedMediaType",
    );
    // No content-type at all (a byte array body gets none from fetch).
    const none = await raw("POST", "/imodels", {}, new TextEncoder().encode('{"name": "x"}'));
    expectError(none, 415, "UnsupportedMediaType");
    expect(none.body.error.message).toContain("send application/json");
    expectError(
      await raw("PUT", "/connections/nope/schedule", { "content-type": "text/plain" }, "daily"),
      415,
      "UnsupportedMediaType",
    );
    // Without a body there is nothing to refuse: validation speaks.
    expectError(await raw("POST", "/imodels"), 400, "InvalidRequest");
    const big = await http("POST", "/imodels", { name: "x".repeat(1_100_000) });
    expectError(big, 413, "PayloadTooLarge");
  });

  it("says what is wrong with a source file path or an unknown nested field", async () => {
    const folder = await http("POST", "/connections", connectionBody(iModelId, source, ["folder.ifc"]));
    expectError(folder, 400, "SourceFileIsFolder");
    expect(folder.body.error.message).toContain("is a folder, not a file");
    expect(folder.body.error.details[0].target).toBe("sourceFiles.0.path");

    const dots = await http("POST", "/connections", connectionBody(iModelId, source, ["sub/../a.ifc"]));
    expectError(dots, 400, "InvalidSourceFilePath");
    expect(dots.body.error.message).toContain("'..' segments are not allowed in source file paths");
    expect(dots.body.error.message).not.toContain("leave");

    const nested = await http("POST", "/connections", {
      ...connectionBody(iModelId, source, []),
      sourceFiles: [{ path: "a.ifc", connectorType: "IFC", bar: 1 }],
      source: { type: "local", path: source, baz: true },
    });
    expectError(nested, 400, "InvalidRequest");
    const targets = nested.body.error.details.map((d: any) => d.target);
    expect(targets).toEqual(expect.arrayContaining(["sourceFiles.0.bar", "source.baz"]));
    expect(nested.body.error.message).toContain("sourceFiles.0.bar");
    expect((await http("GET", `/connections?iModelId=${iModelId}`)).body.connections).toEqual([]);
  });

  it("refuses control characters in names", async () => {
    for (const name of ["a\u0000b", "line\nbreak", "tab\there", "bell\u0007", "c1\u0085", "del\u007f"]) {
      const res = await http("POST", "/imodels", { name });
      expectError(res, 400, "InvalidRequest");
      expect(res.body.error.details[0].target).toBe("name");
      expect(res.body.error.message).toContain("control characters");
    }
    const conn = await http("POST", "/connections", {
      ...connectionBody(iModelId, source, ["a.ifc"]),
      displayName: "x\u0000",
    });
    expectError(conn, 400, "InvalidRequest");
    expect(conn.body.error.details[0].target).toBe("displayName");
    // Surrounding whitespace is trimmed, other scripts and symbols are fine.
    const ok = await http("POST", "/imodels", { name: "  Zürich 東京 ✓ \n" });
    expect(ok.status).toBe(201);
    expect(ok.body.iModel.name).toBe("Zürich 東京 ✓");
  });

  it("refuses repeated or bracketed paging parameters and keeps _links.next to the recognised ones", async () => {
    for (const q of ["$top[]=1", "$top=1&$top=2", "$top[a]=1", "$skip[]=0", "$skip=1&$skip=1"]) {
      const res = await http("GET", `/imodels?${q}`);
      expectError(res, 400, "InvalidRequest");
      expect(res.body.error.message).toMatch(/\$(top|skip) must be given once, as an integer/);
      expect(res.body.error.details[0].target).toMatch(/^\$(top|skip)$/);
    }
    const nan = await http("GET", "/imodels?$top=abc");
    expectError(nan, 400, "InvalidRequest");
    expect(nan.body.error.message).toContain("$top must be an integer from 1 to 1000");
    expect(nan.body.error.message).not.toMatch(/nan/);
    expectError(await http("GET", "/imodels?$top=1.5"), 400, "InvalidRequest");
    expectError(await http("GET", "/imodels?$top=1001"), 400, "InvalidRequest");
    expectError(await http("GET", `/connections?iModelId=${iModelId}&iModelId=${iModelId}`), 400, "InvalidRequest");

    // Enough iModels exist by now for a second page.
    const page = await http("GET", "/imodels?$top=1&foo=bar&baz[]=1&$filter=x");
    expect(page.status).toBe(200);
    expect(page.body._links.next.href).toBe("/imodels?$top=1&$skip=1");
    expect((await http("GET", page.body._links.next.href)).status).toBe(200);

    const second = makeSource("shape-2", { "b.ifc": SAMPLE("ifc4x3_georef_mapconversion_utm.ifc") });
    expect((await http("POST", "/connections", connectionBody(iModelId, source, ["a.ifc"], "one"))).status).toBe(201);
    expect((await http("POST", "/connections", connectionBody(iModelId, second, ["b.ifc"], "two"))).status).toBe(201);
    const conns = await http("GET", `/connections?junk=1&iModelId=${iModelId}&$top=1&$skip=0&other[x]=2`);
    expect(conns.status).toBe(200);
    expect(conns.body._links.next.href).toBe(`/connections?iModelId=${iModelId}&$top=1&$skip=1`);
    const next = await http("GET", conns.body._links.next.href);
    expect(next.body.connections.map((c: any) => c.displayName)).toEqual(["two"]);
    expect(next.body._links).toEqual({});
  });
});
