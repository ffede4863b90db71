/**
 * Collation ids (what TABLE_MAP metadata carries) → character set, its longest character in bytes
 * (to turn a column's byte length back into the declared CHAR/VARCHAR length) and how to decode it.
 * The client loads the server's own table (information_schema) at connect; the built-in list
 * covers the common collations so the decoder also works on its own (tests, benchmarks).
 */
import { TEXT_BINARY, TEXT_LATIN1, TEXT_OTHER, TEXT_UTF8 } from './values.ts';
import { mysqlError } from '../errors.ts';

export interface Charset {
  name: string;
  /** Longest character in bytes (utf8mb4: 4). */
  maxLen: number;
  /** TEXT_* from values.ts. */
  kind: number;
  decoder?: TextDecoder;
}

const MAXLEN: Record<string, number> = {
  big5: 2, ujis: 3, sjis: 2, euckr: 2, gb2312: 2, gbk: 2, utf8mb3: 3, utf8: 3, ucs2: 2, utf8mb4: 4, utf16: 4, utf16le: 4, utf32: 4, cp932: 2, eucjpms: 3, gb18030: 4,
};

/** WHATWG encoding labels for the character sets that are neither UTF-8, latin1 nor binary. */
const WHATWG: Record<string, string> = {
  big5: 'big5', ujis: 'euc-jp', eucjpms: 'euc-jp', sjis: 'shift_jis', cp932: 'shift_jis', euckr: 'euc-kr', gb2312: 'gbk', gbk: 'gbk', gb18030: 'gb18030',
  latin2: 'iso-8859-2', latin5: 'windows-1254', latin7: 'iso-8859-13', greek: 'iso-8859-7', hebrew: 'iso-8859-8', cp1250: 'windows-1250', cp1251: 'windows-1251',
  cp1256: 'windows-1256', cp1257: 'windows-1257', koi8r: 'koi8-r', koi8u: 'koi8-u', cp866: 'ibm866', macroman: 'macintosh', tis620: 'windows-874',
  ucs2: 'utf-16be', utf16: 'utf-16be', utf16le: 'utf-16le',
};

const byName = new Map<string, Charset>();

/** The Charset for a MySQL character set name; one the decoder cannot read is an error naming it. */
export function charsetByName(name: string, maxLen?: number): Charset {
  const key = name.toLowerCase();
  let cs = byName.get(key);
  if (cs) return cs;
  const ml = maxLen ?? MAXLEN[key] ?? 1;
  if (key === 'utf8mb4' || key === 'utf8mb3' || key === 'utf8' || key === 'ascii') cs = { name: key, maxLen: ml, kind: TEXT_UTF8 };
  else if (key === 'latin1') cs = { name: key, maxLen: 1, kind: TEXT_LATIN1 };
  else if (key === 'binary') cs = { name: key, maxLen: 1, kind: TEXT_BINARY };
  else if (WHATWG[key]) cs = { name: key, maxLen: ml, kind: TEXT_OTHER, decoder: new TextDecoder(WHATWG[key]) };
  else {
    throw mysqlError(
      'MYSQL_UNSUPPORTED_CHARSET',
      `a captured column uses the character set ${name}, which Sluice cannot decode. Convert the column to utf8mb4 (ALTER TABLE … MODIFY … CHARACTER SET utf8mb4) or exclude the table from source.tables.`,
    );
  }
  byName.set(key, cs);
  return cs;
}

