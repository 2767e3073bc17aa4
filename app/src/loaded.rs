//! How a page's data travels from the server's render into the browser.
//!
//! A resource's value is written into the page as JSON and read back when
//! the page hydrates; the same values also come back from server functions,
//! which server_fn reads with `serde_json::from_slice`. Leptos's own
//! resource codec reads with `from_str`, and serde_json's reader is a type
//! parameter of every `Deserialize` it drives: two readers made two copies
//! of every value type's deserializer in the wasm (serde_json's
//! `deserialize_struct`, its largest generic, 435 KB before wasm-opt, 222 KB
//! with one reader). Reading resources from bytes too keeps one copy.

use leptos::prelude::*;
use leptos::server::codee::{Decoder, Encoder};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// JSON, read the way server functions read it.
pub struct Json;

impl<T: Serialize> Encoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(value: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(value)
    }
}

impl<T: DeserializeOwned> Decoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(text: &str) -> Result<T, serde_json::Error> {
        serde_json::from_slice(text.as_bytes())
    }
}

/// A page's data: loaded by the server for its render, carried into the
/// page, refetched in the browser when `source` changes.
pub type Loaded<T> = Resource<Result<T, AppError>, Json>;

/// A resource that travels as [`Json`]; used instead of `Resource::new`.
#[track_caller]
pub fn load<T, S, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Resource<T, Json>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    S: PartialEq + Clone + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_go_through_and_back() {
        let value: Result<Vec<u32>, String> = Ok(vec![1, 2]);
        let text = <Json as Encoder<_>>::encode(&value).unwrap();
        let back: Result<Vec<u32>, String> = <Json as Decoder<_>>::decode(&text).unwrap();
        assert_eq!(back, value);
        assert!(<Json as Decoder<Vec<u32>>>::decode("[1,").is_err());
    }
}
