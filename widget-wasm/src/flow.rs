//! The checkout's state machine, free of the DOM so it is tested natively.
//!
//! ready ("Pay €99.00 with a voucher", or one click with remembered vouchers) -> entering
//! codes, each checked for typos locally and for its balance by the API -> paying -> done,
//! or failed with a retry that reuses the attempt's Idempotency-Key.
use superpayment_core::{
    format_partial_code, is_well_formed_pin, CodeError, Money, VoucherCode,
    MAX_VOUCHERS_PER_PAYMENT, PIN_DIGITS,
};

use crate::i18n::Text;

/// Symbols in a complete code.
const CODE_SYMBOLS: usize = 16;

/// Why a request did not get a usable answer; all are worth retrying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No network.
    Offline,
    /// The connection failed while the browser believes it is online.
    Network,
    /// 5xx or an unreadable answer; `reference` is the request id when known.
    Server {
        /// `req_...` to quote to support.
        reference: String,
    },
    /// 429.
    RateLimited {
        /// Seconds to wait.
        seconds: u32,
    },
}

/// The state of one voucher in the form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// Nothing typed yet.
    Empty,
    /// Fewer than 16 symbols.
    Incomplete,
    /// A character that never appears in codes was typed (and dropped).
    BadSymbol(char),
    /// 16 symbols, but the check symbol does not match: no request is made.
    Typo,
    /// The same voucher appears earlier in the list.
    Duplicate,
    /// Waiting for the balance.
    Checking,
    /// Usable, with this balance in the order's currency.
    Valid(Money),
    /// Not usable: the API's decline code.
    Refused(String),
    /// The balance check itself failed.
    Failed(Failure),
}

/// Where a voucher comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Typed by the shopper; `text` is the formatted input (`ABCD-EF`).
    Typed {
        /// What the field shows.
        text: String,
    },
    /// Remembered on this device.
    Saved {
        /// The `vt_...` token.
        token: String,
        /// Last four symbols, for display.
        last4: String,
    },
}

/// The PIN field of a voucher whose kind needs one. It exists only once the balance check
/// (or, for a remembered voucher, a `pin_required` decline) said so; it never leaves the
/// iframe except in the payment request, and is never stored.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pin {
    /// The digits typed so far.
    pub text: String,
    /// The API answered `pin_invalid` and nothing was typed since.
    pub wrong: bool,
}

impl std::fmt::Debug for Pin {
    // A derived Debug would print the PIN wherever a state is debugged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pin({} digits, wrong: {})", self.text.len(), self.wrong)
    }
}

/// One voucher of the form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Typed or remembered.
    pub source: Source,
    /// Its current state.
    pub check: Check,
    /// Bumped on every edit, so a late balance answer for older text is ignored.
    pub generation: u32,
    /// Its PIN field, when the voucher needs one.
    pub pin: Option<Pin>,
}

impl Entry {
    fn typed() -> Entry {
        Entry {
            source: Source::Typed {
                text: String::new(),
            },
            check: Check::Empty,
            generation: 0,
            pin: None,
        }
    }

    /// The text of a typed entry.
    pub fn text(&self) -> &str {
        match &self.source {
            Source::Typed { text } => text,
            Source::Saved { .. } => "",
        }
    }
}

/// A voucher remembered on this device, with its last known balance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    /// The `vt_...` token.
    pub token: String,
    /// Last four symbols.
    pub last4: String,
    /// Last known balance.
    pub balance: Money,
    /// The voucher needs its PIN at every payment (it was paid with one, or a payment was
    /// declined `pin_required`); the PIN itself is never remembered.
    pub pin: bool,
}

/// A voucher as sent to `process-payment`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoucherArg {
    /// Canonical code, with its PIN when the voucher needs one.
    Code(String, Option<String>),
    /// Remembered token, with the voucher's PIN when it needs one.
    Token(String, Option<String>),
}

/// One payment attempt: what was sent and under which Idempotency-Key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The Idempotency-Key, reused when exactly this attempt is retried.
    pub key: String,
    /// The vouchers, in order.
    pub vouchers: Vec<VoucherArg>,
    /// Index of the entry behind each voucher sent.
    pub entries: Vec<usize>,
    /// Whether to remember the vouchers.
    pub remember: bool,
}

