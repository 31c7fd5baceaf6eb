//! The declaration (`infra/declaration.json`) and the workspace must describe the same
//! system: every function binary is declared and every declared function is a binary,
//! each route is served by the binary that names it, every table is declared, used and
//! read by its code through the declared variable, and Terraform reads the declaration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use e2e::{declaration, root, workspace_binaries};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// The route a binary says it serves: its first doc line starts with `` `METHOD /path` ``.
fn route_named_in(src: &Path) -> Option<String> {
    let text = std::fs::read_to_string(src).unwrap();
    let first = text.lines().next()?.strip_prefix("//! `")?;
    let route = first.split('`').next()?;
    let method = route.split(' ').next()?;
    ["GET", "POST", "PUT", "PATCH", "DELETE"]
        .contains(&method)
        .then(|| route.to_owned())
}

#[test]
fn every_declared_function_is_a_binary_and_every_binary_is_declared() {
    let decl = declaration();
    let declared: BTreeSet<String> = decl["functions"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let bins: BTreeSet<String> = workspace_binaries().into_keys().collect();
    let undeclared: Vec<_> = bins.difference(&declared).collect();
    let missing: Vec<_> = declared.difference(&bins).collect();
    assert!(
        undeclared.is_empty(),
        "binaries not in infra/declaration.json: {undeclared:?}"
    );
    assert!(
        missing.is_empty(),
        "declared functions with no binary: {missing:?}"
    );
}

#[test]
fn each_declared_tool_is_a_workspace_binary() {
    let tools = declaration()["tools"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(tools.contains_key("commerce-ops"));
    for (name, spec) in tools {
        let manifest = root().join(format!(
            "functions/{}/src/bin/{name}.rs",
            spec["package"].as_str().unwrap()
        ));
        assert!(manifest.exists(), "tool {name}: no {}", manifest.display());
    }
}

#[test]
fn each_function_lives_in_its_declared_service_crate() {
    let decl = declaration();
    for (name, (package, _)) in workspace_binaries() {
        let service = decl["functions"][&name]["service"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(
            service, package,
            "{name} is declared in service {service:?} but built by {package}"
        );
        assert!(
            name.starts_with(&format!("{package}-")),
            "{name} must be named <service>-<operation>"
        );
    }
}

#[test]
fn routes_are_served_by_the_binaries_that_name_them() {
    let decl = declaration();
    let bins = workspace_binaries();
    let mut seen = BTreeSet::new();
    for (name, spec) in decl["functions"].as_object().unwrap() {
        let declared = spec.get("route").and_then(Value::as_str).map(str::to_owned);
        let named = bins.get(name).and_then(|(_, src)| route_named_in(src));
        assert_eq!(
            declared, named,
            "{name}: route in declaration vs route its source names"
        );
        if let Some(route) = declared {
            assert!(
                seen.insert(route.clone()),
                "route {route} is declared twice"
            );
        }
    }
    for (name, (_, src)) in &bins {
        if route_named_in(src).is_some() {
            assert!(
                decl["functions"][name].get("route").is_some(),
                "{name} names a route that is not declared"
            );
        }
    }
}

#[test]
fn every_table_is_declared_used_and_read_through_its_variable() {
    let decl = declaration();
    let tables = decl["tables"].as_object().unwrap();
    let mut used = BTreeSet::new();
    for (name, spec) in decl["functions"].as_object().unwrap() {
        let no_tables = serde_json::Map::new();
        for (table, actions) in spec
            .get("tables")
            .and_then(Value::as_object)
            .unwrap_or(&no_tables)
        {
            assert!(
                tables.contains_key(table),
                "{name} uses undeclared table {table}"
            );
            for action in actions.as_array().unwrap() {
                let action = action.as_str().unwrap();
                assert!(
                    action.starts_with("dynamodb:") && !action.contains('*'),
                    "{name}: {action} is not one precise DynamoDB action"
                );
            }
            used.insert(table.clone());
        }
        for table in spec
            .get("streams")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            used.insert(table.as_str().unwrap().to_owned());
        }
    }
    let unused: Vec<_> = tables.keys().filter(|t| !used.contains(*t)).collect();
    assert!(
        unused.is_empty(),
        "declared tables no function uses: {unused:?}"
    );

    // Every table variable the code reads is declared, and every declared one is read.
    let mut read_in_code = BTreeSet::new();
    for (_, (_, src)) in workspace_binaries() {
        let crate_src = src.parent().unwrap().parent().unwrap();
        for entry in std::fs::read_dir(crate_src).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for part in text.split("required(\"").skip(1) {
                    let var = part.split('"').next().unwrap();
                    if var.ends_with("_TABLE") {
                        read_in_code.insert(var.to_owned());
                    }
                }
            }
        }
    }
    let declared_vars: BTreeSet<String> = tables
        .values()
        .map(|t| t["env"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        read_in_code, declared_vars,
        "table variables read in code vs declared"
    );
}

#[test]
fn terraform_builds_functions_routes_and_tables_from_the_declaration() {
    fn read_tf(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.ends_with(".terraform") {
                read_tf(&path, out);
            } else if path.extension().is_some_and(|e| e == "tf") {
                out.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
    }
    let mut tf = String::new();
    read_tf(&root().join("infra"), &mut tf);
    assert!(
        tf.contains("declaration.json"),
        "Terraform does not read infra/declaration.json"
    );
    for resource in [
        "aws_lambda_function",
        "aws_apigatewayv2_route",
        "aws_dynamodb_table",
    ] {
        let block = tf
            .split(&format!("resource \"{resource}\""))
            .nth(1)
            .unwrap_or_else(|| panic!("no {resource} in infra/"));
        let head: String = block.lines().take(4).collect::<Vec<_>>().join("\n");
        assert!(
            head.contains("for_each"),
            "{resource} is not generated from the declaration (no for_each)"
        );
    }
}

#[test]
fn queues_rules_and_event_sources_reference_declared_parts() {
    let decl = declaration();
    let tables = decl["tables"].as_object().unwrap();
    let queues = decl["queues"].as_object().unwrap();
    let no_streams = serde_json::Map::new();
    let kinesis_streams = decl
        .get("streams")
        .and_then(Value::as_object)
        .unwrap_or(&no_streams);
    let mut queues_used = BTreeSet::new();
    // What the bus cannot deliver to a rule's queue goes to its dead-letter queue after
    // bounded retries (EventBridge allows at most 24 hours and 185 attempts).
    let bus = &decl["bus"];
    let bus_dlq = bus["dead_letter_queue"]
        .as_str()
        .expect("the bus has no dead_letter_queue for what it cannot deliver");
    assert!(
        queues
            .get(bus_dlq)
            .is_some_and(|q| q.get("dlq").and_then(Value::as_bool) == Some(false)),
        "the bus's dead-letter queue {bus_dlq} is not a declared queue without a DLQ of its own"
    );
    queues_used.insert(bus_dlq.to_owned());
    let age = bus["target_retry"]["maximum_event_age_s"].as_i64();
    let attempts = bus["target_retry"]["maximum_retry_attempts"].as_i64();
    assert!(
        age.is_some_and(|s| (60..=86_400).contains(&s))
            && attempts.is_some_and(|n| (0..=185).contains(&n)),
        "the bus's target_retry is not within what EventBridge accepts: {:?}",
        bus["target_retry"]
    );
    for (name, rule) in decl["rules"].as_object().unwrap() {
        let q = rule["queue"].as_str().unwrap();
        assert!(
            queues.contains_key(q),
            "rule {name} targets undeclared queue {q}"
        );
        assert!(
            rule["event_pattern"].is_object(),
            "rule {name} has no event pattern"
        );
        queues_used.insert(q.to_owned());
    }
    for (name, spec) in decl["functions"].as_object().unwrap() {
        let sources = spec
            .get("event_sources")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !sources.is_empty() {
            assert!(
                spec.get("route").is_none(),
                "{name} is both an API route and an event consumer"
            );
        }
        let streams: BTreeSet<String> = spec
            .get("streams")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        let mut streamed = BTreeSet::new();
        let mut kinesis_read = BTreeSet::new();
        for source in &sources {
            if let Some(k) = source.get("kinesis_stream").and_then(Value::as_str) {
                assert!(
                    kinesis_streams.contains_key(k),
                    "{name} reads undeclared Kinesis stream {k}"
                );
                kinesis_read.insert(k.to_owned());
                assert!(
                    source.get("starting_position").is_some(),
                    "{name}: Kinesis mapping without starting_position"
                );
                assert!(
                    source["maximum_retry_attempts"]
                        .as_i64()
                        .is_some_and(|n| n >= 0),
                    "{name}: unbounded retries"
                );
            }
            if let Some(t) = source.get("table_stream").and_then(Value::as_str) {
                assert!(
                    tables.get(t).is_some_and(|t| t.get("stream").is_some()),
                    "{name} reads table {t}, which has no stream"
                );
                streamed.insert(t.to_owned());
                assert!(
                    source.get("starting_position").is_some(),
                    "{name}: stream mapping without starting_position"
                );
                assert!(
                    source["maximum_retry_attempts"]
                        .as_i64()
                        .is_some_and(|n| n >= 0),
                    "{name}: unbounded retries"
                );
            }
            if let Some(q) = source.get("queue").and_then(Value::as_str) {
                assert!(
                    queues.contains_key(q),
                    "{name} consumes undeclared queue {q}"
                );
                queues_used.insert(q.to_owned());
            }
            if let Some(q) = source.get("on_failure_queue").and_then(Value::as_str) {
                assert!(
                    queues.contains_key(q),
                    "{name}: undeclared on-failure queue {q}"
                );
                queues_used.insert(q.to_owned());
            }
        }
        assert_eq!(
            streams, streamed,
            "{name}: streams it may read vs streams it is mapped to"
        );
        let kinesis: BTreeSet<String> = spec
            .get("kinesis")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            kinesis, kinesis_read,
            "{name}: Kinesis streams it may read vs Kinesis streams it is mapped to"
        );
    }
    let unused: Vec<_> = queues
        .keys()
        .filter(|q| !queues_used.contains(*q))
        .collect();
    assert!(
        unused.is_empty(),
        "queues nothing sends to or reads: {unused:?}"
    );
}

/// A claim must outlive its holder: every function that claims idempotency keys times
/// out before the lease runs out, so a live request is never overtaken.
#[test]
fn functions_claiming_idempotency_keys_time_out_before_the_lease() {
    let decl = declaration();
    let lease_s = shared::idempotency::DEFAULT_LEASE_MILLIS / 1000;
    let mut claimers = 0;
    for (name, spec) in decl["functions"].as_object().unwrap() {
        if spec
            .get("tables")
            .and_then(|t| t.get("idempotency"))
            .is_some()
        {
            claimers += 1;
            let timeout = spec["timeout_s"].as_i64().unwrap();
            assert!(
                timeout < lease_s,
                "{name}: timeout {timeout}s is not below the {lease_s}s lease"
            );
        }
    }
    assert!(claimers > 0, "no function claims idempotency keys");
}

/// Every function a state machine's definition names (`${<function>_arn}`) is one it
/// declares, every one it declares exists and is named, and every other template
/// variable has a value for both AWS and the local stack.
#[test]
fn state_machines_reference_existing_functions_and_render() {
    let decl = declaration();
    let functions = decl["functions"].as_object().unwrap();
    let machines = decl["state_machines"].as_object().unwrap();
    assert!(!machines.is_empty());
    for (name, spec) in machines {
        let file = root()
            .join("infra/state-machines")
            .join(spec["definition"].as_str().unwrap());
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|_| panic!("{name}: no {}", file.display()));
        let mut vars = BTreeSet::new();
        for part in text.split("${").skip(1) {
            vars.insert(part.split('}').next().unwrap().to_owned());
        }
        let declared: BTreeSet<String> = spec["functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_owned())
            .collect();
        for f in &declared {
            assert!(
                functions.contains_key(f),
                "{name} invokes {f}, which is not a declared function"
            );
        }
        let named: BTreeSet<String> = vars
            .iter()
            .filter_map(|v| v.strip_suffix("_arn"))
            .map(|v| v.replace('_', "-"))
            .collect();
        assert_eq!(
            named, declared,
            "{name}: functions in the definition vs functions declared"
        );
        let params = spec["parameters"].as_object().unwrap();
        let mut rendered = text.clone();
        for v in &vars {
            let value = match v.strip_suffix("_arn") {
                Some(f) => format!(
                    "arn:aws:lambda:us-east-1:123456789012:function:{}",
                    f.replace('_', "-")
                ),
                None => {
                    let p = params
                        .get(v)
                        .unwrap_or_else(|| panic!("{name}: no value for ${{{v}}}"));
                    // A number per environment, or one list of error names for both.
                    let value =
                        if p["aws"].is_number() && p["local"].is_number() {
                            &p["aws"]
                        } else {
                            let shared = &p["value"];
                            assert!(
                                shared.as_array().is_some_and(|errors| !errors.is_empty()
                                    && errors.iter().all(Value::is_string)),
                                "{name}: {v} needs aws and local numbers, or one `value` list"
                            );
                            shared
                        };
                    value.to_string()
                }
            };
            rendered = rendered.replace(&format!("${{{v}}}"), &value);
        }
        let json: Value = serde_json::from_str(&rendered)
            .unwrap_or_else(|e| panic!("{name} does not render to JSON: {e}"));
        assert!(
            json["States"].is_object() && json["StartAt"].is_string(),
            "{name} is not a state machine"
        );
    }
}

/// `make build` (infra/build.sh) builds for the declaration's `lambda.architecture`, the one
/// Terraform deploys, and says how to get the target when the toolchain lacks it, instead of
/// building zips of another architecture that Lambda could not start.
#[test]
fn make_build_refuses_an_architecture_the_toolchain_cannot_build() {
    let scratch = std::env::temp_dir().join(format!("build-check-{}", std::process::id()));
    let sysroot = scratch.join("sysroot");
    // A toolchain with only x86_64's standard library.
    std::fs::create_dir_all(sysroot.join("lib/rustlib/x86_64-unknown-linux-gnu/lib")).unwrap();
    let mut decl = declaration();
    for (arch, code, says) in [
        (
            "x86_64",
            0,
            "x86_64 (x86_64-unknown-linux-gnu) can be built here",
        ),
        ("arm64", 1, "rustup target add aarch64-unknown-linux-gnu"),
        ("mips", 2, "Lambda runs arm64 or x86_64"),
    ] {
        decl["lambda"]["architecture"] = Value::from(arch);
        let path = scratch.join(format!("declaration-{arch}.json"));
        std::fs::write(&path, serde_json::to_string(&decl).unwrap()).unwrap();
        let out = std::process::Command::new("bash")
            .arg(root().join("infra/build.sh"))
            .arg("--check")
            .env("DECLARATION", &path)
            .env("RUST_SYSROOT", &sysroot)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(code), "{arch}: {said}");
        assert!(said.contains(says), "{arch}: {said}");
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

/// infra/README.md lists the tables it creates; the list is the declaration's.
#[test]
fn the_infra_readme_lists_the_declared_tables() {
    let readme = std::fs::read_to_string(root().join("infra/README.md")).unwrap();
    let marker = "One DynamoDB table per declared table (";
    let start = readme
        .find(marker)
        .expect("infra/README.md lists no tables")
        + marker.len();
    let list = &readme[start..start + readme[start..].find(')').unwrap()];
    let listed: BTreeSet<String> = list
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    let declared: BTreeSet<String> = declaration()["tables"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        listed, declared,
        "infra/README.md's tables vs the declaration"
    );
}

/// The documented `terraform init` uses the S3 backend's native locking (`use_lockfile`),
/// generally available from Terraform 1.11: the declared floor must be at least that, and
/// every module asks for the same AWS provider as the root.
#[test]
fn the_terraform_floor_covers_the_documented_commands() {
    let versions = std::fs::read_to_string(root().join("infra/versions.tf")).unwrap();
    let floor = versions
        .split("required_version = \">= ")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .expect("infra/versions.tf has no required_version = \">= x.y.z\"");
    let parts: Vec<u32> = floor.split('.').map(|p| p.parse().unwrap()).collect();
    let docs = ["README.md", "infra/README.md", "infra/versions.tf"]
        .iter()
        .map(|f| std::fs::read_to_string(root().join(f)).unwrap())
        .collect::<String>();
    if docs.contains("use_lockfile") {
        assert!(
            (parts[0], parts[1]) >= (1, 11),
            "use_lockfile is documented, which needs Terraform 1.11; the floor is {floor}"
        );
    }
    let provider = |text: &str| -> String {
        let aws = text.split("source").nth(1).unwrap_or("");
        aws.split("version")
            .nth(1)
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    let root_provider = provider(&versions);
    assert!(root_provider.contains("~> 6."), "{root_provider}");
    for module in ["global", "regional", "edge"] {
        let text =
            std::fs::read_to_string(root().join(format!("infra/modules/{module}/versions.tf")))
                .unwrap();
        assert_eq!(
            provider(&text),
            root_provider,
            "infra/modules/{module}/versions.tf"
        );
    }
}
