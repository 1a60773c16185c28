//! Every SARIF log the tests produce goes through `valid`: it must validate against the official
//! SARIF 2.1.0 schema (fixtures/sarif, with its provenance) and keep our own rules (no empty
//! `region`, percent-encoded URIs).

use std::sync::OnceLock;

use serde_json::Value;

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let text = std::fs::read_to_string(super::fixture("sarif/sarif-schema-2.1.0.json"))
            .expect("the SARIF schema fixture");
        let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
        jsonschema::draft4::new(&schema).expect("the SARIF schema compiles")
    })
}

/// Panics unless `log` is a valid SARIF 2.1.0 log; returns it for further checks.
pub fn valid(log: &Value) -> &Value {
    let errors: Vec<String> = validator()
        .iter_errors(log)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "SARIF does not validate against the 2.1.0 schema:\n{}",
        errors.join("\n")
    );
    for run in log["runs"].as_array().into_iter().flatten() {
        for r in run["results"].as_array().into_iter().flatten() {
            for loc in r["locations"].as_array().into_iter().flatten() {
                let p = &loc["physicalLocation"];
                if let Some(region) = p.get("region") {
                    assert!(
                        region.as_object().is_some_and(|o| !o.is_empty()),
                        "empty region in {r}"
                    );
                }
                let uri = p["artifactLocation"]["uri"].as_str().unwrap_or("");
                assert!(
                    uri.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~/%:".contains(&b)),
                    "URI not percent-encoded: {uri}"
                );
            }
        }
    }
    log
}

/// Parse stdout as SARIF and validate it.
pub fn parse(stdout: &str) -> Value {
    let v: Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("SARIF output is not JSON ({e}):\n{stdout}"));
    valid(&v);
    v
}
