// The back-office in headless Chromium, as a merchant's owner uses it: log in, the overview
// with its chart, find a transaction by order id, refund part of it, see the refund in the
// list and in the ledger postings, export CSV, log out. JavaScript is off: every flow is a
// plain form. Then roll an API key and redeliver a webhook, invite a staff member who
// accepts the emailed link, and turn on two-factor sign-in and sign in with a code computed
// here as an authenticator app does. A screenshot of each page lands in
// target/dashboard-screenshots/.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";

import { launchBrowser, ROOT, startMerchantSite, startServer, startSmtpSink } from "./harness.mjs";

const SHOTS = path.join(ROOT, "target/dashboard-screenshots");

let server;
let browser;
let site;
let smtp;

before(async () => {
  // The emails of the in-process worker (invitations) land in this SMTP server.
  smtp = await startSmtpSink(2535);
  // The in-process worker delivers webhooks to the merchant's site on this machine.
  server = await startServer({
    SERVE_WORKER: "on",
    WEBHOOK_LOOPBACK_FOR_TESTS: "true",
    WEBHOOK_POLL_INTERVAL: "100ms",
    SMTP_URL: smtp.url,
    SMTP_FROM: "SuperPayment <notify@superpayment.test>",
    EMAIL_POLL_INTERVAL: "100ms",
  });
  browser = await launchBrowser();
  site = await startMerchantSite();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await site?.close();
  await smtp?.close();
});

async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

test("an owner logs in, refunds part of a transaction, exports CSV and logs out", async () => {
  const owner = server.createUser("owner");
  const paid = await server.pay("ORDER_BROWSER_7", "80.00");
  await server.pay("ORDER_BROWSER_8", "15.00");

  const context = await browser.newContext({ javaScriptEnabled: false, acceptDownloads: true });
  const page = await context.newPage();

  await page.goto(`${server.shop}/dashboard/`);
  await page.waitForURL(/\/dashboard\/login$/);
  await shot(page, "01-login");
  await page.fill('input[name="email"]', owner.email);
  await page.fill('input[name="password"]', owner.password);
  await page.click('button[type="submit"]');
  await page.waitForURL(/\/dashboard\/$/);

  // The overview: today's volume and the 30-day chart.
  const today = page.locator('section[data-currency="EUR"] tr[data-period="today"]');
  assert.equal((await today.locator('[data-field="volume"]').textContent()).trim(), "95.00");
  assert.equal((await today.locator('[data-field="count"]').textContent()).trim(), "2");
  assert.equal(await page.locator("figure.chart svg").count(), 1);
  assert.match(await page.textContent('[data-testid="mode"]'), /test/);
  await shot(page, "02-overview");

  // Find the transaction by its order id.
  await page.click('nav a[href="/dashboard/transactions"]');
  await page.fill('input[name="q"]', "ORDER_BROWSER_7");
  await page.click('form.filters button[type="submit"]');
  await page.waitForURL(/q=ORDER_BROWSER_7/);
  const rows = page.locator("#transactions tbody tr[data-id]");
  assert.equal(await rows.count(), 1);
  assert.equal(await rows.first().getAttribute("data-id"), paid.id);
  await shot(page, "03-transactions-search");

  await page.click(`a[href="/dashboard/transactions/${paid.id}"]`);
  await page.waitForURL(new RegExp(`/dashboard/transactions/${paid.id}$`));
  assert.equal((await page.textContent("#status")).trim(), "succeeded");
  await shot(page, "04-transaction");

  // Refund 30.00 of 80.00, through the confirmation page.
  await page.fill('form.refund input[name="amount"]', "30.00");
  await page.fill('form.refund input[name="reason"]', "one item returned");
  await page.click("#refund");
  await page.waitForURL(/\/refund\?/);
  assert.match(await page.textContent("#confirm-amount"), /30\.00 EUR/);
  await shot(page, "05-refund-confirm");
  await page.click("#confirm-refund");
  await page.waitForURL(/\?refunded=/);
  assert.equal((await page.textContent("#status")).trim(), "partially_refunded");
  assert.match(await page.textContent("#refunds"), /30\.00/);
  assert.match(await page.textContent("#refunds"), /one item returned/);
  // The refund's journal in the ledger postings: the merchant's payable debited by the net.
  const postings = await page.textContent("#postings");
  assert.match(postings, /refund/);
  assert.match(postings, /-\d+\.\d\d/);
  await shot(page, "06-transaction-refunded");

  // The list shows the new status.
  await page.click('nav a[href="/dashboard/transactions"]');
  await page.waitForURL(/\/dashboard\/transactions$/);
  assert.match(
    await page.textContent(`#transactions tr[data-id="${paid.id}"]`),
    /partially_refunded/,
  );
  await shot(page, "07-transactions");

  // Export every row as CSV.
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export")]);
  const csv = readFileSync(await download.path(), "utf8");
  const lines = csv.trim().split("\n");
  assert.equal(lines[0], "id,created_at,order_id,status,currency,amount,commission,net,refunded");
  assert.equal(lines.length, 3);
  assert.ok(lines.some((l) => l.startsWith(`${paid.id},`) && l.includes(",partially_refunded,EUR,80.00,") && l.endsWith(",30.00")));

  await page.click("#logout");
  await page.waitForURL(/\/dashboard\/login\?done=logout$/);
  await shot(page, "08-logged-out");
  await page.goto(`${server.shop}/dashboard/`);
  await page.waitForURL(/\/dashboard\/login$/);
  await context.close();
});

