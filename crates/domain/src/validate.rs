//! Input that has been checked once, at the edge, and is trusted afterwards.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &str, message: impl Into<String>) -> Invalid {
        Invalid { field: field.to_string(), message: message.into() }
    }
}

macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

text_newtype!(
    /// 1 to 64 characters: lower-case ASCII letters, digits, '.', '_' and
    /// '-', starting with a letter or digit. Plain ASCII so two accounts can
    /// never look alike.
    Username
);

impl Username {
    pub fn parse(input: &str) -> Result<Username, Invalid> {
        let field = "username";
        if input.is_empty() {
            return Err(Invalid::new(field, "is required"));
        }
        if input.len() > 64 {
            return Err(Invalid::new(field, "must be at most 64 characters"));
        }
        if !input.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')) {
            return Err(Invalid::new(field, "may only contain a-z, 0-9, '.', '_' and '-'"));
        }
        if !input.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(Invalid::new(field, "must start with a letter or digit"));
        }
        Ok(Username(input.to_string()))
    }
}

/// A new password: 12 characters to 1 KiB. Not `Serialize`, not `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    pub const MIN_CHARS: usize = 12;
    pub const MAX_BYTES: usize = 1024;

    pub fn parse(input: &str) -> Result<Password, Invalid> {
        let field = "password";
        if input.len() > Self::MAX_BYTES {
            return Err(Invalid::new(field, "must be at most 1024 bytes"));
        }
        if input.chars().count() < Self::MIN_CHARS {
            return Err(Invalid::new(field, format!("must be at least {} characters", Self::MIN_CHARS)));
        }
        Ok(Password(input.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

text_newtype!(
    /// A Kubernetes object name that is also a valid Service name: an RFC
    /// 1035 label (a-z, 0-9 and '-', starting with a letter, ending with a
    /// letter or digit, at most 63 characters).
    ObjectName
);

impl ObjectName {
    pub fn parse(input: &str) -> Result<ObjectName, Invalid> {
        check_dns_label(input, "name", true).map(|()| ObjectName(input.to_string()))
    }
}

text_newtype!(
    /// A namespace or team name: an RFC 1123 label.
    LabelName
);

impl LabelName {
    pub fn parse(field: &str, input: &str) -> Result<LabelName, Invalid> {
        check_dns_label(input, field, false).map(|()| LabelName(input.to_string()))
    }
}

fn check_dns_label(input: &str, field: &str, must_start_with_letter: bool) -> Result<(), Invalid> {
    if input.is_empty() {
        return Err(Invalid::new(field, "is required"));
    }
    if input.len() > 63 {
        return Err(Invalid::new(field, "must be at most 63 characters"));
    }
    let bytes = input.as_bytes();
    if !bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-') {
        return Err(Invalid::new(field, "may only contain lower-case letters, digits and '-' (RFC 1123)"));
    }
    if must_start_with_letter && !bytes[0].is_ascii_lowercase() {
        return Err(Invalid::new(field, "must start with a lower-case letter"));
    }
    if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return Err(Invalid::new(field, "must start and end with a letter or digit"));
    }
    Ok(())
}

text_newtype!(
    /// The name of a Kubernetes object Gantry reads or acts on (a pod, node,
    /// deployment or job): an RFC 1123 subdomain, as the apiserver requires.
    /// Checked before any call, because names travel inside API paths: a
    /// name with `?`, `/` or `..` would change what the path asks for.
    KubeName
);

impl KubeName {
    pub fn parse(field: &str, input: &str) -> Result<KubeName, Invalid> {
        if input.is_empty() {
            return Err(Invalid::new(field, "is required"));
        }
        if input.len() > 253 {
            return Err(Invalid::new(field, "must be at most 253 characters"));
        }
        for label in input.split('.') {
            check_dns_label(label, field, false).map_err(|_| {
                Invalid::new(
                    field,
                    "must be a Kubernetes name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit (RFC 1123)",
                )
            })?;
        }
        Ok(KubeName(input.to_string()))
    }
}

/// Where to send a browser after sign-in: only a path on this site. Anything
/// else (another origin, a scheme, `//host`, a backslash, whitespace or a
/// control character that a browser would drop to make `//host`) becomes `/`.
/// The server's redirect and the page's own navigation both ask this.
pub fn redirect_target(next: &str) -> &str {
    let safe = next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= 2048
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        && !next.split(['?', '#']).next().unwrap_or_default().split('/').any(|segment| segment == "..");
    if safe { next } else { "/" }
}

text_newtype!(
    /// A container image reference, e.g. `registry.example.com/team/model:1.2`.
    Image
);

impl Image {
    pub fn parse(input: &str) -> Result<Image, Invalid> {
        let field = "image";
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(Invalid::new(field, "is required"));
        }
        if trimmed.len() > 512 {
            return Err(Invalid::new(field, "must be at most 512 characters"));
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Invalid::new(field, "must not contain spaces"));
        }
        if !trimmed.bytes().all(|b| b.is_ascii_alphanumeric() || b"./:_-@+".contains(&b)) {
            return Err(Invalid::new(field, "has characters an image reference cannot have"));
        }
        Ok(Image(trimmed.to_string()))
    }
}

