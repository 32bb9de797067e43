// The benchmark's verdict on its targets: the interval for a median (its
// order statistics and coverage, checked against binomial sums computed here
// the slow way), and the met / level / missed call made from it.

import assert from "node:assert/strict";
import { median, medianInterval } from "../bench/_median.ts";
import type { Measurement } from "../bench/_suite.ts";
import { targetsTable } from "../bench/_targets.ts";

function choose(n: number, k: number): number {
  let c = 1;
  for (let i = 1; i <= k; i++) c = (c * (n - i + 1)) / i;
  return c;
}

// P(the k-th lowest of n <= median <= the k-th highest) for a continuous
// distribution: 1 - 2 P(Binomial(n, 1/2) <= k - 1).
function coverage(n: number, k: number): number {
  let tail = 0;
  for (let i = 0; i < k; i++) tail += choose(n, i) / 2 ** n;
  return 1 - 2 * tail;
}

Deno.test("medianInterval", async (t) => {
  await t.step("takes the widest k whose coverage stays at 95 %", () => {
    for (let n = 6; n <= 60; n++) {
      let k = 1;
      while (coverage(n, k + 1) >= 0.95) k++;
      // Shuffled input: the interval comes from the sorted values.
      const xs = Array.from({ length: n }, (_, i) => i + 1)
        .sort((a, b) => ((a * 37) % 101) - ((b * 37) % 101));
      const got = medianInterval(xs)!;
      assert.deepEqual(
        [got.low, got.high],
        [k, n - k + 1],
        `n = ${n}`,
      );
      assert.ok(Math.abs(got.coverage - coverage(n, k)) < 1e-12, `n = ${n}`);
      assert.ok(got.coverage >= 0.95, `n = ${n}`);
      assert.ok(got.low <= median(xs)! && median(xs)! <= got.high);
    }
  });

  await t.step("below 6 values: the extremes, with their coverage", () => {
    assert.deepEqual(medianInterval([1.2, 0.9, 1.0, 1.1, 0.8]), {
      low: 0.8,
      high: 1.2,
      coverage: 0.9375,
    });
    assert.deepEqual(medianInterval([2, 1]), {
      low: 1,
      high: 2,
      coverage: 0.5,
    });
    assert.equal(medianInterval([1]), null);
    assert.equal(medianInterval([]), null);
  });

  await t.step("honours another level", () => {
    const xs = Array.from({ length: 20 }, (_, i) => i + 1);
    const got = medianInterval(xs, 0.8)!;
    assert.ok(got.coverage >= 0.8);
    // One more step in would fall below 80 %.
    assert.ok(coverage(20, got.low + 1) < 0.8);
  });
});

// pp1000 runs where the project's server spends `ratios[i]` times the fair
// baseline's CPU per message (both 100 % busy, so the rate carries it).
function pp1000(
  ratios: number[],
  servers = ["asyncore", "raw_deno_fair"],
): Map<string, Map<string, Measurement[]>> {
  const runs = new Map<string, Measurement[]>();
  for (const server of servers) {
    runs.set(
      server,
      ratios.map((ratio, i) => ({
        run: i + 1,
        server,
        scenario: "pp1000",
        result: {
          srv_cpu_pct: "100",
          msgs_per_s: `${server === "raw_deno_fair" ? 60000 : 60000 / ratio}`,
          p99_us: "20000",
          conn_msgs_min: "300",
          conn_msgs_med: "300",
        },
      })),
    );
  }
  return new Map([["pp1000", runs]]);
}

function row(lines: string[], label: string): string[] {
  const line = lines.find((l) => l.startsWith(`| ${label} |`));
  assert.ok(line !== undefined, `no row for ${label}`);
  return line.split("|").slice(1, -1).map((cell) => cell.trim());
}

const CPU = "pp1000 CPU µs/msg ≤ 1.0× the fair baseline";

Deno.test("targetsTable", async (t) => {
  await t.step("met: the whole interval on the target's side", () => {
    const lines = targetsTable(pp1000([0.9, 0.92, 0.95, 0.97, 0.98, 0.99]));
    assert.deepEqual(row(lines, CPU), [
      CPU,
      "6",
      "0.960×",
      "0.900×–0.990× (96.9 %)",
      "met",
    ]);
  });

  await t.step("level: the interval straddles the bound", () => {
    const lines = targetsTable(pp1000([0.9, 0.92, 0.95, 0.97, 0.98, 1.01]));
    assert.equal(row(lines, CPU)[4], "level");
    // The median alone would have called it met.
    assert.equal(row(lines, CPU)[2], "0.960×");
  });

  await t.step("missed: the whole interval on the other side", () => {
    const lines = targetsTable(pp1000([1.1, 1.12, 1.15, 1.2, 1.3, 1.4]));
    assert.equal(row(lines, CPU)[4], "missed");
    // A rate target, at least 0.95× the fair baseline's msgs/s: every run
    // here served 0.71–0.91× its rate.
    const rate = row(lines, "pp1000 msgs/s ≥ 0.95× the fair baseline");
    assert.equal(rate[4], "missed");
  });

  await t.step("absolute targets, and too few runs", () => {
    const lines = targetsTable(pp1000([1]));
    assert.deepEqual(row(lines, "fairness at pp1000 ≥ 0.95").slice(1), [
      "1",
      "1.00",
      "-",
      "too few runs",
    ]);
  });

  await t.step("no rows without the project's server or the baseline", () => {
    assert.deepEqual(
      targetsTable(pp1000([0.9, 1], ["raw_deno", "raw_deno_fair"])),
      [],
    );
    const alone = targetsTable(pp1000([0.9, 1], ["project"]));
    // run.sh calls the project's server "project"; with no baseline beside
    // it only the absolute targets have rows.
    assert.deepEqual(
      alone.filter((l) => l.startsWith("| pp1000")).length,
      0,
    );
    assert.equal(row(alone, "fairness at pp1000 ≥ 0.95")[4], "met");
  });
});
