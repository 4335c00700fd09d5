/**
 * A scanner of STEP physical files (ISO 10303-21, the exchange structure of IFC), run over a file's bytes before any
 * parser sees them: it checks that the file is complete (README "Synchronization": completeness check) and counts
 * the entity instances per type, so that instances of types the parser does not know are accounted for.
 *
 * What it reads: `ISO-10303-21;`, the `HEADER;` section with its records up to `ENDSEC;`, one or more `DATA;` (or
 * `DATA(...);`) sections of entity instances `#<n> = TYPE(...);` or complex instances `#<n> = (A(...) B(...));` up to
 * `ENDSEC;`, other sections (`ANCHOR`, `REFERENCE`, `SIGNATURE`) skipped up to their `ENDSEC;`, and
 * `END-ISO-10303-21;`. Strings (`'...'`, a quote inside written `''`), binaries (`"..."`) and comments (`/* ... *\/`)
 * are skipped wherever they stand, so a `;` or `)` inside them never ends anything. Pure: no I/O.
 */

/** Instances of one entity type: how many, and the first few instance numbers. */
export interface StepTypeCount {
  count: number;
  /** Instance numbers (`#n` without `#`) of the first {@link MAX_TYPE_EXAMPLES} instances. */
  examples: number[];
}

/** What a complete STEP file holds. */
export interface StepContent {
  /** The schema names of the header's FILE_SCHEMA, upper case, e.g. `["IFC4"]`. */
  schemas: string[];
  /** Entity instances of the DATA sections. */
  instances: number;
  /**
   * Instances per entity type name (upper case). A complex instance counts once, under its type names joined with
   * `+` in the order written (`IFCA+IFCB`).
   */
  types: Map<string, StepTypeCount>;
}

/**
 * The scan's verdict: `complete` with the content; `incomplete` (something the standard requires is missing or not
 * closed: the file is cut off or still being written) or `notStep` (it does not start as a STEP file, or holds text
 * that is no STEP syntax), each with a message naming what and where (1-based lines).
 */
export type StepScan =
  | { kind: "complete"; content: StepContent }
  | { kind: "incomplete"; problem: string }
  | { kind: "notStep"; problem: string };

/** Instance numbers kept per type. */
export const MAX_TYPE_EXAMPLES = 5;

const HASH = 35;
const EQUALS = 61;
const OPEN = 40;
const CLOSE = 41;
const SEMICOLON = 59;
const QUOTE = 39;
const DOUBLE_QUOTE = 34;
const SLASH = 47;
const STAR = 42;
const NEWLINE = 10;

/** Letters, digits, `_` and `-` (keywords such as `END-ISO-10303-21`, type names). */
function isWordByte(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95 || c === 45; /* - */
}

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9 || c === 12 || c === 11;
}

/** How a parameter list ended, see {@link Scanner.skipParameters}. */
type ListEnd = "closed" | "end" | "semicolon" | "equals" | "string" | "comment" | "badToken";

/**
 * Bytes a parameter list may hold outside strings, binaries and comments (ISO 10303-21 clause 6-7): letters, digits,
 * `_ . , + - $ * ! & ( ) #`, white space; anything else (`@`, `{`, a stray `'`...) is no STEP syntax.
 */
function isParameterByte(c: number): boolean {
  return (
    isWordByte(c) ||
    isSpace(c) ||
    c === 46 /* . */ ||
    c === 44 /* , */ ||
    c === 43 /* + */ ||
    c === 36 /* $ */ ||
    c === STAR ||
    c === 33 /* ! */ ||
    c === 38 /* & */
  );
}

/** Raised inside the scanner; turned into the verdict by {@link scanStep}. */
class StepProblem extends Error {
  constructor(
    readonly kind: "incomplete" | "notStep",
    message: string,
  ) {
    super(message);
  }
}

class Scanner {
  i = 0;
  line = 1;
  /** Where the string or comment that ran to the end of the file started. */
  openedAt = 0;
  private readonly n: number;
  /** The same bytes as a Buffer, for latin1 slices. */
  private readonly text: Buffer;

