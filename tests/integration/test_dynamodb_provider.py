"""DynamoDB works offline through the moto-backed provider (lab_platform/dynamodb)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration


def test_conditional_writes_and_updates_work_per_account(localstack):
    ddb = localstack.client("dynamodb", account="111111111111")
    ddb.create_table(
        TableName="Ledger",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="Ledger", Item={"id": {"S": "o-1"}}, ConditionExpression="attribute_not_exists(id)")
    with pytest.raises(ClientError) as error:
        ddb.put_item(TableName="Ledger", Item={"id": {"S": "o-1"}}, ConditionExpression="attribute_not_exists(id)")
    assert error.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    item = ddb.update_item(
        TableName="Ledger", Key={"id": {"S": "o-1"}},
        UpdateExpression="ADD deliveries :one", ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert item["deliveries"] == {"N": "1"}
    # another emulated account does not see the table
    other = localstack.client("dynamodb", account="222222222222")
    assert "Ledger" not in other.list_tables()["TableNames"]
