//! Unit tests of the extract reader: header mapping, rejects with their line numbers, quirks.

use super::*;
use crate::extract::columns::{PERSONNE_ACTIVITE, pa};

#[derive(Debug, Default)]
struct Collect {
    rows: Vec<(u64, Vec<String>)>,
    rejects: Vec<Reject>,
}

impl RowSink for Collect {
    fn row(&mut self, line: u64, fields: &[&str]) -> Result<(), ExtractError> {
        self.rows.push((line, fields.iter().map(|f| f.to_string()).collect()));
        Ok(())
    }
    fn reject(&mut self, reject: Reject) -> Result<(), ExtractError> {
        self.rejects.push(reject);
        Ok(())
    }
}

fn header(n: usize) -> String {
    let mut h = PERSONNE_ACTIVITE[..n].join("|");
    h.push('|');
    h
}

fn line(n: usize, id: &str, name: &str) -> String {
    let mut values = vec![String::new(); n];
    values[pa::TYPE_ID] = id[..1].to_owned();
    values[pa::ID_PP] = id[1..].to_owned();
    values[pa::NATIONAL_ID] = id.to_owned();
    values[pa::NOM_EXERCICE] = name.to_owned();
    values[pa::CODE_PROFESSION] = "10".to_owned();
    let mut l = values.join("|");
    l.push('|');
    l
}

fn read(text: &[u8]) -> Result<(Collect, FileStats), ExtractError> {
    let mut sink = Collect::default();
    let stats = read_file(
        FileKind::PersonneActivite,
        "pa.txt",
        text,
        DEFAULT_MAX_LINE_BYTES,
        &mut sink,
    )?;
    Ok((sink, stats))
}

#[test]
fn reads_by_header_name_with_quotes_bom_crlf_and_trailing_separator() {
    let mut h: Vec<&str> = PERSONNE_ACTIVITE.to_vec();
    h.swap(pa::NOM_EXERCICE, pa::PRENOM_EXERCICE);
    h.push("Colonne future");
    let mut text = format!("\u{feff}{}|\r\n", h.join("|"));
    let mut values = vec![""; h.len()];
    values[0] = "8";
    values[1] = "10001234565";
    values[2] = "810001234565";
    values[pa::NOM_EXERCICE] = "JEANNE"; // file column 7 is the first name here
    values[pa::PRENOM_EXERCICE] = " DUPONT ";
    values[pa::RAISON_SOCIALE] = "RESIDENCE \"LES TILLEULS\"";
    text.push_str(&format!("{}|\r\n", values.join("|")));
    let (sink, stats) = read(text.as_bytes()).unwrap();
    assert_eq!(stats.rows, 1);
    assert_eq!(stats.unknown_columns, vec!["Colonne future".to_owned()]);
    let (line_no, row) = &sink.rows[0];
    assert_eq!(*line_no, 2);
    assert_eq!(row[pa::NOM_EXERCICE], "DUPONT");
    assert_eq!(row[pa::PRENOM_EXERCICE], "JEANNE");
    assert_eq!(row[pa::RAISON_SOCIALE], "RESIDENCE \"LES TILLEULS\"");
    assert_eq!(row[pa::CODE_GENRE], "");
}

#[test]
fn legacy_48_column_file_reads_missing_columns_as_empty() {
    let text = format!("{}\n{}\n", header(48), line(48, "810001234565", "A"));
    let (sink, stats) = read(text.as_bytes()).unwrap();
    assert_eq!(stats.columns, 48);
    assert_eq!(sink.rows[0].1.len(), 56);
    assert_eq!(sink.rows[0].1[pa::CODE_SECTEUR], "");
}

#[test]
fn missing_required_column_is_named() {
    let mut cols: Vec<&str> = PERSONNE_ACTIVITE.to_vec();
    cols.remove(pa::CODE_PROFESSION);
    let text = format!("{}|\n", cols.join("|"));
    let err = read(text.as_bytes()).unwrap_err();
    assert!(
        matches!(&err, ExtractError::MissingColumn { name, .. } if name == "Code profession"),
        "{err}"
    );
}

