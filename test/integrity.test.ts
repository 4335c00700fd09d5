/**
 * Every source item accounted for (README "Synchronization"), on the real stack: an incomplete file never deletes
 * data, a file that changes while it is read is read again, the deletion guard holds a file that would lose most of
 * its elements, classes the reader does not know are reported, references are followed to any depth with cycles
 * named, and on every task read = written + not written.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { createUser, ecsql, eventually, http, httpAs, makeSource, ROOT, stack, tasksOf, waitForRun } from "./helpers";

const I = (f: string) => path.join(__dirname, "fixtures", "integrity", f);

async function newIModel(name: string): Promise<{ id: string; bim: string }> {
  const m = await http("POST", "/imodels", { name });
  expect(m.status).toBe(201);
  return { id: m.body.iModel.id, bim: m.body.iModel.location.path };
}

/** A connection over `files` (paths relative to `source`), connector type by extension. */
async function connect(iModelId: string, source: string, files: string[], displayName: string) {
  const c = await http("POST", "/connections", {
    iModelId,
    displayName,
    source: { type: "local", path: source },
    sourceFiles: files.map((p) => ({ path: p, connectorType: p.toLowerCase().endsWith(".dxf") ? "DXF" : "IFC" })),
  });
  expect(c.status, JSON.stringify(c.body)).toBe(201);
  return c.body.connection;
}

/** Runs the connection (optionally with a body) and waits for the run; tasks by path. */
async function run(connectionId: string, body?: unknown) {
  const r = await http("POST", `/connections/${connectionId}/run`, body);
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  const { run } = await waitForRun(r.location!, 300_000);
  const tasks = tasksOf(run);
  return { run, tasks, byPath: (p: string) => tasks.find((t: any) => t.path === p) };
}

/** Sum of the not-written counts of a task's items. */
const notWritten = (t: any) => t.items.notWritten.reduce((n: number, g: any) => n + g.count, 0);

/** Every task that was read and written accounts for each item: read = written + not written. */
function expectAccounted(t: any): void {
  expect(t.items, t.path).toBeDefined();
  const { inserted, updated, unchanged } = t.items.written;
  expect(inserted + updated + unchanged + notWritten(t), t.path).toBe(t.items.read);
  expect({ inserted, updated, unchanged }, t.path).toEqual({
    inserted: t.elements.inserted,
    updated: t.elements.updated,
    unchanged: t.elements.unchanged,
  });
  // property values and relationships have their own tally, with the same rule
  for (const kind of ["properties", "relationships"] as const) {
    const tally = t.items[kind];
    expect(tally, `${t.path} ${kind}`).toBeDefined();
    const missing = tally.notWritten.reduce((n: number, g: any) => n + g.count, 0);
    expect(tally.written + missing, `${t.path} ${kind}`).toBe(tally.read);
  }
}

/** Elements of the iModel with their provenance identifier, element id and LastMod. */
async function elementsOf(bim: string): Promise<Record<string, { id: string; lastMod: string }>> {
  const rows = await ecsql(
    bim,
    `SELECT a.Identifier identifier, e.ECInstanceId id, e.LastMod lastMod FROM Generic.PhysicalObject e
       JOIN BisCore.ExternalSourceAspect a ON a.Element.Id = e.ECInstanceId AND a.Kind = 'Element'`,
  );
  return Object.fromEntries(rows.map((r) => [r.identifier, { id: r.id, lastMod: r.lastMod }]));
}

