//! Payment traffic for `scripts/bench`: goose users paying, replaying or verifying, closed-loop or paced.
//!
//! Goose spawns the users, owns their HTTP connections (one keep-alive connection per user)
//! and keeps its own request table, printed at the end. The figures the bench reports come
//! from a microsecond HdrHistogram filled here instead, because goose rounds every timing
//! to whole milliseconds and its coordinated-omission mitigation can only guess the
//! missing samples from each user's average cadence.
//!
//! Paced runs (`LOADGEN_RATE` > 0) are open-loop in the wrk2 sense: user `i` of `u` owns the
//! send times `t0 + i/rate + k*u/rate`, so the users together offer exactly `rate` requests
//! per second whatever the server does, and each latency is measured from the time its
//! request was due, not from when it actually went out. A stall therefore shows up in the
//! percentiles of every request queued behind it (coordinated omission corrected), and a
//! request still unanswered when the run ends counts as an error rather than vanishing.
//! Closed-loop runs (rate 0) send back to back and count completions.
//!
//! Goose owns the command line (`-H`, `-u`, `--run-time`, `--hatch-rate`, ...); this load's
//! own settings come from the environment:
//!
//! | variable | meaning |
//! |---|---|
//! | `LOADGEN_SCENARIO` | `pay` (fresh order and key, random voucher), `pay-hot` (one voucher for all), `pay-dup` (a share of requests resend an earlier request with its key), `verify` |
//! | `LOADGEN_USERS` | the same number as goose's `-u` (needed for the schedule) |
//! | `LOADGEN_RATE` | offered requests per second over all users; 0 = closed loop |
//! | `LOADGEN_WARMUP_MS`, `LOADGEN_DURATION_MS` | discarded lead-in, then the measured window |
//! | `LOADGEN_PK`, `LOADGEN_SK` | publishable key (payments), secret key (verify) |
//! | `LOADGEN_CODES` | file of voucher codes, one per line (`pay`, `pay-dup`) |
//! | `LOADGEN_HOT_CODE` | the single voucher of `pay-hot` |
//! | `LOADGEN_TXNS` | file of transaction ids, one per line (`verify`) |
//! | `LOADGEN_DUP_PERCENT` | share of resent requests in `pay-dup` (default 10) |
//! | `LOADGEN_AMOUNT`, `LOADGEN_CURRENCY` | amount of each payment (default 0.10 EUR) |
//! | `LOADGEN_RUN` | prefix of order ids, unique per run |
//! | `LOADGEN_TAIL_MS` | how long to wait after the window for outstanding answers (default 10 000) |
//! | `LOADGEN_OUT` | where to write the JSON summary |
use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex, OnceLock,
    },
    time::{Duration, Instant},
};

use goose::prelude::*;
use hdrhistogram::Histogram;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Serialize;

/// Time between the first user starting and the first scheduled send, so that every user
/// is running before anybody's schedule begins.
const LEAD: Duration = Duration::from_millis(300);
/// Requests sent later than this behind their schedule are reported as late sends (the
/// user was still waiting for an earlier answer, or starved of CPU); timer slack stays below.
const LATE: Duration = Duration::from_millis(5);
/// How many completed payments `pay-dup` keeps to choose its duplicates from.
const DUP_POOL: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Pay,
    PayHot,
    PayDup,
    Verify,
}

