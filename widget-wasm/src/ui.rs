//! Rendering and events: the DOM of the iframe, driven by [`crate::flow::Checkout`].
//!
//! One delegated listener per event type on the root element. Screens are rebuilt on phase
//! changes; while the shopper types only the field's message and the controls below are
//! patched, so the focused input is never replaced under the cursor.
use std::{cell::RefCell, rc::Rc};

use superpayment_core::{format_partial_code, Money};
use wasm_bindgen::{prelude::Closure, JsCast, JsValue};
use wasm_bindgen_futures::spawn_local;
use web_sys::{Document, Element, Event, HtmlElement, HtmlInputElement};

use crate::{
    api::{self, PayReply},
    bridge,
    config::{Config, Theme},
    flow::{Attempt, Check, Checkout, Failure, PayAnswer, Phase, Saved, Source},
    i18n::{decline_text, fill, t, Text},
    storage,
};

/// The page's explanation when the API refuses the publishable key.
const KEY_REFUSED: &str = "The publishable key was refused: it is unknown or revoked.";

/// How often a payment still in flight under the same key is asked about again.
const IN_FLIGHT_RETRIES: u32 = 10;

/// The running widget.
pub struct App {
    cfg: Config,
    co: Checkout,
    doc: Document,
    root: Element,
    status: Element,
    storage_ok: bool,
    ready_sent: bool,
}

type Shared = Rc<RefCell<App>>;

thread_local! {
    static APP: RefCell<Option<Shared>> = const { RefCell::new(None) };
}

fn app() -> Option<Shared> {
    APP.with(|a| a.borrow().clone())
}

fn el(doc: &Document, tag: &str, attrs: &[(&str, &str)], text: Option<&str>) -> Element {
    let e = doc.create_element(tag).expect("valid tag name");
    for (k, v) in attrs {
        let _ = e.set_attribute(k, v);
    }
    if let Some(text) = text {
        e.set_text_content(Some(text));
    }
    e
}

fn append(parent: &Element, child: &Element) {
    let _ = parent.append_child(child);
}

fn later(ms: i32, f: impl FnOnce() + 'static) {
    if let Some(w) = web_sys::window() {
        let cb = Closure::once_into_js(f);
        let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(cb.unchecked_ref(), ms);
    }
}

async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        later(ms, move || {
            let _ = resolve.call0(&JsValue::NULL);
        })
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Decimal digits of `n`, without pulling the formatting machinery into the Wasm.
fn number(mut n: usize) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(b'0' + (n % 10) as u8);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// An element id such as `code-2`.
fn id(prefix: &str, i: usize) -> String {
    let mut s = String::from(prefix);
    s.push_str(&number(i));
    s
}

fn new_key() -> String {
    web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.random_uuid())
        // Browsers without crypto.randomUUID: the attempt goes without a key, which the
        // server's per-order lock and unique order id still protect.
        .unwrap_or_default()
}

