/**
 * DXF text decoding: the file's bytes to text (UTF-8 or the $DWGCODEPAGE code page), `\U+XXXX` and caret escapes,
 * and the display text of TEXT (`%%` codes) and MTEXT (formatting codes) values.
 */

/** TextDecoder label for a $DWGCODEPAGE value (pre-R2007 files); undefined when unknown. */
function codePageLabel(codePage: string | undefined): string | undefined {
  if (!codePage) return undefined;
  const cp = codePage.trim().toUpperCase();
  const ansi = /^ANSI_(\d+)$/.exec(cp);
  if (ansi) {
    const n = ansi[1];
    if (n === "932") return "shift_jis";
    if (n === "936") return "gbk";
    if (n === "949") return "euc-kr";
    if (n === "950") return "big5";
    if (n === "874") return "windows-874";
    return `windows-${n}`;
  }
  if (cp === "UTF8" || cp === "UTF-8") return "utf-8";
  return undefined;
}

/**
 * Decodes the file's bytes: UTF-8 from R2007 (AC1021) on or with a BOM; before that the $DWGCODEPAGE code page
 * (windows-1252 when unknown). Files without a version are taken as UTF-8 when they are valid UTF-8.
 */
export function decodeDxfBytes(buf: Buffer): string {
  if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) return buf.subarray(3).toString("utf8");
  const head = buf.subarray(0, Math.min(buf.length, 1 << 16)).toString("latin1");
  const version = /\$ACADVER\s*\r?\n\s*1\s*\r?\n\s*(AC\d{4})/.exec(head)?.[1];
  if (version && version >= "AC1021") return buf.toString("utf8");
  const label = version ? codePageLabel(/\$DWGCODEPAGE\s*\r?\n\s*3\s*\r?\n\s*([^\r\n]+)/.exec(head)?.[1]) : undefined;
  if (!version) {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(buf);
    } catch {
      // not UTF-8: fall through to windows-1252
    }
  }
  try {
    return new TextDecoder(label ?? "windows-1252").decode(buf);
  } catch {
    return buf.toString("latin1");
  }
}

/** `\U+XXXX` escapes (DXF before R2007) and caret-encoded control characters (`^J`, `^I`, `^ ` = `^`). */
export function decodeDxfString(s: string): string {
  let out = s;
  if (out.includes("\\U+") || out.includes("\\u+")) {
    out = out.replace(/\\[Uu]\+([0-9A-Fa-f]{4})/g, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
  }
  if (out.includes("^")) {
    out = out.replace(/\^([ @-_])/g, (_m, c: string) => (c === " " ? "^" : String.fromCharCode(c.charCodeAt(0) - 64)));
  }
  return out;
}

/** Display text of a TEXT value: `%%d` → °, `%%p` → ±, `%%c` → ⌀, `%%%` → %, `%%nnn` → character nnn; `%%u/o/k` dropped. */
export function plainText(s: string): string {
  return decodeDxfString(s)
    .replace(/%%(\d{3})/g, (_m, n: string) => String.fromCharCode(Number.parseInt(n, 10)))
    .replace(/%%([dDpPcC%uUoOkK])/g, (_m, c: string) => {
      switch (c.toLowerCase()) {
        case "d":
          return "°";
        case "p":
          return "±";
        case "c":
          return "⌀";
        case "%":
          return "%";
        default:
          return "";
      }
    })
    .trim();
}

/**
 * Display text of an MTEXT value: paragraph breaks (`\P`) become new lines, formatting codes (`\f…;`, `\H…;`,
 * `\A…;`, `\C…;`, `\L`, …) and grouping braces are removed, stacked fractions (`\S1/2;`, `\S1^2;`) read `1/2`.
 */
export function mtextPlain(raw: string): string {
  const s = decodeDxfString(raw);
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch === "{" || ch === "}") continue;
    if (ch !== "\\" || i + 1 >= s.length) {
      out += ch;
      continue;
    }
    const code = s[i + 1];
    i++;
    switch (code) {
      case "P":
      case "n":
        out += "\n";
        break;
      case "~":
        out += " ";
        break;
      case "\\":
      case "{":
      case "}":
        out += code;
        break;
      case "S": {
        const end = s.indexOf(";", i + 1);
        const body = end < 0 ? s.slice(i + 1) : s.slice(i + 1, end);
        out += body.replace(/[\^#]/g, "/").replace(/\/\s+/g, "/");
        i = end < 0 ? s.length : end;
        break;
      }
      case "f":
      case "F":
      case "H":
      case "W":
      case "Q":
      case "T":
      case "A":
      case "C":
      case "c":
      case "p": {
        const end = s.indexOf(";", i + 1);
        i = end < 0 ? s.length : end;
        break;
      }
      case "L":
      case "l":
      case "O":
      case "o":
      case "K":
      case "k":
      case "N":
      case "X":
        break;
      default:
        out += code;
    }
  }
  return plainText(out);
}
