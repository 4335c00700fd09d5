/** Bad requests get the error shape and the right status, and create nothing. */
import * as os from "node:os";
import { beforeAll, describe, expect, it } from "vitest";
import { http, makeSource, SAMPLE } from "./helpers";

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
    expectError(await http("POST", "/connections", body({ sourceFiles: [{ path: "a.ifc", connectorType: "DWG" }] })), 400, "InvalidRequest");
  });

  it("refuses a body that is not JSON", async () => {
    expectError(await http("POST", "/imodels", undefined, "{not json"), 400, "InvalidRequest");
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
    expectError(await http("POST", "/connections", body({ source: { type: "local", path: os.tmpdir() } })), 400, "SourcePathNotAllowed");
    expectError(await http("POST", "/connections", body({ source: { type: "local", path: `${source}/../../..` } })), 400, "SourcePathNotAllowed");
    expectError(await http("POST", "/connections", body({ source: { type: "local", path: "relative/dir" } })), 400, "InvalidSourcePath");
    const climb = await http("POST", "/connections", body({ sourceFiles: [file("../a.ifc")] }));
    expectError(climb, 400, "InvalidSourceFilePath");
    expect(climb.body.error.details[0].target).toBe("sourceFiles.0.path");
    expectError(await http("POST", "/connections", body({ sourceFiles: [file("x/../../a.ifc")] })), 400, "InvalidSourceFilePath");
    expectError(await http("POST", "/connections", body({ sourceFiles: [file("/etc/passwd")] })), 400, "InvalidSourceFilePath");
    expectError(await http("POST", "/connections", body({ sourceFiles: [file("missing.ifc")] })), 400, "SourceFileNotFound");
    expectError(await http("POST", "/connections", body({ sourceFiles: [file("a.ifc"), file("./a.ifc")] })), 400, "DuplicateSourceFile");
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
