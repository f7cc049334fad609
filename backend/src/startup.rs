//! Building the application: connections, routes, and the server itself.
use std::{sync::Arc, time::Duration};

use anyhow::Context;
use poem::{
    get, handler,
    listener::{Acceptor, Listener, TcpListener},
    middleware::{NormalizePath, TrailingSlash},
    web::Data,
    EndpointExt, IntoResponse, Response, Route, Server,
};

use crate::{
    admin,
    api::{self, ops},
    config::ServeArgs,
    coordination::{Coordinator, MemoryCoordinator, RedisCoordinator},
    state::AppState,
    store,
    telemetry::{RequestId, RouteLabel},
};

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    acceptor: poem::listener::TcpAcceptor,
    app: poem::endpoint::BoxEndpoint<'static, Response>,
    /// The in-process webhook worker, email sender and fraud screener, and what tells
    /// them to stop.
    worker: Option<(
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    )>,
    metrics_port: Option<u16>,
}

impl Application {
    /// Connects, migrates (unless told not to), seeds the embedded demo on first start and binds.
    pub async fn build(args: ServeArgs) -> anyhow::Result<Application> {
        let secrets = args.secrets()?;
        // Refused before anything connects, like a missing secret.
        args.webhooks.test_loopback(args.db.is_embedded())?;
        let url = args.db.resolved_database_url()?;
        let db = store::connect(&url, args.db.database_pool_size)
            .await
            .context("connecting to the database")?;
        if !args.no_migrate {
            store::migrate(&db).await.context("applying migrations")?;
        }
        // Lazily: a replica that is down at start-up must not keep the service from
        // starting; reads fall back to the primary until it answers.
        let replica = match &args.db.database_replica_url {
            Some(replica) => Some(
                store::connect_lazy(replica.expose(), args.db.database_pool_size)
                    .await
                    .context("configuring the read replica (DATABASE_REPLICA_URL)")?,
            ),
            None => None,
        };
        let reads = Arc::new(crate::replica::ReadPools::new(db.clone(), replica));
        let coord = match &args.redis_url {
            Some(url) => Coordinator::Redis(
                RedisCoordinator::connect_lazily(
                    url.expose(),
                    args.redis_cluster,
                    &args.redis_prefix,
                )
                .context("configuring Redis (REDIS_URL, REDIS_CLUSTER, REDIS_PREFIX)")?,
            ),
            None => Coordinator::Memory(MemoryCoordinator::default()),
        };
        if args.db.is_embedded()
            && !args.no_demo_seed
            && store::merchants::list_merchants(&db).await?.is_empty()
        {
            let demo = admin::seed_demo(&db, &secrets.voucher_pepper)
                .await
                .map_err(|e| anyhow::anyhow!("seeding the demo merchant: {e}"))?;
            let path = args.db.data_dir.join("demo.txt");
            // It holds the demo merchant's secret key.
            crate::config::write_private(&path, &demo)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("First start on the embedded default: created a demo merchant (also in {}).\n{demo}", path.display());
        }
        let webhooks = crate::webhooks::WebhookSettings::from_args(
            &args.webhooks,
            secrets.cipher,
            args.db.is_embedded(),
        )?;
        let pepper = secrets.voucher_pepper;
        let run_worker = match args.worker.as_str() {
            "on" => true,
            "off" => false,
            _ => args.db.is_embedded(),
        };
        let public = args.public_url.as_deref().map(|u| u.trim_end_matches('/'));
        let state = AppState {
            email_sending: match (run_worker, args.email.smtp_url.is_some()) {
                (false, _) => crate::notify::Sending::WorkerOff,
                (true, true) => crate::notify::Sending::Configured,
                (true, false) => crate::notify::Sending::NotConfigured,
            },
            fraud: args
                .fraud
                .enabled()
                .then(|| crate::fraud::AttemptLog::new(&pepper)),
            db,
            reads,
            coord: Arc::new(coord),
            pepper,
            signing_key: secrets.signing_key,
            admin_token: secrets.admin_token,
            lockout: crate::gateway::lockout::LockoutPolicy {
                threshold: args.guess_lockout_threshold,
                key_threshold: args.guess_lockout_key_threshold,
                window: args.guess_lockout_window,
                cooldown: args.guess_lockout_cooldown,
            },
            key_cache: Arc::new(crate::auth::KeyCache::new(args.key_cache_ttl)),
            settings_cache: Arc::new(crate::checkout::settings::SettingsCache::new(
                args.key_cache_ttl,
            )),
            webhooks,
            accounts: crate::accounts::AccountSettings {
                login_lockout: crate::gateway::lockout::LockoutPolicy {
                    threshold: args.login_lockout_threshold,
                    key_threshold: args.login_lockout_account_threshold,
                    window: args.login_lockout_window,
                    cooldown: args.login_lockout_cooldown,
                },
                session_idle: args.session_idle_timeout,
                session_max: args.session_max_age,
                secure_cookie: public.is_some_and(|u| u.starts_with("https://")),
                public_url: public
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("http://{}", args.bind)),
                invitation_ttl: args.invitation_ttl,
                reset_ttl: args.password_reset_ttl,
                reset_limit: crate::gateway::lockout::LockoutPolicy {
                    threshold: args.password_reset_limit_per_client,
                    key_threshold: args.password_reset_limit_per_email,
                    window: args.password_reset_limit_window,
                    cooldown: args.password_reset_limit_window,
                },
            },
        };
        state.webhooks.bell.announce(state.db.clone());
        spawn_housekeeping(state.clone());
        crate::testmode::ensure_magic_vouchers(&state.db, &state.pepper)
            .await
            .context("creating the magic test vouchers")?;
        let metrics_port = match args.metrics.metrics_bind {
            Some(bind) => {
                let mut pools = vec![("primary", state.db.clone())];
                if let Some(replica) = state.reads.replica() {
                    pools.push(("replica", replica.clone()));
                }
                let sources = crate::monitoring::Sources {
                    pools,
                    queue: state.db.clone(),
                    token: args.metrics.metrics_token.clone(),
                };
                Some(crate::monitoring::serve(bind, sources).await?)
            }
            None => None,
        };
        let worker = if run_worker {
            let worker = crate::webhooks::worker::Worker::new(
                state.db.clone(),
                state.webhooks.clone(),
                &args.webhooks,
                args.db.database_url.as_ref().map(|u| u.expose().clone()),
            )?;
            let screener = args.fraud.enabled().then(|| {
                crate::fraud::Screener::new(
                    state.db.clone(),
                    &args.fraud,
                    state.webhooks.bell.clone(),
                )
            });
            let sender = crate::notify::sender::Sender::new(
                state.db.clone(),
                &args.email,
                state.webhooks.cipher.clone(),
            )?;
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let until_stopped = move || {
                let mut stopped = stopped.clone();
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                }
            };
            let task = tokio::spawn(async move {
                let screening = async {
                    if let Some(s) = screener {
                        s.run(until_stopped()).await;
                    }
                };
                tokio::join!(
                    worker.run(until_stopped()),
                    sender.run(until_stopped()),
                    screening
                );
            });
            Some((stop, task))
        } else {
            None
        };

        // Without PUBLIC_URL the spec's servers stay relative (`/api`): right for whatever
        // host and port the document was fetched from.
        let api_service = api::service(&state, &format!("{}/api", public.unwrap_or("")));
        let docs = api_service.swagger_ui();
        let spec = api::spec_json_at(&state, public);
        let spec_doc: serde_json::Value =
            serde_json::from_str(&spec).context("reading the generated spec")?;
        let paths = Arc::new(api::framework::PathTable::from_spec(&spec_doc));
        let documented = Arc::new(api::documented::Documented::build(&spec_doc));
        let spec = Arc::new(spec);
        let www = crate::web::www::Www::new(args.www_dir.as_deref());
        tracing::info!(www = %www.describe(), "static files");
        let app = crate::dashboard::mount(crate::web::mount(Route::new(), &args, &www))
            .nest(
                "/api",
                api_service
                    .with(NormalizePath::new(TrailingSlash::Trim))
                    .with(api::body_limit::BodyLimit::new(64 * 1024))
                    .with(crate::gateway::limits::RouteLimits::new(
                        state.clone(),
                        crate::gateway::limits::Limits {
                            payments: crate::gateway::limits::PaymentLimits {
                                per_client: args.pay_rate_limit_per_client,
                                per_key: args.pay_rate_limit_per_key,
                            },
                            checks: args.check_rate_limit,
                            per_key: args.api_rate_limit_per_key,
                            instances: args.api_rate_limit_instances,
                            expensive: args.api_rate_limit_expensive,
                            admin: args.admin_rate_limit,
                            auth_failures: crate::gateway::lockout::LockoutPolicy {
                                threshold: args.auth_lockout_threshold,
                                key_threshold: 0,
                                window: args.guess_lockout_window,
                                cooldown: args.guess_lockout_cooldown,
                            },
                        },
                        paths.clone(),
                    ))
                    .with(api::framework::HouseErrors::new(paths))
                    .with(api::documented::CheckAnswers(documented))
                    // Answers no operation claimed (unknown paths); operations carry their id.
                    .with(RouteLabel("/api/*")),
            )
            .at(
                "/openapi.json",
                get(openapi_json)
                    .data(spec)
                    .with(RouteLabel("/openapi.json")),
            )
            .nest("/docs", docs.with(RouteLabel("/docs")))
            .at("/healthz", get(ops::healthz).with(RouteLabel("/healthz")))
            .at("/readyz", get(ops::readyz).with(RouteLabel("/readyz")))
            .nest("/", www.endpoint("").with(RouteLabel("/*")))
            .with(api::framework::EmptySegments)
            .data(state)
            .with(crate::gateway::ClientAddress::new(
                crate::gateway::TrustedProxies::new(args.trusted_proxies.clone()),
            ))
            .with(crate::gateway::timeout::RequestTimeout::new(
                args.request_timeout,
            ))
            .with(RequestId)
            .with(crate::gateway::headers::SecurityHeaders::new(
                args.public_url.as_deref(),
            ))
            .boxed();

        let acceptor = TcpListener::bind(args.bind)
            .into_acceptor()
            .await
            .with_context(|| format!("binding {}", args.bind))?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(|s| s.port()))
            .unwrap_or(args.bind.port());
        Ok(Application {
            port,
            acceptor,
            app,
            worker,
            metrics_port,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the `/metrics` listener, when METRICS_BIND is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// Serves until SIGINT/SIGTERM: then stops accepting, drains in-flight requests for up
    /// to 10 s while the in-process webhook worker stops claiming and finishes (or
    /// releases) its deliveries within its grace, and returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        tracing::info!(port = self.port, "listening");
        let (stop, task) = match self.worker {
            Some((stop, task)) => (Some(stop), Some(task)),
            None => (None, None),
        };
        let signal = async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested: no new connections, finishing in-flight work");
            if let Some(stop) = stop {
                let _ = stop.send(true);
            }
        };
        let served = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(self.app, signal, Some(Duration::from_secs(10)))
            .await;
        if let Some(task) = task {
            // Bounded by the worker's own grace and release timeout.
            let _ = task.await;
        }
        tracing::info!("stopped");
        served
    }
}

#[handler]
async fn openapi_json(spec: Data<&Arc<String>>) -> Response {
    spec.as_str()
        .to_owned()
        .with_content_type("application/json")
        .into_response()
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Periodic clean-up that any number of instances may run at once.
fn spawn_housekeeping(state: AppState) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            match store::idempotency::purge(&state.db, time::OffsetDateTime::now_utc()).await {
                Ok(n) if n > 0 => tracing::info!(purged = n, "expired idempotency keys removed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed"),
            }
        }
    });
}
