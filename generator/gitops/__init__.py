"""Everything btfhub does with git: the only package that runs it.

Two jobs, both careful to leave a person's own work alone: commit exactly
the hub's paths (commit.py) and push, rebuilding our commits on the remote
when another runner pushed first (push.py). The rooms: repo.py (the one git
layer: GitPython's Repo, its processes tied to btfhub, its errors as
GitError), paths.py (which paths btfhub may commit), author.py (who
commits), message.py (what the commit says). This module is the package's
public interface.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from generator.gitops.author import AUTHOR_ENV, parse_author, resolve_author
    from generator.gitops.commit import commit_paths
    from generator.gitops.message import commit_message
    from generator.gitops.paths import (
        ARCHIVE_DIR,
        GENERATED_FILES,
        check_hub_paths,
        clean_blobs,
        hub_changes,
    )
    from generator.gitops.push import Regenerate, current_branch, push_with_retry
    from generator.gitops.repo import GitError

# Each name's module, imported on first use: GitPython takes about 0.1 s to
# import, and a run that never touches git (an OCI hub's no-op, a consumer's
# lookup) should not pay it.
_HOME = {
    "AUTHOR_ENV": "author",
    "parse_author": "author",
    "resolve_author": "author",
    "commit_paths": "commit",
    "commit_message": "message",
    "ARCHIVE_DIR": "paths",
    "GENERATED_FILES": "paths",
    "check_hub_paths": "paths",
    "clean_blobs": "paths",
    "hub_changes": "paths",
    "Regenerate": "push",
    "current_branch": "push",
    "push_with_retry": "push",
    "GitError": "repo",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = [
    "ARCHIVE_DIR",
    "AUTHOR_ENV",
    "GENERATED_FILES",
    "GitError",
    "Regenerate",
    "check_hub_paths",
    "clean_blobs",
    "commit_message",
    "commit_paths",
    "current_branch",
    "hub_changes",
    "parse_author",
    "push_with_retry",
    "resolve_author",
]
