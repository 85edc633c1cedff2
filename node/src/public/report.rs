//! Regulator audit reports (R24): the complete evidence chain for a lot, a
//! recall, or an org over a period, generated on request in three forms:
//! `?format=html` (printable, default), `csv` (one row per event) and
//! `json` (a proof bundle with one receipt per event, checked offline by
//! `lotline verify`).
//!
//! Regulators read everything (the genesis read policy's full-read roles),
//! so reports use [`SeeAll`]; every handler first calls
//! [`super::authorize_report`], the hook the access layer wires.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lotline_core::attestation::AttestationId;
use lotline_core::bundle::ProofBundle;
use lotline_core::epcis::QualityFact;
use lotline_core::trace::{AffectedUnit, Direction, RecallScopeRequest};
use lotline_core::{Statement, time};
use serde::Deserialize;

use super::{authorize_report, now_rfc3339};
use crate::api::{ApiContext, ApiError, trace_error};
use crate::dashboard::svg::Genealogy;
use crate::epcis::master_data;
use crate::store::index;
use crate::trace::{self, SeeAll, TraceRequest};

/// Most events one report covers; a larger scope must be split (by period,
/// or lot by lot) so a report stays a document a person can read.
pub const REPORT_EVENTS_MAX: usize = crate::trace::PROOFS_MAX;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    format: Option<String>,
    from: Option<String>,
    until: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Html,
    Csv,
    Json,
}

impl ReportParams {
    fn format(&self) -> Result<Format, ApiError> {
        match self.format.as_deref().unwrap_or("html") {
            "html" => Ok(Format::Html),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            other => Err(ApiError::bad_request(
                "bad-query",
                format!("format must be html, csv or json, got {other:?}"),
            )),
        }
    }
}

/// One event of a report.
#[derive(Debug, Clone)]
pub struct Row {
    pub attestation: AttestationId,
    pub height: u64,
    pub index: u32,
    pub org: String,
    pub event_type: String,
    pub event_time: String,
    pub biz_step: String,
    pub disposition: String,
    pub quality: String,
    pub identifiers: String,
    /// Master data names of the event's products and location
    /// (`crate::epcis::master_data`), `; `-separated.
    pub names: String,
}

/// A report before it is rendered.
#[derive(Debug)]
pub struct Report {
    pub title: String,
    pub subject: String,
    pub generated_at: String,
    pub chain_id: String,
    pub rows: Vec<Row>,
    pub units: Vec<AffectedUnit>,
    /// The lot's genealogy as inline SVG (lot reports).
    pub genealogy: Option<String>,
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportTemplate<'a> {
    r: &'a Report,
}

/// `GET /v1/reports/lots/{identifier}`: every event in the lot's history,
/// backward to its raw materials and forward to every product and holder.
pub async fn lot(
    State(ctx): State<Arc<ApiContext>>,
    identity: crate::access::Identity,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ReportParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    authorize_report(&ctx.rules(), &identity)?;
    let Path(raw) = path?;
    let Query(params) = query?;
    let format = params.format()?;
    let id = trace::root_identifier(&raw).map_err(trace_error)?;
    let task_ctx = ctx.clone();
    let report = blocking(move || {
        let mut ids = BTreeMap::new();
        let mut traces = Vec::new();
        for direction in [Direction::Backward, Direction::Forward] {
            let request = TraceRequest {
                root: id.clone(),
                direction,
                depth: None,
                proofs: false,
            };
            let found = trace::trace(&task_ctx.reader, &request, &SeeAll).map_err(trace_error)?;
            ids.extend(trace::cited(&found).into_iter().map(|a| (a, ())));
            traces.push(found);
        }
        // The dashboard's genealogy picture, every edge linked to its
        // attestation.
        let genealogy = Genealogy::new(&traces[0], &traces[1]);
        let listing = task_ctx
            .reader
            .list(
                index::PREFIX_IDENTIFIER,
                &id,
                None,
                REPORT_EVENTS_MAX,
                &|_| true,
            )
            .map_err(ApiError::internal)?;
        ids.extend(listing.items.iter().map(|s| (s.id, ())));
        if ids.is_empty() {
            return Err(ApiError::not_found(format!(
                "this node holds no record of {id}"
            )));
        }
        let mut report = build(
            &task_ctx,
            format!("Lot report: {id}"),
            format!("lot {id}"),
            ids.into_keys(),
            Vec::new(),
        )?;
        if genealogy.edge_count() > 0 {
            report.genealogy = Some(genealogy.svg(&crate::dashboard::model::attestation_href));
        }
        Ok(report)
    })
    .await?;
    respond(&report, format, &ctx)
}