  constructor(private readonly b: Uint8Array) {
    this.n = b.length;
    this.text = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  }

  atEnd(): boolean {
    return this.i >= this.n;
  }

  peek(): number {
    return this.b[this.i];
  }

  /** Skips white space and comments; false when a comment runs to the end of the file. */
  skipSpace(): boolean {
    const b = this.b;
    const n = this.n;
    let i = this.i;
    while (i < n) {
      const c = b[i];
      if (c === NEWLINE) {
        this.line++;
        i++;
      } else if (isSpace(c)) {
        i++;
      } else if (c === SLASH && b[i + 1] === STAR) {
        this.openedAt = this.line;
        i += 2;
        for (;;) {
          if (i >= n) {
            this.i = i;
            return false;
          }
          const d = b[i];
          if (d === NEWLINE) this.line++;
          else if (d === STAR && b[i + 1] === SLASH) break;
          i++;
        }
        i += 2;
      } else break;
    }
    this.i = i;
    return true;
  }

  /** Reads a keyword or type name (letters, digits, `_`, `-`); empty when none starts here. */
  word(): string {
    const start = this.i;
    const b = this.b;
    let i = start;
    while (i < this.n && isWordByte(b[i])) i++;
    this.i = i;
    return this.text.toString("latin1", start, i);
  }

  /** {@link word} in upper case (type names are case-insensitive; files write them in upper case). */
  upperWord(): string {
    const start = this.i;
    const b = this.b;
    let i = start;
    let lower = false;
    for (; i < this.n; i++) {
      const c = b[i];
      if (c >= 97 && c <= 122) lower = true;
      else if (!isWordByte(c)) break;
    }
    this.i = i;
    const w = this.text.toString("latin1", start, i);
    return lower ? w.toUpperCase() : w;
  }

  /** Reads the digits of an instance number; NaN when there are none. */
  digits(): number {
    const b = this.b;
    let v = 0;
    let any = false;
    while (this.i < this.n && b[this.i] >= 48 && b[this.i] <= 57) {
      v = v * 10 + (b[this.i] - 48);
      this.i++;
      any = true;
    }
    return any ? v : NaN;
  }

  /**
   * Skips a parameter list whose opening parenthesis was just read, up to its matching closing one (`closed`).
   * Stops early at the end of the file (`end`, or `string` / `comment` when one is still open), or at a `;` or `=`
   * outside strings (`semicolon`, `equals`): they cannot stand inside a parameter list, so the list was never closed.
   * @param strings receives the text of each string parameter when given (header records).
   */
  skipParameters(strings?: string[], entity = false): ListEnd {
    const b = this.b;
    const n = this.n;
    let i = this.i;
    let depth = 1;
    while (i < n) {
      const c = b[i];
      if (c === QUOTE) {
        this.openedAt = this.line;
        const start = i + 1;
        i++;
        for (;;) {
          if (i >= n) {
            this.i = i;
            return "string";
          }
          const d = b[i];
          if (d === QUOTE) {
            if (b[i + 1] === QUOTE) i += 2;
            else break;
          } else {
            if (d === NEWLINE) this.line++;
            i++;
          }
        }
        if (strings) strings.push(this.text.toString("latin1", start, i).replace(/''/g, "'"));
        i++;
      } else if (c === DOUBLE_QUOTE) {
        this.openedAt = this.line;
        i++;
        while (i < n && b[i] !== DOUBLE_QUOTE) {
          if (b[i] === NEWLINE) this.line++;
          i++;
        }
        if (i >= n) {
          this.i = i;
          return "string";
        }
        i++;
      } else if (c === OPEN) {
        depth++;
        i++;
      } else if (c === CLOSE) {
        i++;
        if (--depth === 0) {
          this.i = i;
          return "closed";
        }
      } else if (c === NEWLINE) {
        this.line++;
        i++;
      } else if (c === SEMICOLON || c === EQUALS) {
        this.i = i;
        return c === SEMICOLON ? "semicolon" : "equals";
      } else if (c === SLASH && b[i + 1] === STAR) {
        this.openedAt = this.line;
        i += 2;
        for (;;) {
          if (i >= n) {
            this.i = i;
            return "comment";
          }
          if (b[i] === NEWLINE) this.line++;
          else if (b[i] === STAR && b[i + 1] === SLASH) break;
          i++;
        }
        i += 2;
      } else if (entity) {
        // An entity's parameters: a reference is `#` and digits; any other byte must be STEP syntax.
        if (c === HASH) {
          let j = i + 1;
          while (j < n && b[j] >= 48 && b[j] <= 57) j++;
          if (j === i + 1) {
            this.i = i;
            return "badToken";
          }
          i = j;
        } else if (isParameterByte(c)) i++;
        else {
          this.i = i;
          return "badToken";
        }
      } else {
        i++;
      }
    }
    this.i = i;
    return "end";
  }
}

