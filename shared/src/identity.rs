//! The caller, as the API Gateway JWT authorizer describes it.
//!
//! The authorizer has already verified the token; functions only read its claims from
//! `requestContext.authorizer.jwt.claims`. API Gateway flattens every claim to a string,
//! so a list claim such as `cognito:groups` arrives as `"[admin support]"`.

use crate::ids::UserId;
use crate::problem::ApiError;
use lambda_http::request::RequestContext;

/// The group whose members may act on every user's resources.
pub const ADMIN_GROUP: &str = "admin";

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`: the user id everything the caller owns is keyed by.
    pub user_id: UserId,
    /// Whether `cognito:groups` contains `admin`.
    pub is_admin: bool,
}

impl Caller {
    /// True when the caller may act on resources owned by `owner`: themselves or an admin.
    pub fn may_act_for(&self, owner: &str) -> bool {
        self.is_admin || self.user_id.as_str() == owner
    }

    /// Fails with 403 unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "This operation is for administrators".into(),
            ))
        }
    }

    /// Reads the caller from an HTTP API request context.
    pub fn from_context(ctx: Option<&RequestContext>) -> Result<Self, ApiError> {
        let claims = match ctx {
            Some(RequestContext::ApiGatewayV2(c)) => c
                .authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .map(|jwt| &jwt.claims),
            _ => None,
        }
        .ok_or(ApiError::Unauthorized)?;
        // A subject that is no user id (empty, or characters no identity provider issues)
        // is as good as no token.
        let user_id = claims
            .get("sub")
            .and_then(|s| UserId::try_from(s.trim().to_owned()).ok())
            .ok_or(ApiError::Unauthorized)?;
        let is_admin = claims
            .get("cognito:groups")
            .is_some_and(|g| parse_groups(g).iter().any(|g| g == ADMIN_GROUP));
        Ok(Self { user_id, is_admin })
    }
}

/// Parses a flattened list claim: `[a b]` (API Gateway's form), `["a","b"]` (JSON),
/// or `a,b`.
pub fn parse_groups(raw: &str) -> Vec<String> {
    let inner = raw.trim().trim_start_matches('[').trim_end_matches(']');
    inner
        .split([',', ' '])
        .map(|g| g.trim().trim_matches('"'))
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::aws_lambda_events::apigw::{
        ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
        ApiGatewayV2httpRequestContext,
    };
    use std::collections::HashMap;

    fn ctx(claims: &[(&str, &str)]) -> RequestContext {
        let mut c = ApiGatewayV2httpRequestContext::default();
        let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
        jwt.claims = claims
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>();
        let mut auth = ApiGatewayRequestAuthorizer::default();
        auth.jwt = Some(jwt);
        c.authorizer = Some(auth);
        RequestContext::ApiGatewayV2(c)
    }

    #[test]
    fn groups_parse_in_every_flattened_form() {
        assert_eq!(parse_groups("[admin support]"), vec!["admin", "support"]);
        assert_eq!(
            parse_groups(r#"["admin","support"]"#),
            vec!["admin", "support"]
        );
        assert_eq!(parse_groups("admin"), vec!["admin"]);
        assert!(parse_groups("[]").is_empty());
    }

    #[test]
    fn admin_comes_from_cognito_groups() {
        let c = Caller::from_context(Some(&ctx(&[("sub", "u1"), ("cognito:groups", "[admin]")])))
            .unwrap();
        assert!(c.is_admin);
        assert!(c.may_act_for("someone-else"));
        let c = Caller::from_context(Some(&ctx(&[
            ("sub", "u1"),
            ("cognito:groups", "[administrators]"),
        ])))
        .unwrap();
        assert!(!c.is_admin);
        assert!(c.may_act_for("u1"));
        assert!(!c.may_act_for("u2"));
        assert!(matches!(c.require_admin(), Err(ApiError::Forbidden(_))));
    }

    #[test]
    fn missing_sub_or_context_is_unauthorized() {
        assert!(matches!(
            Caller::from_context(None),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            Caller::from_context(Some(&ctx(&[("email", "a@b.c")]))),
            Err(ApiError::Unauthorized)
        ));
        for sub in ["", "  ", "a/b", "a b"] {
            assert!(
                matches!(
                    Caller::from_context(Some(&ctx(&[("sub", sub)]))),
                    Err(ApiError::Unauthorized)
                ),
                "sub {sub:?}"
            );
        }
    }
}
