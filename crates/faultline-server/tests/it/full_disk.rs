//! A full disk under a running server, on both backends: SQLite on a 4 MiB
//! tmpfs, and a private PostgreSQL cluster whose data directory is on a
//! 48 MiB tmpfs (its WAL beside it on the ordinary disk: the data volume is
//! what fills, PostgreSQL answers 53100; a full WAL volume makes PostgreSQL
//! itself stop, which the store meets as a lost connection — its own test
//! in the store's `fatal`). Each filled up: every write that did not commit
//! is answered 503, everything answered 201/202 is seen by an independent
//! reader and after a restart, `/readyz` and `/metrics` say why while it
//! lasts, and writes come back by themselves when space is freed.
//!
//! Mounting needs root, and the PostgreSQL cluster its server binaries:
//! `.ci/run` runs as root with `postgresql` installed, and under `CI=true`
//! either missing fails the test; elsewhere the test says it was skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use faultline_core::{IncidentId, Timestamp};
use faultline_server::clock::FixedClock;
use faultline_server::{App, Config};
use faultline_store::{SqlStore, Store, TokenScope};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A tmpfs of a given size mounted on a fresh temporary directory,
/// unmounted on drop.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (with a message) when mounting is impossible outside CI; under
    /// `CI=true` that is a failure.
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir.path()).output();
        let why = match out {
            Ok(o) if o.status.success() => return Some(Tmpfs { dir }),
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
            Err(e) => format!("cannot run mount: {e}"),
        };
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true: the full-disk test must run, but a {size} tmpfs cannot be mounted (run as root): {why}");
        }
        eprintln!("skipped: the full-disk test needs root to mount a {size} tmpfs ({why})");
        None
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a connection still open must not keep the mount (and the
        // temporary directory) alive.
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Writes a file until the filesystem refuses more, then gives back
/// `headroom` bytes, so writes succeed for a while and then meet a full
/// disk mid-stream (as a disk filling in production does); returns its path.
pub fn fill(dir: &Path, headroom: u64) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("create the filler file");
    let chunk = vec![0xa5u8; 16 << 10];
    while f.write_all(&chunk).and_then(|()| f.flush()).is_ok() {}
    // The last partial chunk may have left a few bytes free: take them too.
    while f.write_all(&[0]).is_ok() {}
    let len = f.metadata().expect("filler metadata").len();
    f.set_len(len.saturating_sub(headroom)).expect("give back the headroom");
    path
}

struct Resp {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
    text: String,
}

async fn call(router: &axum::Router, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let retry_after = resp.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_owned());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Resp { status, retry_after, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null), text }
}

/// Posts a generic alert as its sender (an ingest token); the one place
/// alert ingest is called from here.
async fn post_alert(router: &axum::Router, ingest: &str, i: usize) -> Resp {
    call(router, "POST", "/api/v1/alerts", Some(ingest), Some(json!({"title": format!("disk-full alert {i}"), "service": format!("svc-{}", i % 7)}))).await
}

async fn create_incident(router: &axum::Router, admin: &str, i: usize) -> Resp {
    let body = json!({"title": format!("disk-full incident {i}"), "severity": "SEV2", "summary": "s".repeat(2000)});
    call(router, "POST", "/api/v1/incidents", Some(admin), Some(body)).await
}

#[track_caller]
fn assert_refused(r: &Resp, what: &str) {
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {}", r.text);
    assert!(r.retry_after.is_some(), "{what}: a 503 says when to retry: {}", r.text);
}

const NOW: i64 = 1_800_000_000_000;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Where the server under test keeps its data.
enum Db {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Db {
    async fn open(&self) -> SqlStore {
        match self {
            Db::Sqlite(dir) => SqlStore::open_sqlite(dir).await.unwrap(),
            Db::Postgres(url) => SqlStore::connect_postgres(url).await.unwrap(),
        }
    }

