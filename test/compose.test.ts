/**
 * docker-compose.yml (the production topology, as scripts/topology.sh starts it without Docker) must stay valid: `docker-compose config` resolves it without a
 * Docker engine. docker-compose is a required test tool (`make test` installs Debian's package when it can).
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "..");
const REQUIRED_SERVICES = [
  "api",
  "worker",
  "temporal",
  "temporal-schema",
  "temporal-setup",
  "temporal-ui",
  "ferretdb",
  "postgresql",
];

/** `docker-compose`, or the Compose v2 plugin as `docker compose`; undefined when neither is installed. */
function composeCommand(): string[] | undefined {
  const v1 = spawnSync("docker-compose", ["version"], { encoding: "utf8" });
  if (!v1.error && v1.status === 0) return ["docker-compose"];
  const v2 = spawnSync("docker", ["compose", "version"], { encoding: "utf8" });
  if (!v2.error && v2.status === 0) return ["docker", "compose"];
  return undefined;
}

function compose(args: string[]) {
  const cmd = composeCommand();
  if (!cmd) {
    throw new Error(
      "docker-compose is not installed: install it to validate docker-compose.yml, e.g. " +
        "'sudo apt-get install docker-compose' (Debian/Ubuntu; `make test` does this when run as root) " +
        "or the Docker Compose plugin",
    );
  }
  const res = spawnSync(cmd[0], [...cmd.slice(1), "-f", "docker-compose.yml", ...args], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, COMPOSE_PROJECT_NAME: "imodel-sync" },
  });
  if (res.error) throw res.error;
  return res;
}

/** Top-level keys of the `services:` mapping in `docker-compose config` output (2-space indented YAML). */
function servicesOf(resolved: string): string[] {
  const names: string[] = [];
  let inServices = false;
  for (const line of resolved.split("\n")) {
    if (/^\S/.test(line)) inServices = line.startsWith("services:");
    else if (inServices) {
      const m = /^ {2}([A-Za-z0-9._-]+):\s*$/.exec(line);
      if (m) names.push(m[1]);
    }
  }
  return names;
}

/** The lines of one service in `docker-compose config` output (from `  <name>:` to the next service). */
function serviceBlock(resolved: string, name: string): string {
  const lines = resolved.split("\n");
  const services = lines.findIndex((l) => l.startsWith("services:"));
  const start = lines.findIndex((l, i) => i > services && l === `  ${name}:`);
  if (services < 0 || start < 0) return "";
  let end = start + 1;
  while (end < lines.length && !/^ {0,2}\S/.test(lines[end])) end++;
  return lines.slice(start, end).join("\n");
}

describe("docker-compose.yml", () => {
  it("resolves with `docker-compose config` and has the services of the stack", () => {
    const res = compose(["config"]);
    expect(res.status, `docker-compose config failed:\n${res.stderr}`).toBe(0);
    const services = servicesOf(res.stdout);
    for (const name of REQUIRED_SERVICES) expect(services, `service ${name} in the resolved config`).toContain(name);

    const listed = compose(["config", "--services"]);
    expect(listed.status, listed.stderr).toBe(0);
    expect(listed.stdout.split("\n").map((s) => s.trim())).toEqual(expect.arrayContaining(REQUIRED_SERVICES));
  });

  it("restarts the long-running services when they die (restart: unless-stopped)", () => {
    const res = compose(["config"]);
    expect(res.status, res.stderr).toBe(0);
    for (const name of ["api", "worker", "temporal", "temporal-ui", "ferretdb", "postgresql"])
      expect(serviceBlock(res.stdout, name), `restart policy of ${name}`).toMatch(/^ {4}restart: unless-stopped$/m);
  });

  it("runs two worker processes (deploy.replicas)", () => {
    const res = compose(["config"]);
    expect(res.status, res.stderr).toBe(0);
    expect(serviceBlock(res.stdout, "worker")).toMatch(/^ {4}deploy:\n {6}replicas: 2$/m);
  });

  it("registers the search attributes the workflows use and points the apps at the services", () => {
    const res = compose(["config"]);
    expect(res.status, res.stderr).toBe(0);
    for (const attribute of ["ConnectionId", "IModelId", "RunTrigger"]) expect(res.stdout).toContain(attribute);
    expect(res.stdout).toContain("TEMPORAL_ADDRESS: temporal:7233");
    expect(res.stdout).toContain("MONGODB_URI: mongodb://ferretdb:27017/imodelsync");
  });

  it("describes the production topology: Temporal and FerretDB on PostgreSQL, two workers, two APIs", () => {
    const res = compose(["config"]);
    expect(res.status, res.stderr).toBe(0);
    const temporal = serviceBlock(res.stdout, "temporal");
    expect(temporal).toContain("image: temporalio/server:");
    expect(temporal).toMatch(/DB: postgres12$/m);
    expect(serviceBlock(res.stdout, "temporal-schema")).toContain("temporal-sql-tool --plugin postgres12");
    expect(serviceBlock(res.stdout, "ferretdb")).toMatch(/FERRETDB_HANDLER: postgresql$/m);
    for (const name of ["worker", "api"])
      expect(serviceBlock(res.stdout, name), `replicas of ${name}`).toMatch(/^ {6}replicas: 2$/m);
  });
});
