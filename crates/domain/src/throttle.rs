//! Login throttling rules: a few free failures, then growing delays, then a
//! temporary lockout. Counted separately per account and per source address.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleRules {
    /// Failures allowed before delays start.
    pub free_failures: i64,
    pub base_delay_ms: i64,
    pub max_delay_ms: i64,
    /// Failures (within the window) that lock the key out.
    pub lockout_after: i64,
    pub lockout_ms: i64,
    /// Failures older than this are forgotten.
    pub window_ms: i64,
}

impl ThrottleRules {
    pub const PER_ACCOUNT: ThrottleRules = ThrottleRules {
        free_failures: 3,
        base_delay_ms: 500,
        max_delay_ms: 8_000,
        lockout_after: 10,
        lockout_ms: 15 * 60 * 1000,
        window_ms: 15 * 60 * 1000,
    };

    /// An address may be shared (NAT, an office), so it gets more room.
    pub const PER_ADDRESS: ThrottleRules = ThrottleRules {
        free_failures: 10,
        base_delay_ms: 250,
        max_delay_ms: 4_000,
        lockout_after: 50,
        lockout_ms: 15 * 60 * 1000,
        window_ms: 15 * 60 * 1000,
    };
}

/// What the counters said before this attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Counters {
    pub failures: i64,
    pub last_failure: i64,
    pub locked_until: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Wait this long before checking the password.
    Delay(i64),
    /// Refuse without checking the password until this time.
    Locked(i64),
}

impl ThrottleRules {
    fn live(&self, counters: Counters, now: i64) -> Counters {
        if now - counters.last_failure > self.window_ms && counters.locked_until.is_none_or(|t| t <= now) {
            Counters::default()
        } else {
            counters
        }
    }

    pub fn gate(&self, counters: Counters, now: i64) -> Gate {
        let c = self.live(counters, now);
        if let Some(until) = c.locked_until.filter(|t| *t > now) {
            return Gate::Locked(until);
        }
        let over = c.failures - self.free_failures + 1;
        if over <= 0 {
            return Gate::Open;
        }
        let delay = self.base_delay_ms.saturating_mul(1i64 << (over - 1).min(20));
        Gate::Delay(delay.min(self.max_delay_ms))
    }

    /// Counters after one more failure, and whether it started a lockout.
    pub fn fail(&self, counters: Counters, now: i64) -> (Counters, bool) {
        let mut c = self.live(counters, now);
        if c.locked_until.is_some_and(|t| t <= now) {
            c = Counters::default();
        }
        c.failures += 1;
        c.last_failure = now;
        let newly_locked = c.locked_until.is_none() && c.failures >= self.lockout_after;
        if newly_locked {
            c.locked_until = Some(now + self.lockout_ms);
        }
        (c, newly_locked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_lock() {
        let rules = ThrottleRules::PER_ACCOUNT;
        let mut c = Counters::default();
        let mut gates = Vec::new();
        let mut locked_at = None;
        for i in 0..12 {
            gates.push(rules.gate(c, 1_000 + i));
            let (next, newly_locked) = rules.fail(c, 1_000 + i);
            if newly_locked {
                locked_at = Some(i);
            }
            c = next;
        }
        assert_eq!(&gates[..4], &[Gate::Open, Gate::Open, Gate::Open, Gate::Delay(500)]);
        assert_eq!(gates[4], Gate::Delay(1_000));
        assert_eq!(gates[7], Gate::Delay(8_000), "capped");
        assert_eq!(locked_at, Some(9), "the tenth failure locks");
        assert!(matches!(gates[10], Gate::Locked(_)));
        assert!(matches!(rules.gate(c, 1_000 + rules.lockout_ms - 1), Gate::Locked(_)));
        assert_eq!(rules.gate(c, 1_100 + rules.lockout_ms), Gate::Open, "lockout expires");
    }

    #[test]
    fn old_failures_are_forgotten() {
        let rules = ThrottleRules::PER_ACCOUNT;
        let c = Counters { failures: 8, last_failure: 0, locked_until: None };
        assert!(matches!(rules.gate(c, 1), Gate::Delay(_)));
        assert_eq!(rules.gate(c, rules.window_ms + 1), Gate::Open);
        let (after, _) = rules.fail(c, rules.window_ms + 1);
        assert_eq!(after.failures, 1);
    }

    #[test]
    fn a_lockout_is_reported_once() {
        let rules = ThrottleRules { lockout_after: 2, ..ThrottleRules::PER_ACCOUNT };
        let (c, first) = rules.fail(Counters::default(), 0);
        let (c, second) = rules.fail(c, 1);
        let (_, third) = rules.fail(c, 2);
        assert_eq!((first, second, third), (false, true, false));
    }
}
