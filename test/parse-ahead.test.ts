/** ParseAhead (activities/parse-ahead.ts): a parse started ahead is used only for the same path and the same bytes. */
import { describe, expect, it } from "vitest";
import { ParseAhead } from "../activities/parse-ahead";
import type { ParsedFile } from "../activities/connectors/types";
import { SourceFileError } from "../activities/connectors/types";

const parsed = (name: string) => ({ elements: [], warnings: [], name }) as unknown as ParsedFile;

describe("ParseAhead", () => {
  it("hands the parse to the task that read the same path with the same content hash, once", async () => {
    const ahead = new ParseAhead();
    ahead.start("/src/b.ifc", async () => ({ contentHash: "h-b", parsed: Promise.resolve(parsed("b")) }));
    expect(await ahead.take("/src/b.ifc", "h-b")).toEqual(parsed("b"));
    expect(await ahead.take("/src/b.ifc", "h-b")).toBeUndefined();
  });

  it("gives nothing when the file changed since (another hash), for another path, or when reading ahead failed", async () => {
    const ahead = new ParseAhead();
    ahead.start("/src/b.ifc", async () => ({ contentHash: "h-old", parsed: Promise.resolve(parsed("b")) }));
    expect(await ahead.take("/src/b.ifc", "h-new")).toBeUndefined();

    ahead.start("/src/c.ifc", async () => ({ contentHash: "h-c", parsed: Promise.resolve(parsed("c")) }));
    expect(await ahead.take("/src/d.ifc", "h-c")).toBeUndefined();
    // a take for another path leaves the pending one in place
    expect(await ahead.take("/src/c.ifc", "h-c")).toEqual(parsed("c"));

    ahead.start("/src/e.ifc", async () => {
      throw new Error("EACCES");
    });
    expect(await ahead.take("/src/e.ifc", "h-e")).toBeUndefined();

    ahead.start("/src/f.ifc", async () => undefined); // not parsed ahead (e.g. too large)
    expect(await ahead.take("/src/f.ifc", "h-f")).toBeUndefined();
  });

  it("rethrows the parse's error to the task that takes it, and never as an unhandled rejection before", async () => {
    const ahead = new ParseAhead();
    const failing = Promise.reject(new SourceFileError("InvalidFileFormat", "b.ifc: not a STEP file"));
    ahead.start("/src/b.ifc", async () => ({ contentHash: "h-b", parsed: failing }));
    await new Promise((r) => setTimeout(r, 10)); // an unhandled rejection would fail the test run here
    await expect(ahead.take("/src/b.ifc", "h-b")).rejects.toBeInstanceOf(SourceFileError);
  });

  it("replaces a parse no task took when the next one starts, and starts a path once", async () => {
    const ahead = new ParseAhead();
    let reads = 0;
    const read = (name: string) => async () => {
      reads++;
      return { contentHash: `h-${name}`, parsed: Promise.resolve(parsed(name)) };
    };
    ahead.start("/src/b.ifc", read("b"));
    ahead.start("/src/b.ifc", read("b"));
    expect(reads).toBe(1);
    ahead.start("/src/c.ifc", read("c"));
    expect(await ahead.take("/src/b.ifc", "h-b")).toBeUndefined();
    expect(await ahead.take("/src/c.ifc", "h-c")).toEqual(parsed("c"));
  });
});
