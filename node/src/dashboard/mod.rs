//! The quality dashboard at `/dashboard`, for quality engineers and
//! regulators: latest alerts, supplier scorecards, recall status, control
//! charts, any lot's or serial's genealogy and the root-cause tool; in
//! English and Chinese (`public::i18n`), server-rendered, pictures as
//! inline SVG, nothing loaded from elsewhere.
//!
//! - [`session`]: login with an API token into an `HttpOnly`,
//!   `SameSite=Strict` session cookie, CSRF tokens, logout;
//! - [`model`]: what each page shows, from the existing analyses, under
//!   the caller's read rights (the project's one read rule);
//! - [`svg`]: the control chart and the genealogy graph.
//!
//! The handlers below only translate HTTP: they read the form or query,
//! check the session and its CSRF token, run the model on the blocking
//! pool and render a template (`templates/dashboard.html`,
//! `templates/dashboard_login.html`).
//!
//! Non-features: no script on any page; no session survives a restart; an
//! API client with a bearer token uses the JSON API, not these pages.

pub mod model;
pub mod session;
pub mod svg;

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::access::{Caller, Identity};
use crate::api::{ApiContext, ApiError};
use crate::public::i18n::{Dash, Lang};
use crate::quality::RootCause;
use session::Current;

pub fn routes() -> Router<Arc<ApiContext>> {
    Router::new()
        .route("/dashboard", get(overview))
        .route("/dashboard/login", get(login_page).post(login))
        .route("/dashboard/logout", axum::routing::post(logout))
        .route("/dashboard/spc", get(chart))
        .route("/dashboard/trace", get(trace))
        .route(
            "/dashboard/root-cause",
            get(root_cause_form).post(root_cause),
        )
}

/// The logged-in session of a dashboard request; without one, the browser
/// is sent to the login page.
#[derive(Debug)]
pub struct Signed(pub Current);

impl<S: Send + Sync> FromRequestParts<S> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Signed, Response> {
        match parts.extensions.get::<Current>() {
            Some(current) => Ok(Signed(current.clone())),
            None => Err(Redirect::to("/dashboard/login").into_response()),
        }
    }
}

impl Signed {
    fn identity(&self) -> Identity {
        Identity::Caller(self.0.caller.clone())
    }
}