impl App {
    fn text(&self, text: Text) -> &'static str {
        t(self.cfg.locale, text)
    }

    fn money(&self, m: Money) -> String {
        m.format_locale(self.cfg.locale)
    }

    fn amount_text(&self, text: Text) -> String {
        fill(self.text(text), &[("amount", &self.money(self.cfg.amount))])
    }

    /// The success headline: a manual-capture tag only reserved the amount.
    fn done_text(&self) -> String {
        self.amount_text(if self.cfg.manual_capture {
            Text::Authorized
        } else {
            Text::Paid
        })
    }

    fn announce(&self, message: &str) {
        self.status.set_text_content(Some(message));
    }

    /// What the live region says once a payment has its answer, whatever the answer: it
    /// never keeps saying "Paying…".
    fn outcome(&self) -> String {
        match &self.co.phase {
            Phase::Done(r) if r.already_paid => self.text(Text::AlreadyPaid).to_owned(),
            Phase::Done(_) => self.done_text(),
            Phase::Failed(f) => self.failure_text(f),
            Phase::Fatal(text) => self.text(*text).to_owned(),
            Phase::Entering => match self.co.notice {
                Some(notice) => self.text(notice).to_owned(),
                None => self
                    .co
                    .entries
                    .iter()
                    .position(|e| matches!(e.check, Check::Refused(_)))
                    .map(|i| self.entry_message(i).0)
                    .or_else(|| {
                        let i = self.co.entries.iter().position(|e| e.pin.is_some())?;
                        Some(self.pin_message(i).0.to_owned())
                    })
                    .unwrap_or_default(),
            },
            Phase::Ready | Phase::Paying => String::new(),
        }
    }

    fn failure_text(&self, f: &Failure) -> String {
        match f {
            Failure::Offline => self.text(Text::Offline).into(),
            Failure::Network => self.text(Text::NetworkError).into(),
            Failure::Server { reference } => fill(
                self.text(Text::ServerError),
                &[(
                    "reference",
                    if reference.is_empty() { "-" } else { reference },
                )],
            ),
            Failure::RateLimited { seconds } => fill(
                self.text(Text::RateLimited),
                &[("seconds", &number(*seconds as usize))],
            ),
        }
    }

    /// The message under entry `i` and whether it is an error.
    fn entry_message(&self, i: usize) -> (String, &'static str) {
        let Some(e) = self.co.entries.get(i) else {
            return (String::new(), "msg");
        };
        match &e.check {
            Check::Empty | Check::Incomplete => (self.text(Text::CodeHint).into(), "msg"),
            Check::BadSymbol(c) => (
                fill(
                    self.text(Text::CodeBadSymbol),
                    &[("symbol", &c.to_string())],
                ),
                "msg err",
            ),
            Check::Typo => (self.text(Text::CodeTypo).into(), "msg err"),
            Check::Duplicate => (self.text(Text::CodeDuplicate).into(), "msg err"),
            Check::Checking => (self.text(Text::Checking).into(), "msg"),
            Check::Valid(b) => (
                fill(self.text(Text::Balance), &[("balance", &self.money(*b))]),
                "msg ok",
            ),
            Check::Refused(code) if code == "insufficient_balance" => {
                (self.text(Text::DeclinedEmpty).into(), "msg err")
            }
            Check::Refused(code) => (self.text(decline_text(code)).into(), "msg err"),
            Check::Failed(f) => (self.failure_text(f), "msg err"),
        }
    }

    /// The message under entry `i`'s PIN field.
    fn pin_message(&self, i: usize) -> (&'static str, &'static str) {
        match self.co.entries.get(i).and_then(|e| e.pin.as_ref()) {
            Some(p) if p.wrong => (self.text(Text::PinInvalid), "msg err"),
            _ => (self.text(Text::PinHint), "msg"),
        }
    }

    fn post_height(&self) {
        if let Some(h) = self.root.dyn_ref::<HtmlElement>() {
            bridge::height(&self.cfg.parent_origin, f64::from(h.offset_height()) + 2.0);
        }
    }

    /// Rebuilds the screen. Focus goes to `focus` (an element id) or, when that is absent,
    /// stays on the element with the same id as before.
    fn render(&mut self, focus: Option<&str>) {
        let kept = self
            .doc
            .active_element()
            .map(|e| e.id())
            .filter(|id| !id.is_empty());
        let view = el(&self.doc, "div", &[("id", "view")], None);
        match self.co.phase.clone() {
            Phase::Ready => self.ready_view(&view),
            Phase::Entering | Phase::Paying => self.form_view(&view),
            Phase::Done(receipt) => {
                let done = el(
                    &self.doc,
                    "div",
                    &[("id", "done"), ("class", "done"), ("tabindex", "-1")],
                    None,
                );
                let headline = if receipt.already_paid {
                    self.text(Text::AlreadyPaid).to_owned()
                } else {
                    self.done_text()
                };
                append(
                    &done,
                    &el(&self.doc, "p", &[("class", "big")], Some(&headline)),
                );
                for (last4, balance) in &receipt.remaining {
                    let line = fill(
                        self.text(Text::Remaining),
                        &[("last4", last4), ("balance", &self.money(*balance))],
                    );
                    append(&done, &el(&self.doc, "p", &[("class", "msg")], Some(&line)));
                }
                append(&view, &done);
            }
            Phase::Failed(f) => {
                let text = self.failure_text(&f);
                append(
                    &view,
                    &el(
                        &self.doc,
                        "p",
                        &[
                            ("id", "fail"),
                            ("class", "alert"),
                            ("role", "alert"),
                            ("tabindex", "-1"),
                        ],
                        Some(&text),
                    ),
                );
                append(
                    &view,
                    &el(
                        &self.doc,
                        "button",
                        &[
                            ("type", "button"),
                            ("id", "retry"),
                            ("class", "btn primary"),
                            ("data-action", "retry"),
                        ],
                        Some(self.text(Text::Retry)),
                    ),
                );
            }
            Phase::Fatal(text) => {
                append(
                    &view,
                    &el(
                        &self.doc,
                        "p",
                        &[
                            ("id", "fatal"),
                            ("class", "alert"),
                            ("role", "alert"),
                            ("tabindex", "-1"),
                        ],
                        Some(self.text(text)),
                    ),
                );
            }
        }
        if let Some(old) = self.doc.get_element_by_id("view") {
            let _ = self.root.replace_child(&view, &old);
        } else {
            let _ = self.root.insert_before(&view, Some(&self.status));
        }
        let target = focus.map(str::to_owned).or(kept);
        if let Some(id) = target {
            if let Some(e) = self
                .doc
                .get_element_by_id(&id)
                .and_then(|e| e.dyn_into::<HtmlElement>().ok())
            {
                let _ = e.focus();
            }
        }
        self.post_height();
        if !self.ready_sent && self.co.phase == Phase::Ready {
            self.ready_sent = true;
            bridge::ready(&self.cfg.parent_origin);
        }
    }

    fn ready_view(&self, view: &Element) {
        let doc = &self.doc;
        if let Some(notice) = self.co.notice {
            append(
                view,
                &el(doc, "p", &[("class", "msg")], Some(self.text(notice))),
            );
        }
        match self.co.one_click() {
            Some(chosen) => {
                let label = match chosen.as_slice() {
                    [one] => fill(
                        self.text(Text::PaySaved),
                        &[
                            ("amount", &self.money(self.cfg.amount)),
                            ("last4", &one.last4),
                        ],
                    ),
                    many => fill(
                        self.text(Text::PaySavedMany),
                        &[
                            ("amount", &self.money(self.cfg.amount)),
                            ("count", &number(many.len())),
                        ],
                    ),
                };
                append(
                    view,
                    &el(
                        doc,
                        "button",
                        &[
                            ("type", "button"),
                            ("id", "pay-saved"),
                            ("class", "btn primary"),
                            ("data-action", "pay-saved"),
                            ("aria-describedby", "saved-balance"),
                        ],
                        Some(&label),
                    ),
                );
                let balances: Vec<String> = chosen
                    .iter()
                    .map(|s| {
                        fill(
                            self.text(Text::SavedBalance),
                            &[("balance", &self.money(s.balance))],
                        )
                    })
                    .collect();
                append(
                    view,
                    &el(
                        doc,
                        "p",
                        &[("id", "saved-balance"), ("class", "msg")],
                        Some(&balances.join(" · ")),
                    ),
                );
                let row = el(doc, "div", &[("class", "row")], None);
                append(
                    &row,
                    &el(
                        doc,
                        "button",
                        &[
                            ("type", "button"),
                            ("id", "other"),
                            ("class", "link"),
                            ("data-action", "other"),
                        ],
                        Some(self.text(Text::UseAnother)),
                    ),
                );
                append(
                    &row,
                    &el(
                        doc,
                        "button",
                        &[
                            ("type", "button"),
                            ("id", "forget"),
                            ("class", "link"),
                            ("data-action", "forget"),
                        ],
                        Some(self.text(Text::Forget)),
                    ),
                );
                append(view, &row);
            }
            None => {
                append(
                    view,
                    &el(
                        doc,
                        "button",
                        &[
                            ("type", "button"),
                            ("id", "start"),
                            ("class", "btn primary"),
                            ("data-action", "start"),
                        ],
                        Some(&self.amount_text(Text::PayWithVoucher)),
                    ),
                );
            }
        }
    }

    fn form_view(&self, view: &Element) {
        let doc = &self.doc;
        let paying = self.co.phase == Phase::Paying;
        let form = el(
            doc,
            "form",
            &[
                ("id", "form"),
                ("novalidate", ""),
                ("aria-label", self.text(Text::FormLabel)),
            ],
            None,
        );
        for (i, e) in self.co.entries.iter().enumerate() {
            let n = number(i + 1);
            let field = el(doc, "div", &[("class", "field")], None);
            let remove_label = fill(self.text(Text::RemoveVoucher), &[("n", &n)]);
            let remove = el(
                doc,
                "button",
                &[
                    ("type", "button"),
                    ("class", "link remove"),
                    ("data-action", "remove"),
                    ("data-index", &number(i)),
                    ("aria-label", &remove_label),
                    ("id", &id("remove-", i)),
                ],
                Some("×"),
            );
            if paying {
                let _ = remove.set_attribute("disabled", "");
            }
            match &e.source {
                Source::Saved { last4, .. } => {
                    let balance = match e.check {
                        Check::Valid(b) => self.money(b),
                        _ => String::new(),
                    };
                    let row = el(doc, "div", &[("class", "input-row")], None);
                    let line = fill(
                        self.text(Text::SavedEntry),
                        &[("last4", last4), ("balance", &balance)],
                    );
                    append(
                        &row,
                        &el(
                            doc,
                            "p",
                            &[("class", "saved"), ("id", &id("code-", i))],
                            Some(&line),
                        ),
                    );
                    append(&row, &remove);
                    append(&field, &row);
                    if let Some(pin) = &e.pin {
                        self.pin_field(&field, i, &pin.text, paying);
                    }
                    if let Check::Refused(_) = e.check {
                        let (msg, class) = self.entry_message(i);
                        append(
                            &field,
                            &el(
                                doc,
                                "p",
                                &[("id", &id("msg-", i)), ("class", class)],
                                Some(&msg),
                            ),
                        );
                    }
                }
                Source::Typed { text } => {
                    let code_id = id("code-", i);
                    let label = if i == 0 {
                        self.text(Text::CodeLabel).to_owned()
                    } else {
                        fill(self.text(Text::CodeLabelN), &[("n", &n)])
                    };
                    append(
                        &field,
                        &el(doc, "label", &[("for", &code_id)], Some(&label)),
                    );
                    let row = el(doc, "div", &[("class", "input-row")], None);
                    let msg_id = id("msg-", i);
                    let input = el(
                        doc,
                        "input",
                        &[
                            ("id", &code_id),
                            ("data-index", &number(i)),
                            ("class", "code"),
                            ("type", "text"),
                            ("autocomplete", "off"),
                            ("autocapitalize", "characters"),
                            ("spellcheck", "false"),
                            ("inputmode", "text"),
                            ("placeholder", "XXXX-XXXX-XXXX-XXXX"),
                            ("aria-describedby", &msg_id),
                        ],
                        None,
                    );
                    if let Some(input) = input.dyn_ref::<HtmlInputElement>() {
                        input.set_value(text);
                        input.set_read_only(paying);
                    }
                    append(&row, &input);
                    if self.co.entries.len() > 1 {
                        append(&row, &remove);
                    }
                    append(&field, &row);
                    let msg = el(doc, "p", &[("id", &msg_id)], None);
                    append(&field, &msg);
                    self.fill_message(i, &input, &msg);
                    if let Some(pin) = &e.pin {
                        self.pin_field(&field, i, &pin.text, paying);
                    }
                }
            }
            append(&form, &field);
        }
        let controls = el(doc, "div", &[("id", "controls")], None);
        self.fill_controls(&controls);
        append(&form, &controls);
        append(view, &form);
    }

    /// The PIN field of entry `i`: masked, digits only, never autofilled or remembered.
    fn pin_field(&self, field: &Element, i: usize, text: &str, paying: bool) {
        let doc = &self.doc;
        let pin_id = id("pin-", i);
        let msg_id = id("pinmsg-", i);
        append(
            field,
            &el(
                doc,
                "label",
                &[("for", &pin_id)],
                Some(self.text(Text::PinLabel)),
            ),
        );
        let input = el(
            doc,
            "input",
            &[
                ("id", &pin_id),
                ("data-index", &number(i)),
                ("class", "pin"),
                ("type", "password"),
                ("inputmode", "numeric"),
                ("autocomplete", "off"),
                ("maxlength", "6"),
                ("aria-describedby", &msg_id),
            ],
            None,
        );
        if let Some(input) = input.dyn_ref::<HtmlInputElement>() {
            input.set_value(text);
            input.set_read_only(paying);
        }
        append(field, &input);
        let msg = el(doc, "p", &[("id", &msg_id)], None);
        append(field, &msg);
        self.fill_pin_message(i, &input, &msg);
    }

    fn fill_pin_message(&self, i: usize, input: &Element, msg: &Element) {
        let (text, class) = self.pin_message(i);
        msg.set_class_name(class);
        msg.set_text_content(Some(text));
        let invalid = if class == "msg err" { "true" } else { "false" };
        let _ = input.set_attribute("aria-invalid", invalid);
    }

    fn fill_message(&self, i: usize, input: &Element, msg: &Element) {
        let (text, class) = self.entry_message(i);
        msg.set_class_name(class);
        msg.set_text_content(Some(&text));
        let invalid = if class == "msg err" { "true" } else { "false" };
        let _ = input.set_attribute("aria-invalid", invalid);
        if let Some(Check::Failed(_)) = self.co.entries.get(i).map(|e| &e.check) {
            let again = el(
                &self.doc,
                "button",
                &[
                    ("type", "button"),
                    ("class", "link"),
                    ("data-action", "recheck"),
                    ("data-index", &number(i)),
                    ("id", &id("recheck-", i)),
                ],
                Some(self.text(Text::CheckAgain)),
            );
            append(msg, &again);
        }
    }

    fn fill_controls(&self, controls: &Element) {
        let doc = &self.doc;
        let plan = self.co.plan();
        let paying = self.co.phase == Phase::Paying;
        if let Some(notice) = self.co.notice {
            append(
                controls,
                &el(
                    doc,
                    "p",
                    &[("class", "msg err"), ("role", "alert")],
                    Some(self.text(notice)),
                ),
            );
        }
        if !plan.covered.is_zero() && !plan.missing.is_zero() {
            let line = fill(
                self.text(Text::StillToPay),
                &[("amount", &self.money(plan.missing))],
            );
            append(
                controls,
                &el(
                    doc,
                    "p",
                    &[("id", "summary"), ("class", "msg")],
                    Some(&line),
                ),
            );
        }
        if plan.can_add {
            append(
                controls,
                &el(
                    doc,
                    "button",
                    &[
                        ("type", "button"),
                        ("id", "add"),
                        ("class", "btn secondary"),
                        ("data-action", "add"),
                    ],
                    Some(self.text(Text::AddVoucher)),
                ),
            );
        }
        let typed = self
            .co
            .entries
            .iter()
            .any(|e| matches!(e.source, Source::Typed { .. }));
        if self.storage_ok && typed {
            let label = el(doc, "label", &[("class", "check")], None);
            let mut attrs = vec![
                ("type", "checkbox"),
                ("id", "remember"),
                ("data-action", "remember"),
            ];
            if paying {
                attrs.push(("disabled", ""));
            }
            let boxed = el(doc, "input", &attrs, None);
            if let Some(b) = boxed.dyn_ref::<HtmlInputElement>() {
                b.set_checked(self.co.remember);
            }
            append(&label, &boxed);
            append(
                &label,
                &el(doc, "span", &[], Some(self.text(Text::Remember))),
            );
            append(controls, &label);
        }
        let label = if paying {
            self.text(Text::Paying).to_owned()
        } else {
            self.amount_text(Text::Pay)
        };
        let mut attrs = vec![("type", "submit"), ("id", "pay"), ("class", "btn primary")];
        if !plan.can_pay {
            attrs.push(("disabled", ""));
        }
        if paying {
            attrs.push(("aria-busy", "true"));
        }
        append(controls, &el(doc, "button", &attrs, Some(&label)));
        append(
            controls,
            &el(
                doc,
                "p",
                &[("class", "small")],
                Some(self.text(Text::SecuredBy)),
            ),
        );
    }

    /// Updates field `i`'s message and the controls without touching the inputs.
    fn patch(&mut self, i: usize) {
        if let (Some(input), Some(msg)) = (
            self.doc.get_element_by_id(&id("code-", i)),
            self.doc.get_element_by_id(&id("msg-", i)),
        ) {
            self.fill_message(i, &input, &msg);
            let (text, _) = self.entry_message(i);
            self.announce(&text);
        }
        self.patch_pin(i);
    }

    /// Updates field `i`'s PIN message and the controls; quiet, so a screen reader is not
    /// told the balance again at every digit.
    fn patch_pin(&mut self, i: usize) {
        if let (Some(input), Some(msg)) = (
            self.doc.get_element_by_id(&id("pin-", i)),
            self.doc.get_element_by_id(&id("pinmsg-", i)),
        ) {
            self.fill_pin_message(i, &input, &msg);
        }
        if let Some(old) = self.doc.get_element_by_id("controls") {
            let focused = self
                .doc
                .active_element()
                .map(|e| e.id())
                .unwrap_or_default();
            let controls = el(&self.doc, "div", &[("id", "controls")], None);
            self.fill_controls(&controls);
            if let Some(parent) = old.parent_node() {
                let _ = parent.replace_child(&controls, &old);
            }
            if !focused.is_empty()
                && self
                    .doc
                    .active_element()
                    .map(|e| e.id())
                    .unwrap_or_default()
                    != focused
            {
                if let Some(e) = self
                    .doc
                    .get_element_by_id(&focused)
                    .and_then(|e| e.dyn_into::<HtmlElement>().ok())
                {
                    let _ = e.focus();
                }
            }
        }
        self.post_height();
    }

    fn save_saved(&self) {
        storage::save(&self.cfg.key, &self.co.saved);
    }
}

