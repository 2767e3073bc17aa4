//! GPU prices, team budgets, and what the GPUs a team holds cost: exact
//! arithmetic in whole micro-dollars, so sums never drift.
//!
//! A price is per GPU-hour, per GPU model and capacity type (on-demand or
//! spot). A node whose capacity type is unknown is charged the on-demand
//! price; a spot GPU with no spot price is reported as unpriced rather than
//! charged the on-demand price, so a missing price shows instead of being
//! guessed. A month is an average month, 730 hours (365 × 24 ÷ 12).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::gpu::CapacityType;
use crate::validate::Invalid;

const MICROS_PER_USD: i64 = 1_000_000;
/// 365 days × 24 hours ÷ 12 months.
pub const HOURS_PER_MONTH: i64 = 730;

/// An amount of US dollars, held as whole micro-dollars. In JSON it is a
/// number of dollars (`2.49`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(i64);

impl Usd {
    /// The largest amount Gantry accepts anywhere: a billion dollars.
    pub const MAX: Usd = Usd(1_000_000_000 * MICROS_PER_USD);
    /// The largest price of one GPU-hour Gantry accepts.
    pub const MAX_GPU_HOUR: Usd = Usd(10_000 * MICROS_PER_USD);

    pub const fn from_micros(micros: i64) -> Usd {
        Usd(micros)
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    pub fn dollars(self) -> f64 {
        self.0 as f64 / MICROS_PER_USD as f64
    }

    /// Reads what a person types: `2.49`, `$2.49`, `1,500` or `1500.5`; at
    /// most six decimals, never negative, at most [`Usd::MAX`].
    pub fn parse(field: &str, text: &str) -> Result<Usd, Invalid> {
        let bad = || Invalid::new(field, "must be an amount in US dollars, such as 2.49 or 1,500");
        let text = text.trim();
        let text = text.strip_prefix('$').unwrap_or(text).trim();
        if text.is_empty() {
            return Err(Invalid::new(field, "enter an amount in US dollars"));
        }
        if text.starts_with('-') {
            return Err(Invalid::new(field, "cannot be negative"));
        }
        let digits: String = text.chars().filter(|c| *c != ',').collect();
        let (whole, fraction) = digits.split_once('.').unwrap_or((&digits, ""));
        let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty() && fraction.is_empty() || !all_digits(whole) || !all_digits(fraction) {
            return Err(bad());
        }
        if fraction.len() > 6 {
            return Err(Invalid::new(field, "at most six decimals"));
        }
        if whole.len() > 10 {
            return Err(too_large(field));
        }
        let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
        let fraction: i64 = format!("{fraction:0<6}").parse().map_err(|_| bad())?;
        Usd::checked(field, whole * MICROS_PER_USD + fraction)
    }

    /// From a JSON number of dollars, rounded to the micro-dollar.
    pub fn from_dollars(field: &str, dollars: f64) -> Result<Usd, Invalid> {
        if !dollars.is_finite() {
            return Err(Invalid::new(field, "must be a number of US dollars"));
        }
        if dollars < 0.0 {
            return Err(Invalid::new(field, "cannot be negative"));
        }
        if dollars > Usd::MAX.dollars() {
            return Err(too_large(field));
        }
        Usd::checked(field, (dollars * MICROS_PER_USD as f64).round() as i64)
    }

    fn checked(field: &str, micros: i64) -> Result<Usd, Invalid> {
        if micros > Usd::MAX.0 { Err(too_large(field)) } else { Ok(Usd(micros)) }
    }

    pub fn times(self, factor: i64) -> Usd {
        Usd(self.0.saturating_mul(factor))
    }

    /// This amount as a percentage of `whole`, or None for a zero whole.
    pub fn percent_of(self, whole: Usd) -> Option<f64> {
        (whole.0 > 0).then(|| self.0 as f64 * 100.0 / whole.0 as f64)
    }

    /// `$1,234.56`, with more decimals only where the amount has them
    /// (`$2.4975`), so a price shows exactly as it was set.
    pub fn label(self) -> String {
        let whole = self.0 / MICROS_PER_USD;
        let mut fraction = format!("{:06}", self.0 % MICROS_PER_USD);
        while fraction.len() > 2 && fraction.ends_with('0') {
            fraction.pop();
        }
        let digits = whole.to_string();
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        format!("${grouped}.{fraction}")
    }

    /// `$26,847.31`: rounded to the nearest cent (half up), for amounts
    /// that add up over time (spend, forecasts, totals), where the ledger's
    /// micro-dollars are noise. Prices keep [`Usd::label`].
    pub fn cents_label(self) -> String {
        let cent = MICROS_PER_USD / 100;
        Usd(self.0.saturating_add(cent / 2) / cent * cent).label()
    }
}

/// An amount as it arrives, checked only once the caller is known to be
/// allowed to set it: text typed into a form, or a JSON number of dollars.
#[derive(Clone, Debug, PartialEq)]
pub enum Amount {
    Typed(String),
    Dollars(f64),
}

impl Amount {
    pub fn parse(&self, field: &str) -> Result<Usd, Invalid> {
        match self {
            Amount::Typed(text) => Usd::parse(field, text),
            Amount::Dollars(dollars) => Usd::from_dollars(field, *dollars),
        }
    }
}

fn too_large(field: &str) -> Invalid {
    Invalid::new(field, format!("at most {}", Usd::MAX.label()))
}

impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

impl Serialize for Usd {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.dollars())
    }
}

impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Usd, D::Error> {
        let dollars = f64::deserialize(deserializer)?;
        Usd::from_dollars("amount", dollars).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// The price of one GPU-hour of a model on one capacity type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GpuPrice {
    /// As the node's `nvidia.com/gpu.product` label says it.
    pub model: String,
    /// `on-demand` or `spot`.
    pub capacity_type: CapacityType,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub usd_per_gpu_hour: Usd,
    #[serde(default)]
    pub updated_at: i64,
}

/// The price list, and for those who manage it, the fleet's GPUs by model
/// and capacity type, so a missing price stands out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PriceList {
    pub prices: Vec<GpuPrice>,
    /// Empty unless the caller may manage prices.
    pub fleet: Vec<GpuCount>,
    pub can_manage: bool,
}

/// Checks a price's model and capacity type as typed.
pub fn price_key(model: &str, capacity_type: &str) -> Result<(String, CapacityType), Invalid> {
    let model = model.trim();
    if model.is_empty() || model.len() > 128 || model.chars().any(|c| c.is_control() || c == '/') {
        return Err(Invalid::new("model", "must be 1 to 128 characters, without '/', as the node label says it"));
    }
    match CapacityType::from_label(capacity_type.trim()) {
        Some(capacity @ (CapacityType::OnDemand | CapacityType::Spot)) => Ok((model.to_string(), capacity)),
        _ => Err(Invalid::new("capacity_type", "must be on-demand or spot")),
    }
}

/// One line of a price list as CSV: a price for a model and capacity type,
/// for every cluster (`cluster` None) or one cluster's own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PriceLine {
    pub cluster: Option<String>,
    pub model: String,
    pub capacity_type: CapacityType,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub usd_per_gpu_hour: Usd,
}

/// One point of a price's history: it applies from `effective_from` until
/// the next point of the same price.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PriceChange {
    /// None: the global price; else that cluster's own.
    pub cluster: Option<String>,
    pub model: String,
    pub capacity_type: CapacityType,
    /// None: the price was removed from this time on.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub usd_per_gpu_hour: Option<Usd>,
    pub effective_from: i64,
}

/// The header of a price list CSV; an import must start with it.
pub const PRICE_CSV_HEADER: &str = "cluster,model,capacity_type,usd_per_gpu_hour";
/// The most lines an import takes.
pub const MAX_PRICE_LINES: usize = 10_000;

