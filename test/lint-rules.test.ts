/**
 * The determinism rules of `make lint` (eslint.config.mjs; docs/architecture.md "Parts and the way they depend"):
 * workflow code may not import Node built-ins, I/O packages or values from the parts that do I/O; domain/ may not
 * do I/O. Checked with ESLint's own API on probe sources placed (virtually) in those folders.
 */
import * as path from "node:path";
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";

const root = path.resolve(__dirname, "..");
const eslint = new ESLint({ cwd: root });

async function restrictedImports(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  return result.messages.filter((m) => m.ruleId === "@typescript-eslint/no-restricted-imports").map((m) => m.message);
}

describe("make lint: determinism of workflows/ and purity of domain/", { timeout: 60_000 }, () => {
  it("refuses a value import of node:fs (or fs) in a workflow file", async () => {
    expect(
      await restrictedImports(
        "workflows/probe.ts",
        'import * as fs from "node:fs";\nexport const f = fs.existsSync;\n',
      ),
    ).toEqual([expect.stringContaining("no Node built-ins")]);
    expect(
      await restrictedImports(
        "workflows/probe.ts",
        'import { readFileSync } from "fs";\nexport const f = readFileSync;\n',
      ),
    ).toHaveLength(1);
  });

  it("refuses I/O packages and value imports of lib/ and activities/ in workflow code; allows type imports", async () => {
    expect(
      await restrictedImports(
        "workflows/probe.ts",
        'import { MongoClient } from "mongodb";\nexport const c = MongoClient;\n',
      ),
    ).toHaveLength(1);
    expect(
      await restrictedImports(
        "workflows/probe.ts",
        'import { openStore } from "../lib/db";\nexport const o = openStore;\n',
      ),
    ).toHaveLength(1);
    expect(
      await restrictedImports(
        "workflows/probe.ts",
        'import { hashFile } from "../activities/source-files";\nexport const h = hashFile;\n',
      ),
    ).toHaveLength(1);
    expect(
      await restrictedImports(
        "workflows/probe.ts",
        'import type { Store } from "../lib/db";\nexport type S = Store;\n',
      ),
    ).toEqual([]);
    expect(
      await restrictedImports(
        "workflows/probe.ts",
        'import { RUN_TRIGGERS } from "../domain/model";\nexport const t = RUN_TRIGGERS;\n',
      ),
    ).toEqual([]);
  });

  it("refuses I/O in domain/", async () => {
    expect(
      await restrictedImports(
        "domain/probe.ts",
        'import * as fs from "node:fs/promises";\nexport const r = fs.readFile;\n',
      ),
    ).toHaveLength(1);
    expect(
      await restrictedImports("domain/probe.ts", 'import { z } from "zod";\nexport const s = z.string();\n'),
    ).toEqual([]);
  });

  it("finds the real tree clean", async () => {
    const results = await eslint.lintFiles(["workflows/**/*.ts", "domain/**/*.ts"]);
    expect(
      results.flatMap((r) => r.messages.map((m) => `${path.relative(root, r.filePath)}:${m.line} ${m.message}`)),
    ).toEqual([]);
  });
});

describe("make lint: reads FerretDB serves by _id", { timeout: 60_000 }, () => {
  const restrictedSyntax = async (file: string, code: string) => {
    const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
    return result.messages.filter((m) => m.ruleId === "no-restricted-syntax").map((m) => m.message);
  };

  it("refuses a find or findOne on _id plus another field, and allows _id alone, with options, or no _id", async () => {
    const probe = (filter: string, options = "") =>
      `declare const c: { findOne(f: object, o?: object): void; find(f: object): void };\nc.findOne(${filter}${options});\n`;
    expect(await restrictedSyntax("api/probe.ts", probe("{ _id: 'r', connectionId: 'c' }"))).toEqual([
      expect.stringContaining("findById"),
    ]);
    expect(await restrictedSyntax("lib/probe.ts", probe("{ connectionId: 'c', _id: 'r' }"))).toHaveLength(1);
    expect(await restrictedSyntax("api/probe.ts", probe("{ _id: 'r' }", ", { projection: { _id: 1, a: 1 } }"))).toEqual(
      [],
    );
    expect(await restrictedSyntax("api/probe.ts", probe("{ connectionId: 'c', state: 'Completed' }"))).toEqual([]);
  });
});