/// Starts the widget in `root` (the iframe's `<main>`).
pub fn mount(cfg: Config, doc: Document, root: Element) {
    let html = doc.document_element();
    if let Some(html) = &html {
        let _ = html.set_attribute(
            "lang",
            match cfg.locale {
                superpayment_core::Locale::En => "en",
                superpayment_core::Locale::Fr => "fr",
                superpayment_core::Locale::De => "de",
            },
        );
        match cfg.theme {
            Theme::Dark => html.set_class_name("dark"),
            Theme::Light => html.set_class_name("light"),
            Theme::Auto => {}
        }
    }
    root.set_text_content(None);
    let _ = root.remove_attribute("aria-busy");
    let status = el(
        &doc,
        "p",
        &[
            ("id", "status"),
            ("class", "sr-only"),
            ("role", "status"),
            ("aria-live", "polite"),
        ],
        None,
    );
    append(&root, &status);
    let storage_ok = storage::available();
    let saved = if storage_ok {
        storage::load(&cfg.key)
    } else {
        Vec::new()
    };
    let co = Checkout::new(cfg.amount, saved);
    let shared = Rc::new(RefCell::new(App {
        cfg,
        co,
        doc,
        root: root.clone(),
        status,
        storage_ok,
        ready_sent: false,
    }));
    APP.with(|a| *a.borrow_mut() = Some(shared.clone()));
    listen(&root, "click", on_click);
    listen(&root, "input", on_input);
    listen(&root, "submit", on_submit);
    listen(&root, "change", on_change);
    shared.borrow_mut().render(None);
    refresh_saved(&shared);
}

