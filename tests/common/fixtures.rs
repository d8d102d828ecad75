//! Test fixtures: zips made from sample directories, as the publisher ships them.

use std::io::Write;
use std::path::Path;

/// Zips every file of `dir` (flat), as the publisher does.
pub fn zip_dir(dir: &Path, zip_path: &Path) {
    let file = std::fs::File::create(zip_path).expect("create zip");
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().expect("name").to_string_lossy().into_owned();
        zip.start_file(name, options).expect("start entry");
        zip.write_all(&std::fs::read(&path).expect("read sample"))
            .expect("write entry");
    }
    zip.finish().expect("finish zip");
}
