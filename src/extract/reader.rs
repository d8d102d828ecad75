//! Streaming reader of one extract file: bytes in, canonical rows out.
//! The files are `|`-separated with no quoting (a `"` is data), a trailing `|` on every
//! line, columns known only by their header label. This module is pure: it reads from any
//! `Read` and hands each row (or each rejected line) to a sink, holding one line at a time.

use std::io::Read;

use csv_async::{AsyncReaderBuilder, ByteRecord, Terminator};
use futures::executor::block_on;
use futures::io::AllowStdIo;

use super::ExtractError;
use super::bounded::BoundedLines;
use super::columns::{FileKind, header_key};
use crate::national_id::is_national_id;

/// Where each canonical column sits in this file's lines.
#[derive(Debug, Clone)]
pub struct HeaderMap {
    pub kind: FileKind,
    /// Canonical index → field index in the file, `None` for a column the file lacks.
    positions: Vec<Option<usize>>,
    /// Number of labelled columns in the file (the trailing `|` excluded).
    pub file_columns: usize,
    /// Labels this program does not know: kept out of the way, reported, never an error.
    pub unknown_columns: Vec<String>,
    /// The header ends with `|`: then every line must, or a line one field short could not
    /// be told from a complete line without its final `|`.
    trailing_separator: bool,
}

impl HeaderMap {
    /// Maps a header line's labels onto the canonical columns of `kind`.
    pub fn new(kind: FileKind, file: &str, labels: &[String]) -> Result<HeaderMap, ExtractError> {
        let mut labels: Vec<&str> = labels.iter().map(|l| l.as_str()).collect();
        // The trailing `|` of the header yields one empty label: not a column.
        let trailing_separator = labels.len() > 1 && labels.last().is_some_and(|l| l.trim().is_empty());
        if trailing_separator {
            labels.pop();
        }
        let canonical = kind.columns();
        let keys: Vec<String> = canonical.iter().map(|c| header_key(c)).collect();
        let mut positions = vec![None; canonical.len()];
        let mut unknown_columns = Vec::new();
        for (field_index, label) in labels.iter().enumerate() {
            let key = header_key(label);
            match keys.iter().position(|k| *k == key) {
                Some(canonical_index) if positions[canonical_index].is_none() => {
                    positions[canonical_index] = Some(field_index)
                }
                Some(_) => {
                    return Err(ExtractError::DuplicateColumn {
                        file: file.to_owned(),
                        name: (*label).to_owned(),
                    });
                }
                None => unknown_columns.push((*label).to_owned()),
            }
        }
        for required in kind.required() {
            let index = canonical.iter().position(|c| c == required);
            if index.is_some_and(|i| positions[i].is_none()) {
                return Err(ExtractError::MissingColumn {
                    file: file.to_owned(),
                    name: (*required).to_owned(),
                });
            }
        }
        Ok(HeaderMap {
            kind,
            positions,
            file_columns: labels.len(),
            unknown_columns,
            trailing_separator,
        })
    }

    /// How many canonical columns the file actually carries (48, 52 or 56 for
    /// Personne_activite).
    pub fn known_columns(&self) -> usize {
        self.positions.iter().filter(|p| p.is_some()).count()
    }
}

/// A line the reader refused, with what a person needs to find and fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub line: u64,
    pub reason: String,
    /// The start of the line as read, for the operator's eyes.
    pub content: String,
    /// The line's national id, when it holds a well-formed one: that professional is kept
    /// as published (or not added), never built from their other lines alone.
    pub national_id: Option<String>,
}

/// Receives the rows of one file in file order.
pub trait RowSink {
    /// `fields` are in canonical order, trimmed; a column absent from the file is `""`.
    fn row(&mut self, line: u64, fields: &[&str]) -> Result<(), ExtractError>;
    fn reject(&mut self, reject: Reject) -> Result<(), ExtractError>;
}

/// Counts for one file read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileStats {
    pub lines: u64,
    pub rows: u64,
    pub rejected: u64,
    pub columns: usize,
    pub unknown_columns: Vec<String>,
}

const REJECT_CONTENT_CHARS: usize = 300;

/// Longest line read by default: real lines are about 400 bytes, the longest a few kB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

type Parser<R> = csv_async::AsyncReader<AllowStdIo<BoundedLines<R>>>;

