//! Reason codes: the `error` field of every refusal, as types.
//!
//! Each API declares its own enum with [`reasons!`](crate::reasons): the codes its handlers give,
//! plus [`Edge`] (the codes this crate's edge gives before any handler runs: an unknown route, a
//! slow body, a body too large) and `Unrecognized` (a code this build does not know, from a newer
//! peer). Server and client share the one enum: the server writes `reason.as_str()`, the client
//! reads it back with `from_code`, and a test per API checks that every code round trips.

use axum::http::StatusCode;

/// The reasons the HTTP edge gives, from a refusal's status, when no handler gave one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Edge {
    /// 400.
    BadRequest,
    /// 401, 403.
    Forbidden,
    /// 404: no such route, or a path that does not parse.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 408: the body did not arrive in time.
    Timeout,
    /// 409.
    Conflict,
    /// 413.
    TooLarge,
    /// 415.
    UnsupportedMediaType,
    /// 422.
    Unprocessable,
    /// 429.
    TooManyRequests,
    /// 503.
    Unavailable,
    /// Another 5xx.
    Internal,
    /// Another 4xx.
    Refused,
}

impl Edge {
    /// Every edge reason.
    pub const ALL: &'static [Edge] = &[
        Edge::BadRequest,
        Edge::Forbidden,
        Edge::NotFound,
        Edge::MethodNotAllowed,
        Edge::Timeout,
        Edge::Conflict,
        Edge::TooLarge,
        Edge::UnsupportedMediaType,
        Edge::Unprocessable,
        Edge::TooManyRequests,
        Edge::Unavailable,
        Edge::Internal,
        Edge::Refused,
    ];

    /// The code on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Edge::BadRequest => "bad_request",
            Edge::Forbidden => "forbidden",
            Edge::NotFound => "not_found",
            Edge::MethodNotAllowed => "method_not_allowed",
            Edge::Timeout => "timeout",
            Edge::Conflict => "conflict",
            Edge::TooLarge => "too_large",
            Edge::UnsupportedMediaType => "unsupported_media_type",
            Edge::Unprocessable => "unprocessable",
            Edge::TooManyRequests => "too_many_requests",
            Edge::Unavailable => "unavailable",
            Edge::Internal => "internal",
            Edge::Refused => "refused",
        }
    }

    /// The edge reason a code names.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|e| e.as_str() == code)
    }

    /// The reason a refusal gets when its route gave none, from its status.
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::BAD_REQUEST => Edge::BadRequest,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Edge::Forbidden,
            StatusCode::NOT_FOUND => Edge::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Edge::MethodNotAllowed,
            StatusCode::REQUEST_TIMEOUT => Edge::Timeout,
            StatusCode::CONFLICT => Edge::Conflict,
            StatusCode::PAYLOAD_TOO_LARGE => Edge::TooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Edge::UnsupportedMediaType,
            StatusCode::UNPROCESSABLE_ENTITY => Edge::Unprocessable,
            StatusCode::TOO_MANY_REQUESTS => Edge::TooManyRequests,
            StatusCode::SERVICE_UNAVAILABLE => Edge::Unavailable,
            s if s.is_server_error() => Edge::Internal,
            _ => Edge::Refused,
        }
    }
}

impl std::fmt::Display for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares an API's reason enum: the codes its handlers give (`Variant = "code",`), plus
/// `Edge(keel_http::Edge)` and `Unrecognized`, with `as_str`, `from_code`, `ALL` (the handlers'
/// codes), `Display`, comparison with `&str`, and serde as the code string.
#[macro_export]
macro_rules! reasons {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A refusal the HTTP edge made before any handler ran ([`keel_http::Edge`]).
            Edge($crate::Edge),
            /// A code this build does not know (a newer peer's); the message says more.
            Unrecognized,
        }

        impl $name {
            /// Every code this API's handlers give.
            $vis const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The code on the wire.
            $vis fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $code,)*
                    $name::Edge(e) => e.as_str(),
                    $name::Unrecognized => "unrecognized",
                }
            }

            /// The reason a code names: a handler's first, then the edge's.
            $vis fn from_code(code: &str) -> Option<Self> {
                match code {
                    $($code => Some($name::$variant),)*
                    _ => $crate::Edge::from_code(code).map($name::Edge),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::cmp::PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl ::std::cmp::PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl $crate::__serde::Serialize for $name {
            fn serialize<S: $crate::__serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::__serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let code = <::std::string::String as $crate::__serde::Deserialize>::deserialize(d)?;
                Ok(Self::from_code(&code).unwrap_or($name::Unrecognized))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::reasons! {
        /// A test API's reasons.
        enum Sample {
            /// One.
            Stale = "stale_nonce",
            /// Two, shadowing an edge code: the handler's wins.
            TooLarge = "too_large",
        }
    }

    #[test]
    fn every_code_round_trips_and_unknown_codes_are_unrecognized() {
        for e in Edge::ALL {
            assert_eq!(Edge::from_code(e.as_str()), Some(*e));
        }
        for r in Sample::ALL {
            assert_eq!(Sample::from_code(r.as_str()), Some(*r));
        }
        assert_eq!(Sample::from_code("too_large"), Some(Sample::TooLarge));
        assert_eq!(
            Sample::from_code("not_found"),
            Some(Sample::Edge(Edge::NotFound))
        );
        let json = serde_json::to_string(&Sample::Stale).unwrap();
        assert_eq!(json, r#""stale_nonce""#);
        assert_eq!(
            serde_json::from_str::<Sample>(r#""stale_nonce""#).unwrap(),
            Sample::Stale
        );
        assert_eq!(
            serde_json::from_str::<Sample>(r#""from_the_future""#).unwrap(),
            Sample::Unrecognized
        );
        assert!(Sample::Stale == "stale_nonce");
        assert_eq!(
            Edge::for_status(StatusCode::GATEWAY_TIMEOUT),
            Edge::Internal
        );
        assert_eq!(Edge::for_status(StatusCode::GONE), Edge::Refused);
    }
}
