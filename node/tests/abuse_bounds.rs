//! Resource bounds under abuse: a real `lotline node` process, real TCP.
//!
//! While one set of clients abuses the API (oversized, deeply nested and
//! invalid UTF-8 bodies, a request head and a body trickled byte by byte,
//! thousands of idle connections), a well-behaved client keeps asking for
//! the head and must keep getting answers, the node's resident memory must
//! stay within a generous bound of where it started, and the trickling
//! connections must be cut by the node's timeouts.
//!
//! Correctness, not speed: no latency is asserted beyond "answered within
//! a timeout far above normal".

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::ChildGuard;

/// Idle connections the test tries to hold open at once.
const IDLE_CONNECTIONS_WANTED: usize = 10_000;
/// RSS growth allowed over the whole abuse: generous, but far below what
/// the abuse would cost unbounded (8 MB bodies echoed, 10k buffered
/// connections, unbounded nesting).
const RSS_GROWTH_MAX_KB: u64 = 400 * 1024;
/// A well-behaved request must be answered within this (normal: ms).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// The node, killed and reaped on every path (its guard), panics included.
struct NodeProcess {
    child: ChildGuard,
    addr: SocketAddr,
    log: PathBuf,
}

impl NodeProcess {
    fn start(dir: &Path) -> NodeProcess {
        let orgs = lotline_node::demo::parse_orgs(lotline_node::demo::DEMO_ORGS).expect("orgs");
        let port = support::free_ports(1);
        let layout = lotline_node::demo::create_consortium(
            dir,
            "abuse",
            &orgs,
            &["manufacturer".into()],
            port,
            0,
        )
        .expect("consortium");
        let config = layout.node_configs[0].clone();
        let log = dir.join("node.log");
        let child = ChildGuard::spawn(
            Command::new(env!("CARGO_BIN_EXE_lotline"))
                .args(["node", "--config"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&log).expect("log"))
                .stderr(std::fs::File::create(dir.join("node.err")).expect("log")),
        );
        let node = NodeProcess {
            child,
            addr: ([127, 0, 0, 1], port).into(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while get_head(node.addr).is_err() {
            assert!(Instant::now() < deadline, "the node did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        node
    }

    fn rss_kb(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().is_none()
    }
}

/// One raw HTTP/1.1 exchange; the status code of the answer.
fn exchange(addr: SocketAddr, head: &str, body: &[u8]) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, ANSWER_TIMEOUT)?;
    stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    stream.set_write_timeout(Some(ANSWER_TIMEOUT))?;
    stream.write_all(head.as_bytes())?;
    // The node may answer (413) and close before it has read the body.
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(e) if answer.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP answer: {text:?}")))
}

fn get_head(addr: SocketAddr) -> std::io::Result<u16> {
    exchange(
        addr,
        "GET /v1/head HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        b"",
    )
}

fn post(addr: SocketAddr, path: &str, body: &[u8]) -> std::io::Result<u16> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    exchange(addr, &head, body)
}

/// The well-behaved client: the head, answered 200.
fn assert_serving(node: &mut NodeProcess, during: &str) {
    assert!(node.alive(), "the node died during {during}");
    match get_head(node.addr) {
        Ok(200) => {}
        other => panic!("a well-behaved client got {other:?} during {during}"),
    }
}

/// The soft limit on open files of this process (`/proc/self/limits`).
fn open_files_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(1024)
}

/// Sends `head` one byte at a time, `pause` apart, until the node closes
/// the connection; returns how long the node let it trickle.
fn trickle(addr: SocketAddr, head: &[u8], pause: Duration, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(pause)).expect("timeout");
    for byte in head.iter().cycle() {
        if started.elapsed() > limit {
            panic!("the node let a trickling client hold its connection for {limit:?}");
        }
        if stream.write_all(&[*byte]).is_err() {
            return started.elapsed();
        }
        let mut buf = [0u8; 512];
        match stream.read(&mut buf) {
            // Closed (possibly after a 408 answer).
            Ok(0) => return started.elapsed(),
            Ok(_) => {
                // An answer (408): the node gave up on this request.
                return started.elapsed();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return started.elapsed(),
        }
    }
    unreachable!("cycle never ends")
}