/** An IFC4 file with `n` building element proxies (GlobalIds `proxy-<k>` padded to 22 characters), each a 1 m cube. */
function proxiesIfc(n: number, padding = ""): string {
  const rev1 = fs.readFileSync(I("model_rev1.ifc"), "latin1");
  const head = rev1.slice(0, rev1.indexOf("#100="));
  const lines: string[] = [];
  for (let k = 0; k < n; k++) {
    const b = 1000 + k * 10;
    const gid = `proxy${String(k).padStart(4, "0")}`.padEnd(22, "_");
    lines.push(
      `#${b}=IFCBUILDINGELEMENTPROXY('${gid}',$,'Proxy ${k}',$,$,#${b + 1},#${b + 5},$,$);`,
      `#${b + 1}=IFCLOCALPLACEMENT(#25,#${b + 2});`,
      `#${b + 2}=IFCAXIS2PLACEMENT3D(#${b + 3},$,$);`,
      `#${b + 3}=IFCCARTESIANPOINT((${2 * k}.0,0.0,0.0));`,
      `#${b + 4}=IFCRECTANGLEPROFILEDEF(.AREA.,$,#${b + 8},1.0,1.0);`,
      `#${b + 5}=IFCPRODUCTDEFINITIONSHAPE($,$,(#${b + 6}));`,
      `#${b + 6}=IFCSHAPEREPRESENTATION(#11,'Body','SweptSolid',(#${b + 7}));`,
      `#${b + 7}=IFCEXTRUDEDAREASOLID(#${b + 4},#9,#7,1.0);`,
      `#${b + 8}=IFCAXIS2PLACEMENT2D(#${b + 9},$);`,
      `#${b + 9}=IFCCARTESIANPOINT((0.5,0.5));`,
    );
  }
  return `${head}${lines.join("\n")}\n${padding}ENDSEC;\nEND-ISO-10303-21;\n`;
}