/// Shows a configuration problem: the shopper gets a neutral sentence, the page the details.
pub fn fatal(doc: &Document, root: &Element, locale: superpayment_core::Locale, message: &str) {
    root.set_text_content(None);
    let _ = root.remove_attribute("aria-busy");
    append(
        root,
        &el(
            doc,
            "p",
            &[("class", "alert"), ("role", "alert")],
            Some(t(locale, Text::NotSetUp)),
        ),
    );
    web_sys::console::error_1(&JsValue::from_str(&["SuperPayment: ", message].concat()));
}

fn listen(root: &Element, kind: &str, handler: fn(Event)) {
    let cb = Closure::<dyn FnMut(Event)>::new(handler);
    let _ = root.add_event_listener_with_callback(kind, cb.as_ref().unchecked_ref());
    // The listeners live as long as the page.
    cb.forget();
}

fn target(e: &Event) -> Option<Element> {
    e.target()?.dyn_into::<Element>().ok()
}

fn index_of(e: &Element) -> Option<usize> {
    e.get_attribute("data-index")?.parse().ok()
}

fn on_click(e: Event) {
    let Some(button) = target(&e).and_then(|t| t.closest("[data-action]").ok().flatten()) else {
        return;
    };
    let Some(shared) = app() else { return };
    let action = button.get_attribute("data-action").unwrap_or_default();
    match action.as_str() {
        "start" => {
            let mut a = shared.borrow_mut();
            a.co.start_entering(true);
            let first =
                a.co.entries
                    .iter()
                    .position(|e| matches!(e.source, Source::Typed { .. }))
                    .unwrap_or(0);
            a.render(Some(&id("code-", first)));
        }
        "other" => {
            let mut a = shared.borrow_mut();
            a.co.start_entering(false);
            a.render(Some("code-0"));
        }
        "pay-saved" => {
            let attempt = shared.borrow_mut().co.pay_saved(new_key);
            let mut a = shared.borrow_mut();
            match attempt {
                Some(attempt) => {
                    a.render(None);
                    drop(a);
                    pay(shared.clone(), attempt);
                }
                None => {
                    // A remembered voucher that needs its PIN: ask for it before paying.
                    let pin = a.co.entries.iter().position(|e| e.pin.is_some());
                    a.render(pin.map(|i| id("pin-", i)).as_deref());
                }
            }
        }
        "forget" => forget(shared.clone()),
        "add" => {
            let mut a = shared.borrow_mut();
            if let Some(i) = a.co.add_entry() {
                a.render(Some(&id("code-", i)));
            }
        }
        "remove" => {
            let mut a = shared.borrow_mut();
            if let Some(i) = index_of(&button) {
                a.co.remove_entry(i);
                let focus = id("code-", i.saturating_sub(1).min(a.co.entries.len() - 1));
                a.render(Some(&focus));
            }
        }
        "recheck" => {
            if let Some(i) = index_of(&button) {
                let job = shared.borrow_mut().co.recheck(i);
                shared.borrow_mut().patch(i);
                if let Some((code, generation)) = job {
                    check(shared.clone(), i, code.as_str().to_owned(), generation);
                }
            }
        }
        "retry" => {
            let attempt = {
                let mut a = shared.borrow_mut();
                a.co.back_to_form();
                a.co.begin_payment(new_key)
            };
            match attempt {
                Some(attempt) => {
                    shared.borrow_mut().render(None);
                    pay(shared.clone(), attempt);
                }
                None => shared.borrow_mut().render(Some("code-0")),
            }
        }
        _ => {}
    }
}