/// A finished payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// `txn_...`.
    pub transaction_id: String,
    /// (last4, remaining balance) per voucher used.
    pub remaining: Vec<(String, Money)>,
    /// True when the order had been paid before (409).
    pub already_paid: bool,
}

/// What the API said to a payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayAnswer {
    /// 201.
    Paid(Receipt),
    /// 409 `order_already_paid`.
    AlreadyPaid {
        /// The earlier transaction.
        transaction_id: String,
    },
    /// 402, with the failing field (`vouchers[1]`, `vouchers`) when given.
    Declined {
        /// Decline code.
        code: String,
        /// Field at fault.
        param: Option<String>,
    },
    /// 400.
    Invalid {
        /// Error code.
        code: String,
        /// Field at fault.
        param: Option<String>,
    },
    /// 401 or 403: the key is wrong for this page.
    NotAllowed,
    /// A network or server failure; the same attempt may be retried.
    Failed(Failure),
}

/// The screen the shopper sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// One button.
    Ready,
    /// The form.
    Entering,
    /// Waiting for the payment's answer.
    Paying,
    /// Paid.
    Done(Receipt),
    /// The payment request failed; retry possible.
    Failed(Failure),
    /// Nothing the shopper can do (bad tag, wrong key, unverifiable amount).
    Fatal(Text),
}

/// What the form allows right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Sum of usable balances, capped at the amount.
    pub covered: Money,
    /// What is still missing.
    pub missing: Money,
    /// Every voucher is usable and together they cover the amount.
    pub can_pay: bool,
    /// Another voucher field makes sense.
    pub can_add: bool,
}

/// The whole checkout state.
#[derive(Clone, Debug)]
pub struct Checkout {
    /// The order's amount.
    pub amount: Money,
    /// The current screen.
    pub phase: Phase,
    /// The vouchers of the form, in payment order.
    pub entries: Vec<Entry>,
    /// Vouchers remembered on this device.
    pub saved: Vec<Saved>,
    /// The "remember on this device" choice.
    pub remember: bool,
    /// The payment attempt that may be retried.
    pub attempt: Option<Attempt>,
    /// A sentence about the whole form (e.g. the vouchers do not cover the amount).
    pub notice: Option<Text>,
}

/// What [`Checkout::typed`] asks the caller to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Typed {
    /// The value the field must show.
    pub text: String,
    /// A complete, well-formed code whose balance should be fetched now.
    pub check: Option<(VoucherCode, u32)>,
}

impl Checkout {
    /// A fresh checkout for `amount` with the remembered vouchers of this device.
    pub fn new(amount: Money, saved: Vec<Saved>) -> Checkout {
        Checkout {
            amount,
            phase: Phase::Ready,
            entries: Vec::new(),
            saved,
            remember: false,
            attempt: None,
            notice: None,
        }
    }

    /// The remembered vouchers to pay with in one click, when together they cover the
    /// amount (only as many as needed, in order).
    pub fn one_click(&self) -> Option<Vec<&Saved>> {
        let mut covered = Money::zero(self.amount.currency());
        let mut out = Vec::new();
        for s in &self.saved {
            if s.balance.currency() != self.amount.currency() || s.balance.is_zero() {
                continue;
            }
            covered = covered.checked_add(s.balance).ok()?;
            out.push(s);
            if covered.minor() >= self.amount.minor() {
                return Some(out);
            }
        }
        None
    }

    /// Opens the form; remembered vouchers in the order's currency come first when asked.
    pub fn start_entering(&mut self, with_saved: bool) {
        self.entries.clear();
        if with_saved {
            for s in &self.saved {
                if s.balance.currency() == self.amount.currency() && !s.balance.is_zero() {
                    self.entries.push(Entry {
                        source: Source::Saved {
                            token: s.token.clone(),
                            last4: s.last4.clone(),
                        },
                        check: Check::Valid(s.balance),
                        generation: 0,
                        pin: s.pin.then(Pin::default),
                    });
                }
            }
        }
        if self.plan().missing.minor() > 0 || self.entries.is_empty() {
            self.entries.push(Entry::typed());
        }
        self.notice = None;
        self.phase = Phase::Entering;
    }

    /// Adds an empty code field; returns its index.
    pub fn add_entry(&mut self) -> Option<usize> {
        if self.entries.len() >= MAX_VOUCHERS_PER_PAYMENT {
            return None;
        }
        self.entries.push(Entry::typed());
        Some(self.entries.len() - 1)
    }