/// `GET /v1/reports/recalls/{attestation}`: a recall order, every unit in
/// its scope with its holder, and every event that links them.
pub async fn recall(
    State(ctx): State<Arc<ApiContext>>,
    identity: crate::access::Identity,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ReportParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    authorize_report(&ctx.rules(), &identity)?;
    let Path(raw) = path?;
    let Query(params) = query?;
    let format = params.format()?;
    let order: AttestationId = raw.parse().map_err(|e| {
        ApiError::bad_request(
            "bad-id",
            format!("a recall is named by its order's attestation id (64 hex digits): {e}"),
        )
    })?;
    let task_ctx = ctx.clone();
    let report = blocking(move || {
        let stored = task_ctx
            .reader
            .attestation(&order)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found(format!("no attestation {order}")))?;
        let statement =
            Statement::from_payload(&stored.envelope.payload).map_err(ApiError::internal)?;
        let Some(QualityFact::RecallOrder {
            recall_id, scope, ..
        }) = statement.event.quality
        else {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not-a-recall",
                "Not a recall order",
                format!("attestation {order} carries no lotline:quality recallOrder"),
            ));
        };
        let request = RecallScopeRequest {
            suspects: scope.clone(),
            from: None,
            until: None,
        };
        let found =
            trace::recall_scope(&task_ctx.reader, &request, &SeeAll).map_err(trace_error)?;
        let mut ids = BTreeMap::from([(order, ())]);
        for suspect in &scope {
            let request = TraceRequest {
                root: suspect.clone(),
                direction: Direction::Forward,
                depth: None,
                proofs: false,
            };
            let forward = trace::trace(&task_ctx.reader, &request, &SeeAll).map_err(trace_error)?;
            ids.extend(trace::cited(&forward).into_iter().map(|a| (a, ())));
        }
        for unit in &found.units {
            ids.extend(unit.holder.iter().map(|h| (h.source.attestation, ())));
        }
        build(
            &task_ctx,
            format!("Recall report: {recall_id}"),
            format!("recall {recall_id} (order {order})"),
            ids.into_keys(),
            found.units,
        )
    })
    .await?;
    respond(&report, format, &ctx)
}

/// `GET /v1/reports/orgs/{org}?from=&until=`: every event the org stated
/// with an event time in `[from, until)`.
pub async fn org(
    State(ctx): State<Arc<ApiContext>>,
    identity: crate::access::Identity,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ReportParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    authorize_report(&ctx.rules(), &identity)?;
    let Path(org) = path?;
    let Query(params) = query?;
    let format = params.format()?;
    if ctx.rules().org(&org).is_none() {
        return Err(ApiError::not_found(format!(
            "no organisation {org:?} in this consortium"
        )));
    }
    let bound = |name: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(time::parse_rfc3339_ms)
            .transpose()
            .map_err(|e| ApiError::unprocessable("bad-query", format!("{name}: {e}")))
    };
    let (from, until) = (bound("from", &params.from)?, bound("until", &params.until)?);
    if let (Some(f), Some(u)) = (from, until)
        && f >= u
    {
        return Err(ApiError::unprocessable(
            "bad-query",
            "until must be after from",
        ));
    }
    let period = format!(
        "{} .. {}",
        params.from.as_deref().unwrap_or("start"),
        params.until.as_deref().unwrap_or("now")
    );
    let task_ctx = ctx.clone();
    let report = blocking(move || {
        let mut ids = Vec::new();
        let mut after = None;
        loop {
            let page = task_ctx
                .reader
                .list(index::PREFIX_ORG, &org, after, 1000, &|_| true)
                .map_err(ApiError::internal)?;
            for item in &page.items {
                let at = time::parse_rfc3339_ms(&item.event_time).ok();
                let inside =
                    at.is_some_and(|t| from.is_none_or(|f| t >= f) && until.is_none_or(|u| t < u));
                if inside {
                    ids.push(item.id);
                }
            }
            if ids.len() > REPORT_EVENTS_MAX {
                return Err(too_many(ids.len()));
            }
            match page.items.last() {
                Some(last) if page.next.is_some() => after = Some((last.height, last.index)),
                _ => break,
            }
        }
        build(
            &task_ctx,
            format!("Organisation report: {org}"),
            format!("org {org}, event time {period}"),
            ids.into_iter(),
            Vec::new(),
        )
    })
    .await?;
    respond(&report, format, &ctx)
}

fn too_many(count: usize) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "report-too-large",
        "Report too large",
        format!(
            "the scope holds {count} events, more than the {REPORT_EVENTS_MAX} one report covers; narrow the period or split by lot"
        ),
    )
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)?
}

