"""Ask the image registry whether a tag exists: the Registry HTTP API v2, with httpx.

`HEAD /v2/<repository>/manifests/<tag>` answers 200 (with `Docker-Content-Digest`) or 404.
A registry that wants credentials answers 401 with `WWW-Authenticate`: `Basic` (the
distribution registry with htpasswd) takes the username and password on the retry;
`Bearer realm=...,service=...,scope=...` (GHCR, Docker Hub, GitLab, ECR through a proxy)
hands a short-lived token for them from `realm` first. Every failure becomes one message
naming the server and, for credentials, the secret that holds them; never its value.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx

from fabfile.config import Config, Registry
from fabfile.errors import UserError

MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str


def api_host(server: str) -> str:
    return "registry-1.docker.io" if server in DOCKER_HUB else server


def repository(cfg: Config, registry: Registry) -> str:
    """`app.image` without its registry host: the API's repository name."""
    return cfg.app.image.removeprefix(f"{registry.server}/")


def _verify(registry: Registry, root: str) -> ssl.SSLContext | bool:
    if not registry.ca_file:
        return True
    path = Path(registry.ca_file).expanduser()
    path = path if path.is_absolute() else Path(root) / path
    if not path.exists():
        raise UserError(f"registry.ca_file {path} does not exist")
    from fabfile.checks.certs import verifying_context

    return verifying_context(str(path))


class _Client:
    """One registry conversation: remembers the credentials the challenge asked for."""

    def __init__(self, registry: Registry, root: str, timeout: float) -> None:
        self.registry = registry
        self.http = httpx.Client(verify=_verify(registry, root), timeout=timeout,
                                 follow_redirects=True)
        self.base = f"https://{api_host(registry.server)}"

    def close(self) -> None:
        self.http.close()

    def _credentials(self) -> tuple[str, str] | None:
        reg = self.registry
        if reg.username is None or reg.password is None:
            return None
        if reg.password.placeholder:
            raise UserError(f"the registry {reg.server} wants credentials: set the secret "
                            f"{reg.password.name} (in the environment or .env file)")
        return reg.username, reg.password.reveal()

    def _token(self, challenge: str) -> str:
        params = dict(_CHALLENGE.findall(challenge))
        realm = params.pop("realm", "")
        if not realm:
            raise UserError(f"the registry {self.registry.server} asked for a token without "
                            "saying where to get it (no realm in WWW-Authenticate)")
        response = self.http.get(realm, params=params, auth=self._credentials())
        if response.status_code in (401, 403):
            raise self.rejected()
        response.raise_for_status()
        data = response.json()
        token = data.get("token") or data.get("access_token")
        if not isinstance(token, str):
            raise UserError(f"the registry {self.registry.server}'s token service answered "
                            "without a token")
        return token

    def rejected(self) -> UserError:
        reg = self.registry
        if reg.password is None:
            return UserError(f"the registry {reg.server} wants credentials: set "
                             "registry.username and registry.password ({secret: NAME})")
        return UserError(f"the registry {reg.server} rejected the credentials of "
                         f"{reg.username} (the password is the secret {reg.password.name}): "
                         "check the secret's value and that the token may read packages")

    def request(self, method: str, path: str) -> httpx.Response:
        """`method` on `path`, answering the registry's authentication challenge once."""
        url = f"{self.base}{path}"
        headers = {"Accept": MANIFEST_TYPES}
        response = self.http.request(method, url, headers=headers)
        if response.status_code != 401:
            return response
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "bearer":
            headers["Authorization"] = f"Bearer {self._token(challenge)}"
            response = self.http.request(method, url, headers=headers)
        else:
            credentials = self._credentials()
            if credentials is None:
                raise self.rejected()
            response = self.http.request(method, url, headers=headers, auth=credentials)
        if response.status_code in (401, 403):
            raise self.rejected()
        return response


def _ask(cfg: Config, method: str, path: str, timeout: float) -> httpx.Response:
    """One request to `cfg.registry`, every failure but an HTTP status turned into a message."""
    registry = cfg.registry
    assert registry is not None, "public images have no registry to ask"
    client = _Client(registry, cfg.root, timeout)
    try:
        return client.request(method, f"/v2/{repository(cfg, registry)}/{path}")
    except httpx.ConnectError as exc:
        raise UserError(f"cannot reach the registry {registry.server} ({_reason(exc)}): check "
                        "registry.server and that it is up; nothing was changed") from None
    except httpx.TimeoutException:
        raise UserError(f"the registry {registry.server} did not answer within {timeout:g}s; "
                        "nothing was changed") from None
    except httpx.HTTPError as exc:
        raise UserError(f"asking the registry {registry.server} failed: {_reason(exc)}") from None
    finally:
        client.close()


def manifest(cfg: Config, tag: str, *, timeout: float = 15.0) -> Manifest | None:
    """The manifest of `app.image:tag` in `cfg.registry`; None when the tag is not there."""
    assert cfg.registry is not None
    registry = cfg.registry
    response = _ask(cfg, "HEAD", f"manifests/{tag}", timeout)
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise UserError(f"the registry {registry.server} answered HTTP {response.status_code} "
                        f"for {cfg.app.image}:{tag}")
    return Manifest(response.headers.get("Docker-Content-Digest", ""),
                    response.headers.get("Content-Type", ""))


def tags(cfg: Config, *, timeout: float = 15.0) -> list[str]:
    """The tags of `app.image` (proves the credentials may read it); [] for a new image."""
    assert cfg.registry is not None
    response = _ask(cfg, "GET", "tags/list", timeout)
    if response.status_code == 404:
        return []
    if response.status_code != 200:
        raise UserError(f"the registry {cfg.registry.server} answered HTTP "
                        f"{response.status_code} listing the tags of {cfg.app.image}")
    found = response.json().get("tags") or []
    return [str(t) for t in found]


def require(cfg: Config, tag: str) -> Manifest | None:
    """The deploy's check before any host: the tag must exist (public images: not checked)."""
    if cfg.registry is None:
        return None
    found = manifest(cfg, tag)
    if found is None:
        raise UserError(f"image {cfg.app.image}:{tag} is not in {cfg.registry.server}; run "
                        f"`inv build --env={cfg.env} --push --version={tag}` (CI's build job "
                        "does this for each commit); nothing was changed")
    return found


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return ("its TLS certificate is not trusted here: set registry.ca_file to the CA "
                "that signed it")
    return text[:200]
