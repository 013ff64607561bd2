"""Webhook targets: public addresses only, also when an IPv4 address hides inside an IPv6 one."""

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
