//! EPCIS 2.0 named queries and subscriptions over HTTP
//! (`/epcis/queries/...`): translation only. The records, the delivery
//! loops and the allowlist are `crate::epcis::subscriptions`; a named
//! query's events are answered by the same query path as `/epcis/events`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::epcis::{Format, run_query};
use super::{ApiContext, ApiError};
use crate::access::Identity;
use crate::epcis::query;
use crate::epcis::subscriptions::book::{NamedQuery, Subscription, pairs};
use crate::epcis::subscriptions::destination::Refused;
use crate::epcis::subscriptions::feed::{self, QueryFeed};
use crate::epcis::subscriptions::{QueryError, StreamSlot, SubscribeError, SubscribeRequest};
use crate::push::Feed;

/// How often an idle stream looks for new commits.
const STREAM_POLL: std::time::Duration = std::time::Duration::from_millis(200);
/// Events read from the feed at once by a stream.
const STREAM_BATCH: usize = 64;

pub fn routes() -> Router<Arc<ApiContext>> {
    Router::new()
        .route("/epcis/queries", get(list).post(create))
        .route("/epcis/queries/{queryName}", get(one).delete(delete))
        .route("/epcis/queries/{queryName}/events", get(events))
        .route(
            "/epcis/queries/{queryName}/subscriptions",
            get(list_subscriptions).post(subscribe),
        )
        .route(
            "/epcis/queries/{queryName}/subscriptions/{subscriptionID}",
            get(one_subscription).delete(unsubscribe),
        )
}

/// Named queries belong to an org: anonymous callers have none.
fn org_of(identity: &Identity) -> Result<String, ApiError> {
    match identity.caller() {
        Some(caller) => Ok(caller.org.clone()),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Credential required",
            "named queries and subscriptions belong to an org: send a bearer token",
        )),
    }
}

fn no_query(name: &str) -> ApiError {
    ApiError::not_found(format!("no query named {name:?}"))
}

fn query_json(q: &NamedQuery) -> Value {
    json!({"name": q.name, "query": q.query})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    query: Map<String, Value>,
}

/// `POST /epcis/queries`: 201 with `Location: /epcis/queries/{name}`.
async fn create(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let org = org_of(&identity)?;
    let body = body?;
    let body: CreateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("bad-query-definition", e.to_string()))?;
    let registry = ctx.subscriptions.clone();
    let name = body.name.clone();
    let created =
        tokio::task::spawn_blocking(move || registry.create_query(&org, &name, body.query))
            .await
            .map_err(ApiError::internal)?;
    let named = created.map_err(|e| match e {
        QueryError::Definition(e @ crate::epcis::subscriptions::book::DefinitionError::Name(_)) => {
            ApiError::bad_request("bad-query-definition", e.to_string())
        }
        QueryError::Definition(e) => ApiError::unprocessable("bad-query-definition", e.to_string()),
        e @ (QueryError::Exists(_) | QueryError::Full) => ApiError::new(
            StatusCode::CONFLICT,
            "query-exists",
            "Conflict",
            e.to_string(),
        ),
        QueryError::Store(e) => ApiError::internal(e),
    })?;
    let location = format!("/epcis/queries/{}", named.name);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(query_json(&named)),
    )
        .into_response())
}

/// `GET /epcis/queries`: the caller's org's named queries.
async fn list(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
) -> Result<Json<Value>, ApiError> {
    let org = org_of(&identity)?;
    let queries = ctx
        .subscriptions
        .queries(&org)
        .map_err(ApiError::internal)?;
    Ok(Json(Value::Array(queries.iter().map(query_json).collect())))
}

