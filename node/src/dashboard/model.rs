//! What each dashboard page shows, computed on the blocking pool from the
//! existing analyses (`quality::chart`, `quality::root_cause`,
//! `quality::scorecard`, `quality::alerts::list`, `trace::trace`), always
//! under the caller's read rights: charts, traces and root causes through
//! [`CallerVisibility`], alerts through [`crate::access::can_read_payload`].
//! Nothing here decides visibility itself.

use lotline_core::trace::Direction;

use super::svg::{self, Genealogy};
use crate::access::Identity;
use crate::api::{ApiContext, ApiError, trace_error};
use crate::quality::alerts::{self, Alert, AlertsRequest};
use crate::quality::scorecard::{self, Overview};
use crate::quality::{self, Chart, ChartRequest, RootCause, RootCauseRequest};
use crate::trace::{self, CallerVisibility, TraceRequest, Visibility};

/// Alerts the overview lists (the latest).
pub const ALERTS_SHOWN: usize = 50;
/// Alert pages read to find the latest ones.
const ALERT_PAGES_MAX: usize = 20;

/// Where an attestation is shown (the API route; a session cookie reads it).
pub fn attestation_href(id: &lotline_core::attestation::AttestationId) -> String {
    format!("/v1/attestations/{id}")
}

#[derive(Debug)]
pub struct OverviewModel {
    pub alerts: Vec<Alert>,
    pub overview: Overview,
    /// The caller reads every org's records (regulator reports link).
    pub reads_everything: bool,
}

pub fn overview(ctx: &ApiContext, identity: &Identity) -> Result<OverviewModel, ApiError> {
    let rules = ctx.rules();
    let visible = |stored: &crate::store::index::StoredAttestation| {
        crate::access::can_read_payload(
            &rules,
            identity,
            &stored.meta.org,
            &stored.envelope.payload,
        )
    };
    let mut latest: Vec<Alert> = Vec::new();
    let mut request = AlertsRequest {
        rule: None,
        org: None,
        subject: None,
        since_height: None,
        after: None,
        limit: alerts::list::PAGE_MAX,
    };
    for _ in 0..ALERT_PAGES_MAX {
        let page = alerts::list(&ctx.reader, &request, &visible).map_err(ApiError::internal)?;
        latest.extend(page.alerts);
        let drop = latest.len().saturating_sub(ALERTS_SHOWN);
        latest.drain(..drop);
        match page.next.as_deref().and_then(alerts::list::parse_cursor) {
            Some(after) => request.after = Some(after),
            None => break,
        }
    }
    latest.reverse();
    let visibility = CallerVisibility::new(&rules, identity, &ctx.reader);
    let overview = scorecard::overview(&ctx.reader, &visibility).map_err(ApiError::internal)?;
    Ok(OverviewModel {
        alerts: latest,
        overview,
        reads_everything: crate::access::reads_everything(&ctx.rules(), identity),
    })
}

#[derive(Debug)]
pub struct ChartModel {
    pub chart: Chart,
    pub svg: String,
}

pub fn chart(
    ctx: &ApiContext,
    identity: &Identity,
    gtin: String,
    characteristic: String,
) -> Result<ChartModel, ApiError> {
    let rules = ctx.rules();
    let visibility = CallerVisibility::new(&rules, identity, &ctx.reader);
    let request = ChartRequest {
        gtin,
        characteristic,
        baseline: None,
        points: None,
        subgroup: Default::default(),
    };
    let chart =
        quality::chart(&ctx.reader, &request, &visibility).map_err(crate::api::chart_error)?;
    let svg = svg::chart(&chart);
    Ok(ChartModel { chart, svg })
}

#[derive(Debug)]
pub struct TraceModel {
    pub root: String,
    pub nodes: usize,
    pub edges: usize,
    pub truncated: bool,
    pub svg: String,
}

/// The genealogy of `raw` (a lot, serial or container) as `visibility`
/// lets the reader see it: its backward and forward traces on one picture.
pub fn genealogy(
    reader: &crate::store::StoreReader,
    raw: &str,
    visibility: &dyn Visibility,
) -> Result<Genealogy, ApiError> {
    let mut traces = Vec::new();
    for direction in [Direction::Backward, Direction::Forward] {
        let request = TraceRequest {
            root: raw.to_owned(),
            direction,
            depth: None,
            proofs: false,
        };
        traces.push(trace::trace(reader, &request, visibility).map_err(trace_error)?);
    }
    Ok(Genealogy::new(&traces[0], &traces[1]))
}

pub fn trace(ctx: &ApiContext, identity: &Identity, raw: &str) -> Result<TraceModel, ApiError> {
    let rules = ctx.rules();
    let visibility = CallerVisibility::new(&rules, identity, &ctx.reader);
    let graph = genealogy(&ctx.reader, raw, &visibility)?;
    if graph.node_count() <= 1 && graph.edge_count() == 0 {
        return Err(ApiError::not_found(format!(
            "no lineage of {} that you may read",
            lotline_core::api::excerpt(raw)
        )));
    }
    Ok(TraceModel {
        root: trace::root_identifier(raw).map_err(trace_error)?,
        nodes: graph.node_count(),
        edges: graph.edge_count(),
        truncated: graph.truncated,
        svg: graph.svg(&attestation_href),
    })
}

/// The bad units of the form: one identifier per line (or separated by
/// spaces or commas).
pub fn bad_units(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub fn root_cause(
    ctx: &ApiContext,
    identity: &Identity,
    bad: Vec<String>,
) -> Result<RootCause, ApiError> {
    let rules = ctx.rules();
    let visibility = CallerVisibility::new(&rules, identity, &ctx.reader);
    quality::root_cause(
        &ctx.reader,
        &RootCauseRequest { bad, failing: None },
        &visibility,
    )
    .map_err(crate::api::root_cause_error)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bad_units_split_on_lines_spaces_and_commas() {
        assert_eq!(
            super::bad_units("a\r\nb, c\n\n d"),
            vec!["a", "b", "c", "d"]
        );
    }
}
