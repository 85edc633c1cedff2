//! Reading an EPCISDocument (or EPCISQueryDocument) as a stream: events are
//! handed out one by one, in document order, while the body is still being
//! read, so a document of any size costs the memory of one event plus its
//! outline (everything outside the event list).
//!
//! How: a serde visitor walks the document's object tree and, at
//! `epcisBody.eventList` (or `epcisBody.queryResults.resultsBody.eventList`),
//! deserializes one element at a time and passes it to a sink instead of
//! building the list. Everything else is kept as the document's *outline*
//! (the document with empty event lists), which the caller checks against the
//! schema once the document has ended.
//!
//! Bounds, enforced by the reader under the parser ([`Gate`]) *before* the
//! bytes are parsed, so an oversized value is refused before it is held:
//! the whole document ([`CAPTURE_BYTES_MAX`] unless the caller says less),
//! each event ([`CAPTURE_EVENT_BYTES_MAX`]) and the outline
//! ([`CAPTURE_OUTLINE_BYTES_MAX`]).
//!
//! Not supported: EPCIS XML. Capture reads JSON-LD only (as it did before
//! streaming).

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use lotline_core::limits::{CAPTURE_EVENT_BYTES_MAX, CAPTURE_OUTLINE_BYTES_MAX};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::capture::BodyKind;

/// What the sink is given, in document order.
#[derive(Debug)]
pub enum Piece<'a> {
    /// The document's top-level `@context`.
    Context(&'a Value),
    /// The document's `epcisHeader` (its master data is captured).
    Header(&'a Value),
    /// One element of the event list (not yet checked in any way).
    Event {
        kind: BodyKind,
        index: usize,
        raw: Value,
    },
}

/// The sink's answer: go on, or stop reading (its reason is its own).
pub type Flow = Result<(), Halt>;

/// The sink asked to stop reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Halt;

/// The document with its events left out, and where its events were.
#[derive(Debug, Default)]
pub struct Outline {
    /// Top-level members; every event list in it is empty.
    pub skeleton: Map<String, Value>,
    /// Where an event list was found (`None`: no event list at all).
    pub kind: Option<BodyKind>,
    /// Events handed to the sink.
    pub events: usize,
}

/// Why a document could not be read to its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("the body is not a JSON object as EPCIS expects: {0}")]
    Json(String),
    #[error("the document is larger than the {max} bytes this node captures")]
    TooLarge { max: u64 },
    #[error("event {index} of the event list is larger than {CAPTURE_EVENT_BYTES_MAX} bytes")]
    EventTooLarge { index: usize },
    #[error("the document outside its event list is larger than {CAPTURE_OUTLINE_BYTES_MAX} bytes")]
    OutlineTooLarge,
    #[error("the request body could not be read: {0}")]
    Body(String),
    /// The sink stopped reading.
    #[error("reading stopped")]
    Halted,
}

/// Which byte budget the parser is inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    Outline,
    Event(usize),
}

/// Byte counts shared by the reader (which enforces them) and the visitor
/// (which moves the window). One thread: the parser's.
struct Gate {
    read: Cell<u64>,
    document_max: u64,
    window: Cell<Window>,
    window_end: Cell<u64>,
    /// Set when the reader refused to read on.
    tripped: Cell<Option<StreamError>>,
}

impl Gate {
    fn enter(&self, window: Window) {
        let size = match window {
            Window::Outline => CAPTURE_OUTLINE_BYTES_MAX,
            Window::Event(_) => CAPTURE_EVENT_BYTES_MAX,
        };
        self.window.set(window);
        self.window_end
            .set(self.read.get().saturating_add(size as u64));
    }
}

/// The body under the parser: counts bytes and refuses past a bound.
struct Gated<R> {
    inner: R,
    gate: Rc<Gate>,
}

