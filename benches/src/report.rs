//! Writing one run's figures out: a markdown table of medians with their ratio to native,
//! a markdown table of the full spread, and a JSON document with the git revision and the
//! machine. Ratios are `runner / native` for every unit, so for times above 1 is slower and
//! for rates and throughputs below 1 is slower.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::figures::{Figure, Outcome};
use crate::runner::Runner;

/// The median of `runner` in `figure`, when measured.
fn median(figure: &Figure, runner: Runner) -> Option<f64> {
    match figure.results.get(runner.name()) {
        Some(Outcome::Measured(summary)) => Some(summary.median),
        _ => None,
    }
}

/// `runner`'s median over native's, when both were measured.
pub fn ratio(figure: &Figure, runner: Runner) -> Option<f64> {
    let native = median(figure, Runner::Native)?;
    let value = median(figure, runner)?;
    (native > 0.0).then(|| value / native)
}

/// About three significant digits, without an exponent.
pub fn number(value: f64) -> String {
    let magnitude = value.abs();
    let decimals = if magnitude >= 100.0 || magnitude == 0.0 {
        0
    } else if magnitude >= 10.0 {
        1
    } else if magnitude >= 1.0 {
        2
    } else {
        3
    };
    format!("{value:.decimals$}")
}

/// The table of medians: one row per figure, one column per runner.
pub fn markdown(figures: &[Figure]) -> String {
    let mut table = String::new();
    let header: Vec<&str> = Runner::ALL.iter().map(|r| r.name()).collect();
    let _ = writeln!(table, "| figure | unit | {} |", header.join(" | "));
    let _ = writeln!(table, "|---|---|{}", "---:|".repeat(header.len()));
    for figure in figures {
        let cells: Vec<String> = Runner::ALL.iter().map(|&r| cell(figure, r)).collect();
        let _ = writeln!(
            table,
            "| {} | {} | {} |",
            figure.name,
            figure.unit,
            cells.join(" | ")
        );
    }
    table
}

fn cell(figure: &Figure, runner: Runner) -> String {
    match figure.results.get(runner.name()) {
        None => "–".to_string(),
        Some(Outcome::NotMeasurable(_)) => "not measurable".to_string(),
        Some(Outcome::Measured(summary)) => match ratio(figure, runner) {
            Some(ratio) if runner != Runner::Native => {
                format!("{} (×{})", number(summary.median), number(ratio))
            }
            _ => number(summary.median),
        },
    }
}

/// Every figure's min, median, max and count, and each reason a figure could not be taken.
pub fn markdown_details(figures: &[Figure]) -> String {
    let mut table = String::new();
    let _ = writeln!(table, "| figure | runner | min | median | max | runs |");
    let _ = writeln!(table, "|---|---|---:|---:|---:|---:|");
    let mut reasons = Vec::new();
    for figure in figures {
        for (runner, outcome) in &figure.results {
            match outcome {
                Outcome::Measured(s) => {
                    let _ = writeln!(
                        table,
                        "| {} ({}) | {runner} | {} | {} | {} | {} |",
                        figure.name,
                        figure.unit,
                        number(s.min),
                        number(s.median),
                        number(s.max),
                        s.count
                    );
                }
                Outcome::NotMeasurable(reason) => {
                    reasons.push(format!("- {}, {runner}: {reason}", figure.name));
                }
            }
        }
    }
    if !reasons.is_empty() {
        let _ = writeln!(table, "\nNot measurable:\n{}", reasons.join("\n"));
    }
    table
}

/// The JSON document of one run.
pub fn json(figures: &[Figure], context: Value) -> Value {
    let figures: Vec<Value> = figures
        .iter()
        .map(|figure| {
            let results: serde_json::Map<String, Value> = Runner::ALL
                .iter()
                .filter_map(|&runner| {
                    let outcome = figure.results.get(runner.name())?;
                    let value = match outcome {
                        Outcome::Measured(s) => json!({
                            "min": s.min, "median": s.median, "max": s.max, "count": s.count,
                            "ratio_to_native": ratio(figure, runner),
                        }),
                        Outcome::NotMeasurable(reason) => json!({ "not_measurable": reason }),
                    };
                    Some((runner.name().to_string(), value))
                })
                .collect();
            json!({
                "group": figure.group,
                "name": figure.name,
                "unit": figure.unit,
                "higher_is_better": figure.higher_is_better,
                "results": results,
            })
        })
        .collect();
    let mut document = context;
    document["figures"] = Value::Array(figures);
    document
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::summary::Summary;

    fn figure() -> Figure {
        let summary = |median| {
            Outcome::Measured(Summary {
                min: 1.0,
                median,
                max: 9.0,
                count: 3,
            })
        };
        Figure {
            group: "start",
            name: "start to exit: hello".to_string(),
            unit: "ms",
            higher_is_better: false,
            results: BTreeMap::from([
                ("native", summary(2.0)),
                ("litebox-vmm", summary(50.0)),
                (
                    "qemu-user",
                    Outcome::NotMeasurable("not installed".to_string()),
                ),
            ]),
        }
    }

    #[test]
    fn the_table_shows_medians_and_ratios_to_native() {
        let table = markdown(&[figure()]);
        let row = table.lines().nth(2).unwrap();
        assert_eq!(
            row,
            "| start to exit: hello | ms | 2.00 | – | not measurable | 50.0 (×25.0) |"
        );
    }

    #[test]
    fn details_list_the_spread_and_the_reasons() {
        let details = markdown_details(&[figure()]);
        let row = "| start to exit: hello (ms) | native | 1.00 | 2.00 | 9.00 | 3 |";
        assert!(details.contains(row));
        assert!(details.contains("- start to exit: hello, qemu-user: not installed"));
    }

    #[test]
    fn json_carries_ratios_and_reasons() {
        let document = json(&[figure()], json!({ "revision": "abc" }));
        let results = &document["figures"][0]["results"];
        assert_eq!(document["revision"], "abc");
        assert_eq!(results["litebox-vmm"]["ratio_to_native"], 25.0);
        assert_eq!(results["qemu-user"]["not_measurable"], "not installed");
        assert!(results.get("bwrap").is_none());
    }

    #[test]
    fn numbers_keep_about_three_significant_digits() {
        assert_eq!(number(1234.4), "1234");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(1.2345), "1.23");
        assert_eq!(number(0.012345), "0.012");
    }
}
