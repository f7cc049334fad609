/* The notice shown instead of the checkout to a page whose origin is not among the
 * merchant's allowed_origins: it tells that page why (superpayment:error with code
 * origin_not_allowed, through the loader) and holds nothing else. */
(function (d) {
  "use strict";
  var q = new URLSearchParams(location.search), page = q.get("p") || "";
  var lang = (q.get("l") || navigator.language || "").slice(0, 2).toLowerCase();
  var text = {
    fr: "Ce paiement ne peut pas être affiché sur ce site. Veuillez contacter la boutique.",
    de: "Diese Zahlung kann auf dieser Website nicht angezeigt werden. Bitte wenden Sie sich an den Shop."
  }[lang];
  var root = d.getElementById("sp");
  if (text) {
    d.documentElement.lang = lang;
    root.firstChild.textContent = text;
  }
  var message = page + " is not among the allowed_origins of this checkout's settings.";
  console.error("SuperPayment: " + message);
  function post(m) {
    m.sp = 1;
    // Only the page the loader named hears it: a page that misstates its origin hears nothing.
    try { parent.postMessage(m, page); } catch (e) { /* not an origin: nobody to tell */ }
  }
  post({ type: "height", height: Math.ceil(root.offsetHeight) + 2 });
  post({ type: "error", code: "origin_not_allowed", message: message });
})(document);