fn lang(explicit: Option<&str>, headers: &HeaderMap) -> Lang {
    Lang::choose(
        explicit,
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

/// What a page body shows.
#[derive(Debug)]
pub enum Body {
    Overview(model::OverviewModel),
    Chart(Option<Box<model::ChartModel>>),
    Trace(Option<model::TraceModel>),
    RootCause(Option<RootCause>),
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Page<'a> {
    t: &'static Dash,
    caller: &'a Caller,
    csrf: &'a str,
    here: &'a str,
    body: &'a Body,
    error: Option<String>,
    gtin: &'a str,
    characteristic: &'a str,
    id: &'a str,
    bad: &'a str,
}

#[derive(Default)]
struct Fields {
    gtin: String,
    characteristic: String,
    id: String,
    bad: String,
}

fn render(
    signed: &Signed,
    lang: Lang,
    here: &str,
    body: Result<Body, (Body, ApiError)>,
    fields: Fields,
) -> Result<Response, ApiError> {
    let (body, status, error) = match body {
        Ok(body) => (body, StatusCode::OK, None),
        Err((body, e)) => (body, e.status, Some(e.detail)),
    };
    let page = Page {
        t: lang.dashboard(),
        caller: &signed.0.caller,
        csrf: &signed.0.csrf,
        here,
        body: &body,
        error,
        gtin: &fields.gtin,
        characteristic: &fields.characteristic,
        id: &fields.id,
        bad: &fields.bad,
    };
    html(status, page.render().map_err(ApiError::internal)?, lang)
}

fn html(status: StatusCode, text: String, lang: Lang) -> Result<Response, ApiError> {
    let mut response = (status, text).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(lang.dashboard().lang),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    Ok(response)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)?
}

#[derive(Debug, Default, Deserialize)]
pub struct LangParam {
    lang: Option<String>,
}

async fn overview(
    State(ctx): State<Arc<ApiContext>>,
    signed: Signed,
    headers: HeaderMap,
    query: Result<Query<LangParam>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = query?;
    let lang = lang(params.lang.as_deref(), &headers);
    let identity = signed.identity();
    let model = blocking(move || model::overview(&ctx, &identity)).await?;
    render(
        &signed,
        lang,
        "/dashboard",
        Ok(Body::Overview(model)),
        Fields::default(),
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct ChartParams {
    lang: Option<String>,
    gtin: Option<String>,
    characteristic: Option<String>,
}

async fn chart(
    State(ctx): State<Arc<ApiContext>>,
    signed: Signed,
    headers: HeaderMap,
    query: Result<Query<ChartParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = query?;
    let lang = lang(params.lang.as_deref(), &headers);
    let fields = Fields {
        gtin: params.gtin.clone().unwrap_or_default(),
        characteristic: params.characteristic.clone().unwrap_or_default(),
        ..Fields::default()
    };
    let body = match (params.gtin, params.characteristic) {
        (Some(gtin), Some(characteristic)) => {
            let identity = signed.identity();
            blocking(move || model::chart(&ctx, &identity, gtin, characteristic))
                .await
                .map(|m| Body::Chart(Some(Box::new(m))))
                .map_err(|e| (Body::Chart(None), e))
        }
        _ => Ok(Body::Chart(None)),
    };
    render(&signed, lang, "/dashboard/spc", body, fields)
}

#[derive(Debug, Default, Deserialize)]
pub struct TraceParams {
    lang: Option<String>,
    id: Option<String>,
}

async fn trace(
    State(ctx): State<Arc<ApiContext>>,
    signed: Signed,
    headers: HeaderMap,
    query: Result<Query<TraceParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = query?;
    let lang = lang(params.lang.as_deref(), &headers);
    let fields = Fields {
        id: params.id.clone().unwrap_or_default(),
        ..Fields::default()
    };
    let body = match params.id.filter(|id| !id.trim().is_empty()) {
        Some(id) => {
            let identity = signed.identity();
            blocking(move || model::trace(&ctx, &identity, id.trim()))
                .await
                .map(|m| Body::Trace(Some(m)))
                .map_err(|e| (Body::Trace(None), e))
        }
        None => Ok(Body::Trace(None)),
    };
    render(&signed, lang, "/dashboard/trace", body, fields)
}

async fn root_cause_form(
    signed: Signed,
    headers: HeaderMap,
    query: Result<Query<LangParam>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = query?;
    let lang = lang(params.lang.as_deref(), &headers);
    render(
        &signed,
        lang,
        "/dashboard/root-cause",
        Ok(Body::RootCause(None)),
        Fields::default(),
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct RootCauseForm {
    csrf: Option<String>,
    bad: Option<String>,
    lang: Option<String>,
}

/// The CSRF check of every form post once logged in: 403 unless the form
/// carries this session's token.
fn check_csrf(signed: &Signed, given: Option<&str>) -> Result<(), ApiError> {
    if given.is_some_and(|token| session::same(token, &signed.0.csrf)) {
        Ok(())
    } else {
        Err(csrf_refused())
    }
}

fn csrf_refused() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf",
        "Form refused",
        "the form carries no valid CSRF token for this session; reload the page and try again",
    )
}

async fn root_cause(
    State(ctx): State<Arc<ApiContext>>,
    signed: Signed,
    headers: HeaderMap,
    form: Result<Form<RootCauseForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let Form(form) = form.map_err(|e| ApiError::bad_request("malformed", e.body_text()))?;
    check_csrf(&signed, form.csrf.as_deref())?;
    let lang = lang(form.lang.as_deref(), &headers);
    let text = form.bad.unwrap_or_default();
    let bad = model::bad_units(&text);
    let identity = signed.identity();
    let body = blocking(move || model::root_cause(&ctx, &identity, bad))
        .await
        .map(|r| Body::RootCause(Some(r)))
        .map_err(|e| (Body::RootCause(None), e));
    let fields = Fields {
        bad: text,
        ..Fields::default()
    };
    render(&signed, lang, "/dashboard/root-cause", body, fields)
}

#[derive(Template)]
#[template(path = "dashboard_login.html")]
struct LoginPage {
    t: &'static Dash,
    csrf: String,
    error: Option<&'static str>,
}

async fn login_page(
    State(ctx): State<Arc<ApiContext>>,
    headers: HeaderMap,
    query: Result<Query<LangParam>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = query?;
    let lang = lang(params.lang.as_deref(), &headers);
    login_response(&ctx, lang, StatusCode::OK, None)
}

/// The login form with a fresh nonce cookie and its CSRF token.
fn login_response(
    ctx: &ApiContext,
    lang: Lang,
    status: StatusCode,
    error: Option<&'static str>,
) -> Result<Response, ApiError> {
    let (nonce, csrf) = ctx.sessions.login_challenge();
    let page = LoginPage {
        t: lang.dashboard(),
        csrf,
        error,
    };
    let mut response = html(status, page.render().map_err(ApiError::internal)?, lang)?;
    set_cookie(&mut response, &ctx.sessions.login_cookie(&nonce))?;
    Ok(response)
}

fn set_cookie(response: &mut Response, cookie: &str) -> Result<(), ApiError> {
    let value = HeaderValue::from_str(cookie).map_err(ApiError::internal)?;
    response.headers_mut().append(header::SET_COOKIE, value);
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginForm {
    token: Option<String>,
    csrf: Option<String>,
    lang: Option<String>,
}

/// `POST /dashboard/login`: the form's CSRF token must match the login
/// cookie (403); a token this node did not issue is refused (401, audited
/// as an authentication failure); a good one starts a session.
async fn login(
    State(ctx): State<Arc<ApiContext>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let Form(form) = form.map_err(|e| ApiError::bad_request("malformed", e.body_text()))?;
    let lang = lang(form.lang.as_deref(), &headers);
    if !form
        .csrf
        .as_deref()
        .is_some_and(|csrf| ctx.sessions.login_token_ok(&headers, csrf))
    {
        return Err(csrf_refused());
    }
    let token = form.token.unwrap_or_default();
    let caller = match ctx.access.credentials.authenticate(token.trim()) {
        Ok(credential) => Caller {
            org: credential.org.clone(),
            role: credential.role,
            credential: credential.id.clone(),
            operator: credential.operator,
        },
        Err(_) => {
            let access = crate::audit::Access {
                caller: "invalid-token".into(),
                org: None,
                client: None,
                action: crate::audit::Action::AuthFailure,
                resource: "POST /dashboard/login".into(),
                outcome: StatusCode::UNAUTHORIZED.as_u16(),
            };
            ctx.audit.record(access).await.map_err(ApiError::internal)?;
            let t = lang.dashboard();
            return login_response(&ctx, lang, StatusCode::UNAUTHORIZED, Some(t.wrong_token));
        }
    };
    let current = ctx.sessions.start(caller);
    let mut response =
        Redirect::to(&format!("/dashboard?lang={}", lang.dashboard().lang)).into_response();
    set_cookie(
        &mut response,
        &ctx.sessions.session_cookie(Some(&current.id)),
    )?;
    Ok(response)
}

#[derive(Debug, Default, Deserialize)]
pub struct LogoutForm {
    csrf: Option<String>,
}

/// `POST /dashboard/logout`: ends the session (CSRF-checked, so another
/// site cannot sign a user out) and clears the cookie.
async fn logout(
    State(ctx): State<Arc<ApiContext>>,
    signed: Signed,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let Form(form) = form.map_err(|e| ApiError::bad_request("malformed", e.body_text()))?;
    check_csrf(&signed, form.csrf.as_deref())?;
    ctx.sessions.end(&signed.0.id);
    let mut response = Redirect::to("/dashboard/login").into_response();
    set_cookie(&mut response, &ctx.sessions.session_cookie(None))?;
    Ok(response)
}

impl Page<'_> {
    fn num(&self, v: &f64) -> String {
        format!("{v:.3}")
    }

    fn opt(&self, v: &Option<f64>) -> String {
        v.map_or_else(|| "—".to_owned(), |v| format!("{v:.2}"))
    }

    fn pct(&self, v: Option<f64>) -> String {
        v.map_or_else(|| "—".to_owned(), |v| format!("{:.1}%", v * 100.0))
    }

    fn whole(&self, v: Option<f64>) -> String {
        v.map_or_else(|| "—".to_owned(), |v| format!("{v:.0}"))
    }

    fn sci(&self, v: &f64) -> String {
        format!("{v:.2e}")
    }

    /// Where an alert's subject is shown: a chart rule's subject
    /// (`{gtin} {characteristic}`) opens its control chart, an excursion's
    /// the genealogy of what was logged, a supplier's the scorecards.
    fn alert_href(&self, alert: &crate::quality::alerts::Alert) -> String {
        use lotline_core::epcis::AlertRule;
        let lang = self.t.lang;
        match (alert.rule, alert.subject.split_once(' ')) {
            (AlertRule::RunRule | AlertRule::Drift, Some((gtin, characteristic))) => format!(
                "/dashboard/spc?lang={lang}&gtin={}&characteristic={}",
                self.enc(gtin),
                self.enc(characteristic)
            ),
            (AlertRule::SupplierNonConformance, _) => "#suppliers".to_owned(),
            _ => format!(
                "/dashboard/trace?lang={lang}&id={}",
                self.enc(&alert.subject)
            ),
        }
    }

    fn enc(&self, s: &str) -> String {
        lotline_sdk::encode_segment(s)
    }
}