impl Kind {
    fn parse(s: &str) -> Result<Kind, String> {
        match s {
            "pay" => Ok(Kind::Pay),
            "pay-hot" => Ok(Kind::PayHot),
            "pay-dup" => Ok(Kind::PayDup),
            "verify" => Ok(Kind::Verify),
            other => Err(format!(
                "LOADGEN_SCENARIO={other:?}: expected pay, pay-hot, pay-dup or verify"
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Pay => "pay",
            Kind::PayHot => "pay-hot",
            Kind::PayDup => "pay-dup",
            Kind::Verify => "verify",
        }
    }
}

struct Settings {
    kind: Kind,
    users: u64,
    rate: f64,
    warmup: Duration,
    duration: Duration,
    pk: String,
    sk: String,
    codes: Vec<String>,
    hot_code: String,
    txns: Vec<String>,
    dup_percent: f64,
    amount: String,
    currency: String,
    run: String,
    out: Option<String>,
    /// How long after the window the run waits for answers still outstanding.
    tail: Duration,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn num<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a number")),
    }
}

fn lines_of(name: &str) -> Result<Vec<String>, String> {
    let Some(path) = var(name) else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{name}={path}: {e}"))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

impl Settings {
    fn from_env() -> Result<Settings, String> {
        let kind = Kind::parse(&var("LOADGEN_SCENARIO").unwrap_or_else(|| "pay".into()))?;
        let s = Settings {
            kind,
            users: num("LOADGEN_USERS", 1u64)?.max(1),
            rate: num("LOADGEN_RATE", 0.0f64)?.max(0.0),
            warmup: Duration::from_millis(num("LOADGEN_WARMUP_MS", 1000u64)?),
            duration: Duration::from_millis(num("LOADGEN_DURATION_MS", 5000u64)?),
            pk: var("LOADGEN_PK").unwrap_or_default(),
            sk: var("LOADGEN_SK").unwrap_or_default(),
            codes: match kind {
                Kind::Pay | Kind::PayDup => lines_of("LOADGEN_CODES")?,
                _ => Vec::new(),
            },
            hot_code: var("LOADGEN_HOT_CODE").unwrap_or_default(),
            txns: match kind {
                Kind::Verify => lines_of("LOADGEN_TXNS")?,
                _ => Vec::new(),
            },
            dup_percent: num("LOADGEN_DUP_PERCENT", 10.0f64)?.clamp(0.0, 100.0),
            amount: var("LOADGEN_AMOUNT").unwrap_or_else(|| "0.10".into()),
            currency: var("LOADGEN_CURRENCY").unwrap_or_else(|| "EUR".into()),
            run: var("LOADGEN_RUN")
                .unwrap_or_else(|| format!("lg{:08x}", rand::thread_rng().gen::<u32>())),
            out: var("LOADGEN_OUT"),
            tail: Duration::from_millis(num("LOADGEN_TAIL_MS", 10_000u64)?),
        };
        let missing = match kind {
            Kind::Pay | Kind::PayDup if s.codes.is_empty() => Some("LOADGEN_CODES"),
            Kind::PayHot if s.hot_code.is_empty() => Some("LOADGEN_HOT_CODE"),
            Kind::Verify if s.txns.is_empty() => Some("LOADGEN_TXNS"),
            Kind::Verify if s.sk.is_empty() => Some("LOADGEN_SK"),
            Kind::Pay | Kind::PayHot | Kind::PayDup if s.pk.is_empty() => Some("LOADGEN_PK"),
            _ => None,
        };
        match missing {
            Some(name) => Err(format!("{name} is required by scenario {}", kind.name())),
            None => Ok(s),
        }
    }

    fn paced(&self) -> bool {
        self.rate > 0.0
    }
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();
/// The moment the first schedule slot is due (first user start + [`LEAD`]).
static START: OnceLock<Instant> = OnceLock::new();
static STATS: OnceLock<Mutex<Stats>> = OnceLock::new();
/// Users whose schedule has reached the end of the window with every answer in.
static DONE_USERS: AtomicUsize = AtomicUsize::new(0);
/// Completed first attempts, for `pay-dup` to resend.
static SENT: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn settings() -> &'static Settings {
    SETTINGS
        .get()
        .expect("settings are loaded before goose starts")
}

fn stats() -> &'static Mutex<Stats> {
    STATS.get_or_init(|| Mutex::new(Stats::new()))
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 5 min at 3 significant digits.
    Histogram::new_with_bounds(1, 300_000_000, 3).expect("valid histogram bounds")
}

struct Stats {
    /// From when each request was due (paced) or sent (closed loop) to its full response.
    latency: Histogram<u64>,
    /// From when each request actually went out to its full response.
    service: Histogram<u64>,
    status: BTreeMap<String, u64>,
    ok: u64,
    created: u64,
    replayed: u64,
    duplicates_sent: u64,
    unexpected: u64,
    transport_errors: u64,
    /// Requests due in the window (paced) that were sent; compared with those answered.
    started_in_window: u64,
    answered_in_window: u64,
    late_sends: u64,
    max_lag: Duration,
    error_samples: Vec<String>,
    /// Whole run, warm-up and tail included: what the database must agree with.
    all: Totals,
}

/// Counts over the whole run, to check against rows in the database.
#[derive(Clone, Copy, Default, Serialize)]
struct Totals {
    answered: u64,
    created: u64,
    replayed: u64,
    duplicates_sent: u64,
    failed: u64,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            latency: histogram(),
            service: histogram(),
            status: BTreeMap::new(),
            ok: 0,
            created: 0,
            replayed: 0,
            duplicates_sent: 0,
            unexpected: 0,
            transport_errors: 0,
            started_in_window: 0,
            answered_in_window: 0,
            late_sends: 0,
            max_lag: Duration::ZERO,
            error_samples: Vec::new(),
            all: Totals::default(),
        }
    }
}

