/**
 * A file is skipped as unchanged only when the iModel holds it (README "Synchronization", `fileUnchanged` in
 * activities/file-sync.ts): a `.bim` deleted and created again by the run's first file, replaced by an older copy, or
 * created by another connection's run holds nothing of the other files, so they are written again. And a new `.bim` is
 * never created over the `-wal` / `-shm` an earlier database left at its path (`ensureIModel` in
 * activities/imodel/writer.ts). Real stack, real samples.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { StandaloneDb, Subject } from "@itwin/core-backend";
import { OpenMode } from "@itwin/core-bentley";
import { IModel } from "@itwin/core-common";
import {
  createConnection,
  ecsql,
  eventually,
  FIXTURE,
  http,
  makeSource,
  SAMPLE,
  stack,
  tasksOf,
  waitForRun,
} from "./helpers";

const FILES = {
  "structure.ifc": SAMPLE("ifc2x3_structural_revit_example_rev1.ifc"),
  "architecture.ifc": SAMPLE("ifc4_architecture_revit_testmodel.ifc"),
  "hvac.ifc": SAMPLE("ifc4_hvac_air_terminal_duct.ifc"),
  "georef.ifc": SAMPLE("ifc4x3_georef_mapconversion_utm.ifc"),
};
const REV2 = FIXTURE("ifc/ifc2x3_structural_revit_example_rev2.ifc");

async function run(connectionId: string) {
  const r = await http("POST", `/connections/${connectionId}/run`);
  expect(r.status).toBe(202);
  const { run } = await waitForRun(r.location!);
  const tasks = tasksOf(run);
  return { run, tasks, byPath: (p: string) => tasks.find((t: any) => t.path === p) };
}

/** Elements with provenance in the iModel, per source file (its RepositoryLink's Url). */
async function elementsPerFile(bim: string): Promise<Record<string, number>> {
  const rows = await ecsql(
    bim,
    `SELECT l.Url url, COUNT(*) n FROM BisCore.ExternalSourceAspect a
       JOIN BisCore.RepositoryLink l ON l.ECInstanceId = a.Scope.Id
      WHERE a.Kind = 'Element' GROUP BY l.Url`,
  );
  return Object.fromEntries(rows.map((r) => [r.url, r.n]));
}

/** Waits until the worker closed the iModel it keeps open after a write (SQLite then removes the `-wal`). */
async function closedByWorker(bim: string): Promise<void> {
  await eventually("the worker to close the iModel", async () => !fs.existsSync(`${bim}-wal`), 20_000, 100);
}

async function newConnection(name: string, files: Record<string, string>, iModelId?: string) {
  const source = makeSource(name, files);
  const created = await createConnection(source, Object.keys(files), name, iModelId);
  const bim: string = (await http("GET", `/imodels/${created.iModelId}`)).body.iModel.location.path;
  return { source, bim, iModelId: created.iModelId, connection: created.connection };
}

describe("a file is skipped as unchanged only when the iModel holds it", () => {
  it("a .bim deleted after a sync: the next run writes all four files again, not only the changed one", async () => {
    const { source, bim, connection } = await newConnection("bim-deleted", FILES);
    const first = await run(connection.id);
    expect(first.run.result).toBe("Success");
    expect(first.tasks).toHaveLength(4);
    for (const t of first.tasks) expect(t.elements.inserted).toBeGreaterThan(0);
    const written = await elementsPerFile(bim);
    expect(Object.keys(written).sort()).toEqual(Object.keys(FILES).sort());

    // the .bim goes away (with its -wal and -shm when the worker still holds it open), one file changes
    for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(bim + suffix, { force: true });
    fs.copyFileSync(REV2, path.join(source, "structure.ifc"));
    const second = await run(connection.id);
    expect(second.run.result).toBe("Success");
    expect(second.tasks).toHaveLength(4);
    for (const t of second.tasks) {
      expect(t.result, t.path).toBe("Success");
      expect(t.reason?.code, t.path).toBeUndefined();
      expect(t.elements.inserted, t.path).toBe(written[t.path]);
    }
    expect(await elementsPerFile(bim)).toEqual(written); // rev2 has as many elements as rev1

    // nothing changed since: every file is skipped again, the iModel as it was
    const third = await run(connection.id);
    expect(third.run.result).toBe("Success");
    for (const t of third.tasks) {
      expect(t.result, t.path).toBe("Skipped");
      expect(t.reason.code).toBe("FileUnchanged");
    }
    expect(await elementsPerFile(bim)).toEqual(written);
  });

  it("a .bim replaced by an older copy: the file written since is written again; the others are skipped", async () => {
    const { source, bim, connection } = await newConnection("bim-older", {
      "structure.ifc": FILES["structure.ifc"],
      "hvac.ifc": FILES["hvac.ifc"],
    });
    expect((await run(connection.id)).run.result).toBe("Success");
    await closedByWorker(bim);
    const backup = path.join(path.dirname(bim), `backup-${path.basename(bim)}`);
    fs.copyFileSync(bim, backup);

    fs.copyFileSync(REV2, path.join(source, "structure.ifc"));
    const changed = await run(connection.id);
    expect(changed.byPath("structure.ifc").elements).toMatchObject({ updated: 1, unchanged: 119 });
    expect(changed.byPath("hvac.ifc").reason.code).toBe("FileUnchanged");
    await closedByWorker(bim);
    const spaces = async () => (await ecsql(bim, "SELECT COUNT(*) n FROM ImodelSync.Space"))[0].n as number;
    const withRev2 = await spaces();

    // the older copy holds rev1 of structure.ifc: planning sees it, and the run writes rev2 again
    fs.renameSync(backup, bim);
    expect(await spaces()).toBe(withRev2 - 1);
    const restored = await run(connection.id);
    expect(restored.run.result).toBe("Success");
    expect(restored.byPath("structure.ifc").result).toBe("Success");
    expect(restored.byPath("structure.ifc").elements).toMatchObject({ updated: 1, unchanged: 119 });
    expect(restored.byPath("hvac.ifc").result).toBe("Skipped");
    expect(restored.byPath("hvac.ifc").reason.code).toBe("FileUnchanged");
    expect(await spaces()).toBe(withRev2);
  });

  it("a .bim created again by another connection's run: this connection's files are written again", async () => {
    const a = await newConnection("bim-shared-a", { "hvac.ifc": FILES["hvac.ifc"], "georef.ifc": FILES["georef.ifc"] });
    const b = await newConnection("bim-shared-b", { "structure.ifc": FILES["structure.ifc"] }, a.iModelId);
    expect((await run(a.connection.id)).run.result).toBe("Success");
    expect((await run(b.connection.id)).run.result).toBe("Success");
    const written = await elementsPerFile(a.bim);

    for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(a.bim + suffix, { force: true });
    expect((await run(b.connection.id)).byPath("structure.ifc").result).toBe("Success");
    // a's files are unchanged and the .bim exists, but it holds nothing of them
    const again = await run(a.connection.id);
    expect(again.run.result).toBe("Success");
    for (const t of again.tasks) {
      expect(t.result, t.path).toBe("Success");
      expect(t.elements.inserted, t.path).toBe(written[t.path]);
    }
    expect(await elementsPerFile(a.bim)).toEqual(written);
  });
});

