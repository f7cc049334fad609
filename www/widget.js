/* SuperPayment loader: mounts the checkout iframe for the <script> tag that loads it.
 *
 *   <script src="https://pay.example/widget.js" data-api-key="pk_live_..."
 *           data-amount="99.00" data-currency="EUR" data-order-id="ORDER_123"></script>
 *
 * Optional: data-locale (en, fr, de), data-theme (light, dark), data-success-url,
 * data-signature, data-capture="manual" (only authorize: the shop's server captures later). The page learns the outcome through bubbling events on the script
 * element: superpayment:ready, superpayment:success {transaction_id, order_id, amount,
 * currency} and superpayment:error {code, message}, also kept in
 * window.SuperPayment.widgets[i].events (docs/widget.md). Voucher codes stay inside the iframe.
 * No eval, no inline code: works under a strict CSP. One global: window.SuperPayment. */
(function (w, d) {
  "use strict";
  var s = d.currentScript;
  if (!s || !s.src) return;
  var ns = w.SuperPayment || (w.SuperPayment = { widgets: [] });
  var me = { script: s, events: [] };
  ns.widgets.push(me);
  var origin = new URL(s.src).origin;
  var a = s.dataset;
  var key = a.apiKey || "", amount = a.amount || "", currency = a.currency || "EUR",
    order = a.orderId || "";

  // Until the page is parsed, events wait: a listener added by a later script hears them.
  var queue = d.readyState == "loading" && [];
  if (queue) d.addEventListener("DOMContentLoaded", function () {
    var q = queue;
    queue = 0;
    q.forEach(function (go) { go(); });
  });

  // `then` runs unless a listener cancels the event (only success is cancelable).
  function fire(type, detail, then) {
    var e = new CustomEvent("superpayment:" + type, { bubbles: true, cancelable: !!then, detail: detail });
    me.events.push(e);
    function go() { s.dispatchEvent(e) && then && then(); }
    queue ? queue.push(go) : go();
  }

  function fail(code, message) {
    console.error("SuperPayment: " + message);
    fire("error", { code: code, message: message });
  }

  var problem =
    /^sk_/.test(key) ? "data-api-key holds a secret key: never put it in a page, and roll it now." :
    !/^pk_(test|live)_[0-9a-z]{32}$/.test(key) ? "data-api-key must be a publishable key (pk_test_... or pk_live_...)." :
    !/^\d+(\.\d+)?$/.test(amount) || !/[1-9]/.test(amount) ? "data-amount must be a positive decimal such as 99.00." :
    !/^[A-Z]{3}$/.test(currency) ? "data-currency must be an ISO 4217 code such as EUR." :
    !/^[A-Za-z0-9_.:#\/-]{1,64}$/.test(order) ? "data-order-id must be 1 to 64 letters, digits or - _ . : # /." : "";
  if (problem) {
    // A wrong tag shows up where the form would be, not as a silent blank.
    var box = d.createElement("div");
    box.setAttribute("role", "alert");
    box.textContent = "SuperPayment: " + problem;
    box.style.cssText = "border:1px solid #b3261e;color:#b3261e;padding:12px;border-radius:8px;font:14px/1.4 system-ui,sans-serif";
    s.parentNode.insertBefore(box, s.nextSibling);
    return fail("invalid_tag", problem);
  }

  // The iframe posts only to this page's origin, which it learns here.
  var q = new URLSearchParams({ k: key, a: amount, c: currency, o: order, p: location.origin });
  if (a.locale) q.set("l", a.locale);
  if (a.theme) q.set("t", a.theme);
  if (a.signature) q.set("s", a.signature);
  if (a.capture == "manual") q.set("m", "1");

  var f = me.frame = d.createElement("iframe"), fs = f.style;
  f.src = origin + "/checkout.html?" + q;
  f.title = "Pay with a voucher (SuperPayment)";
  fs.border = "0"; fs.width = "100%"; fs.height = "64px"; fs.display = "block";
  s.parentNode.insertBefore(f, s.nextSibling);

  // A frame that never reports (unreachable server, framing refused by the browser) still
  // gets an answer; a refused origin is reported by the frame itself, at once.
  var timer = setTimeout(function () {
    fail("frame_unavailable", "The checkout did not load within 15 seconds.");
  }, 15e3);

  w.addEventListener("message", function (e) {
    var m = e.data;
    // Only this widget's own iframe, from its own origin, is listened to.
    if (e.source !== f.contentWindow || e.origin !== origin || !m || m.sp !== 1) return;
    if (m.type == "height") fs.height = Math.max(0, +m.height || 0) + "px";
    else if (m.type == "ready") clearTimeout(timer), fire("ready", {});
    else if (m.type == "error") clearTimeout(timer), fire("error", { code: String(m.code), message: String(m.message) });
    else if (m.type == "success") {
      var detail = { transaction_id: String(m.transaction_id), order_id: String(m.order_id),
        amount: String(m.amount), currency: String(m.currency) };
      fire("success", detail, function () {
        if (!a.successUrl) return;
        var u = new URL(a.successUrl, location.href);
        if (!/^https?:$/.test(u.protocol)) return;
        u.searchParams.set("transaction_id", detail.transaction_id);
        u.searchParams.set("order_id", detail.order_id);
        // A moment to see and hear "Paid" before the page changes.
        setTimeout(function () { location.assign(u.href); }, 800);
      });
    }
  });
})(window, document);
