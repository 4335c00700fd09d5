/**
 * The portal in a real browser (as test/portal.test.ts), for run control (README "Portal" and "Run control"): a run
 * with a corrupt and a good file offers "Retry failed files", and the retry (asked in the portal, once the file is
 * fixed) synchronizes only that file and links back to its parent; the change list of a run names the elements it
 * wrote, filters by operation, and says so once it is no longer kept; a forced run of a chosen file, after "What would
 * change?" (the API's dry run), changes no element; the unmap and delete dialogs show what removing the data would
 * remove, with the counts of the API's own dry run, and the unmap then removes exactly that; the timeline shows a
 * rename made in the portal, by whom. axe-core on every page and dialog, and a screenshot of each.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Locator, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pruneChangeLists } from "../lib/change-lists";
import { openStore, type Store } from "../lib/db";
import { portalDriver, SCREENSHOT_DIR, startChromium, type StartedBrowser } from "./browser";
import { createUser, FIXTURE, httpAs, makeSource, SAMPLE, stack, tasksOf, waitForRun } from "./helpers";

const MODEL = FIXTURE("integrity/model_rev1.ifc");
const TRUNCATED = FIXTURE("integrity/model_rev2_truncated.ifc");
const HVAC = SAMPLE("ifc4_hvac_air_terminal_duct.ifc");
/** The three products of model_rev1.ifc, by IFC GlobalId (its spatial structure is written too). */
const MODEL_IDS = ["1YueHYcBxEa0eY6z3s_Zyv", "3Mow9YJfDbMq6sOj$GgZe8", "0k920sdWUpJUKcqZZBZVvI"];
const TAG = Date.now().toString(36).slice(-5);

