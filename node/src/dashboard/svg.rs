//! Pictures as inline SVG, drawn on the server (no script, no CDN): the
//! control chart of a [`Chart`] and the genealogy graph of a lot or serial
//! from its backward and forward [`Trace`]s. The regulator's lot report
//! draws the same genealogy (`public::report`).
//!
//! Every string drawn comes from records members signed, so all text goes
//! through [`esc`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use lotline_core::attestation::AttestationId;
use lotline_core::epcis::{InspectionResult, QualityFact};
use lotline_core::gs1::Identifier;
use lotline_core::lineage::EdgeKind;
use lotline_core::trace::{NodeKind, Trace};

use crate::quality::Chart;

/// Most nodes a genealogy picture draws; a larger trace is cut (and says so).
pub const GRAPH_NODES_MAX: usize = 400;

/// XML/HTML escaping for text and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The individuals chart: the listed points, centre line, control limits,
/// spec limits; points outside spec or breaking a run rule in red.
pub fn chart(chart: &Chart) -> String {
    let (w, h, pad) = (760.0, 260.0, 40.0);
    let points = &chart.points;
    let mut lo = chart.limits.lcl.min(chart.limits.center);
    let mut hi = chart.limits.ucl.max(chart.limits.center);
    for v in points
        .iter()
        .map(|p| p.value)
        .chain(chart.capability.spec_min)
        .chain(chart.capability.spec_max)
    {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !(hi - lo).is_normal() {
        hi = lo + 1.0;
    }
    let span = hi - lo;
    let (lo, hi) = (lo - span * 0.05, hi + span * 0.05);
    let y = |v: f64| pad + (hi - v) / (hi - lo) * (h - 2.0 * pad);
    let n = points.len().max(2) as f64;
    let x = |i: usize| pad + i as f64 / (n - 1.0) * (w - 2.0 * pad);
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" aria-label="{}"><rect width="{w}" height="{h}" fill="#fff"/>"##,
        esc(&format!("{} {}", chart.gtin, chart.characteristic))
    );
    let mut line = |value: Option<f64>, label: &str, colour: &str, dash: &str| {
        if let Some(v) = value.filter(|v| v.is_finite()) {
            let yv = y(v);
            let _ = write!(
                s,
                r##"<line x1="{pad}" x2="{}" y1="{yv:.1}" y2="{yv:.1}" stroke="{colour}" stroke-dasharray="{dash}"/><text x="{}" y="{:.1}" font-size="10" fill="{colour}">{} {}</text>"##,
                w - pad,
                w - pad + 2.0,
                yv + 3.0,
                esc(label),
                fmt(v),
            );
        }
    };
    line(Some(chart.limits.ucl), "UCL", "#b00", "4 3");
    line(Some(chart.limits.center), "CL", "#060", "");
    line(Some(chart.limits.lcl), "LCL", "#b00", "4 3");
    line(chart.capability.spec_max, "USL", "#c60", "1 3");
    line(chart.capability.spec_min, "LSL", "#c60", "1 3");
    let path: Vec<String> = points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.value.is_finite())
        .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.value)))
        .collect();
    let _ = write!(
        s,
        r##"<polyline fill="none" stroke="#246" stroke-width="1" points="{}"/>"##,
        path.join(" ")
    );
    for (i, p) in points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.value.is_finite())
    {
        let bad = p.out_of_spec || !p.violations.is_empty();
        let _ = write!(
            s,
            r##"<circle class="{}" cx="{:.1}" cy="{:.1}" r="{}" fill="{}"><title>#{} {} = {} ({})</title></circle>"##,
            if bad { "signal" } else { "point" },
            x(i),
            y(p.value),
            if bad { 3.5 } else { 2.0 },
            if bad { "#d00" } else { "#246" },
            p.index,
            esc(&p.subject),
            fmt(p.value),
            esc(&p.event_time),
        );
    }
    s.push_str("</svg>");
    s
}