/** Text of the next few bytes, for messages. */
function excerpt(b: Uint8Array, at: number): string {
  const s = Buffer.from(b.buffer, b.byteOffset + at, Math.min(24, b.length - at))
    .toString("latin1")
    .split(/\r?\n/)[0];
  return JSON.stringify(s.length >= 24 ? `${s}…` : s);
}

/**
 * Checks a STEP physical file for completeness and counts its entity instances per type (see the module comment).
 * Linear in the file size; reads the bytes once.
 * @returns `notStep` when the bytes do not start with `ISO-10303-21;` (after white space and comments), or when a file
 *   that ends with its terminator `END-ISO-10303-21;` holds text no STEP file can contain (e.g. stray text between
 *   instances, `@` in a parameter list); `incomplete` when the HEADER section, a DATA section, an `ENDSEC;`, an entity
 *   instance's closing `);` or the final `END-ISO-10303-21;` is missing, naming each missing part and its line. A file
 *   that starts as STEP but does not end with `END-ISO-10303-21;` is cut off (being written, or copied in part), so
 *   text that is no STEP syntax in it is `incomplete` too, wherever the cut fell (e.g. right after the `#` of a
 *   reference, or inside `ISO-10303-21`): the message names the entity the end of the file cuts off, or, when the
 *   syntax error lies before the last instance, what is missing at the end and that error (README "Synchronization":
 *   completeness check); so is a file of white space only (white space may begin a file). An empty file is `notStep`.
 *   Else `complete` with the content.
 */
export function scanStep(bytes: Uint8Array): StepScan {
  try {
    return { kind: "complete", content: scanOrThrow(bytes) };
  } catch (e) {
    if (e instanceof StepProblem) return { kind: e.kind, problem: e.message };
    throw e;
  }
}

