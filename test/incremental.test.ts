/**
 * Incremental synchronization on the real stack with the two real revisions of the structural sample:
 * file level (content hash → Skipped) and element level (provenance → inserted/updated/deleted/unchanged).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { createConnection, ecsql, FIXTURE, http, makeSource, SAMPLE, waitForRun } from "./helpers";

const REV1 = SAMPLE("ifc2x3_structural_revit_example_rev1.ifc");
const REV2 = FIXTURE("ifc/ifc2x3_structural_revit_example_rev2.ifc");

interface ElementRow {
  identifier: string;
  id: string;
  lastMod: string;
  cls: string;
}

async function elements(bim: string): Promise<Map<string, ElementRow>> {
  const rows = await ecsql(
    bim,
    `SELECT a.Identifier identifier, e.ECInstanceId id, e.LastMod lastMod, c.CodeValue cls
       FROM BisCore.ExternalSourceAspect a
       JOIN bis.GeometricElement3d e ON e.ECInstanceId = a.Element.Id
       JOIN BisCore.SpatialCategory c ON c.ECInstanceId = e.Category.Id
      WHERE a.Kind = 'Element'`,
  );
  return new Map(rows.map((r) => [r.identifier, r as ElementRow]));
}

async function runOnce(connectionId: string) {
  const r = await http("POST", `/connections/${connectionId}/run`);
  expect(r.status).toBe(202);
  const { run } = await waitForRun(r.location!);
  return { run, task: run.jobs[0].tasks[0] };
}

describe("incremental synchronization", () => {
  let source: string;
  let connection: any;
  let bim: string;
  let first: Map<string, ElementRow>;

  beforeAll(async () => {
    source = makeSource("incremental", { "structure.ifc": REV1 });
    const created = await createConnection(source, ["structure.ifc"], "incremental");
    connection = created.connection;
    bim = (await http("GET", `/imodels/${created.iModelId}`)).body.iModel.location.path;
    const { task } = await runOnce(connection.id);
    expect(task.result).toBe("Success");
    expect(task.elements).toEqual({ inserted: 120, updated: 0, deleted: 0, unchanged: 0 }); // 116 + site, building, 2 storeys
    first = await elements(bim);
  });

  it("changes exactly the one element whose source changed (rev1 → rev2: a beam became an IfcSpace)", async () => {
    // Headers of the two revisions are identical: only content hashing can see the change.
    fs.copyFileSync(REV2, path.join(source, "structure.ifc"));
    const { run, task } = await runOnce(connection.id);
    expect(run.result).toBe("Success");
    expect(task.result).toBe("Success");
    expect(task.elements).toEqual({ inserted: 0, updated: 1, deleted: 0, unchanged: 119 });

    const second = await elements(bim);
    const classes = (m: Map<string, ElementRow>) =>
      [...m.values()].reduce<Record<string, number>>((acc, r) => ({ ...acc, [r.cls]: (acc[r.cls] ?? 0) + 1 }), {});
    expect(classes(first).IfcBeam).toBe(44);
    expect(classes(second).IfcBeam).toBe(43);
    expect(classes(second).IfcSpace).toBe(1);
    expect(second.size).toBe(first.size);

    const changed = [...second.values()].filter((r) => r.cls === "IfcSpace");
    expect(changed).toHaveLength(1);
    const before = first.get(changed[0].identifier)!;
    expect(before.cls).toBe("IfcBeam");
    // same GlobalId → the same element of the source, updated; as a space it is a spatial element of the iModel, a BIS
    // class the beam's physical object cannot change into in place, so it is a new element id
    expect(changed[0].id).not.toBe(before.id);
    expect(
      (await ecsql(bim, "SELECT COUNT(*) n FROM ImodelSync.Space WHERE ECInstanceId=:id", { id: changed[0].id }))[0].n,
    ).toBe(1);
    for (const [identifier, row] of first) {
      if (identifier === changed[0].identifier) continue;
      expect(second.get(identifier)).toEqual(row); // id, class and LastMod untouched
    }
  });

  it("parses nothing when no file changed (task Skipped, says why)", async () => {
    const before = await elements(bim);
    const { run, task } = await runOnce(connection.id);
    expect(run.result).toBe("Success");
    expect(task.result).toBe("Skipped");
    expect(task.reason.code).toBe("FileUnchanged");
    expect(task.reason.message).toContain("structure.ifc");
    expect(task.elements).toEqual({ inserted: 0, updated: 0, deleted: 0, unchanged: 0 });
    expect(await elements(bim)).toEqual(before);
  });

  it("fails a mapped file that disappeared with a file-access error and keeps its data", async () => {
    const before = await elements(bim);
    fs.rmSync(path.join(source, "structure.ifc"));
    const { run, task } = await runOnce(connection.id);
    expect(run.result).toBe("Error");
    expect(task.result).toBe("Error");
    expect(task.error.code).toBe("FileNotFound");
    expect(task.error.message).toContain("structure.ifc");
    expect(await elements(bim)).toEqual(before);
  });
});

describe("source files are checked when a run reads them", () => {
  it("refuses a mapped file that became a symlink out of SOURCE_ROOTS, or a FIFO, without hanging", async () => {
    const source = makeSource("checks", {
      "a.ifc": SAMPLE("ifc4_hvac_air_terminal_duct.ifc"),
      "b.ifc": SAMPLE("ifc4x3_georef_mapconversion_utm.ifc"),
    });
    const { connection } = await createConnection(source, ["a.ifc", "b.ifc"], "checks");
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), "outside-roots-"));
    fs.copyFileSync(SAMPLE("ifc4_hvac_air_terminal_duct.ifc"), path.join(outside, "secret.ifc"));
    fs.rmSync(path.join(source, "a.ifc"));
    fs.symlinkSync(path.join(outside, "secret.ifc"), path.join(source, "a.ifc"));
    fs.rmSync(path.join(source, "b.ifc"));
    execFileSync("mkfifo", [path.join(source, "b.ifc")]);
    const r = await http("POST", `/connections/${connection.id}/run`);
    const { run } = await waitForRun(r.location!, 60_000);
    const tasks = run.jobs[0].tasks;
    expect(tasks.find((t: any) => t.path === "a.ifc").error.code).toBe("FileOutsideSourceRoots");
    expect(tasks.find((t: any) => t.path === "b.ifc").error.code).toBe("FileUnreadable");
    expect(run.result).toBe("Error");
    fs.rmSync(outside, { recursive: true, force: true });
  });
});
