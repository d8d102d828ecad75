//! A local extract source: a zip, a directory of `.txt` files, or one `.txt` file.
//! Knows which files it holds (by name prefix), their checksum and the extract timestamp,
//! and opens each file as a stream (a zip entry is inflated as it is read, never whole).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::Paris;
use sha2::{Digest, Sha256};

use super::{ExtractError, FileKind};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Container {
    Zip(PathBuf),
    Directory(PathBuf),
    Text(PathBuf),
}

/// One extract file inside a source.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub kind: FileKind,
    pub name: String,
    /// Uncompressed size, for progress.
    pub size: u64,
    zip_index: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Source {
    container: Container,
    pub files: Vec<SourceFile>,
}

impl Source {
    /// Looks at `path` and lists the extract files it holds. Fails when it holds none, or
    /// two of one kind (which of them would be the truth?).
    pub fn open(path: &Path) -> Result<Source, ExtractError> {
        let meta = std::fs::metadata(path).map_err(|e| ExtractError::source(path, e))?;
        let (container, files) = if meta.is_dir() {
            (Container::Directory(path.to_owned()), list_directory(path)?)
        } else if is_zip(path)? {
            (Container::Zip(path.to_owned()), list_zip(path)?)
        } else {
            let name = file_name(path);
            let kind =
                FileKind::from_file_name(&name).ok_or_else(|| ExtractError::source(path, unknown_name_hint()))?;
            let file = SourceFile {
                kind,
                name,
                size: meta.len(),
                zip_index: None,
            };
            (Container::Text(path.to_owned()), vec![file])
        };
        for kind in FileKind::ALL {
            if files.iter().filter(|f| f.kind == kind).count() > 1 {
                return Err(ExtractError::source(
                    path,
                    format!("holds more than one {} file", kind.label()),
                ));
            }
        }
        if files.is_empty() {
            return Err(ExtractError::source(path, unknown_name_hint()));
        }
        let mut files = files;
        files.sort_by_key(|f| f.kind);
        Ok(Source { container, files })
    }

    pub fn file(&self, kind: FileKind) -> Option<&SourceFile> {
        self.files.iter().find(|f| f.kind == kind)
    }

    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Streams one file through `body`. A zip entry is inflated as `body` reads it.
    pub fn with_reader<T>(
        &self,
        file: &SourceFile,
        body: impl FnOnce(&mut (dyn Read + Send)) -> Result<T, ExtractError>,
    ) -> Result<T, ExtractError> {
        match (&self.container, file.zip_index) {
            (Container::Zip(path), Some(index)) => {
                let mut archive = open_zip(path)?;
                let mut entry = archive.by_index(index).map_err(|e| ExtractError::source(path, e))?;
                body(&mut entry)
            }
            (Container::Directory(dir), _) => {
                let path = dir.join(&file.name);
                let mut reader = open_file(&path)?;
                body(&mut reader)
            }
            (Container::Text(path), _) | (Container::Zip(path), None) => {
                let mut reader = open_file(path)?;
                body(&mut reader)
            }
        }
    }

    /// SHA-256 of what was published: the zip as downloaded, or for plain files the hash of
    /// each recognised file's name and hash (so that stray files in a directory don't count).
    pub fn checksum(&self) -> Result<String, ExtractError> {
        match &self.container {
            Container::Zip(path) | Container::Text(path) => sha256_file(path),
            Container::Directory(dir) => {
                let mut outer = Sha256::new();
                for file in &self.files {
                    outer.update(file.name.as_bytes());
                    outer.update(sha256_file(&dir.join(&file.name))?.as_bytes());
                }
                Ok(hex::encode(outer.finalize()))
            }
        }
    }

    /// The `<ts>` in the names (`YYYYMMDDHHMM`, Paris time): the zip's first, else the first
    /// file's that has one.
    pub fn extract_timestamp(&self) -> Option<DateTime<Utc>> {
        let own = match &self.container {
            Container::Zip(path) => timestamp_in_name(&file_name(path)),
            _ => None,
        };
        own.or_else(|| self.files.iter().find_map(|f| timestamp_in_name(&f.name)))
    }