fn on_input(e: Event) {
    let Some(input) = target(&e).and_then(|t| t.dyn_into::<HtmlInputElement>().ok()) else {
        return;
    };
    let Some(i) = index_of(&input) else { return };
    let Some(shared) = app() else { return };
    let raw = input.value();
    if input.class_name() == "pin" {
        let text = shared.borrow_mut().co.pin_typed(i, &raw);
        if text != raw {
            input.set_value(&text);
        }
        shared.borrow_mut().patch_pin(i);
        return;
    }
    // Keep the caret after the same number of code symbols once the text is regrouped.
    let caret_utf16 = input.selection_start().ok().flatten().unwrap_or(u32::MAX) as usize;
    let mut utf16 = 0;
    let before: String = raw
        .chars()
        .take_while(|c| {
            utf16 += c.len_utf16();
            utf16 <= caret_utf16
        })
        .collect();
    let symbols_before = format_partial_code(&before)
        .bytes()
        .filter(|b| *b != b'-')
        .count();
    let typed = shared.borrow_mut().co.typed(i, &raw);
    if typed.text != raw {
        input.set_value(&typed.text);
        let mut seen = 0;
        let mut pos = 0;
        for c in typed.text.chars() {
            if seen == symbols_before {
                break;
            }
            pos += 1;
            if c != '-' {
                seen += 1;
            }
        }
        let _ = input.set_selection_range(pos, pos);
    }
    shared.borrow_mut().patch(i);
    if let Some((code, generation)) = typed.check {
        check(shared, i, code.as_str().to_owned(), generation);
    }
}