function scanOrThrow(b: Uint8Array): StepContent {
  const s = new Scanner(b);
  const incomplete = (...parts: string[]) => new StepProblem("incomplete", parts.join("; "));
  /** `ISO-10303-21` was read: the bytes are a STEP file, whole or not. */
  let started = false;
  /** What the file lacks if it ends where the scan is (the parts of an `incomplete` message). */
  let missing: () => string[] = () => [];
  /** The entity instance being read, its number and line (-1 between instances; numbers only in the hot loop). */
  let entityId = -1;
  let entityLine = 0;
  const notStep = (message: string) => {
    // A file without its final END-ISO-10303-21; was cut off: what is no STEP syntax in it is incomplete, not invalid.
    if (!started || endsWithTerminator(b)) return new StepProblem("notStep", message);
    if (b.indexOf(SEMICOLON, s.i) < 0)
      // nothing ends after this point: the syntax error is the cut itself, in the last instance (or keyword)
      return incomplete(
        `${entityId >= 0 ? `entity #${entityId} (line ${entityLine})` : `line ${s.line}`} is cut off by the end of the file`,
        ...missing(),
      );
    return incomplete(
      ...missingAtEnd(b),
      `the file ends at line ${lineCount(b)}`,
      `before that, ${message.replace(/^line/, "at line")}`,
    );
  };
  const endNote = () => `the file ends at line ${s.line}`;
  /** Skips space; at the end of the file inside a comment: the comment is not closed. */
  const space = (within: () => string[]) => {
    if (!s.skipSpace()) throw incomplete(`a comment opened at line ${s.openedAt} is not closed`, ...within());
  };

  if (b.length === 0) throw notStep("the file is empty");
  if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) s.i = 3; // a UTF-8 byte order mark some exporters write
  space(() => []);
  const first = s.word();
  const magic = first.toUpperCase();
  if (magic === "" && s.atEnd())
    throw incomplete(
      "the file holds only white space so far",
      "no ISO-10303-21",
      "no HEADER section",
      "no DATA section",
      "no END-ISO-10303-21",
    );
  if (magic !== "" && magic !== "ISO-10303-21" && s.atEnd() && "ISO-10303-21".startsWith(magic))
    throw incomplete(
      `the file ends inside ISO-10303-21 (${JSON.stringify(first)})`,
      "no HEADER section",
      "no DATA section",
      "no END-ISO-10303-21",
    );
  if (magic !== "ISO-10303-21")
    throw notStep(
      `it does not start with ISO-10303-21; (line ${s.line} starts with ${excerpt(b, s.i - first.length)})`,
    );
  space(() => []);
  if (s.atEnd() || s.peek() !== SEMICOLON)
    throw incomplete(`the first line has no ';' after ISO-10303-21`, "no HEADER section", endNote());
  s.i++;
  started = true;
  missing = () => ["no HEADER section", "no DATA section", "no END-ISO-10303-21"];

  // HEADER
  space(() => ["no HEADER section"]);
  if (s.atEnd()) throw incomplete("no HEADER section", "no DATA section", "no END-ISO-10303-21", endNote());
  const headerLine = s.line;
  const headerWord = s.word();
  if (s.atEnd()) throw incomplete("the HEADER section is cut off", "no DATA section", "no END-ISO-10303-21", endNote());
  if (headerWord.toUpperCase() !== "HEADER")
    throw notStep(
      `line ${headerLine}: expected HEADER; after ISO-10303-21;, found ${excerpt(b, s.i - headerWord.length)}`,
    );
  space(() => [`the HEADER section (line ${headerLine}) has no ENDSEC`]);
  if (s.atEnd() || s.peek() !== SEMICOLON)
    throw incomplete(`HEADER at line ${headerLine} has no ';'`, "no DATA section", endNote());
  s.i++;
  const schemas: string[] = [];
  const headerOpen = () => [
    `the HEADER section (line ${headerLine}) has no ENDSEC`,
    "no DATA section",
    "no END-ISO-10303-21",
  ];
  missing = headerOpen;
  for (;;) {
    space(headerOpen);
    if (s.atEnd()) throw incomplete(...headerOpen(), endNote());
    const at = s.line;
    const name = s.word().toUpperCase();
    if (s.atEnd()) throw incomplete(`the HEADER section is cut off at line ${at}`, ...headerOpen().slice(1), endNote());
    if (name === "") throw notStep(`line ${at}: ${excerpt(b, s.i)} is not a header record`);
    space(headerOpen);
    if (name === "ENDSEC") {
      if (s.atEnd() || s.peek() !== SEMICOLON)
        throw incomplete(`ENDSEC at line ${at} has no ';'`, "no DATA section", "no END-ISO-10303-21", endNote());
      s.i++;
      break;
    }
    if (s.atEnd() || s.peek() !== OPEN) {
      if (s.atEnd()) throw incomplete(`the header record ${name} (line ${at}) is cut off`, ...headerOpen(), endNote());
      throw notStep(`line ${at}: header record ${name} has no parameter list`);
    }
    s.i++;
    const strings: string[] | undefined = name === "FILE_SCHEMA" ? [] : undefined;
    const end = s.skipParameters(strings);
    if (end !== "closed") throw listProblem(end, `the header record ${name} (line ${at})`, headerOpen());
    space(headerOpen);
    if (s.atEnd() || s.peek() !== SEMICOLON) {
      if (s.atEnd()) throw incomplete(`the header record ${name} (line ${at}) has no ';'`, ...headerOpen(), endNote());
      throw incomplete(`the header record ${name} (line ${at}) has no ';' after its parameters`);
    }
    s.i++;
    if (strings) schemas.push(...strings.map((x) => x.trim().toUpperCase()).filter((x) => x !== ""));
  }
  if (schemas.length === 0) throw incomplete(`the HEADER section (line ${headerLine}) has no FILE_SCHEMA`);

  // Sections up to END-ISO-10303-21;
  const types = new Map<string, StepTypeCount>();
  let instances = 0;
  let dataSections = 0;
  let lastId = -1;
  let lastLine = 0;
  const after = () => (lastId >= 0 ? `the file ends after entity #${lastId} (line ${lastLine})` : endNote());
  for (;;) {
    missing = () => [...(dataSections === 0 ? ["no DATA section"] : []), "no END-ISO-10303-21"];
    space(() => ["no END-ISO-10303-21"]);
    if (s.atEnd()) throw incomplete(...(dataSections === 0 ? ["no DATA section"] : []), "no END-ISO-10303-21", after());
    const at = s.line;
    const word = s.word().toUpperCase();
    if (s.atEnd()) throw incomplete(`line ${at} is cut off (${JSON.stringify(word)})`, "no END-ISO-10303-21", after());
    if (word === "END-ISO-10303-21") {
      space(() => []);
      if (s.atEnd() || s.peek() !== SEMICOLON) throw incomplete(`END-ISO-10303-21 at line ${at} has no ';'`);
      if (dataSections === 0)
        throw incomplete(`no DATA section: END-ISO-10303-21; at line ${at} follows the HEADER section`);
      return { schemas, instances, types };
    }
    if (word === "") throw notStep(`line ${at}: expected DATA; or END-ISO-10303-21;, found ${excerpt(b, s.i)}`);
    const sectionOpen = () => [`the ${word} section (line ${at}) has no ENDSEC`, "no END-ISO-10303-21"];
    missing = sectionOpen;
    space(sectionOpen);
    if (!s.atEnd() && s.peek() === OPEN) {
      // DATA('name', ('schema')); of files with several DATA sections
      s.i++;
      const end = s.skipParameters();
      if (end !== "closed") throw listProblem(end, `the ${word} section header (line ${at})`, sectionOpen());
      space(sectionOpen);
    }
    if (s.atEnd() || s.peek() !== SEMICOLON) {
      if (s.atEnd()) throw incomplete(`${word} at line ${at} has no ';'`, ...sectionOpen(), endNote());
      throw notStep(`line ${at}: ${word} is not followed by ';'`);
    }
    s.i++;
    if (word !== "DATA") {
      skipSection(s, word, at, sectionOpen);
      continue;
    }
    dataSections++;
    // The hot loop: one pass per instance, messages built only when something is wrong.
    const cutOff = (id: number, line: number) =>
      incomplete(`entity #${id} (line ${line}) is cut off by the end of the file`, ...sectionOpen());
    for (;;) {
      if (!s.skipSpace()) throw incomplete(`a comment opened at line ${s.openedAt} is not closed`, ...sectionOpen());
      if (s.atEnd()) throw incomplete(...sectionOpen(), after());
      const line = s.line;
      if (s.peek() !== HASH) {
        const w = s.word().toUpperCase();
        if (s.atEnd()) throw incomplete(`line ${line} is cut off (${JSON.stringify(w)})`, ...sectionOpen(), after());
        if (w === "ENDSEC") {
          space(() => []);
          if (s.atEnd() || s.peek() !== SEMICOLON)
            throw incomplete(`ENDSEC at line ${line} has no ';'`, "no END-ISO-10303-21", endNote());
          s.i++;
          break;
        }
        throw notStep(
          `line ${line}: expected an entity instance (#<n>=...) or ENDSEC; in the DATA section, found ${excerpt(b, s.i - w.length)}`,
        );
      }
      s.i++;
      const id = s.digits();
      if (Number.isNaN(id)) throw notStep(`line ${line}: '#' is not followed by an instance number`);
      entityId = id;
      entityLine = line;
      if (!s.skipSpace() || s.atEnd()) throw cutOff(id, line);
      if (s.peek() !== EQUALS) throw notStep(`line ${line}: #${id} is not followed by '='`);
      s.i++;
      if (!s.skipSpace() || s.atEnd()) throw cutOff(id, line);
      let typeKey: string;
      if (s.peek() === OPEN) {
        // complex instance: (A(...) B(...))
        s.i++;
        const parts: string[] = [];
        for (;;) {
          if (!s.skipSpace() || s.atEnd()) throw cutOff(id, line);
          if (s.peek() === CLOSE) {
            s.i++;
            break;
          }
          const part = s.word().toUpperCase();
          if (part === "") throw notClosed(s, `entity #${id} (line ${line})`, sectionOpen);
          if (!s.skipSpace() || s.atEnd()) throw cutOff(id, line);
          if (s.peek() !== OPEN) throw notStep(`line ${s.line}: ${part} in entity #${id} has no parameter list`);
          s.i++;
          const end = s.skipParameters(undefined, true);
          if (end !== "closed") throw listProblem(end, `entity #${id} (line ${line})`, sectionOpen());
          parts.push(part);
        }
        typeKey = parts.join("+");
      } else {
        typeKey = s.upperWord();
        if (typeKey === "") throw notStep(`line ${line}: #${id}= is not followed by an entity type`);
        if (!s.skipSpace() || s.atEnd()) throw cutOff(id, line);
        if (s.peek() !== OPEN) throw notStep(`line ${line}: ${typeKey} of #${id} has no parameter list`);
        s.i++;
        const end = s.skipParameters(undefined, true);
        if (end !== "closed") throw listProblem(end, `entity #${id} (line ${line})`, sectionOpen());
      }
      if (!s.skipSpace() || s.atEnd())
        throw incomplete(`entity #${id} (line ${line}) has no ';' at its end`, ...sectionOpen());
      if (s.peek() !== SEMICOLON) throw notClosed(s, `entity #${id} (line ${line})`, sectionOpen);
      s.i++;
      entityId = -1;
      instances++;
      lastId = id;
      lastLine = line;
      const t = types.get(typeKey);
      if (t) {
        t.count++;
        if (t.examples.length < MAX_TYPE_EXAMPLES) t.examples.push(id);
      } else types.set(typeKey, { count: 1, examples: [id] });
    }
  }

  /** The problem of a parameter list that did not close. */
  function listProblem(end: ListEnd, what: string, open: string[]): StepProblem {
    switch (end) {
      case "badToken":
        return notStep(`line ${s.line}: ${what} holds ${excerpt(b, s.i)}, which is no STEP parameter syntax`);
      case "string":
        return incomplete(
          `${what} is cut off inside a string or binary opened at line ${s.openedAt}`,
          ...open,
          endNote(),
        );
      case "comment":
        return incomplete(`${what} is cut off inside a comment opened at line ${s.openedAt}`, ...open, endNote());
      case "end":
        return incomplete(`${what} is cut off by the end of the file`, ...open);
      default:
        return incomplete(
          `${what} is not closed: its parameter list has no ')' before the '${end === "semicolon" ? ";" : "="}' on line ${s.line}`,
        );
    }
  }
}