/// Per-user state: its own random stream and its place in the schedule.
struct UserState {
    rng: StdRng,
    next_due: Option<Instant>,
    sent: u64,
    done: bool,
}

/// One request as sent: where, with which key, which body, which answer counts as success.
struct Outgoing {
    path: &'static str,
    bearer: String,
    idempotency_key: Option<String>,
    body: String,
    expect: u16,
    duplicate: bool,
}

fn start() -> Instant {
    *START.get_or_init(|| Instant::now() + LEAD)
}

fn window() -> (Instant, Instant) {
    let s = settings();
    let begin = start() + s.warmup;
    (begin, begin + s.duration)
}

fn fresh_payment(s: &Settings, st: &mut UserState, user: usize, code: &str) -> Outgoing {
    st.sent += 1;
    let order_id = format!("{}-{user}-{}", s.run, st.sent);
    let body = serde_json::json!({
        "order_id": order_id,
        "amount": s.amount,
        "currency": s.currency,
        "vouchers": [{"code": code}],
    })
    .to_string();
    Outgoing {
        path: "/api/process-payment/",
        bearer: s.pk.clone(),
        idempotency_key: Some(uuid::Uuid::new_v4().to_string()),
        body,
        expect: 201,
        duplicate: false,
    }
}

fn next_request(s: &Settings, st: &mut UserState, user: usize) -> Outgoing {
    match s.kind {
        Kind::Pay => {
            let code = &s.codes[st.rng.gen_range(0..s.codes.len())];
            fresh_payment(s, st, user, code)
        }
        Kind::PayHot => fresh_payment(s, st, user, &s.hot_code),
        Kind::PayDup => {
            if st.rng.gen_bool(s.dup_percent / 100.0) {
                // Taken out while its duplicate is in flight: two copies of one key at once
                // would rightly get 409 (still being processed), which is not a replay test.
                let mut sent = SENT.lock().expect("pool lock");
                if !sent.is_empty() {
                    let at = st.rng.gen_range(0..sent.len());
                    let (key, body) = sent.swap_remove(at);
                    return Outgoing {
                        path: "/api/process-payment/",
                        bearer: s.pk.clone(),
                        idempotency_key: Some(key),
                        body,
                        expect: 201,
                        duplicate: true,
                    };
                }
            }
            let code = &s.codes[st.rng.gen_range(0..s.codes.len())];
            fresh_payment(s, st, user, code)
        }
        Kind::Verify => {
            let id = &s.txns[st.rng.gen_range(0..s.txns.len())];
            Outgoing {
                path: "/api/verify-transaction/",
                bearer: s.sk.clone(),
                idempotency_key: None,
                body: serde_json::json!({ "transaction_id": id }).to_string(),
                expect: 200,
                duplicate: false,
            }
        }
    }
}

