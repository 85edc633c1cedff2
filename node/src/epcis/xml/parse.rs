//! Bytes to an element tree, safely: no DTD processing at all, only the
//! five predefined entities and character references, a depth cap and a
//! size cap (checked by the caller before parsing).
//!
//! The bytes may come from an attacker. quick-xml reads the document as a
//! stream of events and never resolves an entity by itself; this module
//! refuses any document type declaration with an internal subset or an
//! external identifier (the only place entities can be declared), so an
//! "XML bomb" (billion laughs) or an external entity (XXE) is refused
//! before any of it is expanded or fetched. A bare `<!DOCTYPE name>` (GS1's
//! examples carry one) declares nothing and is accepted.

use std::collections::BTreeMap;

use quick_xml::events::Event as XmlEvent;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::XmlError;

/// Deepest element nesting accepted (EPCIS documents nest about 8 deep;
/// user extensions get room, a recursion bomb does not).
pub const DEPTH_MAX: usize = 64;
/// Most elements in one document (the byte cap bounds it too; this keeps
/// the tree's memory proportional to what a real document needs).
pub const ELEMENTS_MAX: usize = 4_000_000;

/// An attribute, namespace-resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    pub namespace: Option<String>,
    pub local: String,
    pub value: String,
}

/// An element, namespace-resolved, with its text (the concatenation of its
/// text and CDATA children, trimmed) and its child elements in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Element {
    pub namespace: Option<String>,
    pub local: String,
    pub attributes: Vec<Attribute>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    /// A child attribute without namespace, by local name.
    pub fn attribute(&self, local: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.namespace.is_none() && a.local == local)
            .map(|a| a.value.as_str())
    }
}

/// A parsed document: its root and every namespace prefix it declares
/// (first prefix per namespace, for the JSON-LD `@context`).
#[derive(Debug)]
pub struct Document {
    pub root: Element,
    pub prefixes: BTreeMap<String, String>,
}

const XMLNS: &str = "http://www.w3.org/2000/xmlns/";

fn resolve(resolved: ResolveResult<'_>) -> Result<Option<String>, XmlError> {
    match resolved {
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Bound(ns) => Ok(Some(String::from_utf8_lossy(ns.as_ref()).into_owned())),
        ResolveResult::Unknown(prefix) => Err(XmlError::Malformed(format!(
            "namespace prefix {:?} is not declared",
            String::from_utf8_lossy(&prefix)
        ))),
    }
}

