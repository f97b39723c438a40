"""Cross-check the simulator with an independent client: Debian's librouteros.

Usage: librouteros_check.py HOST PORT. Prints OK on success; any failure
raises and exits non-zero.
"""
import sys

import librouteros
from librouteros.exceptions import TrapError
from librouteros.query import Key

host, port = sys.argv[1], int(sys.argv[2])

try:
    librouteros.connect(host=host, port=port, username="admin", password="wrong", timeout=5)
    raise SystemExit("bad password accepted")
except TrapError as e:
    assert e.message == "invalid user name or password (6)", e.message

api = librouteros.connect(host=host, port=port, username="admin", password="secret", timeout=5)
lists = api.path("ip", "firewall", "address-list")

first = lists.add(list="py", address="192.0.2.1", comment="one")
second = lists.add(list="py", address="192.0.2.0-192.0.2.255")
lists.add(list="other", address="198.51.100.9")
assert first.startswith("*"), first

try:
    lists.add(list="py", address="192.0.2.1/32")
    raise SystemExit("duplicate accepted")
except TrapError as e:
    assert e.message == "failure: already have such entry", e.message

address, list_, comment = Key("address"), Key("list"), Key("comment")
rows = tuple(lists.select(address, comment).where(list_ == "py"))
assert [r["address"] for r in rows] == ["192.0.2.1", "192.0.2.0/24"], rows
rows = tuple(lists.select(address).where(list_.In("py", "other"), address != "192.0.2.1"))
assert [r["address"] for r in rows] == ["192.0.2.0/24", "198.51.100.9"], rows

lists.remove(first, second)
rows = tuple(lists)
assert [r["address"] for r in rows] == ["198.51.100.9"], rows
assert rows[0]["dynamic"] is False, rows  # librouteros casts "false"

try:
    lists.remove(first)
    raise SystemExit("removing a missing id succeeded")
except TrapError as e:
    assert e.message == "no such item", e.message

api.close()
print("OK")
