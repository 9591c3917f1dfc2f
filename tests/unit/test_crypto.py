import io
import stat
from pathlib import Path

import pytest

from harvester.crypto import SecretBox, SecretKeyError, load_secret_key, mask
from harvester.settings import load_settings


def test_round_trip_and_ciphertext_hides_plaintext() -> None:
    box = SecretBox.from_keys("a passphrase from a secret store")
    stored = box.encrypt("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert "wJalrXUtnFEMI" not in stored
    assert box.decrypt(stored) == "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_wrong_key_is_explained_without_the_secret() -> None:
    stored = SecretBox.from_keys("old").encrypt("s3cr3t-value-0000")
    with pytest.raises(SecretKeyError, match="HARVESTER_SECRET_KEY") as info:
        SecretBox.from_keys("new").decrypt(stored)
    assert "s3cr3t" not in str(info.value)


def test_rotation_re_encrypts_with_the_new_key() -> None:
    stored = SecretBox.from_keys("old").encrypt("value-to-keep-123")
    rotated = SecretBox.from_keys("new", "old").rotate(stored)
    assert SecretBox.from_keys("new").decrypt(rotated) == "value-to-keep-123"


def test_generated_key_file_is_private_and_stable(tmp_path: Path) -> None:
    settings = load_settings({"HARVESTER_DATA_DIR": str(tmp_path)})
    notice = io.StringIO()
    key = load_secret_key(settings, notice=notice)
    path = tmp_path / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert notice.getvalue().count("\n") == 1
    assert str(path) in notice.getvalue()
    assert key not in notice.getvalue()
    again = io.StringIO()
    assert load_secret_key(settings, notice=again) == key
    assert again.getvalue() == ""


def test_key_from_settings_wins(tmp_path: Path) -> None:
    settings = load_settings({"HARVESTER_DATA_DIR": str(tmp_path), "HARVESTER_SECRET_KEY": "xyz"})
    assert load_secret_key(settings) == "xyz"
    assert not (tmp_path / "secret.key").exists()


@pytest.mark.parametrize(
    ("secret", "shown"), [(None, ""), ("short", "****"), ("AKIAEXAMPLEEXAMPLE12", "****LE12")]
)
def test_mask(secret: str | None, shown: str) -> None:
    assert mask(secret) == shown
