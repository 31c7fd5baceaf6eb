//! `make fraud-eval`: the model measured on labelled traffic (functions/fraud/src/eval.rs),
//! written to docs/benchmarks/fraud-eval.md.
//!
//!     cargo run --release -p fraud --example fraud-eval -- [--fit] [--quick]
//!
//! `--fit` first fits the weights and thresholds on traffic from the training seed and
//! writes them to functions/fraud/model/model.json; the report is always made on traffic
//! from another seed, which the fit never saw.

use fraud::eval::{Traffic, calibrate, evaluate, features, fit, generate};
use fraud::model::Model;
use std::process::ExitCode;

/// Legitimate transactions flagged for review at most, on the training traffic.
const REVIEW_FPR: f64 = 0.009;
/// Legitimate transactions denied at most, on the training traffic.
const DENY_FPR: f64 = 0.001;
/// The targets the report is held to (issue: recall 0.9 per pattern at a 1% false-positive rate).
const RECALL_TARGET: f64 = 0.9;
const FPR_TARGET: f64 = 0.01;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let size = |seed| Traffic {
        seed,
        users: if quick { 2_000 } else { 20_000 },
        days: 28,
        attacks: if quick { 100 } else { 500 },
    };
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let model_path = format!("{root}/functions/fraud/model/model.json");
    let mut model = match std::fs::read_to_string(&model_path)
        .map_err(|e| e.to_string())
        .and_then(|text| Model::parse(&text))
    {
        Ok(m) => m,
        Err(e) => {
            eprintln!("fraud-eval: {model_path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.iter().any(|a| a == "--fit") {
        let train = size(1);
        let data = features(&generate(&train));
        eprintln!(
            "fraud-eval: fitting on {} transactions (seed {})",
            data.len(),
            train.seed
        );
        model = calibrate(fit(&data, 2000, &model), &data, REVIEW_FPR, DENY_FPR);
        model.fitted = format!(
            "fraud-eval --fit: seed {}, {} users, {} days, {} attacks per pattern; thresholds at {REVIEW_FPR} (review) and {DENY_FPR} (deny) of the legitimate transactions",
            train.seed, train.users, train.days, train.attacks
        );
        let text = match serde_json::to_string_pretty(&model) {
            Ok(t) => t + "\n",
            Err(e) => {
                eprintln!("fraud-eval: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = std::fs::write(&model_path, text) {
            eprintln!("fraud-eval: {model_path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let test = size(2);
    let started = std::time::Instant::now();
    let data = features(&generate(&test));
    let report = evaluate(&model, &data);
    let rendered = report.render(&model, &test);
    let met = report.patterns.iter().all(|p| p.recall() >= RECALL_TARGET)
        && report.false_positive_rate() <= FPR_TARGET;
    let text = format!(
        "# Fraud model on labelled traffic\n\nWritten by `make fraud-eval` ({:.1} s). An attack is caught when at least one of its transactions is flagged (review or deny); the transactions column counts each. Targets: recall {RECALL_TARGET} for every pattern at a false-positive rate of at most {FPR_TARGET}: {}.\n\n{rendered}",
        started.elapsed().as_secs_f64(),
        if met { "met" } else { "NOT met" }
    );
    print!("{text}");
    if !quick {
        let out = format!("{root}/docs/benchmarks/fraud-eval.md");
        if let Err(e) = std::fs::write(&out, &text) {
            eprintln!("fraud-eval: {out}: {e}");
            return ExitCode::FAILURE;
        }
    }
    if met {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
