//! Streaming readers for the two file shapes rootline ingests: recordings (JSON Lines,
//! one envelope per line) and CloudTrail log files (`{"Records": [...]}` or a bare
//! array of records). Both read through a fixed-size buffer, never the whole file, and
//! report problems by line number without stopping.

use std::io::{self, BufRead, Read};

/// Longest line or record accepted; longer ones are rejected (and skipped without being
/// held in memory). CloudTrail caps a record at 256 KB, so this leaves ample room.
pub const MAX_ITEM_BYTES: usize = 4 * 1024 * 1024;

/// One unit read from a file.
#[derive(Debug)]
pub enum Item {
    /// A line or record, with the 1-based line it starts on.
    Data { line: u64, bytes: Vec<u8> },
    /// Something unreadable at `line`; reading continues after it unless it was fatal.
    Error { line: u64, reason: String },
}

/// Reads lines up to `MAX_ITEM_BYTES`, reporting longer ones and I/O errors (such as a
/// truncated gzip stream) as items.
pub struct LineReader<R> {
    r: R,
    line: u64,
    done: bool,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(r: R) -> Self {
        LineReader {
            r,
            line: 0,
            done: false,
        }
    }
}

impl<R: BufRead> Iterator for LineReader<R> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if self.done {
                return None;
            }
            self.line += 1;
            let line = self.line;
            let mut buf = Vec::new();
            let mut too_long = 0usize;
            loop {
                let chunk = match self.r.fill_buf() {
                    Ok(c) => c,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.done = true;
                        return Some(Item::Error {
                            line,
                            reason: read_error_reason(&e),
                        });
                    }
                };
                if chunk.is_empty() {
                    self.done = true;
                    break;
                }
                let (take, end) = match chunk.iter().position(|&b| b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (chunk.len(), false),
                };
                if too_long > 0 || buf.len() + take > MAX_ITEM_BYTES {
                    too_long += take + buf.len();
                    buf = Vec::new();
                } else {
                    buf.extend_from_slice(&chunk[..take]);
                }
                self.r.consume(take);
                if end {
                    break;
                }
            }
            if too_long > 0 {
                return Some(Item::Error {
                    line,
                    reason: format!(
                        "line is {} bytes, over the {} MiB limit",
                        too_long,
                        MAX_ITEM_BYTES / (1024 * 1024)
                    ),
                });
            }
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            if buf.iter().all(|b| b.is_ascii_whitespace()) {
                continue; // blank lines carry nothing
            }
            return Some(Item::Data { line, bytes: buf });
        }
    }
}

fn read_error_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            "file is truncated (unexpected end of compressed data)".to_string()
        }
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
            format!("file is corrupt and cannot be read further: {e}")
        }
        _ => format!("read error: {e}"),
    }
}

/// Scans a CloudTrail log document for its records without parsing it whole: the
/// elements of the top-level `Records` array (or of a top-level array). Each record's
/// bytes are returned verbatim. A missing comma between records is reported and the
/// record still read; a truncated file ends with an error.
///
/// A top-level object without a `Records` key is one bare record (the shape of a single
/// event saved from the console or an API): it is returned whole, so that it is
/// normalized (or rejected with a reason), never silently skipped.
pub struct RecordScanner<R> {
    r: R,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    line: u64,
    state: ScanState,
    eof: bool,
    io_error: Option<String>,
    pending: Option<Item>,
    /// The records array is the whole document (not the value of `Records`).
    top_array: bool,
    /// Bytes of the top-level object while it may still be a bare record: from its
    /// opening brace until a `Records` key shows it is a log document.
    capture: Option<Vec<u8>>,
    /// The top-level object outgrew `MAX_ITEM_BYTES` before a `Records` key was seen.
    capture_overflow: bool,
    /// Line of the top-level opening brace.
    doc_line: u64,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum ScanState {
    Start,
    /// Inside the top-level object, expecting a key (or '}').
    TopObject,
    /// Inside the records array; `need_sep` after an element.
    InArray {
        need_sep: bool,
    },
    Done,
}

impl<R: Read> RecordScanner<R> {
    pub fn new(r: R) -> Self {
        RecordScanner {
            r,
            buf: vec![0; 64 * 1024],
            pos: 0,
            len: 0,
            line: 1,
            state: ScanState::Start,
            eof: false,
            io_error: None,
            pending: None,
            top_array: false,
            capture: None,
            capture_overflow: false,
            doc_line: 1,
        }
    }

    fn peek(&mut self) -> Option<u8> {
        if self.pos >= self.len {
            if self.eof {
                return None;
            }
            loop {
                match self.r.read(&mut self.buf) {
                    Ok(0) => {
                        self.eof = true;
                        return None;
                    }
                    Ok(n) => {
                        self.len = n;
                        self.pos = 0;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.eof = true;
                        self.io_error = Some(read_error_reason(&e));
                        return None;
                    }
                }
            }
        }
        Some(self.buf[self.pos])
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
        }
        if let Some(c) = self.capture.as_mut() {
            if c.len() < MAX_ITEM_BYTES {
                c.push(b);
            } else {
                self.capture = None;
                self.capture_overflow = true;
            }
        }
        Some(b)
    }

