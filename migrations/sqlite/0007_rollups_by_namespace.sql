-- A team member's usage questions read only their namespaces' rows: the
-- namespaces are joined first and each reads its own rows by this index,
-- instead of every row of the cluster in the span being read once per
-- namespace (or checked against the whole list).
CREATE INDEX usage_hourly_namespace ON usage_hourly (cluster, namespace, hour_ms);
CREATE INDEX usage_hourly_namespaces_namespace ON usage_hourly_namespaces (cluster, namespace, hour_ms);
CREATE INDEX usage_daily_namespace ON usage_daily (cluster, namespace, day_ms);
CREATE INDEX usage_daily_namespaces_namespace ON usage_daily_namespaces (cluster, namespace, day_ms);
