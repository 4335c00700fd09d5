/**
 * The parser thread (`activities/connectors/parse-in-thread.ts`; docs/architecture.md "Heartbeats"): it parses the
 * bytes the file task read once and hashed (moved to it, never read again from disk), gives what the connectors give
 * on the main thread (elements, item accounting, warnings), keeps the codes of SourceFileErrors (completeness checks),
 * and leaves the main thread free during a long parse, so that its heartbeat timer fires. Pure: no server stack used.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDxfBytes } from "../activities/connectors/dxf";
import { parseIfcBytes } from "../activities/connectors/ifc";
import { idleParserThreads, KEEP_THREAD_MAX_BYTES, parseInThread } from "../activities/connectors/parse-in-thread";
import { SourceFileError } from "../activities/connectors/types";
import { contentHashOf, readSourceFileOnce } from "../activities/source-files";

const INTEGRITY = path.join(__dirname, "fixtures", "integrity");
const I = (f: string) => path.join(INTEGRITY, f);

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "parse-thread-"));
});
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** A DXF drawing (the structure of `xref-nested/c.dxf`) with `count` LINE entities, handles 100, 101, …. */
function dxfWithLines(count: number): string {
  const head = fs.readFileSync(I("xref-nested/c.dxf"), "latin1").split("  0\nLINE\n")[0];
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const y = (i % 1000) * 0.5;
    const x = Math.floor(i / 1000) * 2;
    lines.push(
      `  0\nLINE\n  5\n${(0x100 + i).toString(16).toUpperCase()}\n  8\n0\n 10\n${x}\n 20\n${y}\n 30\n0.0\n 11\n${x + 1.5}\n 21\n${y}\n 31\n0.0\n`,
    );
  }
  return `${head}${lines.join("")}  0\nENDSEC\n  0\nEOF\n`;
}

async function failure(p: Promise<unknown>): Promise<SourceFileError> {
  try {
    await p;
  } catch (e) {
    return e as SourceFileError;
  }
  throw new Error("expected the parse to fail");
}

