/**
 * DXF colours: the AutoCAD Color Index palette, true colours (group 420), and the `#rrggbb` form kept in element
 * properties.
 */
import { micro } from "../common/numbers";
import type { RgbaColor } from "../types";

/**
 * The 256 AutoCAD Color Index (ACI) colours as 24-bit RGB hex, index 0..255 (0 = BYBLOCK and is never looked up).
 * This is the standard AutoCAD palette, the same table dxf-parser ships in `AutoCadColorIndex` (MIT), which its
 * CommonJS bundle does not export.
 */
const ACI_HEX =
  "000000ff0000ffff0000ff0000ffff0000ffff00ffffffff808080c0c0c0ff0000ff7f7fcc0000cc6666990000994c4c" +
  "7f00007f3f3f4c00004c2626ff3f00ff9f7fcc3300cc7f66992600995f4c7f1f007f4f3f4c13004c2f26ff7f00ffbf7f" +
  "cc6600cc9966994c0099724c7f3f007f5f3f4c26004c3926ffbf00ffdf7fcc9900ccb26699720099854c7f5f007f6f3f" +
  "4c39004c4226ffff00ffff7fcccc00cccc6698980098984c7f7f007f7f3f4c4c004c4c26bfff00dfff7f99cc00b2cc66" +
  "72980085984c5f7f006f7f3f394c00424c267fff00bfff7f66cc0099cc664c980072984c3f7f005f7f3f264c00394c26" +
  "3fff009fff7f33cc007fcc662698005f984c1f7f004f7f3f134c002f4c2600ff007fff7f00cc0066cc660098004c984c" +
  "007f003f7f3f004c00264c2600ff3f7fff9f00cc3366cc7f0098264c985f007f1f3f7f4f004c13264c2f00ff7f7fffbf" +
  "00cc6666cc9900984c4c9872007f3f3f7f5f004c26264c3900ffbf7fffdf00cc9966ccb20098724c9885007f5f3f7f6f" +
  "004c39264c4200ffff7fffff00cccc66cccc0098984c9898007f7f3f7f7f004c4c264c4c00bfff7fdfff0099cc66b2cc" +
  "0072984c8598005f7f3f6f7f00394c26424c007fff7fbfff0066cc6699cc004c984c7298003f7f3f5f7f00264c26394c" +
  "003fff7f9fff0033cc667fcc0026984c5f98001f7f3f4f7f00134c262f4c0000ff7f7fff0000cc6666cc0000984c4c98" +
  "00007f3f3f7f00004c26264c3f00ff9f7fff3300cc7f66cc2600985f4c981f007f4f3f7f13004c2f264c7f00ffbf7fff" +
  "6600cc9966cc4c0098724c983f007f5f3f7f26004c39264cbf00ffdf7fff9900ccb266cc720098854c985f007f6f3f7f" +
  "39004c42264cff00ffff7fffcc00cccc66cc980098984c987f007f7f3f7f4c004c4c264cff00bfff7fdfcc0099cc66b2" +
  "980072984c857f005f7f3f6f4c00394c2642ff007fff7fbfcc0066cc669998004c984c727f003f7f3f5f4c00264c2639" +
  "ff003fff7f9fcc0033cc667f980026984c5f7f001f7f3f4f4c00134c262f3333335b5b5b848484adadadd6d6d6ffffff";

/** RGB (0..1, alpha 1) of ACI colour `index` (1..255); undefined outside that range. */
export function aciColor(index: number): RgbaColor | undefined {
  if (!Number.isInteger(index) || index < 1 || index > 255) return undefined;
  return rgbColor(Number.parseInt(ACI_HEX.slice(index * 6, index * 6 + 6), 16));
}

/** RGBA (0..1) of a 24-bit 0xRRGGBB true colour (group 420). */
export function rgbColor(rgb: number): RgbaColor {
  return [micro(((rgb >> 16) & 0xff) / 255), micro(((rgb >> 8) & 0xff) / 255), micro((rgb & 0xff) / 255), 1];
}

/** `#rrggbb` (lower-case hex) of a colour; alpha is not part of it. */
export function colorHex(c: RgbaColor): string {
  return `#${c
    .slice(0, 3)
    .map((v) =>
      Math.round(v * 255)
        .toString(16)
        .padStart(2, "0"),
    )
    .join("")}`;
}

/** White: the colour of BYBLOCK entities outside blocks and of BYLAYER entities whose layer the table lacks. */
export const WHITE: RgbaColor = [1, 1, 1, 1];