describe("a new .bim is never created over what an earlier database left at its path", () => {
  it("moves a stale -wal aside (nothing of it reaches the new iModel, nothing of it is lost) and removes the -shm", async () => {
    const files = { "hvac.ifc": FILES["hvac.ifc"], "georef.ifc": FILES["georef.ifc"] };
    const { bim, connection } = await newConnection("bim-stale-wal", files);
    expect((await run(connection.id)).run.result).toBe("Success");
    const written = await elementsPerFile(bim);
    await closedByWorker(bim);

    // A commit that is still only in the WAL: the .bim is moved away without its -wal and -shm.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stale-wal-"));
    const db = StandaloneDb.openFile(bim, OpenMode.ReadWrite);
    let wal: Buffer;
    let shm: Buffer;
    try {
      Subject.insert(db, IModel.rootSubjectId, "committed in the WAL only");
      db.saveChanges();
      wal = fs.readFileSync(`${bim}-wal`);
      shm = fs.readFileSync(`${bim}-shm`);
      expect(wal.length).toBeGreaterThan(32); // header and frames
      fs.copyFileSync(bim, path.join(tmp, "moved.bim")); // the main file without the commit
    } finally {
      db.close(); // checkpoints into the original and removes its -wal and -shm
    }
    fs.rmSync(bim);
    fs.writeFileSync(`${bim}-wal`, wal);
    fs.writeFileSync(`${bim}-shm`, shm);

    const again = await run(connection.id);
    expect(again.run.result).toBe("Success");
    for (const t of again.tasks) expect(t.elements.inserted, t.path).toBe(written[t.path]);
    expect(await elementsPerFile(bim)).toEqual(written);
    const label = (p: string) =>
      ecsql(p, "SELECT COUNT(*) n FROM BisCore.Subject WHERE CodeValue = 'committed in the WAL only'");
    expect((await label(bim))[0].n).toBe(0);

    // the -wal was moved aside beside it, the -shm removed (the worker says so); put back beside the moved .bim, the
    // commit is there
    await closedByWorker(bim);
    const aside = fs.readdirSync(path.dirname(bim)).filter((f) => f.startsWith(`${path.basename(bim)}-`));
    expect(aside).toHaveLength(1);
    const orphaned = aside[0];
    expect(orphaned).toMatch(/\.bim-wal\.orphaned-\d{4}-\d\d-\d\dT[\d-]+Z$/);
    // private like every file of DATA_DIR, although the test wrote the -wal with its own mode
    expect(fs.statSync(path.join(path.dirname(bim), orphaned)).mode & 0o777).toBe(0o600);
    const logged = fs
      .readFileSync(path.join(stack().dataDir, "logs", "worker.log"), "utf8")
      .split("\n")
      .find((l) => l.includes("files of an earlier database at its path taken away") && l.includes(path.basename(bim)));
    expect(logged).toBeDefined();
    expect(JSON.parse(logged!).stale).toEqual([
      { path: `${bim}-wal`, size: wal.length, movedTo: path.join(path.dirname(bim), orphaned) },
      { path: `${bim}-shm`, size: shm.length },
    ]);
    expect((await label(path.join(tmp, "moved.bim")))[0].n).toBe(0);
    fs.copyFileSync(path.join(path.dirname(bim), orphaned), path.join(tmp, "moved.bim-wal"));
    expect((await label(path.join(tmp, "moved.bim")))[0].n).toBe(1);
    fs.rmSync(tmp, { recursive: true, force: true });
  });
});
