"""The simulator's signing module: what it sends is what WeChat sends (the gateway's own checks and
wechatpy's crypto accept it), and it reads encrypted replies, refusing a forged one."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import xmltodict
from wechatpy.crypto import WeChatCrypto

from bot.gateway.channels.wechat.handler import sha1_signature
from bot.gateway.web.simulate import OPENID, ReplyError, WeChatSigner, new_openid
from tests.support.wechat import AES_KEY, APP_ID, TOKEN


def signer(mode: str) -> WeChatSigner:
    return WeChatSigner(token=TOKEN, aes_key=AES_KEY, app_id=APP_ID, mode=mode)


@pytest.mark.parametrize("mode", ["safe", "compatible"])
def test_an_encrypted_message_verifies_and_decrypts_as_the_gateway_does(mode: str) -> None:
    signed = signer(mode).sign_text("oUser0000000000000000000001", "你好", msg_id=42)
    parts = urlsplit(signed.path_qs)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert parts.path == "/wechat" and q["encrypt_type"] == "aes"
    assert abs(int(q["timestamp"]) - time.time()) < 5
    assert q["signature"] == sha1_signature(TOKEN, q["timestamp"], q["nonce"])
    encrypt = xmltodict.parse(signed.body)["xml"]["Encrypt"]
    assert q["msg_signature"] == sha1_signature(TOKEN, q["timestamp"], q["nonce"], encrypt)
    plain = WeChatCrypto(TOKEN, AES_KEY, APP_ID).decrypt_message(
        signed.body, q["msg_signature"], q["timestamp"], q["nonce"]
    )
    msg = xmltodict.parse(plain)["xml"]
    assert msg["Content"] == "你好" and msg["FromUserName"] == "oUser0000000000000000000001"
    assert msg["MsgType"] == "text" and msg["MsgId"] == "42"
    if mode == "safe":
        assert b"<Content>" not in signed.body  # only the ciphertext travels


def test_a_plain_message_is_signed_xml() -> None:
    signed = signer("plain").sign_text("oUser0000000000000000000001", "<b>&", now=1_700_000_000, nonce="n1")
    q = {k: v[0] for k, v in parse_qs(urlsplit(signed.path_qs).query).items()}
    assert "encrypt_type" not in q and q["signature"] == sha1_signature(TOKEN, "1700000000", "n1")
    assert xmltodict.parse(signed.body)["xml"]["Content"] == "<b>&"


def test_replies_are_decrypted_and_forgeries_refused() -> None:
    s = signer("safe")
    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    inner = "<xml><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[收到：你好]]></Content></xml>"
    envelope = crypto.encrypt_message(inner, "123", str(int(time.time())))
    reply = s.read_reply(envelope)
    assert reply.text == "收到：你好" and reply.encrypted and not reply.transfer
    assert s.read_reply("success").text == ""
    transfer = "<xml><MsgType><![CDATA[transfer_customer_service]]></MsgType></xml>"
    assert s.read_reply(transfer).transfer
    forged = envelope.replace("<MsgSignature><![CDATA[", "<MsgSignature><![CDATA[0")
    with pytest.raises(ReplyError):
        s.read_reply(forged)
    with pytest.raises(ReplyError):
        s.read_reply("<xml><unclosed>")


def test_openids_look_like_wechats_and_secrets_stay_out_of_repr() -> None:
    openid = new_openid()
    assert len(openid) == 28 and openid.startswith("o") and OPENID.fullmatch(openid)
    text = repr(signer("safe"))
    assert TOKEN not in text and AES_KEY not in text


def test_an_sms_is_signed_as_twilio_signs_it() -> None:
    from twilio.request_validator import RequestValidator

    from bot.gateway.web.simulate import PHONE, TwilioSigner, new_phone

    s = TwilioSigner("AC" + "0" * 32, "auth-token", "https://bot.example.cn", "+15005550006")
    signed = s.sign_inbound("+8613812345678", "查询 SP2026000001", message_sid="SM1")
    assert signed.path == "/sms/twilio" and signed.form["Body"] == "查询 SP2026000001"
    assert signed.form["From"] == "+8613812345678" and signed.form["MessageSid"] == "SM1"
    validator = RequestValidator("auth-token")
    signature = signed.headers["X-Twilio-Signature"]
    assert validator.validate("https://bot.example.cn/sms/twilio", signed.form, signature)
    assert not RequestValidator("other").validate("https://bot.example.cn/sms/twilio", signed.form, signature)
    assert "auth-token" not in repr(s) and PHONE.fullmatch(new_phone())


def test_twiml_replies_are_read() -> None:
    from bot.gateway.web.simulate import read_twiml

    twiml = (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Message action="http://x/s?lid=1" method="POST">'
        "【中心】收到：你好</Message><Message><Body>第二条</Body></Message></Response>"
    )
    assert read_twiml(twiml) == ["【中心】收到：你好", "第二条"]
    assert read_twiml('<?xml version="1.0" encoding="UTF-8"?><Response />') == []
    with pytest.raises(ReplyError):
        read_twiml("<Response>")
