//! Splits an input stream into records without holding the file in memory.
//!
//! Three layouts are recognised from the first bytes:
//! - **JSONL** (the lineage's log): one record a line, split on `\n` only (U+2028 is data, not
//!   a line break); a trailing `\r` is dropped; blank lines are not records.
//! - **JSON array** (`[` first): each element is a record (a list of HTTP responses).
//! - **JSON document(s)**: one or more pretty-printed values, one after another (an HTTP
//!   response saved to a file). Chosen when the first line opens an object it does not close.
//!
//! A record longer than the limit is reported by length and skipped, not buffered.

use std::io::{self, BufRead};

/// Where a record sits in its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    /// 0-based position among the file's records.
    pub index: u64,
    /// 1-based line where the record starts.
    pub line: u64,
    start: usize,
    end: usize,
    /// `Some(len)` when the record was over the limit and skipped.
    pub oversized: Option<u64>,
}

/// A batch of records sharing one buffer (one allocation per batch, reused).
#[derive(Debug, Default)]
pub struct Batch {
    buf: Vec<u8>,
    /// The records, in input order.
    pub records: Vec<RecordMeta>,
    /// Problems with the layout itself (an array never closed, data after it), as
    /// `(index, line, message)`; reported as `malformed` at that position.
    pub layout_errors: Vec<(u64, u64, String)>,
}

impl Batch {
    /// The bytes of a record.
    pub fn bytes(&self, m: &RecordMeta) -> &[u8] {
        &self.buf[m.start..m.end]
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.records.clear();
        self.layout_errors.clear();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Undecided,
    Lines,
    Array,
    Documents,
}

/// Structural scan state for the array and document layouts.
#[derive(Debug, Default, Clone, Copy)]
struct Scan {
    depth: u32,
    in_str: bool,
    esc: bool,
}

/// Reads records from a buffered stream.
#[derive(Debug)]
pub struct RecordReader<R> {
    inner: R,
    layout: Layout,
    max_record: usize,
    next_index: u64,
    line: u64,
    bytes_read: u64,
    // array/document state
    scan: Scan,
    array_open: bool,
    array_closed: bool,
    trailing_reported: bool,
    pending: Option<Pending>,
    eof: bool,
}

#[derive(Debug)]
struct Pending {
    start: usize,
    line: u64,
    len: u64,
    oversized: bool,
}

/// Records longer than this are reported by length and skipped (16 MiB).
pub const MAX_RECORD_BYTES: usize = 16 << 20;

/// Records per batch: large enough to amortise the parallel hand-off, small enough to keep
/// memory flat.
pub const BATCH_RECORDS: usize = 2048;
const BATCH_BYTES: usize = 4 << 20;

impl<R: BufRead> RecordReader<R> {
    /// Wraps a stream; records longer than `max_record` bytes are skipped and reported.
    pub fn new(inner: R, max_record: usize) -> Self {
        Self {
            inner,
            layout: Layout::Undecided,
            max_record,
            next_index: 0,
            line: 1,
            bytes_read: 0,
            scan: Scan::default(),
            array_open: false,
            array_closed: false,
            trailing_reported: false,
            pending: None,
            eof: false,
        }
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Records handed out so far.
    pub fn records_read(&self) -> u64 {
        self.next_index
    }

    /// Fills `batch` with the next records; `Ok(false)` once the input is exhausted and the
    /// batch is empty.
    pub fn next_batch(&mut self, batch: &mut Batch) -> io::Result<bool> {
        batch.clear();
        if self.layout == Layout::Undecided {
            self.decide_layout()?;
        }
        while !self.eof && batch.records.len() < BATCH_RECORDS && batch.buf.len() < BATCH_BYTES {
            match self.layout {
                Layout::Lines | Layout::Undecided => self.read_line(batch)?,
                Layout::Array | Layout::Documents => self.read_structural(batch)?,
            }
        }
        Ok(!batch.records.is_empty() || !batch.layout_errors.is_empty())
    }

    fn decide_layout(&mut self) -> io::Result<()> {
        // Skip a UTF-8 BOM and leading whitespace, then look at the first line.
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                self.eof = true;
                self.layout = Layout::Lines;
                return Ok(());
            }
            let skip = if buf.starts_with(b"\xEF\xBB\xBF") {
                3
            } else {
                buf.iter()
                    .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                    .count()
            };
            if skip == 0 {
                break;
            }
            self.line += buf[..skip].iter().filter(|&&b| b == b'\n').count() as u64;
            self.bytes_read += skip as u64;
            self.inner.consume(skip);
        }
        let buf = self.inner.fill_buf()?;
        self.layout = match buf.first() {
            Some(b'[') => Layout::Array,
            Some(b'{') => {
                // JSONL when the first line closes the object it opens; otherwise a
                // pretty-printed document. Decided on what is buffered (8 KiB at least).
                let mut s = Scan::default();
                let mut closes_on_first_line = false;
                for &b in buf.iter() {
                    if b == b'\n' {
                        break;
                    }
                    if s.step(b) && s.depth == 0 {
                        closes_on_first_line = true;
                        break;
                    }
                }
                let has_newline = memchr::memchr(b'\n', buf).is_some();
                if closes_on_first_line || !has_newline {
                    Layout::Lines
                } else {
                    Layout::Documents
                }
            }
            _ => Layout::Lines,
        };
        Ok(())
    }

