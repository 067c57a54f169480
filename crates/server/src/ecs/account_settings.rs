//! Account settings, stored per (account, region, principal). The root
//! principal's setting is the account default (PutAccountSettingDefault).

use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::state::Cx;
use stevedore_api::ecs::*;
use stevedore_model::keys;
use stevedore_store::Op;

/// AWS's defaults, reported as `aws_managed` by effective listings.
fn aws_default(name: &SettingName) -> &'static str {
    match name {
        SettingName::ServiceLongArnFormat
        | SettingName::TaskLongArnFormat
        | SettingName::ContainerInstanceLongArnFormat => "enabled",
        SettingName::TagResourceAuthorization => "on",
        SettingName::FargateTaskRetirementWaitPeriod => "7",
        // What the agent does when a container names no `mode`.
        SettingName::DefaultLogDriverMode => "blocking",
        _ => "disabled",
    }
}

fn all_names() -> Vec<SettingName> {
    SettingName::VALUES
        .iter()
        .map(|v| SettingName::from(*v))
        .collect()
}

/// Which values each setting takes, and which ones Stevedore can honour.
fn validate_value(name: &SettingName, value: &str) -> ApiResult<()> {
    let valid: &[&str] = match name {
        SettingName::ServiceLongArnFormat
        | SettingName::TaskLongArnFormat
        | SettingName::ContainerInstanceLongArnFormat
        | SettingName::AwsvpcTrunking
        | SettingName::FargateFipsMode
        | SettingName::GuardDutyActivate
        | SettingName::FargateEventWindows => &["enabled", "disabled"],
        SettingName::ContainerInsights => &["enabled", "disabled", "enhanced"],
        SettingName::TagResourceAuthorization => &["on", "off"],
        SettingName::FargateTaskRetirementWaitPeriod => &["0", "7", "14"],
        SettingName::DefaultLogDriverMode => &["blocking", "non-blocking"],
        _ => &[],
    };
    if !valid.contains(&value) {
        return Err(ApiError::invalid(format!(
            "Invalid value '{value}' for account setting {name}; valid values are {}.",
            valid.join(", ")
        )));
    }
    let refused = match name {
        SettingName::ServiceLongArnFormat
        | SettingName::TaskLongArnFormat
        | SettingName::ContainerInstanceLongArnFormat
            if value == "disabled" =>
        {
            Some("Stevedore always uses the long ARN format, as ECS has since 2021.")
        }
        SettingName::ContainerInsights if value != "disabled" => {
            Some("Stevedore does not publish Container Insights metrics.")
        }
        SettingName::FargateFipsMode if value == "enabled" => {
            Some("Stevedore does not offer FIPS-validated Fargate hosts.")
        }
        SettingName::GuardDutyActivate => {
            Some("GuardDuty runtime monitoring is not available in Stevedore.")
        }
        SettingName::DefaultLogDriverMode if value != "blocking" => Some(
            "the agent's default log mode is blocking; set `mode: non-blocking` in a container's logConfiguration options instead.",
        ),
        _ => None,
    };
    match refused {
        Some(why) => Err(ApiError::unsupported(format!(
            "Account setting {name}={value} is not supported: {why}"
        ))),
        None => Ok(()),
    }
}

/// The principal a call acts on. Only the root may act for others.
fn principal(cx: &Cx, given: Option<&str>) -> ApiResult<String> {
    let own = &cx.caller.principal_arn;
    let root = cx.scope().root_principal();
    match given {
        None => Ok(own.clone()),
        Some(p) => {
            let prefix = format!("arn:aws:iam::{}:", cx.scope().account);
            let rest = p.strip_prefix(&prefix).ok_or_else(|| {
                ApiError::invalid(format!(
                    "principalArn '{p}' is not an IAM principal of account {}.",
                    cx.scope().account
                ))
            })?;
            if !(rest == "root" || rest.starts_with("user/") || rest.starts_with("role/")) {
                return Err(ApiError::invalid(format!(
                    "principalArn '{p}' must name the root, a user or a role."
                )));
            }
            if p != own && own != &root {
                return Err(ApiError::access_denied(
                    "Only the root principal may change another principal's account settings.",
                ));
            }
            Ok(p.to_string())
        }
    }
}

fn setting_key(cx: &Cx, principal: &str, name: &SettingName) -> String {
    keys::account_setting(cx.scope(), principal, name.as_str())
}

