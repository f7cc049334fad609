// The events a merchant's page relies on: heard whenever the listener is attached, sent even
// when the checkout cannot be shown, and exactly the error codes docs/widget.md lists.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  ADMIN_TOKEN,
  checkoutFrame,
  launchBrowser,
  openCheckout,
  recordingPage,
  startMerchantSite,
  startServer,
} from "./harness.mjs";

let server;
let browser;
let site;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  site = await startMerchantSite();
});

after(async () => {
  await browser?.close();
  await site?.close();
  await server?.stop();
});

/** The documented ready timeout of the loader. */
const READY_TIMEOUT_MS = 15_000;

function tag(attrs = {}) {
  const all = { "data-api-key": server.merchant.pk, "data-amount": "25.00", "data-order-id": "EVT-1", ...attrs };
  const text = Object.entries(all)
    .map(([k, v]) => `${k}="${v}"`)
    .join(" ");
  return `<script src="${server.provider}/widget.js" ${text}></script>`;
}

/** A page of the merchant's own site; `scripts` are served next to it as files. */
function merchantPage(pathname, body, scripts = {}) {
  for (const [name, code] of Object.entries(scripts)) {
    site.set(name, code, { "content-type": "text/javascript; charset=utf-8" });
  }
  return site.set(pathname, `<!doctype html><html><body><h1>Shop</h1>${body}</body></html>`);
}

const details = (seen, type) => seen.events.filter((e) => e.type === type).map((e) => JSON.parse(e.detail));
const errorCodes = (seen) => details(seen, "error").map((d) => d.code);

/** Waits for a condition that the browser makes true asynchronously (never a fixed delay). */
async function until(check, what) {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`still waiting for ${what}`);
}

/** Pays up to the Pay click with `code` on the demo shop; returns what the test needs. */
async function readyToPay(code, options = {}) {
  const context = await browser.newContext();
  const { page, seen } = await recordingPage(context);
  const orderId = await openCheckout(page, server, options);
  const frame = await checkoutFrame(page);
  await frame.click("#start");
  await frame.locator("#code-0").fill(code);
  await frame.waitForSelector("#msg-0.ok");
  return { context, page, seen, frame, orderId };
}

