//! The delivery loop of one endpoint: read the feed after the saved
//! position, send each payload until the endpoint answers 2xx (waiting
//! [`super::backoff::delay`] between failures), then save its position.
//! One task per endpoint; the only code in `push/` that touches the network.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::cursor::{Cursor, CursorError};
use super::{Endpoint, Feed, Payload, backoff, sign};

/// A request that has not answered by then counts as a failure.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Payloads read from the feed at once.
pub const BATCH: usize = 64;
/// How often an idle endpoint looks at its feed again.
pub const IDLE_POLL: Duration = Duration::from_millis(100);
/// The header naming a delivery (`<endpoint id>/<position>`): the same
/// payload always carries the same value, so receivers deduplicate on it.
pub const DELIVERY_HEADER: &str = "x-lotline-delivery";

/// What one endpoint's loop has done since start.
#[derive(Debug, Default)]
pub struct Progress {
    /// The last acknowledged (and saved) position.
    pub position: AtomicU64,
    pub delivered: AtomicU64,
    /// Failed attempts (non-2xx answers, timeouts, refused connections).
    pub failures: AtomicU64,
    /// Failed attempts since the last acknowledgement: above 0 while the
    /// endpoint is failing (what a subscription reports as its status).
    pub streak: AtomicU64,
    /// When the endpoint last acknowledged a payload (unix ms; 0: never).
    pub acknowledged_ms: AtomicU64,
}

/// A running delivery loop.
#[derive(Debug)]
pub struct Delivery {
    pub endpoint: String,
    pub progress: Arc<Progress>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Delivery {
    /// Starts delivering `feed` to `endpoint` from the position saved in
    /// `dir` (the start of the feed if none). Must run inside tokio.
    pub fn start(
        endpoint: Endpoint,
        feed: Arc<dyn Feed>,
        dir: &std::path::Path,
    ) -> Result<Delivery, CursorError> {
        let cursor = Cursor::new(dir, &endpoint.id);
        let position = cursor.load()?;
        let progress = Arc::new(Progress::default());
        progress.position.store(position, Ordering::Release);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let name = endpoint.id.clone();
        let task = tokio::spawn(run(
            endpoint,
            feed,
            cursor,
            position,
            progress.clone(),
            stopped,
        ));
        Ok(Delivery {
            endpoint: name,
            progress,
            stop,
            task,
        })
    }

    /// Stops after the request in flight (its payload is sent again at the
    /// next start unless it was acknowledged and saved).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Sleeps for `wait` unless told to stop first; true when told to stop.
async fn pause(stopped: &mut tokio::sync::watch::Receiver<bool>, wait: Duration) -> bool {
    if *stopped.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(wait) => *stopped.borrow(),
        _ = stopped.changed() => true,
    }
}

async fn run(
    endpoint: Endpoint,
    feed: Arc<dyn Feed>,
    cursor: Cursor,
    mut position: u64,
    progress: Arc<Progress>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(endpoint = %endpoint.id, %error, "webhook client not built; nothing is delivered");
            return;
        }
    };
    let cursor = Arc::new(cursor);
    loop {
        let source = feed.clone();
        let after = position;
        let batch = match tokio::task::spawn_blocking(move || source.after(after, BATCH)).await {
            Ok(Ok(batch)) => batch,
            Ok(Err(error)) => {
                tracing::warn!(endpoint = %endpoint.id, %error, "webhook feed unreadable");
                Vec::new()
            }
            Err(error) => {
                tracing::warn!(endpoint = %endpoint.id, %error, "webhook feed read failed");
                Vec::new()
            }
        };
        if batch.is_empty() {
            if pause(&mut stopped, IDLE_POLL).await {
                return;
            }
            continue;
        }
        for payload in batch {
            assert!(payload.position > position, "a feed went backwards");
            let mut failures = 0u32;
            loop {
                if *stopped.borrow() {
                    return;
                }
                match send(&client, &endpoint, &payload).await {
                    Ok(()) => break,
                    Err(reason) => {
                        failures = failures.saturating_add(1);
                        progress.failures.fetch_add(1, Ordering::Relaxed);
                        progress.streak.fetch_add(1, Ordering::Relaxed);
                        let wait = backoff::delay(failures);
                        tracing::warn!(endpoint = %endpoint.id, position = payload.position, failures, ?wait, %reason, "webhook delivery failed; retrying");
                        if pause(&mut stopped, wait).await {
                            return;
                        }
                    }
                }
            }
            position = payload.position;
            let saver = cursor.clone();
            match tokio::task::spawn_blocking(move || saver.save(position)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    // Delivered but not saved: sent again after a restart
                    // (at least once).
                    tracing::error!(endpoint = %endpoint.id, %error, "webhook position not saved");
                }
                Err(error) => {
                    tracing::error!(endpoint = %endpoint.id, %error, "webhook position not saved")
                }
            }
            progress.position.store(position, Ordering::Release);
            progress.delivered.fetch_add(1, Ordering::Relaxed);
            progress.streak.store(0, Ordering::Relaxed);
            progress
                .acknowledged_ms
                .store(crate::clock::unix_ms(), Ordering::Relaxed);
        }
    }
}

async fn send(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    payload: &Payload,
) -> Result<(), String> {
    let now = crate::clock::unix_ms() / 1000;
    let signature = sign::signature(&endpoint.secret, now, &payload.body);
    let response = client
        .post(endpoint.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            DELIVERY_HEADER,
            format!("{}/{}", endpoint.id, payload.position),
        )
        // EPCIS 2.0 subscriptions name the header `GS1-Signature`; the
        // value is the same.
        .header(sign::GS1_HEADER, &signature)
        .header(sign::HEADER, signature)
        .body(payload.body.clone())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}
