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



def test_a_conditional_write_has_exactly_one_winner_under_a_race(localstack):
    """The breaker's half-open lease: many environments race one conditional update."""
    from concurrent.futures import ThreadPoolExecutor

    ddb = localstack.client("dynamodb", account="111111111111")
    ddb.create_table(
        TableName="Race",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    clients = [localstack.client("dynamodb", account="111111111111") for _ in range(32)]

    def claim(args: tuple[int, str]) -> bool:
        worker, key = args
        try:
            clients[worker].update_item(
                TableName="Race", Key={"id": {"S": key}},
                UpdateExpression="SET lease_owner = :me ADD claims :one",
                ConditionExpression="attribute_not_exists(lease_owner)",
                ExpressionAttributeValues={":me": {"S": f"w{worker}"}, ":one": {"N": "1"}},
            )
            return True
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"
            return False

    with ThreadPoolExecutor(32) as pool:
        for race in range(60):
            winners = sum(pool.map(claim, [(w, f"race-{race}") for w in range(32)]))
            assert winners == 1, f"race {race}: {winners} conditional writes succeeded"
            item = ddb.get_item(TableName="Race", Key={"id": {"S": f"race-{race}"}})["Item"]
            assert item["claims"] == {"N": "1"}
