/**
 * Email with nodemailer. With `SMTP_URL` set, mail goes to that SMTP server (e.g. `smtp://user:pass@host:587`,
 * `smtps://host:465`); without it (the embedded default) every message is written as a readable `.eml` file into
 * `MAIL_OUTBOX_DIR` (default `$DATA_DIR/outbox/`), so a person running the stack locally can open what was sent.
 */
import { randomUUID } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import nodemailer from "nodemailer";
import type { Logger } from "../lib/logger";

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
}

export interface SentMail {
  messageId: string;
  /** `smtp`: accepted by the SMTP server; `outbox`: written to `file`. */
  via: "smtp" | "outbox";
  file?: string;
}

export interface Mailer {
  send(message: MailMessage): Promise<SentMail>;
  close(): void;
}

export interface MailerOptions {
  smtpUrl?: string;
  from: string;
  outboxDir: string;
  logger: Logger;
}

export function createMailer({ smtpUrl, from, outboxDir, logger }: MailerOptions): Mailer {
  if (smtpUrl) {
    const transport = nodemailer.createTransport(smtpUrl);
    const where = new URL(smtpUrl);
    return {
      async send(message) {
        const info = await transport.sendMail({ from, ...message });
        logger.info(
          {
            to: message.to,
            subject: message.subject,
            smtp: `${where.hostname}:${where.port}`,
            messageId: info.messageId,
          },
          "mail sent",
        );
        return { messageId: info.messageId, via: "smtp" };
      },
      close: () => transport.close(),
    };
  }
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: "unix" });
  return {
    async send(message) {
      const info = await transport.sendMail({ from, ...message });
      await fs.mkdir(outboxDir, { recursive: true });
      const stamp = new Date().toISOString().replace(/[:.]/g, "-");
      const slug = message.to.replace(/[^A-Za-z0-9@._-]/g, "_");
      const file = path.join(outboxDir, `${stamp}-${slug}-${randomUUID().slice(0, 8)}.eml`);
      await fs.writeFile(file, info.message as Buffer, { mode: 0o600 });
      logger.info({ to: message.to, subject: message.subject, file }, "mail written to the outbox");
      return { messageId: info.messageId, via: "outbox", file };
    },
    close: () => transport.close(),
  };
}
