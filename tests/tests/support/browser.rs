//! Headless Chromium (Debian's `chromium`) for page tests, with the
//! screenshots kept under `target/artifacts/`.
//!
//! - [`chromium`]: one page, no state: a screenshot and the DOM after
//!   rendering (the consumer page).
//! - [`Browser`]: one browser driven over the DevTools protocol on a pipe
//!   (`--remote-debugging-pipe`: JSON messages ending in a NUL byte on fds 3
//!   and 4, mapped here onto the child's stdin and stdout), so a test can
//!   fill and post forms and keep cookies between pages, as a user's
//!   browser does (the dashboard's login).
//!
//! Both block: call them from `spawn_blocking` in async tests.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

const FLAGS: [&str; 6] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--disable-dev-shm-usage",
];

/// Generous: other builds share the cores.
const WAIT: Duration = Duration::from_secs(180);

pub fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

/// A 375 px wide screenshot of `url`, and the DOM after rendering.
pub fn chromium(url: &str, screenshot: &Path) -> String {
    let shot = Command::new("chromium")
        .args(FLAGS)
        .arg("--window-size=375,2200")
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(url)
        .output()
        .expect("chromium is installed (apt-get install chromium; .ci/run does)");
    assert!(shot.status.success(), "chromium screenshot: {shot:?}");
    let dom = Command::new("chromium")
        .args(FLAGS)
        .arg("--window-size=375,2200")
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("chromium");
    assert!(dom.status.success(), "chromium dump-dom: {dom:?}");
    String::from_utf8(dom.stdout).expect("utf-8 DOM")
}

/// Width and height from a PNG's IHDR chunk.
pub fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[1..4], b"PNG");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// One headless Chromium with one page, driven over the DevTools protocol.
pub struct Browser {
    child: Child,
    input: ChildStdin,
    messages: Receiver<Value>,
    events: VecDeque<Value>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A fresh browser (its own empty profile) with one page `width` wide.
    pub fn start(width: u32) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "exec chromium {} --remote-debugging-pipe --user-data-dir={} about:blank 3<&0 4>&1 0</dev/null 1>/dev/null",
                FLAGS.join(" "),
                profile.path().display()
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium is installed (apt-get install chromium; .ci/run does)");
        let input = child.stdin.take().expect("stdin");
        let output = child.stdout.take().expect("stdout");
        let (tx, messages) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(output);
            let mut message = Vec::new();
            while reader.read_until(0, &mut message).is_ok_and(|n| n > 0) {
                if message.last() == Some(&0) {
                    message.pop();
                }
                if let Ok(value) = serde_json::from_slice::<Value>(&message)
                    && tx.send(value).is_err()
                {
                    return;
                }
                message.clear();
            }
        });
        let mut browser = Browser {
            child,
            input,
            messages,
            events: VecDeque::new(),
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a session")
            .to_owned();
        browser.call("Page.enable", json!({}));
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        );
        browser
    }

    /// Sends one command (to the page, once attached) and waits for its
    /// answer; events that arrive meanwhile are kept.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("json");
        bytes.push(0);
        self.input.write_all(&bytes).expect("write to chromium");
        self.input.flush().expect("flush");
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let value = self
                .messages
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("chromium did not answer {method}: {e}"));
            if value["id"] == json!(id) {
                assert!(value["error"].is_null(), "{method}: {value}");
                return value["result"].clone();
            }
            self.events.push_back(value);
        }
    }

    /// Waits for the page's next load event.
    fn loaded(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(at) = self
                .events
                .iter()
                .position(|e| e["method"] == "Page.loadEventFired")
            {
                self.events.drain(..=at);
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let value = self
                .messages
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("the page did not load: {e}"));
            self.events.push_back(value);
        }
    }

    /// Opens `url` and waits until it has loaded.
    pub fn open(&mut self, url: &str) {
        self.events.clear();
        let answer = self.call("Page.navigate", json!({"url": url}));
        assert!(answer["errorText"].is_null(), "{url}: {answer}");
        self.loaded();
    }

    /// Runs `script` in the page and returns its value.
    pub fn eval(&mut self, script: &str) -> Value {
        let answer = self.call(
            "Runtime.evaluate",
            json!({"expression": script, "returnByValue": true}),
        );
        assert!(answer["exceptionDetails"].is_null(), "{script}: {answer}");
        answer["result"]["value"].clone()
    }

    /// Runs `script`, which submits a form, and waits for the next page.
    pub fn submit(&mut self, script: &str) {
        self.events.clear();
        self.eval(script);
        self.loaded();
    }

    /// A screenshot of the whole page, written to `path`.
    pub fn screenshot(&mut self, path: &Path) -> Vec<u8> {
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("png data"))
            .expect("base64");
        std::fs::write(path, &png).expect("screenshot written");
        png
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