#[test]
fn wrong_field_count_and_bad_id_are_rejected_with_line_numbers() {
    let good = line(56, "810001234565", "A");
    let short = good.replacen('|', "", 1);
    let long = format!("{good}x|");
    let bad_id = line(56, "8100012345", "B");
    let text = format!("{}\n{good}\n{short}\n{long}\n{bad_id}\n{good}\n", header(56));
    let (sink, stats) = read(text.as_bytes()).unwrap();
    assert_eq!((stats.rows, stats.rejected, stats.lines), (2, 3, 5));
    let lines: Vec<u64> = sink.rejects.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![3, 4, 5]);
    assert!(
        sink.rejects[0].reason.contains("expected 56 fields"),
        "{:?}",
        sink.rejects[0]
    );
    assert!(sink.rejects[2].reason.contains("malformed"), "{:?}", sink.rejects[2]);
}

#[test]
fn long_lines_and_nul_lines_are_rejected_with_their_line_numbers() {
    let good = line(56, "810001234565", "A");
    let long = line(56, "810001234573", &"X".repeat(5000));
    let nul_short = good.replacen('|', "\0", 1);
    let text = format!("{}\n{good}\n{long}\n{nul_short}\n{good}", header(56));
    let mut sink = Collect::default();
    let stats = read_file(FileKind::PersonneActivite, "pa.txt", text.as_bytes(), 4096, &mut sink).unwrap();
    assert_eq!((stats.rows, stats.rejected, stats.lines), (2, 2, 4));
    assert_eq!(sink.rows.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 5]);
    assert_eq!(sink.rejects[0].line, 3);
    assert_eq!(sink.rejects[0].reason, "line longer than 4096 bytes");
    assert_eq!(sink.rejects[1].line, 4);
    assert_eq!(sink.rejects[1].reason, "contains a NUL byte");
    assert!(!sink.rejects[1].content.contains('\0'), "{:?}", sink.rejects[1]);
}

#[test]
fn a_header_longer_than_the_cap_or_with_a_nul_is_fatal() {
    let text = format!("{}\n", header(56));
    let mut sink = Collect::default();
    let err = read_file(FileKind::PersonneActivite, "pa.txt", text.as_bytes(), 100, &mut sink).unwrap_err();
    assert!(matches!(err, ExtractError::HeaderTooLong { max: 100, .. }), "{err}");
    let text = format!("{}Autre\0|\n", header(56));
    let err = read_file(FileKind::PersonneActivite, "pa.txt", text.as_bytes(), 4096, &mut sink).unwrap_err();
    assert!(matches!(err, ExtractError::NulInHeader { .. }), "{err}");
}

#[test]
fn a_character_cut_by_a_separator_is_invalid_utf8_in_the_first_column_it_touches() {
    // The line's bytes without separators read as valid UTF-8 (`\xC3\xA9` is é), but
    // neither field does by itself.
    let good = line(56, "810001234573", "LEF\u{1}");
    let at = good.find("\u{1}|").expect("marker");
    let mut bad = good.as_bytes()[..at].to_vec();
    bad.extend([0xC3, b'|', 0xA9]);
    bad.extend(&good.as_bytes()[at + 2..]);
    let mut text = format!("{}\n", header(56)).into_bytes();
    text.extend(bad);
    text.push(b'\n');
    match read(&text).unwrap_err() {
        ExtractError::InvalidUtf8 { line, column, .. } => assert_eq!((line, column.as_str()), (2, "Nom d'exercice")),
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn invalid_utf8_is_fatal_and_names_line_and_column() {
    let mut text = format!("{}\n{}\n", header(56), line(56, "810001234565", "A")).into_bytes();
    let bad = line(56, "810001234573", "LEF\u{1}VRE").replace('\u{1}', "\u{0}");
    let bad = bad.into_bytes().into_iter().map(|b| if b == 0 { 0xE9 } else { b });
    text.extend(bad);
    text.push(b'\n');
    let err = read(&text).unwrap_err();
    match err {
        ExtractError::InvalidUtf8 { line, column, .. } => {
            assert_eq!(line, 3);
            assert_eq!(column, "Nom d'exercice");
        }
        other => panic!("unexpected {other}"),
    }
}