    fn skip_ws(&mut self) {
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace() {
                self.bump();
            } else {
                break;
            }
        }
    }

    /// Reads a JSON string whose opening quote was consumed; returns up to 64 bytes of
    /// its content and appends its raw bytes (closing quote included) to `out`.
    fn read_string(&mut self, mut out: Option<&mut Vec<u8>>) -> Result<Vec<u8>, ()> {
        let mut s = Vec::new();
        loop {
            let b = self.bump().ok_or(())?;
            if let Some(o) = out.as_deref_mut() {
                if o.len() <= MAX_ITEM_BYTES {
                    o.push(b);
                }
            }
            match b {
                b'"' => return Ok(s),
                b'\\' => {
                    let e = self.bump().ok_or(())?;
                    if let Some(o) = out.as_deref_mut() {
                        if o.len() <= MAX_ITEM_BYTES {
                            o.push(e);
                        }
                    }
                    if s.len() < 64 {
                        s.push(e);
                    }
                }
                _ => {
                    if s.len() < 64 {
                        s.push(b);
                    }
                }
            }
        }
    }

    /// Reads one balanced JSON value starting at the current byte; returns its bytes
    /// (kept only when `keep`; capped one byte past `MAX_ITEM_BYTES`) or an error reason.
    fn read_value(&mut self, keep: bool) -> Result<Vec<u8>, String> {
        let start_line = self.line;
        let mut out = Vec::new();
        let mut started = false;
        let mut depth = 0usize;
        loop {
            let Some(b) = self.peek() else {
                return Err(format!(
                    "file is truncated inside the value starting at line {start_line}"
                ));
            };
            if depth == 0 && started && (matches!(b, b',' | b']' | b'}') || b.is_ascii_whitespace())
            {
                return Ok(out);
            }
            self.bump();
            started = true;
            if keep && out.len() <= MAX_ITEM_BYTES {
                out.push(b);
            }
            match b {
                b'"' => {
                    let o = if keep { Some(&mut out) } else { None };
                    if self.read_string(o).is_err() {
                        return Err(format!(
                            "file is truncated inside a string starting at line {start_line}"
                        ));
                    }
                    if depth == 0 {
                        return Ok(out);
                    }
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Ok(out);
                    }
                }
                _ => {}
            }
        }
    }
}

