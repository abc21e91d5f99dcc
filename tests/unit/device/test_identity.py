"""Device identities: Luhn/IMEI correctness, MAC rules, determinism and distinctness at fleet scale."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.device.identity import (
    IdentityError,
    IdentitySpec,
    is_valid_imei,
    luhn_check_digit,
    make_identity,
)


def test_luhn_known_values() -> None:
    # Wikipedia's Luhn example 7992739871 -> 3, and the IMEI example 49015420323751 -> 8.
    assert luhn_check_digit("7992739871") == "3"
    assert luhn_check_digit("49015420323751") == "8"
    assert is_valid_imei("490154203237518")


@pytest.mark.parametrize("imei", ["490154203237517", "49015420323751", "4901542032375180", "49015420323751X"])
def test_invalid_imeis_are_refused(imei: str) -> None:
    assert not is_valid_imei(imei)


def test_luhn_refuses_non_digits() -> None:
    with pytest.raises(ValueError):
        luhn_check_digit("12a4")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789", min_size=14, max_size=14), st.integers(0, 13), st.integers(1, 9))
def test_luhn_catches_every_single_digit_error(body: str, pos: int, delta: int) -> None:
    imei = body + luhn_check_digit(body)
    assert is_valid_imei(imei)
    wrong = imei[:pos] + str((int(imei[pos]) + delta) % 10) + imei[pos + 1 :]
    assert not is_valid_imei(wrong)


@pytest.mark.parametrize("scheme", ["IMEI", "MAC", "UUID", "SN"])
def test_ten_thousand_distinct_and_stable(scheme: str) -> None:
    spec = IdentitySpec(scheme=scheme, tac="49015420")
    ids = [make_identity(spec, i) for i in range(10_000)]
    assert len({i.dev_id for i in ids}) == 10_000
    assert len({i.serial for i in ids}) == 10_000
    assert len({i.mac for i in ids}) == 10_000
    assert make_identity(spec, 4321) == ids[4321]  # same index, same identity, every run


def test_imei_identity() -> None:
    spec = IdentitySpec(scheme="IMEI", tac="35467910")
    for i in (0, 1, 999, 123_456):
        ident = make_identity(spec, i)
        assert ident.imei is not None
        assert ident.imei.startswith("35467910")
        assert is_valid_imei(ident.imei)
        assert ident.dev_id == f"IMEI:{ident.imei}"


def test_mac_identity_is_locally_administered_unicast() -> None:
    spec = IdentitySpec(scheme="MAC", mac_prefix="0A:3C:71")
    ident = make_identity(spec, 258)
    octets = [int(o, 16) for o in ident.mac.split(":")]
    assert len(octets) == 6
    assert octets[0] & 0x02 and not octets[0] & 0x01
    assert octets[3:] == [0, 1, 2]  # 258 = 0x000102
    assert ident.dev_id == "MAC:" + ident.mac.replace(":", "")
    assert ident.imei is None


@pytest.mark.parametrize("prefix", ["00:1A:2B", "03:00:00", "02:00", "ZZ:00:00"])
def test_bad_mac_prefix(prefix: str) -> None:
    with pytest.raises(IdentityError) as info:
        IdentitySpec(scheme="MAC", mac_prefix=prefix)
    assert info.value.field == "mac_prefix"


def test_uuid_identity_is_v5_and_namespaced() -> None:
    a = make_identity(IdentitySpec(scheme="UUID"), 7)
    b = make_identity(IdentitySpec(scheme="UUID", namespace=str(uuid.uuid4())), 7)
    assert a.dev_id.startswith("urn:uuid:")
    assert uuid.UUID(a.uuid).version == 5
    assert a.dev_id != b.dev_id


def test_start_shifts_the_range() -> None:
    base = IdentitySpec(scheme="IMEI")
    shifted = IdentitySpec(scheme="IMEI", start=100)
    assert make_identity(shifted, 0) == make_identity(base, 100)
    first = {make_identity(base, i).dev_id for i in range(100)}
    second = {make_identity(shifted, i).dev_id for i in range(100)}
    assert not first & second


def test_serial_uses_prefix_and_width() -> None:
    assert make_identity(IdentitySpec(prefix="TB", width=6), 42).serial == "TB000042"


def test_environment_identity() -> None:
    spec = IdentitySpec(scheme="IMEI")
    host = make_identity(spec, 3)
    guest = make_identity(spec, 3, environment="work")
    assert guest.dev_id != host.dev_id
    assert guest.dev_id.startswith("urn:uuid:")
    assert guest == make_identity(spec, 3, environment="work")
    assert guest.dev_id != make_identity(spec, 4, environment="work").dev_id
    assert guest.dev_id != make_identity(spec, 3, environment="other").dev_id


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scheme": "ESN"}, "scheme"),
        ({"tac": "1234567"}, "tac"),
        ({"tac": "1234567a"}, "tac"),
        ({"start": -1}, "start"),
        ({"width": 0}, "width"),
        ({"namespace": "not-a-uuid"}, "namespace"),
    ],
)
def test_bad_specs_name_their_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(IdentityError) as info:
        IdentitySpec(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_exhausted_ranges_are_errors() -> None:
    with pytest.raises(IdentityError, match="IMEI"):
        make_identity(IdentitySpec(scheme="IMEI", start=999_999), 1)
    with pytest.raises(IdentityError, match="serial"):
        make_identity(IdentitySpec(width=2), 100)
    with pytest.raises(IdentityError):
        make_identity(IdentitySpec(), -1)


def test_capacity_is_the_smallest_space() -> None:
    from emulator.device.identity import capacity

    assert capacity(IdentitySpec(scheme="IMEI", width=7)) == 1_000_000
    assert capacity(IdentitySpec(scheme="IMEI", width=7, start=10)) == 999_990
    assert capacity(IdentitySpec(scheme="SN", width=3)) == 1000
    assert capacity(IdentitySpec(scheme="MAC", width=12)) == 1 << 24
    spec = IdentitySpec(scheme="IMEI", width=7)
    make_identity(spec, capacity(spec) - 1)  # the last index of the space is valid
    with pytest.raises(IdentityError):
        make_identity(spec, capacity(spec))  # one past is not


@pytest.mark.parametrize("parts", [1, 2, 3, 7, 1000])
def test_shares_are_disjoint_valid_and_cover_the_space(parts: int) -> None:
    from emulator.device.identity import capacity, share

    spec = IdentitySpec(scheme="IMEI", tac="35467910", width=7)
    ranges = [share(spec, 0, p, parts) for p in range(parts)]
    assert all(len(r) == capacity(spec) // parts for r in ranges)
    assert all(a.stop == b.start for a, b in zip(ranges, ranges[1:], strict=False))
    ids = set()
    for r in ranges:  # first and last identity of each share exist, are valid and distinct
        for index in (r.start, r.stop - 1):
            ident = make_identity(spec, index)
            assert ident.imei is not None and is_valid_imei(ident.imei)
            ids.add(ident.dev_id)
    assert len(ids) == 2 * parts if capacity(spec) // parts > 1 else parts


def test_shares_at_the_limit_of_the_space() -> None:
    from emulator.device.identity import share

    spec = IdentitySpec(scheme="SN", width=2)  # 100 identities
    assert share(spec, 0, 99, 100) == range(99, 100)  # 100 workers: one identity each
    with pytest.raises(IdentityError, match="101 workers cannot share"):
        share(spec, 0, 0, 101)
    assert share(spec, 90, 9, 10) == range(99, 100)  # from index 90: 10 left for 10 workers
    with pytest.raises(IdentityError, match="11 workers cannot share"):
        share(spec, 90, 0, 11)
    with pytest.raises(IdentityError, match="part 2 of 2"):
        share(spec, 0, 2, 2)
    with pytest.raises(IdentityError, match="negative"):
        share(spec, -1, 0, 1)
