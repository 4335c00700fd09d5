/**
 * Email (activities/email.ts): over SMTP to the configured server (here the test SMTP server of test/global-setup.ts,
 * a real `smtp-server`), or, in the embedded default without SMTP_URL, as readable `.eml` files in the outbox folder.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { simpleParser } from "mailparser";
import { describe, expect, it } from "vitest";
import { createMailer } from "../activities/email";
import { loadConfig } from "../lib/config";
import { createLogger } from "../lib/logger";
import { stack, waitForMails } from "./helpers";

const logger = createLogger("email-test", "silent");

describe("email", () => {
  it("defaults to the outbox folder $DATA_DIR/outbox when SMTP_URL is not set", () => {
    const config = loadConfig({ DATA_DIR: "/srv/imodel-sync", SMTP_URL: "" });
    expect(config.smtpUrl).toBeUndefined();
    expect(config.mailOutboxDir).toBe("/srv/imodel-sync/outbox");
    expect(config.mailFrom).toContain("@");
    expect(loadConfig({ DATA_DIR: "/x", SMTP_URL: "smtp://mail.example.com:587" }).smtpUrl).toBe(
      "smtp://mail.example.com:587",
    );
  });

  it("writes each message as a readable .eml file into the outbox", async () => {
    const outboxDir = fs.mkdtempSync(path.join(os.tmpdir(), "imodel-sync-outbox-"));
    try {
      const mailer = createMailer({ from: "imodel-sync <sync@tests.example>", outboxDir, logger });
      const sent = await mailer.send({
        to: "reader@tests.example",
        subject: 'Outbox check: connection "Façade"',
        text: 'The connection "Façade" is named here.',
      });
      mailer.close();
      expect(sent.via).toBe("outbox");
      expect(fs.readdirSync(outboxDir)).toEqual([path.basename(sent.file!)]);
      const eml = fs.readFileSync(sent.file!, "utf8");
      expect(eml).toMatch(/^To: reader@tests\.example$/m);
      expect(eml).toMatch(/^From: "?imodel-sync"? <sync@tests\.example>$/m);
      expect(eml).toContain("Message-ID:");
      // A standard message any mail program opens: subject and body decode to what was sent.
      const parsed = await simpleParser(eml);
      expect(parsed.subject).toBe('Outbox check: connection "Façade"');
      expect(parsed.text?.trim()).toBe('The connection "Façade" is named here.');
      expect((fs.statSync(sent.file!).mode & 0o777).toString(8)).toBe("600");
    } finally {
      fs.rmSync(outboxDir, { recursive: true, force: true });
    }
  });

  it("sends over SMTP to the configured server: recipient, subject and body arrive", async () => {
    const to = `smtp-${Date.now()}@tests.example`;
    const mailer = createMailer({
      smtpUrl: stack().env.SMTP_URL,
      from: "imodel-sync <sync@tests.example>",
      outboxDir: os.tmpdir(),
      logger,
    });
    const sent = await mailer.send({
      to,
      subject: 'SMTP check: connection "Façade"',
      text: 'The connection "Façade" (connection c-1) is named here.',
    });
    mailer.close();
    expect(sent.via).toBe("smtp");
    const [mail] = await waitForMails(to, 1);
    expect(mail.to).toEqual([to]);
    expect(mail.from).toBe("sync@tests.example");
    expect(mail.subject).toBe('SMTP check: connection "Façade"');
    expect(mail.text.trim()).toBe('The connection "Façade" (connection c-1) is named here.');
  });
});
