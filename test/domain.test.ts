/** Unit tests of pure rules (no servers). */
import { describe, expect, it } from "vitest";
import { type ApiError } from "../domain/errors";
import { aggregateResult } from "../domain/model";
import { checkSourceFolder, normaliseSourceFilePath } from "../domain/paths";

describe("aggregateResult", () => {
  it("follows the iTwin run result words", () => {
    expect(aggregateResult([])).toBe("Success");
    expect(aggregateResult(["Success", "Skipped"])).toBe("Success");
    expect(aggregateResult(["Skipped", "Skipped"])).toBe("Success");
    expect(aggregateResult(["Success", "Error"])).toBe("PartialSuccess");
    expect(aggregateResult(["Error", "TimedOut"])).toBe("Error");
    expect(aggregateResult(["Success", "Cancelled"])).toBe("Cancelled");
  });
});

describe("source paths", () => {
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      return (e as ApiError).code;
    }
    return "none";
  };
  it("normalises relative file paths and refuses escapes", () => {
    expect(normaliseSourceFilePath("./a//b\\c.ifc")).toBe("a/b/c.ifc");
    expect(code(() => normaliseSourceFilePath("../x.ifc"))).toBe("InvalidSourceFilePath");
    expect(code(() => normaliseSourceFilePath("a/../../x.ifc"))).toBe("InvalidSourceFilePath");
    expect(code(() => normaliseSourceFilePath("/abs.ifc"))).toBe("InvalidSourceFilePath");
    expect(code(() => normaliseSourceFilePath("C:/x.ifc"))).toBe("InvalidSourceFilePath");
    expect(code(() => normaliseSourceFilePath("."))).toBe("InvalidSourceFilePath");
    expect(code(() => normaliseSourceFilePath("a\0b"))).toBe("InvalidSourceFilePath");
  });
  it("keeps sources inside the roots", () => {
    expect(checkSourceFolder("/srv/data/a/../b", ["/srv/data"])).toBe("/srv/data/b");
    expect(checkSourceFolder("/srv/data", ["/srv/data"])).toBe("/srv/data");
    expect(code(() => checkSourceFolder("/srv/database", ["/srv/data"]))).toBe("SourcePathNotAllowed");
    expect(code(() => checkSourceFolder("/srv/data/../etc", ["/srv/data"]))).toBe("SourcePathNotAllowed");
    expect(code(() => checkSourceFolder("srv/data", ["/srv/data"]))).toBe("InvalidSourcePath");
  });
});

import { referenceCandidates } from "../domain/references";
describe("reference candidates", () => {
  it("resolves relative to the composite, then by file name, never outside the source", () => {
    expect(referenceCandidates("hosts/a.dxf", "grid.dxf")).toEqual(["hosts/grid.dxf"]);
    expect(referenceCandidates("hosts/a.dxf", "..\\xrefs\\site.dwg")).toEqual(["xrefs/site.dwg", "hosts/site.dwg"]);
    expect(referenceCandidates("a.dxf", "..\\xrefs\\site.dwg")).toEqual(["site.dwg"]);
    expect(referenceCandidates("a.dxf", "C:\\Projects\\x\\grid.dxf")).toEqual(["grid.dxf"]);
    expect(referenceCandidates("a.dxf", "/abs/grid.dxf")).toEqual(["grid.dxf"]);
    expect(referenceCandidates("a.dxf", "  ")).toEqual([]);
  });
});