/// Reads each event once and orders them as the chain does.
fn build(
    ctx: &ApiContext,
    title: String,
    subject: String,
    ids: impl Iterator<Item = AttestationId>,
    units: Vec<AffectedUnit>,
) -> Result<Report, ApiError> {
    let mut rows = Vec::new();
    for id in ids {
        if rows.len() >= REPORT_EVENTS_MAX {
            return Err(too_many(rows.len() + 1));
        }
        let Some(stored) = ctx.reader.attestation(&id).map_err(ApiError::internal)? else {
            continue;
        };
        let statement = Statement::from_payload(&stored.envelope.payload).ok();
        let event = statement.as_ref().map(|s| &s.event);
        rows.push(Row {
            attestation: id,
            height: stored.height,
            index: stored.index,
            org: stored.meta.org.clone(),
            event_type: stored.meta.event_type.clone(),
            event_time: stored.meta.event_time.clone(),
            biz_step: stored.meta.biz_step.clone().unwrap_or_default(),
            disposition: event
                .and_then(|e| e.disposition.clone())
                .unwrap_or_default(),
            quality: event
                .and_then(|e| e.quality.as_ref())
                .map(quality_summary)
                .unwrap_or_default(),
            identifiers: event
                .map(|e| e.canonical_identifiers().join(" "))
                .unwrap_or_default(),
            names: event
                .map(|e| names(&ctx.reader, e))
                .transpose()
                .map_err(ApiError::internal)?
                .unwrap_or_default(),
        });
    }
    rows.sort_by_key(|r| (r.height, r.index));
    Ok(Report {
        title,
        subject,
        generated_at: now_rfc3339(),
        chain_id: ctx.genesis.chain_id().to_string(),
        rows,
        units,
        genealogy: None,
    })
}

/// The master data names of an event's products and business location.
fn names(
    reader: &crate::store::StoreReader,
    event: &lotline_core::epcis::Event,
) -> Result<String, crate::store::StoreError> {
    let mut keys: Vec<String> = event
        .identifiers()
        .filter_map(master_data::product_class)
        .collect();
    keys.dedup();
    keys.extend(event.biz_location.as_ref().map(|l| l.id.clone()));
    let mut names: Vec<String> = Vec::new();
    for key in keys {
        if let Some(name) = master_data::name(reader, &key)?
            && !names.contains(&name)
        {
            names.push(name);
        }
    }
    Ok(names.join("; "))
}

fn quality_summary(q: &QualityFact) -> String {
    match q {
        QualityFact::Inspection {
            result,
            method,
            measurements,
            ..
        } => {
            let mut s = format!("inspection {result:?}");
            if let Some(m) = method {
                s.push_str(&format!(" ({m})"));
            }
            for m in measurements {
                s.push_str(&format!(
                    "; {}={}{}",
                    m.name,
                    m.value,
                    m.uom
                        .as_deref()
                        .map(|u| format!(" {u}"))
                        .unwrap_or_default()
                ));
            }
            s
        }
        QualityFact::NonConformance { code, severity, .. } => {
            format!("non-conformance {code} {severity:?}")
        }
        QualityFact::RecallOrder {
            recall_id,
            class,
            reason,
            ..
        } => format!("recall order {recall_id} class {class:?}: {reason}"),
        QualityFact::Certificate {
            certificate_id,
            standard,
            ..
        } => format!("certificate {certificate_id} ({standard})"),
        QualityFact::Document { document } => format!("document {}", document.uri),
        QualityFact::Alert { rule, summary, .. } => {
            format!("quality alert ({}): {summary}", rule.name())
        }
    }
}

fn respond(report: &Report, format: Format, ctx: &ApiContext) -> Result<Response, ApiError> {
    let (kind, body) = match format {
        Format::Html => (
            "text/html; charset=utf-8",
            ReportTemplate { r: report }
                .render()
                .map_err(ApiError::internal)?
                .into_bytes(),
        ),
        Format::Csv => ("text/csv; charset=utf-8", csv(report).into_bytes()),
        Format::Json => {
            let mut bundle = ProofBundle::new(
                ctx.genesis.chain_id(),
                report.subject.clone(),
                report.generated_at.clone(),
            );
            for row in &report.rows {
                if let Some(receipt) = ctx
                    .reader
                    .receipt(&row.attestation)
                    .map_err(ApiError::internal)?
                {
                    bundle.receipts.push(receipt);
                }
            }
            (
                "application/json",
                serde_json::to_vec_pretty(&bundle).map_err(ApiError::internal)?,
            )
        }
    };
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    Ok(response)
}

/// The CSV form: RFC 4180 quoting, and a leading `'` on cells that a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@`), since event
/// fields come from members and reports are opened in spreadsheets.
pub fn csv(report: &Report) -> String {
    let mut out = String::from(
        "attestation,height,index,org,event_type,event_time,biz_step,disposition,quality,identifiers,names\r\n",
    );
    for r in &report.rows {
        let cells = [
            r.attestation.to_string(),
            r.height.to_string(),
            r.index.to_string(),
            r.org.clone(),
            r.event_type.clone(),
            r.event_time.clone(),
            r.biz_step.clone(),
            r.disposition.clone(),
            r.quality.clone(),
            r.identifiers.clone(),
            r.names.clone(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

pub(crate) fn csv_cell(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if guarded.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }
}
