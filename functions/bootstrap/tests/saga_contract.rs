//! The state machines against the steps' contracts (`shared::step::Contract`): the
//! definitions in infra/state-machines/ stay the one source of the flow, and this test
//! fails when a `Task` passes a step a field its input type does not take, leaves out one it
//! requires, or when a later state reads a field of a step's output that its output type
//! does not have.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Every step function's input and output schema, by function name.
fn contracts() -> BTreeMap<&'static str, (Value, Value)> {
    let mut all = BTreeMap::new();
    macro_rules! add {
        ($($c:expr),* $(,)?) => {$(all.insert($c.function, $c.schemas());)*};
    }
    add!(
        inventory::reservation::RESERVE,
        inventory::reservation::COMMIT,
        inventory::reservation::RELEASE,
        inventory::reservation::RESTOCK,
        orders::saga::HOLD_FOR_REVIEW,
        orders::saga::CONFIRM,
        orders::saga::REJECT,
        orders::saga::FINISH_CANCEL,
        payments::AUTHORIZE,
        payments::CAPTURE,
        payments::VOID,
        payments::REFUND,
        payments::fraud_check::REQUEST,
    );
    all
}

/// A state machine definition as Terraform renders it: `${<function>_arn}` becomes the
/// function's name, every other template parameter its declared AWS value as JSON.
fn definition(name: &str) -> Value {
    let infra = format!("{}/../../infra", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(format!("{infra}/state-machines/{name}.asl.json")).unwrap();
    let declaration: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{infra}/declaration.json")).unwrap(),
    )
    .unwrap();
    let parameters = &declaration["state_machines"][name]["parameters"];
    let mut rendered = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("${") {
        let end = start + rest[start..].find('}').unwrap();
        let var = &rest[start + 2..end];
        rendered.push_str(&rest[..start]);
        match var.strip_suffix("_arn") {
            Some(function) => rendered.push_str(&function.replace('_', "-")),
            None => {
                let p = &parameters[var];
                let value = if p["aws"].is_null() {
                    &p["value"]
                } else {
                    &p["aws"]
                };
                assert!(!value.is_null(), "{name}: no value for ${{{var}}}");
                rendered.push_str(&value.to_string());
            }
        }
        rest = &rest[end + 1..];
    }
    rendered.push_str(rest);
    serde_json::from_str(&rendered).unwrap()
}