    fn read_line(&mut self, batch: &mut Batch) -> io::Result<()> {
        let start = batch.buf.len();
        let line = self.line;
        let mut len: u64 = 0;
        let mut oversized = false;
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                self.eof = true;
                break;
            }
            let (chunk, done) = match memchr::memchr(b'\n', buf) {
                Some(i) => (&buf[..i], i + 1),
                None => (buf, buf.len()),
            };
            len += chunk.len() as u64;
            if !oversized {
                if len as usize > self.max_record {
                    oversized = true;
                    batch.buf.truncate(start);
                } else {
                    batch.buf.extend_from_slice(chunk);
                }
            }
            let found_newline = done > chunk.len();
            self.bytes_read += done as u64;
            self.inner.consume(done);
            if found_newline {
                self.line += 1;
                break;
            }
        }
        if oversized {
            emit(&mut self.next_index, batch, start, line, Some(len));
            return Ok(());
        }
        // Only this line's own `\r`: an empty line must not eat the previous record's byte
        // (found by the split_records fuzz target on "a\r\r\n").
        if batch.buf.len() > start && batch.buf.last() == Some(&b'\r') {
            batch.buf.pop();
        }
        if batch.buf[start..].iter().all(|b| b.is_ascii_whitespace()) {
            batch.buf.truncate(start);
            return Ok(());
        }
        emit(&mut self.next_index, batch, start, line, None);
        Ok(())
    }

    /// Records never span batches: a batch stops only between records, so a pending record's
    /// bytes are always in this batch's buffer.
    fn read_structural(&mut self, batch: &mut Batch) -> io::Result<()> {
        loop {
            self.read_structural_chunk(batch)?;
            if self.pending.is_none() || self.eof {
                return Ok(());
            }
        }
    }

    fn read_structural_chunk(&mut self, batch: &mut Batch) -> io::Result<()> {
        let buf = self.inner.fill_buf()?;
        if buf.is_empty() {
            self.eof = true;
            if let Some(p) = self.pending.take() {
                let (index, line) = (self.next_index, p.line);
                emit(
                    &mut self.next_index,
                    batch,
                    p.start,
                    p.line,
                    p.oversized.then_some(p.len),
                );
                if self.layout == Layout::Array || self.scan.depth > 0 || self.scan.in_str {
                    batch.layout_errors.push((
                        index,
                        line,
                        "input ends inside a record (file cut off?)".into(),
                    ));
                }
            } else if self.layout == Layout::Array && self.array_open && !self.array_closed {
                batch.layout_errors.push((
                    self.next_index,
                    self.line,
                    "JSON array is not closed (file cut off?)".into(),
                ));
            }
            return Ok(());
        }
        let mut consumed = 0;
        for (i, &b) in buf.iter().enumerate() {
            consumed = i + 1;
            if b == b'\n' {
                self.line += 1;
            }
            let depth_before = self.scan.depth;
            let in_str_before = self.scan.in_str;
            // Outside any record: separators and brackets of the container.
            if self.layout == Layout::Array && !self.array_open {
                // Only whitespace precedes the `[` (the layout was chosen on it).
                if b == b'[' {
                    self.array_open = true;
                    self.scan.depth = 1;
                }
                continue;
            }
            if self.pending.is_none() && !in_str_before {
                let base = u32::from(self.layout == Layout::Array);
                if depth_before == base {
                    if b.is_ascii_whitespace() {
                        continue;
                    }
                    if self.layout == Layout::Array {
                        if b == b',' {
                            continue;
                        } else if b == b']' {
                            self.array_closed = true;
                            self.scan.depth = 0;
                            continue;
                        }
                    }
                }
                if self.layout == Layout::Array && self.array_closed {
                    if !b.is_ascii_whitespace() && !self.trailing_reported {
                        self.trailing_reported = true;
                        batch.layout_errors.push((
                            self.next_index,
                            self.line,
                            "data after the closing `]` of the JSON array".into(),
                        ));
                    }
                    continue;
                }
                // A record starts here.
                self.pending = Some(Pending {
                    start: batch.buf.len(),
                    line: self.line,
                    len: 0,
                    oversized: false,
                });
            }
            let base = u32::from(self.layout == Layout::Array);
            // Scalar records (and garbage) end at whitespace or a separator at base depth.
            let ends_scalar = !self.scan.in_str
                && self.scan.depth == base
                && (b.is_ascii_whitespace()
                    || (self.layout == Layout::Array && (b == b',' || b == b']')));
            if ends_scalar {
                finish_pending(&mut self.pending, &mut self.next_index, batch);
                if self.layout == Layout::Array && b == b']' {
                    self.array_closed = true;
                    self.scan.depth = 0;
                }
                if batch.records.len() >= BATCH_RECORDS || batch.buf.len() >= BATCH_BYTES {
                    break;
                }
                continue;
            }
            let closed = self.scan.step(b);
            if let Some(p) = self.pending.as_mut() {
                p.len += 1;
                if !p.oversized {
                    if p.len as usize > self.max_record {
                        p.oversized = true;
                        batch.buf.truncate(p.start);
                    } else {
                        batch.buf.push(b);
                    }
                }
            }
            if closed && self.scan.depth == base {
                finish_pending(&mut self.pending, &mut self.next_index, batch);
                if batch.records.len() >= BATCH_RECORDS || batch.buf.len() >= BATCH_BYTES {
                    break;
                }
            }
        }
        self.bytes_read += consumed as u64;
        self.inner.consume(consumed);
        Ok(())
    }
}

