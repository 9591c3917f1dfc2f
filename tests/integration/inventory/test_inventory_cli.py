"""The inventory through the CLI, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import Cli

REPO = Path(__file__).resolve().parents[3]
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLEKEY"

INVENTORY = """\
roles:
  - name: org-harvester
    role_arn: arn:aws:iam::111111111111:role/audit-harvester-bucket-role
    via_role_arn: arn:aws:iam::999999999999:role/audit-harvester-primary
    external_id: ${TEST_EXTERNAL_ID}
  - name: legacy-keys
    role_arn: arn:aws:iam::222222222222:role/audit-reader
    authentication: access-keys
    access_key_id: AKIAEXAMPLEEXAMPLE12
    secret_access_key: ${TEST_LEGACY_SECRET}
accounts:
  - account_id: "111111111111"
    name: prod
    organization_id: o-abcdef1234
    cadence: 5m
    cloudtrail:
      bucket: org-trail-bucket
      region: us-east-1
      prefix: AWSLogs/o-abcdef1234/111111111111
      role: org-harvester
    clusters:
      - name: payments
        region: us-east-1
        bucket: eks-audit-bucket
        role: org-harvester
  - account_id: "222222222222"
    name: legacy
    cloudtrail:
      bucket: legacy-trail
      region: eu-west-1
      role: legacy-keys