/// Parses `bytes` into a tree (see the module doc for what is refused).
pub fn parse(bytes: &[u8]) -> Result<Document, XmlError> {
    let mut reader = NsReader::from_reader(bytes);
    reader.config_mut().expand_empty_elements = true;
    let mut buf = Vec::new();
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut prefixes: BTreeMap<String, String> = BTreeMap::new();
    let mut elements = 0usize;
    let malformed = |e: quick_xml::Error| XmlError::Malformed(e.to_string());
    loop {
        let (resolved, event) = reader
            .read_resolved_event_into(&mut buf)
            .map_err(malformed)?;
        match event {
            XmlEvent::Start(start) => {
                if root.is_some() {
                    return Err(XmlError::Malformed(
                        "content after the document element".into(),
                    ));
                }
                if stack.len() >= DEPTH_MAX {
                    return Err(XmlError::TooDeep { max: DEPTH_MAX });
                }
                elements += 1;
                if elements > ELEMENTS_MAX {
                    return Err(XmlError::TooManyElements { max: ELEMENTS_MAX });
                }
                let namespace = resolve(resolved)?;
                let local = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                let mut attributes = Vec::new();
                for attribute in start.attributes() {
                    let attribute = attribute.map_err(|e| XmlError::Malformed(e.to_string()))?;
                    let key = attribute.key;
                    let value = attribute
                        .unescape_value()
                        .map_err(|e| entity_or_malformed(&e))?
                        .into_owned();
                    if key.as_ref() == b"xmlns" {
                        continue;
                    }
                    if let Some(prefix) = key.as_ref().strip_prefix(b"xmlns:") {
                        let prefix = String::from_utf8_lossy(prefix).into_owned();
                        if !prefixes.values().any(|p| *p == prefix) {
                            prefixes.entry(value).or_insert(prefix);
                        }
                        continue;
                    }
                    let (resolved, local) = reader.resolve_attribute(key);
                    let namespace = resolve(resolved)?;
                    if namespace.as_deref() == Some(XMLNS) {
                        continue;
                    }
                    attributes.push(Attribute {
                        namespace,
                        local: String::from_utf8_lossy(local.as_ref()).into_owned(),
                        value,
                    });
                }
                stack.push(Element {
                    namespace,
                    local,
                    attributes,
                    children: Vec::new(),
                    text: String::new(),
                });
            }
            XmlEvent::End(_) => {
                let Some(mut done) = stack.pop() else {
                    return Err(XmlError::Malformed("an end tag without a start".into()));
                };
                done.text = done.text.trim().to_owned();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            XmlEvent::Text(text) => {
                let text = text
                    .decode()
                    .map_err(|e| XmlError::Malformed(e.to_string()))?;
                match stack.last_mut() {
                    Some(element) => element.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => {
                        return Err(XmlError::Malformed(
                            "text outside the document element".into(),
                        ));
                    }
                }
            }
            XmlEvent::CData(data) => {
                let text = data
                    .decode()
                    .map_err(|e| XmlError::Malformed(e.to_string()))?;
                if let Some(element) = stack.last_mut() {
                    element.text.push_str(&text);
                }
            }
            XmlEvent::GeneralRef(reference) => {
                let name = reference
                    .decode()
                    .map_err(|e| XmlError::Malformed(e.to_string()))?;
                let reference = format!("&{name};");
                let resolved = quick_xml::escape::unescape(&reference)
                    .map_err(|_| XmlError::Entity(name.chars().take(64).collect()))?;
                if let Some(element) = stack.last_mut() {
                    element.text.push_str(&resolved);
                }
            }
            XmlEvent::DocType(doctype) => {
                let text = String::from_utf8_lossy(doctype.as_ref()).into_owned();
                let upper = text.to_ascii_uppercase();
                if text.contains('[') || upper.contains("SYSTEM") || upper.contains("PUBLIC") {
                    return Err(XmlError::Dtd);
                }
            }
            XmlEvent::Eof => break,
            XmlEvent::Decl(_) | XmlEvent::PI(_) | XmlEvent::Comment(_) | XmlEvent::Empty(_) => {}
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed(
            "the document ends inside an element".into(),
        ));
    }
    let root = root.ok_or_else(|| XmlError::Malformed("no document element".into()))?;
    Ok(Document { root, prefixes })
}

fn entity_or_malformed(error: &quick_xml::Error) -> XmlError {
    match error {
        quick_xml::Error::Escape(e) => XmlError::Entity(e.to_string().chars().take(120).collect()),
        other => XmlError::Malformed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_text_and_attributes_are_resolved() {
        let doc = parse(
            br#"<?xml version="1.0"?><!DOCTYPE project>
            <e:Root xmlns:e="urn:e" xmlns:x="http://x/"><a x:k="1&amp;2">t &lt; u<![CDATA[ & v]]></a></e:Root>"#,
        )
        .unwrap();
        assert_eq!(doc.root.namespace.as_deref(), Some("urn:e"));
        assert_eq!(doc.root.local, "Root");
        let a = &doc.root.children[0];
        assert_eq!(a.namespace, None);
        assert_eq!(a.text, "t < u & v");
        assert_eq!(a.attributes[0].namespace.as_deref(), Some("http://x/"));
        assert_eq!(a.attributes[0].value, "1&2");
        assert_eq!(doc.prefixes["http://x/"], "x");
    }

    #[test]
    fn entity_declarations_and_undeclared_entities_are_refused() {
        let bomb = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><r>&lol2;</r>"#;
        assert_eq!(parse(bomb).unwrap_err(), XmlError::Dtd);
        let xxe = br#"<?xml version="1.0"?><!DOCTYPE r SYSTEM "file:///etc/passwd"><r/>"#;
        assert_eq!(parse(xxe).unwrap_err(), XmlError::Dtd);
        let undeclared = br#"<r>&xxe;</r>"#;
        assert!(matches!(parse(undeclared), Err(XmlError::Entity(_))));
    }

    #[test]
    fn depth_and_shape_are_bounded() {
        let deep = "<a>".repeat(DEPTH_MAX + 1) + &"</a>".repeat(DEPTH_MAX + 1);
        assert_eq!(
            parse(deep.as_bytes()).unwrap_err(),
            XmlError::TooDeep { max: DEPTH_MAX }
        );
        assert!(matches!(parse(b"<a><b></a>"), Err(XmlError::Malformed(_))));
        assert!(matches!(parse(b"<a/><b/>"), Err(XmlError::Malformed(_))));
        assert!(matches!(parse(b""), Err(XmlError::Malformed(_))));
        assert!(matches!(parse(b"<p:a/>"), Err(XmlError::Malformed(_))));
    }
}
