//! The read replica: list answers say where they were read and how fresh they are; a
//! replica that does not answer leaves the primary to serve them. The streaming-replica
//! test proper is run by scripts/test-replica, which starts the primary and its replica.
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{json, Value};

use crate::helpers::{free_port, is_sqlite, TestApp};

/// GET a list; returns the ids of its rows, `Data-Source` and `Data-Lag`.
async fn list(app: &TestApp, path: &str, sk: &str) -> (Vec<String>, String, Option<String>) {
    let r = app
        .client
        .get(app.url(path))
        .bearer_auth(sk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let source = header("data-source").expect("Data-Source on every list answer");
    let lag = header("data-lag");
    let body: Value = r.json().await.unwrap();
    let ids = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            t["order_id"]
                .as_str()
                .or(t["id"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect();
    (ids, source, lag)
}

async fn pay(app: &TestApp, pk: &str, order: &str, code: &str) -> String {
    let r = app.pay(pk, order, "10.00", &[code], None).await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn without_a_replica_lists_come_from_the_primary_and_say_so() {
    let app = TestApp::spawn().await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("50.00").await;
    pay(&app, &m.pk, "ORDER_1", &code).await;
    let (orders, source, lag) = list(&app, "/api/transactions", &m.sk).await;
    assert_eq!(orders, ["ORDER_1"]);
    assert_eq!(source, "primary");
    assert_eq!(lag.as_deref(), Some("0.000"));
    let (events, source, _) = list(&app, "/api/events", &m.sk).await;
    assert_eq!(events.len(), 1);
    assert_eq!(source, "primary");
}

#[tokio::test]
async fn an_unreachable_replica_neither_stops_the_server_nor_its_lists() {
    // Nothing listens on this port: the replica is down from the start.
    let down = format!("postgres://postgres@127.0.0.1:{}/nowhere", free_port());
    let app = TestApp::spawn_with(&[("DATABASE_REPLICA_URL", &down)]).await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("50.00").await;
    pay(&app, &m.pk, "ORDER_1", &code).await;
    for _ in 0..2 {
        let (orders, source, lag) = list(&app, "/api/transactions", &m.sk).await;
        assert_eq!(orders, ["ORDER_1"]);
        assert_eq!(source, "primary", "served by the primary instead");
        assert_eq!(lag.as_deref(), Some("0.000"));
    }
    assert!(
        app.logs()
            .contains("read replica unavailable: reads go to the primary"),
        "the fallback is logged"
    );
    assert!(!app.logs().contains(&down), "the replica URL is not logged");
}

#[tokio::test]
async fn a_replica_url_naming_a_primary_reads_there_with_no_lag() {
    if is_sqlite() {
        // A replica is a PostgreSQL server; the embedded default has none.
        return;
    }
    let app = TestApp::spawn().await;
    let peer = app
        .spawn_peer(&[("DATABASE_REPLICA_URL", &app.database_url)])
        .await;
    let m = app.create_merchant(250).await;
    let (orders, source, lag) = list(&peer, "/api/transactions", &m.sk).await;
    assert!(orders.is_empty());
    assert_eq!(source, "replica");
    assert_eq!(
        lag.as_deref(),
        Some("0.000"),
        "a server not in recovery is current"
    );
}

/// Waits (up to 60 s) until `check` holds for the transaction list.
async fn wait_list(
    app: &TestApp,
    sk: &str,
    what: &str,
    check: impl Fn(&[String], &str, Option<&str>) -> bool,
) -> (Vec<String>, String, Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (orders, source, lag) = list(app, "/api/transactions", sk).await;
        if check(&orders, &source, lag.as_deref()) {
            return (orders, source, lag);
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {orders:?} {source} {lag:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sql(db: &DatabaseConnection, q: &str) -> Option<String> {
    db.query_one(Statement::from_string(db.get_database_backend(), q))
        .await
        .unwrap()
        .and_then(|row| row.try_get_by_index::<Option<String>>(0).unwrap())
}

/// A connection to the standby at `url`, checked to be one.
pub(crate) async fn standby(url: &str) -> DatabaseConnection {
    let standby = Database::connect(url).await.unwrap();
    assert_eq!(
        sql(&standby, "SELECT pg_is_in_recovery()::text")
            .await
            .as_deref(),
        Some("true"),
        "SP_REPLICA_URL is a standby"
    );
    standby
}

/// Pauses the standby's WAL replay (it keeps receiving) and waits until it has paused.
pub(crate) async fn pause_replay(standby: &DatabaseConnection) {
    sql(standby, "SELECT pg_wal_replay_pause()::text").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while sql(standby, "SELECT pg_get_wal_replay_pause_state()")
        .await
        .as_deref()
        != Some("paused")
    {
        assert!(Instant::now() < deadline, "replay did not pause");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Resumes the standby's WAL replay.
pub(crate) async fn resume_replay(standby: &DatabaseConnection) {
    sql(standby, "SELECT pg_wal_replay_resume()::text").await;
}

/// Run by scripts/test-replica (SP_REPLICA_PRIMARY_URL, SP_REPLICA_URL: a primary and its
/// streaming replica, migrated). Proves that lists are read on the replica (replay paused:
/// a new payment is missing there and the lag shows) while the payment, its verification
/// and its retrieval by id go to the primary.
#[tokio::test]
#[ignore = "needs a streaming replica: run by scripts/test-replica"]
async fn lists_are_read_on_the_replica_and_money_on_the_primary() {
    let primary = std::env::var("SP_REPLICA_PRIMARY_URL").expect("SP_REPLICA_PRIMARY_URL");
    let replica = std::env::var("SP_REPLICA_URL").expect("SP_REPLICA_URL");
    let app = TestApp::spawn_on_database(&primary, &[("DATABASE_REPLICA_URL", &replica)]).await;
    let standby = standby(&replica).await;
    let m = app.create_merchant(250).await;
    let code = app.issue_one("100.00").await;
    pay(&app, &m.pk, "ORDER_A", &code).await;
    wait_list(&app, &m.sk, "ORDER_A replicated", |orders, source, lag| {
        orders == ["ORDER_A"] && source == "replica" && lag == Some("0.000")
    })
    .await;

    pause_replay(&standby).await;

    // Money goes to the primary: the payment, then its verification and retrieval at once.
    let txn = pay(&app, &m.pk, "ORDER_B", &code).await;
    let r = app
        .post(
            "/api/verify-transaction/",
            &m.sk,
            &json!({"transaction_id": txn, "order_id": "ORDER_B", "expected_amount": "10.00", "expected_currency": "EUR"}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let verdict: Value = r.json().await.unwrap();
    assert_eq!(verdict["verified"], true, "{verdict}");
    let r = app
        .client
        .get(app.url(&format!("/api/transactions/{txn}")))
        .bearer_auth(&m.sk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "retrieval by id reads the primary");

    // The list reads the paused replica: ORDER_B is missing and the lag shows once its WAL
    // has arrived unreplayed.
    let (orders, _, lag) = wait_list(&app, &m.sk, "a lag reported", |_, source, lag| {
        source == "replica" && lag.is_some_and(|l| l.parse::<f64>().unwrap() > 0.0)
    })
    .await;
    assert_eq!(orders, ["ORDER_A"], "the replica does not have ORDER_B yet");
    println!("paused replica reports Data-Lag: {}", lag.unwrap());

    resume_replay(&standby).await;
    wait_list(&app, &m.sk, "ORDER_B replicated", |orders, source, lag| {
        orders == ["ORDER_B", "ORDER_A"] && source == "replica" && lag == Some("0.000")
    })
    .await;
    standby.close().await.ok();
}
