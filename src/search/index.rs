//! The tantivy index of the published generation: one typed schema, built in full from
//! Postgres into a fresh directory (then swapped in), or updated from a generation's
//! changes in one commit (delete + add). Blocking: callers run it off the async workers.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tantivy::indexer::NoMergePolicy;
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, Term};

use super::document::{self, SearchValues};
use super::labels::{Collected, Labels};
use super::query::HARD_WINDOW;
use super::schema::{ANALYZER, Fields, SCHEMA_VERSION, analyzer, schema};
use super::storage::{IndexStorage, tantivy_io};
use crate::store::RunId;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("search index directory {0}: {1}")]
    Directory(String, String),
    #[error("search index file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("a search may not reach past result {HARD_WINDOW}")]
    Window,
}

impl IndexError {
    /// The I/O error under this one, where there is one (a full disk, say).
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            IndexError::Tantivy(error) => tantivy_io(error),
            IndexError::Io { source, .. } => Some(source),
            IndexError::Directory(..) | IndexError::Window => None,
        }
    }
}

/// The index writer's memory budget (tantivy shares it among its indexing threads): the
/// server's memory beside the snapshot while a full build runs; a smaller budget only means
/// more, smaller segments to merge.
const WRITER_HEAP_BYTES: usize = 50_000_000;
/// A full build ends merged into this many segments, merged at the same time on as many
/// threads: one per core of this kind of machine. One segment would be the cheapest to
/// search, but its single merge thread was a third of the build's time with a core idle.
const BUILT_SEGMENTS: usize = 2;

/// An open index, its reader, and (once something is written) its writer.
pub struct SearchIndex {
    index: Index,
    pub(super) reader: IndexReader,
    writer: std::sync::Mutex<Option<tantivy::IndexWriter>>,
    /// Created empty for a full build: its writer merges nothing until `finish_build`.
    building: bool,
    pub fields: Fields,
    pub path: PathBuf,
    /// The labels of the generation the index holds, swapped whole by `set_labels`.
    labels: RwLock<Arc<Labels>>,
}

/// What a commit records: the schema version and the generation indexed.
fn payload(generation: RunId) -> String {
    format!("{SCHEMA_VERSION}:{}", generation.0)
}

impl SearchIndex {
    /// Creates an empty index in `path` (a new directory).
    pub fn create(path: &Path) -> Result<SearchIndex, IndexError> {
        SearchIndex::create_with(path, &IndexStorage::default())
    }

    /// Creates an empty index in `path` (a new, or empty, directory) on `storage`.
    pub fn create_with(path: &Path, storage: &IndexStorage) -> Result<SearchIndex, IndexError> {
        std::fs::create_dir_all(path).map_err(|source| IndexError::Io {
            path: path.to_owned(),
            source,
        })?;
        let (schema, _) = schema();
        let index = Index::create(storage.open(path)?, schema, tantivy::IndexSettings::default())?;
        let mut search = SearchIndex::wrap(index, path)?;
        search.building = true;
        Ok(search)
    }

    /// Opens the index in `path` if it exists, has the current schema and its labels.
    pub fn open(path: &Path) -> Option<SearchIndex> {
        SearchIndex::open_with(path, &IndexStorage::default())
    }

    /// Opens the index in `path` on `storage`, if it exists, has the current schema and its
    /// labels. A symlink (`current`) is resolved once: the index stays the directory it
    /// opened (its labels are written there), wherever the link points later.
    pub fn open_with(path: &Path, storage: &IndexStorage) -> Option<SearchIndex> {
        let path = std::fs::canonicalize(path).ok()?;
        let path = path.as_path();
        let index = Index::open(storage.open(path).ok()?).ok()?;
        let search = SearchIndex::wrap(index, path).ok()?;
        *search.labels.write().ok()? = Arc::new(Labels::load(path)?);
        search
            .generation_with_version()
            .filter(|(v, _)| *v == SCHEMA_VERSION)
            .map(|_| search)
    }