/// Reads a price list CSV, all of it or nothing: the first problem is named
/// by line and column (`line 3, column 4 (usd_per_gpu_hour): cannot be
/// negative`). Fields may be quoted; a model or cluster has no comma.
pub fn parse_price_csv(text: &str) -> Result<Vec<PriceLine>, Invalid> {
    let fail = |line: usize, column: usize, message: String| match PRICE_CSV_HEADER.split(',').nth(column - 1) {
        Some(name) => Invalid::new("csv", format!("line {line}, column {column} ({name}): {message}")),
        None => Invalid::new("csv", format!("line {line}, column {column}: {message}")),
    };
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let header = lines.by_ref().find(|(_, l)| !l.trim().is_empty());
    match header {
        Some((_, h)) if h.split(',').map(|f| f.trim().trim_matches('"')).eq(PRICE_CSV_HEADER.split(',')) => {}
        Some((n, _)) => {
            return Err(Invalid::new("csv", format!("line {n}: the first line must be the header {PRICE_CSV_HEADER}")));
        }
        None => return Err(Invalid::new("csv", format!("is empty; it needs the header {PRICE_CSV_HEADER}"))),
    }
    let mut out: Vec<PriceLine> = Vec::new();
    let mut seen: BTreeMap<(Option<String>, String, CapacityType), usize> = BTreeMap::new();
    for (n, line) in lines.filter(|(_, l)| !l.trim().is_empty()) {
        if out.len() == MAX_PRICE_LINES {
            return Err(Invalid::new("csv", format!("has more than {MAX_PRICE_LINES} prices")));
        }
        let fields: Vec<&str> = line.split(',').map(|f| f.trim().trim_matches('"').trim()).collect();
        if fields.len() > 4 {
            return Err(fail(n, 5, "one field too many (write prices without a thousands separator)".into()));
        }
        if fields.len() < 4 {
            return Err(fail(n, fields.len() + 1, "is missing".into()));
        }
        let cluster = (!fields[0].is_empty()).then(|| fields[0].to_string());
        if let Some(c) = &cluster
            && (c.len() > 64 || c.chars().any(|ch| ch.is_control() || ch == '/'))
        {
            return Err(fail(n, 1, "is not a cluster name".into()));
        }
        let (model, capacity_type) = price_key(fields[1], fields[2]).map_err(|e| {
            let column = if e.field == "model" { 2 } else { 3 };
            fail(n, column, e.message)
        })?;
        let usd = Usd::parse("usd_per_gpu_hour", fields[3]).map_err(|e| fail(n, 4, e.message))?;
        if usd > Usd::MAX_GPU_HOUR {
            return Err(fail(n, 4, format!("at most {}", Usd::MAX_GPU_HOUR)));
        }
        if let Some(first) = seen.insert((cluster.clone(), model.clone(), capacity_type), n) {
            return Err(fail(n, 2, format!("the same price as line {first}")));
        }
        out.push(PriceLine { cluster, model, capacity_type, usd_per_gpu_hour: usd });
    }
    Ok(out)
}

/// A price list as CSV, with the header [`parse_price_csv`] reads back.
pub fn price_csv(lines: &[PriceLine]) -> String {
    let mut out = format!("{PRICE_CSV_HEADER}\n");
    for line in lines {
        let price = line.usd_per_gpu_hour.label().trim_start_matches('$').replace(',', "");
        out.push_str(&format!(
            "{},{},{},{price}\n",
            line.cluster.as_deref().unwrap_or(""),
            line.model,
            line.capacity_type.label()
        ));
    }
    out
}

/// A number of GPUs of one model on one capacity type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GpuCount {
    pub model: String,
    pub capacity_type: CapacityType,
    pub gpus: i64,
}

/// One line of a cost rate: a model and capacity type, its GPUs, and their
/// hourly cost, or no price.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CostLine {
    pub model: String,
    pub capacity_type: CapacityType,
    pub gpus: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub usd_per_gpu_hour: Option<Usd>,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub usd_per_hour: Usd,
}

/// What a set of GPUs costs per hour at the current prices.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CostRate {
    pub lines: Vec<CostLine>,
    pub gpus: i64,
    /// GPUs whose model and capacity type have no price: left out of the cost.
    pub unpriced_gpus: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub usd_per_hour: Usd,
    /// The hourly cost over an average month of 730 hours.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub usd_per_month: Usd,
}

/// The price that applies to GPUs of `model` on `capacity` (unknown capacity
/// is charged on-demand).
pub fn price_of(prices: &[GpuPrice], model: &str, capacity: CapacityType) -> Option<Usd> {
    let capacity = if capacity == CapacityType::Unknown { CapacityType::OnDemand } else { capacity };
    prices.iter().find(|p| p.model == model && p.capacity_type == capacity).map(|p| p.usd_per_gpu_hour)
}

