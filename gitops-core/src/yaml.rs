//! A YAML syntax tree that remembers where every node is.
//!
//! `serde_yaml` gives typed values but no positions for keys; this tree, built
//! from saphyr-parser's event stream, gives the line and column of any key or
//! value by path, and the byte range of scalars for in-place edits.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// A position in a source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Byte offset into the source.
    pub byte: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
}

/// The kind of a node.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum NodeKind {
    /// A scalar with its (unescaped) value, its style and its tag, if any.
    Scalar {
        /// The scalar's value.
        value: String,
        /// Plain, quoted or block.
        style: Style,
        /// Tag suffix such as `Ref` for `!Ref`.
        tag: Option<String>,
    },
    /// A sequence of nodes.
    Seq {
        /// The items.
        items: Vec<Node>,
        /// Whether it is written `[a, b]`.
        flow: bool,
        /// Tag suffix, if any.
        tag: Option<String>,
    },
    /// A mapping, in source order.
    Map {
        /// Key and value pairs.
        entries: Vec<(Node, Node)>,
        /// Whether it is written `{a: b}`.
        flow: bool,
        /// Tag suffix, if any.
        tag: Option<String>,
    },
    /// An alias `*name`.
    Alias,
}

/// How a scalar is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Style {
    /// Unquoted.
    Plain,
    /// `'single'`.
    Single,
    /// `"double"`.
    Double,
    /// `|` or `>`.
    Block,
}

/// A node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node is.
    pub kind: NodeKind,
    /// Where it starts.
    pub start: Pos,
    /// Where it ends (exclusive). For a quoted scalar, just past its closing
    /// quote; for a block collection, where the parser noticed it had ended
    /// (which may be past trailing comments: use [`Node::content_end`]).
    pub end: Pos,
    /// Whether the node carries an anchor (`&name`).
    pub anchored: bool,
}

/// A syntax error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// What the parser said.
    pub message: String,
    /// Where.
    pub pos: Pos,
}

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg<'a> {
    /// A mapping key.
    Key(&'a str),
    /// A sequence index.
    Index(usize),
}

impl Node {
    /// Parses the first document of `src`. An empty document gives `None`.
    pub fn parse(src: &str) -> Result<Option<Node>, SyntaxError> {
        let offsets = CharOffsets::new(src);
        let mut events = Vec::new();
        for ev in Parser::new_from_str(src) {
            match ev {
                Ok((ev, span)) => events.push((ev, span)),
                Err(e) => {
                    return Err(SyntaxError {
                        message: e.info().to_string(),
                        pos: offsets.pos(e.marker().index(), e.marker().line(), e.marker().col()),
                    })
                }
            }
        }
        let mut it = events.into_iter().peekable();
        // Skip to the first node of the first document.
        while let Some((ev, _)) = it.peek() {
            match ev {
                Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => {
                    it.next();
                }
                _ => break,
            }
        }
        match it.peek() {
            None | Some((Event::StreamEnd, _)) | Some((Event::DocumentEnd, _)) => Ok(None),
            _ => Ok(build(&mut it, &offsets)),
        }
    }