    fn wrap(index: Index, path: &Path) -> Result<SearchIndex, IndexError> {
        index.tokenizers().register(ANALYZER, analyzer());
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let (_, fields) = schema();
        // The builders of the typo automata are made once per process, by the first search
        // with a typo of each distance (10 ms and more): made here, before any search waits.
        for distance in [1, 2] {
            let typo = tantivy::query::FuzzyTermQuery::new(Term::from_field_text(fields.names, "warm"), distance, true);
            typo.automaton()?;
        }
        Ok(SearchIndex {
            index,
            reader,
            writer: std::sync::Mutex::new(None),
            building: false,
            fields,
            path: path.to_owned(),
            labels: RwLock::default(),
        })
    }

    fn generation_with_version(&self) -> Option<(u32, i64)> {
        let metas = self.index.load_metas().ok()?;
        let (version, generation) = metas
            .payload?
            .split_once(':')
            .map(|(v, g)| (v.parse().ok(), g.parse().ok()))?;
        Some((version?, generation?))
    }

    /// The generation this index holds.
    pub fn generation(&self) -> Option<RunId> {
        self.generation_with_version().map(|(_, g)| RunId(g))
    }

    /// The writer's slot. A panic while it was held leaves a writer in an unknown state:
    /// it is dropped, and the next write opens another.
    fn writer_slot(&self) -> std::sync::MutexGuard<'_, Option<tantivy::IndexWriter>> {
        self.writer.lock().unwrap_or_else(|poisoned| {
            self.writer.clear_poison();
            let mut guard = poisoned.into_inner();
            *guard = None;
            guard
        })
    }

    /// Runs `work` with the index's writer, opened on first use (a reader-only process,
    /// like the command line beside a server, never takes the writer's lock). A writer that
    /// failed is dropped with what it held uncommitted: after a write error (a full disk)
    /// tantivy's writer may have lost an indexing thread and some of its documents, and
    /// would stay dead or commit a part; the next attempt opens a new one and starts over.
    fn with_writer<T>(
        &self,
        work: impl FnOnce(&mut tantivy::IndexWriter) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        let mut guard = self.writer_slot();
        let writer = match guard.as_mut() {
            Some(writer) => writer,
            // A full build merges once, at the end (`finish_build`): merging as it goes would
            // rewrite each document a second and third time, on the cores the indexing needs.
            None => guard.insert(self.open_writer(!self.building)?),
        };
        let done = work(writer);
        if done.is_err() {
            *guard = None;
        }
        done
    }

    /// Drops the writer and whatever it holds uncommitted (a fill that failed part-way):
    /// the next fill starts from the last commit.
    pub fn discard_writer(&self) {
        *self.writer_slot() = None;
    }

    /// A writer of this index; unless `merging`, one that merges only when told to.
    fn open_writer(&self, merging: bool) -> Result<tantivy::IndexWriter, IndexError> {
        let writer = self.index.writer(WRITER_HEAP_BYTES)?;
        if !merging {
            writer.set_merge_policy(Box::new(NoMergePolicy));
        }
        Ok(writer)
    }

    /// Adds these professionals' documents; with `replace`, first deletes what the index
    /// holds for them. Visible at the next commit. A full build into a fresh index does not
    /// replace: each delete costs a query weight at commit (about 600 bytes), which at
    /// national scale is a gigabyte for nothing.
    pub fn add(&self, documents: Vec<Prepared>, replace: bool) -> Result<(), IndexError> {
        self.with_writer(|writer| {
            for prepared in documents {
                if replace {
                    writer.delete_term(prepared.id);
                }
                writer.add_document(prepared.document)?;
            }
            Ok(())
        })
    }

    /// The labels of the generation the index holds.
    pub fn labels(&self) -> Arc<Labels> {
        // A poisoned lock still holds whole labels: they are swapped, never edited.
        Arc::clone(&self.labels.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Lays the labels a build (`fresh`) or an update collected over the index's, saved
    /// before the commit that brings their generation: an index never shows labels older
    /// than its documents.
    pub fn set_labels(&self, collected: Collected, fresh: bool) -> Result<(), IndexError> {
        let labels = Arc::new(self.labels().updated(collected, fresh));
        labels.save(&self.path)?;
        *self.labels.write().unwrap_or_else(|e| e.into_inner()) = labels;
        Ok(())
    }

    /// Makes what was added visible, recording the generation it brings the index to.
    pub fn commit(&self, generation: RunId) -> Result<(), IndexError> {
        self.with_writer(|writer| {
            let mut commit = writer.prepare_commit()?;
            commit.set_payload(&payload(generation));
            commit.commit()?;
            Ok(())
        })?;
        self.reader.reload()?;
        Ok(())
    }

    /// Ends a full build: waits for the writer, then merges the segments it wrote into
    /// `BUILT_SEGMENTS` of about as many documents each, concurrently, so that searches visit
    /// that many segments whatever the writer left. The merges keep the commit's payload
    /// (schema and generation).
    pub fn finish_build(&self) -> Result<(), IndexError> {
        let mut guard = self.writer_slot();
        if let Some(writer) = guard.take() {
            writer.wait_merging_threads()?;
        }
        let segments = self.index.searchable_segment_metas()?;
        if segments.len() > BUILT_SEGMENTS {
            let started = std::time::Instant::now();
            let mut writer = self.open_writer(false)?;
            let merges: Vec<_> = groups(&segments, BUILT_SEGMENTS)
                .iter()
                .filter(|group| group.len() > 1)
                .map(|group| writer.merge(group))
                .collect();
            for merge in merges {
                // `wait` gives the merged segment's meta (none if every document was deleted).
                merge.wait()?;
            }
            writer.wait_merging_threads()?;
            tracing::info!(
                segments = segments.len(),
                into = BUILT_SEGMENTS,
                seconds = started.elapsed().as_secs_f64(),
                "search index segments merged"
            );
        }
        drop(guard);
        self.reader.reload()?;
        Ok(())
    }

    /// One professional's document, built on the caller's thread (the writer's threads
    /// only index it).
    pub fn prepare(&self, v: &SearchValues) -> Prepared {
        let f = &self.fields;
        let mut built = TantivyDocument::new();
        built.add_text(f.national_id, &v.national_id);
        built.add_text(f.display_name, &v.display_name);
        built.add_text(f.removed, if v.removed { "true" } else { "false" });
        for (field, values) in [
            (f.identifiers, &v.identifiers),
            (f.profession, &v.professions),
            (f.categorie, &v.categories),
            (f.savoir_faire, &v.savoir_faire),
            (f.departement, &v.departements),
            (f.commune, &v.communes),
            (f.code_postal, &v.postcodes),
            (f.mode, &v.modes),
            (f.secteur, &v.secteurs),
        ] {
            for value in values {
                built.add_text(field, value);
            }
        }
        for name in &v.names {
            built.add_text(f.names, name);
        }
        document::name_prefixes(&v.names, |prefix| built.add_text(f.name_prefixes, prefix));
        built.add_u64(f.name_key, document::name_key(&v.sort_name));
        for text in &v.text {
            built.add_text(f.text, text);
        }
        Prepared {
            id: Term::from_field_text(f.national_id, &v.national_id),
            document: built,
        }
    }
}

/// A professional's document, ready for the writer, and the term a replacement deletes by.
pub struct Prepared {
    id: Term,
    document: TantivyDocument,
}

/// The segments cut, in order, into at most `count` groups of about as many documents each.
fn groups(segments: &[tantivy::SegmentMeta], count: usize) -> Vec<Vec<tantivy::index::SegmentId>> {
    let total: u64 = segments.iter().map(|s| u64::from(s.num_docs())).sum();
    let share = total.div_ceil(count.max(1) as u64).max(1);
    let mut groups: Vec<Vec<tantivy::index::SegmentId>> = vec![Vec::new()];
    let mut filled = 0;
    for segment in segments {
        if filled >= share && groups.len() < count {
            groups.push(Vec::new());
            filled = 0;
        }
        filled += u64::from(segment.num_docs());
        groups.last_mut().expect("one group at least").push(segment.id());
    }
    groups
}