/// The hourly and monthly cost of `uses` at `prices`, one line per model and
/// capacity type.
pub fn cost_rate(uses: &[GpuCount], prices: &[GpuPrice]) -> CostRate {
    let mut merged: BTreeMap<(String, CapacityType), i64> = BTreeMap::new();
    for u in uses.iter().filter(|u| u.gpus > 0) {
        *merged.entry((u.model.clone(), u.capacity_type)).or_default() += u.gpus;
    }
    let mut rate = CostRate::default();
    for ((model, capacity_type), gpus) in merged {
        let price = price_of(prices, &model, capacity_type);
        let cost = price.map(|p| p.times(gpus)).unwrap_or_default();
        rate.gpus += gpus;
        if price.is_none() {
            rate.unpriced_gpus += gpus;
        }
        rate.usd_per_hour = Usd(rate.usd_per_hour.0.saturating_add(cost.0));
        rate.lines.push(CostLine { model, capacity_type, gpus, usd_per_gpu_hour: price, usd_per_hour: cost });
    }
    rate.usd_per_month = rate.usd_per_hour.times(HOURS_PER_MONTH);
    rate
}

/// A team's monthly GPU budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamBudget {
    pub team_id: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub usd_per_month: Usd,
    #[serde(default)]
    pub updated_at: i64,
}

/// A team's budget next to what its GPUs cost now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BudgetView {
    pub team_id: i64,
    pub team: String,
    /// None when the team has no budget.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub budget_usd_per_month: Option<Usd>,
    /// The GPUs the team's pods hold now, in all its namespaces, at current prices.
    pub rate: CostRate,
    /// The monthly cost at the current rate as a percentage of the budget.
    pub percent_of_budget: Option<f64>,
    /// What the month has cost so far, from the ledger, and where it is heading.
    #[serde(default)]
    pub month: MonthSpend,
    /// The budget alerts this month fired, in the order they fired.
    #[serde(default)]
    pub alerts: Vec<FiredAlertView>,
    /// Where alerts are posted (host only: a chat webhook's URL is a secret),
    /// for those who may see it.
    #[serde(default)]
    pub webhook_host: Option<String>,
    /// Recent webhook deliveries that have not succeeded yet.
    #[serde(default)]
    pub failing_deliveries: Vec<DeliveryView>,
}

/// A calendar month (UTC) of a team's GPU spend.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MonthSpend {
    /// The month, as Unix milliseconds [start, end).
    pub start: i64,
    pub end: i64,
    /// Spend from the start of the month to now (GPU-hours held × their price).
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub spent: Usd,
    /// The cost rate now, per hour: the burn.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub burn_per_hour: Usd,
    /// Spent so far plus the rest of the month at the current burn.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub forecast: Usd,
    pub percent_spent: Option<f64>,
    pub percent_forecast: Option<f64>,
}

impl MonthSpend {
    pub fn new(month: (i64, i64), spent: Usd, burn_per_hour: Usd, forecast: Usd, budget: Option<Usd>) -> MonthSpend {
        MonthSpend {
            start: month.0,
            end: month.1,
            spent,
            burn_per_hour,
            forecast,
            percent_spent: budget.and_then(|b| spent.percent_of(b)),
            percent_forecast: budget.and_then(|b| forecast.percent_of(b)),
        }
    }
}

/// A budget alert as the team page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FiredAlertView {
    /// `actual` (the spend reached it) or `forecast` (the month is heading there).
    pub kind: String,
    pub percent: u8,
    pub fired_at: i64,
}

/// A webhook delivery that has not succeeded (yet).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryView {
    pub id: i64,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_at: i64,
    pub created_at: i64,
}

impl BudgetView {
    pub fn new(team_id: i64, team: String, budget: Option<Usd>, rate: CostRate) -> BudgetView {
        let percent_of_budget = budget.and_then(|b| rate.usd_per_month.percent_of(b));
        BudgetView {
            team_id,
            team,
            budget_usd_per_month: budget,
            rate,
            percent_of_budget,
            month: MonthSpend::default(),
            alerts: Vec::new(),
            webhook_host: None,
            failing_deliveries: Vec::new(),
        }
    }

