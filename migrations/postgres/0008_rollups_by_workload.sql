-- One workload's rows, or a page of the costliest workloads, are read by
-- these: a page of the allocation report by workload sums only its hundred
-- workloads' rows (index lookups, not a scan of the whole window), and a
-- workload's history reads its own rows.
CREATE INDEX usage_hourly_workload ON usage_hourly (workload, hour_ms);
CREATE INDEX usage_daily_workload ON usage_daily (workload, day_ms);