    /// Removes a voucher from the form (the last field is emptied instead).
    pub fn remove_entry(&mut self, index: usize) {
        if index < self.entries.len() {
            self.entries.remove(index);
        }
        if self.entries.is_empty() {
            self.entries.push(Entry::typed());
        }
        self.attempt = None;
        self.notice = None;
        self.recheck_duplicates();
    }

    /// The shopper typed or pasted into field `index`; `raw` is the field's whole value.
    pub fn typed(&mut self, index: usize, raw: &str) -> Typed {
        let text = format_partial_code(raw);
        let symbols = text.bytes().filter(|b| *b != b'-').count();
        let bad = match VoucherCode::parse(raw) {
            Err(CodeError::InvalidSymbol { symbol, .. }) => Some(symbol),
            _ => None,
        };
        let Some(entry) = self.entries.get_mut(index) else {
            return Typed { text, check: None };
        };
        let changed = entry.text() != text;
        if changed {
            entry.generation = entry.generation.wrapping_add(1);
            entry.source = Source::Typed { text: text.clone() };
            // Another code: only its own balance check can say whether it needs a PIN.
            entry.pin = None;
        }
        let mut check = None;
        if symbols < CODE_SYMBOLS {
            entry.check = match (bad, symbols) {
                (Some(symbol), _) => Check::BadSymbol(symbol),
                (None, 0) => Check::Empty,
                (None, _) => Check::Incomplete,
            };
        } else if changed
            || matches!(
                entry.check,
                Check::Empty | Check::Incomplete | Check::BadSymbol(_)
            )
        {
            match VoucherCode::parse(&text) {
                Ok(code) => {
                    entry.check = Check::Checking;
                    check = Some((code, entry.generation));
                }
                Err(_) => entry.check = Check::Typo,
            }
        }
        if changed {
            self.attempt = None;
            self.notice = None;
        }
        self.recheck_duplicates();
        if let Some(Check::Duplicate) = self.entries.get(index).map(|e| &e.check) {
            check = None;
        }
        Typed { text, check }
    }

    /// A second field holding an earlier field's code is marked, and unmarked once fixed.
    fn recheck_duplicates(&mut self) {
        for i in 0..self.entries.len() {
            let code = VoucherCode::parse(self.entries[i].text()).ok();
            let earlier = code.as_ref().is_some_and(|c| {
                self.entries[..i]
                    .iter()
                    .any(|e| VoucherCode::parse(e.text()).ok().as_ref() == Some(c))
            });
            let entry = &mut self.entries[i];
            if earlier {
                entry.check = Check::Duplicate;
            } else if entry.check == Check::Duplicate {
                // Needs a fresh balance check: the caller re-runs it via `typed`.
                entry.check = Check::Incomplete;
            }
        }
    }

    /// Applies a balance answer (valid, decline code, balance, PIN required), unless the
    /// field changed since it was asked.
    pub fn checked(
        &mut self,
        index: usize,
        generation: u32,
        answer: Result<(bool, Option<String>, Option<Money>, bool), Failure>,
    ) {
        let currency = self.amount.currency();
        let Some(entry) = self.entries.get_mut(index) else {
            return;
        };
        if entry.generation != generation || entry.check != Check::Checking {
            return;
        }
        entry.check = match answer {
            Err(failure) => Check::Failed(failure),
            Ok((true, _, Some(balance), _)) if balance.currency() != currency => {
                Check::Refused("voucher_currency_mismatch".into())
            }
            Ok((true, _, Some(balance), pin_required)) => {
                if pin_required && entry.pin.is_none() {
                    entry.pin = Some(Pin::default());
                }
                Check::Valid(balance)
            }
            Ok((_, reason, _, _)) => {
                Check::Refused(reason.unwrap_or_else(|| "voucher_declined".into()))
            }
        };
    }

    /// The shopper typed into the PIN field of entry `index`; returns what the field must
    /// show (digits only, at most [`PIN_DIGITS`]).
    pub fn pin_typed(&mut self, index: usize, raw: &str) -> String {
        let text: String = raw
            .chars()
            .filter(char::is_ascii_digit)
            .take(PIN_DIGITS)
            .collect();
        if let Some(pin) = self.entries.get_mut(index).and_then(|e| e.pin.as_mut()) {
            if pin.text != text {
                pin.text = text.clone();
                pin.wrong = false;
                self.notice = None;
            }
        }
        text
    }