fn fmt(v: f64) -> String {
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A short label for a canonical identifier: `lot 42`, `serial 9`, `SSCC`.
pub fn label(id: &str) -> String {
    match Identifier::parse(id) {
        Ok(Identifier::Lot { gtin, lot }) => format!("{} lot {lot}", gtin.as_str()),
        Ok(Identifier::Item { gtin, serial }) => format!("{} sn {serial}", gtin.as_str()),
        Ok(Identifier::Product { gtin }) => format!("GTIN {}", gtin.as_str()),
        Ok(Identifier::Sscc(sscc)) => format!("SSCC {}", sscc.as_str()),
        Ok(Identifier::Location { .. }) | Ok(Identifier::Other(_)) | Err(_) => id
            .rsplit('/')
            .take(2)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("/"),
    }
}

fn edge_label(kind: EdgeKind) -> &'static str {
    match kind {
        EdgeKind::TransformedInto => "process",
        EdgeKind::Serialised => "serialised",
        EdgeKind::PackedIn => "packed in",
        EdgeKind::AssociatedWith => "associated",
        EdgeKind::ShippedTo => "shipped to",
    }
}

#[derive(Clone, Debug, PartialEq)]
struct GraphNode {
    column: i64,
    kind: NodeKind,
    recalled: Option<String>,
    failed: bool,
    holder: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
struct GraphEdge {
    from: String,
    to: String,
    kind: EdgeKind,
    attestation: AttestationId,
    org: String,
}

/// A lot's or serial's genealogy: its backward and forward traces on one
/// picture, materials to the left, what it became and where it went to the
/// right.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Genealogy {
    root: String,
    nodes: BTreeMap<String, GraphNode>,
    edges: Vec<GraphEdge>,
    pub truncated: bool,
}

