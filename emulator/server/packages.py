"""The reference server's package repository: firmware and software packages devices download.

Packages are generated (deterministic bytes of a given size, seeded by the name), so a campaign of
any size needs no files. Routes (mounted by :func:`setup_packages`; no authentication: package URLs
are public, as a CDN's are; what a device may install is the DM session's business):

- ``GET /packages/<name>``: the package, with HTTP Range (one range: ``bytes=a-b``, ``a-``, ``-n``;
  206 with Content-Range; 416 for one past the end; several ranges are answered with the whole
  package, as RFC 9110 allows); a package added with ``ranges=False`` ignores Range (a hostile or
  old server: the device must start over);
- ``GET /packages/<name>/dd``: its OMA download descriptor (DLOTA, ``application/vnd.oma.dd+xml``:
  objectURI, size, type, installNotifyURI, the project's ``dme:sha256`` and ``dme:version``);
- ``POST /packages/<name>/notify``: the device's install status (``900 Success`` ...), kept per
  package (at most :data:`MAX_NOTIFICATIONS`).

Limits: :data:`MAX_PACKAGE` bytes per package, :data:`MAX_PACKAGES` packages, names of letters,
digits and ``._-`` (at most 64 characters).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from emulator.errors import EmulatorError
from emulator.mo.dlota import DD_TYPE, Descriptor, build_descriptor

PACKAGES = "/packages"
MAX_PACKAGE = 256 << 20
"""Largest generated package (256 MiB)."""
MAX_PACKAGES = 1000
MAX_NOTIFICATIONS = 100_000
"""Install notifications kept per package (the oldest are dropped beyond)."""
MAX_NOTIFY_BODY = 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass
class Package:
    """One package: ``data`` generated at ``size``; ``version`` what a device reports after installing
    it; ``ranges`` False makes the server ignore Range; ``dd_size``/``dd_sha256`` make its
    descriptor lie (tests of a device that must notice)."""

    name: str
    size: int
    version: str = ""
    content_type: str = "application/octet-stream"
    ranges: bool = True
    dd_size: int | None = None
    dd_sha256: str | None = None
    data: bytes = b""
    sha256: str = ""
    notifications: list[tuple[str, str]] = field(default_factory=list)  # (client address, status line)
    downloads: int = 0  # requests served
    bytes_served: int = 0

    def descriptor(self, base: str) -> bytes:
        url = f"{base}{PACKAGES}/{self.name}"
        return build_descriptor(Descriptor(url, self.size if self.dd_size is None else self.dd_size,
                                           self.content_type, self.name, self.version, f"{url}/notify",
                                           self.sha256 if self.dd_sha256 is None else self.dd_sha256))


def generate(name: str, size: int) -> bytes:
    """``size`` bytes that depend only on ``name`` (the same package on every run)."""
    return random.Random(f"dm-emulator package {name}").randbytes(size)


class PackageRepo:
    """The packages a server holds, by name."""

    def __init__(self) -> None:
        self.packages: dict[str, Package] = {}
        self.base_url: Callable[[], str] | None = None  # where devices reach the server ("": the request's origin)

    def add(self, name: str, size: int, version: str = "", *, content_type: str = "application/octet-stream",
            ranges: bool = True, dd_size: int | None = None, dd_sha256: str | None = None) -> Package:
        """Generate and keep a package; EmulatorError (400) for a bad name or size."""
        self.check(name, size)
        data = generate(name, size)
        pkg = Package(name, size, version, content_type, ranges, dd_size, dd_sha256, data,
                      hashlib.sha256(data).hexdigest())
        self.packages[name] = pkg
        return pkg

    def check(self, name: object, size: object) -> None:
        """EmulatorError (400/507) when :meth:`add` would refuse this package; nothing is generated."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise EmulatorError(f"package name {str(name)[:80]!r}: letters, digits and ._- (at most 64)", status=400)
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_PACKAGE:
            raise EmulatorError(f"package size must be 0 to {MAX_PACKAGE} bytes, not {str(size)[:40]}", status=400)
        if name not in self.packages and len(self.packages) >= MAX_PACKAGES:
            raise EmulatorError(f"the repository holds {MAX_PACKAGES} packages already", status=507)

    def get(self, name: str) -> Package:
        pkg = self.packages.get(name)
        if pkg is None:
            raise EmulatorError(f"no package {name[:80]!r} in the repository", status=404)
        return pkg

    def url(self, base: str, name: str, *, descriptor: bool = False) -> str:
        return f"{base}{PACKAGES}/{name}" + ("/dd" if descriptor else "")