describe("portal in a browser: retry, change lists, previews of removals, the timeline", () => {
  const started = Date.now();
  let chromium: StartedBrowser;
  let page: Page;
  let store: Store;
  let rita: { user: any; apiKey: string };
  let source: string;
  let connection: any;
  const runs: Record<string, string> = {};
  /** Elements the retry inserted: the fixed file's products and spatial structure. */
  let inserted = 0;
  const { consoleErrors, newPage, check, reopen, heading, dialog, watchRun } = portalDriver(
    () => chromium,
    () => stack().apiUrl,
  );
  const as = (method: "GET" | "POST" | "DELETE", p: string, body?: unknown) => httpAs(rita.apiKey, method, p, body);
  const runBlock = (p: Page, runId: string) => p.locator(`[data-run-block="${runId}"]`);
  const fileId = (p: string) => connection.sourceFiles.find((f: any) => f.path === p).id as string;

  beforeAll(async () => {
    console.log(`portal screenshots: ${SCREENSHOT_DIR}`);
    chromium = await startChromium();
    store = await openStore(stack().mongoUri);
    rita = await createUser("Rita Runs");
    source = makeSource("portal-runcontrol", { "corrupt.ifc": TRUNCATED, "good.ifc": HVAC });
    const m = await as("POST", "/imodels", { name: `Run control campus ${TAG}` });
    expect(m.status, JSON.stringify(m.body)).toBe(201);
    const c = await as("POST", "/connections", {
      iModelId: m.body.iModel.id,
      displayName: "Control",
      source: { type: "local", path: source },
      sourceFiles: ["corrupt.ifc", "good.ifc"].map((p) => ({ path: p, connectorType: "IFC" })),
    });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    connection = c.body.connection;
    page = await newPage();
  });

  afterAll(async () => {
    await chromium?.close();
    await store?.close();
    console.log(
      `portal run control browser tests: ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${SCREENSHOT_DIR}`,
    );
  });

  it("offers Retry failed files on a run with a failed file; the retry synchronizes only that file and links to its parent", async () => {
    await reopen(page, `#/connections/${connection.id}`, rita.apiKey);
    await heading(page, "Control").waitFor();
    await page.getByRole("button", { name: "Synchronize", exact: true }).click();
    const first = (await watchRun(page, null, 120_000)).pop()!;
    expect(first.result).toBe("PartialSuccess");
    runs.first = first.run!;
    const block = runBlock(page, runs.first);
    const retry = block.getByRole("button", { name: "Retry failed files" });
    await retry.waitFor();
    expect(await block.getByTestId("retry").textContent()).toContain(
      "only the 1 file that failed in this run (corrupt.ifc)",
    );
    await check(page, "rc-01-run-with-failed-file");

    fs.copyFileSync(MODEL, path.join(source, "corrupt.ifc")); // fixed
    await retry.click();
    const second = (await watchRun(page, runs.first, 120_000)).pop()!;
    runs.retry = second.run!;
    expect([second.result, second.done, second.total]).toEqual(["Success", 1, 1]);
    // The API agrees: a retry of the first run, with a task for the fixed file only.
    const { run } = await waitForRun(`/connections/${connection.id}/runs/${runs.retry}`);
    expect([run.trigger, run.retryOf, run.sourceFileIds]).toEqual(["retry", runs.first, [fileId("corrupt.ifc")]]);
    expect(tasksOf(run).map((t: any) => [t.path, t.result])).toEqual([["corrupt.ifc", "Success"]]);
    inserted = tasksOf(run)[0].elements.inserted;
    expect(inserted).toBeGreaterThan(MODEL_IDS.length);

    // The retry's block: its one task, no Retry button, and a link to the run it retried.
    const retryBlock = runBlock(page, runs.retry);
    await retryBlock.getByTestId("retry-of").waitFor();
    expect(
      await retryBlock
        .locator('[data-testid="task"]')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute("data-path"))),
    ).toEqual(["corrupt.ifc"]);
    expect(await retryBlock.getByRole("button", { name: "Retry failed files" }).count()).toBe(0);
    expect(await page.getByTestId("run").first().textContent()).toContain("retry of failed files");
    // The first run's block was collapsed meanwhile: the link opens it again and moves the focus there.
    const parentBlock = runBlock(page, runs.first);
    await parentBlock.getByRole("button", { expanded: true }).click();
    await parentBlock.getByRole("button", { name: "Retry failed files" }).waitFor({ state: "detached" });
    await retryBlock
      .getByTestId("retry-of")
      .getByRole("link", { name: /the run of .* \(PartialSuccess\)/ })
      .click();
    await parentBlock.getByRole("button", { name: "Retry failed files" }).waitFor();
    expect(await parentBlock.evaluate((e) => e.contains(e.ownerDocument.activeElement))).toBe(true);
    await check(page, "rc-02-retry-run");
  });

  it("lists the elements a run changed, filtered by operation, and says when the list is no longer kept", async () => {
    const retryBlock = runBlock(page, runs.retry);
    await retryBlock.getByTestId("changes").getByRole("button", { name: "Changes" }).click();
    const d = dialog(page);
    await d.getByTestId("change").first().waitFor();
    const rows = () =>
      d
        .getByTestId("change")
        .evaluateAll((trs) =>
          trs.map((tr) => [
            tr.getAttribute("data-operation"),
            ...[...tr.querySelectorAll("td")].slice(1).map((td) => td.textContent),
          ]),
        );
    const api = await as("GET", `/connections/${connection.id}/runs/${runs.retry}/changes`);
    expect(api.status).toBe(200);
    const shown = await rows();
    expect(shown).toEqual(
      api.body.changes.map((c: any) => [c.operation, c.identifier, c.path, c.className, c.elementId]),
    );
    expect(shown.map((r) => r[1])).toEqual(expect.arrayContaining(MODEL_IDS));
    expect(shown).toHaveLength(inserted);
    expect(shown.every((r) => r[0] === "inserted" && r[2] === "corrupt.ifc")).toBe(true);
    expect(await d.getByTestId("changes-counts").textContent()).toContain(`${inserted} inserted, 0 updated, 0 deleted`);
    await check(page, "rc-03-changes");
    await d.getByLabel("Show").selectOption("deleted");
    await d.getByTestId("changes-empty").filter({ hasText: "No element deleted by this run." }).waitFor();
    await d.getByLabel("Show").selectOption("inserted");
    await d
      .getByTestId("change")
      .nth(inserted - 1)
      .waitFor();
    expect(await d.getByTestId("changes-range").textContent()).toBe(`1–${inserted} of ${inserted} elements`);
    await d.getByRole("button", { name: "Close", exact: true }).last().click();
    await d.waitFor({ state: "detached" });

    // The first run's list is removed (as a run beyond the newest CHANGE_LISTS_KEPT is): the page says so.
    expect(await pruneChangeLists(store, connection.id, 1)).toEqual([runs.first]);
    await runBlock(page, runs.first)
      .getByTestId("changes")
      .filter({ hasText: "No longer kept: the elements a run changed are listed for the newest runs" })
      .waitFor();
  });

  it("synchronizes chosen files, forced, after showing what would change", async () => {
    await page.getByRole("button", { name: "Synchronize chosen files" }).click();
    const d = dialog(page);
    await d.getByRole("checkbox", { name: "good.ifc" }).uncheck();
    await d.getByRole("checkbox", { name: /^Force/ }).check();
    await d.getByRole("button", { name: "What would change?" }).click();
    await d.getByTestId("run-preview").waitFor({ timeout: 60_000 });
    const dry = await as("POST", `/connections/${connection.id}/run`, {
      sourceFileIds: [fileId("corrupt.ifc")],
      force: true,
      dryRun: true,
    });
    expect(dry.status, JSON.stringify(dry.body)).toBe(200);
    const rows = await d
      .getByTestId("preview-file")
      .evaluateAll((trs) => trs.map((tr) => [tr.getAttribute("data-path"), tr.getAttribute("data-synchronize")]));
    expect(rows).toEqual(dry.body.preview.files.map((f: any) => [f.path, String(f.synchronize)]));
    expect(rows).toEqual([["corrupt.ifc", "true"]]);
    expect(await d.getByTestId("preview-file").textContent()).toContain("unchanged");
    await check(page, "rc-04-sync-chosen-files");
    await d.getByRole("button", { name: "Synchronize 1 file" }).click();
    await d.waitFor({ state: "detached" });
    const forced = (await watchRun(page, runs.retry, 120_000)).pop()!;
    runs.forced = forced.run!;
    const { run } = await waitForRun(`/connections/${connection.id}/runs/${runs.forced}`);
    expect([run.force, run.sourceFileIds]).toEqual([true, [fileId("corrupt.ifc")]]);
    // Every element compared unchanged: nothing written, an empty change list.
    expect(tasksOf(run).map((t: any) => [t.path, t.result, t.elements.inserted, t.elements.unchanged])).toEqual([
      ["corrupt.ifc", "Success", 0, inserted],
    ]);
    const block = runBlock(page, runs.forced);
    expect(await page.getByTestId("run").first().textContent()).toContain("manual, 1 chosen file, forced");
    await block.getByTestId("changes").getByRole("button", { name: "Changes" }).click();
    await dialog(page).getByTestId("changes-empty").filter({ hasText: "This run changed no element." }).waitFor();
    await dialog(page).getByRole("button", { name: "Close", exact: true }).last().click();
    await dialog(page).waitFor({ state: "detached" });
  });

  it("shows in the timeline a rename made in the portal, by whom, with the runs", async () => {
    await page.getByRole("button", { name: "Rename" }).click();
    await dialog(page).getByLabel("Display name").fill("Control (north)");
    await dialog(page).getByRole("button", { name: "Rename" }).click();
    await heading(page, "Control (north)").waitFor();
    const renamed = page.getByTestId("event").filter({ hasText: "Renamed from “Control” to “Control (north)”" });
    await renamed.waitFor();
    expect(await renamed.textContent()).toContain("by Rita Runs");
    const types = await page.getByTestId("event").evaluateAll((li) => li.map((e) => e.getAttribute("data-type")));
    expect(types).toEqual(["ConnectionRenamed", "Run", "Run", "Run", "ConnectionCreated"]);
    const api = await as("GET", `/connections/${connection.id}/events`);
    expect(api.body.events.map((e: any) => e.type)).toEqual(types);
    const texts = await page.getByTestId("event").allTextContents();
    expect(texts[1]).toContain("Synchronization, manual, 1 chosen file, forced: Success");
    expect(texts[2]).toContain("Synchronization, retry of failed files: Success");
    expect(texts[3]).toContain("Synchronization, manual: PartialSuccess");
    expect(texts[4]).toContain("Created as “Control” with corrupt.ifc, good.ifc");
    await page.getByRole("heading", { name: "Timeline" }).scrollIntoViewIfNeeded();
    await check(page, "rc-05-timeline");
  });

  it("shows in the unmap and delete dialogs what removing the data would remove, as the API's dry run counts it", async () => {
    const counts = (row: Locator) =>
      row.evaluate((tr) =>
        Object.fromEntries(
          [...tr.querySelectorAll("td[data-count]")].map((td) => [
            td.getAttribute("data-count"),
            Number(td.textContent!.replace(/\D/g, "")),
          ]),
        ),
      );
    const asShown = (r: any) => ({ elements: r.elements, models: r.models, aspects: r.aspects, links: r.links });

    // Delete: both files, then the total; nothing is deleted (Cancel).
    await page.getByRole("button", { name: "Delete", exact: true }).click();
    await dialog(page).getByRole("radio", { name: "Delete data" }).check();
    const preview = dialog(page).getByTestId("removal-preview");
    await preview.waitFor({ timeout: 60_000 });
    const whole = (await as("DELETE", `/connections/${connection.id}?mode=deleteData&dryRun=true`)).body.preview;
    for (const f of whole.files)
      expect(await counts(preview.locator(`[data-testid="removal-file"][data-path="${f.path}"]`)), f.path).toEqual(
        asShown(f.removes),
      );
    expect(whole.files.map((f: any) => f.path)).toEqual(["corrupt.ifc", "good.ifc"]);
    expect(whole.files.every((f: any) => f.hasData && f.removes.elements > 0)).toBe(true);
    expect(await counts(preview.getByTestId("removal-total"))).toEqual(asShown(whole.totals));
    await check(page, "rc-06-delete-preview");
    await dialog(page).getByRole("button", { name: "Cancel" }).click();
    expect((await as("GET", `/connections/${connection.id}`)).body.connection.status).toBe("Active");

    // Unmap good.ifc with its data: the preview's count is what its delete job then removes.
    await page.getByRole("button", { name: "Unmap good.ifc" }).click();
    await dialog(page).getByRole("radio", { name: "Delete data" }).check();
    const unmapPreview = dialog(page).getByTestId("removal-preview");
    await unmapPreview.waitFor({ timeout: 60_000 });
    const one = (
      await as("DELETE", `/connections/${connection.id}/sourceFiles/${fileId("good.ifc")}?mode=deleteData&dryRun=true`)
    ).body.preview;
    expect(one.files.map((f: any) => f.path)).toEqual(["good.ifc"]);
    const shown = await counts(unmapPreview.locator('[data-testid="removal-file"][data-path="good.ifc"]'));
    expect(shown).toEqual(asShown(one.files[0].removes));
    expect(shown).toEqual(asShown(whole.files[1].removes));
    await check(page, "rc-07-unmap-preview");
    await dialog(page).getByRole("button", { name: "Unmap" }).click();
    await dialog(page).waitFor({ state: "detached" });
    const job = (await watchRun(page, runs.forced, 120_000)).pop()!;
    const { run } = await waitForRun(`/connections/${connection.id}/runs/${job.run}`);
    expect(run.kind).toBe("delete");
    expect(tasksOf(run).map((t: any) => [t.path, t.result, t.elements.deleted])).toEqual([
      ["good.ifc", "Success", shown.elements],
    ]);
    await runBlock(page, job.run!)
      .getByTestId("changes")
      .filter({ hasText: "A delete job has no change list" })
      .waitFor();
    await page.getByTestId("event").filter({ hasText: "Unmapped good.ifc, with its data" }).waitFor();
    expect(consoleErrors).toEqual([]);
  });
});
