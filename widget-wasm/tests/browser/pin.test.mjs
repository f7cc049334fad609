// Vouchers whose kind requires a PIN: the widget asks for it only when the balance check
// says so, sends it with that voucher, and keeps it inside the iframe.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { ADMIN_TOKEN, checkoutFrame, launchBrowser, openCheckout, recordingPage, shot, startServer } from "./harness.mjs";

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

/** Issues one test voucher of a kind with `pin_required`; returns its code and PIN. */
async function issueWithPin(amount) {
  const r = await server.api("POST", "/api/admin/vouchers", ADMIN_TOKEN, {
    currency: "EUR",
    amount,
    count: 1,
    mode: "test",
    rules: { pin_required: true },
  });
  if (r.status !== 201) throw new Error(`issuing a voucher with a PIN: ${JSON.stringify(r.body)}`);
  const [{ code, pin }] = r.body.vouchers;
  assert.match(pin, /^\d{6}$/);
  return { code, pin };
}

/** Another six digits than `pin`. */
function wrongPin(pin) {
  return pin.slice(0, 5) + String((Number(pin[5]) + 1) % 10);
}

test("a voucher with a PIN asks for it; a wrong PIN pays nothing, the right one pays", async () => {
  const { code, pin } = await issueWithPin("150.00");
  const wrong = wrongPin(pin);
  const context = await browser.newContext();
  const { page, seen } = await recordingPage(context);
  const orderId = await openCheckout(page, server);
  const frame = await checkoutFrame(page);
  await frame.click("#start");
  assert.equal(await frame.locator("#pin-0").count(), 0, "no PIN field before the check");
  await frame.locator("#code-0").fill(code);
  await frame.waitForSelector("#pin-0");
  await frame.waitForSelector("#msg-0.ok");
  const field = frame.locator("#pin-0");
  assert.equal(await field.getAttribute("type"), "password", "masked");
  assert.equal(await field.getAttribute("inputmode"), "numeric");
  assert.equal(await field.getAttribute("autocomplete"), "off");
  assert.equal(await frame.evaluate(() => document.activeElement.id), "pin-0", "the shopper is taken to it");
  assert.match(await frame.textContent("#pinmsg-0"), /6-digit PIN/);
  assert.ok(await frame.locator("#pay").isDisabled(), "no payment without the PIN");
  await field.pressSequentially(`12a${wrong.slice(0, 2)}`);
  assert.equal(await field.inputValue(), `12${wrong.slice(0, 2)}`, "digits only");
  assert.ok(await frame.locator("#pay").isDisabled(), "four digits are not a PIN");
  await shot(page.locator("iframe"), "pin-01-asked");

  await field.fill(wrong);
  await frame.click("#pay");
  await frame.waitForSelector("#pinmsg-0.err");
  assert.match(await frame.textContent("#pinmsg-0"), /Wrong PIN/);
  assert.equal(await frame.inputValue("#code-0"), code, "the code is kept");
  assert.equal(await frame.inputValue("#pin-0"), "", "the PIN is cleared");
  assert.equal(await frame.evaluate(() => document.activeElement.id), "pin-0");
  assert.equal(server.transactionsFor(orderId), 0, "nothing paid");
  const errors = seen.events.filter((e) => e.type === "error").map((e) => JSON.parse(e.detail));
  assert.equal(errors.at(-1).code, "pin_invalid");
  await shot(page.locator("iframe"), "pin-02-wrong");

  await frame.locator("#pin-0").fill(pin);
  await frame.click("#pay");
  await frame.waitForSelector("#done");
  await page.waitForURL(/\/demo\/confirmation\//);
  const successes = seen.events.filter((e) => e.type === "success").map((e) => JSON.parse(e.detail));
  assert.equal(successes.length, 1);
  assert.equal(successes[0].order_id, orderId);
  assert.equal(server.transactionsFor(orderId), 1);

  // Whatever the shop's page could read, and the console, carries neither PIN.
  const seenByPage = [...seen.events.map((e) => e.detail), ...seen.messages.map((m) => m.data), ...seen.console];
  assert.ok(seenByPage.length > 0);
  for (const text of seenByPage) {
    assert.ok(!text.includes(pin) && !text.includes(wrong), "the page or console saw a PIN");
    assert.ok(!/"pin"/.test(text), "the page saw a pin field");
  }
  await context.close();
});

test("a voucher without a PIN shows no PIN field", async () => {
  const [code] = await server.issue("150.00");
  const context = await browser.newContext();
  const { page, seen } = await recordingPage(context);
  const orderId = await openCheckout(page, server);
  const frame = await checkoutFrame(page);
  await frame.click("#start");
  await frame.locator("#code-0").fill(code);
  await frame.waitForSelector("#msg-0.ok");
  assert.equal(await frame.locator("#pin-0").count(), 0);
  assert.equal(await frame.locator("input[type=password]").count(), 0);
  await frame.click("#pay");
  await frame.waitForSelector("#done");
  assert.equal(seen.events.filter((e) => e.type === "success").length, 1);
  assert.equal(server.transactionsFor(orderId), 1);
  await context.close();
});

test("a remembered voucher with a PIN asks for it at one click, before any payment is sent", async () => {
  const { code, pin } = await issueWithPin("300.00");
  const context = await browser.newContext();
  const { page, seen } = await recordingPage(context);
  await openCheckout(page, server);
  let frame = await checkoutFrame(page);
  await frame.click("#start");
  await frame.locator("#code-0").fill(code);
  await frame.waitForSelector("#pin-0");
  await frame.locator("#pin-0").fill(pin);
  await frame.check("#remember");
  await frame.click("#pay");
  await frame.waitForSelector("#done");
  await page.waitForURL(/\/demo\/confirmation\//);

  const second = await openCheckout(page, server);
  frame = await checkoutFrame(page);
  await frame.waitForSelector("#pay-saved");
  // The iframe's storage: localStorage where the browser allows it, else its cookie.
  const stored = await frame.evaluate(() => {
    let local = "";
    try {
      local = JSON.stringify({ ...localStorage });
    } catch {
      // third-party storage denied: the widget used its partitioned cookie
    }
    return local + decodeURIComponent(document.cookie);
  });
  assert.ok(stored.includes(code.slice(-4)), "the voucher is remembered");
  assert.ok(!stored.includes(pin), "its PIN is not");
  const payments = [];
  frame.page().on("request", (r) => {
    if (r.url().includes("/api/process-payment")) payments.push(r.postData());
  });
  await frame.click("#pay-saved");
  await frame.waitForSelector("#pin-0");
  assert.equal(await frame.evaluate(() => document.activeElement.id), "pin-0");
  assert.equal(payments.length, 0, "nothing sent without the PIN");
  assert.equal(seen.events.filter((e) => e.type === "error").length, 0, "no pin_required decline");
  await frame.locator("#pin-0").fill(pin);
  await frame.click("#pay");
  await frame.waitForSelector("#done");
  assert.equal(payments.length, 1);
  assert.ok(JSON.parse(payments[0]).vouchers[0].token.startsWith("vt_"));
  assert.equal(server.transactionsFor(second), 1);
  await context.close();
});