impl<R: Read> Read for Gated<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let read = self.gate.read.get().saturating_add(n as u64);
        self.gate.read.set(read);
        let trip = if read > self.gate.document_max {
            Some(StreamError::TooLarge {
                max: self.gate.document_max,
            })
        } else if read > self.gate.window_end.get() {
            Some(match self.gate.window.get() {
                Window::Outline => StreamError::OutlineTooLarge,
                Window::Event(index) => StreamError::EventTooLarge { index },
            })
        } else {
            None
        };
        if let Some(trip) = trip {
            let message = trip.to_string();
            self.gate.tripped.set(Some(trip));
            return Err(io::Error::other(message));
        }
        Ok(n)
    }
}

/// Reads one document from `body` (at most `document_max` bytes), giving
/// `sink` its `@context` and each event as they come.
pub fn read<R: Read>(
    body: R,
    document_max: u64,
    sink: &mut dyn FnMut(Piece<'_>) -> Flow,
) -> Result<Outline, StreamError> {
    let gate = Rc::new(Gate {
        read: Cell::new(0),
        document_max,
        window: Cell::new(Window::Outline),
        window_end: Cell::new(0),
        tripped: Cell::new(None),
    });
    gate.enter(Window::Outline);
    let reader = Gated {
        inner: body,
        gate: gate.clone(),
    };
    let mut state = State {
        sink,
        gate: gate.clone(),
        halted: false,
        kind: None,
        events: 0,
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let parsed = Nest {
        state: &mut state,
        level: Level::Root,
    }
    .deserialize(&mut de)
    .and_then(|skeleton| de.end().map(|()| skeleton));
    match parsed {
        Ok(skeleton) => Ok(Outline {
            skeleton,
            kind: state.kind,
            events: state.events,
        }),
        Err(_) if state.halted => Err(StreamError::Halted),
        Err(e) => match gate.tripped.take() {
            Some(trip) => Err(trip),
            None if e.is_io() => Err(StreamError::Body(e.to_string())),
            None => Err(StreamError::Json(e.to_string())),
        },
    }
}

struct State<'s> {
    sink: &'s mut dyn FnMut(Piece<'_>) -> Flow,
    gate: Rc<Gate>,
    halted: bool,
    kind: Option<BodyKind>,
    events: usize,
}

/// The objects on the way to an event list.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Body,
    QueryResults,
    ResultsBody,
}

/// One object of the document, returned without its event lists.
struct Nest<'a, 's> {
    state: &'a mut State<'s>,
    level: Level,
}

impl<'de> DeserializeSeed<'de> for Nest<'_, '_> {
    type Value = Map<String, Value>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Nest<'_, '_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self.level {
            Level::Root => f.write_str("an EPCISDocument or EPCISQueryDocument object"),
            Level::Body => f.write_str("an epcisBody object"),
            Level::QueryResults => f.write_str("a queryResults object"),
            Level::ResultsBody => f.write_str("a resultsBody object"),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let child = match (self.level, key.as_str()) {
                (Level::Root, "epcisBody") => Some(Level::Body),
                (Level::Body, "queryResults") => Some(Level::QueryResults),
                (Level::QueryResults, "resultsBody") => Some(Level::ResultsBody),
                _ => None,
            };
            if let Some(level) = child {
                let inner = map.next_value_seed(Nest {
                    state: &mut *self.state,
                    level,
                })?;
                out.insert(key, Value::Object(inner));
                continue;
            }
            let kind = match (self.level, key.as_str()) {
                (Level::Body, "eventList") => Some(BodyKind::Document),
                (Level::ResultsBody, "eventList") => Some(BodyKind::QueryDocument),
                _ => None,
            };
            if let Some(kind) = kind {
                self.state.kind = Some(kind);
                map.next_value_seed(List {
                    state: &mut *self.state,
                    kind,
                })?;
                out.insert(key, Value::Array(Vec::new()));
                continue;
            }
            let value: Value = map.next_value()?;
            if self.level == Level::Root
                && key == "@context"
                && (self.state.sink)(Piece::Context(&value)).is_err()
            {
                self.state.halted = true;
                return Err(de::Error::custom("reading stopped"));
            }
            if self.level == Level::Root
                && key == "epcisHeader"
                && (self.state.sink)(Piece::Header(&value)).is_err()
            {
                self.state.halted = true;
                return Err(de::Error::custom("reading stopped"));
            }
            out.insert(key, value);
        }
        Ok(out)
    }
}