test("an admin rolls an API key and redelivers a webhook", async () => {
  const admin = server.createUser("admin");
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${server.shop}/dashboard/login`);
  await page.fill('input[name="email"]', admin.email);
  await page.fill('input[name="password"]', admin.password);
  await page.click('button[type="submit"]');
  await page.waitForURL(/\/dashboard\/$/);

  // Roll the secret key with the default overlap of 24 hours: the new key is shown once.
  await page.click('nav a[href="/dashboard/keys"]');
  const sk = server.merchant.sk;
  const row = page.locator("#keys tbody tr", { hasText: sk.slice(-4) });
  await row.locator('button:has-text("Roll")').click();
  const newKey = (await page.textContent("#new-key")).trim();
  assert.match(newKey, /^sk_test_/);
  assert.notEqual(newKey, sk);
  await shot(page, "09-key-rolled");
  const r = await fetch(`${server.shop}/api/transactions`, { headers: { authorization: `Bearer ${newKey}` } });
  assert.equal(r.status, 200, "the new key works");
  await page.goto(`${server.shop}/dashboard/keys`);
  assert.equal(await page.locator("#new-key").count(), 0, "shown only once");

  // Point webhooks at the merchant's site, pay, and see the delivery in the log.
  site.set("/hooks", "ok");
  await page.click('nav a[href="/dashboard/webhooks"]');
  await page.fill('input[name="url"]', `${site.origin}/hooks`);
  await page.click("#set-endpoint");
  assert.match(await page.textContent("#secret"), /^whsec_/);
  await server.pay("ORDER_BROWSER_HOOK", "12.00");
  let log = "";
  for (let i = 0; i < 100 && !log.includes("HTTP 200"); i++) {
    await page.goto(`${server.shop}/dashboard/webhooks`);
    log = await page.textContent("#deliveries");
    if (!log.includes("HTTP 200")) await new Promise((res) => setTimeout(res, 100));
  }
  assert.match(log, /payment\.succeeded/);
  assert.match(log, /HTTP 200/);
  const event = page.locator("#deliveries tbody tr", { hasText: "payment.succeeded" }).first();
  await event.locator('button:has-text("Redeliver")').click();
  await page.waitForURL(/\?redelivered=evt_/);
  for (let i = 0; i < 100; i++) {
    const attempts = await page.locator("#deliveries tbody tr", { hasText: "payment.succeeded" }).first().textContent();
    if ((attempts.match(/HTTP 200/g) || []).length >= 2) break;
    await new Promise((res) => setTimeout(res, 100));
    await page.reload();
  }
  const attempts = await page.locator("#deliveries tbody tr", { hasText: "payment.succeeded" }).first().textContent();
  assert.ok((attempts.match(/HTTP 200/g) || []).length >= 2, attempts);
  await shot(page, "10-webhooks");

  await page.click('nav a[href="/dashboard/activity"]');
  const activity = await page.textContent("#activity");
  for (const action of ["key.rolled", "webhook_endpoint.set", "event.redelivered"]) {
    assert.ok(activity.includes(action), action);
  }
  await shot(page, "11-activity");
  await context.close();
});

test("an owner invites a staff member, who accepts the emailed link and lands signed in as staff", async () => {
  const owner = server.createUser("owner", "team-owner@alpine.example");
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${server.shop}/dashboard/login`);
  await page.fill('input[name="email"]', owner.email);
  await page.fill('input[name="password"]', owner.password);
  await page.click('button[type="submit"]');
  await page.waitForURL(/\/dashboard\/$/);

  await page.click('nav a[href="/dashboard/settings"]');
  const invited = "new-staff@alpine.example";
  await page.fill('#invite input[name="email"]', invited);
  await page.selectOption('#invite select[name="role"]', "staff");
  await page.click('#invite button[type="submit"]');
  assert.match(await page.textContent('[role="status"]'), /Invitation sent to new-staff@alpine\.example as staff/);
  assert.equal(await page.locator("#invitations tbody tr", { hasText: invited }).count(), 1);
  await shot(page, "12-invite");
  await context.close();

  // The worker sends the email; its link opens in a browser that never signed in.
  const [mail] = await smtp.waitFor(invited);
  const link = mail.text.match(/https?:\/\/\S+\/dashboard\/invitations\/\S+/)[0];
  assert.ok(link.startsWith(server.shop), link);
  const fresh = await browser.newContext({ javaScriptEnabled: false });
  const joining = await fresh.newPage();
  await joining.goto(link);
  assert.equal(await joining.inputValue('#accept input[name="email"]'), invited);
  await shot(joining, "13-accept-invitation");
  await joining.fill('#accept input[name="password"]', "a staff passphrase of mine");
  await joining.click('#accept button[type="submit"]');
  await joining.waitForURL(/\/dashboard\/$/);
  assert.equal((await joining.textContent(".who")).trim(), `${invited} (staff)`);
  await joining.click('nav a[href="/dashboard/settings"]');
  const row = joining.locator("#team tbody tr", { hasText: invited });
  assert.match(await row.textContent(), /staff/);
  assert.equal(await joining.locator("#invite").count(), 0, "staff invites nobody");
  await shot(joining, "14-signed-in-as-staff");

  // The link worked once.
  const again = await fresh.newPage();
  const r = await again.goto(link);
  assert.equal(r.status(), 404);
  assert.match(await again.textContent("h1"), /This link is not valid/);
  await fresh.close();
});