/**
 * Whether the bytes end with the terminator `END-ISO-10303-21;` (any case, white space before the `;` and after it):
 * only a writer that finished writes it, so a file without it is cut off.
 */
function endsWithTerminator(b: Uint8Array): boolean {
  let i = b.length - 1;
  while (i >= 0 && isSpace(b[i])) i--;
  if (i < 0 || b[i] !== SEMICOLON) return false;
  i--;
  while (i >= 0 && isSpace(b[i])) i--;
  const word = "END-ISO-10303-21";
  const start = i - word.length + 1;
  if (start < 0 || (start > 0 && isWordByte(b[start - 1]))) return false;
  return (
    Buffer.from(b.buffer, b.byteOffset + start, word.length)
      .toString("latin1")
      .toUpperCase() === word
  );
}

/**
 * What a file without its terminator lacks at its end: `END-ISO-10303-21;` alone after an `ENDSEC;` (the end of the
 * file may cut `END-ISO-10303-21` itself), else the last section's `ENDSEC;` as well.
 */
function missingAtEnd(b: Uint8Array): string[] {
  let i = b.length - 1;
  while (i >= 0 && isSpace(b[i])) i--;
  let j = i;
  while (j >= 0 && isWordByte(b[j])) j--;
  const tail = Buffer.from(b.buffer, b.byteOffset + j + 1, i - j)
    .toString("latin1")
    .toUpperCase();
  if (tail !== "" && "END-ISO-10303-21".startsWith(tail)) i = j;
  while (i >= 0 && isSpace(b[i])) i--;
  if (i >= 0 && b[i] === SEMICOLON) {
    i--;
    while (i >= 0 && isSpace(b[i])) i--;
    if (
      i >= 5 &&
      Buffer.from(b.buffer, b.byteOffset + i - 5, 6)
        .toString("latin1")
        .toUpperCase() === "ENDSEC"
    )
      return ["no END-ISO-10303-21"];
  }
  return ["the last section has no ENDSEC", "no END-ISO-10303-21"];
}