fn csv_reader<R: Read + Send + Unpin>(input: R, max_line_bytes: usize) -> Parser<R> {
    AsyncReaderBuilder::new()
        .delimiter(b'|')
        // The files have no quoting: `"` is ordinary data (`BATIMENT "B"`).
        .quoting(false)
        .has_headers(false)
        // Field counts are checked here, line by line, so that a bad line is a reject.
        .flexible(true)
        // LF only: a stray `\r` is trimmed off the last field instead of ending a line.
        .terminator(Terminator::Any(b'\n'))
        .buffer_capacity(1 << 20)
        .create_reader(AllowStdIo::new(BoundedLines::new(input, max_line_bytes)))
}

/// The true line number of the record just read, and whether the cap cut it.
fn claim<R: Read + Send + Unpin>(reader: &mut Parser<R>, record: &ByteRecord) -> (u64, bool) {
    let reported = record.position().map_or(1, |p| p.line());
    reader.get_mut().get_mut().claim(reported)
}

/// Reads only the header line of a file and maps it, so that a missing column is found
/// before anything is staged.
pub fn read_header<R: Read + Send + Unpin>(
    kind: FileKind,
    file: &str,
    input: R,
    max_line_bytes: usize,
) -> Result<HeaderMap, ExtractError> {
    let mut reader = csv_reader(input, max_line_bytes);
    let mut record = ByteRecord::new();
    block_on(read_header_record(kind, file, &mut reader, &mut record))
}

async fn read_header_record<R: Read + Send + Unpin>(
    kind: FileKind,
    file: &str,
    reader: &mut Parser<R>,
    record: &mut ByteRecord,
) -> Result<HeaderMap, ExtractError> {
    let found = reader
        .read_byte_record(record)
        .await
        .map_err(|e| ExtractError::read(file, e))?;
    if !found {
        return Err(ExtractError::EmptyFile { file: file.to_owned() });
    }
    let (line, cut) = claim(reader, record);
    if cut {
        return Err(ExtractError::HeaderTooLong {
            file: file.to_owned(),
            max: reader.get_ref().get_ref().cap(),
        });
    }
    // Before anything else: a NUL would reach the database in the unknown column labels.
    if record.as_slice().contains(&0) {
        return Err(ExtractError::NulInHeader { file: file.to_owned() });
    }
    let mut labels = Vec::with_capacity(record.len());
    for (i, raw) in record.iter().enumerate() {
        let raw = if i == 0 { strip_bom(raw) } else { raw };
        let label = std::str::from_utf8(raw).map_err(|_| ExtractError::InvalidUtf8 {
            file: file.to_owned(),
            line,
            column: format!("header field {}", i + 1),
        })?;
        labels.push(label.trim_end_matches('\r').to_owned());
    }
    HeaderMap::new(kind, file, &labels)
}

fn strip_bom(raw: &[u8]) -> &[u8] {
    raw.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(raw)
}

/// Streams a whole file into `sink`. Fatal problems (missing column, invalid UTF-8,
/// unreadable input) stop the read; a line longer than `max_line_bytes`, with the wrong
/// number of fields, a NUL byte or a malformed identifier is rejected and the read goes on.
/// Memory holds one line of at most `max_line_bytes`, whatever the input.
pub fn read_file<R: Read + Send + Unpin>(
    kind: FileKind,
    file: &str,
    input: R,
    max_line_bytes: usize,
    sink: &mut dyn RowSink,
) -> Result<FileStats, ExtractError> {
    block_on(async {
        let mut reader = csv_reader(input, max_line_bytes);
        let mut record = ByteRecord::new();
        let header = read_header_record(kind, file, &mut reader, &mut record).await?;
        let max = reader.get_ref().get_ref().cap();
        let mut stats = FileStats {
            columns: header.known_columns(),
            unknown_columns: header.unknown_columns.clone(),
            ..FileStats::default()
        };
        loop {
            let more = reader
                .read_byte_record(&mut record)
                .await
                .map_err(|e| ExtractError::read(file, e))?;
            if !more {
                break;
            }
            let (line, cut) = claim(&mut reader, &record);
            stats.lines += 1;
            let mut fields: Vec<&str> = Vec::with_capacity(kind.columns().len());
            let verdict = if cut {
                Some(format!("line longer than {max} bytes"))
            } else {
                map_line(&header, file, line, &record, &mut fields)?
            };
            match verdict {
                None => {
                    stats.rows += 1;
                    sink.row(line, &fields)?;
                }
                Some(reason) => {
                    stats.rejected += 1;
                    sink.reject(Reject {
                        line,
                        reason,
                        content: line_preview(&record),
                        national_id: rejected_id(&header, &record),
                    })?;
                }
            }
        }
        Ok(stats)
    })
}

