//! The authorisation matrix: every read endpoint x every kind of caller x
//! own, another org's and public data, over real HTTP against a running
//! node, asserting the exact status, that hidden and absent records get the
//! same 404 body, and that listings and block views show exactly what the
//! caller may see (no trace of the rest in items, cursors or counts).
//!
//! Adding an endpoint: a per-record endpoint is one line in
//! [`RECORD_ENDPOINTS`] (its status follows from [`VISIBLE`]); a fixed one
//! is one line in [`FIXED_ENDPOINTS`] with the status per caller.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::{Consortium, GTIN, client, commissioning, lot_uri};
use lotline_core::api::{BlockView, Listing, Wait};
use lotline_core::epcis::Event;

/// The callers. `bad-token` sends a token the node does not know.
const CALLERS: &[&str] = &[
    "anonymous",
    "supplier",
    "manufacturer",
    "distributor",
    "retailer",
    "regulator",
    "auditor",
    "operator",
    "bad-token",
];

/// The test consortium: the demo's four orgs plus a retailer and an auditor.
const ORGS: &str = "supplier:supplier:Supplier,manufacturer:manufacturer:Maker,distributor:distributor:Distributor,regulator:regulator:Agency,retailer:retailer:Shop,auditor:auditor:Audit Firm";

/// The records, who issues them, and who may read them under the default
/// read policy (`operator` is the manufacturer's node operator and reads as
/// the manufacturer).
const VISIBLE: &[(&str, &str, &[&str])] = &[
    // Commissioning with a public inspection: everyone.
    (
        "sup-public",
        "supplier",
        &[
            "anonymous",
            "supplier",
            "manufacturer",
            "distributor",
            "retailer",
            "regulator",
            "auditor",
            "operator",
        ],
    ),
    // Commissioning with a *private* measurement: never public.
    (
        "sup-private-measure",
        "supplier",
        &["supplier", "regulator", "auditor"],
    ),
    // Storage: the org's own business.
    (
        "sup-storing",
        "supplier",
        &["supplier", "regulator", "auditor"],
    ),
    // Shipping: shared with the downstream roles.
    (
        "sup-shipping",
        "supplier",
        &[
            "supplier",
            "manufacturer",
            "distributor",
            "retailer",
            "regulator",
            "auditor",
            "operator",
        ],
    ),
    // Another org's private record.
    (
        "man-storing",
        "manufacturer",
        &["manufacturer", "operator", "regulator", "auditor"],
    ),
];

/// A read endpoint about one record: `{id}` is replaced by its id.
struct RecordEndpoint {
    name: &'static str,
    path: &'static str,
}

const RECORD_ENDPOINTS: &[RecordEndpoint] = &[
    RecordEndpoint {
        name: "attestation",
        path: "/v1/attestations/{id}",
    },
    RecordEndpoint {
        name: "receipt",
        path: "/v1/attestations/{id}/receipt",
    },
    RecordEndpoint {
        name: "receipt (postcard)",
        path: "/v1/attestations/{id}/receipt?format=postcard",
    },
];

/// An endpoint whose status depends only on the caller.
struct FixedEndpoint {
    path: &'static str,
    /// Status for callers not listed in `except`.
    status: u16,
    except: &'static [(&'static str, u16)],
}

const MEMBERS_FORBIDDEN: &[(&str, u16)] = &[
    ("anonymous", 401),
    ("supplier", 403),
    ("manufacturer", 403),
    ("distributor", 403),
    ("retailer", 403),
    ("regulator", 403),
    ("auditor", 403),
    ("bad-token", 401),
];

const FIXED_ENDPOINTS: &[FixedEndpoint] = &[
    FixedEndpoint {
        path: "/v1/head",
        status: 200,
        except: &[("bad-token", 401)],
    },
    FixedEndpoint {
        path: "/v1/genesis",
        status: 200,
        except: &[("bad-token", 401)],
    },
    FixedEndpoint {
        path: "/v1/evidence",
        status: 200,
        except: &[("bad-token", 401)],
    },
    // Membership is consortium information, public like the genesis: a
    // verifier needs it to check receipts signed after a change.
    FixedEndpoint {
        path: "/v1/governance",
        status: 200,
        except: &[("bad-token", 401)],
    },
    FixedEndpoint {
        path: "/v1/governance/history",
        status: 200,
        except: &[("bad-token", 401)],
    },
    FixedEndpoint {
        path: "/health",
        status: 200,
        except: &[("bad-token", 401)],
    },
    FixedEndpoint {
        path: "/openapi.json",
        status: 200,
        except: &[("bad-token", 401)],
    },
    FixedEndpoint {
        // Capture jobs: the capture org (manufacturer) and its operator.
        path: "/epcis/capture",
        status: 403,
        except: &[
            ("anonymous", 401),
            ("bad-token", 401),
            ("manufacturer", 200),
            ("operator", 200),
        ],
    },
    FixedEndpoint {
        // Regulator reports: roles that read everything.
        path: "/v1/reports/orgs/supplier?format=csv",
        status: 403,
        except: &[
            ("anonymous", 401),
            ("bad-token", 401),
            ("regulator", 200),
            ("auditor", 200),
        ],
    },
    FixedEndpoint {
        path: "/.well-known/gs1resolver",
        status: 200,
        except: &[("bad-token", 401)],
    },
    FixedEndpoint {
        path: "/epcis/events",
        status: 200,
        except: &[("bad-token", 401)],
    },
    FixedEndpoint {
        path: "/metrics",
        status: 200,
        except: MEMBERS_FORBIDDEN,
    },
    FixedEndpoint {
        path: "/v1/audit",
        status: 200,
        except: &[
            ("anonymous", 401),
            ("supplier", 403),
            ("manufacturer", 403),
            ("distributor", 403),
            ("retailer", 403),
            ("bad-token", 401),
        ],
    },
    FixedEndpoint {
        path: "/v1/orgs/nobody/attestations",
        status: 404,
        except: &[("bad-token", 401)],
    },
];