    pub fn location(&self) -> String {
        match &self.container {
            Container::Zip(p) | Container::Directory(p) | Container::Text(p) => p.display().to_string(),
        }
    }
}

fn unknown_name_hint() -> String {
    let names: Vec<&str> = FileKind::ALL.iter().map(|k| k.name_prefixes()[0]).collect();
    format!(
        "no extract file found; expected names starting with {}",
        names.join(", ")
    )
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn open_file(path: &Path) -> Result<BufReader<File>, ExtractError> {
    let file = File::open(path).map_err(|e| ExtractError::source(path, e))?;
    Ok(BufReader::with_capacity(1 << 20, file))
}

fn is_zip(path: &Path) -> Result<bool, ExtractError> {
    let mut magic = [0u8; 4];
    let mut file = File::open(path).map_err(|e| ExtractError::source(path, e))?;
    let n = file.read(&mut magic).map_err(|e| ExtractError::source(path, e))?;
    Ok(n == 4 && &magic == b"PK\x03\x04")
}

fn open_zip(path: &Path) -> Result<zip::ZipArchive<BufReader<File>>, ExtractError> {
    let file = open_file(path)?;
    zip::ZipArchive::new(file).map_err(|e| ExtractError::source(path, format!("not a readable zip: {e}")))
}

fn list_zip(path: &Path) -> Result<Vec<SourceFile>, ExtractError> {
    let mut archive = open_zip(path)?;
    let mut files = Vec::new();
    for index in 0..archive.len() {
        let entry = archive.by_index(index).map_err(|e| ExtractError::source(path, e))?;
        if !entry.is_file() {
            continue;
        }
        // Entries are opened by index, so the name is only shown and recorded: a NUL in it
        // (which the database refuses in text) is replaced.
        let name = entry
            .name()
            .map_err(|e| ExtractError::source(path, e))?
            .replace('\0', "\u{FFFD}");
        if let Some(kind) = FileKind::from_file_name(&name) {
            files.push(SourceFile {
                kind,
                name,
                size: entry.size(),
                zip_index: Some(index),
            });
        }
    }
    Ok(files)
}

fn list_directory(dir: &Path) -> Result<Vec<SourceFile>, ExtractError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| ExtractError::source(dir, e))? {
        let entry = entry.map_err(|e| ExtractError::source(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = entry.metadata().map_err(|e| ExtractError::source(dir, e))?;
        if !meta.is_file() || !name.to_ascii_lowercase().ends_with(".txt") {
            continue;
        }
        if let Some(kind) = FileKind::from_file_name(&name) {
            files.push(SourceFile {
                kind,
                name,
                size: meta.len(),
                zip_index: None,
            });
        }
    }
    Ok(files)
}

fn sha256_file(path: &Path) -> Result<String, ExtractError> {
    let mut reader = open_file(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buffer).map_err(|e| ExtractError::source(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Finds `_YYYYMMDDHHMM` right before the extension and reads it as Paris local time.
pub fn timestamp_in_name(name: &str) -> Option<DateTime<Utc>> {
    let stem = name.rsplit('/').next()?.split('.').next()?;
    let digits = stem.rsplit('_').next()?;
    if digits.len() != 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let naive = NaiveDateTime::parse_from_str(digits, "%Y%m%d%H%M").ok()?;
    // During the autumn change an hour repeats: take the earlier instant.
    Paris
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_is_paris_local_time() {
        let winter = timestamp_in_name("PS_LibreAcces_202611250900.zip").unwrap();
        assert_eq!(winter.to_rfc3339(), "2026-11-25T08:00:00+00:00");
        let summer = timestamp_in_name("x/PS_LibreAcces_Personne_activite_202607010930.txt").unwrap();
        assert_eq!(summer.to_rfc3339(), "2026-07-01T07:30:00+00:00");
        assert_eq!(timestamp_in_name("ps-libreacces-personne-activite.txt"), None);
    }

    #[test]
    fn directory_without_extract_files_is_refused_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
        let err = Source::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("expected names starting with PS_LibreAcces_Personne_activite"),
            "{err}"
        );
    }
}