describe("the parser thread", () => {
  it("parses the bytes read once, as the connectors do on the main thread, and takes them over", async () => {
    for (const [type, file] of [
      ["IFC", "model_every_item_kind.ifc"],
      ["DXF", "xref-nested/b.dxf"],
    ] as const) {
      const copy = path.join(tmp, path.basename(file));
      fs.copyFileSync(I(file), copy);
      const bytes = await readSourceFileOnce(copy, path.basename(file));
      const hash = contentHashOf(bytes);
      const expected =
        type === "IFC"
          ? await parseIfcBytes(Buffer.from(bytes), path.basename(file))
          : parseDxfBytes(Buffer.from(bytes), path.basename(file));
      // The file changes after its read: the thread parses what was read (and hashed), not what the file now holds.
      fs.writeFileSync(copy, "not a design file");
      const parsed = await parseInThread(type, bytes, path.basename(file));
      expect(parsed).toEqual(expected);
      expect(hash).toBe(contentHashOf(fs.readFileSync(I(file))));
      // read = written + not written, as on the main thread
      const notWritten = parsed.items.notWritten.reduce((n, x) => n + x.count, 0);
      expect(parsed.items.read).toBe(parsed.elements.length + notWritten);
      if (type === "IFC") expect(notWritten).toBeGreaterThan(0);
      // Moved, not copied: the caller's buffer is detached.
      expect(bytes.byteLength).toBe(0);
    }
  });

  it("copies bytes that share their memory (a small pooled Buffer) and leaves the caller's intact", async () => {
    const text = fs.readFileSync(I("xref-nested/c.dxf"), "latin1");
    const pool = Buffer.from(`padding${text}`, "latin1");
    const bytes = pool.subarray("padding".length);
    const parsed = await parseInThread("DXF", bytes, "c.dxf");
    expect(parsed.elements.map((e) => e.identifier)).toEqual(["100"]);
    expect(bytes.toString("latin1")).toBe(text);
  });

  it("keeps the codes of the completeness checks and of unreadable files", async () => {
    const truncated = await failure(
      parseInThread("IFC", fs.readFileSync(I("model_rev2_truncated.ifc")), "model_rev2_truncated.ifc"),
    );
    expect(truncated).toBeInstanceOf(SourceFileError);
    expect(truncated.code).toBe("FileIncomplete");
    expect(truncated.message).toContain("model_rev2_truncated.ifc: the file is incomplete");

    const noEof = await failure(
      parseInThread("DXF", fs.readFileSync(I("drawing_without_eof.dxf")), "drawing_without_eof.dxf"),
    );
    expect(noEof).toBeInstanceOf(SourceFileError);
    expect(noEof.code).toBe("FileIncomplete");

    const notIfc = await failure(parseInThread("IFC", Buffer.from("hello"), "hello.ifc"));
    expect(notIfc).toBeInstanceOf(SourceFileError);
    expect(notIfc.code).toBe("InvalidFileFormat");

    // The thread is still usable after failed parses.
    const ok = await parseInThread("IFC", fs.readFileSync(I("model_rev1.ifc")), "model_rev1.ifc");
    // The wall, slab and column, and the site, building and storey containing them.
    expect(ok.elements.map((e) => e.identifier).sort()).toEqual(
      [
        "3KAJXYr6$SN02GET5om766",
        "2ZliDgwAdtBUPmbdeqern$",
        "2LaUdwdwGM9HIzcHgXhx5G",
        "1YueHYcBxEa0eY6z3s_Zyv",
        "3Mow9YJfDbMq6sOj$GgZe8",
        "0k920sdWUpJUKcqZZBZVvI",
      ].sort(),
    );
  });

  it("keeps a thread for the next parse, but not one that parsed a large file (its WebAssembly memory never shrinks)", async () => {
    const small = fs.readFileSync(I("model_rev1.ifc"));
    await parseInThread("IFC", Buffer.from(small), "model_rev1.ifc");
    const kept = idleParserThreads();
    expect(kept).toBeGreaterThanOrEqual(1);
    // The same model, made larger than the limit by a STEP comment: the same six elements, and the thread is ended.
    const text = small.toString("latin1");
    const at = text.indexOf("DATA;") + "DATA;".length;
    const large = Buffer.from(
      `${text.slice(0, at)}\n/* ${"x".repeat(KEEP_THREAD_MAX_BYTES)} */${text.slice(at)}`,
      "latin1",
    );
    const parsed = await parseInThread("IFC", large, "model_rev1_large.ifc");
    expect(parsed.elements).toHaveLength(6);
    expect(idleParserThreads()).toBe(kept - 1);
    await parseInThread("IFC", Buffer.from(small), "model_rev1.ifc");
    expect(idleParserThreads()).toBe(kept);
  });

  it("leaves the main thread free during a long parse, so that timers (the heartbeats) keep firing", async () => {
    const bytes = Buffer.from(dxfWithLines(80_000), "latin1");
    let last = Date.now();
    let longestGap = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = Date.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
      ticks++;
    }, 50);
    const started = Date.now();
    let parsed;
    try {
      parsed = await parseInThread("DXF", bytes, "many-lines.dxf");
    } finally {
      clearInterval(timer);
    }
    const took = Date.now() - started;
    longestGap = Math.max(longestGap, Date.now() - last); // the stall up to the parse's end (receiving its result)
    expect(parsed.elements).toHaveLength(80_000);
    expect(parsed.items.read).toBe(80_000);
    // On the main thread the parse would be one stall as long as the whole parse; in the thread only receiving the
    // parsed file (a structured clone) stalls the main thread, a small part of it.
    expect(took).toBeGreaterThan(1000);
    expect(longestGap, `longest stall ${longestGap} ms of a ${took} ms parse`).toBeLessThan(took / 2);
    expect(ticks).toBeGreaterThan(took / 50 / 4);
  });
});
