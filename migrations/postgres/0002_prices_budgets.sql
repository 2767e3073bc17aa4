-- GPU prices (per GPU-hour, per model and capacity type) and team budgets
-- (per month). Amounts are whole micro-dollars (USD).
CREATE TABLE gpu_prices (
    model              TEXT   NOT NULL,
    capacity_type      TEXT   NOT NULL CHECK (capacity_type IN ('on-demand', 'spot')),
    micro_usd_per_hour BIGINT NOT NULL CHECK (micro_usd_per_hour >= 0),
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (model, capacity_type)
);

CREATE TABLE team_budgets (
    team_id             BIGINT PRIMARY KEY REFERENCES teams (id) ON DELETE CASCADE,
    micro_usd_per_month BIGINT NOT NULL CHECK (micro_usd_per_month >= 0),
    updated_at          BIGINT NOT NULL
);
