//! Authentication at the HTTP edge: the middleware that turns a request's credentials into an
//! [`Identity`], the [`Caller`] extractor that every protected operation takes (and that puts
//! the bearer scheme in the document), and the account operations under `/api/auth` and `/api/me`.

use crate::Tag;
use crate::context::ApiContext;
use crate::error::{Answer, ApiError, codes};
use audiolab_app::accounts::{self, Identity, Issued, Origin};
use audiolab_domain::user::{Actor, Revocation, TokenKind, User};
use audiolab_domain::{TokenId, now};
use audiolab_store::Store;
use chrono::{DateTime, Utc};
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, Object, OpenApi};
use uuid::Uuid;

/// How requests are identified: by bearer token, or all as the local user.
#[derive(Debug, Clone)]
pub struct Gate {
    store: Store,
    enabled: bool,
}

impl Gate {
    pub fn new(store: Store, enabled: bool) -> Self {
        Self { store, enabled }
    }

    /// Who `req` comes from: `Authorization: Bearer <token>`, or on a socket upgrade the
    /// `access_token` query parameter (browsers cannot set headers on a WebSocket).
    async fn identify(&self, req: &Request) -> Identity {
        if !self.enabled {
            return Identity::User { actor: Actor::local(), token: None };
        }
        if req.headers().get_all(poem::http::header::AUTHORIZATION).iter().count() > 1 {
            return Identity::Ambiguous;
        }
        match bearer(req) {
            Some(secret) => Identity::of_secret(&self.store, &secret, &address(req), now()).await,
            None => Identity::Anonymous,
        }
    }
}

fn bearer(req: &Request) -> Option<String> {
    if let Some(header) = req.headers().get(poem::http::header::AUTHORIZATION) {
        let value = header.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned());
    }
    if !req.uri().path().starts_with("/ws/") {
        return None;
    }
    let query = req.uri().query()?;
    query.split('&').find_map(|pair| pair.strip_prefix("access_token=").map(str::to_owned))
}

/// Middleware: records the request's [`Identity`] for the handlers. It refuses nothing itself;
/// each operation decides whether it needs a caller, so public routes stay public.
pub async fn identify<E: Endpoint>(next: E, mut req: Request, gate: Gate) -> poem::Result<Response> {
    let identity = gate.identify(&req).await;
    req.extensions_mut().insert(identity);
    next.call(req).await.map(IntoResponse::into_response)
}

/// The error for a request that needs a user and has none (401), or whose credentials could
/// not be checked (503).
pub fn refusal(identity: Option<&Identity>) -> ApiError {
    match identity {
        Some(Identity::Rejected(reason)) => ApiError::unauthorized(*reason),
        Some(Identity::Ambiguous) => ApiError::bad_request("send one Authorization header, not several"),
        Some(Identity::Unavailable) => ApiError::unavailable("the database is unavailable; try again shortly"),
        _ => ApiError::unauthorized("sign in first: send Authorization: Bearer <token>"),
    }
}

/// The user an operation acts for. Taking it makes the operation require a token (when auth
/// is on) and declares the bearer scheme on it in the document.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    /// The token presented, if any (none with auth off).
    pub token: Option<TokenId>,
}

const SCHEME: &str = "bearer";

impl<'a> ApiExtractor<'a> for Caller {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some(
                    "A token from `POST /api/auth/register`, `POST /api/auth/login` or `POST /api/auth/tokens`, \
                     sent as `Authorization: Bearer <token>`. Not needed when the server runs with auth disabled.",
                ),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: Some("opaque"),
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SCHEME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut poem::RequestBody,
        _options: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        match req.extensions().get::<Identity>() {
            Some(Identity::User { actor, token }) => {
                Ok(Caller { actor: actor.clone(), token: token.map(|credential| credential.id) })
            }
            other => Err(poem::Error::from_response(refusal(other).into_response())),
        }
    }
}

pub struct AuthApi;

/// A user as others see them.
#[derive(Debug, Object)]
pub struct UserView {
    /// User id.
    pub id: Uuid,
    /// Login name (lowercase).
    pub username: String,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self { id: user.id.0, username: user.username.clone() }
    }
}

/// The signed-in user.
#[derive(Debug, Object)]
pub struct Me {
    /// User id.
    pub id: Uuid,
    /// Login name (lowercase).
    pub username: String,
    /// Whether the server requires tokens; `false` means everyone acts as the local user.
    pub auth_enabled: bool,
}

