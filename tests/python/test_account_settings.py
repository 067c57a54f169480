"""PutAccountSetting / PutAccountSettingDefault / ListAccountSettings / DeleteAccountSetting.

Each test works on its own setting name(s), so they stay independent on the
shared server.
"""

from __future__ import annotations

from stevedore_harness import DEFAULT_ACCOUNT, expect_error

ALICE = f"arn:aws:iam::{DEFAULT_ACCOUNT}:user/alice"


def effective(ecs, name, **kw):
    out = ecs.list_account_settings(name=name, effectiveSettings=True, **kw)["settings"]
    assert out, f"no effective setting for {name}"
    assert {s["name"] for s in out} == {name}
    return out[0]["value"]


def test_put_and_list_account_setting(ecs):
    name = "fargateEventWindows"
    out = ecs.put_account_setting(name=name, value="enabled")["setting"]
    assert out["name"] == name
    assert out["value"] == "enabled"
    assert DEFAULT_ACCOUNT in out.get("principalArn", DEFAULT_ACCOUNT)

    listed = ecs.list_account_settings(name=name)["settings"]
    assert listed, "the setting just put must be listed"
    assert {s["name"] for s in listed} == {name}, "name filter"
    assert listed[0]["value"] == "enabled"
    assert effective(ecs, name) == "enabled"

    by_value = ecs.list_account_settings(name=name, value="enabled")["settings"]
    assert by_value and [s["value"] for s in by_value] == ["enabled"] * len(by_value)
    assert ecs.list_account_settings(name=name, value="disabled")["settings"] == []

    ecs.put_account_setting(name=name, value="disabled")
    assert effective(ecs, name) == "disabled"


def test_default_and_principal_override(ecs):
    name = "awsvpcTrunking"
    default = ecs.put_account_setting_default(name=name, value="enabled")["setting"]
    assert (default["name"], default["value"]) == (name, "enabled")
    assert effective(ecs, name) == "enabled"
    assert effective(ecs, name, principalArn=ALICE) == "enabled", "the default applies to everyone"

    alice = ecs.put_account_setting(name=name, value="disabled", principalArn=ALICE)["setting"]
    assert (alice["name"], alice["value"], alice["principalArn"]) == (name, "disabled", ALICE)
    assert effective(ecs, name, principalArn=ALICE) == "disabled"
    assert effective(ecs, name) == "enabled", "alice's setting must not change the caller's"
    explicit = ecs.list_account_settings(name=name, principalArn=ALICE)["settings"]
    assert [(s["principalArn"], s["value"]) for s in explicit] == [(ALICE, "disabled")]

    deleted = ecs.delete_account_setting(name=name, principalArn=ALICE)["setting"]
    assert (deleted["name"], deleted["principalArn"]) == (name, ALICE)
    assert effective(ecs, name, principalArn=ALICE) == "enabled"
    assert ecs.list_account_settings(name=name, principalArn=ALICE)["settings"] == []


def test_delete_own_setting(ecs):
    name = "containerInstanceLongArnFormat"
    ecs.put_account_setting(name=name, value="enabled")
    assert [s["value"] for s in ecs.list_account_settings(name=name)["settings"]] == ["enabled"]
    out = ecs.delete_account_setting(name=name)["setting"]
    assert out["name"] == name
    assert ecs.list_account_settings(name=name)["settings"] == []


def test_list_account_settings_paginator(ecs):
    # Values that differ from the defaults, so the listing must reflect the puts.
    ecs.put_account_setting_default(name="tagResourceAuthorization", value="off")
    ecs.put_account_setting_default(name="fargateTaskRetirementWaitPeriod", value="0")
    pages = list(
        ecs.get_paginator("list_account_settings").paginate(effectiveSettings=True, PaginationConfig={"PageSize": 1})
    )
    settings = [s for p in pages for s in p["settings"]]
    assert all(len(p["settings"]) <= 1 for p in pages)
    keys = [(s["name"], s.get("principalArn")) for s in settings]
    assert len(keys) == len(set(keys)), f"a setting was returned twice: {keys}"
    values = {s["name"]: s["value"] for s in settings}
    assert values["tagResourceAuthorization"] == "off"
    assert values["fargateTaskRetirementWaitPeriod"] == "0"
    assert len(values) >= 5, "effective settings list every setting, defaults included"


def test_invalid_setting_name(ecs_raw):
    expect_error(
        ecs_raw.put_account_setting,
        "InvalidParameterException",
        contains_any=["name", "noSuchSetting"],
        name="noSuchSetting",
        value="enabled",
    )


def test_missing_value(ecs_raw):
    expect_error(
        ecs_raw.put_account_setting_default,
        "InvalidParameterException",
        contains=["value"],
        name="containerInsights",
    )


def test_default_log_driver_mode_matches_the_agent(ecs):
    expect_error(ecs.put_account_setting_default, "UnsupportedFeatureException", contains=["blocking"],
                 name="defaultLogDriverMode", value="non-blocking")
    out = ecs.put_account_setting_default(name="defaultLogDriverMode", value="blocking")["setting"]
    assert out["value"] == "blocking"
    eff = ecs.list_account_settings(name="defaultLogDriverMode", effectiveSettings=True)["settings"]
    assert [s["value"] for s in eff] == ["blocking"]
