//! Bearer-token authorization with scopes. Tokens are JWTs: HS256 with a shared secret, or
//! RS256 checked against the issuer's public key, so that a service can verify a token but
//! never mint one. The command side asks for [`WRITE_SCOPE`], the query side for
//! [`READ_SCOPE`], each in the token's space-separated `scope` claim (RFC 8693). Checked as
//! RFC 7519 says: `exp`, `nbf`, `iss` and `aud` (a string or an array), within a leeway of
//! `auth.leeway_seconds`; `iat` is optional. Off by default (`auth.enabled`), for the local
//! quick start.

use std::future::{ready, Ready};
use std::marker::PhantomData;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::errors::ErrorAnswer;

pub const WRITE_SCOPE: &str = "orders:write";
pub const READ_SCOPE: &str = "orders:read";
/// With [`READ_SCOPE`], reads see every principal's orders and customers, not only the
/// caller's own: for operators.
pub const READ_ALL_SCOPE: &str = "orders:read-all";
/// HS256 keys shorter than the hash (256 bits) weaken it (RFC 7518, section 3.2).
const MIN_HS256_SECRET_BYTES: usize = 32;
/// A clock skew past this is a clock to fix, not one to tolerate.
const MAX_LEEWAY_SECONDS: u64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TokenAlgorithm {
    HS256,
    RS256,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub enabled: bool,
    pub algorithm: TokenAlgorithm,
    /// The shared secret, for HS256.
    pub hs256_secret: SecretString,
    /// The issuer's public key as PEM, for RS256.
    pub rs256_public_key: String,
    /// Tokens must name this audience in `aud`.
    pub audience: String,
    /// Tokens must name this issuer in `iss`; required when auth is enabled.
    pub issuer: String,
    /// How far `exp` and `nbf` may be off the service's clock.
    pub leeway_seconds: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("invalid value for auth.hs256_secret: {0}")]
    WeakSecret(String),
    #[error("auth.issuer must name the issuer (iss) of the tokens when auth.enabled is true")]
    NoIssuer,
    #[error("auth.audience must name this API (aud) when auth.enabled is true")]
    NoAudience,
    #[error("invalid value for auth.leeway_seconds: must be at most {MAX_LEEWAY_SECONDS}")]
    LeewayTooLong,
    #[error("auth.rs256_public_key is not an RSA public key in PEM: {0}")]
    PublicKey(jsonwebtoken::errors::Error),
}

/// The claims this API signs (for tests and `issue-token`).
#[derive(Debug, Serialize)]
struct IssuedClaims<'a> {
    sub: &'a str,
    aud: &'a str,
    iss: &'a str,
    iat: u64,
    exp: u64,
    scope: String,
}

/// What a verified token tells beyond the checks [`Validation`] makes.
#[derive(Debug, Deserialize)]
struct GrantedClaims {
    sub: String,
    #[serde(default)]
    scope: Scopes,
}

/// The scopes a token holds: its `scope` claim, space-separated (RFC 8693); none while auth
/// is off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Scopes(String);

impl Scopes {
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.split_ascii_whitespace()
    }

    pub fn holds(&self, scope: &str) -> bool {
        self.iter().any(|held| held == scope)
    }
}

/// Verifies tokens as configured; disabled, it lets every request through.
#[derive(Clone)]
pub struct Authenticator {
    verifier: Option<(DecodingKey, Validation)>,
}

