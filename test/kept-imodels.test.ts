/**
 * The writer keeps an iModel open between writes (docs/architecture.md "Open iModels between writes") only while nothing
 * else changed the file: a replaced file or a failed write opens it afresh, a closed one sees other connections' commits,
 * and no write is lost or misplaced. Real StandaloneDb files, real sample parses.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { StandaloneDb, Subject } from "@itwin/core-backend";
import { OpenMode } from "@itwin/core-bentley";
import { IModel } from "@itwin/core-common";
import { parseIfc } from "../activities/connectors/ifc";
import type { ParsedFile } from "../activities/connectors/types";
import {
  closeKeptIModels,
  DeletionGuardError,
  ensureIModel,
  keepIModelsOpen,
  startIModelHost,
  writeSourceFile,
  writtenContentHashes,
} from "../activities/imodel/writer";

const SAMPLES = path.resolve(__dirname, "../samples/ifc");
let tmp: string;
let hvac: ParsedFile;
let georef: ParsedFile;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "kept-imodels-"));
  await startIModelHost(path.join(tmp, "itwin-cache"), { profileName: `kept-${process.pid}` });
  hvac = await parseIfc(path.join(SAMPLES, "ifc4_hvac_air_terminal_duct.ifc"));
  georef = await parseIfc(path.join(SAMPLES, "ifc4x3_georef_mapconversion_utm.ifc"));
  keepIModelsOpen(60_000);
}, 120_000);

afterAll(async () => {
  await closeKeptIModels();
  keepIModelsOpen(0);
  fs.rmSync(tmp, { recursive: true, force: true });
});

function write(bimPath: string, sourceFileId: string, parsed: ParsedFile, runId: string, extra = {}) {
  return writeSourceFile({
    bimPath,
    connectionId: "conn",
    connectionName: "Kept",
    sourceFileId,
    sourceFilePath: `${sourceFileId}.ifc`,
    contentHash: `${sourceFileId}-${runId}`,
    runId,
    parsed,
    ...extra,
  });
}

/** The number of elements with provenance and the Subjects' names, read through a read-only connection. */
async function contents(bimPath: string): Promise<{ elements: number; subjects: string[] }> {
  const db = StandaloneDb.openFile(bimPath, OpenMode.Readonly);
  try {
    const rows = async (ecsql: string) => (await db.createQueryReader(ecsql).toArray()) as unknown[][];
    const [[elements]] = await rows("SELECT count(*) FROM BisCore.ExternalSourceAspect WHERE Kind='Element'");
    const subjects = (await rows("SELECT CodeValue FROM BisCore.Subject WHERE CodeValue IS NOT NULL")).map((r) =>
      String(r[0]),
    );
    return { elements: Number(elements), subjects };
  } finally {
    db.close();
  }
}

describe("an iModel kept open between writes", () => {
  it("is reused for the next write, and opened afresh once closed, after a replaced file and after a failed write", async () => {
    const bim = path.join(tmp, "kept.bim");
    ensureIModel(bim, "kept");
    const opens = vi.spyOn(StandaloneDb, "openFile");
    const writerOpens = () => opens.mock.calls.filter(([, mode]) => mode === OpenMode.ReadWrite).length;

    // two files one after the other: one open
    expect((await write(bim, "hvac", hvac, "r1")).inserted).toBe(hvac.elements.length);
    expect((await write(bim, "georef", georef, "r1")).inserted).toBe(georef.elements.length);
    expect(writerOpens()).toBe(1);
    expect((await contents(bim)).elements).toBe(hvac.elements.length + georef.elements.length);

    // closed (while kept, another read-write open waits for the lock, then fails BE_SQLITE_BUSY), another connection
    // writes; the next write opens it afresh and sees that commit
    await closeKeptIModels();
    const other = StandaloneDb.openFile(bim, OpenMode.ReadWrite);
    Subject.insert(other, IModel.rootSubjectId, "written by another connection");
    other.saveChanges();
    other.close();
    const again = await write(bim, "hvac", hvac, "r2");
    expect(again).toMatchObject({ inserted: 0, deleted: 0, unchanged: hvac.elements.length });
    expect(writerOpens()).toBe(3); // the other connection's, and the writer's fresh one
    expect((await contents(bim)).subjects).toContain("written by another connection");

    // the file replaced at the same path: the write goes to the new file, the old one keeps what it had
    const moved = path.join(tmp, "kept-before.bim");
    fs.renameSync(bim, moved);
    for (const suffix of ["-wal", "-shm"]) if (fs.existsSync(bim + suffix)) fs.renameSync(bim + suffix, moved + suffix);
    ensureIModel(bim, "kept again");
    expect((await write(bim, "georef", georef, "r3")).inserted).toBe(georef.elements.length);
    expect(writerOpens()).toBe(4);
    expect((await contents(bim)).elements).toBe(georef.elements.length);
    expect((await contents(moved)).elements).toBe(hvac.elements.length + georef.elements.length);

    // a write that fails is abandoned and its iModel closed: the next write opens afresh and finds nothing of it
    const emptied: ParsedFile = { ...georef, elements: [], items: { read: 0, notWritten: [] } };
    await expect(
      write(bim, "georef", emptied, "r4", { deletionGuard: { enabled: true, fraction: 0.1, minElements: 1 } }),
    ).rejects.toBeInstanceOf(DeletionGuardError);
    expect((await write(bim, "hvac", hvac, "r4")).inserted).toBe(hvac.elements.length);
    expect(writerOpens()).toBe(5);
    expect((await contents(bim)).elements).toBe(hvac.elements.length + georef.elements.length);
    opens.mockRestore();
  }, 120_000);
});