/// Goal: abuse of the HTTP server costs the node bounded memory and never
/// stops it from serving a well-behaved client; slow clients are cut off.
#[test]
fn the_node_serves_a_well_behaved_client_through_abuse_with_bounded_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = NodeProcess::start(dir.path());
    let addr = node.addr;
    assert_serving(&mut node, "start");
    let rss_start = node.rss_kb();

    // Slow clients run in the background through the rest of the abuse.
    let header_trickler = std::thread::spawn(move || {
        trickle(
            addr,
            b"GET /v1/head HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            Duration::from_millis(200),
            lotline_node::api::serve::HEADER_READ_TIMEOUT + Duration::from_secs(15),
        )
    });
    let body_trickler = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .write_all(
                b"POST /v1/attestations HTTP/1.1\r\nHost: localhost\r\n\
                  Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
            )
            .expect("head");
        trickle_stream(
            stream,
            lotline_node::api::REQUEST_TIMEOUT + Duration::from_secs(15),
        )
    });

    // Oversized bodies: refused as 413 before they are read whole.
    let oversized = vec![b'['; lotline_core::limits::HTTP_BODY_BYTES_MAX + 1024 * 1024];
    for path in [
        "/v1/attestations",
        "/v1/attestations/batch",
        "/epcis/capture",
    ] {
        let status = post(addr, path, &oversized);
        assert!(
            matches!(status, Ok(413) | Ok(401)) || status.is_err(),
            "{path}: {status:?}"
        );
    }
    assert_serving(&mut node, "oversized bodies");

    // Deeply nested JSON: refused, no stack overflow.
    let depth = 1_000_000;
    let mut nested = vec![b'['; depth];
    nested.extend(std::iter::repeat_n(b']', depth));
    let mut nested_object = Vec::new();
    for _ in 0..200_000 {
        nested_object.extend_from_slice(b"{\"a\":");
    }
    nested_object.push(b'1');
    nested_object.extend(std::iter::repeat_n(b'}', 200_000));
    for body in [&nested, &nested_object] {
        for path in [
            "/v1/attestations",
            "/v1/attestations/batch",
            "/v1/recalls/scope",
        ] {
            let status = post(addr, path, body).expect("answer");
            assert!((400..500).contains(&status), "{path}: {status}");
        }
    }
    assert_serving(&mut node, "deeply nested JSON");

    // Invalid UTF-8.
    let invalid = [0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, b'{', 0x80];
    for path in [
        "/v1/attestations",
        "/v1/attestations/batch",
        "/v1/recalls/scope",
    ] {
        let status = post(addr, path, &invalid).expect("answer");
        assert!((400..500).contains(&status), "{path}: {status}");
    }
    let status = exchange(
        addr,
        "GET /v1/trace/%FF%FE HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        b"",
    )
    .expect("answer");
    assert!(
        (400..500).contains(&status),
        "trace of invalid UTF-8: {status}"
    );
    assert_serving(&mut node, "invalid UTF-8");

    // Idle connections: as many as this process may open, up to 10k.
    let budget = open_files_limit().saturating_sub(256);
    let wanted = IDLE_CONNECTIONS_WANTED.min(budget);
    println!(
        "idle connections: {wanted} (wanted {IDLE_CONNECTIONS_WANTED}, open-files limit {})",
        open_files_limit()
    );
    let mut idle = Vec::with_capacity(wanted);
    for _ in 0..wanted {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(stream) => idle.push(stream),
            Err(error) => panic!("connection {} refused: {error}", idle.len()),
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_serving(&mut node, "idle connections held open");
    let rss_idle = node.rss_kb();
    // The node closes idle connections after its header read timeout.
    std::thread::sleep(lotline_node::api::serve::HEADER_READ_TIMEOUT + Duration::from_secs(3));
    let mut closed = 0;
    for stream in &mut idle {
        stream
            .set_read_timeout(Some(Duration::from_millis(10)))
            .expect("timeout");
        let mut buf = [0u8; 1];
        if matches!(stream.read(&mut buf), Ok(0)) {
            closed += 1;
        }
    }
    drop(idle);
    assert!(
        closed >= wanted * 9 / 10,
        "the node closed only {closed} of {wanted} idle connections after its header read timeout"
    );
    assert_serving(&mut node, "idle connections");

    let header_cut = header_trickler.join().expect("header trickler");
    let body_cut = body_trickler.join().expect("body trickler");
    assert_serving(&mut node, "slow clients");
    let rss_end = node.rss_kb();
    println!(
        "RSS: start {rss_start} kB, with {wanted} idle connections {rss_idle} kB, end {rss_end} kB; \
         trickled head cut after {header_cut:?}, trickled body after {body_cut:?}"
    );
    for (when, rss) in [("idle connections", rss_idle), ("end", rss_end)] {
        assert!(
            rss.saturating_sub(rss_start) <= RSS_GROWTH_MAX_KB,
            "RSS grew from {rss_start} kB to {rss} kB ({when}); log in {}",
            node.log.display()
        );
    }
}

/// Trickles body bytes on an open request until the node answers or closes.
fn trickle_stream(mut stream: TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    loop {
        if started.elapsed() > limit {
            panic!("the node let a trickled body hold its request for {limit:?}");
        }
        if stream.write_all(b" ").is_err() {
            return started.elapsed();
        }
        let mut buf = [0u8; 512];
        match stream.read(&mut buf) {
            Ok(_) => return started.elapsed(),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return started.elapsed(),
        }
    }
}
