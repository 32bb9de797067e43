// A hand-written SVG line chart of messages served per connection, each
// server's connections sorted from least to most served: a fair server draws
// a flat line, a server that serves a hot set while the rest wait draws a
// hockey stick. No dependency; any browser or `rsvg-convert` renders it.

/** One server's line. */
export interface Series {
  /** Legend text. */
  label: string;
  /** Messages each connection completed, least first. */
  counts: readonly number[];
  /** A CSS color; by default the next of a palette. */
  color?: string;
}

const WIDTH = 760;
const HEIGHT = 430;
const LEFT = 70;
const RIGHT = 20;
const TOP = 50;
const BOTTOM = 60;
const LEGEND_LINE = 18;
// For series without a color of their own (run.ts gives the usual servers
// theirs): none of those.
const COLORS = ["#8e44ad", "#d68910", "#16a085", "#2c3e50"];

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(
    />/g,
    "&gt;",
  );
}

// A round step giving about `count` ticks from 0 to `max`.
function tickStep(max: number, count: number): number {
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].find((m) => m * power >= raw) ?? 10;
  return step * power;
}

/**
 * The chart as an SVG document: x is a connection's rank (0–100 % of the
 * connections, least served first), y the messages it completed.
 */
export function fairnessChart(
  series: readonly Series[],
  title: string,
  subtitle: string,
): string {
  const legendHeight = LEGEND_LINE * series.length;
  const height = HEIGHT + legendHeight;
  const plotW = WIDTH - LEFT - RIGHT;
  const plotH = HEIGHT - TOP - BOTTOM;
  const max = Math.max(1, ...series.flatMap((s) => s.counts));
  const step = tickStep(max, 5);
  const top = Math.ceil(max / step) * step;
  const x = (fraction: number): number => LEFT + fraction * plotW;
  const y = (value: number): number => TOP + plotH - (value / top) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="${LEFT}" y="22" font-size="15" font-weight="bold">${
      escape(title)
    }</text>`,
    `<text x="${LEFT}" y="40" fill="#555">${escape(subtitle)}</text>`,
  ];
  for (let value = 0; value <= top + step / 2; value += step) {
    const py = y(value).toFixed(1);
    out.push(
      `<line x1="${LEFT}" y1="${py}" x2="${
        WIDTH - RIGHT
      }" y2="${py}" stroke="#e5e5e5"/>`,
      `<text x="${LEFT - 6}" y="${py}" dy="4" text-anchor="end">${
        value.toLocaleString("en-US")
      }</text>`,
    );
  }
  for (let percent = 0; percent <= 100; percent += 20) {
    const px = x(percent / 100).toFixed(1);
    out.push(
      `<line x1="${px}" y1="${TOP + plotH}" x2="${px}" y2="${
        TOP + plotH + 5
      }" stroke="#333"/>`,
      `<text x="${px}" y="${
        TOP + plotH + 18
      }" text-anchor="middle">${percent} %</text>`,
    );
  }
  out.push(
    `<line x1="${LEFT}" y1="${TOP + plotH}" x2="${WIDTH - RIGHT}" y2="${
      TOP + plotH
    }" stroke="#333"/>`,
    `<line x1="${LEFT}" y1="${TOP}" x2="${LEFT}" y2="${
      TOP + plotH
    }" stroke="#333"/>`,
    `<text x="${LEFT + plotW / 2}" y="${
      TOP + plotH + 38
    }" text-anchor="middle">connections, least served first</text>`,
    `<text transform="translate(18 ${
      TOP + plotH / 2
    }) rotate(-90)" text-anchor="middle">messages per connection</text>`,
  );
  series.forEach((s, i) => {
    const color = s.color ?? COLORS[i % COLORS.length]!;
    const n = s.counts.length;
    // One point per connection, at the middle of its share of the axis.
    const points = s.counts.map((count, rank) =>
      `${x((rank + 0.5) / n).toFixed(1)},${y(count).toFixed(1)}`
    );
    out.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2" stroke-linejoin="round" points="${
        points.join(" ")
      }"/>`,
    );
    const ly = HEIGHT + i * LEGEND_LINE - 6;
    out.push(
      `<line x1="${LEFT}" y1="${ly - 4}" x2="${LEFT + 24}" y2="${
        ly - 4
      }" stroke="${color}" stroke-width="3"/>`,
      `<text x="${LEFT + 32}" y="${ly}">${escape(s.label)}</text>`,
    );
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