    /// The node at `path`, if any.
    pub fn get(&self, path: &[Seg<'_>]) -> Option<&Node> {
        let mut node = self;
        for seg in path {
            node = match (seg, &node.kind) {
                (Seg::Key(k), NodeKind::Map { entries, .. }) => {
                    &entries.iter().find(|(key, _)| key.as_str() == Some(k))?.1
                }
                (Seg::Index(i), NodeKind::Seq { items, .. }) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The key node of the entry at `path` (the last segment must be a key).
    pub fn key_at(&self, path: &[Seg<'_>]) -> Option<&Node> {
        let (last, parent) = path.split_last()?;
        let Seg::Key(k) = last else { return None };
        match &self.get(parent)?.kind {
            NodeKind::Map { entries, .. } => entries
                .iter()
                .find(|(key, _)| key.as_str() == Some(k))
                .map(|(key, _)| key),
            _ => None,
        }
    }

    /// Line and column of the key at `path` when it is a map entry, else of the node;
    /// falls back to the nearest ancestor that exists.
    pub fn line_col(&self, path: &[Seg<'_>]) -> Option<(usize, usize)> {
        for n in (0..=path.len()).rev() {
            let p = &path[..n];
            if let Some(node) = self.key_at(p).or_else(|| self.get(p)) {
                return Some((node.start.line, node.start.column));
            }
        }
        None
    }

    /// The scalar value, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Where the node's content starts in `src`: past its anchor (`&name`)
    /// and tag (`!Tag`), which saphyr counts as part of the node.
    pub fn content_start(&self, src: &str) -> usize {
        skip_properties(src, self.start.byte)
    }

    /// The node's anchor name (`x` for `&x`), if it has one.
    pub fn anchor<'s>(&self, src: &'s str) -> Option<&'s str> {
        if !self.anchored {
            return None;
        }
        let mut at = self.start.byte;
        loop {
            let rest = src.get(at..)?;
            let trimmed = rest.trim_start_matches([' ', '\t', '\r', '\n']);
            at += rest.len() - trimmed.len();
            let token_len = trimmed
                .find([' ', '\t', '\r', '\n'])
                .unwrap_or(trimmed.len());
            match trimmed.as_bytes().first() {
                Some(b'&') => return Some(&trimmed[1..token_len]),
                Some(b'!') => at += token_len,
                _ => return None,
            }
        }
    }

    /// Where the node's content really ends (exclusive byte offset): the
    /// closing quote of a quoted scalar, the `]` or `}` of a flow
    /// collection, the end of the last scalar inside a block collection
    /// (never past trailing comments or blank lines).
    pub fn content_end(&self) -> usize {
        match &self.kind {
            NodeKind::Map {
                entries,
                flow: false,
                ..
            } => entries
                .last()
                .map(|(k, v)| k.content_end().max(v.content_end()))
                .unwrap_or(self.start.byte),
            NodeKind::Seq {
                items, flow: false, ..
            } => items
                .last()
                .map(Node::content_end)
                .unwrap_or(self.start.byte),
            _ => self.end.byte,
        }
    }
}

/// The span tree of a document, built from its text on first use.
///
/// Loading a file needs its values (from `serde_yaml`) every time, but its
/// spans only to place a problem, so the second parse happens only then: a
/// repository without problems parses each of its files once.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    text: String,
    node: std::sync::OnceLock<Option<Node>>,
}

impl Doc {
    /// A document over `text`, not parsed yet.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            node: std::sync::OnceLock::new(),
        }
    }

    /// The span tree (`None` for an empty document or one saphyr rejects).
    pub fn node(&self) -> Option<&Node> {
        self.node
            .get_or_init(|| Node::parse(&self.text).ok().flatten())
            .as_ref()
    }

    /// [`Node::get`] on the span tree.
    pub fn get(&self, path: &[Seg<'_>]) -> Option<&Node> {
        self.node()?.get(path)
    }

    /// [`Node::line_col`] on the span tree.
    pub fn line_col(&self, path: &[Seg<'_>]) -> Option<(usize, usize)> {
        self.node()?.line_col(path)
    }
}

fn tag_suffix(tag: Option<std::borrow::Cow<'_, saphyr_parser::Tag>>) -> Option<String> {
    tag.filter(|t| !t.is_yaml_core_schema())
        .map(|t| t.suffix.clone())
}

fn build<'a, I>(it: &mut std::iter::Peekable<I>, offsets: &CharOffsets<'_>) -> Option<Node>
where
    I: Iterator<Item = (Event<'a>, Span)>,
{
    let (ev, span) = it.next()?;
    let start = offsets.marker(&span.start);
    let end = offsets.marker(&span.end);
    let node = match ev {
        Event::Scalar(value, style, anchor, tag) => {
            let style = match style {
                ScalarStyle::Plain => Style::Plain,
                ScalarStyle::SingleQuoted => Style::Single,
                ScalarStyle::DoubleQuoted => Style::Double,
                _ => Style::Block,
            };
            // saphyr's end of a quoted scalar runs on over trailing spaces
            // and a comment: find the closing quote instead.
            let end = match style {
                Style::Single | Style::Double => {
                    let open = skip_properties(offsets.src, start.byte);
                    match closing_quote(offsets.src, open) {
                        Some(close) => offsets.advance(start, close),
                        None => end,
                    }
                }
                _ => end,
            };
            Node {
                kind: NodeKind::Scalar {
                    value: value.into_owned(),
                    style,
                    tag: tag_suffix(tag),
                },
                start,
                end,
                anchored: anchor != 0,
            }
        }
        Event::Alias(_) => Node {
            kind: NodeKind::Alias,
            start,
            end,
            anchored: false,
        },
        Event::SequenceStart(anchor, tag) => {
            let flow = offsets.char_at(skip_properties(offsets.src, start.byte)) == Some('[');
            let mut items = Vec::new();
            let mut last = end;
            loop {
                match it.peek() {
                    Some((Event::SequenceEnd, span)) => {
                        last = offsets.marker(&span.end);
                        it.next();
                        break;
                    }
                    None => break,
                    _ => items.extend(build(it, offsets)),
                }
            }
            if flow {
                // saphyr's end of a flow collection may cover a trailing
                // comma or comment: find the bracket after the last item.
                let from = items.last().map(|n| n.end.byte);
                if let Some(close) = closing_bracket(offsets.src, start.byte, from) {
                    last = offsets.advance(start, close);
                }
            }
            Node {
                kind: NodeKind::Seq {
                    items,
                    flow,
                    tag: tag_suffix(tag),
                },
                start,
                end: last,
                anchored: anchor != 0,
            }
        }
        Event::MappingStart(anchor, tag) => {
            let flow = offsets.char_at(skip_properties(offsets.src, start.byte)) == Some('{');
            let mut entries = Vec::new();
            let mut last = end;
            loop {
                match it.peek() {
                    Some((Event::MappingEnd, span)) => {
                        last = offsets.marker(&span.end);
                        it.next();
                        break;
                    }
                    None => break,
                    _ => {
                        let Some(k) = build(it, offsets) else { break };
                        let Some(v) = build(it, offsets) else { break };
                        entries.push((k, v));
                    }
                }
            }
            if flow {
                let from = entries.last().map(|(k, v)| k.end.byte.max(v.end.byte));
                if let Some(close) = closing_bracket(offsets.src, start.byte, from) {
                    last = offsets.advance(start, close);
                }
            }
            Node {
                kind: NodeKind::Map {
                    entries,
                    flow,
                    tag: tag_suffix(tag),
                },
                start,
                end: last,
                anchored: anchor != 0,
            }
        }
        // Structure events out of place: skip them.
        _ => return build(it, offsets),
    };
    Some(node)
}

/// Skips node properties (anchors `&a`, tags `!T`) and the spaces after
/// them, from byte `at`.
fn skip_properties(src: &str, mut at: usize) -> usize {
    loop {
        let Some(rest) = src.get(at..) else {
            return at;
        };
        match rest.as_bytes().first() {
            Some(b'&' | b'!') => {
                let token = rest.find([' ', '\t', '\r', '\n']).unwrap_or(rest.len());
                let after = &rest[token..];
                let spaces = after.len() - after.trim_start_matches([' ', '\t', '\r', '\n']).len();
                at += token + spaces;
            }
            _ => return at,
        }
    }
}

/// The byte just past the quote that closes the quoted scalar opening at
/// byte `open` (`'` or `"`), or `None` when `open` is not a quote or the
/// quote never closes.
fn closing_quote(src: &str, open: usize) -> Option<usize> {
    let rest = src.get(open..)?;
    let quote = rest.chars().next()?;
    let mut chars = rest.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            ('"', '\\') => {
                chars.next();
            }
            ('"', '"') => return Some(open + i + 1),
            ('\'', '\'') => {
                if rest[i + 1..].starts_with('\'') {
                    chars.next();
                } else {
                    return Some(open + i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// The byte just past the `]` or `}` that closes the flow collection
/// starting at byte `start` (at its properties or its opening bracket),
/// whose last child ends at byte `last_child` (`None`: it is empty). Only
/// spaces, line breaks, commas and comments can come between the two.
fn closing_bracket(src: &str, start: usize, last_child: Option<usize>) -> Option<usize> {
    let mut at = match last_child {
        Some(end) => end,
        None => skip_properties(src, start) + 1,
    };
    let bytes = src.as_bytes();
    while let Some(&b) = bytes.get(at) {
        match b {
            b']' | b'}' => return Some(at + 1),
            b'#' => at += src[at..].find('\n').unwrap_or(src.len() - at),
            b' ' | b'\t' | b'\r' | b'\n' | b',' => at += 1,
            _ => return None,
        }
    }
    None
}

/// Maps saphyr's character indices to byte offsets.
struct CharOffsets<'a> {
    src: &'a str,
    /// Byte offset of every char index, only built when the text is not ASCII.
    table: Option<Vec<usize>>,
}

impl<'a> CharOffsets<'a> {
    fn new(src: &'a str) -> Self {
        let table = (!src.is_ascii()).then(|| {
            let mut t: Vec<usize> = src.char_indices().map(|(b, _)| b).collect();
            t.push(src.len());
            t
        });
        Self { src, table }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.table {
            None => char_index.min(self.src.len()),
            Some(t) => t.get(char_index).copied().unwrap_or(self.src.len()),
        }
    }

    fn pos(&self, char_index: usize, line: usize, col: usize) -> Pos {
        Pos {
            byte: self.byte(char_index),
            line: line.max(1),
            column: col + 1,
        }
    }

    fn marker(&self, m: &saphyr_parser::Marker) -> Pos {
        self.pos(m.index(), m.line(), m.col())
    }

    /// The position of byte `to`, counted on from `from` (at or before it).
    fn advance(&self, from: Pos, to: usize) -> Pos {
        let Some(between) = self.src.get(from.byte..to) else {
            return from;
        };
        match between.rfind('\n') {
            None => Pos {
                byte: to,
                line: from.line,
                column: from.column + between.chars().count(),
            },
            Some(nl) => Pos {
                byte: to,
                line: from.line + between.matches('\n').count(),
                column: between[nl + 1..].chars().count() + 1,
            },
        }
    }

    fn char_at(&self, byte: usize) -> Option<char> {
        self.src.get(byte..)?.chars().next()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn finds_keys_and_values_with_lines() {
        let src = "a: 1\nb:\n  c: [x, y]\n  d: { e: \"f\" }\n";
        let doc = Node::parse(src).unwrap().unwrap();
        assert_eq!(doc.line_col(&[Seg::Key("b"), Seg::Key("d")]), Some((4, 3)));
        let e = doc
            .get(&[Seg::Key("b"), Seg::Key("d"), Seg::Key("e")])
            .unwrap();
        assert_eq!(e.as_str(), Some("f"));
        assert_eq!(&src[e.start.byte..e.start.byte + 3], "\"f\"");
        let y = doc
            .get(&[Seg::Key("b"), Seg::Key("c"), Seg::Index(1)])
            .unwrap();
        assert_eq!((y.start.line, y.start.column), (3, 10));
        // missing leaf falls back to its parent
        assert_eq!(doc.line_col(&[Seg::Key("b"), Seg::Key("zz")]), Some((2, 1)));
    }

    #[test]
    fn ends_are_exact() {
        let src = "a: 'x''y'  # c\nb: \"q\\\"\"   # d\nc: &k !T \"v\"\nd: {e: 1,\n  f: [2, 3] ,  # e\n}  # f\ng: []\n";
        let doc = Node::parse(src).unwrap().unwrap();
        let text = |path: &[Seg<'_>]| {
            let n = doc.get(path).unwrap();
            &src[n.start.byte..n.end.byte]
        };
        assert_eq!(text(&[Seg::Key("a")]), "'x''y'");
        assert_eq!(text(&[Seg::Key("b")]), "\"q\\\"\"");
        assert_eq!(text(&[Seg::Key("c")]), "&k !T \"v\"");
        assert_eq!(text(&[Seg::Key("d"), Seg::Key("f")]), "[2, 3]");
        assert_eq!(text(&[Seg::Key("d")]), "{e: 1,\n  f: [2, 3] ,  # e\n}");
        assert_eq!(text(&[Seg::Key("g")]), "[]");
        let c = doc.get(&[Seg::Key("c")]).unwrap();
        assert_eq!(c.anchor(src), Some("k"));
        assert_eq!(&src[c.content_start(src)..c.end.byte], "\"v\"");
        let d = doc.get(&[Seg::Key("d")]).unwrap();
        assert!(matches!(d.kind, NodeKind::Map { flow: true, .. }));
        assert_eq!((d.end.line, d.end.column), (6, 2));
        assert_eq!(doc.content_end(), src.len() - 1);
    }

    #[test]
    fn non_ascii_offsets_are_bytes() {
        let src = "é: ü\nk: v\n";
        let doc = Node::parse(src).unwrap().unwrap();
        let v = doc.get(&[Seg::Key("k")]).unwrap();
        assert_eq!(&src[v.start.byte..v.start.byte + 1], "v");
    }

    #[test]
    fn tags_and_errors() {
        let doc = Node::parse("x: !Ref Foo\n").unwrap().unwrap();
        match &doc.get(&[Seg::Key("x")]).unwrap().kind {
            NodeKind::Scalar { tag, value, .. } => {
                assert_eq!(tag.as_deref(), Some("Ref"));
                assert_eq!(value, "Foo");
            }
            k => panic!("unexpected {k:?}"),
        }
        let err = Node::parse("a: [1, 2\nb: c\n").unwrap_err();
        assert!(err.pos.line >= 1);
        assert!(Node::parse("").unwrap().is_none());
    }
}
