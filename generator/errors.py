"""Exceptions the CLI maps to clean messages (exit 1) instead of tracebacks."""


class BtfhubError(Exception):
    """A user-facing error: bad input, unreachable upstream, a tool failing."""


class UpstreamError(BtfhubError):
    """An upstream repository or index could not be read; names the URL."""


class OperatorInputMissing(UpstreamError):
    """What only the operator can give is missing (credentials, a signing key).

    Not an upstream fault: the repository's releases are skipped, not
    failed, and a public run stays green. `cause` is how plan and the
    tables name it; each message starts with it.
    """

    cause = ""


class PackageError(BtfhubError):
    """A package could not be fetched, verified or read (one kernel fails)."""


class EncodeError(BtfhubError):
    """pahole (or the BTF check) failed for one kernel."""


class MissingToolError(BtfhubError):
    """A tool btfhub needs is missing or not the version it must be (pahole 1.30).

    The machine's problem, not a kernel's: no kernel is recorded as failed
    for it; the run stops, like on a full disk.
    """


class LockError(BtfhubError):
    """Another btfhub process holds this checkout's lock."""


class MalformedPackageError(PackageError):
    """A package dpkg or rpm would refuse (a .. member, two vmlinux, sizes that disagree)."""


class StorageError(BtfhubError):
    """The hub's disk is full (or a file size limit was hit): the run stops, nothing partial.

    Not a kernel failure: no kernel is recorded as failed for it, and the
    next run, with space again, carries on where this one stopped.
    """