    /// The current rate would spend more than the budget in a month.
    pub fn over_budget(&self) -> bool {
        self.budget_usd_per_month.is_some_and(|b| self.rate.usd_per_month > b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_as_people_type_them() {
        let ok = |text: &str| Usd::parse("price", text).map(Usd::micros);
        assert_eq!(ok("2.49"), Ok(2_490_000));
        assert_eq!(ok(" $2.49 "), Ok(2_490_000));
        assert_eq!(ok("1,500"), Ok(1_500_000_000));
        assert_eq!(ok(".5"), Ok(500_000));
        assert_eq!(ok("3."), Ok(3_000_000));
        assert_eq!(ok("0"), Ok(0));
        assert_eq!(ok("0.000001"), Ok(1));
        assert_eq!(ok("1000000000"), Ok(Usd::MAX.micros()));
        for bad in
            ["", "$", "-1", "abc", "1.2.3", "1e3", "0.0000001", "1000000000.01", "99999999999", "½", "1 000", "."]
        {
            assert!(Usd::parse("price", bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(Usd::parse("price", "-3").unwrap_err().message, "cannot be negative");
        assert_eq!(Usd::parse("budget", "x").unwrap_err().field, "budget");
    }

    #[test]
    fn dollars_from_json_are_checked_and_rounded() {
        assert_eq!(Usd::from_dollars("p", 2.49).map(Usd::micros), Ok(2_490_000));
        assert_eq!(Usd::from_dollars("p", 0.1 + 0.2).map(Usd::micros), Ok(300_000));
        for bad in [f64::NAN, f64::INFINITY, -0.01, 2e9] {
            assert!(Usd::from_dollars("p", bad).is_err(), "{bad}");
        }
        let back: Usd = serde_json::from_str("12.5").unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), "12.5");
        assert!(serde_json::from_str::<Usd>("-1").is_err());
    }

    #[test]
    fn labels_group_thousands_and_keep_set_decimals() {
        assert_eq!(Usd::from_micros(1_234_560_000).label(), "$1,234.56");
        assert_eq!(Usd::from_micros(2_497_500).label(), "$2.4975");
        assert_eq!(Usd::from_micros(0).label(), "$0.00");
        assert_eq!(Usd::from_micros(123_000_000_000).label(), "$123,000.00");
        assert_eq!(Usd::from_micros(1).label(), "$0.000001");
    }

    #[test]
    fn cents_labels_round_to_the_cent() {
        assert_eq!(Usd::from_micros(26_847_305_565).cents_label(), "$26,847.31");
        assert_eq!(Usd::from_micros(15_749).cents_label(), "$0.02");
        assert_eq!(Usd::from_micros(4_999).cents_label(), "$0.00");
        assert_eq!(Usd::from_micros(5_000).cents_label(), "$0.01");
        assert_eq!(Usd::from_micros(1_234_560_000).cents_label(), "$1,234.56");
        assert_eq!(Usd::MAX.cents_label(), "$1,000,000,000.00");
    }

    #[test]
    fn price_keys_name_the_field() {
        assert_eq!(price_key(" NVIDIA-H100 ", "spot"), Ok(("NVIDIA-H100".into(), CapacityType::Spot)));
        assert_eq!(price_key("x", "unknown").unwrap_err().field, "capacity_type");
        assert_eq!(price_key("", "spot").unwrap_err().field, "model");
        assert_eq!(price_key("a/b", "spot").unwrap_err().field, "model");
        assert!(price_key(&"m".repeat(129), "on-demand").is_err());
    }

    fn price(model: &str, capacity_type: CapacityType, dollars: f64) -> GpuPrice {
        GpuPrice {
            model: model.into(),
            capacity_type,
            usd_per_gpu_hour: Usd::from_dollars("p", dollars).unwrap(),
            updated_at: 0,
        }
    }

    fn count(model: &str, capacity_type: CapacityType, gpus: i64) -> GpuCount {
        GpuCount { model: model.into(), capacity_type, gpus }
    }

    #[test]
    fn cost_rate_prices_each_model_and_capacity_and_reports_the_unpriced() {
        use CapacityType::*;
        let prices = [price("H100", OnDemand, 4.0), price("H100", Spot, 1.5), price("A100", OnDemand, 2.25)];
        let rate = cost_rate(
            &[
                count("H100", OnDemand, 8),
                count("H100", Spot, 2),
                count("H100", OnDemand, 8),
                count("A100", Unknown, 4),
                count("A100", Spot, 3),
                count("L4", OnDemand, 1),
                count("L4", OnDemand, 0),
            ],
            &prices,
        );
        // 16 × 4 + 2 × 1.5 + 4 × 2.25 (unknown capacity at on-demand) = 76 per hour.
        assert_eq!(rate.usd_per_hour, Usd::from_micros(76_000_000));
        assert_eq!(rate.usd_per_month, Usd::from_micros(76_000_000 * 730));
        assert_eq!((rate.gpus, rate.unpriced_gpus), (26, 4), "A100 spot and L4 have no price");
        let lines: Vec<(&str, CapacityType, i64, Option<Usd>)> =
            rate.lines.iter().map(|l| (l.model.as_str(), l.capacity_type, l.gpus, l.usd_per_gpu_hour)).collect();
        assert_eq!(
            lines,
            [
                ("A100", Spot, 3, None),
                ("A100", Unknown, 4, Some(Usd::from_micros(2_250_000))),
                ("H100", Spot, 2, Some(Usd::from_micros(1_500_000))),
                ("H100", OnDemand, 16, Some(Usd::from_micros(4_000_000))),
                ("L4", OnDemand, 1, None),
            ]
        );
        assert_eq!(cost_rate(&[], &prices), CostRate::default());
    }

    #[test]
    fn price_lists_round_trip_through_csv() {
        let text = "cluster,model,capacity_type,usd_per_gpu_hour\n,NVIDIA-H100,on-demand,4.00\n\"onprem\",NVIDIA-A100,spot,$1,2\n";
        let err = parse_price_csv(text).unwrap_err();
        assert_eq!(err.message, "line 3, column 5: one field too many (write prices without a thousands separator)");
        let text = "cluster,model,capacity_type,usd_per_gpu_hour\r\n,NVIDIA-H100,on-demand,4.00\r\nonprem,NVIDIA-A100,spot,1.2\r\n\n";
        let lines = parse_price_csv(text).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (lines[1].cluster.as_deref(), lines[1].usd_per_gpu_hour),
            (Some("onprem"), Usd::from_micros(1_200_000))
        );
        assert_eq!(parse_price_csv(&price_csv(&lines)).unwrap(), lines);
    }

    #[test]
    fn a_bad_price_csv_is_named_by_line_and_column() {
        let with = |line: &str| format!("{PRICE_CSV_HEADER}\n,L4,on-demand,0.8\n{line}\n");
        for (line, says) in [
            (",L4,spot,-1", "line 3, column 4 (usd_per_gpu_hour): cannot be negative"),
            (",L4,reserved,1", "line 3, column 3 (capacity_type): must be on-demand or spot"),
            (",,spot,1", "line 3, column 2 (model)"),
            (",L4,on-demand,1", "line 3, column 2 (model): the same price as line 2"),
            (",L4,spot", "line 3, column 4 (usd_per_gpu_hour): is missing"),
            (",L4,spot,cheap", "line 3, column 4 (usd_per_gpu_hour): must be an amount"),
            (",L4,spot,20000", "line 3, column 4 (usd_per_gpu_hour): at most"),
        ] {
            let error = parse_price_csv(&with(line)).unwrap_err();
            assert_eq!(error.field, "csv");
            assert!(error.message.starts_with(says), "{line:?}: {}", error.message);
        }
        assert!(parse_price_csv("").unwrap_err().message.contains("header"));
        assert!(parse_price_csv("model,price\nL4,1").unwrap_err().message.starts_with("line 1"));
    }

    #[test]
    fn budget_view_compares_the_month_at_the_current_rate() {
        let rate =
            cost_rate(&[count("H100", CapacityType::OnDemand, 1)], &[price("H100", CapacityType::OnDemand, 2.0)]);
        let view = BudgetView::new(1, "vision".into(), Some(Usd::from_micros(1_000_000_000)), rate.clone());
        // 2 × 730 = 1,460 a month against 1,000.
        assert_eq!(view.percent_of_budget, Some(146.0));
        assert!(view.over_budget());
        let unbudgeted = BudgetView::new(1, "vision".into(), None, rate);
        assert_eq!((unbudgeted.percent_of_budget, unbudgeted.over_budget()), (None, false));
    }
}
