//! Bearer-token authorization with scopes. Tokens are JWTs: HS256 with a shared secret, or
//! RS256 checked against the issuer's public key, so that a service can verify a token but
//! never mint one. The command side asks for [`WRITE_SCOPE`], the query side for
//! [`READ_SCOPE`], each in the token's space-separated `scope` claim (RFC 8693). Off by default
//! (`auth.enabled`), for the local quick start.

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
/// HS256 keys shorter than the hash (256 bits) weaken it (RFC 7518, section 3.2).
const MIN_HS256_SECRET_BYTES: usize = 32;

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
    /// When not empty, tokens must name this issuer in `iss`.
    pub issuer: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("auth.hs256_secret must be at least {MIN_HS256_SECRET_BYTES} bytes for HS256")]
    SecretTooShort,
    #[error("auth.rs256_public_key is not an RSA public key in PEM: {0}")]
    PublicKey(jsonwebtoken::errors::Error),
}

/// The claims this API reads and writes.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub aud: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub iss: String,
    pub exp: u64,
    pub iat: u64,
    #[serde(default)]
    pub scope: String,
}

impl Claims {
    fn grants(&self, scope: &str) -> bool {
        self.scope
            .split_ascii_whitespace()
            .any(|held| held == scope)
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
        let key = match settings.algorithm {
            TokenAlgorithm::HS256 => {
                let secret = settings.hs256_secret.expose_secret();
                if secret.len() < MIN_HS256_SECRET_BYTES {
                    return Err(AuthConfigError::SecretTooShort);
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
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        if !settings.issuer.is_empty() {
            validation.set_issuer(&[&settings.issuer]);
        }
        Ok(Self {
            verifier: Some((key, validation)),
        })
    }

    /// Checks the request's bearer token and that it grants `scope`; who made the request.
    pub fn authorize(
        &self,
        request: &HttpRequest,
        scope: &'static str,
    ) -> Result<Principal, AuthError> {
        let Some((key, validation)) = &self.verifier else {
            return Ok(Principal::Anonymous);
        };
        let token = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(AuthError::MissingToken)?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, validation)
            .map_err(|error| AuthError::InvalidToken(error.to_string()))?
            .claims;
        if claims.grants(scope) {
            Ok(Principal::Subject(claims.sub))
        } else {
            Err(AuthError::InsufficientScope { required: scope })
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("a bearer token is required (Authorization: Bearer <token>)")]
    MissingToken,
    #[error("the bearer token is not valid: {0}")]
    InvalidToken(String),
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
    scope: PhantomData<S>,
}

impl<S: Scope> Granted<S> {
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

/// Who made a request: the subject of its token, or nobody in particular while auth is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    Subject(String),
}

impl Principal {
    /// The name what a client owns is filed under (its idempotency keys): empty for
    /// [`Principal::Anonymous`], which exists only while auth is off, when every client is one.
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
        ready(granted.map(|principal| Self {
            principal,
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
    pub fn hs256(secret: &str, audience: &str) -> Self {
        Self {
            key: EncodingKey::from_secret(secret.as_bytes()),
            algorithm: Algorithm::HS256,
            audience: audience.to_owned(),
            issuer: String::new(),
        }
    }

    pub fn rs256(
        private_key_pem: &str,
        audience: &str,
    ) -> Result<Self, jsonwebtoken::errors::Error> {
        Ok(Self {
            key: EncodingKey::from_rsa_pem(private_key_pem.as_bytes())?,
            algorithm: Algorithm::RS256,
            audience: audience.to_owned(),
            issuer: String::new(),
        })
    }

    pub fn with_issuer(mut self, issuer: &str) -> Self {
        issuer.clone_into(&mut self.issuer);
        self
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
        let claims = Claims {
            sub: subject.to_owned(),
            aud: self.audience.clone(),
            iss: self.issuer.clone(),
            iat: issued_at,
            exp: expires_at,
            scope: scopes.join(" "),
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.key)
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    const SECRET: &str = "unit-test-secret-of-thirty-two-by";

    fn settings(issuer: &str) -> AuthSettings {
        AuthSettings {
            enabled: true,
            algorithm: TokenAlgorithm::HS256,
            hs256_secret: SECRET.into(),
            rs256_public_key: String::new(),
            audience: "orders-api".to_owned(),
            issuer: issuer.to_owned(),
        }
    }

    fn check(settings: &AuthSettings, token: &str) -> Result<Principal, AuthError> {
        let request = TestRequest::default()
            .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
            .to_http_request();
        Authenticator::from_settings(settings)
            .unwrap()
            .authorize(&request, READ_SCOPE)
    }

    fn token(issuer: &str) -> String {
        TokenIssuer::hs256(SECRET, "orders-api")
            .with_issuer(issuer)
            .issue("someone", &[READ_SCOPE], Duration::from_secs(60))
            .unwrap()
    }

    #[test]
    fn a_configured_issuer_must_match() {
        let settings = settings("https://id.example.com");

        assert_eq!(
            check(&settings, &token("https://id.example.com")).unwrap(),
            Principal::Subject("someone".to_owned())
        );
        assert!(matches!(
            check(&settings, &token("https://elsewhere.example.com")),
            Err(AuthError::InvalidToken(_))
        ));
    }

    #[test]
    fn without_a_configured_issuer_any_is_accepted() {
        assert!(check(&settings(""), &token("https://anyone.example.com")).is_ok());
    }

    #[test]
    fn a_scope_must_be_a_whole_word_of_the_claim() {
        let token = TokenIssuer::hs256(SECRET, "orders-api")
            .issue("someone", &["orders:readonly"], Duration::from_secs(60))
            .unwrap();

        assert!(matches!(
            check(&settings(""), &token),
            Err(AuthError::InsufficientScope { .. })
        ));
    }

    #[test]
    fn disabled_auth_lets_a_request_without_a_token_through() {
        let mut settings = settings("");
        settings.enabled = false;
        let request = TestRequest::default().to_http_request();

        assert_eq!(
            Authenticator::from_settings(&settings)
                .unwrap()
                .authorize(&request, WRITE_SCOPE)
                .unwrap(),
            Principal::Anonymous
        );
    }
}
