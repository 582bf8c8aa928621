"""CURVE key pairs for tcp links between hosts (ZeroMQ CURVE: encryption plus client authentication).

A binding node (the server of a link) needs its secret key file and a folder of the public keys of the clients
it accepts; a connecting node needs its own secret key file and the server's public key file. Secret files are
written owner-only and their contents are never logged.
"""

from __future__ import annotations

import os
from pathlib import Path

from streamfuse.errors import ConfigError


def create_keypair(folder: str | Path, name: str, force: bool = False) -> tuple[Path, Path]:
    """Write ``NAME.key`` (public) and ``NAME.key_secret`` (secret, mode 600) into ``folder``; returns both paths."""
    import zmq.auth

    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"key name {name!r} must be a plain file name such as 'server' or 'camera1'")
    out = Path(folder)
    public, secret = out / f"{name}.key", out / f"{name}.key_secret"
    existing = [str(p) for p in (public, secret) if p.exists()]
    if existing and not force:
        raise ConfigError(f"key file {existing[0]} already exists; pick another --name, or --force to replace it")
    out.mkdir(parents=True, exist_ok=True)
    old_umask = os.umask(0o077)  # the secret file is never readable by others, not even for a moment
    try:
        public_path, secret_path = zmq.auth.create_certificates(str(out), name)
    finally:
        os.umask(old_umask)
    os.chmod(secret_path, 0o600)
    os.chmod(public_path, 0o644)
    return Path(public_path), Path(secret_path)