fn on_change(e: Event) {
    let Some(input) = target(&e).and_then(|t| t.dyn_into::<HtmlInputElement>().ok()) else {
        return;
    };
    if input.id() == "remember" {
        if let Some(shared) = app() {
            shared.borrow_mut().co.remember = input.checked();
        }
    }
}

fn on_submit(e: Event) {
    e.prevent_default();
    let Some(shared) = app() else { return };
    if !shared.borrow().co.plan().can_pay {
        return;
    }
    let attempt = shared.borrow_mut().co.begin_payment(new_key);
    if let Some(attempt) = attempt {
        shared.borrow_mut().render(None);
        pay(shared, attempt);
    }
}

fn check(shared: Shared, i: usize, code: String, generation: u32) {
    let key = shared.borrow().cfg.key.clone();
    spawn_local(async move {
        let Some(answer) = api::check(&key, &code).await else {
            key_refused(&shared);
            return;
        };
        let retry = match &answer {
            Err(Failure::RateLimited { seconds }) => Some(*seconds),
            _ => None,
        };
        let mut a = shared.borrow_mut();
        a.co.checked(i, generation, answer);
        let pin_id = id("pin-", i);
        let pin_asked = a.co.entries.get(i).is_some_and(|e| e.pin.is_some());
        if pin_asked && a.doc.get_element_by_id(&pin_id).is_none() {
            // The voucher needs its PIN: show the field and take the shopper there.
            a.render(Some(&pin_id));
            let (text, _) = a.pin_message(i);
            a.announce(text);
        } else {
            a.patch(i);
        }
        drop(a);
        if let Some(seconds) = retry {
            let shared = shared.clone();
            later(
                seconds.saturating_mul(1000).min(120_000) as i32,
                move || {
                    let job = shared.borrow_mut().co.recheck(i);
                    if let Some((code, generation)) = job {
                        shared.borrow_mut().patch(i);
                        check(shared, i, code.as_str().to_owned(), generation);
                    }
                },
            );
        }
    });
}