    /// Marks a field as being checked again (after a failed check); returns what to check.
    pub fn recheck(&mut self, index: usize) -> Option<(VoucherCode, u32)> {
        let entry = self.entries.get_mut(index)?;
        let code = VoucherCode::parse(entry.text()).ok()?;
        entry.generation = entry.generation.wrapping_add(1);
        entry.check = Check::Checking;
        Some((code, entry.generation))
    }

    /// Sums up the form.
    pub fn plan(&self) -> Plan {
        let currency = self.amount.currency();
        let mut covered = Money::zero(currency);
        let mut usable = 0;
        let mut blocked = false;
        for e in &self.entries {
            match &e.check {
                Check::Valid(balance) => {
                    usable += 1;
                    covered = covered.checked_add(*balance).unwrap_or(self.amount);
                }
                Check::Empty => {}
                _ => blocked = true,
            }
        }
        // A voucher waiting for its PIN counts towards the amount but cannot be sent yet.
        let pin_missing = self
            .entries
            .iter()
            .any(|e| e.pin.as_ref().is_some_and(|p| !is_well_formed_pin(&p.text)));
        let covered = covered.min(self.amount);
        let missing = self
            .amount
            .checked_sub(covered)
            .unwrap_or(Money::zero(currency));
        Plan {
            covered,
            missing,
            can_pay: self.phase == Phase::Entering
                && usable > 0
                && !blocked
                && !pin_missing
                && missing.is_zero(),
            can_add: self.phase == Phase::Entering
                && !blocked
                && !missing.is_zero()
                && !self.entries.iter().any(|e| e.check == Check::Empty)
                && self.entries.len() < MAX_VOUCHERS_PER_PAYMENT,
        }
    }

    /// Starts paying with the usable vouchers needed to cover the amount. A retry of the
    /// same vouchers keeps the earlier Idempotency-Key, so a request that did reach the
    /// server is answered from its record instead of charging again.
    pub fn begin_payment(&mut self, new_key: impl FnOnce() -> String) -> Option<Attempt> {
        let mut covered = 0_i64;
        let mut vouchers = Vec::new();
        let mut entries = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            if covered >= self.amount.minor() {
                break;
            }
            if let Check::Valid(balance) = e.check {
                if e.pin.as_ref().is_some_and(|p| !is_well_formed_pin(&p.text)) {
                    return None;
                }
                covered += balance.minor();
                vouchers.push(match &e.source {
                    Source::Typed { text } => VoucherArg::Code(
                        VoucherCode::parse(text).ok()?.as_str().to_owned(),
                        e.pin.as_ref().map(|p| p.text.clone()),
                    ),
                    Source::Saved { token, .. } => {
                        VoucherArg::Token(token.clone(), e.pin.as_ref().map(|p| p.text.clone()))
                    }
                });
                entries.push(i);
            }
        }
        if vouchers.is_empty() || covered < self.amount.minor() {
            return None;
        }
        let remember = self.remember;
        let key = match &self.attempt {
            Some(a) if a.vouchers == vouchers && a.remember == remember => a.key.clone(),
            _ => new_key(),
        };
        let attempt = Attempt {
            key,
            vouchers,
            entries,
            remember,
        };
        self.attempt = Some(attempt.clone());
        self.notice = None;
        self.phase = Phase::Paying;
        Some(attempt)
    }

    /// Pays with the remembered vouchers in one click; `None` with the form open when one
    /// of them needs its PIN first.
    pub fn pay_saved(&mut self, new_key: impl FnOnce() -> String) -> Option<Attempt> {
        let chosen: Vec<Saved> = self.one_click()?.into_iter().cloned().collect();
        self.entries = chosen
            .into_iter()
            .map(|s| Entry {
                source: Source::Saved {
                    token: s.token,
                    last4: s.last4,
                },
                check: Check::Valid(s.balance),
                generation: 0,
                pin: s.pin.then(Pin::default),
            })
            .collect();
        self.remember = false;
        self.phase = Phase::Entering;
        self.begin_payment(new_key)
    }

    /// Applies the payment's answer.
    pub fn paid(&mut self, answer: PayAnswer) {
        let attempt = self.attempt.clone();
        match answer {
            PayAnswer::Paid(receipt) => {
                self.attempt = None;
                self.phase = Phase::Done(receipt);
            }
            PayAnswer::AlreadyPaid { transaction_id } => {
                self.attempt = None;
                self.phase = Phase::Done(Receipt {
                    transaction_id,
                    remaining: Vec::new(),
                    already_paid: true,
                });
            }
            PayAnswer::Declined { code, param } => {
                self.attempt = None;
                self.phase = Phase::Entering;
                match voucher_index(param.as_deref())
                    .and_then(|sent| attempt.as_ref()?.entries.get(sent).copied())
                {
                    Some(entry) => {
                        if let Some(e) = self.entries.get_mut(entry) {
                            if code == "pin_invalid" || code == "pin_required" {
                                // The code (or token) is right: keep it, ask for the PIN.
                                e.pin = Some(Pin {
                                    text: String::new(),
                                    wrong: code == "pin_invalid",
                                });
                                if let Source::Saved { token, .. } = &e.source {
                                    for s in self.saved.iter_mut().filter(|s| &s.token == token) {
                                        s.pin = true;
                                    }
                                }
                            } else {
                                e.check = Check::Refused(code);
                            }
                        }
                    }
                    None => self.notice = Some(crate::i18n::decline_text(&code)),
                }
                if self
                    .entries
                    .iter()
                    .all(|e| matches!(e.source, Source::Saved { .. }))
                {
                    self.entries.push(Entry::typed());
                }
            }
            PayAnswer::Invalid { code, param } => {
                self.attempt = None;
                let field = param.unwrap_or_default();
                if code.starts_with("signature") {
                    self.phase = Phase::Fatal(Text::AmountNotVerified);
                } else if let Some(entry) = voucher_index(Some(&field))
                    .and_then(|sent| attempt.as_ref()?.entries.get(sent).copied())
                {
                    self.phase = Phase::Entering;
                    if let Some(e) = self.entries.get_mut(entry) {
                        e.check = Check::Refused("voucher_declined".into());
                    }
                } else {
                    self.phase = Phase::Fatal(Text::NotSetUp);
                }
            }
            PayAnswer::NotAllowed => self.key_refused(),
            PayAnswer::Failed(failure) => self.phase = Phase::Failed(failure),
        }
    }

    /// The API refused the publishable key (at a balance check or a payment): the checkout
    /// cannot work on this page.
    pub fn key_refused(&mut self) {
        self.attempt = None;
        self.phase = Phase::Fatal(Text::NotSetUp);
    }

    /// Back to the form after a failed payment request, keeping the attempt for the retry.
    pub fn back_to_form(&mut self) {
        self.phase = Phase::Entering;
    }
}