/// Ends the pending record, if any.
fn finish_pending(pending: &mut Option<Pending>, next_index: &mut u64, batch: &mut Batch) {
    if let Some(p) = pending.take() {
        emit(
            next_index,
            batch,
            p.start,
            p.line,
            p.oversized.then_some(p.len),
        );
    }
}

/// Records the bytes from `start` to the end of the buffer as the next record (none when it
/// was oversized). A free function: the scan loop holds a borrow of the reader.
fn emit(next_index: &mut u64, batch: &mut Batch, start: usize, line: u64, oversized: Option<u64>) {
    let end = if oversized.is_some() {
        start
    } else {
        batch.buf.len()
    };
    batch.records.push(RecordMeta {
        index: *next_index,
        line,
        start,
        end,
        oversized,
    });
    *next_index += 1;
}

impl Scan {
    /// Advances over one byte; true when a bracket closed (depth decreased).
    fn step(&mut self, b: u8) -> bool {
        if self.in_str {
            if self.esc {
                self.esc = false;
            } else if b == b'\\' {
                self.esc = true;
            } else if b == b'"' {
                self.in_str = false;
            }
            return false;
        }
        match b {
            b'"' => self.in_str = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                return true;
            }
            _ => {}
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Split = (
        Vec<(u64, u64, String, Option<u64>)>,
        Vec<(u64, u64, String)>,
    );

    fn split(input: &[u8], max: usize) -> Split {
        let mut r = RecordReader::new(io::BufReader::with_capacity(7, input), max);
        let mut b = Batch::default();
        let mut out = Vec::new();
        let mut errs = Vec::new();
        while r.next_batch(&mut b).unwrap() {
            for m in &b.records {
                out.push((
                    m.index,
                    m.line,
                    String::from_utf8_lossy(b.bytes(m)).into_owned(),
                    m.oversized,
                ));
            }
            errs.extend(b.layout_errors.iter().cloned());
        }
        (out, errs)
    }

    #[test]
    fn jsonl_splits_on_newline_only() {
        let (recs, errs) = split(
            b"{\"a\":1}\r\n\n{\"b\":\"x\xe2\x80\xa8y\"}\n  \n{\"c\":",
            1 << 20,
        );
        assert!(errs.is_empty());
        let texts: Vec<_> = recs.iter().map(|r| r.2.as_str()).collect();
        assert_eq!(texts, ["{\"a\":1}", "{\"b\":\"x\u{2028}y\"}", "{\"c\":"]);
        assert_eq!(
            recs.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
            [(0, 1), (1, 3), (2, 5)]
        );
    }

    #[test]
    fn crlf_and_stray_cr_never_cross_records() {
        // fuzz regression: a line ending in \r\r\n followed by an empty line
        let (recs, _) = split(b"a\r\r\n", 1 << 20);
        assert_eq!(
            recs.iter().map(|r| r.2.as_str()).collect::<Vec<_>>(),
            ["a\r"]
        );
        let (recs, _) = split(b"a\r\r\n\r\n\rb\r\n", 1 << 20);
        assert_eq!(
            recs.iter().map(|r| r.2.as_str()).collect::<Vec<_>>(),
            ["a\r", "\rb"]
        );
    }

    #[test]
    fn oversized_lines_are_skipped_by_length() {
        let mut input = b"{\"a\":1}\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100));
        input.extend(b"\n{\"b\":2}\n");
        let (recs, _) = split(&input, 50);
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[1].3, Some(100));
        assert_eq!(recs[2].2, "{\"b\":2}");
    }