/// An event list: each element to the sink, none kept.
struct List<'a, 's> {
    state: &'a mut State<'s>,
    kind: BodyKind,
}

impl<'de> DeserializeSeed<'de> for List<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for List<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an eventList array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let index = self.state.events;
            self.state.gate.enter(Window::Event(index));
            let Some(raw) = seq.next_element::<Value>()? else {
                break;
            };
            self.state.events += 1;
            let piece = Piece::Event {
                kind: self.kind,
                index,
                raw,
            };
            if (self.state.sink)(piece).is_err() {
                self.state.halted = true;
                return Err(de::Error::custom("reading stopped"));
            }
        }
        self.state.gate.enter(Window::Outline);
        Ok(())
    }
}

/// A [`Read`] over body chunks that arrive on a channel: the parser thread
/// blocks on it while the HTTP side forwards the body. A closed channel is
/// the end of the body; an `Err` item is a failed read.
///
/// The JSON parser reads a byte at a time (`serde_json`'s reader takes
/// bytes one by one), so a read only copies from the current chunk and
/// moves a position: splitting the chunk's `Bytes` instead cost two atomic
/// reference count updates per byte, about 5 % of a capture's CPU.
#[derive(Debug)]
pub struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, String>>,
    current: axum::body::Bytes,
    /// How much of `current` has been read.
    at: usize,
}