struct Http {
    base: String,
    http: reqwest::Client,
    tokens: BTreeMap<String, String>,
}

impl Http {
    async fn get(&self, caller: &str, path: &str) -> (u16, String) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = self.tokens.get(caller) {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }
}

fn event(value: serde_json::Value) -> Event {
    serde_json::from_value(value).expect("event")
}

fn simple(step: &str, lot: &str, action: &str) -> Event {
    event(serde_json::json!({
        "type": "ObjectEvent",
        "eventTime": "2026-03-03T08:00:00.000Z",
        "eventTimeZoneOffset": "+08:00",
        "action": action,
        "bizStep": step,
        "quantityList": [{"epcClass": lot_uri(lot), "quantity": 10.0, "uom": "KGM"}],
    }))
}

fn private_measurement(lot: &str) -> Event {
    let mut value = serde_json::to_value(commissioning(lot)).expect("json");
    value["lotline:quality"]["private"] = true.into();
    event(value)
}

/// Goal: no caller reads, lists or counts a record the read policy hides,
/// every allowed read succeeds, and hidden looks exactly like absent.
/// Method: five records from two orgs on one real node; every endpoint is
/// asked by every caller; listings and blocks are compared with [`VISIBLE`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorisation_matrix() {
    let c = Consortium::with_orgs(ORGS);
    let node = c.start().await;
    let sdk = client(&node);

    let events: BTreeMap<&str, (&str, Event)> = BTreeMap::from([
        ("sup-public", ("supplier", commissioning("LOT-A"))),
        (
            "sup-private-measure",
            ("supplier", private_measurement("LOT-A")),
        ),
        (
            "sup-storing",
            ("supplier", simple("storing", "LOT-A", "OBSERVE")),
        ),
        (
            "sup-shipping",
            ("supplier", simple("shipping", "LOT-A", "OBSERVE")),
        ),
        (
            "man-storing",
            ("manufacturer", simple("storing", "LOT-A", "OBSERVE")),
        ),
    ]);
    let mut ids = BTreeMap::new();
    for (name, (org, event)) in &events {
        let envelope = c.attest(org, event.clone());
        let result = sdk
            .submit(&envelope, Wait::Committed)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        ids.insert(*name, result.id.expect("id"));
    }
    assert_eq!(ids.len(), VISIBLE.len());

    let mut tokens: BTreeMap<String, String> = c.tokens.clone();
    tokens.insert("operator".into(), c.operator_token.clone());
    // A real credential id with a wrong secret.
    tokens.insert(
        "bad-token".into(),
        format!("supplier-reader.{}", "0".repeat(64)),
    );
    let http = Http {
        base: node.url(),
        http: reqwest::Client::new(),
        tokens,
    };
    let sees = |caller: &str, record: &str| {
        VISIBLE
            .iter()
            .any(|(r, _, callers)| *r == record && callers.contains(&caller))
    };
    let absent = "ab".repeat(32);

    // Per-record endpoints.
    for endpoint in RECORD_ENDPOINTS {
        for caller in CALLERS {
            let (absent_status, absent_body) = http
                .get(caller, &endpoint.path.replace("{id}", &absent))
                .await;
            for (record, _, _) in VISIBLE {
                let id = ids[record].to_string();
                let (status, body) = http.get(caller, &endpoint.path.replace("{id}", &id)).await;
                let expected = match *caller {
                    "bad-token" => 401,
                    _ if sees(caller, record) => 200,
                    _ => 404,
                };
                assert_eq!(
                    status, expected,
                    "{} of {record} as {caller}: {body}",
                    endpoint.name
                );
                if expected != 200 {
                    assert_eq!(status, absent_status, "{} as {caller}", endpoint.name);
                    assert_eq!(
                        body.replace(&id, "ID"),
                        absent_body.replace(&absent, "ID"),
                        "{} of hidden {record} as {caller} differs from an absent one",
                        endpoint.name
                    );
                }
            }
        }
    }

    // Fixed endpoints.
    for endpoint in FIXED_ENDPOINTS {
        for caller in CALLERS {
            let expected = endpoint
                .except
                .iter()
                .find(|(c, _)| c == caller)
                .map_or(endpoint.status, |(_, s)| *s);
            let (status, body) = http.get(caller, endpoint.path).await;
            assert_eq!(status, expected, "{} as {caller}: {body}", endpoint.path);
        }
    }

    // Listings and block views: exactly the visible records, with page
    // sizes and cursors that do not hint at the hidden ones.
    let lot = lotline_sdk::encode_segment(&format!("https://id.gs1.org/01/{GTIN}/10/LOT-A"));
    let listings = [
        (format!("/v1/identifiers/{lot}/attestations"), None),
        (
            "/v1/orgs/supplier/attestations".to_owned(),
            Some("supplier"),
        ),
        (
            "/v1/orgs/manufacturer/attestations".to_owned(),
            Some("manufacturer"),
        ),
    ];
    let name_of: BTreeMap<String, &str> = ids.iter().map(|(n, id)| (id.to_string(), *n)).collect();
    for caller in CALLERS.iter().filter(|c| **c != "bad-token") {
        for (path, org) in &listings {
            let expected: BTreeSet<&str> = VISIBLE
                .iter()
                .filter(|(r, issuer, _)| org.is_none_or(|o| o == *issuer) && sees(caller, r))
                .map(|(r, _, _)| *r)
                .collect();
            let mut seen = BTreeSet::new();
            let mut after = String::new();
            for page in 0.. {
                assert!(page < 10, "{path} as {caller}: too many pages");
                let (status, body) = http.get(caller, &format!("{path}?limit=1{after}")).await;
                assert_eq!(status, 200, "{path} as {caller}: {body}");
                let listing: Listing = serde_json::from_str(&body).expect("listing");
                assert!(listing.items.len() <= 1);
                for item in &listing.items {
                    seen.insert(name_of[&item.id.to_string()]);
                }
                match listing.next {
                    Some(next) => {
                        // A cursor promises a visible item behind it.
                        assert!(
                            !listing.items.is_empty(),
                            "{path} as {caller}: empty page with a cursor"
                        );
                        after = format!("&after={next}");
                    }
                    None => break,
                }
            }
            assert_eq!(seen, expected, "{path} as {caller}");
            assert_eq!(seen.len(), expected.len(), "{path} as {caller}: count");
        }
        // The EPCIS query and the forward trace from the lot: only visible
        // records are returned or cited.
        let expected: BTreeSet<&str> = VISIBLE
            .iter()
            .filter(|(r, _, _)| sees(caller, r))
            .map(|(r, _, _)| *r)
            .collect();
        let (status, body) = http
            .get(
                caller,
                &format!("/epcis/events?MATCH_anyEPCClass={lot}&perPage=1000"),
            )
            .await;
        assert_eq!(status, 200, "EPCIS query as {caller}: {body}");
        let document: serde_json::Value = serde_json::from_str(&body).expect("query document");
        let found: BTreeSet<&str> =
            document["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
                .as_array()
                .expect("event list")
                .iter()
                .map(|e| {
                    name_of[e["lotline:attestation"]["id"]
                        .as_str()
                        .expect("attestation id")]
                })
                .collect();
        assert_eq!(found, expected, "EPCIS query as {caller}");
        let (status, body) = http
            .get(caller, &format!("/v1/trace/{lot}?direction=forward"))
            .await;
        assert_eq!(status, 200, "trace as {caller}: {body}");
        let trace: lotline_core::trace::Trace = serde_json::from_str(&body).expect("trace");
        for cited in lotline_node::trace::cited(&trace) {
            let name = name_of[&cited.to_string()];
            assert!(
                expected.contains(name),
                "trace as {caller} cites hidden {name}"
            );
        }

        let head = sdk.head().await.expect("head").height;
        let mut in_blocks = BTreeSet::new();
        for height in 1..=head {
            let (status, body) = http.get(caller, &format!("/v1/blocks/{height}")).await;
            assert_eq!(status, 200, "block {height} as {caller}");
            let block: BlockView = serde_json::from_str(&body).expect("block");
            for id in block.attestations {
                assert!(in_blocks.insert(name_of[&id.to_string()]));
            }
        }
        let expected: BTreeSet<&str> = VISIBLE
            .iter()
            .filter(|(r, _, _)| sees(caller, r))
            .map(|(r, _, _)| *r)
            .collect();
        assert_eq!(in_blocks, expected, "block views as {caller}");
    }

    // Writes need the member signature, not a credential; a bad token is
    // refused before anything else.
    let write = c.attest("supplier", commissioning("LOT-W"));
    let post = |caller: &'static str| {
        let mut request = http
            .http
            .post(format!("{}/v1/attestations", http.base))
            .json(&write);
        if let Some(token) = http.tokens.get(caller) {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(
        post("bad-token").await.expect("post").status().as_u16(),
        401
    );
    assert_eq!(
        post("anonymous").await.expect("post").status().as_u16(),
        202
    );
    assert_eq!(post("supplier").await.expect("post").status().as_u16(), 409);
    node.shutdown().await;
}
