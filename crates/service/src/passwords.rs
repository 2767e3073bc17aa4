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

/// Hashes on a blocking thread so the async runtime keeps serving.
pub async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
    })
    .await
    .map_err(ServiceError::internal)?
    .map_err(ServiceError::internal)
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
    tokio::task::spawn_blocking(move || {
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
    })
    .await
    .map_err(ServiceError::internal)
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

    #[test]
    fn random_passwords_are_long_enough() {
        let p = random_password();
        assert_eq!(p.len(), 20);
        assert!(gantry_domain::validate::Password::parse(&p).is_ok());
        assert_ne!(p, random_password());
    }
}