async fn store_setting(
    cx: &Cx,
    principal: String,
    name: SettingName,
    value: String,
) -> ApiResult<Setting> {
    validate_value(&name, &value)?;
    let setting = Setting {
        name: Some(name.clone()),
        value: Some(value),
        principal_arn: Some(principal.clone()),
        r#type: Some(SettingType::User),
    };
    let key = setting_key(cx, &principal, &name);
    // Last writer wins, as in ECS: a put replaces whatever was there.
    db::commit(cx.store(), vec![], vec![db::put(&key, &setting)]).await?;
    Ok(setting)
}

pub async fn put(cx: Cx, req: PutAccountSettingRequest) -> ApiResult<PutAccountSettingResponse> {
    let p = principal(&cx, req.principal_arn.as_deref())?;
    let name = req
        .name
        .clone()
        .unwrap_or(SettingName::Unknown(String::new()));
    let setting = store_setting(&cx, p, name, req.value.clone().unwrap_or_default()).await?;
    Ok(PutAccountSettingResponse {
        setting: Some(setting),
    })
}

pub async fn put_default(
    cx: Cx,
    req: PutAccountSettingDefaultRequest,
) -> ApiResult<PutAccountSettingDefaultResponse> {
    if cx.caller.principal_arn != cx.scope().root_principal() {
        return Err(ApiError::access_denied(
            "Only the root principal may change the account's default settings.",
        ));
    }
    let root = cx.scope().root_principal();
    let name = req
        .name
        .clone()
        .unwrap_or(SettingName::Unknown(String::new()));
    let setting = store_setting(&cx, root, name, req.value.clone().unwrap_or_default()).await?;
    Ok(PutAccountSettingDefaultResponse {
        setting: Some(setting),
    })
}

pub async fn delete(
    cx: Cx,
    req: DeleteAccountSettingRequest,
) -> ApiResult<DeleteAccountSettingResponse> {
    let p = principal(&cx, req.principal_arn.as_deref())?;
    let name = req
        .name
        .clone()
        .unwrap_or(SettingName::Unknown(String::new()));
    let key = setting_key(&cx, &p, &name);
    let existing: Option<db::Versioned<Setting>> = db::get(cx.store(), &key)?;
    let Some(v) = existing else {
        return Err(ApiError::invalid(format!(
            "There is no account setting {name} for principal {p} to delete."
        )));
    };
    db::commit(cx.store(), vec![], vec![Op::Delete { key }]).await?;
    Ok(DeleteAccountSettingResponse {
        setting: Some(v.value),
    })
}

pub async fn list(
    cx: Cx,
    req: ListAccountSettingsRequest,
) -> ApiResult<ListAccountSettingsResponse> {
    let limit = db::max_results(req.max_results.filter(|n| *n != 0), 10, 10)?;
    let p = principal(&cx, req.principal_arn.as_deref())?;
    let root = cx.scope().root_principal();
    let names: Vec<SettingName> = match &req.name {
        Some(n) => vec![n.clone()],
        None => all_names(),
    };
    let mut all = Vec::new();
    for name in names {
        let own: Option<db::Versioned<Setting>> =
            db::get(cx.store(), &setting_key(&cx, &p, &name))?;
        let setting = match own {
            Some(v) => Some(v.value),
            None if req.effective_settings == Some(true) => {
                let def: Option<db::Versioned<Setting>> =
                    db::get(cx.store(), &setting_key(&cx, &root, &name))?;
                Some(match def {
                    Some(v) => v.value,
                    None => Setting {
                        name: Some(name.clone()),
                        value: Some(aws_default(&name).to_string()),
                        principal_arn: Some(root.clone()),
                        r#type: Some(SettingType::AwsManaged),
                    },
                })
            }
            None => None,
        };
        if let Some(s) = setting {
            if req
                .value
                .as_deref()
                .is_none_or(|v| s.value.as_deref() == Some(v))
            {
                all.push(s);
            }
        }
    }
    let start = match req.next_token.as_deref() {
        None => 0,
        Some(t) => {
            let after = db::decode_token(t)?;
            all.iter()
                .position(|s| s.name.as_ref().map(|n| n.as_str()) == Some(after.as_str()))
                .map(|i| i + 1)
                .ok_or_else(|| {
                    ApiError::invalid("Invalid nextToken. Start again without nextToken.")
                })?
        }
    };
    let page: Vec<Setting> = all.iter().skip(start).take(limit).cloned().collect();
    let next_token = if start + page.len() < all.len() {
        page.last()
            .and_then(|s| s.name.as_ref())
            .map(|n| db::encode_token(n.as_str()))
    } else {
        None
    };
    Ok(ListAccountSettingsResponse {
        settings: Some(page),
        next_token,
    })
}
