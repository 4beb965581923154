"""wsgid.wsframes: RFC 6455 as the server writes and checks it."""

import struct

import pytest

from wsgid import wsframes
from wsgid.wsframes import ProtocolError


def test_accept_key_of_rfc_6455_example():
    assert wsframes.accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_handshake_response_with_and_without_subprotocol():
    plain = wsframes.handshake("dGhlIHNhbXBsZSBub25jZQ==")
    assert plain.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in plain
    assert plain.endswith(b"\r\n\r\n") and b"Sec-WebSocket-Protocol" not in plain
    assert b"\r\nSec-WebSocket-Protocol: chat\r\n" in wsframes.handshake("k", "chat")


@pytest.mark.parametrize("size,head", [(0, b"\x82\x00"), (125, b"\x82\x7d"),
                                       (126, b"\x82\x7e\x00\x7e"),
                                       (65535, b"\x82\x7e\xff\xff"),
                                       (65536, b"\x82\x7f" + struct.pack("!Q", 65536))])
def test_frame_lengths_use_the_shortest_form(size, head):
    frame = wsframes.frame(wsframes.BINARY, b"x" * size)
    assert frame[:len(head)] == head and len(frame) == len(head) + size


def test_message_text_binary_and_other():
    assert wsframes.message("é") == b"\x81\x02\xc3\xa9"
    assert wsframes.message(b"\x00") == b"\x82\x01\x00"
    assert wsframes.message(bytearray(b"a")) == b"\x82\x01a"
    with pytest.raises(TypeError):
        wsframes.message(3)


def test_close_frame_code_reason_and_cut():
    assert wsframes.close_frame(1000, "bye") == b"\x88\x05\x03\xe8bye"
    assert wsframes.close_frame(None) == b"\x88\x00"
    long = wsframes.close_frame(4000, "é" * 100)  # 200 bytes: cut to 123, not mid-character
    assert len(long) == 2 + 2 + 122
    long[4:].decode("utf-8")
    for code in (999, 1004, 1005, 1006, 1015, 2999, 5000):
        with pytest.raises(ValueError):
            wsframes.close_frame(code)


def test_parse_close():
    assert wsframes.parse_close(b"") == (1005, "")
    assert wsframes.parse_close(b"\x0f\xa1ok") == (4001, "ok")
    with pytest.raises(ProtocolError) as info:
        wsframes.parse_close(b"\x03")
    assert info.value.code == 1002
    with pytest.raises(ProtocolError) as info:
        wsframes.parse_close(b"\x03\xed")  # 1005 may not be sent
    assert info.value.code == 1002
    with pytest.raises(ProtocolError) as info:
        wsframes.parse_close(b"\x03\xe8\xff")
    assert info.value.code == 1007


@pytest.mark.parametrize("value,opcode", [("0x81", 1), ("0x82", 2), ("0x88", 8), ("0x89", 9),
                                          ("0x8A", 10), ("0x8a", 10)])
def test_flags_opcodes(value, opcode):
    assert wsframes.flags(value) == opcode


@pytest.mark.parametrize("value", ["0x83", "0x87", "0x8B", "0x8F", "0x80", "0xC1", "0xA1",
                                   "0x91", "zz", None, "0x181", "-0x1"])
def test_flags_refused_with_1002(value):
    with pytest.raises(ProtocolError) as info:
        wsframes.flags(value)
    assert info.value.code == 1002