    #[test]
    fn array_elements_are_records() {
        let (recs, errs) = split(
            b"[\n {\"a\": [1, {\"x\": \"]\"}]},\n {\"b\": 2}\n]\n",
            1 << 20,
        );
        assert!(errs.is_empty(), "{errs:?}");
        let texts: Vec<_> = recs.iter().map(|r| r.2.as_str()).collect();
        assert_eq!(texts, ["{\"a\": [1, {\"x\": \"]\"}]}", "{\"b\": 2}"]);
        assert_eq!(recs[1].1, 3);
    }

    #[test]
    fn cut_off_array_and_trailing_data_are_reported() {
        let (recs, errs) = split(b"[{\"a\":1},{\"b\":", 1 << 20);
        assert_eq!(recs.len(), 2);
        assert_eq!(errs.len(), 1);
        let (_, errs) = split(b"[{\"a\":1}] junk", 1 << 20);
        assert_eq!(errs.len(), 1);
        let (recs, errs) = split(b"[]", 1 << 20);
        assert!(recs.is_empty() && errs.is_empty());
    }

    #[test]
    fn pretty_documents() {
        let (recs, errs) = split(b"{\n  \"a\": {\"b\": 1}\n}\n{\n \"c\": 2\n}\n", 1 << 20);
        assert!(errs.is_empty());
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].1, 4);
        assert!(recs[0].2.starts_with('{') && recs[0].2.ends_with('}'));
    }

    #[test]
    fn garbage_first_line_is_jsonl() {
        let (recs, _) = split(b"not json\n{\"a\":1}\n", 1 << 20);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].2, "not json");
    }
}