/** Pays another order with `code` through the API, as another shop window would. */
async function payElsewhere(code, amount) {
  const r = await server.api("POST", "/api/process-payment/", server.merchant.pk, {
    order_id: `ELSEWHERE-${Math.random().toString(36).slice(2, 10)}`,
    amount,
    currency: "EUR",
    vouchers: [{ code }],
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
}

describe("whenever the page listens", () => {
  test("invalid_tag reaches a listener added before the tag and one added by a later script", async () => {
    const listen = (name) =>
      `(window.${name} = []); document.addEventListener("superpayment:error", function (e) {` +
      ` window.${name}.push(e.detail.code); });`;
    const url = merchantPage(
      "/order-of-listeners.html",
      `<script src="/first.js"></script>${tag({ "data-api-key": "pk_test_short" })}<script src="/later.js"></script>`,
      {
        "/first.js": listen("heardFirst"),
        // The later script also listens on the tag itself, found the way a shop would.
        "/later.js":
          listen("heardLater") +
          ` window.heardOnTag = []; document.querySelector("script[data-api-key]").addEventListener(` +
          `"superpayment:error", function (e) { window.heardOnTag.push(e.detail.code); });`,
      },
    );
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(() => window.heardFirst.length && window.heardLater.length && window.heardOnTag.length);
    const heard = await page.evaluate(() => [window.heardFirst, window.heardLater, window.heardOnTag]);
    assert.deepEqual(heard, [["invalid_tag"], ["invalid_tag"], ["invalid_tag"]], "each listener hears it once");
    await context.close();
  });

  test("a script that runs after the page has loaded finds earlier events in window.SuperPayment and hears later ones once", async () => {
    const url = merchantPage(
      "/late-listener.html",
      tag({ "data-api-key": "pk_test_short" }) + tag({ "data-order-id": "LATE-1" }) + tag({ "data-order-id": "LATE 2" }),
    );
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(url);
    // A tag manager's script, long after the tags ran: first what happened, then what happens.
    await page.evaluate(() => {
      const widgets = window.SuperPayment.widgets;
      window.got = [];
      const note = (i, type, detail) => window.got.push([i, type, detail.code || ""]);
      widgets.forEach((w, i) => w.events.forEach((e) => note(i, e.type, e.detail)));
      for (const type of ["superpayment:ready", "superpayment:success", "superpayment:error"]) {
        document.addEventListener(type, (e) => note(widgets.findIndex((w) => w.script === e.target), e.type, e.detail));
      }
    });
    // Whether the second widget's ready came before that script or after it, it is there once.
    await page.waitForFunction(() =>
      window.got.some(([i, type]) => i === 1 && type === "superpayment:ready") &&
      window.got.some(([i, type]) => i === 2 && type === "superpayment:error"),
    );
    const got = await page.evaluate(() => window.got);
    assert.deepEqual(got[0], [0, "superpayment:error", "invalid_tag"]);
    // The two frames answer in either order; the malformed order id is refused by its frame.
    assert.deepEqual(got.slice(1).sort(), [
      [1, "superpayment:ready", ""],
      [2, "superpayment:error", "invalid_tag"],
    ]);
    const shape = await page.evaluate(() =>
      window.SuperPayment.widgets.map((w) => ({
        script: w.script.tagName,
        frame: w.frame ? w.frame.tagName : null,
        message: w.events[0].detail.message,
      })),
    );
    assert.deepEqual(
      shape.map(({ script, frame }) => [script, frame]),
      [["SCRIPT", null], ["SCRIPT", "IFRAME"], ["SCRIPT", "IFRAME"]],
      "a tag refused for its key has no frame; one refused by the frame has it",
    );
    assert.match(shape[0].message, /publishable key/);
    assert.match(shape[2].message, /data-order-id/);
    await context.close();
  });
});

describe("a checkout that cannot be shown still answers", () => {
  test("a page whose origin is not allowed hears origin_not_allowed at once, and an allowed one gets the checkout", async () => {
    const context = await browser.newContext();
    await context.clock.install({ time: 0 });
    await context.clock.pauseAt(1_000);
    try {
      let r = await server.settings({ allowed_origins: ["https://shop.example"] });
      assert.equal(r.status, 200);
      const { page, seen } = await recordingPage(context);
      await page.goto(merchantPage("/not-allowed.html", tag({ "data-order-id": "ORIGIN-1" })));
      await until(() => seen.events.length > 0, "an event");
      const [error] = details(seen, "error");
      assert.equal(error.code, "origin_not_allowed");
      assert.match(error.message, new RegExp(site.origin.replace(/[.:/]/g, "\\$&")));
      const frame = page.frameLocator("iframe");
      assert.match(await frame.locator("[role=alert]").textContent(), /cannot be shown on this website/);
      assert.ok((await page.locator("iframe").boundingBox()).height > 20, "sized to the notice");
      // The frame did answer: the ready timeout was called off, nothing else follows.
      await context.clock.runFor(READY_TIMEOUT_MS * 2);
      assert.deepEqual(errorCodes(seen), ["origin_not_allowed"]);
      assert.equal(seen.events.length, 1);

      // Allowing the page's own origin (http://127.0.0.1:PORT) brings the checkout back.
      r = await server.settings({ allowed_origins: ["https://shop.example", site.origin] });
      assert.equal(r.status, 200);
      const allowed = await recordingPage(context);
      await allowed.page.goto(merchantPage("/allowed.html", tag({ "data-order-id": "ORIGIN-2" })));
      await until(() => allowed.seen.events.length > 0, "an event");
      assert.deepEqual(allowed.seen.events.map((e) => e.type), ["ready"]);
    } finally {
      await server.settings({ allowed_origins: [] });
      await context.close();
    }
  });

  test("a frame that never answers fires frame_unavailable after the documented 15 seconds", async () => {
    const context = await browser.newContext();
    await context.clock.install({ time: 0 });
    await context.clock.pauseAt(1_000);
    // SuperPayment unreachable: the iframe becomes the browser's error page.
    await context.route(`${server.provider}/checkout.html**`, (route) => route.abort("connectionrefused"));
    const { page, seen } = await recordingPage(context);
    await page.goto(merchantPage("/unreachable.html", tag({ "data-order-id": "DOWN-1" })));
    await page.waitForSelector("iframe");
    await context.clock.runFor(READY_TIMEOUT_MS - 1);
    assert.deepEqual(seen.events, [], "nothing before the timeout");
    await context.clock.runFor(1);
    await until(() => seen.events.length > 0, "the timeout's event");
    const [error] = details(seen, "error");
    assert.equal(error.code, "frame_unavailable");
    assert.match(error.message, /did not load within 15 seconds/);
    assert.ok(seen.console.some((l) => l.startsWith("error: SuperPayment:")), "console error");
    await context.clock.runFor(READY_TIMEOUT_MS * 2);
    assert.equal(seen.events.length, 1, "fired once");
    await context.close();
  });

  test("a shop page framed by a site the merchant did not allow fires frame_unavailable", async () => {
    // The shop's own origin is allowed, but frame-ancestors covers every ancestor: a site
    // framing the shop page (a page builder's preview, say) is refused by the browser,
    // which only the ready timeout can notice.
    const outer = await startMerchantSite();
    const context = await browser.newContext();
    await context.clock.install({ time: 0 });
    await context.clock.pauseAt(1_000);
    try {
      const r = await server.settings({ allowed_origins: [site.origin] });
      assert.equal(r.status, 200);
      const shopPage = merchantPage("/framed-shop.html", tag({ "data-order-id": "FRAMED-1" }));
      const top = outer.set("/preview.html", `<!doctype html><iframe src="${shopPage}" width="600" height="300"></iframe>`);
      const { page, seen } = await recordingPage(context);
      await page.goto(top);
      await until(() => page.frames().some((f) => f.url() === shopPage), "the shop frame");
      const shop = page.frames().find((f) => f.url() === shopPage);
      await shop.waitForSelector("iframe");
      await context.clock.runFor(READY_TIMEOUT_MS);
      await until(() => seen.events.length > 0, "the timeout's event");
      assert.deepEqual(errorCodes(seen), ["frame_unavailable"]);
    } finally {
      await server.settings({ allowed_origins: [] });
      await context.close();
      await outer.close();
    }
  });
});

describe("error codes a payment can end with", () => {
  /** Clicks Pay and waits for the answer's event; returns its detail and the live region. */
  async function payAndHear({ frame, seen }, expectedCode) {
    await frame.evaluate(() => {
      window.announced = [];
      const status = document.getElementById("status");
      new MutationObserver(() => window.announced.push(status.textContent)).observe(status, {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
    await frame.click("#pay");
    await until(() => details(seen, "error").length > 0, `the ${expectedCode} event`);
    const errors = details(seen, "error");
    assert.deepEqual(errors.map((e) => e.code), [expectedCode]);
    const announced = await frame.evaluate(() => window.announced);
    assert.equal(announced[0], "Paying…");
    return { error: errors[0], status: announced.at(-1) };
  }

  test("minimum_order_not_met: the balance check cannot know the order, Pay can", async () => {
    const [code] = await server.issue("150.00", 1, { min_order_amount: "120.00" });
    const checkout = await readyToPay(code);
    const { status } = await payAndHear(checkout, "minimum_order_not_met");
    await checkout.frame.waitForSelector("#msg-0.err");
    assert.equal(status, (await checkout.frame.textContent("#msg-0")).trim(), "the live region says why");
    assert.equal(server.transactionsFor(checkout.orderId), 0);
    await checkout.context.close();
  });

  test("insufficient_balance: the voucher was spent elsewhere since its balance check", async () => {
    const [code] = await server.issue("150.00");
    const checkout = await readyToPay(code);
    await payElsewhere(code, "100.00");
    const { status } = await payAndHear(checkout, "insufficient_balance");
    assert.equal(status, "The balance does not cover the amount. Add another voucher.");
    assert.equal(server.transactionsFor(checkout.orderId), 0);
    await checkout.context.close();
  });

  test("voucher_declined: the voucher expired since its balance check (the uniform decline)", async () => {
    const issued = await server.api("POST", "/api/admin/vouchers", ADMIN_TOKEN, {
      currency: "EUR",
      amount: "150.00",
      count: 1,
      mode: "test",
      expires_at: new Date(Date.now() + 86_400_000).toISOString(),
    });
    const [{ id, code }] = issued.body.vouchers;
    const checkout = await readyToPay(code);
    // Midnight passes between the balance check and the click.
    server.sql(`UPDATE vouchers SET expires_at = now() - interval '1 second' WHERE id = ${Number(id)}`);
    const { status } = await payAndHear(checkout, "voucher_declined");
    await checkout.frame.waitForSelector("#msg-0.err");
    assert.equal(status, "This voucher cannot be used.");
    await checkout.context.close();
  });

  test("voucher_already_used: a single-use voucher was used elsewhere since its balance check", async () => {
    const [code] = await server.issue("150.00", 1, { single_use: true });
    const checkout = await readyToPay(code);
    await payElsewhere(code, "10.00");
    const { status } = await payAndHear(checkout, "voucher_already_used");
    await checkout.frame.waitForSelector("#msg-0.err");
    assert.equal(status, (await checkout.frame.textContent("#msg-0")).trim());
    await checkout.context.close();
  });

  test("voucher_token_invalid: a remembered voucher was revoked since the page loaded", async () => {
    const [code] = await server.issue("300.00");
    const first = await readyToPay(code);
    await first.frame.check("#remember");
    await first.frame.click("#pay");
    await first.frame.waitForSelector("#done");
    await first.page.waitForURL(/\/demo\/confirmation\//);

    // The next checkout offers it in one click once the balance refresh has answered...
    const { page, seen } = { page: first.page, seen: first.seen };
    seen.events.length = 0;
    const refreshed = page.waitForResponse((r) => r.url().includes("/api/remembered-vouchers/lookup"));
    await openCheckout(page, server);
    await refreshed;
    const frame = await checkoutFrame(page);
    await frame.waitForSelector("#pay-saved");
    // ...and support revokes it (a lost phone) before the shopper clicks.
    const r = await server.api("POST", "/api/admin/vouchers/revoke-remembered", ADMIN_TOKEN, { code });
    assert.equal(r.body.revoked, 1);
    await frame.click("#pay-saved");
    await until(() => details(seen, "error").length > 0, "the voucher_token_invalid event");
    assert.deepEqual(errorCodes(seen), ["voucher_token_invalid"]);
    await frame.waitForSelector("#code-1", { state: "attached" });
    assert.doesNotMatch(await frame.textContent("#status"), /Paying/);
    await first.context.close();
  });

  test("invalid_api_key: a revoked publishable key is reported at the first balance check", async () => {
    const created = await server.api("POST", "/api/keys", server.merchant.sk, { kind: "publishable" });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const revoked = await server.api("POST", `/api/keys/${created.body.key.id}/revoke`, server.merchant.sk);
    assert.equal(revoked.status, 200);
    const [code] = await server.issue("150.00");
    const context = await browser.newContext();
    const { page, seen } = await recordingPage(context);
    await page.goto(merchantPage("/revoked-key.html", tag({ "data-api-key": created.body.secret, "data-order-id": "KEY-1" })));
    const frame = await checkoutFrame(page);
    await frame.click("#start");
    await frame.locator("#code-0").fill(code);
    await frame.waitForSelector("#fatal");
    assert.match(await frame.textContent("#fatal"), /not set up correctly/);
    assert.equal(await frame.textContent("#status"), await frame.textContent("#fatal"));
    await until(() => details(seen, "error").length > 0, "the invalid_api_key event");
    assert.deepEqual(seen.events.map((e) => e.type), ["ready", "error"]);
    assert.deepEqual(errorCodes(seen), ["invalid_api_key"]);
    await context.close();
  });

  test("a voucher refused at the balance check fires no event: Pay was never possible", async () => {
    const [blocked] = await server.issue("150.00");
    await server.block(blocked);
    const [good] = await server.issue("150.00");
    const context = await browser.newContext();
    const { page, seen } = await recordingPage(context);
    await openCheckout(page, server);
    const frame = await checkoutFrame(page);
    await frame.click("#start");
    for (const refused of [blocked, "TEST-EXP1-RED0-000M"]) {
      await frame.locator("#code-0").fill(refused);
      await frame.waitForSelector("#msg-0.err");
      assert.ok(await frame.locator("#pay").isDisabled());
    }
    await frame.locator("#code-0").fill(good);
    await frame.waitForSelector("#msg-0.ok");
    await frame.click("#pay");
    await frame.waitForSelector("#done");
    // The page hears the widget's messages in order: success came, so nothing came before it.
    await until(() => details(seen, "success").length > 0, "the success event");
    assert.deepEqual(seen.events.map((e) => e.type), ["ready", "success"]);
    await context.close();
  });
});