/** 1-based number of the file's last line. */
function lineCount(b: Uint8Array): number {
  let n = 1;
  for (let i = b.indexOf(NEWLINE); i >= 0; i = b.indexOf(NEWLINE, i + 1)) n++;
  return n;
}

/** An instance whose parameter list closed but that has no `;` where it should end (the next instance follows). */
function notClosed(s: Scanner, entity: string, open: () => string[]): StepProblem {
  if (s.atEnd())
    return new StepProblem("incomplete", [`${entity} is cut off by the end of the file`, ...open()].join("; "));
  return new StepProblem("incomplete", `${entity} is not closed: line ${s.line} continues it without ';'`);
}

/** Skips a section other than DATA (ANCHOR, REFERENCE, SIGNATURE) up to its `ENDSEC;`. */
function skipSection(s: Scanner, word: string, at: number, open: () => string[]): void {
  for (;;) {
    if (!s.skipSpace())
      throw new StepProblem(
        "incomplete",
        [`a comment opened at line ${s.openedAt} is not closed`, ...open()].join("; "),
      );
    if (s.atEnd()) throw new StepProblem("incomplete", [...open(), `the file ends at line ${s.line}`].join("; "));
    const w = s.word().toUpperCase();
    if (w === "ENDSEC") {
      s.skipSpace();
      if (s.atEnd() || s.peek() !== SEMICOLON)
        throw new StepProblem("incomplete", `ENDSEC of the ${word} section (line ${at}) has no ';'`);
      s.i++;
      return;
    }
    if (w !== "") continue;
    const c = s.peek();
    if (c === OPEN) {
      s.i++;
      const end = s.skipParameters();
      if (end !== "closed" && end !== "semicolon" && end !== "equals")
        throw new StepProblem("incomplete", [`the ${word} section (line ${at}) is cut off`, ...open()].join("; "));
    } else if (c === QUOTE || c === DOUBLE_QUOTE) {
      // a string outside parentheses: skip it as a one-element list would be
      const end = skipLoneString(s);
      if (!end)
        throw new StepProblem("incomplete", [`the ${word} section (line ${at}) is cut off`, ...open()].join("; "));
    } else s.i++;
  }
}

/** Skips a string or binary that starts at the cursor; false when it runs to the end of the file. */
function skipLoneString(s: Scanner): boolean {
  const quote = s.peek();
  s.i++;
  for (;;) {
    if (s.atEnd()) return false;
    const c = s.peek();
    s.i++;
    if (c === NEWLINE) s.line++;
    else if (c === quote) {
      if (quote === QUOTE && !s.atEnd() && s.peek() === QUOTE) s.i++;
      else return true;
    }
  }
}
