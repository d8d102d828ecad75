//! What changed between two claims documents, field by field: the one diff format of the
//! history, the run diff and the admin page. Each change is `{path, old, new}`, `path` a
//! JSON Pointer (RFC 6901) into the document, array elements (exercices, activities) by
//! index; `old` is null for what was added, `new` null for what went (the claims documents
//! hold no nulls of their own: an empty field is "").

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    /// e.g. `/SubjectRefPro/exercices/0/activities/1/telephone`.
    pub path: String,
    pub old: Value,
    pub new: Value,
}

/// Every leaf (or whole subtree, where one side has none) that differs; an object's keys in
/// their order (sorted), then those only the new document has.
pub fn diff(old: &Value, new: &Value) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    walk(&mut String::new(), old, new, &mut changes);
    changes
}

fn walk(path: &mut String, old: &Value, new: &Value, changes: &mut Vec<FieldChange>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let len = push(path, key);
                walk(path, value, b.get(key).unwrap_or(&Value::Null), changes);
                path.truncate(len);
            }
            for (key, value) in b.iter().filter(|(key, _)| !a.contains_key(*key)) {
                let len = push(path, key);
                walk(path, &Value::Null, value, changes);
                path.truncate(len);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let len = push(path, &i.to_string());
                walk(
                    path,
                    a.get(i).unwrap_or(&Value::Null),
                    b.get(i).unwrap_or(&Value::Null),
                    changes,
                );
                path.truncate(len);
            }
        }
        (a, b) if a != b => changes.push(FieldChange {
            path: path.clone(),
            old: a.clone(),
            new: b.clone(),
        }),
        _ => {}
    }
}

/// Appends `/token`, escaped as RFC 6901 says; returns the length to truncate back to.
fn push(path: &mut String, token: &str) -> usize {
    let len = path.len();
    path.push('/');
    for c in token.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
    len
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn leaves_that_differ_by_pointer_and_nothing_else() {
        let old = json!({
            "given_name": "JEAN",
            "SubjectRole": ["10^1.2.250.1.213.1.1.5.5"],
            "SubjectRefPro": {"exercices": [{"activities": [
                {"telephone": "0102030405", "codePostal": "75001"},
                {"telephone": "", "codePostal": "69001"}
            ]}]}
        });
        let new = json!({
            "given_name": "JEAN",
            "SubjectRole": ["10^1.2.250.1.213.1.1.5.5", "40^1.2.250.1.213.1.1.5.5"],
            "SubjectRefPro": {"exercices": [{"activities": [
                {"telephone": "0148589999", "codePostal": "75001"}
            ]}]},
            "a/b~c": "x"
        });
        let changes = diff(&old, &new);
        let expected = vec![
            (
                "/SubjectRefPro/exercices/0/activities/0/telephone",
                json!("0102030405"),
                json!("0148589999"),
            ),
            (
                "/SubjectRefPro/exercices/0/activities/1",
                json!({"telephone": "", "codePostal": "69001"}),
                Value::Null,
            ),
            ("/SubjectRole/1", Value::Null, json!("40^1.2.250.1.213.1.1.5.5")),
            ("/a~1b~0c", Value::Null, json!("x")),
        ];
        let changes: Vec<_> = changes.into_iter().map(|c| (c.path, c.old, c.new)).collect();
        let expected: Vec<_> = expected.into_iter().map(|(p, o, n)| (p.to_owned(), o, n)).collect();
        assert_eq!(changes, expected);
        assert!(diff(&new, &new).is_empty());
    }
}
