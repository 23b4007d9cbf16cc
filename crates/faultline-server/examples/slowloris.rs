//! A bounded slowloris against a running Faultline, for the connection
//! figures in docs/benchmarks.md: it opens slow-header, stalled-body and
//! silent connections, then times a normal client's requests while they are
//! held, and reports when the server closed them (and how many it refused).
//!
//! What it is not: a load generator or a test (the test is
//! `connections::a_bounded_slowloris_…` in the server's integration tests).
//!
//! `cargo run -p faultline-server --example slowloris -- ADDR TOKEN [SLOW_HEADERS SLOW_BODIES SILENT]`

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(addr), Some(token)) = (args.first().cloned(), args.get(1).cloned()) else {
        eprintln!("usage: slowloris ADDR TOKEN [SLOW_HEADERS SLOW_BODIES SILENT]");
        std::process::exit(2);
    };
    let n = |i: usize| args.get(i).and_then(|s| s.parse::<usize>().ok()).unwrap_or(500);
    let (headers, bodies, silent) = (n(2), n(3), n(4));
    let _ = faultline_server::serve::raise_fd_limit();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut refused = 0usize;
    for i in 0..headers + bodies + silent {
        let mut c = match TcpStream::connect(&addr).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("connect {i}: {e}");
                continue;
            }
        };
        let kind = if i < headers {
            let _ = c.write_all(b"POST /api/v2/alerts HTTP/1.1\r\nhost: x\r\n").await;
            "slow-header"
        } else if i < headers + bodies {
            let head = format!(
                "POST /api/v2/alerts HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: 65536\r\n\r\n[{{\"la"
            );
            let _ = c.write_all(head.as_bytes()).await;
            "slow-body"
        } else {
            "silent"
        };
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut buf = [0u8; 512];
            loop {
                match c.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            (kind, started.elapsed(), String::from_utf8_lossy(&seen).contains("too_many_connections"))
        }));
    }
    println!("opened {} connections in {:.2} s", tasks.len(), started.elapsed().as_secs_f64());

    // A normal client, one request after another, while the slow ones are held.
    let client = reqwest::Client::new();
    let mut lat = Vec::new();
    let mut failed = 0;
    for _ in 0..200 {
        let t = Instant::now();
        match client.get(format!("http://{addr}/healthz")).timeout(Duration::from_secs(30)).send().await {
            Ok(r) if r.status().is_success() => lat.push(t.elapsed().as_secs_f64() * 1000.0),
            _ => failed += 1,
        }
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(f64::NAN);
    println!("normal client while held: {} ok, {failed} failed; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", lat.len(), pct(0.5), pct(0.99), pct(1.0));

    let mut by_kind: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    for t in tasks {
        if let Ok((kind, at, was_refused)) = t.await {
            if was_refused {
                refused += 1;
            } else {
                by_kind.entry(kind).or_default().push(at.as_secs_f64());
            }
        }
    }
    for (kind, mut at) in by_kind {
        at.sort_by(f64::total_cmp);
        println!("{kind}: {} closed by the server, first at {:.1} s, last at {:.1} s", at.len(), at[0], at[at.len() - 1]);
    }
    println!("refused at the connection cap: {refused}");
}
