//! The admin page's address line (`addressLine` in src/http/page.js), run under Node on
//! activities of the extract: the bureau cedex already carries the postcode, and the
//! street type is written by its label. Without Node the test is skipped with a message, or
//! fails under CI (`common::tools`).

mod common;

use std::process::Command;

use serde_json::{Value, json};

/// The function's source, cut out of the page's script.
fn address_line_source() -> String {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/page.js")).unwrap();
    let start = page.find("function addressLine(").expect("addressLine in page.js");
    let end = start + page[start..].find("\n}\n").expect("its end") + 2;
    page[start..end].to_owned()
}

#[test]
fn the_address_line_writes_the_postcode_once_and_the_street_type_label() {
    let cases = json!([
        [{"numeroVoie": "12", "indiceRepetitionVoie": "", "codeTypeDeVoie": "R", "libelleVoie": "DE LA PAIX",
          "mentionDistribution": "", "bureauCedex": "44000 NANTES", "codePostal": "44000"}, "Rue"],
        [{"numeroVoie": "900", "indiceRepetitionVoie": "B", "codeTypeDeVoie": "RTE", "libelleVoie": "DE PARIS",
          "mentionDistribution": "CS 90401", "bureauCedex": "01012 BOURG EN BRESSE CEDEX", "codePostal": "01012"}, "Route"],
        [{"numeroVoie": "", "indiceRepetitionVoie": "", "codeTypeDeVoie": "AV", "libelleVoie": "FOCH",
          "mentionDistribution": "", "bureauCedex": "", "codePostal": "69006"}, null],
        [{"numeroVoie": "3", "indiceRepetitionVoie": "", "codeTypeDeVoie": "PL", "libelleVoie": "BELLECOUR",
          "mentionDistribution": "", "bureauCedex": "LYON", "codePostal": "69002"}, "Place"]
    ]);
    let script = format!(
        "{}\nconst cases = {cases};\nprocess.stdout.write(JSON.stringify(cases.map(([a, label]) => addressLine(a, label))));",
        address_line_source()
    );
    if !common::tools::require("node", "apt-get install nodejs (.ci/setup does)") {
        return;
    }
    let out = Command::new("node").arg("-e").arg(&script).output().expect("node runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        lines,
        json!([
            "12 Rue DE LA PAIX, 44000 NANTES",
            "900 B Route DE PARIS, CS 90401, 01012 BOURG EN BRESSE CEDEX",
            "AV FOCH, 69006",
            "3 Place BELLECOUR, 69002 LYON"
        ])
    );
}
