// data-capture="manual": the widget only authorizes, and the shop's server captures later.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { checkoutFrame, launchBrowser, openCheckout, recordingPage, startServer } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("a tag with data-capture=manual creates an authorized transaction", async () => {
  const [code] = await server.issue("150.00");
  const context = await browser.newContext();
  const { page } = await recordingPage(context);
  // The demo shop's tag, with data-capture="manual" set as the parser inserts it.
  await page.addInitScript(() => {
    new MutationObserver((records) => {
      for (const r of records) {
        for (const node of r.addedNodes) {
          if (node.tagName === "SCRIPT" && node.dataset && node.dataset.apiKey) {
            node.dataset.capture = "manual";
          }
        }
      }
    }).observe(document, { childList: true, subtree: true });
  });
  const orderId = await openCheckout(page, server);
  const frame = await checkoutFrame(page);
  assert.match(await frame.url(), /[?&]m=1(&|$)/, "the loader passes manual capture to the iframe");
  await frame.click("#start");
  await frame.locator("#code-0").fill(code);
  await frame.waitForSelector("#msg-0.ok");
  await frame.click("#pay");
  await frame.waitForSelector("#done");
  // Nothing is taken yet: the shopper is told the amount is reserved, not paid.
  const done = await frame.textContent("#done");
  assert.match(done, /€99\.00 reserved for this order/);
  assert.doesNotMatch(done, /Paid/);
  await page.waitForURL(/\/demo\/confirmation\//);
  assert.equal(server.transactionsFor(orderId), 1);
  assert.equal(server.holdStateOf(orderId), "authorized");
  await context.close();
});