/// A username and password.
#[derive(Debug, Object)]
pub struct Credentials {
    /// 3–32 characters: letters, digits, `_`, `-`, `.`; case-insensitive.
    #[oai(validator(min_length = 3, max_length = 32, pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"))]
    pub username: crate::states::Text,
    /// 8–256 characters.
    #[oai(validator(min_length = 8, max_length = 256))]
    pub password: crate::states::Text,
}

/// A session: the user and a bearer token for them.
#[derive(Debug, Object)]
pub struct Session {
    /// The signed-in user.
    pub user: UserView,
    /// The bearer token; send it as `Authorization: Bearer <token>`. Shown only here.
    pub token: String,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
}

impl Session {
    fn new(user: &User, issued: Issued) -> Self {
        Self { user: user.into(), token: issued.secret, expires_at: issued.token.expires_at }
    }
}

#[derive(ApiResponse)]
pub enum Registered {
    /// The account was created and signed in.
    #[oai(status = 201)]
    Created(Json<Session>),
}

#[derive(ApiResponse)]
pub enum LoggedOut {
    /// The token presented is revoked.
    #[oai(status = 204)]
    Done,
}

/// A new personal API key.
#[derive(Debug, Object)]
pub struct NewApiKey {
    /// What the key is for ("laptop script").
    #[oai(validator(
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    ))]
    pub name: crate::states::Text,
    /// Lifetime in days, 1–3650; 90 when absent.
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "3650")))]
    pub expires_in_days: Option<i64>,
}

/// A personal API key (its secret is shown only when it is created).
#[derive(Debug, Object)]
pub struct ApiKeyView {
    /// Key id, for revoking it.
    pub id: Uuid,
    /// What the key is for.
    pub name: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// A personal API key just created, with its secret.
#[derive(Debug, Object)]
pub struct CreatedApiKey {
    /// Key id, for revoking it.
    pub id: Uuid,
    /// What the key is for.
    pub name: String,
    /// The bearer token. Shown only now: store it safely.
    pub token: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
pub enum KeyCreated {
    /// The key was created; its secret is in `token`.
    #[oai(status = 201)]
    Created(Json<CreatedApiKey>),
}

#[derive(ApiResponse)]
pub enum KeyRevoked {
    /// The key is revoked.
    #[oai(status = 204)]
    Done,
}

/// The client's address: the connection's peer. Forwarding headers are not trusted (anyone
/// can send them).
pub fn address(req: &Request) -> String {
    req.remote_addr().as_socket_addr().map_or_else(|| "unknown".into(), |a| a.ip().to_string())
}

fn origin(req: &Request) -> Origin {
    let user_agent = req.headers().get(poem::http::header::USER_AGENT).and_then(|v| v.to_str().ok());
    Origin { address: address(req), user_agent: user_agent.map(str::to_owned) }
}

/// One of the caller's login sessions.
#[derive(Debug, Object)]
pub struct SessionView {
    /// Session id, for ending it.
    pub id: Uuid,
    /// When the user signed in.
    pub created_at: DateTime<Utc>,
    /// When the session was last used (to the minute).
    #[oai(nullable)]
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// The address it was last used from.
    #[oai(nullable)]
    pub address: Option<String>,
    /// The browser or program that signed in.
    #[oai(nullable)]
    pub user_agent: Option<String>,
    /// Whether this request came with this session's token.
    pub current: bool,
}

/// A password change.
#[derive(Debug, Object)]
pub struct PasswordChange {
    /// The password now.
    #[oai(validator(min_length = 1, max_length = 256))]
    pub current: crate::states::Text,
    /// The new password, 8–256 characters.
    #[oai(validator(min_length = 8, max_length = 256))]
    pub new: crate::states::Text,
}

#[derive(ApiResponse)]
pub enum Ended {
    /// Done: the tokens are revoked and the sockets opened with them closed.
    #[oai(status = 204)]
    Done,
}

#[OpenApi(tag = "Tag::Accounts")]
impl AuthApi {
    /// Create an account
    ///
    /// Registers a user and signs them in: the answer carries a bearer token valid for 30 days.
    /// An address may register a limited number of accounts an hour (429 past it); when every
    /// password-hashing slot is busy the answer is 503 with `Retry-After`.
    #[oai(path = "/api/auth/register", method = "post", operation_id = "register")]
    async fn register(
        &self,
        ctx: poem::web::Data<&ApiContext>,
        req: &Request,
        body: Json<Credentials>,
    ) -> Answer<Registered, { codes::ANY | codes::BODY | codes::CONFLICT | codes::TOO_MANY }> {
        let (user, issued) =
            accounts::register(&ctx.store, &ctx.limits, &body.username, &body.password, &origin(req), now()).await?;
        tracing::info!(user_id = %user.id, username = %user.username, "account created");
        Ok(Registered::Created(Json(Session::new(&user, issued))))
    }