impl ChannelReader {
    pub fn new(
        rx: tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, String>>,
    ) -> ChannelReader {
        ChannelReader {
            rx,
            current: axum::body::Bytes::new(),
            at: 0,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at >= self.current.len() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(chunk)) => {
                    self.current = chunk;
                    self.at = 0;
                }
                Some(Err(e)) => return Err(io::Error::other(e)),
            }
        }
        let rest = self.current.get(self.at..).unwrap_or_default();
        let n = buf.len().min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Goal: the body reader gives the chunks' bytes in order, whatever
    /// the chunk and read sizes (empty chunks included), then the end; a
    /// failed body read is an error after the bytes before it.
    #[test]
    fn the_channel_reader_gives_every_byte_in_order_then_the_end_or_the_error() {
        let chunks: [&[u8]; 5] = [b"ab", b"", b"cdefg", b"h", b"ijklmnop"];
        for read_size in [1, 2, 3, 64] {
            let (tx, rx) = tokio::sync::mpsc::channel(8);
            for chunk in chunks {
                tx.try_send(Ok(axum::body::Bytes::from_static(chunk)))
                    .expect("room");
            }
            drop(tx);
            let mut reader = ChannelReader::new(rx);
            let mut out = Vec::new();
            let mut buf = vec![0u8; read_size];
            loop {
                let n = reader.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
            assert_eq!(out, b"abcdefghijklmnop", "reads of {read_size}");
        }
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tx.try_send(Ok(axum::body::Bytes::from_static(b"xy")))
            .expect("room");
        tx.try_send(Err("connection reset".into())).expect("room");
        let mut reader = ChannelReader::new(rx);
        let mut out = Vec::new();
        let error = reader.read_to_end(&mut out).expect_err("failed body");
        assert_eq!(out, b"xy");
        assert!(error.to_string().contains("connection reset"), "{error}");
    }

    fn collect(body: &[u8], max: u64) -> (Result<Outline, StreamError>, Vec<Value>, Vec<Value>) {
        let mut events = Vec::new();
        let mut contexts = Vec::new();
        let result = read(body, max, &mut |piece| {
            match piece {
                Piece::Context(c) => contexts.push(c.clone()),
                Piece::Event { raw, .. } => events.push(raw),
                Piece::Header(_) => {}
            }
            Ok(())
        });
        (result, events, contexts)
    }

    #[test]
    fn events_come_out_one_by_one_and_the_outline_keeps_the_rest() {
        // Goal: every event reaches the sink in order, and the outline is the
        // document with an empty event list, whatever the member order.
        let doc = json!({
            "type": "EPCISDocument",
            "epcisBody": {"eventList": [{"n": 1}, {"n": 2}, {"n": 3}]},
            "@context": ["x"],
            "schemaVersion": "2.0"
        });
        let (outline, events, contexts) = collect(&serde_json::to_vec(&doc).unwrap(), 1 << 20);
        let outline = outline.unwrap();
        assert_eq!(
            events,
            vec![json!({"n": 1}), json!({"n": 2}), json!({"n": 3})]
        );
        assert_eq!(contexts, vec![json!(["x"])]);
        assert_eq!(outline.kind, Some(BodyKind::Document));
        assert_eq!(outline.events, 3);
        assert_eq!(outline.skeleton["epcisBody"], json!({"eventList": []}));
        assert_eq!(outline.skeleton["schemaVersion"], "2.0");

        let query = json!({"epcisBody": {"queryResults": {"queryName": "q",
            "resultsBody": {"eventList": [{"n": 1}]}}}});
        let (outline, events, _) = collect(&serde_json::to_vec(&query).unwrap(), 1 << 20);
        let outline = outline.unwrap();
        assert_eq!(outline.kind, Some(BodyKind::QueryDocument));
        assert_eq!(events.len(), 1);
        assert_eq!(
            outline.skeleton["epcisBody"]["queryResults"]["queryName"],
            "q"
        );
    }

    #[test]
    fn bounds_are_enforced_before_the_bytes_are_held() {
        // Goal: an oversized document, event or outline is refused by name;
        // malformed JSON after some events stops with the events so far given.
        let big = format!(
            "{{\"epcisBody\": {{\"eventList\": [{{\"n\": 1}}, {{\"pad\": \"{}\"}}]}}}}",
            "x".repeat(CAPTURE_EVENT_BYTES_MAX + 10)
        );
        let (result, events, _) = collect(big.as_bytes(), u64::MAX);
        assert_eq!(result.unwrap_err(), StreamError::EventTooLarge { index: 1 });
        assert_eq!(events.len(), 1);
        let (result, _, _) = collect(big.as_bytes(), 1000);
        assert_eq!(result.unwrap_err(), StreamError::TooLarge { max: 1000 });
        let outline = format!(
            "{{\"epcisHeader\": \"{}\"}}",
            "x".repeat(CAPTURE_OUTLINE_BYTES_MAX + 10)
        );
        let (result, _, _) = collect(outline.as_bytes(), u64::MAX);
        assert_eq!(result.unwrap_err(), StreamError::OutlineTooLarge);

        let broken = br#"{"epcisBody": {"eventList": [{"n": 1}, {"n": 2}, {"n": "#;
        let (result, events, _) = collect(broken, u64::MAX);
        assert!(matches!(result, Err(StreamError::Json(_))), "{result:?}");
        assert_eq!(events.len(), 2);
        let (result, _, _) = collect(b"[1, 2]", u64::MAX);
        assert!(matches!(result, Err(StreamError::Json(_))), "{result:?}");
        let (result, _, _) = collect(b"{} trailing", u64::MAX);
        assert!(matches!(result, Err(StreamError::Json(_))), "{result:?}");
    }

    #[test]
    fn a_sink_can_stop_the_reading() {
        let body = br#"{"epcisBody": {"eventList": [{"n": 1}, {"n": 2}, {"n": 3}]}}"#;
        let mut seen = 0;
        let result = read(&body[..], u64::MAX, &mut |piece| {
            if let Piece::Event { .. } = piece {
                seen += 1;
                if seen == 2 {
                    return Err(Halt);
                }
            }
            Ok(())
        });
        assert_eq!(result.unwrap_err(), StreamError::Halted);
        assert_eq!(seen, 2);
    }
}