async fn one(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let org = org_of(&identity)?;
    let Path(name) = path?;
    match ctx.subscriptions.query(&org, &name) {
        Ok(Some(q)) => Ok(Json(query_json(&q))),
        Ok(None) => Err(no_query(&name)),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// `DELETE /epcis/queries/{name}`: also ends its subscriptions and streams.
async fn delete(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let org = org_of(&identity)?;
    let Path(name) = path?;
    match ctx.subscriptions.delete_query(&org, &name).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(no_query(&name)),
        Err(e) => Err(ApiError::internal(e)),
    }
}

type Pairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// `GET /epcis/queries/{name}/events`: a page of the query's events, or,
/// with `stream=true` and a WebSocket upgrade, a stream of every new one.
async fn events(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    pairs_in: Pairs,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let org = org_of(&identity)?;
    let Path(name) = path?;
    let Query(request) = pairs_in?;
    let mut stream = false;
    let mut resume = None;
    let mut paging = Vec::new();
    for (key, value) in request {
        match key.as_str() {
            "stream" => {
                stream = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(ApiError::bad_request("bad-query", "stream: true or false"));
                    }
                }
            }
            "nextPageToken" => {
                resume = Some(value.clone());
                paging.push((key, value));
            }
            "perPage" => paging.push((key, value)),
            _ => {
                return Err(ApiError::bad_request(
                    "bad-query",
                    format!(
                        "{key}: a named query's events take perPage, nextPageToken and stream; its filters are its definition"
                    ),
                ));
            }
        }
    }
    let named = match ctx.subscriptions.query(&org, &name) {
        Ok(Some(q)) => q,
        Ok(None) => return Err(no_query(&name)),
        Err(e) => return Err(ApiError::internal(e)),
    };
    if !stream {
        let fixed = pairs(&named.query)
            .map_err(|e| ApiError::unprocessable("bad-query-definition", e.to_string()))?;
        let base = format!(
            "/epcis/queries/{}/events",
            lotline_sdk::encode_segment(&name)
        );
        return run_query(ctx, identity, Format::of(&headers), base, fixed, paging).await;
    }
    let Ok(upgrade) = upgrade else {
        return Err(ApiError::unprocessable(
            "websocket-required",
            "stream=true opens a WebSocket: send the upgrade handshake (Upgrade: websocket)",
        ));
    };
    let after = match resume {
        Some(token) => query::Query::parse(&[("nextPageToken".to_owned(), token)])
            .map_err(|e| ApiError::unprocessable("bad-query", e.to_string()))?
            .after
            .map_or(0, feed::position),
        None => ctx.subscriptions.tip().map_err(ApiError::internal)?,
    };
    let (feed, slot) = match ctx.subscriptions.stream(&org, &name) {
        Ok(Some(opened)) => opened,
        Ok(None) => return Err(no_query(&name)),
        Err(SubscribeError::Unprocessable(detail)) => {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-streams",
                "Too many streams",
                detail,
            ));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let registry = ctx.subscriptions.clone();
    Ok(upgrade.on_upgrade(move |socket| async move {
        let check = move || registry.exists(&org, &name);
        push_stream(socket, Arc::new(feed), after, slot, check).await;
    }))
}

/// Sends every new event of `feed` after `after` as a text message until
/// the client closes, the connection fails or the query is deleted.
async fn push_stream(
    socket: WebSocket,
    feed: Arc<QueryFeed>,
    mut after: u64,
    _slot: StreamSlot,
    query_exists: impl Fn() -> bool,
) {
    let (mut tx, mut rx) = socket.split();
    loop {
        if !query_exists() {
            let frame = CloseFrame {
                code: axum::extract::ws::close_code::NORMAL,
                reason: "the query was deleted".into(),
            };
            let _ = tx.send(Message::Close(Some(frame))).await;
            return;
        }
        let source = feed.clone();
        let from = after;
        let batch =
            match tokio::task::spawn_blocking(move || source.after(from, STREAM_BATCH)).await {
                Ok(Ok(batch)) => batch,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "stream feed unreadable");
                    Vec::new()
                }
                Err(error) => {
                    tracing::warn!(%error, "stream feed read failed");
                    Vec::new()
                }
            };
        let idle = batch.is_empty();
        for payload in batch {
            let Ok(text) = String::from_utf8(payload.body) else {
                return;
            };
            if tx.send(Message::Text(text.into())).await.is_err() {
                return;
            }
            after = payload.position;
        }
        if idle {
            tokio::select! {
                incoming = rx.next() => match incoming {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(_)) => {}
                },
                _ = tokio::time::sleep(STREAM_POLL) => {}
            }
        }
    }
}

