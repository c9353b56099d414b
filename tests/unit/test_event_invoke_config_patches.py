"""Pure logic of the CloudFormation EventInvokeConfig update and alias lookup patches."""

import json

from lab_platform import alias_invoke_config as alias
from lab_platform.cfn_event_invoke_config import put_request


def test_put_request_keeps_the_present_properties_as_numbers():
    desired = {"Id": "x", "FunctionName": "f", "Qualifier": "$LATEST", "MaximumRetryAttempts": "0",
               "DestinationConfig": {"OnFailure": {"Destination": "arn:q"}}}
    assert put_request(desired) == {"FunctionName": "f", "Qualifier": "$LATEST",
                                    "MaximumRetryAttempts": 0,
                                    "DestinationConfig": {"OnFailure": {"Destination": "arn:q"}}}


def test_put_request_leaves_out_an_absent_property():
    assert put_request({"FunctionName": "f", "Qualifier": "live", "MaximumEventAgeInSeconds": ""}) == {
        "FunctionName": "f", "Qualifier": "live"}


def test_invoked_qualifier_of_an_alias_and_of_an_unqualified_arn():
    arn = "arn:aws:lambda:eu-west-1:444444444444:function:f"
    assert alias.invoked_qualifier(json.dumps({"invoked_arn": arn + ":live"})) == "live"
    assert alias.invoked_qualifier(json.dumps({"invoked_arn": arn})) is None
    assert alias.invoked_qualifier("not json") is None


def test_lookup_prefers_the_invoked_alias_config_only_while_it_is_set():
    configs = alias.InvokedQualifierConfigs({"1": "version", "live": "alias"})
    assert configs.get("1") == "version"
    alias._invoked.qualifier = "live"
    try:
        assert configs.get("1") == "alias"
        alias._invoked.qualifier = "other"  # an alias without a config of its own: unchanged
        assert configs.get("1") == "version"
    finally:
        alias._invoked.qualifier = None