describe("damaged data never reads as elements removed", () => {
  it("a syntax error in an entity fails the task; a product that lost its placement or its shape keeps its element", async () => {
    const source = makeSource("damaged", { "model.ifc": I("model_rev1.ifc") });
    const file = path.join(source, "model.ifc");
    const rev1 = fs.readFileSync(file, "latin1");
    const iModel = await newIModel("damaged");
    const connection = await connect(iModel.id, source, ["model.ifc"], "damaged");
    expect((await run(connection.id)).run.result).toBe("Success");
    const before = await elementsOf(iModel.bim);
    expect(Object.keys(before).sort()).toEqual(
      ["0k920sdWUpJUKcqZZBZVvI", "1YueHYcBxEa0eY6z3s_Zyv", "3Mow9YJfDbMq6sOj$GgZe8"].sort(),
    );

    // 1. Text that is no STEP syntax inside the column's entity: the file fails, nothing is deleted.
    fs.writeFileSync(file, rev1.replace(/^#120=IFCCOLUMN\(.*$/m, "#120=IFCCOLUMN(@@@ garbage ###);"), "latin1");
    const garbled = await run(connection.id);
    expect(garbled.tasks[0].result).toBe("Error");
    expect(garbled.tasks[0].error.code).toBe("InvalidFileFormat");
    expect(garbled.tasks[0].error.message).toContain("entity #120");
    expect(garbled.tasks[0].elements.deleted).toBe(0);
    expect(await elementsOf(iModel.bim)).toEqual(before);

    // 2. The column's placement names an instance the file lacks, and its shape is gone: kept as it was.
    fs.writeFileSync(file, rev1.replace("#121,#125,$,$);", "#99999,$,$,$);"), "latin1");
    const unplaced = await run(connection.id);
    expect(unplaced.run.result).toBe("Success");
    expect(unplaced.tasks[0].elements).toMatchObject({ deleted: 0, inserted: 0 });
    expect(unplaced.tasks[0].items.notWritten).toEqual([
      expect.objectContaining({ code: "PlacementNotResolved", className: "IfcColumn", count: 1 }),
    ]);
    expectAccounted(unplaced.tasks[0]);
    expect((await elementsOf(iModel.bim))["0k920sdWUpJUKcqZZBZVvI"]).toEqual(before["0k920sdWUpJUKcqZZBZVvI"]);

    // 3. Neither placement nor shape: kept as it was too.
    fs.writeFileSync(file, rev1.replace("#121,#125,$,$);", "$,$,$,$);"), "latin1");
    const bare = await run(connection.id);
    expect(bare.run.result).toBe("Success");
    expect(bare.tasks[0].elements).toMatchObject({ deleted: 0, inserted: 0 });
    expect(bare.tasks[0].items.notWritten).toEqual([
      expect.objectContaining({ code: "NoGeometryOrPlacement", className: "IfcColumn", count: 1 }),
    ]);
    expect(await elementsOf(iModel.bim)).toEqual(before);

    // 4. A DATA section emptied (no IfcProject, no products): no IFC model, not a removal of everything.
    fs.writeFileSync(file, rev1.replace(/DATA;[\s\S]*ENDSEC;/, "DATA;\nENDSEC;"), "latin1");
    const emptied = await run(connection.id);
    expect(emptied.tasks[0].result).toBe("Error");
    expect(emptied.tasks[0].error).toMatchObject({ code: "InvalidFileFormat" });
    expect(emptied.tasks[0].error.message).toContain("no IfcProject");
    expect(await elementsOf(iModel.bim)).toEqual(before);

    // The whole file again: the column is as it was, unchanged.
    fs.writeFileSync(file, rev1, "latin1");
    const whole = await run(connection.id);
    expect(whole.tasks[0].elements).toMatchObject({ deleted: 0, inserted: 0, updated: 0 });
    expect(await elementsOf(iModel.bim)).toEqual(before);
  });
});

describe("an incomplete file never deletes data", () => {
  it("a half-written IFC fails FileIncomplete with nothing deleted; the next complete version synchronizes normally", async () => {
    const source = makeSource("half-written", { "model.ifc": I("model_rev1.ifc") });
    const file = path.join(source, "model.ifc");
    const iModel = await newIModel("half-written");
    const connection = await connect(iModel.id, source, ["model.ifc"], "half-written");

    const first = await run(connection.id);
    expect(first.run.result).toBe("Success");
    // the wall, the slab and the column, and the site, building and storey that hold them
    expect(first.tasks[0].elements).toEqual({ inserted: 6, updated: 0, deleted: 0, unchanged: 0 });
    expect(first.tasks[0].items).toEqual({
      read: 6,
      written: { inserted: 6, updated: 0, unchanged: 0 },
      notWritten: [],
      properties: { read: 0, written: 0, notWritten: [] },
      // the three elements contained in the storey, the storey in the building, the building in the site
      relationships: { read: 5, written: 5, notWritten: [] },
      definitions: { read: 0, written: { inserted: 0, updated: 0, unchanged: 0 }, deleted: 0, notWritten: [] },
    });
    const before = await elementsOf(iModel.bim);
    expect(Object.keys(before)).toHaveLength(3);

    // The file as a copy still being written leaves it, and the other incomplete forms: nothing changes. A cut right
    // after the '#' of a reference is no STEP syntax, but the file has no terminators: incomplete too.
    const rev1 = fs.readFileSync(I("model_rev1.ifc"));
    const afterHash = rev1.indexOf("#", rev1.indexOf("(", rev1.indexOf("#120=IFCCOLUMN("))) + 1;
    for (const [fixture, bytes, missing] of [
      [
        "model_rev2_truncated.ifc",
        fs.readFileSync(I("model_rev2_truncated.ifc")),
        /entity #114 \(line 43\) is cut off by the end of the file; the DATA section \(line 7\) has no ENDSEC; no END-ISO-10303-21/,
      ],
      [
        "model_unterminated_entity.ifc",
        fs.readFileSync(I("model_unterminated_entity.ifc")),
        /entity #107 \(line 36\) is not closed/,
      ],
      ["model_header_only.ifc", fs.readFileSync(I("model_header_only.ifc")), /no DATA section/],
      [
        "model_rev1.ifc cut after a '#'",
        rev1.subarray(0, afterHash),
        /entity #120 \(line \d+\) is cut off by the end of the file; the DATA section \(line 7\) has no ENDSEC; no END-ISO-10303-21/,
      ],
    ] as const) {
      fs.writeFileSync(file, bytes);
      const r = await run(connection.id);
      expect(r.run.result, fixture).toBe("Error");
      const task = r.tasks[0];
      expect(task.result).toBe("Error");
      expect(task.error.code).toBe("FileIncomplete");
      expect(task.error.message).toMatch(/^model\.ifc: the file is incomplete \(/);
      expect(task.error.message).toMatch(missing);
      expect(task.elements.deleted).toBe(0);
      expect(task).not.toHaveProperty("items");
      expect(await elementsOf(iModel.bim)).toEqual(before); // same elements, same ids, LastMod untouched
    }

    // The next complete version: the slab renamed.
    fs.writeFileSync(file, fs.readFileSync(I("model_rev1.ifc"), "latin1").replace("'Slab'", "'Slab (revised)'"));
    const next = await run(connection.id);
    expect(next.run.result).toBe("Success");
    expect(next.tasks[0].elements).toEqual({ inserted: 0, updated: 1, deleted: 0, unchanged: 5 });
    expectAccounted(next.tasks[0]);
    const after = await elementsOf(iModel.bim);
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
  });

  it("a file that changes while it is read waits and is read again; the task then synchronizes it", async () => {
    // About 24 MB: reading it takes long enough for the appends below to land between the two stats of a read.
    const padding = `${" ".repeat(1023)}\n`.repeat(24 * 1024);
    const source = makeSource("changing", {});
    const file = path.join(source, "growing.ifc");
    fs.writeFileSync(file, proxiesIfc(3, padding));
    const iModel = await newIModel("changing");
    const connection = await connect(iModel.id, source, ["growing.ifc"], "changing");
    // A process of its own appends without pause until the task is seen waiting: an interval timer in this process
    // can be held back for longer than a read takes when the machine is busy. A read can still fall between two
    // appends (the appender not scheduled meanwhile): then the run synchronizes the file without waiting, and the next
    // run (the file has changed) reads it again; at most 3 runs (as in test/portal-accounting.test.ts).
    const appender = spawn(
      process.execPath,
      ["-e", 'const fs = require("node:fs"); for (;;) fs.appendFileSync(process.argv[1], "\\n");', file],
      { stdio: "ignore" },
    );
    let location = "";
    let runs = 0;
    try {
      for (let waiting: any; !waiting;) {
        runs++;
        const r = await http("POST", `/connections/${connection.id}/run`);
        expect(r.status).toBe(202);
        location = r.location!;
        const seen = await eventually(
          "the task waiting to retry after the file changed while it was read, or the run to end",
          async () => {
            const run = (await http("GET", location)).body.run;
            const t = tasksOf(run)[0];
            if (t?.state === "WaitingToRetry") return { task: t };
            return run.state === "Completed" ? { ended: run } : undefined;
          },
          120_000,
          50,
        );
        waiting = seen.task;
        if (!waiting) {
          expect(runs, `no read saw the file change; last run ${JSON.stringify(seen.ended)}`).toBeLessThan(3);
          const size = fs.statSync(file).size;
          await eventually("the file to change after the run", async () => fs.statSync(file).size > size);
          continue;
        }
        expect(waiting.reason).toMatchObject({ code: "FileChangedDuringRead", target: "growing.ifc" });
        expect(waiting.reason.message).toMatch(/^growing\.ifc: the file changed while it was read \(size /);
      }
    } finally {
      const exited = new Promise((resolve) => appender.once("exit", resolve));
      if (appender.exitCode === null && appender.signalCode === null) {
        appender.kill("SIGKILL");
        await exited;
      }
    }
    const { run: done } = await waitForRun(location, 300_000);
    const task = tasksOf(done)[0];
    expect(done.result).toBe("Success");
    expect(task.attempts).toBeGreaterThanOrEqual(2);
    expect(task).not.toHaveProperty("reason");
    // 3 proxies, the site, the building and the storey: inserted by the first run, unchanged in a later one
    expect(task.elements).toMatchObject(runs === 1 ? { inserted: 6 } : { inserted: 0, unchanged: 6 });
    expectAccounted(task);
  });
});

describe("the deletion guard", () => {
  it("holds a file that would lose most of its elements; a confirmed run applies it; it can be changed and switched off", async () => {
    const source = makeSource("guard", {});
    const file = path.join(source, "proxies.ifc");
    fs.writeFileSync(file, proxiesIfc(20));
    const iModel = await newIModel("guard");
    const connection = await connect(iModel.id, source, ["proxies.ifc"], "guard");
    expect(connection.deletionGuard).toEqual({ enabled: true, fraction: 0.5, minElements: 10 });
    expect((await run(connection.id)).tasks[0].elements.inserted).toBe(23); // and the site, building and storey

    // 15 of 23 would be deleted: held, nothing written
    fs.writeFileSync(file, proxiesIfc(5));
    const before = await elementsOf(iModel.bim);
    const held = await run(connection.id);
    expect(held.run.result).toBe("Error");
    expect(held.run).not.toHaveProperty("confirmDeletions");
    const task = held.tasks[0];
    expect(task.error.code).toBe("DeletionGuard");
    expect(task.error.message).toMatch(
      /^proxies\.ifc: writing it would delete 15 of the 23 elements it has in the iModel \(65\.2 %\); the connection's deletion guard holds a file that would lose more than 50 % of its elements and at least 10\. Nothing of the file was written\./,
    );
    expect(task.error.message).toContain('{"confirmDeletions": true}');
    expect(task.elements).toEqual({ inserted: 0, updated: 0, deleted: 0, unchanged: 0 });
    expect(await elementsOf(iModel.bim)).toEqual(before);

    // confirmed: applied
    const confirmed = await run(connection.id, { confirmDeletions: true });
    expect(confirmed.run.result).toBe("Success");
    expect(confirmed.run.confirmDeletions).toBe(true);
    expect(confirmed.tasks[0].elements).toMatchObject({ deleted: 15, unchanged: 8 });
    expectAccounted(confirmed.tasks[0]);

    // configurable: at least 100 deletions before it holds
    fs.writeFileSync(file, proxiesIfc(20));
    expect((await run(connection.id)).tasks[0].elements.inserted).toBe(15);
    const raised = await http("PATCH", `/connections/${connection.id}`, { deletionGuard: { minElements: 100 } });
    expect(raised.status, JSON.stringify(raised.body)).toBe(200);
    expect(raised.body.connection.deletionGuard).toEqual({ enabled: true, fraction: 0.5, minElements: 100 });
    fs.writeFileSync(file, proxiesIfc(5));
    expect((await run(connection.id)).tasks[0].elements.deleted).toBe(15);

    // switched off
    fs.writeFileSync(file, proxiesIfc(20));
    expect((await run(connection.id)).tasks[0].elements.inserted).toBe(15);
    const off = await http("PATCH", `/connections/${connection.id}`, {
      deletionGuard: { enabled: false, minElements: 10 },
    });
    expect(off.body.connection.deletionGuard).toEqual({ enabled: false, fraction: 0.5, minElements: 10 });
    expect((await http("GET", `/connections/${connection.id}`)).body.connection.deletionGuard.enabled).toBe(false);
    fs.writeFileSync(file, proxiesIfc(5));
    const unguarded = await run(connection.id);
    expect(unguarded.run.result).toBe("Success");
    expect(unguarded.tasks[0].elements.deleted).toBe(15);

    // bad input, and only the owner or an admin
    for (const body of [
      { deletionGuard: { fraction: 1.5 } },
      { deletionGuard: { minElements: 0 } },
      { deletionGuard: { enabled: "no" } },
      { deletionGuard: { limit: 3 } },
      { deletionGuard: {}, displayName: "" },
    ]) {
      const bad = await http("PATCH", `/connections/${connection.id}`, body);
      expect(bad.status, JSON.stringify(body)).toBe(400);
      expect(bad.body.error.code).toBe("InvalidRequest");
    }
    const badRun = await http("POST", `/connections/${connection.id}/run`, { confirmDeletions: "yes" });
    expect(badRun.status).toBe(400);
    // a team member who does not own the connection is refused; to anyone outside the team it does not exist
    const member = await createUser("guard member");
    expect((await http("POST", `/imodels/${iModel.id}/members`, { userId: member.user.id })).status).toBe(201);
    const refused = await httpAs(member.apiKey, "PATCH", `/connections/${connection.id}`, {
      deletionGuard: { enabled: true },
    });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe("NotConnectionOwner");
    const outsider = await createUser("guard outsider");
    const hidden = await httpAs(outsider.apiKey, "PATCH", `/connections/${connection.id}`, {
      deletionGuard: { enabled: true },
    });
    expect(hidden.status).toBe(404);
  });
});

describe("classes the reader does not know", () => {
  it("an IFC4X3 class in an IFC4 file: the proxy is written, the class named in a warning with its count", async () => {
    const source = makeSource("ifc4x3-classes", { "mixed.ifc": I("ifc4_with_ifc4x3_classes.ifc") });
    const iModel = await newIModel("ifc4x3-classes");
    const connection = await connect(iModel.id, source, ["mixed.ifc"], "mixed");
    const { run: r, tasks } = await run(connection.id);
    expect(r.result).toBe("Success");
    expect(tasks[0].elements.inserted).toBe(4); // the proxy, the site, the building and the storey
    expect(tasks[0].warnings).toContainEqual(
      expect.objectContaining({ code: "UnsupportedEntityType", target: "IfcRail", count: 1, examples: ["#100"] }),
    );
    expect(tasks[0].items.notWritten).toContainEqual({
      code: "UnsupportedEntityType",
      className: "IfcRail",
      count: 1,
      examples: ["#100"],
    });
    expectAccounted(tasks[0]);
    expect(Object.keys(await elementsOf(iModel.bim))).toEqual(["0gryP1udcshMB0Bf3slZoc"]);
  });
});

describe("references to any depth", () => {
  it("follows nested attached references, synchronizes each file once, names every cycle, never 'not found' for a file that exists", async () => {
    const source = makeSource("nested", {
      "host.dxf": I("xref-nested/host.dxf"),
      "b.dxf": I("xref-nested/b.dxf"),
      "c.dxf": I("xref-nested/c.dxf"),
      "self.dxf": I("xref-nested/self.dxf"),
    });
    const iModel = await newIModel("nested");
    const connection = await connect(iModel.id, source, ["host.dxf", "self.dxf"], "nested");
    const first = await run(connection.id);
    expect(first.run.result).toBe("Success");
    expect(first.tasks.map((t: any) => [t.path, t.phase, t.result])).toEqual([
      ["host.dxf", "MasterFile", "Success"],
      ["self.dxf", "MasterFile", "Success"],
      ["b.dxf", "ReferenceFile", "Success"],
      ["c.dxf", "ReferenceFile", "Success"],
    ]);
    for (const t of first.tasks) {
      expect(t.elements.inserted, t.path).toBe(1); // one LINE each
      expectAccounted(t);
      expect(
        t.warnings.filter((w: any) => w.code === "UnresolvedReference"),
        t.path,
      ).toEqual([]);
    }
    const hostId = connection.sourceFiles.find((f: any) => f.path === "host.dxf").id;
    expect(first.byPath("c.dxf").referencedBy).toEqual([hostId]);
    expect(first.byPath("b.dxf").warnings).toEqual([
      expect.objectContaining({ code: "CircularReference", target: "host.dxf" }),
    ]);
    expect(first.byPath("b.dxf").warnings[0].message).toMatch(/^circular reference: host\.dxf → b\.dxf → host\.dxf;/);
    expect(first.byPath("self.dxf").warnings).toEqual([
      expect.objectContaining({ code: "CircularReference", target: ".\\self.dxf" }),
    ]);
    expect(first.byPath("self.dxf").warnings[0].message).toMatch(/^circular reference: self\.dxf → self\.dxf;/);
    const lines = await ecsql(
      iModel.bim,
      "SELECT p.CodeValue file, COUNT(*) n FROM BisCore.PhysicalPartition p JOIN Generic.PhysicalObject e ON e.Model.Id = p.ECInstanceId GROUP BY p.CodeValue",
    );
    expect(Object.fromEntries(lines.map((l) => [l.file, l.n]))).toEqual({
      "host.dxf": 1,
      "b.dxf": 1,
      "c.dxf": 1,
      "self.dxf": 1,
    });

    // The connection shows the nested references under their composite.
    const c = (await http("GET", `/connections/${connection.id}`)).body.connection;
    const host = c.sourceFiles.find((f: any) => f.path === "host.dxf");
    expect(host.references).toEqual([
      expect.objectContaining({
        path: "b.dxf",
        resolved: true,
        references: [
          expect.objectContaining({ path: "c.dxf", resolved: true, attachment: "Attach" }),
          expect.objectContaining({ path: "host.dxf", resolved: true, circular: true }),
        ],
      }),
    ]);

    // Planning follows the nested references of unchanged files: every file is Skipped, none forgotten.
    const second = await run(connection.id);
    expect(second.tasks.map((t: any) => [t.path, t.result])).toEqual([
      ["host.dxf", "Skipped"],
      ["self.dxf", "Skipped"],
      ["b.dxf", "Skipped"],
      ["c.dxf", "Skipped"],
    ]);
    // A change two levels down is synchronized.
    const cFile = path.join(source, "c.dxf");
    fs.writeFileSync(cFile, `999\nrevised\n${fs.readFileSync(cFile, "latin1")}`);
    const third = await run(connection.id);
    expect(third.tasks.map((t: any) => [t.path, t.result])).toEqual([
      ["host.dxf", "Skipped"],
      ["self.dxf", "Skipped"],
      ["b.dxf", "Skipped"],
      ["c.dxf", "Success"],
    ]);
  });

  it("a three-level chain with a cycle back to the composite; nested overlays are not followed; unresolved references say where they were looked for", async () => {
    const source = makeSource("chain", {
      "xref-chain/level1.dxf": I("xref-chain/level1.dxf"),
      "xref-chain/level2.dxf": I("xref-chain/level2.dxf"),
      "xref-chain/level3.dxf": I("xref-chain/level3.dxf"),
      "xref-chain/overlay.dxf": I("xref-chain/overlay.dxf"),
      "overlay_host.dxf": path.join(__dirname, "fixtures/dxf-xref/xref_host_overlay_r2018.dxf"),
    });
    const iModel = await newIModel("chain");
    const connection = await connect(iModel.id, source, ["xref-chain/level1.dxf", "overlay_host.dxf"], "chain");
    const { run: r, tasks, byPath } = await run(connection.id);
    expect(r.result).toBe("Success");
    expect(tasks.map((t: any) => [t.path, t.phase])).toEqual([
      ["xref-chain/level1.dxf", "MasterFile"],
      ["overlay_host.dxf", "MasterFile"],
      ["xref-chain/level2.dxf", "ReferenceFile"],
      ["xref-chain/level3.dxf", "ReferenceFile"],
    ]);
    const cycle = byPath("xref-chain/level3.dxf").warnings;
    expect(cycle.map((w: any) => w.code)).toEqual(["CircularReference"]);
    expect(cycle[0].message).toMatch(
      /^circular reference: xref-chain\/level1\.dxf → xref-chain\/level2\.dxf → xref-chain\/level3\.dxf → xref-chain\/level1\.dxf;/,
    );
    expect(byPath("xref-chain/level2.dxf").warnings).toEqual([
      expect.objectContaining({ code: "NestedOverlayIgnored", target: "overlay.dxf" }),
    ]);
    const unresolved = byPath("overlay_host.dxf").warnings.filter((w: any) => w.code === "UnresolvedReference");
    expect(unresolved.map((w: any) => w.message)).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^reference 'missing_structure\\.dwg'.* was not found: looked for 'missing_structure\\.dwg' in the source \\(folders searched: /\\S*/${path.basename(source)}\\)`,
        ),
      ),
    );
    for (const t of tasks) expectAccounted(t);
  });
});

describe("read = written + not written", () => {
  /** Fixtures that are not complete or not readable on purpose, with the task error they give. */
  const BAD: Record<string, string> = {
    "ifc4_broken_missing_header.ifc": "InvalidFileFormat",
    "model_rev2_truncated.ifc": "FileIncomplete",
    "model_unterminated_entity.ifc": "FileIncomplete",
    "model_header_only.ifc": "FileIncomplete",
    "drawing_without_eof.dxf": "FileIncomplete",
  };
  const files = [
    ...fs
      .readdirSync(path.join(ROOT, "samples"), { recursive: true, encoding: "utf8" })
      .map((f) => ["samples", f] as const),
    ...fs
      .readdirSync(path.join(__dirname, "fixtures"), { recursive: true, encoding: "utf8" })
      .map((f) => ["fixtures", f] as const),
  ].filter(([, f]) => /\.(ifc|dxf)$/i.test(f));

  it("on every task, for every sample and every fixture (IFC and DXF); web-ifc's messages stay out of the worker log", async () => {
    expect(files.length).toBeGreaterThanOrEqual(25);
    const source = makeSource(
      "every-file",
      Object.fromEntries(
        files.map(([root, f]) => [
          `${root}/${f}`,
          path.join(root === "samples" ? path.join(ROOT, "samples") : path.join(__dirname, "fixtures"), f),
        ]),
      ),
    );
    const iModel = await newIModel("every file");
    const connection = await connect(
      iModel.id,
      source,
      files.map(([root, f]) => `${root}/${f}`),
      "every file",
    );
    const { tasks } = await run(connection.id);
    expect(tasks.length).toBe(files.length);
    for (const t of tasks) {
      const bad = BAD[path.basename(t.path)];
      if (bad) {
        expect(t.result, t.path).toBe("Error");
        expect(t.error.code, t.path).toBe(bad);
        continue;
      }
      expect(t.result, `${t.path}: ${JSON.stringify(t.error)}`).toBe("Success");
      expectAccounted(t);
    }
    const log = fs.readFileSync(path.join(stack().dataDir, "logs", "worker.log"), "utf8");
    expect(log).not.toContain("[WEB-IFC]");
    const hvac = tasks.find((t: any) => t.path.endsWith("ifc4_hvac_air_terminal_duct.ifc"));
    expect(hvac.warnings).toContainEqual(
      expect.objectContaining({ code: "GeometryProblem", count: 1, examples: ["unexpected style type 481"] }),
    );
  });
});