    /// Sign in
    ///
    /// Exchanges a username and password for a bearer token valid for 30 days. After 5 failed
    /// attempts for one username from one address, or 20 from one address, in 15 minutes, that
    /// address gets 429 until the window passes; an address with no failures is never refused.
    /// When every password-hashing slot is busy the answer is 503 with `Retry-After`.
    #[oai(path = "/api/auth/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        ctx: poem::web::Data<&ApiContext>,
        req: &Request,
        body: Json<Credentials>,
    ) -> Answer<Json<Session>, { codes::ANY | codes::BODY | codes::UNAUTHORIZED | codes::TOO_MANY }> {
        let (user, issued) =
            accounts::login(&ctx.store, &ctx.limits, &body.username, &body.password, &origin(req), now()).await?;
        Ok(Json(Session::new(&user, issued)))
    }

    /// Sign out
    ///
    /// Revokes the token this request presents; sockets opened with it close.
    #[oai(path = "/api/auth/logout", method = "post", operation_id = "logout")]
    async fn logout(&self, ctx: poem::web::Data<&ApiContext>, caller: Caller) -> Answer<LoggedOut, { codes::SIGNED }> {
        if let Some(token) = caller.token {
            ctx.store.delete_token(caller.actor.id, token).await?;
            revoke(
                &ctx,
                Revocation::Tokens { user: caller.actor.id, tokens: vec![token], reason: "signed out".into() },
            )
            .await;
        }
        Ok(LoggedOut::Done)
    }

    /// List login sessions
    ///
    /// The caller's signed-in sessions (not API keys), newest first: when each began, when and
    /// from where it was last used, and by what client.
    #[oai(path = "/api/auth/sessions", method = "get", operation_id = "list_sessions")]
    async fn sessions(
        &self,
        ctx: poem::web::Data<&ApiContext>,
        caller: Caller,
    ) -> Answer<Json<Vec<SessionView>>, { codes::SIGNED }> {
        let mut sessions = ctx.store.list_tokens(caller.actor.id, TokenKind::Session).await?;
        sessions.reverse();
        let now = now();
        Ok(Json(
            sessions
                .into_iter()
                .filter(|t| t.is_live(now))
                .map(|t| SessionView {
                    id: t.id.0,
                    current: caller.token == Some(t.id),
                    created_at: t.created_at,
                    last_used_at: t.last_used_at,
                    expires_at: t.expires_at,
                    address: t.address,
                    user_agent: t.user_agent,
                })
                .collect(),
        ))
    }

    /// End a login session
    ///
    /// Revokes one of the caller's sessions (a lost laptop's, say): its token stops working and
    /// the sockets opened with it close at once.
    #[oai(path = "/api/auth/sessions/:id", method = "delete", operation_id = "end_session")]
    async fn end_session(
        &self,
        ctx: poem::web::Data<&ApiContext>,
        caller: Caller,
        /// Session id.
        id: Path<Uuid>,
    ) -> Answer<Ended, { codes::READ }> {
        let token = id.0.into();
        if !ctx.store.delete_token_of_kind(caller.actor.id, token, TokenKind::Session).await? {
            return Err(ApiError::not_found("session").into());
        }
        let reason = "this session was ended";
        revoke(&ctx, Revocation::Tokens { user: caller.actor.id, tokens: vec![token], reason: reason.into() }).await;
        Ok(Ended::Done)
    }

    /// Sign out everywhere
    ///
    /// Revokes every login session of the caller, this one included (API keys stay: revoke
    /// those by id); every socket opened with them closes.
    #[oai(path = "/api/auth/logout-all", method = "post", operation_id = "logout_all")]
    async fn logout_all(&self, ctx: poem::web::Data<&ApiContext>, caller: Caller) -> Answer<Ended, { codes::SIGNED }> {
        let tokens = ctx.store.delete_tokens_of_kind(caller.actor.id, TokenKind::Session).await?;
        let reason = "signed out everywhere";
        revoke(&ctx, Revocation::Tokens { user: caller.actor.id, tokens, reason: reason.into() }).await;
        Ok(Ended::Done)
    }