"""


@pytest.fixture
def inventory_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TEST_EXTERNAL_ID", "ext-id-0042")
    monkeypatch.setenv("TEST_LEGACY_SECRET", SECRET)
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY)
    return path


def test_round_trip_apply_list_export_apply(cli: Cli, inventory_file: Path, tmp_path: Path) -> None:
    first = cli("inventory", "apply", "-f", str(inventory_file))
    assert first.code == 0, first.err
    assert "+ role org-harvester" in first.out
    assert "+ source eks 111111111111/payments" in first.out
    assert "applied 7 change(s)" in first.out
    assert cli.counts() == {"accounts": 2, "role_configs": 2, "access_key_configs": 1, "sources": 3}

    listed = json.loads(cli("sources", "list", "--output", "json").out)
    assert {(s["kind"], s["source"], s["prefix"]) for s in listed} == {
        ("cloudtrail", "111111111111", "AWSLogs/o-abcdef1234/111111111111"),
        ("eks", "111111111111/payments", "EKSLogs/111111111111/payments"),
        ("cloudtrail", "222222222222", "AWSLogs/222222222222"),
    }
    accounts = json.loads(cli("accounts", "list", "-o", "json").out)
    assert [a["account_id"] for a in accounts] == ["111111111111", "222222222222"]

    again = cli("inventory", "apply", "-f", str(inventory_file))
    assert again.code == 0
    assert "no change" in again.out

    roles = json.loads(cli("roles", "list", "-o", "json").out)
    assert [r["external_id"] for r in roles] == [None, "****"]  # masked like the console

    exported = tmp_path / "exported.yaml"
    assert cli("inventory", "export", "-f", str(exported)).code == 0
    assert SECRET not in exported.read_text()
    assert "ext-id-0042" not in exported.read_text()
    from_export = cli("inventory", "apply", "-f", str(exported))
    assert from_export.code == 0, from_export.err
    assert "no change" in from_export.out
    assert cli.counts()["access_key_configs"] == 1


def test_dry_run_writes_nothing(cli: Cli, inventory_file: Path) -> None:
    result = cli("inventory", "apply", "-f", str(inventory_file), "--dry-run")
    assert result.code == 0
    assert "dry run: 7 change(s) planned, nothing written" in result.out
    assert cli.counts() == {"accounts": 0, "role_configs": 0, "access_key_configs": 0, "sources": 0}


def test_changes_and_prune(cli: Cli, inventory_file: Path) -> None:
    assert cli("inventory", "apply", "-f", str(inventory_file)).code == 0
    smaller = inventory_file.read_text().split('  - account_id: "222222222222"')[0]
    legacy_role = smaller[smaller.index("  - name: legacy-keys") : smaller.index("accounts:")]
    smaller = smaller.replace(legacy_role, "")
    smaller = smaller.replace(
        "region: us-east-1\n        bucket: eks-audit-bucket",
        "region: us-west-2\n        bucket: eks-audit-bucket",
    )
    inventory_file.write_text(smaller)
    kept = cli("inventory", "apply", "-f", str(inventory_file))
    assert "~ source eks 111111111111/payments (region)" in kept.out
    assert "account 222222222222 (legacy): not in the file, kept (--prune removes it)" in kept.out
    assert cli.counts()["accounts"] == 2
    pruned = cli("inventory", "apply", "-f", str(inventory_file), "--prune")
    assert "- account 222222222222 (legacy)" in pruned.out
    assert "- role legacy-keys" in pruned.out
    assert cli.counts() == {"accounts": 1, "role_configs": 1, "access_key_configs": 0, "sources": 2}


def test_changed_secret_is_a_change_but_not_shown(
    cli: Cli, inventory_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("inventory", "apply", "-f", str(inventory_file)).code == 0
    monkeypatch.setenv("TEST_LEGACY_SECRET", SECRET.replace("EXAMPLE", "ROTATED"))
    result = cli("inventory", "apply", "-f", str(inventory_file))
    assert "~ role legacy-keys (secret_access_key)" in result.out
    assert "ROTATED" not in result.out + result.err


BAD_VALUES = [
    (
        'account_id: "111111111111"',
        'account_id: "1111"',
        "accounts[0].account_id: '1111' is not valid: an AWS account id is exactly 12 digits",
    ),
    (
        "role/audit-harvester-bucket-role",
        "group/audit",
        "roles[0].role_arn: 'arn:aws:iam::111111111111:group/audit' is not valid: a role ARN",
    ),
    (
        "  - name: org-harvester\n",
        "  - name: org-harvester\n    partition: aws-cn\n",
        "roles[0].role_arn: 'arn:aws:iam::111111111111:role/audit-harvester-bucket-role' is not valid: the ARN's partition 'aws' differs",
    ),
    (
        "bucket: org-trail-bucket",
        "bucket: Org_Trail",
        "accounts[0].cloudtrail.bucket: 'Org_Trail' is not valid: S3 bucket names",
    ),
    (
        "region: eu-west-1",
        "region: cn-north-1",
        "accounts[1].cloudtrail.region: 'cn-north-1' is not valid: not a region of partition 'aws'",
    ),
    (
        "organization_id: o-abcdef1234",
        "organization_id: o-123",
        "accounts[0].organization_id: 'o-123' is not valid: an organization id",
    ),
    (
        "- name: payments",
        "- name: _payments",
        "accounts[0].clusters[0].name: '_payments' is not valid: an EKS cluster name",
    ),
    (
        "external_id: ${TEST_EXTERNAL_ID}",
        "external_id: 'x y'",
        "roles[0].external_id: '****' is not valid: an external ID is 2-1224 characters",
    ),
    (
        "prefix: AWSLogs/o-abcdef1234",
        "prefix: /AWSLogs/o-abcdef1234",
        "accounts[0].cloudtrail.prefix: '/AWSLogs/o-abcdef1234/111111111111' is not valid: an S3 prefix has no leading slash",
    ),
    (
        "prefix: AWSLogs/o-abcdef1234/111111111111",
        "prefix: AWSLogs/o-abcdef1234/555555555555",
        "accounts[0].cloudtrail.prefix: 'AWSLogs/o-abcdef1234/555555555555' is not valid: the prefix 'AWSLogs/o-abcdef1234/555555555555' names account 555555555555, not 111111111111",
    ),
    (
        "prefix: AWSLogs/o-abcdef1234/111111111111",
        "prefix: AWSLogs/o-abcdef1234/111111111111/../../x",
        "accounts[0].cloudtrail.prefix: 'AWSLogs/o-abcdef1234/111111111111/../../x' is not valid: an S3 prefix has no '.' or '..' segments",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "message"), BAD_VALUES, ids=[b[2].split(":")[0] for b in BAD_VALUES]
)
def test_each_rule_refuses_and_writes_nothing(
    cli: Cli, inventory_file: Path, old: str, new: str, message: str
) -> None:
    text = inventory_file.read_text()
    assert old in text
    inventory_file.write_text(text.replace(old, new, 1))
    result = cli("inventory", "apply", "-f", str(inventory_file))
    assert result.code == 2
    assert result.err.startswith(f"error: {inventory_file}:"), result.err
    assert message in " ".join(result.err.split())
    assert cli.counts() == {"accounts": 0, "role_configs": 0, "access_key_configs": 0, "sources": 0}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["accounts", "add", "--account-id", "12", "--name", "x"], "account_id: '12' is not valid"),
        (
            [
                "accounts",
                "add",
                "--account-id",
                "333333333333",
                "--name",
                "x",
                "--bucket",
                "bad_bucket",
                "--region",
                "us-east-1",
            ],
            "bucket: 'bad_bucket' is not valid",
        ),
        (
            [
                "accounts",
                "add",
                "--account-id",
                "333333333333",
                "--name",
                "x",
                "--bucket",
                "good-bucket",
                "--region",
                "xx-1",
            ],
            "region: 'xx-1' is not valid",
        ),
        (
            [
                "accounts",
                "add",
                "--account-id",
                "333333333333",
                "--name",
                "x",
                "--organization-id",
                "org",
            ],
            "organization_id: 'org' is not valid",
        ),
        (
            [
                "accounts",
                "add",
                "--account-id",
                "333333333333",
                "--name",
                "x",
                "--bucket",
                "good-bucket",
                "--region",
                "us-east-1",
                "--prefix",
                "/x",
            ],
            "prefix: '/x' is not valid",
        ),
        (
            ["roles", "add", "--name", "r", "--role-arn", "arn:aws:iam::1:role/x"],
            "role_arn: 'arn:aws:iam::1:role/x' is not valid",
        ),
        (
            [
                "roles",
                "add",
                "--name",
                "r",
                "--role-arn",
                "arn:aws-us-gov:iam::111111111111:role/x",
            ],
            "differs from the configured partition 'aws'",
        ),
        (["roles", "add", "--name", "r", "--external-id", "!"], "external_id: '****' is not valid"),
    ],
)
def test_cli_commands_validate_and_write_nothing(cli: Cli, args: list[str], message: str) -> None:
    result = cli(*args)
    assert result.code == 2
    assert message in result.err
    assert cli.counts() == {"accounts": 0, "role_configs": 0, "access_key_configs": 0, "sources": 0}


def test_cli_editing(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        cli(
            "accounts",
            "add",
            "--account-id",
            "333333333333",
            "--name",
            "sandbox",
            "--bucket",
            "sandbox-trail",
            "--region",
            "eu-west-1",
        ).code
        == 0
    )
    assert (
        cli(
            "clusters",
            "add",
            "--account-id",
            "333333333333",
            "--name",
            "dev",
            "--region",
            "eu-west-1",
            "--bucket",
            "eks-dev",
        ).code
        == 0
    )
    monkeypatch.setenv("HARVESTER_SECRET_ACCESS_KEY", SECRET)
    edited = cli(
        "storage", "edit", "333333333333", "--prefix", "custom/AWSLogs/333333333333",
        "--new-role", "sandbox-keys", "--role-arn", "arn:aws:iam::333333333333:role/reader",
        "--authentication", "access-keys", "--access-key-id", "AKIAEXAMPLEEXAMPLE34",
    )  # fmt: skip
    assert edited.code == 0, edited.err
    refused = cli("storage", "edit", "333333333333/dev", "--prefix", "elsewhere/")
    assert refused.code == 2
    assert "derived" in refused.err
    assert cli("clusters", "edit", "333333333333/dev", "--role", "sandbox-keys").code == 0
    assert cli("accounts", "disable", "333333333333").code == 0
    sources = json.loads(cli("sources", "list", "-o", "json").out)
    assert {s["source"]: (s["prefix"], s["role"], s["enabled"]) for s in sources} == {
        "333333333333": ("custom/AWSLogs/333333333333", "sandbox-keys", False),
        "333333333333/dev": ("EKSLogs/333333333333/dev", "sandbox-keys", False),
    }
    roles = cli("roles", "list")
    assert "****LE34" in roles.out
    assert SECRET not in roles.out


def test_no_secret_in_any_output(
    cli: Cli, inventory_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither the stored secret access key nor the at-rest key appears anywhere we print."""
    outputs = [cli("inventory", "apply", "-f", str(inventory_file))]
    for args in (
        ["inventory", "export"],
        ["roles", "list"],
        ["roles", "list", "-o", "json"],
        ["accounts", "list", "-o", "json"],
        ["accounts", "show", "222222222222"],
        ["sources", "list", "-o", "json"],
        ["storage", "edit", "222222222222", "--role", "no-such-role"],
        ["inventory", "apply", "-f", str(inventory_file), "--dry-run"],
    ):
        outputs.append(cli(*args))
    at_rest_key = (
        (Path(str(cli.engine.url.database)).parent / "secret.key")
        if cli.engine.dialect.name == "sqlite"
        else None
    )
    keys = [SECRET]
    if at_rest_key is not None:
        keys.append(at_rest_key.read_text().strip())
    text = "\n".join(o.out + o.err for o in outputs) + caplog.text
    for secret in keys:
        assert secret not in text
    assert "no role config" in text
