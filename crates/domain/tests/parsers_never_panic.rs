//! Every parser of what a person or a script types (quantities, amounts,
//! dates and windows, durations and steps, names, images, CSV, chart
//! questions) answers arbitrary text with a value or an error, never a panic.
//!
//! Each parser gets two kinds of input: any Unicode text, and text made of
//! the characters its grammar uses (digits, units, signs, separators), which
//! reaches far deeper than random text does: overflowing numbers, empty
//! parts, units without numbers.

use gantry_domain::chart::{self, ChartKind, SeriesQuery};
use gantry_domain::cost::{self, Amount, Usd};
use gantry_domain::policy::Role;
use gantry_domain::quantity::{self, Quantity};
use gantry_domain::records::AuditResult;
use gantry_domain::rollout;
use gantry_domain::usage;
use gantry_domain::validate::{self, Image, KubeName, LabelName, ObjectName, Password, Username};
use gantry_domain::view::{JobStatus, Preparation};
use proptest::prelude::*;

/// Numbers, units, signs and separators, in any order and length.
fn grammar() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9]{0,25}",
        "[-+]?[0-9]{0,22}(\\.[0-9]{0,22})?([eE][-+]?[0-9]{0,5})?(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|s|h|d|w)?",
        "[0-9TZ:.,+-]{0,40}",
        "[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}T[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2}),[0-9]{0,20}",
        "[$0-9., a-z_/:@-]{0,40}",
    ]
}

/// CSV-shaped text: a header (or not), lines of fields with quotes and commas.
fn csv() -> impl Strategy<Value = String> {
    let field = prop_oneof!["[a-zA-Z0-9 ._-]{0,12}", "\"[a-z,\"]{0,6}\"", "[-0-9.e]{0,25}", Just(String::new())];
    let line = prop::collection::vec(field, 0..6).prop_map(|fields| fields.join(","));
    (any::<bool>(), prop::collection::vec(line, 0..6)).prop_map(|(header, lines)| {
        let mut text =
            if header { "cluster,model,capacity_type,usd_per_gpu_hour\n".to_string() } else { String::new() };
        text.push_str(&lines.join("\n"));
        text
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn quantities(text in grammar()) {
        let _ = Quantity::parse(&text);
        let _ = quantity::whole_count(&text);
        let _ = validate::gpus(&text);
        let _ = validate::optional_quantity("memory", &text);
    }

    #[test]
    fn amounts(text in grammar(), dollars in any::<f64>()) {
        let _ = Usd::parse("usd", &text);
        let _ = Amount::Typed(text.clone()).parse("usd");
        let _ = Amount::Dollars(dollars).parse("usd");
    }

    #[test]
    fn windows_steps_and_breakdowns(text in grammar(), now in any::<i64>()) {
        let _ = usage::parse_window(&text, now);
        let _ = usage::parse_window(&text, 1_796_000_000_000);
        let _ = usage::parse_step(&text);
        let _ = usage::parse_aggregate(&text);
        let _ = usage::mig_milli_gpus(&text);
        let _ = rollout::parse_revision(Some(&text));
    }

    #[test]
    fn chart_questions(
        chart in prop_oneof![Just("spend".to_string()), Just("gpus".to_string()), Just("budget".to_string()), Just("workload".to_string()), any::<String>()],
        by in "[a-z_,]{0,30}",
        range in grammar(),
        width in grammar(),
        team in grammar(),
        now in any::<i64>(),
    ) {
        let _ = ChartKind::parse(&chart);
        let query = SeriesQuery { chart, by, range, width, team, ..SeriesQuery::default() };
        let day = 86_400_000;
        let _ = chart::parse_request(&query, now, day, 400 * day);
        let _ = chart::parse_request(&query, 1_796_000_000_000, day, 400 * day);
    }

    #[test]
    fn names_images_and_form_fields(text in grammar(), other in any::<String>()) {
        for input in [&text, &other] {
            let _ = Username::parse(input);
            let _ = Password::parse(input);
            let _ = ObjectName::parse(input);
            let _ = LabelName::parse("label", input);
            let _ = KubeName::parse("name", input);
            let _ = Image::parse(input);
            let _ = validate::env_lines(input);
            let _ = validate::label_value("value", input);
            let _ = validate::redirect_target(input);
            let _ = Role::parse(input);
            let _ = AuditResult::parse(input);
            let _ = JobStatus::parse(input);
            let _ = Preparation::parse(input);
            let _ = cost::price_key(input, &text);
        }
    }

    #[test]
    fn price_lists(text in csv(), other in any::<String>()) {
        let _ = cost::parse_price_csv(&text);
        let _ = cost::parse_price_csv(&other);
    }
}