fn subscription_json(
    s: &Subscription,
    status: Option<crate::epcis::subscriptions::Status>,
) -> Value {
    let mut out = json!({
        "subscriptionID": s.id,
        "queryName": s.query,
        "dest": s.dest,
        "stream": true,
        "createdAt": lotline_core::time::format_rfc3339_ms(s.created_ms),
    });
    if let Some(time) = &s.initial_record_time {
        out["initialRecordTime"] = time.clone().into();
    }
    if let Some(status) = status {
        if status.acknowledged_ms > 0 {
            out["lastNotifiedAt"] = lotline_core::time::format_rfc3339_ms(
                i64::try_from(status.acknowledged_ms).unwrap_or(i64::MAX),
            )
            .into();
        }
        let state = if status.streak > 0 {
            "failing"
        } else {
            "active"
        };
        out["lotline:status"] = state.into();
        out["lotline:delivered"] = status.delivered.into();
        out["lotline:failedAttempts"] = status.failures.into();
        out["lotline:failingAttempts"] = status.streak.into();
        out["lotline:position"] = feed::token(status.position).into();
    } else {
        out["lotline:status"] = "stopped".into();
    }
    out
}

async fn list_subscriptions(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let org = org_of(&identity)?;
    let Path(name) = path?;
    if ctx
        .subscriptions
        .query(&org, &name)
        .map_err(ApiError::internal)?
        .is_none()
    {
        return Err(no_query(&name));
    }
    let mut out = Vec::new();
    for s in ctx
        .subscriptions
        .subscriptions(&org, &name)
        .map_err(ApiError::internal)?
    {
        let status = ctx.subscriptions.status(&s.id).await;
        out.push(subscription_json(&s, status));
    }
    Ok(Json(Value::Array(out)))
}

/// `POST /epcis/queries/{name}/subscriptions`: a webhook, pushed every new
/// matching event from now (or from `initialRecordTime`).
async fn subscribe(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let org = org_of(&identity)?;
    let Path(name) = path?;
    let body = body?;
    let request: SubscribeRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("bad-subscription", e.to_string()))?;
    let created = ctx
        .subscriptions
        .subscribe(&org, &name, request)
        .await
        .map_err(|e| match e {
            SubscribeError::NoQuery => no_query(&name),
            SubscribeError::Malformed(detail) => ApiError::bad_request("bad-subscription", detail),
            SubscribeError::Unprocessable(detail) => {
                ApiError::unprocessable("bad-subscription", detail)
            }
            SubscribeError::Destination(refused @ Refused::NotAllowed(_)) => ApiError::new(
                StatusCode::FORBIDDEN,
                "destination-not-allowed",
                "Destination not allowed",
                format!("{refused}; the node operator lists the hosts subscriptions may call ([subscriptions] allow)"),
            ),
            SubscribeError::Destination(refused) => {
                ApiError::unprocessable("bad-destination", refused.to_string())
            }
            e @ SubscribeError::Full => ApiError::new(
                StatusCode::CONFLICT,
                "too-many-subscriptions",
                "Conflict",
                e.to_string(),
            ),
            SubscribeError::Store(e) => ApiError::internal(e),
        })?;
    let status = ctx.subscriptions.status(&created.id).await;
    let location = format!(
        "/epcis/queries/{}/subscriptions/{}",
        created.query, created.id
    );
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(subscription_json(&created, status)),
    )
        .into_response())
}

async fn one_subscription(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let org = org_of(&identity)?;
    let Path((name, id)) = path?;
    match ctx.subscriptions.subscription(&org, &name, &id) {
        Ok(Some(s)) => {
            let status = ctx.subscriptions.status(&s.id).await;
            Ok(Json(subscription_json(&s, status)))
        }
        Ok(None) => Err(ApiError::not_found(format!(
            "no subscription {id:?} to {name:?}"
        ))),
        Err(e) => Err(ApiError::internal(e)),
    }
}

async fn unsubscribe(
    State(ctx): State<Arc<ApiContext>>,
    identity: Identity,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let org = org_of(&identity)?;
    let Path((name, id)) = path?;
    match ctx.subscriptions.unsubscribe(&org, &name, &id).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::not_found(format!(
            "no subscription {id:?} to {name:?}"
        ))),
        Err(e) => Err(ApiError::internal(e)),
    }
}