    /// A reader of its own, not the server's pool.
    async fn reader(&self) -> SqlStore {
        match self {
            Db::Sqlite(dir) => SqlStore::connect(&format!("sqlite://{}", dir.join("faultline.db").display())).await.unwrap(),
            Db::Postgres(url) => SqlStore::connect_postgres(url).await.unwrap(),
        }
    }
}

#[tokio::test]
async fn a_full_disk_refuses_writes_with_503_loses_nothing_acknowledged_and_recovers() {
    let Some(disk) = Tmpfs::mount("4m") else { return };
    exercise(Db::Sqlite(disk.path().join("data")), disk.path()).await;
}

/// A PostgreSQL cluster of our own, its data directory on `data_dir` and
/// its WAL in `wal_dir`, run as the `postgres` user on a free loopback
/// port; stopped (immediately) on drop.
struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _wal: tempfile::TempDir,
}

impl PrivatePostgres {
    /// `None` (with a message) when PostgreSQL's server binaries or the
    /// `postgres` user are missing outside CI; under `CI=true` a failure.
    fn start(data_dir: &Path) -> Option<PrivatePostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| d.filter_map(Result::ok).map(|e| e.path().join("bin")).filter(|b| b.join("initdb").exists()).max());
        let Some(bin) = bin else {
            assert!(!in_ci(), "CI=true: the PostgreSQL full-disk test needs the server binaries (/usr/lib/postgresql/*/bin/initdb)");
            eprintln!("skipped: the PostgreSQL full-disk test needs PostgreSQL's server binaries");
            return None;
        };
        let as_postgres = |program: &Path| {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        };
        let wal = tempfile::tempdir().unwrap();
        let data = data_dir.join("pg");
        for dir in [data_dir, wal.path()] {
            let ok = Command::new("chown").args(["postgres:postgres"]).arg(dir).status().is_ok_and(|s| s.success());
            if !ok {
                assert!(!in_ci(), "CI=true: cannot hand {} to the postgres user", dir.display());
                eprintln!("skipped: the PostgreSQL full-disk test needs root and a postgres user");
                return None;
            }
        }
        let out = as_postgres(&bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "--wal-segsize=1", "-D"])
            .arg(&data)
            .arg("--waldir")
            .arg(wal.path().join("wal"))
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = wal.path().join("server.log");
        let opts = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40", wal.path().display());
        let out = as_postgres(&bin.join("pg_ctl")).arg("-D").arg(&data).arg("-l").arg(&log).args(["-o", &opts, "-w", "start"]).output().expect("run pg_ctl");
        assert!(out.status.success(), "pg_ctl start failed: {}\n{}", String::from_utf8_lossy(&out.stderr), std::fs::read_to_string(&log).unwrap_or_default());
        Some(PrivatePostgres { bin, data, port, _wal: wal })
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

#[tokio::test]
async fn postgres_on_a_full_disk_refuses_writes_with_503_loses_nothing_acknowledged_and_recovers() {
    let Some(disk) = Tmpfs::mount("48m") else { return };
    let Some(pg) = PrivatePostgres::start(disk.path()) else { return };
    exercise(Db::Postgres(pg.url()), disk.path()).await;
    drop(pg);
}