/// One scheduled (or, closed-loop, immediate) request of one user.
async fn one_request(user: &mut GooseUser) -> TransactionResult {
    let s = settings();
    let index = user.weighted_users_index;
    let (begin, end) = window();
    if user.get_session_data::<UserState>().is_none() {
        user.set_session_data(UserState {
            rng: StdRng::from_entropy(),
            next_due: None,
            sent: 0,
            done: false,
        });
    }
    let due = {
        let st = user.get_session_data_unchecked_mut::<UserState>();
        if s.paced() {
            let interval = Duration::from_secs_f64(s.users as f64 / s.rate);
            let due = st
                .next_due
                .unwrap_or_else(|| start() + Duration::from_secs_f64(index as f64 / s.rate));
            st.next_due = Some(due + interval);
            due
        } else {
            Instant::now().max(start())
        }
    };
    if due >= end {
        // This user's part of the window is over, answers included: idle until the end.
        let st = user.get_session_data_unchecked_mut::<UserState>();
        if !st.done {
            st.done = true;
            DONE_USERS.fetch_add(1, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        return Ok(());
    }
    tokio::time::sleep_until(due.into()).await;

    let out = {
        let st = user.get_session_data_unchecked_mut::<UserState>();
        next_request(s, st, index)
    };
    let mut builder = user
        .get_request_builder(&GooseMethod::Post, out.path)?
        .bearer_auth(&out.bearer)
        .header("content-type", "application/json")
        .body(out.body.clone());
    if let Some(key) = &out.idempotency_key {
        builder = builder.header("idempotency-key", key);
    }
    let request = GooseRequest::builder()
        .method(GooseMethod::Post)
        .path(out.path)
        .expect_status_code(out.expect)
        .set_request_builder(builder)
        .build();

    let in_window = s.paced() && due >= begin;
    if in_window {
        stats().lock().expect("stats lock").started_in_window += 1;
    }
    let sent_at = Instant::now();
    let goose = user.request(request).await?;
    let (status, replayed, body) = match goose.response {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let replayed = resp
                .headers()
                .get("idempotent-replayed")
                .is_some_and(|v| v.as_bytes() == b"true");
            match resp.text().await {
                Ok(body) => (Some(status), replayed, body),
                Err(e) => (None, false, e.to_string()),
            }
        }
        Err(e) => (None, false, e.to_string()),
    };
    let done = Instant::now();
    {
        let mut st = stats().lock().expect("stats lock");
        let all = &mut st.all;
        all.answered += 1;
        all.duplicates_sent += u64::from(out.duplicate);
        match status {
            Some(code) if code == out.expect && replayed => all.replayed += 1,
            Some(201) if out.expect == 201 => all.created += 1,
            Some(code) if code == out.expect => {}
            _ => all.failed += 1,
        }
    }

    let counted = if s.paced() {
        in_window
    } else {
        done >= begin && done < end
    };
    if out.expect == 201 && status == Some(201) && (out.duplicate || !replayed) {
        // Completed first attempts, and duplicates back from their replay, may be resent.
        let mut sent = SENT.lock().expect("pool lock");
        let entry = (out.idempotency_key.clone().unwrap_or_default(), out.body);
        if sent.len() < DUP_POOL {
            sent.push(entry);
        } else if !out.duplicate {
            let at = (sent_at.elapsed().subsec_nanos() as usize) % DUP_POOL;
            sent[at] = entry;
        }
    }
    if !counted {
        return Ok(());
    }
    let mut st = stats().lock().expect("stats lock");
    let lag = sent_at.saturating_duration_since(due);
    if s.paced() {
        st.answered_in_window += 1;
        if lag > LATE {
            st.late_sends += 1;
        }
        st.max_lag = st.max_lag.max(lag);
    }
    let from_due = if s.paced() {
        done - due
    } else {
        done - sent_at
    };
    st.latency
        .saturating_record(from_due.as_micros().max(1) as u64);
    st.service
        .saturating_record((done - sent_at).as_micros().max(1) as u64);
    if out.duplicate {
        st.duplicates_sent += 1;
    }
    match status {
        Some(code) => {
            *st.status.entry(code.to_string()).or_default() += 1;
            if code == out.expect {
                st.ok += 1;
                if replayed {
                    st.replayed += 1;
                } else if out.expect == 201 {
                    st.created += 1;
                }
            } else {
                st.unexpected += 1;
                if st.error_samples.len() < 5 {
                    let sample: String = body.chars().take(300).collect();
                    st.error_samples.push(format!("{code}: {sample}"));
                }
            }
        }
        None => {
            st.transport_errors += 1;
            if st.error_samples.len() < 5 {
                st.error_samples.push(format!("transport: {body}"));
            }
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct Percentiles {
    count: u64,
    mean: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

fn percentiles_ms(h: &Histogram<u64>) -> Percentiles {
    let ms = |us: u64| us as f64 / 1000.0;
    Percentiles {
        count: h.len(),
        mean: h.mean() / 1000.0,
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
    }
}

#[derive(Serialize)]
struct Summary {
    scenario: &'static str,
    users: u64,
    mode: &'static str,
    rate_target: f64,
    warmup_s: f64,
    duration_s: f64,
    completed: u64,
    ok: u64,
    /// Expected answers per second within the window.
    throughput_rps: f64,
    created: u64,
    replayed: u64,
    duplicates_sent: u64,
    status: BTreeMap<String, u64>,
    transport_errors: u64,
    unexpected_status: u64,
    /// Paced only: due in the window, sent, and never answered before the run ended.
    unanswered: u64,
    /// Every request of the window that did not get its expected answer.
    errors: u64,
    late_sends: u64,
    max_send_lag_ms: f64,
    latency_ms: Percentiles,
    service_ms: Percentiles,
    all: Totals,
    /// Users that got through their part of the window before the run ended.
    users_finished: usize,
    error_samples: Vec<String>,
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("superpayment-loadgen: {e}");
        std::process::exit(2);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let s = Settings::from_env()?;
    SETTINGS.set(s).map_err(|_| "settings were loaded twice")?;
    let s = settings();

    // Goose's run time is only a safety net: the run ends as soon as every user has had its
    // answers for the window, or when the tail allowance is spent.
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let Some(start) = START.get() else { continue };
            let end = *start + s.warmup + s.duration;
            let now = Instant::now();
            let all_done = DONE_USERS.load(Ordering::SeqCst) as u64 >= s.users;
            if now >= end && (all_done || now >= end + s.tail) {
                finish();
            }
        }
    });

    GooseAttack::initialize()?
        .register_scenario(
            Scenario::new(s.kind.name()).register_transaction(transaction!(one_request)),
        )
        // Only the measured server is ever contacted: no control ports.
        .set_default(GooseDefault::NoTelnet, true)?
        .set_default(GooseDefault::NoWebSocket, true)?
        .execute()
        .await?;
    finish();
}

/// Writes the summary and ends the process (goose's users are simply dropped).
fn finish() -> ! {
    static ONCE: Mutex<()> = Mutex::new(());
    let _only_one = ONCE.lock().expect("finish lock");
    let s = settings();
    let st = stats().lock().expect("stats lock");
    let completed: u64 = st.status.values().sum::<u64>() + st.transport_errors;
    let unanswered = st.started_in_window.saturating_sub(st.answered_in_window);
    let summary = Summary {
        scenario: s.kind.name(),
        users: s.users,
        mode: if s.paced() { "open" } else { "closed" },
        rate_target: s.rate,
        warmup_s: s.warmup.as_secs_f64(),
        duration_s: s.duration.as_secs_f64(),
        completed,
        ok: st.ok,
        throughput_rps: st.ok as f64 / s.duration.as_secs_f64().max(1e-9),
        created: st.created,
        replayed: st.replayed,
        duplicates_sent: st.duplicates_sent,
        status: st.status.clone(),
        transport_errors: st.transport_errors,
        unexpected_status: st.unexpected,
        unanswered,
        errors: st.unexpected + st.transport_errors + unanswered,
        late_sends: st.late_sends,
        max_send_lag_ms: st.max_lag.as_secs_f64() * 1000.0,
        latency_ms: percentiles_ms(&st.latency),
        service_ms: percentiles_ms(&st.service),
        all: st.all,
        users_finished: DONE_USERS.load(Ordering::SeqCst),
        error_samples: st.error_samples.clone(),
    };
    let json = serde_json::to_string_pretty(&summary).expect("summary serialises") + "\n";
    let written = match &s.out {
        Some(path) => std::fs::write(path, json).map_err(|e| format!("{path}: {e}")),
        None => {
            print!("{json}");
            Ok(())
        }
    };
    match written {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("superpayment-loadgen: {e}");
            std::process::exit(2)
        }
    }
}
