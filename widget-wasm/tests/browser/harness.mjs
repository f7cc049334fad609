// Browser test harness: the real `superpayment` binary on a fresh PostgreSQL database and
// Redis key prefix, the demo shop as the merchant, and Debian's Chromium driven by Playwright.
import { execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, createWriteStream, readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const ADMIN_TOKEN = "admin_browser_token_0123456789abcdef";
const PEPPER = "browser-test-pepper-0123456789abcdef";
// With DATABASE_URL every key is required and each has its own purpose.
const SIGNING_KEY = "browser-test-signing-key-0123456789";
const ENCRYPTION_KEY = "YnJvd3Nlci10ZXN0LWVuY3J5cHRpb24ta2V5LTAxMjM="; // base64 of 32 bytes
const BIN = process.env.SUPERPAYMENT_BIN || path.join(ROOT, "target/debug/superpayment");
const PG_ADMIN = process.env.TEST_DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";
const REDIS_URL = process.env.TEST_REDIS_URL || "redis://127.0.0.1:6379";
export const SCREENSHOTS = path.join(ROOT, "target/browser-screenshots");

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function psql(sql) {
  execFileSync("psql", [PG_ADMIN, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], { stdio: "pipe" });
}

function dbUrl(name) {
  return PG_ADMIN.replace(/\/[^/]*$/, "/" + name);
}

/** Runs a CLI command of the binary against `env` and returns its stdout. */
function cli(args, env) {
  return execFileSync(BIN, args, { env: { PATH: process.env.PATH, ...env }, encoding: "utf8" });
}

/**
 * Starts a server on a fresh database with a demo merchant; returns its URLs, keys and a
 * `stop()`. The shop is opened as http://127.0.0.1:PORT/demo/ and the widget comes from
 * http://localhost:PORT: two origins, as shop and payment provider are in production.
 */
export async function startServer(extraEnv = {}) {
  const id = randomUUID().replace(/-/g, "").slice(0, 16);
  const db = `sp_browser_${id}`;
  psql(`CREATE DATABASE ${db}`);
  const env = {
    DATABASE_URL: dbUrl(db),
    VOUCHER_PEPPER: PEPPER,
    SIGNING_KEY,
    ENCRYPTION_KEY,
    ADMIN_TOKEN,
    DATA_DIR: path.join(ROOT, "target/browser-data", id),
  };
  mkdirSync(env.DATA_DIR, { recursive: true });
  cli(["migrate"], env);
  const created = cli(
    ["admin", "create-merchant", "--name", "Alpine Outfitters", "--commission-bps", "250", "--mode", "test"],
    env,
  );
  const field = (name) => created.match(new RegExp(`^${name}=(\\S+)$`, "m"))[1];
  const merchant = { id: field("merchant_id"), pk: field("publishable_key"), sk: field("secret_key") };
  const port = await freePort();
  const prefix = `sp:browser:${id}:`;
  const logPath = path.join(env.DATA_DIR, "server.log");
  const log = createWriteStream(logPath);
  const child = spawn(BIN, ["serve"], {
    env: {
      PATH: process.env.PATH,
      ...env,
      BIND: `127.0.0.1:${port}`,
      REDIS_URL,
      REDIS_PREFIX: prefix,
      LOG_FORMAT: "json",
      RUST_LOG: "info",
      WWW_DIR: path.join(ROOT, "www"),
      NO_MIGRATE: "true",
      DEMO_SHOP: "on",
      DEMO_PUBLISHABLE_KEY: merchant.pk,
      DEMO_SECRET_KEY: merchant.sk,
      ...extraEnv,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const shop = `http://127.0.0.1:${port}`;
  const provider = `http://localhost:${port}`;
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(`${shop}/readyz`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (i > 600 || child.exitCode !== null) {
      throw new Error(`server did not start:\n${readFileSync(logPath, "utf8")}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const server = {
    shop,
    provider,
    merchant,
    env,
    logPath,
    logs: () => readFileSync(logPath, "utf8"),
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
      try {
        psql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      } catch {
        // a leftover database is dropped by scripts/test's clean-up
      }
      try {
        execFileSync("sh", ["-c", `redis-cli -u ${REDIS_URL} --scan --pattern '${prefix}*' | xargs -r redis-cli -u ${REDIS_URL} del`], { stdio: "ignore" });
      } catch {
        // keys expire on their own
      }
    },
    /** POST to the API with a bearer key. */
    async api(method, urlPath, key, body) {
      const r = await fetch(`${shop}${urlPath}`, {
        method,
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: r.status, body: await r.json().catch(() => null) };
    },
    /** Issues test vouchers (EUR unless `extra.currency`), returns their codes. */
    async issue(amount, count = 1, extra = {}) {
      const r = await this.api("POST", "/api/admin/vouchers", ADMIN_TOKEN, {
        currency: "EUR",
        amount,
        count,
        mode: "test",
        ...extra,
      });
      if (r.status !== 201) throw new Error(`issuing vouchers: ${JSON.stringify(r.body)}`);
      return r.body.vouchers.map((v) => v.code);
    },
    /**
     * Creates a back-office user of the demo merchant with the CLI, the password given on
     * standard input; returns its login.
     */
    createUser(role, email = `${role}@alpine.example`) {
      const password = `browser-${role}-${randomUUID()}`;
      execFileSync(
        BIN,
        ["admin", "create-user", "--merchant", merchant.id, "--email", email, "--role", role, "--password-file", "-"],
        { env: { PATH: process.env.PATH, ...env }, input: `${password}\n`, encoding: "utf8" },
      );
      return { email, password };
    },
    /** Pays an order with fresh vouchers through the API, as the widget does; returns the transaction. */
    async pay(orderId, amount) {
      const [code] = await this.issue("200.00");
      const r = await fetch(`${shop}/api/process-payment/`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${merchant.pk}`,
          "content-type": "application/json",
          "idempotency-key": randomUUID(),
        },
        body: JSON.stringify({ order_id: orderId, amount, currency: "EUR", vouchers: [{ code }] }),
      });
      const body = await r.json();
      if (r.status !== 201) throw new Error(`paying: ${JSON.stringify(body)}`);
      return body;
    },
    /** Blocks a voucher. */
    async block(code) {
      const r = await this.api("POST", "/api/admin/vouchers/block", ADMIN_TOKEN, { code, blocked: true });
      if (r.status >= 300) throw new Error(`blocking: ${JSON.stringify(r.body)}`);
    },
    /** The demo merchant's checkout settings (secret key). */
    async settings(patch) {
      return patch === undefined
        ? this.api("GET", "/api/checkout-settings", merchant.sk)
        : this.api("PUT", "/api/checkout-settings", merchant.sk, patch);
    },
    /** Runs one SQL statement on this server's database; returns its output (unaligned). */
    sql(statement) {
      return execFileSync("psql", [dbUrl(db), "-v", "ON_ERROR_STOP=1", "-Atc", statement], { encoding: "utf8" }).trim();
    },
    /** Transactions of the demo merchant for an order, counted in the database. */
    /** The hold state of the order's transaction ("" for one captured at once). */
    holdStateOf(orderId) {
      const out = execFileSync("psql", [dbUrl(db), "-Atc", `SELECT COALESCE(hold_state, '') FROM transactions WHERE order_id = '${orderId.replace(/'/g, "")}'`], { encoding: "utf8" });
      return out.trim();
    },
    transactionsFor(orderId) {
      const out = execFileSync("psql", [dbUrl(db), "-Atc", `SELECT count(*) FROM transactions WHERE order_id = '${orderId.replace(/'/g, "")}'`], { encoding: "utf8" });
      return Number(out.trim());
    },
  };
  return server;
}

/**
 * A real SMTP server (aiosmtpd, from scripts/lib/test-deps.sh, the same script as the API
 * tests' email fixtures) on 127.0.0.1:`port`, keeping what it accepts in a Maildir. Returns
 * its `url` (SMTP_URL), `waitFor(address, n)` (the messages to `address`, decoded, once
 * there are `n`) and `close()`.
 */
export async function startSmtpSink(port) {
  const deps = execFileSync(path.join(ROOT, "scripts/lib/test-deps.sh"), ["--print"], { encoding: "utf8" });
  const python = deps.match(/^PYTHON=(.+)$/m)[1];
  const support = path.join(ROOT, "backend/tests/api/support");
  const maildir = path.join(ROOT, "target/browser-data", `smtp-${randomUUID()}`, "Maildir");
  mkdirSync(path.dirname(maildir), { recursive: true });
  const child = spawn(python, [path.join(support, "smtp_server.py"), "127.0.0.1", String(port), maildir], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      if (out.includes("ready")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`aiosmtpd on port ${port} exited (${code}); in use?`)));
  });
  const messagesTo = (address) =>
    execFileSync(python, [path.join(support, "read_maildir.py"), maildir], { encoding: "utf8" })
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l))
      .filter((m) => m.envelope_to === address);
  return {
    url: `smtp://127.0.0.1:${port}`,
    async waitFor(address, n = 1) {
      for (let i = 0; ; i++) {
        const got = messagesTo(address);
        if (got.length >= n) return got;
        if (i > 300) throw new Error(`${address} received ${got.length} of ${n} emails within 30 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async close() {
      child.stdin.end();
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
    },
  };
}

/** Debian's Chromium, headless, without its background calls to the outside world. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * A page that records, from the merchant page's side, everything a shop script could see:
 * SuperPayment events' details and every message posted to the window.
 */
export async function recordingPage(context) {
  const page = await context.newPage();
  const seen = { events: [], messages: [], console: [] };
  await page.exposeBinding("__spRecord", (_source, kind, data) => {
    seen[kind].push(data);
  });
  await page.addInitScript(() => {
    for (const type of ["ready", "success", "error"]) {
      document.addEventListener("superpayment:" + type, (e) => {
        window.__spRecord("events", { type, detail: JSON.stringify(e.detail) });
      }, true);
    }
    window.addEventListener("message", (e) => {
      let data;
      try {
        data = JSON.stringify(e.data);
      } catch {
        data = String(e.data);
      }
      window.__spRecord("messages", { origin: e.origin, data });
    }, true);
  });
  page.on("console", (m) => seen.console.push(`${m.type()}: ${m.text()}`));
  return { page, seen };
}

/** Puts a product in the cart and opens the demo checkout; returns the order id. */
export async function openCheckout(page, server, { lang = "", theme = "", sku = "trail-shoes" } = {}) {
  await page.goto(`${server.shop}/demo/`);
  await page.locator(`form:has(input[value="${sku}"]) button`).click();
  await page.waitForURL(/\/demo\/cart$/);
  if (lang) await page.selectOption('select[name="lang"]', lang);
  if (theme) await page.selectOption('select[name="theme"]', theme);
  await page.click("#to-checkout");
  await page.waitForURL(/\/demo\/checkout\//);
  return (await page.textContent("#order-id")).trim();
}

/** The checkout iframe of the page (the n-th one). */
export async function checkoutFrame(page, n = 0) {
  const handle = await page.locator("iframe").nth(n).elementHandle();
  const frame = await handle.contentFrame();
  await frame.waitForSelector("#view");
  return frame;
}

/** Saves a screenshot under target/browser-screenshots/. */
export async function shot(pageOrLocator, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await pageOrLocator.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
}

/** A code with its check symbol changed: the widget must catch it without a request. */
export function withTypo(code) {
  const chars = code.split("");
  const last = chars.length - 1;
  chars[last] = chars[last] === "0" ? "1" : "0";
  return chars.join("");
}

/**
 * A merchant's own website on another loopback port: pages are set per path. Being a real
 * server on this machine (rather than a faked response) keeps the browser's view of the
 * network realistic: shop and payment provider are two origins in the same address space.
 */
export async function startMerchantSite() {
  const { createServer } = await import("node:http");
  const pages = new Map();
  const srv = createServer((req, res) => {
    const page = pages.get(new URL(req.url, "http://x").pathname);
    if (!page) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", ...page.headers });
    res.end(page.html);
  });
  await new Promise((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${srv.address().port}`;
  return {
    origin,
    set(pathname, html, headers = {}) {
      pages.set(pathname, { html, headers });
      return `${origin}${pathname}`;
    },
    close: () => new Promise((resolve) => srv.close(resolve)),
  };
}
