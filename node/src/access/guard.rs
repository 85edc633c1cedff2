//! The middleware in front of every route: authenticate, rate-limit, run
//! the handler, then record the access in the audit trail before the
//! response leaves.
//!
//! Order matters: the IP bucket is charged before a token is checked, so
//! guessing tokens costs rate; a valid credential is then charged to its own
//! bucket instead (a gateway behind one IP is not throttled as one client).
//! Without a bearer token, a dashboard session cookie stands for the
//! credential that logged in (`dashboard::session`, safe methods and the
//! dashboard's CSRF-checked forms only).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::rate_limit::retry_after_secs;
use super::{Caller, Identity};
use crate::api::{ApiContext, ApiError};
use crate::audit::{self, Action};

pub async fn guard(
    State(ctx): State<Arc<ApiContext>>,
    mut request: Request,
    next: Next,
) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let resource = resource(&request);
    let now = Instant::now();
    let bearer = match bearer(&request) {
        Ok(bearer) => bearer,
        Err(error) => return error.into_response(),
    };
    let session = match bearer {
        None if crate::dashboard::session::applies(request.method(), request.uri().path()) => {
            ctx.sessions.current(request.headers())
        }
        _ => None,
    };
    let identity = match (bearer, session) {
        (None, Some(session)) => {
            // A dashboard session stands for the credential it logged in
            // with, and is charged to that credential's bucket.
            if let Err(wait) = ctx
                .access
                .per_credential
                .check(&session.caller.credential, now)
            {
                return too_many(wait);
            }
            let caller = session.caller.clone();
            request.extensions_mut().insert(session);
            Identity::Caller(caller)
        }
        (None, None) => {
            if let Err(wait) = ctx.access.per_ip.check(&ip, now) {
                return too_many(wait);
            }
            Identity::Anonymous
        }
        (Some(token), _) => match ctx.access.credentials.authenticate(&token) {
            Ok(credential) => {
                if let Err(wait) = ctx.access.per_credential.check(&credential.id, now) {
                    return too_many(wait);
                }
                Identity::Caller(Caller {
                    org: credential.org.clone(),
                    role: credential.role,
                    credential: credential.id.clone(),
                    operator: credential.operator,
                })
            }
            Err(_) => {
                if let Err(wait) = ctx.access.per_ip.check(&ip, now) {
                    return too_many(wait);
                }
                let refused = unauthorized();
                let access = audit::Access {
                    caller: "invalid-token".into(),
                    org: None,
                    client: Some(ip.to_string()),
                    action: Action::AuthFailure,
                    resource,
                    outcome: refused.status().as_u16(),
                };
                return match audited(&ctx, access).await {
                    Ok(()) => refused,
                    Err(error) => error.into_response(),
                };
            }
        },
    };
    // A credential speaks for its org only while the org is a member: the
    // membership in force decides, and gives the role (governance changes
    // both by vote). The refusal is audited like any other answer.
    let mut refusal = None;
    let identity = match identity {
        Identity::Caller(mut caller) => {
            match ctx.rules().org(&caller.org) {
                Some(org) => caller.role = org.role,
                None => refusal = Some(not_member(&caller.org)),
            }
            Identity::Caller(caller)
        }
        anonymous => anonymous,
    };
    let caller = identity.caller().cloned();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    request.extensions_mut().insert(identity);
    let response = match refusal {
        Some(refused) => refused,
        None => next.run(request).await,
    };
    let Some(caller) = caller else {
        return response;
    };
    let access = audit::Access {
        caller: caller.credential,
        org: Some(caller.org),
        client: Some(ip.to_string()),
        action: action(&method, &path),
        resource,
        outcome: response.status().as_u16(),
    };
    match audited(&ctx, access).await {
        Ok(()) => response,
        Err(error) => error.into_response(),
    }
}

async fn audited(ctx: &ApiContext, access: audit::Access) -> Result<(), ApiError> {
    ctx.audit.record(access).await.map_err(|error| {
        ctx.shared.metrics.audit_write_failures.inc();
        tracing::error!(%error, "audit log unavailable; refusing the request");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit-unavailable",
            "Audit trail unavailable",
            "the node can not record this access in its audit trail, so it does not serve it",
        )
    })
}

/// `Some(token)` for `Authorization: Bearer <token>`, `None` without the
/// header; any other Authorization header is a 401.
fn bearer(request: &Request) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| unauthorized_error())?;
    let (scheme, token) = text.split_once(' ').ok_or_else(unauthorized_error)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(unauthorized_error());
    }
    Ok(Some(token.trim().to_owned()))
}

fn unauthorized_error() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Unauthorized",
        "the Authorization header must be `Bearer <token>` with a token issued for this node",
    )
}

fn unauthorized() -> Response {
    let mut response = unauthorized_error().into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

fn not_member(org: &str) -> Response {
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Unauthorized",
        format!(
            "the token is for org {org:?}, which is not a member of the consortium at this height (removed by vote, or its addition is not in force yet)"
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

fn too_many(wait: std::time::Duration) -> Response {
    let secs = retry_after_secs(wait);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too many requests",
        format!("this client is over its request rate; retry in {secs} s"),
    )
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// What an audit entry calls the request: method, path and query.
fn resource(request: &Request) -> String {
    let uri = request.uri();
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    format!("{} {path}", request.method())
}

fn action(method: &Method, path: &str) -> Action {
    if path == "/v1/audit" {
        Action::Export
    } else if path == "/metrics" {
        Action::Admin
    } else if method == Method::GET || method == Method::HEAD || path == "/v1/sql" {
        Action::Read
    } else {
        Action::Write
    }
}
