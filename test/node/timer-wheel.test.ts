import assert from "node:assert/strict";
import { test } from "node:test";
import { TimerWheel } from "../../src/node/timer-wheel.js";

test("deadlines fire once, never early, and the wheel holds no timer when empty", async () => {
  const wheel = new TimerWheel(20);
  const fired: string[] = [];
  const start = performance.now();
  const times: number[] = [];
  wheel.schedule(30, () => {
    fired.push("a");
    times.push(performance.now() - start);
  });
  wheel.schedule(60, () => fired.push("b"));
  const cancelled = wheel.schedule(40, () => fired.push("never"));
  cancelled.cancel();
  assert.equal(wheel.pending, 2);
  await new Promise((r) => setTimeout(r, 150));
  assert.deepEqual(fired, ["a", "b"]);
  assert.ok(times[0] >= 30, `fired after ${times[0]} ms, not before its 30 ms deadline`);
  assert.equal(wheel.pending, 0);
  assert.ok(!process.getActiveResourcesInfo().includes("Timeout"), "no interval left running");
});

test("a step of the wall clock moves no deadline (an NTP step forward must not time every session out)", async (t) => {
  const wheel = new TimerWheel(10);
  let fired = 0;
  const timer = wheel.schedule(200, () => fired++);
  const wall = Date.now;
  t.after(() => (Date.now = wall));
  Date.now = () => wall() + 3_600_000;
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(fired, 0, "an hour's step forward fired a deadline due in 200 ms");
  Date.now = () => wall() - 3_600_000;
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(fired, 1, "an hour's step back held a deadline that was due");
  timer.cancel();
});

test("rescheduling pushes a deadline back (the idle timer of a busy session never fires)", async () => {
  const wheel = new TimerWheel(10);
  let fired = 0;
  const timer = wheel.schedule(40, () => fired++);
  for (let i = 0; i < 8; i++) {
    await new Promise((r) => setTimeout(r, 15));
    timer.reschedule(40);
  }
  assert.equal(fired, 0);
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(fired, 1);
  timer.cancel(); // cancelling a fired timer is harmless
  assert.equal(wheel.pending, 0);
});

test("10,000 deadlines share one interval", () => {
  const wheel = new TimerWheel(1000);
  const before = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
  const timers = Array.from({ length: 10_000 }, () => wheel.schedule(60_000, () => {}));
  const during = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
  assert.equal(during - before, 1);
  for (const t of timers) t.cancel();
  assert.equal(wheel.pending, 0);
  assert.equal(process.getActiveResourcesInfo().filter((r) => r === "Timeout").length, before);
});

test("a wheel emptied and refilled (a session's transfer pausing its deadline) keeps working and holds no timer while empty", async () => {
  const wheel = new TimerWheel(20);
  let fired = 0;
  for (let i = 0; i < 5; i++) {
    const paused = wheel.schedule(40, () => fired++);
    paused.cancel();
    assert.equal(wheel.pending, 0);
    assert.ok(!process.getActiveResourcesInfo().includes("Timeout"), "an empty wheel holds no active timer");
  }
  wheel.schedule(30, () => fired++);
  assert.ok(process.getActiveResourcesInfo().includes("Timeout"), "a pending deadline keeps its timer active");
  await new Promise((r) => setTimeout(r, 120));
  assert.equal(fired, 1);
  assert.equal(wheel.pending, 0);
  assert.ok(!process.getActiveResourcesInfo().includes("Timeout"));
});