/// Sends the attempt (every way of paying ends here) and applies its answer.
fn pay(shared: Shared, attempt: Attempt) {
    let cfg = {
        let a = shared.borrow();
        a.announce(a.text(Text::Paying));
        a.cfg.clone()
    };
    spawn_local(async move {
        let mut tries = 0;
        let (answer, remembered) = loop {
            match api::pay(&cfg, &attempt).await {
                PayReply::Answer(answer, remembered) => break (answer, remembered),
                PayReply::InFlight if tries < IN_FLIGHT_RETRIES => {
                    tries += 1;
                    sleep(500).await;
                }
                PayReply::InFlight => {
                    break (
                        PayAnswer::Failed(Failure::Server {
                            reference: String::new(),
                        }),
                        Vec::new(),
                    )
                }
            }
        };
        finish(&shared, &cfg, &attempt, answer, remembered);
    });
}

fn finish(
    shared: &Shared,
    cfg: &Config,
    attempt: &Attempt,
    answer: PayAnswer,
    remembered: Vec<Saved>,
) {
    let mut a = shared.borrow_mut();
    let declined_token = match &answer {
        PayAnswer::Declined { code, param } if code == "voucher_token_invalid" => param.clone(),
        _ => None,
    };
    let error = match &answer {
        PayAnswer::Declined { code, .. } => Some((code.clone(), a.text(decline_text(code)))),
        PayAnswer::Invalid { code, .. } if code.starts_with("signature") => Some((
            code.clone(),
            "The amount's signature is missing or does not match.",
        )),
        PayAnswer::Invalid { code, .. } => {
            Some((code.clone(), "The payment request was refused as invalid."))
        }
        PayAnswer::NotAllowed => Some(("invalid_api_key".to_owned(), KEY_REFUSED)),
        _ => None,
    };
    a.co.paid(answer);
    // Vouchers remembered now, and the balances left on the ones just used.
    if let Phase::Done(receipt) = &a.co.phase {
        let remaining = receipt.remaining.clone();
        let used: Vec<String> = attempt
            .vouchers
            .iter()
            .filter_map(|v| match v {
                crate::flow::VoucherArg::Token(t, _) => Some(t.clone()),
                crate::flow::VoucherArg::Code(..) => None,
            })
            .collect();
        for s in a.co.saved.iter_mut().filter(|s| used.contains(&s.token)) {
            if let Some((_, b)) = remaining.iter().find(|(l4, _)| *l4 == s.last4) {
                s.balance = *b;
            }
        }
        for mut r in remembered {
            r.pin = attempt.vouchers.iter().any(|v| {
                matches!(v, crate::flow::VoucherArg::Code(code, Some(_)) if code.ends_with(&r.last4))
            });
            a.co.saved.retain(|s| s.last4 != r.last4);
            a.co.saved.push(r);
        }
        a.co.saved.retain(|s| !s.balance.is_zero());
        a.save_saved();
    }
    if let Some(crate::flow::VoucherArg::Token(token, _)) = declined_token
        .as_deref()
        .and_then(|p| p.strip_prefix("vouchers["))
        .and_then(|r| r.split(']').next())
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|n| attempt.vouchers.get(n))
    {
        let token = token.clone();
        a.co.saved.retain(|s| s.token != token);
        a.save_saved();
    }
    let focus = match &a.co.phase {
        Phase::Done(_) => Some("done".to_owned()),
        Phase::Failed(_) => Some("fail".to_owned()),
        Phase::Fatal(_) => Some("fatal".to_owned()),
        Phase::Entering => {
            let first_bad =
                a.co.entries
                    .iter()
                    .position(|e| matches!(e.check, Check::Refused(_)))
                    .or_else(|| a.co.entries.iter().position(|e| e.check == Check::Empty));
            let pin_asked =
                a.co.entries
                    .iter()
                    .position(|e| e.pin.as_ref().is_some_and(|p| p.text.is_empty()));
            first_bad
                .map(|i| id("code-", i))
                .or_else(|| pin_asked.map(|i| id("pin-", i)))
                .or(Some("pay".to_owned()))
        }
        _ => None,
    };
    let announcement = a.outcome();
    a.render(focus.as_deref());
    a.announce(&announcement);
    if let Phase::Done(receipt) = &a.co.phase {
        bridge::success(
            &cfg.parent_origin,
            &receipt.transaction_id,
            cfg.order_id.as_str(),
            &cfg.amount.to_wire(),
            cfg.amount.currency().code(),
        );
    } else if let Some((code, message)) = error {
        bridge::error(&cfg.parent_origin, &code, message);
    }
}

