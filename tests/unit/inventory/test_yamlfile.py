from pathlib import Path

import pytest

from harvester.inventory.spec import InventorySpec
from harvester.inventory.yamlfile import (
    InventoryFileError,
    dump_inventory,
    load_inventory,
    parse_inventory,
)

GOOD = """\
roles:
  - name: reader
    role_arn: arn:aws:iam::111111111111:role/reader
    external_id: ${EXT_ID}
accounts:
  - account_id: "111111111111"
    name: prod
    cloudtrail:
      bucket: trail-bucket
      region: us-east-1
      role: reader
    clusters:
      - name: payments
        region: us-east-1
        bucket: eks-bucket
"""


def test_parses_defaults_and_env_references() -> None:
    spec = parse_inventory(GOOD, environ={"EXT_ID": "ext-123"})
    (role,) = spec.roles
    assert role.external_id == "ext-123"
    assert role.session_name == "audit-harvester"
    (account,) = spec.accounts
    assert account.cloudtrail is not None
    assert account.cloudtrail.prefix == "AWSLogs/111111111111"
    assert account.clusters[0].name == "payments"


def test_organization_prefix_default() -> None:
    text = GOOD.replace("    name: prod\n", "    name: prod\n    organization_id: o-abcdef1234\n")
    spec = parse_inventory(text, environ={"EXT_ID": "ext-123"})
    assert spec.accounts[0].cloudtrail is not None
    assert spec.accounts[0].cloudtrail.prefix == "AWSLogs/o-abcdef1234/111111111111"


@pytest.mark.parametrize(
    ("old", "new", "line", "fragment"),
    [
        ('"111111111111"', '"11111"', 6, "accounts[0].account_id: '11111'"),
        ("bucket: trail-bucket", "bucket: Trail_Bucket", 9, "accounts[0].cloudtrail.bucket"),
        (
            "region: us-east-1\n      role",
            "region: us-gov-west-1\n      role",
            10,
            "cloudtrail.region",
        ),
        ("- name: payments", "- name: -payments", 13, "clusters[0].name"),
        ("role: reader", "role: writer", 11, "no role with this name"),
        ("role/reader", "user/reader", 3, "roles[0].role_arn"),
        (
            "    name: prod\n",
            "    name: prod\n    colour: blue\n",
            8,
            "accounts[0].colour: unknown key",
        ),
    ],
)
def test_errors_name_file_line_and_field(old: str, new: str, line: int, fragment: str) -> None:
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    with pytest.raises(InventoryFileError) as info:
        parse_inventory(text, path="inv.yaml", environ={"EXT_ID": "ext-123"})
    message = str(info.value)
    assert message.startswith(f"inv.yaml:{line}: "), message
    assert fragment in message


def test_missing_environment_variable() -> None:
    with pytest.raises(InventoryFileError, match=r"inv.yaml:4: .*EXT_ID is not set"):
        parse_inventory(GOOD, path="inv.yaml", environ={})


def test_unquoted_account_id_is_explained() -> None:
    text = GOOD.replace('"111111111111"', "011111111111".lstrip("0"))
    with pytest.raises(InventoryFileError, match="quote account ids"):
        parse_inventory(text, environ={"EXT_ID": "e1"})


def test_invalid_yaml_has_a_line() -> None:
    with pytest.raises(InventoryFileError, match=r"x.yaml:2: not valid YAML"):
        parse_inventory("roles:\n\t- name: x\n", path="x.yaml", environ={})


def test_dump_then_parse_is_identity() -> None:
    spec = parse_inventory(GOOD, environ={"EXT_ID": "ext-123"})
    again = parse_inventory(
        dump_inventory(spec), environ={}, stored_external_ids={"reader": "ext-123"}
    )
    assert again == spec


def test_dump_masks_the_external_id_and_a_wrong_mask_is_refused() -> None:
    secret = "tenant-external-id-9876"
    spec = parse_inventory(GOOD, environ={"EXT_ID": secret})
    dumped = dump_inventory(spec)
    assert secret not in dumped
    assert "external_id: '****9876'" in dumped
    line = dumped.splitlines().index("  external_id: '****9876'") + 1
    with pytest.raises(InventoryFileError, match=rf"inv.yaml:{line}: .*masked external ID"):
        parse_inventory(
            dumped, path="inv.yaml", environ={}, stored_external_ids={"reader": "other-1234"}
        )


def test_duplicate_keys_are_refused_with_both_lines() -> None:
    text = GOOD.replace("    name: prod\n", "    name: prod\n    name: staging\n")
    with pytest.raises(InventoryFileError) as info:
        parse_inventory(text, path="inv.yaml", environ={"EXT_ID": "e1"})
    assert str(info.value).startswith("inv.yaml:8: not valid YAML: duplicate key 'name'")
    assert "first on line 7" in str(info.value)


def test_account_id_in_other_digits_is_refused() -> None:
    text = GOOD.replace(
        '"111111111111"',
        '"\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662"',
    )
    with pytest.raises(InventoryFileError, match="exactly 12 digits"):
        parse_inventory(text, environ={"EXT_ID": "e1"})


def test_non_utf8_file_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_bytes(GOOD.replace("prod", "pr\xf6d").encode("latin-1"))
    with pytest.raises(InventoryFileError) as info:
        load_inventory(path, environ={"EXT_ID": "e1"})
    assert str(info.value).startswith(f"{path}:7: not UTF-8 text (byte 0xf6")


def test_empty_file_is_an_empty_inventory() -> None:
    assert parse_inventory("", environ={}) == InventorySpec()
