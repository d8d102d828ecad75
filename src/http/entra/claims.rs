//! The claims document as Entra ID takes it: strings and string arrays only, at most 3 KB
//! for the whole `claims` object as sent. Top-level strings stay as they are, arrays of
//! strings (`SubjectRole`) stay arrays, anything else (`SubjectRefPro`, `otherIds`) becomes
//! its compact JSON text. Over 3 KB, the activities beyond the first of each exercice go,
//! then the exercices beyond the first, then `SubjectRefPro` itself, each step said by
//! `SubjectRefProTruncated: "true"`: never more than Entra accepts.
//!
//! Written from the stored document's own bytes (it is compact JSON): each member is kept
//! or quoted as it is, without building a JSON tree, which cost this route more than
//! Entra's token check; only a document over the limit is parsed to be cut.

use std::collections::BTreeMap;

use serde_json::Value;
use serde_json::value::RawValue;

/// Entra's limit on the claims a custom claims provider returns: keys and values, as sent.
pub const MAX_CLAIMS_BYTES: usize = 3 * 1024;

const REF_PRO: &str = "SubjectRefPro";
const TRUNCATED: &str = "SubjectRefProTruncated";

/// One claim's value as it will be written: a JSON text taken as it is, or made here.
enum Claim<'a> {
    Raw(&'a str),
    Made(String),
}

impl Claim<'_> {
    fn text(&self) -> &str {
        match self {
            Claim::Raw(text) => text,
            Claim::Made(text) => text,
        }
    }
}

/// The Entra `claims` object of a stored claims document, as JSON bytes; `None` if the
/// document is not a JSON object.
pub fn entra_claims(document: &[u8]) -> Option<Vec<u8>> {
    let members: BTreeMap<&str, &RawValue> = serde_json::from_slice(document).ok()?;
    let mut claims: BTreeMap<&str, Claim> = members.iter().map(|(key, raw)| (*key, convert(raw))).collect();
    let written = write(&claims);
    if written.len() <= MAX_CLAIMS_BYTES {
        return Some(written);
    }
    let mut ref_pro: Value = members
        .get(REF_PRO)
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
        .unwrap_or(Value::Null);
    claims.insert(TRUNCATED, Claim::Made("\"true\"".to_owned()));
    let cuts: [fn(&mut Value); 2] = [first_activities, first_exercice];
    for cut in cuts {
        cut(&mut ref_pro);
        claims.insert(REF_PRO, Claim::Made(quoted(&ref_pro.to_string())));
        let written = write(&claims);
        if written.len() <= MAX_CLAIMS_BYTES {
            return Some(written);
        }
    }
    claims.remove(REF_PRO);
    let written = write(&claims);
    if written.len() <= MAX_CLAIMS_BYTES {
        return Some(written);
    }
    // Only an absurd document gets here (thousands of identifiers): its identity alone.
    claims.retain(|key, _| *key == "SubjectNameID" || *key == TRUNCATED);
    Some(write(&claims))
}

/// A string stays, an array of strings stays, anything else becomes its JSON text quoted.
fn convert(raw: &RawValue) -> Claim<'_> {
    let text = raw.get();
    let strings_only = || {
        serde_json::from_str::<Vec<&RawValue>>(text).is_ok_and(|items| items.iter().all(|i| i.get().starts_with('"')))
    };
    if text.starts_with('"') || (text.starts_with('[') && strings_only()) {
        Claim::Raw(text)
    } else {
        Claim::Made(quoted(text))
    }
}

/// `text` as a JSON string. Written by serde_json's serializer straight into a buffer:
/// through `Value`'s `Display` (a copy, then `fmt`'s writer) it was half this route's own
/// cost, SubjectRefPro being most of the document.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

fn write(claims: &BTreeMap<&str, Claim>) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_CLAIMS_BYTES);
    out.push(b'{');
    for (i, (key, claim)) in claims.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, key).expect("a string serializes");
        out.push(b':');
        out.extend_from_slice(claim.text().as_bytes());
    }
    out.push(b'}');
    out
}