impl<R: Read> Iterator for RecordScanner<R> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if let Some(p) = self.pending.take() {
            return Some(p);
        }
        loop {
            self.skip_ws();
            let line = self.line;
            let Some(b) = self.peek() else {
                let state = std::mem::replace(&mut self.state, ScanState::Done);
                if let Some(e) = self.io_error.take() {
                    return Some(Item::Error { line, reason: e });
                }
                return match state {
                    ScanState::Done => None,
                    ScanState::Start => Some(Item::Error {
                        line,
                        reason: "file is empty: expected {\"Records\": [...]} or a JSON array"
                            .into(),
                    }),
                    _ => Some(Item::Error {
                        line,
                        reason: "file is truncated: the document is not closed".into(),
                    }),
                };
            };
            match self.state {
                ScanState::Done => return None, // content after the document is ignored
                ScanState::Start => {
                    self.bump();
                    match b {
                        b'[' => {
                            self.top_array = true;
                            self.state = ScanState::InArray { need_sep: false };
                        }
                        b'{' => {
                            self.state = ScanState::TopObject;
                            self.doc_line = line;
                            self.capture = Some(vec![b'{']);
                        }
                        _ => {
                            self.state = ScanState::Done;
                            return Some(Item::Error {
                                line,
                                reason: "not a CloudTrail log file: expected {\"Records\": [...]} or a JSON array".into(),
                            });
                        }
                    }
                }
                ScanState::TopObject => match b {
                    b',' => {
                        self.bump();
                    }
                    b'}' => {
                        self.bump();
                        self.state = ScanState::Done;
                        // Closed without a `Records` key: the document is one record.
                        if let Some(bytes) = self.capture.take() {
                            return Some(Item::Data {
                                line: self.doc_line,
                                bytes,
                            });
                        }
                        if std::mem::take(&mut self.capture_overflow) {
                            return Some(Item::Error {
                                line: self.doc_line,
                                reason: format!(
                                    "document has no Records array and, read as one record, is over the {} MiB limit",
                                    MAX_ITEM_BYTES / (1024 * 1024)
                                ),
                            });
                        }
                    }
                    b'"' => {
                        self.bump();
                        let Ok(key) = self.read_string(None) else {
                            continue; // end of file: reported on the next turn
                        };
                        self.skip_ws();
                        if self.peek() != Some(b':') {
                            self.state = ScanState::Done;
                            return Some(Item::Error {
                                line: self.line,
                                reason: "invalid JSON: expected ':' after a key".into(),
                            });
                        }
                        self.bump();
                        self.skip_ws();
                        if key == b"Records" {
                            // A log document: its records are the elements.
                            self.capture = None;
                            self.capture_overflow = false;
                        }
                        if key == b"Records" && self.peek() == Some(b'[') {
                            self.bump();
                            self.state = ScanState::InArray { need_sep: false };
                        } else if key == b"Records" {
                            self.state = ScanState::Done;
                            return Some(Item::Error {
                                line: self.line,
                                reason: "invalid CloudTrail log file: `Records` is not an array"
                                    .into(),
                            });
                        } else if let Err(reason) = self.read_value(false) {
                            self.state = ScanState::Done;
                            return Some(Item::Error { line, reason });
                        }
                    }
                    _ => {
                        self.state = ScanState::Done;
                        return Some(Item::Error {
                            line,
                            reason: format!(
                                "invalid JSON: unexpected {:?} in the top-level object",
                                b as char
                            ),
                        });
                    }
                },
                ScanState::InArray { need_sep } => {
                    match b {
                        b',' => {
                            self.bump();
                            self.state = ScanState::InArray { need_sep: false };
                        }
                        b']' => {
                            self.bump();
                            self.state = if self.top_array {
                                ScanState::Done
                            } else {
                                ScanState::TopObject
                            };
                        }
                        _ => {
                            self.state = ScanState::InArray { need_sep: true };
                            match self.read_value(true) {
                                Err(reason) => {
                                    self.state = ScanState::Done;
                                    return Some(Item::Error { line, reason });
                                }
                                Ok(bytes) if bytes.len() > MAX_ITEM_BYTES => {
                                    return Some(Item::Error {
                                        line,
                                        reason: format!(
                                            "record is over the {} MiB limit",
                                            MAX_ITEM_BYTES / (1024 * 1024)
                                        ),
                                    })
                                }
                                Ok(bytes) if need_sep => {
                                    // The record itself is intact: keep it, and report what
                                    // was wrong with the file around it.
                                    self.pending = Some(Item::Data { line, bytes });
                                    return Some(Item::Error {
                                    line,
                                    reason: "invalid JSON: missing ',' before this record (record kept)".into(),
                                });
                                }
                                Ok(bytes) => return Some(Item::Data { line, bytes }),
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(s: &str) -> Vec<String> {
        RecordScanner::new(s.as_bytes())
            .map(|i| match i {
                Item::Data { line, bytes } => format!("{line}:{}", String::from_utf8_lossy(&bytes)),
                Item::Error { line, reason } => format!("{line}!{reason}"),
            })
            .collect()
    }

    #[test]
    fn scans_records_documents_and_arrays() {
        assert_eq!(
            scan("{\"Records\": [{\"a\":\"}\"},\n {\"b\":[1,{\"c\":2}]}]}"),
            vec!["1:{\"a\":\"}\"}", "2:{\"b\":[1,{\"c\":2}]}"]
        );
        assert_eq!(scan("[{\"a\":1}]"), vec!["1:{\"a\":1}"]);
        assert_eq!(scan("[]"), Vec::<String>::new());
        assert_eq!(
            scan("{\"Other\": {\"Records\": [1]}, \"Records\": [{\"x\":\"\\\"\"}]}"),
            vec!["1:{\"x\":\"\\\"\"}"]
        );
    }

    #[test]
    fn a_document_without_records_is_one_record() {
        let doc = "\n{\"eventID\": \"e1\",\n \"requestParameters\": {\"a\": [1, \"]\"]}}\n";
        assert_eq!(
            scan(doc),
            vec!["2:{\"eventID\": \"e1\",\n \"requestParameters\": {\"a\": [1, \"]\"]}}"]
        );
        assert_eq!(scan("{}"), vec!["1:{}"]);
        // A Records key anywhere makes it a log document, never a record.
        assert_eq!(scan("{\"x\": 1, \"Records\": []}"), Vec::<String>::new());
        let out = scan("{\"Records\": {\"a\": 1}}");
        assert_eq!(out.len(), 1);
        assert!(out[0].contains("`Records` is not an array"), "{out:?}");
        let out = scan("{\"eventID\": \"e1\"");
        assert_eq!(out.len(), 1);
        assert!(out[0].contains("truncated"), "{out:?}");
    }

    #[test]
    fn reports_missing_comma_and_truncation() {
        let out = scan("{\"Records\": [{\"a\":1}\n{\"b\":2},{\"c\":");
        assert_eq!(out[0], "1:{\"a\":1}");
        assert!(out[1].starts_with("2!invalid JSON: missing ','"), "{out:?}");
        assert_eq!(out[2], "2:{\"b\":2}");
        assert!(out[3].contains("truncated"), "{out:?}");
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn line_reader_limits_and_numbers_lines() {
        let big = "x".repeat(MAX_ITEM_BYTES + 10);
        let text = format!("a\n\n{big}\nb\r\nc");
        let items: Vec<_> = LineReader::new(std::io::BufReader::new(text.as_bytes()))
            .map(|i| match i {
                Item::Data { line, bytes } => format!("{line}:{}", String::from_utf8_lossy(&bytes)),
                Item::Error { line, .. } => format!("{line}!"),
            })
            .collect();
        assert_eq!(items, vec!["1:a", "3!", "4:b", "5:c"]);
    }
}
