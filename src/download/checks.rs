//! What is refused as not an extract (an empty or HTML body, one far smaller than the last
//! published), and the file name a download gets (from `Content-Disposition` or the URL,
//! sanitised: it becomes a path). Pure.

use super::DownloadError;

pub(super) fn refused(url: &str, reason: &str) -> DownloadError {
    DownloadError::Refused {
        url: url.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Why a complete body is not an extract, judged from its first bytes and size.
pub(super) fn refusal(head: &[u8], bytes: u64, min_bytes: u64) -> Option<String> {
    if bytes == 0 {
        return Some("the body is empty".to_owned());
    }
    let start = String::from_utf8_lossy(&head[..head.len().min(64)])
        .trim_start()
        .to_ascii_lowercase();
    if start.starts_with("<!doctype html") || start.starts_with("<html") || start.starts_with("<?xml") {
        return Some("the body is an HTML or XML page".to_owned());
    }
    if bytes < min_bytes {
        return Some(format!(
            "{bytes} bytes, far smaller than the last published extract (floor {min_bytes} bytes)"
        ));
    }
    None
}

/// The publisher names the zip in `Content-Disposition`; the import reads the extract's
/// timestamp from that name. Sanitised: it becomes a file name here.
pub fn disposition_file_name(value: &str) -> Option<String> {
    let raw = value
        .split("filename=")
        .nth(1)?
        .split(';')
        .next()?
        .trim()
        .trim_matches('"');
    sanitise(raw)
}

pub(super) fn url_file_name(url: &str) -> Option<String> {
    sanitise(url.split(['?', '#']).next()?.rsplit('/').next()?)
}

fn sanitise(name: &str) -> Option<String> {
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .collect();
    (!clean.is_empty() && !clean.starts_with('.')).then_some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_download_after_content_disposition() {
        assert_eq!(
            disposition_file_name("attachment; filename=PS_LibreAcces_202611250900.zip").as_deref(),
            Some("PS_LibreAcces_202611250900.zip")
        );
        assert_eq!(
            url_file_name("https://x/data/ps-libreacces-personne-activite.txt?x=1").as_deref(),
            Some("ps-libreacces-personne-activite.txt")
        );
        assert_eq!(url_file_name("https://x/"), None);
        assert_eq!(disposition_file_name("attachment; filename=\"../../etc/passwd\""), None);
    }

    #[test]
    fn refuses_what_is_not_an_extract() {
        assert_eq!(refusal(b"", 0, 0).as_deref(), Some("the body is empty"));
        assert!(refusal(b"  <!DOCTYPE html><html>", 100, 0).unwrap().contains("HTML"));
        assert!(refusal(b"PK\x03\x04", 1000, 100_000).unwrap().contains("far smaller"));
        assert_eq!(refusal(b"PK\x03\x04", 1000, 0), None);
    }
}