impl Genealogy {
    pub fn new(backward: &Trace, forward: &Trace) -> Genealogy {
        let mut g = Genealogy {
            root: backward.root.clone(),
            truncated: backward.truncated || forward.truncated,
            ..Genealogy::default()
        };
        let mut failed = BTreeSet::new();
        for trace in [backward, forward] {
            for fact in &trace.facts {
                let bad = match &fact.quality {
                    Some(QualityFact::Inspection { result, .. }) => {
                        *result == InspectionResult::Fail
                    }
                    Some(QualityFact::NonConformance { .. }) => true,
                    _ => false,
                };
                if bad {
                    failed.insert(fact.subject.clone());
                }
            }
        }
        for (trace, sign) in [(backward, -1i64), (forward, 1i64)] {
            for node in &trace.nodes {
                if g.nodes.len() >= GRAPH_NODES_MAX && !g.nodes.contains_key(&node.id) {
                    g.truncated = true;
                    continue;
                }
                let entry = g.nodes.entry(node.id.clone()).or_insert(GraphNode {
                    column: sign * i64::from(node.depth),
                    kind: node.kind,
                    recalled: None,
                    failed: failed.contains(&node.id),
                    holder: None,
                });
                if let Some(r) = &node.recalled {
                    entry.recalled = Some(r.recall_id.clone());
                }
                if let Some(h) = &node.holder {
                    entry.holder = Some(h.org.clone());
                }
            }
            for edge in &trace.edges {
                if g.nodes.contains_key(&edge.from) && g.nodes.contains_key(&edge.to) {
                    let e = GraphEdge {
                        from: edge.from.clone(),
                        to: edge.to.clone(),
                        kind: edge.kind,
                        attestation: edge.source.attestation,
                        org: edge.source.org.clone(),
                    };
                    if !g.edges.contains(&e) {
                        g.edges.push(e);
                    }
                }
            }
        }
        g
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    /// The picture; `link` gives each edge's attestation address.
    pub fn svg(&self, link: &dyn Fn(&AttestationId) -> String) -> String {
        let mut columns: BTreeMap<i64, Vec<&String>> = BTreeMap::new();
        for (id, node) in &self.nodes {
            columns.entry(node.column).or_default().push(id);
        }
        let (box_w, box_h, gap_x, gap_y, pad) = (210.0, 44.0, 70.0, 16.0, 20.0);
        let first = columns.keys().next().copied().unwrap_or(0);
        let rows = columns.values().map(Vec::len).max().unwrap_or(1).max(1);
        let mut at: BTreeMap<&String, (f64, f64)> = BTreeMap::new();
        for (column, ids) in &columns {
            for (row, id) in ids.iter().enumerate() {
                let x = pad + (column - first) as f64 * (box_w + gap_x);
                let y = pad + row as f64 * (box_h + gap_y);
                at.insert(id, (x, y));
            }
        }
        let w = pad * 2.0 + columns.len().max(1) as f64 * (box_w + gap_x) - gap_x;
        let h = pad * 2.0 + rows as f64 * (box_h + gap_y) - gap_y;
        let mut s = String::new();
        let _ = write!(
            s,
            r##"<svg class="genealogy" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="genealogy of {}"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0L10,5L0,10z" fill="#555"/></marker></defs>"##,
            esc(&self.root)
        );
        for edge in &self.edges {
            let (Some(&(x1, y1)), Some(&(x2, y2))) = (at.get(&edge.from), at.get(&edge.to)) else {
                continue;
            };
            let (ax, ay, bx, by) = if x2 >= x1 {
                (x1 + box_w, y1 + box_h / 2.0, x2, y2 + box_h / 2.0)
            } else {
                (x1, y1 + box_h / 2.0, x2 + box_w, y2 + box_h / 2.0)
            };
            let _ = write!(
                s,
                r##"<a class="edge" href="{}"><line x1="{ax:.1}" y1="{ay:.1}" x2="{bx:.1}" y2="{by:.1}" stroke="#555" marker-end="url(#arrow)"/><text x="{:.1}" y="{:.1}" font-size="9" fill="#246" text-anchor="middle">{}</text><title>{} by {} (attestation {})</title></a>"##,
                esc(&link(&edge.attestation)),
                (ax + bx) / 2.0,
                (ay + by) / 2.0 - 3.0,
                edge_label(edge.kind),
                edge_label(edge.kind),
                esc(&edge.org),
                edge.attestation,
            );
        }
        for (id, node) in &self.nodes {
            let Some(&(x, y)) = at.get(id) else { continue };
            let (fill, class) = if node.recalled.is_some() {
                ("#fdd", "node recalled")
            } else if node.failed {
                ("#fec", "node failed")
            } else if id == &self.root {
                ("#def", "node root")
            } else {
                ("#f6f6f6", "node")
            };
            let kind = match node.kind {
                NodeKind::Item => "item",
                NodeKind::Lot => "lot",
                NodeKind::Product => "product",
                NodeKind::Container => "container",
                NodeKind::Location => "holder",
                NodeKind::Other => "other",
            };
            let mut second = String::from(kind);
            if let Some(r) = &node.recalled {
                second = format!("RECALLED {r}");
            } else if node.failed {
                second = format!("{kind} · FAILED");
            }
            if let Some(h) = &node.holder {
                second.push_str(&format!(" · @{h}"));
            }
            let stroke = if node.recalled.is_some() || node.failed {
                "#c00"
            } else {
                "#789"
            };
            let _ = write!(
                s,
                r##"<g class="{class}"><rect x="{x:.1}" y="{y:.1}" width="{box_w}" height="{box_h}" rx="4" fill="{fill}" stroke="{stroke}"/><text x="{:.1}" y="{:.1}" font-size="11">{}</text><text x="{:.1}" y="{:.1}" font-size="9" fill="#444">{}</text><title>{}</title></g>"##,
                x + 6.0,
                y + 17.0,
                esc(&truncate(&label(id), 32)),
                x + 6.0,
                y + 33.0,
                esc(&truncate(&second, 40)),
                esc(id),
            );
        }
        s.push_str("</svg>");
        s
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn labels_are_short() {
        assert_eq!(
            label("https://id.gs1.org/01/09506000134352/10/L42"),
            "09506000134352 lot L42"
        );
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