fn first_activities(ref_pro: &mut Value) {
    if let Some(exercices) = ref_pro.get_mut("exercices").and_then(Value::as_array_mut) {
        for exercice in exercices {
            if let Some(activities) = exercice.get_mut("activities").and_then(Value::as_array_mut) {
                activities.truncate(1);
            }
        }
    }
}

fn first_exercice(ref_pro: &mut Value) {
    if let Some(exercices) = ref_pro.get_mut("exercices").and_then(Value::as_array_mut) {
        exercices.truncate(1);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn activity(n: usize) -> Value {
        json!({"codeModeExercice": "S", "raisonSocialeSite": format!("CENTRE HOSPITALIER NUMERO {n:04} DE BOURG-EN-BRESSE"), "libelleVoie": "ROUTE DE PARIS ET DE LYON"})
    }

    fn document(exercices: usize, activities: usize) -> Value {
        let exercices: Vec<Value> = (0..exercices)
            .map(|e| json!({"codeProfession": format!("{e}"), "activities": (0..activities).map(activity).collect::<Vec<_>>()}))
            .collect();
        json!({
            "SubjectNameID": "810003456125",
            "given_name": "Hélène",
            "SubjectRole": ["10^1.2.250.1.213.1.1.5.5"],
            "otherIds": [{"identifiant": "810003456125", "origine": "RPPS", "qualite": 1}],
            "SubjectRefPro": {"codeCivilite": "MME", "exercices": exercices},
        })
    }

    fn claims_of(document: &Value) -> (usize, serde_json::Map<String, Value>) {
        let bytes = entra_claims(&serde_json::to_vec(document).unwrap()).unwrap();
        (bytes.len(), serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn strings_stay_arrays_of_strings_stay_the_rest_is_compact_json() {
        let (_, claims) = claims_of(&document(1, 1));
        assert_eq!(claims["given_name"], "Hélène");
        assert_eq!(claims["SubjectRole"], json!(["10^1.2.250.1.213.1.1.5.5"]));
        assert_eq!(
            claims["otherIds"],
            r#"[{"identifiant":"810003456125","origine":"RPPS","qualite":1}]"#
        );
        let ref_pro: Value = serde_json::from_str(claims[REF_PRO].as_str().unwrap()).unwrap();
        assert_eq!(ref_pro, document(1, 1)[REF_PRO]);
        assert!(!claims.contains_key(TRUNCATED));
        assert!(entra_claims(b"[1, 2]").is_none());
    }

    #[test]
    fn over_3_kb_activities_then_exercices_go_and_it_is_said() {
        // Many activities in two exercices: the first activity of each fits.
        let (size, claims) = claims_of(&document(2, 40));
        assert!(size <= MAX_CLAIMS_BYTES);
        assert_eq!(claims[TRUNCATED], "true");
        let ref_pro: Value = serde_json::from_str(claims[REF_PRO].as_str().unwrap()).unwrap();
        let exercices = ref_pro["exercices"].as_array().unwrap();
        assert_eq!(exercices.len(), 2);
        assert!(exercices.iter().all(|e| e["activities"] == json!([activity(0)])));
        // Many exercices: only the first is kept.
        let (size, claims) = claims_of(&document(60, 3));
        assert!(size <= MAX_CLAIMS_BYTES);
        let ref_pro: Value = serde_json::from_str(claims[REF_PRO].as_str().unwrap()).unwrap();
        assert_eq!(ref_pro["exercices"].as_array().unwrap().len(), 1);
        assert_eq!(claims[TRUNCATED], "true");
        // Whatever the document, never more than Entra accepts.
        let mut huge = document(1, 1);
        huge["otherIds"] = json!(
            (0..500)
                .map(|n| json!({"identifiant": format!("{n:012}")}))
                .collect::<Vec<_>>()
        );
        let (size, claims) = claims_of(&huge);
        assert!(size <= MAX_CLAIMS_BYTES);
        assert_eq!(claims["SubjectNameID"], "810003456125");
    }
}
