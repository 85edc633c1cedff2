//! RFC 3339 timestamps <-> unix milliseconds. (Being written; see the issue.)
