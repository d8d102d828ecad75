//! The claims document as Entra ID takes it: strings and string arrays only, at most 3 KB
//! for the whole `claims` object as sent. Top-level strings stay as they are, arrays of
//! strings (`SubjectRole`) stay arrays, anything else (`SubjectRefPro`, `otherIds`) becomes
//! its compact JSON text. Over 3 KB, the activities beyond the first of each exercice go,
//! then the exercices beyond the first, then `SubjectRefPro` itself, each step said by
//! `SubjectRefProTruncated: "true"`: never more than Entra accepts.

use serde_json::{Map, Value};

/// Entra's limit on the claims a custom claims provider returns: keys and values, as sent.
pub const MAX_CLAIMS_BYTES: usize = 3 * 1024;

const REF_PRO: &str = "SubjectRefPro";
const TRUNCATED: &str = "SubjectRefProTruncated";

/// The Entra claims of a claims document (a JSON object; anything else gives none).
pub fn entra_claims(document: &Value) -> Map<String, Value> {
    let Some(document) = document.as_object() else {
        return Map::new();
    };
    let mut claims = convert(document);
    if size(&claims) <= MAX_CLAIMS_BYTES {
        return claims;
    }
    let mut ref_pro = document.get(REF_PRO).cloned().unwrap_or(Value::Null);
    let cuts: [fn(&mut Value); 2] = [first_activities, first_exercice];
    for cut in cuts {
        cut(&mut ref_pro);
        claims.insert(REF_PRO.to_owned(), Value::String(ref_pro.to_string()));
        claims.insert(TRUNCATED.to_owned(), Value::String("true".to_owned()));
        if size(&claims) <= MAX_CLAIMS_BYTES {
            return claims;
        }
    }
    claims.remove(REF_PRO);
    if size(&claims) <= MAX_CLAIMS_BYTES {
        return claims;
    }
    // Only an absurd document gets here (thousands of identifiers): its identity alone.
    let mut identity = Map::new();
    for key in ["SubjectNameID", TRUNCATED] {
        if let Some(value) = claims.get(key) {
            identity.insert(key.to_owned(), value.clone());
        }
    }
    identity
}

fn convert(document: &Map<String, Value>) -> Map<String, Value> {
    document
        .iter()
        .map(|(key, value)| {
            let value = match value {
                Value::String(_) => value.clone(),
                Value::Array(items) if items.iter().all(Value::is_string) => value.clone(),
                other => Value::String(other.to_string()),
            };
            (key.clone(), value)
        })
        .collect()
}

fn size(claims: &Map<String, Value>) -> usize {
    serde_json::to_vec(claims).map_or(usize::MAX, |bytes| bytes.len())
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

    #[test]
    fn strings_stay_arrays_of_strings_stay_the_rest_is_compact_json() {
        let claims = entra_claims(&document(1, 1));
        assert_eq!(claims["given_name"], "Hélène");
        assert_eq!(claims["SubjectRole"], json!(["10^1.2.250.1.213.1.1.5.5"]));
        assert_eq!(
            claims["otherIds"],
            r#"[{"identifiant":"810003456125","origine":"RPPS","qualite":1}]"#
        );
        let ref_pro: Value = serde_json::from_str(claims[REF_PRO].as_str().unwrap()).unwrap();
        assert_eq!(ref_pro, document(1, 1)[REF_PRO]);
        assert!(!claims.contains_key(TRUNCATED));
    }

    #[test]
    fn over_3_kb_activities_then_exercices_go_and_it_is_said() {
        // Many activities in two exercices: the first activity of each fits.
        let claims = entra_claims(&document(2, 40));
        assert!(size(&claims) <= MAX_CLAIMS_BYTES);
        assert_eq!(claims[TRUNCATED], "true");
        let ref_pro: Value = serde_json::from_str(claims[REF_PRO].as_str().unwrap()).unwrap();
        let exercices = ref_pro["exercices"].as_array().unwrap();
        assert_eq!(exercices.len(), 2);
        assert!(exercices.iter().all(|e| e["activities"] == json!([activity(0)])));
        // Many exercices: only the first is kept.
        let claims = entra_claims(&document(60, 3));
        assert!(size(&claims) <= MAX_CLAIMS_BYTES);
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
        let claims = entra_claims(&huge);
        assert!(size(&claims) <= MAX_CLAIMS_BYTES);
        assert_eq!(claims["SubjectNameID"], "810003456125");
    }
}