impl Authenticator {
    pub fn from_settings(settings: &AuthSettings) -> Result<Self, AuthConfigError> {
        if !settings.enabled {
            return Ok(Self { verifier: None });
        }
        if settings.issuer.is_empty() {
            return Err(AuthConfigError::NoIssuer);
        }
        if settings.audience.is_empty() {
            return Err(AuthConfigError::NoAudience);
        }
        if settings.leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(AuthConfigError::LeewayTooLong);
        }
        let key = match settings.algorithm {
            TokenAlgorithm::HS256 => {
                let secret = settings.hs256_secret.expose_secret();
                if let Some(weakness) = crate::secrets::weakness(secret, MIN_HS256_SECRET_BYTES) {
                    return Err(AuthConfigError::WeakSecret(weakness));
                }
                DecodingKey::from_secret(secret.as_bytes())
            }
            TokenAlgorithm::RS256 => {
                DecodingKey::from_rsa_pem(settings.rs256_public_key.as_bytes())
                    .map_err(AuthConfigError::PublicKey)?
            }
        };
        let mut validation = Validation::new(match settings.algorithm {
            TokenAlgorithm::HS256 => Algorithm::HS256,
            TokenAlgorithm::RS256 => Algorithm::RS256,
        });
        validation.set_audience(&[&settings.audience]);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = settings.leeway_seconds;
        Ok(Self {
            verifier: Some((key, validation)),
        })
    }

    /// Checks the request's bearer token and that it grants `scope`; who made the request, and
    /// every scope its token holds.
    pub fn authorize(
        &self,
        request: &HttpRequest,
        scope: &'static str,
    ) -> Result<(Principal, Scopes), AuthError> {
        let Some((key, validation)) = &self.verifier else {
            return Ok((Principal::Anonymous, Scopes::default()));
        };
        let token = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(AuthError::MissingToken)?;
        let claims = jsonwebtoken::decode::<GrantedClaims>(token, key, validation)
            .map_err(AuthError::InvalidToken)?
            .claims;
        if claims.scope.holds(scope) {
            Ok((Principal::Subject(claims.sub), claims.scope))
        } else {
            Err(AuthError::InsufficientScope { required: scope })
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("a bearer token is required (Authorization: Bearer <token>)")]
    MissingToken,
    /// Why is logged, never answered: it would guide whoever forges tokens.
    #[error("the bearer token is not valid")]
    InvalidToken(jsonwebtoken::errors::Error),
    #[error("the bearer token does not grant the {required} scope")]
    InsufficientScope { required: &'static str },
    #[error("authorization is not configured in this service")]
    NotConfigured,
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            Self::NotConfigured => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::InvalidToken(reason) = self {
            log::info!("refused a bearer token: {reason}");
        }
        let (code, challenge) = match self {
            Self::MissingToken => ("unauthorized", "Bearer realm=\"orders\"".to_owned()),
            Self::InvalidToken(_) => (
                "invalid_token",
                "Bearer realm=\"orders\", error=\"invalid_token\"".to_owned(),
            ),
            Self::InsufficientScope { required } => (
                "insufficient_scope",
                format!(
                    "Bearer realm=\"orders\", error=\"insufficient_scope\", scope=\"{required}\""
                ),
            ),
            Self::NotConfigured => {
                log::error!("{self}");
                return ErrorAnswer::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "an unexpected error occurred",
                )
                .finish();
            }
        };
        let answer = ErrorAnswer::to(self, self.status_code(), code)
            .header((header::WWW_AUTHENTICATE, challenge));
        match self {
            Self::InsufficientScope { required } => answer.detail("scope", required),
            _ => answer,
        }
        .finish()
    }
}

/// A scope an endpoint requires.
pub trait Scope {
    const NAME: &'static str;
}

pub struct Write;
impl Scope for Write {
    const NAME: &'static str = WRITE_SCOPE;
}

pub struct Read;
impl Scope for Read {
    const NAME: &'static str = READ_SCOPE;
}

/// An extractor that succeeds when the request may use scope `S`: a handler that takes it
/// cannot run for a caller without the scope.
pub struct Granted<S: Scope> {
    principal: Principal,
    scopes: Scopes,
    scope: PhantomData<S>,
}

impl<S: Scope> Granted<S> {
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// Whether the token also holds `scope`; never for [`Principal::Anonymous`].
    pub fn holds(&self, scope: &str) -> bool {
        self.scopes.holds(scope)
    }
}

/// Who made a request: the subject of its token, or nobody in particular while auth is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    Subject(String),
}

