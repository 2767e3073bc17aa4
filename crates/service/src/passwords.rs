//! Password hashing with argon2id. Hashes are PHC strings, which carry their
//! own parameters, so the parameters can be raised later: a login with an
//! older hash re-hashes the password with the current ones.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{Result, ServiceError};

/// OWASP's minimum for argon2id: 19 MiB, 2 iterations, 1 lane.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const LANES: u32 = 1;

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes on a blocking thread so the async runtime keeps serving. Requests
/// go through [`HashLimit`]; this is for the command line and tests.
pub async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_now(&password)).await.map_err(ServiceError::internal)?
}

fn hash_now(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(ServiceError::internal)
}

/// A hash of nothing in particular, with the current parameters. Verifying
/// against it costs the same as a real check, so an unknown username takes
/// as long as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        hasher().hash_password(b"gantry-dummy-password", &salt).map(|h| h.to_string()).unwrap_or_default()
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Wrong,
    Right,
    /// Right, and the stored hash uses weaker parameters than today's.
    RightButRehash,
}

/// Checks a password against a stored hash, or against the dummy hash when
/// there is no user, on a blocking thread.
pub async fn verify(password: String, stored: Option<String>) -> Result<Verdict> {
    tokio::task::spawn_blocking(move || verify_now(&password, stored)).await.map_err(ServiceError::internal)
}

fn verify_now(password: &str, stored: Option<String>) -> Verdict {
    let known = stored.is_some();
    let phc = stored.unwrap_or_else(|| dummy_hash().to_string());
    let Ok(parsed) = PasswordHash::new(&phc) else { return Verdict::Wrong };
    let ok = hasher().verify_password(password.as_bytes(), &parsed).is_ok();
    if !(ok && known) {
        return Verdict::Wrong;
    }
    let current = |name: &str| parsed.params.get_decimal(name);
    let weaker = parsed.algorithm.as_str() != "argon2id"
        || current("m").is_none_or(|m| m < MEMORY_KIB)
        || current("t").is_none_or(|t| t < ITERATIONS)
        || current("p").is_none_or(|p| p < LANES);
    if weaker { Verdict::RightButRehash } else { Verdict::Right }
}

/// At most `concurrent` password hashes at a time, and at most `queue`
/// waiting for one; beyond that, 429. Each argon2 check holds 19 MiB and a
/// core for tens of milliseconds, so without a bound an anonymous client
/// could make the server hold hundreds of them.
pub struct HashLimit {
    permits: tokio::sync::Semaphore,
    waiting: std::sync::atomic::AtomicUsize,
    running: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
    queue: usize,
}

impl HashLimit {
    pub fn new(concurrent: usize, queue: usize) -> HashLimit {
        HashLimit {
            permits: tokio::sync::Semaphore::new(concurrent.max(1)),
            waiting: Default::default(),
            running: Default::default(),
            peak: Default::default(),
            queue,
        }
    }

    /// One hash at a time per core, and a queue of four per core.
    pub fn for_this_machine() -> HashLimit {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        HashLimit::new(cores, 4 * cores)
    }

    /// The most hashes that ever ran at once.
    pub fn peak(&self) -> usize {
        self.peak.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        use std::sync::atomic::Ordering;
        let permit = match self.permits.try_acquire() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(ServiceError::new(
                        crate::error::ErrorKind::TooManyRequests,
                        "the server is busy checking passwords; try again in a moment",
                    ));
                }
                let permit = self.permits.acquire().await;
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                permit.map_err(ServiceError::internal)?
            }
        };
        let now = self.running.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
        let result = tokio::task::spawn_blocking(work).await.map_err(ServiceError::internal);
        self.running.fetch_sub(1, Ordering::AcqRel);
        drop(permit);
        result
    }

    /// [`hash`], within the limit.
    pub async fn hash(&self, password: String) -> Result<String> {
        self.run(move || hash_now(&password)).await?
    }

    /// [`verify`], within the limit.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<Verdict> {
        self.run(move || verify_now(&password, stored)).await
    }
}

/// A random password for generated accounts: 20 characters from an
/// unambiguous alphabet (about 115 bits).
pub fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters() {
        let phc = hash("correct horse battery".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(verify("correct horse battery".into(), Some(phc.clone())).await.unwrap(), Verdict::Right);
        assert_eq!(verify("wrong".into(), Some(phc)).await.unwrap(), Verdict::Wrong);
        assert_eq!(verify("anything".into(), None).await.unwrap(), Verdict::Wrong);
        assert_eq!(verify("x".into(), Some("not a hash".into())).await.unwrap(), Verdict::Wrong);
    }

    #[tokio::test]
    async fn weaker_hashes_ask_to_be_redone() {
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8 * 1024, 1, 1, None).unwrap());
        let phc = weak.hash_password(b"old password 1", &SaltString::generate(&mut OsRng)).unwrap().to_string();
        assert_eq!(verify("old password 1".into(), Some(phc)).await.unwrap(), Verdict::RightButRehash);
    }

    #[tokio::test]
    async fn the_hash_limit_bounds_work_and_refuses_beyond_its_queue() {
        let limit = std::sync::Arc::new(HashLimit::new(1, 2));
        let phc = hash("correct horse battery".into()).await.unwrap();
        let tries = (0..12).map(|_| {
            let (limit, phc) = (limit.clone(), phc.clone());
            tokio::spawn(async move { limit.verify("wrong password!".into(), Some(phc)).await })
        });
        let results = futures::future::join_all(tries).await;
        let busy =
            results.iter().filter(|r| matches!(r, Ok(Err(e)) if e.kind == crate::ErrorKind::TooManyRequests)).count();
        let checked = results.iter().filter(|r| matches!(r, Ok(Ok(Verdict::Wrong)))).count();
        assert_eq!(busy + checked, 12);
        assert!(busy >= 9, "one running and two waiting, the rest refused: {busy} busy");
        assert_eq!(limit.peak(), 1, "never more than one hash at once");
    }

    #[test]
    fn random_passwords_are_long_enough() {
        let p = random_password();
        assert_eq!(p.len(), 20);
        assert!(gantry_domain::validate::Password::parse(&p).is_ok());
        assert_ne!(p, random_password());
    }
}
