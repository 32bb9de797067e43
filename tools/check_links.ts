/**
 * Fails when README.md or a page in docs/ links, by a relative path, to a
 * file that `deno publish` does not ship (or that does not exist), or to a
 * heading that is not there. JSR renders those pages from the published
 * files only, so such a link would be dead on jsr.io; files the package
 * leaves out (examples/, bench/, tests/) take absolute repository URLs.
 *
 *     deno run --allow-read --allow-run tools/check_links.ts
 *
 * The list of shipped files is the one `deno publish --dry-run` prints, so
 * `publish.exclude` in deno.json is honoured as deno applies it.
 *
 * @module
 */

const ROOT = new URL("..", import.meta.url);

/** Paths (relative to the root, "/"-separated) that `deno publish` ships. */
async function publishedFiles(): Promise<Set<string>> {
  const { success, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["publish", "--dry-run", "--allow-dirty"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout) +
    new TextDecoder().decode(stderr);
  if (!success) throw new Error(`Cannot list published files:\n${text}`);
  const files = new Set<string>();
  for (const match of text.matchAll(/^\s+(file:\/\/\S+) \(/gm)) {
    const url = match[1]!;
    if (url.startsWith(ROOT.href)) {
      files.add(decodeURIComponent(url.slice(ROOT.href.length)));
    }
  }
  if (files.size === 0) {
    throw new Error(`Cannot list published files: none in:\n${text}`);
  }
  return files;
}

/** A link found in a page: where it points and the line it is on. */
interface Link {
  target: string;
  line: number;
}

/** Inline links, images and reference definitions, outside code. */
function linksOf(markdown: string): Link[] {
  const links: Link[] = [];
  let fenced = false;
  markdown.split("\n").forEach((text, i) => {
    if (/^\s*(```|~~~)/.test(text)) {
      fenced = !fenced;
      return;
    }
    if (fenced) return;
    const prose = text.replace(/`[^`]*`/g, "");
    for (const match of prose.matchAll(/\]\(\s*<?([^)\s>]+)>?[^)]*\)/g)) {
      links.push({ target: match[1]!, line: i + 1 });
    }
    const definition = /^\s*\[[^\]]+\]:\s*<?(\S+?)>?(\s|$)/.exec(prose);
    if (definition !== null) {
      links.push({ target: definition[1]!, line: i + 1 });
    }
  });
  return links;
}

/** The anchors of a page's headings, as GitHub and JSR make them. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const text of markdown.split("\n")) {
    if (/^\s*(```|~~~)/.test(text)) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(text);
    if (heading === null) continue;
    const slug = heading[1]!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** "docs/a/../b.md" → "docs/b.md"; `null` if it climbs above the root. */
function normalize(path: string): string | null {
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (parts.length === 0) return null;
      parts.pop();
    } else {
      parts.push(part);
    }
  }
  return parts.join("/");
}

/** The problems with the relative links of `page` (a root-relative path). */
function check(
  page: string,
  markdown: string,
  published: Set<string>,
  read: (path: string) => string,
): string[] {
  const problems: string[] = [];
  const dir = page.includes("/") ? page.slice(0, page.lastIndexOf("/")) : "";
  for (const { target, line } of linksOf(markdown)) {
    // Absolute URLs (https:, mailto:, …) and site-absolute paths are not ours.
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("/")) {
      continue;
    }
    const [pathPart = "", anchor] = target.split("#", 2);
    const where = `${page}:${line}: ${target}`;
    const path = pathPart === ""
      ? page
      : normalize(decodeURIComponent(`${dir}/${pathPart}`));
    if (path === null) {
      problems.push(`${where}: points above the package`);
      continue;
    }
    const isDir = [...published].some((file) => file.startsWith(`${path}/`));
    if (!published.has(path) && !isDir) {
      problems.push(`${where}: ${path} is not a file \`deno publish\` ships`);
      continue;
    }
    if (anchor !== undefined && anchor !== "" && path.endsWith(".md")) {
      if (!anchorsOf(read(path)).has(anchor)) {
        problems.push(`${where}: ${path} has no heading "#${anchor}"`);
      }
    }
  }
  return problems;
}

if (import.meta.main) {
  const published = await publishedFiles();
  const read = (path: string): string =>
    Deno.readTextFileSync(new URL(path, ROOT));
  const pages = ["README.md"];
  for (const entry of Deno.readDirSync(new URL("docs/", ROOT))) {
    if (entry.isFile && entry.name.endsWith(".md")) {
      pages.push(`docs/${entry.name}`);
    }
  }
  const problems: string[] = [];
  let links = 0;
  for (const page of pages.sort()) {
    const markdown = read(page);
    links += linksOf(markdown).length;
    if (!published.has(page)) {
      problems.push(`${page}: not a file \`deno publish\` ships`);
    }
    problems.push(...check(page, markdown, published, read));
  }
  if (problems.length > 0) {
    console.error(
      `check_links: ${problems.length} dead link(s) on the package's pages:`,
    );
    for (const problem of problems) console.error(`  ${problem}`);
    Deno.exit(1);
  }
  console.log(
    `check_links: ${links} links in ${pages.length} pages, all to shipped files`,
  );
}
