/**
 * Reading a source file's bytes, with the task error codes both connectors give for a file that cannot be read.
 */
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { SourceFileError } from "../types";

/** The message of an error, or the thrown value as text. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The bytes of the file at `absolutePath`.
 * @throws SourceFileError `FileNotFound` ("<file name>: file not found (<path>)") when the file or a folder on its
 *   path does not exist; `FileUnreadable` ("<file name>: cannot be read (<errno code>)") for any other read error.
 */
export async function readSourceFile(absolutePath: string): Promise<Buffer> {
  const fileName = path.basename(absolutePath);
  try {
    return await fsp.readFile(absolutePath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR")
      throw new SourceFileError("FileNotFound", `${fileName}: file not found (${absolutePath})`);
    throw new SourceFileError("FileUnreadable", `${fileName}: cannot be read (${code ?? errorText(e)})`);
  }
}