/// Replicas between 0 and a configurable cap.
pub fn replicas(input: i64, cap: i32) -> Result<i32, Invalid> {
    if input < 0 {
        return Err(Invalid::new("replicas", "must not be negative"));
    }
    if input > i64::from(cap) {
        return Err(Invalid::new("replicas", format!("must be at most {cap}")));
    }
    Ok(input as i32)
}

/// A non-negative whole number of GPUs, at most 64 per pod.
pub fn gpus(input: &str) -> Result<u32, Invalid> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Ok(0);
    }
    match trimmed.parse::<i64>() {
        Ok(n) if n < 0 => Err(Invalid::new("gpus", "must not be negative")),
        Ok(n) if n > 64 => Err(Invalid::new("gpus", "must be at most 64 per pod")),
        Ok(n) => Ok(n as u32),
        Err(_) => Err(Invalid::new("gpus", "must be a whole number")),
    }
}

/// A CPU or memory quantity for a form field; empty means "not set".
pub fn optional_quantity(field: &str, input: &str) -> Result<Option<String>, Invalid> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    match crate::quantity::Quantity::parse(trimmed) {
        Ok(q) if q.milli() > 0 => Ok(Some(trimmed.to_string())),
        Ok(_) => Err(Invalid::new(field, "must be positive")),
        Err(_) => Err(Invalid::new(field, "is not a quantity such as 500m, 2 or 16Gi")),
    }
}

/// An environment variable: a literal value, or a reference to a key of an
/// existing Secret (Gantry never sees the secret's value).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EnvVar {
    Value { name: String, value: String },
    Secret { name: String, secret: String, key: String },
}

impl EnvVar {
    pub fn name(&self) -> &str {
        match self {
            EnvVar::Value { name, .. } | EnvVar::Secret { name, .. } => name,
        }
    }
}

/// Parses env lines of the form `NAME=value` or `NAME=secret:SECRET/KEY`.
pub fn env_lines(input: &str) -> Result<Vec<EnvVar>, Invalid> {
    let mut vars = Vec::new();
    for (number, raw) in input.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |message: &str| Invalid::new("env", format!("line {}: {message}", number + 1));
        let (name, value) = line.split_once('=').ok_or_else(|| fail("expected NAME=value"))?;
        let name = name.trim();
        let valid_name = !name.is_empty()
            && !name.as_bytes()[0].is_ascii_digit()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid_name {
            return Err(fail("the name must be letters, digits, '_', '-' or '.', not starting with a digit"));
        }
        if vars.iter().any(|v: &EnvVar| v.name() == name) {
            return Err(fail("the name is set twice"));
        }
        if let Some(reference) = value.strip_prefix("secret:") {
            let (secret, key) =
                reference.split_once('/').ok_or_else(|| fail("a secret reference is secret:NAME/KEY"))?;
            check_dns_label(secret, "env", false).map_err(|_| fail("the secret name is not a valid name"))?;
            if key.is_empty() {
                return Err(fail("the secret key is empty"));
            }
            vars.push(EnvVar::Secret { name: name.to_string(), secret: secret.to_string(), key: key.to_string() });
        } else {
            vars.push(EnvVar::Value { name: name.to_string(), value: value.to_string() });
        }
    }
    Ok(vars)
}

