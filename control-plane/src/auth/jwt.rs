//! Session tokens: HS256 JWTs with expiry, a unique id (for signout) and the user's token
//! version (for "sign out everywhere" on a password change).
//!
//! Two audiences: API sessions (the API, and the console on its behalf) and the sessions of
//! the OAuth authorization pages, which only those pages accept: signing in there to connect
//! an agent must not hand the browser a key to the whole account.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Issuer and audience of session tokens, so a token minted for another purpose with the same
/// key is not a session.
const ISSUER: &str = "mcp-gateway/control-plane";
const AUDIENCE: &str = "mcp-gateway/api";
/// Audience of the authorization pages' sessions.
const PAGES_AUDIENCE: &str = "mcp-gateway/oauth-pages";

/// What a session token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: Uuid,
    /// Token id, recorded on signout.
    pub jti: Uuid,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// The user's token version when this token was issued.
    pub ver: i32,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
}

impl Claims {
    /// When the token stops being valid.
    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.exp, 0).unwrap_or_else(Utc::now)
    }
}

/// Audience of the anti-forgery tokens of the authorization pages' forms.
const FORM_AUDIENCE: &str = "mcp-gateway/oauth-form";
/// How long a page's form may be submitted.
const FORM_TTL_SECS: i64 = 30 * 60;

/// What a form token says: it was made by us, for this binding, recently.
#[derive(Debug, Serialize, Deserialize)]
struct FormClaims {
    sub: String,
    exp: i64,
    aud: String,
}

/// Signs and checks session tokens with one HS256 key.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pages_validation: Validation,
    form_validation: Validation,
    ttl: Duration,
}

impl TokenKeys {
    /// Keys from the `JWT_SECRET` setting and the token lifetime.
    pub fn new(secret: &SecretString, ttl: Duration) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut form_validation = Validation::new(Algorithm::HS256);
        form_validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        form_validation.set_audience(&[FORM_AUDIENCE]);
        form_validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation: session_validation(AUDIENCE),
            pages_validation: session_validation(PAGES_AUDIENCE),
            form_validation,
            ttl,
        }
    }

    /// An anti-forgery token for a form, bound to `binding` (the browser's random form cookie
    /// and the request the form continues): another site can neither read nor make one.
    pub fn form_token(&self, binding: &str) -> String {
        let claims = FormClaims {
            sub: binding.to_owned(),
            exp: Utc::now().timestamp() + FORM_TTL_SECS,
            aud: FORM_AUDIENCE.to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default()
    }

    /// Whether `token` is a current form token for `binding`.
    pub fn check_form_token(&self, token: &str, binding: &str) -> bool {
        jsonwebtoken::decode::<FormClaims>(token, &self.decoding, &self.form_validation)
            .is_ok_and(|data| data.claims.sub == binding)
    }

    /// Token lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new API session token for `user_id` under `token_version`.
    pub fn issue(&self, user_id: Uuid, token_version: i32) -> anyhow::Result<String> {
        self.mint(AUDIENCE, user_id, token_version, self.ttl)
    }

    /// A new authorization pages' session token, living `ttl` at most (never longer than an
    /// API session): the API and the console refuse it.
    pub fn issue_pages(
        &self,
        user_id: Uuid,
        token_version: i32,
        ttl: Duration,
    ) -> anyhow::Result<String> {
        self.mint(PAGES_AUDIENCE, user_id, token_version, ttl.min(self.ttl))
    }

    fn mint(
        &self,
        audience: &str,
        user_id: Uuid,
        token_version: i32,
        ttl: Duration,
    ) -> anyhow::Result<String> {
        let now = Utc::now().timestamp();
        let ttl = i64::try_from(ttl.as_secs())?;
        let claims = Claims {
            sub: user_id,
            jti: Uuid::new_v4(),
            iat: now,
            exp: now + ttl,
            ver: token_version,
            iss: ISSUER.to_owned(),
            aud: audience.to_owned(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// The claims of a well-formed, correctly signed, unexpired token; `None` otherwise. The
    /// reason is not returned: every failure is the same 401 to the client.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        self.decode(token, &self.validation)
    }

    /// [`Self::verify`] for a session of the authorization pages.
    pub fn verify_pages(&self, token: &str) -> Option<Claims> {
        self.decode(token, &self.pages_validation)
    }

    fn decode(&self, token: &str, validation: &Validation) -> Option<Claims> {
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, validation) {
            Ok(data) => Some(data.claims),
            Err(err) => {
                tracing::debug!(reason = ?err.kind(), "session token refused");
                None
            }
        }
    }
}

/// What a session token of `audience` must be: HS256, issued by us for `audience`, with every
/// claim; `exp` is checked with a small leeway for clock skew.
fn session_validation(audience: &str) -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[audience]);
    validation.leeway = 5;
    validation.validate_exp = true;
    validation
}