fn properties(schema: &Value) -> BTreeSet<String> {
    schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn required(schema: &Value) -> BTreeSet<String> {
    schema["required"]
        .as_array()
        .map(|r| r.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// Every string in `v` that is a JSONPath into the state's data (`$.…`).
fn paths(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.starts_with("$.") => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| paths(x, out)),
        Value::Object(o) => o.values().for_each(|x| paths(x, out)),
        _ => {}
    }
}

/// The problems of one definition: `input` is the schema of what an execution starts with;
/// `answers` the output schema of a `.waitForTaskToken` state, by state name (what its
/// answer's sender sends, not its function's return).
fn check(
    machine: &str,
    def: &Value,
    input: &Value,
    answers: &BTreeMap<&str, Value>,
) -> Vec<String> {
    let contracts = contracts();
    let states = def["States"].as_object().unwrap();
    let mut problems = Vec::new();
    // What a state's data can hold at its top level: the execution's input, and what any
    // state writes at a ResultPath.
    let mut top: BTreeSet<String> = properties(input);
    for state in states.values() {
        if let Some(p) = state["ResultPath"]
            .as_str()
            .and_then(|p| p.strip_prefix("$."))
        {
            top.insert(p.split('.').next().unwrap().to_owned());
        }
    }
    // `commerce-ops compensate` starts place-order with `compensate: true`
    // (functions/ops/src/compensate.rs); StartOrCompensate branches on it.
    top.insert("compensate".into());
    let mut every_path = Vec::new();
    paths(def, &mut every_path);
    let mut tasks = 0;
    for (name, state) in states {
        if state["Type"] != "Task" {
            continue;
        }
        tasks += 1;
        let function = state["Parameters"]["FunctionName"].as_str().unwrap();
        let Some((input_schema, output_schema)) = contracts.get(function) else {
            problems.push(format!("{machine} {name}: {function} has no step contract"));
            continue;
        };
        let payload = state["Parameters"]["Payload"].as_object().unwrap();
        let passed: BTreeSet<String> = payload
            .keys()
            .map(|k| k.trim_end_matches(".$").to_owned())
            .collect();
        for field in passed.difference(&properties(input_schema)) {
            problems.push(format!(
                "{machine} {name}: passes {field}, which {function}'s input type does not take"
            ));
        }
        for field in required(input_schema).difference(&passed) {
            problems.push(format!(
                "{machine} {name}: leaves out {field}, which {function}'s input type requires"
            ));
        }
        for (key, value) in payload {
            let Some(path) = value.as_str().and_then(|v| v.strip_prefix("$.")) else {
                continue;
            };
            let first = path.split('.').next().unwrap();
            if key.ends_with(".$") && !top.contains(first) {
                problems.push(format!(
                    "{machine} {name}: {key} reads $.{path}, which nothing puts there"
                ));
            }
        }
        // What later states read of this step's output.
        let Some(result_path) = state["ResultPath"].as_str() else {
            continue;
        };
        let (prefix, output) = if state["ResultSelector"]["result.$"] == "$.Payload" {
            (format!("{result_path}.result."), output_schema.clone())
        } else if let Some(answer) = answers.get(name.as_str()) {
            (format!("{result_path}."), answer.clone())
        } else {
            continue;
        };
        for read in every_path.iter().filter_map(|p| p.strip_prefix(&prefix)) {
            let field = read.split('.').next().unwrap();
            if !properties(&output).contains(field) {
                problems.push(format!(
                    "{machine}: reads {prefix}{read}, but {name}'s output has no {field}"
                ));
            }
        }
    }
    assert!(tasks > 0, "{machine} has no Task states");
    problems
}

/// What the senders of the task answers send: the fraud scorer, an administrator's review.
fn fraud_answer() -> BTreeMap<&'static str, Value> {
    BTreeMap::from([
        (
            "RequestFraudDecision",
            schemars::schema_for!(fraud::answer::TaskOutput).to_value(),
        ),
        (
            "HoldForReview",
            schemars::schema_for!(orders::workflow::ReviewOutput).to_value(),
        ),
    ])
}

fn saga_input() -> Value {
    schemars::schema_for!(shared::saga::SagaInput).to_value()
}

#[test]
fn every_task_passes_what_its_step_takes_and_reads_what_it_answers() {
    let mut problems = check(
        "place-order",
        &definition("place-order"),
        &saga_input(),
        &fraud_answer(),
    );
    problems.extend(check(
        "cancel-order",
        &definition("cancel-order"),
        &schemars::schema_for!(shared::saga::CancelInput).to_value(),
        &BTreeMap::new(),
    ));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_definition_that_breaks_a_contract_is_reported() {
    let mut def = definition("place-order");
    let states = def["States"].as_object_mut().unwrap();
    let authorize = states["AuthorizePayment"]["Parameters"]["Payload"]
        .as_object_mut()
        .unwrap();
    authorize.remove("payment_token.$");
    authorize.insert("coupon.$".into(), "$.coupon".into());
    states["FraudDecision"]["Choices"][0]["Variable"] = "$.fraud.verdict".into();
    let problems = check("place-order", &def, &saga_input(), &fraud_answer());
    for expected in [
        "AuthorizePayment: leaves out payment_token",
        "AuthorizePayment: passes coupon",
        "AuthorizePayment: coupon.$ reads $.coupon, which nothing puts there",
        "reads $.fraud.verdict, but RequestFraudDecision's output has no verdict",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{expected:?} not in {problems:#?}"
        );
    }
}