/// Fills `fields` with the canonical values of one line, or says why the line is rejected.
fn map_line<'r>(
    header: &HeaderMap,
    file: &str,
    line: u64,
    record: &'r ByteRecord,
    fields: &mut Vec<&'r str>,
) -> Result<Option<String>, ExtractError> {
    // First: the database refuses NUL in text, and the line is no use with one anyway.
    if record.as_slice().contains(&0) {
        return Ok(Some("contains a NUL byte".to_owned()));
    }
    // A line ending with `|` yields one last empty field, which is not a value. When the
    // header has a trailing `|`, every line must have one; when it has none (the MSSanté
    // file's habit is unconfirmed), lines are accepted with or without it.
    let raw = record.len();
    let columns = header.file_columns;
    let ends_with_separator = raw > 1 && trim_field(record.get(raw - 1).unwrap_or(b"")).is_empty();
    let well_formed = if header.trailing_separator {
        ends_with_separator && raw == columns + 1
    } else {
        raw == columns || (ends_with_separator && raw == columns + 1)
    };
    if !well_formed {
        if header.trailing_separator && !ends_with_separator && raw == columns {
            return Ok(Some(format!(
                "expected {columns} fields and a final '|', found no final '|'"
            )));
        }
        let found = if ends_with_separator { raw - 1 } else { raw };
        return Ok(Some(format!("expected {columns} fields, found {found}")));
    }
    // One UTF-8 check of the whole line (its fields end to end) instead of one per field:
    // a tenth of the reader's time at national scale. A field is then a slice of it, which
    // `str::get` refuses when it would cut a character (a field that is not UTF-8 by itself
    // though the line's bytes are, as in `\xC3|\xA9`). A line that fails is checked field
    // by field, to name the column.
    let whole = std::str::from_utf8(record.as_slice()).ok();
    for (canonical_index, position) in header.positions.iter().enumerate() {
        let value = match position {
            Some(i) => {
                let range = record.range(*i).unwrap_or(0..0);
                let field = match whole {
                    Some(whole) => whole.get(range),
                    None => std::str::from_utf8(&record.as_slice()[range]).ok(),
                };
                field.ok_or_else(|| ExtractError::InvalidUtf8 {
                    file: file.to_owned(),
                    line,
                    column: header.kind.columns()[canonical_index].to_owned(),
                })?
            }
            None => "",
        };
        // `trim` also takes the `\r` of a CRLF line's last field.
        fields.push(value.trim());
    }
    let id_column = header.kind.national_id_column();
    let national_id = fields[id_column];
    let id_required = header.kind != FileKind::MsSante;
    if (id_required || !national_id.is_empty()) && !is_national_id(national_id) {
        return Ok(Some(format!(
            "malformed {} {:?}",
            header.kind.columns()[id_column],
            national_id
        )));
    }
    Ok(None)
}

/// The national id of a rejected line, if its field holds a well-formed one.
fn rejected_id(header: &HeaderMap, record: &ByteRecord) -> Option<String> {
    let position = header.positions[header.kind.national_id_column()]?;
    let raw = std::str::from_utf8(trim_field(record.get(position)?)).ok()?.trim();
    is_national_id(raw).then(|| raw.to_owned())
}

fn trim_field(raw: &[u8]) -> &[u8] {
    raw.strip_suffix(b"\r").unwrap_or(raw)
}

/// The start of a rejected line, as text the database takes: invalid UTF-8 and NUL (which
/// Postgres refuses in text) both become U+FFFD.
fn line_preview(record: &ByteRecord) -> String {
    let joined: Vec<u8> = record.iter().collect::<Vec<_>>().join(&b'|');
    String::from_utf8_lossy(&joined)
        .chars()
        .take(REJECT_CONTENT_CHARS)
        .map(|c| if c == '\0' { char::REPLACEMENT_CHARACTER } else { c })
        .collect()
}

#[cfg(test)]
mod tests;
