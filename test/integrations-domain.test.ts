/**
 * Unit tests of the pure rules behind the integrations: the error table (and README.md's copy of it), a run's phase,
 * the webhook URL allow-list, the signing of webhook deliveries (Standard Webhooks), and the streak of failed
 * scheduled runs (docs/product-rules.md "Failure notices").
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { runPhase } from "../api/representations";
import { nextStreak, noticeDay, streakEffect } from "../domain/failure-notices";
import { describedError, ERROR_CODES, errorCodeInfo } from "../domain/task-errors";
import { hostAllowed, webhookUrlProblem } from "../domain/webhooks";
import { deliveryIdOf, newWebhookSecret, signedHeaders } from "../lib/webhooks";

const ROOT = path.resolve(__dirname, "..");

describe("errors of tasks and runs", () => {
  it("README.md's table says what domain/task-errors.ts says, row for row", () => {
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    const start = readme.indexOf("\n### Errors of tasks and runs\n");
    expect(start).toBeGreaterThan(0);
    const lines = readme.slice(start).split("\n");
    const first = lines.findIndex((l) => l.startsWith("| code |"));
    const rows: Record<string, unknown> = {};
    for (let i = first + 2; i < lines.length && lines[i].startsWith("|"); i++) {
      const [code, , category, canUserFix, retryable] = lines[i]
        .slice(1, -1)
        .split("|")
        .map((c) => c.trim());
      rows[code.replaceAll("`", "")] = { category, canUserFix: canUserFix === "true", retryable: retryable === "true" };
    }
    expect(rows).toEqual(ERROR_CODES);
  });

  it("an error carries its category, canUserFix and retryable; an unknown code is a fault of the service", () => {
    expect(describedError({ code: "FileNotFound", message: "m", target: "a.ifc" })).toEqual({
      code: "FileNotFound",
      message: "m",
      target: "a.ifc",
      category: "SourceFile",
      canUserFix: true,
      retryable: false,
    });
    expect(errorCodeInfo("SomethingNew")).toEqual({ category: "Service", canUserFix: false, retryable: false });
    expect(errorCodeInfo("toString")).toEqual({ category: "Service", canUserFix: false, retryable: false });
  });

  it("a run's phase: the executing task's, else the furthest reached; none before a task started", () => {
    const t = (phase: "MasterFile" | "ReferenceFile", state: string, result = "Undetermined") =>
      ({ phase, state, result }) as Parameters<typeof runPhase>[0][number];
    expect(runPhase([])).toBeUndefined();
    expect(runPhase([t("MasterFile", "NotStarted")])).toBeUndefined();
    expect(runPhase([t("MasterFile", "Executing"), t("ReferenceFile", "NotStarted")])).toBe("MasterFile");
    expect(runPhase([t("MasterFile", "Completed", "Success"), t("ReferenceFile", "WaitingToRetry")])).toBe(
      "ReferenceFile",
    );
    expect(runPhase([t("MasterFile", "Completed", "Success"), t("ReferenceFile", "NotStarted")])).toBe("MasterFile");
    // A reference file left unchanged at planning does not move the run on while its composite executes.
    expect(runPhase([t("MasterFile", "Executing"), t("ReferenceFile", "Completed", "Skipped")])).toBe("MasterFile");
    expect(runPhase([t("MasterFile", "Completed", "Skipped"), t("ReferenceFile", "Completed", "Skipped")])).toBe(
      "ReferenceFile",
    );
  });
});

describe("webhook URLs", () => {
  const allowed = (url: string, list: string[]) => hostAllowed(new URL(url), list);

  it("the allow-list: a host (any port), host:port, *.domain, * ; nothing when empty", () => {
    expect(allowed("https://hooks.example.com/x", ["hooks.example.com"])).toBe(true);
    expect(allowed("https://HOOKS.example.com:8443/x", ["hooks.example.com"])).toBe(true);
    expect(allowed("https://evil.com/x", ["hooks.example.com"])).toBe(false);
    expect(allowed("https://hooks.example.com.evil.com/x", ["hooks.example.com"])).toBe(false);
    expect(allowed("http://127.0.0.1:9000/x", ["127.0.0.1:9000"])).toBe(true);
    expect(allowed("http://127.0.0.1:9001/x", ["127.0.0.1:9000"])).toBe(false);
    expect(allowed("https://hooks.example.com/x", ["hooks.example.com:443"])).toBe(true);
    expect(allowed("http://hooks.example.com/x", ["hooks.example.com:443"])).toBe(false);
    expect(allowed("https://a.b.example.org/x", ["*.example.org"])).toBe(true);
    expect(allowed("https://example.org/x", ["*.example.org"])).toBe(false);
    expect(allowed("https://notexample.org/x", ["*.example.org"])).toBe(false);
    expect(allowed("http://[::1]:8080/x", ["[::1]"])).toBe(true);
    expect(allowed("http://[::1]:8080/x", ["[::1]:8080"])).toBe(true);
    expect(allowed("http://[::1]:8081/x", ["[::1]:8080"])).toBe(false);
    expect(allowed("https://anything.net/x", ["*"])).toBe(true);
    expect(allowed("https://anything.net/x", [])).toBe(false);
  });

  it("only http(s), no credentials, an allowed host", () => {
    const list = ["127.0.0.1"];
    expect(webhookUrlProblem("http://127.0.0.1:1234/h", list)).toBeUndefined();
    expect(webhookUrlProblem("file:///etc/passwd", list)).toMatch(/http or https/);
    expect(webhookUrlProblem("gopher://127.0.0.1/", list)).toMatch(/http or https/);
    expect(webhookUrlProblem("http://a:b@127.0.0.1/", list)).toMatch(/user name or password/);
    expect(webhookUrlProblem("/relative", list)).toMatch(/absolute/);
    expect(webhookUrlProblem("http://169.254.169.254/latest", list)).toMatch(/allow-list/);
    expect(webhookUrlProblem("http://127.0.0.1/", [])).toMatch(/WEBHOOK_ALLOWED_HOSTS/);
    expect(webhookUrlProblem(`http://127.0.0.1/${"x".repeat(2100)}`, list)).toMatch(/at most/);
  });
});

describe("signing of webhook deliveries (Standard Webhooks)", () => {
  it("gives the specification's signature for its example message", () => {
    // The example of the Standard Webhooks specification (secret, message id, timestamp, payload, signature).
    const h = signedHeaders(
      "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
      "msg_p5jXN8AQM9LWM0D4loKWxJek",
      new Date(1614265330_000),
      '{"test": 2432232314}',
    );
    expect(h).toEqual({
      "content-type": "application/json",
      "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
      "webhook-timestamp": "1614265330",
      "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    });
  });

  it("a receiver verifies a signed delivery with the secret, and rejects another body, secret or id", () => {
    const secret = newWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(secret.slice(6), "base64")).toHaveLength(32);
    expect(newWebhookSecret()).not.toBe(secret);
    const id = deliveryIdOf("webhook-1", "run.completed:run-1");
    expect(id).toMatch(/^msg_[0-9a-f]{26}$/);
    expect(deliveryIdOf("webhook-1", "run.completed:run-1")).toBe(id);
    expect(deliveryIdOf("webhook-2", "run.completed:run-1")).not.toBe(id);
    const body = JSON.stringify({ type: "run.completed", timestamp: "2025-01-01T00:00:00.000Z", data: { n: 1 } });
    // Signed now: within the receiver's tolerance of five minutes (the timestamp is whole seconds).
    const at = new Date();
    const headers = signedHeaders(secret, id, at, body);
    expect(Number(headers["webhook-timestamp"])).toBe(Math.floor(at.getTime() / 1000));
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(() => new Webhook(secret).verify(body.replace('"n":1', '"n":2'), headers)).toThrow(/signature/);
    expect(() => new Webhook(newWebhookSecret()).verify(body, headers)).toThrow(/signature/);
    expect(() => new Webhook(secret).verify(body, { ...headers, "webhook-id": "msg_other" })).toThrow(/signature/);
    // An old timestamp is refused by the receiver (replays).
    const old = signedHeaders(secret, id, new Date(Date.now() - 3_600_000), body);
    expect(() => new Webhook(secret).verify(body, old)).toThrow(/too old/);
  });
});

describe("the streak of failed scheduled runs", () => {
  const run = (result: string, extra: object = {}) => ({ trigger: "schedule", result, ...extra });

  it("counts Error and PartialSuccess of scheduled syncs; a Success ends it; others leave it", () => {
    expect(streakEffect(run("Error"))).toBe("failure");
    expect(streakEffect(run("PartialSuccess"))).toBe("failure");
    expect(streakEffect(run("Success"))).toBe("success");
    expect(streakEffect(run("Skipped"))).toBe("none");
    expect(streakEffect(run("Cancelled"))).toBe("none");
    expect(streakEffect(run("Error", { error: { code: "UserNotAuthenticated", message: "" } }))).toBe("none");
    expect(streakEffect({ trigger: "manual", result: "Error" })).toBe("none");
    expect(streakEffect(run("Error", { kind: "delete" }))).toBe("none");
  });

  it("adds one per run (a retried count changes nothing), starts over after a success", () => {
    const a = nextStreak(undefined, "r1", "failure", "2025-01-01T03:00:00.000Z")!;
    expect(a).toEqual({ consecutive: 1, lastRunId: "r1", since: "2025-01-01T03:00:00.000Z" });
    expect(nextStreak(a, "r1", "failure", "later")).toBeUndefined();
    const b = nextStreak(a, "r2", "failure", "2025-01-02T03:00:00.000Z")!;
    expect(b).toEqual({ consecutive: 2, lastRunId: "r2", since: "2025-01-01T03:00:00.000Z" });
    expect(nextStreak(b, "r3", "success", "x")).toEqual({ consecutive: 0, lastRunId: "r3" });
    expect(nextStreak(undefined, "r3", "success", "x")).toBeUndefined();
    expect(nextStreak(b, "r4", "none", "x")).toBeUndefined();
    expect(noticeDay("2025-01-02T23:59:59.999Z")).toBe("2025-01-02");
  });
});
