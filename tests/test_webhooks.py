"""Webhooks: public targets only (also when IPv4 hides in IPv6), Standard Webhooks signatures, and a
delivery that connects to the address that was checked."""

import pytest

from core.errors import WebhookRefused
from core.webhooks import check_webhook_url

REFUSED = ["http://127.0.0.1/hook", "http://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data",
           "http://[::1]/hook", "http://[::ffff:127.0.0.1]/hook", "http://[::ffff:0:7f00:1]/hook",
           "http://[64:ff9b::7f00:1]/hook", "http://[64:ff9b::a9fe:a9fe]/hook", "http://[64:ff9b:1::1]/hook",
           "http://[2002:7f00:1::]/hook", "http://[2002:a00:1::]/hook", "http://[::7f00:1]/hook",
           "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook", "http://[fd00::1]/hook", "http://[ff02::1]/hook",
           "http://0.0.0.0/hook", "http://224.0.0.1/hook", "ftp://example.com/x", "http:///nohost",
           "http://example.invalid/hook"]


@pytest.mark.parametrize("url", REFUSED)
def test_private_and_disguised_addresses_are_refused(url):
    with pytest.raises(WebhookRefused):
        check_webhook_url(url)


@pytest.mark.parametrize("url,address", [("https://8.8.8.8/hook", "8.8.8.8"),
                                         ("http://[2001:4860:4860::8888]:8080/h", "2001:4860:4860::8888"),
                                         ("http://[64:ff9b::808:808]/hook", "64:ff9b::808:808"),
                                         ("http://[2002:808:808::]/hook", "2002:808:808::")])
def test_public_addresses_pass_with_the_address_to_connect_to(url, address):
    target = check_webhook_url(url)
    assert target.address == address and target.port == (443 if url.startswith("https") and "]:" not in url
                                                            else 8080 if ":8080" in url else 80)


def test_private_addresses_pass_when_the_operator_allows_them():
    assert check_webhook_url("http://127.0.0.1:9/hook", allow_private=True).address == "127.0.0.1"


def test_signatures_match_the_standard_webhooks_test_vector():
    from core.webhooks import signature

    # from the Standard Webhooks specification's reference implementations
    assert signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                     b'{"test": 2432232314}') == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_new_secrets_are_random_32_bytes():
    import base64

    from core.webhooks import new_secret

    a, b = new_secret(), new_secret()
    assert a != b and a.startswith("whsec_") and len(base64.b64decode(a[6:])) == 32


def test_a_delivery_connects_to_the_checked_address_not_to_a_new_lookup():
    """The URL's name does not resolve at all here: the POST still reaches the address the check
    returned, naming the host in Host, so a name that answers differently the second time (DNS
    rebinding) cannot redirect it."""
    from core.webhooks import WebhookTarget
    from tests.helpers import HookReceiver
    from worker.webhooks import _post

    with HookReceiver(statuses=[202]) as hook:
        url = f"http://hooks.example.invalid:{hook.port}/in?x=1"
        status = _post(WebhookTarget("hooks.example.invalid", hook.port, "127.0.0.1"), url, b"{}",
                       {"Content-Type": "application/json"})
    headers, body = hook.received[0]
    assert status == 202 and body == b"{}" and headers["Host"] == f"hooks.example.invalid:{hook.port}"
