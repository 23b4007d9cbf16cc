//! The fuzz targets' bodies (`fuzz/bodies.rs`, the same code cargo-fuzz
//! runs) on a bounded, seeded stream of mutated inputs, in the normal test
//! suite: every change runs them, on the stable toolchain, in seconds.
//! Seeds are valid payloads of each format; mutations flip bits, overwrite,
//! insert, delete, duplicate and splice bytes and drop in tokens JSON and
//! YAML parsers care about. Deterministic: a fixed seed per target, a fixed
//! number of inputs (`FAULTLINE_FUZZ_INPUTS` raises it for a longer run).
//! A panic names the target and the input. Not here: coverage guidance —
//! that is `cargo fuzz run` on the same bodies.

#[path = "../../../../fuzz/bodies.rs"]
mod bodies;

/// SplitMix64: a small seeded generator (no entropy, no clock).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"true",
    b"-1",
    b"1e999",
    b"18446744073709551616",
    b"\"\\u0000\"",
    b"\"\\ud800\"",
    b"0001-01-01T00:00:00Z",
    b"9999-12-31T23:59:59Z",
    b"\n- ",
    b": &a",
    b"*a",
    b"!!binary",
    b"\t",
    b"\xff",
    b"\xf0\x9f\x92\xa5",
    b"[[",
    b"=",
];

fn mutate(rng: &mut SplitMix, input: &mut Vec<u8>, seeds: &[&[u8]]) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(len + 1);
                input.insert(i, rng.next() as u8);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below((len - i).min(64)) + 1;
                input.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below((len - i).min(64)) + 1;
                let copy = input[i..i + n].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, copy);
            }
            5 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                let at = rng.below(len + 1);
                input.splice(at..at, token.iter().copied());
            }
            6 => {
                let other = seeds[rng.below(seeds.len())];
                let (cut, from) = (rng.below(len + 1), rng.below(other.len() + 1));
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            _ => input.truncate(rng.below(len + 1)),
        }
    }
}

fn inputs() -> usize {
    std::env::var("FAULTLINE_FUZZ_INPUTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1500)
}

/// Runs `body` on every seed and on `inputs()` mutations of them.
fn run(name: &str, seed: u64, seeds: &[&[u8]], body: fn(&[u8])) {
    let mut rng = SplitMix(seed);
    let check = |input: &[u8]| {
        if std::panic::catch_unwind(|| body(input)).is_err() {
            panic!("fuzz target {name} panicked on input {:?}", String::from_utf8_lossy(input));
        }
    };
    for s in seeds {
        check(s);
    }
    for _ in 0..inputs() {
        let mut input = seeds[rng.below(seeds.len())].to_vec();
        mutate(&mut rng, &mut input, seeds);
        check(&input);
    }
}

const AM_V2: &[u8] = br#"[{"labels":{"alertname":"GatewayErrors","service":"gateway","severity":"page"},"annotations":{"summary":"gateway 5xx above 5%"},"startsAt":"2026-11-21T11:59:00Z","endsAt":"2026-11-21T12:05:00Z","generatorURL":"http://prom/graph"}]"#;
const WEBHOOK: &[u8] = br#"{"version":"4","groupKey":"g","status":"firing","receiver":"faultline","groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am","alerts":[{"status":"firing","labels":{"alertname":"LedgerSlow","service":"ledger"},"annotations":{},"startsAt":"2026-11-21T11:58:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"aaaa000011112222"}]}"#;
const PD: &[u8] = br#"{"routing_key":"R1","event_action":"trigger","dedup_key":"db-1","payload":{"summary":"fraud-db down","source":"db1","severity":"critical","component":"fraud-db","custom_details":{"a":1}}}"#;
const PD_ACK: &[u8] = br#"{"routing_key":"R1","event_action":"acknowledge","dedup_key":"db-1"}"#;
const GENERIC: &[u8] = br#"{"title":"ledger queue backing up","service":"ledger","severity":"warning","dedup_key":"k1","labels":{"team":"payments"}}"#;

const RESPONSE_YAML: &[u8] = br#"
users:
  - {id: alice, contacts: [{channel: hook}]}
schedules:
  - name: payments-primary
    time_zone: Europe/London
    layers:
      - name: office
        start: "2026-01-05T09:00:00"
        rotation: weekly
        participants: [alice]
        restrictions: [{type: daily, days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}]
escalation_policies:
  - {name: payments, levels: [{delay_minutes: 5, targets: [{user: alice}, {schedule: payments-primary}]}]}
routes:
  - {matchers: ["service=~checkout|payments"], escalation_policy: payments}
channels:
  - {name: hook, type: webhook, url: "http://127.0.0.1:9/hook"}
  - {name: mail, type: smtp, host: smtp.example.com, from: "faultline@example.com", password_env: SMTP_PASSWORD}
status_page: {name: Example, url: "https://status.example.com"}
"#;
const RESPONSE_TOML: &[u8] = br#"
[[users]]
id = "alice"
contacts = [{ channel = "hook" }]

[[channels]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/hook"

[[escalation_policies]]
name = "payments"
levels = [{ delay_minutes = 5, targets = [{ user = "alice" }] }]
"#;

#[test]
fn alert_decoders_never_panic_on_mutated_bodies() {
    run("alert_decoders", 1, &[AM_V2, WEBHOOK, PD, PD_ACK, GENERIC, b"[]", b"{}"], bodies::alert_decoders);
}

#[test]
fn the_response_config_parser_never_panics_on_mutated_configs() {
    run("response_config", 2, &[RESPONSE_YAML, RESPONSE_TOML, b"{}"], bodies::response_config);
}

#[test]
fn telemetry_decoders_never_panic_on_mutated_payloads() {
    let traces = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"GET /pay","kind":3,"startTimeUnixNano":"1800000000000000000","endTimeUnixNano":"1800000000100000000","status":{"code":2}}]}]}]}"#;
    let metrics = br#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},"scopeMetrics":[{"metrics":[{"name":"queue_depth","gauge":{"dataPoints":[{"timeUnixNano":"1800000000000000000","asDouble":3.5}]}}]}]}]}"#;
    let logs = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},"scopeLogs":[{"logRecords":[{"timeUnixNano":"1800000000000000000","severityNumber":17,"body":{"stringValue":"boom"}}]}]}]}"#;
    run("otlp_traces_json", 3, &[traces], bodies::otlp_traces_json);
    run("otlp_metrics", 4, &[metrics], bodies::otlp_metrics);
    run("otlp_logs", 5, &[logs], bodies::otlp_logs);
    // A remote-write WriteRequest (uncompressed: the body compresses it).
    let write = b"\n\x2a\n\x10\n\x08__name__\x12\x04up\n\x0b\n\x03job\x12\x04node\x12\x0b\t\x00\x00\x00\x00\x00\x00\xf0?\x10\xe8\x07";
    run("remote_write", 6, &[write], bodies::remote_write);
    let gz = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xcbH\xcd\xc9\xc9\x07\x00\x86\xa6\x106\x05\x00\x00\x00";
    run("gunzip", 7, &[gz], bodies::gunzip);
    let catalogue = b"teams:\n  - {id: payments, name: Payments, members: [alice]}\nservices:\n  - {name: checkout, owner: payments}\nflows:\n  - name: checkout\n    owner: payments\n    interactions: [{caller: frontend, callee: checkout}]\n";
    run("catalogue_yaml", 8, &[catalogue], bodies::catalogue_yaml);
}