/// Fills the disk under a running server on `db` (whose files are on
/// `disk`) and checks everything the module doc promises.
async fn exercise(db: Db, disk: &Path) {
    let store = db.open().await;
    let now = Timestamp::from_millis(NOW);
    let (_, admin) = faultline_server::auth::create_token(&store, "ops-admin", TokenScope::Admin, None, now).await.unwrap();
    let (_, ingest) = faultline_server::auth::create_token(&store, "alerts", TokenScope::Ingest, None, now).await.unwrap();
    let mut app = App::with_store(Config::default(), store.clone(), Arc::new(FixedClock(now)));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let engine = app
        .start_engine(async move {
            let _ = stopped.await;
        })
        .expect("the engine starts once");
    let router = app.router();

    let filler = fill(disk, 1 << 20);
    let mut created: Vec<IncidentId> = Vec::new();
    let mut alerts: Vec<String> = Vec::new();
    let (mut refused_incidents, mut refused_alerts, mut in_a_row) = (0, 0, 0);
    for i in 0..3000 {
        let r = create_incident(&router, &admin, i).await;
        if r.status == StatusCode::CREATED {
            created.push(r.body["id"].as_str().unwrap().parse().unwrap());
            in_a_row = 0;
        } else {
            assert_refused(&r, "an incident creation that did not commit");
            assert_eq!(r.body["error"]["code"], "store_unavailable", "{}", r.text);
            refused_incidents += 1;
            in_a_row += 1;
        }
        let a = post_alert(&router, &ingest, i).await;
        if a.status == StatusCode::ACCEPTED {
            alerts.push(a.body["dedup_key"].as_str().unwrap().to_owned());
        } else {
            assert_refused(&a, "an alert that did not commit");
            refused_alerts += 1;
        }
        if in_a_row >= 5 && refused_alerts >= 5 {
            break;
        }
    }
    assert!(in_a_row >= 5, "the disk never filled: {refused_incidents} incident creations refused, {} accepted", created.len());
    assert!(created.len() >= 5, "writes succeeded before the disk filled: {}", created.len());
    assert!(refused_alerts >= 5, "alerts were never refused on a full disk");

    // While writes fail, the server says so: not ready, and why. SQLite
    // fails every write on a full disk, so its probe does too. PostgreSQL
    // fills page by page: a small probe write can still commit into free
    // space in a page it already has — then "ready" is true at that moment
    // (a write did commit), and the failures are still counted.
    let r = call(&router, "GET", "/readyz", None, None).await;
    let m = call(&router, "GET", "/metrics", None, None).await.text;
    let failures = metric(&m, "faultline_store_write_failures_total{reason=\"disk_full\"}");
    match db {
        Db::Sqlite(_) => {
            assert_refused(&r, "/readyz on a full disk");
            assert!(r.text.contains("disk_full"), "{} (the store says: {:?})", r.text, store.check_writable().await);
            assert!(m.contains("faultline_store_writable 0"), "{m}");
            assert!(failures >= 10.0, "failed writes are counted by reason: {failures}\n{m}");
        }
        Db::Postgres(_) => {
            if r.status != StatusCode::OK {
                assert_refused(&r, "/readyz on a full disk");
                assert!(r.text.contains("disk_full") || r.text.contains("connection_lost"), "{}", r.text);
            }
            assert!(failures >= 1.0, "failed writes are counted by reason: {failures}\n{m}");
        }
    }

    // Space returns: writes succeed again without a restart.
    std::fs::remove_file(&filler).unwrap();
    // Everything acknowledged is committed: an independent reader sees it
    // (once there is room: a full PostgreSQL data volume refuses new
    // sessions, `could not write init file`).
    let reader = db.reader().await;
    for id in &created {
        assert!(reader.incident(*id).await.unwrap().is_some(), "incident {id} was answered 201 but is not in the database");
    }
    reader.close().await;
    let r = create_incident(&router, &admin, 9000).await;
    assert_eq!(r.status, StatusCode::CREATED, "after freeing space: {}", r.text);
    created.push(r.body["id"].as_str().unwrap().parse().unwrap());
    let a = post_alert(&router, &ingest, 9000).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "after freeing space: {}", a.text);
    alerts.push(a.body["dedup_key"].as_str().unwrap().to_owned());
    let r = call(&router, "GET", "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(call(&router, "GET", "/metrics", None, None).await.text.contains("faultline_store_writable 1"));

    // And after a restart every acknowledged incident and alert is there.
    let _ = stop.send(());
    engine.await.unwrap();
    drop((router, app));
    store.close().await;
    let store = db.open().await;
    for id in &created {
        assert!(store.incident(*id).await.unwrap().is_some(), "incident {id} answered 201 is gone after a restart");
    }
    let saved = store.load_correlator().await.unwrap().expect("the correlator was saved");
    for key in &alerts {
        assert!(saved.members.iter().any(|m| m.key.contains(key.as_str())), "alert {key} answered 202 is gone after a restart");
    }
    eprintln!(
        "full disk: {} incidents and {} alerts acknowledged and kept; {refused_incidents} creations and {refused_alerts} alerts refused with 503",
        created.len(),
        alerts.len()
    );
    store.close().await;
}

/// The value of one sample line in Prometheus text.
fn metric(text: &str, series: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}