/** Base32 (RFC 4648, no padding) to bytes. */
function base32Decode(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of text.replace(/=+$/, "").toUpperCase()) {
    const i = alphabet.indexOf(ch);
    if (i < 0) throw new Error(`not base32: ${ch}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The TOTP code (RFC 6238: HMAC-SHA-1, 6 digits, 30 s) of `secret` for the step `offset` from now. */
function totp(secret, offset = 0) {
  const step = Math.floor(Date.now() / 1000 / 30) + offset;
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", base32Decode(secret)).update(counter).digest();
  const at = mac[mac.length - 1] & 0x0f;
  const n = (mac.readUInt32BE(at) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, "0");
}

test("a user turns on two-factor sign-in and signs in with a code", async () => {
  const user = server.createUser("staff");
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${server.shop}/dashboard/login`);
  await page.fill('input[name="email"]', user.email);
  await page.fill('input[name="password"]', user.password);
  await page.click('button[type="submit"]');
  await page.waitForURL(/\/dashboard\/$/);

  // Enrol on the account page: a QR code and the key, confirmed by a code and the password.
  await page.click('nav a[href="/dashboard/account"]');
  await page.click("#enable-two-factor");
  await page.waitForURL(/\/dashboard\/account\/two-factor$/);
  const secret = (await page.textContent("#two-factor-secret")).trim();
  assert.match(secret, /^[A-Z2-7]{32}$/);
  assert.match(await page.getAttribute("#two-factor-qr", "src"), /^data:image\/svg\+xml;base64,/);
  const qrSize = await page.locator("#two-factor-qr").evaluate((img) => img.naturalWidth);
  assert.ok(qrSize > 0, "the QR code renders");
  await shot(page, "15-two-factor-enrol");
  // The step before the current one: the sign-in below then uses later steps.
  await page.fill('#confirm-two-factor input[name="code"]', totp(secret, -1));
  await page.fill('#confirm-two-factor input[name="password"]', user.password);
  await page.click('#confirm-two-factor button[type="submit"]');
  const codes = await page.locator("#recovery-codes code").allTextContents();
  assert.equal(codes.length, 10);
  await shot(page, "16-two-factor-recovery-codes");
  await page.click("#codes-done");
  assert.match(await page.textContent("#two-factor-status"), /On since/);

  // Sign out, then in: the password leads to the code, and nothing else opens before it.
  await page.click('form[action="/dashboard/logout"] button');
  await page.waitForURL(/\/dashboard\/login\?done=logout$/);
  await page.fill('input[name="email"]', user.email);
  await page.fill('input[name="password"]', user.password);
  await page.click('button[type="submit"]');
  await page.waitForURL(/\/dashboard\/login\/two-factor$/);
  await shot(page, "17-two-factor-login");
  await page.goto(`${server.shop}/dashboard/`);
  await page.waitForURL(/\/dashboard\/login$/);
  await page.goto(`${server.shop}/dashboard/login/two-factor`);
  await page.fill('input[name="code"]', totp(secret, 0));
  await page.click('button[type="submit"]');
  await page.waitForURL(/\/dashboard\/$/);
  assert.match(await page.textContent("header"), new RegExp(user.email));
  await context.close();
});