/** [first id, last id, charset] ranges of the long-standing collation ids shared by MySQL and MariaDB. */
const BUILTIN: [number, number, string][] = [
  [1, 1, 'big5'], [2, 2, 'latin2'], [3, 3, 'dec8'], [4, 4, 'cp850'], [5, 5, 'latin1'], [6, 6, 'hp8'], [7, 7, 'koi8r'], [8, 8, 'latin1'], [9, 9, 'latin2'],
  [10, 10, 'swe7'], [11, 11, 'ascii'], [12, 12, 'ujis'], [13, 13, 'sjis'], [14, 14, 'cp1251'], [15, 15, 'latin1'], [16, 16, 'hebrew'], [18, 18, 'tis620'],
  [19, 19, 'euckr'], [20, 20, 'latin7'], [21, 21, 'latin2'], [22, 22, 'koi8u'], [23, 23, 'cp1251'], [24, 24, 'gb2312'], [25, 25, 'greek'], [26, 26, 'cp1250'],
  [27, 27, 'latin2'], [28, 28, 'gbk'], [29, 29, 'cp1257'], [30, 30, 'latin5'], [31, 31, 'latin1'], [32, 32, 'armscii8'], [33, 33, 'utf8mb3'], [34, 34, 'cp1250'],
  [35, 35, 'ucs2'], [36, 36, 'cp866'], [37, 37, 'keybcs2'], [38, 38, 'macce'], [39, 39, 'macroman'], [40, 40, 'cp852'], [41, 41, 'latin7'], [42, 42, 'latin7'],
  [43, 43, 'macce'], [44, 44, 'cp1250'], [45, 46, 'utf8mb4'], [47, 49, 'latin1'], [50, 52, 'cp1251'], [53, 53, 'macroman'], [54, 55, 'utf16'], [56, 56, 'utf16le'],
  [57, 57, 'cp1256'], [58, 59, 'cp1257'], [60, 61, 'utf32'], [62, 62, 'utf16le'], [63, 63, 'binary'], [64, 64, 'armscii8'], [65, 65, 'ascii'], [66, 67, 'cp1250'],
  [68, 68, 'cp866'], [69, 69, 'dec8'], [70, 70, 'greek'], [71, 71, 'hebrew'], [72, 72, 'hp8'], [73, 73, 'keybcs2'], [74, 74, 'koi8r'], [75, 75, 'koi8u'],
  [76, 76, 'utf8mb3'], [77, 77, 'latin2'], [78, 78, 'latin5'], [79, 79, 'latin7'], [80, 80, 'cp850'], [81, 81, 'cp852'], [82, 82, 'swe7'], [83, 83, 'utf8mb3'],
  [84, 84, 'big5'], [85, 85, 'euckr'], [86, 86, 'gb2312'], [87, 87, 'gbk'], [88, 88, 'sjis'], [89, 89, 'tis620'], [90, 90, 'ucs2'], [91, 91, 'ujis'],
  [92, 92, 'geostd8'], [93, 93, 'geostd8'], [94, 94, 'latin1'], [95, 96, 'cp932'], [97, 98, 'eucjpms'], [99, 99, 'cp1250'], [101, 124, 'utf16'],
  [128, 151, 'ucs2'], [159, 159, 'ucs2'], [160, 183, 'utf32'], [192, 215, 'utf8mb3'], [223, 223, 'utf8mb3'], [224, 247, 'utf8mb4'], [248, 250, 'gb18030'],
  [255, 323, 'utf8mb4'],
];

export class CharsetCatalog {
  private readonly ids = new Map<number, Charset>();
  private readonly names = new Map<number, string>();
  private readonly maxLens = new Map<string, number>();

  constructor() {
    for (const [a, b, name] of BUILTIN) for (let i = a; i <= b; i++) this.names.set(i, name);
  }

  /** Adds the server's collations (information_schema.COLLATIONS ID, CHARACTER_SET_NAME). */
  addCollation(id: number, charset: string): void {
    this.names.set(id, charset.toLowerCase());
    this.ids.delete(id);
  }

  /** Adds a character set's MAXLEN (information_schema.CHARACTER_SETS). */
  addMaxLen(charset: string, maxLen: number): void {
    this.maxLens.set(charset.toLowerCase(), maxLen);
  }

  /** The charset of a collation id; `where` names the column in the error for an unknown id. */
  get(id: number, where: string): Charset {
    let cs = this.ids.get(id);
    if (cs) return cs;
    // MariaDB's NO PAD variants are their PAD SPACE collation's id + 1024.
    const name = this.names.get(id) ?? (id >= 1024 && id < 2048 ? this.names.get(id - 1024) : undefined);
    if (!name) {
      throw mysqlError('MYSQL_UNSUPPORTED_CHARSET', `column ${where} uses collation id ${id}, which this server's collation list does not name. This is a bug; report it with the server version.`);
    }
    cs = charsetByName(name, this.maxLens.get(name));
    this.ids.set(id, cs);
    return cs;
  }
}