describe("a .bim replaced by a copy while it is kept open", () => {
  it("a copy taken meanwhile misses nothing; a copy put in its place, as a new file or over it, is written afresh", async () => {
    const bim = path.join(tmp, "replaced-while-kept.bim");
    const copy = path.join(tmp, "replaced-while-kept-copy.bim");
    expect((await write(bim, "hvac", hvac, "r1")).inserted).toBe(hvac.elements.length);
    // kept open: the .bim itself holds the write (the WAL was checkpointed into it), so a plain copy is whole
    fs.copyFileSync(bim, copy);
    expect((await contents(copy)).elements).toBe(hvac.elements.length);
    expect((await write(bim, "georef", georef, "r2")).inserted).toBe(georef.elements.length);

    // the copy put in its place as a new file: the next write goes into the copy, which lacks georef
    const incoming = path.join(tmp, "incoming.bim");
    fs.copyFileSync(copy, incoming);
    fs.renameSync(incoming, bim);
    expect((await write(bim, "georef", georef, "r3")).inserted).toBe(georef.elements.length);
    expect((await contents(bim)).elements).toBe(hvac.elements.length + georef.elements.length);

    // the copy written over the file in place (same inode): opened afresh too, not written through the old connection
    fs.copyFileSync(copy, bim);
    expect((await write(bim, "georef", georef, "r4")).inserted).toBe(georef.elements.length);
    expect((await contents(bim)).elements).toBe(hvac.elements.length + georef.elements.length);
    await closeKeptIModels();
    expect((await contents(bim)).elements).toBe(hvac.elements.length + georef.elements.length);
  }, 120_000);
});

describe("a .bim created where an earlier one was", () => {
  it("a .bim moved while kept open: the new one is created clean, the moved one keeps every commit", async () => {
    const bim = path.join(tmp, "moved-while-kept.bim");
    const moved = path.join(tmp, "moved-while-kept-before.bim");
    await write(bim, "hvac", hvac, "r1");
    expect(fs.existsSync(`${bim}-wal`)).toBe(true); // kept open: its WAL lies beside it
    fs.renameSync(bim, moved); // without its -wal and -shm
    // the kept iModel is checkpointed into the moved file and closed first, its -wal and -shm removed: nothing is left
    // to take away
    expect(ensureIModel(bim, "new")).toEqual({ created: true, stale: [] });
    expect((await contents(bim)).elements).toBe(0);
    expect((await contents(moved)).elements).toBe(hvac.elements.length);
    expect((await write(bim, "georef", georef, "r2")).inserted).toBe(georef.elements.length);
    expect((await contents(bim)).elements).toBe(georef.elements.length);
  });

  it("stale -wal, -shm and -journal of a .bim that is gone are taken away before a new one is created", async () => {
    const bim = path.join(tmp, "stale.bim");
    fs.writeFileSync(`${bim}-wal`, Buffer.alloc(4096, 1));
    fs.writeFileSync(`${bim}-shm`, Buffer.alloc(32768, 2));
    fs.writeFileSync(`${bim}-journal`, "");
    const { created, stale } = ensureIModel(bim, "stale");
    expect(created).toBe(true);
    expect(stale).toEqual([
      { path: `${bim}-wal`, size: 4096, movedTo: expect.stringMatching(/stale\.bim-wal\.orphaned-.+Z$/) },
      { path: `${bim}-shm`, size: 32768 },
      { path: `${bim}-journal`, size: 0 },
    ]);
    expect(fs.readFileSync(stale[0].movedTo!)).toEqual(Buffer.alloc(4096, 1));
    expect((await contents(bim)).elements).toBe(0);

    // one that cannot be taken away: refused, nothing created
    const other = path.join(tmp, "stale-dir.bim");
    fs.mkdirSync(`${other}-wal`);
    expect(() => ensureIModel(other, "refused")).toThrow(
      /stale-dir\.bim-wal.*cannot be taken away.*not a regular file/,
    );
    expect(fs.existsSync(other)).toBe(false);
  });
});

describe("the iModel a file was written into", () => {
  it("answers the content hash of each file's last write, and nothing once the .bim is another", async () => {
    const bim = path.join(tmp, "held.bim");
    expect(await writtenContentHashes(bim, "conn")).toBeUndefined(); // no .bim
    await write(bim, "hvac", hvac, "r1");
    await write(bim, "georef", georef, "r1");
    expect(await writtenContentHashes(bim, "conn")).toEqual(
      new Map([
        ["hvac", "hvac-r1"],
        ["georef", "georef-r1"],
      ]),
    );
    await write(bim, "hvac", hvac, "r2");
    expect(await writtenContentHashes(bim, "conn", { sourceFileId: "hvac" })).toEqual(new Map([["hvac", "hvac-r2"]]));
    expect(await writtenContentHashes(bim, "conn", { readOnly: true })).toEqual(
      new Map([
        ["hvac", "hvac-r2"],
        ["georef", "georef-r1"],
      ]),
    );
    expect(await writtenContentHashes(bim, "another connection")).toEqual(new Map());

    // deleted and created again: it holds nothing of the files (the kept iModel of the deleted file is not used)
    fs.rmSync(bim);
    expect(ensureIModel(bim, "held again")).toEqual({ created: true, stale: [] });
    expect(await writtenContentHashes(bim, "conn")).toEqual(new Map());
  });
});