impl Principal {
    /// The name what a client owns is filed under (its orders, customers and idempotency
    /// keys): empty for [`Principal::Anonymous`], which exists only while auth is off, when
    /// every client is one.
    pub fn scope_name(&self) -> &str {
        match self {
            Self::Anonymous => "",
            Self::Subject(subject) => subject,
        }
    }
}

impl<S: Scope> FromRequest for Granted<S> {
    type Error = AuthError;
    type Future = Ready<Result<Self, AuthError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let granted = match request.app_data::<web::Data<Authenticator>>() {
            Some(authenticator) => authenticator.authorize(request, S::NAME),
            None => Err(AuthError::NotConfigured),
        };
        ready(granted.map(|(principal, scopes)| Self {
            principal,
            scopes,
            scope: PhantomData,
        }))
    }
}

/// Signs tokens: for tests, and for `issue-token` with a local HS256 secret.
pub struct TokenIssuer {
    key: EncodingKey,
    algorithm: Algorithm,
    audience: String,
    issuer: String,
}

impl TokenIssuer {
    pub fn hs256(secret: &str, audience: &str, issuer: &str) -> Self {
        Self {
            key: EncodingKey::from_secret(secret.as_bytes()),
            algorithm: Algorithm::HS256,
            audience: audience.to_owned(),
            issuer: issuer.to_owned(),
        }
    }

    pub fn rs256(
        private_key_pem: &str,
        audience: &str,
        issuer: &str,
    ) -> Result<Self, jsonwebtoken::errors::Error> {
        Ok(Self {
            key: EncodingKey::from_rsa_pem(private_key_pem.as_bytes())?,
            algorithm: Algorithm::RS256,
            audience: audience.to_owned(),
            issuer: issuer.to_owned(),
        })
    }

    /// A token for `subject` holding `scopes`, valid from now for `lifetime`.
    pub fn issue(
        &self,
        subject: &str,
        scopes: &[&str],
        lifetime: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        self.issue_at(subject, scopes, now, now + lifetime.as_secs())
    }

