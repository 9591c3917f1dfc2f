"""``harvester policy``: valid JSON, each statement as the setup guide needs it."""

import json

import pytest

from harvester.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_bucket_policy(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "policy",
        "bucket",
        "--bucket",
        "trail-bucket",
        "--role-arn",
        "arn:aws:iam::111111111111:role/reader",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["Version"] == "2012-10-17"
    by_action = {
        a: s
        for s in doc["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert by_action["s3:GetObject"]["Resource"] == "arn:aws:s3:::trail-bucket/*"
    assert by_action["s3:ListBucket"]["Resource"] == "arn:aws:s3:::trail-bucket"
    for statement in doc["Statement"]:
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"AWS": "arn:aws:iam::111111111111:role/reader"}


def test_trust_policy_with_external_id(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "policy",
        "trust",
        "--primary-role-arn",
        "arn:aws:iam::999999999999:role/primary",
        "--external-id",
        "ext-42",
    )
    assert code == 0
    (statement,) = json.loads(out)["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {"AWS": "arn:aws:iam::999999999999:role/primary"}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": "ext-42"}}


def test_harvester_role_policy_with_kms(capsys: pytest.CaptureFixture[str]) -> None:
    key = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    code, out, _ = run(
        capsys, "policy", "harvester-role", "--bucket", "trail-bucket", "--kms-key", key
    )
    assert code == 0
    statements = json.loads(out)["Statement"]
    actions = {
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {"s3:GetObject", "s3:ListBucket", "kms:Decrypt"} <= actions
    kms = next(s for s in statements if "kms:Decrypt" in s["Action"])
    assert kms["Resource"] == key


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["bucket", "--bucket", "Bad_Bucket", "--role-arn", "arn:aws:iam::111111111111:role/r"],
            "bucket: 'Bad_Bucket' is not valid",
        ),
        (
            ["bucket", "--bucket", "good-bucket", "--role-arn", "arn:aws:iam::1:role/r"],
            "role_arn: 'arn:aws:iam::1:role/r' is not valid",
        ),
        (
            [
                "trust",
                "--primary-role-arn",
                "arn:aws:iam::999999999999:role/p",
                "--external-id",
                "a b",
            ],
            "external_id: '****' is not valid",
        ),
    ],
)
def test_bad_input_is_explained(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, "policy", *args)
    assert code == 2
    assert out == ""
    assert message in err