    /// Change the password
    ///
    /// Checks the current password (403 when wrong; 429 after five wrong tries), stores the new
    /// one, and revokes every other token of the caller — sessions and API keys — closing their
    /// sockets and detaching their client devices. The token of this request stays.
    #[oai(path = "/api/auth/password", method = "post", operation_id = "change_password")]
    async fn change_password(
        &self,
        ctx: poem::web::Data<&ApiContext>,
        caller: Caller,
        body: Json<PasswordChange>,
    ) -> Answer<Ended, { codes::SIGNED | codes::BODY | codes::FORBIDDEN | codes::TOO_MANY }> {
        accounts::change_password(&ctx.store, &ctx.limits, caller.actor.id, &body.current, &body.new, caller.token)
            .await?;
        let reason = "the password was changed";
        revoke(&ctx, Revocation::AllTokens { user: caller.actor.id, except: caller.token, reason: reason.into() })
            .await;
        Ok(Ended::Done)
    }

    /// The signed-in user
    #[oai(path = "/api/me", method = "get", operation_id = "me")]
    async fn me(&self, ctx: poem::web::Data<&ApiContext>, caller: Caller) -> Answer<Json<Me>, { codes::SIGNED }> {
        Ok(Json(Me { id: caller.actor.id.0, username: caller.actor.username, auth_enabled: ctx.auth_enabled }))
    }

    /// Create a personal API key
    ///
    /// For scripts and SDKs: a bearer token that lives `expires_in_days` (90 by default) and is
    /// revoked by deleting it. Its secret is in this answer only.
    #[oai(path = "/api/auth/tokens", method = "post", operation_id = "create_api_key")]
    async fn create_key(
        &self,
        ctx: poem::web::Data<&ApiContext>,
        caller: Caller,
        req: &Request,
        body: Json<NewApiKey>,
    ) -> Answer<KeyCreated, { codes::SIGNED | codes::BODY }> {
        let name = audiolab_domain::error::validate_name("name", &body.name, 100)?;
        let days = body.expires_in_days.unwrap_or(accounts::KEY_DEFAULT_DAYS);
        let issued =
            accounts::issue(&ctx.store, caller.actor.id, TokenKind::ApiKey, &name, days, &origin(req), now()).await?;
        let token = issued.token;
        Ok(KeyCreated::Created(Json(CreatedApiKey {
            id: token.id.0,
            name: token.name,
            token: issued.secret,
            created_at: token.created_at,
            expires_at: token.expires_at,
        })))
    }

    /// List personal API keys
    #[oai(path = "/api/auth/tokens", method = "get", operation_id = "list_api_keys")]
    async fn list_keys(
        &self,
        ctx: poem::web::Data<&ApiContext>,
        caller: Caller,
    ) -> Answer<Json<Vec<ApiKeyView>>, { codes::SIGNED }> {
        let keys = ctx.store.list_tokens(caller.actor.id, TokenKind::ApiKey).await?;
        Ok(Json(
            keys.into_iter()
                .map(|k| ApiKeyView { id: k.id.0, name: k.name, created_at: k.created_at, expires_at: k.expires_at })
                .collect(),
        ))
    }

    /// Revoke a personal API key
    ///
    /// The key stops working and the sockets opened with it close at once.
    #[oai(path = "/api/auth/tokens/:id", method = "delete", operation_id = "revoke_api_key")]
    async fn revoke_key(
        &self,
        ctx: poem::web::Data<&ApiContext>,
        caller: Caller,
        /// Key id.
        id: Path<Uuid>,
    ) -> Answer<KeyRevoked, { codes::READ }> {
        if !ctx.store.delete_token_of_kind(caller.actor.id, id.0.into(), TokenKind::ApiKey).await? {
            return Err(ApiError::not_found("API key").into());
        }
        let reason = "the API key was deleted";
        revoke(&ctx, Revocation::Tokens { user: caller.actor.id, tokens: vec![id.0.into()], reason: reason.into() })
            .await;
        Ok(KeyRevoked::Done)
    }
}

/// Tells every process that tokens were revoked, so the sockets opened with them close now.
async fn revoke(ctx: &ApiContext, revocation: Revocation) {
    if !matches!(&revocation, Revocation::Tokens { tokens, .. } if tokens.is_empty()) {
        ctx.courier.revoke(revocation).await;
    }
}
