// Rate limits reach the shopper as a wait time, not as a broken form.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { checkoutFrame, launchBrowser, openCheckout, recordingPage, shot, startServer } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer({ CHECK_RATE_LIMIT: "1" });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("too many balance checks say how long to wait", async () => {
  const [a, b] = await server.issue("150.00", 2);
  const context = await browser.newContext();
  const { page } = await recordingPage(context);
  await openCheckout(page, server);
  const frame = await checkoutFrame(page);
  await frame.click("#start");
  await frame.locator("#code-0").fill(a);
  await frame.waitForSelector("#msg-0.ok");
  await frame.locator("#code-0").fill(b);
  await frame.waitForSelector("#msg-0.err");
  const message = await frame.textContent("#msg-0");
  assert.match(message, /Too many attempts\. Please wait \d+ seconds/);
  assert.equal(await frame.locator("#recheck-0").count(), 1, "a way to check again");
  assert.ok(await frame.locator("#pay").isDisabled());
  await shot(page.locator("iframe"), "14-rate-limited");
  await context.close();
});