def parse_range(header: str, size: int) -> tuple[int, int] | None | str:
    """(first, last) of a single-range ``Range`` header; None to answer with the whole package (no
    header, several ranges, not bytes); "unsatisfiable" for a range past the end."""
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first_text:  # suffix: the last n bytes
            n = int(last_text)
            if n <= 0:
                return "unsatisfiable"
            return max(0, size - n), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first >= size:
        return "unsatisfiable"
    if first < 0 or last < first:
        return None
    return first, min(last, size - 1)


REPO_KEY = web.AppKey("packages", PackageRepo)


async def _package(request: web.Request) -> web.Response:
    repo = request.app[REPO_KEY]
    try:
        pkg = repo.get(request.match_info["name"])
    except EmulatorError as exc:
        return web.Response(status=exc.status, text=str(exc))
    pkg.downloads += 1
    headers = {"Accept-Ranges": "bytes" if pkg.ranges else "none", "Content-Type": pkg.content_type}
    wanted = parse_range(request.headers.get("Range", ""), pkg.size) if pkg.ranges else None
    if wanted == "unsatisfiable":
        return web.Response(status=416, headers={**headers, "Content-Range": f"bytes */{pkg.size}"})
    if isinstance(wanted, tuple):
        first, last = wanted
        pkg.bytes_served += last - first + 1
        return web.Response(status=206, body=pkg.data[first:last + 1],
                            headers={**headers, "Content-Range": f"bytes {first}-{last}/{pkg.size}"})
    pkg.bytes_served += pkg.size
    return web.Response(body=pkg.data, headers=headers)


async def _descriptor(request: web.Request) -> web.Response:
    repo = request.app[REPO_KEY]
    try:
        pkg = repo.get(request.match_info["name"])
    except EmulatorError as exc:
        return web.Response(status=exc.status, text=str(exc))
    base = (repo.base_url() if repo.base_url is not None else "").rstrip("/") or str(request.url.origin())
    return web.Response(body=pkg.descriptor(base), headers={"Content-Type": DD_TYPE})


async def _notify(request: web.Request) -> web.Response:
    repo = request.app[REPO_KEY]
    try:
        pkg = repo.get(request.match_info["name"])
    except EmulatorError as exc:
        return web.Response(status=exc.status, text=str(exc))
    if (request.content_length or 0) > MAX_NOTIFY_BODY:
        return web.Response(status=413, text=f"an install notification is at most {MAX_NOTIFY_BODY} bytes")
    body = await request.read()  # bounded by the app's client_max_size when the length was not given
    if len(body) > MAX_NOTIFY_BODY:
        return web.Response(status=413, text=f"an install notification is at most {MAX_NOTIFY_BODY} bytes")
    line = body.decode("utf-8", "replace").strip()
    if not line[:3].isdigit():
        return web.Response(status=400, text="expected a DLOTA status line such as '900 Success'")
    if len(pkg.notifications) >= MAX_NOTIFICATIONS:
        del pkg.notifications[0]
    pkg.notifications.append((request.remote or "", line))
    return web.Response(text="ok")


def setup_packages(app: web.Application, repo: PackageRepo) -> None:
    app[REPO_KEY] = repo
    app.router.add_get(PACKAGES + "/{name}", _package)
    app.router.add_get(PACKAGES + "/{name}/dd", _descriptor)
    app.router.add_post(PACKAGES + "/{name}/notify", _notify)
