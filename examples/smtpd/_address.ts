// Parsing of the arguments of MAIL, RCPT and VRFY as Python's smtpd does it:
// its `_getaddr` reads an RFC 5322 angle-addr or addr-spec with the email
// package's header parser (comments, quoted strings, obsolete routes and
// local parts included) and returns the address and the unparsed rest.
// Where that parser raises (and Python's channel drops the connection), this
// one reports "no address", so the caller answers 501.

const WSP = " \t";
// RFC 5322 specials: they end an atom.
const SPECIALS = '()<>@,:;.\\"[]';

class ParseError extends Error {}

function isAtext(ch: string): boolean {
  return !SPECIALS.includes(ch) && !WSP.includes(ch);
}

// Characters that make a local part need quoting: specials but the dot.
function needsQuoting(value: string): boolean {
  for (const ch of value) {
    if (ch !== "." && (SPECIALS.includes(ch) || WSP.includes(ch))) return true;
  }
  return false;
}

function quoteString(value: string): string {
  return `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

class Scanner {
  readonly text: string;
  pos = 0;

  constructor(text: string) {
    this.text = text;
  }

  peek(): string {
    return this.text[this.pos] ?? "";
  }

  // Folding white space and (nested) comments.
  skipCFWS(): void {
    for (;;) {
      const ch = this.peek();
      if (ch !== "" && WSP.includes(ch)) {
        this.pos++;
      } else if (ch === "(") {
        this.#skipComment();
      } else {
        return;
      }
    }
  }

  #skipComment(): void {
    let depth = 0;
    while (this.pos < this.text.length) {
      const ch = this.text[this.pos++];
      if (ch === "\\") this.pos++;
      else if (ch === "(") depth++;
      else if (ch === ")" && --depth === 0) return;
    }
    throw new ParseError("unterminated comment");
  }

  atom(): string {
    const start = this.pos;
    while (this.peek() !== "" && isAtext(this.peek())) this.pos++;
    return this.text.slice(start, this.pos);
  }

  // A quoted string's value; an unterminated one runs to the end, as the
  // email package allows.
  quoted(): string {
    let value = "";
    this.pos++;
    while (this.pos < this.text.length) {
      const ch = this.text[this.pos++]!;
      if (ch === '"') return value;
      if (ch === "\\" && this.pos < this.text.length) {
        value += this.text[this.pos++];
      } else {
        value += ch;
      }
    }
    return value;
  }
}

// local-part: words (atoms or quoted strings) joined by dots; words separated
// only by white space are kept with one space (obs-local-part), which then
// forces quoting. Returns the rendered local part.
function localPart(s: Scanner): string {
  s.skipCFWS();
  let value = "";
  let quoted = false;
  let lastWasWord = false;
  for (;;) {
    const ch = s.peek();
    let word: string | null = null;
    if (ch === '"') {
      word = s.quoted();
      quoted = true;
    } else if (ch === "\\" || (ch !== "" && isAtext(ch))) {
      word = "";
      for (;;) {
        if (s.peek() === "\\") {
          // Outside quotes a backslash is kept, with what follows it.
          word += s.text.slice(s.pos, s.pos + 2);
          s.pos += 2;
        } else if (s.peek() !== "" && isAtext(s.peek())) {
          word += s.atom();
        } else {
          break;
        }
      }
    } else if (ch === ".") {
      s.pos++;
      value += ".";
      lastWasWord = false;
      s.skipCFWS();
      continue;
    }
    if (word === null) break;
    if (lastWasWord) value += " ";
    value += word;
    lastWasWord = true;
    s.skipCFWS();
  }
  if (value === "") {
    if (quoted) return '""';
    throw new ParseError("expected a local part");
  }
  return needsQuoting(value) ? quoteString(value) : value;
}

// domain: a dot-atom or a [domain literal]; white space and comments around
// the dots are dropped.
function domain(s: Scanner): string {
  s.skipCFWS();
  if (s.peek() === "[") {
    const end = s.text.indexOf("]", s.pos);
    const literal = end < 0 ? "" : s.text.slice(s.pos, end + 1);
    if (literal === "" || /[\s\\[]/.test(literal.slice(1, -1))) {
      throw new ParseError("bad domain literal");
    }
    s.pos = end + 1;
    s.skipCFWS();
    return literal;
  }
  let value = s.atom();
  if (value === "") throw new ParseError("expected a domain");
  for (;;) {
    s.skipCFWS();
    if (s.peek() !== ".") return value;
    s.pos++;
    s.skipCFWS();
    const next = s.atom();
    if (next === "") throw new ParseError("empty domain label");
    value += `.${next}`;
  }
}

function addrSpec(s: Scanner): string {
  const local = localPart(s);
  if (s.peek() !== "@") return local;
  s.pos++;
  return `${local}@${domain(s)}`;
}

// obs-route: "@a,@b:" before the address in angle brackets; skipped.
function obsRoute(s: Scanner): void {
  while (
    s.peek() === "," || s.peek() === "(" ||
    (s.peek() !== "" && WSP.includes(s.peek()))
  ) {
    if (s.peek() === ",") s.pos++;
    else s.skipCFWS();
  }
  if (s.peek() !== "@") throw new ParseError("expected a route");
  s.pos++;
  domain(s);
  while (s.peek() === ",") {
    s.pos++;
    s.skipCFWS();
    if (s.peek() === "@") {
      s.pos++;
      domain(s);
    }
  }
  if (s.peek() !== ":") throw new ParseError("expected ':' after a route");
  s.pos++;
}

function angleAddr(s: Scanner): [address: string, rest: string] {
  s.pos++;
  if (s.peek() === ">") return ["<>", s.text.slice(s.pos + 1)];
  const start = s.pos;
  let address: string;
  try {
    address = addrSpec(s);
  } catch (error) {
    if (!(error instanceof ParseError)) throw error;
    s.pos = start;
    obsRoute(s);
    address = addrSpec(s);
  }
  if (s.peek() === ">") s.pos++;
  s.skipCFWS();
  return [address, s.text.slice(s.pos)];
}

/**
 * Splits an SMTP path argument into the address and the rest of the line
 * (the ESMTP parameters), as Python's `SMTPChannel._getaddr` does; the
 * address is `""` when there is none or it cannot be parsed.
 */
export function parseAddress(arg: string): [address: string, rest: string] {
  if (arg === "") return ["", ""];
  const s = new Scanner(arg);
  try {
    // Like Python, only leading white space (not a comment) may precede "<".
    s.pos = arg.length - arg.trimStart().length;
    if (s.peek() === "<") return angleAddr(s);
    s.pos = 0;
    const address = addrSpec(s);
    return [address, s.text.slice(s.pos)];
  } catch (error) {
    if (error instanceof ParseError) return ["", ""];
    throw error;
  }
}

/**
 * What follows `keyword` (matched case-insensitively) at the start of `arg`,
 * trimmed; `""` when `arg` does not start with it.
 */
export function stripKeyword(keyword: string, arg: string): string {
  if (arg.slice(0, keyword.length).toUpperCase() !== keyword) return "";
  return arg.slice(keyword.length).trim();
}

/**
 * ESMTP parameters (`KEY` or `KEY=VALUE`, already upper-cased) as a map of
 * key to value (`true` for a bare keyword); `null` when one is malformed
 * (RFC 1869: the keyword must be alphanumeric, a `=` needs a value).
 */
export function parseParams(
  params: string[],
): Map<string, string | true> | null {
  const result = new Map<string, string | true>();
  for (const param of params) {
    const eq = param.indexOf("=");
    const key = eq < 0 ? param : param.slice(0, eq);
    const value = eq < 0 ? true : param.slice(eq + 1);
    if (!/^[\p{L}\p{N}]+$/u.test(key) || value === "") return null;
    result.set(key, value);
  }
  return result;
}
