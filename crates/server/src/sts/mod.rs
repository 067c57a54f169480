//! AWS STS (awsQuery, signed for `sts`). GetCallerIdentity answers who the
//! request's key belongs to; the credential-issuing actions (AssumeRole,
//! GetSessionToken, ...) come with task roles (issue 12) and until then
//! answer a Query error that names them, never a made-up credential.

use crate::error::{ApiError, ApiResult};
use crate::operation::{call, Wire};
use crate::state::Cx;
use sha2::{Digest, Sha256};
use stevedore_api::sts::{GetCallerIdentityRequest, GetCallerIdentityResponse, Operation};

pub(crate) async fn dispatch(cx: Cx, op: Operation, wire: Wire<'_>) -> ApiResult<Vec<u8>> {
    match op {
        Operation::GetCallerIdentity => call(cx, wire, get_caller_identity).await,
        other => Err(not_yet(other)),
    }
}

fn not_yet(op: Operation) -> ApiError {
    ApiError::new(
        crate::error::ProtocolCode::InvalidAction,
        format!(
            "{} is not supported by this version of Stevedore's STS API yet; credentials for roles come with task roles (issue 12). GetCallerIdentity is served. See the compatibility table in the README.",
            op.name()
        ),
    )
}

async fn get_caller_identity(
    cx: Cx,
    _req: GetCallerIdentityRequest,
) -> ApiResult<GetCallerIdentityResponse> {
    let account = cx.caller.scope.account.clone();
    let arn = cx.caller.principal_arn.clone();
    Ok(GetCallerIdentityResponse {
        user_id: Some(user_id(&account, &arn)),
        account: Some(account),
        arn: Some(arn),
    })
}

/// `aws:userid` as IAM gives it: the account id for the root user, and a
/// stable unique id (`AIDA` and 17 characters) for a user. Stevedore keeps
/// no separate user ids, so a user's id is derived from its ARN: the same
/// user always has the same id, and two users never share one in practice.
fn user_id(account: &str, principal_arn: &str) -> String {
    if principal_arn.ends_with(":root") {
        return account.to_string();
    }
    let digest = hex::encode_upper(Sha256::digest(principal_arn.as_bytes()));
    format!("AIDA{}", &digest[..17])
}

#[cfg(test)]
mod tests {
    use super::user_id;

    #[test]
    fn user_ids() {
        assert_eq!(
            user_id("123456789012", "arn:aws:iam::123456789012:root"),
            "123456789012"
        );
        let a = user_id("123456789012", "arn:aws:iam::123456789012:user/alice");
        assert_eq!(a.len(), 21);
        assert!(a.starts_with("AIDA"));
        assert_eq!(
            a,
            user_id("123456789012", "arn:aws:iam::123456789012:user/alice")
        );
        assert_ne!(
            a,
            user_id("123456789012", "arn:aws:iam::123456789012:user/bob")
        );
    }
}