    /// A token valid between two Unix times, such as one that has already expired.
    pub fn issue_at(
        &self,
        subject: &str,
        scopes: &[&str],
        issued_at: u64,
        expires_at: u64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = IssuedClaims {
            sub: subject,
            aud: &self.audience,
            iss: &self.issuer,
            iat: issued_at,
            exp: expires_at,
            scope: scopes.join(" "),
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.key)
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;
    use actix_web::test::TestRequest;
    use serde_json::{json, Value};

    use super::*;

    const SECRET: &str = "4c9e1f7a2b8d3e6f0a5c9b1d7e2f8a4c";
    const ISSUER: &str = "https://id.example.com";

    fn settings() -> AuthSettings {
        AuthSettings {
            enabled: true,
            algorithm: TokenAlgorithm::HS256,
            hs256_secret: SECRET.into(),
            rs256_public_key: String::new(),
            audience: "orders-api".to_owned(),
            issuer: ISSUER.to_owned(),
            leeway_seconds: 5,
        }
    }

    fn check(settings: &AuthSettings, token: &str) -> Result<Principal, AuthError> {
        let request = TestRequest::default()
            .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
            .to_http_request();
        Authenticator::from_settings(settings)
            .unwrap()
            .authorize(&request, READ_SCOPE)
            .map(|(principal, _)| principal)
    }

    fn now() -> i64 {
        i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap()
    }

    /// A token with exactly these claims, which [`TokenIssuer`] would never write.
    fn signed(claims: &Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    /// Claims every check accepts; a test changes one.
    fn valid_claims() -> Value {
        json!({
            "sub": "someone",
            "aud": "orders-api",
            "iss": ISSUER,
            "exp": now() + 60,
            "scope": READ_SCOPE,
        })
    }

    fn with(key: &str, value: Value) -> Value {
        let mut claims = valid_claims();
        claims[key] = value;
        claims
    }

    fn without(key: &str) -> Value {
        let mut claims = valid_claims();
        claims.as_object_mut().unwrap().remove(key);
        claims
    }

    fn refused(claims: &Value) -> bool {
        matches!(
            check(&settings(), &signed(claims)),
            Err(AuthError::InvalidToken(_))
        )
    }

    #[test]
    fn the_subject_comes_with_every_scope_its_token_holds() {
        let request = TestRequest::default()
            .insert_header((
                header::AUTHORIZATION,
                format!(
                    "Bearer {}",
                    signed(&with("scope", json!("orders:read  orders:read-all")))
                ),
            ))
            .to_http_request();

        let (principal, scopes) = Authenticator::from_settings(&settings())
            .unwrap()
            .authorize(&request, READ_SCOPE)
            .unwrap();

        assert_eq!(principal, Principal::Subject("someone".to_owned()));
        assert_eq!(
            scopes.iter().collect::<Vec<_>>(),
            [READ_SCOPE, READ_ALL_SCOPE]
        );
    }

    #[test]
    fn a_token_without_iat_is_accepted() {
        assert_eq!(
            check(&settings(), &signed(&valid_claims())).unwrap(),
            Principal::Subject("someone".to_owned())
        );
    }

    #[test]
    fn the_issuer_is_required_and_must_match() {
        assert!(refused(&without("iss")));
        assert!(refused(&with(
            "iss",
            json!("https://elsewhere.example.com")
        )));
    }

    #[test]
    fn the_audience_may_be_a_string_or_an_array_naming_this_api() {
        assert!(!refused(&with("aud", json!(["billing", "orders-api"]))));
        assert!(refused(&with("aud", json!(["billing", "shipping"]))));
        assert!(refused(&without("aud")));
    }

    #[test]
    fn not_before_is_checked_within_the_leeway() {
        assert!(refused(&with("nbf", json!(now() + 30))));
        assert!(!refused(&with("nbf", json!(now() + 2))));
    }

    #[test]
    fn expiry_is_checked_within_the_leeway() {
        assert!(refused(&with("exp", json!(now() - 30))));
        assert!(!refused(&with("exp", json!(now() - 2))));
    }

    #[test]
    fn the_client_is_not_told_why_its_token_was_refused() {
        let error = check(&settings(), &signed(&with("nbf", json!(now() + 30)))).unwrap_err();
        let body = error.error_response().into_body().try_into_bytes().unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();

        assert_eq!(body["error"], "invalid_token");
        assert_eq!(body["message"], "the bearer token is not valid");
    }

    #[test]
    fn a_scope_must_be_a_whole_word_of_the_claim() {
        let token = TokenIssuer::hs256(SECRET, "orders-api", ISSUER)
            .issue("someone", &["orders:readonly"], Duration::from_secs(60))
            .unwrap();

        assert!(matches!(
            check(&settings(), &token),
            Err(AuthError::InsufficientScope { .. })
        ));
    }

    #[test]
    fn settings_without_an_issuer_or_with_a_placeholder_secret_are_refused() {
        let mut no_issuer = settings();
        no_issuer.issuer = String::new();
        let mut placeholder = settings();
        placeholder.hs256_secret = "compose-demo-secret-change-me-0123456789".into();

        assert!(matches!(
            Authenticator::from_settings(&no_issuer),
            Err(AuthConfigError::NoIssuer)
        ));
        let refusal = Authenticator::from_settings(&placeholder)
            .err()
            .unwrap()
            .to_string();
        assert!(
            refusal.starts_with("invalid value for auth.hs256_secret: is a placeholder"),
            "{refusal}"
        );
    }

    #[test]
    fn disabled_auth_lets_a_request_without_a_token_through() {
        let mut settings = settings();
        settings.enabled = false;
        settings.issuer = String::new();
        let request = TestRequest::default().to_http_request();

        assert_eq!(
            Authenticator::from_settings(&settings)
                .unwrap()
                .authorize(&request, WRITE_SCOPE)
                .unwrap(),
            (Principal::Anonymous, Scopes::default())
        );
    }
}
