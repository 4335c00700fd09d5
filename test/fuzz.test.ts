/**
 * Fuzzing the API from its OpenAPI document (README.md "API reference"): Schemathesis (PyPI, installed by
 * scripts/ensure-tools.sh into a virtual environment) sends generated and mutated requests to every operation, as the
 * administrator, and checks that none answers a server error (5xx other than the documented ones) and every answer
 * matches the document: its status, content type and body schema. Path parameters point at a real iModel, connection,
 * run, source file and user, so the operations reach their rules instead of answering 404 only.
 *
 * Bounded for CI: at most FUZZ_MAX_EXAMPLES (default 5) examples per operation and phase, at most FUZZ_MAX_TIME s
 * (default 150) in all. `POST /users/me/apiKey` is left out: it would revoke the key the fuzzer uses.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { createConnection, createUser, http, makeSource, ROOT, SAMPLE, stack, toolPath, waitForRun } from "./helpers";

const MAX_EXAMPLES = Number(process.env.FUZZ_MAX_EXAMPLES ?? 5);
const MAX_TIME_S = Number(process.env.FUZZ_MAX_TIME ?? 150);

/** A TOML basic string. */
const toml = (s: string) => JSON.stringify(s);

describe("fuzzing the API (Schemathesis)", () => {
  it(
    "answers every generated request without a server error and as the OpenAPI document says",
    async () => {
      const st = toolPath("schemathesis", "SCHEMATHESIS_BIN");
      const source = makeSource("fuzz", {
        "a.ifc": SAMPLE("ifc4_hvac_air_terminal_duct.ifc"),
        "b.ifc": SAMPLE("ifc4x3_georef_mapconversion_utm.ifc"),
      });
      const { iModelId, connection } = await createConnection(source, ["a.ifc", "b.ifc"], "fuzzed connection");
      const started = await http("POST", `/connections/${connection.id}/run`);
      expect(started.status).toBe(202);
      const { run } = await waitForRun(started.location!);
      const user = await createUser("fuzzed user");
      const member = await http("POST", `/imodels/${iModelId}/members`, { userId: user.user.id });
      expect(member.status).toBe(201);

      // Its working folder (config with the admin key, Hypothesis' example database) outside DATA_DIR, which holds only
      // the service's own private files (test/private-data.test.ts); removed afterwards.
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "imodel-sync-fuzz-"));
      const config = path.join(dir, "schemathesis.toml");
      fs.writeFileSync(
        config,
        [
          `headers = { Authorization = ${toml(`Bearer ${stack().adminApiKey}`)} }`,
          `[[operations]]`,
          `include-path-regex = "^/connections/\\\\{id\\\\}"`,
          `parameters = { "path.id" = ${toml(connection.id)}, "path.runId" = ${toml(run.id)}, "path.fileId" = ${toml(connection.sourceFiles[1].id)} }`,
          `[[operations]]`,
          `include-path-regex = "^/imodels/\\\\{id\\\\}"`,
          `parameters = { "path.id" = ${toml(iModelId)}, "path.userId" = ${toml(user.user.id)} }`,
          `[[operations]]`,
          `include-path = "/users/{id}"`,
          `parameters = { "path.id" = ${toml(user.user.id)} }`,
          "",
        ].join("\n"),
      );
      const args = [
        "--config-file",
        config,
        "run",
        `${stack().apiUrl}/openapi.json`,
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--exclude-path",
        "/users/me/apiKey",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        String(MAX_EXAMPLES),
        "--max-time",
        String(MAX_TIME_S),
        "--workers",
        "2",
        "--seed",
        String(Date.now() % 1_000_000),
      ];
      const result = await new Promise<{ code: number; output: string }>((resolve) => {
        execFile(
          st,
          args,
          { cwd: dir, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NO_COLOR: "1" } },
          (err, stdout, stderr) =>
            resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: `${stdout}\n${stderr}` }),
        );
      });
      // Kept after the run (the stack's data folder is removed): test-output/schemathesis.log.
      const out = path.join(ROOT, "test-output");
      fs.mkdirSync(out, { recursive: true });
      fs.writeFileSync(path.join(out, "schemathesis.log"), result.output);
      // The whole report on failure: each failing check with the request that reproduces it.
      fs.rmSync(dir, { recursive: true, force: true });
      expect(result.code, result.output.slice(-20_000)).toBe(0);
      expect(result.output).toMatch(/Tested: \d+/);
      const tested = Number(/Tested: (\d+)/.exec(result.output)![1]);
      expect(tested).toBeGreaterThanOrEqual(30);
    },
    (MAX_TIME_S + 240) * 1000,
  );
});