/// `vouchers[2]` or `vouchers[2].token` -> 2.
fn voucher_index(param: Option<&str>) -> Option<usize> {
    let rest = param?.strip_prefix("vouchers[")?;
    rest[..rest.find(']')?].parse().ok()
}

#[cfg(test)]
mod tests {
    use superpayment_core::Currency;

    use super::*;

    fn eur(s: &str) -> Money {
        Money::parse(s, Currency::EUR).unwrap()
    }

    fn code(seed: u8) -> VoucherCode {
        VoucherCode::generate([seed; 10])
    }

    fn typo_of(code: &VoucherCode) -> String {
        let mut s = code.as_str().to_owned();
        let last = if s.ends_with('0') { "1" } else { "0" };
        s.replace_range(15.., last);
        s
    }

    fn keys() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("key-{n}")
        }
    }

    #[test]
    fn typing_formats_and_a_typo_makes_no_request() {
        let mut c = Checkout::new(eur("99.00"), vec![]);
        c.start_entering(false);
        let t = c.typed(0, "abcd e");
        assert_eq!(t.text, "ABCD-E");
        assert_eq!(t.check, None);
        assert_eq!(c.entries[0].check, Check::Incomplete);

        let typo = c.typed(0, &typo_of(&code(1)));
        assert_eq!(
            typo.check, None,
            "a typo is caught without asking the server"
        );
        assert_eq!(c.entries[0].check, Check::Typo);

        let good = c.typed(0, &code(1).formatted().to_lowercase());
        let (checked, generation) = good.check.expect("a good code is checked");
        assert_eq!(checked, code(1));
        assert_eq!(c.entries[0].check, Check::Checking);

        c.checked(0, generation, Ok((true, None, Some(eur("150.00")), false)));
        assert_eq!(c.entries[0].check, Check::Valid(eur("150.00")));
        assert!(c.plan().can_pay);
    }

    #[test]
    fn a_character_that_never_appears_is_explained() {
        let mut c = Checkout::new(eur("5"), vec![]);
        c.start_entering(false);
        let t = c.typed(0, "ABCU");
        assert_eq!(t.text, "ABC");
        assert_eq!(c.entries[0].check, Check::BadSymbol('U'));
    }

    #[test]
    fn a_late_answer_for_older_text_is_ignored() {
        let mut c = Checkout::new(eur("10"), vec![]);
        c.start_entering(false);
        let (_, old) = c.typed(0, code(1).as_str()).check.unwrap();
        let (_, new) = c.typed(0, code(2).as_str()).check.unwrap();
        c.checked(0, old, Ok((true, None, Some(eur("1.00")), false)));
        assert_eq!(c.entries[0].check, Check::Checking);
        c.checked(0, new, Ok((true, None, Some(eur("20.00")), false)));
        assert_eq!(c.entries[0].check, Check::Valid(eur("20.00")));
    }

    #[test]
    fn two_vouchers_cover_what_one_cannot() {
        let mut c = Checkout::new(eur("99.00"), vec![]);
        c.start_entering(false);
        let (_, g) = c.typed(0, code(1).as_str()).check.unwrap();
        c.checked(0, g, Ok((true, None, Some(eur("60.00")), false)));
        let plan = c.plan();
        assert!(!plan.can_pay);
        assert!(plan.can_add);
        assert_eq!(plan.missing, eur("39.00"));

        let i = c.add_entry().unwrap();
        assert!(!c.plan().can_add, "no second empty field");
        let (_, g) = c.typed(i, code(2).as_str()).check.unwrap();
        c.checked(i, g, Ok((true, None, Some(eur("50.00")), false)));
        assert!(c.plan().can_pay);

        let attempt = c.begin_payment(keys()).unwrap();
        assert_eq!(
            attempt.vouchers,
            vec![
                VoucherArg::Code(code(1).as_str().into(), None),
                VoucherArg::Code(code(2).as_str().into(), None)
            ]
        );
        assert_eq!(c.phase, Phase::Paying);
    }

    #[test]
    fn the_same_code_twice_is_refused_locally() {
        let mut c = Checkout::new(eur("99.00"), vec![]);
        c.start_entering(false);
        let (_, g) = c.typed(0, code(1).as_str()).check.unwrap();
        c.checked(0, g, Ok((true, None, Some(eur("60.00")), false)));
        let i = c.add_entry().unwrap();
        let t = c.typed(i, &code(1).formatted());
        assert_eq!(t.check, None);
        assert_eq!(c.entries[i].check, Check::Duplicate);
        assert!(!c.plan().can_pay);
    }

    #[test]
    fn other_currencies_and_declines_block_payment() {
        let mut c = Checkout::new(eur("10"), vec![]);
        c.start_entering(false);
        let (_, g) = c.typed(0, code(1).as_str()).check.unwrap();
        c.checked(
            0,
            g,
            Ok((
                true,
                None,
                Some(Money::parse("50", Currency::CHF).unwrap()),
                false,
            )),
        );
        assert_eq!(
            c.entries[0].check,
            Check::Refused("voucher_currency_mismatch".into())
        );
        let (_, g) = c.typed(0, code(2).as_str()).check.unwrap();
        c.checked(
            0,
            g,
            Ok((false, Some("voucher_declined".into()), None, false)),
        );
        assert_eq!(
            c.entries[0].check,
            Check::Refused("voucher_declined".into())
        );
        assert!(!c.plan().can_pay);
    }

    #[test]
    fn a_retry_reuses_the_key_and_a_new_attempt_gets_a_new_one() {
        let mut c = Checkout::new(eur("10"), vec![]);
        c.start_entering(false);
        let (_, g) = c.typed(0, code(1).as_str()).check.unwrap();
        c.checked(0, g, Ok((true, None, Some(eur("50")), false)));
        let mut next = keys();
        let first = c.begin_payment(&mut next).unwrap();
        c.paid(PayAnswer::Failed(Failure::Offline));
        assert_eq!(c.phase, Phase::Failed(Failure::Offline));
        c.back_to_form();
        let retry = c.begin_payment(&mut next).unwrap();
        assert_eq!(retry.key, first.key);

        c.paid(PayAnswer::Failed(Failure::Offline));
        c.back_to_form();
        c.remember = true;
        let changed = c.begin_payment(&mut next).unwrap();
        assert_ne!(
            changed.key, first.key,
            "another request body needs another key"
        );
    }

    #[test]
    fn a_decline_marks_the_voucher_that_caused_it() {
        let mut c = Checkout::new(eur("99.00"), vec![]);
        c.start_entering(false);
        let (_, g) = c.typed(0, code(1).as_str()).check.unwrap();
        c.checked(0, g, Ok((true, None, Some(eur("60.00")), false)));
        let i = c.add_entry().unwrap();
        let (_, g) = c.typed(i, code(2).as_str()).check.unwrap();
        c.checked(i, g, Ok((true, None, Some(eur("50.00")), false)));
        c.begin_payment(keys()).unwrap();
        c.paid(PayAnswer::Declined {
            code: "voucher_declined".into(),
            param: Some("vouchers[1]".into()),
        });
        assert_eq!(c.phase, Phase::Entering);
        assert_eq!(
            c.entries[1].check,
            Check::Refused("voucher_declined".into())
        );
        assert!(c.attempt.is_none());
    }

    #[test]
    fn already_paid_is_a_success_and_signature_errors_are_final() {
        let mut c = Checkout::new(eur("10"), vec![]);
        c.paid(PayAnswer::AlreadyPaid {
            transaction_id: "txn_1".into(),
        });
        assert!(
            matches!(&c.phase, Phase::Done(r) if r.already_paid && r.transaction_id == "txn_1")
        );
        c.paid(PayAnswer::Invalid {
            code: "signature_invalid".into(),
            param: Some("signature".into()),
        });
        assert_eq!(c.phase, Phase::Fatal(Text::AmountNotVerified));
    }

    #[test]
    fn a_refused_key_ends_the_checkout_whether_checking_or_paying() {
        let mut c = Checkout::new(eur("10"), vec![]);
        c.start_entering(false);
        let (_, g) = c.typed(0, code(1).as_str()).check.unwrap();
        c.key_refused();
        assert_eq!(c.phase, Phase::Fatal(Text::NotSetUp));
        c.checked(0, g, Ok((true, None, Some(eur("50")), false)));
        assert!(
            !c.plan().can_pay,
            "a late balance answer does not reopen it"
        );

        let mut c = Checkout::new(eur("10"), vec![]);
        c.start_entering(false);
        let (_, g) = c.typed(0, code(1).as_str()).check.unwrap();
        c.checked(0, g, Ok((true, None, Some(eur("50")), false)));
        c.begin_payment(keys()).unwrap();
        c.paid(PayAnswer::NotAllowed);
        assert_eq!(c.phase, Phase::Fatal(Text::NotSetUp));
        assert!(c.attempt.is_none());
    }

    #[test]
    fn remembered_vouchers_pay_in_one_click_when_they_cover_the_amount() {
        let saved = vec![
            Saved {
                token: "vt_a".into(),
                last4: "AAAA".into(),
                balance: eur("20.00"),
                pin: false,
            },
            Saved {
                token: "vt_b".into(),
                last4: "BBBB".into(),
                balance: eur("100.00"),
                pin: false,
            },
        ];
        let mut c = Checkout::new(eur("99.00"), saved.clone());
        assert_eq!(c.one_click().unwrap().len(), 2);
        let attempt = c.pay_saved(keys()).unwrap();
        assert_eq!(
            attempt.vouchers,
            vec![
                VoucherArg::Token("vt_a".into(), None),
                VoucherArg::Token("vt_b".into(), None)
            ]
        );

        let short = Checkout::new(eur("500.00"), saved);
        assert!(short.one_click().is_none());
        let mut form = short.clone();
        form.start_entering(true);
        assert_eq!(
            form.entries.len(),
            3,
            "both saved vouchers and an empty field"
        );
        assert_eq!(form.plan().missing, eur("380.00"));
    }

    #[test]
    fn a_voucher_that_needs_a_pin_is_sent_with_it_and_a_wrong_pin_is_asked_again() {
        let mut c = Checkout::new(eur("10"), vec![]);
        c.start_entering(false);
        let (_, g) = c.typed(0, code(1).as_str()).check.unwrap();
        c.checked(0, g, Ok((true, None, Some(eur("50")), true)));
        assert_eq!(c.entries[0].pin, Some(Pin::default()));
        assert!(!c.plan().can_pay, "no payment before the PIN");
        assert_eq!(c.pin_typed(0, "12a3 45"), "12345");
        assert!(!c.plan().can_pay, "five digits are not a PIN");
        assert_eq!(c.pin_typed(0, "1234567"), "123456", "cut at six digits");
        assert!(c.plan().can_pay);

        let mut next = keys();
        let first = c.begin_payment(&mut next).unwrap();
        assert_eq!(
            first.vouchers,
            vec![VoucherArg::Code(
                code(1).as_str().into(),
                Some("123456".into())
            )]
        );
        c.paid(PayAnswer::Declined {
            code: "pin_invalid".into(),
            param: Some("vouchers[0]".into()),
        });
        assert_eq!(c.phase, Phase::Entering);
        assert_eq!(c.entries[0].check, Check::Valid(eur("50")), "code kept");
        assert_eq!(c.entries[0].text(), code(1).formatted());
        assert_eq!(
            c.entries[0].pin,
            Some(Pin {
                text: String::new(),
                wrong: true
            }),
            "PIN cleared"
        );
        assert!(!c.plan().can_pay);
        c.pin_typed(0, "654321");
        assert_eq!(c.entries[0].pin.as_ref().map(|p| p.wrong), Some(false));
        let second = c.begin_payment(&mut next).unwrap();
        assert_ne!(second.key, first.key, "another PIN is another request");
        assert!(
            !format!("{:?}", c.entries).contains("654321"),
            "Debug hides the PIN"
        );

        c.typed(0, code(2).as_str());
        assert_eq!(c.entries[0].pin, None, "another code drops the PIN field");
    }

    #[test]
    fn a_voucher_without_pin_gets_no_pin_field_unless_the_payment_asks() {
        let mut c = Checkout::new(eur("10"), vec![]);
        c.start_entering(false);
        let (_, g) = c.typed(0, code(1).as_str()).check.unwrap();
        c.checked(0, g, Ok((true, None, Some(eur("50")), false)));
        assert_eq!(c.entries[0].pin, None);
        let attempt = c.begin_payment(keys()).unwrap();
        assert_eq!(
            attempt.vouchers,
            vec![VoucherArg::Code(code(1).as_str().into(), None)]
        );
        c.paid(PayAnswer::Declined {
            code: "pin_required".into(),
            param: Some("vouchers[0]".into()),
        });
        assert_eq!(c.entries[0].pin, Some(Pin::default()));
        assert_eq!(c.entries[0].check, Check::Valid(eur("50")));
    }

    #[test]
    fn a_remembered_voucher_asked_for_its_pin_is_sent_with_it() {
        let saved = vec![Saved {
            token: "vt_a".into(),
            last4: "AAAA".into(),
            balance: eur("20.00"),
            pin: false,
        }];
        let mut c = Checkout::new(eur("10"), saved);
        c.pay_saved(keys()).unwrap();
        c.paid(PayAnswer::Declined {
            code: "pin_required".into(),
            param: Some("vouchers[0]".into()),
        });
        assert_eq!(c.entries[0].check, Check::Valid(eur("20.00")));
        assert!(!c.plan().can_pay);
        c.pin_typed(0, "123456");
        let attempt = c.begin_payment(keys()).unwrap();
        assert_eq!(
            attempt.vouchers,
            vec![VoucherArg::Token("vt_a".into(), Some("123456".into()))]
        );
        assert!(c.saved[0].pin, "next time the PIN is asked before paying");

        let mut next_visit = Checkout::new(eur("10"), c.saved.clone());
        assert_eq!(
            next_visit.pay_saved(keys()),
            None,
            "no request without the PIN"
        );
        assert_eq!(next_visit.phase, Phase::Entering);
        assert_eq!(next_visit.entries[0].pin, Some(Pin::default()));
        next_visit.pin_typed(0, "123456");
        assert!(next_visit.begin_payment(keys()).is_some());
    }

    #[test]
    fn voucher_params_are_read() {
        assert_eq!(voucher_index(Some("vouchers[3].token")), Some(3));
        assert_eq!(voucher_index(Some("vouchers[0]")), Some(0));
        assert_eq!(voucher_index(Some("vouchers")), None);
        assert_eq!(voucher_index(None), None);
    }
}
