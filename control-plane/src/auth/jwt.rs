//! Session tokens: HS256 JWTs with expiry, a unique id (for signout) and the user's token
//! version (for "sign out everywhere" on a password change).

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
    form_validation: Validation,
    ttl: Duration,
}

impl TokenKeys {
    /// Keys from the `JWT_SECRET` setting and the token lifetime.
    pub fn new(secret: &SecretString, ttl: Duration) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        // Only HS256; `exp` is required and checked with a small leeway for clock skew.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = 5;
        validation.validate_exp = true;
        let mut form_validation = Validation::new(Algorithm::HS256);
        form_validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        form_validation.set_audience(&[FORM_AUDIENCE]);
        form_validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
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

    /// A new token for `user_id` under `token_version`.
    pub fn issue(&self, user_id: Uuid, token_version: i32) -> anyhow::Result<String> {
        let now = Utc::now().timestamp();
        let ttl = i64::try_from(self.ttl.as_secs())?;
        let claims = Claims {
            sub: user_id,
            jti: Uuid::new_v4(),
            iat: now,
            exp: now + ttl,
            ver: token_version,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
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
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => Some(data.claims),
            Err(err) => {
                tracing::debug!(reason = ?err.kind(), "session token refused");
                None
            }
        }
    }
}