/// The API refused the publishable key (unknown, revoked): nothing the shopper can do, so
/// the checkout says so and the page is told, once.
fn key_refused(shared: &Shared) {
    let mut a = shared.borrow_mut();
    if matches!(a.co.phase, Phase::Fatal(_)) {
        return;
    }
    a.co.key_refused();
    let announcement = a.outcome();
    a.render(Some("fatal"));
    a.announce(&announcement);
    bridge::error(&a.cfg.parent_origin, "invalid_api_key", KEY_REFUSED);
}

fn forget(shared: Shared) {
    let (key, tokens) = {
        let a = shared.borrow();
        (
            a.cfg.key.clone(),
            a.co.saved
                .iter()
                .map(|s| s.token.clone())
                .collect::<Vec<_>>(),
        )
    };
    {
        let mut a = shared.borrow_mut();
        a.co.saved.clear();
        a.save_saved();
        a.co.notice = Some(Text::Forgotten);
        a.render(Some("start"));
        let text = a.text(Text::Forgotten);
        a.announce(text);
    }
    if !tokens.is_empty() {
        spawn_local(async move {
            // The device has forgotten already; a failed revocation leaves a token that
            // nobody holds any more and that expires on its own.
            let _ = api::revoke(&key, &tokens).await;
        });
    }
}

/// Refreshes the balances of remembered vouchers and drops the ones that no longer pay.
fn refresh_saved(shared: &Shared) {
    let (key, tokens) = {
        let a = shared.borrow();
        (
            a.cfg.key.clone(),
            a.co.saved
                .iter()
                .map(|s| s.token.clone())
                .collect::<Vec<_>>(),
        )
    };
    if tokens.is_empty() {
        return;
    }
    let shared = shared.clone();
    spawn_local(async move {
        let Ok(balances) = api::lookup(&key, &tokens).await else {
            return;
        };
        let mut a = shared.borrow_mut();
        let mut kept = Vec::new();
        for (s, balance) in a.co.saved.iter().zip(balances) {
            if let Some(balance) = balance {
                kept.push(Saved {
                    balance,
                    ..s.clone()
                });
            }
        }
        let changed = kept != a.co.saved;
        a.co.saved = kept;
        if changed {
            a.save_saved();
            if a.co.phase == Phase::Ready {
                let focus = a.doc.active_element().map(|e| e.id()).unwrap_or_default();
                let focus = match focus.as_str() {
                    "pay-saved" | "other" | "forget" if a.co.one_click().is_none() => Some("start"),
                    _ => None,
                };
                a.render(focus);
            }
        }
    });
}