/// A model version or label value: at most 63 characters of letters, digits,
/// '-', '_' and '.', starting and ending alphanumeric (a Kubernetes label value).
pub fn label_value(field: &str, input: &str) -> Result<String, Invalid> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let bytes = trimmed.as_bytes();
    let ok = trimmed.len() <= 63
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(trimmed.to_string())
    } else {
        Err(Invalid::new(field, "must be a label value: up to 63 letters, digits, '-', '_' or '.'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["alice", "a", "bob.smith", "ci-bot_2", "0day"] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Alice",
            "al ice",
            "ålice",
            "аlice",
            "-bob",
            ".x",
            "a'; DROP TABLE users;--",
            "<b>x</b>",
            &"a".repeat(65),
        ] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("exactly12chr").is_ok());
        assert!(Password::parse("ünïcödé-pässwörd").is_ok());
        assert!(Password::parse(&"x".repeat(1024)).is_ok());
        assert!(Password::parse(&"x".repeat(1025)).is_err());
        assert_eq!(format!("{:?}", Password::parse("exactly12chr").unwrap()), "Password(***)");
    }

    #[test]
    fn object_names_are_rfc1035_labels() {
        for ok in ["llama", "llama-3-8b", "a", &"a".repeat(63)] {
            assert!(ObjectName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Llama", "3llama", "llama-", "-llama", "llama_3", "llama.3", &"a".repeat(64), "llama 3"] {
            assert!(ObjectName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn images() {
        assert_eq!(Image::parse("  ghcr.io/acme/llm:1.2 ").unwrap().as_str(), "ghcr.io/acme/llm:1.2");
        assert!(Image::parse("repo/img@sha256:abc").is_ok());
        for bad in ["", "   ", "a b", "img;rm", "img\nx", &"a".repeat(513)] {
            assert!(Image::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn replicas_and_gpus() {
        assert_eq!(replicas(3, 100), Ok(3));
        assert!(replicas(-1, 100).is_err());
        assert!(replicas(101, 100).is_err());
        assert_eq!(gpus("2"), Ok(2));
        assert_eq!(gpus(""), Ok(0));
        assert!(gpus("-1").is_err());
        assert!(gpus("1.5").is_err());
        assert!(gpus("two").is_err());
        assert!(gpus("65").is_err());
    }

    #[test]
    fn env_lines_parse_values_and_secret_references() {
        let vars = env_lines("A=1\n# comment\n\nTOKEN=secret:hf-token/token\nEMPTY=\n").unwrap();
        assert_eq!(
            vars,
            vec![
                EnvVar::Value { name: "A".into(), value: "1".into() },
                EnvVar::Secret { name: "TOKEN".into(), secret: "hf-token".into(), key: "token".into() },
                EnvVar::Value { name: "EMPTY".into(), value: "".into() },
            ]
        );
        assert!(env_lines("NOEQUALS").unwrap_err().message.contains("line 1"));
        assert!(env_lines("1A=x").is_err());
        assert!(env_lines("A=1\nA=2").unwrap_err().message.contains("twice"));
        assert!(env_lines("T=secret:Bad_Name/k").is_err());
        assert!(env_lines("T=secret:ok").is_err());
    }

    #[test]
    fn quantities_and_label_values() {
        assert_eq!(optional_quantity("cpu", ""), Ok(None));
        assert_eq!(optional_quantity("cpu", "500m"), Ok(Some("500m".into())));
        assert!(optional_quantity("cpu", "0").is_err());
        assert!(optional_quantity("memory", "lots").is_err());
        assert_eq!(label_value("model_version", "v1.2"), Ok("v1.2".into()));
        assert!(label_value("model_version", "v1 2").is_err());
        assert!(label_value("model_version", "-v").is_err());
    }

    #[test]
    fn kubernetes_names_are_subdomains_and_nothing_that_changes_a_path() {
        for ok in ["llm", "llm-7f9c-abc12", "a.b.c", "0", "node-1.example.internal", &"a".repeat(63)] {
            assert!(KubeName::parse("name", ok).is_ok(), "{ok:?}");
        }
        let long = format!("{}.{}.{}.{}", "a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(63));
        for bad in [
            "",
            "?",
            "x?y=",
            "pod?x=",
            "pod/log?tailLines=1&x=",
            "?watch=true&x=",
            "a/b",
            "a%2Fb",
            "..",
            "a..b",
            ".a",
            "a.",
            "-a",
            "A",
            "a b",
            "a\u{7}",
            "a\u{7f}",
            "a\n",
            "caf\u{e9}",
            "\u{ff0f}",
            &long,
            &"a".repeat(300),
        ] {
            let error = KubeName::parse("pod", bad).expect_err(bad);
            assert_eq!(error.field, "pod");
        }
    }

    #[test]
    fn sign_in_only_redirects_to_paths_on_this_site() {
        for ok in ["/", "/workloads", "/pods?q=llm&page=2", "/clusters/prod/nodes/n-1#pods", "/a/b/"] {
            assert_eq!(redirect_target(ok), ok);
        }
        for bad in [
            "",
            "workloads",
            "//evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example",
            "http:/evil.example",
            "javascript:alert(1)",
            "/\u{7f}",
            "/caf\u{e9}",
            "/../x",
        ] {
            assert_eq!(redirect_target(bad), "/", "{bad:?}");
        }
        // Percent-encoded CR/LF stay encoded in a Location header: harmless.
        assert_eq!(redirect_target("/a/%0d%0aSet-Cookie:x"), "/a/%0d%0aSet-Cookie:x");
        assert_eq!(redirect_target(&format!("/{}", "a".repeat(3000))), "/");
    }
}
