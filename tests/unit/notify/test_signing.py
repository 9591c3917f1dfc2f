from harvester.notify.signing import signature, verify


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
    assert signature("secret", "1700000000", b'{"a":1}') == (
        "sha256=" + __import__("hmac").new(b"secret", b'1700000000.{"a":1}', "sha256").hexdigest()
    )
    header = signature("secret", "1700000000", b"{}")
    assert verify("secret", "1700000000", b"{}", header)
    assert not verify("secret", "1700000001", b"{}", header)
    assert not verify("secret", "1700000000", b"{ }", header)
