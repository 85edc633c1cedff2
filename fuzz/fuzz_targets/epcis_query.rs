//! `GET /epcis/events?...`: the query string decoded as axum's `Query`
//! extractor does, parsed into a query, planned, and matched against the
//! simulator's demo story; the same pairs as an FSMA 204 export request
//! (`GET /v1/fsma204`), whose CTE mapping runs over the story too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotline_fuzz::story;
use lotline_node::epcis::fsma;
use lotline_node::epcis::query::{Query, page_token};

fuzz_target!(|data: &[u8]| {
    let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(data) else {
        return;
    };
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let _ = fsma::Request::parse(get("tlc"), get("gtin"), get("from"), get("until"));
    let Ok(query) = Query::parse(&pairs) else {
        for item in story().iter().take(64) {
            let _ = fsma::cte(&item.event);
        }
        return;
    };
    let _ = query.plan();
    for (i, item) in story().iter().enumerate().take(64) {
        let _ = query.matches(&item.event, i64::try_from(i).unwrap_or(0) * 60_000);
    }
    // A page token the node issues reads back as the same position.
    if let Some(at) = query.after {
        let token = page_token(at);
        let pairs = vec![("nextPageToken".to_owned(), token.clone())];
        match Query::parse(&pairs) {
            Ok(again) => assert_eq!(again.after, Some(at), "page token {token} moved"),
            Err(e) => panic!("the node's own page token {token} is refused: {e}"),
        }
    }
});
